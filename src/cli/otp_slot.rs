//! `add --slot 1|2`: program a YubiKey OTP slot over HID with a TOTP seed as an
//! HMAC-SHA1 challenge-response configuration (what `ykman otp chalresp` writes).

use super::GlobalArgs;
use super::error::{CliError, CliResult, exit};
use super::hid_keys::{SLOT_DIGITS, SLOT_PERIOD, otp_error};
use super::keys::{Keys, single_index};
use crate::import::plan::Planned;
use crate::otp::{HashAlgorithm, OathType};
use crate::transport::hid::otp::{HMAC_KEY_SIZE, OtpError, hmac_sha1_config};

fn unsupported(message: String) -> CliError {
    CliError::Import {
        code: exit::UNSUPPORTED,
        message,
    }
}

/// Check that `account` fits a slot: TOTP, SHA1, 6 digits, 30 s, seed ≤ 20 bytes.
fn check(account: &Planned) -> CliResult<()> {
    let data = &account.data;
    let mut problems = Vec::new();
    if data.oath_type != OathType::Totp {
        problems.push("a slot gives TOTP codes only".to_owned());
    }
    if data.algorithm != HashAlgorithm::Sha1 {
        problems.push("a slot computes HMAC-SHA1 only".to_owned());
    }
    if data.digits != SLOT_DIGITS {
        problems.push(format!("slot codes have {SLOT_DIGITS} digits"));
    }
    if data.id.period != SLOT_PERIOD {
        problems.push(format!("slot codes use a {SLOT_PERIOD} s period"));
    }
    if data.secret.len() > HMAC_KEY_SIZE {
        problems.push(format!(
            "the seed has {} bytes; a slot holds at most {HMAC_KEY_SIZE}",
            data.secret.len()
        ));
    }
    if data.secret.is_empty() {
        problems.push("the seed is empty".to_owned());
    }
    if problems.is_empty() {
        return Ok(());
    }
    Err(unsupported(format!(
        "{}: cannot go into a YubiKey OTP slot: {}",
        account.at,
        problems.join("; ")
    )))
}

/// Write `accounts` (exactly one) into slot `slot` of the one YubiKey OTP key found.
pub fn program(global: &GlobalArgs, accounts: &[Planned], slot: u8, force: bool) -> CliResult<()> {
    let [account] = accounts else {
        return Err(CliError::Usage(format!(
            "a slot holds one account; the input has {}",
            accounts.len()
        )));
    };
    check(account)?;
    let found = Keys::discover(&global.filter())?;
    let otp_keys: Vec<_> = found
        .keys
        .iter()
        .filter(|k| k.access.otp)
        .cloned()
        .collect();
    if otp_keys.is_empty() {
        return Err(CliError::NoKey(
            "no YubiKey OTP interface found (plugged in? readable by you? see udev/)".into(),
        ));
    }
    let key = &otp_keys[single_index(&otp_keys)?];
    let mut client = super::hid_keys::open(key)?;
    let status = client.read_status().map_err(otp_error)?;
    if status.is_configured(slot) && !force {
        return Err(CliError::Input(format!(
            "slot {slot} of key {} is already configured; --force overwrites it",
            key.id
        )));
    }
    let config = hmac_sha1_config(&account.data.secret, account.data.touch, &[0; 6])
        .ok_or_else(|| unsupported(format!("the seed is longer than {HMAC_KEY_SIZE} bytes")))?;
    match client.write_config(slot, &config) {
        Ok(_) => {}
        Err(OtpError::Rejected) if status.is_configured(slot) => {
            return Err(unsupported(format!(
                "slot {slot} of key {} refused the new configuration: it is protected by an \
                 access code (not supported here; remove it with `ykman otp delete {slot} \
                 --access-code …`)",
                key.id
            )));
        }
        Err(error) => return Err(otp_error(error)),
    }
    eprintln!(
        "Programmed slot {slot} of key {} (TOTP, SHA1, {SLOT_DIGITS} digits, {SLOT_PERIOD} s{})",
        key.id,
        if account.data.touch { ", touch" } else { "" }
    );
    Ok(())
}
