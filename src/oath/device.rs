//! What a given key can do, as data: one place for firmware gates and vendor quirks.

use serde::Serialize;

use super::consts::MAX_ID_LEN;
use super::select::{SelectInfo, Version};
use super::status::StatusWord;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceKind {
    YubiKey,
    Nitrokey3,
    CanoKey,
    /// Any other YKOATH card: assume YubiKey 5 behaviour.
    Generic,
}

impl DeviceKind {
    /// Identify the card from its SELECT answer and, when known, the PC/SC reader name.
    pub fn detect(info: &SelectInfo, reader: Option<&str>) -> Self {
        let reader = reader.unwrap_or_default().to_ascii_lowercase();
        if info.serial.is_some() || reader.contains("nitrokey 3") {
            Self::Nitrokey3
        } else if reader.contains("canokey") {
            Self::CanoKey
        } else if reader.contains("yubikey") || reader.contains("yubico") {
            Self::YubiKey
        } else {
            Self::Generic
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::YubiKey => "YubiKey",
            Self::Nitrokey3 => "Nitrokey 3",
            Self::CanoKey => "CanoKey",
            Self::Generic => "OATH key",
        }
    }
}

/// Capabilities and deviations of one key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Quirks {
    pub kind: DeviceKind,
    /// CALCULATE ALL (A4 00) exists; else LIST + CALCULATE.
    pub calculate_all: bool,
    /// CALCULATE with P2=00 (full HMAC; one way to Steam codes).
    pub full_response: bool,
    /// The truncated CALCULATE answer is the raw 31-bit value, not reduced mod 10^digits
    /// (Nitrokey 3: trussed-secrets-app), so Steam codes can be made from it.
    pub raw_truncation: bool,
    pub password: bool,
    pub rename: bool,
    pub sha512: bool,
    pub touch: bool,
    /// PUT of an existing id replaces it; else delete first.
    pub overwrite: bool,
    /// The SELECT salt is stable, so it identifies the key.
    pub stable_salt: bool,
    /// LIST accepts data `01` and appends a property byte (touch flag) per entry.
    pub list_properties: bool,
    pub capacity: Option<usize>,
    pub max_id_len: usize,
}

impl Quirks {
    pub fn for_device(kind: DeviceKind, version: Version) -> Self {
        let yubikey = |v: Version| Self {
            kind,
            calculate_all: true,
            full_response: true,
            raw_truncation: false,
            password: true,
            rename: v >= Version(5, 3, 1),
            sha512: v >= Version(4, 3, 1),
            touch: v >= Version(4, 2, 6),
            overwrite: true,
            stable_salt: true,
            list_properties: false,
            capacity: if v >= Version(5, 7, 0) {
                Some(64)
            } else if v >= Version(4, 0, 0) {
                Some(32)
            } else {
                None
            },
            max_id_len: MAX_ID_LEN,
        };
        match kind {
            DeviceKind::YubiKey => yubikey(version),
            DeviceKind::Generic => Self {
                capacity: None,
                ..yubikey(version)
            },
            DeviceKind::Nitrokey3 => Self {
                kind,
                calculate_all: false,
                full_response: false,
                raw_truncation: true,
                password: false,
                rename: false,
                sha512: false,
                touch: true,
                overwrite: false,
                stable_salt: false,
                list_properties: true,
                capacity: Some(50),
                max_id_len: MAX_ID_LEN,
            },
            DeviceKind::CanoKey => Self {
                kind,
                calculate_all: true,
                full_response: true,
                raw_truncation: false,
                password: true,
                rename: true,
                sha512: true,
                touch: true,
                overwrite: false,
                stable_salt: true,
                list_properties: false,
                capacity: None,
                max_id_len: MAX_ID_LEN,
            },
        }
    }

    /// Steam codes can be computed: from the full HMAC, or from an unreduced truncation.
    pub fn steam(&self) -> bool {
        self.full_response || self.raw_truncation
    }

    /// Status words meaning "no such credential" (YubiKey 6984, Nitrokey 6A82).
    pub fn is_not_found(&self, sw: StatusWord) -> bool {
        matches!(sw, StatusWord::NoSuchObject | StatusWord::NotFound)
    }

    /// Status words a PUT answers for an existing id on keys that do not overwrite.
    pub fn is_duplicate(&self, sw: StatusWord) -> bool {
        match sw {
            StatusWord::OperationBlocked => true,
            StatusWord::ConditionsNotSatisfied => self.kind == DeviceKind::CanoKey,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(version: Version, serial: Option<u32>) -> SelectInfo {
        SelectInfo {
            version,
            salt: Some(vec![0; 8]),
            challenge: None,
            key_algorithm: crate::otp::HashAlgorithm::Sha1,
            serial,
        }
    }

    #[test]
    fn firmware_gates() {
        let old = Quirks::for_device(DeviceKind::YubiKey, Version(4, 2, 5));
        assert!(!old.touch && !old.sha512 && !old.rename);
        assert_eq!(old.capacity, Some(32));
        let new = Quirks::for_device(DeviceKind::YubiKey, Version(5, 7, 2));
        assert!(new.touch && new.sha512 && new.rename);
        assert_eq!(new.capacity, Some(64));
    }

    #[test]
    fn detects_vendors() {
        let nk = info(Version(4, 15, 0), Some(7));
        assert_eq!(DeviceKind::detect(&nk, None), DeviceKind::Nitrokey3);
        let yk = info(Version(5, 4, 3), None);
        assert_eq!(
            DeviceKind::detect(&yk, Some("Yubico YubiKey OTP+FIDO+CCID 00 00")),
            DeviceKind::YubiKey
        );
        assert_eq!(
            DeviceKind::detect(&yk, Some("Virtual PCD 00 00")),
            DeviceKind::Generic
        );
        assert_eq!(
            DeviceKind::detect(&yk, Some("Canokeys Canokey [OpenPGP PIV OATH] 00 00")),
            DeviceKind::CanoKey
        );
    }
}
