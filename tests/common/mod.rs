//! The test bed shared by every integration test: the real stack, no hardware.
//!
//! [`TestBed::start`] gives each caller a private temp dir with
//! - a private `pcscd` running the vpcd driver (reader "Virtual PCD 00 00" on TCP port PORT and
//!   "Virtual PCD 00 01" on PORT+1, PORT picked at random and checked), inside
//!   `unshare -m` (plus `--map-root-user` when not root) with `DIR/run` bind-mounted on
//!   `/run/pcscd` (pcscd 1.9.9 ignores `PCSCLITE_CSOCK_NAME` and always binds
//!   `/run/pcscd/pcscd.comm`);
//! - on demand, cards: the real `oathbridge emulate --vpcd 127.0.0.1:PORT+slot …`
//!   ([`TestBed::attach_card`]);
//! - on demand, a private session `dbus-daemon` ([`TestBed::start_dbus`]);
//! - [`TestBed::command`]: the real `oathbridge` binary with the bed's environment.
//!
//! Everything is torn down by `Drop`, also when the test panics. A watchdog `sh` per bed
//! also cleans up if the test process is killed or exits without dropping the bed.
//! `OATHBRIDGE_KEEP_TESTBED=1` keeps the directory (logs: `pcscd.log`, `card<slot>-<n>.log`,
//! `dbus.log`); a panicking test prints the directory and the log contents.
//! `OATHBRIDGE_PCSCD_DEBUG=1` runs pcscd with `--debug --apdu` (APDU log in `pcscd.log`).
//!
//! Missing system programs (pcscd, unshare, pcsc_scan, dbus-daemon, the vpcd driver) make
//! the bed panic with the install command: tests never skip silently.
//!
//! # PC/SC clients: one pcscd per process for in-process tests
//!
//! libpcsclite reads `PCSCLITE_CSOCK_NAME` **once per process** and caches it. So:
//! - **Subprocess tests** (the `oathbridge` CLI, ykman, pcsc_scan) pass the socket per child
//!   through [`TestBed::env`] / [`TestBed::command`], and may use one bed per test — tests
//!   run as parallel threads, each bed has its own pcscd and ports.
//! - **In-process tests** (the `pcsc` crate called from the test itself) must use a single
//!   bed per test binary, [`TestBed::shared`], which sets `PCSCLITE_CSOCK_NAME` in this
//!   process's environment before the first PC/SC call. Do not also call `TestBed::start`
//!   for in-process PC/SC in the same binary; [`TestBed::use_for_this_process`] panics if
//!   two beds try to claim the process.

#![allow(dead_code)]

pub mod cli;
pub mod hid;
pub mod holder;
pub mod import_key;
pub mod keyring;
pub mod proc;
pub mod x11;

use std::collections::HashSet;
use std::fs::{self, File};
use std::hash::{BuildHasher, Hasher};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

pub use proc::output_with_timeout;
use proc::{INSTALL_HINT, Watchdog, kill_child, require_program, stop_child};

/// Keep the bed's directory after the test when set to `1`.
pub const KEEP_ENV: &str = "OATHBRIDGE_KEEP_TESTBED";
/// Run pcscd with `--debug --apdu` when set to `1`.
pub const PCSCD_DEBUG_ENV: &str = "OATHBRIDGE_PCSCD_DEBUG";
/// Environment entry put on every process the bed starts, so teardown can find stragglers
/// (e.g. services activated by the private dbus-daemon) by scanning `/proc/*/environ`.
pub const MARKER_VAR: &str = "OATHBRIDGE_TESTBED";
/// Path of the vpcd driver (Debian package vsmartcard-vpcd).
pub const VPCD_DRIVER: &str = "/usr/lib/pcsc/drivers/serial/libifdvpcd.so";

/// Bounded wait for pcscd's socket, a reader, or a card.
const WAIT: Duration = Duration::from_secs(5);
/// How long a fresh pcscd gets to show its reader before we assume a port clash.
const READER_WAIT: Duration = Duration::from_secs(3);
const START_ATTEMPTS: usize = 5;

/// Ports handed out to live beds of this process (the bind check alone races with them).
static PORTS_IN_USE: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// The system programs the bed runs, resolved once.
struct Programs {
    pcscd: PathBuf,
    unshare: PathBuf,
    pcsc_scan: PathBuf,
}

