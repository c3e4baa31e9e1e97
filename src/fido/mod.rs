//! FIDO2 authenticators: the `hmac-secret` seam that seals a virtual OATH key, the
//! authenticators behind it, and the sealed file format.
//!
//! - [`HmacSecretAuthenticator`]: the one thing sealing needs from a FIDO2 key (CTAP 2.1
//!   §12.5 `hmac-secret`: make a credential, then HMAC-SHA-256(CredRandom, salt) with user
//!   presence);
//! - [`ctap`]: real keys through `ctap-hid-fido2` (enumeration, getInfo, WINK and the two
//!   calls; nothing else);
//! - [`soft`]: a software authenticator (a stand-in *device* for tests, state in a file);
//! - [`sealed`]: the versioned sealed file (docs/sealed-virtual-key.md);
//! - [`vault`]: open, hold and re-seal a sealed virtual key.

pub mod ctap;
pub mod sealed;
pub mod soft;
pub mod vault;

use std::path::PathBuf;
use std::sync::Arc;

use thiserror::Error;
use zeroize::Zeroizing;

/// The relying party id of our credentials (CTAP 2.1 §6.1 `rp.id`). Not a web origin: no
/// browser ever asks for it, so a site cannot get assertions for it.
pub const RELYING_PARTY_ID: &str = "io.github.oathbridge";
/// `hmac-secret` salt length (bytes, CTAP 2.1 §12.5: salt1 is 32 bytes).
pub const SALT_LEN: usize = 32;
/// `hmac-secret` output length (bytes): HMAC-SHA-256.
pub const SECRET_LEN: usize = 32;

/// An `hmac-secret` output: the input keying material of the file key.
pub type HmacSecret = Zeroizing<[u8; SECRET_LEN]>;

/// Why an authenticator could not answer.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FidoError {
    #[error("no FIDO2 key found{0}")]
    NoDevice(String),
    #[error("several FIDO2 keys are connected; name one with --fido /dev/hidrawN")]
    SeveralDevices,
    /// CTAP2_ERR_NO_CREDENTIALS: this authenticator did not make the credential.
    #[error("this FIDO2 key does not hold the credential of the sealed file (a different key?)")]
    CredentialNotFound,
    #[error("touch not detected in time on the FIDO2 key")]
    TouchTimeout,
    #[error("the FIDO2 key needs its PIN")]
    PinRequired,
    #[error("wrong FIDO2 PIN{}", retries.map_or(String::new(), |n| format!(" ({n} tries left)")))]
    WrongPin { retries: Option<u32> },
    #[error("the FIDO2 PIN is blocked (too many wrong PINs); reset the FIDO application")]
    PinBlocked,
    #[error("the FIDO2 key does not support the hmac-secret extension")]
    NoHmacSecret,
    #[error("FIDO2 key: {0}")]
    Device(String),
}

/// The `hmac-secret` seam (CTAP 2.1 §12.5). Calls block (user presence); run them on a
/// worker thread. PINs are the CTAP clientPIN (§6.5), given only when [`pin_set`] says so.
///
/// [`pin_set`]: HmacSecretAuthenticator::pin_set
pub trait HmacSecretAuthenticator: Send + Sync {
    /// A short description for messages (product and where it is; never a secret).
    fn describe(&self) -> String;
    /// The device node (hidraw, or the soft authenticator's file) behind this authenticator
    /// now, so a holder can notice the key leaving. None when unknown.
    fn device_node(&self) -> Option<PathBuf> {
        None
    }
    /// Whether the authenticator has a clientPIN set (then every call needs it).
    fn pin_set(&self) -> Result<bool, FidoError>;
    /// authenticatorMakeCredential for [`RELYING_PARTY_ID`] with `hmac-secret: true`, user
    /// presence (and UV through the PIN when set). Returns the credential id (bytes).
    fn make_credential(&self, pin: Option<&str>) -> Result<Vec<u8>, FidoError>;
    /// authenticatorGetAssertion for `credential_id` with `hmac-secret` salt1 = `salt`, user
    /// presence (and the PIN when set): the 32-byte output1.
    fn hmac_secret(
        &self,
        credential_id: &[u8],
        salt: &[u8; SALT_LEN],
        pin: Option<&str>,
    ) -> Result<HmacSecret, FidoError>;
}

