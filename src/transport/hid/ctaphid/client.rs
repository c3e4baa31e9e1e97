//! The host side of CTAPHID (CTAP 2.1 §11.2): channel allocation, one transaction at a
//! time, KEEPALIVE, CANCEL, busy-channel retry. Every wait is bounded by [`Timeouts`].

use std::time::{Duration, Instant};

use thiserror::Error;
use tracing::debug;
use zeroize::Zeroizing;

use super::{
    BROADCAST_CID, CAPABILITY_WINK, FrameError, InitResponse, Packet, Reassembler, Started,
    command, error_code, fragment, parse,
};
use crate::transport::hid::{HidConnection, HidError};

/// Longest single read, ms: short so deadlines are checked often.
const READ_SLICE_MS: u64 = 100;
/// Pause before retrying a transaction the device refused with CHANNEL_BUSY, ms.
const BUSY_RETRY_MS: u64 = 100;

/// How long the client waits (CTAP 2.1 §11.2.9.1.5: KEEPALIVE comes every 100 ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Longest silence (no packet, not even KEEPALIVE) before giving up, ms.
    pub idle_ms: u64,
    /// Longest transaction, KEEPALIVEs and busy retries included, ms (bounds a device that
    /// sends KEEPALIVE forever; long enough for a touch).
    pub total_ms: u64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            idle_ms: 2_000,
            total_ms: 45_000,
        }
    }
}

/// KEEPALIVE status byte (CTAP 2.1 §11.2.9.1.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeepaliveStatus {
    /// 1: the device is working on the request.
    Processing,
    /// 2: the device waits for the user to touch it.
    UserPresenceNeeded,
    Other(u8),
}

impl KeepaliveStatus {
    pub fn from_byte(byte: u8) -> Self {
        match byte {
            1 => Self::Processing,
            2 => Self::UserPresenceNeeded,
            other => Self::Other(other),
        }
    }
}

/// CTAPHID errors, one per reaction a caller may have.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CtapHidError {
    #[error(transparent)]
    Hid(#[from] HidError),
    #[error("no answer in time")]
    Timeout,
    #[error("the device answered INIT with another nonce")]
    NonceMismatch,
    #[error("malformed INIT answer")]
    BadInit,
    #[error("malformed message: {0}")]
    Frame(#[from] FrameError),
    #[error("answered command 0x{got:02x} to 0x{sent:02x}")]
    UnexpectedCommand { sent: u8, got: u8 },
    #[error("the channel stayed busy")]
    Busy,
    #[error("CTAPHID error {} (0x{code:02x})", error_name(*.code))]
    Device { code: u8 },
    #[error("the device cannot wink")]
    NoWink,
}

/// The CTAP 2.1 name of a CTAPHID_ERROR code.
pub fn error_name(code: u8) -> &'static str {
    match code {
        error_code::INVALID_CMD => "ERR_INVALID_CMD",
        error_code::INVALID_PAR => "ERR_INVALID_PAR",
        error_code::INVALID_LEN => "ERR_INVALID_LEN",
        error_code::INVALID_SEQ => "ERR_INVALID_SEQ",
        error_code::MSG_TIMEOUT => "ERR_MSG_TIMEOUT",
        error_code::CHANNEL_BUSY => "ERR_CHANNEL_BUSY",
        error_code::LOCK_REQUIRED => "ERR_LOCK_REQUIRED",
        error_code::INVALID_CHANNEL => "ERR_INVALID_CHANNEL",
        _ => "ERR_OTHER",
    }
}

type KeepaliveCallback = Box<dyn FnMut(KeepaliveStatus) + Send>;

/// A CTAPHID channel on one device.
pub struct CtapHidClient<C> {
    pub(super) connection: C,
    cid: u32,
    init: InitResponse,
    timeouts: Timeouts,
    on_keepalive: Option<KeepaliveCallback>,
}

