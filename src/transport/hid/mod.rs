//! HID transports: a small [`HidConnection`] seam (raw reports), two implementations
//! ([`hidraw::HidrawConnection`] over hidapi, [`bridge::BridgeConnection`] over a Unix
//! socket to `oathbridge emulate --hid`), and the two protocols spoken over it:
//! [`ctaphid`] (CTAP 2.1 §11.2, used by the Nitrokey 3 Secrets App through vendor
//! command 0x70) and [`otp`] (the YubiKey OTP application's 8-byte feature reports).
//!
//! The framings are pure functions over report buffers; the clients bound every wait.

pub mod bridge;
pub mod ctaphid;
pub mod discovery;
pub mod hidraw;
pub mod otp;
pub mod secrets;

use thiserror::Error;

/// Bytes in one HID input or output report of a FIDO/CTAPHID interface (no report id).
pub const REPORT_SIZE: usize = 64;
/// Bytes in one feature report of the YubiKey OTP interface (no report id).
pub const FEATURE_SIZE: usize = 8;

/// One input or output report.
pub type Report = [u8; REPORT_SIZE];
/// One feature report.
pub type FeatureReport = [u8; FEATURE_SIZE];

/// Errors of the HID connection itself (below any protocol).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HidError {
    /// The device went away (unplugged, emulator stopped, socket closed).
    #[error("the HID device was removed")]
    Disconnected,
    /// The device sent something the connection cannot carry (bridge framing).
    #[error("HID device {device}: {message}")]
    Protocol { device: String, message: String },
    #[error("HID device {device}: {message}")]
    Io { device: String, message: String },
}

/// A raw HID connection: what the CTAPHID and OTP protocols need, nothing more.
///
/// Reports are given without the report id (every interface used here has none).
pub trait HidConnection: Send {
    /// Send one 64-byte output report (CTAPHID).
    fn write_output(&mut self, report: &Report) -> Result<(), HidError>;
    /// Wait up to `timeout_ms` milliseconds for one 64-byte input report; `Ok(None)` when
    /// none came in time.
    fn read_input(&mut self, timeout_ms: u32) -> Result<Option<Report>, HidError>;
    /// Send one 8-byte feature report (YubiKey OTP: HID SET_REPORT).
    fn set_feature(&mut self, report: &FeatureReport) -> Result<(), HidError>;
    /// Read the device's 8-byte feature report (YubiKey OTP: HID GET_REPORT).
    fn get_feature(&mut self) -> Result<FeatureReport, HidError>;
    /// A short name for messages and logs (hidraw path or socket path).
    fn name(&self) -> &str;
}

impl<T: HidConnection + ?Sized> HidConnection for Box<T> {
    fn write_output(&mut self, report: &Report) -> Result<(), HidError> {
        (**self).write_output(report)
    }
    fn read_input(&mut self, timeout_ms: u32) -> Result<Option<Report>, HidError> {
        (**self).read_input(timeout_ms)
    }
    fn set_feature(&mut self, report: &FeatureReport) -> Result<(), HidError> {
        (**self).set_feature(report)
    }
    fn get_feature(&mut self) -> Result<FeatureReport, HidError> {
        (**self).get_feature()
    }
    fn name(&self) -> &str {
        (**self).name()
    }
}
