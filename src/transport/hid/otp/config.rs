//! Slot configurations and HMAC-SHA1 challenge-response as TOTP (RFC 6238 over the
//! slot's HMAC-SHA1, the way `ykman otp calculate --totp` uses it).

use zeroize::Zeroizing;

use super::{SLOT_DATA_SIZE, crc16};

/// Largest HMAC-SHA1 key a slot holds, bytes (16 in the key field + 4 in the uid field).
pub const HMAC_KEY_SIZE: usize = 20;
/// Bytes of a slot configuration (`ykdef.h` `CONFIG_SIZE`).
pub const CONFIG_SIZE: usize = 52;
/// Bytes of an access code.
pub const ACC_CODE_SIZE: usize = 6;

const FIXED_SIZE: usize = 16;
const UID_SIZE: usize = 6;
const KEY_SIZE: usize = 16;
/// Offsets inside the configuration.
pub const UID_OFFSET: usize = FIXED_SIZE;
pub const KEY_OFFSET: usize = UID_OFFSET + UID_SIZE;
pub const ACC_CODE_OFFSET: usize = KEY_OFFSET + KEY_SIZE;
pub const EXT_FLAGS_OFFSET: usize = ACC_CODE_OFFSET + ACC_CODE_SIZE + 1;
pub const TKT_FLAGS_OFFSET: usize = EXT_FLAGS_OFFSET + 1;
pub const CFG_FLAGS_OFFSET: usize = TKT_FLAGS_OFFSET + 1;

/// Flag values (`ykdef.h`).
pub mod flags {
    pub const EXT_SERIAL_API_VISIBLE: u8 = 0x04;
    pub const EXT_ALLOW_UPDATE: u8 = 0x20;
    pub const TKT_CHAL_RESP: u8 = 0x40;
    pub const CFG_CHAL_HMAC: u8 = 0x22;
    pub const CFG_HMAC_LT64: u8 = 0x04;
    pub const CFG_CHAL_BTN_TRIG: u8 = 0x08;
}

/// The write payload for an HMAC-SHA1 challenge-response slot holding `key` (at most
/// [`HMAC_KEY_SIZE`] bytes, zero-padded; HMAC pads keys with zeros anyway, so the padding
/// does not change any response), with the HMAC_LT64 flag (challenges shorter than 64
/// bytes), no new access code, and `current_access_code` (zeros when none).
/// `None` for a longer key.
pub fn hmac_sha1_config(
    key: &[u8],
    require_touch: bool,
    current_access_code: &[u8; ACC_CODE_SIZE],
) -> Option<Zeroizing<Vec<u8>>> {
    if key.len() > HMAC_KEY_SIZE {
        return None;
    }
    let mut padded = Zeroizing::new([0u8; HMAC_KEY_SIZE]);
    padded[..key.len()].copy_from_slice(key);
    let mut config = Zeroizing::new(vec![0u8; CONFIG_SIZE]);
    config[KEY_OFFSET..KEY_OFFSET + KEY_SIZE].copy_from_slice(&padded[..KEY_SIZE]);
    config[UID_OFFSET..UID_OFFSET + HMAC_KEY_SIZE - KEY_SIZE].copy_from_slice(&padded[KEY_SIZE..]);
    config[EXT_FLAGS_OFFSET] = flags::EXT_SERIAL_API_VISIBLE | flags::EXT_ALLOW_UPDATE;
    config[TKT_FLAGS_OFFSET] = flags::TKT_CHAL_RESP;
    config[CFG_FLAGS_OFFSET] = flags::CFG_CHAL_HMAC
        | flags::CFG_HMAC_LT64
        | if require_touch {
            flags::CFG_CHAL_BTN_TRIG
        } else {
            0
        };
    let crc = !crc16(&config[..CONFIG_SIZE - 2]);
    config[CONFIG_SIZE - 2..].copy_from_slice(&crc.to_le_bytes());
    config.extend_from_slice(current_access_code);
    Some(config)
}

/// The 64-byte challenge for `message` (at most 64 bytes): padded with a byte that differs
/// from its last byte, so a slot with HMAC_LT64 can strip the padding.
pub fn hmac_challenge(message: &[u8]) -> [u8; SLOT_DATA_SIZE] {
    let take = message.len().min(SLOT_DATA_SIZE);
    let pad = if message.last() == Some(&0) { 1 } else { 0 };
    let mut out = [pad; SLOT_DATA_SIZE];
    out[..take].copy_from_slice(&message[..take]);
    out
}

/// Device side: the message inside a padded challenge (HMAC_LT64: drop the trailing run
/// of the last byte's value).
pub fn strip_challenge(challenge: &[u8; SLOT_DATA_SIZE]) -> &[u8] {
    let pad = challenge[SLOT_DATA_SIZE - 1];
    let end = challenge
        .iter()
        .rposition(|&b| b != pad)
        .map_or(0, |i| i + 1);
    &challenge[..end]
}

/// RFC 4226 §5.3 dynamic truncation of a 20-byte HMAC-SHA1 to `digits` decimal digits.
pub fn totp_from_hmac(hmac: &[u8; 20], digits: u32) -> String {
    let offset = usize::from(hmac[19] & 0x0F);
    let binary = u32::from_be_bytes([
        hmac[offset] & 0x7F,
        hmac[offset + 1],
        hmac[offset + 2],
        hmac[offset + 3],
    ]);
    let modulus = 10u32.pow(digits.min(9));
    format!("{:0width$}", binary % modulus, width = digits as usize)
}
