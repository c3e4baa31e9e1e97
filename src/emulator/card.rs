//! The YKOATH applet: session state, dispatch, response chaining, power and faults.
//! The instruction handlers live in `card/commands.rs`.

mod admin;
#[cfg(test)]
mod canokey_tests;
mod commands;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};
use tracing::{debug, warn};

use super::faults::{FaultHandle, Faults, TouchPolicy};
use super::profile::Profile;
use super::state::{PersistentState, SALT_LEN, StateError};
use super::stats::CardStats;
use crate::oath::StatusWord;
use crate::oath::apdu::CommandApdu;
use crate::oath::consts::{INS_SELECT, INS_SEND_REMAINING, P1_SELECT_BY_AID};
use crate::oath::device::canokey::ADMIN_AID;

/// ATR of a contactless-style card: T0 high nibble is not 0xF, so ykman treats the reader
/// as NFC and needs no USB PID.
pub const DEFAULT_ATR: [u8; 5] = [0x3B, 0x80, 0x80, 0x01, 0x01];
/// Short-APDU friendly chunk: responses longer than this are chained with `61 XX`.
pub const DEFAULT_CHUNK_SIZE: usize = 255;
/// Size of the `oversized_response` blob (just over 64 KiB).
pub const OVERSIZED_RESPONSE_LEN: usize = 64 * 1024 + 16;

/// How the card is built.
#[derive(Debug, Clone)]
pub struct CardConfig {
    pub profile: Profile,
    /// Reported version; `None` means the profile's (5.7.2 or 4.15.0).
    pub version: Option<[u8; 3]>,
    /// Nitrokey `8F` serial number.
    pub serial: u32,
    /// Chain responses whose data exceeds this many bytes; 0 never chains.
    pub chunk_size: usize,
    pub atr: Vec<u8>,
    pub faults: Faults,
    /// Salt of a fresh card; `None` draws a random one.
    pub salt: Option<[u8; SALT_LEN]>,
}

impl Default for CardConfig {
    fn default() -> Self {
        Self {
            profile: Profile::YubiKey,
            version: None,
            serial: 0x1234_5678,
            chunk_size: DEFAULT_CHUNK_SIZE,
            atr: DEFAULT_ATR.to_vec(),
            faults: Faults::default(),
            salt: None,
        }
    }
}

impl CardConfig {
    /// The defaults for `profile`, with the profile's ATR.
    pub fn for_profile(profile: Profile) -> Self {
        Self {
            profile,
            atr: profile.atr().to_vec(),
            ..Self::default()
        }
    }

    pub fn yubikey() -> Self {
        Self::default()
    }

    pub fn nitrokey() -> Self {
        Self::for_profile(Profile::Nitrokey)
    }

    pub fn canokey() -> Self {
        Self::for_profile(Profile::CanoKey)
    }
}

/// The result of sending one APDU to the card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The response APDU: data followed by SW1 SW2.
    Response(Vec<u8>),
    /// The card lost power (fault `power_loss_after`) and answers nothing until replugged.
    Removed,
}

/// What lasts only while the applet stays selected and powered.
#[derive(Debug, Default)]
struct Session {
    /// The OATH applet is selected.
    selected: bool,
    /// CanoKey: the admin applet is selected instead.
    admin_selected: bool,
    /// CanoKey: the admin PIN was verified since power-on.
    admin_verified: bool,
    /// VALIDATE (or SET CODE) succeeded in this selection.
    validated: bool,
    /// The SELECT challenge VALIDATE must answer; single-use.
    select_challenge: Option<[u8; 8]>,
    /// Response data still to be fetched with SEND REMAINING.
    pending: Vec<u8>,
}

/// Where a card saves its state after each change when it is not a clear-text file (a
/// sealed virtual key re-encrypts it). `json` is the state-file JSON.
pub trait StateSink: Send + std::fmt::Debug {
    /// Store `json` durably (atomically); the error text names the file, never its contents.
    fn save(&self, json: &[u8]) -> Result<(), String>;
}

