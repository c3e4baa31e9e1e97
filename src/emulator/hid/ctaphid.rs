//! The device side of CTAPHID (CTAP 2.1 §11.2) for the Nitrokey 3 profile: INIT, PING,
//! WINK, CANCEL, and the Secrets App behind vendor command 0x70 (answers `SW1 SW2` first,
//! then data). While the card works, KEEPALIVE goes out every 100 ms: UPNEEDED while it
//! waits for a touch, PROCESSING otherwise.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tracing::{debug, info};

use crate::emulator::Card;
use crate::emulator::transport::lock_card;
use crate::transport::hid::Report;
use crate::transport::hid::ctaphid::{
    BROADCAST_CID, CAPABILITY_WINK, InitResponse, Packet, Reassembler, Started, command,
    error_code, fragment, parse,
};
use crate::transport::hid::secrets::sw_first;

/// Interval between KEEPALIVEs (CTAP 2.1 §11.2.9.1.5).
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_millis(100);
const STATUS_PROCESSING: u8 = 1;
const STATUS_UPNEEDED: u8 = 2;

/// The card behind the CTAPHID interface, shared by every connection.
pub struct CtapHidDevice {
    card: Arc<Mutex<Card>>,
    touch_waiting: Arc<AtomicBool>,
    next_cid: AtomicU32,
    device_version: [u8; 3],
}

impl CtapHidDevice {
    pub fn new(card: Arc<Mutex<Card>>) -> Arc<Self> {
        let touch_waiting = lock_card(&card).touch_waiting();
        Arc::new(Self {
            card,
            touch_waiting,
            next_cid: AtomicU32::new(1),
            device_version: [1, 7, 0],
        })
    }
}

/// A request the card is working on.
struct InFlight {
    cid: u32,
    answer: Receiver<Vec<u8>>,
    last_keepalive: Instant,
}

/// One host connection's view: its channels, the message being assembled, the request
/// in flight.
pub struct CtapHidSession {
    device: Arc<CtapHidDevice>,
    channels: HashSet<u32>,
    assembling: Option<Reassembler>,
    in_flight: Option<InFlight>,
}

fn error(cid: u32, code: u8) -> Vec<Report> {
    fragment(cid, command::ERROR, &[code]).unwrap_or_default()
}

impl CtapHidSession {
    pub fn new(device: Arc<CtapHidDevice>) -> Self {
        Self {
            device,
            channels: HashSet::new(),
            assembling: None,
            in_flight: None,
        }
    }

    /// Handle one output report; returns the input reports to send now.
    pub fn on_report(&mut self, report: &Report) -> Vec<Report> {
        let packet = parse(report);
        let cid = packet.cid();
        if let Packet::Init {
            command: command::INIT,
            ..
        } = packet
        {
            return self.init(&packet);
        }
        if cid == 0 || cid == BROADCAST_CID || !self.channels.contains(&cid) {
            return error(cid, error_code::INVALID_CHANNEL);
        }
        if let Packet::Init {
            command: command::CANCEL,
            ..
        } = packet
        {
            if self.in_flight.as_ref().is_some_and(|f| f.cid == cid) {
                info!("CTAPHID CANCEL: dropping the running request");
                self.in_flight = None;
            }
            return Vec::new();
        }
        if self.in_flight.is_some() {
            return error(cid, error_code::CHANNEL_BUSY);
        }
        let message = match packet {
            Packet::Init { .. } => match Reassembler::start(&packet) {
                Err(_) => return error(cid, error_code::INVALID_LEN),
                Ok(Started::Complete { command, payload }) => Some((command, payload)),
                Ok(Started::Pending(reassembler)) => {
                    self.assembling = Some(reassembler);
                    None
                }
            },
            Packet::Continuation { .. } => match self.assembling.as_mut() {
                // A stray continuation packet is ignored (CTAP 2.1 §11.2.4).
                None => None,
                Some(r) if r.cid() != cid => return error(cid, error_code::CHANNEL_BUSY),
                Some(r) => match r.push(&packet) {
                    Err(_) => {
                        self.assembling = None;
                        return error(cid, error_code::INVALID_SEQ);
                    }
                    Ok(Some(payload)) => {
                        let cmd = r.command();
                        self.assembling = None;
                        Some((cmd, payload))
                    }
                    Ok(None) => None,
                },
            },
        };
        match message {
            Some((cmd, payload)) => self.execute(cid, cmd, payload),
            None => Vec::new(),
        }
    }

