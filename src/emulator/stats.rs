//! APDU counters, readable from other threads while the card runs.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::oath::consts::{
    INS_CALCULATE, INS_CALCULATE_ALL, INS_DELETE, INS_LIST, INS_PUT, INS_RENAME, INS_RESET,
    INS_SEND_REMAINING, INS_SET_CODE, INS_VALIDATE, P1_SELECT_BY_AID,
};

/// A YKOATH command as the card sees it (SELECT and CALCULATE ALL share INS A4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CommandKind {
    Select,
    Put,
    Delete,
    SetCode,
    Reset,
    Rename,
    List,
    Calculate,
    Validate,
    CalculateAll,
    SendRemaining,
    /// Unknown instruction or an APDU too short to have one.
    Other,
}

impl CommandKind {
    const ALL: [CommandKind; 12] = [
        Self::Select,
        Self::Put,
        Self::Delete,
        Self::SetCode,
        Self::Reset,
        Self::Rename,
        Self::List,
        Self::Calculate,
        Self::Validate,
        Self::CalculateAll,
        Self::SendRemaining,
        Self::Other,
    ];

    pub fn classify(ins: u8, p1: u8) -> Self {
        match ins {
            INS_CALCULATE_ALL if p1 == P1_SELECT_BY_AID => Self::Select,
            INS_CALCULATE_ALL => Self::CalculateAll,
            INS_PUT => Self::Put,
            INS_DELETE => Self::Delete,
            INS_SET_CODE => Self::SetCode,
            INS_RESET => Self::Reset,
            INS_RENAME => Self::Rename,
            INS_LIST => Self::List,
            INS_CALCULATE => Self::Calculate,
            INS_VALIDATE => Self::Validate,
            INS_SEND_REMAINING => Self::SendRemaining,
            _ => Self::Other,
        }
    }

    fn index(self) -> usize {
        Self::ALL
            .iter()
            .position(|k| *k == self)
            .unwrap_or(Self::ALL.len() - 1)
    }
}

#[derive(Debug)]
struct Counters {
    by_ins: [AtomicU64; 256],
    by_kind: [AtomicU64; CommandKind::ALL.len()],
    total: AtomicU64,
}

/// Shared APDU counters. Cloning gives another view of the same counters.
#[derive(Clone)]
pub struct CardStats {
    counters: Arc<Counters>,
}

impl Default for CardStats {
    fn default() -> Self {
        Self {
            counters: Arc::new(Counters {
                by_ins: std::array::from_fn(|_| AtomicU64::new(0)),
                by_kind: std::array::from_fn(|_| AtomicU64::new(0)),
                total: AtomicU64::new(0),
            }),
        }
    }
}

impl fmt::Debug for CardStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for kind in CommandKind::ALL {
            let n = self.count(kind);
            if n > 0 {
                map.entry(&kind, &n);
            }
        }
        map.finish()
    }
}

impl CardStats {
    /// Record one APDU (`raw` may be malformed).
    pub(crate) fn record(&self, raw: &[u8]) {
        let c = &self.counters;
        c.total.fetch_add(1, Ordering::Relaxed);
        let kind = match raw {
            [_, ins, p1, ..] => {
                c.by_ins[usize::from(*ins)].fetch_add(1, Ordering::Relaxed);
                CommandKind::classify(*ins, *p1)
            }
            [_, ins] => {
                c.by_ins[usize::from(*ins)].fetch_add(1, Ordering::Relaxed);
                CommandKind::Other
            }
            _ => CommandKind::Other,
        };
        c.by_kind[kind.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// APDUs of one command kind (tells SELECT from CALCULATE ALL).
    pub fn count(&self, kind: CommandKind) -> u64 {
        self.counters.by_kind[kind.index()].load(Ordering::Relaxed)
    }

    /// APDUs with this INS byte.
    pub fn count_ins(&self, ins: u8) -> u64 {
        self.counters.by_ins[usize::from(ins)].load(Ordering::Relaxed)
    }

    /// All APDUs, including malformed ones.
    pub fn total(&self) -> u64 {
        self.counters.total.load(Ordering::Relaxed)
    }

    /// Zero every counter (e.g. between phases of a test).
    pub fn clear(&self) {
        let c = &self.counters;
        c.by_ins
            .iter()
            .chain(c.by_kind.iter())
            .for_each(|n| n.store(0, Ordering::Relaxed));
        c.total.store(0, Ordering::Relaxed);
    }
}
