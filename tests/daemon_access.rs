//! Another uid on the same session bus is refused: every method of every interface the
//! daemon serves answers it `org.freedesktop.DBus.Error.AccessDenied`, no property value
//! reaches it, and no signal it can subscribe to carries a code.
//!
//! The bed's bus admits its own uid only, and its socket lies in the bed's 0700 directory,
//! so these tests run a second dbus-daemon whose policy admits every uid (`<allow
//! user="*"/>`), in a directory others may enter. The other uid is a system user,
//! `oathbridge-test-peer`, created on first use (reused when it exists); its calls are
//! `gdbus` and `dbus-monitor` under `setpriv`. Needs root, like the rest of the bed.
//!
//! What stays open to other uids, by design: `Introspectable.Introspect` and
//! `Peer.Ping`/`GetMachineId` (no data). `Properties.GetAll` of the Device and Account
//! interfaces answers an empty dictionary rather than an error (zbus drops properties
//! whose getter fails, see `src/daemon/access.rs`); the test asserts that no value leaks.

mod common;
mod daemon_common;

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::proc::{output_with_timeout, require_program, stop_child};
use common::{MARKER_VAR, TestBed};
use daemon_common::*;
use oathbridge::otp::{HashAlgorithm, totp};
use zbus::zvariant::Value;

const PEER_USER: &str = "oathbridge-test-peer";
const SEARCH_PATH: &str = "/io/github/oathbridge/OathBridge1/SearchProvider";
const KRUNNER_PATH: &str = "/io/github/oathbridge/OathBridge1/KRunner";
const SEARCH: &str = "org.gnome.Shell.SearchProvider2";
const KRUNNER: &str = "org.kde.krunner1";
const PROPERTIES: &str = "org.freedesktop.DBus.Properties";
const ACCESS_DENIED: &str = "org.freedesktop.DBus.Error.AccessDenied";
/// The daemon's refusal text (src/daemon/access.rs), so a refusal by the bus cannot pass.
const DENIED_TEXT: &str = "may not use another user's keys";
/// A seed only the touch account uses (the plain account uses RFC 6238's SHA1 seed).
const TOUCH_SEED: &[u8] = b"oathbridge-touch-seed-0123";

// ---------------------------------------------------------------------------------------
// The other uid

struct Peer {
    uid: u32,
    gid: u32,
}

fn effective_uid() -> Option<u32> {
    fs::read_to_string("/proc/self/status").ok().and_then(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1)?.parse().ok())
    })
}

