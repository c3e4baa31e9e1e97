//! Vectors derived from CTAP 2.1 §11.2.4 and a scripted device for the client.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::*;
use crate::transport::hid::{FeatureReport, HidConnection, HidError, Report};

#[test]
fn init_packet_layout_follows_the_spec() {
    let reports = fragment(0x0102_0304, command::INIT, &[0xAA; 8]).unwrap();
    assert_eq!(reports.len(), 1);
    let r = &reports[0];
    assert_eq!(&r[..7], &[0x01, 0x02, 0x03, 0x04, 0x86, 0x00, 0x08]);
    assert_eq!(&r[7..15], &[0xAA; 8]);
    assert!(r[15..].iter().all(|&b| b == 0));
}

#[test]
fn a_long_message_uses_numbered_continuations() {
    let payload: Vec<u8> = (0..200u32).map(|i| i as u8).collect();
    let reports = fragment(7, command::VENDOR_SECRETS, &payload).unwrap();
    // 57 + 59 + 59 + 25 = 200
    assert_eq!(reports.len(), 4);
    assert_eq!(&reports[0][4..7], &[0xF0, 0x00, 200]);
    assert_eq!(reports[1][4], 0);
    assert_eq!(reports[2][4], 1);
    assert_eq!(reports[3][4], 2);
    assert_eq!(reports[1][5], 57);
    let Started::Pending(mut reassembler) = Reassembler::start(&parse(&reports[0])).unwrap() else {
        panic!("should need continuations");
    };
    assert_eq!(reassembler.push(&parse(&reports[1])).unwrap(), None);
    assert_eq!(reassembler.push(&parse(&reports[2])).unwrap(), None);
    assert_eq!(
        reassembler.push(&parse(&reports[3])).unwrap(),
        Some(payload)
    );
}

#[test]
fn the_largest_message_fits_and_one_more_byte_does_not() {
    assert_eq!(MAX_MESSAGE, 7609);
    let reports = fragment(1, command::MSG, &vec![1u8; MAX_MESSAGE]).unwrap();
    assert_eq!(reports.len(), 129);
    assert_eq!(reports[128][4], 127);
    assert_eq!(
        fragment(1, command::MSG, &vec![1u8; MAX_MESSAGE + 1]),
        Err(FrameError::Oversize(MAX_MESSAGE + 1))
    );
    let mut huge = [0u8; 64];
    huge[4] = 0x83;
    huge[5..7].copy_from_slice(&0xFFFFu16.to_be_bytes());
    assert_eq!(
        Reassembler::start(&parse(&huge)).err(),
        Some(FrameError::Oversize(0xFFFF))
    );
}

#[test]
fn out_of_order_continuation_is_refused() {
    let reports = fragment(7, command::MSG, &[5u8; 150]).unwrap();
    let Started::Pending(mut r) = Reassembler::start(&parse(&reports[0])).unwrap() else {
        panic!("needs continuations");
    };
    assert_eq!(
        r.push(&parse(&reports[2])),
        Err(FrameError::OutOfOrder {
            expected: 0,
            got: 1
        })
    );
}

proptest! {
    #[test]
    fn fragment_and_reassemble_round_trip(
        cid in any::<u32>(),
        cmd in 0u8..0x80,
        payload in proptest::collection::vec(any::<u8>(), 0..1200),
    ) {
        let reports = fragment(cid, cmd, &payload).unwrap();
        let mut result = None;
        let mut reassembler = None;
        for report in &reports {
            let packet = parse(report);
            prop_assert_eq!(packet.cid(), cid);
            match reassembler.as_mut() {
                None => match Reassembler::start(&packet).unwrap() {
                    Started::Complete { command, payload } => { prop_assert_eq!(command, cmd); result = Some(payload); }
                    Started::Pending(r) => reassembler = Some(r),
                },
                Some(r) => if let Some(done) = r.push(&packet).unwrap() { result = Some(done); },
            }
        }
        prop_assert_eq!(result, Some(payload));
    }

    #[test]
    fn any_packets_never_panic(reports in proptest::collection::vec(proptest::array::uniform32(any::<u8>()), 1..20)) {
        let mut reassembler: Option<Reassembler> = None;
        for half in &reports {
            let mut report = [0u8; 64];
            report[..32].copy_from_slice(half);
            report[32..].copy_from_slice(half);
            let packet = parse(&report);
            match reassembler.as_mut() {
                None => if let Ok(Started::Pending(r)) = Reassembler::start(&packet) { reassembler = Some(r) },
                Some(r) => match r.push(&packet) {
                    Ok(Some(done)) => { prop_assert!(done.len() <= MAX_MESSAGE); reassembler = None; }
                    Ok(None) => {}
                    Err(_) => reassembler = None,
                },
            }
        }
    }
}

