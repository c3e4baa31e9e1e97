//! The CLI through the daemon gives the same output and exit codes as the CLI talking to
//! the keys directly: both modes run against the same emulated cards behind the same pcscd.

mod common;
mod daemon_common;

use std::io::Write;
use std::process::Stdio;

use common::TestBed;
use common::cli::{CliRun, run_cli};
use daemon_common::{Bus, Daemon};

const RFC_SHA1: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

fn run(bed: &TestBed, args: &[&str], stdin: &str) -> CliRun {
    run_cli(bed, args, stdin)
}

/// Run `args` through the daemon and with `--direct`; both must agree.
fn same(bed: &TestBed, args: &[&str]) -> CliRun {
    let via_daemon = run(bed, args, "");
    let mut direct_args = vec!["--direct"];
    direct_args.extend_from_slice(args);
    let direct = run(bed, &direct_args, "");
    assert_eq!(
        (via_daemon.code, &via_daemon.stdout),
        (direct.code, &direct.stdout),
        "{args:?}: daemon stderr {:?}, direct stderr {:?}",
        via_daemon.stderr,
        direct.stderr
    );
    assert_eq!(via_daemon.stderr, direct.stderr, "{args:?}");
    via_daemon
}

fn ok(bed: &TestBed, args: &[&str], stdin: &str) -> String {
    let result = run(bed, args, stdin);
    assert_eq!(
        result.code,
        0,
        "{args:?}: {}\n{}",
        result.stderr,
        bed.logs()
    );
    result.stdout
}

#[test]
fn both_modes_print_the_same() {
    let mut bed = TestBed::start();
    bed.attach_card(0, &["--profile", "yubikey"]);
    bed.attach_card(1, &["--profile", "nitrokey"]);
    bed.start_dbus();
    let bus = Bus::connect(&bed);
    let _daemon = Daemon::start_with_devices(&bed, &bus, &[], 2);

    // Writes through the daemon, one per key.
    ok(
        &bed,
        &[
            "--reader",
            "00 00",
            "add",
            "GitHub:alice",
            "--digits",
            "8",
            "--from",
            "-",
        ],
        RFC_SHA1,
    );
    ok(
        &bed,
        &["--reader", "00 01", "add", "--from", "-"],
        &format!("otpauth://totp/GitLab:bob?secret={RFC_SHA1}&period=60"),
    );
    ok(
        &bed,
        &[
            "--reader",
            "00 00",
            "add",
            "Bank:hotp",
            "--type",
            "hotp",
            "--from",
            "-",
        ],
        RFC_SHA1,
    );

    let devices = same(&bed, &["--json", "devices"]);
    assert!(devices.stdout.contains("\"used\": 2"), "{}", devices.stdout);
    same(&bed, &["list"]);
    same(&bed, &["--json", "list"]);
    let codes = same(&bed, &["--json", "code", "--at", "59"]);
    assert!(codes.stdout.contains("94287082"), "{}", codes.stdout);
    same(&bed, &["code", "--at", "59"]);
    assert_eq!(
        same(&bed, &["code", "-s", "alice", "--at", "59"]).stdout,
        "94287082\n"
    );
    let two = same(&bed, &["code", "-s", "alice", "--count", "2", "--at", "59"]);
    assert_eq!(
        two.stdout,
        "94287082\n07081804\n".replace(
            "07081804",
            &oathbridge::otp::totp(
                oathbridge::otp::HashAlgorithm::Sha1,
                b"12345678901234567890",
                89,
                30,
                8,
            )
        )
    );
    same(&bed, &["code", "-s", "GitLab", "--at", "119"]);
    assert_eq!(same(&bed, &["code", "-s", "nothing"]).code, 3);
    assert_eq!(same(&bed, &["code", "-s", "b", "--at", "59"]).code, 4);
    assert_eq!(same(&bed, &["add", "x", "--from", "/dev/null"]).code, 2);

    // Rename and delete through the daemon; the direct view agrees afterwards.
    ok(&bed, &["rename", "GitHub:alice", "GitHub:carol"], "");
    assert!(same(&bed, &["list"]).stdout.contains("GitHub:carol"));
    ok(&bed, &["delete", "--force", "GitHub:carol"], "");
    assert!(!same(&bed, &["list"]).stdout.contains("carol"));

    // A password set behind the daemon's back: locked in both modes without a terminal;
    // an unlock through the daemon is kept in its memory, direct mode has none.
    ok(
        &bed,
        &["--direct", "--reader", "00 00", "password", "set"],
        "pw\n",
    );
    // At a time step the daemon has not cached: a cached step (the listings and the delete
    // above read the key's codes) is served until it ends, as for any other write behind
    // the daemon's back.
    let locked = same(&bed, &["--reader", "00 00", "code", "--at", "1900000000"]);
    assert_eq!(locked.code, 6, "{}", locked.stderr);
    ok(&bed, &["--reader", "00 00", "password", "unlock"], "pw\n");
    let unlocked = run(&bed, &["--reader", "00 00", "code", "-s", "Bank:hotp"], "");
    assert_eq!(
        unlocked.code, 0,
        "daemon keeps the unlock in memory: {}",
        unlocked.stderr
    );
    assert_eq!(unlocked.stdout, "755224\n");
    let direct = run(&bed, &["--direct", "--reader", "00 00", "code"], "");
    assert_eq!(
        direct.code, 6,
        "direct mode has no memory: {}",
        direct.stderr
    );
    ok(
        &bed,
        &["--direct", "--reader", "00 00", "password", "clear"],
        "pw\n",
    );
    same(&bed, &["--reader", "00 00", "list"]);

    // No password: clear and unlock fail alike.
    assert_eq!(
        same(&bed, &["--reader", "00 00", "password", "clear"]).code,
        6
    );
    assert_eq!(
        same(&bed, &["--reader", "00 00", "password", "unlock"]).code,
        6
    );

    // A password set through the daemon stays unlocked in its memory: daemon-mode commands
    // need no password (not even clear); direct mode is locked.
    ok(&bed, &["--reader", "00 00", "password", "set"], "pw\n");
    assert_eq!(
        ok(&bed, &["--reader", "00 00", "code", "-s", "Bank:hotp"], ""),
        "287082\n"
    );
    assert_eq!(
        run(&bed, &["--direct", "--reader", "00 00", "list"], "").code,
        6
    );
    let wrong = run(&bed, &["--reader", "00 00", "password", "unlock"], "nope\n");
    assert_eq!(wrong.code, 6, "{}", wrong.stderr);
    // The daemon slows down password guesses.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    ok(&bed, &["--reader", "00 00", "password", "unlock"], "pw\n");
    ok(&bed, &["--reader", "00 00", "password", "clear"], "");
    same(&bed, &["--reader", "00 00", "--json", "devices"]);

    // --device by serial or id picks the same key in both modes.
    let id = run(
        &bed,
        &["--direct", "--reader", "00 01", "--json", "devices"],
        "",
    );
    let id = id
        .stdout
        .split('"')
        .skip_while(|s| *s != "id")
        .nth(2)
        .expect("device id")
        .to_owned();
    assert!(
        same(&bed, &["--device", &id, "list"])
            .stdout
            .contains("GitLab:bob")
    );
    assert_eq!(same(&bed, &["--device", "nope", "list"]).code, 5);
}

