//! Real transports for [`crate::oath::Transport`].

pub mod holders;
pub mod pcsc;
