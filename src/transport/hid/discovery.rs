//! Finding HID keys: hidraw nodes (hidapi enumeration, filtered by USB ids and HID usage)
//! and emulator bridge sockets (`--hid-socket PATH`, `OATHBRIDGE_HID_SOCKETS`).

use std::path::{Path, PathBuf};

use tracing::{debug, warn};

use super::bridge::BridgeConnection;
use super::ctaphid::Timeouts;
use super::otp::{OtpClient, OtpTimeouts};
use super::secrets::SecretsTransport;
use super::{HidConnection, HidError};
use crate::oath::TransportError;

/// Colon-separated bridge socket paths, added to `--hid-socket`.
pub const SOCKETS_ENV: &str = "OATHBRIDGE_HID_SOCKETS";

pub const NITROKEY_VID: u16 = 0x20a0;
pub const NITROKEY3_PID: u16 = 0x42b2;
/// FIDO alliance usage page (CTAPHID interfaces).
pub const FIDO_USAGE_PAGE: u16 = 0xF1D0;
pub const YUBICO_VID: u16 = 0x1050;
/// Generic desktop page, keyboard usage: the YubiKey OTP interface.
pub const OTP_USAGE_PAGE: u16 = 0x0001;
pub const OTP_USAGE: u16 = 0x0006;

/// What a HID interface offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HidKind {
    /// Nitrokey 3: the Secrets App (YKOATH) over CTAPHID vendor command 0x70.
    SecretsApp,
    /// YubiKey: the OTP application (two slots) over feature reports.
    YubiOtp,
}

/// Which application a device with these USB/HID facts offers, if any we speak.
pub fn classify(vendor_id: u16, product_id: u16, usage_page: u16, usage: u16) -> Option<HidKind> {
    match (vendor_id, product_id, usage_page, usage) {
        (NITROKEY_VID, NITROKEY3_PID, FIDO_USAGE_PAGE, _) => Some(HidKind::SecretsApp),
        (YUBICO_VID, _, OTP_USAGE_PAGE, OTP_USAGE) => Some(HidKind::YubiOtp),
        _ => None,
    }
}

/// Where a HID device is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HidPath {
    /// A hidraw node, e.g. `/dev/hidraw3`.
    Hidraw(String),
    /// An emulator bridge socket.
    Bridge(PathBuf),
}

impl HidPath {
    /// Open a connection (hidraw: shared, like every hidraw user).
    pub fn open(&self) -> Result<Box<dyn HidConnection>, HidError> {
        match self {
            Self::Hidraw(path) => {
                let api = hidapi::HidApi::new().map_err(|e| HidError::Io {
                    device: path.clone(),
                    message: e.to_string(),
                })?;
                Ok(Box::new(super::hidraw::HidrawConnection::open(&api, path)?))
            }
            Self::Bridge(path) => Ok(Box::new(BridgeConnection::connect(path)?)),
        }
    }

    /// The Secrets App on this device, as a YKOATH transport.
    pub fn open_secrets(&self) -> Result<SecretsTransport<Box<dyn HidConnection>>, TransportError> {
        let connection = self.open().map_err(|e| match e {
            HidError::Disconnected => TransportError::CardRemoved,
            other => TransportError::Io(other.to_string()),
        })?;
        SecretsTransport::open(connection, Timeouts::default())
    }

    /// The OTP application on this device.
    pub fn open_otp(&self) -> Result<OtpClient<Box<dyn HidConnection>>, HidError> {
        Ok(OtpClient::new(self.open()?, OtpTimeouts::default()))
    }

    /// A name for messages: the node or socket path.
    pub fn display(&self) -> String {
        match self {
            Self::Hidraw(path) => path.clone(),
            Self::Bridge(path) => path.display().to_string(),
        }
    }
}

/// One HID interface we can speak to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HidKey {
    pub path: HidPath,
    pub kind: HidKind,
    pub product: String,
    /// The USB serial string, when the device reports one.
    pub serial: Option<String>,
}

impl HidKey {
    /// "Nitrokey 3 (HID /dev/hidraw3)": shown where a PC/SC reader name would be.
    pub fn label(&self) -> String {
        format!("{} (HID {})", self.product, self.path.display())
    }
}

/// `--hid-socket` paths followed by those in [`SOCKETS_ENV`].
pub fn bridge_sockets(given: &[PathBuf]) -> Vec<PathBuf> {
    let mut sockets = given.to_vec();
    if let Some(list) = std::env::var_os(SOCKETS_ENV) {
        for path in std::env::split_paths(&list) {
            if !path.as_os_str().is_empty() && !sockets.contains(&path) {
                sockets.push(path);
            }
        }
    }
    sockets
}

/// Every HID key: hidraw interfaces we speak, then reachable bridge sockets. Failures
/// (no hidraw access, a socket nobody listens on) are logged and skipped.
pub fn enumerate(bridges: &[PathBuf]) -> Vec<HidKey> {
    let mut keys = enumerate_hidraw();
    keys.extend(bridges.iter().filter_map(|path| describe_bridge(path)));
    keys
}

fn enumerate_hidraw() -> Vec<HidKey> {
    let api = match hidapi::HidApi::new() {
        Ok(api) => api,
        Err(error) => {
            warn!(%error, "cannot enumerate HID devices");
            return Vec::new();
        }
    };
    api.device_list()
        .filter_map(|device| {
            let kind = classify(
                device.vendor_id(),
                device.product_id(),
                device.usage_page(),
                device.usage(),
            )?;
            let path = device.path().to_str().ok()?.to_owned();
            Some(HidKey {
                path: HidPath::Hidraw(path),
                kind,
                product: device
                    .product_string()
                    .map_or_else(|| default_product(kind).to_owned(), str::to_owned),
                serial: device.serial_number().map(str::to_owned),
            })
        })
        .collect()
}

fn default_product(kind: HidKind) -> &'static str {
    match kind {
        HidKind::SecretsApp => "Nitrokey 3",
        HidKind::YubiOtp => "YubiKey OTP",
    }
}

/// Ask a bridge socket what it is (DESCRIBE).
pub fn describe_bridge(path: &Path) -> Option<HidKey> {
    let mut connection = match BridgeConnection::connect(path) {
        Ok(connection) => connection,
        Err(error) => {
            debug!(path = %path.display(), %error, "no HID device on the bridge socket");
            return None;
        }
    };
    let descriptor = match connection.describe() {
        Ok(descriptor) => descriptor,
        Err(error) => {
            warn!(path = %path.display(), %error, "HID bridge did not describe itself");
            return None;
        }
    };
    let kind = classify(
        descriptor.vendor_id,
        descriptor.product_id,
        descriptor.usage_page,
        descriptor.usage,
    )?;
    Some(HidKey {
        path: HidPath::Bridge(path.to_owned()),
        kind,
        product: descriptor.product,
        serial: descriptor.serial,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_interfaces_we_speak_are_chosen() {
        assert_eq!(
            classify(0x20a0, 0x42b2, 0xF1D0, 1),
            Some(HidKind::SecretsApp)
        );
        assert_eq!(classify(0x20a0, 0x42b2, 0x0001, 6), None);
        assert_eq!(classify(0x1050, 0x0407, 0x0001, 6), Some(HidKind::YubiOtp));
        assert_eq!(classify(0x1050, 0x0407, 0xF1D0, 1), None);
        assert_eq!(classify(0x1234, 0x42b2, 0xF1D0, 1), None);
    }
}
