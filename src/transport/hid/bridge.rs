//! The HID bridge: raw HID reports over a Unix stream socket, so `oathbridge emulate --hid
//! unix:PATH` can stand in for a USB HID device where the kernel has no `uhid`.
//!
//! Framing (both directions): `KIND (1 byte) | LENGTH (2 bytes, big-endian) | LENGTH bytes`.
//!
//! | kind | name        | direction       | payload                                   |
//! |------|-------------|-----------------|-------------------------------------------|
//! | 0x01 | OUTPUT      | host → device   | one 64-byte output report                 |
//! | 0x02 | INPUT       | device → host   | one 64-byte input report                  |
//! | 0x03 | SET_FEATURE | host → device   | one 8-byte feature report; the device     |
//! |      |             |                 | answers 0x03, empty, once it applied it   |
//! | 0x04 | GET_FEATURE | host → device   | empty; the device answers 0x04 + 8 bytes  |
//! | 0x05 | DESCRIBE    | host → device   | empty; the device answers 0x05 + JSON     |
//!
//! SET_FEATURE is acknowledged because HID SET_REPORT is synchronous on real hardware: the
//! next request (from this or another connection) sees its effect.
//!
//! The DESCRIBE answer is a JSON [`BridgeDescriptor`] (what hidapi would report from the
//! USB descriptors). Payloads longer than [`MAX_PAYLOAD`] are a protocol error.

use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::{FeatureReport, HidConnection, HidError, Report};

pub const KIND_OUTPUT: u8 = 0x01;
pub const KIND_INPUT: u8 = 0x02;
pub const KIND_SET_FEATURE: u8 = 0x03;
pub const KIND_GET_FEATURE: u8 = 0x04;
pub const KIND_DESCRIBE: u8 = 0x05;
/// Largest payload of one bridge message, bytes.
pub const MAX_PAYLOAD: usize = 1024;
/// How long a GET_FEATURE or DESCRIBE answer may take, ms.
const REPLY_TIMEOUT_MS: u64 = 2000;
/// Input reports kept while waiting for a feature answer; older ones are dropped.
const MAX_QUEUED_INPUTS: usize = 256;

/// What the device says about itself (the USB descriptor facts hidapi reports).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BridgeDescriptor {
    pub vendor_id: u16,
    pub product_id: u16,
    pub usage_page: u16,
    pub usage: u16,
    pub product: String,
    pub serial: Option<String>,
}

