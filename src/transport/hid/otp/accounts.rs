//! YubiKey OTP slots as TOTP accounts: a slot holding an HMAC-SHA1 challenge-response
//! secret is the account `slot 1` / `slot 2` (SHA1, 6 digits, 30 s); its code is RFC 4226
//! truncation of the slot's HMAC of the 8-byte big-endian RFC 6238 time step (what `ykman
//! otp calculate --totp` does).

use super::{OtpClient, OtpError, Status, totp_from_hmac};
use crate::oath::code::totp_window;
use crate::oath::{Code, CodeEntry, Credential, CredentialId};
use crate::otp::{HashAlgorithm, OathType};
use crate::transport::hid::HidConnection;

/// TOTP period of a slot account, seconds (a slot cannot store one).
pub const SLOT_PERIOD: u32 = 30;
/// Digits of a slot account's code.
pub const SLOT_DIGITS: u8 = 6;

/// The account slot 1 or 2 is shown as.
pub fn slot_credential(slot: u8, touch: bool) -> Credential {
    let id = CredentialId::new(None, &format!("slot {slot}"), OathType::Totp, SLOT_PERIOD);
    Credential {
        raw_id: id.to_bytes(),
        id,
        oath_type: OathType::Totp,
        algorithm: Some(HashAlgorithm::Sha1),
        digits: Some(SLOT_DIGITS),
        touch: Some(touch),
    }
}

/// The slot number behind a slot account.
pub fn slot_of(credential: &Credential) -> Option<u8> {
    match credential.id.name.as_str() {
        "slot 1" => Some(1),
        "slot 2" => Some(2),
        _ => None,
    }
}

/// Configured slots as accounts (touch as the status reports it).
pub fn slot_accounts(status: &Status) -> Vec<Credential> {
    (1..=2)
        .filter(|&slot| status.is_configured(slot))
        .map(|slot| slot_credential(slot, status.is_touch_triggered(slot)))
        .collect()
}

/// The code of one slot account at `timestamp` (Unix seconds); waits for a touch when the
/// slot needs one.
pub fn slot_code<C: HidConnection>(
    client: &mut OtpClient<C>,
    credential: &Credential,
    timestamp: u64,
) -> Result<Code, OtpError> {
    let slot = slot_of(credential).ok_or(OtpError::BadSlot)?;
    let step = timestamp / u64::from(SLOT_PERIOD);
    let hmac = client.calculate_hmac(slot, &step.to_be_bytes())?;
    Ok(code_of(&hmac, timestamp))
}

fn slot_code_without_touch<C: HidConnection>(
    client: &mut OtpClient<C>,
    credential: &Credential,
    timestamp: u64,
) -> Result<Code, OtpError> {
    let slot = slot_of(credential).ok_or(OtpError::BadSlot)?;
    let step = timestamp / u64::from(SLOT_PERIOD);
    let hmac = client.calculate_hmac_without_touch(slot, &step.to_be_bytes())?;
    Ok(code_of(&hmac, timestamp))
}

fn code_of(hmac: &[u8; 20], timestamp: u64) -> Code {
    let (valid_from, valid_to) = totp_window(timestamp, SLOT_PERIOD);
    Code {
        value: totp_from_hmac(hmac, u32::from(SLOT_DIGITS)),
        valid_from,
        valid_to,
    }
}

/// Codes of every slot needing no touch; touch slots without a code (also a slot whose
/// touch the status did not announce: the key is left as soon as it asks for one). A
/// configured slot that refuses a challenge (not challenge-response) is left out.
pub fn codes<C: HidConnection>(
    client: &mut OtpClient<C>,
    timestamp: u64,
) -> Result<Vec<CodeEntry>, OtpError> {
    let status = client.read_status()?;
    let mut entries = Vec::new();
    for mut credential in slot_accounts(&status) {
        let code = if credential.touch == Some(true) {
            None
        } else {
            match slot_code_without_touch(client, &credential, timestamp) {
                Ok(code) => Some(code),
                Err(OtpError::TouchRequired) => {
                    credential.touch = Some(true);
                    None
                }
                Err(OtpError::Rejected) => continue,
                Err(error) => return Err(error),
            }
        };
        entries.push(CodeEntry { credential, code });
    }
    Ok(entries)
}
