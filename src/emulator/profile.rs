//! Which real device the card imitates, and the behaviour that differs between them.

use std::fmt;
use std::str::FromStr;

use crate::oath::StatusWord;
use crate::oath::device::canokey;

/// The device whose quirks the card reproduces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Profile {
    /// YubiKey 5.7.2: the full YKOATH applet (§1.4 of the reference).
    #[default]
    YubiKey,
    /// Nitrokey 3 Secrets App 4.15.0 (§2.2/§6): no password, no CALCULATE ALL, touch for
    /// DELETE/RESET, refuses to overwrite, raw truncation values.
    Nitrokey,
    /// CanoKey (canokey-core, OATH 6.0.0; reference C1–C6): refuses to overwrite (6985),
    /// 6984 for unknown names, HOTP increments before computing, `77` for every HOTP in
    /// CALCULATE ALL, no touch flag in LIST, raw truncation values, no INS 04 RESET: OATH
    /// is reset from the admin applet (`F0 00 00 00 00`) after VERIFY of the admin PIN.
    CanoKey,
}

impl Profile {
    pub const fn default_version(self) -> [u8; 3] {
        match self {
            Self::YubiKey => [5, 7, 2],
            Self::Nitrokey => [4, 15, 0],
            Self::CanoKey => [6, 0, 0],
        }
    }

    /// The ATR the card answers with: a CanoKey's own; else a contactless-style one.
    pub fn atr(self) -> &'static [u8] {
        match self {
            Self::CanoKey => &canokey::ATR,
            Self::YubiKey | Self::Nitrokey => &super::card::DEFAULT_ATR,
        }
    }

    /// How many credentials fit.
    pub const fn capacity(self) -> usize {
        match self {
            Self::YubiKey => 64,
            Self::Nitrokey => 50,
            Self::CanoKey => 100,
        }
    }

    /// Longest credential id (label) in bytes.
    pub const fn max_id_len(self) -> usize {
        match self {
            Self::YubiKey | Self::CanoKey => 64,
            Self::Nitrokey => 127,
        }
    }

    /// Shortest HMAC key PUT accepts. Newer YubiKeys refuse keys under 14 bytes (ykman
    /// pads for that reason); the Nitrokey and the CanoKey take anything non-empty.
    pub const fn min_key_len(self) -> usize {
        match self {
            Self::YubiKey => 14,
            Self::Nitrokey | Self::CanoKey => 1,
        }
    }

    /// Status word for "no credential with this id".
    pub const fn not_found(self) -> StatusWord {
        match self {
            Self::YubiKey | Self::CanoKey => StatusWord::NoSuchObject,
            Self::Nitrokey => StatusWord::NotFound,
        }
    }

    /// Status word for PUT of an id that exists, on cards that never overwrite.
    pub const fn duplicate(self) -> Option<StatusWord> {
        match self {
            Self::YubiKey => None,
            Self::Nitrokey => Some(StatusWord::OperationBlocked),
            Self::CanoKey => Some(StatusWord::ConditionsNotSatisfied),
        }
    }

    /// The truncated CALCULATE answer is the raw 31-bit value, not reduced mod 10^digits.
    pub const fn raw_truncation(self) -> bool {
        matches!(self, Self::Nitrokey | Self::CanoKey)
    }

    /// HOTP increments the counter before computing (the YubiKey computes, then increments).
    pub const fn hotp_increments_first(self) -> bool {
        matches!(self, Self::CanoKey)
    }

    pub const fn is_nitrokey(self) -> bool {
        matches!(self, Self::Nitrokey)
    }

    pub const fn is_canokey(self) -> bool {
        matches!(self, Self::CanoKey)
    }

    pub const fn name(self) -> &'static str {
        match self {
            Self::YubiKey => "yubikey",
            Self::Nitrokey => "nitrokey",
            Self::CanoKey => "canokey",
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Profile {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "yubikey" => Ok(Self::YubiKey),
            "nitrokey" => Ok(Self::Nitrokey),
            "canokey" => Ok(Self::CanoKey),
            _ => Err(format!(
                "unknown profile {s:?} (expected yubikey, nitrokey or canokey)"
            )),
        }
    }
}
