//! The set of keys: PC/SC keys as pcscd reports them, plus in-process virtual keys.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};
use tracing::{debug, info, warn};

use super::error::CoreError;
use super::hid_watch::{self, HidEvent};
use super::hotplug::{PcscEvent, spawn_monitor};
use super::worker::{
    Arrival, DeviceHandle, DeviceInfo, Link, WorkerEvents, identify, identify_and_list,
};
use crate::transport::hid::discovery::{HidKey, HidKind};
use crate::transport::pcsc::{Insertion, Pcsc};

/// What the manager tells its owner (the D-Bus layer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CoreEvent {
    Added(String),
    Removed(String),
    TouchPending {
        device: String,
        account: String,
        pending: bool,
    },
}

/// A key as seen from outside: its description and the handle to its worker.
#[derive(Clone)]
pub struct DeviceSnapshot {
    pub info: DeviceInfo,
    pub handle: DeviceHandle,
}

struct Entry {
    info: DeviceInfo,
    handle: DeviceHandle,
    /// The card's insertion when it was identified (PC/SC keys): the monitor's first report
    /// of a card the start-up scan already identified needs no second SELECT.
    insertion: Option<Insertion>,
    /// The HID label when the key is (also) reached over HID.
    hid: Option<String>,
    /// The PC/SC reader when the key is (also) reached over CCID.
    ccid: Option<String>,
}

pub struct DeviceManager {
    devices: Mutex<BTreeMap<String, Entry>>,
    events: UnboundedSender<CoreEvent>,
}

struct Relay(UnboundedSender<CoreEvent>);

impl WorkerEvents for Relay {
    fn touch_pending(&self, device: &str, account: &str, pending: bool) {
        let _ = self.0.send(CoreEvent::TouchPending {
            device: device.to_owned(),
            account: account.to_owned(),
            pending,
        });
    }
}

