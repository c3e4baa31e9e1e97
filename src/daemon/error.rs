//! D-Bus errors: `io.github.oathbridge.OathBridge1.Error.*`, with one-line messages.

use zbus::DBusError;
use zbus::message::{Header, Message};
use zbus::names::ErrorName;

use crate::core::CoreError;

const PREFIX: &str = "io.github.oathbridge.OathBridge1.Error";

/// Our errors go out as `io.github.oathbridge.OathBridge1.Error.<Variant>`; a wrapped
/// `zbus::fdo::Error` keeps its standard name (`org.freedesktop.DBus.Error.AccessDenied`,
/// …). zbus's `DBusError` derive would name every wrapped error `org.freedesktop.zbus.Error`,
/// hence the impl below.
#[derive(Debug)]
pub enum DaemonError {
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

impl DaemonError {
    /// Our own errors: the name after the prefix, and the message.
    fn own(&self) -> Option<(&'static str, &str)> {
        Some(match self {
            Self::ZBus(_) => return None,
            Self::NoDevice(m) => ("NoDevice", m),
            Self::NoSuchAccount(m) => ("NoSuchAccount", m),
            Self::Locked(m) => ("Locked", m),
            Self::WrongPassword(m) => ("WrongPassword", m),
            Self::TouchTimeout(m) => ("TouchTimeout", m),
            Self::NoSpace(m) => ("NoSpace", m),
            Self::NotSupported(m) => ("NotSupported", m),
            Self::InvalidInput(m) => ("InvalidInput", m),
            Self::DeviceRemoved(m) => ("DeviceRemoved", m),
            Self::CardError(m) => ("CardError", m),
        })
    }
}

impl DBusError for DaemonError {
    fn name(&self) -> ErrorName<'_> {
        match (self, self.own()) {
            (_, Some((name, _))) => ErrorName::try_from(format!("{PREFIX}.{name}"))
                .unwrap_or_else(|_| ErrorName::from_static_str_unchecked(PREFIX)),
            (Self::ZBus(zbus::Error::FDO(error)), None) => error.name(),
            (Self::ZBus(zbus::Error::MethodError(name, _, _)), None) => name.inner().clone(),
            _ => ErrorName::from_static_str_unchecked("org.freedesktop.zbus.Error"),
        }
    }

    fn description(&self) -> Option<&str> {
        match (self, self.own()) {
            (_, Some((_, message))) => Some(message),
            (Self::ZBus(zbus::Error::FDO(error)), None) => error.description(),
            (Self::ZBus(zbus::Error::MethodError(_, message, _)), None) => message.as_deref(),
            _ => None,
        }
    }

    fn create_reply(&self, call: &Header<'_>) -> zbus::Result<Message> {
        let message = match self {
            Self::ZBus(zbus::Error::FDO(error)) => return error.create_reply(call),
            Self::ZBus(error) => self
                .description()
                .map(str::to_owned)
                .unwrap_or_else(|| error.to_string()),
            _ => self.description().unwrap_or_default().to_owned(),
        };
        Message::error(call, self.name())?.build(&(message,))
    }
}

impl std::fmt::Display for DaemonError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = self.name();
        write!(
            f,
            "{name}: {}",
            self.description().unwrap_or("no description")
        )
    }
}

impl std::error::Error for DaemonError {}

impl From<zbus::Error> for DaemonError {
    fn from(error: zbus::Error) -> Self {
        Self::ZBus(error)
    }
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
            CoreError::Card(_) | CoreError::CardReset => Self::CardError(message),
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
