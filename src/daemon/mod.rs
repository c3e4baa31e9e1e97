//! The D-Bus service: adapts the core to the session bus. No protocol logic here.

pub mod access;
pub mod account;
pub mod codes_reply;
pub mod device;
pub mod error;
pub mod fast_codes;
pub mod harden;
pub mod import;
pub mod krunner;
mod listing;
pub mod lookup;
pub mod manager;
pub mod notify;
pub mod registry;
pub mod search_provider;
pub mod session_watch;
pub mod virtual_key;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;
use tokio::sync::mpsc::UnboundedReceiver;
use tracing::{error, info, warn};
use zbus::Connection;
use zbus::fdo::{RequestNameFlags, RequestNameReply};

use crate::core::{CoreEvent, DeviceManager};
use registry::{Registry, SharedRegistry};

use listing::list_arrived;
pub use listing::{account_paths, built_entries, refresh_accounts};

pub const BUS_NAME: &str = "io.github.oathbridge.OathBridge1";
pub const ROOT_PATH: &str = "/io/github/oathbridge/OathBridge1";
pub const DEVICES_PATH: &str = "/io/github/oathbridge/OathBridge1/devices";
pub const ACCOUNTS_PATH: &str = "/io/github/oathbridge/OathBridge1/accounts";
pub const SEARCH_PROVIDER_PATH: &str = "/io/github/oathbridge/OathBridge1/SearchProvider";
pub const KRUNNER_PATH: &str = "/io/github/oathbridge/OathBridge1/KRunner";

#[derive(Debug, Args)]
pub struct DaemonArgs {
    /// Host a virtual key backed by this state file (created, mode 0600, if missing), or
    /// by a file sealed with a FIDO2 key (served locked; Unlock opens it with a touch)
    #[arg(long = "virtual-key", value_name = "FILE")]
    pub virtual_keys: Vec<PathBuf>,
    /// The FIDO2 key that opens sealed virtual keys: auto, /dev/hidrawN or soft:FILE
    /// (default $OATHBRIDGE_FIDO, else auto)
    #[arg(long, value_name = "ID")]
    pub fido: Option<crate::fido::AuthenticatorSpec>,
    /// Take the bus name over from a running instance
    #[arg(long)]
    pub replace: bool,
    /// Do not watch pcscd (only virtual keys)
    #[arg(long)]
    pub no_pcsc: bool,
    /// Also serve the HID device behind this bridge socket (`oathbridge emulate --hid`;
    /// repeatable; more in OATHBRIDGE_HID_SOCKETS, colon-separated)
    #[arg(long = "hid-socket", value_name = "PATH")]
    pub hid_sockets: Vec<PathBuf>,
    /// Do not look for HID keys (hidraw, bridge sockets)
    #[arg(long)]
    pub no_hid: bool,
    /// Keep keys unlocked when the machine suspends (logind PrepareForSleep)
    #[arg(long)]
    pub keep_unlocked_on_suspend: bool,
    /// Keep keys unlocked when the session or screen locks (logind Lock, ScreenSaver)
    #[arg(long)]
    pub keep_unlocked_on_screen_lock: bool,
}

/// What every D-Bus object shares.
pub struct State {
    pub manager: Arc<DeviceManager>,
    pub registry: SharedRegistry,
    /// GetCodes entries built once per key and time step.
    pub replies: codes_reply::ReplyMemo,
}

pub type Shared = Arc<State>;