/// A software YKOATH card. Never panics on any input.
#[derive(Debug)]
pub struct Card {
    profile: Profile,
    version: [u8; 3],
    serial: u32,
    chunk_size: usize,
    atr: Vec<u8>,
    state: PersistentState,
    state_file: Option<PathBuf>,
    /// Where changes go instead of `state_file` (a sealed file).
    sink: Option<Box<dyn StateSink>>,
    session: Session,
    faults: FaultHandle,
    stats: CardStats,
    unplugged: bool,
    /// CanoKey admin applet: PIN and tries left. Kept in memory only (the state file holds
    /// the OATH applet), so a restarted emulator has the default PIN again.
    admin: admin::AdminPin,
    /// Set while the card waits for a touch (the HID side sends KEEPALIVE UPNEEDED).
    touch_waiting: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Card {
    pub fn new(config: CardConfig) -> Card {
        let salt = config.salt.unwrap_or_else(random_bytes);
        Card {
            profile: config.profile,
            version: config
                .version
                .unwrap_or_else(|| config.profile.default_version()),
            serial: config.serial,
            chunk_size: config.chunk_size,
            atr: config.atr,
            state: PersistentState::fresh(salt),
            state_file: None,
            sink: None,
            session: Session::default(),
            faults: FaultHandle::new(config.faults),
            stats: CardStats::default(),
            unplugged: false,
            admin: admin::AdminPin::default(),
            touch_waiting: Default::default(),
        }
    }

    /// Back the card with `path`: load it if it exists, and save to it after every change.
    pub fn with_state_file(mut self, path: impl Into<PathBuf>) -> Result<Card, StateError> {
        let path = path.into();
        if path.exists() {
            self.state = PersistentState::load(&path)?;
        }
        self.state_file = Some(path);
        Ok(self)
    }

    /// Start from state JSON (an opened sealed file) and hand every change to `sink`.
    pub fn with_state_sink(
        mut self,
        json: &[u8],
        sink: Box<dyn StateSink>,
    ) -> Result<Card, String> {
        self.state = PersistentState::from_json(json)?;
        self.state_file = None;
        self.sink = Some(sink);
        Ok(self)
    }

    /// The card's YKOATH salt (sent in SELECT; the device id derives from it).
    pub fn oath_salt(&self) -> [u8; SALT_LEN] {
        self.state.salt
    }

    /// The persistent state as state-file JSON (for sealing a new card).
    pub fn state_json(&self) -> Result<zeroize::Zeroizing<Vec<u8>>, String> {
        self.state.to_json()
    }

    /// Write the card's persistent state (credentials, access key, salt) to `path`.
    pub fn save_state(&self, path: &Path) -> Result<(), StateError> {
        self.state.save(path)
    }

    /// Replace the card's persistent state with the contents of `path`.
    pub fn load_state(&mut self, path: &Path) -> Result<(), StateError> {
        self.state = PersistentState::load(path)?;
        self.session = Session::default();
        Ok(())
    }

    pub fn profile(&self) -> Profile {
        self.profile
    }

    pub fn atr(&self) -> Vec<u8> {
        self.atr.clone()
    }

    /// The shared APDU counters (clone it to read from another thread).
    pub fn stats(&self) -> CardStats {
        self.stats.clone()
    }

    /// The shared fault switches.
    pub fn faults(&self) -> FaultHandle {
        self.faults.clone()
    }

    /// A flag that is true while the card waits for a touch (readable without the card's
    /// lock, which a touch wait holds).
    pub fn touch_waiting(&self) -> std::sync::Arc<std::sync::atomic::AtomicBool> {
        self.touch_waiting.clone()
    }

    /// Number of stored credentials.
    pub fn credential_count(&self) -> usize {
        self.state.credentials.len()
    }

    pub fn power_off(&mut self) {
        self.session = Session::default();
    }

    pub fn power_on(&mut self) {
        self.session = Session::default();
    }

    pub fn reset(&mut self) {
        self.session = Session::default();
    }

    /// False after a `power_loss_after` fault fired, until [`Card::replug`].
    pub fn is_present(&self) -> bool {
        !self.unplugged
    }

    /// Plug the card back in after a simulated power loss.
    pub fn replug(&mut self) {
        self.unplugged = false;
        self.session = Session::default();
    }

    /// Process one command APDU and return the full response (data + SW). A card that
    /// lost power answers with an empty vector; use [`Card::transmit`] to tell the cases apart.
    pub fn process(&mut self, command: &[u8]) -> Vec<u8> {
        match self.transmit(command) {
            Outcome::Response(response) => response,
            Outcome::Removed => Vec::new(),
        }
    }

    /// Process one command APDU, applying the fault switches.
    pub fn transmit(&mut self, command: &[u8]) -> Outcome {
        if self.unplugged {
            return Outcome::Removed;
        }
        self.stats.record(command);
        if self.faults.power_lost_on_next_apdu() {
            warn!("emulated card: simulated power loss");
            self.unplugged = true;
            self.session = Session::default();
            return Outcome::Removed;
        }
        let faults = self.faults.get();
        let is_send_remaining = command.get(1) == Some(&INS_SEND_REMAINING);
        if faults.endless_more_data && is_send_remaining {
            let mut garbage = vec![0xEE; 255];
            garbage.extend_from_slice(&StatusWord::MoreData(0xFF).to_bytes());
            return Outcome::Response(garbage);
        }
        if faults.oversized_response {
            let mut blob = vec![0x71; OVERSIZED_RESPONSE_LEN];
            blob.extend_from_slice(&StatusWord::Success.to_bytes());
            return Outcome::Response(blob);
        }
        let (mut data, mut sw) = self.respond(command);
        debug!(
            ins = command.get(1).copied().unwrap_or(0),
            sw = sw.to_u16(),
            "emulated card APDU"
        );
        if faults.truncated_responses {
            data.truncate(data.len() / 2);
        }
        if faults.malformed_tlv
            && let Some(&tag) = data.first()
        {
            // A trailing element that claims 127 bytes and has none.
            data.extend_from_slice(&[tag, 0x7F]);
        }
        if faults.endless_more_data {
            sw = StatusWord::MoreData(0xFF);
        }
        data.extend_from_slice(&sw.to_bytes());
        Outcome::Response(data)
    }

    /// Dispatch one APDU; returns the response data and status word.
    fn respond(&mut self, raw: &[u8]) -> (Vec<u8>, StatusWord) {
        let apdu = match CommandApdu::parse(raw) {
            Ok(apdu) => apdu,
            Err(_) => {
                self.session.pending.clear();
                return (Vec::new(), StatusWord::WrongLength);
            }
        };
        if apdu.ins != INS_SEND_REMAINING {
            // Any other command abandons a chained response.
            self.session.pending.clear();
        }
        if apdu.cla != 0x00 {
            return (Vec::new(), StatusWord::ClaNotSupported);
        }
        let result = if apdu.ins == INS_SELECT && apdu.p1 == P1_SELECT_BY_AID {
            if self.has_admin_applet() && apdu.data.starts_with(&ADMIN_AID) {
                self.select_admin()
            } else {
                self.select(&apdu.data)
            }
        } else if self.session.admin_selected {
            self.admin_dispatch(&apdu)
        } else if !self.session.selected {
            Err(StatusWord::InsNotSupported)
        } else if apdu.ins == INS_SEND_REMAINING {
            return self.send_remaining();
        } else {
            self.dispatch(&apdu)
        };
        match result {
            Ok(data) => self.chain(data),
            Err(sw) => (Vec::new(), sw),
        }
    }

    /// Split long responses: the first chunk now, the rest through SEND REMAINING.
    fn chain(&mut self, mut data: Vec<u8>) -> (Vec<u8>, StatusWord) {
        if self.chunk_size == 0 || data.len() <= self.chunk_size {
            return (data, StatusWord::Success);
        }
        self.session.pending = data.split_off(self.chunk_size);
        (data, more_data_status(self.session.pending.len()))
    }

    fn send_remaining(&mut self) -> (Vec<u8>, StatusWord) {
        if let Err(sw) = self.require_auth() {
            return (Vec::new(), sw);
        }
        if self.session.pending.is_empty() {
            return (Vec::new(), StatusWord::ConditionsNotSatisfied);
        }
        let take = match self.chunk_size {
            0 => self.session.pending.len(),
            n => n.min(self.session.pending.len()),
        };
        let rest = self.session.pending.split_off(take);
        let chunk = std::mem::replace(&mut self.session.pending, rest);
        if self.session.pending.is_empty() {
            (chunk, StatusWord::Success)
        } else {
            (chunk, more_data_status(self.session.pending.len()))
        }
    }

    /// 6982 while a password is set and not validated in this selection.
    fn require_auth(&self) -> Result<(), StatusWord> {
        if self.state.access_key.is_some() && !self.session.validated {
            return Err(StatusWord::SecurityStatusNotSatisfied);
        }
        Ok(())
    }

    /// Wait for the (simulated) user to touch the card, per the touch policy.
    fn await_touch(&self) -> Result<(), StatusWord> {
        use std::sync::atomic::Ordering;
        self.touch_waiting.store(true, Ordering::Relaxed);
        let result = self.touch_outcome();
        self.touch_waiting.store(false, Ordering::Relaxed);
        result
    }

    fn touch_outcome(&self) -> Result<(), StatusWord> {
        match self.faults.get().touch {
            TouchPolicy::Approve { delay } => {
                sleep_if_nonzero(delay);
                Ok(())
            }
            TouchPolicy::Deny { timeout } => {
                sleep_if_nonzero(timeout);
                Err(StatusWord::SecurityStatusNotSatisfied)
            }
        }
    }

    /// Save to the state file, if any. A failed write is reported as 6581 (memory failure).
    fn persist(&self) -> Result<(), StatusWord> {
        if let Some(sink) = &self.sink {
            let json = self
                .state
                .to_json()
                .map_err(|_| StatusWord::MemoryFailure)?;
            return sink.save(&json).map_err(|e| {
                warn!("emulated card could not save its state: {e}");
                StatusWord::MemoryFailure
            });
        }
        let Some(path) = &self.state_file else {
            return Ok(());
        };
        self.state.save(path).map_err(|e| {
            warn!("emulated card could not save its state: {e}");
            StatusWord::MemoryFailure
        })
    }

    /// Test hook: make the pending SELECT challenge a known value (trace replay).
    #[cfg(test)]
    pub(crate) fn force_select_challenge(&mut self, challenge: [u8; 8]) {
        self.session.select_challenge = Some(challenge);
    }

    #[cfg(test)]
    pub(crate) fn salt(&self) -> [u8; SALT_LEN] {
        self.state.salt
    }
}

fn more_data_status(remaining: usize) -> StatusWord {
    StatusWord::MoreData(u8::try_from(remaining).unwrap_or(0))
}

fn sleep_if_nonzero(duration: Duration) {
    if !duration.is_zero() {
        std::thread::sleep(duration);
    }
}

/// Random bytes from the OS; if that ever fails, a hash of the time and a counter (the
/// values are salts and challenges of a test card, not key material).
pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    if getrandom::fill(&mut out).is_ok() {
        return out;
    }
    static FALLBACK_COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let count = FALLBACK_COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut filled = 0;
    let mut block = 0u64;
    while filled < N {
        let digest = Sha256::new()
            .chain_update(nanos.to_be_bytes())
            .chain_update(count.to_be_bytes())
            .chain_update(block.to_be_bytes())
            .finalize();
        let take = (N - filled).min(digest.len());
        out[filled..filled + take].copy_from_slice(&digest[..take]);
        filled += take;
        block += 1;
    }
    out
}
