//! ISO 7816 status words as YKOATH cards use them.

use std::fmt;

/// A status word (SW1 SW2) classified by what YKOATH clients need to tell apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusWord {
    /// 90 00
    Success,
    /// 61 XX: more data waiting, fetch with SEND REMAINING.
    MoreData(u8),
    /// 69 82: locked (password not validated) or touch not given in time.
    SecurityStatusNotSatisfied,
    /// 69 83: Nitrokey: a credential with this id already exists.
    OperationBlocked,
    /// 69 84: YubiKey: no such credential; VALIDATE without a key; SET CODE response mismatch.
    NoSuchObject,
    /// 69 85: CanoKey duplicate PUT; some cards' touch timeout.
    ConditionsNotSatisfied,
    /// 6A 80: wrong syntax, wrong VALIDATE response, id too long.
    WrongData,
    /// 6A 81: function not supported (Nitrokey SHA-512).
    FunctionNotSupported,
    /// 6A 82: applet/file not found; Nitrokey: no such credential.
    NotFound,
    /// 6A 84: no space left.
    NoSpace,
    /// 6A 86 / 6B 00: wrong P1/P2.
    WrongParameters,
    /// 67 00: wrong length.
    WrongLength,
    /// 6D 00: instruction not supported.
    InsNotSupported,
    /// 6E 00: class not supported.
    ClaNotSupported,
    /// 65 81: memory failure / corrupted credential.
    MemoryFailure,
    /// 6F 00: command aborted (some NEOs when full).
    Aborted,
    /// Anything else.
    Other(u16),
}

impl StatusWord {
    pub const fn from_u16(sw: u16) -> Self {
        match sw {
            0x9000 => Self::Success,
            0x6100..=0x61FF => Self::MoreData((sw & 0xFF) as u8),
            0x6982 => Self::SecurityStatusNotSatisfied,
            0x6983 => Self::OperationBlocked,
            0x6984 => Self::NoSuchObject,
            0x6985 => Self::ConditionsNotSatisfied,
            0x6A80 => Self::WrongData,
            0x6A81 => Self::FunctionNotSupported,
            0x6A82 => Self::NotFound,
            0x6A84 => Self::NoSpace,
            0x6A86 | 0x6B00 => Self::WrongParameters,
            0x6700 => Self::WrongLength,
            0x6D00 => Self::InsNotSupported,
            0x6E00 => Self::ClaNotSupported,
            0x6581 => Self::MemoryFailure,
            0x6F00 => Self::Aborted,
            other => Self::Other(other),
        }
    }

    pub const fn to_u16(self) -> u16 {
        match self {
            Self::Success => 0x9000,
            Self::MoreData(n) => 0x6100 | n as u16,
            Self::SecurityStatusNotSatisfied => 0x6982,
            Self::OperationBlocked => 0x6983,
            Self::NoSuchObject => 0x6984,
            Self::ConditionsNotSatisfied => 0x6985,
            Self::WrongData => 0x6A80,
            Self::FunctionNotSupported => 0x6A81,
            Self::NotFound => 0x6A82,
            Self::NoSpace => 0x6A84,
            Self::WrongParameters => 0x6A86,
            Self::WrongLength => 0x6700,
            Self::InsNotSupported => 0x6D00,
            Self::ClaNotSupported => 0x6E00,
            Self::MemoryFailure => 0x6581,
            Self::Aborted => 0x6F00,
            Self::Other(sw) => sw,
        }
    }

    pub const fn to_bytes(self) -> [u8; 2] {
        self.to_u16().to_be_bytes()
    }
}

impl fmt::Display for StatusWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04X}", self.to_u16())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_u16_round_trips_except_aliases() {
        for sw in 0..=u16::MAX {
            let parsed = StatusWord::from_u16(sw);
            if sw == 0x6B00 {
                assert_eq!(parsed, StatusWord::WrongParameters);
                continue;
            }
            assert_eq!(parsed.to_u16(), sw, "{sw:04X}");
        }
    }
}
