//! One worker thread per key. PC/SC calls block, so each key gets a plain thread that
//! owns all access to it; async callers queue jobs and await the reply. Because jobs run
//! one at a time, concurrent requests for the same time step find the code cache filled
//! by the first one: one card round trip serves them all.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Instant;

use serde::Serialize;
use tokio::sync::oneshot;
use tracing::{debug, info, warn};

use super::cache::SharedCache;
use super::error::CoreError;
use crate::import::apply::apply;
use crate::import::plan::{KeyView, Planned, plan_key};
use crate::oath::auth::AccessKey;
use crate::oath::{
    Code, CodeEntry, Credential, CredentialData, CredentialId, Quirks, Session, Transport, Version,
};
use crate::otp::OathType;
use crate::transport::pcsc::{Insertion, Pcsc};

pub use super::link::{Arrival, Link, identify, identify_and_list};
use super::link::{otp, with_transport};

/// Unlocking, passwords, locking, identify, reset: the second half of [`Worker`].
mod access;
/// Listing, codes and writes: the operations a worker runs for callers.
mod operations;

/// What a key told us when it was found.
#[derive(Debug, Clone, Serialize)]
pub struct DeviceInfo {
    pub id: String,
    pub name: String,
    pub is_virtual: bool,
    pub reader: String,
    pub firmware: Version,
    pub serial: Option<u32>,
    pub has_password: bool,
    pub quirks: Quirks,
}

/// Notifications a worker sends while it works (touch prompts).
pub trait WorkerEvents: Send + Sync {
    fn touch_pending(&self, device: &str, account: &str, pending: bool);
}

type Job = Box<dyn FnOnce(&mut Worker) + Send>;

/// Lock state, readable without queueing behind a running operation (a touch wait).
#[derive(Default)]
pub struct LockStatus {
    has_password: AtomicBool,
    unlocked: AtomicBool,
}

impl LockStatus {
    /// A password is set and its key is not in memory.
    pub fn locked(&self) -> bool {
        self.has_password.load(Ordering::Relaxed) && !self.unlocked.load(Ordering::Relaxed)
    }
}

/// The async side of a worker. Dropping every handle stops the thread.
#[derive(Clone)]
pub struct DeviceHandle {
    jobs: mpsc::Sender<Job>,
    pub status: Arc<LockStatus>,
    cache: SharedCache,
}

impl DeviceHandle {
    /// Start a worker for a key already identified as `info`, with what its identification
    /// also read (`arrival`: accounts and codes, kept for the first listing).
    pub fn spawn(
        link: Link,
        info: DeviceInfo,
        arrival: Option<Arrival>,
        events: Arc<dyn WorkerEvents>,
    ) -> Self {
        let (jobs, queue) = mpsc::channel::<Job>();
        let name = format!("key-{}", info.id);
        let status = Arc::new(LockStatus::default());
        status
            .has_password
            .store(info.has_password, Ordering::Relaxed);
        let cache = SharedCache::default();
        if let Some(arrival) = arrival {
            let mut cache = cache.lock();
            if let Some(codes) = arrival.codes {
                cache.insert(arrival.at, codes);
            }
            cache.keep_listing(arrival.at, arrival.credentials);
        }
        let mut worker = Worker {
            status: status.clone(),
            link,
            fallback: None,
            pcsc: None,
            info,
            access_key: None,
            unlocked_in: None,
            cache: cache.clone(),
            failed_unlocks: 0,
            next_unlock_at: None,
            events,
        };
        let spawned = std::thread::Builder::new().name(name).spawn(move || {
            while let Ok(job) = queue.recv() {
                job(&mut worker);
            }
            debug!(device = worker.info.id, "worker stopped");
        });
        if let Err(error) = spawned {
            warn!(%error, "cannot start a key worker");
        }
        Self {
            jobs,
            status,
            cache,
        }
    }

