//! KRunner `Run` against a real clipboard stack: a private Xvfb, the private pcscd/bus of the
//! test bed, an emulated card, the real daemon (with `DISPLAY` of that Xvfb), and `xclip` as a
//! second X client reading what the daemon offers: the code (RFC 6238), the
//! `x-kde-passwordManagerHint` = `secret` target that keeps clipboard managers from storing
//! it, and the clearing at expiry (shortened through `OATHBRIDGE_CLIPBOARD_CLEAR_AFTER_MS`)
//! unless another client copied something else meanwhile.

mod common;
mod daemon_common;

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::TestBed;
use common::proc::{output_with_timeout, stop_child};
use daemon_common::*;
use oathbridge::otp::{HashAlgorithm, totp};
use zbus::zvariant::{OwnedValue, Value};

const KRUNNER_PATH: &str = "/io/github/oathbridge/OathBridge1/KRunner";
const KRUNNER: &str = "org.kde.krunner1";
const HINT: &str = "x-kde-passwordManagerHint";
const INSTALL: &str = "apt-get install -y --no-install-recommends xvfb xclip \
     (or run `bash scripts/test.sh`, which installs everything and runs the tests)";

/// The program's path, or a panic naming the Debian package to install.
fn require(name: &str, package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/bin", "/bin"].iter().map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "clipboard tests: `{name}` (Debian package `{package}`) is missing. \
                 Install it with:\n    {INSTALL}"
            )
        })
}

/// A private X server on a free display (`-displayfd`: Xvfb picks it and tells us), stopped
/// on drop. It carries the bed's marker, so the bed's watchdog also ends it.
struct Xvfb {
    child: Child,
    display: String,
}