/// The first block `code --watch` prints without a terminal.
fn first_watch_block(bed: &TestBed, args: &[&str]) -> Vec<String> {
    use std::io::BufRead;
    let mut child = bed
        .command(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn watch");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = Vec::new();
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line.expect("read watch output");
        if line.is_empty() {
            break;
        }
        lines.push(line);
    }
    let _ = child.kill();
    let _ = child.wait();
    lines
}

#[test]
fn watch_reads_the_daemon_cache() {
    let mut bed = TestBed::start();
    bed.attach_card(0, &[]);
    bed.start_dbus();
    let bus = Bus::connect(&bed);
    let _daemon = Daemon::start_with_devices(&bed, &bus, &[], 1);
    ok(&bed, &["add", "GitHub:alice", "--from", "-"], RFC_SHA1);
    ok(
        &bed,
        &["add", "Bank:hotp", "--type", "hotp", "--from", "-"],
        RFC_SHA1,
    );
    let via_daemon = first_watch_block(&bed, &["code", "--watch"]);
    let direct = first_watch_block(&bed, &["--direct", "code", "--watch"]);
    assert_eq!(via_daemon.len(), 2, "{via_daemon:?}");
    assert!(
        via_daemon.contains(&"Bank:hotp     [HOTP Account]".to_owned()),
        "{via_daemon:?}"
    );
    let alice = via_daemon
        .iter()
        .find(|l| l.starts_with("GitHub:alice  "))
        .expect("alice listed");
    assert!(
        alice.ends_with(" s"),
        "a code and its seconds left: {alice:?}"
    );
    // Codes and seconds left may differ between the two runs; names do not.
    let ids = |lines: &[String]| -> Vec<String> {
        lines
            .iter()
            .map(|l| l.split("  ").next().unwrap_or_default().to_owned())
            .collect()
    };
    assert_eq!(ids(&via_daemon), ids(&direct));
}

