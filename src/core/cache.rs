//! Codes by 30 s time step, shared between a key's worker (which fills it) and its handle
//! (which answers from it without queueing behind a running operation, e.g. while another
//! program holds the card). Any request for a step already computed — "now", an explicit
//! timestamp, past or future — is served from here; the last [`CodeCache::CAPACITY`] steps
//! are kept.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::oath::consts::DEFAULT_PERIOD;
use crate::oath::{CodeEntry, Credential};

/// The 30 s step of `timestamp` (CALCULATE ALL's challenge).
pub fn step_of(timestamp: u64) -> u64 {
    timestamp / u64::from(DEFAULT_PERIOD)
}

#[derive(Debug, Default)]
pub struct CodeCache {
    sets: VecDeque<(u64, Arc<Vec<CodeEntry>>)>,
    /// The accounts listed when the key was identified (unix seconds, accounts), for the
    /// daemon's first listing of it: read once, dropped with the codes.
    listing: Option<(u64, Vec<Credential>)>,
    /// Relists started so far (see [`CodeCache::relists`]).
    relists: u64,
    /// The number of the last relist that succeeded (0: none yet).
    relisted: u64,
}

impl CodeCache {
    /// How many steps are kept: "now", the steps around it (a code still being typed,
    /// the next one) and a few more for `--at` lookups and `--count` walks. Each step holds
    /// every account's entry (about 85 KB for 4 keys x 64 accounts); with 16 steps the
    /// daemon's RSS grew by 1.5 MB for lookups nobody repeats, with 8 by 0.8 MB.
    pub const CAPACITY: usize = 8;

    /// The codes at `timestamp`, if its step was computed and every code (periods other
    /// than 30 s included) is valid at that second.
    pub fn get(&self, timestamp: u64) -> Option<Arc<Vec<CodeEntry>>> {
        let step = step_of(timestamp);
        self.sets
            .iter()
            .find(|(s, _)| *s == step)
            .filter(|(_, entries)| {
                entries.iter().all(|e| {
                    e.code
                        .as_ref()
                        .is_none_or(|c| c.valid_from <= timestamp && timestamp < c.valid_to)
                })
            })
            .map(|(_, entries)| entries.clone())
    }

    /// Keep the codes computed at `timestamp`, dropping the oldest step beyond capacity.
    pub fn insert(&mut self, timestamp: u64, entries: Vec<CodeEntry>) -> Arc<Vec<CodeEntry>> {
        let step = step_of(timestamp);
        let entries = Arc::new(entries);
        self.sets.retain(|(s, _)| *s != step);
        self.sets.push_back((step, entries.clone()));
        while self.sets.len() > Self::CAPACITY {
            self.sets.pop_front();
        }
        entries
    }

    pub fn clear(&mut self) {
        self.sets.clear();
        self.listing = None;
    }

    /// How many relists (GetCodes "refresh") the worker has started. A refresh that saw
    /// `n` here when it was asked is answered by any relist numbered above `n` that
    /// succeeded: that one started after the request, so it saw every write made before it.
    pub fn relists(&self) -> u64 {
        self.relists
    }

    /// Whether a relist started after a request that saw `seen` has succeeded.
    pub fn relisted_since(&self, seen: u64) -> bool {
        self.relisted > seen
    }

    /// Count a relist as started: its number.
    pub fn start_relist(&mut self) -> u64 {
        self.relists += 1;
        self.relists
    }

    /// Relist `number` succeeded with the codes read at `timestamp` (None: the key gives
    /// none): every cached step is dropped (each may lack what changed) and these kept.
    pub fn relist_done(&mut self, number: u64, timestamp: u64, codes: Option<Vec<CodeEntry>>) {
        self.clear();
        if let Some(codes) = codes {
            self.insert(timestamp, codes);
        }
        self.relisted = self.relisted.max(number);
    }

    /// Keep the accounts listed at `timestamp` for [`Self::take_listing`].
    pub fn keep_listing(&mut self, timestamp: u64, credentials: Vec<Credential>) {
        self.listing = Some((timestamp, credentials));
    }

    /// How long a kept listing stands for the key, in seconds: it covers the daemon's
    /// start (scan, bus connection) and a plug-in, not what another program writes later.
    pub const LISTING_FRESH_SECONDS: u64 = 10;

