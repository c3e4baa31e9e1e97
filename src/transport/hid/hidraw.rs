//! [`HidConnection`] over a hidraw node through hidapi (`linux-static-hidraw` backend).
//! Thin: report ids are added (0, the interfaces have none) and sizes checked.

use std::ffi::CString;

use hidapi::{HidApi, HidDevice};

use super::{FEATURE_SIZE, FeatureReport, HidConnection, HidError, REPORT_SIZE, Report};

/// An open hidraw device.
pub struct HidrawConnection {
    device: HidDevice,
    name: String,
}

impl HidrawConnection {
    /// Open the hidraw node at `path` (e.g. `/dev/hidraw3`), read-write, non-exclusive.
    pub fn open(api: &HidApi, path: &str) -> Result<Self, HidError> {
        let c_path = CString::new(path).map_err(|_| HidError::Io {
            device: path.to_owned(),
            message: "path contains a NUL byte".into(),
        })?;
        let device = api.open_path(&c_path).map_err(|e| io(path, &e))?;
        Ok(Self {
            device,
            name: path.to_owned(),
        })
    }
}

fn io(device: &str, error: &hidapi::HidError) -> HidError {
    HidError::Io {
        device: device.to_owned(),
        message: error.to_string(),
    }
}

impl HidConnection for HidrawConnection {
    fn write_output(&mut self, report: &Report) -> Result<(), HidError> {
        let mut buf = [0u8; REPORT_SIZE + 1];
        buf[1..].copy_from_slice(report);
        match self.device.write(&buf) {
            Ok(n) if n >= REPORT_SIZE => Ok(()),
            Ok(n) => Err(HidError::Io {
                device: self.name.clone(),
                message: format!("short write ({n} of {} bytes)", buf.len()),
            }),
            Err(_) => Err(HidError::Disconnected),
        }
    }

    fn read_input(&mut self, timeout_ms: u32) -> Result<Option<Report>, HidError> {
        let mut buf = [0u8; REPORT_SIZE];
        let timeout = i32::try_from(timeout_ms).unwrap_or(i32::MAX);
        match self.device.read_timeout(&mut buf, timeout) {
            Ok(0) => Ok(None),
            Ok(n) if n == REPORT_SIZE => Ok(Some(buf)),
            Ok(n) => Err(HidError::Protocol {
                device: self.name.clone(),
                message: format!("input report of {n} bytes, expected {REPORT_SIZE}"),
            }),
            Err(_) => Err(HidError::Disconnected),
        }
    }

    fn set_feature(&mut self, report: &FeatureReport) -> Result<(), HidError> {
        let mut buf = [0u8; FEATURE_SIZE + 1];
        buf[1..].copy_from_slice(report);
        self.device
            .send_feature_report(&buf)
            .map_err(|e| io(&self.name, &e))
    }

    fn get_feature(&mut self) -> Result<FeatureReport, HidError> {
        let mut buf = [0u8; FEATURE_SIZE + 1];
        let n = self
            .device
            .get_feature_report(&mut buf)
            .map_err(|e| io(&self.name, &e))?;
        // hidapi returns the report id as the first byte.
        if n < FEATURE_SIZE + 1 {
            return Err(HidError::Protocol {
                device: self.name.clone(),
                message: format!("feature report of {n} bytes, expected {}", FEATURE_SIZE + 1),
            });
        }
        let mut out = [0u8; FEATURE_SIZE];
        out.copy_from_slice(&buf[1..]);
        Ok(out)
    }

    fn name(&self) -> &str {
        &self.name
    }
}
