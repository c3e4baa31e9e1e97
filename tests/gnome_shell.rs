//! The real GNOME Shell 43 (Debian 12's `gnome-shell`), headless, searching our accounts.
//!
//! The test bed's private bus is the shell's session bus: on it run the real daemon (an
//! emulated card behind the bed's pcscd), the shell (`gnome-shell --headless
//! --virtual-monitor 1280x800 --wayland --no-x11`, private HOME/XDG dirs, our
//! search-provider `.ini` and `.desktop` on `XDG_DATA_DIRS`, a private system bus, memory
//! GSettings) and, activated by the bus, the shell's `org.gnome.Shell.Notifications` (gjs),
//! so the shell is the notification server. A test-only extension
//! (`tests/gnome-shell-extension/`) puts the shell in unsafe mode; `org.gnome.Shell.Eval`
//! then drives the overview like a user typing, and reads what `ui/search.js` holds: the
//! providers (`SearchResultsView._providers`), their result ids (`_results`) and the result
//! actors with their metas (`provider.display._resultDisplays[id].metaInfo`). Screenshots
//! go to `target/screenshots/gnome-*.png` and are kept.
//!
//! No gnome-shell (or it does not come up within 60 s): the test fails with the install
//! command; it never skips.

mod common;
mod daemon_common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::TestBed;
use common::proc::stop_child;
use daemon_common::*;
use oathbridge::otp::{HashAlgorithm, totp};
use serde_json::Value as Json;
use zbus::zvariant::Value;

const INSTALL: &str = "apt-get install -y --no-install-recommends gnome-shell gjs \
     (or run `bash scripts/test.sh`, which installs everything and runs the tests)";
const EXTENSION_UUID: &str = "oathbridge-test@oathbridge.github.io";
const PROVIDER_ID: &str = "io.github.oathbridge.OathBridge1.desktop";
const NOTIFICATIONS_SERVICE: &str =
    "/usr/share/dbus-1/services/org.gnome.Shell.Notifications.service";
/// The seconds ahead the daemon gives the shell its codes (`search_provider::MIN_VALIDITY`).
const AHEAD: u64 = oathbridge::daemon::search_provider::MIN_VALIDITY;
const SHELL_START: Duration = Duration::from_secs(60);
const SHELL_WAIT: Duration = Duration::from_secs(15);

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The program's path, or a panic with the install command (never a skip).
fn require(name: &str, package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/bin", "/bin"].iter().map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "gnome shell test: `{name}` (Debian package `{package}`) is missing. \
                 Install it with:\n    {INSTALL}"
            )
        })
}

/// The shell and its private system bus, stopped on drop (also on panic). Both carry the
/// bed's marker, so the bed's teardown and watchdog catch anything they leave behind.
struct Shell {
    child: Child,
    system_bus: Child,
    log: PathBuf,
}

impl Drop for Shell {
    fn drop(&mut self) {
        stop_child(&mut self.child, Duration::from_secs(5));
        stop_child(&mut self.system_bus, Duration::from_secs(2));
    }
}

impl Shell {
    fn log_text(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.log).unwrap_or_default()).into_owned()
    }
}

/// A dbus-daemon of type `system` on `DIR/system_bus.sock`: the shell wants a system bus
/// (logind, accounts, upower); nothing answers on it, which the shell tolerates.
fn start_system_bus(bed: &TestBed) -> (Child, String) {
    let sock = bed.dir().join("system_bus.sock");
    let address = format!("unix:path={}", sock.display());
    let config = bed.dir().join("system_bus.conf");
    std::fs::write(
        &config,
        format!(
            r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>{address}</listen>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#
        ),
    )
    .expect("write system_bus.conf");
    let log = std::fs::File::create(bed.dir().join("system-bus.log")).expect("system-bus.log");
    let mut cmd = Command::new(require("dbus-daemon", "dbus-daemon"));
    bed.apply_env(&mut cmd);
    cmd.arg(format!("--config-file={}", config.display()))
        .arg("--nofork")
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("dup log"))
        .stderr(log);
    let mut child = cmd.spawn().expect("start the system dbus-daemon");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !sock.exists() {
        if Instant::now() >= deadline || matches!(child.try_wait(), Ok(Some(_))) {
            stop_child(&mut child, Duration::from_secs(1));
            panic!(
                "gnome shell test: the private system bus did not come up\n{}",
                bed.logs()
            );
        }
        thread::sleep(Duration::from_millis(20));
    }
    (child, address)
}

