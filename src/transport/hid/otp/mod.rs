//! The YubiKey OTP application over HID: pure framing over 8-byte feature reports
//! (layout from Yubico's ykpers `ykdef.h` / yubikit `core/otp.py`, re-derived here).
//!
//! A request is one 70-byte frame: `PAYLOAD (64) | SLOT (1) | CRC-16 of PAYLOAD (2, LE) |
//! FILLER (3)`, written as ten feature reports of 7 data bytes plus a byte
//! `SLOT_WRITE (0x80) | SEQ (0..=9)`; all-zero reports other than the first and last are
//! skipped. The device answers through feature-report reads: a status report (status byte
//! 0, the programming sequence shows whether a write took) or data reports flagged
//! `RESP_PENDING (0x40) | SEQ` ending with the CRC of the data; `RESP_TIMEOUT_WAIT (0x20)`
//! means it waits for a touch. The CRC is ISO 13239 (CRC-16/X-25 without the final
//! inversion): a buffer followed by its inverted CRC leaves the residual `0xF0B8`.

pub mod accounts;
mod client;
pub mod config;
#[cfg(test)]
mod tests;

pub use client::{OtpClient, OtpError, OtpTimeouts};
pub use config::{HMAC_KEY_SIZE, hmac_challenge, hmac_sha1_config, totp_from_hmac};

use super::{FEATURE_SIZE, FeatureReport};

/// Bytes of request payload in one frame.
pub const SLOT_DATA_SIZE: usize = 64;
/// Bytes in one frame: payload, slot, CRC, filler.
pub const FRAME_SIZE: usize = SLOT_DATA_SIZE + 6;
/// Data bytes per feature report.
pub const REPORT_DATA_SIZE: usize = FEATURE_SIZE - 1;
/// Reports per frame (70 / 7).
pub const REPORTS_PER_FRAME: usize = FRAME_SIZE / REPORT_DATA_SIZE;

/// Status byte flags (the last byte of a feature report).
pub const SLOT_WRITE_FLAG: u8 = 0x80;
pub const RESP_PENDING_FLAG: u8 = 0x40;
pub const RESP_TIMEOUT_WAIT_FLAG: u8 = 0x20;
pub const SEQUENCE_MASK: u8 = 0x1F;
/// What the host writes to end reading a response (the last byte; the rest zero).
pub const DUMMY_REPORT_WRITE: u8 = 0xFF;
/// A correct buffer followed by its inverted CRC leaves this CRC.
pub const CRC_OK_RESIDUAL: u16 = 0xF0B8;

/// Slot (command) codes of the OTP application.
pub mod slot {
    pub const CONFIG_1: u8 = 0x01;
    pub const CONFIG_2: u8 = 0x03;
    pub const DEVICE_SERIAL: u8 = 0x10;
    pub const CHAL_HMAC_1: u8 = 0x30;
    pub const CHAL_HMAC_2: u8 = 0x38;
}

/// Bits of the status `touch_level` field.
pub mod cfgstate {
    pub const SLOT1_VALID: u16 = 0x01;
    pub const SLOT2_VALID: u16 = 0x02;
    pub const SLOT1_TOUCH: u16 = 0x04;
    pub const SLOT2_TOUCH: u16 = 0x08;
    /// The bits that say anything about the slots.
    pub const MASK: u16 = 0x1F;
}

/// ISO 13239 CRC-16 (reflected polynomial 0x8408, initial 0xFFFF, no final XOR).
pub fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0xFFFF;
    for &byte in data {
        crc ^= u16::from(byte);
        for _ in 0..8 {
            let carry = crc & 1 != 0;
            crc >>= 1;
            if carry {
                crc ^= 0x8408;
            }
        }
    }
    crc
}

/// True when `data` ends with the inverted CRC of what precedes it.
pub fn crc_ok(data: &[u8]) -> bool {
    crc16(data) == CRC_OK_RESIDUAL
}

/// `data` followed by its inverted CRC (little-endian), as the device sends responses.
pub fn with_crc(data: &[u8]) -> Vec<u8> {
    let mut out = data.to_vec();
    out.extend_from_slice(&(!crc16(data)).to_le_bytes());
    out
}

/// Build the 70-byte frame for `slot` with `payload` (at most 64 bytes, zero-padded).
pub fn build_frame(slot: u8, payload: &[u8]) -> Option<[u8; FRAME_SIZE]> {
    if payload.len() > SLOT_DATA_SIZE {
        return None;
    }
    let mut frame = [0u8; FRAME_SIZE];
    frame[..payload.len()].copy_from_slice(payload);
    let crc = crc16(&frame[..SLOT_DATA_SIZE]);
    frame[SLOT_DATA_SIZE] = slot;
    frame[SLOT_DATA_SIZE + 1..SLOT_DATA_SIZE + 3].copy_from_slice(&crc.to_le_bytes());
    Some(frame)
}