impl DeviceManager {
    pub fn new(events: UnboundedSender<CoreEvent>) -> Arc<Self> {
        Arc::new(Self {
            devices: Mutex::new(BTreeMap::new()),
            events,
        })
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Entry>> {
        self.devices.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn devices(&self) -> Vec<DeviceSnapshot> {
        self.lock()
            .values()
            .map(|e| DeviceSnapshot {
                info: e.info.clone(),
                handle: e.handle.clone(),
            })
            .collect()
    }

    /// How the key is reached now: "ccid" (PC/SC), "hid" (CTAPHID or the OTP interface),
    /// both for a key found on both; empty for a virtual key or an unknown id.
    pub fn transports(&self, id: &str) -> Vec<&'static str> {
        let devices = self.lock();
        let Some(entry) = devices.get(id) else {
            return Vec::new();
        };
        let mut transports = Vec::new();
        if entry.ccid.is_some() {
            transports.push("ccid");
        }
        if entry.hid.is_some() {
            transports.push("hid");
        }
        transports
    }

    pub fn get(&self, id: &str) -> Result<DeviceSnapshot, CoreError> {
        self.lock()
            .get(id)
            .map(|e| DeviceSnapshot {
                info: e.info.clone(),
                handle: e.handle.clone(),
            })
            .ok_or(CoreError::NoDevice)
    }

    /// Record new facts about a key (password set or cleared; a reset changes its id).
    pub fn update(&self, old_id: &str, info: DeviceInfo) {
        let renamed = old_id != info.id;
        {
            let mut devices = self.lock();
            let Some(mut entry) = devices.remove(old_id) else {
                return;
            };
            entry.info = info.clone();
            devices.insert(info.id.clone(), entry);
        }
        if renamed {
            let _ = self.events.send(CoreEvent::Removed(old_id.to_owned()));
            let _ = self.events.send(CoreEvent::Added(info.id));
        }
    }

    /// Whether the key with device id `id` is already served (found another way).
    fn knows(&self, id: &str) -> bool {
        self.lock().contains_key(id)
    }

    /// Whether `reader` holds a key identified during this same insertion.
    fn knows_insertion(&self, reader: &str, now: &Insertion) -> bool {
        self.lock()
            .values()
            .any(|e| e.info.reader == reader && e.insertion.as_ref() == Some(now))
    }

    /// Keep a key found on `link` (`arrival`: what its identification also read).
    fn add(
        &self,
        link: Link,
        info: DeviceInfo,
        insertion: Option<Insertion>,
        arrival: Option<Arrival>,
    ) {
        let id = info.id.clone();
        let (ccid, hid) = match &link {
            Link::Pcsc { reader } => (Some(reader.clone()), None),
            Link::Hid { label, .. } | Link::Otp { label, .. } => (None, Some(label.clone())),
            Link::Virtual { .. } | Link::Sealed { .. } => (None, None),
        };
        {
            let mut devices = self.lock();
            if let Some(entry) = devices.get_mut(&id) {
                if entry.info.reader == info.reader
                    || (hid.is_some() && entry.hid == hid)
                    || (ccid.is_some() && entry.ccid == ccid)
                {
                    return; // already known (found by the start-up scan and by a monitor)
                }
                // The same key on its other transport: one device, two ways in.
                let other_side = (hid.is_some() && entry.hid.is_none() && entry.ccid.is_some())
                    || (ccid.is_some() && entry.ccid.is_none() && entry.hid.is_some());
                if other_side {
                    info!(
                        device = id,
                        reader = info.reader,
                        "key also reachable this way"
                    );
                    if ccid.is_some() {
                        entry.ccid = ccid;
                        entry.info.reader = info.reader.clone();
                    } else {
                        entry.hid = hid;
                    }
                    let _ = entry.handle.post(move |worker| worker.attach(link));
                    return;
                }
            }
        }
        let handle = DeviceHandle::spawn(
            link,
            info.clone(),
            arrival,
            Arc::new(Relay(self.events.clone())),
        );
        let replaced = self
            .lock()
            .insert(
                id.clone(),
                Entry {
                    info,
                    handle,
                    insertion,
                    hid,
                    ccid,
                },
            )
            .is_some();
        if replaced {
            let _ = self.events.send(CoreEvent::Removed(id.clone()));
        }
        info!(device = id, "key added");
        let _ = self.events.send(CoreEvent::Added(id));
    }

    fn remove_reader(&self, reader: &str) {
        self.remove_where(reader, false);
    }

    /// A HID device (hidraw node or bridge socket, by label) went away.
    pub fn remove_hid(&self, label: &str) {
        self.remove_where(label, true);
    }

    /// Drop the keys reached through `name` (a reader, or a HID label when `hid`); a key
    /// still reachable the other way stays, without events.
    fn remove_where(&self, name: &str, hid: bool) {
        let removed: Vec<String> = {
            let mut devices = self.lock();
            let mut ids = Vec::new();
            for (id, entry) in devices.iter_mut() {
                let (side, other) = if hid {
                    (&mut entry.hid, &entry.ccid)
                } else {
                    (&mut entry.ccid, &entry.hid)
                };
                let matches = !entry.info.is_virtual
                    && (side.as_deref() == Some(name) || (!hid && entry.info.reader == name));
                if !matches {
                    continue;
                }
                match other {
                    Some(other) => {
                        *side = None;
                        info!(
                            device = id,
                            name, "one way to the key is gone; the other serves"
                        );
                        entry.info.reader = other.clone();
                        let _ = entry.handle.post(move |worker| worker.detach(hid));
                    }
                    None => ids.push(id.clone()),
                }
            }
            for id in &ids {
                devices.remove(id);
            }
            ids
        };
        let reader = name;
        for id in removed {
            info!(device = id, reader, "key removed");
            let _ = self.events.send(CoreEvent::Removed(id));
        }
    }

    /// Host a virtual key (an emulated card in this process).
    pub async fn add_virtual(&self, link: Link) -> Result<(), CoreError> {
        let probe = link.clone();
        let info = tokio::task::spawn_blocking(move || identify(&probe, None))
            .await
            .map_err(|e| CoreError::Card(e.to_string()))??;
        self.add(link, info, None, None);
        Ok(())
    }

    /// Identify the keys plugged in right now (before serving, so the first call sees them).
    pub async fn scan_pcsc(&self) {
        let found = tokio::task::spawn_blocking(|| {
            let Ok(pcsc) = Pcsc::establish() else {
                return Vec::new();
            };
            let readers = pcsc.readers().unwrap_or_default();
            readers
                .into_iter()
                .filter_map(|reader| {
                    let insertion = pcsc.insertion(&reader).ok();
                    let link = Link::Pcsc { reader };
                    identify_and_list(&link, Some(&pcsc), crate::clock::unix_now(), &|_| false)
                        .ok()
                        .map(|(info, arrival)| (link, info, insertion, arrival))
                })
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_default();
        for (link, info, insertion, arrival) in found {
            self.add(link, info, insertion, arrival);
        }
    }

    /// Follow pcscd: add keys as they are inserted, drop them as they leave.
    pub fn watch_pcsc(self: &Arc<Self>) -> std::io::Result<()> {
        let (sender, mut receiver) = unbounded_channel();
        spawn_monitor(sender)?;
        let manager = Arc::clone(self);
        tokio::spawn(async move {
            while let Some(event) = receiver.recv().await {
                match event {
                    PcscEvent::CardInserted(reader) => {
                        let link = Link::Pcsc {
                            reader: reader.clone(),
                        };
                        let probe = link.clone();
                        let known = manager.clone();
                        let found = tokio::task::spawn_blocking(move || {
                            let pcsc = Pcsc::establish()?;
                            let insertion = pcsc.insertion(probe.reader()).ok();
                            if let Some(now) = &insertion
                                && known.knows_insertion(probe.reader(), now)
                            {
                                return Ok(None); // the start-up scan identified this one
                            }
                            let now = crate::clock::unix_now();
                            identify_and_list(&probe, Some(&pcsc), now, &|id| known.knows(id))
                                .map(|(info, arrival)| Some((info, insertion, arrival)))
                        })
                        .await;
                        match found {
                            Ok(Ok(Some((info, insertion, arrival)))) => {
                                manager.add(link, info, insertion, arrival)
                            }
                            Ok(Ok(None)) => {}
                            Ok(Err(error)) => debug!(reader, %error, "not an OATH key"),
                            Err(error) => warn!(%error, "identify task failed"),
                        }
                    }
                    PcscEvent::CardRemoved(reader) => manager.remove_reader(&reader),
                }
            }
        });
        Ok(())
    }

    /// Identify the HID keys present now (Nitrokey 3 Secrets App, YubiKey OTP slots).
    /// Returns how many HID interfaces answered.
    pub async fn scan_hid(&self, sockets: &[std::path::PathBuf]) -> usize {
        let sockets = sockets.to_vec();
        let found = tokio::task::spawn_blocking(move || {
            hid_watch::scan(&sockets)
                .into_iter()
                .filter_map(|key| identify_hid(&key))
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_default();
        let count = found.len();
        for (link, info) in found {
            self.add(link, info, None, None);
        }
        count
    }

    /// Follow HID devices: hidraw nodes and bridge sockets coming and going.
    pub fn watch_hid(self: &Arc<Self>, sockets: Vec<std::path::PathBuf>) -> std::io::Result<()> {
        let (sender, mut receiver) = unbounded_channel();
        hid_watch::spawn(sockets.clone(), sender.clone())?;
        // Bridge devices found by the start-up scan: their removal shows as end-of-file.
        for key in crate::transport::hid::discovery::enumerate(&sockets) {
            hid_watch::watch_presence(&key, sender.clone());
        }
        let manager = Arc::clone(self);
        tokio::spawn(async move {
            while let Some(event) = receiver.recv().await {
                match event {
                    HidEvent::Added(key) => {
                        let probe = key.clone();
                        let found = tokio::task::spawn_blocking(move || identify_hid(&probe))
                            .await
                            .ok()
                            .flatten();
                        if let Some((link, info)) = found {
                            hid_watch::watch_presence(&key, sender.clone());
                            manager.add(link, info, None, None);
                        }
                    }
                    HidEvent::Removed(label) => manager.remove_hid(&label),
                }
            }
        });
        Ok(())
    }
}

/// The link and description of a HID key we serve; `None` for others or on failure.
fn identify_hid(key: &HidKey) -> Option<(Link, DeviceInfo)> {
    let (path, label) = (key.path.clone(), key.label());
    let link = match key.kind {
        HidKind::SecretsApp => Link::Hid { path, label },
        HidKind::YubiOtp => Link::Otp { path, label },
    };
    match identify(&link, None) {
        Ok(info) => Some((link, info)),
        Err(error) => {
            debug!(device = key.label(), %error, "HID key did not answer");
            None
        }
    }
}