/// Our `.desktop` and search-provider `.ini` under `DIR/share` (first on `XDG_DATA_DIRS`),
/// and the test extension under the bed's `XDG_DATA_HOME`.
fn install_files(bed: &TestBed) -> PathBuf {
    let share = bed.dir().join("share");
    let copies = [
        (
            "desktop/io.github.oathbridge.OathBridge1.desktop",
            share.join("applications"),
        ),
        (
            "dbus/io.github.oathbridge.OathBridge1.search-provider.ini",
            share.join("gnome-shell/search-providers"),
        ),
        (
            "tests/gnome-shell-extension/metadata.json",
            bed.dir()
                .join("home/.local/share/gnome-shell/extensions")
                .join(EXTENSION_UUID),
        ),
        (
            "tests/gnome-shell-extension/extension.js",
            bed.dir()
                .join("home/.local/share/gnome-shell/extensions")
                .join(EXTENSION_UUID),
        ),
    ];
    // The shell's one-time "Screen Lock disabled" banner (no GDM here) would cover the
    // search entry and queue our notification behind it: mark it as already shown.
    let user_data = bed.dir().join("home/.local/share/gnome-shell");
    std::fs::create_dir_all(&user_data).expect("create the shell's data dir");
    std::fs::write(user_data.join("lock-warning-shown"), b"").expect("lock-warning-shown");
    for (file, dir) in copies {
        std::fs::create_dir_all(&dir).expect("create data dir");
        let name = Path::new(file).file_name().expect("file name");
        std::fs::copy(repo().join(file), dir.join(name))
            .unwrap_or_else(|e| panic!("copy {file}: {e}"));
    }
    share
}

/// `org.gnome.Shell.Eval(js)`: the JSON value on success, the shell's message otherwise
/// (`Err("")` while the shell is not in unsafe mode).
fn eval(bus: &Bus, js: &str) -> Result<Json, String> {
    let conn = bus.conn.clone();
    let js = js.to_owned();
    let reply = block_on_for(
        Duration::from_secs(10),
        "org.gnome.Shell.Eval",
        async move {
            conn.call_method(
                Some("org.gnome.Shell"),
                "/org/gnome/Shell",
                Some("org.gnome.Shell"),
                "Eval",
                &(js,),
            )
            .await
        },
    )
    .map_err(|e| e.to_string())?;
    let (ok, json): (bool, String) = reply.body().deserialize().map_err(|e| e.to_string())?;
    match (ok, json.as_str()) {
        (false, _) => Err(json),
        (true, "") => Ok(Json::Null),
        (true, _) => serde_json::from_str(&json).map_err(|e| format!("{e}: {json}")),
    }
}

/// [`eval`] that must succeed.
fn run(bus: &Bus, shell: &Shell, js: &str) -> Json {
    eval(bus, js).unwrap_or_else(|e| {
        panic!(
            "gnome shell test: Eval failed: {e}\n--- js ---\n{js}\n--- gnome-shell.log ---\n{}",
            shell.log_text()
        )
    })
}

/// Polls `js` (every 100 ms, at most `timeout`) until it returns something other than null.
fn wait_eval(bus: &Bus, shell: &Shell, timeout: Duration, what: &str, js: &str) -> Json {
    let deadline = Instant::now() + timeout;
    loop {
        let value = run(bus, shell, js);
        if !value.is_null() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "gnome shell test: no {what} within {timeout:?}\n--- gnome-shell.log ---\n{}",
            shell.log_text()
        );
        thread::sleep(Duration::from_millis(100));
    }
}

