//! The Nitrokey 3 Secrets App over CTAPHID vendor command 0x70, as an
//! [`oath::Transport`](crate::oath::Transport): the request is the command APDU; the
//! answer is `SW1 SW2` first, then the data (Nitrokey `docs/ctaphid.md`), which is put
//! back into APDU order (data, then SW1 SW2) so [`crate::oath::Session`] works unchanged.

use tracing::debug;

use super::HidConnection;
use super::HidError;
use super::ctaphid::{CtapHidClient, CtapHidError, KeepaliveStatus, Timeouts, command};
use crate::oath::{Transport, TransportError};

/// The Secrets App behind one CTAPHID channel.
pub struct SecretsTransport<C> {
    client: CtapHidClient<C>,
}

impl<C: HidConnection> SecretsTransport<C> {
    /// Allocate a channel on `connection` (CTAPHID_INIT).
    pub fn open(connection: C, timeouts: Timeouts) -> Result<Self, TransportError> {
        let name = connection.name().to_owned();
        let mut client = CtapHidClient::open(connection, timeouts).map_err(|e| map(&name, e))?;
        client.on_keepalive(|status| {
            if status == KeepaliveStatus::UserPresenceNeeded {
                debug!("the key waits for a touch");
            }
        });
        Ok(Self { client })
    }

    /// Called for every KEEPALIVE (touch prompts).
    pub fn on_keepalive(&mut self, callback: impl FnMut(KeepaliveStatus) + Send + 'static) {
        self.client.on_keepalive(callback);
    }

    /// CTAPHID_WINK.
    pub fn wink(&mut self) -> Result<(), TransportError> {
        let name = self.client.name().to_owned();
        self.client.wink().map_err(|e| map(&name, e))
    }
}

/// CTAPHID failures as the YKOATH layer sees them.
fn map(device: &str, error: CtapHidError) -> TransportError {
    match error {
        CtapHidError::Hid(HidError::Disconnected) => TransportError::CardRemoved,
        CtapHidError::Timeout => TransportError::Timeout,
        other => TransportError::Io(format!("HID device {device}: {other}")),
    }
}

impl<C: HidConnection> Transport for SecretsTransport<C> {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        let name = self.client.name().to_owned();
        let answer = self
            .client
            .transact(command::VENDOR_SECRETS, apdu)
            .map_err(|e| map(&name, e))?;
        reorder(&answer).ok_or_else(|| {
            TransportError::Io(format!(
                "HID device {name}: Secrets App answer shorter than a status word"
            ))
        })
    }
}

/// `SW1 SW2 data…` → `data… SW1 SW2`; `None` for fewer than 2 bytes.
pub fn reorder(answer: &[u8]) -> Option<Vec<u8>> {
    if answer.len() < 2 {
        return None;
    }
    let mut out = Vec::with_capacity(answer.len());
    out.extend_from_slice(&answer[2..]);
    out.extend_from_slice(&answer[..2]);
    Some(out)
}

/// The inverse of [`reorder`], for the emulator: `data… SW1 SW2` → `SW1 SW2 data…`.
pub fn sw_first(response: &[u8]) -> Vec<u8> {
    if response.len() < 2 {
        return response.to_vec();
    }
    let split = response.len() - 2;
    let mut out = Vec::with_capacity(response.len());
    out.extend_from_slice(&response[split..]);
    out.extend_from_slice(&response[..split]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_word_moves_to_the_end_and_back() {
        assert_eq!(
            reorder(&[0x90, 0x00, 1, 2, 3]),
            Some(vec![1, 2, 3, 0x90, 0x00])
        );
        assert_eq!(reorder(&[0x6A, 0x82]), Some(vec![0x6A, 0x82]));
        assert_eq!(reorder(&[0x90]), None);
        assert_eq!(sw_first(&[1, 2, 3, 0x90, 0x00]), vec![0x90, 0x00, 1, 2, 3]);
    }
}
