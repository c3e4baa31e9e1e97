//! The real KRunner (Plasma 5.27, KDE Frameworks 5.103: Debian 12 `plasma-workspace`) with
//! our runner, headless: the test bed's private pcscd with an emulated card (GitHub:alice
//! with the RFC 6238 SHA-1 seed, a touch account and a HOTP account), a private session bus
//! whose only service directory holds our D-Bus activation file (so KRunner's first call
//! starts the daemon: nobody owns the name before), a private Xvfb, the runner's .desktop
//! in `$XDG_DATA_HOME/krunner/dbusplugins/`, and `krunner -d`.
//!
//! KRunner is driven as a user would: `org.kde.krunner.App.query` opens it with a query,
//! `xdotool` presses Enter or Shift+Enter (its first action) in its window. The test is a
//! D-Bus monitor on the bus and reads every `org.kde.krunner1` call and our replies; `xclip`
//! reads the clipboard of the Xvfb display. Screenshots of each step go to
//! `target/screenshots/krunner-*.png`.
//!
//! Checked: the Config → Actions → Match order of the first session (the daemon activated by
//! it); the rows for an exact issuer (type 100, first, subtext `<RFC code> · <n> s`), for a
//! prefix (`git`: present, type 30; "touch required" and "HOTP" rows); Enter copies the code
//! (with the `x-kde-passwordManagerHint` target); the copy action is on every row of the
//! first session and of later ones (Shift+Enter sends `Run(id, "copy")`).
//!
//! KRunner missing, or not on the bus within 30 s: the test panics with the install command.

mod common;
mod daemon_common;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::TestBed;
use common::cli::run_cli;
use common::proc::{require_program, stop_child};
use common::x11::Xvfb;
use daemon_common::*;
use futures_util::StreamExt;
use oathbridge::otp::{HashAlgorithm, totp};
use zbus::message::Type as MessageType;
use zbus::zvariant::{OwnedValue, Value};
use zbus::{Connection, Message, MessageStream};

const KRUNNER_IFACE: &str = "org.kde.krunner1";
const SERVICE_FILE: &str = "io.github.oathbridge.OathBridge1.service";
const HINT: &str = "x-kde-passwordManagerHint";
const INSTALL: &str = "apt-get install -y --no-install-recommends plasma-workspace xvfb xdotool \
     xclip imagemagick (or run `bash scripts/test.sh`, which installs everything and runs the tests)";
/// Bound of KRunner's start and of each step waiting for KRunner.
const KRUNNER_WAIT: Duration = Duration::from_secs(30);
const STEP_WAIT: Duration = Duration::from_secs(15);

/// `(id, text, icon, type, relevance, properties)`.
type Match = (
    String,
    String,
    String,
    i32,
    f64,
    HashMap<String, OwnedValue>,
);

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A child process stopped (TERM, then KILL) when dropped.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        stop_child(&mut self.0, Duration::from_secs(3));
    }
}

/// `import -window <window> target/screenshots/krunner-<name>.png`.
fn screenshot(bed: &TestBed, xvfb: &Xvfb, window: &str, name: &str) -> PathBuf {
    let dir = common::screenshot_dir();
    let path = dir.join(format!("krunner-{name}.png"));
    let (ok, _) = xvfb.tool(
        bed,
        ("import", "imagemagick"),
        &["-window", window, &path.display().to_string()],
    );
    assert!(ok, "import -window {window} failed");
    path
}

/// Every message on the bus, recorded by a monitor connection.
struct Monitor {
    _conn: Connection,
    seen: Arc<Mutex<Vec<Message>>>,
}

