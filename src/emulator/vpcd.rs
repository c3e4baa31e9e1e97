//! Bridge to vsmartcard's vpcd driver inside pcscd: the card is a TCP *client*.
//!
//! Framing, both directions: a 2-byte big-endian length, then the payload. A 1-byte
//! payload is a control (0 power off, 1 power on, 2 reset, 4 send ATR; only 4 is
//! answered); anything longer is a C-APDU, answered with the R-APDU.
//!
//! [`Latency`] makes the bridge answer like a key over USB: every APDU after a fixed
//! delay, chosen instructions (a slow CALCULATE) after their own.

use std::fmt;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use socket2::SockRef;
use tracing::{debug, info, warn};

use super::card::{Card, Outcome};
use super::stats::CommandKind;
use super::transport::lock_card;

/// vpcd's default port (slot "Virtual PCD 00 00"; PORT+1 is slot "00 01").
pub const DEFAULT_PORT: u16 = 35963;
/// Pause between connection attempts.
pub const RECONNECT_BACKOFF: Duration = Duration::from_millis(100);

const CTRL_POWER_OFF: u8 = 0;
const CTRL_POWER_ON: u8 = 1;
const CTRL_RESET: u8 = 2;
const CTRL_GET_ATR: u8 = 4;
const MAX_FRAME: usize = u16::MAX as usize;

/// Why one connection to vpcd ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEnd {
    /// vpcd closed the connection (possibly mid-frame).
    PeerClosed,
    /// The card lost power (fault `power_loss_after`); the bridge hung up on purpose.
    CardRemoved,
}

/// Which instructions an [`InstructionLatency`] applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstructionMatch {
    /// A YKOATH command by name (tells SELECT from CALCULATE ALL, which share INS A4).
    Command(CommandKind),
    /// Every APDU with this INS byte.
    Ins(u8),
}

impl InstructionMatch {
    fn matches(self, apdu: &[u8]) -> bool {
        match (self, apdu) {
            (Self::Ins(ins), [_, apdu_ins, ..]) => ins == *apdu_ins,
            (Self::Command(kind), [_, ins, p1, ..]) => kind == CommandKind::classify(*ins, *p1),
            _ => false,
        }
    }
}

/// Names accepted by `--latency NAME=MS`, with the command each stands for.
const COMMAND_NAMES: [(&str, CommandKind); 11] = [
    ("select", CommandKind::Select),
    ("put", CommandKind::Put),
    ("delete", CommandKind::Delete),
    ("set-code", CommandKind::SetCode),
    ("reset", CommandKind::Reset),
    ("rename", CommandKind::Rename),
    ("list", CommandKind::List),
    ("calculate", CommandKind::Calculate),
    ("validate", CommandKind::Validate),
    ("calculate-all", CommandKind::CalculateAll),
    ("send-remaining", CommandKind::SendRemaining),
];

impl FromStr for InstructionMatch {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase().replace('_', "-");
        if let Some((_, kind)) = COMMAND_NAMES.iter().find(|(name, _)| *name == lower) {
            return Ok(Self::Command(*kind));
        }
        let hex = lower.strip_prefix("0x").unwrap_or(&lower);
        if (1..=2).contains(&hex.len())
            && let Ok(ins) = u8::from_str_radix(hex, 16)
        {
            return Ok(Self::Ins(ins));
        }
        let names: Vec<&str> = COMMAND_NAMES.iter().map(|(name, _)| *name).collect();
        Err(format!(
            "unknown instruction {s:?} (expected {} or a hex INS byte such as a2)",
            names.join(", ")
        ))
    }
}

impl fmt::Display for InstructionMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ins(ins) => write!(f, "{ins:02x}"),
            Self::Command(kind) => {
                let name = COMMAND_NAMES
                    .iter()
                    .find(|(_, k)| k == kind)
                    .map_or("other", |(name, _)| name);
                f.write_str(name)
            }
        }
    }
}

/// One `--latency INS=MS`: APDUs matching `instruction` are answered `delay` after they
/// arrive, instead of after the per-APDU latency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstructionLatency {
    pub instruction: InstructionMatch,
    pub delay: Duration,
}