type Respond = Box<dyn FnMut(&Report) -> Vec<Report> + Send>;

/// A device that answers each written report through `respond`.
struct Scripted {
    respond: Respond,
    pending: VecDeque<Report>,
    /// Keep sending this report on every read (a stuck device).
    repeat: Option<Report>,
    written: Vec<Report>,
}

impl Scripted {
    fn new(respond: impl FnMut(&Report) -> Vec<Report> + Send + 'static) -> Self {
        Self {
            respond: Box::new(respond),
            pending: VecDeque::new(),
            repeat: None,
            written: Vec::new(),
        }
    }
}

impl HidConnection for Scripted {
    fn write_output(&mut self, report: &Report) -> Result<(), HidError> {
        self.written.push(*report);
        let answers = (self.respond)(report);
        self.pending.extend(answers);
        Ok(())
    }
    fn read_input(&mut self, timeout_ms: u32) -> Result<Option<Report>, HidError> {
        if let Some(r) = self.pending.pop_front() {
            return Ok(Some(r));
        }
        if let Some(r) = self.repeat {
            std::thread::sleep(Duration::from_millis(5));
            return Ok(Some(r));
        }
        std::thread::sleep(Duration::from_millis(u64::from(timeout_ms)));
        Ok(None)
    }
    fn set_feature(&mut self, _: &FeatureReport) -> Result<(), HidError> {
        Err(HidError::Disconnected)
    }
    fn get_feature(&mut self) -> Result<FeatureReport, HidError> {
        Err(HidError::Disconnected)
    }
    fn name(&self) -> &str {
        "scripted"
    }
}

const CID: u32 = 0x1122_3344;

fn init_answer(request: &Report, nonce_xor: u8, cid: u32) -> Vec<Report> {
    let mut nonce = [0u8; 8];
    nonce.copy_from_slice(&request[7..15]);
    nonce[0] ^= nonce_xor;
    let init = InitResponse {
        nonce,
        cid,
        protocol_version: 2,
        device_version: [1, 2, 3],
        capabilities: CAPABILITY_WINK,
    };
    fragment(BROADCAST_CID, command::INIT, &init.to_bytes()).unwrap()
}

fn fast() -> Timeouts {
    Timeouts {
        idle_ms: 300,
        total_ms: 1_000,
    }
}

/// A device that allocates CID and echoes every vendor request after `before` packets.
fn echo_device(before: impl Fn(u32) -> Vec<Report> + Send + 'static) -> Scripted {
    Scripted::new(move |report| {
        let packet = parse(report);
        match packet {
            Packet::Init {
                cid: BROADCAST_CID,
                command: command::INIT,
                ..
            } => init_answer(report, 0, CID),
            Packet::Init {
                cid,
                command,
                length,
                data,
            } if command != command::CANCEL => {
                let mut out = before(cid);
                out.extend(fragment(cid, command, &data[..length.min(57)]).unwrap());
                out
            }
            _ => Vec::new(),
        }
    })
}

#[test]
fn init_allocates_the_channel_and_a_transaction_round_trips() {
    let mut client = CtapHidClient::open(echo_device(|_| Vec::new()), fast()).unwrap();
    assert_eq!(client.init_response().cid, CID);
    assert_eq!(client.transact(command::PING, b"hello").unwrap(), b"hello");
    client.wink().unwrap();
}