/// Starts the shell on the bed's bus and waits (60 s at most) until the test extension is
/// enabled and `Eval` answers.
fn start_shell(bed: &TestBed, bus: &Bus) -> Shell {
    let program = require("gnome-shell", "gnome-shell");
    let share = install_files(bed);
    let (system_bus, system_address) = start_system_bus(bed);
    let log = bed.dir().join("gnome-shell.log");
    let file = std::fs::File::create(&log).expect("gnome-shell.log");
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_oathbridge"))
        .parent()
        .expect("binary dir")
        .to_path_buf();
    // The .desktop's `Exec=oathbridge …` must resolve, or GLib refuses to load it.
    let path = std::env::join_paths(std::iter::once(bin_dir).chain(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    )))
    .expect("PATH");
    let mut cmd = Command::new(program);
    bed.apply_env(&mut cmd);
    cmd.env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .env("PATH", path)
        .env(
            "XDG_DATA_DIRS",
            format!("{}:/usr/local/share:/usr/share", share.display()),
        )
        .env("DBUS_SYSTEM_BUS_ADDRESS", &system_address)
        .env("GSETTINGS_BACKEND", "memory")
        .env("XDG_CURRENT_DESKTOP", "GNOME")
        .args([
            "--headless",
            "--virtual-monitor",
            "1280x800",
            "--wayland",
            "--no-x11",
        ])
        .stdin(Stdio::null())
        .stdout(file.try_clone().expect("dup log"))
        .stderr(file);
    let child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("gnome shell test: cannot start gnome-shell: {e}\n{INSTALL}"));
    let mut shell = Shell {
        child,
        system_bus,
        log,
    };

    let deadline = Instant::now() + SHELL_START;
    let mut last: String;
    loop {
        if let Ok(Some(status)) = shell.child.try_wait() {
            panic!(
                "gnome shell test: gnome-shell exited ({status}) before it answered.\n\
                 Is it installed and able to run headless? {INSTALL}\n\
                 --- gnome-shell.log ---\n{}",
                shell.log_text()
            );
        }
        let conn = bus.conn.clone();
        let enabled = block_on_for(Duration::from_secs(10), "EnableExtension", async move {
            conn.call_method(
                Some("org.gnome.Shell"),
                "/org/gnome/Shell",
                Some("org.gnome.Shell.Extensions"),
                "EnableExtension",
                &(EXTENSION_UUID,),
            )
            .await
        });
        match enabled {
            Ok(_) => match eval(bus, "1 + 1") {
                Ok(value) if value == 2 => return shell,
                Ok(other) => last = format!("Eval said {other}"),
                Err(e) => last = format!("Eval refused ({e:?}): not in unsafe mode yet"),
            },
            Err(e) => last = format!("EnableExtension: {e}"),
        }
        assert!(
            Instant::now() < deadline,
            "gnome shell test: gnome-shell did not answer Eval within {SHELL_START:?} (last: \
             {last}).\nInstall hint: {INSTALL}\n--- gnome-shell.log ---\n{}",
            shell.log_text()
        );
        thread::sleep(Duration::from_millis(250));
    }
}

/// `org.gnome.Shell.Screenshot.Screenshot` (whole screen) or `ScreenshotArea` into `path`.
fn screenshot(bus: &Bus, shell: &Shell, path: &Path, area: Option<[i32; 4]>) {
    let conn = bus.conn.clone();
    let file = path.display().to_string();
    let reply = block_on_for(Duration::from_secs(20), "Screenshot", async move {
        let (destination, path, interface) = (
            Some("org.gnome.Shell.Screenshot"),
            "/org/gnome/Shell/Screenshot",
            Some("org.gnome.Shell.Screenshot"),
        );
        match area {
            None => {
                conn.call_method(
                    destination,
                    path,
                    interface,
                    "Screenshot",
                    &(false, false, file),
                )
                .await
            }
            Some([x, y, w, h]) => {
                conn.call_method(
                    destination,
                    path,
                    interface,
                    "ScreenshotArea",
                    &(x, y, w, h, false, file),
                )
                .await
            }
        }
    })
    .unwrap_or_else(|e| {
        panic!(
            "gnome shell test: screenshot failed: {e}\n{}",
            shell.log_text()
        )
    });
    let (ok, used): (bool, String) = reply.body().deserialize().expect("(bs) reply");
    assert!(
        ok,
        "gnome shell test: the shell did not take the screenshot {used}"
    );
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    assert!(size > 0, "screenshot {} is empty", path.display());
    eprintln!("gnome shell test: screenshot {}", path.display());
}

/// Drops every notification that is not ours (the shell's own system notifications), so
/// no banner covers the overview or queues ours behind it in a screenshot.
fn drop_foreign_notifications(bus: &Bus, shell: &Shell) {
    run(
        bus,
        shell,
        "(() => {
            for (const source of Main.messageTray.getSources()) {
                for (const n of source.notifications.slice()) {
                    if (source.title !== 'oathbridge') n.destroy();
                }
            }
            return true;
        })()",
    );
    wait_eval(
        bus,
        shell,
        SHELL_WAIT,
        "no foreign banner",
        "(() => { const n = Main.messageTray._notification;
            return !n || n.source.title === 'oathbridge' ? true : null; })()",
    );
}

