//! CTAPHID message framing (CTAP 2.1 §11.2.4): pure functions over 64-byte reports.
//!
//! Initialization packet: `CID (4) | CMD (1, bit 7 set) | BCNT (2, big-endian) | DATA (57)`.
//! Continuation packet:   `CID (4) | SEQ (1, 0..=127) | DATA (59)`.
//! A message carries at most 57 + 128 × 59 = [`MAX_MESSAGE`] bytes.

mod client;
#[cfg(test)]
mod tests;

pub use client::{CtapHidClient, CtapHidError, KeepaliveStatus, Timeouts};

use thiserror::Error;

use super::{REPORT_SIZE, Report};

/// Data bytes in an initialization packet.
pub const INIT_DATA: usize = REPORT_SIZE - 7;
/// Data bytes in a continuation packet.
pub const CONT_DATA: usize = REPORT_SIZE - 5;
/// Largest message payload, bytes (CTAP 2.1 §11.2.4).
pub const MAX_MESSAGE: usize = INIT_DATA + 128 * CONT_DATA;
/// The broadcast channel, used for CTAPHID_INIT.
pub const BROADCAST_CID: u32 = 0xFFFF_FFFF;

/// CTAPHID command codes (CTAP 2.1 §11.2.9), without the init-packet bit 7.
pub mod command {
    pub const PING: u8 = 0x01;
    pub const MSG: u8 = 0x03;
    pub const LOCK: u8 = 0x04;
    pub const INIT: u8 = 0x06;
    pub const WINK: u8 = 0x08;
    pub const CBOR: u8 = 0x10;
    pub const CANCEL: u8 = 0x11;
    pub const KEEPALIVE: u8 = 0x3B;
    pub const ERROR: u8 = 0x3F;
    /// Nitrokey 3: the Secrets App (YKOATH-like APDUs), vendor command range.
    pub const VENDOR_SECRETS: u8 = 0x70;
}

/// CTAPHID_ERROR codes (CTAP 2.1 §11.2.9.1.6).
pub mod error_code {
    pub const INVALID_CMD: u8 = 0x01;
    pub const INVALID_PAR: u8 = 0x02;
    pub const INVALID_LEN: u8 = 0x03;
    pub const INVALID_SEQ: u8 = 0x04;
    pub const MSG_TIMEOUT: u8 = 0x05;
    pub const CHANNEL_BUSY: u8 = 0x06;
    pub const LOCK_REQUIRED: u8 = 0x0A;
    pub const INVALID_CHANNEL: u8 = 0x0B;
    pub const OTHER: u8 = 0x7F;
}

/// Capability flags in the INIT response (CTAP 2.1 §11.2.9.1.3).
pub const CAPABILITY_WINK: u8 = 0x01;

/// One parsed packet, borrowing its data from the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packet<'a> {
    Init {
        cid: u32,
        /// Command code without bit 7.
        command: u8,
        /// Announced total payload length.
        length: usize,
        data: &'a [u8],
    },
    Continuation {
        cid: u32,
        seq: u8,
        data: &'a [u8],
    },
}

impl Packet<'_> {
    pub fn cid(&self) -> u32 {
        match *self {
            Packet::Init { cid, .. } | Packet::Continuation { cid, .. } => cid,
        }
    }
}

/// Framing errors: what a peer sent cannot be a valid message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum FrameError {
    #[error("message of {0} bytes is longer than CTAPHID allows ({MAX_MESSAGE})")]
    Oversize(usize),
    #[error("continuation packet {got} where {expected} was expected")]
    OutOfOrder { expected: u8, got: u8 },
    #[error("a new message started before the previous one was complete")]
    Interrupted,
}

/// Parse one report (never fails: every 64-byte buffer is some packet).
pub fn parse(report: &Report) -> Packet<'_> {
    let cid = u32::from_be_bytes([report[0], report[1], report[2], report[3]]);
    if report[4] & 0x80 != 0 {
        Packet::Init {
            cid,
            command: report[4] & 0x7F,
            length: usize::from(u16::from_be_bytes([report[5], report[6]])),
            data: &report[7..],
        }
    } else {
        Packet::Continuation {
            cid,
            seq: report[4],
            data: &report[5..],
        }
    }
}

