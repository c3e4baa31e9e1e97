//! The host side of the OTP HID protocol: send a frame, poll the answer, bounded in time.

use std::time::{Duration, Instant};

use thiserror::Error;
use zeroize::Zeroizing;

use super::{
    DUMMY_REPORT_WRITE, REPORT_DATA_SIZE, RESP_PENDING_FLAG, RESP_TIMEOUT_WAIT_FLAG, SEQUENCE_MASK,
    SLOT_WRITE_FLAG, Status, build_frame, cfgstate, config, crc_ok, frame_reports, slot,
};
use crate::transport::hid::{FEATURE_SIZE, HidConnection, HidError};

/// Pause between polls while the device works, and while it waits for a touch, ms.
const POLL_PROCESSING_MS: u64 = 20;
const POLL_TOUCH_MS: u64 = 100;
/// Reads of the status before giving up on a device that keeps answering data.
const STATUS_ATTEMPTS: usize = 3;

/// How long the client waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OtpTimeouts {
    /// For the device to clear SLOT_WRITE before each report, and to answer without a
    /// touch, ms.
    pub busy_ms: u64,
    /// Longest operation including a touch wait, ms.
    pub total_ms: u64,
}

impl Default for OtpTimeouts {
    fn default() -> Self {
        Self {
            busy_ms: 2_000,
            total_ms: 45_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum OtpError {
    #[error(transparent)]
    Hid(#[from] HidError),
    #[error("the key did not answer in time")]
    Timeout,
    #[error("touch not detected in time")]
    TouchTimeout,
    /// The key refused the command (slot not configured for it, wrong access code).
    #[error("the key refused the command")]
    Rejected,
    #[error("the key's answer failed its CRC check")]
    BadCrc,
    #[error("the key's answer was incomplete")]
    Incomplete,
    #[error("slot must be 1 or 2")]
    BadSlot,
    /// The slot waits for a touch and the caller asked not to wait.
    #[error("the slot needs a touch")]
    TouchRequired,
}

/// What a frame gets back.
enum Answer {
    Data(Vec<u8>),
    Status(Status),
}

type TouchCallback = Box<dyn FnMut() + Send>;

/// The OTP application on one HID device.
pub struct OtpClient<C> {
    connection: C,
    timeouts: OtpTimeouts,
    on_touch: Option<TouchCallback>,
    /// Give up with [`OtpError::TouchRequired`] instead of waiting for a touch.
    no_touch_wait: bool,
}

impl<C: HidConnection> OtpClient<C> {
    pub fn new(connection: C, timeouts: OtpTimeouts) -> Self {
        Self {
            connection,
            timeouts,
            on_touch: None,
            no_touch_wait: false,
        }
    }

    /// Called once when the key starts waiting for a touch.
    pub fn on_touch(&mut self, callback: impl FnMut() + Send + 'static) {
        self.on_touch = Some(Box::new(callback));
    }

    pub fn name(&self) -> &str {
        self.connection.name()
    }

    /// Firmware version, programming sequence and slot states. A device still in the
    /// middle of an answer (another program stopped reading) is told to stop first.
    pub fn read_status(&mut self) -> Result<Status, OtpError> {
        for _ in 0..STATUS_ATTEMPTS {
            let report = self.connection.get_feature()?;
            if report[REPORT_DATA_SIZE] & RESP_PENDING_FLAG == 0 {
                return Ok(Status::parse(&report));
            }
            self.reset_state();
        }
        Err(OtpError::Incomplete)
    }

    /// The serial number (needs the slot's SERIAL_API_VISIBLE, on by default).
    pub fn serial(&mut self) -> Result<u32, OtpError> {
        let data = self.data_command(slot::DEVICE_SERIAL, &[], 4)?;
        Ok(u32::from_be_bytes([data[0], data[1], data[2], data[3]]))
    }

    /// HMAC-SHA1 of `message` (at most 64 bytes) with the key in slot 1 or 2.
    pub fn calculate_hmac(
        &mut self,
        slot_number: u8,
        message: &[u8],
    ) -> Result<Zeroizing<[u8; 20]>, OtpError> {
        let command = match slot_number {
            1 => slot::CHAL_HMAC_1,
            2 => slot::CHAL_HMAC_2,
            _ => return Err(OtpError::BadSlot),
        };
        let challenge = config::hmac_challenge(message);
        let data = self.data_command(command, &challenge, 20)?;
        let mut out = Zeroizing::new([0u8; 20]);
        out.copy_from_slice(&data[..20]);
        Ok(out)
    }

    /// Like [`OtpClient::calculate_hmac`], but a slot that waits for a touch is left at
    /// once ([`OtpError::TouchRequired`]): for listing codes without blocking.
    pub fn calculate_hmac_without_touch(
        &mut self,
        slot_number: u8,
        message: &[u8],
    ) -> Result<Zeroizing<[u8; 20]>, OtpError> {
        self.no_touch_wait = true;
        let result = self.calculate_hmac(slot_number, message);
        self.no_touch_wait = false;
        result
    }

    /// Write a slot configuration (`payload` = 52-byte configuration + current access
    /// code). [`OtpError::Rejected`] when the key did not take it.
    pub fn write_config(&mut self, slot_number: u8, payload: &[u8]) -> Result<Status, OtpError> {
        let command = match slot_number {
            1 => slot::CONFIG_1,
            2 => slot::CONFIG_2,
            _ => return Err(OtpError::BadSlot),
        };
        let prog_seq = self.send_frame(command, payload)?;
        match self.read_answer(prog_seq)? {
            Answer::Status(status) => Ok(status),
            Answer::Data(_) => Err(OtpError::Incomplete),
        }
    }

    fn data_command(
        &mut self,
        command: u8,
        payload: &[u8],
        expected: usize,
    ) -> Result<Zeroizing<Vec<u8>>, OtpError> {
        let prog_seq = self.send_frame(command, payload)?;
        match self.read_answer(prog_seq)? {
            Answer::Data(data) if data.len() >= expected + 2 => {
                let data = Zeroizing::new(data);
                if !crc_ok(&data[..expected + 2]) {
                    return Err(OtpError::BadCrc);
                }
                Ok(Zeroizing::new(data[..expected].to_vec()))
            }
            Answer::Data(_) => Err(OtpError::Incomplete),
            Answer::Status(_) => Err(OtpError::Rejected),
        }
    }

    /// Write one frame; returns the programming sequence before it.
    fn send_frame(&mut self, command: u8, payload: &[u8]) -> Result<u8, OtpError> {
        let frame = build_frame(command, payload).ok_or(OtpError::Incomplete)?;
        let frame = Zeroizing::new(frame);
        let prog_seq = self.read_status()?.prog_seq;
        let reports = Zeroizing::new(frame_reports(&frame));
        for report in reports.iter() {
            self.await_ready_to_write()?;
            self.connection.set_feature(report)?;
        }
        Ok(prog_seq)
    }

    fn await_ready_to_write(&mut self) -> Result<(), OtpError> {
        let deadline = Instant::now() + Duration::from_millis(self.timeouts.busy_ms);
        loop {
            let report = self.connection.get_feature()?;
            if report[REPORT_DATA_SIZE] & SLOT_WRITE_FLAG == 0 {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(OtpError::Timeout);
            }
            std::thread::sleep(Duration::from_millis(POLL_PROCESSING_MS));
        }
    }

    /// Poll the answer to a frame: data reports, or a status showing whether it took.
    fn read_answer(&mut self, prog_seq: u8) -> Result<Answer, OtpError> {
        let start = Instant::now();
        let mut last_progress = Instant::now();
        let mut data = Vec::new();
        let mut seq: u8 = 0;
        let mut needs_touch = false;
        loop {
            let report = self.connection.get_feature()?;
            let status = report[REPORT_DATA_SIZE];
            if status & RESP_PENDING_FLAG != 0 {
                // The 5-bit sequence bounds an answer to 32 reports: the next one with
                // sequence 0 ends it.
                if status & SEQUENCE_MASK == seq {
                    data.extend_from_slice(&report[..REPORT_DATA_SIZE]);
                    seq += 1;
                    last_progress = Instant::now();
                    continue;
                } else if status & SEQUENCE_MASK == 0 {
                    self.reset_state();
                    return Ok(Answer::Data(data));
                }
            } else if status == 0 {
                let now = Status::parse(&report);
                if !data.is_empty() {
                    return Err(OtpError::Incomplete);
                }
                let nothing_configured = now.touch_level & cfgstate::MASK == 0;
                if now.prog_seq == prog_seq.wrapping_add(1)
                    || (now.prog_seq == 0 && nothing_configured)
                {
                    return Ok(Answer::Status(now));
                }
                return Err(if needs_touch {
                    OtpError::TouchTimeout
                } else {
                    OtpError::Rejected
                });
            } else if status & RESP_TIMEOUT_WAIT_FLAG != 0 {
                if self.no_touch_wait {
                    self.reset_state();
                    return Err(OtpError::TouchRequired);
                }
                if !needs_touch && let Some(callback) = self.on_touch.as_mut() {
                    callback();
                }
                needs_touch = true;
            }
            let limit = if needs_touch {
                self.timeouts.total_ms
            } else {
                self.timeouts.busy_ms
            };
            let waited = if needs_touch {
                start.elapsed()
            } else {
                last_progress.elapsed()
            };
            if waited >= Duration::from_millis(limit)
                || start.elapsed() >= Duration::from_millis(self.timeouts.total_ms)
            {
                self.reset_state();
                return Err(if needs_touch {
                    OtpError::TouchTimeout
                } else {
                    OtpError::Timeout
                });
            }
            let pause = if needs_touch {
                POLL_TOUCH_MS
            } else {
                POLL_PROCESSING_MS
            };
            std::thread::sleep(Duration::from_millis(pause));
        }
    }

    /// Tell the device the host stopped reading (best effort).
    fn reset_state(&mut self) {
        let mut report = [0u8; FEATURE_SIZE];
        report[FEATURE_SIZE - 1] = DUMMY_REPORT_WRITE;
        let _ = self.connection.set_feature(&report);
    }
}