fn id_of(flag: &str) -> Option<u32> {
    let out = Command::new("id").args([flag, PEER_USER]).output().ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

/// The test user, created once (idempotent: an existing one is reused).
fn peer() -> &'static Peer {
    static PEER: OnceLock<Peer> = OnceLock::new();
    PEER.get_or_init(|| {
        assert_eq!(
            effective_uid(),
            Some(0),
            "daemon_access: these tests must run as root: they create the system user \
             {PEER_USER} and run gdbus/dbus-monitor as that uid (scripts/test.sh runs as root)"
        );
        if id_of("-u").is_none() {
            let useradd = require_program("useradd", "passwd");
            let out = Command::new(&useradd)
                .args([
                    "--system",
                    "--no-create-home",
                    "--home-dir",
                    "/nonexistent",
                    "--shell",
                    "/usr/sbin/nologin",
                    PEER_USER,
                ])
                .output()
                .unwrap_or_else(|e| panic!("daemon_access: cannot run {useradd:?}: {e}"));
            // Another test process may have created it meanwhile: only a missing user fails.
            assert!(
                out.status.success() || id_of("-u").is_some(),
                "daemon_access: `useradd --system {PEER_USER}` failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let peer = Peer {
            uid: id_of("-u").expect("the test user has a uid"),
            gid: id_of("-g").expect("the test user has a gid"),
        };
        assert_ne!(peer.uid, 0, "{PEER_USER} must not be root");
        peer
    })
}

/// `program args` as the test user: no groups, a minimal environment.
fn as_peer(bed: &TestBed, program: &str, args: &[&str]) -> Command {
    let peer = peer();
    let setpriv = require_program("setpriv", "util-linux");
    let mut cmd = Command::new(setpriv);
    cmd.arg(format!("--reuid={}", peer.uid))
        .arg(format!("--regid={}", peer.gid))
        .arg("--clear-groups")
        .arg(program)
        .args(args)
        .env_clear()
        .env("PATH", "/usr/bin:/bin:/usr/sbin:/sbin")
        .env("HOME", "/nonexistent")
        .env("LC_ALL", "C.UTF-8")
        .env(MARKER_VAR, bed.dir())
        .current_dir("/");
    cmd
}

// ---------------------------------------------------------------------------------------
// A bus every uid may join

/// A dbus-daemon whose policy admits every uid, its socket in a directory others may
/// enter. Stopped on drop (and by the bed's teardown: it carries the bed's marker).
struct OpenBus {
    child: Child,
    address: String,
    _dir: tempfile::TempDir,
}

impl OpenBus {
    fn start(bed: &TestBed) -> OpenBus {
        use std::os::unix::fs::PermissionsExt;
        let daemon = require_program("dbus-daemon", "dbus-daemon");
        let dir = tempfile::Builder::new()
            .prefix("oathbridge-openbus-")
            .tempdir()
            .expect("temp dir for the open bus");
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755))
            .expect("chmod the open bus dir");
        let socket = dir.path().join("bus.sock");
        let address = format!("unix:path={}", socket.display());
        let config = format!(
            r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>{address}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#
        );
        let config_path = dir.path().join("bus.conf");
        fs::write(&config_path, config).expect("write the open bus config");
        let log = File::create(bed.dir().join("openbus.log")).expect("openbus.log");
        let mut cmd = Command::new(daemon);
        cmd.arg(format!("--config-file={}", config_path.display()))
            .args(["--nofork", "--nopidfile"]);
        bed.apply_env(&mut cmd);
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start the open dbus-daemon");
        let mut bus = OpenBus {
            child,
            address,
            _dir: dir,
        };
        let deadline = Instant::now() + WAIT;
        while !socket.exists() {
            if let Ok(Some(status)) = bus.child.try_wait() {
                panic!("the open dbus-daemon exited ({status})\n{}", bed.logs());
            }
            assert!(
                Instant::now() < deadline,
                "the open dbus-daemon did not listen within {WAIT:?}\n{}",
                bed.logs()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        bus
    }
}

impl Drop for OpenBus {
    fn drop(&mut self) {
        stop_child(&mut self.child, Duration::from_secs(2));
    }
}

// ---------------------------------------------------------------------------------------
// Set-up and calls as the other uid

struct Setup {
    bed: TestBed,
    open: OpenBus,
    owner: Bus,
    _daemon: Daemon,
    device: String,
    /// The plain TOTP account (RFC 6238 SHA1 seed, 8 digits).
    account: String,
    /// A touch account (only with `touch`).
    touch_account: Option<String>,
}

/// A card (touch approved after 700 ms when `touch`), the open bus, the daemon on it, and
/// the accounts added by the owner.
fn setup(touch: bool) -> Setup {
    let _ = peer(); // fail early, with the reason, when not root
    let mut bed = TestBed::start();
    if touch {
        bed.attach_card(0, &["--touch", "approve", "--touch-delay-ms", "700"]);
    } else {
        bed.attach_card(0, &[]);
    }
    let open = OpenBus::start(&bed);
    let owner = Bus::connect_to(&open.address);
    let daemon = Daemon::start_on_bus(&bed, &owner, &open.address, &[], 1);
    let device = owner.devices().remove(0);
    let add = |issuer: &str, name: &str, seed: &[u8], touch: bool| -> String {
        owner
            .add_account(
                &[
                    ("issuer", Value::from(issuer)),
                    ("name", Value::from(name)),
                    ("secret", Value::from(seed.to_vec())),
                    ("digits", Value::from(8u32)),
                    ("touch", Value::from(touch)),
                ],
                &[],
            )
            .unwrap_or_else(|e| panic!("AddAccount as the owner failed: {e:?}\n{}", bed.logs()))
            .remove(0)
            .to_string()
    };
    let account = add("Example", "alice", SEED_SHA1, false);
    let touch_account = touch.then(|| add("Touchy", "bob", TOUCH_SEED, true));
    Setup {
        bed,
        open,
        owner,
        _daemon: daemon,
        device,
        account,
        touch_account,
    }
}

/// What a call as the other uid got: its output, or the D-Bus error name and message.
type PeerReply = Result<String, (String, String)>;

/// `gdbus call` as the other uid (bounded by 30 s).
fn peer_call(s: &Setup, path: &str, method: &str, args: &[&str]) -> PeerReply {
    let mut full = vec![
        "call",
        "--address",
        s.open.address.as_str(),
        "--dest",
        BUS_NAME,
        "--object-path",
        path,
        "--method",
        method,
        "--timeout",
        "20",
    ];
    full.extend_from_slice(args);
    let mut cmd = as_peer(&s.bed, "gdbus", &full);
    let out = output_with_timeout(&mut cmd, Duration::from_secs(30))
        .unwrap_or_else(|| panic!("gdbus {method} as {PEER_USER} did not finish in 30 s"));
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned());
    }
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    // "Error: GDBus.Error:org.freedesktop.DBus.Error.AccessDenied: uid 999 may not …"
    match stderr.split_once("GDBus.Error:") {
        Some((_, rest)) => {
            let (name, message) = rest.split_once(": ").unwrap_or((rest, ""));
            Err((name.trim().to_owned(), message.trim().to_owned()))
        }
        None => Err((String::new(), stderr)),
    }
}