impl<C: HidConnection> CtapHidClient<C> {
    /// CTAPHID_INIT on the broadcast channel with a fresh nonce; the answer must carry it.
    /// Answers with other nonces (another program's INIT) are skipped; if only those came,
    /// the error is [`CtapHidError::NonceMismatch`].
    pub fn open(mut connection: C, timeouts: Timeouts) -> Result<Self, CtapHidError> {
        let mut nonce = [0u8; 8];
        getrandom::fill(&mut nonce).map_err(|_| CtapHidError::BadInit)?;
        for report in fragment(BROADCAST_CID, command::INIT, &nonce)? {
            connection.write_output(&report)?;
        }
        let deadline = Instant::now() + Duration::from_millis(timeouts.idle_ms);
        let mut saw_other_nonce = false;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(if saw_other_nonce {
                    CtapHidError::NonceMismatch
                } else {
                    CtapHidError::Timeout
                });
            }
            let Some(report) = connection.read_input(slice_ms(left))? else {
                continue;
            };
            let packet = parse(&report);
            let Packet::Init {
                cid: BROADCAST_CID,
                command: command::INIT,
                length,
                data,
            } = packet
            else {
                continue;
            };
            let init = InitResponse::parse(&data[..length.min(data.len())])
                .ok_or(CtapHidError::BadInit)?;
            if init.nonce != nonce {
                saw_other_nonce = true;
                continue;
            }
            if init.cid == BROADCAST_CID || init.cid == 0 {
                return Err(CtapHidError::BadInit);
            }
            debug!(
                device = connection.name(),
                cid = init.cid,
                "CTAPHID channel allocated"
            );
            return Ok(Self {
                connection,
                cid: init.cid,
                init,
                timeouts,
                on_keepalive: None,
            });
        }
    }

    /// Called for every KEEPALIVE (e.g. to show a touch prompt on `UserPresenceNeeded`).
    pub fn on_keepalive(&mut self, callback: impl FnMut(KeepaliveStatus) + Send + 'static) {
        self.on_keepalive = Some(Box::new(callback));
    }

    /// The INIT answer (device version, capabilities).
    pub fn init_response(&self) -> &InitResponse {
        &self.init
    }

    pub fn name(&self) -> &str {
        self.connection.name()
    }

    /// Send one request and wait for its answer. A CHANNEL_BUSY error is retried until
    /// [`Timeouts::total_ms`]; a transaction that runs out of time is CANCELled.
    pub fn transact(&mut self, cmd: u8, payload: &[u8]) -> Result<Vec<u8>, CtapHidError> {
        let start = Instant::now();
        let total = Duration::from_millis(self.timeouts.total_ms);
        loop {
            // The request may carry a seed (PUT): wipe its copies.
            let reports = Zeroizing::new(fragment(self.cid, cmd, payload)?);
            for report in reports.iter() {
                self.connection.write_output(report)?;
            }
            match self.receive(cmd, start) {
                Err(CtapHidError::Device {
                    code: error_code::CHANNEL_BUSY,
                }) => {
                    if start.elapsed() + Duration::from_millis(BUSY_RETRY_MS) >= total {
                        return Err(CtapHidError::Busy);
                    }
                    std::thread::sleep(Duration::from_millis(BUSY_RETRY_MS));
                }
                Err(CtapHidError::Timeout) => {
                    self.cancel();
                    return Err(CtapHidError::Timeout);
                }
                other => return other,
            }
        }
    }

    /// CTAPHID_WINK: the device blinks (when its INIT answer says it can).
    pub fn wink(&mut self) -> Result<(), CtapHidError> {
        if self.init.capabilities & CAPABILITY_WINK == 0 {
            return Err(CtapHidError::NoWink);
        }
        self.transact(command::WINK, &[]).map(|_| ())
    }

    /// CTAPHID_CANCEL for the running transaction (best effort: no answer expected).
    pub fn cancel(&mut self) {
        if let Ok(reports) = fragment(self.cid, command::CANCEL, &[]) {
            for report in reports {
                let _ = self.connection.write_output(&report);
            }
        }
    }

    fn receive(&mut self, sent: u8, start: Instant) -> Result<Vec<u8>, CtapHidError> {
        let total = Duration::from_millis(self.timeouts.total_ms);
        let idle = Duration::from_millis(self.timeouts.idle_ms);
        let mut last_activity = Instant::now();
        let mut assembling: Option<Reassembler> = None;
        loop {
            let now = Instant::now();
            let left = total
                .saturating_sub(now.duration_since(start))
                .min(idle.saturating_sub(now.duration_since(last_activity)));
            if left.is_zero() {
                return Err(CtapHidError::Timeout);
            }
            let Some(report) = self.connection.read_input(slice_ms(left))? else {
                continue;
            };
            let packet = parse(&report);
            if packet.cid() != self.cid {
                continue; // another program's channel
            }
            match packet {
                Packet::Init {
                    command: command::KEEPALIVE,
                    data,
                    ..
                } => {
                    last_activity = Instant::now();
                    let status = KeepaliveStatus::from_byte(data[0]);
                    if let Some(callback) = self.on_keepalive.as_mut() {
                        callback(status);
                    }
                }
                Packet::Init {
                    command: command::ERROR,
                    data,
                    ..
                } => return Err(CtapHidError::Device { code: data[0] }),
                Packet::Init { command: got, .. } if got != sent => {
                    return Err(CtapHidError::UnexpectedCommand { sent, got });
                }
                Packet::Init { .. } => {
                    if assembling.is_some() {
                        return Err(FrameError::Interrupted.into());
                    }
                    match Reassembler::start(&packet)? {
                        Started::Complete { payload, .. } => return Ok(payload),
                        Started::Pending(reassembler) => assembling = Some(reassembler),
                    }
                    last_activity = Instant::now();
                }
                Packet::Continuation { seq, .. } => {
                    let Some(reassembler) = assembling.as_mut() else {
                        return Err(FrameError::OutOfOrder {
                            expected: 0x80,
                            got: seq,
                        }
                        .into());
                    };
                    if let Some(payload) = reassembler.push(&packet)? {
                        return Ok(payload);
                    }
                    last_activity = Instant::now();
                }
            }
        }
    }
}

fn slice_ms(left: Duration) -> u32 {
    let ms = left.as_millis().clamp(1, u128::from(READ_SLICE_MS));
    u32::try_from(ms).unwrap_or(1)
}
