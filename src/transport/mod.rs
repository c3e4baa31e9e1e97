//! Real transports for [`crate::oath::Transport`].

pub mod pcsc;
