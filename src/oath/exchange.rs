//! One logical command: send, follow 61XX chaining with SEND REMAINING, bound the answer.

use tracing::trace;

use super::apdu::{CommandApdu, Response};
use super::consts::INS_SEND_REMAINING;
use super::error::OathError;
use super::status::StatusWord;
use super::transport::{Transport, TransportError};

/// Largest answer we accept for one command (64 credentials with 64-byte ids and full
/// SHA-512 responses stay far below this).
pub const MAX_RESPONSE_BYTES: usize = 32 * 1024;
/// Most SEND REMAINING rounds for one command: a card that keeps saying 61XX is broken.
pub const MAX_CHUNKS: usize = 256;

/// Send `command` and return the response data with its final status word. Chaining is
/// followed here; the caller interprets the status word.
pub fn exchange<T: Transport + ?Sized>(
    transport: &mut T,
    command: &CommandApdu,
) -> Result<Response, OathError> {
    let encoded = command.encode()?;
    let mut response = receive(transport, &encoded)?;
    let mut data = std::mem::take(&mut response.data);
    let mut chunks = 0;
    while let StatusWord::MoreData(_) = response.sw {
        chunks += 1;
        if chunks > MAX_CHUNKS {
            return Err(OathError::TooManyChunks(MAX_CHUNKS));
        }
        let more = CommandApdu::new(INS_SEND_REMAINING, 0, 0, Vec::new()).encode()?;
        response = receive(transport, &more)?;
        if data.len() + response.data.len() > MAX_RESPONSE_BYTES {
            return Err(OathError::ResponseTooLarge(MAX_RESPONSE_BYTES));
        }
        data.append(&mut response.data);
    }
    trace!(ins = command.ins, sw = %response.sw, len = data.len(), "exchange");
    Ok(Response {
        data,
        sw: response.sw,
    })
}

fn receive<T: Transport + ?Sized>(transport: &mut T, bytes: &[u8]) -> Result<Response, OathError> {
    let raw = transport.transmit(bytes)?;
    // pcscd hands back an empty answer when the card vanished mid-command.
    if raw.is_empty() {
        return Err(TransportError::CardRemoved.into());
    }
    if raw.len() > MAX_RESPONSE_BYTES + 2 {
        return Err(OathError::ResponseTooLarge(MAX_RESPONSE_BYTES));
    }
    Ok(Response::parse(raw)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    struct Scripted(VecDeque<Vec<u8>>, Vec<Vec<u8>>);
    impl Transport for Scripted {
        fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
            self.1.push(apdu.to_vec());
            self.0
                .pop_front()
                .ok_or_else(|| TransportError::Io("script exhausted".into()))
        }
    }

    #[test]
    fn follows_chaining_with_send_remaining() {
        let mut card = Scripted(
            VecDeque::from([vec![1, 2, 0x61, 0x02], vec![3, 4, 0x90, 0x00]]),
            Vec::new(),
        );
        let cmd = CommandApdu::new(0xA1, 0, 0, Vec::new());
        let response = exchange(&mut card, &cmd).unwrap();
        assert_eq!(response.data, vec![1, 2, 3, 4]);
        assert_eq!(card.1[1], vec![0x00, 0xA5, 0x00, 0x00, 0x00]);
    }

    #[test]
    fn endless_more_data_is_cut_off() {
        struct Endless;
        impl Transport for Endless {
            fn transmit(&mut self, _: &[u8]) -> Result<Vec<u8>, TransportError> {
                Ok(vec![0x61, 0x00])
            }
        }
        let cmd = CommandApdu::new(0xA1, 0, 0, Vec::new());
        assert!(matches!(
            exchange(&mut Endless, &cmd),
            Err(OathError::TooManyChunks(_))
        ));
    }

    #[test]
    fn oversized_answers_are_refused() {
        struct Huge;
        impl Transport for Huge {
            fn transmit(&mut self, _: &[u8]) -> Result<Vec<u8>, TransportError> {
                let mut v = vec![0xAB; 64 * 1024];
                v.extend_from_slice(&[0x61, 0xFF]);
                Ok(v)
            }
        }
        let cmd = CommandApdu::new(0xA1, 0, 0, Vec::new());
        assert!(matches!(
            exchange(&mut Huge, &cmd),
            Err(OathError::ResponseTooLarge(_))
        ));
    }

    #[test]
    fn short_answers_are_errors_not_panics() {
        let mut card = Scripted(VecDeque::from([vec![0x90]]), Vec::new());
        let cmd = CommandApdu::new(0xA1, 0, 0, Vec::new());
        assert!(matches!(exchange(&mut card, &cmd), Err(OathError::Apdu(_))));
    }
}
