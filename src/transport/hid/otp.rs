//! YubiKey OTP.
