//! The SELECT answer: version, salt, lock challenge, serial.

use std::fmt;

use data_encoding::BASE64_NOPAD;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::consts::{TAG_ALGORITHM, TAG_CHALLENGE, TAG_NAME, TAG_SERIAL, TAG_VERSION};
use super::error::OathError;
use super::tlv;
use crate::otp::HashAlgorithm;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Version(pub u8, pub u8, pub u8);

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectInfo {
    pub version: Version,
    /// Tag 71: PBKDF2 salt and device identity. Absent on a Nitrokey with a PIN set.
    pub salt: Option<Vec<u8>>,
    /// Tag 74: present only when an access key is set (the key is locked).
    pub challenge: Option<Vec<u8>>,
    /// Tag 7B: algorithm of the access key (SHA-1 when absent).
    pub key_algorithm: HashAlgorithm,
    /// Tag 8F: Nitrokey 3 serial number.
    pub serial: Option<u32>,
}

impl SelectInfo {
    pub fn parse(data: &[u8]) -> Result<Self, OathError> {
        let elements = tlv::parse_all(data)?;
        let version = match tlv::find(&elements, TAG_VERSION) {
            Some(&[major, minor, patch]) => Version(major, minor, patch),
            Some(other) => {
                return Err(OathError::Malformed(format!(
                    "version is {} bytes, expected 3",
                    other.len()
                )));
            }
            None => return Err(OathError::Malformed("SELECT without a version".into())),
        };
        let key_algorithm = match tlv::find(&elements, TAG_ALGORITHM) {
            None => HashAlgorithm::Sha1,
            Some(&[code]) => HashAlgorithm::from_code(code & 0x0F).ok_or_else(|| {
                OathError::Malformed(format!("unknown access key algorithm 0x{code:02X}"))
            })?,
            Some(_) => return Err(OathError::Malformed("bad algorithm tag".into())),
        };
        let serial = match tlv::find(&elements, TAG_SERIAL) {
            None => None,
            Some(&[a, b, c, d]) => Some(u32::from_be_bytes([a, b, c, d])),
            Some(_) => return Err(OathError::Malformed("serial is not 4 bytes".into())),
        };
        let challenge = tlv::find(&elements, TAG_CHALLENGE).map(<[u8]>::to_vec);
        if challenge
            .as_ref()
            .is_some_and(|c| c.is_empty() || c.len() > 64)
        {
            return Err(OathError::Malformed("bad challenge length".into()));
        }
        Ok(Self {
            version,
            salt: tlv::find(&elements, TAG_NAME).map(<[u8]>::to_vec),
            challenge,
            key_algorithm,
            serial,
        })
    }

    pub fn is_locked(&self) -> bool {
        self.challenge.is_some()
    }
}

/// ykman's device id: base64(sha256(salt)[:16]) without padding.
pub fn device_id_from_salt(salt: &[u8]) -> String {
    let digest = Sha256::digest(salt);
    BASE64_NOPAD.encode(&digest[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_locked_yubikey() {
        // Real 5.4.3 answer with a SHA-256 access key (TestPIN trace), SW stripped.
        let data = hex("790305040371081ac43b4d845166b87408b4ce599512e3e4297b0102");
        let info = SelectInfo::parse(&data).unwrap();
        assert_eq!(info.version, Version(5, 4, 3));
        assert!(info.is_locked());
        assert_eq!(info.key_algorithm, HashAlgorithm::Sha256);
        assert_eq!(info.serial, None);
    }

    #[test]
    fn device_id_matches_ykman() {
        assert_eq!(
            device_id_from_salt(&hex("8c7d2ee45f1771ed")),
            "pNL70px5Pmwli0IhF+Rv0g"
        );
    }

    #[test]
    fn rejects_garbage() {
        assert!(SelectInfo::parse(&hex("7902050471")).is_err());
        assert!(SelectInfo::parse(&[]).is_err());
        assert!(SelectInfo::parse(&hex("790305040371ff")).is_err());
    }

    fn hex(s: &str) -> Vec<u8> {
        data_encoding::HEXLOWER.decode(s.as_bytes()).unwrap()
    }
}
