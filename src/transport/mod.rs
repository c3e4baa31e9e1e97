//! Real transports for [`crate::oath::Transport`].

pub mod hid;
pub mod holders;
pub mod pcsc;
