//! HID keys for direct mode: the Nitrokey 3 Secrets App over CTAPHID (merged with the
//! same key found over CCID: one key, two transports) and YubiKey OTP applications, whose
//! HMAC-SHA1 challenge-response slots are shown as TOTP accounts `slot 1` / `slot 2`
//! (challenge = the 8-byte big-endian RFC 6238 time step; code = RFC 4226 truncation).

use std::collections::HashMap;

use tracing::{debug, warn};

use super::error::{CliError, CliResult};
use super::keys::{Key, KeyAccess, KeyFilter};
use crate::oath::{Code, CodeEntry, Credential, OathError, Session, Version};
use crate::transport::hid::discovery::{self, HidKey, HidKind};
use crate::transport::hid::otp::OtpError;
use crate::transport::hid::otp::accounts::{self, slot_accounts};

pub use crate::transport::hid::otp::accounts::{SLOT_DIGITS, SLOT_PERIOD};

/// Add the HID keys that pass `filter` to `keys` (merging a Secrets App already found over
/// CCID), prefetching codes at `codes_at` for new unlocked ones. Failures are logged.
pub fn discover(
    filter: &KeyFilter,
    codes_at: Option<u64>,
    keys: &mut Vec<Key>,
    prefetched: &mut HashMap<usize, (u64, Vec<CodeEntry>)>,
) {
    for hid in discovery::enumerate(&discovery::bridge_sockets(&filter.hid_sockets)) {
        let label = hid.label();
        if let Some(reader) = &filter.reader
            && !label.to_lowercase().contains(&reader.to_lowercase())
        {
            continue;
        }
        let found = match hid.kind {
            HidKind::SecretsApp => secrets_key(&hid, codes_at, keys),
            HidKind::YubiOtp => otp_key(&hid).map(|key| key.map(|key| (key, None))),
        };
        match found {
            Ok(Some((key, codes))) if filter.accepts(&key) => {
                if let Some(codes) = codes {
                    prefetched.insert(keys.len(), codes);
                }
                keys.push(key);
            }
            Ok(_) => {}
            Err(error) => warn!(device = label, %error, "HID key did not answer; skipped"),
        }
    }
}

type Found = Option<(Key, Option<(u64, Vec<CodeEntry>)>)>;

fn secrets_key(hid: &HidKey, codes_at: Option<u64>, keys: &mut [Key]) -> CliResult<Found> {
    let label = hid.label();
    let transport = hid.path.open_secrets().map_err(OathError::Transport)?;
    let mut session = Session::open(transport, Some(&label))?;
    let id = session.device_id();
    if let Some(known) = keys.iter_mut().find(|k| k.id == id) {
        // The same key over CCID: one key with two ways in.
        known.transports.push("hid".to_owned());
        known.access.hid = Some(hid.path.clone());
        return Ok(None);
    }
    let info = session.info();
    let key = Key {
        id,
        reader: label,
        kind: session.quirks().kind.name().to_owned(),
        firmware: info.version,
        serial: info.serial,
        locked: session.has_password(),
        capacity: session.quirks().capacity,
        transports: vec!["hid".to_owned()],
        access: KeyAccess {
            hid: Some(hid.path.clone()),
            ..KeyAccess::default()
        },
    };
    let codes = match codes_at {
        Some(at) if !session.is_locked() => match session.calculate_all(at) {
            Ok(entries) => Some((at, entries)),
            Err(error) => {
                debug!(%error, "no codes during HID discovery");
                None
            }
        },
        _ => None,
    };
    Ok(Some((key, codes)))
}

fn otp_key(hid: &HidKey) -> CliResult<Option<Key>> {
    let mut client = hid.path.open_otp().map_err(otp_error)?;
    let status = client.read_status().map_err(otp_error)?;
    let serial = client.serial().ok();
    let [major, minor, patch] = status.version;
    Ok(Some(Key {
        id: match serial {
            Some(serial) => format!("yubikey-otp-{serial}"),
            None => format!("yubikey-otp-{}", hid.path.display()),
        },
        reader: hid.label(),
        kind: "YubiKey OTP".to_owned(),
        firmware: Version(major, minor, patch),
        serial,
        locked: false,
        capacity: Some(2),
        transports: vec!["hid".to_owned()],
        access: KeyAccess {
            hid: Some(hid.path.clone()),
            otp: true,
            ..KeyAccess::default()
        },
    }))
}

/// OTP failures as CLI errors with the documented exit codes.
pub fn otp_error(error: impl Into<OtpError>) -> CliError {
    match error.into() {
        OtpError::TouchTimeout => OathError::TouchTimeout.into(),
        OtpError::Hid(crate::transport::hid::HidError::Disconnected) => {
            CliError::NoKey("the YubiKey was removed".into())
        }
        other => CliError::Failure(format!("YubiKey OTP: {other}")),
    }
}

/// The accounts of an OTP key.
pub fn list(key: &Key) -> CliResult<Vec<Credential>> {
    let status = open(key)?.read_status().map_err(otp_error)?;
    Ok(slot_accounts(&status))
}

/// Codes of every slot that needs no touch; touch slots without a code.
pub fn codes(key: &Key, timestamp: u64) -> CliResult<Vec<CodeEntry>> {
    accounts::codes(&mut open(key)?, timestamp).map_err(otp_error)
}

/// One slot's codes at each time (waits for the touch a touch slot needs).
pub fn calculate(key: &Key, credential: &Credential, at: &[u64]) -> CliResult<Vec<Code>> {
    let mut client = open(key)?;
    at.iter()
        .map(|&t| accounts::slot_code(&mut client, credential, t).map_err(otp_error))
        .collect()
}

/// Open the OTP application of `key` (the commands print their own touch prompts).
pub fn open(
    key: &Key,
) -> CliResult<crate::transport::hid::otp::OtpClient<Box<dyn crate::transport::hid::HidConnection>>>
{
    let path = key
        .access
        .hid
        .as_ref()
        .ok_or_else(|| CliError::NoKey(format!("key {} has no HID interface", key.id)))?;
    path.open_otp().map_err(otp_error)
}