/// Split `payload` into the reports of one message on channel `cid`.
pub fn fragment(cid: u32, command: u8, payload: &[u8]) -> Result<Vec<Report>, FrameError> {
    if payload.len() > MAX_MESSAGE {
        return Err(FrameError::Oversize(payload.len()));
    }
    let mut reports =
        Vec::with_capacity(1 + payload.len().saturating_sub(INIT_DATA) / CONT_DATA + 1);
    let mut first = [0u8; REPORT_SIZE];
    first[..4].copy_from_slice(&cid.to_be_bytes());
    first[4] = 0x80 | command;
    first[5..7].copy_from_slice(&(payload.len() as u16).to_be_bytes());
    let head = payload.len().min(INIT_DATA);
    first[7..7 + head].copy_from_slice(&payload[..head]);
    reports.push(first);
    for (seq, chunk) in payload[head..].chunks(CONT_DATA).enumerate() {
        let mut report = [0u8; REPORT_SIZE];
        report[..4].copy_from_slice(&cid.to_be_bytes());
        report[4] = seq as u8; // at most 127 continuation packets fit MAX_MESSAGE
        report[5..5 + chunk.len()].copy_from_slice(chunk);
        reports.push(report);
    }
    Ok(reports)
}

/// What an initialization packet starts.
#[derive(Debug)]
pub enum Started {
    /// The whole message fit in the packet.
    Complete { command: u8, payload: Vec<u8> },
    /// Continuation packets follow.
    Pending(Reassembler),
}

/// Collects one message from its packets (one channel).
#[derive(Debug)]
pub struct Reassembler {
    cid: u32,
    command: u8,
    length: usize,
    next_seq: u8,
    data: Vec<u8>,
}

impl Reassembler {
    /// Start from an initialization packet. An announced length over [`MAX_MESSAGE`] is
    /// refused before allocating.
    pub fn start(packet: &Packet<'_>) -> Result<Started, FrameError> {
        let Packet::Init {
            cid,
            command,
            length,
            data,
        } = *packet
        else {
            return Err(FrameError::OutOfOrder {
                expected: 0x80,
                got: 0,
            });
        };
        if length > MAX_MESSAGE {
            return Err(FrameError::Oversize(length));
        }
        let take = length.min(data.len());
        if take == length {
            return Ok(Started::Complete {
                command,
                payload: data[..take].to_vec(),
            });
        }
        let mut collected = Vec::with_capacity(length);
        collected.extend_from_slice(&data[..take]);
        Ok(Started::Pending(Self {
            cid,
            command,
            length,
            next_seq: 0,
            data: collected,
        }))
    }

    pub fn cid(&self) -> u32 {
        self.cid
    }

    pub fn command(&self) -> u8 {
        self.command
    }

    /// Add a continuation packet of this channel; the payload once complete.
    pub fn push(&mut self, packet: &Packet<'_>) -> Result<Option<Vec<u8>>, FrameError> {
        let Packet::Continuation { seq, data, .. } = *packet else {
            return Err(FrameError::Interrupted);
        };
        if seq != self.next_seq || seq > 127 {
            return Err(FrameError::OutOfOrder {
                expected: self.next_seq,
                got: seq,
            });
        }
        self.next_seq = self.next_seq.wrapping_add(1);
        let take = (self.length - self.data.len()).min(data.len());
        self.data.extend_from_slice(&data[..take]);
        if self.data.len() == self.length {
            Ok(Some(std::mem::take(&mut self.data)))
        } else {
            Ok(None)
        }
    }
}

/// The INIT response payload (CTAP 2.1 §11.2.9.1.3): 17 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InitResponse {
    pub nonce: [u8; 8],
    pub cid: u32,
    pub protocol_version: u8,
    pub device_version: [u8; 3],
    pub capabilities: u8,
}

impl InitResponse {
    pub const LEN: usize = 17;

    pub fn parse(payload: &[u8]) -> Option<Self> {
        if payload.len() < Self::LEN {
            return None;
        }
        let mut nonce = [0u8; 8];
        nonce.copy_from_slice(&payload[..8]);
        Some(Self {
            nonce,
            cid: u32::from_be_bytes([payload[8], payload[9], payload[10], payload[11]]),
            protocol_version: payload[12],
            device_version: [payload[13], payload[14], payload[15]],
            capabilities: payload[16],
        })
    }

    pub fn to_bytes(&self) -> [u8; Self::LEN] {
        let mut out = [0u8; Self::LEN];
        out[..8].copy_from_slice(&self.nonce);
        out[8..12].copy_from_slice(&self.cid.to_be_bytes());
        out[12] = self.protocol_version;
        out[13..16].copy_from_slice(&self.device_version);
        out[16] = self.capabilities;
        out
    }
}
