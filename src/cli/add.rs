//! `oathbridge add`: the import pipeline at a terminal. Read every source, apply the
//! command line's overrides, check everything against every target key, then write (or,
//! with `--dry-run`, print the plan).

use std::path::PathBuf;

use clap::Args;
use zeroize::Zeroizing;

use super::GlobalArgs;
use super::backend::{self, Backend};
use super::error::{CliError, CliResult, exit};
use super::input;
use super::output::print_json;
use crate::import::plan::{Planned, Problem, Problems, prepare_partial};
use crate::import::{AccountSpec, Location, combine};
use crate::oath::consts::{DEFAULT_DIGITS, DEFAULT_PERIOD};
use crate::oath::{Credential, CredentialData, CredentialId, DeviceKind};
use crate::otp::{HashAlgorithm, OathType, OtpAuthUri};

#[derive(Debug, Args)]
pub struct AddArgs {
    /// Account name as [ISSUER:]NAME (optional with an otpauth:// input)
    pub name: Option<String>,
    /// Read accounts from FILE, or - for stdin (repeatable): otpauth:// and
    /// otpauth-migration:// lines, a base32 seed, a QR code image (PNG, JPEG, GIF, WebP,
    /// BMP), or an export of Aegis (also encrypted), 2FAS, andOTP, Bitwarden or FreeOTP+
    #[arg(long, value_name = "FILE")]
    pub from: Vec<PathBuf>,
    /// OTP type [default: totp]
    #[arg(long = "type", value_name = "TYPE")]
    pub oath_type: Option<OathType>,
    /// Hash algorithm [default: sha1]
    #[arg(long, value_name = "ALGORITHM")]
    pub algorithm: Option<HashAlgorithm>,
    /// Number of digits [default: 6]
    #[arg(long, value_parser = clap::value_parser!(u8).range(6..=8))]
    pub digits: Option<u8>,
    /// TOTP period in seconds [default: 30]
    #[arg(long, value_name = "SECONDS")]
    pub period: Option<u32>,
    /// Initial HOTP counter
    #[arg(long, value_name = "N")]
    pub counter: Option<u32>,
    /// Require a touch of the key for every code
    #[arg(long)]
    pub touch: bool,
    /// Replace existing accounts with the same names
    #[arg(short, long)]
    pub force: bool,
    /// Create a random 20-byte seed and print its otpauth:// URI and a QR code of it once
    #[arg(long, conflicts_with = "from")]
    pub generate: bool,
    /// Write the accounts to every connected key (backup keys)
    #[arg(long)]
    pub all_devices: bool,
    /// Check everything and print what would be written, without writing
    #[arg(long, conflicts_with = "generate")]
    pub dry_run: bool,
    /// Program a YubiKey OTP slot (1 or 2, over HID) with the seed instead: HMAC-SHA1
    /// challenge-response, shown as the TOTP account "slot N" (SHA1, 6 digits, 30 s;
    /// seeds up to 20 bytes; --touch for a button press)
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=2), conflicts_with_all = ["all_devices", "dry_run"])]
    pub slot: Option<u8>,
}

/// Read the sources and turn them into checked accounts (overrides applied), with the
/// problems of those that failed the key-independent checks.
fn accounts_to_add(args: &AddArgs) -> CliResult<(Vec<Planned>, Vec<Problem>)> {
    if args.generate {
        let mut secret = Zeroizing::new(vec![0u8; 20]);
        getrandom::fill(&mut secret).map_err(|e| CliError::Failure(e.to_string()))?;
        let at = Location::source("generated");
        return Ok(prepare_partial(vec![from_secret(args, secret, &at)?]));
    }
    let mut sources = input::read_sources(&args.from)?;
    let bare: Vec<(Location, Zeroizing<Vec<u8>>)> = sources
        .iter_mut()
        .filter_map(|s| s.bare_secret.take())
        .collect();
    let (specs, notes) = combine(sources).map_err(|e| CliError::Input(e.to_string()))?;
    for note in notes {
        eprintln!("note: {note}");
    }
    let mut planned = Vec::new();
    match (bare.len(), specs.is_empty()) {
        (0, _) => {}
        (1, true) => {
            if let Some((at, secret)) = bare.into_iter().next() {
                planned.push(from_secret(args, secret, &at)?);
            }
        }
        _ => {
            return Err(CliError::Usage(
                "a bare base32 secret must be the only input (one account, named on the \
                 command line)"
                    .into(),
            ));
        }
    }
    if specs.len() > 1 && args.name.is_some() {
        return Err(CliError::Usage(
            "a NAME cannot be given for an import with several accounts".into(),
        ));
    }
    for spec in specs {
        planned.push(from_spec(spec, args));
    }
    Ok(prepare_partial(planned))
}

/// The input's problems as one refusal (exit 2).
fn refused(problems: Vec<Problem>) -> CliError {
    CliError::refused(&Problems(problems))
}

