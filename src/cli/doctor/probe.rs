//! The PC/SC side of `doctor`: a context, the readers, and what each reader holds.
//!
//! PC/SC calls run on their own thread, one step at a time; a step that does not answer
//! within [`TIMEOUT`] (pcscd frozen, a card kept busy in another program's transaction)
//! ends the probe and the thread is abandoned. Uses the `pcsc` crate directly: one
//! shared-mode connect attempt (no waiting for another program's hold), one transaction,
//! SELECT OATH, disconnect with `LeaveCard`.

use std::ffi::{CStr, CString};
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

use pcsc::{Context, Disposition, Protocols, ReaderState, Scope, ShareMode, State};
use tracing::debug;

use super::TIMEOUT;
use crate::oath::{OathError, Session, Transport, TransportError};

/// Where libpcsclite looks for pcscd.
pub const DEFAULT_SOCKET: &str = "/run/pcscd/pcscd.comm";

/// pcscd's client socket, and whether `$PCSCLITE_CSOCK_NAME` chose it.
#[derive(Debug, Clone)]
pub struct Socket {
    pub path: PathBuf,
    pub from_env: bool,
}

impl Socket {
    fn find() -> Self {
        match std::env::var_os("PCSCLITE_CSOCK_NAME") {
            Some(path) if !path.is_empty() => Self {
                path: path.into(),
                from_env: true,
            },
            _ => Self {
                path: DEFAULT_SOCKET.into(),
                from_env: false,
            },
        }
    }

    pub fn describe(&self) -> String {
        if self.from_env {
            format!("{} (from $PCSCLITE_CSOCK_NAME)", self.path.display())
        } else {
            self.path.display().to_string()
        }
    }
}

/// Whether pcscd answered a PC/SC context.
#[derive(Debug, Clone)]
pub enum Service {
    Running,
    /// The context was refused (no pcscd listening); the error text.
    Down(String),
    /// No answer within [`TIMEOUT`].
    Silent,
}

/// What is in one reader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Card {
    Empty,
    Key(KeyInfo),
    /// A card without the OATH applet.
    NotOath,
    /// A shared-mode connect was refused: another program holds it exclusively.
    Exclusive,
    /// The card (or pcscd) did not answer within [`TIMEOUT`].
    Silent,
    Error(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    pub kind: String,
    pub firmware: String,
    pub id: String,
    pub locked: bool,
}

/// Everything the PC/SC probe learned.
#[derive(Debug, Clone)]
pub struct Probe {
    pub socket: Socket,
    pub service: Service,
    /// `None` when pcscd did not list them.
    pub readers: Option<Vec<String>>,
    /// One per reader, in order, as far as the probe got.
    pub cards: Vec<(String, Card)>,
}

impl Probe {
    pub fn keys(&self) -> impl Iterator<Item = (&str, &KeyInfo)> {
        self.cards.iter().filter_map(|(reader, card)| match card {
            Card::Key(key) => Some((reader.as_str(), key)),
            _ => None,
        })
    }

    pub fn readers_with<'a>(&'a self, wanted: impl Fn(&Card) -> bool + 'a) -> Vec<&'a str> {
        self.cards
            .iter()
            .filter(move |(_, card)| wanted(card))
            .map(|(reader, _)| reader.as_str())
            .collect()
    }
}

enum Event {
    Established(Result<(), String>),
    Readers(Result<Vec<String>, String>),
    Reader(String, Card),
}

/// Asks pcscd for a context, its readers, and what each reader holds.
pub fn probe() -> Probe {
    let mut probe = Probe {
        socket: Socket::find(),
        service: Service::Silent,
        readers: None,
        cards: Vec::new(),
    };
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || probe_thread(&sender));
    match receiver.recv_timeout(TIMEOUT) {
        Ok(Event::Established(Ok(()))) => probe.service = Service::Running,
        Ok(Event::Established(Err(error))) => {
            probe.service = Service::Down(error);
            return probe;
        }
        _ => return probe,
    }
    let readers = match receiver.recv_timeout(TIMEOUT) {
        Ok(Event::Readers(Ok(readers))) => readers,
        Ok(Event::Readers(Err(error))) => {
            probe.service = Service::Down(error);
            return probe;
        }
        _ => return probe,
    };
    probe.readers = Some(readers.clone());
    for reader in readers {
        match receiver.recv_timeout(TIMEOUT) {
            Ok(Event::Reader(name, card)) => probe.cards.push((name, card)),
            _ => {
                probe.cards.push((reader, Card::Silent));
                break;
            }
        }
    }
    probe
}