    fn init(&mut self, packet: &Packet<'_>) -> Vec<Report> {
        let Packet::Init {
            cid, length, data, ..
        } = *packet
        else {
            return Vec::new();
        };
        if length != 8 {
            return error(cid, error_code::INVALID_LEN);
        }
        let mut nonce = [0u8; 8];
        nonce.copy_from_slice(&data[..8]);
        let new_cid = if cid == BROADCAST_CID {
            let allocated = self.device.next_cid.fetch_add(1, Ordering::Relaxed);
            self.channels.insert(allocated);
            allocated
        } else {
            // INIT on an own channel resynchronises it.
            self.assembling = None;
            cid
        };
        let answer = InitResponse {
            nonce,
            cid: new_cid,
            protocol_version: 2,
            device_version: self.device.device_version,
            capabilities: CAPABILITY_WINK,
        };
        debug!(cid = new_cid, "CTAPHID channel allocated");
        fragment(cid, command::INIT, &answer.to_bytes()).unwrap_or_default()
    }

    fn execute(&mut self, cid: u32, cmd: u8, payload: Vec<u8>) -> Vec<Report> {
        match cmd {
            command::PING => fragment(cid, command::PING, &payload).unwrap_or_default(),
            command::WINK => {
                info!("CTAPHID WINK: the key blinks");
                fragment(cid, command::WINK, &[]).unwrap_or_default()
            }
            command::VENDOR_SECRETS => {
                let (sender, answer) = mpsc::channel();
                let card = self.device.card.clone();
                let spawned = std::thread::Builder::new()
                    .name("secrets-app".into())
                    .spawn(move || {
                        let response = lock_card(&card).process(&payload);
                        let _ = sender.send(response);
                    });
                if spawned.is_err() {
                    return error(cid, error_code::OTHER);
                }
                self.in_flight = Some(InFlight {
                    cid,
                    answer,
                    last_keepalive: Instant::now(),
                });
                self.poll()
            }
            _ => error(cid, error_code::INVALID_CMD),
        }
    }

