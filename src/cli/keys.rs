//! Finding connected OATH keys and running one transaction on each.

use std::io::IsTerminal;

use serde::Serialize;
use tracing::debug;

use super::error::{CliError, CliResult};
use std::collections::HashMap;

use crate::oath::{CodeEntry, OathError, Session, Version};
use crate::secrets::SecretStore;
use crate::transport::pcsc::{Pcsc, PcscError, PcscTransaction};

/// Which keys a command may touch (`--reader`, `--device`).
#[derive(Debug, Clone, Default)]
pub struct KeyFilter {
    pub reader: Option<String>,
    pub device: Option<String>,
}

/// A connected key, as found by discovery.
#[derive(Debug, Clone, Serialize)]
pub struct Key {
    pub id: String,
    pub reader: String,
    pub kind: String,
    pub firmware: Version,
    pub serial: Option<u32>,
    pub locked: bool,
    #[serde(skip)]
    pub capacity: Option<usize>,
}

pub struct Keys {
    pcsc: Pcsc,
    pub keys: Vec<Key>,
    /// Codes calculated in the discovery transaction (key index → time, entries).
    prefetched: HashMap<usize, (u64, Vec<CodeEntry>)>,
}

/// How to treat a key with a password.
#[derive(Debug, Clone, Copy)]
pub enum Unlock<'a> {
    /// Ask on the terminal; fail with "locked" without one.
    Prompt,
    /// Use this password.
    With(&'a str),
    /// Leave it locked (RESET needs no password).
    Skip,
}

pub type KeySession<'a> = Session<PcscTransaction<'a>>;

impl Keys {
    /// Every reader holding a card with the OATH applet that passes `filter`.
    pub fn discover(filter: &KeyFilter) -> CliResult<Self> {
        Self::discover_prefetching(filter, None)
    }

    /// Like [`Keys::discover`]; with `codes_at`, unlocked keys also calculate their codes
    /// for that time in the discovery transaction, reusing its SELECT: `code` then costs
    /// SELECT + CALCULATE ALL, the physical minimum.
    pub fn discover_prefetching(filter: &KeyFilter, codes_at: Option<u64>) -> CliResult<Self> {
        let pcsc = Pcsc::establish()?;
        let mut keys = Vec::new();
        let mut prefetched = HashMap::new();
        for reader in pcsc.matching_readers(filter.reader.as_deref())? {
            let mut card = match pcsc.connect(&reader) {
                Ok(card) => card,
                Err(PcscError::NoCard(_) | PcscError::CardRemoved) => continue,
                Err(e) => return Err(e.into()),
            };
            let transaction = card.transaction()?;
            let mut session = match Session::open(transaction, Some(&reader)) {
                Ok(session) => session,
                Err(OathError::NoOathApplet(sw)) => {
                    debug!(reader, %sw, "no OATH applet; skipping");
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            let info = session.info();
            let key = Key {
                id: session.device_id(),
                reader: reader.clone(),
                kind: session.quirks().kind.name().to_owned(),
                firmware: info.version,
                serial: info.serial,
                locked: session.has_password(),
                capacity: session.quirks().capacity,
            };
            if let Some(wanted) = &filter.device
                && key.id != *wanted
                && key.serial.map(|s| s.to_string()).as_deref() != Some(wanted.as_str())
            {
                continue;
            }
            if let Some(at) = codes_at
                && !session.is_locked()
            {
                match session.calculate_all(at) {
                    Ok(entries) => {
                        prefetched.insert(keys.len(), (at, entries));
                    }
                    // The key left: the command fails as it would have a moment later.
                    Err(error @ OathError::Transport(_)) => return Err(error.into()),
                    Err(error) => debug!(reader, %error, "no codes during discovery"),
                }
            }
            keys.push(key);
        }
        if keys.is_empty() {
            return Err(CliError::NoKey(match (&filter.reader, &filter.device) {
                (_, Some(device)) => format!("no OATH key with id or serial {device:?} found"),
                (Some(reader), None) => format!("no OATH key found in readers matching {reader:?}"),
                (None, None) => "no OATH key found: is it plugged in?".to_owned(),
            }));
        }
        Ok(Self {
            pcsc,
            keys,
            prefetched,
        })
    }

    /// The codes of key `index` at `at`, if discovery calculated them (once).
    pub fn take_prefetched(&mut self, index: usize, at: u64) -> Option<Vec<CodeEntry>> {
        match self.prefetched.remove(&index) {
            Some((time, entries)) if time == at => Some(entries),
            _ => None,
        }
    }

    /// The one key a write goes to; several keys need `--device` or `--reader`.
    pub fn single(&self) -> CliResult<&Key> {
        Ok(&self.keys[single_index(&self.keys)?])
    }

    /// Run `action` in one transaction on `key`, unlocking it first if it has a password.
    pub fn with_session<R>(
        &self,
        key: &Key,
        action: impl FnOnce(&mut KeySession<'_>) -> CliResult<R>,
    ) -> CliResult<R> {
        self.with_session_unlocking(key, Unlock::Prompt, action)
    }

    /// Like [`Keys::with_session`] with an explicit unlock policy.
    pub fn with_session_unlocking<R>(
        &self,
        key: &Key,
        unlock: Unlock<'_>,
        action: impl FnOnce(&mut KeySession<'_>) -> CliResult<R>,
    ) -> CliResult<R> {
        let mut card = self.pcsc.connect(&key.reader)?;
        let transaction = card.transaction()?;
        let mut session = Session::open(transaction, Some(&key.reader))?;
        if session.device_id() != key.id {
            return Err(CliError::NoKey(format!(
                "the key in {:?} changed since it was found",
                key.reader
            )));
        }
        if session.is_locked() {
            match unlock {
                Unlock::Prompt => unlock_interactively(&mut session, key)?,
                Unlock::With(password) => {
                    session.unlock(password)?;
                }
                Unlock::Skip => {}
            }
        }
        action(&mut session)
    }
}

/// Ask for the password on the terminal; without one, say how to unlock.
fn unlock_interactively(session: &mut KeySession<'_>, key: &Key) -> CliResult<()> {
    if unlock_from_memory(session, key) {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(OathError::Locked.into());
    }
    let password = rpassword::prompt_password(format!("Password for key {}: ", key.id))?;
    session.unlock(&password)?;
    Ok(())
}

/// Try the key remembered in the Secret Service. A remembered key that no longer works
/// (the password changed elsewhere) is dropped, with a note.
fn unlock_from_memory(session: &mut KeySession<'_>, key: &Key) -> bool {
    if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_none() {
        return false;
    }
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return false;
    };
    let remembered = runtime.block_on(async {
        let store = SecretStore::open_session_bus().await.ok()?;
        store.get(&key.id).await.ok().flatten()
    });
    let Some(remembered) = remembered else {
        return false;
    };
    match session.validate(&remembered) {
        Ok(()) => true,
        Err(OathError::WrongPassword) => {
            runtime.block_on(async {
                if let Ok(store) = SecretStore::open_session_bus().await {
                    let _ = store.forget(&key.id).await;
                }
            });
            eprintln!(
                "The remembered password for key {} no longer works; forgot it",
                key.id
            );
            false
        }
        Err(error) => {
            debug!(%error, "unlock with the remembered key failed");
            false
        }
    }
}

/// Index of the only key; an error naming them when there are several.
pub fn single_index(keys: &[Key]) -> CliResult<usize> {
    match keys.len() {
        1 => Ok(0),
        n => Err(CliError::Ambiguous(format!(
            "{n} keys connected ({}); choose one with --device or --reader",
            keys.iter()
                .map(|k| k.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}