fn programs() -> &'static Programs {
    static PROGRAMS: OnceLock<Programs> = OnceLock::new();
    PROGRAMS.get_or_init(|| {
        let p = Programs {
            pcscd: require_program("pcscd", "pcscd"),
            unshare: require_program("unshare", "util-linux"),
            pcsc_scan: require_program("pcsc_scan", "pcsc-tools"),
        };
        assert!(
            Path::new(VPCD_DRIVER).exists(),
            "test bed: the vpcd driver {VPCD_DRIVER} (Debian package `vsmartcard-vpcd`) is \
             missing. Install it with:\n    {INSTALL_HINT}"
        );
        p
    })
}

/// A private pcscd + vpcd, optional cards and dbus-daemon; see the module docs.
pub struct TestBed {
    /// `None` once kept (or when kept from the start).
    tempdir: Option<tempfile::TempDir>,
    dir: PathBuf,
    port: u16,
    pcscd: Option<Child>,
    pcscd_pid: u32,
    cards: Vec<Arc<Mutex<CardProc>>>,
    card_seq: u32,
    dbus: Option<Dbus>,
    watchdog: Option<Watchdog>,
    keep: bool,
}

struct Dbus {
    pid: u32,
    address: String,
}

/// The emulator process behind a [`CardHandle`]; shared with the bed so `Drop` stops it.
struct CardProc {
    child: Option<Child>,
    slot: u8,
    log: PathBuf,
}

/// One attached card (an `oathbridge emulate` process). Dropping the handle does **not**
/// remove the card; the bed stops all cards when it is dropped.
pub struct CardHandle {
    proc: Arc<Mutex<CardProc>>,
    slot: u8,
    args: Vec<String>,
    csock: PathBuf,
    reader: String,
}

/// What `pcsc_scan -c` reports for one reader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReaderState {
    /// The "Card state:" line, e.g. "Card inserted, ".
    pub state: String,
    /// The ATR as hex bytes separated by spaces, if a card is present.
    pub atr: Option<String>,
}

impl ReaderState {
    pub fn card_present(&self) -> bool {
        self.state.contains("Card inserted")
    }
}

/// True when the effective uid is 0 (read from /proc, no libc needed).
fn is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().nth(1).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

fn keep_requested() -> bool {
    std::env::var(KEEP_ENV).is_ok_and(|v| v == "1")
}

/// A random u64 (std's `RandomState` is seeded randomly per process; the counter varies it).
fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u32(std::process::id());
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}

/// An even PORT in 20000..60000 with PORT and PORT+1 bindable on 0.0.0.0 and not used by
/// another bed of this process. Reserved until [`release_ports`].
fn pick_ports() -> u16 {
    for _ in 0..500 {
        let port = (20000 + (random_u64() % 20000) * 2) as u16;
        let mut in_use = PORTS_IN_USE.lock().unwrap_or_else(|e| e.into_inner());
        let set = in_use.get_or_insert_with(HashSet::new);
        if set.contains(&port) {
            continue;
        }
        let a = TcpListener::bind(("0.0.0.0", port));
        let b = TcpListener::bind(("0.0.0.0", port + 1));
        if a.is_ok() && b.is_ok() {
            set.insert(port);
            return port;
        }
    }
    panic!("test bed: found no free pair of TCP ports in 20000..60000 after 500 tries");
}

fn release_ports(port: u16) {
    let mut in_use = PORTS_IN_USE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(set) = in_use.as_mut() {
        set.remove(&port);
    }
}

fn read_lossy(path: &Path) -> String {
    match fs::read(path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) => format!("<cannot read {}: {e}>", path.display()),
    }
}

/// Runs `pcsc_scan <flag>` against the pcscd at `csock`; its stdout, or "" on failure/timeout.
fn pcsc_scan(csock: &Path, flag: &str) -> String {
    let mut cmd = Command::new(&programs().pcsc_scan);
    cmd.arg(flag)
        .env("PCSCLITE_CSOCK_NAME", csock)
        .env_remove("PCSCLITE_DEBUG");
    match output_with_timeout(&mut cmd, Duration::from_secs(5)) {
        Some(out) => String::from_utf8_lossy(&out.stdout).into_owned(),
        None => String::new(),
    }
}

