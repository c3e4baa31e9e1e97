//! One module per input format. Each turns bytes into [`AccountSpec`]s, or every problem it
//! found as [`InputError`]s naming the line, entry and field; none quotes the input.

pub mod apps;
pub mod names;
pub mod qr;
pub mod text;
pub mod utf16;

#[allow(unused_imports)]
use super::{AccountSpec, InputError};