impl Xvfb {
    fn start(bed: &TestBed) -> Xvfb {
        let program = require("Xvfb", "xvfb");
        let log = bed.dir().join("xvfb.log");
        let mut cmd = Command::new(program);
        bed.apply_env(&mut cmd);
        cmd.args([
            "-displayfd",
            "1",
            "-nolisten",
            "tcp",
            "-screen",
            "0",
            "640x480x24",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).expect("create xvfb.log"));
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("clipboard tests: cannot start Xvfb: {e}"));
        let stdout = child.stdout.take().expect("Xvfb stdout");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let number = rx
            .recv_timeout(Duration::from_secs(10))
            .ok()
            .map(|line| line.trim().to_owned())
            .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        let Some(number) = number else {
            stop_child(&mut child, Duration::from_secs(2));
            panic!(
                "clipboard tests: Xvfb did not report a display within 10 s\n--- xvfb.log ---\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        };
        Xvfb {
            child,
            display: format!(":{number}"),
        }
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        stop_child(&mut self.child, Duration::from_secs(2));
    }
}

/// `xclip -selection clipboard <args>` as another X client of `xvfb` (bounded by 10 s):
/// (success, stdout).
fn xclip(bed: &TestBed, xvfb: &Xvfb, args: &[&str]) -> (bool, String) {
    let mut cmd = Command::new(require("xclip", "xclip"));
    bed.apply_env(&mut cmd);
    cmd.env("DISPLAY", &xvfb.display)
        .env_remove("WAYLAND_DISPLAY")
        .args(["-selection", "clipboard"])
        .args(args);
    let out = output_with_timeout(&mut cmd, Duration::from_secs(10))
        .unwrap_or_else(|| panic!("clipboard tests: xclip {args:?} did not finish within 10 s"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// `xclip -i`: another client takes the clipboard with `text`. xclip forks a server that
/// keeps the selection (until someone else takes it or Xvfb ends); its output goes nowhere,
/// so nothing waits for that server.
fn xclip_copy(bed: &TestBed, xvfb: &Xvfb, text: &str) {
    let mut cmd = Command::new(require("xclip", "xclip"));
    bed.apply_env(&mut cmd);
    cmd.env("DISPLAY", &xvfb.display)
        .env_remove("WAYLAND_DISPLAY")
        .args(["-selection", "clipboard", "-i"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().expect("start xclip -i");
    child
        .stdin
        .take()
        .expect("xclip stdin")
        .write_all(text.as_bytes())
        .expect("write to xclip");
    let status = child.wait().expect("wait for xclip -i");
    assert!(status.success(), "xclip -i failed: {status}");
    wait_until(WAIT, "xclip to own the clipboard", || {
        (xclip(bed, xvfb, &["-o"]).1 == text).then_some(())
    });
}

/// Bed, card with one RFC 6238 TOTP account, Xvfb, and the daemon on that display clearing
/// `clear_after_ms` after a copy. Returns the KRunner match id of the account.
fn stack(clear_after_ms: &str) -> (TestBed, Xvfb, Bus, Daemon, String) {
    let bed = TestBed::start();
    let xvfb = Xvfb::start(&bed);
    let (bed, bus, daemon, id) = daemon_with_account(
        bed,
        &[
            ("DISPLAY", xvfb.display.as_str()),
            ("OATHBRIDGE_CLIPBOARD_CLEAR_AFTER_MS", clear_after_ms),
        ],
        &["WAYLAND_DISPLAY"],
    );
    (bed, xvfb, bus, daemon, id)
}

/// Card with one RFC 6238 TOTP account, bus, and the daemon with `set`/`remove` applied to
/// its environment. Returns the KRunner match id of the account.
fn daemon_with_account(
    mut bed: TestBed,
    set: &[(&str, &str)],
    remove: &[&str],
) -> (TestBed, Bus, Daemon, String) {
    bed.attach_card(0, &[]);
    bed.start_dbus();
    let bus = Bus::connect(&bed);
    let mut daemon = Daemon::spawn_with_env(&bed, &[], set, remove);
    daemon.wait_owner(&bed, &bus);
    wait_until(WAIT, "one device object", || {
        (bus.devices().len() == 1).then_some(())
    });
    bus.add_account(
        &[(
            "uri",
            Value::from(format!("otpauth://totp/GitHub:alice?secret={B32_SHA1}")),
        )],
        &[],
    )
    .unwrap_or_else(|e| panic!("AddAccount: {e:?}\n{}", bed.logs()));
    let reply = bus
        .call(KRUNNER_PATH, KRUNNER, "Match", &("alice",))
        .unwrap_or_else(|e| panic!("KRunner Match: {e:?}"));
    type Match = (
        String,
        String,
        String,
        i32,
        f64,
        std::collections::HashMap<String, OwnedValue>,
    );
    let matches: Vec<Match> = reply.body().deserialize().expect("Match reply");
    assert_eq!(matches.len(), 1, "{matches:?}");
    let id = matches[0].0.clone();
    (bed, bus, daemon, id)
}

/// KRunner `Run` on `id`; returns the RFC 6238 codes of the time steps the call spanned.
fn run(bus: &Bus, id: &str) -> Vec<String> {
    let before = oathbridge::clock::unix_now();
    bus.call(KRUNNER_PATH, KRUNNER, "Run", &(id, ""))
        .unwrap_or_else(|e| panic!("KRunner Run: {e:?}"));
    let after = oathbridge::clock::unix_now();
    (before..=after)
        .map(|t| totp(HashAlgorithm::Sha1, SEED_SHA1, t, 30, 6))
        .collect()
}

fn wait_for_log(daemon: &Daemon, needle: &str) {
    wait_until(WAIT, &format!("{needle:?} in the daemon log"), || {
        daemon.log_text().contains(needle).then_some(())
    });
}

#[test]
fn run_offers_the_code_as_a_secret_and_clears_it_at_expiry() {
    let (bed, xvfb, bus, daemon, id) = stack("3000");
    let expected = run(&bus, &id);
    let copied = Instant::now();

    let (ok, targets) = xclip(&bed, &xvfb, &["-o", "-t", "TARGETS"]);
    assert!(
        ok,
        "nothing on the clipboard after Run\n{}",
        daemon.log_text()
    );
    assert!(
        targets.lines().any(|t| t == HINT),
        "the clipboard does not offer {HINT}: {targets:?}"
    );
    assert!(
        targets.lines().any(|t| t == "UTF8_STRING"),
        "no text target: {targets:?}"
    );
    assert_eq!(
        xclip(&bed, &xvfb, &["-o", "-t", HINT]),
        (true, "secret".to_owned())
    );
    let (ok, code) = xclip(&bed, &xvfb, &["-o"]);
    assert!(
        ok && expected.contains(&code),
        "clipboard {code:?}, RFC 6238 codes {expected:?}"
    );
    assert!(
        copied.elapsed() < Duration::from_millis(3000),
        "the checks took {:?}, longer than the clear delay: the machine is too slow for them",
        copied.elapsed()
    );

    // After the (shortened) expiry the clipboard is empty: no owner, nothing to paste.
    wait_for_log(&daemon, "expired code cleared from the clipboard");
    assert!(
        copied.elapsed() >= Duration::from_millis(2900),
        "cleared after {:?}, before the 3 s delay",
        copied.elapsed()
    );
    let (ok, left) = xclip(&bed, &xvfb, &["-o"]);
    assert!(!ok && left.is_empty(), "still on the clipboard: {left:?}");
    let (_, targets) = xclip(&bed, &xvfb, &["-o", "-t", "TARGETS"]);
    assert!(!targets.contains(HINT), "still offered: {targets:?}");
}

#[test]
fn a_clipboard_changed_since_is_left_alone() {
    let (bed, xvfb, bus, daemon, id) = stack("2000");
    let expected = run(&bus, &id);
    let copied = Instant::now();
    let (_, code) = xclip(&bed, &xvfb, &["-o"]);
    assert!(
        expected.contains(&code),
        "clipboard {code:?}, RFC 6238 codes {expected:?}"
    );

    xclip_copy(&bed, &xvfb, "something else");
    assert!(
        copied.elapsed() < Duration::from_millis(2000),
        "the copy took {:?}, longer than the clear delay: the machine is too slow for it",
        copied.elapsed()
    );
    wait_for_log(
        &daemon,
        "the clipboard changed since the code was copied; left alone",
    );
    assert_eq!(
        xclip(&bed, &xvfb, &["-o"]),
        (true, "something else".to_owned())
    );
    let (_, targets) = xclip(&bed, &xvfb, &["-o", "-t", "TARGETS"]);
    assert!(!targets.contains(HINT), "{targets:?}");

    // A second Run takes the clipboard back, and its own expiry clears it again.
    let expected = run(&bus, &id);
    let (_, code) = xclip(&bed, &xvfb, &["-o"]);
    assert!(
        expected.contains(&code),
        "clipboard {code:?}, RFC 6238 codes {expected:?}"
    );
    wait_for_log(&daemon, "expired code cleared from the clipboard");
    let (ok, left) = xclip(&bed, &xvfb, &["-o"]);
    assert!(!ok && left.is_empty(), "still on the clipboard: {left:?}");
}

#[test]
fn without_a_display_run_still_succeeds() {
    let (_bed, bus, daemon, id) =
        daemon_with_account(TestBed::start(), &[], &["DISPLAY", "WAYLAND_DISPLAY"]);
    run(&bus, &id);
    wait_for_log(&daemon, "no display: code not copied");
}