impl FromStr for InstructionLatency {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (instruction, ms) = s
            .split_once('=')
            .ok_or_else(|| format!("expected INS=MS (e.g. calculate=40 or a2=40), got {s:?}"))?;
        let instruction = instruction.parse()?;
        let ms: u64 = ms
            .trim()
            .parse()
            .map_err(|_| format!("latency needs whole milliseconds, got {ms:?}"))?;
        Ok(Self {
            instruction,
            delay: Duration::from_millis(ms),
        })
    }
}

/// How long the bridge waits before answering an APDU, counted from its arrival.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Latency {
    /// Every APDU.
    pub per_apdu: Duration,
    /// Instructions with their own delay (instead of `per_apdu`); the last match wins.
    pub per_instruction: Vec<InstructionLatency>,
}

impl Latency {
    /// `per_apdu` for every APDU, overridden per instruction by `per_instruction`.
    pub fn new(per_apdu: Duration, per_instruction: Vec<InstructionLatency>) -> Self {
        Self {
            per_apdu,
            per_instruction,
        }
    }

    /// The delay for this command APDU.
    pub fn for_apdu(&self, apdu: &[u8]) -> Duration {
        self.per_instruction
            .iter()
            .rev()
            .find(|l| l.instruction.matches(apdu))
            .map_or(self.per_apdu, |l| l.delay)
    }

    /// Sleep until the answer to `apdu`, which arrived at `arrived`, is due. Processing
    /// time counts towards the delay (a real key's latency includes its computation).
    pub fn wait_for_answer(&self, apdu: &[u8], arrived: Instant) {
        let due = arrived + self.for_apdu(apdu);
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
    }
}

/// Connect to vpcd at `addr` and keep the card plugged in until the process is killed:
/// reconnects every [`RECONNECT_BACKOFF`] after a refused or dropped connection, and
/// plugs the card back in after a simulated power loss. Returns only if `addr` is invalid.
pub fn serve(addr: &str, card: Arc<Mutex<Card>>) -> io::Result<()> {
    serve_with_latency(addr, card, &Latency::default())
}

/// [`serve`], answering every APDU after its [`Latency`].
pub fn serve_with_latency(addr: &str, card: Arc<Mutex<Card>>, latency: &Latency) -> io::Result<()> {
    let targets = resolve(addr)?;
    let mut reported_refusal = false;
    loop {
        match connect(&targets) {
            Ok(stream) => {
                reported_refusal = false;
                info!("emulated card connected to vpcd at {addr}");
                match serve_connection_with_latency(stream, &card, latency) {
                    Ok(SessionEnd::PeerClosed) => info!("vpcd closed the connection"),
                    Ok(SessionEnd::CardRemoved) => {
                        info!("card removed (simulated power loss); plugging it back in");
                        std::thread::sleep(RECONNECT_BACKOFF);
                        lock_card(&card).replug();
                    }
                    Err(e) => warn!("vpcd connection failed: {e}"),
                }
            }
            Err(e) if !reported_refusal => {
                reported_refusal = true;
                warn!("cannot connect to vpcd at {addr} ({e}); retrying");
            }
            Err(e) => debug!("vpcd connect retry failed: {e}"),
        }
        std::thread::sleep(RECONNECT_BACKOFF);
    }
}

/// Connect once and serve until the connection ends.
pub fn serve_once(addr: &str, card: &Mutex<Card>) -> io::Result<SessionEnd> {
    let stream = connect(&resolve(addr)?)?;
    serve_connection(stream, card)
}

/// Serve vpcd's requests on an established connection.
pub fn serve_connection(stream: TcpStream, card: &Mutex<Card>) -> io::Result<SessionEnd> {
    serve_connection_with_latency(stream, card, &Latency::default())
}

