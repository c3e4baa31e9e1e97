//! What a given key can do, as data: one place for firmware gates and vendor quirks.

use serde::Serialize;

use super::consts::{CANOKEY_MAX_KEY_LEN, MAX_ID_LEN, NITROKEY_MAX_ID_LEN};
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

/// CanoKey facts (canokey-core): its ATR, its OATH version, and the admin applet where
/// its OATH reset lives (`applets/admin/admin.c`).
pub mod canokey {
    use std::ops::RangeInclusive;

    /// SELECT AID of the admin applet.
    pub const ADMIN_AID: [u8; 5] = [0xF0, 0x00, 0x00, 0x00, 0x00];
    /// VERIFY the admin PIN: `00 20 00 00 Lc <pin>`.
    pub const INS_VERIFY_PIN: u8 = 0x20;
    /// CHANGE the admin PIN (after VERIFY): `00 21 00 00 Lc <new pin>`.
    pub const INS_CHANGE_PIN: u8 = 0x21;
    /// Reset the OATH applet (after VERIFY): `00 05 00 00`.
    pub const INS_RESET_OATH: u8 = 0x05;
    /// The admin PIN of a new (or factory-reset) CanoKey.
    pub const DEFAULT_ADMIN_PIN: &[u8] = b"123456";
    /// Wrong PINs allowed before the admin applet blocks.
    pub const ADMIN_PIN_RETRIES: u8 = 3;
    /// Admin PIN length in bytes (`pin.min_length`, `PIN_MAX_LENGTH`).
    pub const ADMIN_PIN_LEN: RangeInclusive<usize> = 6..=64;
    /// `63 CX`: wrong PIN, X tries left.
    pub const SW_PIN_RETRIES: u16 = 0x63C0;
    /// The ATR of a CanoKey (`3B F7 11 00 00 81 31 FE 65` + "Canokey" + TCK), from
    /// canokey-core `interfaces/USB/class/ccid/ccid.c`.
    pub const ATR: [u8; 17] = [
        0x3B, 0xF7, 0x11, 0x00, 0x00, 0x81, 0x31, 0xFE, 0x65, 0x43, 0x61, 0x6E, 0x6F, 0x6B, 0x65,
        0x79, 0x99,
    ];
    /// The OATH applet version every CanoKey reports in SELECT (`79 03 06 00 00`).
    pub const OATH_VERSION_MAJOR: u8 = 6;
}

