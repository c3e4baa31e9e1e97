//! How a worker reaches its key: PC/SC, an in-process virtual card, or the Secrets App
//! over HID; and the one place a transport is opened for an operation.

use std::sync::{Arc, Mutex};

use tracing::debug;

use super::error::CoreError;
use super::worker::DeviceInfo;
use crate::emulator::{Card, EmulatorTransport};
use crate::oath::{Session, Transport};
use crate::transport::hid::discovery::HidPath;
use crate::transport::pcsc::{Pcsc, PcscError};

/// How to reach a key.
#[derive(Clone)]
pub enum Link {
    Pcsc {
        reader: String,
    },
    Virtual {
        card: Arc<Mutex<Card>>,
        label: String,
    },
    /// The Nitrokey 3 Secrets App over CTAPHID (hidraw or an emulator bridge socket).
    Hid {
        path: HidPath,
        label: String,
    },
}

impl Link {
    pub fn reader(&self) -> &str {
        match self {
            Self::Pcsc { reader } => reader,
            Self::Virtual { label, .. } | Self::Hid { label, .. } => label,
        }
    }
}

/// Identify the key behind `link`: one SELECT.
pub fn identify(link: &Link, pcsc: Option<&Pcsc>) -> Result<DeviceInfo, CoreError> {
    let describe = |session: &Session<&mut dyn Transport>, link: &Link| {
        let info = session.info();
        DeviceInfo {
            id: session.device_id(),
            name: match link {
                Link::Virtual { .. } => "Virtual key".to_owned(),
                Link::Pcsc { .. } | Link::Hid { .. } => session.quirks().kind.name().to_owned(),
            },
            is_virtual: matches!(link, Link::Virtual { .. }),
            reader: link.reader().to_owned(),
            firmware: info.version,
            serial: info.serial,
            has_password: session.has_password(),
            quirks: session.quirks().clone(),
        }
    };
    with_transport(link, None, pcsc, &mut |transport, reader| {
        let session = Session::open(transport, reader)?;
        Ok(describe(&session, link))
    })
}

/// What runs inside one transaction: the transport and the reader name (for quirks).
pub(super) type TransportAction<'a, R> =
    &'a mut dyn FnMut(&mut dyn Transport, Option<&str>) -> Result<R, CoreError>;

/// Open the right transport for `link` (one PC/SC transaction) and hand it to `action`;
/// `fallback` (the key's HID side) when the reader is held exclusively or pcscd is gone.
pub(super) fn with_transport<R>(
    link: &Link,
    fallback: Option<&Link>,
    pcsc: Option<&Pcsc>,
    action: TransportAction<'_, R>,
) -> Result<R, CoreError> {
    match link {
        Link::Pcsc { reader } => {
            let Some(pcsc) = pcsc else {
                return match fallback {
                    Some(hid) => with_transport(hid, None, None, action),
                    None => Err(CoreError::DeviceRemoved),
                };
            };
            let mut attempt = 0;
            loop {
                attempt += 1;
                let mut card = match pcsc.connect(reader) {
                    Ok(card) => card,
                    Err(PcscError::SharingViolation(_) | PcscError::NoService)
                        if fallback.is_some() =>
                    {
                        debug!(reader, "reader unavailable; using the key's HID side");
                        return match fallback {
                            Some(hid) => with_transport(hid, None, None, action),
                            None => Err(CoreError::DeviceRemoved),
                        };
                    }
                    Err(error) => return Err(error.into()),
                };
                match card.transaction() {
                    Ok(mut transaction) => return action(&mut transaction, Some(reader)),
                    // Left unpowered by another program: a fresh connection powers it up.
                    Err(PcscError::Unpowered) if attempt < 3 => continue,
                    Err(error) => return Err(error.into()),
                }
            }
        }
        Link::Virtual { card, .. } => {
            let mut transport = EmulatorTransport::from_shared(card.clone());
            action(&mut transport, None)
        }
        Link::Hid { path, label } => {
            let mut transport = path
                .open_secrets()
                .map_err(crate::oath::OathError::Transport)?;
            action(&mut transport, Some(label))
        }
    }
}
