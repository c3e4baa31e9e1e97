//! Only the daemon's own user may call it. The session bus is not a privilege boundary,
//! so this is defence in depth, not the main protection.
//!
//! Every method of every interface we implement calls [`check_sender`] (or
//! [`check_caller`]) first, and every property getter calls [`check_reader`]. What this
//! cannot cover, because zbus serves it itself without telling us who asked:
//! - `Properties.GetAll`: zbus drops the properties whose getter fails, so another uid gets
//!   an empty dictionary (no value), not an error;
//! - `ObjectManager.GetManagedObjects` served by `zbus::fdo::ObjectManager` reads the
//!   properties without the caller's header; serve [`ObjectManager`] instead to refuse it;
//! - `Introspectable` and `Peer` (no data);
//! - `InterfacesAdded` / `PropertiesChanged` are broadcast signals: every connection on the
//!   bus may receive them, whatever its uid. They carry object metadata (ids, names, lock
//!   and touch state), never a code or a secret.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::sync::{Mutex, OnceLock};

use zbus::fdo::DBusProxy;
use zbus::message::Header;
use zbus::names::{BusName, MemberName};
use zbus::object_server::{DispatchResult2, Interface, SignalEmitter};
use zbus::zvariant::{OwnedValue, Value};
use zbus::{Connection, Message, ObjectServer};

use super::error::DaemonResult;

/// Our own uid, read without unsafe code.
pub fn own_uid() -> u32 {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(u32::MAX)
}

/// Callers seen so far: (bus GUID, unique name) → uid. A bus never reuses a unique name,
/// so an entry stays true; the map is emptied when it grows past this many entries.
const KNOWN_CALLERS_MAX: usize = 1024;

fn known_callers() -> &'static Mutex<HashMap<String, u32>> {
    static KNOWN: OnceLock<Mutex<HashMap<String, u32>>> = OnceLock::new();
    KNOWN.get_or_init(|| Mutex::new(HashMap::new()))
}

/// `Ok` when the message came from our own uid (or over a peer-to-peer connection, where
/// the peer is whoever could open the socket), else `org.freedesktop.DBus.Error.AccessDenied`.
/// A caller the bus cannot identify (gone already) is refused too. For methods that
/// return `zbus::fdo::Result`.
pub async fn check_sender(connection: &Connection, header: &Header<'_>) -> zbus::fdo::Result<()> {
    let Some(sender) = header.sender() else {
        return Ok(());
    };
    let key = format!("{}\n{sender}", connection.server_guid());
    let cached = known_callers()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&key)
        .copied();
    let uid = match cached {
        Some(uid) => uid,
        None => {
            let bus = DBusProxy::new(connection).await.map_err(|_| unknown())?;
            let uid = bus
                .get_connection_unix_user(BusName::Unique(sender.to_owned()))
                .await
                .map_err(|_| unknown())?;
            let mut known = known_callers().lock().unwrap_or_else(|e| e.into_inner());
            if known.len() >= KNOWN_CALLERS_MAX {
                known.clear();
            }
            known.insert(key, uid);
            uid
        }
    };
    if uid == own_uid() {
        Ok(())
    } else {
        Err(zbus::fdo::Error::AccessDenied(format!(
            "uid {uid} may not use another user's keys"
        )))
    }
}

fn unknown() -> zbus::fdo::Error {
    zbus::fdo::Error::AccessDenied("cannot identify the caller".into())
}

/// [`check_sender`] for methods that return a [`DaemonError`](super::error::DaemonError).
///
/// The caller gets `org.freedesktop.DBus.Error.AccessDenied` only if `DaemonError` keeps
/// the name of the `zbus::fdo::Error` it wraps: zbus's `DBusError` derive names its
/// `#[zbus(error)]` variant `org.freedesktop.zbus.Error`, whatever it holds.
pub async fn check_caller(connection: &Connection, header: &Header<'_>) -> DaemonResult<()> {
    Ok(check_sender(connection, header).await?)
}

/// For property getters: `header` is the `Properties.Get`/`GetAll` call, or `None` when
/// zbus reads the property itself (InterfacesAdded, PropertiesChanged, GetManagedObjects),
/// which is allowed here.
pub async fn check_reader(
    connection: &Connection,
    header: Option<&Header<'_>>,
) -> zbus::fdo::Result<()> {
    match header {
        Some(header) => check_sender(connection, header).await,
        None => Ok(()),
    }
}