/// One problem per call that was not refused by the daemon with AccessDenied.
fn not_denied(what: &str, reply: &PeerReply) -> Option<String> {
    let uid = peer().uid;
    match reply {
        Err((name, message))
            if name == ACCESS_DENIED
                && message.contains(DENIED_TEXT)
                && message.contains(&uid.to_string()) =>
        {
            None
        }
        other => Some(format!("{what}: {other:?}")),
    }
}

/// `Properties.GetAll` disclosed nothing: refused, or an empty dictionary.
fn no_values(reply: &PeerReply) -> bool {
    matches!(reply, Ok(out) if out == "(@a{sv} {},)") || not_denied("", reply).is_none()
}

/// Property names of `interface` in the shipped `dbus/<interface>.xml`.
fn shipped_properties(interface: &str) -> Vec<String> {
    let path: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "dbus",
        &format!("{interface}.xml"),
    ]
    .iter()
    .collect();
    let xml = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let names: Vec<String> = xml
        .split("<property name=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next().map(str::to_owned))
        .collect();
    assert!(!names.is_empty(), "no properties in {}", path.display());
    names
}

/// The owner still sees the key and the account as they were: nothing the other uid
/// asked for happened.
fn assert_untouched(s: &Setup) {
    assert_eq!(
        s.owner.devices(),
        vec![s.device.clone()],
        "the key was reset"
    );
    assert!(
        !s.owner.bool_property(&s.device, DEVICE, "Locked"),
        "a password was set"
    );
    assert_eq!(
        s.owner.str_property(&s.account, ACCOUNT, "Id"),
        "Example:alice",
        "the account was renamed or deleted"
    );
    let entries = s.owner.get_codes(&[("timestamp", Value::from(59u64))]);
    let entry = entries
        .iter()
        .find(|e| get_str(e, "id") == "Example:alice")
        .unwrap_or_else(|| panic!("the owner lost the account: {entries:#?}"));
    assert_eq!(get_str(entry, "code"), "94287082");
}

// ---------------------------------------------------------------------------------------
// Tests

