//! D-Bus errors: `io.github.oathbridge.OathBridge1.Error.*`, with one-line messages.

use zbus::DBusError;

use crate::core::CoreError;

#[derive(Debug, DBusError)]
#[zbus(prefix = "io.github.oathbridge.OathBridge1.Error")]
pub enum DaemonError {
    #[zbus(error)]
    ZBus(zbus::Error),
    NoDevice(String),
    NoSuchAccount(String),
    Locked(String),
    WrongPassword(String),
    TouchTimeout(String),
    NoSpace(String),
    NotSupported(String),
    InvalidInput(String),
    DeviceRemoved(String),
    CardError(String),
}

impl From<CoreError> for DaemonError {
    fn from(error: CoreError) -> Self {
        let message = error.to_string();
        match error {
            CoreError::NoDevice => Self::NoDevice(message),
            CoreError::DeviceRemoved => Self::DeviceRemoved(message),
            CoreError::NoSuchAccount => Self::NoSuchAccount(message),
            CoreError::Locked => Self::Locked(message),
            CoreError::WrongPassword(_) => Self::WrongPassword(message),
            CoreError::TouchTimeout => Self::TouchTimeout(message),
            CoreError::NoSpace => Self::NoSpace(message),
            CoreError::NotSupported(_) => Self::NotSupported(message),
            CoreError::InvalidInput(_) => Self::InvalidInput(message),
            CoreError::Card(_) => Self::CardError(message),
            CoreError::Refused(problems) => super::import::refused(&problems),
            CoreError::ImportFailed { removed: true, .. } => Self::DeviceRemoved(message),
            CoreError::ImportFailed { removed: false, .. } => Self::CardError(message),
        }
    }
}

impl From<zbus::fdo::Error> for DaemonError {
    fn from(error: zbus::fdo::Error) -> Self {
        Self::ZBus(zbus::Error::FDO(Box::new(error)))
    }
}

pub type DaemonResult<T> = Result<T, DaemonError>;