/// The PC/SC side, on its own thread. Uses the `pcsc` crate directly: one connect attempt
/// (no waiting for another program's hold), disconnect with `LeaveCard`.
fn probe_thread(sender: &mpsc::Sender<Event>) {
    let context = match Context::establish(Scope::User) {
        Ok(context) => context,
        Err(error) => {
            let _ = sender.send(Event::Established(Err(error.to_string())));
            return;
        }
    };
    let _ = sender.send(Event::Established(Ok(())));
    let names = match context.list_readers_owned() {
        Ok(names) => names,
        Err(pcsc::Error::NoReadersAvailable) => Vec::new(),
        Err(error) => {
            let _ = sender.send(Event::Readers(Err(error.to_string())));
            return;
        }
    };
    let names: Vec<CString> = names
        .into_iter()
        .filter(|n| !n.to_string_lossy().starts_with("\\\\?PnP?"))
        .collect();
    let readers = names
        .iter()
        .map(|n| n.to_string_lossy().into_owned())
        .collect();
    let _ = sender.send(Event::Readers(Ok(readers)));
    for name in names {
        let reader = name.to_string_lossy().into_owned();
        let card = probe_reader(&context, &name, &reader);
        if sender.send(Event::Reader(reader, card)).is_err() {
            return;
        }
    }
}

/// Card present? Shared-mode connect, one transaction, SELECT OATH; left as it was.
fn probe_reader(context: &Context, name: &CStr, reader: &str) -> Card {
    let mut states = [ReaderState::new(name.to_owned(), State::UNAWARE)];
    if let Err(error) = context.get_status_change(Duration::ZERO, &mut states) {
        return Card::Error(error.to_string());
    }
    if !states[0].event_state().contains(State::PRESENT) {
        return Card::Empty;
    }
    let mut card = match context.connect(name, ShareMode::Shared, Protocols::ANY) {
        Ok(card) => card,
        Err(pcsc::Error::SharingViolation) => return Card::Exclusive,
        Err(pcsc::Error::NoSmartcard | pcsc::Error::RemovedCard) => return Card::Empty,
        Err(error) => return Card::Error(error.to_string()),
    };
    let found = identify(&mut card, reader);
    if let Err((_card, error)) = card.disconnect(Disposition::LeaveCard) {
        debug!(reader, %error, "disconnect failed");
    }
    found
}

fn identify(card: &mut pcsc::Card, reader: &str) -> Card {
    let transaction = match card.transaction() {
        Ok(transaction) => transaction,
        Err(pcsc::Error::SharingViolation) => return Card::Exclusive,
        Err(error) => return Card::Error(error.to_string()),
    };
    let transport = Exchange {
        transaction,
        buffer: vec![0; pcsc::MAX_BUFFER_SIZE_EXTENDED],
    };
    match Session::open(transport, Some(reader)) {
        Ok(session) => Card::Key(KeyInfo {
            kind: session.quirks().kind.name().to_owned(),
            firmware: session.info().version.to_string(),
            id: session.device_id(),
            locked: session.has_password(),
        }),
        Err(OathError::NoOathApplet(_)) => Card::NotOath,
        Err(error) => Card::Error(error.to_string()),
    }
}

/// APDUs inside one transaction (which ends with `LeaveCard` when dropped).
struct Exchange<'card> {
    transaction: pcsc::Transaction<'card>,
    buffer: Vec<u8>,
}

impl Transport for Exchange<'_> {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        match self.transaction.transmit(apdu, &mut self.buffer) {
            Ok(response) => Ok(response.to_vec()),
            Err(pcsc::Error::RemovedCard | pcsc::Error::NoSmartcard) => {
                Err(TransportError::CardRemoved)
            }
            Err(pcsc::Error::ResetCard) => Err(TransportError::CardReset),
            Err(error) => Err(TransportError::Io(error.to_string())),
        }
    }
}