/// Every method of Manager, Device, Account, SearchProvider2 and krunner1, and
/// Properties.Get of every Device and Account property: AccessDenied from the daemon.
/// Properties.GetAll and Set disclose and change nothing. The owner is served throughout.
/// (The Manager, Device and Account methods fail with `DaemonError`: the error name is
/// right only if src/daemon/error.rs keeps the name of a wrapped `zbus::fdo::Error`.)
#[test]
fn another_uid_is_denied_every_method_and_property() {
    let s = setup(false);
    let (device, account) = (s.device.as_str(), s.account.as_str());

    // The other uid reaches the daemon (so the refusals below are the daemon's).
    let intro = peer_call(
        &s,
        ROOT_PATH,
        "org.freedesktop.DBus.Introspectable.Introspect",
        &[],
    );
    assert!(
        intro.as_ref().is_ok_and(|xml| xml.contains(MANAGER)),
        "Introspect as {PEER_USER} (should stay open): {intro:?}\n{}",
        s.bed.logs()
    );

    let quoted = format!("'{account}'");
    let listed = format!("['{account}']");
    let seed_uri = format!("@a{{sv}} {{'uri': <'otpauth://totp/Peer:x?secret={B32_SHA1}'>}}");
    let m = |iface: &str, member: &str| format!("{iface}.{member}");
    let calls: Vec<(&str, String, Vec<&str>)> = vec![
        (ROOT_PATH, m(MANAGER, "GetCodes"), vec!["@a{sv} {}"]),
        (
            ROOT_PATH,
            m(MANAGER, "AddAccount"),
            vec![seed_uri.as_str(), "@a{sv} {}"],
        ),
        (
            ROOT_PATH,
            m(MANAGER, "ImportAccounts"),
            vec!["@aa{sv} []", "@a{sv} {}"],
        ),
        (device, m(DEVICE, "Unlock"), vec!["'pw'", "true"]),
        (
            device,
            m(DEVICE, "SetPassword"),
            vec!["''", "'pw'", "false"],
        ),
        (device, m(DEVICE, "Forget"), vec![]),
        (device, m(DEVICE, "Lock"), vec![]),
        (device, m(DEVICE, "Reset"), vec![]),
        (account, m(ACCOUNT, "Calculate"), vec!["@t 0"]),
        (account, m(ACCOUNT, "Rename"), vec!["'Peer'", "'renamed'"]),
        (account, m(ACCOUNT, "Delete"), vec![]),
        (
            SEARCH_PATH,
            m(SEARCH, "GetInitialResultSet"),
            vec!["['Example']"],
        ),
        (
            SEARCH_PATH,
            m(SEARCH, "GetSubsearchResultSet"),
            vec![listed.as_str(), "['Example']"],
        ),
        (
            SEARCH_PATH,
            m(SEARCH, "GetResultMetas"),
            vec![listed.as_str()],
        ),
        (
            SEARCH_PATH,
            m(SEARCH, "ActivateResult"),
            vec![quoted.as_str(), "['Example']", "@u 0"],
        ),
        (
            SEARCH_PATH,
            m(SEARCH, "LaunchSearch"),
            vec!["['Example']", "@u 0"],
        ),
        (KRUNNER_PATH, m(KRUNNER, "Match"), vec!["'Example'"]),
        (KRUNNER_PATH, m(KRUNNER, "Actions"), vec![]),
        (
            KRUNNER_PATH,
            m(KRUNNER, "Run"),
            vec![quoted.as_str(), "'copy'"],
        ),
        (KRUNNER_PATH, m(KRUNNER, "Teardown"), vec![]),
        (KRUNNER_PATH, m(KRUNNER, "Config"), vec![]),
        (
            KRUNNER_PATH,
            m(KRUNNER, "SetActivationToken"),
            vec!["'token'"],
        ),
    ];
    let mut problems = Vec::new();
    for (path, method, args) in &calls {
        let reply = peer_call(&s, path, method, args);
        problems.extend(not_denied(&format!("{method} on {path}"), &reply));
    }

    // Properties: Get each one (denied); GetAll (no value); Set (refused, nothing changes).
    for (path, interface) in [(device, DEVICE), (account, ACCOUNT)] {
        for name in shipped_properties(interface) {
            let iface = format!("'{interface}'");
            let prop = format!("'{name}'");
            let get = peer_call(&s, path, &m(PROPERTIES, "Get"), &[&iface, &prop]);
            problems.extend(not_denied(&format!("Get {interface}.{name}"), &get));
            let set = peer_call(
                &s,
                path,
                &m(PROPERTIES, "Set"),
                &[&iface, &prop, "<'changed'>"],
            );
            if set.is_ok() {
                problems.push(format!("Set {interface}.{name} succeeded: {set:?}"));
            }
        }
    }
    for (path, interface) in [
        (device, DEVICE),
        (account, ACCOUNT),
        (SEARCH_PATH, SEARCH),
        (KRUNNER_PATH, KRUNNER),
    ] {
        let all = peer_call(
            &s,
            path,
            &m(PROPERTIES, "GetAll"),
            &[&format!("'{interface}'")],
        );
        if !no_values(&all) {
            problems.push(format!("GetAll {interface} disclosed values: {all:?}"));
        }
    }
    assert!(
        problems.is_empty(),
        "calls as {PEER_USER} (uid {}) that the daemon did not refuse with {ACCESS_DENIED}:\n  {}\n{}",
        peer().uid,
        problems.join("\n  "),
        s.bed.logs()
    );
    assert_untouched(&s);
}

