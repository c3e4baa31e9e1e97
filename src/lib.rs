//! oathbridge: TOTP/HOTP codes from OATH-capable security keys (YKOATH over PC/SC).
//!
//! Layers, each knowing only the one below it:
//! - [`otp`]: RFC 4226/6238 math and otpauth:// parsing (used by the emulator and the CLI);
//! - [`oath`]: the YKOATH protocol, pure, driven through [`oath::Transport`];
//! - [`transport`]: real transports (pcscd);
//! - [`emulator`]: a YKOATH card in software, in-process or behind vpcd.

pub mod cli;
pub mod clock;
pub mod core;
pub mod daemon;
pub mod desktop;
pub mod emulator;
pub mod fido;
pub mod import;
pub mod oath;
pub mod otp;
pub mod secrets;
pub mod transport;
