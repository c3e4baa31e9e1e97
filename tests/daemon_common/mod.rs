//! Shared helpers of the daemon tests (`tests/daemon_*.rs`): the real `oathbridge daemon`
//! as a child process ([`Daemon`], killed on drop, also on panic), a small synchronous zbus
//! client ([`Bus`]) running on one shared tokio runtime, a recorder for the daemon's
//! signals ([`SignalLog`]), a fake `org.freedesktop.Notifications` server
//! ([`NotificationServer`]) and `gdbus` ([`gdbus`]).
//!
//! Everything is synchronous for the tests: the zbus connections live on the runtime's
//! worker threads, so they keep answering (and recording) while a test thread blocks in
//! the test bed (attaching cards, waiting for readers).

#![allow(dead_code)]

use std::collections::HashMap;
use std::fs::File;
use std::future::Future;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde::Serialize;
use zbus::names::BusName;
use zbus::zvariant::{DynamicType, ObjectPath, OwnedObjectPath, OwnedValue, Value};
use zbus::{Connection, Message, MessageStream};

use crate::common::TestBed;
use crate::common::proc::{output_with_timeout, stop_child};

pub const BUS_NAME: &str = "io.github.oathbridge.OathBridge1";
pub const ROOT_PATH: &str = "/io/github/oathbridge/OathBridge1";
pub const DEVICES_PATH: &str = "/io/github/oathbridge/OathBridge1/devices";
pub const ACCOUNTS_PATH: &str = "/io/github/oathbridge/OathBridge1/accounts";
pub const MANAGER: &str = "io.github.oathbridge.OathBridge1.Manager";
pub const DEVICE: &str = "io.github.oathbridge.OathBridge1.Device";
pub const ACCOUNT: &str = "io.github.oathbridge.OathBridge1.Account";
pub const ERROR_PREFIX: &str = "io.github.oathbridge.OathBridge1.Error.";

/// The bound of every wait in these tests unless a test says otherwise.
pub const WAIT: Duration = Duration::from_secs(5);

/// RFC 6238 Appendix B seeds (SHA1, SHA256, SHA512).
pub const SEED_SHA1: &[u8] = b"12345678901234567890";
pub const SEED_SHA256: &[u8] = b"12345678901234567890123456789012";
pub const SEED_SHA512: &[u8] = b"1234567890123456789012345678901234567890123456789012345678901234";
/// The same seeds in base32, for `otpauth://` URIs.
pub const B32_SHA1: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
pub const B32_SHA256: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZA";
pub const B32_SHA512: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNA";
/// RFC 6238 Appendix B: (time, SHA1, SHA256, SHA512), 8 digits.
pub const RFC_VECTORS: [(u64, &str, &str, &str); 2] = [
    (59, "94287082", "46119246", "90693936"),
    (1111111109, "07081804", "68084774", "25091201"),
];

/// The runtime every connection of this test binary lives on.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("daemon tests: cannot build the tokio runtime")
    })
}

/// Runs `future` on the shared runtime, failing after `timeout`.
pub fn block_on_for<F: Future>(timeout: Duration, what: &str, future: F) -> F::Output {
    runtime()
        .block_on(async { tokio::time::timeout(timeout, future).await })
        .unwrap_or_else(|_| panic!("daemon tests: {what} did not finish within {timeout:?}"))
}

/// Runs `future` on the shared runtime (bounded by 30 s: no D-Bus call here takes longer).
pub fn block_on<F: Future>(future: F) -> F::Output {
    block_on_for(Duration::from_secs(30), "a D-Bus call", future)
}