/// GetManagedObjects and the Manager's properties, refused too. These are served by code
/// outside the access layer's reach: zbus's ObjectManager reads properties without the
/// caller's header, so `src/daemon/mod.rs` must serve `access::ObjectManager` instead of
/// `zbus::fdo::ObjectManager`, and the Manager's `Version` getter (src/daemon/manager.rs)
/// must call `access::check_reader` like the Device and Account getters.
#[test]
fn another_uid_is_denied_object_manager_and_manager_properties() {
    let s = setup(false);
    let mut problems = Vec::new();
    let objects = peer_call(
        &s,
        ROOT_PATH,
        "org.freedesktop.DBus.ObjectManager.GetManagedObjects",
        &[],
    );
    problems.extend(not_denied("ObjectManager.GetManagedObjects", &objects));
    let manager = format!("'{MANAGER}'");
    for name in shipped_properties(MANAGER) {
        let get = peer_call(
            &s,
            ROOT_PATH,
            &format!("{PROPERTIES}.Get"),
            &[&manager, &format!("'{name}'")],
        );
        problems.extend(not_denied(&format!("Get {MANAGER}.{name}"), &get));
    }
    let all = peer_call(&s, ROOT_PATH, &format!("{PROPERTIES}.GetAll"), &[&manager]);
    if !no_values(&all) {
        problems.push(format!("GetAll {MANAGER} disclosed values: {all:?}"));
    }
    assert!(
        problems.is_empty(),
        "calls as {PEER_USER} that the daemon did not refuse with {ACCESS_DENIED}:\n  {}\n{}",
        problems.join("\n  "),
        s.bed.logs()
    );
    // The owner still gets them.
    assert!(s.owner.devices().len() == 1);
    assert!(
        !s.owner
            .str_property(ROOT_PATH, MANAGER, "Version")
            .is_empty()
    );
}