pub fn run(args: DaemonArgs) -> ExitCode {
    // Before anything secret is in memory: no core dumps, no same-uid ptrace.
    harden::harden_process();
    limit_malloc_arenas();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: DaemonArgs) -> Result<(), String> {
    let (events, receiver) = tokio::sync::mpsc::unbounded_channel();
    let manager = DeviceManager::new(events);
    // Keys present at start are known before the name is taken, so the first call
    // (the one that activated us) already sees them.
    let fido = crate::fido::AuthenticatorSpec::resolve(args.fido.as_ref())?;
    for path in &args.virtual_keys {
        let link = virtual_key::link(path, &fido)?;
        manager.add_virtual(link).await.map_err(|e| e.to_string())?;
    }
    if !args.no_pcsc {
        manager.scan_pcsc().await;
    }
    let hid_sockets = crate::transport::hid::discovery::bridge_sockets(&args.hid_sockets);
    if !args.no_hid {
        manager.scan_hid(&hid_sockets).await;
    }
    info!("{} key(s) at start", manager.devices().len());
    let shared: Shared = Arc::new(State {
        manager: manager.clone(),
        registry: Arc::new(tokio::sync::Mutex::new(Registry::default())),
        replies: codes_reply::ReplyMemo::default(),
    });
    let connection = zbus::connection::Builder::session()
        .and_then(|b| {
            b.serve_at(
                ROOT_PATH,
                fast_codes::FastCodes::new(manager::Manager {
                    shared: shared.clone(),
                }),
            )
        })
        .and_then(|b| b.serve_at(ROOT_PATH, access::ObjectManager::default()))
        .and_then(|b| {
            b.serve_at(
                SEARCH_PROVIDER_PATH,
                search_provider::SearchProvider {
                    shared: shared.clone(),
                },
            )
        })
        .and_then(|b| {
            b.serve_at(
                KRUNNER_PATH,
                krunner::KRunner {
                    shared: shared.clone(),
                },
            )
        })
        .map_err(|e| format!("cannot connect to the session bus: {e}"))?
        .build()
        .await
        .map_err(|e| format!("cannot connect to the session bus: {e}"))?;
    // Objects for the keys found at start exist before the name is taken: the bus delivers
    // the call that activated us as soon as we own the name.
    // Their Added events are still queued: the handler must not list them again.
    let mut listed = std::collections::HashSet::new();
    for device in manager.devices() {
        registry::add_device(&shared, &connection, &device.info.id).await;
        let unlocked = !device.handle.status.locked();
        // The listing keeps the codes it read: the call that activated us is answered
        // from them.
        if list_arrived(&shared, &connection, &device.info.id)
            .await
            .is_ok()
            && unlocked
        {
            listed.insert(device.info.id.clone());
        }
    }
    let mut flags = RequestNameFlags::AllowReplacement | RequestNameFlags::DoNotQueue;
    if args.replace {
        flags |= RequestNameFlags::ReplaceExisting;
    }
    match connection.request_name_with_flags(BUS_NAME, flags).await {
        Ok(RequestNameReply::PrimaryOwner | RequestNameReply::AlreadyOwner) => {}
        Ok(_) | Err(zbus::Error::NameTaken) => {
            return Err(format!("{BUS_NAME} is already running (use --replace)"));
        }
        Err(other) => return Err(format!("cannot take the name {BUS_NAME}: {other}")),
    }
    if !args.no_pcsc {
        manager
            .watch_pcsc()
            .map_err(|e| format!("cannot watch pcscd: {e}"))?;
    }
    if !args.no_hid
        && let Err(error) = manager.watch_hid(hid_sockets)
    {
        tracing::warn!(%error, "cannot watch for HID keys");
    }
    session_watch::spawn(
        shared.clone(),
        connection.clone(),
        session_watch::LockTriggers {
            suspend: !args.keep_unlocked_on_suspend,
            screen_lock: !args.keep_unlocked_on_screen_lock,
        },
    );
    info!("serving {BUS_NAME}");
    let events = tokio::spawn(handle_events(
        shared.clone(),
        connection.clone(),
        receiver,
        listed,
    ));
    wait_for_exit(&connection).await;
    events.abort();
    Ok(())
}

/// glibc gives every thread that allocates its own malloc arena (up to 8 per core), each
/// keeping freed memory: a long-running daemon with a worker thread per key grows RSS for
/// nothing. One arena serves our few threads (their small allocations go through glibc's
/// per-thread cache without the arena lock); measured with 4 keys x 64 accounts after 40
/// time steps: RSS 11.3 MB with two arenas, 10.8 MB with one (cache of 4 steps).
fn limit_malloc_arenas() {
    // SAFETY: mallopt only sets an allocator tunable; called before other threads start.
    if unsafe { libc::mallopt(libc::M_ARENA_MAX, 1) } != 1 {
        tracing::debug!("mallopt(M_ARENA_MAX) not applied");
    }
}

