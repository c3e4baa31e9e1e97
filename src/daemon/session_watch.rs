//! Lock the keys when the machine is about to sleep or the desktop session locks: logind's
//! `PrepareForSleep(true)` and a session's `Lock` on the system bus, and the screen saver's
//! `ActiveChanged(true)` (`org.freedesktop.ScreenSaver`, `org.gnome.ScreenSaver`) on the
//! session bus. Every key in memory is locked and every code cache cleared; keys remembered
//! in the Secret Service are then unlocked again silently, as at plug-in (if the keyring
//! itself is locked by then, they stay locked).

use futures_util::StreamExt;
use tracing::{debug, info};
use zbus::{Connection, MatchRule, MessageStream};

use super::{Shared, device, unlock_from_memory};

/// Which events lock the keys (both on by default; `oathbridge daemon --help`).
#[derive(Debug, Clone, Copy)]
pub struct LockTriggers {
    pub suspend: bool,
    pub screen_lock: bool,
}

/// Watch the buses in the background. A missing system bus (containers, tests) only
/// disables the logind triggers.
pub fn spawn(shared: Shared, session: Connection, triggers: LockTriggers) {
    if triggers.suspend || triggers.screen_lock {
        tokio::spawn(watch_logind(shared.clone(), session.clone(), triggers));
    }
    if triggers.screen_lock {
        tokio::spawn(watch_screen_saver(shared, session));
    }
}

fn signal_rule(interface: &'static str, member: &'static str) -> Option<MatchRule<'static>> {
    MatchRule::builder()
        .msg_type(zbus::message::Type::Signal)
        .interface(interface)
        .and_then(|b| b.member(member))
        .map(|b| b.build())
        .ok()
}

async fn watch_logind(shared: Shared, session: Connection, triggers: LockTriggers) {
    let system = match Connection::system().await {
        Ok(connection) => connection,
        Err(error) => {
            debug!(%error, "no system bus: not locking on suspend or logind session lock");
            return;
        }
    };
    if triggers.suspend {
        watch(
            &shared,
            &session,
            &system,
            "org.freedesktop.login1.Manager",
            "PrepareForSleep",
        );
    }
    if triggers.screen_lock {
        watch(
            &shared,
            &session,
            &system,
            "org.freedesktop.login1.Session",
            "Lock",
        );
    }
}

async fn watch_screen_saver(shared: Shared, session: Connection) {
    for interface in ["org.freedesktop.ScreenSaver", "org.gnome.ScreenSaver"] {
        watch(&shared, &session, &session, interface, "ActiveChanged");
    }
}

/// One task per signal: `Lock` always locks; `PrepareForSleep` and `ActiveChanged` lock
/// when their boolean is true. logind's signals count only from the owner of its name.
fn watch(
    shared: &Shared,
    session: &Connection,
    bus: &Connection,
    interface: &'static str,
    member: &'static str,
) {
    let (shared, session, bus) = (shared.clone(), session.clone(), bus.clone());
    tokio::spawn(async move {
        let Some(rule) = signal_rule(interface, member) else {
            return;
        };
        let mut stream = match MessageStream::for_match_rule(rule, &bus, None).await {
            Ok(stream) => stream,
            Err(error) => {
                debug!(%error, interface, member, "cannot watch");
                return;
            }
        };
        let from_logind = interface.starts_with("org.freedesktop.login1");
        while let Some(Ok(message)) = stream.next().await {
            if from_logind && !sent_by_logind(&bus, message.header().sender()).await {
                continue;
            }
            let lock = member == "Lock" || message.body().deserialize::<bool>().unwrap_or(false);
            if lock {
                lock_all(&shared, &session, member).await;
            }
        }
    });
}

async fn sent_by_logind(system: &Connection, sender: Option<&zbus::names::UniqueName<'_>>) -> bool {
    let Some(sender) = sender else {
        return false;
    };
    let Ok(bus) = zbus::fdo::DBusProxy::new(system).await else {
        return false;
    };
    let Ok(name) = zbus::names::BusName::try_from("org.freedesktop.login1") else {
        return false;
    };
    bus.get_name_owner(name)
        .await
        .is_ok_and(|owner| owner.as_str() == sender.as_str())
}

/// Lock every key, clear every cache, tell clients, then let remembered keys back in.
pub async fn lock_all(shared: &Shared, connection: &Connection, why: &str) {
    info!(reason = why, "locking every key");
    for device in shared.manager.devices() {
        let id = device.info.id.clone();
        let _ = device
            .handle
            .run(|worker| {
                worker.lock();
                Ok(())
            })
            .await;
        let path = shared.registry.lock().await.device_path(&id);
        if let Some(path) = path
            && let Ok(object) = connection
                .object_server()
                .interface::<_, device::Device>(&path)
                .await
        {
            let _ = object
                .get()
                .await
                .locked_changed(object.signal_emitter())
                .await;
        }
        unlock_from_memory(shared, connection, &id).await;
    }
}