/// `dbus-monitor` as the test user, on every signal (it may eavesdrop on this bus), while
/// the owner has codes calculated every way: GetCodes, Calculate (with and without a
/// touch), the search provider and KRunner. It sees the daemon's signals (TouchPending),
/// and none of them carries any of the codes.
#[test]
fn another_uid_sees_no_code_in_any_signal() {
    let s = setup(true);
    let touch_account = s.touch_account.clone().expect("touch account");
    let log_path = s.bed.dir().join("peer-monitor.log");
    let log = File::create(&log_path).expect("peer-monitor.log");
    let mut monitor = as_peer(
        &s.bed,
        "dbus-monitor",
        &["--address", &s.open.address, "type='signal'"],
    )
    .stdin(Stdio::null())
    .stdout(log.try_clone().expect("dup"))
    .stderr(log)
    .spawn()
    .expect("start dbus-monitor as the test user");
    let read =
        |path: &Path| String::from_utf8_lossy(&fs::read(path).unwrap_or_default()).into_owned();
    let mark = |text: &str| {
        let conn = s.owner.conn.clone();
        let text = text.to_owned();
        block_on(async move {
            conn.emit_signal(
                None::<&str>,
                "/io/github/oathbridge/Test",
                "io.github.oathbridge.Test",
                "Marker",
                &(text,),
            )
            .await
        })
        .expect("emit the marker signal");
    };
    // Subscribed once our own marker signal shows up.
    wait_until(WAIT, "dbus-monitor as the test user to subscribe", || {
        mark("monitor-start");
        std::thread::sleep(Duration::from_millis(50));
        read(&log_path).contains("monitor-start").then_some(())
    });

    let started = oathbridge::clock::unix_now();
    let mut seen_codes: BTreeSet<String> = BTreeSet::new();
    for entry in s.owner.get_codes(&[]) {
        if entry.contains_key("code") {
            seen_codes.insert(get_str(&entry, "code"));
        }
    }
    let calculate = |path: &str, at: u64| -> String {
        let reply = s
            .owner
            .call(path, ACCOUNT, "Calculate", &(at,))
            .unwrap_or_else(|e| panic!("Calculate as the owner: {e:?}\n{}", s.bed.logs()));
        reply
            .body()
            .deserialize::<(String, u64, u64)>()
            .expect("(stt)")
            .0
    };
    seen_codes.insert(calculate(&s.account, 0));
    seen_codes.insert(calculate(&s.account, 59));
    seen_codes.insert(calculate(&touch_account, 0));
    let results = s
        .owner
        .call(
            SEARCH_PATH,
            SEARCH,
            "GetInitialResultSet",
            &(vec!["Example"],),
        )
        .expect("GetInitialResultSet as the owner")
        .body()
        .deserialize::<Vec<String>>()
        .expect("as");
    assert!(results.contains(&s.account), "{results:?}");
    s.owner
        .call(SEARCH_PATH, SEARCH, "GetResultMetas", &(results,))
        .expect("GetResultMetas as the owner");
    s.owner
        .call(KRUNNER_PATH, KRUNNER, "Match", &("Touchy",))
        .expect("Match as the owner");
    // A touch account activated in the overview: calculated (touch) and notified.
    s.owner
        .call(
            SEARCH_PATH,
            SEARCH,
            "ActivateResult",
            &(touch_account.as_str(), vec!["Touchy"], 0u32),
        )
        .expect("ActivateResult as the owner");
    let ended = oathbridge::clock::unix_now();
    wait_until(WAIT, "the end marker at the test user's monitor", || {
        mark("monitor-end");
        std::thread::sleep(Duration::from_millis(50));
        read(&log_path).contains("monitor-end").then_some(())
    });
    stop_child(&mut monitor, Duration::from_secs(2));
    let seen = read(&log_path);

    // Every code of both accounts around the session, and those the daemon returned.
    let mut codes = seen_codes.clone();
    let mut at = started.saturating_sub(60);
    while at <= ended + 60 {
        codes.insert(totp(HashAlgorithm::Sha1, SEED_SHA1, at, 30, 8));
        codes.insert(totp(HashAlgorithm::Sha1, TOUCH_SEED, at, 30, 8));
        at += 30;
    }
    codes.insert("94287082".to_owned());
    let tokens: BTreeSet<&str> = seen
        .split(|c: char| !c.is_ascii_digit())
        .filter(|t| !t.is_empty())
        .collect();
    let leaked: Vec<&String> = codes
        .iter()
        .filter(|c| tokens.contains(c.as_str()))
        .collect();
    assert!(
        leaked.is_empty(),
        "codes {leaked:?} reached {PEER_USER}'s signal monitor:\n{seen}"
    );
    // The monitor did receive the daemon's signals: the touch prompts.
    assert!(
        seen.contains("TouchPending"),
        "the test user's monitor saw no TouchPending signal, so this proves nothing:\n{seen}\n{}",
        s.bed.logs()
    );
}
