//! A YKOATH card in software, for tests and for driving real clients without hardware.
//!
//! - [`Card`]: the applet (YubiKey 5.7 or Nitrokey 3 behaviour, see [`Profile`]), with
//!   fault switches ([`Faults`]), APDU counters ([`CardStats`]) and an optional state file;
//! - [`EmulatorTransport`]: an in-process [`crate::oath::Transport`] over a shared card;
//! - [`vpcd`]: a bridge that plugs the card into pcscd's virtual reader (vsmartcard vpcd);
//! - [`hid`]: the card (or a YubiKey OTP application) as a HID device behind a Unix socket.

mod card;
mod faults;
pub mod hid;
mod profile;
mod state;
mod stats;
pub(crate) mod transport;
pub mod vpcd;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod trace_replay;

pub use card::{
    Card, CardConfig, DEFAULT_ATR, DEFAULT_CHUNK_SIZE, OVERSIZED_RESPONSE_LEN, Outcome, StateSink,
};
pub use faults::{FaultHandle, Faults, TouchPolicy};
pub use profile::Profile;
pub use state::{StateError, WriteStep, write_private_atomically, write_private_atomically_with};
pub use stats::{CardStats, CommandKind};
pub use transport::{CardHandle, EmulatorTransport};
