//! One-time-password math (RFC 4226 HOTP, RFC 6238 TOTP) and the formats seeds arrive in.
//!
//! Pure functions: no I/O. The key computes codes for real users; this module serves the
//! emulated card, tests, and the parsing of otpauth:// and migration URIs.

mod base32;
mod hotp;
mod migration;
mod uri;

pub use base32::{SecretError, parse_base32_secret};
pub use hotp::{
    HashAlgorithm, OathType, dynamic_truncate, format_code, hmac, hotp, shorten_key, totp,
    totp_counter,
};
pub use migration::{Batch, Migration, MigrationError, parse_migration_uri};
pub use uri::{OtpAuthUri, STEAM_ISSUER, UriError, parse_otpauth_uri};
