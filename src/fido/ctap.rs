//! Real FIDO2 keys through `ctap-hid-fido2`: enumeration, authenticatorGetInfo, CTAPHID
//! WINK / authenticatorSelection, and the two `hmac-secret` calls. Kept thin: everything
//! else (sealing, files, prompts) is tested through the software authenticator.
//!
//! The library panics when hidapi cannot start and prints keep-alive messages to stdout by
//! default, so every call goes through [`guarded`] (no hidraw device: no call at all; a
//! panic becomes an error) with keep-alive messages off. Calls block (user presence).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use ctap_hid_fido2::fidokey::get_assertion::get_assertion_params::Extension as AssertionExtension;
use ctap_hid_fido2::fidokey::get_assertion::get_assertion_params::GetAssertionArgsBuilder;
use ctap_hid_fido2::fidokey::make_credential::Extension as CredentialExtension;
use ctap_hid_fido2::fidokey::make_credential::MakeCredentialArgsBuilder;
use ctap_hid_fido2::{FidoKeyHid, FidoKeyHidFactory, HidParam, LibCfg};
use serde::Serialize;
use zeroize::Zeroizing;

use super::{FidoError, HmacSecret, HmacSecretAuthenticator, RELYING_PARTY_ID, SALT_LEN};

/// What `devices` shows of a FIDO HID authenticator (authenticatorGetInfo, CTAP 2.1 §6.4).
#[derive(Debug, Clone, Serialize)]
pub struct FidoKeyInfo {
    /// The hidraw node, e.g. `/dev/hidraw3`: the id `--fido` and `--identify` take.
    pub path: String,
    pub product: String,
    pub vendor_id: u16,
    pub product_id: u16,
    /// AAGUID as 32 lower-case hex digits (empty when getInfo failed).
    pub aaguid: String,
    /// `versions`, e.g. ["FIDO_2_0", "FIDO_2_1", "U2F_V2"].
    pub versions: Vec<String>,
    /// `firmwareVersion` (0 when not reported).
    pub firmware: u32,
    /// `options.clientPin`: Some(true) PIN set, Some(false) none, None no clientPIN.
    pub pin_set: Option<bool>,
    pub hmac_secret: bool,
    /// Why getInfo failed, if it did (no access to the hidraw node, ...).
    pub error: Option<String>,
}

/// Whether any hidraw node exists: without one hidapi has nothing to find, and not calling
/// it at all avoids its init on machines without HID support.
fn hidraw_present() -> bool {
    std::fs::read_dir("/dev").is_ok_and(|dir| {
        dir.flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("hidraw"))
    })
}

/// Run a library call, turning a panic (hidapi init) into an error.
fn guarded<R>(call: impl FnOnce() -> Result<R, FidoError>) -> Result<R, FidoError> {
    catch_unwind(AssertUnwindSafe(call))
        .unwrap_or_else(|_| Err(FidoError::Device("the HID library failed to start".into())))
}

fn config() -> LibCfg {
    let mut cfg = LibCfg::init();
    cfg.enable_keep_alive_msg = false;
    cfg.keep_alive_msg = String::new();
    cfg.keep_alive_msg_to_stderr = true;
    cfg
}

/// Map a library error (an `anyhow::Error` whose text names the CTAP status) to ours.
fn map_error(error: impl std::fmt::Display) -> FidoError {
    let text = error.to_string();
    let has = |name: &str| text.contains(name);
    if has("CTAP2_ERR_NO_CREDENTIALS") || has("CTAP2_ERR_INVALID_CREDENTIAL") {
        FidoError::CredentialNotFound
    } else if has("CTAP2_ERR_USER_ACTION_TIMEOUT") || has("CTAP2_ERR_ACTION_TIMEOUT") {
        FidoError::TouchTimeout
    } else if has("CTAP2_ERR_PIN_INVALID") {
        FidoError::WrongPin { retries: None }
    } else if has("CTAP2_ERR_PIN_BLOCKED") || has("CTAP2_ERR_PIN_AUTH_BLOCKED") {
        FidoError::PinBlocked
    } else if has("CTAP2_ERR_PIN_REQUIRED") || has("CTAP2_ERR_PUAT_REQUIRED") {
        FidoError::PinRequired
    } else if has("CTAP2_ERR_OPERATION_DENIED") {
        FidoError::TouchTimeout
    } else {
        // The library's text names CTAP status codes, never our secrets.
        FidoError::Device(text.lines().next().unwrap_or("error").to_owned())
    }
}

/// Every FIDO HID authenticator (usage page 0xF1D0), with its getInfo. Empty, without
/// touching hidapi, when no hidraw node exists.
pub fn list() -> Vec<FidoKeyInfo> {
    if !hidraw_present() {
        return Vec::new();
    }
    let devices = guarded(|| Ok(ctap_hid_fido2::get_fidokey_devices())).unwrap_or_default();
    devices
        .into_iter()
        .filter_map(|device| {
            let HidParam::Path(path) = &device.param else {
                return None;
            };
            let mut info = FidoKeyInfo {
                path: path.clone(),
                product: device.product_string.clone(),
                vendor_id: device.vid,
                product_id: device.pid,
                aaguid: String::new(),
                versions: Vec::new(),
                firmware: 0,
                pin_set: None,
                hmac_secret: false,
                error: None,
            };
            match guarded(|| open(Path::new(path))?.get_info().map_err(map_error)) {
                Ok(get_info) => {
                    info.aaguid = data_encoding::HEXLOWER.encode(&get_info.aaguid);
                    info.versions = get_info.versions.clone();
                    info.firmware = get_info.firmware_version;
                    info.pin_set = get_info
                        .options
                        .iter()
                        .find(|(name, _)| name == "clientPin")
                        .map(|(_, set)| *set);
                    info.hmac_secret = get_info.extensions.iter().any(|e| e == "hmac-secret");
                }
                Err(error) => info.error = Some(error.to_string()),
            }
            Some(info)
        })
        .collect()
}