/// The overview's search view and our provider, as JS (used inside the probes below).
const VIEW: &str =
    "const view = Main.overview._overview._controls._searchController._searchResults;";

/// Types `text` into the overview's search entry (the overview opened first) and waits until
/// our provider shows `count` results; returns their rows (meta and the actors' labels).
fn search(bus: &Bus, shell: &Shell, text: &str, count: usize) -> Vec<Json> {
    run(bus, shell, "Main.overview.show(); true");
    wait_eval(
        bus,
        shell,
        SHELL_WAIT,
        "overview shown",
        "Main.overview.visible && !Main.overview.animationInProgress ? true : null",
    );
    run(
        bus,
        shell,
        &format!(
            "Main.overview.searchEntry.set_text({}); true",
            Json::from(text)
        ),
    );
    let rows = wait_eval(
        bus,
        shell,
        SHELL_WAIT,
        &format!("{count} results of our provider for {text:?}"),
        &format!(
            "(() => {{ {VIEW}
            const p = view._providers.find(p => p.id === '{PROVIDER_ID}');
            if (!p || view.searchInProgress || !p.display.visible) return null;
            const ids = view._results[p.id] || [];
            const shown = p.display._content.get_children();
            if (ids.length !== {count} || shown.length !== {count}) return null;
            if (!shown.every(d => d.mapped)) return null;
            return shown.map(d => ({{
                id: d.metaInfo.id,
                name: d.metaInfo.name,
                description: d.metaInfo.description,
                clipboardText: d.metaInfo.clipboardText ?? null,
                titleLabel: d.label_actor.text,
                descriptionLabel: d._descriptionLabel ? d._descriptionLabel.text : null,
            }}));
            }})()"
        ),
    );
    rows.as_array().expect("rows").clone()
}

fn field<'a>(row: &'a Json, key: &str) -> &'a str {
    row.get(key)
        .and_then(Json::as_str)
        .unwrap_or_else(|| panic!("no string {key:?} in {row}"))
}

fn row<'a>(rows: &'a [Json], title: &str) -> &'a Json {
    rows.iter()
        .find(|r| r.get("name").and_then(Json::as_str) == Some(title))
        .unwrap_or_else(|| panic!("no result titled {title:?} in {rows:#?}"))
}

/// RFC 6238 SHA-1 codes (6 digits) of the seed the accounts use, at each of `times`.
fn rfc_codes(times: &[u64]) -> Vec<String> {
    times
        .iter()
        .map(|t| totp(HashAlgorithm::Sha1, SEED_SHA1, *t, 30, 6))
        .collect()
}