#[test]
fn a_wrong_nonce_is_a_typed_error() {
    let device = Scripted::new(|report| init_answer(report, 0xFF, CID));
    let started = Instant::now();
    assert_eq!(
        CtapHidClient::open(device, fast()).err(),
        Some(CtapHidError::NonceMismatch)
    );
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[test]
fn answers_on_another_channel_time_out_and_cancel() {
    let device = Scripted::new(|report| match parse(report) {
        Packet::Init {
            cid: BROADCAST_CID, ..
        } => init_answer(report, 0, CID),
        Packet::Init { command, .. } if command != command::CANCEL => {
            fragment(CID ^ 1, command, b"not yours").unwrap()
        }
        _ => Vec::new(),
    });
    let mut client = CtapHidClient::open(device, fast()).unwrap();
    let started = Instant::now();
    assert_eq!(
        client.transact(command::VENDOR_SECRETS, b"x"),
        Err(CtapHidError::Timeout)
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    let last = client.connection.written.last().copied().unwrap();
    assert_eq!(last[4], 0x80 | command::CANCEL);
}

#[test]
fn keepalives_are_reported_and_endless_ones_are_bounded() {
    let keepalive = |cid: u32| fragment(cid, command::KEEPALIVE, &[2]).unwrap();
    let mut client = CtapHidClient::open(echo_device(keepalive), fast()).unwrap();
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = seen.clone();
    client.on_keepalive(move |status| {
        if status == KeepaliveStatus::UserPresenceNeeded {
            flag.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    });
    assert_eq!(client.transact(command::PING, b"x").unwrap(), b"x");
    assert!(seen.load(std::sync::atomic::Ordering::Relaxed));

    let mut stuck = CtapHidClient::open(echo_device(|_| Vec::new()), fast()).unwrap();
    stuck.connection.respond = Box::new(|_| Vec::new());
    stuck.connection.repeat = Some(fragment(CID, command::KEEPALIVE, &[1]).unwrap()[0]);
    let started = Instant::now();
    assert_eq!(
        stuck.transact(command::PING, b"x"),
        Err(CtapHidError::Timeout)
    );
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(900) && took < Duration::from_secs(3));
}

#[test]
fn device_errors_and_busy_channels_are_typed() {
    let error = |code: u8| {
        move |report: &Report| match parse(report) {
            Packet::Init {
                cid: BROADCAST_CID, ..
            } => init_answer(report, 0, CID),
            Packet::Init { cid, .. } => fragment(cid, command::ERROR, &[code]).unwrap(),
            _ => Vec::new(),
        }
    };
    let mut client = CtapHidClient::open(Scripted::new(error(0x01)), fast()).unwrap();
    let failure = client.transact(command::VENDOR_SECRETS, b"x").unwrap_err();
    assert_eq!(failure, CtapHidError::Device { code: 0x01 });
    assert!(failure.to_string().contains("ERR_INVALID_CMD"));

    let mut busy = CtapHidClient::open(Scripted::new(error(0x06)), fast()).unwrap();
    let started = Instant::now();
    assert_eq!(busy.transact(command::PING, b"x"), Err(CtapHidError::Busy));
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[test]
fn a_busy_channel_is_retried_until_it_frees() {
    let mut refusals = 2;
    let device = Scripted::new(move |report| match parse(report) {
        Packet::Init {
            cid: BROADCAST_CID, ..
        } => init_answer(report, 0, CID),
        Packet::Init { cid, command, .. } if refusals > 0 && command != command::CANCEL => {
            refusals -= 1;
            fragment(cid, command::ERROR, &[0x06]).unwrap()
        }
        Packet::Init { cid, command, .. } => fragment(cid, command, b"ok").unwrap(),
        _ => Vec::new(),
    });
    let mut client = CtapHidClient::open(device, fast()).unwrap();
    assert_eq!(client.transact(command::PING, b"x").unwrap(), b"ok");
}

#[test]
fn silence_is_a_timeout() {
    let started = Instant::now();
    let device = Scripted::new(|_| Vec::new());
    assert_eq!(
        CtapHidClient::open(device, fast()).err(),
        Some(CtapHidError::Timeout)
    );
    assert!(started.elapsed() < Duration::from_secs(1));
}
