//! PC/SC transport through pcscd: shared mode, one transaction per operation, and a
//! disconnect that leaves the card alone (dropping a `pcsc::Card` would reset it and
//! disturb gpg's scdaemon or ykman).

use std::ffi::CString;

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use pcsc::{Context, Disposition, Protocols, ReaderState, Scope, ShareMode, State};
use thiserror::Error;
use tracing::{debug, warn};

use crate::oath::{Transport, TransportError};

#[derive(Debug, Error)]
pub enum PcscError {
    #[error("pcscd is not running (start it with `systemctl start pcscd.socket`)")]
    NoService,
    #[error("no smart card readers found: is a key plugged in?")]
    NoReaders,
    #[error("no key in reader {0:?}")]
    NoCard(String),
    #[error("no reader matches {0:?}")]
    NoMatchingReader(String),
    #[error("the key was removed")]
    CardRemoved,
    /// Still held after the wait ([`shared_wait`]); names running card users when found.
    #[error("the key is held exclusively by another program ({}); try again", .0.as_deref().unwrap_or("gpg's scdaemon? ykman?"))]
    SharingViolation(Option<String>),
    #[error("reader name contains a NUL byte")]
    BadReaderName,
    /// Another program powered the card down; a new connection powers it up.
    #[error("the key was powered down by another program; try again")]
    Unpowered,
    #[error("PC/SC error: {0}")]
    Other(pcsc::Error),
}

impl From<pcsc::Error> for PcscError {
    fn from(error: pcsc::Error) -> Self {
        match error {
            pcsc::Error::NoReadersAvailable => Self::NoReaders,
            pcsc::Error::NoService | pcsc::Error::ServiceStopped => Self::NoService,
            pcsc::Error::RemovedCard | pcsc::Error::NoSmartcard => Self::CardRemoved,
            pcsc::Error::SharingViolation => Self::SharingViolation(None),
            pcsc::Error::UnpoweredCard => Self::Unpowered,
            other => Self::Other(other),
        }
    }
}

/// Default for [`shared_wait`], in milliseconds.
pub const DEFAULT_SHARED_WAIT_MS: u64 = 2000;
/// How long a key that also has a HID side waits for its reader before using HID.
const FALLBACK_SHARED_WAIT: Duration = Duration::from_millis(200);

/// [`shared_wait`] for a key that also has a HID side: at most 200 ms.
pub fn fallback_shared_wait() -> Duration {
    shared_wait().min(FALLBACK_SHARED_WAIT)
}

/// How long a connect waits for another program's exclusive hold to end: 2 s, or
/// `OATHBRIDGE_SHARED_WAIT_MS` (milliseconds; 0 fails at once).
pub fn shared_wait() -> Duration {
    static WAIT: OnceLock<Duration> = OnceLock::new();
    *WAIT.get_or_init(|| {
        let ms = std::env::var("OATHBRIDGE_SHARED_WAIT_MS")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(DEFAULT_SHARED_WAIT_MS);
        Duration::from_millis(ms)
    })
}

/// A PC/SC context: list readers, connect to a card.
pub struct Pcsc {
    context: Context,
}

impl Pcsc {
    pub fn establish() -> Result<Self, PcscError> {
        Ok(Self {
            context: Context::establish(Scope::User)?,
        })
    }

    /// All reader names (with or without a card).
    pub fn readers(&self) -> Result<Vec<String>, PcscError> {
        match self.context.list_readers_owned() {
            Ok(names) => Ok(names
                .into_iter()
                .map(|name| name.to_string_lossy().into_owned())
                .filter(|name| !name.starts_with("\\\\?PnP?"))
                .collect()),
            Err(pcsc::Error::NoReadersAvailable) => Ok(Vec::new()),
            Err(e) => Err(e.into()),
        }
    }

    /// Readers whose name contains `filter` (case-insensitive); all readers without a filter.
    pub fn matching_readers(&self, filter: Option<&str>) -> Result<Vec<String>, PcscError> {
        let readers = self.readers()?;
        let Some(filter) = filter else {
            return Ok(readers);
        };
        let needle = filter.to_lowercase();
        let matching: Vec<String> = readers
            .into_iter()
            .filter(|name| name.to_lowercase().contains(&needle))
            .collect();
        if matching.is_empty() {
            return Err(PcscError::NoMatchingReader(filter.to_owned()));
        }
        Ok(matching)
    }

    /// Which physical insertion the card in `reader` is: pcsc-lite's per-reader event
    /// counter (upper 16 bits of `dwEventState`, bumped on every insertion and removal) and
    /// the ATR. Asks pcscd only (`SCardGetStatusChange` with a zero timeout); no card I/O.
    pub fn insertion(&self, reader: &str) -> Result<Insertion, PcscError> {
        let name = CString::new(reader).map_err(|_| PcscError::BadReaderName)?;
        let mut states = [ReaderState::new(name, State::UNAWARE)];
        self.context
            .get_status_change(Duration::ZERO, &mut states)?;
        let state = &states[0];
        if !state.event_state().contains(State::PRESENT) {
            return Err(PcscError::NoCard(reader.to_owned()));
        }
        Ok(Insertion {
            events: state.event_count(),
            atr: state.atr().to_vec(),
        })
    }

