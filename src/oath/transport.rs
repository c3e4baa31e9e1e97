//! The one boundary between the protocol and the outside world.

use thiserror::Error;

/// Errors a transport reports for one exchange.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TransportError {
    #[error("the key was removed")]
    CardRemoved,
    #[error("the key was reset by another program; try again")]
    CardReset,
    #[error("the key did not answer in time")]
    Timeout,
    #[error("card communication failed: {0}")]
    Io(String),
}

/// Sends one command APDU and returns the raw response (data followed by SW1 SW2).
pub trait Transport {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError>;
}

impl<T: Transport + ?Sized> Transport for &mut T {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        (**self).transmit(apdu)
    }
}

impl<T: Transport + ?Sized> Transport for Box<T> {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        (**self).transmit(apdu)
    }
}