fn open(path: &Path) -> Result<FidoKeyHid, FidoError> {
    let param = HidParam::Path(path.to_string_lossy().into_owned());
    FidoKeyHidFactory::create_by_params(&[param], &config()).map_err(map_error)
}

/// Make the key at `path` show itself: CTAPHID WINK when it answers, else CTAP 2.1
/// authenticatorSelection (the key blinks until touched).
pub fn identify(path: &Path) -> Result<(), FidoError> {
    if !path.exists() {
        return Err(FidoError::NoDevice(format!(" at {}", path.display())));
    }
    guarded(|| {
        let key = open(path)?;
        match key.wink() {
            Ok(()) => Ok(()),
            Err(_) => key.selection().map_err(map_error),
        }
    })
}

/// A real FIDO2 key, found by hidraw path or as the only one connected.
pub struct CtapAuthenticator {
    path: PathBuf,
    product: String,
}

impl CtapAuthenticator {
    /// The key at `path`, or with `None` the only FIDO2 key connected.
    pub fn find(path: Option<&Path>) -> Result<Self, FidoError> {
        let keys = list();
        let key = match path {
            Some(path) => keys
                .into_iter()
                .find(|k| Path::new(&k.path) == path)
                .ok_or_else(|| FidoError::NoDevice(format!(" at {}", path.display())))?,
            None => {
                let mut keys = keys;
                match keys.len() {
                    0 => return Err(FidoError::NoDevice(String::new())),
                    1 => keys.remove(0),
                    _ => return Err(FidoError::SeveralDevices),
                }
            }
        };
        if let Some(error) = key.error {
            return Err(FidoError::Device(error));
        }
        if !key.hmac_secret {
            return Err(FidoError::NoHmacSecret);
        }
        Ok(Self {
            path: key.path.into(),
            product: key.product,
        })
    }
}

/// A fresh client data hash: the key signs it, nobody checks the signature.
fn challenge() -> [u8; 32] {
    let mut challenge = [0u8; 32];
    let _ = getrandom::fill(&mut challenge);
    challenge
}

impl HmacSecretAuthenticator for CtapAuthenticator {
    fn describe(&self) -> String {
        format!("{} at {}", self.product, self.path.display())
    }

    fn device_node(&self) -> Option<PathBuf> {
        Some(self.path.clone())
    }

    fn pin_set(&self) -> Result<bool, FidoError> {
        guarded(|| {
            let info = open(&self.path)?.get_info().map_err(map_error)?;
            Ok(info
                .options
                .iter()
                .any(|(name, set)| name == "clientPin" && *set))
        })
    }

    fn make_credential(&self, pin: Option<&str>) -> Result<Vec<u8>, FidoError> {
        guarded(|| {
            let key = open(&self.path)?;
            let challenge = challenge();
            let extensions = [CredentialExtension::HmacSecret(Some(true))];
            let mut builder = MakeCredentialArgsBuilder::new(RELYING_PARTY_ID, &challenge)
                .extensions(&extensions);
            builder = match pin {
                Some(pin) => builder.pin(pin),
                None => builder.without_pin_and_uv(),
            };
            let attestation = key
                .make_credential_with_args(&builder.build())
                .map_err(map_error)?;
            Ok(attestation.credential_descriptor.id)
        })
    }

    fn hmac_secret(
        &self,
        credential_id: &[u8],
        salt: &[u8; SALT_LEN],
        pin: Option<&str>,
    ) -> Result<HmacSecret, FidoError> {
        guarded(|| {
            let key = open(&self.path)?;
            let challenge = challenge();
            let extensions = [AssertionExtension::HmacSecret(Some(*salt))];
            let mut builder = GetAssertionArgsBuilder::new(RELYING_PARTY_ID, &challenge)
                .credential_id(credential_id)
                .extensions(&extensions);
            builder = match pin {
                Some(pin) => builder.pin(pin),
                None => builder.without_pin_and_uv(),
            };
            let assertions = key
                .get_assertion_with_args(&builder.build())
                .map_err(map_error)?;
            assertions
                .iter()
                .flat_map(|a| a.extensions.iter())
                .find_map(|e| match e {
                    AssertionExtension::HmacSecret(Some(output)) => Some(Zeroizing::new(*output)),
                    _ => None,
                })
                .ok_or(FidoError::NoHmacSecret)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_errors_map_to_ours() {
        let map = |text: &str| map_error(text);
        assert_eq!(
            map("0x2E CTAP2_ERR_NO_CREDENTIALS    No valid credentials provided."),
            FidoError::CredentialNotFound
        );
        assert_eq!(
            map("0x31 CTAP2_ERR_PIN_INVALID   PIN Invalid."),
            FidoError::WrongPin { retries: None }
        );
        assert_eq!(map("0x32 CTAP2_ERR_PIN_BLOCKED"), FidoError::PinBlocked);
        assert_eq!(
            map("0x2F CTAP2_ERR_USER_ACTION_TIMEOUT"),
            FidoError::TouchTimeout
        );
    }

    #[test]
    fn guarded_turns_a_panic_into_an_error() {
        let result: Result<(), FidoError> = guarded(|| panic!("hidapi init"));
        assert!(matches!(result, Err(FidoError::Device(_))));
    }
}