#[test]
fn a_plain_command_activates_the_daemon() {
    let mut bed = TestBed::start();
    bed.attach_card(0, &[]);
    let services = bed.dir().join("services");
    std::fs::create_dir_all(&services).expect("services dir");
    let shipped = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("dbus/io.github.oathbridge.OathBridge1.service"),
    )
    .expect("service file");
    let exec = format!("Exec={} daemon", env!("CARGO_BIN_EXE_oathbridge"));
    let rewritten: Vec<String> = shipped
        .lines()
        .map(|l| {
            if l.starts_with("Exec=") {
                exec.clone()
            } else {
                l.to_owned()
            }
        })
        .collect();
    std::fs::write(
        services.join("io.github.oathbridge.OathBridge1.service"),
        rewritten.join("\n") + "\n",
    )
    .expect("write service file");
    bed.start_dbus_with_services(&services);
    let bus = Bus::connect(&bed);
    assert!(
        bus.owner_pid("io.github.oathbridge.OathBridge1").is_none(),
        "not running yet"
    );
    ok(&bed, &["add", "acct", "--from", "-"], RFC_SHA1);
    assert!(
        bus.owner_pid("io.github.oathbridge.OathBridge1").is_some(),
        "the CLI activated the daemon"
    );
    assert_eq!(
        ok(&bed, &["code", "-s", "acct", "--at", "59"], ""),
        "287082\n"
    );
}

/// `oathbridge ARGS` on a pseudo-terminal (util-linux `script`), `input` typed into it.
fn on_terminal(bed: &TestBed, args: &[&str], input: &str, wait: std::time::Duration) -> String {
    let mut line = env!("CARGO_BIN_EXE_oathbridge").to_owned();
    for arg in args {
        line.push_str(&format!(" '{arg}'"));
    }
    let mut command = std::process::Command::new("script");
    bed.apply_env(&mut command);
    let mut child = command
        .args(["-qfec", &line, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn script (util-linux)");
    let mut stdin = child.stdin.take().expect("stdin");
    // Give the prompt time to appear before typing.
    std::thread::sleep(std::time::Duration::from_millis(500));
    stdin.write_all(input.as_bytes()).expect("type");
    std::thread::sleep(wait);
    let _ = child.kill();
    drop(stdin);
    let output = child.wait_with_output().expect("wait script");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn on_a_terminal_the_daemon_mode_prompts_and_polls() {
    let mut bed = TestBed::start();
    bed.attach_card(0, &[]);
    bed.start_dbus();
    let bus = Bus::connect(&bed);
    let _daemon = Daemon::start_with_devices(&bed, &bus, &[], 1);
    ok(&bed, &["add", "GitHub:alice", "--from", "-"], RFC_SHA1);
    ok(&bed, &["--direct", "password", "set"], "pw\n");
    assert_eq!(run(&bed, &["code", "-s", "alice"], "").code, 6);

    // A locked key: the password is asked on the terminal and the daemon keeps the unlock.
    let screen = on_terminal(
        &bed,
        &["code", "-s", "alice", "--at", "59"],
        "pw\n",
        std::time::Duration::from_millis(1000),
    );
    assert!(screen.contains("Password for key"), "{screen:?}");
    assert!(screen.contains("287082"), "{screen:?}");
    assert_eq!(
        ok(&bed, &["code", "-s", "alice", "--at", "59"], ""),
        "287082\n"
    );

    // The terminal view polls the daemon each second: an account added meanwhile shows up
    // before the period ends.
    let adder = {
        let mut command = bed.command(&["add", "Later:bob", "--from", "-"]);
        command.stdin(Stdio::piped()).stdout(Stdio::null());
        command
    };
    let watcher = std::thread::scope(|scope| {
        let watching = scope.spawn(|| {
            on_terminal(
                &bed,
                &["code", "--watch"],
                "",
                std::time::Duration::from_millis(2500),
            )
        });
        std::thread::sleep(std::time::Duration::from_millis(1200));
        let mut adder = adder;
        let mut child = adder.spawn().expect("spawn add");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(RFC_SHA1.as_bytes())
            .expect("write seed");
        assert!(child.wait().expect("wait add").success());
        watching.join().expect("watch thread")
    });
    assert!(watcher.contains("GitHub:alice"), "{watcher:?}");
    assert!(watcher.contains("Later:bob"), "{watcher:?}");
}
