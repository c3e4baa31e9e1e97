//! Fault switches for negative tests, shared between the card and whoever drives it.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// What happens when the card asks for a touch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TouchPolicy {
    /// The user touches after `delay`; the command then completes.
    Approve { delay: Duration },
    /// Nobody touches: the card waits `timeout`, then answers 6982.
    Deny { timeout: Duration },
}

impl Default for TouchPolicy {
    fn default() -> Self {
        Self::Approve {
            delay: Duration::ZERO,
        }
    }
}

/// Every switch is off by default (a well-behaved card with instant touch approval).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Faults {
    pub touch: TouchPolicy,
    /// Answer this many more APDUs, then stop answering (the card is "unplugged").
    /// Counts down as APDUs arrive; consumed when it fires.
    pub power_loss_after: Option<u64>,
    /// Cut each response's data in half (the status word is kept).
    pub truncated_responses: bool,
    /// Append a TLV header whose length points past the end of the response data.
    pub malformed_tlv: bool,
    /// Every response ends with `61 FF`, and SEND REMAINING never finishes.
    pub endless_more_data: bool,
    /// Answer every command with a blob of more than 64 KiB and `90 00`.
    pub oversized_response: bool,
}

/// A cloneable handle to the card's fault switches; flip them from any thread.
#[derive(Debug, Clone, Default)]
pub struct FaultHandle {
    inner: Arc<Mutex<Faults>>,
}

impl FaultHandle {
    pub fn new(faults: Faults) -> Self {
        Self {
            inner: Arc::new(Mutex::new(faults)),
        }
    }

    /// A copy of the current switches.
    pub fn get(&self) -> Faults {
        self.lock().clone()
    }

    /// Replace all switches.
    pub fn set(&self, faults: Faults) {
        *self.lock() = faults;
    }

    /// Change some switches in place: `handle.update(|f| f.truncated_responses = true)`.
    pub fn update(&self, change: impl FnOnce(&mut Faults)) {
        change(&mut self.lock());
    }

    pub fn set_touch(&self, touch: TouchPolicy) {
        self.lock().touch = touch;
    }

    /// Count one arriving APDU against `power_loss_after`; true when the card must die now.
    pub(crate) fn power_lost_on_next_apdu(&self) -> bool {
        let mut faults = self.lock();
        match faults.power_loss_after {
            Some(0) => {
                faults.power_loss_after = None;
                true
            }
            Some(remaining) => {
                faults.power_loss_after = Some(remaining - 1);
                false
            }
            None => false,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Faults> {
        // The data is plain switches; a panic elsewhere cannot leave it inconsistent.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn power_loss_counts_down_and_fires_once() {
        let handle = FaultHandle::new(Faults {
            power_loss_after: Some(2),
            ..Faults::default()
        });
        assert!(!handle.power_lost_on_next_apdu());
        assert!(!handle.power_lost_on_next_apdu());
        assert!(handle.power_lost_on_next_apdu());
        assert!(!handle.power_lost_on_next_apdu());
        assert_eq!(handle.get().power_loss_after, None);
    }
}