#[test]
fn gnome_shell_overview_shows_codes_from_the_key() {
    let started = Instant::now();
    let gjs = require("gjs", "gjs");
    assert!(
        Path::new(NOTIFICATIONS_SERVICE).exists(),
        "gnome shell test: {NOTIFICATIONS_SERVICE} (gnome-shell) is missing.\n{INSTALL}"
    );
    let mut bed = TestBed::start();
    // The shell's notification service (gjs), activatable on the bed's bus like on a desktop.
    let services = bed.dir().join("services");
    std::fs::create_dir_all(&services).expect("services dir");
    let service = std::fs::read_to_string(NOTIFICATIONS_SERVICE)
        .expect("read the notifications service file")
        .replace("/usr/bin/gjs", &gjs.display().to_string());
    std::fs::write(
        services.join("org.gnome.Shell.Notifications.service"),
        service,
    )
    .expect("write the notifications service file");
    bed.start_dbus_with_services(&services);
    let bus = Bus::connect(&bed);
    bed.attach_card(0, &["--touch", "approve", "--touch-delay-ms", "300"]);
    let _daemon = Daemon::start_with_devices(&bed, &bus, &[], 1);
    for (uri, touch) in [
        (
            format!("otpauth://totp/GitHub:alice@example.com?secret={B32_SHA1}"),
            false,
        ),
        (format!("otpauth://totp/GitLab:bob?secret={B32_SHA1}"), true),
    ] {
        bus.add_account(
            &[("uri", Value::from(uri)), ("touch", Value::from(touch))],
            &[],
        )
        .unwrap_or_else(|e| panic!("AddAccount: {e:?}"));
    }
    let device_name = bus.str_property(&bus.devices()[0], DEVICE, "Name");

    let shell = start_shell(&bed, &bus);
    let up = started.elapsed();
    // Forget the shell's own "unsafe mode" banner; record every notification from now on.
    run(
        &bus,
        &shell,
        "(() => {
            global._oathbridgeNotes = [];
            const record = (source, n) => global._oathbridgeNotes.push({
                source: source.title, title: n.title, body: n.bannerBodyText,
                transient: n.isTransient });
            const watch = source => source.connect('notification-added', record);
            for (const source of Main.messageTray.getSources()) {
                for (const n of source.notifications.slice()) n.destroy();
                watch(source);
            }
            Main.messageTray.connect('source-added', (tray, source) => watch(source));
            return true;
        })()",
    );

    // Discovered from the .ini: a remote provider for our bus name and object path.
    let providers = run(
        &bus,
        &shell,
        &format!(
            "(() => {{ {VIEW} return view._providers.map(p => ({{
                id: p.id, remote: !!p.isRemoteProvider,
                app: p.appInfo ? p.appInfo.get_name() : null,
                bus: p.proxy ? p.proxy.g_name : null,
                path: p.proxy ? p.proxy.g_object_path : null }})); }})()"
        ),
    );
    let ours = providers
        .as_array()
        .and_then(|all| {
            all.iter()
                .find(|p| p.get("id").and_then(Json::as_str) == Some(PROVIDER_ID))
        })
        .unwrap_or_else(|| panic!("our provider was not loaded from the .ini: {providers}"));
    assert_eq!(ours["remote"], true, "{ours}");
    assert_eq!(ours["app"], "OATH Codes", "{ours}");
    assert_eq!(ours["bus"], BUS_NAME, "{ours}");
    assert_eq!(
        ours["path"], "/io/github/oathbridge/OathBridge1/SearchProvider",
        "{ours}"
    );

    // Typing "git": both accounts, texts as the overview shows them.
    let before = oathbridge::clock::unix_now();
    let rows = search(&bus, &shell, "git", 2);
    let after = oathbridge::clock::unix_now();
    let github = row(&rows, "GitHub");
    let gitlab = row(&rows, "GitLab");
    for r in [github, gitlab] {
        assert_eq!(field(r, "titleLabel"), field(r, "name"), "title label: {r}");
        assert_eq!(
            field(r, "descriptionLabel"),
            field(r, "description"),
            "description label: {r}"
        );
        assert!(
            !field(r, "description").contains(&device_name),
            "one key: no key name in {r}"
        );
    }
    let code = field(github, "clipboardText").to_owned();
    let expected = rfc_codes(&[before + AHEAD, after + AHEAD]);
    assert!(
        expected.contains(&code),
        "clipboardText {code} is not the RFC 6238 code valid {AHEAD} s after the search \
         ({expected:?})"
    );
    let description = field(github, "description");
    let parts: Vec<&str> = description.split(" · ").collect();
    assert_eq!(parts.len(), 3, "code · name · time: {description}");
    assert_eq!(
        parts[0],
        format!("{} {}", &code[..3], &code[3..]),
        "{description}"
    );
    assert_eq!(parts[1], "alice@example.com", "{description}");
    let seconds: u64 = parts[2]
        .strip_suffix(" s left")
        .or_else(|| {
            parts[2]
                .strip_prefix("next code, valid in ")
                .and_then(|s| s.strip_suffix(" s"))
        })
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no time in {description}"));
    assert!(seconds <= 30, "{description}");
    if parts[2].ends_with(" s left") {
        assert!(
            seconds >= AHEAD - 1,
            "a code about to expire was handed out: {description}"
        );
    }
    assert_eq!(field(gitlab, "description"), "bob · touch required");
    assert!(
        gitlab["clipboardText"].is_null(),
        "touch accounts get no code: {gitlab}"
    );
    // A narrower search keeps only GitHub.
    let narrowed = search(&bus, &shell, "github", 1);
    assert_eq!(field(&narrowed[0], "name"), "GitHub");
    let all = search(&bus, &shell, "git", 2);
    assert_eq!(all.len(), 2);

    let shots = common::screenshot_dir();
    drop_foreign_notifications(&bus, &shell);
    screenshot(&bus, &shell, &shots.join("gnome-overview.png"), None);
    // The search entry and our results, for the README.
    let area = run(
        &bus,
        &shell,
        &format!(
            "(() => {{ {VIEW}
            const p = view._providers.find(p => p.id === '{PROVIDER_ID}');
            const box = a => {{ const [x, y] = a.get_transformed_position();
                const [w, h] = a.get_transformed_size(); return [x, y, x + w, y + h]; }};
            const e = box(Main.overview.searchEntry), r = box(p.display);
            const x1 = Math.max(0, Math.min(e[0], r[0]) - 16), y1 = Math.max(0, e[1] - 16);
            const x2 = Math.min(global.screen_width, Math.max(e[2], r[2]) + 16);
            const y2 = Math.min(global.screen_height, r[3] + 16);
            return [x1, y1, x2 - x1, y2 - y1].map(Math.round); }})()"
        ),
    );
    let area: Vec<i32> = serde_json::from_value(area).expect("area");
    screenshot(
        &bus,
        &shell,
        &shots.join("gnome-search.png"),
        Some([area[0], area[1], area[2], area[3]]),
    );

    // Enter on GitHub: the shell copies clipboardText and closes the overview.
    run(
        &bus,
        &shell,
        &format!(
            "(() => {{ {VIEW}
            const p = view._providers.find(p => p.id === '{PROVIDER_ID}');
            const d = p.display._content.get_children().find(d => d.metaInfo.name === 'GitHub');
            d.activate();
            imports.gi.St.Clipboard.get_default().get_text(imports.gi.St.ClipboardType.CLIPBOARD,
                (clipboard, text) => {{ global._oathbridgeClipboard = text; }});
            return true; }})()"
        ),
    );
    let copied = wait_eval(
        &bus,
        &shell,
        SHELL_WAIT,
        "the clipboard text",
        "global._oathbridgeClipboard ?? null",
    );
    assert_eq!(copied, code, "the shell copied something else");
    wait_eval(
        &bus,
        &shell,
        SHELL_WAIT,
        "the overview closed",
        "!Main.overview.visible && !Main.overview.animationInProgress ? true : null",
    );

    // Enter on GitLab (touch): the key is asked, the shell shows our notification.
    let rows = search(&bus, &shell, "git", 2);
    assert!(row(&rows, "GitLab")["clipboardText"].is_null());
    let before = oathbridge::clock::unix_now();
    run(
        &bus,
        &shell,
        &format!(
            "(() => {{ {VIEW}
            const p = view._providers.find(p => p.id === '{PROVIDER_ID}');
            p.display._content.get_children().find(d => d.metaInfo.name === 'GitLab').activate();
            return true; }})()"
        ),
    );
    let note = wait_eval(
        &bus,
        &shell,
        SHELL_WAIT,
        "the code notification",
        "global._oathbridgeNotes.find(n => n.title === 'GitLab: bob') ?? null",
    );
    let after = oathbridge::clock::unix_now();
    let body = field(&note, "body");
    let shown = body
        .split(" · ")
        .next()
        .unwrap_or_default()
        .replace(' ', "");
    let expected = rfc_codes(&[before + AHEAD, after + AHEAD]);
    assert!(
        expected.contains(&shown),
        "notification {body:?}: not the RFC code ({expected:?})"
    );
    assert!(
        body.ends_with(" s left") || body.contains("next code"),
        "the notification says how long the code lasts: {body:?}"
    );
    assert_eq!(note["transient"], true, "kept out of the history: {note}");
    assert_eq!(note["source"], "oathbridge", "{note}");
    let notes = run(&bus, &shell, "global._oathbridgeNotes");
    assert!(
        notes
            .as_array()
            .is_some_and(|all| all.iter().any(|n| n["title"] == "Touch your key")),
        "the touch prompt went through the shell too: {notes}"
    );
    drop_foreign_notifications(&bus, &shell);
    wait_eval(
        &bus,
        &shell,
        SHELL_WAIT,
        "our banner on screen",
        "(() => { const n = Main.messageTray._notification;
            return n && n.title === 'GitLab: bob' && Main.messageTray._notificationState === 2
                ? true : null; })()",
    );
    screenshot(
        &bus,
        &shell,
        &shots.join("gnome-touch-notification.png"),
        None,
    );
    eprintln!(
        "gnome shell test: shell up after {up:?}, done after {:?}",
        started.elapsed()
    );
}
