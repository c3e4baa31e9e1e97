//! Remembered passwords in a real Secret Service (gnome-keyring on the test bus): the CLI
//! stores the derived key, later commands unlock silently, a stale key is dropped.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::TestBed;
use common::cli::{CliRun, run_cli, run_command};
use common::keyring::start_keyring;

const RFC_SHA1: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

fn run_with(command: Command, stdin: &str) -> CliRun {
    run_command(command, stdin)
}

fn run(bed: &TestBed, args: &[&str], stdin: &str) -> CliRun {
    run_cli(bed, args, stdin)
}

#[test]
fn remembered_keys_unlock_silently_and_stale_ones_are_dropped() {
    let mut bed = TestBed::start();
    let reader = bed.reader(0);
    bed.attach_card(0, &[]);
    bed.start_dbus();
    start_keyring(&bed);
    let on_key = |args: &[&str]| {
        let mut full = vec!["--reader", reader.as_str()];
        full.extend_from_slice(args);
        full.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    let call = |args: &[&str], stdin: &str| {
        let full = on_key(args);
        let refs: Vec<&str> = full.iter().map(String::as_str).collect();
        run(&bed, &refs, stdin)
    };

    assert_eq!(call(&["add", "acct", "--from", "-"], RFC_SHA1).code, 0);
    assert_eq!(call(&["password", "set"], "pw\n").code, 0);
    assert_eq!(
        call(&["code", "-s", "acct"], "").code,
        6,
        "locked without a terminal"
    );

    let remembered = call(&["password", "unlock", "--remember"], "pw\n");
    assert_eq!(remembered.code, 0, "{}", remembered.stderr);
    assert!(
        remembered.stderr.contains("Remembered"),
        "{}",
        remembered.stderr
    );
    let silent = call(&["code", "-s", "acct", "--at", "59"], "");
    assert_eq!(
        (silent.code, silent.stdout.as_str()),
        (0, "287082\n"),
        "{}",
        silent.stderr
    );

    // Change the password where the store cannot be reached: the remembered key goes stale.
    let full = on_key(&["password", "set"]);
    let mut command = bed.command(&full.iter().map(String::as_str).collect::<Vec<_>>());
    command.env_remove("DBUS_SESSION_BUS_ADDRESS");
    assert_eq!(run_with(command, "pw\nnew\n").code, 0);
    let stale = call(&["code", "-s", "acct"], "");
    assert_eq!(stale.code, 6, "{}", stale.stderr);
    assert!(
        stale.stderr.contains("no longer works; forgot it"),
        "{}",
        stale.stderr
    );
    let again = call(&["code", "-s", "acct"], "");
    assert_eq!(again.code, 6);
    assert!(
        !again.stderr.contains("no longer works"),
        "dropped once: {}",
        again.stderr
    );

    // Remember the new one, then forget it.
    assert_eq!(call(&["password", "unlock", "--remember"], "new\n").code, 0);
    assert_eq!(
        call(&["code", "-s", "acct", "--at", "59"], "").stdout,
        "287082\n"
    );
    let forgot = call(&["password", "forget"], "");
    assert_eq!(forgot.code, 0, "{}", forgot.stderr);
    assert_eq!(call(&["code", "-s", "acct"], "").code, 6, "forgotten");

    // `password set --remember` stores the new key; a plain `password set` drops it (it
    // would be stale), so no "no longer works" note follows.
    let set = call(&["password", "set", "--remember"], "new\nthird\n");
    assert_eq!(set.code, 0, "{}", set.stderr);
    assert_eq!(
        call(&["code", "-s", "acct", "--at", "59"], "").stdout,
        "287082\n"
    );
    assert_eq!(call(&["password", "set"], "third\nfourth\n").code, 0);
    let dropped = call(&["code", "-s", "acct"], "");
    assert_eq!(dropped.code, 6, "{}", dropped.stderr);
    assert!(
        !dropped.stderr.contains("no longer works"),
        "{}",
        dropped.stderr
    );
}

#[test]
fn without_a_secret_service_remember_fails_plainly() {
    let mut bed = TestBed::start();
    let reader = bed.reader(0);
    bed.attach_card(0, &[]);
    bed.start_dbus(); // a bus, but nobody owns org.freedesktop.secrets
    assert_eq!(
        run(&bed, &["--reader", &reader, "password", "set"], "pw\n").code,
        0
    );
    let result = run(
        &bed,
        &["--reader", &reader, "password", "unlock", "--remember"],
        "pw\n",
    );
    assert_eq!(result.code, 1, "{}", result.stderr);
    assert!(
        result.stderr.contains("no Secret Service"),
        "{}",
        result.stderr
    );
    assert_eq!(result.stderr.trim().lines().count(), 1, "{}", result.stderr);
    // `set --remember` checks for the store first: the password stays as it was.
    let set = run(
        &bed,
        &["--reader", &reader, "password", "set", "--remember"],
        "pw\nother\n",
    );
    assert_eq!(set.code, 1, "{}", set.stderr);
    assert!(set.stderr.contains("no Secret Service"), "{}", set.stderr);
    assert_eq!(
        run(&bed, &["--reader", &reader, "password", "unlock"], "pw\n").code,
        0
    );
    let forget = run(&bed, &["--reader", &reader, "password", "forget"], "");
    assert_eq!(forget.code, 1, "{}", forget.stderr);
}

/// The daemon child, stopped when dropped (also on panic).
struct Daemon(std::process::Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_daemon(bed: &TestBed, state: &std::path::Path) -> Daemon {
    let mut command = bed.command(&["daemon", "--no-pcsc", "--virtual-key"]);
    command
        .arg(state)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let daemon = Daemon(command.spawn().expect("spawn daemon"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while run(bed, &["devices"], "").code != 0 {
        assert!(
            Instant::now() < deadline,
            "daemon did not serve its virtual key"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    daemon
}

#[test]
fn the_daemon_unlocks_a_remembered_key_after_a_restart() {
    let mut bed = TestBed::start();
    bed.start_dbus();
    start_keyring(&bed);
    let state = bed.dir().join("virtual-key.json");
    let daemon = start_daemon(&bed, &state);
    assert_eq!(run(&bed, &["add", "acct", "--from", "-"], RFC_SHA1).code, 0);
    let set = run(&bed, &["password", "set", "--remember"], "pw\n");
    assert_eq!(set.code, 0, "{}", set.stderr);
    drop(daemon);
    let _daemon = start_daemon(&bed, &state);
    // No terminal, no password given: the daemon unlocked the key from the Secret Service.
    let code = run(&bed, &["code", "-s", "acct", "--at", "59"], "");
    assert_eq!(
        (code.code, code.stdout.as_str()),
        (0, "287082\n"),
        "{}",
        code.stderr
    );
    let direct = run(&bed, &["--direct", "devices"], "");
    assert_eq!(
        direct.code, 5,
        "the virtual key lives in the daemon only: {}",
        direct.stderr
    );
}
