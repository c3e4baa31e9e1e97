//! The Nitrokey 3 Secrets App over CTAPHID (vendor command 0x70), end to end with the
//! real binary: the emulator is one card with a CCID side (vpcd, pcscd) and a HID side
//! (the HID bridge socket), like a real Nitrokey 3. While another program holds the CCID
//! side exclusively (as gpg's scdaemon does), every command goes through HID.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::TestBed;
use common::cli::{CliRun, run_command};
use common::hid::{HidEmulator, wait_socket};
use common::holder::Holder;

const B32_SHA1: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

#[test]
#[ignore = "helper process"]
fn hold_card_exclusively() {
    common::holder::hold_if_asked();
}

fn cli(bed: &TestBed, socket: &Path, args: &[&str], stdin: &str) -> CliRun {
    let socket = socket.display().to_string();
    let mut all = vec!["--direct", "--hid-socket", &socket];
    all.extend_from_slice(args);
    let mut command = bed.command(&all);
    command
        .env_remove(oathbridge::transport::hid::discovery::SOCKETS_ENV)
        // A held reader is given up on quickly (the default waits 2 s for it).
        .env("OATHBRIDGE_SHARED_WAIT_MS", "200");
    run_command(command, stdin)
}

fn ok(bed: &TestBed, socket: &Path, args: &[&str], stdin: &str) -> String {
    let run = cli(bed, socket, args, stdin);
    assert_eq!(run.code, 0, "{args:?}: {}\n{}", run.stderr, bed.logs());
    run.stdout
}

fn socket_in(bed: &TestBed, name: &str) -> PathBuf {
    bed.dir().join(name)
}

#[test]
fn secrets_app_over_ctaphid_while_ccid_is_held_by_another_program() {
    let mut bed = TestBed::start();
    let socket = socket_in(&bed, "nk3.sock");
    let address = format!("unix:{}", socket.display());
    let card = bed.attach_card(
        0,
        &[
            "--profile",
            "nitrokey",
            "--serial",
            "4242",
            "--hid",
            &address,
            "--touch-delay-ms",
            "300",
        ],
    );
    wait_socket(&socket);

    // Free CCID: the key is found on both transports and shown once.
    let devices = ok(&bed, &socket, &["devices"], "");
    assert_eq!(devices.lines().count(), 1, "{devices}");
    assert!(devices.contains("via ccid+hid"), "{devices}");
    assert!(devices.contains(card.reader()), "{devices}");
    let json = ok(&bed, &socket, &["--json", "devices"], "");
    assert!(
        json.contains("\"ccid\"") && json.contains("\"hid\""),
        "{json}"
    );

    let mut holder = Holder::start(&bed, card.reader());
    let devices = ok(&bed, &socket, &["devices"], "");
    assert_eq!(devices.lines().count(), 1, "{devices}");
    assert!(
        devices.contains("via hid") && devices.contains("Nitrokey 3"),
        "{devices}"
    );
    assert!(devices.contains("serial 4242"), "{devices}");

    ok(
        &bed,
        &socket,
        &["add", "Example:alice", "--from", "-"],
        B32_SHA1,
    );
    let list = ok(&bed, &socket, &["list"], "");
    assert!(list.contains("Example:alice"), "{list}");
    let codes = ok(&bed, &socket, &["code", "--at", "59"], "");
    assert!(
        codes.contains("Example:alice") && codes.contains("287082"),
        "{codes}"
    );
    assert_eq!(
        ok(
            &bed,
            &socket,
            &["code", "-s", "alice", "--at", "1111111109"],
            ""
        ),
        "081804\n"
    );

    // A touch account: the code comes once the (simulated) user touched the key.
    ok(
        &bed,
        &socket,
        &["add", "Touch:bob", "--touch", "--from", "-"],
        B32_SHA1,
    );
    let codes = ok(&bed, &socket, &["code", "--at", "59"], "");
    assert!(codes.contains("Touch:bob"), "{codes}");
    let touched = cli(&bed, &socket, &["code", "-s", "bob", "--at", "59"], "");
    assert_eq!(
        (touched.code, touched.stdout.as_str()),
        (0, "287082\n"),
        "{}",
        touched.stderr
    );
    assert!(
        touched.stderr.to_lowercase().contains("touch"),
        "{}",
        touched.stderr
    );

    let deleted = cli(&bed, &socket, &["delete", "alice", "--force"], "");
    assert_eq!(deleted.code, 0, "{}", deleted.stderr);
    assert!(
        deleted.stderr.contains("Touch your key"),
        "a Nitrokey's DELETE waits for a touch: say so first: {}",
        deleted.stderr
    );
    let list = ok(&bed, &socket, &["list"], "");
    assert!(
        !list.contains("alice") && list.contains("Touch:bob"),
        "{list}"
    );
    assert!(
        holder.is_holding(),
        "the other program kept the card all along"
    );

    // The same card over CCID once the other program let go: the HID writes are there.
    drop(holder);
    let list = cli(&bed, &socket, &["--reader", "Virtual PCD", "list"], "");
    assert_eq!(list.code, 0, "{}", list.stderr);
    assert!(list.stdout.contains("Touch:bob"), "{}", list.stdout);
}

#[test]
fn a_denied_touch_over_ctaphid_is_a_touch_timeout() {
    let bed = TestBed::start();
    let socket = socket_in(&bed, "deny.sock");
    let state = bed.dir().join("nk3-state.json");
    let state = state.display().to_string();
    // The Nitrokey asks for a touch to add a touch account: approve that one...
    let emulator = HidEmulator::start(&bed, &socket, &["--profile", "nitrokey", "--state", &state]);
    ok(
        &bed,
        &socket,
        &["add", "Touch:carol", "--touch", "--from", "-"],
        B32_SHA1,
    );
    drop(emulator);
    // ...then the same key again, with nobody touching it.
    let _emulator = HidEmulator::start(
        &bed,
        &socket,
        &[
            "--profile",
            "nitrokey",
            "--state",
            &state,
            "--touch",
            "deny",
            "--touch-timeout-ms",
            "800",
        ],
    );
    let started = Instant::now();
    let run = cli(&bed, &socket, &["code", "-s", "carol", "--at", "59"], "");
    let took = started.elapsed();
    assert_eq!(run.code, 7, "touch timeout exit code: {}", run.stderr);
    assert!(run.stderr.contains("touch"), "{}", run.stderr);
    assert!(
        took >= Duration::from_millis(800) && took < Duration::from_secs(10),
        "{took:?}"
    );
}

#[test]
fn identify_blinks_a_key_over_ctaphid() {
    let bed = TestBed::start();
    let socket = socket_in(&bed, "wink.sock");
    let _emulator = HidEmulator::start(
        &bed,
        &socket,
        &["--profile", "nitrokey", "--serial", "77", "-v"],
    );
    let json = ok(&bed, &socket, &["--json", "devices"], "");
    let devices: serde_json::Value = serde_json::from_str(&json).expect("devices JSON");
    let id = devices[0]["id"].as_str().expect("a device id").to_owned();
    let log = || std::fs::read_to_string(bed.dir().join("wink.log")).unwrap_or_default();
    assert!(!log().contains("CTAPHID WINK"), "{}", log());
    let run = cli(&bed, &socket, &["devices", "--identify", &id], "");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("showing itself"), "{}", run.stderr);
    assert!(
        log().contains("CTAPHID WINK"),
        "the emulator saw no WINK: {}",
        log()
    );
}
