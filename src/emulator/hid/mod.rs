//! The emulator as a USB HID device, reached through the HID bridge socket
//! ([`crate::transport::hid::bridge`] documents the framing): `emulate --hid unix:PATH`.
//!
//! - profile `nitrokey`: a Nitrokey 3 FIDO interface speaking CTAPHID, the Secrets App
//!   behind vendor command 0x70 ([`ctaphid`]), sharing its [`Card`] with the vpcd side;
//! - profile `yubikey-otp`: a YubiKey OTP interface (8-byte feature reports, [`otp`]).
//!
//! Every connection is served by its own thread (like every program opening the hidraw
//! node); the listening socket is removed when the emulator stops (SIGTERM/SIGINT).

pub mod ctaphid;
pub mod otp;
#[cfg(test)]
mod tests;

use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tracing::{debug, info, warn};

use crate::emulator::Card;
use crate::transport::hid::bridge::{
    BridgeDescriptor, Decoder, KIND_DESCRIBE, KIND_GET_FEATURE, KIND_INPUT, KIND_OUTPUT,
    KIND_SET_FEATURE, encode,
};
use crate::transport::hid::{FEATURE_SIZE, Report};
use ctaphid::{CtapHidDevice, CtapHidSession, KEEPALIVE_INTERVAL};
use otp::OtpDevice;

/// USB ids the emulated interfaces report.
pub const NITROKEY_VID: u16 = 0x20a0;
pub const NITROKEY3_PID: u16 = 0x42b2;
pub const FIDO_USAGE_PAGE: u16 = 0xF1D0;
pub const YUBICO_VID: u16 = 0x1050;
/// YubiKey 5 OTP+FIDO+CCID.
pub const YUBIKEY5_PID: u16 = 0x0407;
pub const OTP_USAGE_PAGE: u16 = 0x0001;
pub const OTP_USAGE: u16 = 0x0006;

/// Which HID interface the emulator offers.
#[derive(Clone)]
pub enum HidModel {
    /// CTAPHID with the Secrets App over vendor command 0x70.
    Nitrokey { card: Arc<Mutex<Card>>, serial: u32 },
    /// The YubiKey OTP application.
    YubikeyOtp {
        device: Arc<Mutex<OtpDevice>>,
        serial: u32,
    },
}

impl HidModel {
    fn descriptor(&self) -> BridgeDescriptor {
        match self {
            Self::Nitrokey { serial, .. } => BridgeDescriptor {
                vendor_id: NITROKEY_VID,
                product_id: NITROKEY3_PID,
                usage_page: FIDO_USAGE_PAGE,
                usage: 0x01,
                product: "Nitrokey 3".into(),
                serial: Some(format!("{serial:08X}")),
            },
            Self::YubikeyOtp { serial, .. } => BridgeDescriptor {
                vendor_id: YUBICO_VID,
                product_id: YUBIKEY5_PID,
                usage_page: OTP_USAGE_PAGE,
                usage: OTP_USAGE,
                product: "YubiKey OTP+FIDO+CCID".into(),
                serial: Some(serial.to_string()),
            },
        }
    }
}

/// Parse `unix:PATH` (the only bridge address form).
pub fn parse_address(address: &str) -> Result<PathBuf, String> {
    match address.strip_prefix("unix:") {
        Some(path) if !path.is_empty() => Ok(PathBuf::from(path)),
        _ => Err(format!("HID address {address:?}: expected unix:PATH")),
    }
}

/// Listen at `path`, replacing a stale socket (never another kind of file).
pub fn bind(path: &Path) -> std::io::Result<UnixListener> {
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(std::io::Error::new(
                ErrorKind::AlreadyExists,
                "exists and is not a socket",
            ));
        }
        std::fs::remove_file(path)?;
    }
    let listener = UnixListener::bind(path)?;
    info!(path = %path.display(), "HID bridge listening");
    Ok(listener)
}

