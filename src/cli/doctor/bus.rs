//! Checks 7 and 9, on the session bus: the oathbridge daemon and the Secret Service,
//! running (the name has an owner) or activatable. Every bus call is bounded by [`TIMEOUT`].

use std::future::Future;

use zbus::Connection;
use zbus::fdo::DBusProxy;
use zbus::names::BusName;

use super::{Check, TIMEOUT};
use crate::daemon::BUS_NAME;

const SECRETS: &str = "org.freedesktop.secrets";

/// A bus name: its owner's pid when running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Name {
    Running(Option<u32>),
    Activatable,
    Absent,
    /// The bus did not say (the error).
    Unknown(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Session {
    /// No session bus (why).
    Unavailable(String),
    Names {
        daemon: Name,
        secrets: Name,
    },
}

async fn bounded<T, E: std::fmt::Display>(
    what: &str,
    call: impl Future<Output = Result<T, E>>,
) -> Result<T, String> {
    match tokio::time::timeout(TIMEOUT, call).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(format!("{what}: {error}")),
        Err(_) => Err(format!("{what}: no answer within {} s", TIMEOUT.as_secs())),
    }
}

/// Connects to the session bus and asks about both names.
pub fn probe() -> Session {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            return Session::Unavailable(format!("cannot start the async runtime: {error}"));
        }
    };
    runtime.block_on(async {
        let connection = match bounded("connecting", Connection::session()).await {
            Ok(connection) => connection,
            Err(error) => {
                let address = std::env::var("DBUS_SESSION_BUS_ADDRESS").unwrap_or_default();
                let whence = if address.is_empty() {
                    "$DBUS_SESSION_BUS_ADDRESS is not set and $XDG_RUNTIME_DIR/bus does not answer"
                        .to_owned()
                } else {
                    format!("{address} does not answer")
                };
                return Session::Unavailable(format!("{whence} ({error})"));
            }
        };
        let proxy = match bounded("DBus proxy", DBusProxy::new(&connection)).await {
            Ok(proxy) => proxy,
            Err(error) => return Session::Unavailable(error),
        };
        let activatable: Result<Vec<String>, String> =
            bounded("ListActivatableNames", proxy.list_activatable_names())
                .await
                .map(|names| names.iter().map(|n| n.to_string()).collect());
        Session::Names {
            daemon: name(&proxy, BUS_NAME, &activatable).await,
            secrets: name(&proxy, SECRETS, &activatable).await,
        }
    })
}

async fn name(
    proxy: &DBusProxy<'_>,
    name: &str,
    activatable: &Result<Vec<String>, String>,
) -> Name {
    let Ok(bus_name) = BusName::try_from(name) else {
        return Name::Unknown(format!("bad bus name {name}"));
    };
    match bounded("NameHasOwner", proxy.name_has_owner(bus_name.clone())).await {
        Ok(true) => {
            let pid = bounded(
                "GetConnectionUnixProcessID",
                proxy.get_connection_unix_process_id(bus_name),
            )
            .await
            .ok();
            Name::Running(pid)
        }
        Ok(false) => match activatable {
            Ok(names) if names.iter().any(|n| n == name) => Name::Activatable,
            Ok(_) => Name::Absent,
            Err(error) => Name::Unknown(error.clone()),
        },
        Err(error) => Name::Unknown(error),
    }
}

fn running(pid: Option<u32>) -> String {
    pid.map_or("running".to_owned(), |pid| format!("running (pid {pid})"))
}

const NO_BUS_FIX: &str =
    "run it inside your desktop session, or start a bus: `dbus-run-session -- $SHELL`";

/// Check 7: the daemon on the session bus.
pub fn daemon_check(session: &Session) -> Check {
    let daemon = match session {
        Session::Unavailable(why) => {
            return Check::warn(
                "daemon",
                format!("no session bus: {why}; the CLI works without the daemon"),
            )
            .fix(NO_BUS_FIX);
        }
        Session::Names { daemon, .. } => daemon,
    };
    match daemon {
        Name::Running(pid) => Check::ok("daemon", format!("{BUS_NAME} {}", running(*pid))),
        Name::Activatable => Check::ok(
            "daemon",
            format!("{BUS_NAME} not running, starts on first use (D-Bus activation)"),
        ),
        Name::Absent => Check::warn(
            "daemon",
            format!(
                "{BUS_NAME} is not running and not activatable on the session bus: the CLI \
                 talks to the keys directly, desktop search has no codes"
            ),
        )
        .fix(
            "install its D-Bus activation file and user unit (`bash scripts/install.sh --user` \
             from the sources), or start it: `oathbridge daemon &`",
        ),
        Name::Unknown(error) => {
            Check::warn("daemon", format!("the session bus did not say: {error}"))
        }
    }
}

/// Check 9: the Secret Service, needed by `password unlock --remember`.
pub fn secrets_check(session: &Session) -> Check {
    let secrets = match session {
        Session::Unavailable(_) => {
            return Check::warn(
                "secret-service",
                "not checked: no session bus (`password unlock --remember` needs one)",
            )
            .fix(NO_BUS_FIX);
        }
        Session::Names { secrets, .. } => secrets,
    };
    match secrets {
        Name::Running(pid) => Check::ok("secret-service", format!("{SECRETS} {}", running(*pid))),
        Name::Activatable => Check::ok(
            "secret-service",
            format!("{SECRETS} not running, starts on first use (D-Bus activation)"),
        ),
        Name::Absent => Check::warn(
            "secret-service",
            format!(
                "no {SECRETS} on the session bus: `password unlock --remember` cannot keep \
                 access keys"
            ),
        )
        .fix(
            "`sudo apt install gnome-keyring` and log in again (or turn on the Secret Service \
             of KeePassXC or KWallet)",
        ),
        Name::Unknown(error) => Check::warn(
            "secret-service",
            format!("the session bus did not say: {error}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::super::Status;
    use super::*;

    #[test]
    fn names_on_the_bus_become_checks() {
        let session = |daemon, secrets| Session::Names { daemon, secrets };
        let good = session(Name::Running(Some(42)), Name::Activatable);
        assert_eq!(
            daemon_check(&good).line(),
            "ok    daemon: io.github.oathbridge.OathBridge1 running (pid 42)"
        );
        assert_eq!(secrets_check(&good).status, Status::Ok);
        let bad = session(Name::Absent, Name::Absent);
        assert!(daemon_check(&bad).line().contains("not activatable"));
        assert!(secrets_check(&bad).line().contains("gnome-keyring"));
        let none = Session::Unavailable("nothing".into());
        assert!(
            daemon_check(&none)
                .line()
                .starts_with("warn  daemon: no session bus")
        );
        assert_eq!(secrets_check(&none).status, Status::Warn);
    }
}