    /// Codes at `timestamp`: from the cache when it can answer, else from the worker
    /// (queued behind other operations on this key).
    pub async fn codes(&self, timestamp: u64) -> Result<Arc<Vec<CodeEntry>>, CoreError> {
        match self.cached_codes(timestamp) {
            Some(entries) => Ok(entries),
            None => self.run(move |worker| worker.codes(Some(timestamp))).await,
        }
    }

    /// [`Worker::relist`] at `timestamp`, sharing a relist with concurrent callers: None
    /// if one that started after this call did the work.
    pub async fn relist(&self, timestamp: u64) -> Result<Option<Vec<Credential>>, CoreError> {
        let seen = self.cache.lock().relists();
        self.run(move |worker| worker.relist(timestamp, seen)).await
    }

    /// Codes at `timestamp` straight from the cache, without queueing behind a running
    /// operation. Only for keys without a password: their answers need no insertion check.
    /// The same `Arc` for every request of one step: callers may memoise on its address.
    pub fn cached_codes(&self, timestamp: u64) -> Option<Arc<Vec<CodeEntry>>> {
        if self.status.has_password.load(Ordering::Relaxed) {
            return None;
        }
        self.cache.lock().get(timestamp)
    }

    /// Queue `job` on the worker without waiting for it.
    pub fn post(&self, job: impl FnOnce(&mut Worker) + Send + 'static) -> Result<(), CoreError> {
        self.jobs
            .send(Box::new(job))
            .map_err(|_| CoreError::DeviceRemoved)
    }

    /// Run `job` on the worker and wait for its answer.
    pub async fn run<R: Send + 'static>(
        &self,
        job: impl FnOnce(&mut Worker) -> Result<R, CoreError> + Send + 'static,
    ) -> Result<R, CoreError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Box::new(move |worker| {
                let result = job(worker);
                // Before replying: the caller may read the lock state right away.
                worker.publish();
                let _ = reply.send(result);
            }))
            .map_err(|_| CoreError::DeviceRemoved)?;
        answer.await.map_err(|_| CoreError::DeviceRemoved)?
    }
}

pub struct Worker {
    status: Arc<LockStatus>,
    link: Link,
    /// The same key's HID side, used while its CCID reader is held exclusively by another
    /// program or pcscd is gone.
    fallback: Option<Link>,
    pcsc: Option<Pcsc>,
    info: DeviceInfo,
    /// The derived password key, kept in memory while the key stays plugged in.
    access_key: Option<AccessKey>,
    /// The insertion the access key belongs to: a card that left the reader since (even
    /// while the daemon was frozen, e.g. in a suspend) must be unlocked again.
    unlocked_in: Option<Insertion>,
    cache: SharedCache,
    failed_unlocks: u32,
    next_unlock_at: Option<Instant>,
    events: Arc<dyn WorkerEvents>,
}

impl Worker {
    pub fn info(&self) -> &DeviceInfo {
        &self.info
    }

    pub fn is_unlocked(&self) -> bool {
        match &self.link {
            Link::Sealed { key, .. } => key.is_open(),
            _ => !self.info.has_password || self.access_key.is_some(),
        }
    }

    /// Connect to pcscd for a PC/SC link (not an error while the HID side can serve).
    fn establish_pcsc(&mut self) -> Result<(), CoreError> {
        if !matches!(self.link, Link::Pcsc { .. }) || self.pcsc.is_some() {
            return Ok(());
        }
        match Pcsc::establish() {
            Ok(pcsc) => self.pcsc = Some(pcsc),
            Err(error) if self.fallback.is_none() => return Err(error.into()),
            Err(error) => debug!(%error, "no pcscd; the key's HID side serves"),
        }
        Ok(())
    }

    /// The key was also found on `link` (CCID and HID of one key): CCID becomes the way
    /// in, HID the fallback.
    pub fn attach(&mut self, link: Link) {
        match link {
            Link::Hid { .. } if matches!(self.link, Link::Pcsc { .. }) => {
                self.fallback = Some(link);
            }
            Link::Pcsc { .. } if matches!(self.link, Link::Hid { .. }) => {
                self.fallback = Some(std::mem::replace(&mut self.link, link));
                self.pcsc = None;
            }
            _ => {}
        }
        self.info.reader = self.link.reader().to_owned();
    }

