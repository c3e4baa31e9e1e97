//! RFC 4226 / RFC 6238 with SHA-1, SHA-256 and SHA-512.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum HashAlgorithm {
    #[default]
    Sha1,
    Sha256,
    Sha512,
}

impl HashAlgorithm {
    /// The YKOATH low-nibble code.
    pub const fn code(self) -> u8 {
        match self {
            Self::Sha1 => 0x01,
            Self::Sha256 => 0x02,
            Self::Sha512 => 0x03,
        }
    }

    pub const fn from_code(code: u8) -> Option<Self> {
        match code {
            0x01 => Some(Self::Sha1),
            0x02 => Some(Self::Sha256),
            0x03 => Some(Self::Sha512),
            _ => None,
        }
    }

    pub const fn block_size(self) -> usize {
        match self {
            Self::Sha1 | Self::Sha256 => 64,
            Self::Sha512 => 128,
        }
    }

    pub const fn digest_len(self) -> usize {
        match self {
            Self::Sha1 => 20,
            Self::Sha256 => 32,
            Self::Sha512 => 64,
        }
    }

    pub const fn name(self) -> &'static str {
        match self {
            Self::Sha1 => "SHA1",
            Self::Sha256 => "SHA256",
            Self::Sha512 => "SHA512",
        }
    }

    /// Lower case, as the D-Bus API and otpauth:// parameters spell it.
    pub const fn dbus_name(self) -> &'static str {
        match self {
            Self::Sha1 => "sha1",
            Self::Sha256 => "sha256",
            Self::Sha512 => "sha512",
        }
    }
}

impl fmt::Display for HashAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for HashAlgorithm {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_uppercase().replace('-', "").as_str() {
            "SHA1" => Ok(Self::Sha1),
            "SHA256" => Ok(Self::Sha256),
            "SHA512" => Ok(Self::Sha512),
            _ => Err(format!(
                "unknown algorithm {s:?} (expected SHA1, SHA256 or SHA512)"
            )),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum OathType {
    Hotp,
    #[default]
    Totp,
}

impl OathType {
    /// The YKOATH high-nibble code.
    pub const fn code(self) -> u8 {
        match self {
            Self::Hotp => 0x10,
            Self::Totp => 0x20,
        }
    }

    pub const fn from_code(code: u8) -> Option<Self> {
        match code {
            0x10 => Some(Self::Hotp),
            0x20 => Some(Self::Totp),
            _ => None,
        }
    }

    pub const fn name(self) -> &'static str {
        match self {
            Self::Hotp => "HOTP",
            Self::Totp => "TOTP",
        }
    }

    /// Lower case, as the D-Bus API spells it.
    pub const fn dbus_name(self) -> &'static str {
        match self {
            Self::Hotp => "hotp",
            Self::Totp => "totp",
        }
    }
}

impl fmt::Display for OathType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for OathType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_uppercase().as_str() {
            "HOTP" => Ok(Self::Hotp),
            "TOTP" => Ok(Self::Totp),
            _ => Err(format!("unknown OTP type {s:?} (expected TOTP or HOTP)")),
        }
    }
}