/// [`serve_connection`], answering every APDU after its [`Latency`].
pub fn serve_connection_with_latency(
    mut stream: TcpStream,
    card: &Mutex<Card>,
    latency: &Latency,
) -> io::Result<SessionEnd> {
    stream.set_nodelay(true)?;
    loop {
        let message = match read_frame(&mut stream) {
            Ok(Some(message)) => message,
            Ok(None) => return Ok(SessionEnd::PeerClosed),
            Err(e) if is_disconnect(&e) => return Ok(SessionEnd::PeerClosed),
            Err(e) => return Err(e),
        };
        let arrived = Instant::now();
        match message.as_slice() {
            [] => debug!("vpcd sent an empty frame"),
            [control] => match *control {
                CTRL_POWER_OFF => lock_card(card).power_off(),
                CTRL_POWER_ON => lock_card(card).power_on(),
                CTRL_RESET => lock_card(card).reset(),
                CTRL_GET_ATR => {
                    let atr = lock_card(card).atr();
                    write_frame(&mut stream, &atr)?;
                }
                other => debug!(control = other, "ignoring unknown vpcd control"),
            },
            apdu => {
                let outcome = lock_card(card).transmit(apdu);
                match outcome {
                    Outcome::Response(response) => {
                        // Outside the card lock: the card itself is not busy meanwhile.
                        latency.wait_for_answer(apdu, arrived);
                        write_frame(&mut stream, &response)?;
                    }
                    Outcome::Removed => return Ok(SessionEnd::CardRemoved),
                }
            }
        }
    }
}

fn resolve(addr: &str) -> io::Result<Vec<SocketAddr>> {
    let targets: Vec<SocketAddr> = addr.to_socket_addrs()?.collect();
    if targets.is_empty() {
        return Err(io::Error::new(
            ErrorKind::InvalidInput,
            format!("{addr} resolves to no address"),
        ));
    }
    Ok(targets)
}

fn connect(targets: &[SocketAddr]) -> io::Result<TcpStream> {
    TcpStream::connect(targets)
}

fn is_disconnect(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        ErrorKind::ConnectionReset
            | ErrorKind::ConnectionAborted
            | ErrorKind::BrokenPipe
            | ErrorKind::UnexpectedEof
    )
}

/// One frame's payload, or `None` if the peer closed (also mid-frame).
fn read_frame(stream: &mut TcpStream) -> io::Result<Option<Vec<u8>>> {
    let mut header = [0u8; 2];
    if !read_exactly(stream, &mut header)? {
        return Ok(None);
    }
    let mut payload = vec![0u8; usize::from(u16::from_be_bytes(header))];
    if !read_exactly(stream, &mut payload)? {
        return Ok(None);
    }
    Ok(Some(payload))
}