    /// The answer once the card is done, else a KEEPALIVE when one is due.
    pub fn poll(&mut self) -> Vec<Report> {
        let Some(in_flight) = self.in_flight.as_mut() else {
            return Vec::new();
        };
        let cid = in_flight.cid;
        match in_flight.answer.try_recv() {
            Ok(response) => {
                self.in_flight = None;
                if response.is_empty() {
                    // The card lost power (fault switch): no status word to send.
                    return error(cid, error_code::OTHER);
                }
                fragment(cid, command::VENDOR_SECRETS, &sw_first(&response))
                    .unwrap_or_else(|_| error(cid, error_code::OTHER))
            }
            Err(TryRecvError::Disconnected) => {
                self.in_flight = None;
                error(cid, error_code::OTHER)
            }
            Err(TryRecvError::Empty) => {
                if in_flight.last_keepalive.elapsed() < KEEPALIVE_INTERVAL {
                    return Vec::new();
                }
                in_flight.last_keepalive = Instant::now();
                let status = if self.device.touch_waiting.load(Ordering::Relaxed) {
                    STATUS_UPNEEDED
                } else {
                    STATUS_PROCESSING
                };
                fragment(cid, command::KEEPALIVE, &[status]).unwrap_or_default()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emulator::CardConfig;

    fn session() -> CtapHidSession {
        let card = Arc::new(Mutex::new(Card::new(CardConfig::nitrokey())));
        CtapHidSession::new(CtapHidDevice::new(card))
    }

    fn init(session: &mut CtapHidSession) -> u32 {
        let request = fragment(BROADCAST_CID, command::INIT, &[7; 8]).unwrap();
        let answer = session.on_report(&request[0]);
        let Packet::Init { data, .. } = parse(&answer[0]) else {
            panic!("INIT answer expected");
        };
        let init = InitResponse::parse(data).unwrap();
        assert_eq!(init.nonce, [7; 8]);
        init.cid
    }

    fn error_code_of(reports: &[Report]) -> Option<u8> {
        match parse(reports.first()?) {
            Packet::Init {
                command: command::ERROR,
                data,
                ..
            } => Some(data[0]),
            _ => None,
        }
    }

    #[test]
    fn bad_frames_get_ctaphid_errors() {
        let mut s = session();
        // A channel nobody allocated.
        let ping = fragment(0x5555, command::PING, b"x").unwrap();
        assert_eq!(
            error_code_of(&s.on_report(&ping[0])),
            Some(error_code::INVALID_CHANNEL)
        );
        let cid = init(&mut s);
        // INIT with a nonce of the wrong size.
        let short = fragment(BROADCAST_CID, command::INIT, &[1; 4]).unwrap();
        assert_eq!(
            error_code_of(&s.on_report(&short[0])),
            Some(error_code::INVALID_LEN)
        );
        // An unknown command.
        let cbor = fragment(cid, command::CBOR, &[4]).unwrap();
        assert_eq!(
            error_code_of(&s.on_report(&cbor[0])),
            Some(error_code::INVALID_CMD)
        );
        // An announced length over the maximum.
        let mut huge = fragment(cid, command::PING, &[]).unwrap()[0];
        huge[5..7].copy_from_slice(&0xFFFFu16.to_be_bytes());
        assert_eq!(
            error_code_of(&s.on_report(&huge)),
            Some(error_code::INVALID_LEN)
        );
        // Continuations out of order.
        let long = fragment(cid, command::PING, &[9; 200]).unwrap();
        assert!(s.on_report(&long[0]).is_empty());
        assert_eq!(
            error_code_of(&s.on_report(&long[2])),
            Some(error_code::INVALID_SEQ)
        );
        // A stray continuation is ignored; a whole message then works.
        assert!(s.on_report(&long[1]).is_empty());
        let ping = fragment(cid, command::PING, b"hi").unwrap();
        let answer = s.on_report(&ping[0]);
        assert!(matches!(
            parse(&answer[0]),
            Packet::Init {
                command: command::PING,
                ..
            }
        ));
    }

    #[test]
    fn a_second_request_while_one_runs_is_busy_and_cancel_drops_it() {
        let mut s = session();
        let cid = init(&mut s);
        let card = s.device.card.clone();
        // Keep the card busy: the request waits for its lock.
        let guard = lock_card(&card);
        let select = fragment(
            cid,
            command::VENDOR_SECRETS,
            &[0, 0xA4, 4, 0, 7, 0xA0, 0, 0, 5, 0x27, 0x21, 1],
        )
        .unwrap();
        assert!(s.on_report(&select[0]).is_empty() || s.in_flight.is_some());
        let ping = fragment(cid, command::PING, b"x").unwrap();
        assert_eq!(
            error_code_of(&s.on_report(&ping[0])),
            Some(error_code::CHANNEL_BUSY)
        );
        std::thread::sleep(KEEPALIVE_INTERVAL);
        let keepalive = s.poll();
        assert!(matches!(
            parse(&keepalive[0]),
            Packet::Init { command: command::KEEPALIVE, data, .. } if data[0] == STATUS_PROCESSING
        ));
        let cancel = fragment(cid, command::CANCEL, &[]).unwrap();
        assert!(s.on_report(&cancel[0]).is_empty());
        drop(guard);
        assert!(s.in_flight.is_none());
        assert!(s.poll().is_empty());
    }
}