/// Serve connections on `listener` until the process ends.
pub fn serve(listener: UnixListener, model: HidModel) -> std::io::Result<()> {
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                let model = model.clone();
                let spawned = std::thread::Builder::new()
                    .name("hid-connection".into())
                    .spawn(move || {
                        if let Err(error) = serve_connection(stream, &model) {
                            debug!(%error, "HID bridge connection ended");
                        }
                    });
                if let Err(error) = spawned {
                    warn!(%error, "cannot serve a HID bridge connection");
                }
            }
            Err(error) => warn!(%error, "HID bridge accept failed"),
        }
    }
    Ok(())
}

fn serve_connection(mut stream: UnixStream, model: &HidModel) -> std::io::Result<()> {
    let mut writer = stream.try_clone()?;
    stream.set_read_timeout(Some(KEEPALIVE_INTERVAL / 2))?;
    let mut decoder = Decoder::default();
    let mut ctap = match model {
        HidModel::Nitrokey { card, .. } => {
            Some(CtapHidSession::new(CtapHidDevice::new(card.clone())))
        }
        HidModel::YubikeyOtp { .. } => None,
    };
    let mut chunk = [0u8; 1024];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => return Ok(()),
            Ok(n) => decoder.feed(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(e),
        }
        loop {
            let (kind, payload) = match decoder.next_message() {
                Ok(Some(message)) => message,
                Ok(None) => break,
                Err(message) => {
                    warn!("HID bridge: {message}; closing the connection");
                    return Ok(());
                }
            };
            let mut out = Vec::new();
            match (kind, model) {
                (KIND_DESCRIBE, _) => {
                    let json = serde_json::to_vec(&model.descriptor()).unwrap_or_default();
                    out.extend(encode(KIND_DESCRIBE, &json));
                }
                (KIND_OUTPUT, _) => {
                    let (Some(session), Ok(report)) =
                        (ctap.as_mut(), <Report>::try_from(payload.as_slice()))
                    else {
                        debug!("HID bridge: output report ignored");
                        continue;
                    };
                    for input in session.on_report(&report) {
                        out.extend(encode(KIND_INPUT, &input));
                    }
                }
                (KIND_SET_FEATURE, model) => {
                    if let (HidModel::YubikeyOtp { device, .. }, Ok(report)) =
                        (model, <[u8; FEATURE_SIZE]>::try_from(payload.as_slice()))
                    {
                        lock(device).set_feature(&report);
                    }
                    // Applied: the host's SET_REPORT returns (ordered with other connections).
                    out.extend(encode(KIND_SET_FEATURE, &[]));
                }
                (KIND_GET_FEATURE, HidModel::YubikeyOtp { device, .. }) => {
                    let report = lock(device).get_feature();
                    out.extend(encode(KIND_GET_FEATURE, &report));
                }
                (KIND_GET_FEATURE, HidModel::Nitrokey { .. }) => {
                    out.extend(encode(KIND_GET_FEATURE, &[0u8; FEATURE_SIZE]));
                }
                _ => debug!(kind, "HID bridge: message ignored"),
            }
            writer.write_all(&out)?;
        }
        if let Some(session) = ctap.as_mut() {
            for input in session.poll() {
                writer.write_all(&encode(KIND_INPUT, &input))?;
            }
        }
    }
}

fn lock(device: &Mutex<OtpDevice>) -> std::sync::MutexGuard<'_, OtpDevice> {
    device
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Remove `path` when the process gets SIGTERM or SIGINT, then exit. Call before any
/// other thread starts (the signals are blocked in every thread and taken by one).
pub fn remove_on_exit(path: PathBuf) {
    // SAFETY: plain libc signal-mask calls on a zeroed, then initialised, sigset_t.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    unsafe {
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
    let spawned = std::thread::Builder::new()
        .name("hid-exit".into())
        .spawn(move || {
            let mut signal = 0;
            // SAFETY: waits for one of the blocked signals in `set`.
            unsafe { libc::sigwait(&set, &mut signal) };
            let _ = std::fs::remove_file(&path);
            info!(signal, "stopping; HID bridge socket removed");
            std::thread::sleep(Duration::from_millis(10));
            std::process::exit(0);
        });
    if let Err(error) = spawned {
        warn!(%error, "cannot watch for SIGTERM; the socket stays after exit");
    }
}