/// Parses `pcsc_scan -c` output into the state of `reader`.
///
/// ```text
///  Reader 0: Virtual PCD 00 00
///   Event number: 1
///   Card state: Card inserted,
///   ATR: 3B 80 80 01 01
/// ```
pub fn parse_reader_state(scan: &str, reader: &str) -> Option<ReaderState> {
    let mut lines = scan.lines().map(str::trim);
    let header_ok = |l: &str| {
        l.strip_prefix("Reader ")
            .and_then(|r| r.split_once(": "))
            .is_some_and(|(_, name)| name == reader)
    };
    lines.by_ref().find(|l| header_ok(l))?;
    let mut state = None;
    let mut atr = None;
    for line in lines {
        if line.starts_with("Reader ") {
            break;
        }
        if let Some(s) = line.strip_prefix("Card state: ") {
            state = Some(s.to_string());
        } else if let Some(a) = line.strip_prefix("ATR: ") {
            atr.get_or_insert_with(|| a.trim().to_string());
        }
    }
    Some(ReaderState { state: state?, atr })
}

/// The state of `reader` at the pcscd behind `csock`, or `None` if the reader is not listed.
pub fn reader_state_at(csock: &Path, reader: &str) -> Option<ReaderState> {
    parse_reader_state(&pcsc_scan(csock, "-c"), reader)
}

fn wait_card_state(csock: &Path, reader: &str, present: bool, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        let now = reader_state_at(csock, reader).is_some_and(|s| s.card_present());
        if now == present {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(50));
    }
}

impl TestBed {
    /// Starts a bed: temp dir, free ports, private pcscd, reader "Virtual PCD 00 00" listed.
    /// Retries with other ports (port clash with other beds/programs) up to 5 times; panics
    /// with the pcscd log on final failure.
    pub fn start() -> TestBed {
        let progs = programs();
        let keep = keep_requested();
        let tempdir = tempfile::Builder::new()
            .prefix("oathbridge-testbed-")
            .tempdir()
            .unwrap_or_else(|e| panic!("test bed: cannot create a temp dir: {e}"));
        let dir = tempdir.path().to_path_buf();
        let (tempdir, dir) = if keep {
            (None, tempdir.keep())
        } else {
            (Some(tempdir), dir)
        };
        for sub in ["run", "reader.conf.d", "home", "xdg-runtime"] {
            fs::create_dir_all(dir.join(sub))
                .unwrap_or_else(|e| panic!("test bed: mkdir {}/{sub}: {e}", dir.display()));
        }
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = fs::set_permissions(dir.join("xdg-runtime"), fs::Permissions::from_mode(0o700));
        }
        if !Path::new("/run/pcscd").is_dir() {
            fs::create_dir_all("/run/pcscd").unwrap_or_else(|e| {
                panic!(
                    "test bed: mkdir -p /run/pcscd (the bind-mount target) failed: {e}; \
                     run `sudo mkdir -p /run/pcscd` (scripts/test.sh does)"
                )
            });
        }

        let marker = format!("{MARKER_VAR}={}", dir.display());
        let watchdog = Watchdog::start(&marker, &dir, keep);
        let mut bed = TestBed {
            tempdir,
            dir,
            port: 0,
            pcscd: None,
            pcscd_pid: 0,
            cards: Vec::new(),
            card_seq: 0,
            dbus: None,
            watchdog: Some(watchdog),
            keep,
        };