/// HMAC(key, message) with the given hash.
pub fn hmac(algorithm: HashAlgorithm, key: &[u8], message: &[u8]) -> Vec<u8> {
    // new_from_slice accepts keys of any length for HMAC, so these cannot fail.
    fn run<M: Mac + hmac::digest::KeyInit>(key: &[u8], message: &[u8]) -> Vec<u8> {
        let mut mac = <M as hmac::digest::KeyInit>::new_from_slice(key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(message);
        mac.finalize().into_bytes().to_vec()
    }
    match algorithm {
        HashAlgorithm::Sha1 => run::<Hmac<Sha1>>(key, message),
        HashAlgorithm::Sha256 => run::<Hmac<Sha256>>(key, message),
        HashAlgorithm::Sha512 => run::<Hmac<Sha512>>(key, message),
    }
}

/// RFC 2104: a key longer than the block size is replaced by its hash (HMAC result unchanged).
pub fn shorten_key(algorithm: HashAlgorithm, key: &[u8]) -> Vec<u8> {
    if key.len() <= algorithm.block_size() {
        return key.to_vec();
    }
    match algorithm {
        HashAlgorithm::Sha1 => Sha1::digest(key).to_vec(),
        HashAlgorithm::Sha256 => Sha256::digest(key).to_vec(),
        HashAlgorithm::Sha512 => Sha512::digest(key).to_vec(),
    }
}

/// RFC 4226 dynamic truncation: 31-bit value from the offset in the last nibble.
/// Returns 0 for a digest too short to truncate (never happens with real hashes).
pub fn dynamic_truncate(digest: &[u8]) -> u32 {
    let Some(last) = digest.last() else { return 0 };
    let offset = (last & 0x0F) as usize;
    match digest.get(offset..offset + 4) {
        Some(&[a, b, c, d]) => u32::from_be_bytes([a, b, c, d]) & 0x7FFF_FFFF,
        _ => 0,
    }
}

/// `value % 10^digits`, zero padded. Digits above 10 are clamped to 10 (u32 range).
pub fn format_code(value: u32, digits: u8) -> String {
    let digits = digits.min(10);
    let modulus = 10u64.pow(u32::from(digits));
    format!(
        "{:0width$}",
        u64::from(value & 0x7FFF_FFFF) % modulus,
        width = digits as usize
    )
}

pub fn hotp(algorithm: HashAlgorithm, key: &[u8], counter: u64, digits: u8) -> String {
    let digest = hmac(algorithm, key, &counter.to_be_bytes());
    format_code(dynamic_truncate(&digest), digits)
}

/// The TOTP moving factor: floor(unix_time / period). A zero period counts as 30 s.
pub fn totp_counter(unix_time: u64, period: u32) -> u64 {
    let period = if period == 0 { 30 } else { u64::from(period) };
    unix_time / period
}

pub fn totp(
    algorithm: HashAlgorithm,
    key: &[u8],
    unix_time: u64,
    period: u32,
    digits: u8,
) -> String {
    hotp(algorithm, key, totp_counter(unix_time, period), digits)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA1_KEY: &[u8] = b"12345678901234567890";
    const SHA256_KEY: &[u8] = b"12345678901234567890123456789012";
    const SHA512_KEY: &[u8] = b"1234567890123456789012345678901234567890123456789012345678901234";

    #[test]
    fn rfc4226_appendix_d() {
        let expected = [
            "755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583",
            "399871", "520489",
        ];
        for (counter, code) in expected.iter().enumerate() {
            assert_eq!(
                hotp(HashAlgorithm::Sha1, SHA1_KEY, counter as u64, 6),
                *code
            );
        }
    }

    #[test]
    fn rfc6238_appendix_b() {
        let vectors: [(u64, &str, &str, &str); 6] = [
            (59, "94287082", "46119246", "90693936"),
            (1111111109, "07081804", "68084774", "25091201"),
            (1111111111, "14050471", "67062674", "99943326"),
            (1234567890, "89005924", "91819424", "93441116"),
            (2000000000, "69279037", "90698825", "38618901"),
            (20000000000, "65353130", "77737706", "47863826"),
        ];
        for (t, sha1, sha256, sha512) in vectors {
            assert_eq!(totp(HashAlgorithm::Sha1, SHA1_KEY, t, 30, 8), sha1);
            assert_eq!(totp(HashAlgorithm::Sha256, SHA256_KEY, t, 30, 8), sha256);
            assert_eq!(totp(HashAlgorithm::Sha512, SHA512_KEY, t, 30, 8), sha512);
        }
    }

    #[test]
    fn long_keys_are_shortened_without_changing_the_code() {
        let long = [0x5Au8; 100];
        let short = shorten_key(HashAlgorithm::Sha1, &long);
        assert_eq!(short.len(), 20);
        assert_eq!(
            hotp(HashAlgorithm::Sha1, &long, 7, 6),
            hotp(HashAlgorithm::Sha1, &short, 7, 6)
        );
        assert_eq!(shorten_key(HashAlgorithm::Sha512, &long), long.to_vec());
    }

    #[test]
    fn format_code_pads_and_masks() {
        assert_eq!(format_code(0x059E_B4EA, 8), "94287082");
        assert_eq!(format_code(5, 6), "000005");
        assert_eq!(format_code(0xFFFF_FFFF, 6), "483647");
    }
}
