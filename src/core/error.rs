//! Errors of the core, one per thing a client may want to react to.

use thiserror::Error;

use crate::oath::{OathError, TransportError};
use crate::transport::pcsc::PcscError;

#[derive(Debug, Clone, Error)]
pub enum CoreError {
    #[error("no such key")]
    NoDevice,
    #[error("the key was removed")]
    DeviceRemoved,
    #[error("no such account")]
    NoSuchAccount,
    #[error("the key is password protected; unlock it first")]
    Locked,
    #[error("{0}")]
    WrongPassword(String),
    #[error("touch not detected in time")]
    TouchTimeout,
    #[error("no space left on the key")]
    NoSpace,
    #[error("not supported by this key: {0}")]
    NotSupported(String),
    #[error("{0}")]
    InvalidInput(String),
    #[error("{0}")]
    Card(String),
    /// Another program reset the card during the operation; reading again is safe.
    #[error("the key was reset by another program during the operation; try again")]
    CardReset,
    /// An import plan with problems: nothing was written.
    #[error("{0}")]
    Refused(crate::import::plan::Problems),
    /// An import failed midway; the message says what is on the key now.
    #[error("{message}")]
    ImportFailed { removed: bool, message: String },
}

impl From<OathError> for CoreError {
    fn from(error: OathError) -> Self {
        match error {
            OathError::Transport(TransportError::CardRemoved) => Self::DeviceRemoved,
            OathError::Transport(TransportError::CardReset) => Self::CardReset,
            OathError::Locked => Self::Locked,
            OathError::WrongPassword => Self::WrongPassword("wrong password".into()),
            OathError::NoPassword => Self::InvalidInput("the key has no password set".into()),
            OathError::TouchTimeout => Self::TouchTimeout,
            OathError::NoSpace => Self::NoSpace,
            OathError::NotSupported(what) => Self::NotSupported(what),
            OathError::NotFound => Self::NoSuchAccount,
            OathError::Credential(e) => Self::InvalidInput(e.to_string()),
            OathError::AlreadyExists | OathError::Rejected => Self::InvalidInput(error.to_string()),
            other => Self::Card(other.to_string()),
        }
    }
}

impl From<PcscError> for CoreError {
    fn from(error: PcscError) -> Self {
        match error {
            PcscError::CardRemoved | PcscError::NoCard(_) | PcscError::NoService => {
                Self::DeviceRemoved
            }
            other => Self::Card(other.to_string()),
        }
    }
}
