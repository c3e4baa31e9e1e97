//! One module per input format. Each turns bytes into [`AccountSpec`]s, or every problem it
//! found as [`InputError`]s naming the line, entry and field; none quotes the input.

pub mod apps;
pub mod qr;
pub mod text;

#[allow(unused_imports)]
use super::{AccountSpec, InputError};
