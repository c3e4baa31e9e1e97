//! The desktop session around the daemon, apart from D-Bus: the clipboard.

pub mod clipboard;
