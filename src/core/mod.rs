//! The core shared by the daemon (and later the CLI's daemon mode): one worker per key
//! serialises card access, caches codes, and keeps unlock state; a manager tracks keys as
//! they come and go.

pub mod cache;
pub mod error;
pub mod hid_watch;
pub mod hotplug;
pub mod link;
pub mod manager;
pub mod worker;

pub use error::CoreError;
pub use manager::{CoreEvent, DeviceManager, DeviceSnapshot};
pub use worker::{DeviceHandle, DeviceInfo, Link};