/// Split `[ISSUER:]NAME` on the first colon.
pub(super) fn split_name(text: &str) -> (Option<&str>, &str) {
    match text.split_once(':') {
        Some((issuer, name)) if !issuer.is_empty() => (Some(issuer), name),
        _ => (None, text),
    }
}

fn from_secret(args: &AddArgs, secret: Zeroizing<Vec<u8>>, at: &Location) -> CliResult<Planned> {
    let slot_name = args.slot.map(|slot| format!("slot {slot}"));
    let name = args
        .name
        .as_deref()
        .or(slot_name.as_deref())
        .ok_or_else(|| {
            CliError::Usage(
                "a bare secret needs an account name: oathbridge add [ISSUER:]NAME".into(),
            )
        })?;
    let (issuer, name) = split_name(name);
    let oath_type = args.oath_type.unwrap_or_default();
    Ok(Planned {
        at: at.clone(),
        data: CredentialData {
            id: CredentialId::new(
                issuer,
                name,
                oath_type,
                args.period.unwrap_or(DEFAULT_PERIOD),
            ),
            oath_type,
            algorithm: args.algorithm.unwrap_or_default(),
            digits: args.digits.unwrap_or(DEFAULT_DIGITS),
            secret,
            counter: args.counter.unwrap_or(0),
            touch: args.touch,
        },
    })
}

/// A parsed account, with the command line's NAME and flags taking precedence.
fn from_spec(spec: AccountSpec, args: &AddArgs) -> Planned {
    let uri = spec.account;
    let oath_type = args.oath_type.unwrap_or(uri.oath_type);
    let (issuer, name) = match args.name.as_deref() {
        Some(text) => {
            let (issuer, name) = split_name(text);
            (issuer.map(str::to_owned), name.to_owned())
        }
        None => (uri.issuer.clone(), uri.name.clone()),
    };
    // Sources bound the counter to 32 bits; saturate rather than wrap if one did not.
    let counter = args
        .counter
        .unwrap_or_else(|| u32::try_from(uri.counter).unwrap_or(u32::MAX));
    Planned {
        at: spec.at,
        data: CredentialData {
            id: CredentialId::new(
                issuer.as_deref(),
                &name,
                oath_type,
                args.period.unwrap_or(uri.period),
            ),
            oath_type,
            algorithm: args.algorithm.unwrap_or(uri.algorithm),
            digits: args.digits.unwrap_or(uri.digits),
            secret: uri.secret.clone(),
            counter,
            touch: args.touch,
        },
    }
}

pub fn add(global: &GlobalArgs, args: &AddArgs) -> CliResult<()> {
    let (accounts, input_problems) = accounts_to_add(args)?;
    if let Some(slot) = args.slot {
        if !input_problems.is_empty() {
            return Err(refused(input_problems));
        }
        return super::otp_slot::program(global, &accounts, slot, args.force);
    }
    // With problems in the input, the keys are still asked what they would refuse, so
    // one answer names everything; a missing key then leaves the input's problems.
    let opened = backend::open(global).and_then(|backend| {
        let targets: Vec<usize> = if args.all_devices {
            (0..backend.keys().len()).collect()
        } else {
            vec![backend.single()?]
        };
        Ok((backend, targets))
    });
    let (mut backend, targets) = match opened {
        Ok(opened) => opened,
        Err(_) if !input_problems.is_empty() => return Err(refused(input_problems)),
        Err(error) => return Err(error),
    };
    // Every key is checked before the first write anywhere.
    let mut problems = Vec::new();
    let input_refused = !input_problems.is_empty();
    if input_refused {
        problems.push(refused(input_problems));
    }
    for &key in &targets {
        // A refused input never asks for a password just to find more problems.
        if accounts.is_empty() || (input_refused && backend.keys()[key].locked) {
            continue;
        }
        if let Err(error) = backend.check_import(key, &accounts, args.force) {
            problems.push(error);
        }
    }
    if let Some(error) = merge_problems(problems) {
        return Err(error);
    }
    if args.dry_run {
        return print_plan(global, backend.as_mut(), &targets, &accounts);
    }
    let mut added: Vec<(usize, Vec<Credential>)> = Vec::new();
    for &key in &targets {
        touch_note(&backend.keys()[key], args);
        match backend.import(key, &accounts, args.force) {
            Ok(credentials) => added.push((key, credentials)),
            Err(error) => return Err(undo_other_keys(backend.as_mut(), &added, error)),
        }
    }
    if args.generate
        && let Some(account) = accounts.first()
    {
        print_generated(global, &account.data)?;
    }
    let rows: Vec<(String, String)> = added
        .iter()
        .flat_map(|(key, credentials)| {
            let device = backend.keys()[*key].id.clone();
            credentials
                .iter()
                .map(move |c| (device.clone(), c.id_string()))
        })
        .collect();
    if global.json {
        let out: Vec<_> = rows
            .iter()
            .map(|(device, id)| serde_json::json!({"device": device, "id": id}))
            .collect();
        return Ok(print_json(&out)?);
    }
    for (device, id) in rows {
        eprintln!("Added {id} to key {device}");
    }
    Ok(())
}