    /// Connect in shared mode to the card in `reader`. Another program holding the card
    /// exclusively for a moment (ykman, scdaemon) is waited for, with a growing pause, for
    /// up to [`shared_wait`]; a longer hold is [`PcscError::SharingViolation`].
    pub fn connect(&self, reader: &str) -> Result<PcscCard, PcscError> {
        self.connect_waiting(reader, shared_wait())
    }

    /// Like [`Pcsc::connect`], waiting at most `wait` for an exclusive hold to end (short
    /// when the key has another way in: its HID side).
    pub fn connect_waiting(&self, reader: &str, wait: Duration) -> Result<PcscCard, PcscError> {
        let name = CString::new(reader).map_err(|_| PcscError::BadReaderName)?;
        let deadline = Instant::now() + wait;
        let mut pause = Duration::from_millis(10);
        let card = loop {
            match self
                .context
                .connect(&name, ShareMode::Shared, Protocols::ANY)
            {
                Ok(card) => break card,
                Err(pcsc::Error::NoSmartcard | pcsc::Error::RemovedCard) => {
                    return Err(PcscError::NoCard(reader.to_owned()));
                }
                Err(pcsc::Error::SharingViolation) if Instant::now() < deadline => {
                    debug!(reader, ?pause, "card held by another program; waiting");
                    std::thread::sleep(
                        pause.min(deadline.saturating_duration_since(Instant::now())),
                    );
                    pause = (pause * 2).min(Duration::from_millis(200));
                }
                Err(pcsc::Error::SharingViolation) => {
                    return Err(PcscError::SharingViolation(
                        crate::transport::holders::describe_card_users(),
                    ));
                }
                // Powered down or reset by a program that just left (ykman): pcscd brings
                // it back up; try again within the same wait.
                Err(
                    error @ (pcsc::Error::UnpoweredCard
                    | pcsc::Error::ResetCard
                    | pcsc::Error::UnresponsiveCard),
                ) if Instant::now() < deadline => {
                    debug!(reader, %error, "card not ready; retrying");
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => return Err(e.into()),
            }
        };
        debug!(reader, "connected");
        Ok(PcscCard {
            card: Some(card),
            reader: reader.to_owned(),
        })
    }
}

/// One physical insertion of a card (see [`Pcsc::insertion`]): equal values mean the card
/// has not left the reader in between.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Insertion {
    pub events: u32,
    pub atr: Vec<u8>,
}

/// A shared-mode connection; disconnects with `LeaveCard` when dropped.
pub struct PcscCard {
    card: Option<pcsc::Card>,
    reader: String,
}

impl PcscCard {
    pub fn reader(&self) -> &str {
        &self.reader
    }

    /// Begin a transaction. If another program reset the card, reconnect once (leaving the
    /// card as it is) and retry. A card another program left unpowered (ykman does) is
    /// [`PcscError::Unpowered`]: connect again, which powers it up as any client's connect does.
    pub fn transaction(&mut self) -> Result<PcscTransaction<'_>, PcscError> {
        let card = self.card.as_mut().ok_or(PcscError::CardRemoved)?;
        let transaction = match card.transaction2() {
            Ok(transaction) => transaction,
            Err((card, pcsc::Error::ResetCard)) => {
                debug!(
                    reader = self.reader,
                    "card was reset by another program; reconnecting"
                );
                card.reconnect(ShareMode::Shared, Protocols::ANY, Disposition::LeaveCard)?;
                card.transaction()?
            }
            Err((_, pcsc::Error::UnpoweredCard)) => return Err(PcscError::Unpowered),
            Err((_, error)) => return Err(error.into()),
        };
        Ok(PcscTransaction {
            transaction,
            buffer: vec![0; pcsc::MAX_BUFFER_SIZE_EXTENDED],
        })
    }
}

impl Drop for PcscCard {
    fn drop(&mut self) {
        if let Some(card) = self.card.take()
            && let Err((_card, error)) = card.disconnect(Disposition::LeaveCard)
        {
            warn!(reader = self.reader, %error, "disconnect failed");
        }
    }
}

/// One PC/SC transaction; ends (LeaveCard) when dropped.
pub struct PcscTransaction<'card> {
    transaction: pcsc::Transaction<'card>,
    buffer: Vec<u8>,
}

impl Transport for PcscTransaction<'_> {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        match self.transaction.transmit(apdu, &mut self.buffer) {
            Ok(response) => Ok(response.to_vec()),
            // pcscd ends the transaction of a card that left: the same thing.
            Err(
                pcsc::Error::RemovedCard | pcsc::Error::NoSmartcard | pcsc::Error::NotTransacted,
            ) => Err(TransportError::CardRemoved),
            // Reset, or reconnected by another program with another protocol: start over.
            Err(pcsc::Error::ResetCard | pcsc::Error::ProtoMismatch) => {
                Err(TransportError::CardReset)
            }
            Err(pcsc::Error::Timeout) => Err(TransportError::Timeout),
            Err(e) => Err(TransportError::Io(e.to_string())),
        }
    }
}