/// Encode one bridge message. Payloads over [`MAX_PAYLOAD`] are cut (callers never send them).
pub fn encode(kind: u8, payload: &[u8]) -> Vec<u8> {
    let payload = &payload[..payload.len().min(MAX_PAYLOAD)];
    let mut out = Vec::with_capacity(3 + payload.len());
    out.push(kind);
    out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// Splits a byte stream into bridge messages.
#[derive(Debug, Default)]
pub struct Decoder {
    buffer: Vec<u8>,
}

impl Decoder {
    /// Append bytes read from the socket.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    /// The next complete message, if one is buffered. An announced length over
    /// [`MAX_PAYLOAD`] is an error (the stream cannot be resynchronised after it).
    pub fn next_message(&mut self) -> Result<Option<(u8, Vec<u8>)>, String> {
        if self.buffer.len() < 3 {
            return Ok(None);
        }
        let length = usize::from(u16::from_be_bytes([self.buffer[1], self.buffer[2]]));
        if length > MAX_PAYLOAD {
            return Err(format!(
                "bridge message of {length} bytes (at most {MAX_PAYLOAD})"
            ));
        }
        if self.buffer.len() < 3 + length {
            return Ok(None);
        }
        let kind = self.buffer[0];
        let payload = self.buffer[3..3 + length].to_vec();
        self.buffer.drain(..3 + length);
        Ok(Some((kind, payload)))
    }
}

/// The host side of a bridge socket.
pub struct BridgeConnection {
    stream: UnixStream,
    decoder: Decoder,
    inputs: VecDeque<Report>,
    name: String,
}

impl BridgeConnection {
    /// Connect to the emulator listening at `path`.
    pub fn connect(path: &Path) -> Result<Self, HidError> {
        let name = path.display().to_string();
        let stream = UnixStream::connect(path).map_err(|e| match e.kind() {
            ErrorKind::NotFound | ErrorKind::ConnectionRefused => HidError::Disconnected,
            _ => HidError::Io {
                device: name.clone(),
                message: e.to_string(),
            },
        })?;
        Ok(Self {
            stream,
            decoder: Decoder::default(),
            inputs: VecDeque::new(),
            name,
        })
    }

    /// Ask the device for its descriptor.
    pub fn describe(&mut self) -> Result<BridgeDescriptor, HidError> {
        self.send(KIND_DESCRIBE, &[])?;
        let payload = self.await_reply(KIND_DESCRIBE)?;
        serde_json::from_slice(&payload).map_err(|_| self.protocol("unreadable DESCRIBE answer"))
    }

    fn protocol(&self, message: &str) -> HidError {
        HidError::Protocol {
            device: self.name.clone(),
            message: message.to_owned(),
        }
    }

    fn send(&mut self, kind: u8, payload: &[u8]) -> Result<(), HidError> {
        let message = zeroize::Zeroizing::new(encode(kind, payload));
        self.stream
            .write_all(&message)
            .map_err(|_| HidError::Disconnected)
    }

    /// Read one message, waiting until `deadline`; `Ok(None)` at the deadline.
    fn receive(&mut self, deadline: Instant) -> Result<Option<(u8, Vec<u8>)>, HidError> {
        loop {
            match self.decoder.next_message() {
                Ok(Some(message)) => return Ok(Some(message)),
                Ok(None) => {}
                Err(message) => return Err(self.protocol(&message)),
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            // A zero timeout would mean "block forever".
            let left = left.max(Duration::from_millis(1));
            self.stream
                .set_read_timeout(Some(left))
                .map_err(|_| HidError::Disconnected)?;
            let mut chunk = [0u8; 512];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err(HidError::Disconnected),
                Ok(n) => self.decoder.feed(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return Err(HidError::Disconnected),
            }
        }
    }

    /// Keep an input report for a later `read_input`.
    fn queue_input(&mut self, payload: &[u8]) -> Result<(), HidError> {
        let report: Report = payload
            .try_into()
            .map_err(|_| self.protocol("input report of the wrong size"))?;
        if self.inputs.len() >= MAX_QUEUED_INPUTS {
            self.inputs.pop_front();
        }
        self.inputs.push_back(report);
        Ok(())
    }

    fn await_reply(&mut self, kind: u8) -> Result<Vec<u8>, HidError> {
        let deadline = Instant::now() + Duration::from_millis(REPLY_TIMEOUT_MS);
        loop {
            match self.receive(deadline)? {
                None => return Err(self.protocol("no answer in time")),
                Some((KIND_INPUT, payload)) => self.queue_input(&payload)?,
                Some((got, payload)) if got == kind => return Ok(payload),
                Some(_) => return Err(self.protocol("unexpected message kind")),
            }
        }
    }
}

impl HidConnection for BridgeConnection {
    fn write_output(&mut self, report: &Report) -> Result<(), HidError> {
        self.send(KIND_OUTPUT, report)
    }

    fn read_input(&mut self, timeout_ms: u32) -> Result<Option<Report>, HidError> {
        if let Some(report) = self.inputs.pop_front() {
            return Ok(Some(report));
        }
        let deadline = Instant::now() + Duration::from_millis(u64::from(timeout_ms));
        match self.receive(deadline)? {
            None => Ok(None),
            Some((KIND_INPUT, payload)) => {
                let report: Report = payload
                    .as_slice()
                    .try_into()
                    .map_err(|_| self.protocol("input report of the wrong size"))?;
                Ok(Some(report))
            }
            Some(_) => Err(self.protocol("unexpected message kind")),
        }
    }

    fn set_feature(&mut self, report: &FeatureReport) -> Result<(), HidError> {
        self.send(KIND_SET_FEATURE, report)?;
        self.await_reply(KIND_SET_FEATURE).map(drop)
    }

    fn get_feature(&mut self) -> Result<FeatureReport, HidError> {
        self.send(KIND_GET_FEATURE, &[])?;
        let payload = self.await_reply(KIND_GET_FEATURE)?;
        payload
            .as_slice()
            .try_into()
            .map_err(|_| self.protocol("feature report of the wrong size"))
    }

    fn name(&self) -> &str {
        &self.name
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn messages_round_trip_across_split_reads() {
        let mut bytes = encode(KIND_OUTPUT, &[7u8; 64]);
        bytes.extend(encode(KIND_GET_FEATURE, &[]));
        let mut decoder = Decoder::default();
        decoder.feed(&bytes[..10]);
        assert_eq!(decoder.next_message().unwrap(), None);
        decoder.feed(&bytes[10..]);
        assert_eq!(
            decoder.next_message().unwrap(),
            Some((KIND_OUTPUT, vec![7u8; 64]))
        );
        assert_eq!(
            decoder.next_message().unwrap(),
            Some((KIND_GET_FEATURE, vec![]))
        );
        assert_eq!(decoder.next_message().unwrap(), None);
    }

    #[test]
    fn oversize_length_is_an_error() {
        let mut decoder = Decoder::default();
        decoder.feed(&[KIND_INPUT, 0xFF, 0xFF]);
        assert!(decoder.next_message().is_err());
    }

    proptest! {
        #[test]
        fn decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let mut decoder = Decoder::default();
            decoder.feed(&bytes);
            while let Ok(Some((_, payload))) = decoder.next_message() {
                prop_assert!(payload.len() <= MAX_PAYLOAD);
            }
        }
    }
}
