//! One-time-password math (RFC 4226 HOTP, RFC 6238 TOTP) and the formats seeds arrive in.
//!
//! Pure functions: no I/O. The key computes codes for real users; this module serves the
//! emulated card, tests, and the parsing of otpauth:// and migration URIs.

mod base32;
mod hotp;
mod migration;
mod qr;
mod uri;

pub use base32::{SecretError, parse_base32_secret};
pub use hotp::{
    HashAlgorithm, OathType, dynamic_truncate, format_code, hmac, hotp, shorten_key, totp,
    totp_counter,
};
pub use migration::{MigrationError, parse_migration_uri};
pub use qr::{MAX_DECODED_BYTES, MAX_DIMENSION, QrError, decode_qr_image, looks_like_image};
pub use uri::{OtpAuthUri, UriError, parse_otpauth_uri};
