//! Codes as the key returns them, their validity window, and Steam's alphabet.

use serde::Serialize;

use crate::otp::format_code;

/// HOTP codes do not expire; ykman uses the largest i64 too.
pub const NEVER: u64 = i64::MAX as u64;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Code {
    pub value: String,
    pub valid_from: u64,
    pub valid_to: u64,
}

impl Code {
    /// From a truncated response `digits || u32`: works whether or not the card already
    /// reduced the value mod 10^digits (YubiKey does, Nitrokey does not).
    pub fn from_truncated(data: &[u8], valid_from: u64, valid_to: u64) -> Option<Self> {
        match data {
            &[digits, a, b, c, d] if (1..=10).contains(&digits) => Some(Self {
                value: format_code(u32::from_be_bytes([a, b, c, d]), digits),
                valid_from,
                valid_to,
            }),
            _ => None,
        }
    }
}

/// TOTP validity window for `timestamp`.
pub fn totp_window(timestamp: u64, period: u32) -> (u64, u64) {
    let period = u64::from(period.max(1));
    let from = timestamp - timestamp % period;
    (from, from.saturating_add(period))
}

const STEAM_CHARS: &[u8] = b"23456789BCDFGHJKMNPQRTVWXY";

/// Steam Guard's 5-character code from the dynamically truncated HMAC (RFC 4226 §5.3
/// "DT", before any reduction mod 10^digits).
pub fn steam_code(truncated: u32) -> String {
    let mut value = truncated & 0x7FFF_FFFF;
    let mut code = String::with_capacity(5);
    for _ in 0..5 {
        code.push(STEAM_CHARS[(value % 26) as usize] as char);
        value /= 26;
    }
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reduced_and_raw_truncations_give_the_same_code() {
        // YubiKey T=59 8 digits: 059EB4EA; raw DT would be 1397EEA with the high bits.
        let reduced = Code::from_truncated(&[8, 0x05, 0x9E, 0xB4, 0xEA], 30, 60).unwrap();
        let raw = Code::from_truncated(&[8, 0x41, 0x39, 0x7E, 0xEA], 30, 60).unwrap();
        assert_eq!(reduced.value, "94287082");
        assert_eq!(raw.value, "94287082");
        assert!(Code::from_truncated(&[8, 1, 2], 0, 0).is_none());
        assert!(Code::from_truncated(&[0, 1, 2, 3, 4], 0, 0).is_none());
    }

    #[test]
    fn windows() {
        assert_eq!(totp_window(59, 30), (30, 60));
        assert_eq!(totp_window(60, 60), (60, 120));
    }

    #[test]
    fn steam_uses_its_alphabet() {
        let hmac = crate::otp::hmac(
            crate::otp::HashAlgorithm::Sha1,
            b"12345678901234567890",
            &1u64.to_be_bytes(),
        );
        let truncated = crate::otp::dynamic_truncate(&hmac);
        let code = steam_code(truncated);
        assert_eq!(code.len(), 5);
        assert!(code.bytes().all(|c| STEAM_CHARS.contains(&c)));
        // The top bit is masked, so a card that leaves it set gives the same code.
        assert_eq!(code, steam_code(truncated | 0x8000_0000));
    }
}
