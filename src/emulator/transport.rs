//! In-process transport: a client talks to an emulated card without pcscd.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::card::{Card, Outcome};
use super::faults::FaultHandle;
use super::stats::CardStats;
use crate::oath::{Transport, TransportError};

/// What a test keeps to reach the card behind a transport: faults, counters, the card.
#[derive(Debug, Clone)]
pub struct CardHandle {
    card: Arc<Mutex<Card>>,
    faults: FaultHandle,
    stats: CardStats,
}

impl CardHandle {
    pub fn new(card: Arc<Mutex<Card>>) -> Self {
        let (faults, stats) = {
            let guard = lock_card(&card);
            (guard.faults(), guard.stats())
        };
        Self {
            card,
            faults,
            stats,
        }
    }

    /// Fault switches; usable while another thread is inside a (slow) command.
    pub fn faults(&self) -> &FaultHandle {
        &self.faults
    }

    pub fn stats(&self) -> &CardStats {
        &self.stats
    }

    pub fn shared_card(&self) -> Arc<Mutex<Card>> {
        Arc::clone(&self.card)
    }

    /// Run `f` with the card locked (waits for a command in progress).
    pub fn with_card<R>(&self, f: impl FnOnce(&mut Card) -> R) -> R {
        f(&mut lock_card(&self.card))
    }

    /// Plug the card back in after a simulated power loss.
    pub fn replug(&self) {
        self.with_card(Card::replug);
    }

    /// Simulate pcscd powering the idle card off and on (drops selection and unlock).
    pub fn power_cycle(&self) {
        self.with_card(|card| {
            card.power_off();
            card.power_on();
        });
    }
}

/// A [`Transport`] that hands APDUs straight to a shared [`Card`].
#[derive(Debug, Clone)]
pub struct EmulatorTransport {
    handle: CardHandle,
}

impl EmulatorTransport {
    pub fn new(card: Card) -> Self {
        Self::from_shared(Arc::new(Mutex::new(card)))
    }

    pub fn from_shared(card: Arc<Mutex<Card>>) -> Self {
        Self {
            handle: CardHandle::new(card),
        }
    }

    pub fn handle(&self) -> CardHandle {
        self.handle.clone()
    }
}

impl Transport for EmulatorTransport {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        match lock_card(&self.handle.card).transmit(apdu) {
            Outcome::Response(response) => Ok(response),
            Outcome::Removed => Err(TransportError::CardRemoved),
        }
    }
}

/// Card methods never panic, so a poisoned lock only means a test thread died; go on.
pub(crate) fn lock_card(card: &Mutex<Card>) -> MutexGuard<'_, Card> {
    card.lock().unwrap_or_else(PoisonError::into_inner)
}