    /// The kept listing, once, if it was made less than [`Self::LISTING_FRESH_SECONDS`]
    /// before `now` (older ones may miss accounts another program added since).
    pub fn take_listing(&mut self, now: u64) -> Option<Vec<Credential>> {
        self.listing
            .take()
            .filter(|(at, _)| now.saturating_sub(*at) < Self::LISTING_FRESH_SECONDS)
            .map(|(_, credentials)| credentials)
    }
}

/// A cache shared by a worker and its handles.
#[derive(Debug, Clone, Default)]
pub struct SharedCache(Arc<Mutex<CodeCache>>);

impl SharedCache {
    /// The cache holds plain data; a panic elsewhere cannot leave it inconsistent.
    pub fn lock(&self) -> MutexGuard<'_, CodeCache> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oath::{Code, Credential, CredentialId};
    use crate::otp::OathType;

    fn entry(period: u32, timestamp: u64) -> CodeEntry {
        let from = timestamp - timestamp % u64::from(period);
        CodeEntry {
            credential: Credential {
                raw_id: b"x".to_vec(),
                id: CredentialId::new(None, "x", OathType::Totp, period),
                oath_type: OathType::Totp,
                algorithm: None,
                digits: Some(6),
                touch: Some(false),
            },
            code: Some(Code {
                value: "123456".into(),
                valid_from: from,
                valid_to: from + u64::from(period),
            }),
        }
    }

    #[test]
    fn any_step_is_served_while_every_code_is_valid() {
        let mut cache = CodeCache::default();
        // 1_000_000_020 starts a 30 s step.
        cache.insert(1_000_000_045, vec![entry(30, 1_000_000_045)]);
        assert!(
            cache.get(1_000_000_021).is_some(),
            "same step, earlier second"
        );
        assert!(cache.get(1_000_000_019).is_none(), "previous step");
        assert!(cache.get(1_000_000_050).is_none(), "next step");
        // A 45 s account's window can end inside a 30 s step.
        // (step 4 is 120..150, the 45 s window 90..135 ends inside it.)
        cache.insert(120, vec![entry(45, 120)]);
        assert!(cache.get(134).is_some());
        assert!(
            cache.get(135).is_none(),
            "the 45 s code expired inside the step"
        );
    }

    #[test]
    fn a_listing_is_taken_once_while_fresh_and_cleared_with_the_codes() {
        let credentials = vec![entry(30, 0).credential];
        let mut cache = CodeCache::default();
        cache.keep_listing(1000, credentials.clone());
        assert_eq!(cache.take_listing(1009).map(|c| c.len()), Some(1));
        assert!(cache.take_listing(1009).is_none(), "taken once");
        cache.keep_listing(1000, credentials.clone());
        assert!(cache.take_listing(1010).is_none(), "too old");
        cache.keep_listing(1000, credentials);
        cache.clear();
        assert!(cache.take_listing(1000).is_none(), "cleared with the codes");
    }

    /// A refresh is answered only by a relist that started after it was asked and
    /// succeeded; a successful relist replaces every step, a failed one (never done)
    /// leaves the cache alone.
    #[test]
    fn relists_answer_refreshes_asked_before_they_started() {
        let mut cache = CodeCache::default();
        cache.insert(0, vec![entry(30, 0)]);
        cache.insert(3000, vec![entry(30, 3000)]);
        let seen_first = cache.relists();
        let first = cache.start_relist();
        let seen_during = cache.relists();
        assert!(!cache.relisted_since(seen_first), "nothing done yet");
        // The first relist fails: the cache keeps its steps, nobody is answered.
        assert!(cache.get(0).is_some() && cache.get(3000).is_some());
        let second = cache.start_relist();
        cache.relist_done(second, 6000, Some(vec![entry(30, 6000)]));
        assert!(cache.relisted_since(seen_first), "asked before the second");
        assert!(
            cache.relisted_since(seen_during),
            "asked while the first ran"
        );
        assert!(!cache.relisted_since(cache.relists()), "asked after it");
        assert!(
            cache.get(0).is_none() && cache.get(3000).is_none(),
            "replaced"
        );
        assert!(cache.get(6000).is_some());
        // A late success of an older number never lowers what was done.
        cache.relist_done(first, 6000, None);
        assert!(cache.relisted_since(seen_during));
    }

    #[test]
    fn capacity_is_bounded_and_clear_empties() {
        let mut cache = CodeCache::default();
        for step in 0..40u64 {
            cache.insert(step * 30, vec![entry(30, step * 30)]);
        }
        assert!(cache.get(0).is_none(), "oldest step evicted");
        assert!(cache.get(39 * 30).is_some());
        cache.clear();
        assert!(cache.get(39 * 30).is_none());
    }
}