/// Fill `buf`; false on EOF. Re-arms TCP_QUICKACK after every read: Linux clears it,
/// and without it vpcd's split length/payload writes stall ~40 ms per APDU.
fn read_exactly(stream: &mut TcpStream, buf: &mut [u8]) -> io::Result<bool> {
    let mut filled = 0;
    while filled < buf.len() {
        match stream.read(&mut buf[filled..]) {
            Ok(0) => return Ok(false),
            Ok(n) => {
                filled += n;
                set_quickack(stream);
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

#[cfg(target_os = "linux")]
fn set_quickack(stream: &TcpStream) {
    if let Err(e) = SockRef::from(stream).set_tcp_quickack(true) {
        debug!("TCP_QUICKACK failed: {e}");
    }
}

#[cfg(not(target_os = "linux"))]
fn set_quickack(_stream: &TcpStream) {}

/// Length and payload in one write, so vpcd never waits for a delayed second segment.
fn write_frame(stream: &mut TcpStream, payload: &[u8]) -> io::Result<()> {
    let payload = if payload.len() > MAX_FRAME {
        // Only the oversized-response fault gets here: keep the SW, drop data to fit.
        warn!(
            len = payload.len(),
            "response too long for a vpcd frame; cutting it to 65535 bytes"
        );
        let mut cut = payload[..MAX_FRAME - 2].to_vec();
        cut.extend_from_slice(&payload[payload.len() - 2..]);
        cut
    } else {
        payload.to_vec()
    };
    let len = u16::try_from(payload.len()).unwrap_or(u16::MAX);
    let mut frame = Vec::with_capacity(payload.len() + 2);
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(&payload);
    stream.write_all(&frame)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emulator::{CardConfig, Faults};
    use std::net::TcpListener;

    fn send(stream: &mut TcpStream, payload: &[u8]) {
        let mut frame = (payload.len() as u16).to_be_bytes().to_vec();
        frame.extend_from_slice(payload);
        stream.write_all(&frame).unwrap();
    }

    fn receive(stream: &mut TcpStream) -> Vec<u8> {
        read_frame(stream).unwrap().expect("frame")
    }

    const SELECT: [u8; 12] = [
        0x00, 0xA4, 0x04, 0x00, 0x07, 0xA0, 0x00, 0x00, 0x05, 0x27, 0x21, 0x01,
    ];
    const LIST: [u8; 5] = [0x00, 0xA1, 0x00, 0x00, 0x00];

    #[test]
    fn framing_against_a_fake_vpcd() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let card = Arc::new(Mutex::new(Card::new(CardConfig::default())));
        let bridge_card = Arc::clone(&card);
        let bridge = std::thread::spawn(move || serve_once(&addr, &bridge_card).unwrap());
        let (mut vpcd, _) = listener.accept().unwrap();
        vpcd.set_read_timeout(Some(Duration::from_secs(5))).unwrap();

        send(&mut vpcd, &[CTRL_GET_ATR]);
        assert_eq!(receive(&mut vpcd), vec![0x3B, 0x80, 0x80, 0x01, 0x01]);

        send(&mut vpcd, &SELECT);
        let select = receive(&mut vpcd);
        assert_eq!(&select[..5], &[0x79, 0x03, 0x05, 0x07, 0x02]);
        assert_eq!(&select[select.len() - 2..], &[0x90, 0x00]);
        send(&mut vpcd, &LIST);
        assert_eq!(receive(&mut vpcd), vec![0x90, 0x00]);

        // Power off and on: controls get no answer, and the selection is gone.
        send(&mut vpcd, &[CTRL_POWER_OFF]);
        send(&mut vpcd, &[CTRL_POWER_ON]);
        send(&mut vpcd, &LIST);
        assert_eq!(receive(&mut vpcd), vec![0x6D, 0x00]);
        send(&mut vpcd, &SELECT);
        receive(&mut vpcd);
        send(&mut vpcd, &[CTRL_RESET]);
        send(&mut vpcd, &LIST);
        assert_eq!(receive(&mut vpcd), vec![0x6D, 0x00]);

        // Closing mid-frame ends the session cleanly.
        vpcd.write_all(&[0x00, 0x0C, 0x00, 0xA4]).unwrap();
        drop(vpcd);
        assert_eq!(bridge.join().unwrap(), SessionEnd::PeerClosed);
    }

    #[test]
    fn power_loss_drops_the_connection() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let config = CardConfig {
            faults: Faults {
                power_loss_after: Some(1),
                ..Faults::default()
            },
            ..CardConfig::default()
        };
        let card = Arc::new(Mutex::new(Card::new(config)));
        let bridge_card = Arc::clone(&card);
        let bridge = std::thread::spawn(move || serve_once(&addr, &bridge_card).unwrap());
        let (mut vpcd, _) = listener.accept().unwrap();
        vpcd.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        send(&mut vpcd, &SELECT);
        receive(&mut vpcd);
        send(&mut vpcd, &LIST);
        assert_eq!(bridge.join().unwrap(), SessionEnd::CardRemoved);
        assert_eq!(read_frame(&mut vpcd).unwrap(), None);
        assert!(!lock_card(&card).is_present());
    }

    #[test]
    fn latency_options_parse() {
        let parse = |s: &str| s.parse::<InstructionLatency>();
        let ms = Duration::from_millis;
        assert_eq!(
            parse("calculate=40"),
            Ok(InstructionLatency {
                instruction: InstructionMatch::Command(CommandKind::Calculate),
                delay: ms(40),
            })
        );
        assert_eq!(
            parse("CALCULATE_ALL=7").unwrap().instruction,
            InstructionMatch::Command(CommandKind::CalculateAll)
        );
        assert_eq!(
            parse("send-remaining=0").unwrap().instruction,
            InstructionMatch::Command(CommandKind::SendRemaining)
        );
        assert_eq!(
            parse("a2=40"),
            Ok(InstructionLatency {
                instruction: InstructionMatch::Ins(0xA2),
                delay: ms(40),
            })
        );
        assert_eq!(
            parse("0xA4=5").unwrap().instruction,
            InstructionMatch::Ins(0xA4)
        );
        assert_eq!(
            parse("1=5").unwrap().instruction,
            InstructionMatch::Ins(0x01)
        );
        for (name, _) in COMMAND_NAMES {
            let parsed = parse(&format!("{name}=1")).unwrap().instruction;
            assert_eq!(parsed.to_string(), name, "names round-trip");
        }
        for bad in [
            "calculate",
            "calculate=",
            "calculate=-1",
            "calculate=1.5",
            "=40",
            "bogus=40",
            "a2a=40",
            "zz=40",
            "calculate=40ms",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should be refused");
        }
        assert!(parse("bogus=1").unwrap_err().contains("calculate-all"));
    }

    #[test]
    fn latency_picks_the_delay_per_apdu() {
        let ms = Duration::from_millis;
        let latency = Latency::new(
            ms(3),
            vec![
                "calculate=40".parse().unwrap(),
                "a4=9".parse().unwrap(),
                "calculate-all=20".parse().unwrap(),
            ],
        );
        assert_eq!(latency.for_apdu(&LIST), ms(3));
        assert_eq!(latency.for_apdu(&[0x00, 0xA2, 0x00, 0x01, 0x00]), ms(40));
        // The last match wins: SELECT only matches the hex rule, CALCULATE ALL both.
        assert_eq!(latency.for_apdu(&SELECT), ms(9));
        assert_eq!(latency.for_apdu(&[0x00, 0xA4, 0x00, 0x01, 0x00]), ms(20));
        assert_eq!(
            latency.for_apdu(&[0x00]),
            ms(3),
            "too short: per-APDU delay"
        );
        assert_eq!(Latency::default().for_apdu(&LIST), Duration::ZERO);
    }

    #[test]
    fn the_bridge_answers_after_the_latency() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let card = Arc::new(Mutex::new(Card::new(CardConfig::default())));
        let bridge_card = Arc::clone(&card);
        let latency = Latency::new(Duration::from_millis(30), vec!["list=80".parse().unwrap()]);
        let bridge = std::thread::spawn(move || {
            let stream = connect(&resolve(&addr).unwrap()).unwrap();
            serve_connection_with_latency(stream, &bridge_card, &latency).unwrap()
        });
        let (mut vpcd, _) = listener.accept().unwrap();
        vpcd.set_read_timeout(Some(Duration::from_secs(5))).unwrap();

        send(&mut vpcd, &[CTRL_GET_ATR]);
        receive(&mut vpcd);
        let started = Instant::now();
        send(&mut vpcd, &SELECT);
        receive(&mut vpcd);
        assert!(started.elapsed() >= Duration::from_millis(30), "SELECT");
        let started = Instant::now();
        send(&mut vpcd, &LIST);
        assert_eq!(receive(&mut vpcd), vec![0x90, 0x00]);
        assert!(started.elapsed() >= Duration::from_millis(80), "LIST");
        drop(vpcd);
        assert_eq!(bridge.join().unwrap(), SessionEnd::PeerClosed);
    }

    #[test]
    fn oversized_responses_are_cut_to_one_frame() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        let mut payload = vec![0x55; 70_000];
        payload.extend_from_slice(&[0x90, 0x00]);
        write_frame(&mut server, &payload).unwrap();
        let frame = read_frame(&mut client).unwrap().unwrap();
        assert_eq!(frame.len(), MAX_FRAME);
        assert_eq!(&frame[frame.len() - 2..], &[0x90, 0x00]);
    }
}