/// A Nitrokey 3 waits for a touch to store a touch account and to delete an account it
/// replaces (reference §2.2), and says so only by blinking: tell the person first.
fn touch_note(key: &super::keys::Key, args: &AddArgs) {
    if key.kind == DeviceKind::Nitrokey3.name() && (args.touch || args.force) {
        eprintln!(
            "note: key {}: a Nitrokey 3 asks for a touch to store each touch account and to \
             replace each existing one; touch it when it blinks",
            key.id
        );
    }
}

/// One error with every key's problems (exit 2 if any is about the input, else 8).
fn merge_problems(errors: Vec<CliError>) -> Option<CliError> {
    if errors.len() <= 1 {
        return errors.into_iter().next();
    }
    let code = if errors.iter().all(|e| e.exit_code() == exit::UNSUPPORTED) {
        exit::UNSUPPORTED
    } else {
        exit::USAGE
    };
    let message = errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n");
    Some(CliError::Import { code, message })
}

/// A later key failed: take this run's accounts off the keys written before it.
fn undo_other_keys(
    backend: &mut dyn Backend,
    added: &[(usize, Vec<Credential>)],
    error: CliError,
) -> CliError {
    if added.is_empty() {
        return error;
    }
    let mut left = Vec::new();
    for (key, credentials) in added {
        for credential in credentials {
            if backend.delete(*key, credential).is_err() {
                left.push(format!(
                    "{} on key {}",
                    credential.id_string(),
                    backend.keys()[*key].id
                ));
            }
        }
    }
    let state = if left.is_empty() {
        "the accounts written to the other keys were removed again".to_owned()
    } else {
        format!("still on other keys: {}", left.join(", "))
    };
    CliError::Import {
        code: error.exit_code(),
        message: format!("{error}; {state}"),
    }
}

fn print_plan(
    global: &GlobalArgs,
    backend: &mut dyn Backend,
    targets: &[usize],
    accounts: &[Planned],
) -> CliResult<()> {
    let mut rows = Vec::new();
    for &key in targets {
        let existing = backend.list(key)?;
        let device = backend.keys()[key].id.clone();
        for account in accounts {
            let id = account.data.id.to_string();
            let replaces = existing
                .iter()
                .any(|c| c.raw_id == account.data.id.to_bytes());
            rows.push((device.clone(), id, replaces, account));
        }
    }
    if global.json {
        let out: Vec<_> = rows
            .iter()
            .map(|(device, id, replaces, account)| {
                serde_json::json!({
                    "device": device,
                    "id": id,
                    "action": if *replaces { "replace" } else { "add" },
                    "source": account.at.to_string(),
                    "type": account.data.oath_type.name().to_lowercase(),
                    "algorithm": account.data.algorithm.name(),
                    "digits": account.data.digits,
                    "period": account.data.id.period,
                    "touch": account.data.touch,
                })
            })
            .collect();
        return Ok(print_json(&out)?);
    }
    for (device, id, replaces, account) in &rows {
        let action = if *replaces { "replace" } else { "add" };
        println!("{action} {id} on key {device}  ({})", account.at);
    }
    eprintln!(
        "Dry run: {} account(s) checked, nothing written",
        rows.len()
    );
    Ok(())
}

/// The new seed's URI and a terminal QR code, printed once for a phone app.
fn print_generated(global: &GlobalArgs, account: &CredentialData) -> CliResult<()> {
    let uri = OtpAuthUri {
        oath_type: account.oath_type,
        issuer: account.id.issuer.clone(),
        name: account.id.name.clone(),
        secret: account.secret.clone(),
        algorithm: account.algorithm,
        digits: account.digits,
        period: account.id.period,
        counter: u64::from(account.counter),
    };
    let uri = Zeroizing::new(uri.to_uri());
    println!("{}", uri.as_str());
    // The QR code is for a phone app; JSON consumers get the URI line only.
    if !global.json {
        println!("{}", terminal_qr(&uri)?.as_str());
    }
    Ok(())
}

/// `text` as a QR code of Unicode half blocks (two modules a character row), with the quiet
/// zone. Light modules are drawn as blocks: on the usual dark-background terminal the code
/// then shows dark-on-light, as scanners expect.
fn terminal_qr(text: &str) -> CliResult<Zeroizing<String>> {
    use qrcode::render::unicode::Dense1x2;
    let code = qrcode::QrCode::new(text.as_bytes())
        .map_err(|e| CliError::Failure(format!("cannot draw the QR code: {e}")))?;
    Ok(Zeroizing::new(
        code.render::<Dense1x2>()
            .dark_color(Dense1x2::Light)
            .light_color(Dense1x2::Dark)
            .quiet_zone(true)
            .build(),
    ))
}
