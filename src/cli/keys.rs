//! Finding connected OATH keys and running one transaction on each.

use std::io::IsTerminal;

use serde::Serialize;
use tracing::debug;

use super::error::{CliError, CliResult};
use std::collections::HashMap;

use crate::oath::{CodeEntry, OathError, Session, Transport, Version};
use crate::secrets::SecretStore;
use crate::transport::hid::discovery::HidPath;
use crate::transport::pcsc::{Pcsc, PcscCard, PcscError, fallback_shared_wait};

/// Which keys a command may touch (`--reader`, `--device`), and extra HID bridge sockets
/// to look at (`--hid-socket`).
#[derive(Debug, Clone, Default)]
pub struct KeyFilter {
    pub reader: Option<String>,
    pub device: Option<String>,
    pub hid_sockets: Vec<std::path::PathBuf>,
}

/// How to reach a key found by direct discovery.
#[derive(Debug, Clone, Default)]
pub struct KeyAccess {
    /// The PC/SC reader holding it.
    pub ccid: Option<String>,
    /// Its HID interface (the Secrets App over CTAPHID, or the OTP application).
    pub hid: Option<HidPath>,
    /// The key is a YubiKey OTP application (slots, not YKOATH accounts).
    pub otp: bool,
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
    /// Where the key was found: "ccid" (PC/SC), "hid" (empty when the daemon answered).
    /// Printed only for keys with a HID side, so CCID-only output stays as it was.
    #[serde(skip_serializing_if = "ccid_only")]
    pub transports: Vec<String>,
    #[serde(skip)]
    pub access: KeyAccess,
}

pub struct Keys {
    pcsc: Option<Pcsc>,
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

pub type KeySession<'a> = Session<Box<dyn Transport + 'a>>;

impl Keys {
    /// Every reader holding a card with the OATH applet that passes `filter`.
    pub fn discover(filter: &KeyFilter) -> CliResult<Self> {
        Self::discover_prefetching(filter, None)
    }

    /// Like [`Keys::discover`]; with `codes_at`, unlocked keys also calculate their codes
    /// for that time in the discovery transaction, reusing its SELECT: `code` then costs
    /// SELECT + CALCULATE ALL, the physical minimum.
    pub fn discover_prefetching(filter: &KeyFilter, codes_at: Option<u64>) -> CliResult<Self> {
        let pcsc = match Pcsc::establish() {
            Ok(pcsc) => Some(pcsc),
            Err(error) => {
                debug!(%error, "no PC/SC; looking for HID keys only");
                None
            }
        };
        let mut keys = Vec::new();
        let mut prefetched = HashMap::new();
        // Why PC/SC found nothing, reported when HID finds nothing either.
        let mut pcsc_problem: Option<CliError> = None;
        let readers = match &pcsc {
            Some(pcsc) => match pcsc.matching_readers(filter.reader.as_deref()) {
                Ok(readers) => readers,
                Err(error) => {
                    pcsc_problem = Some(error.into());
                    Vec::new()
                }
            },
            None => Vec::new(),
        };
        for reader in readers {
            let Some(pcsc) = &pcsc else { break };
            let mut card = match pcsc.connect(&reader) {
                Ok(card) => card,
                Err(PcscError::NoCard(_) | PcscError::CardRemoved) => continue,
                // Held by another program: its HID side may still answer.
                Err(error @ PcscError::SharingViolation(_)) => {
                    debug!(reader, %error, "reader held exclusively; trying HID");
                    pcsc_problem = Some(error.into());
                    continue;
                }
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
                transports: vec!["ccid".to_owned()],
                access: KeyAccess {
                    ccid: Some(reader.clone()),
                    ..KeyAccess::default()
                },
            };
            if !filter.accepts(&key) {
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
        super::hid_keys::discover(filter, codes_at, &mut keys, &mut prefetched);
        if keys.is_empty() {
            if let Some(problem) = pcsc_problem {
                return Err(problem);
            }
            return Err(CliError::NoKey(
                match (&filter.reader, &filter.device, &pcsc) {
                    (_, Some(device), _) => {
                        format!("no OATH key with id or serial {device:?} found")
                    }
                    (Some(reader), None, _) => {
                        format!("no OATH key found in readers matching {reader:?}")
                    }
                    (None, None, None) => "no OATH key found: pcscd is not running and no HID key \
                                       (Nitrokey 3, YubiKey OTP) was found"
                        .to_owned(),
                    (None, None, Some(_)) => "no OATH key found: is it plugged in?".to_owned(),
                },
            ));
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
        if key.access.otp {
            return Err(OathError::NotSupported(
                "this is a YubiKey OTP application (slots 1 and 2), not an OATH applet".into(),
            )
            .into());
        }
        let mut card = None;
        let transport = self.open_transport(key, &mut card)?;
        let mut session = Session::open(transport, Some(&key.reader))?;
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

impl Keys {
    /// CCID when the key has it and it is free; HID when the reader is held exclusively
    /// by another program (or the key has no CCID side).
    fn open_transport<'c>(
        &self,
        key: &Key,
        card: &'c mut Option<PcscCard>,
    ) -> CliResult<Box<dyn Transport + 'c>> {
        if let (Some(reader), Some(pcsc)) = (&key.access.ccid, &self.pcsc) {
            let connected = match key.access.hid {
                Some(_) => pcsc.connect_waiting(reader, fallback_shared_wait()),
                None => pcsc.connect(reader),
            };
            match connected {
                Ok(connected) => {
                    let connected = card.insert(connected);
                    return Ok(Box::new(connected.transaction()?));
                }
                Err(error @ PcscError::SharingViolation(_)) if key.access.hid.is_some() => {
                    debug!(reader, %error, "reader held exclusively; using HID");
                }
                Err(error) => return Err(error.into()),
            }
        }
        let Some(hid) = &key.access.hid else {
            return Err(CliError::NoKey(format!(
                "key {} is no longer reachable",
                key.id
            )));
        };
        Ok(Box::new(hid.open_secrets().map_err(OathError::Transport)?))
    }
}

impl KeyFilter {
    /// `--device` matches the key's id or serial number.
    pub fn accepts(&self, key: &Key) -> bool {
        match &self.device {
            Some(wanted) => {
                key.id == *wanted
                    || key.serial.map(|s| s.to_string()).as_deref() == Some(wanted.as_str())
            }
            None => true,
        }
    }
}

fn ccid_only(transports: &[String]) -> bool {
    !transports.iter().any(|t| t == "hid")
}

impl Key {
    /// "ccid+hid" for a key with a HID side, else `None`.
    pub fn transports_note(&self) -> Option<String> {
        (!ccid_only(&self.transports)).then(|| self.transports.join("+"))
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
