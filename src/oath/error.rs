//! Errors of the protocol layer.

use thiserror::Error;

use super::apdu::ApduError;
use super::credential::CredentialError;
use super::status::StatusWord;
use super::tlv::TlvError;
use super::transport::TransportError;

#[derive(Debug, Error)]
pub enum OathError {
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("invalid APDU: {0}")]
    Apdu(#[from] ApduError),
    #[error("malformed response from the key: {0}")]
    Tlv(#[from] TlvError),
    #[error("malformed response from the key: {0}")]
    Malformed(String),
    #[error("the key sent more than {0} bytes in one answer")]
    ResponseTooLarge(usize),
    #[error("the key kept announcing more data after {0} chunks")]
    TooManyChunks(usize),
    #[error("no OATH application on this card (SELECT answered {0})")]
    NoOathApplet(StatusWord),
    #[error("the key is password protected; unlock it first")]
    Locked,
    #[error("wrong password")]
    WrongPassword,
    #[error("the key has no password set")]
    NoPassword,
    #[error("the key failed to prove it knows the password (possible impostor card)")]
    BadCardProof,
    #[error("no such account on the key")]
    NotFound,
    #[error("an account with this name already exists on the key")]
    AlreadyExists,
    #[error("no space left on the key for another account")]
    NoSpace,
    #[error("the key rejected the account name (too long, or already taken)")]
    Rejected,
    #[error("touch not detected in time")]
    TouchTimeout,
    #[error("not supported by this key: {0}")]
    NotSupported(String),
    #[error("the key reports a corrupted account")]
    Corrupted,
    #[error(transparent)]
    Credential(#[from] CredentialError),
    #[error("the key answered {sw} to {instruction}")]
    Card {
        instruction: &'static str,
        sw: StatusWord,
    },
    #[error("no random numbers available: {0}")]
    Random(String),
}
