//! The YKOATH protocol: APDUs, TLVs, status words, every instruction, password
//! derivation, credential ids and device quirks. No I/O: driven through [`Transport`].

pub mod apdu;
pub mod consts;
pub mod credential;
pub mod status;
pub mod tlv;
pub mod transport;

pub use credential::{Credential, CredentialData, CredentialError, CredentialId, HIDDEN_ISSUER};
pub use status::StatusWord;
pub use transport::{Transport, TransportError};

pub mod auth;
pub mod code;
pub mod device;
pub mod error;
pub mod exchange;
pub mod select;
pub mod session;
pub mod wire;

pub use code::Code;
pub use device::{DeviceKind, Quirks};
pub use error::OathError;
pub use select::{SelectInfo, Version};
pub use session::{CodeEntry, Session};
