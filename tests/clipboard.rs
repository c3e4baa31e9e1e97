//! KRunner `Run` against a real clipboard stack: a private Xvfb, the private pcscd/bus of the
//! test bed, an emulated card, the real daemon (with `DISPLAY` of that Xvfb), and `xclip` as a
//! second X client reading what the daemon offers: the code (RFC 6238), the
//! `x-kde-passwordManagerHint` = `secret` target that keeps clipboard managers from storing
//! it, and the clearing at expiry (shortened through `OATHBRIDGE_CLIPBOARD_CLEAR_AFTER_MS`)
//! unless another client copied something else meanwhile.

mod common;
mod daemon_common;

use std::time::{Duration, Instant};

use common::TestBed;
use common::x11::Xvfb;
use daemon_common::*;
use oathbridge::otp::{HashAlgorithm, totp};
use zbus::zvariant::{OwnedValue, Value};

const KRUNNER_PATH: &str = "/io/github/oathbridge/OathBridge1/KRunner";
const KRUNNER: &str = "org.kde.krunner1";
const HINT: &str = "x-kde-passwordManagerHint";

/// Bed, card with one RFC 6238 TOTP account, Xvfb, and the daemon on that display clearing
/// `clear_after_ms` after a copy. Returns the KRunner match id of the account.
fn stack(clear_after_ms: &str) -> (TestBed, Xvfb, Bus, Daemon, String) {
    let bed = TestBed::start();
    let xvfb = Xvfb::start(&bed, "640x480x24");
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

    let (ok, targets) = xvfb.xclip(&bed, &["-o", "-t", "TARGETS"]);
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
        xvfb.xclip(&bed, &["-o", "-t", HINT]),
        (true, "secret".to_owned())
    );
    let (ok, code) = xvfb.xclip(&bed, &["-o"]);
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
    let (ok, left) = xvfb.xclip(&bed, &["-o"]);
    assert!(!ok && left.is_empty(), "still on the clipboard: {left:?}");
    let (_, targets) = xvfb.xclip(&bed, &["-o", "-t", "TARGETS"]);
    assert!(!targets.contains(HINT), "still offered: {targets:?}");
}

#[test]
fn a_clipboard_changed_since_is_left_alone() {
    let (bed, xvfb, bus, daemon, id) = stack("2000");
    let expected = run(&bus, &id);
    let copied = Instant::now();
    let (_, code) = xvfb.xclip(&bed, &["-o"]);
    assert!(
        expected.contains(&code),
        "clipboard {code:?}, RFC 6238 codes {expected:?}"
    );

    xvfb.copy(&bed, "something else");
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
        xvfb.xclip(&bed, &["-o"]),
        (true, "something else".to_owned())
    );
    let (_, targets) = xvfb.xclip(&bed, &["-o", "-t", "TARGETS"]);
    assert!(!targets.contains(HINT), "{targets:?}");

    // A second Run takes the clipboard back, and its own expiry clears it again.
    let expected = run(&bus, &id);
    let (_, code) = xvfb.xclip(&bed, &["-o"]);
    assert!(
        expected.contains(&code),
        "clipboard {code:?}, RFC 6238 codes {expected:?}"
    );
    wait_for_log(&daemon, "expired code cleared from the clipboard");
    let (ok, left) = xvfb.xclip(&bed, &["-o"]);
    assert!(!ok && left.is_empty(), "still on the clipboard: {left:?}");
}

#[test]
fn without_a_display_run_still_succeeds() {
    let (_bed, bus, daemon, id) =
        daemon_with_account(TestBed::start(), &[], &["DISPLAY", "WAYLAND_DISPLAY"]);
    run(&bus, &id);
    wait_for_log(&daemon, "no display: code not copied");
}