/// Polls `check` every 20 ms until it returns `Some`, panicking with `what` after `timeout`.
pub fn wait_until<T>(timeout: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "daemon tests: timed out after {timeout:?} waiting for {what}"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// Waits (bounded by [`WAIT`]) until the boolean property is true while `call` is still
/// running; panics if the call finishes first.
pub fn wait_property_during<T>(
    bus: &Bus,
    path: &str,
    interface: &str,
    name: &str,
    call: &tokio::task::JoinHandle<T>,
) {
    wait_until(
        WAIT,
        &format!("{interface}.{name} = true during the call"),
        || {
            if bus.bool_property(path, interface, name) {
                return Some(());
            }
            assert!(
                !call.is_finished(),
                "the call finished before {name} was ever seen true"
            );
            None
        },
    );
}

/// A D-Bus error reply: its name and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallError {
    pub name: String,
    pub message: String,
}

impl CallError {
    /// The name without the `io.github.oathbridge.OathBridge1.Error.` prefix (or the full
    /// name for other errors).
    pub fn short(&self) -> &str {
        self.name.strip_prefix(ERROR_PREFIX).unwrap_or(&self.name)
    }
}

fn call_error(error: zbus::Error) -> CallError {
    match error {
        zbus::Error::MethodError(name, message, _) => CallError {
            name: name.to_string(),
            message: message.unwrap_or_default(),
        },
        zbus::Error::FDO(fdo) => {
            let name = zbus::DBusError::name(&*fdo).to_string();
            let message = zbus::DBusError::description(&*fdo)
                .unwrap_or_default()
                .to_string();
            CallError { name, message }
        }
        other => panic!("daemon tests: D-Bus transport failure (not an error reply): {other}"),
    }
}

/// A `a{sv}` dictionary as sent or received.
pub type Dict = HashMap<String, OwnedValue>;

/// Builds an `a{sv}` argument from pairs.
pub fn dict(pairs: &[(&str, Value<'_>)]) -> HashMap<String, Value<'static>> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.try_to_owned().expect("plain value").into()))
        .collect()
}

/// A string entry of a dictionary (panics if missing or not a string).
pub fn get_str(entry: &Dict, key: &str) -> String {
    let value = entry
        .get(key)
        .unwrap_or_else(|| panic!("entry has no {key:?}: {entry:?}"));
    match &**value {
        Value::Str(s) => s.to_string(),
        Value::ObjectPath(p) => p.to_string(),
        other => panic!("entry {key:?} is not a string or path: {other:?}"),
    }
}

pub fn get_bool(entry: &Dict, key: &str) -> bool {
    match entry.get(key).map(|v| &**v) {
        Some(Value::Bool(b)) => *b,
        other => panic!("entry {key:?} is not a boolean: {other:?} in {entry:?}"),
    }
}

pub fn get_u64(entry: &Dict, key: &str) -> u64 {
    match entry.get(key).map(|v| &**v) {
        Some(Value::U64(n)) => *n,
        other => panic!("entry {key:?} is not a u64: {other:?} in {entry:?}"),
    }
}

/// A synchronous client connection to the bed's bus.
#[derive(Clone)]
pub struct Bus {
    pub conn: Connection,
}

impl Bus {
    pub fn connect(bed: &TestBed) -> Bus {
        let address = bed
            .dbus_address()
            .expect("daemon tests: start the bed's dbus-daemon first")
            .to_owned();
        let conn = block_on(async move {
            zbus::connection::Builder::address(address.as_str())?
                .build()
                .await
        })
        .unwrap_or_else(|e| panic!("daemon tests: cannot connect to the test bus: {e}"));
        Bus { conn }
    }

    /// Calls `interface.method(body)` on the daemon's object `path`.
    pub fn call<B>(
        &self,
        path: &str,
        interface: &str,
        method: &str,
        body: &B,
    ) -> Result<Message, CallError>
    where
        B: Serialize + DynamicType,
    {
        self.call_for(Duration::from_secs(30), path, interface, method, body)
    }

    pub fn call_for<B>(
        &self,
        timeout: Duration,
        path: &str,
        interface: &str,
        method: &str,
        body: &B,
    ) -> Result<Message, CallError>
    where
        B: Serialize + DynamicType,
    {
        let what = format!("{interface}.{method} on {path}");
        block_on_for(
            timeout,
            &what,
            self.conn
                .call_method(Some(BUS_NAME), path, Some(interface), method, body),
        )
        .map_err(call_error)
    }