        let mut failures = String::new();
        for attempt in 1..=START_ATTEMPTS {
            match bed.try_start_pcscd(progs, attempt) {
                Ok(()) => return bed,
                Err(why) => {
                    failures.push_str(&format!("attempt {attempt} (port {}): {why}\n", bed.port));
                    bed.stop_pcscd();
                }
            }
        }
        let log = read_lossy(&bed.dir.join("pcscd.log"));
        panic!(
            "test bed: pcscd did not come up with reader \"{}\" after {START_ATTEMPTS} \
             attempts:\n{failures}--- last pcscd.log ---\n{log}",
            bed.reader(0)
        );
    }

    fn try_start_pcscd(&mut self, progs: &Programs, attempt: usize) -> Result<(), String> {
        self.port = pick_ports();
        self.spawn_pcscd(progs, attempt)
    }

    /// Stops pcscd (SIGTERM, SIGKILL after 3 s; fine if the test already killed it) and
    /// starts a new one on the **same** vpcd ports and socket, like a pcscd restart on a
    /// desktop. Running emulators reconnect by themselves; wait for their cards with
    /// [`TestBed::wait_card_present`]. [`TestBed::pcscd_pid`] is the new pid afterwards.
    /// Panics with the pcscd log if the new pcscd does not list the reader within 5 s
    /// (retried a few times: the old listening sockets may take a moment to go).
    pub fn restart_pcscd(&mut self) {
        let progs = programs();
        if let Some(mut child) = self.pcscd.take() {
            stop_child(&mut child, Duration::from_secs(3));
        }
        let mut failures = String::new();
        for attempt in 1..=START_ATTEMPTS {
            match self.spawn_pcscd(progs, attempt) {
                Ok(()) => return,
                Err(why) => {
                    failures.push_str(&format!("restart attempt {attempt}: {why}\n"));
                    if let Some(mut child) = self.pcscd.take() {
                        stop_child(&mut child, Duration::from_secs(3));
                    }
                    thread::sleep(Duration::from_millis(200));
                }
            }
        }
        panic!(
            "test bed: pcscd did not come back on port {}:\n{failures}--- pcscd.log ---\n{}",
            self.port,
            read_lossy(&self.dir.join("pcscd.log"))
        );
    }

    /// Starts pcscd for `self.port` and waits for its socket and reader 0.
    fn spawn_pcscd(&mut self, progs: &Programs, attempt: usize) -> Result<(), String> {
        let conf = format!(
            "FRIENDLYNAME \"Virtual PCD\"\nDEVICENAME   /dev/null:{p}\nLIBPATH      {VPCD_DRIVER}\nCHANNELID    {p}\n",
            p = self.port
        );
        fs::write(self.dir.join("reader.conf.d/vpcd"), conf)
            .map_err(|e| format!("writing reader.conf.d/vpcd: {e}"))?;
        let _ = fs::remove_file(self.csock());
        let _ = fs::remove_file(self.dir.join("run/pcscd.pid"));

        let log_path = self.dir.join("pcscd.log");
        // Only this attempt's part of the log counts for the port-clash check below.
        let log_start = fs::metadata(&log_path).map(|m| m.len()).unwrap_or(0) as usize;
        let log = File::options()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| format!("opening {}: {e}", log_path.display()))?;
        use std::io::Write;
        let _ = writeln!(
            &log,
            "=== test bed: pcscd attempt {attempt}, vpcd port {} ===",
            self.port
        );
        let mut cmd = Command::new(&progs.unshare);
        if !is_root() {
            // Not root: a user namespace (mapped to root) lets us bind-mount our own dir.
            cmd.arg("--map-root-user");
        }
        cmd.args(["-m", "--propagation", "private", "sh", "-c"])
            .arg(r#"mount --bind "$0/run" /run/pcscd && exec "$@""#)
            .arg(&self.dir)
            .arg(&progs.pcscd)
            .arg("--foreground")
            .arg("-c")
            .arg(self.dir.join("reader.conf.d"));
        if std::env::var(PCSCD_DEBUG_ENV).is_ok_and(|v| v == "1") {
            cmd.args(["--debug", "--apdu"]);
        }
        self.apply_env(&mut cmd);
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log);
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", progs.unshare.display()))?;
        // unshare and sh both exec, so this pid is pcscd itself.
        self.pcscd_pid = child.id();
        self.pcscd = Some(child);

        let csock = self.csock();
        let deadline = Instant::now() + WAIT;
        while !csock.exists() {
            if let Some(Ok(Some(status))) = self.pcscd.as_mut().map(Child::try_wait) {
                return Err(format!("pcscd exited early ({status})"));
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "socket {} did not appear within {WAIT:?}",
                    csock.display()
                ));
            }
            thread::sleep(Duration::from_millis(20));
        }

        let reader = self.reader(0);
        let deadline = Instant::now() + READER_WAIT;
        loop {
            let readers = pcsc_scan(&csock, "-r");
            if readers.lines().any(|l| l.trim().ends_with(&reader)) {
                return Ok(());
            }
            let whole = read_lossy(&log_path);
            let log = whole.get(log_start..).unwrap_or(&whole);
            if log.contains("Address already in use") || log.contains("init failed") {
                return Err("vpcd port clash (Address already in use)".into());
            }
            if let Some(Ok(Some(status))) = self.pcscd.as_mut().map(Child::try_wait) {
                return Err(format!("pcscd exited ({status})"));
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "reader \"{reader}\" not listed within {READER_WAIT:?}; pcsc_scan -r said: {readers:?}"
                ));
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    fn stop_pcscd(&mut self) {
        if let Some(mut child) = self.pcscd.take() {
            stop_child(&mut child, Duration::from_secs(3));
        }
        if self.port != 0 {
            release_ports(self.port);
        }
    }

    /// The bed shared by all tests of this binary, for **in-process** PC/SC clients.
    /// Started on first use; sets `PCSCLITE_CSOCK_NAME` for this process (see module docs).
    /// Hold the guard only as long as needed: it serialises the tests that use it. The bed
    /// lives until the process exits; the watchdog then stops its processes.
    pub fn shared() -> MutexGuard<'static, TestBed> {
        static SHARED: OnceLock<Mutex<TestBed>> = OnceLock::new();
        let bed = SHARED.get_or_init(|| {
            let bed = TestBed::start();
            bed.use_for_this_process();
            Mutex::new(bed)
        });
        bed.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Points this process's libpcsclite at this bed by setting `PCSCLITE_CSOCK_NAME` in
    /// the process environment. Call before the first PC/SC call; panics if another bed
    /// already claimed the process (libpcsclite would keep talking to the first one).
    pub fn use_for_this_process(&self) {
        static CLAIMED: OnceLock<PathBuf> = OnceLock::new();
        let csock = self.csock();
        let claimed = CLAIMED.get_or_init(|| {
            // SAFETY: `set_var` is unsafe because another thread could read the environment
            // at the same time. Here it runs once per process, under `OnceLock`, before any
            // PC/SC call; concurrent test threads read the environment only through std
            // (which takes the same lock as `set_var`) when spawning processes. libpcsclite's
            // own `getenv` runs later, at the first PC/SC call, which must come after this.
            unsafe { std::env::set_var("PCSCLITE_CSOCK_NAME", &csock) };
            csock.clone()
        });
        assert_eq!(
            *claimed,
            csock,
            "test bed: this process already uses the pcscd at {} (libpcsclite caches \
             PCSCLITE_CSOCK_NAME per process); use TestBed::shared() for in-process PC/SC",
            claimed.display()
        );
    }

    /// pcscd's client socket, the value for `PCSCLITE_CSOCK_NAME`.
    pub fn csock(&self) -> PathBuf {
        self.dir.join("run/pcscd.comm")
    }

    /// "Virtual PCD 00 0{slot}" (slot 0 or 1).
    pub fn reader(&self, slot: u8) -> String {
        assert!(slot < 2, "test bed: vpcd has slots 0 and 1, not {slot}");
        format!("Virtual PCD 00 0{slot}")
    }

    /// The bed's directory (logs, sockets; free for the test's own files).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The size of pcscd's log now (a start offset for [`TestBed::apdus_since`]).
    pub fn pcscd_log_len(&self) -> usize {
        std::fs::metadata(self.dir.join("pcscd.log")).map_or(0, |m| m.len() as usize)
    }

    /// The command APDUs (hex, spaced) pcscd logged after byte `offset` of its log; needs
    /// [`PCSCD_DEBUG_ENV`]=1 before the bed starts.
    pub fn apdus_since(&self, offset: usize) -> Vec<String> {
        let log = std::fs::read(self.dir.join("pcscd.log")).expect("read pcscd.log");
        String::from_utf8_lossy(&log[offset.min(log.len())..])
            .lines()
            .filter_map(|line| {
                line.split_once("APDU: ")
                    .map(|(_, apdu)| apdu.trim().to_owned())
            })
            .collect()
    }

    /// vpcd's TCP port for slot 0; slot 1 is `port() + 1`.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The pid of the bed's pcscd.
    pub fn pcscd_pid(&self) -> u32 {
        self.pcscd_pid
    }

    /// The environment for clients of this bed: `PCSCLITE_CSOCK_NAME`, and
    /// `DBUS_SESSION_BUS_ADDRESS` once a bus was started. Also private `HOME` and
    /// `XDG_{CONFIG,DATA,STATE,CACHE,RUNTIME}_*` under the bed dir (so no client reads or
    /// writes the user's files), and the marker entry used by teardown.
    pub fn env(&self) -> Vec<(String, String)> {
        let d = |sub: &str| self.dir.join(sub).display().to_string();
        let mut env = vec![
            (
                "PCSCLITE_CSOCK_NAME".to_string(),
                self.csock().display().to_string(),
            ),
            ("HOME".to_string(), d("home")),
            ("XDG_CONFIG_HOME".to_string(), d("home/.config")),
            ("XDG_DATA_HOME".to_string(), d("home/.local/share")),
            ("XDG_STATE_HOME".to_string(), d("home/.local/state")),
            ("XDG_CACHE_HOME".to_string(), d("home/.cache")),
            ("XDG_RUNTIME_DIR".to_string(), d("xdg-runtime")),
            (MARKER_VAR.to_string(), self.dir.display().to_string()),
        ];
        if let Some(dbus) = &self.dbus {
            env.push(("DBUS_SESSION_BUS_ADDRESS".to_string(), dbus.address.clone()));
        }
        env
    }

    /// Applies [`TestBed::env`] to `cmd`, removing `RUST_LOG` and any inherited bus address.
    pub fn apply_env(&self, cmd: &mut Command) {
        cmd.env_remove("RUST_LOG")
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .env_remove("DBUS_STARTER_ADDRESS")
            .env_remove("DBUS_STARTER_BUS_TYPE");
        cmd.envs(self.env());
    }

    /// The real `oathbridge` binary with `args` and the bed's environment.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_oathbridge"));
        cmd.args(args);
        self.apply_env(&mut cmd);
        cmd
    }

    /// Starts `oathbridge emulate --vpcd 127.0.0.1:<PORT+slot> <args>` (cwd: the bed dir,
    /// log: `card<slot>-<n>.log`) and waits until the reader shows the card. Panics (with
    /// the logs) if the card does not appear within 5 s or the emulator exits.
    pub fn attach_card(&mut self, slot: u8, args: &[&str]) -> CardHandle {
        let reader = self.reader(slot);
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let proc = self.spawn_card(slot, &args);
        let card = CardHandle {
            proc,
            slot,
            args,
            csock: self.csock(),
            reader,
        };
        self.wait_attached(&card);
        card
    }

    /// Starts a new emulator process for `card` (after [`CardHandle::unplug`]) with the same
    /// slot and arguments, and waits for it as [`TestBed::attach_card`] does.
    pub fn reattach(&mut self, card: &mut CardHandle) {
        card.unplug();
        let args = card.args.clone();
        card.proc = self.spawn_card(card.slot, &args);
        self.wait_attached(card);
    }

    fn spawn_card(&mut self, slot: u8, args: &[String]) -> Arc<Mutex<CardProc>> {
        for other in &self.cards {
            let mut other = other.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(child) = other.child.as_mut() {
                let running = matches!(child.try_wait(), Ok(None));
                assert!(
                    !(running && other.slot == slot),
                    "test bed: slot {slot} already has a running card ({}); unplug it first",
                    other.log.display()
                );
            }
        }
        self.card_seq += 1;
        let log = self.dir.join(format!("card{slot}-{}.log", self.card_seq));
        let file = File::create(&log)
            .unwrap_or_else(|e| panic!("test bed: creating {}: {e}", log.display()));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_oathbridge"));
        cmd.arg("emulate")
            .arg("--vpcd")
            .arg(format!("127.0.0.1:{}", self.port + u16::from(slot)))
            .args(args)
            .current_dir(&self.dir);
        self.apply_env(&mut cmd);
        if let Ok(filter) = std::env::var("OATHBRIDGE_CARD_RUST_LOG") {
            cmd.env("RUST_LOG", filter);
        }
        cmd.stdin(Stdio::null())
            .stdout(file.try_clone().expect("test bed: dup card log fd"))
            .stderr(file);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("test bed: cannot start the emulator {cmd:?}: {e}"));
        let proc = Arc::new(Mutex::new(CardProc {
            child: Some(child),
            slot,
            log,
        }));
        self.cards.push(proc.clone());
        proc
    }

    fn wait_attached(&self, card: &CardHandle) {
        let deadline = Instant::now() + WAIT;
        loop {
            if reader_state_at(&self.csock(), &card.reader).is_some_and(|s| s.card_present()) {
                return;
            }
            let exited = {
                let mut p = card.proc.lock().unwrap_or_else(|e| e.into_inner());
                p.child.as_mut().and_then(|c| c.try_wait().ok().flatten())
            };
            if let Some(status) = exited {
                panic!(
                    "test bed: the emulator for slot {} exited ({status}) before the card \
                     appeared.\n{}",
                    card.slot,
                    self.logs()
                );
            }
            if Instant::now() >= deadline {
                panic!(
                    "test bed: no card in \"{}\" {WAIT:?} after starting the emulator.\n{}",
                    card.reader,
                    self.logs()
                );
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits (up to 5 s) until the reader of `slot` shows a card (`present`) or none;
    /// panics with the logs otherwise.
    pub fn wait_card_present(&self, slot: u8, present: bool) {
        let reader = self.reader(slot);
        if !wait_card_state(&self.csock(), &reader, present, WAIT) {
            panic!(
                "test bed: \"{reader}\" did not become {} within {WAIT:?}.\n{}",
                if present { "present" } else { "empty" },
                self.logs()
            );
        }
    }

    /// The state (`Card inserted`/`Card removed`, ATR) of the reader of `slot`, or `None`
    /// if pcscd does not list the reader.
    pub fn reader_state(&self, slot: u8) -> Option<ReaderState> {
        reader_state_at(&self.csock(), &self.reader(slot))
    }

    /// Starts a private session bus (`DIR/bus.sock`) and returns its address; from then on
    /// [`TestBed::env`] and [`TestBed::command`] include `DBUS_SESSION_BUS_ADDRESS`.
    pub fn start_dbus(&mut self) -> String {
        self.start_dbus_inner(None)
    }

    /// As [`TestBed::start_dbus`], with `services` as the bus's only `<servicedir>` (for
    /// D-Bus activation tests). Activated services inherit the bed's environment, and
    /// their stderr goes to `DIR/dbus.log`.
    pub fn start_dbus_with_services(&mut self, services: &Path) -> String {
        self.start_dbus_inner(Some(services))
    }

    fn start_dbus_inner(&mut self, services: Option<&Path>) -> String {
        assert!(self.dbus.is_none(), "test bed: dbus-daemon already started");
        let daemon = require_program("dbus-daemon", "dbus-daemon");
        let sock = self.dir.join("bus.sock");
        let address = format!("unix:path={}", sock.display());
        // Our own config instead of `--session`, so the host's session service files
        // (/usr/share/dbus-1/services) cannot be activated on the private bus.
        let servicedir = services
            .map(|s| {
                format!(
                    "  <servicedir>{}</servicedir>\n",
                    xml_escape(&s.display().to_string())
                )
            })
            .unwrap_or_default();
        let config = format!(
            r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <keep_umask/>
  <listen>{listen}</listen>
{servicedir}  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#,
            listen = xml_escape(&address),
        );
        let config_path = self.dir.join("dbus.conf");
        fs::write(&config_path, config).expect("test bed: writing dbus.conf");
        let pid_path = self.dir.join("dbus.pid");
        let log_path = self.dir.join("dbus.log");
        let log = File::create(&log_path).expect("test bed: creating dbus.log");
        let mut cmd = Command::new(&daemon);
        cmd.arg(format!("--config-file={}", config_path.display()))
            .arg(format!("--address={address}"))
            .args(["--fork", "--nopidfile", "--print-pid=1"]);
        self.apply_env(&mut cmd);
        // Activated services get the bus address too, and keep stderr (DBUS_DEBUG_OUTPUT
        // stops --fork from pointing stdio at /dev/null).
        cmd.env("DBUS_SESSION_BUS_ADDRESS", &address)
            .env("DBUS_DEBUG_OUTPUT", "1")
            .stdin(Stdio::null())
            .stdout(File::create(&pid_path).expect("test bed: creating dbus.pid"))
            .stderr(log);
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("test bed: cannot start {}: {e}", daemon.display()));
        let deadline = Instant::now() + WAIT;
        let status = loop {
            if let Ok(Some(status)) = child.try_wait() {
                break status;
            }
            if Instant::now() >= deadline {
                kill_child(&mut child);
                panic!(
                    "test bed: dbus-daemon --fork did not return within {WAIT:?}; dbus.log:\n{}",
                    read_lossy(&log_path)
                );
            }
            thread::sleep(Duration::from_millis(5));
        };
        let pid_text = read_lossy(&pid_path);
        let pid = pid_text.trim().parse::<u32>().ok();
        match (status.success(), pid) {
            (true, Some(pid)) if sock.exists() => {
                self.dbus = Some(Dbus {
                    pid,
                    address: address.clone(),
                });
                address
            }
            _ => panic!(
                "test bed: dbus-daemon failed ({status}, printed pid {pid_text:?}, socket \
                 exists: {}); dbus.log:\n{}",
                sock.exists(),
                read_lossy(&log_path)
            ),
        }
    }

    /// The bus address, if [`TestBed::start_dbus`] was called.
    pub fn dbus_address(&self) -> Option<&str> {
        self.dbus.as_ref().map(|d| d.address.as_str())
    }

    /// The dbus-daemon pid, if started.
    pub fn dbus_pid(&self) -> Option<u32> {
        self.dbus.as_ref().map(|d| d.pid)
    }

    /// All logs of the bed (pcscd, cards, dbus), for panic messages.
    pub fn logs(&self) -> String {
        let mut out = format!("--- test bed dir: {} ---\n", self.dir.display());
        let mut names: Vec<PathBuf> = fs::read_dir(&self.dir)
            .map(|d| {
                d.flatten()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "log"))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        for path in names {
            let text = read_lossy(&path);
            // pcscd --debug logs can be long; keep the tail.
            let tail = if text.len() > 20_000 {
                let mut cut = text.len() - 20_000;
                while !text.is_char_boundary(cut) {
                    cut += 1;
                }
                format!("[… {cut} bytes cut …]\n{}", &text[cut..])
            } else {
                text
            };
            out.push_str(&format!(
                "--- {} ---\n{}\n",
                path.file_name().unwrap_or_default().to_string_lossy(),
                tail.trim_end()
            ));
        }
        out
    }
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

impl Drop for TestBed {
    fn drop(&mut self) {
        let panicking = thread::panicking();
        if panicking {
            eprintln!(
                "test bed: test panicked; bed dir {}{}\n{}",
                self.dir.display(),
                if self.keep {
                    " (kept)"
                } else {
                    " (deleted; set OATHBRIDGE_KEEP_TESTBED=1 to keep it)"
                },
                self.logs()
            );
        }
        for card in &self.cards {
            let mut card = card.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(mut child) = card.child.take() {
                stop_child(&mut child, Duration::from_secs(2));
            }
        }
        if let Some(dbus) = self.dbus.take() {
            proc::stop_pid(dbus.pid, Duration::from_secs(2));
        }
        self.stop_pcscd();
        // Stragglers carrying our marker (activated services, leaked client commands).
        let marker = format!("{MARKER_VAR}={}", self.dir.display());
        for pid in proc::pids_with_env(&marker) {
            proc::stop_pid(pid, Duration::from_secs(1));
        }
        if let Some(mut watchdog) = self.watchdog.take() {
            watchdog.dismiss();
        }
        if self.keep && !panicking {
            eprintln!("test bed: kept {}", self.dir.display());
        }
        // `tempdir` (if not kept) is removed when the field drops, after this.
    }
}

impl CardHandle {
    /// The vpcd slot (0 or 1).
    pub fn slot(&self) -> u8 {
        self.slot
    }

    /// The reader name, "Virtual PCD 00 0{slot}".
    pub fn reader(&self) -> &str {
        &self.reader
    }

    /// The emulator arguments after `--vpcd …`.
    pub fn args(&self) -> &[String] {
        &self.args
    }

    fn lock(&self) -> MutexGuard<'_, CardProc> {
        self.proc.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The emulator's pid while it runs.
    pub fn pid(&self) -> Option<u32> {
        let mut p = self.lock();
        let child = p.child.as_mut()?;
        matches!(child.try_wait(), Ok(None)).then(|| child.id())
    }

    pub fn is_running(&self) -> bool {
        self.pid().is_some()
    }

    /// Path of the current emulator process's log (stdout + stderr).
    pub fn log_path(&self) -> PathBuf {
        self.lock().log.clone()
    }

    /// The current emulator process's log.
    pub fn log(&self) -> String {
        read_lossy(&self.log_path())
    }

    /// Pulls the card out: SIGKILL the emulator, then wait (up to 5 s) until the reader is
    /// empty. Idempotent.
    pub fn unplug(&mut self) {
        if let Some(mut child) = self.lock().child.take() {
            kill_child(&mut child);
        }
        self.wait_absent();
    }

    /// Stops the emulator gracefully (SIGTERM, SIGKILL after 5 s), then waits until the
    /// reader is empty. Use when the emulator should save `--state`.
    pub fn terminate(&mut self) {
        if let Some(mut child) = self.lock().child.take() {
            stop_child(&mut child, Duration::from_secs(5));
        }
        self.wait_absent();
    }

    fn wait_absent(&self) {
        if !wait_card_state(&self.csock, &self.reader, false, WAIT) {
            panic!(
                "test bed: \"{}\" still shows a card {WAIT:?} after the emulator stopped; \
                 card log:\n{}",
                self.reader,
                self.log()
            );
        }
    }
}

/// `target/screenshots` (kept after the test), or a temp dir when the target dir is not
/// writable (the rootless pass runs the test binaries as another user).
pub fn screenshot_dir() -> PathBuf {
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .map(|t| t.join("screenshots"))
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots"));
    let writable = std::fs::create_dir_all(&target).is_ok()
        && std::fs::write(target.join(".probe"), b"").is_ok();
    if writable {
        let _ = std::fs::remove_file(target.join(".probe"));
        return target;
    }
    let fallback =
        std::env::temp_dir().join(format!("oathbridge-screenshots-{}", std::process::id()));
    std::fs::create_dir_all(&fallback).expect("create a screenshot dir");
    eprintln!(
        "test: {} is not writable; screenshots go to {}",
        target.display(),
        fallback.display()
    );
    fallback
}