/// Which authenticator to use: `auto` (the one connected FIDO2 key), a hidraw path, or
/// `soft:FILE` (the software authenticator, for tests and demos: a stand-in device).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthenticatorSpec {
    Auto,
    Hidraw(PathBuf),
    Soft(PathBuf),
}

/// Environment variable naming the authenticator when no flag does (same syntax).
pub const AUTHENTICATOR_ENV: &str = "OATHBRIDGE_FIDO";

impl std::str::FromStr for AuthenticatorSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "auto" {
            Ok(Self::Auto)
        } else if let Some(file) = s.strip_prefix("soft:") {
            if file.is_empty() {
                return Err("soft: needs a file, e.g. soft:/tmp/authenticator.json".into());
            }
            Ok(Self::Soft(file.into()))
        } else if s.starts_with("/dev/") {
            Ok(Self::Hidraw(s.into()))
        } else {
            Err(format!(
                "unknown FIDO2 key {s:?} (expected auto, /dev/hidrawN or soft:FILE)"
            ))
        }
    }
}

impl AuthenticatorSpec {
    /// The flag's value, else [`AUTHENTICATOR_ENV`], else `auto`.
    pub fn resolve(flag: Option<&AuthenticatorSpec>) -> Result<Self, String> {
        if let Some(spec) = flag {
            return Ok(spec.clone());
        }
        match std::env::var(AUTHENTICATOR_ENV) {
            Ok(value) if !value.is_empty() => value
                .parse()
                .map_err(|e| format!("{AUTHENTICATOR_ENV}: {e}")),
            _ => Ok(Self::Auto),
        }
    }

    /// Open the authenticator (a real key is looked up now; the soft one reads its file).
    pub fn open(&self) -> Result<Arc<dyn HmacSecretAuthenticator>, FidoError> {
        match self {
            Self::Auto => Ok(Arc::new(ctap::CtapAuthenticator::find(None)?)),
            Self::Hidraw(path) => Ok(Arc::new(ctap::CtapAuthenticator::find(Some(path))?)),
            Self::Soft(file) => Ok(Arc::new(soft::SoftAuthenticator::open(file)?)),
        }
    }
}

/// The spec itself is an authenticator that looks its device up on every call: the daemon
/// starts without the FIDO2 key plugged in, and finds it when asked to unlock.
impl HmacSecretAuthenticator for AuthenticatorSpec {
    fn describe(&self) -> String {
        match self {
            Self::Auto => "(the connected FIDO2 key)".into(),
            Self::Hidraw(path) => path.display().to_string(),
            Self::Soft(file) => format!("software authenticator {}", file.display()),
        }
    }

    fn device_node(&self) -> Option<PathBuf> {
        match self {
            Self::Auto => self.open().ok()?.device_node(),
            Self::Hidraw(path) => Some(path.clone()),
            Self::Soft(file) => Some(file.clone()),
        }
    }

    fn pin_set(&self) -> Result<bool, FidoError> {
        self.open()?.pin_set()
    }

    fn make_credential(&self, pin: Option<&str>) -> Result<Vec<u8>, FidoError> {
        self.open()?.make_credential(pin)
    }

    fn hmac_secret(
        &self,
        credential_id: &[u8],
        salt: &[u8; SALT_LEN],
        pin: Option<&str>,
    ) -> Result<HmacSecret, FidoError> {
        self.open()?.hmac_secret(credential_id, salt, pin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse() {
        assert_eq!("auto".parse(), Ok(AuthenticatorSpec::Auto));
        assert_eq!(
            "soft:/tmp/a.json".parse(),
            Ok(AuthenticatorSpec::Soft("/tmp/a.json".into()))
        );
        assert_eq!(
            "/dev/hidraw3".parse(),
            Ok(AuthenticatorSpec::Hidraw("/dev/hidraw3".into()))
        );
        assert!("soft:".parse::<AuthenticatorSpec>().is_err());
        assert!("yubikey".parse::<AuthenticatorSpec>().is_err());
    }

    #[test]
    fn pin_errors_say_retries_without_the_pin() {
        let text = FidoError::WrongPin { retries: Some(7) }.to_string();
        assert_eq!(text, "wrong FIDO2 PIN (7 tries left)");
    }
}
