//! How a worker reaches its key: PC/SC, an in-process virtual card, or the Secrets App
//! over HID; and the one place a transport is opened for an operation.

use std::sync::{Arc, Mutex};

use tracing::debug;

use super::error::CoreError;
use super::worker::DeviceInfo;
use crate::emulator::{Card, EmulatorTransport};
use crate::oath::{Session, Transport};
use crate::transport::hid::discovery::HidPath;
use crate::transport::pcsc::{Pcsc, PcscError, fallback_shared_wait};

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
    /// A YubiKey OTP application: its challenge-response slots as TOTP accounts
    /// ([`crate::transport::hid::otp::accounts`]); no YKOATH session.
    Otp {
        path: HidPath,
        label: String,
    },
    /// A virtual key sealed by a FIDO2 key's hmac-secret: locked until opened by a touch.
    Sealed {
        key: Arc<crate::fido::vault::SealedVirtualKey>,
        label: String,
    },
}

impl Link {
    pub fn reader(&self) -> &str {
        match self {
            Self::Pcsc { reader } => reader,
            Self::Virtual { label, .. }
            | Self::Hid { label, .. }
            | Self::Otp { label, .. }
            | Self::Sealed { label, .. } => label,
        }
    }
}

/// What a key's first transaction read besides its identity: its accounts and codes at
/// `at` (unix seconds), so the worker need not SELECT and list again.
pub struct Arrival {
    pub at: u64,
    pub credentials: Vec<crate::oath::Credential>,
    pub codes: Option<Vec<crate::oath::CodeEntry>>,
}

/// Identify the key behind `link` and, unless it is locked or `known` (by device id: the
/// same key reached another way, whose worker has its accounts), list its accounts with
/// their codes at `now` in the same transaction: SELECT, LIST, CALCULATE ALL (issue 11:
/// one SELECT per operation). A listing that fails leaves the arrival out; the worker
/// lists again.
pub fn identify_and_list(
    link: &Link,
    pcsc: Option<&Pcsc>,
    now: u64,
    known: &dyn Fn(&str) -> bool,
) -> Result<(DeviceInfo, Option<Arrival>), CoreError> {
    if !matches!(link, Link::Pcsc { .. }) {
        return identify(link, pcsc).map(|info| (info, None));
    }
    with_transport(link, None, pcsc, &mut |transport, reader| {
        let mut session = Session::open(transport, reader)?;
        let info = describe(&session, link);
        let arrival = if session.is_locked() || known(&info.id) {
            None
        } else {
            match session.list_with_codes(now) {
                Ok((credentials, codes)) => Some(Arrival {
                    at: now,
                    credentials,
                    codes,
                }),
                Err(error) => {
                    debug!(%error, "listing with the identification failed");
                    None
                }
            }
        };
        Ok((info, arrival))
    })
}

/// What a SELECT tells about the key behind `link`.
fn describe(session: &Session<&mut dyn Transport>, link: &Link) -> DeviceInfo {
    let info = session.info();
    DeviceInfo {
        id: session.device_id(),
        name: match link {
            Link::Virtual { .. } | Link::Sealed { .. } => "Virtual key".to_owned(),
            Link::Pcsc { .. } | Link::Hid { .. } | Link::Otp { .. } => {
                session.quirks().kind.name().to_owned()
            }
        },
        is_virtual: matches!(link, Link::Virtual { .. } | Link::Sealed { .. }),
        reader: link.reader().to_owned(),
        firmware: info.version,
        serial: info.serial,
        // A sealed key needs its FIDO2 key to open, as a password-protected one.
        has_password: session.has_password() || matches!(link, Link::Sealed { .. }),
        quirks: session.quirks().clone(),
    }
}

/// Identify the key behind `link`: one SELECT.
pub fn identify(link: &Link, pcsc: Option<&Pcsc>) -> Result<DeviceInfo, CoreError> {
    if let Link::Otp { path, label } = link {
        return otp::identify(path, label);
    }
    if let Link::Sealed { key, .. } = link
        && !key.is_open()
    {
        // Locked: an empty card with the same salt answers SELECT with the same id.
        let mut stand_in = EmulatorTransport::new(key.stand_in());
        let session = Session::open(&mut stand_in as &mut dyn Transport, None)?;
        return Ok(describe(&session, link));
    }
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
                let connected = match fallback {
                    Some(_) => pcsc.connect_waiting(reader, fallback_shared_wait()),
                    None => pcsc.connect(reader),
                };
                let mut card = match connected {
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
        Link::Sealed { key, .. } => {
            let card = key.card().ok_or(CoreError::Locked)?;
            let mut transport = EmulatorTransport::from_shared(card);
            action(&mut transport, None)
        }
        Link::Otp { .. } => Err(CoreError::NotSupported(
            "a YubiKey OTP application has slots 1 and 2, not OATH accounts; program a slot \
             with `oathbridge add --slot`"
                .into(),
        )),
        Link::Hid { path, label } => {
            let mut transport = path
                .open_secrets()
                .map_err(crate::oath::OathError::Transport)?;
            action(&mut transport, Some(label))
        }
    }
}

/// The YubiKey OTP application as the core sees a key.
pub(super) mod otp {
    use super::{CoreError, DeviceInfo};
    use crate::oath::{Code, CodeEntry, Credential, DeviceKind, Quirks, Version};
    use crate::transport::hid::HidError;
    use crate::transport::hid::discovery::HidPath;
    use crate::transport::hid::otp::{OtpError, accounts};

    fn error(error: OtpError) -> CoreError {
        match error {
            OtpError::Hid(HidError::Disconnected) => CoreError::DeviceRemoved,
            OtpError::TouchTimeout => CoreError::TouchTimeout,
            other => CoreError::Card(format!("YubiKey OTP: {other}")),
        }
    }

    fn open(
        path: &HidPath,
    ) -> Result<
        crate::transport::hid::otp::OtpClient<Box<dyn crate::transport::hid::HidConnection>>,
        CoreError,
    > {
        path.open_otp().map_err(|e| error(e.into()))
    }

    /// Status and serial: id `yubikey-otp-SERIAL`, two slots of capacity.
    pub fn identify(path: &HidPath, label: &str) -> Result<DeviceInfo, CoreError> {
        let mut client = open(path)?;
        let status = client.read_status().map_err(error)?;
        let serial = client.serial().ok();
        let [major, minor, patch] = status.version;
        let firmware = Version(major, minor, patch);
        let quirks = Quirks {
            capacity: Some(2),
            password: false,
            rename: false,
            ..Quirks::for_device(DeviceKind::YubiKey, firmware)
        };
        Ok(DeviceInfo {
            id: match serial {
                Some(serial) => format!("yubikey-otp-{serial}"),
                None => format!("yubikey-otp-{}", path.display()),
            },
            name: "YubiKey OTP".to_owned(),
            is_virtual: false,
            reader: label.to_owned(),
            firmware,
            serial,
            has_password: false,
            quirks,
        })
    }

    pub fn accounts(path: &HidPath) -> Result<Vec<Credential>, CoreError> {
        let status = open(path)?.read_status().map_err(error)?;
        Ok(accounts::slot_accounts(&status))
    }

    pub fn codes(path: &HidPath, timestamp: u64) -> Result<Vec<CodeEntry>, CoreError> {
        accounts::codes(&mut open(path)?, timestamp).map_err(error)
    }

    pub fn calculate(
        path: &HidPath,
        credential: &Credential,
        timestamp: u64,
    ) -> Result<Code, CoreError> {
        accounts::slot_code(&mut open(path)?, credential, timestamp).map_err(error)
    }
}