/// `org.freedesktop.DBus.ObjectManager` exactly as [`zbus::fdo::ObjectManager`] serves it
/// (zbus still emits InterfacesAdded/Removed for it: it finds the interface by name), but
/// its methods answer our own uid only. zbus reads the properties for `GetManagedObjects`
/// without the caller's header, so the getters' own check cannot refuse it; this wrapper
/// checks the call before zbus's implementation sees it.
///
/// Serve it instead of `zbus::fdo::ObjectManager`:
/// `builder.serve_at(ROOT_PATH, access::ObjectManager::default())`.
///
/// zbus calls [`Interface`] an unstable API, normally implemented by its `#[interface]`
/// macro; this implementation only forwards to zbus's own after the check.
#[derive(Debug)]
pub struct ObjectManager {
    inner: zbus::fdo::ObjectManager,
}

impl Default for ObjectManager {
    fn default() -> Self {
        Self {
            inner: zbus::fdo::ObjectManager,
        }
    }
}

/// The `Interface` methods a wrapper forwards unchanged to the zbus-generated
/// implementation in its `inner` field: the interface name of `$inner`, task spawning,
/// `set`, `call_mut` and introspection. Expands inside an `impl Interface for Wrapper`
/// block ([`ObjectManager`], `fast_codes::FastCodes`); neither wrapper has `&mut self`
/// methods, so zbus never calls `call_mut` on them.
macro_rules! forward_interface_basics {
    ($inner:ty) => {
        fn name() -> zbus::names::InterfaceName<'static> {
            <$inner as zbus::object_server::Interface>::name()
        }

        fn spawn_tasks_for_methods(&self) -> bool {
            self.inner.spawn_tasks_for_methods()
        }

        fn set<'call>(
            &'call self,
            property_name: &'call str,
            value: &'call zbus::zvariant::Value<'_>,
            server: &'call zbus::ObjectServer,
            connection: &'call zbus::Connection,
            header: Option<&'call zbus::message::Header<'_>>,
            emitter: &'call zbus::object_server::SignalEmitter<'_>,
        ) -> zbus::object_server::DispatchResult2<'call> {
            self.inner
                .set(property_name, value, server, connection, header, emitter)
        }

        fn call_mut<'call>(
            &'call mut self,
            server: &'call zbus::ObjectServer,
            connection: &'call zbus::Connection,
            message: &'call zbus::Message,
            name: zbus::names::MemberName<'call>,
        ) -> zbus::object_server::DispatchResult2<'call> {
            self.inner.call_mut(server, connection, message, name)
        }

        fn introspect_to_writer(&self, writer: &mut dyn std::fmt::Write, level: usize) {
            self.inner.introspect_to_writer(writer, level);
        }
    };
}
pub(crate) use forward_interface_basics;

#[zbus::export::async_trait::async_trait]
impl Interface for ObjectManager {
    forward_interface_basics!(zbus::fdo::ObjectManager);

    async fn get(
        &self,
        property_name: &str,
        server: &ObjectServer,
        connection: &Connection,
        header: Option<&Header<'_>>,
        emitter: &SignalEmitter<'_>,
    ) -> Option<zbus::fdo::Result<OwnedValue>> {
        if let Err(denied) = check_reader(connection, header).await {
            return Some(Err(denied));
        }
        self.inner
            .get(property_name, server, connection, header, emitter)
            .await
    }

    async fn get_all(
        &self,
        server: &ObjectServer,
        connection: &Connection,
        header: Option<&Header<'_>>,
        emitter: &SignalEmitter<'_>,
    ) -> zbus::fdo::Result<HashMap<String, OwnedValue>> {
        check_reader(connection, header).await?;
        self.inner
            .get_all(server, connection, header, emitter)
            .await
    }

    async fn set_mut(
        &mut self,
        property_name: &str,
        value: &Value<'_>,
        server: &ObjectServer,
        connection: &Connection,
        header: Option<&Header<'_>>,
        emitter: &SignalEmitter<'_>,
    ) -> Option<zbus::fdo::Result<()>> {
        if let Err(denied) = check_reader(connection, header).await {
            return Some(Err(denied));
        }
        self.inner
            .set_mut(property_name, value, server, connection, header, emitter)
            .await
    }

    fn call<'call>(
        &'call self,
        server: &'call ObjectServer,
        connection: &'call Connection,
        message: &'call Message,
        name: MemberName<'call>,
    ) -> DispatchResult2<'call> {
        DispatchResult2::Async(Box::pin(async move {
            check_sender(connection, &message.header()).await?;
            let member = name.to_string();
            match self.inner.call(server, connection, message, name) {
                DispatchResult2::Async(future) => future.await,
                DispatchResult2::NotFound | DispatchResult2::RequiresMut => Err(
                    zbus::fdo::Error::UnknownMethod(format!("Unknown method '{member}'")),
                ),
            }
        }))
    }
}
