//! One pipeline for every way accounts arrive (CLI `add --from`, D-Bus `AddAccount`):
//! read → [`detect`] → parse every entry ([`sources`]) → [`plan`] against every target key →
//! [`apply`] (write, verify, roll back this run's additions on failure).
//!
//! Rules: a source never touches a key; `apply` never parses; errors name *where* (source,
//! line, entry, field) and never quote input, which may hold a seed.

pub mod apply;
pub mod detect;
pub mod plan;
pub mod sources;

use std::fmt;
use std::sync::Arc;

use thiserror::Error;
use zeroize::Zeroizing;

use crate::otp::OtpAuthUri;

pub use detect::{Parsed, combine, parse_source};

/// Where an entry or a problem is: the source (a file name, `stdin`, `D-Bus`), then the
/// 1-based QR code of an image (reading order), the 1-based line of a text source and the
/// 1-based entry within that line or file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Location {
    pub source: Arc<str>,
    pub code: Option<usize>,
    pub line: Option<usize>,
    pub entry: Option<usize>,
}

impl Location {
    pub fn source(name: &str) -> Self {
        Self {
            source: Arc::from(name),
            ..Self::default()
        }
    }

    pub fn at_code(&self, code: usize) -> Self {
        Self {
            code: Some(code),
            ..self.clone()
        }
    }

    pub fn at_line(&self, line: usize) -> Self {
        Self {
            line: Some(line),
            ..self.clone()
        }
    }

    pub fn at_entry(&self, entry: usize) -> Self {
        Self {
            entry: Some(entry),
            ..self.clone()
        }
    }

    /// An error at this place.
    pub fn error(&self, field: Option<&str>, problem: impl Into<String>) -> InputError {
        InputError {
            at: self.clone(),
            field: field.map(str::to_owned),
            problem: problem.into(),
        }
    }
}

impl fmt::Display for Location {
    /// `export.txt: line 2, entry 3` (only the parts that are known).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)?;
        let mut separator = ": ";
        if let Some(code) = self.code {
            write!(f, "{separator}QR code {code}")?;
            separator = ", ";
        }
        if let Some(line) = self.line {
            write!(f, "{separator}line {line}")?;
            separator = ", ";
        }
        if let Some(entry) = self.entry {
            write!(f, "{separator}entry {entry}")?;
        }
        Ok(())
    }
}

/// One problem with the input: `export.txt: line 2: digits: expected 6, 7 or 8`.
/// `field` and `problem` are written by us and never contain input text.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{at}: {}{problem}", field.as_deref().map(|f| format!("{f}: ")).unwrap_or_default())]
pub struct InputError {
    pub at: Location,
    pub field: Option<String>,
    pub problem: String,
}

/// Every problem found in the input, one line each (never empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputErrors(pub Vec<InputError>);

impl fmt::Display for InputErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, error) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for InputErrors {}

impl From<InputError> for InputErrors {
    fn from(error: InputError) -> Self {
        Self(vec![error])
    }
}

/// One account read from the input, before the command line's overrides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountSpec {
    pub at: Location,
    pub account: OtpAuthUri,
}

/// Asks for the password of an encrypted export (Aegis vault): a hidden prompt, stdin, or a
/// D-Bus argument. `what` names the file for the prompt.
pub trait Passwords {
    fn password(&mut self, at: &Location, what: &str) -> Result<Zeroizing<String>, InputError>;
}

/// No password available (D-Bus calls without one, tests): encrypted exports are refused.
pub struct NoPasswords;

impl Passwords for NoPasswords {
    fn password(&mut self, at: &Location, what: &str) -> Result<Zeroizing<String>, InputError> {
        Err(at.error(
            None,
            format!("{what} is encrypted and no password was given"),
        ))
    }
}

/// A password known up front (stdin line, D-Bus argument).
pub struct GivenPassword(pub Zeroizing<String>);

impl Passwords for GivenPassword {
    fn password(&mut self, _at: &Location, _what: &str) -> Result<Zeroizing<String>, InputError> {
        Ok(self.0.clone())
    }
}
