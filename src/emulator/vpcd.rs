//! Bridge to vsmartcard's vpcd driver inside pcscd: the card is a TCP *client*.
//!
//! Framing, both directions: a 2-byte big-endian length, then the payload. A 1-byte
//! payload is a control (0 power off, 1 power on, 2 reset, 4 send ATR; only 4 is
//! answered); anything longer is a C-APDU, answered with the R-APDU.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use socket2::SockRef;
use tracing::{debug, info, warn};

use super::card::{Card, Outcome};
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

/// Connect to vpcd at `addr` and keep the card plugged in until the process is killed:
/// reconnects every [`RECONNECT_BACKOFF`] after a refused or dropped connection, and
/// plugs the card back in after a simulated power loss. Returns only if `addr` is invalid.
pub fn serve(addr: &str, card: Arc<Mutex<Card>>) -> io::Result<()> {
    let targets = resolve(addr)?;
    let mut reported_refusal = false;
    loop {
        match connect(&targets) {
            Ok(stream) => {
                reported_refusal = false;
                info!("emulated card connected to vpcd at {addr}");
                match serve_connection(stream, &card) {
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
pub fn serve_connection(mut stream: TcpStream, card: &Mutex<Card>) -> io::Result<SessionEnd> {
    stream.set_nodelay(true)?;
    loop {
        let message = match read_frame(&mut stream) {
            Ok(Some(message)) => message,
            Ok(None) => return Ok(SessionEnd::PeerClosed),
            Err(e) if is_disconnect(&e) => return Ok(SessionEnd::PeerClosed),
            Err(e) => return Err(e),
        };
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
                    Outcome::Response(response) => write_frame(&mut stream, &response)?,
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
