//! `oathbridge virtual-key`: make, migrate and inspect virtual keys sealed by a FIDO2 key's
//! `hmac-secret` (docs/sealed-virtual-key.md).

use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use data_encoding::HEXLOWER;
use serde::Serialize;
use zeroize::Zeroizing;

use super::GlobalArgs;
use super::error::{CliError, CliResult, exit};
use super::output::print_json;
use crate::emulator::WriteStep;
use crate::fido::sealed::SealedError;
use crate::fido::vault::{self, VaultError};
use crate::fido::{AuthenticatorSpec, FidoError, HmacSecretAuthenticator};

/// Test hook: `OATHBRIDGE_TEST_CRASH_AT=temp-written|renamed` aborts `virtual-key seal` at
/// that step of the atomic write (crash-injection tests; never set it otherwise).
pub const CRASH_ENV: &str = "OATHBRIDGE_TEST_CRASH_AT";

#[derive(Debug, Args)]
pub struct VirtualKeyArgs {
    #[command(subcommand)]
    pub action: VirtualKeyAction,
}

#[derive(Debug, Subcommand)]
pub enum VirtualKeyAction {
    /// Make a new, empty virtual key sealed by a FIDO2 key (two touches)
    Create {
        /// The sealed file to create (must not exist)
        file: PathBuf,
        #[command(flatten)]
        fido: SealWith,
    },
    /// Seal an existing clear-text virtual key file in place (atomic: the old or the new
    /// file, never neither)
    Seal {
        /// The clear-text state file (as written by --virtual-key or emulate --state)
        file: PathBuf,
        #[command(flatten)]
        fido: SealWith,
    },
    /// Show a virtual key file's format (and for a sealed one its public header)
    Info {
        /// The state file, sealed or clear text
        file: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct SealWith {
    /// The FIDO2 key: auto (the only one connected), /dev/hidrawN, or soft:FILE (the
    /// software authenticator, for tests); default $OATHBRIDGE_FIDO, else auto
    #[arg(long = "seal-with", value_name = "ID")]
    pub seal_with: Option<AuthenticatorSpec>,
}

/// The exit code and one-line message for a sealing error (documented set).
pub fn vault_error(error: VaultError) -> CliError {
    let code = match &error {
        VaultError::Fido(fido) => fido_exit_code(fido),
        VaultError::Sealed { source, .. } => match source {
            SealedError::NewerFormat(_) => exit::UNSUPPORTED,
            _ => exit::USAGE,
        },
        VaultError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
            exit::USAGE
        }
        VaultError::State(crate::emulator::StateError::Io { .. }) => exit::FAILURE,
        VaultError::State(_) | VaultError::Exists { .. } | VaultError::AlreadySealed { .. } => {
            exit::USAGE
        }
        VaultError::Io { .. } | VaultError::BadState { .. } => exit::FAILURE,
    };
    CliError::Coded {
        code,
        message: error.to_string(),
    }
}

/// FIDO2 errors: 5 no (right) key, 4 several, 6 PIN, 7 touch, 8 no hmac-secret, else 1.
pub fn fido_exit_code(error: &FidoError) -> u8 {
    match error {
        FidoError::NoDevice(_) | FidoError::CredentialNotFound => exit::NO_KEY,
        FidoError::SeveralDevices => exit::AMBIGUOUS,
        FidoError::PinRequired | FidoError::WrongPin { .. } | FidoError::PinBlocked => {
            exit::PASSWORD
        }
        FidoError::TouchTimeout => exit::TOUCH_TIMEOUT,
        FidoError::NoHmacSecret => exit::UNSUPPORTED,
        FidoError::Device(_) => exit::FAILURE,
    }
}

/// Open the authenticator named by the flag, $OATHBRIDGE_FIDO or auto.
pub fn authenticator(
    flag: Option<&AuthenticatorSpec>,
) -> CliResult<std::sync::Arc<dyn HmacSecretAuthenticator>> {
    let spec = AuthenticatorSpec::resolve(flag).map_err(CliError::Usage)?;
    spec.open().map_err(|e| vault_error(VaultError::Fido(e)))
}

/// The FIDO2 PIN when the key has one set: a hidden prompt on a terminal, else the first
/// line of stdin (never argv). None when no PIN is set.
pub fn read_pin(
    authenticator: &dyn HmacSecretAuthenticator,
) -> CliResult<Option<Zeroizing<String>>> {
    if !authenticator
        .pin_set()
        .map_err(|e| vault_error(VaultError::Fido(e)))?
    {
        return Ok(None);
    }
    prompt_pin(authenticator).map(Some)
}

/// The FIDO2 PIN from a hidden prompt on a terminal, else the first line of stdin.
fn prompt_pin(authenticator: &dyn HmacSecretAuthenticator) -> CliResult<Zeroizing<String>> {
    let prompt = format!("PIN of FIDO2 key {}: ", authenticator.describe());
    let stdin = std::io::stdin();
    let pin = if stdin.is_terminal() {
        Zeroizing::new(rpassword::prompt_password(prompt)?)
    } else {
        match stdin.lock().lines().next() {
            Some(line) => Zeroizing::new(line?),
            None => {
                return Err(CliError::Coded {
                    code: exit::PASSWORD,
                    message: "the FIDO2 key has a PIN: type it at the prompt or give it as \
                              the first line of stdin"
                        .into(),
                });
            }
        }
    };
    Ok(pin)
}

/// Open a sealed file for `emulate --state` (touch, PIN when set): a card that re-seals
/// its changes.
pub fn open_card(
    path: &Path,
    flag: Option<&AuthenticatorSpec>,
    config: crate::emulator::CardConfig,
) -> CliResult<crate::emulator::Card> {
    let authenticator = authenticator(flag)?;
    // The PIN is asked for when the file was sealed with it.
    let header = vault::read_sealed(path).map_err(vault_error)?.header;
    let pin = if header.uv {
        Some(prompt_pin(authenticator.as_ref())?)
    } else {
        None
    };
    eprintln!(
        "Touch the FIDO2 key {} to open {}",
        authenticator.describe(),
        path.display()
    );
    let opened = vault::open(
        path,
        authenticator.as_ref(),
        pin.as_deref().map(|p| p.as_str()),
    )
    .map_err(vault_error)?;
    vault::card_from(path, opened, config).map_err(vault_error)
}

/// Said once when a clear-text state file is used.
pub fn warn_clear_text(path: &Path) {
    eprintln!(
        "warning: virtual key {} keeps its seeds in clear text; seal it with a FIDO2 key: \
         oathbridge virtual-key seal {}",
        path.display(),
        path.display()
    );
}

fn crash_hook() -> impl FnMut(WriteStep) -> std::io::Result<()> {
    let crash_at = std::env::var(CRASH_ENV).ok();
    move |step| {
        let name = match step {
            WriteStep::TempWritten => "temp-written",
            WriteStep::Renamed => "renamed",
        };
        if crash_at.as_deref() == Some(name) {
            std::process::abort();
        }
        Ok(())
    }
}

#[derive(Serialize)]
struct InfoJson {
    file: String,
    sealed: bool,
    format: u16,
    device_salt: Option<String>,
    credential_id_len: Option<usize>,
    /// Opening needs the FIDO2 PIN (sealed with user verification).
    pin: Option<bool>,
}

pub fn run(global: &GlobalArgs, args: &VirtualKeyArgs) -> CliResult<()> {
    match &args.action {
        VirtualKeyAction::Create { file, fido } => {
            if file.exists() {
                return Err(vault_error(VaultError::Exists { path: file.clone() }));
            }
            let authenticator = authenticator(fido.seal_with.as_ref())?;
            let pin = read_pin(authenticator.as_ref())?;
            eprintln!(
                "Touch the FIDO2 key {} twice (new credential, then its secret)",
                authenticator.describe()
            );
            vault::create(
                file,
                authenticator.as_ref(),
                pin.as_deref().map(|p| p.as_str()),
            )
            .map_err(vault_error)?;
            eprintln!("Sealed virtual key created: {}", file.display());
        }
        VirtualKeyAction::Seal { file, fido } => {
            if !file.exists() {
                return Err(CliError::Input(format!("{}: no such file", file.display())));
            }
            // A file that cannot be sealed is refused before anyone is asked to touch.
            if vault::is_sealed_file(file) {
                return Err(vault_error(VaultError::AlreadySealed {
                    path: file.clone(),
                }));
            }
            crate::emulator::Card::new(crate::emulator::CardConfig::yubikey())
                .with_state_file(file)
                .map_err(|e| vault_error(VaultError::State(e)))?;
            let authenticator = authenticator(fido.seal_with.as_ref())?;
            let pin = read_pin(authenticator.as_ref())?;
            eprintln!(
                "Touch the FIDO2 key {} twice (new credential, then its secret)",
                authenticator.describe()
            );
            vault::seal_existing(
                file,
                authenticator.as_ref(),
                pin.as_deref().map(|p| p.as_str()),
                &mut crash_hook(),
            )
            .map_err(vault_error)?;
            eprintln!("Virtual key sealed: {}", file.display());
        }
        VirtualKeyAction::Info { file } => {
            let info = if vault::is_sealed_file(file) {
                let sealed = vault::read_sealed(file).map_err(vault_error)?;
                InfoJson {
                    file: file.display().to_string(),
                    sealed: true,
                    format: crate::fido::sealed::FORMAT_VERSION,
                    device_salt: Some(HEXLOWER.encode(&sealed.header.card_salt)),
                    credential_id_len: Some(sealed.header.credential_id.len()),
                    pin: Some(sealed.header.uv),
                }
            } else {
                crate::emulator::Card::new(crate::emulator::CardConfig::yubikey())
                    .with_state_file(file)
                    .map_err(|e| vault_error(VaultError::State(e)))?;
                if !file.exists() {
                    return Err(CliError::Input(format!("{}: no such file", file.display())));
                }
                InfoJson {
                    file: file.display().to_string(),
                    sealed: false,
                    format: 1,
                    device_salt: None,
                    credential_id_len: None,
                    pin: None,
                }
            };
            if global.json {
                return Ok(print_json(&info)?);
            }
            match info.credential_id_len {
                Some(len) => println!(
                    "{}: sealed virtual key, format {}, FIDO2 credential id of {len} bytes, \
                     opens with {}",
                    info.file,
                    info.format,
                    if info.pin == Some(true) {
                        "touch and PIN"
                    } else {
                        "touch"
                    }
                ),
                None => println!(
                    "{}: clear-text virtual key (seeds readable by anyone who can read the \
                     file); seal it with: oathbridge virtual-key seal {}",
                    info.file, info.file
                ),
            }
        }
    }
    Ok(())
}
