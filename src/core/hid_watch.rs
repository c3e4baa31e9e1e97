//! HID hotplug without polling: inotify on `/dev` (hidraw nodes appear, get their
//! permissions from udev, and vanish) and on the directories of the bridge sockets; a
//! bridge device's removal is seen as end-of-file on a connection held open to it (also
//! when the emulator was killed and its socket file stayed).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Read;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use inotify::{Inotify, WatchMask};
use tokio::sync::mpsc::UnboundedSender;
use tracing::{debug, info, warn};

use crate::transport::hid::discovery::{self, HidKey, HidPath};

/// What the watcher reports.
#[derive(Debug, Clone)]
pub enum HidEvent {
    /// A HID key we speak appeared (or its node's permissions changed: try again).
    Added(HidKey),
    /// The device with this label went away.
    Removed(String),
}

/// The current HID keys (hidraw and `sockets`).
pub fn scan(sockets: &[PathBuf]) -> Vec<HidKey> {
    discovery::enumerate(sockets)
}

/// Start the watcher thread; it stops when `events` is closed.
pub fn spawn(sockets: Vec<PathBuf>, events: UnboundedSender<HidEvent>) -> std::io::Result<()> {
    let mut inotify = Inotify::init()?;
    let dev_mask = WatchMask::CREATE | WatchMask::DELETE | WatchMask::ATTRIB;
    let dev = inotify.watches().add("/dev", dev_mask);
    if let Err(error) = &dev {
        warn!(%error, "cannot watch /dev for hidraw devices");
    }
    // Socket file name → full path, per watched directory.
    let mut socket_names: BTreeMap<OsString, Vec<PathBuf>> = BTreeMap::new();
    for socket in &sockets {
        let dir = socket
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if let Err(error) = inotify
            .watches()
            .add(dir, WatchMask::CREATE | WatchMask::MOVED_TO)
        {
            warn!(dir = %dir.display(), %error, "cannot watch the HID bridge socket directory");
        }
        if let Some(name) = socket.file_name() {
            socket_names
                .entry(name.to_owned())
                .or_default()
                .push(socket.clone());
        }
    }
    std::thread::Builder::new()
        .name("hid-monitor".into())
        .spawn(move || {
            let mut hidraw: BTreeMap<String, HidKey> = hidraw_keys();
            let mut buffer = [0u8; 4096];
            info!("watching for HID keys");
            loop {
                let events_read = match inotify.read_events_blocking(&mut buffer) {
                    Ok(read) => read,
                    Err(error) => {
                        warn!(%error, "HID monitor stopped");
                        return;
                    }
                };
                let mut dev_changed = false;
                let mut sockets_created = Vec::new();
                for event in events_read {
                    let Some(name) = event.name else { continue };
                    if dev.as_ref().is_ok_and(|wd| *wd == event.wd) {
                        dev_changed |= name.to_string_lossy().starts_with("hidraw");
                    } else if let Some(paths) = socket_names.get(name) {
                        sockets_created.extend(paths.iter().cloned());
                    }
                }
                if dev_changed {
                    let now = hidraw_keys();
                    for (path, key) in &hidraw {
                        if !now.contains_key(path)
                            && events.send(HidEvent::Removed(key.label())).is_err()
                        {
                            return;
                        }
                    }
                    // New nodes, and known ones again (their permissions may have changed).
                    for key in now.values() {
                        if events.send(HidEvent::Added(key.clone())).is_err() {
                            return;
                        }
                    }
                    hidraw = now;
                }
                for socket in sockets_created {
                    if let Some(key) = describe_new_socket(&socket)
                        && events.send(HidEvent::Added(key)).is_err()
                    {
                        return;
                    }
                }
                if events.is_closed() {
                    return;
                }
            }
        })
        .map(|_| ())
}

/// A socket file appears at bind(), a moment before its server listens: ask it a few
/// times (bounded, right after the event; not polling).
fn describe_new_socket(socket: &Path) -> Option<HidKey> {
    for _ in 0..NEW_SOCKET_ATTEMPTS {
        if let Some(key) = discovery::describe_bridge(socket) {
            return Some(key);
        }
        std::thread::sleep(NEW_SOCKET_PAUSE);
    }
    debug!(socket = %socket.display(), "new socket file, but no HID bridge answers");
    None
}

const NEW_SOCKET_ATTEMPTS: u32 = 25;
const NEW_SOCKET_PAUSE: std::time::Duration = std::time::Duration::from_millis(20);

fn hidraw_keys() -> BTreeMap<String, HidKey> {
    discovery::enumerate(&[])
        .into_iter()
        .filter_map(|key| match &key.path {
            HidPath::Hidraw(path) => Some((path.clone(), key)),
            HidPath::Bridge(_) => None,
        })
        .collect()
}

/// Report `key` (a bridge device) removed when its socket closes: a connection held open
/// that reads end-of-file when the emulator stops, however it stops.
pub fn watch_presence(key: &HidKey, events: UnboundedSender<HidEvent>) {
    let HidPath::Bridge(path) = &key.path else {
        return;
    };
    let mut stream = match UnixStream::connect(path) {
        Ok(stream) => stream,
        Err(error) => {
            debug!(path = %path.display(), %error, "bridge already gone");
            let _ = events.send(HidEvent::Removed(key.label()));
            return;
        }
    };
    let label = key.label();
    let spawned = std::thread::Builder::new()
        .name("hid-presence".into())
        .spawn(move || {
            let mut byte = [0u8; 64];
            // The device never writes unasked: any read result means it closed.
            loop {
                match stream.read(&mut byte) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
            let _ = events.send(HidEvent::Removed(label));
        });
    if let Err(error) = spawned {
        warn!(%error, "cannot watch a HID bridge device for removal");
    }
}