/// The feature reports that write `frame` (all-zero middle reports skipped).
pub fn frame_reports(frame: &[u8; FRAME_SIZE]) -> Vec<FeatureReport> {
    frame
        .chunks(REPORT_DATA_SIZE)
        .enumerate()
        .filter(|(seq, chunk)| {
            *seq == 0 || *seq == REPORTS_PER_FRAME - 1 || chunk.iter().any(|&b| b != 0)
        })
        .map(|(seq, chunk)| {
            let mut report = [0u8; FEATURE_SIZE];
            report[..REPORT_DATA_SIZE].copy_from_slice(chunk);
            report[REPORT_DATA_SIZE] = SLOT_WRITE_FLAG | seq as u8;
            report
        })
        .collect()
}

/// Device side: collects written reports into a frame. Skipped reports stay zero.
#[derive(Debug, Clone)]
pub struct FrameAssembler {
    frame: [u8; FRAME_SIZE],
    started: bool,
}

impl Default for FrameAssembler {
    fn default() -> Self {
        Self {
            frame: [0u8; FRAME_SIZE],
            started: false,
        }
    }
}

/// A complete, CRC-checked request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub slot: u8,
    pub payload: [u8; SLOT_DATA_SIZE],
}

/// Why a written frame was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameFault {
    /// The report lacked the SLOT_WRITE flag or had a sequence beyond the frame.
    BadReport,
    /// The frame's CRC does not match its payload.
    BadCrc,
}

impl FrameAssembler {
    /// Take one written report; the request once the last one (sequence 9) arrived.
    pub fn push(&mut self, report: &FeatureReport) -> Result<Option<Request>, FrameFault> {
        let flags = report[REPORT_DATA_SIZE];
        let seq = usize::from(flags & SEQUENCE_MASK);
        if flags & SLOT_WRITE_FLAG == 0 || seq >= REPORTS_PER_FRAME {
            *self = Self::default();
            return Err(FrameFault::BadReport);
        }
        if seq == 0 {
            *self = Self::default();
            self.started = true;
        }
        if !self.started {
            return Err(FrameFault::BadReport);
        }
        let at = seq * REPORT_DATA_SIZE;
        self.frame[at..at + REPORT_DATA_SIZE].copy_from_slice(&report[..REPORT_DATA_SIZE]);
        if seq != REPORTS_PER_FRAME - 1 {
            return Ok(None);
        }
        let frame = std::mem::take(self).frame;
        let mut payload = [0u8; SLOT_DATA_SIZE];
        payload.copy_from_slice(&frame[..SLOT_DATA_SIZE]);
        let crc = u16::from_le_bytes([frame[SLOT_DATA_SIZE + 1], frame[SLOT_DATA_SIZE + 2]]);
        if crc != crc16(&payload) {
            return Err(FrameFault::BadCrc);
        }
        Ok(Some(Request {
            slot: frame[SLOT_DATA_SIZE],
            payload,
        }))
    }
}

/// The status bytes (bytes 1..7 of an idle feature report).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    pub version: [u8; 3],
    /// Programming sequence: goes up by one with every accepted configuration write.
    pub prog_seq: u8,
    /// `cfgstate` bits: which slots are configured and touch-triggered.
    pub touch_level: u16,
}

impl Status {
    pub fn parse(report: &FeatureReport) -> Self {
        Self {
            version: [report[1], report[2], report[3]],
            prog_seq: report[4],
            touch_level: u16::from_le_bytes([report[5], report[6]]),
        }
    }

    /// The idle feature report carrying this status (status byte `flags`).
    pub fn to_report(&self, flags: u8) -> FeatureReport {
        let level = self.touch_level.to_le_bytes();
        [
            0,
            self.version[0],
            self.version[1],
            self.version[2],
            self.prog_seq,
            level[0],
            level[1],
            flags,
        ]
    }

    /// Slot 1 or 2 holds a configuration.
    pub fn is_configured(&self, slot: u8) -> bool {
        let bit = if slot == 1 {
            cfgstate::SLOT1_VALID
        } else {
            cfgstate::SLOT2_VALID
        };
        self.touch_level & bit != 0
    }

    /// Slot 1 or 2 needs a touch (firmware 3.0 and later report it).
    pub fn is_touch_triggered(&self, slot: u8) -> bool {
        let bit = if slot == 1 {
            cfgstate::SLOT1_TOUCH
        } else {
            cfgstate::SLOT2_TOUCH
        };
        self.touch_level & bit != 0
    }
}