    /// One side of a two-transport key went away; the other serves from now on.
    pub fn detach(&mut self, hid: bool) {
        let Some(fallback) = self.fallback.take() else {
            return;
        };
        if !hid {
            // The CCID side left: HID becomes the way in.
            self.link = fallback;
            self.pcsc = None;
            self.lock();
        }
        self.info.reader = self.link.reader().to_owned();
    }

    /// Make the lock state visible to readers that must not wait for the queue.
    fn publish(&self) {
        let (has_password, unlocked) = match &self.link {
            Link::Sealed { key, .. } => (true, key.is_open()),
            _ => (self.info.has_password, self.access_key.is_some()),
        };
        self.status
            .has_password
            .store(has_password, Ordering::Relaxed);
        self.status.unlocked.store(unlocked, Ordering::Relaxed);
    }

    /// The card's insertion now (None for virtual keys, or when pcscd cannot tell).
    fn insertion(&mut self) -> Option<Insertion> {
        let Link::Pcsc { reader } = &self.link else {
            return None;
        };
        if self.pcsc.is_none() {
            self.pcsc = Pcsc::establish().ok();
        }
        self.pcsc.as_ref()?.insertion(reader).ok()
    }

    /// Keep `key` as this insertion's access key.
    fn keep_access_key(&mut self, key: AccessKey, insertion: Option<Insertion>) {
        self.access_key = Some(key);
        self.unlocked_in = insertion;
        self.cache.lock().clear();
    }

    /// Drop the access key (and codes made with it) if the card left its reader since it
    /// was unlocked: the event counter or ATR changed, or pcscd no longer sees the card.
    fn check_insertion(&mut self) {
        if let Link::Sealed { key, .. } = &self.link {
            if key.is_open() && !key.authenticator_present() {
                info!(
                    device = self.info.id,
                    "the FIDO2 key that opened this sealed key was pulled; locked again"
                );
                self.lock();
            }
            return;
        }
        if self.access_key.is_none() || !matches!(self.link, Link::Pcsc { .. }) {
            return;
        }
        let now = self.insertion();
        if now.is_none() || now != self.unlocked_in {
            info!(
                device = self.info.id,
                "the key left its reader since it was unlocked; locked again"
            );
            self.lock();
        }
    }

    /// One operation: transaction, SELECT, VALIDATE with the key in memory, then `action`.
    fn session<R>(
        &mut self,
        action: impl FnOnce(&mut Session<&mut dyn Transport>) -> Result<R, CoreError>,
    ) -> Result<R, CoreError> {
        self.establish_pcsc()?;
        self.check_insertion();
        let access_key = self.access_key.clone();
        let mut action = Some(action);
        let mut info = None;
        let result = with_transport(
            &self.link,
            self.fallback.as_ref(),
            self.pcsc.as_ref(),
            &mut |transport, reader| {
                let mut session = Session::open(transport, reader)?;
                info = Some((session.has_password(), session.device_id()));
                if session.is_locked() {
                    match &access_key {
                        Some(key) => session.validate(key.as_ref())?,
                        None => return Err(CoreError::Locked),
                    }
                }
                match action.take() {
                    Some(action) => action(&mut session),
                    None => Err(CoreError::Card("operation ran twice".into())),
                }
            },
        );
        if let Some((has_password, id)) = info {
            if id != self.info.id {
                // Another key sits in the reader now (or it was reset): treat as removed.
                return Err(CoreError::DeviceRemoved);
            }
            self.info.has_password = has_password || matches!(self.link, Link::Sealed { .. });
        }
        if let Err(CoreError::WrongPassword(_)) = &result {
            // The remembered key no longer matches (password changed elsewhere).
            self.access_key = None;
        }
        if matches!(result, Err(CoreError::DeviceRemoved)) {
            // Re-establish next time: pcscd may have restarted.
            self.pcsc = None;
        }
        result
    }
}
