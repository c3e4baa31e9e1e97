//! Which real device the card imitates, and the behaviour that differs between them.

use std::fmt;
use std::str::FromStr;

use crate::oath::StatusWord;

/// The device whose quirks the card reproduces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Profile {
    /// YubiKey 5.7.2: the full YKOATH applet (§1.4 of the reference).
    #[default]
    YubiKey,
    /// Nitrokey 3 Secrets App 4.15.0 (§2.2/§6): no password, no CALCULATE ALL, touch for
    /// DELETE/RESET, refuses to overwrite, raw truncation values.
    Nitrokey,
}

impl Profile {
    pub const fn default_version(self) -> [u8; 3] {
        match self {
            Self::YubiKey => [5, 7, 2],
            Self::Nitrokey => [4, 15, 0],
        }
    }

    /// How many credentials fit.
    pub const fn capacity(self) -> usize {
        match self {
            Self::YubiKey => 64,
            Self::Nitrokey => 50,
        }
    }

    /// Longest credential id (label) in bytes.
    pub const fn max_id_len(self) -> usize {
        match self {
            Self::YubiKey => 64,
            Self::Nitrokey => 127,
        }
    }

    /// Shortest HMAC key PUT accepts. Newer YubiKeys refuse keys under 14 bytes (ykman
    /// pads for that reason); the Nitrokey takes anything non-empty.
    pub const fn min_key_len(self) -> usize {
        match self {
            Self::YubiKey => 14,
            Self::Nitrokey => 1,
        }
    }

    /// Status word for "no credential with this id".
    pub const fn not_found(self) -> StatusWord {
        match self {
            Self::YubiKey => StatusWord::NoSuchObject,
            Self::Nitrokey => StatusWord::NotFound,
        }
    }

    pub const fn is_nitrokey(self) -> bool {
        matches!(self, Self::Nitrokey)
    }

    pub const fn name(self) -> &'static str {
        match self {
            Self::YubiKey => "yubikey",
            Self::Nitrokey => "nitrokey",
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
            _ => Err(format!(
                "unknown profile {s:?} (expected yubikey or nitrokey)"
            )),
        }
    }
}
