//! Only the daemon's own user may call it. The session bus is not a privilege boundary,
//! so this is defence in depth, not the main protection.

use std::os::unix::fs::MetadataExt;

use zbus::Connection;
use zbus::fdo::DBusProxy;
use zbus::message::Header;
use zbus::names::BusName;

use super::error::DaemonResult;

/// Our own uid, read without unsafe code.
pub fn own_uid() -> u32 {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(u32::MAX)
}

pub async fn check_caller(connection: &Connection, header: &Header<'_>) -> DaemonResult<()> {
    let Some(sender) = header.sender() else {
        // Peer-to-peer connections have no sender; the peer is whoever opened the socket.
        return Ok(());
    };
    let bus = DBusProxy::new(connection).await?;
    let uid = bus
        .get_connection_unix_user(BusName::Unique(sender.to_owned()))
        .await?;
    if uid == own_uid() {
        Ok(())
    } else {
        Err(
            zbus::fdo::Error::AccessDenied(format!("uid {uid} may not use another user's keys"))
                .into(),
        )
    }
}