/// Until SIGTERM/SIGINT, or until another instance takes our name (`--replace`).
async fn wait_for_exit(connection: &Connection) {
    let mut terminate =
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(e) => {
                error!(%e, "cannot listen for SIGTERM");
                return;
            }
        };
    let name_lost = async {
        let Ok(proxy) = zbus::fdo::DBusProxy::new(connection).await else {
            return std::future::pending().await;
        };
        let Ok(mut lost) = proxy.receive_name_lost().await else {
            return std::future::pending().await;
        };
        use futures_util::StreamExt;
        while let Some(signal) = lost.next().await {
            if signal.args().is_ok_and(|a| a.name() == BUS_NAME) {
                info!("bus name taken over; exiting");
                return;
            }
        }
    };
    tokio::select! {
        _ = terminate.recv() => info!("SIGTERM"),
        _ = tokio::signal::ctrl_c() => info!("SIGINT"),
        _ = name_lost => {}
    }
}

async fn handle_events(
    shared: Shared,
    connection: Connection,
    mut events: UnboundedReceiver<CoreEvent>,
    mut listed_at_start: std::collections::HashSet<String>,
) {
    let mut notifications = notify::Notifier::new(connection.clone());
    while let Some(event) = events.recv().await {
        match event {
            CoreEvent::Added(id) => {
                if listed_at_start.remove(&id) {
                    continue; // objects made and accounts listed before the name was taken
                }
                registry::add_device(&shared, &connection, &id).await;
                unlock_from_memory(&shared, &connection, &id).await;
                if let Err(e) = list_arrived(&shared, &connection, &id).await {
                    warn!(device = id, error = %e, "cannot list accounts");
                }
            }
            CoreEvent::Removed(id) => registry::remove_device(&shared, &connection, &id).await,
            CoreEvent::TouchPending {
                device,
                account,
                pending,
            } => {
                set_touch_pending(&shared, &connection, &device, pending).await;
                if pending {
                    notifications.touch_prompt(&account).await;
                } else {
                    notifications.withdraw().await;
                }
            }
        }
    }
}

/// A key with a password remembered in the Secret Service unlocks silently when plugged
/// in. A remembered key that no longer fits (password changed elsewhere) is dropped.
async fn unlock_from_memory(shared: &Shared, connection: &Connection, id: &str) {
    let Ok(device) = shared.manager.get(id) else {
        return;
    };
    if !device.info.has_password {
        return;
    }
    let Ok(store) = crate::secrets::SecretStore::open(connection).await else {
        return; // no Secret Service: the key stays locked until Unlock()
    };
    let key = match store.get(id).await {
        Ok(Some(key)) => key,
        Ok(None) => return,
        Err(error) => {
            warn!(device = id, %error, "cannot read the remembered key");
            return;
        }
    };
    match device
        .handle
        .run(move |worker| worker.unlock_with_key(&key))
        .await
    {
        Ok(()) => {
            info!(device = id, "unlocked with the remembered key");
            let path = shared.registry.lock().await.device_path(id);
            if let Some(path) = path
                && let Ok(object) = connection
                    .object_server()
                    .interface::<_, device::Device>(&path)
                    .await
            {
                object.get().await.set_unlocked_by_memory();
                let _ = object
                    .get()
                    .await
                    .locked_changed(object.signal_emitter())
                    .await;
                let _ = object
                    .get()
                    .await
                    .remembered_changed(object.signal_emitter())
                    .await;
            }
        }
        Err(crate::core::CoreError::WrongPassword(_)) => {
            warn!(
                device = id,
                "the remembered key is wrong (password changed?); forgetting it"
            );
            let _ = store.forget(id).await;
        }
        Err(error) => warn!(device = id, %error, "unlock with the remembered key failed"),
    }
}

async fn set_touch_pending(shared: &Shared, connection: &Connection, id: &str, pending: bool) {
    let Some(path) = shared.registry.lock().await.device_path(id) else {
        return;
    };
    if let Ok(device) = connection
        .object_server()
        .interface::<_, device::Device>(&path)
        .await
    {
        device.get().await.set_touch_pending(pending);
        let _ = device
            .get()
            .await
            .touch_pending_changed(device.signal_emitter())
            .await;
    }
}

/// Open `oathbridge code --watch` in a terminal (GNOME's LaunchSearch).
pub fn launch_terminal_view(terms: &[String]) {
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let mut command = std::process::Command::new("x-terminal-emulator");
    command.arg("-e").arg(exe).args(["code", "--watch"]);
    if !terms.is_empty() {
        command.arg(terms.join(" "));
    }
    if let Err(error) = command
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
    {
        warn!(%error, "cannot open a terminal");
    }
}
