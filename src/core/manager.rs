//! The set of keys: PC/SC keys as pcscd reports them, plus in-process virtual keys.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};
use tracing::{debug, info, warn};

use super::error::CoreError;
use super::hotplug::{PcscEvent, spawn_monitor};
use super::worker::{DeviceHandle, DeviceInfo, Link, WorkerEvents, identify};
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

    /// Whether `reader` holds a key identified during this same insertion.
    fn knows_insertion(&self, reader: &str, now: &Insertion) -> bool {
        self.lock()
            .values()
            .any(|e| e.info.reader == reader && e.insertion.as_ref() == Some(now))
    }

    fn add(&self, link: Link, info: DeviceInfo, insertion: Option<Insertion>) {
        let id = info.id.clone();
        if self
            .lock()
            .get(&id)
            .is_some_and(|e| e.info.reader == info.reader)
        {
            return; // already known (found by the start-up scan and again by the monitor)
        }
        let handle = DeviceHandle::spawn(link, info.clone(), Arc::new(Relay(self.events.clone())));
        let replaced = self
            .lock()
            .insert(
                id.clone(),
                Entry {
                    info,
                    handle,
                    insertion,
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
        let removed: Vec<String> = {
            let mut devices = self.lock();
            let ids: Vec<String> = devices
                .iter()
                .filter(|(_, e)| !e.info.is_virtual && e.info.reader == reader)
                .map(|(id, _)| id.clone())
                .collect();
            for id in &ids {
                devices.remove(id);
            }
            ids
        };
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
        self.add(link, info, None);
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
                    identify(&link, Some(&pcsc))
                        .ok()
                        .map(|info| (link, info, insertion))
                })
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_default();
        for (link, info, insertion) in found {
            self.add(link, info, insertion);
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
                            identify(&probe, Some(&pcsc)).map(|info| Some((info, insertion)))
                        })
                        .await;
                        match found {
                            Ok(Ok(Some((info, insertion)))) => manager.add(link, info, insertion),
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
}