impl Monitor {
    fn start(address: &str) -> Monitor {
        let address = address.to_owned();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (conn, mut stream) = block_on(async move {
            let conn = zbus::connection::Builder::address(address.as_str())?
                .max_queued(1 << 20)
                .build()
                .await?;
            let stream = MessageStream::from(&conn);
            conn.call_method(
                Some("org.freedesktop.DBus"),
                "/org/freedesktop/DBus",
                Some("org.freedesktop.DBus.Monitoring"),
                "BecomeMonitor",
                &(&[] as &[&str], 0u32),
            )
            .await?;
            Ok::<_, zbus::Error>((conn, stream))
        })
        .unwrap_or_else(|e| panic!("KRunner test: cannot monitor the bus: {e}"));
        let sink = seen.clone();
        runtime().spawn(async move {
            while let Some(Ok(message)) = stream.next().await {
                sink.lock().unwrap_or_else(|e| e.into_inner()).push(message);
            }
        });
        Monitor { _conn: conn, seen }
    }

    fn snapshot(&self) -> Vec<Message> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn len(&self) -> usize {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Calls of `org.kde.krunner1` to our daemon from index `from`: (index, member, message).
    fn runner_calls(&self, from: usize) -> Vec<(usize, String, Message)> {
        self.snapshot()
            .into_iter()
            .enumerate()
            .skip(from)
            .filter_map(|(i, m)| {
                let header = m.header();
                let ours = header.message_type() == MessageType::MethodCall
                    && header
                        .interface()
                        .is_some_and(|x| x.as_str() == KRUNNER_IFACE)
                    && header.destination().is_some_and(|d| d.as_str() == BUS_NAME);
                let member = header.member()?.to_string();
                ours.then_some((i, member, m.clone()))
            })
            .collect()
    }

    /// The first call of `member` to our runner at index `from` or later whose body
    /// satisfies `pick`, waited for (bounded).
    fn wait_call<T>(
        &self,
        from: usize,
        member: &str,
        mut pick: impl FnMut(&Message) -> Option<T>,
    ) -> (usize, Message, T) {
        let deadline = Instant::now() + STEP_WAIT;
        loop {
            let calls = self.runner_calls(from);
            let found = calls
                .iter()
                .filter(|(_, m, _)| m == member)
                .find_map(|(i, _, message)| pick(message).map(|t| (*i, message.clone(), t)));
            if let Some(found) = found {
                return found;
            }
            if Instant::now() > deadline {
                let seen: Vec<String> = calls
                    .iter()
                    .map(|(i, m, message)| {
                        format!("{i} {m} {:?}", message.body().deserialize::<String>().ok())
                    })
                    .collect();
                panic!(
                    "KRunner test: no {member} call to our runner within {STEP_WAIT:?}; \
                     calls since {from}: {seen:#?}"
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// The reply (or error) to `call`, waited for (bounded).
    fn wait_reply(&self, call: &Message) -> Message {
        let header = call.header();
        let serial = header.primary().serial_num();
        let caller = header.sender().map(|s| s.to_string()).unwrap_or_default();
        wait_until(STEP_WAIT, "the daemon's reply", || {
            self.snapshot().into_iter().find(|m| {
                let h = m.header();
                h.reply_serial() == Some(serial)
                    && h.destination().is_some_and(|d| d.as_str() == caller)
                    && matches!(
                        h.message_type(),
                        MessageType::MethodReturn | MessageType::Error
                    )
            })
        })
    }

    /// KRunner's Match call for `query` from index `from`, and our rows.
    fn wait_match(&self, from: usize, query: &str) -> (usize, Vec<Match>) {
        let (index, call, ()) = self.wait_call(from, "Match", |m| {
            (m.body().deserialize::<String>().ok()? == query).then_some(())
        });
        let reply = self.wait_reply(&call);
        assert_eq!(
            reply.header().message_type(),
            MessageType::MethodReturn,
            "Match({query}) failed: {reply:?}"
        );
        let rows: Vec<Match> = reply
            .body()
            .deserialize()
            .expect("Match reply a(sssida{sv})");
        (index, rows)
    }
}

fn prop_str(row: &Match, key: &str) -> String {
    match row.5.get(key).map(|v| &**v) {
        Some(Value::Str(s)) => s.to_string(),
        other => panic!("row {:?}: {key} is not a string: {other:?}", row.1),
    }
}

fn prop_strings(row: &Match, key: &str) -> Vec<String> {
    let value = row
        .5
        .get(key)
        .unwrap_or_else(|| panic!("row {:?} has no {key}", row.1));
    Vec::<String>::try_from(value.try_clone().expect("clone")).expect("as")
}

fn rfc_codes(from: u64, to: u64) -> Vec<String> {
    (from..=to)
        .map(|t| totp(HashAlgorithm::Sha1, SEED_SHA1, t, 30, 6))
        .collect()
}

/// KRunner, its window (found once it is visible) and how to talk to it.
struct Krunner<'a> {
    bed: &'a TestBed,
    xvfb: &'a Xvfb,
    bus: &'a Bus,
    monitor: &'a Monitor,
    child: Guard,
    /// The lowest height its window had: the search field alone, without result rows.
    field_height: u32,
}

impl Krunner<'_> {
    fn xdotool(&self, args: &[&str]) -> (bool, String) {
        self.xvfb.tool(self.bed, ("xdotool", "xdotool"), args)
    }

    /// The visible KRunner window.
    fn window(&mut self) -> String {
        let deadline = Instant::now() + STEP_WAIT;
        loop {
            if let Ok(Some(status)) = self.child.0.try_wait() {
                panic!("KRunner exited ({status})\n{}", self.bed.logs());
            }
            let (_, out) = self.xdotool(&["search", "--onlyvisible", "--class", "krunner"]);
            if let Some(window) = out.lines().next() {
                return window.to_owned();
            }
            assert!(
                Instant::now() < deadline,
                "KRunner test: KRunner's window did not show within {STEP_WAIT:?}\n{}",
                self.bed.logs()
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// The height of the visible window.
    fn height(&mut self) -> Option<u32> {
        let window = self.window();
        let (_, out) = self.xdotool(&["getwindowgeometry", "--shell", &window]);
        out.lines()
            .find_map(|l| l.strip_prefix("HEIGHT="))
            .and_then(|h| h.trim().parse().ok())
    }

    /// Opens KRunner with `text` (`org.kde.krunner.App.query`, what Alt+Space and typing
    /// do) and waits until our runner answered and KRunner shows the rows: its window,
    /// which shows the search field first, has grown and kept its size for 0.5 s. Keys
    /// pressed before would run the first row as soon as it arrives, ignoring Shift.
    fn show(&mut self, text: &str) -> Vec<Match> {
        let from = self.monitor.len();
        block_on(self.bus.conn.call_method(
            Some("org.kde.krunner"),
            "/App",
            Some("org.kde.krunner.App"),
            "query",
            &(text,),
        ))
        .unwrap_or_else(|e| panic!("org.kde.krunner.App.query({text}): {e}"));
        if let Some(height) = self.height() {
            self.field_height = self.field_height.min(height);
        }
        let (_, rows) = self.monitor.wait_match(from, text);
        let deadline = Instant::now() + STEP_WAIT;
        let mut stable_since: Option<(u32, Instant)> = None;
        loop {
            let height = self.height().unwrap_or(0);
            self.field_height = self.field_height.min(height.max(1));
            match stable_since {
                Some((h, since)) if h == height => {
                    if height >= self.field_height + 20
                        && since.elapsed() >= Duration::from_millis(500)
                    {
                        return rows;
                    }
                }
                _ => stable_since = Some((height, Instant::now())),
            }
            assert!(
                Instant::now() < deadline,
                "KRunner test: KRunner did not show rows for {text:?} within {STEP_WAIT:?} \
                 (window height {height}, search field {})",
                self.field_height
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Gives KRunner's window the keyboard focus and presses `keys` there, through XTEST (as
    /// a keyboard would: the X server keeps the modifiers' state, which events sent to a
    /// window with `--window` do not, so Shift could stick or be lost).
    fn press(&mut self, keys: &str) {
        let window = self.window();
        let (ok, _) = self.xdotool(&["windowfocus", &window, "sleep", "0.1", "key", keys]);
        assert!(ok, "xdotool could not press {keys}");
    }

    /// Presses `keys` and returns the `Run(match id, action id)` KRunner sends our runner.
    fn press_for_run(&mut self, keys: &str) -> (String, String) {
        let from = self.monitor.len();
        self.press(keys);
        let (_, call, ()) = self.monitor.wait_call(from, "Run", |_| Some(()));
        call.body().deserialize().expect("Run(ss)")
    }

    /// `import` of the root window and of KRunner's window into target/screenshots.
    fn screenshots(&mut self, name: &str) {
        let window = self.window();
        screenshot(self.bed, self.xvfb, "root", name);
        screenshot(self.bed, self.xvfb, &window, &format!("{name}-window"));
    }
}

/// Adds `name` (RFC seed) to the card through pcscd, without the daemon.
fn add_direct(bed: &TestBed, name: &str, extra: &[&str]) {
    let mut args = vec!["--direct", "add", name, "--from", "-"];
    args.extend_from_slice(extra);
    let run = run_cli(bed, &args, &format!("{B32_SHA1}\n"));
    assert_eq!(run.code, 0, "add {name}: {}", run.stderr);
}

#[test]
fn krunner_shows_ranks_and_copies_codes() {
    let started = Instant::now();
    for (program, package) in [
        ("krunner", "plasma-workspace"),
        ("Xvfb", "xvfb"),
        ("xdotool", "xdotool"),
        ("xclip", "xclip"),
        ("import", "imagemagick"),
    ] {
        require_program(program, package);
    }
    let mut bed = TestBed::start();
    bed.attach_card(0, &[]);
    add_direct(&bed, "GitHub:alice@example.com", &[]);
    add_direct(&bed, "GitLab:bob", &["--touch"]);
    add_direct(&bed, "Acme:counter", &["--type", "hotp"]);
    let xvfb = Xvfb::start(&bed, "1024x600x24");

    // A bus that can start the daemon (the shipped activation file, our binary), and the
    // runner installed as scripts/install.sh does.
    let services = bed.dir().join("services");
    std::fs::create_dir_all(&services).expect("mkdir services");
    let shipped = std::fs::read_to_string(repo().join("dbus").join(SERVICE_FILE))
        .expect("shipped activation file");
    let exec = format!("Exec={} daemon", env!("CARGO_BIN_EXE_oathbridge"));
    let activation: String = shipped
        .lines()
        .map(|l| {
            if l.starts_with("Exec=") {
                exec.as_str()
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(services.join(SERVICE_FILE), activation + "\n").expect("write .service");
    let address = bed.start_dbus_with_services(&services);
    let plugins = bed.dir().join("home/.local/share/krunner/dbusplugins");
    std::fs::create_dir_all(&plugins).expect("mkdir dbusplugins");
    std::fs::copy(
        repo().join("desktop/oathbridge-krunner.desktop"),
        plugins.join("oathbridge.desktop"),
    )
    .expect("install the runner");

    // No completion from the history: "git" must stay "git" after "github" was run.
    std::fs::create_dir_all(bed.dir().join("home/.config")).expect("mkdir .config");
    std::fs::write(
        bed.dir().join("home/.config/krunnerrc"),
        "[General]\nHistoryEnabled=false\nRetainPriorSearch=false\nActivityAware=false\n",
    )
    .expect("write krunnerrc");

    let bus = Bus::connect(&bed);
    // What a Plasma session does at login: the display for activated services.
    let environment = HashMap::from([
        ("DISPLAY", xvfb.display.as_str()),
        ("OATHBRIDGE_LOG", "oathbridge=debug"),
        ("NO_COLOR", "1"),
        ("OATHBRIDGE_CLIPBOARD_CLEAR_AFTER_MS", "120000"),
    ]);
    block_on(bus.conn.call_method(
        Some("org.freedesktop.DBus"),
        "/org/freedesktop/DBus",
        Some("org.freedesktop.DBus"),
        "UpdateActivationEnvironment",
        &(environment,),
    ))
    .expect("UpdateActivationEnvironment");
    let monitor = Monitor::start(&address);
    assert_eq!(
        bus.owner_pid(BUS_NAME),
        None,
        "the daemon runs before KRunner"
    );

    let log = bed.dir().join("krunner.log");
    let mut cmd = Command::new(require_program("krunner", "plasma-workspace"));
    bed.apply_env(&mut cmd);
    cmd.env("DISPLAY", &xvfb.display)
        .env("QT_QPA_PLATFORM", "xcb")
        .env_remove("WAYLAND_DISPLAY")
        .arg("-d")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log).expect("krunner.log"))
        .stderr(
            std::fs::File::options()
                .append(true)
                .open(&log)
                .expect("krunner.log"),
        );
    let child = Guard(cmd.spawn().unwrap_or_else(|e| {
        panic!("KRunner test: cannot start krunner: {e}. Install it with:\n    {INSTALL}")
    }));
    let mut krunner = Krunner {
        bed: &bed,
        xvfb: &xvfb,
        bus: &bus,
        monitor: &monitor,
        child,
        field_height: u32::MAX,
    };
    let deadline = Instant::now() + KRUNNER_WAIT;
    while bus.owner_pid("org.kde.krunner").is_none() {
        if let Ok(Some(status)) = krunner.child.0.try_wait() {
            panic!(
                "KRunner test: krunner exited ({status}) before taking org.kde.krunner. \
                 Is it installed? {INSTALL}\n{}",
                bed.logs()
            );
        }
        assert!(
            Instant::now() < deadline,
            "KRunner test: krunner did not take org.kde.krunner within {KRUNNER_WAIT:?} \
             ({INSTALL})\n{}",
            bed.logs()
        );
        thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        bus.owner_pid(BUS_NAME),
        None,
        "KRunner loads its runners at the first query, not before"
    );

    // 1. The first query: KRunner loads the runner, whose Config call activates the daemon;
    //    Actions come before the first Match. "github" is an exact issuer: our row first,
    //    with the code in its subtext.
    let t0 = oathbridge::clock::unix_now();
    let rows = krunner.show("github");
    let t1 = oathbridge::clock::unix_now();
    let order: Vec<String> = monitor
        .runner_calls(0)
        .into_iter()
        .map(|(_, member, _)| member)
        .take(3)
        .collect();
    assert_eq!(
        order,
        ["Config", "Actions", "Match"],
        "the first session's calls"
    );
    let (_, actions_call, ()) = monitor.wait_call(0, "Actions", |_| Some(()));
    let actions: Vec<(String, String, String)> = monitor
        .wait_reply(&actions_call)
        .body()
        .deserialize()
        .expect("Actions a(sss)");
    assert_eq!(actions[0].0, "copy", "{actions:?}");
    let pid = bus
        .owner_pid(BUS_NAME)
        .unwrap_or_else(|| panic!("the daemon was not activated\n{}", bed.logs()));
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    assert!(
        String::from_utf8_lossy(&cmdline).contains("oathbridge"),
        "the name's owner is not our daemon"
    );
    assert_eq!(rows.len(), 1, "{rows:?}");
    let github = rows[0].clone();
    assert_eq!(github.1, "GitHub: alice@example.com");
    assert_eq!(
        (github.3, github.4),
        (100, 1.0),
        "exact issuer: ExactMatch, 1.0"
    );
    let subtext = prop_str(&github, "subtext");
    let (code, left) = subtext
        .split_once(" · ")
        .unwrap_or_else(|| panic!("subtext {subtext:?} is not `code · n s`"));
    assert!(
        rfc_codes(t0, t1).iter().any(|c| c == code),
        "subtext code {code} is not the RFC 6238 code"
    );
    let left: u64 = left
        .strip_suffix(" s")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("subtext {subtext:?}: no seconds left"));
    assert!((1..=30).contains(&left), "{subtext}");
    assert!(
        subtext.chars().count() <= 14,
        "subtext too long: {subtext:?}"
    );
    assert_eq!(prop_strings(&github, "actions"), ["copy"]);
    krunner.screenshots("github");

    // Shift+Enter runs the first action of the selected row: the copy action is there in
    // the very first session, just after the activation.
    let (id, mut action) = krunner.press_for_run("shift+Return");
    assert_eq!(id, github.0);
    if action.is_empty() {
        // KRunner 5.27 asks for a runner's actions asynchronously in its main thread while
        // the match thread calls Match; on a loaded machine the very first session's rows
        // can be built before that reply is read (our Actions reply was checked above), and
        // Shift+Enter then runs the default action, which copies too. KRunner keeps the
        // actions from then on: the next session must have them.
        eprintln!("KRunner built the first session's rows before reading Actions; again");
        let rows = krunner.show("github");
        assert_eq!(rows[0].0, github.0, "{rows:?}");
        (_, action) = krunner.press_for_run("shift+Return");
    }
    assert_eq!(action, "copy", "Shift+Enter on {}", github.1);
    let copied = wait_until(WAIT, "the code on the clipboard", || {
        let (ok, text) = xvfb.xclip(&bed, &["-o"]);
        (ok && !text.is_empty()).then_some(text)
    });
    let t2 = oathbridge::clock::unix_now();
    assert!(rfc_codes(t0, t2).contains(&copied), "clipboard {copied:?}");

    // 2. Enter on the first row of a new session: the code, offered as a secret.
    xvfb.copy(&bed, "something else");
    let t3 = oathbridge::clock::unix_now();
    let rows = krunner.show("github");
    assert_eq!(rows[0].1, "GitHub: alice@example.com");
    let (id, action) = krunner.press_for_run("Return");
    assert_eq!((id.as_str(), action.as_str()), (github.0.as_str(), ""));
    let copied = wait_until(WAIT, "Enter's code on the clipboard", || {
        let (ok, text) = xvfb.xclip(&bed, &["-o"]);
        (ok && text != "something else").then_some(text)
    });
    let t4 = oathbridge::clock::unix_now();
    assert!(rfc_codes(t3, t4).contains(&copied), "clipboard {copied:?}");
    let (_, targets) = xvfb.xclip(&bed, &["-o", "-t", "TARGETS"]);
    assert!(targets.lines().any(|t| t == HINT), "targets {targets:?}");
    assert_eq!(xvfb.xclip(&bed, &["-o", "-t", HINT]).1, "secret");

    // 3. A prefix: our rows are there (below "Run git"), ranked as possible matches.
    let rows = krunner.show("git");
    let texts: Vec<&str> = rows.iter().map(|r| r.1.as_str()).collect();
    assert_eq!(
        texts,
        ["GitHub: alice@example.com", "GitLab: bob"],
        "{rows:?}"
    );
    for row in &rows {
        assert_eq!(row.3, 30, "a prefix is a PossibleMatch: {row:?}");
        assert!(row.4 > 0.5 && row.4 < 0.9, "{row:?}");
        assert_eq!(prop_strings(row, "actions"), ["copy"]);
    }
    assert!(rows[0].4 > rows[1].4, "ties keep alphabetical order");
    assert_eq!(prop_str(&rows[1], "subtext"), "touch required");
    krunner.screenshots("git");
    krunner.press("Escape");

    // 4. Every row has the copy action, in later sessions too (touch and HOTP rows as well);
    //    an exact issuer or account name puts the row first.
    for (query, text, subtext) in [
        ("gitlab", "GitLab: bob", "touch required"),
        ("acme", "Acme: counter", "HOTP · Enter"),
        ("bob", "GitLab: bob", "touch required"),
    ] {
        let rows = krunner.show(query);
        let row = rows
            .iter()
            .find(|r| r.1 == text)
            .unwrap_or_else(|| panic!("no {text} row for {query}: {rows:?}"));
        assert_eq!((row.3, row.4), (100, 1.0), "{query} is exact: {row:?}");
        assert_eq!(prop_str(row, "subtext"), subtext);
        let (id, action) = krunner.press_for_run("shift+Return");
        assert_eq!(
            (id.as_str(), action.as_str()),
            (row.0.as_str(), "copy"),
            "Shift+Enter on {text}"
        );
    }
    let sessions = monitor
        .runner_calls(0)
        .iter()
        .filter(|(_, m, _)| m == "Actions")
        .count();
    assert!(sessions >= 6, "Actions asked once per session: {sessions}");
    drop(krunner);
    eprintln!("KRunner test took {:?}", started.elapsed());
}
