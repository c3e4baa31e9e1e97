//! CLI errors and their documented exit codes.

use std::process::ExitCode;

use thiserror::Error;

use crate::oath::{OathError, TransportError};
use crate::transport::pcsc::PcscError;

/// Exit codes, documented in `--help` and the README.
pub mod exit {
    pub const OK: u8 = 0;
    pub const FAILURE: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const NO_MATCH: u8 = 3;
    pub const AMBIGUOUS: u8 = 4;
    pub const NO_KEY: u8 = 5;
    pub const PASSWORD: u8 = 6;
    pub const TOUCH_TIMEOUT: u8 = 7;
    pub const UNSUPPORTED: u8 = 8;
}

#[derive(Debug, Error)]
pub enum CliError {
    #[error("{0}")]
    Usage(String),
    #[error("no matching account found")]
    NoMatch,
    #[error("{0}")]
    Ambiguous(String),
    #[error("{0}")]
    NoKey(String),
    #[error(transparent)]
    Oath(#[from] OathError),
    #[error(transparent)]
    Pcsc(#[from] PcscError),
    #[error("{0}")]
    Input(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Failure(String),
    /// An error the daemon reported, with the exit code its D-Bus name maps to.
    #[error("{message}")]
    Daemon { code: u8, message: String },
    /// An error with its exit code decided where it happened (sealed virtual keys).
    #[error("{message}")]
    Coded { code: u8, message: String },
    /// An import refused or failed: one line per problem, and its exit code.
    #[error("{message}")]
    Import { code: u8, message: String },
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Usage(_) | Self::Input(_) => exit::USAGE,
            Self::NoMatch => exit::NO_MATCH,
            Self::Ambiguous(_) => exit::AMBIGUOUS,
            Self::NoKey(_) => exit::NO_KEY,
            Self::Pcsc(_) => exit::NO_KEY,
            Self::Oath(error) => match error {
                OathError::Locked
                | OathError::WrongPassword
                | OathError::NoPassword
                | OathError::BadCardProof => exit::PASSWORD,
                OathError::TouchTimeout => exit::TOUCH_TIMEOUT,
                OathError::NoSpace | OathError::NotSupported(_) => exit::UNSUPPORTED,
                OathError::Credential(_) | OathError::AlreadyExists => exit::USAGE,
                OathError::NotFound => exit::NO_MATCH,
                OathError::Transport(TransportError::CardRemoved) => exit::NO_KEY,
                _ => exit::FAILURE,
            },
            Self::Io(_) | Self::Failure(_) => exit::FAILURE,
            Self::Daemon { code, .. } | Self::Import { code, .. } | Self::Coded { code, .. } => {
                *code
            }
        }
    }

    /// A refused import plan: exit 2 when any problem is with the input, else 8.
    pub fn refused(problems: &crate::import::plan::Problems) -> Self {
        let code = match problems.kind() {
            crate::import::plan::ProblemKind::Input => exit::USAGE,
            crate::import::plan::ProblemKind::Unsupported => exit::UNSUPPORTED,
        };
        Self::Import {
            code,
            message: problems.to_string(),
        }
    }

    /// Every line of the message gets the `error:` prefix: one problem, one line.
    pub fn report(&self) -> ExitCode {
        for line in self.to_string().lines() {
            eprintln!("error: {line}");
        }
        ExitCode::from(self.exit_code())
    }
}

pub type CliResult<T> = Result<T, CliError>;