impl DeviceKind {
    /// Identify the card from its SELECT answer and, when known, the PC/SC reader name.
    ///
    /// A CanoKey is recognised by its reader name when it has one ("Canokeys Canokey …"
    /// over USB), else by its SELECT answer: OATH version 6.x.y and no `8F` serial. That
    /// covers readers whose name says nothing (vpcd's "Virtual PCD 00 00", NFC readers)
    /// without the ATR, which [`crate::oath::Transport`] does not carry. No YubiKey
    /// reports 6.x (they are 0.x–5.x); a reader named YubiKey/Yubico still wins.
    pub fn detect(info: &SelectInfo, reader: Option<&str>) -> Self {
        let reader = reader.unwrap_or_default().to_ascii_lowercase();
        if info.serial.is_some() || reader.contains("nitrokey 3") {
            Self::Nitrokey3
        } else if reader.contains("canokey") {
            Self::CanoKey
        } else if reader.contains("yubikey") || reader.contains("yubico") {
            Self::YubiKey
        } else if info.version.0 == canokey::OATH_VERSION_MAJOR {
            Self::CanoKey
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
    /// Longest credential id PUT accepts, in bytes (YKOATH 64; Nitrokey 3 127, §2.3).
    pub max_id_len: usize,
    /// Longest HMAC key PUT accepts after ykman's shortening, in bytes, when the key has
    /// a limit below the hash block size (CanoKey 64, so a SHA-512 seed of 65–128 bytes
    /// cannot be stored). `None`: anything up to the block size.
    pub max_key_len: Option<usize>,
    /// DELETE always waits for a touch (Nitrokey 3 Secrets App, reference §2.2 and N6), so
    /// a replacement under `--force` asks for one, and so does undoing an addition.
    pub delete_needs_touch: bool,
    /// The key increments a HOTP counter *before* computing (CanoKey): an account stored
    /// with IMF n first gives the code for n + 1. Clients compensate when they PUT
    /// ([`Quirks::hotp_imf`]): requested counter c > 0 is written as IMF c − 1, so the
    /// first code is RFC 4226's for c. Counter 0 cannot be expressed (no IMF −1; the
    /// counter is 64 bits, IMF only the low 32), so it is written as 0 and the first code
    /// is the one for counter 1. That is accepted rather than refused: a server's
    /// look-ahead window (RFC 4226 §7.4) takes it, and refusing would make every new
    /// HOTP account impossible on the key.
    pub hotp_increments_first: bool,
    /// CALCULATE ALL and LIST tell whether a HOTP account needs touch. CanoKey answers
    /// `77` for every HOTP account, touch or not, and LIST has no flag, so its HOTP
    /// accounts are listed with touch unknown (`None`); callers then treat every HOTP
    /// CALCULATE as one that may wait for a touch (the daemon raises `TouchPending`).
    pub hotp_touch_reported: bool,
    /// The OATH applet has no RESET (INS 04): it is reset through the vendor's admin
    /// applet after VERIFY of the admin PIN (CanoKey: [`canokey::ADMIN_AID`],
    /// [`canokey::INS_VERIFY_PIN`], [`canokey::INS_RESET_OATH`]).
    pub admin_reset: bool,
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
            max_key_len: None,
            delete_needs_touch: false,
            hotp_increments_first: false,
            hotp_touch_reported: true,
            admin_reset: false,
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
                max_id_len: NITROKEY_MAX_ID_LEN,
                max_key_len: None,
                delete_needs_touch: true,
                hotp_increments_first: false,
                hotp_touch_reported: true,
                admin_reset: false,
            },
            // canokey-core applets/oath/oath.c: 100 records, names up to 64 bytes, the
            // truncated answer is the raw 31-bit value, PUT of an existing name is 6985.
            DeviceKind::CanoKey => Self {
                kind,
                calculate_all: true,
                full_response: true,
                raw_truncation: true,
                password: true,
                rename: true,
                sha512: true,
                touch: true,
                overwrite: false,
                stable_salt: true,
                list_properties: false,
                capacity: Some(100),
                max_id_len: MAX_ID_LEN,
                max_key_len: Some(CANOKEY_MAX_KEY_LEN),
                delete_needs_touch: false,
                hotp_increments_first: true,
                hotp_touch_reported: false,
                admin_reset: true,
            },
        }
    }

    /// The IMF (initial counter) to PUT so that the key's first HOTP code is RFC 4226's
    /// for `requested`; see [`Quirks::hotp_increments_first`] for counter 0.
    pub fn hotp_imf(&self, requested: u32) -> u32 {
        if self.hotp_increments_first {
            requested.saturating_sub(1)
        } else {
            requested
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
        // A CanoKey behind vpcd or an NFC reader: its SELECT answer says so.
        let cano = info(Version(6, 0, 0), None);
        assert_eq!(
            DeviceKind::detect(&cano, Some("Virtual PCD 00 01")),
            DeviceKind::CanoKey
        );
        assert_eq!(DeviceKind::detect(&cano, None), DeviceKind::CanoKey);
        assert_eq!(
            DeviceKind::detect(&cano, Some("Yubico YubiKey OTP+FIDO+CCID 00 00")),
            DeviceKind::YubiKey
        );
    }

    #[test]
    fn canokey_quirks() {
        let cano = Quirks::for_device(DeviceKind::CanoKey, Version(6, 0, 0));
        assert!(cano.calculate_all && cano.full_response && cano.sha512 && cano.touch);
        assert!(!cano.overwrite && !cano.hotp_touch_reported && cano.admin_reset);
        assert_eq!(cano.capacity, Some(100));
        assert!(cano.is_duplicate(StatusWord::ConditionsNotSatisfied));
        assert!(cano.is_not_found(StatusWord::NoSuchObject));
        // HOTP: the card increments before computing.
        assert_eq!(cano.hotp_imf(5), 4);
        assert_eq!(cano.hotp_imf(1), 0);
        assert_eq!(cano.hotp_imf(0), 0);
        let yk = Quirks::for_device(DeviceKind::YubiKey, Version(5, 7, 2));
        assert_eq!(yk.hotp_imf(5), 5);
        assert_eq!(yk.hotp_imf(0), 0);
        assert!(yk.hotp_touch_reported && !yk.admin_reset);
        assert!(!yk.is_duplicate(StatusWord::ConditionsNotSatisfied));
    }
}