    /// `Manager.GetCodes(options)`.
    pub fn try_get_codes(&self, options: &[(&str, Value<'_>)]) -> Result<Vec<Dict>, CallError> {
        let reply = self.call(ROOT_PATH, MANAGER, "GetCodes", &(dict(options),))?;
        Ok(reply
            .body()
            .deserialize::<Vec<Dict>>()
            .expect("GetCodes reply is aa{sv}"))
    }

    pub fn get_codes(&self, options: &[(&str, Value<'_>)]) -> Vec<Dict> {
        self.try_get_codes(options)
            .unwrap_or_else(|e| panic!("GetCodes({options:?}) failed: {e:?}"))
    }

    /// `Manager.AddAccount(credential, options)`.
    pub fn add_account(
        &self,
        credential: &[(&str, Value<'_>)],
        options: &[(&str, Value<'_>)],
    ) -> Result<Vec<OwnedObjectPath>, CallError> {
        let reply = self.call(
            ROOT_PATH,
            MANAGER,
            "AddAccount",
            &(dict(credential), dict(options)),
        )?;
        Ok(reply
            .body()
            .deserialize::<Vec<OwnedObjectPath>>()
            .expect("AddAccount reply is ao"))
    }

    /// `org.freedesktop.DBus.Properties.Get`.
    pub fn try_property(
        &self,
        path: &str,
        interface: &str,
        name: &str,
    ) -> Result<OwnedValue, CallError> {
        let reply = self.call(
            path,
            "org.freedesktop.DBus.Properties",
            "Get",
            &(interface, name),
        )?;
        Ok(reply
            .body()
            .deserialize::<OwnedValue>()
            .expect("Get reply is v"))
    }

    pub fn property(&self, path: &str, interface: &str, name: &str) -> OwnedValue {
        self.try_property(path, interface, name)
            .unwrap_or_else(|e| panic!("Get {interface}.{name} on {path} failed: {e:?}"))
    }

    pub fn bool_property(&self, path: &str, interface: &str, name: &str) -> bool {
        match &*self.property(path, interface, name) {
            Value::Bool(b) => *b,
            other => panic!("{interface}.{name} is not a boolean: {other:?}"),
        }
    }

    pub fn str_property(&self, path: &str, interface: &str, name: &str) -> String {
        match &*self.property(path, interface, name) {
            Value::Str(s) => s.to_string(),
            Value::ObjectPath(p) => p.to_string(),
            other => panic!("{interface}.{name} is not a string: {other:?}"),
        }
    }

    /// `Introspect` of `path`.
    pub fn introspect(&self, path: &str) -> String {
        let reply = self
            .call(
                path,
                "org.freedesktop.DBus.Introspectable",
                "Introspect",
                &(),
            )
            .unwrap_or_else(|e| panic!("Introspect {path} failed: {e:?}"));
        reply
            .body()
            .deserialize::<String>()
            .expect("Introspect reply is s")
    }

    /// `GetManagedObjects`: path → interface names.
    pub fn managed_objects(&self) -> HashMap<String, Vec<String>> {
        let reply = self
            .call(
                ROOT_PATH,
                "org.freedesktop.DBus.ObjectManager",
                "GetManagedObjects",
                &(),
            )
            .unwrap_or_else(|e| panic!("GetManagedObjects failed: {e:?}"));
        let objects = reply
            .body()
            .deserialize::<HashMap<OwnedObjectPath, HashMap<String, Dict>>>()
            .expect("GetManagedObjects reply is a{oa{sa{sv}}}");
        objects
            .into_iter()
            .map(|(path, ifaces)| {
                let mut names: Vec<String> = ifaces.into_keys().collect();
                names.sort();
                (path.to_string(), names)
            })
            .collect()
    }

    /// Device object paths, sorted.
    pub fn devices(&self) -> Vec<String> {
        let mut devices: Vec<String> = self
            .managed_objects()
            .into_iter()
            .filter(|(_, ifaces)| ifaces.iter().any(|i| i == DEVICE))
            .map(|(path, _)| path)
            .collect();
        devices.sort();
        devices
    }

    /// Account object paths, sorted.
    pub fn accounts(&self) -> Vec<String> {
        let mut accounts: Vec<String> = self
            .managed_objects()
            .into_iter()
            .filter(|(_, ifaces)| ifaces.iter().any(|i| i == ACCOUNT))
            .map(|(path, _)| path)
            .collect();
        accounts.sort();
        accounts
    }

    /// The pid of the current owner of `name`, if any.
    pub fn owner_pid(&self, name: &str) -> Option<u32> {
        let conn = self.conn.clone();
        let name = name.to_owned();
        block_on(async move {
            let proxy = zbus::fdo::DBusProxy::new(&conn).await.ok()?;
            let bus_name = BusName::try_from(name.as_str()).ok()?;
            if !proxy.name_has_owner(bus_name.clone()).await.ok()? {
                return None;
            }
            proxy.get_connection_unix_process_id(bus_name).await.ok()
        })
    }

    /// Starts recording the daemon's ObjectManager and PropertiesChanged signals. Returns
    /// once the match rule is installed, so everything after this call is seen.
    pub fn watch_signals(&self) -> SignalLog {
        let conn = self.conn.clone();
        let log = SignalLog::default();
        let sink = log.signals.clone();
        let stream = block_on(async move {
            let rule = zbus::MatchRule::builder()
                .msg_type(zbus::message::Type::Signal)
                .path_namespace(ROOT_PATH)?
                .build();
            MessageStream::for_match_rule(rule, &conn, Some(1024)).await
        })
        .unwrap_or_else(|e| panic!("daemon tests: cannot subscribe to signals: {e}"));
        runtime().spawn(async move {
            let mut stream = stream;
            while let Some(Ok(message)) = stream.next().await {
                if let Some(signal) = Signal::parse(&message) {
                    sink.lock().unwrap_or_else(|e| e.into_inner()).push(signal);
                }
            }
        });
        log
    }
}

/// One recorded signal of the daemon.
#[derive(Debug, Clone)]
pub enum Signal {
    InterfacesAdded {
        path: String,
        interfaces: Vec<String>,
    },
    InterfacesRemoved {
        path: String,
        interfaces: Vec<String>,
    },
    PropertiesChanged {
        path: String,
        interface: String,
        changed: Dict,
        invalidated: Vec<String>,
    },
}

impl Signal {
    fn parse(message: &Message) -> Option<Signal> {
        let header = message.header();
        let member = header.member()?.to_string();
        let interface = header.interface()?.to_string();
        let sender_path = header.path()?.to_string();
        let body = message.body();
        match (interface.as_str(), member.as_str()) {
            ("org.freedesktop.DBus.ObjectManager", "InterfacesAdded") => {
                let (path, ifaces) = body
                    .deserialize::<(OwnedObjectPath, HashMap<String, Dict>)>()
                    .ok()?;
                let mut interfaces: Vec<String> = ifaces.into_keys().collect();
                interfaces.sort();
                Some(Signal::InterfacesAdded {
                    path: path.to_string(),
                    interfaces,
                })
            }
            ("org.freedesktop.DBus.ObjectManager", "InterfacesRemoved") => {
                let (path, mut interfaces) =
                    body.deserialize::<(OwnedObjectPath, Vec<String>)>().ok()?;
                interfaces.sort();
                Some(Signal::InterfacesRemoved {
                    path: path.to_string(),
                    interfaces,
                })
            }
            ("org.freedesktop.DBus.Properties", "PropertiesChanged") => {
                let (interface, changed, invalidated) =
                    body.deserialize::<(String, Dict, Vec<String>)>().ok()?;
                Some(Signal::PropertiesChanged {
                    path: sender_path,
                    interface,
                    changed,
                    invalidated,
                })
            }
            _ => None,
        }
    }
}

/// The signals recorded since [`Bus::watch_signals`].
#[derive(Clone, Default)]
pub struct SignalLog {
    signals: Arc<Mutex<Vec<Signal>>>,
}

impl SignalLog {
    pub fn snapshot(&self) -> Vec<Signal> {
        self.signals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Waits (bounded by `timeout`) for the first signal, at index `from` or later, that
    /// `matches`; returns it with its index.
    pub fn wait_for(
        &self,
        from: usize,
        timeout: Duration,
        what: &str,
        matches: impl Fn(&Signal) -> bool,
    ) -> (usize, Signal) {
        let deadline = Instant::now() + timeout;
        loop {
            let signals = self.snapshot();
            if let Some((i, s)) = signals
                .iter()
                .enumerate()
                .skip(from)
                .find(|(_, s)| matches(s))
            {
                return (i, s.clone());
            }
            assert!(
                Instant::now() < deadline,
                "daemon tests: no {what} signal within {timeout:?}; recorded: {signals:#?}"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn len(&self) -> usize {
        self.snapshot().len()
    }
}

impl Signal {
    pub fn is_added(&self, interface: &str) -> Option<&str> {
        match self {
            Signal::InterfacesAdded { path, interfaces }
                if interfaces.iter().any(|i| i == interface) =>
            {
                Some(path)
            }
            _ => None,
        }
    }

    pub fn is_removed(&self, interface: &str) -> Option<&str> {
        match self {
            Signal::InterfacesRemoved { path, interfaces }
                if interfaces.iter().any(|i| i == interface) =>
            {
                Some(path)
            }
            _ => None,
        }
    }
}

static DAEMON_SEQ: AtomicU32 = AtomicU32::new(0);

/// The real `oathbridge daemon`, with the bed's environment and a log in the bed dir
/// (`daemon-<n>.log`, shown by `bed.logs()`). Stopped (SIGTERM, then SIGKILL) on drop.
pub struct Daemon {
    child: Child,
    pub log: PathBuf,
}

impl Daemon {
    /// Starts `oathbridge daemon <args>` and waits (5 s) until it owns the bus name.
    pub fn start(bed: &TestBed, bus: &Bus, args: &[&str]) -> Daemon {
        let mut daemon = Self::spawn(bed, args);
        daemon.wait_owner(bed, bus);
        daemon
    }

    /// Starts the daemon and waits (5 s) until it owns the bus name **and** serves
    /// `devices` Device objects.
    ///
    /// BUG workaround: the daemon takes its bus name before it serves the objects of the
    /// keys found at start (`serve` adds them after `build()`), so a call right after the
    /// name appears can miss keys (GetCodes skips keys without an object). Tests that are
    /// not about that race wait here; `daemon_activation.rs` tests the race itself.
    pub fn start_with_devices(bed: &TestBed, bus: &Bus, args: &[&str], devices: usize) -> Daemon {
        let daemon = Self::start(bed, bus, args);
        wait_until(WAIT, &format!("{devices} device object(s)"), || {
            (bus.devices().len() == devices).then_some(())
        });
        daemon
    }

    /// Starts the daemon without waiting for the name.
    pub fn spawn(bed: &TestBed, args: &[&str]) -> Daemon {
        Self::spawn_with_env(bed, args, &[], &[])
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until this process owns the bus name; panics with the logs if it exits or
    /// does not get there within 5 s.
    pub fn wait_owner(&mut self, bed: &TestBed, bus: &Bus) {
        let deadline = Instant::now() + WAIT;
        loop {
            if bus.owner_pid(BUS_NAME) == Some(self.pid()) {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "daemon tests: the daemon exited ({status}) before owning {BUS_NAME}\n{}",
                    bed.logs()
                );
            }
            assert!(
                Instant::now() < deadline,
                "daemon tests: the daemon did not own {BUS_NAME} within {WAIT:?}\n{}",
                bed.logs()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits up to `timeout` for the process to exit by itself.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log_text(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.log).unwrap_or_default()).into_owned()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        stop_child(&mut self.child, Duration::from_secs(3));
    }
}

/// A bed with a bus, a connected client and a daemon started with `args`.
pub fn bed_with_daemon(args: &[&str]) -> (TestBed, Bus, Daemon) {
    let mut bed = TestBed::start();
    bed.start_dbus();
    let bus = Bus::connect(&bed);
    let daemon = Daemon::start(&bed, &bus, args);
    (bed, bus, daemon)
}

/// `gdbus <args>` with the bed's environment (bounded by 30 s): (success, stdout, stderr).
pub fn gdbus(bed: &TestBed, args: &[&str]) -> (bool, String, String) {
    let mut cmd = std::process::Command::new("gdbus");
    cmd.args(args);
    bed.apply_env(&mut cmd);
    let out = output_with_timeout(&mut cmd, Duration::from_secs(30))
        .unwrap_or_else(|| panic!("daemon tests: gdbus {args:?} did not finish within 30 s"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `gdbus call --session` of `method` on the daemon's object `path` with `args`.
pub fn gdbus_call(
    bed: &TestBed,
    path: &str,
    method: &str,
    args: &[&str],
) -> (bool, String, String) {
    let mut full = vec![
        "call",
        "--session",
        "--dest",
        BUS_NAME,
        "--object-path",
        path,
        "--method",
        method,
    ];
    full.extend_from_slice(args);
    gdbus(bed, &full)
}

/// What the fake notification server was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifyCall {
    Notify {
        id: u32,
        app_name: String,
        replaces_id: u32,
        summary: String,
        body: String,
    },
    Close {
        id: u32,
    },
}

struct Notifications {
    calls: Arc<Mutex<Vec<NotifyCall>>>,
    next_id: AtomicU32,
}

#[zbus::interface(name = "org.freedesktop.Notifications")]
impl Notifications {
    #[allow(clippy::too_many_arguments)]
    fn notify(
        &self,
        app_name: String,
        replaces_id: u32,
        _app_icon: String,
        summary: String,
        body: String,
        _actions: Vec<String>,
        _hints: HashMap<String, OwnedValue>,
        _expire_timeout: i32,
    ) -> u32 {
        let id = if replaces_id != 0 {
            replaces_id
        } else {
            self.next_id.fetch_add(1, Ordering::Relaxed)
        };
        self.calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(NotifyCall::Notify {
                id,
                app_name,
                replaces_id,
                summary,
                body,
            });
        id
    }

    fn close_notification(&self, id: u32) {
        self.calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(NotifyCall::Close { id });
    }

    fn get_capabilities(&self) -> Vec<String> {
        vec!["body".into()]
    }

    fn get_server_information(&self) -> (String, String, String, String) {
        (
            "oathbridge-test".into(),
            "oathbridge".into(),
            "0".into(),
            "1.2".into(),
        )
    }
}

/// A tiny `org.freedesktop.Notifications` server on the bed's bus, recording calls.
pub struct NotificationServer {
    _conn: Connection,
    calls: Arc<Mutex<Vec<NotifyCall>>>,
}

impl NotificationServer {
    pub fn start(bed: &TestBed) -> NotificationServer {
        let address = bed.dbus_address().expect("bus started").to_owned();
        let calls = Arc::new(Mutex::new(Vec::new()));
        let server = Notifications {
            calls: calls.clone(),
            next_id: AtomicU32::new(1),
        };
        let conn = block_on(async move {
            zbus::connection::Builder::address(address.as_str())?
                .serve_at("/org/freedesktop/Notifications", server)?
                .name("org.freedesktop.Notifications")?
                .build()
                .await
        })
        .unwrap_or_else(|e| panic!("daemon tests: cannot start the notification server: {e}"));
        NotificationServer { _conn: conn, calls }
    }

    pub fn calls(&self) -> Vec<NotifyCall> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// An object path value for an `a{sv}` argument.
pub fn path_value(path: &str) -> Value<'static> {
    Value::from(ObjectPath::try_from(path.to_owned()).expect("valid object path"))
}

impl Daemon {
    /// [`Daemon::spawn`] with `set` added to the bed's environment and `remove` taken out of
    /// it (e.g. `DISPLAY` of a private X server, without the developer's `WAYLAND_DISPLAY`).
    pub fn spawn_with_env(
        bed: &TestBed,
        args: &[&str],
        set: &[(&str, &str)],
        remove: &[&str],
    ) -> Daemon {
        let n = DAEMON_SEQ.fetch_add(1, Ordering::Relaxed);
        let log = bed.dir().join(format!("daemon-{n}.log"));
        let file = File::create(&log).expect("daemon tests: create the daemon log");
        let mut all_args = vec!["daemon"];
        all_args.extend_from_slice(args);
        let mut cmd = bed.command(&all_args);
        for name in remove {
            cmd.env_remove(name);
        }
        cmd.envs(set.iter().copied())
            .env("OATHBRIDGE_LOG", "oathbridge=debug")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("dup log fd"))
            .stderr(file);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("daemon tests: cannot start {cmd:?}: {e}"));
        Daemon { child, log }
    }
}

// ---------------------------------------------------------------------------------------
// A bus other than the bed's (tests/daemon_access.rs runs one that other uids may join).

impl Bus {
    /// A client connection to the bus at `address` (not necessarily the bed's).
    pub fn connect_to(address: &str) -> Bus {
        let address = address.to_owned();
        let conn = block_on(async move {
            zbus::connection::Builder::address(address.as_str())?
                .build()
                .await
        })
        .unwrap_or_else(|e| panic!("daemon tests: cannot connect to the bus: {e}"));
        Bus { conn }
    }

    /// The unique name owning `name` now.
    pub fn name_owner(&self, name: &str) -> String {
        let conn = self.conn.clone();
        let name = name.to_owned();
        block_on(async move {
            let proxy = zbus::fdo::DBusProxy::new(&conn).await?;
            let bus_name = BusName::try_from(name.as_str()).map_err(zbus::Error::from)?;
            Ok::<_, zbus::Error>(proxy.get_name_owner(bus_name).await?.to_string())
        })
        .unwrap_or_else(|e| panic!("daemon tests: GetNameOwner failed: {e}"))
    }
}

impl Daemon {
    /// As [`Daemon::start_with_devices`], on the bus at `address` (which `bus` is connected
    /// to) instead of the bed's.
    pub fn start_on_bus(
        bed: &TestBed,
        bus: &Bus,
        address: &str,
        args: &[&str],
        devices: usize,
    ) -> Daemon {
        let mut daemon =
            Self::spawn_with_env(bed, args, &[("DBUS_SESSION_BUS_ADDRESS", address)], &[]);
        daemon.wait_owner(bed, bus);
        wait_until(WAIT, &format!("{devices} device object(s)"), || {
            (bus.devices().len() == devices).then_some(())
        });
        daemon
    }
}

/// A private bus standing in for the system bus (the test plays logind on it), stopped on
/// drop. The daemon finds it through `DBUS_SYSTEM_BUS_ADDRESS`, which `start` sets in the
/// process environment: callers start daemons only while they hold their binary's turn
/// lock, so one test's signals never reach another test's daemon.
pub struct SystemBus {
    pub address: String,
    child: Child,
    _dir: tempfile::TempDir,
}

impl SystemBus {
    pub fn start() -> SystemBus {
        let dir = tempfile::tempdir().expect("system bus dir");
        let mut child = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--print-address=1"])
            .arg(format!("--address=unix:path={}/bus", dir.path().display()))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("dbus-daemon (package dbus-daemon) must be installed");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("dbus-daemon address");
        let address = line.trim().to_owned();
        assert!(!address.is_empty(), "dbus-daemon printed no address");
        // SAFETY: the callers' turn lock: no other thread of the binary reads the
        // environment (spawns a daemon) meanwhile.
        unsafe { std::env::set_var("DBUS_SYSTEM_BUS_ADDRESS", &address) };
        SystemBus {
            address,
            child,
            _dir: dir,
        }
    }
}

impl Drop for SystemBus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
