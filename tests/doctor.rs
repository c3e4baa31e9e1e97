//! `oathbridge doctor` on the test bed: one test per fault the bed can produce (pcscd
//! stopped, no card, a card held exclusively, scdaemon.conf unreadable or without
//! `pcsc-shared`, no daemon, no Secret Service, no session bus), and a healthy bed. Each
//! asserts on the check's line and its fix.
//!
//! The exclusive holder is this test binary started again under the name `scdaemon` (a
//! symlink), running the ignored helper test `hold_card_exclusively`.

mod common;
mod daemon_common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::TestBed;
use common::cli::{CliRun, run_command};
use common::keyring::start_keyring;
use common::proc::{pid_alive, signal};
use daemon_common::{Bus, Daemon};

/// Every check, in the order doctor prints them.
const CHECKS: [&str; 12] = [
    "pcscd",
    "readers",
    "keys",
    "hid",
    "usb",
    "exclusive",
    "scdaemon",
    "hidraw",
    "daemon",
    "user-unit",
    "secret-service",
    "clock",
];
/// Checks whose outcome depends on the machine running the tests, not on the bed: the
/// clock (timedatectl needs systemd-timedated, absent in containers), and USB/hidraw/hid (a
/// real key plugged into the host is invisible to the bed's private pcscd, not to these).
const HOST_DEPENDENT: [&str; 4] = ["clock", "usb", "hidraw", "hid"];
/// doctor bounds each external call by 2 s; a whole run stays far below this.
const RUN_LIMIT: Duration = Duration::from_secs(20);

/// `oathbridge doctor` (plus `extra` arguments first) with the bed's environment, without
/// an inherited `$GNUPGHOME` unless `gnupghome` is given.
fn doctor_with(bed: &TestBed, extra: &[&str], gnupghome: Option<&Path>) -> CliRun {
    let mut args = extra.to_vec();
    args.push("doctor");
    let mut command = bed.command(&args);
    command.env_remove("GNUPGHOME");
    if let Some(dir) = gnupghome {
        command.env("GNUPGHOME", dir);
    }
    let started = Instant::now();
    let run = run_command(command, "");
    assert!(
        started.elapsed() < RUN_LIMIT,
        "doctor took {:?}",
        started.elapsed()
    );
    assert!(
        run.stderr.is_empty(),
        "doctor wrote to stderr: {}",
        run.stderr
    );
    assert_report_shape(&run, extra.contains(&"--json"));
    run
}

fn doctor(bed: &TestBed) -> CliRun {
    doctor_with(bed, &[], None)
}

/// One line per check in order, then the summary that counts them; exit 1 iff a FAIL.
fn assert_report_shape(run: &CliRun, json: bool) {
    if json {
        return;
    }
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), CHECKS.len() + 1, "{}", run.stdout);
    for (line, check) in lines.iter().zip(CHECKS) {
        let status = &line[..6];
        assert!(
            ["ok    ", "warn  ", "FAIL  "].contains(&status),
            "bad status in {line:?}"
        );
        assert!(
            line[6..].starts_with(&format!("{check}: ")),
            "expected the {check} check, got {line:?}"
        );
    }
    let count = |status: &str| lines.iter().filter(|l| l.starts_with(status)).count();
    let (fails, warns) = (count("FAIL  "), count("warn  "));
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    let summary = if fails + warns == 0 {
        "all good".to_owned()
    } else {
        format!(
            "{fails} problem{}, {warns} warning{}",
            plural(fails),
            plural(warns)
        )
    };
    assert_eq!(lines[CHECKS.len()], summary, "{}", run.stdout);
    assert_eq!(run.code, i32::from(fails > 0), "{}", run.stdout);
}

/// The line of `check`.
fn line<'a>(run: &'a CliRun, check: &str) -> &'a str {
    let prefix = format!("{check}: ");
    run.stdout
        .lines()
        .find(|l| l.get(6..).is_some_and(|rest| rest.starts_with(&prefix)))
        .unwrap_or_else(|| panic!("no {check} line in:\n{}", run.stdout))
}

fn assert_line(run: &CliRun, check: &str, start: &str, contains: &[&str]) -> String {
    let found = line(run, check);
    assert!(
        found.starts_with(start),
        "{check}: expected {start:?} at the start of\n{found}\n\nwhole report:\n{}",
        run.stdout
    );
    for part in contains {
        assert!(
            found.contains(part),
            "{check}: expected {part:?} in\n{found}\n\nwhole report:\n{}",
            run.stdout
        );
    }
    found.to_owned()
}

#[test]
fn pcscd_stopped_is_a_failure_with_the_command_that_starts_it() {
    let bed = TestBed::start();
    let pid = bed.pcscd_pid();
    signal(pid, "TERM");
    let deadline = Instant::now() + Duration::from_secs(5);
    while pid_alive(pid) {
        assert!(Instant::now() < deadline, "pcscd {pid} did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
    let run = doctor(&bed);
    assert_eq!(run.code, 1, "{}", run.stdout);
    // doctor's fix depends on the host's pcscd units, as a user's would.
    let unit = |name: &str| {
        [
            "/etc/systemd/system",
            "/run/systemd/system",
            "/usr/local/lib/systemd/system",
            "/usr/lib/systemd/system",
            "/lib/systemd/system",
        ]
        .iter()
        .any(|dir| Path::new(dir).join(name).exists())
    };
    let fix = if unit("pcscd.socket") {
        "fix: sudo systemctl enable --now pcscd.socket".to_owned()
    } else if unit("pcscd.service") {
        "fix: sudo systemctl enable --now pcscd.service".to_owned()
    } else {
        "fix: sudo /".to_owned()
    };
    let csock = bed.csock().display().to_string();
    assert_line(
        &run,
        "pcscd",
        "FAIL  pcscd: installed (",
        &[
            "but not running: nothing answers at ",
            &csock,
            "(from $PCSCLITE_CSOCK_NAME)",
            &fix,
        ],
    );
    for check in ["readers", "exclusive"] {
        assert_line(
            &run,
            check,
            &format!("warn  {check}: not checked: pcscd is not reachable"),
            &[],
        );
    }
    assert_line(
        &run,
        "keys",
        "warn  keys: not checked over PC/SC",
        &["HID: see hid"],
    );
}

#[test]
fn no_card_in_any_reader_fails_with_plug_it_in() {
    let bed = TestBed::start();
    assert!(
        bed.reader_state(0).is_some_and(|s| !s.card_present()),
        "the bed's reader 0 should be listed and empty"
    );
    let run = doctor(&bed);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert_line(&run, "pcscd", "ok    pcscd: running, answers at ", &[]);
    assert_line(
        &run,
        "readers",
        "ok    readers: ",
        &[&format!("{} (empty)", bed.reader(0))],
    );
    assert_line(
        &run,
        "keys",
        "FAIL  keys: no card in any reader: no OATH key over PC/SC; HID: see hid",
        &["fix: plug the key in"],
    );
    assert_line(
        &run,
        "exclusive",
        "ok    exclusive: no card in any reader, none held",
        &[],
    );

    let json = doctor_with(&bed, &["--json"], None);
    let value: serde_json::Value = serde_json::from_str(&json.stdout).expect("doctor --json");
    let checks = value["checks"].as_array().expect("checks");
    let ids: Vec<&str> = checks
        .iter()
        .map(|c| c["check"].as_str().unwrap())
        .collect();
    assert_eq!(ids, CHECKS);
    assert_eq!(checks[2]["status"], "fail");
    assert!(
        checks[2]["fix"]
            .as_str()
            .unwrap()
            .starts_with("plug the key in")
    );
    assert!(value["problems"].as_u64().unwrap() >= 1);
    assert_eq!(json.code, 1);
}

/// Started by `exclusive_holder_is_named_and_left_alone` as `scdaemon`
/// ([`common::holder::Holder`]): holds a card exclusively until its stdin closes.
#[test]
#[ignore = "helper process of exclusive_holder_is_named_and_left_alone"]
fn hold_card_exclusively() {
    common::holder::hold_if_asked();
}

#[test]
fn exclusive_holder_is_named_and_left_alone() {
    let mut bed = TestBed::start();
    let card = bed.attach_card(0, &["--profile", "yubikey"]);
    let mut holder = common::holder::Holder::start_as(&bed, card.reader(), Some("scdaemon"));
    let run = doctor(&bed);
    let still_running = holder.is_holding();
    let holder_pid = holder.pid();
    drop(holder); // releases the card
    assert!(still_running, "doctor must not stop the holder");

    assert_eq!(run.code, 1, "{}", run.stdout);
    assert_line(
        &run,
        "exclusive",
        &format!(
            "FAIL  exclusive: the card in {} is held exclusively by another program; running card users: ",
            card.reader()
        ),
        &[
            &format!("scdaemon (pid {holder_pid})"),
            "fix: quit that program",
            "`gpgconf --kill scdaemon` and add `pcsc-shared` to scdaemon.conf",
        ],
    );
    assert_line(
        &run,
        "readers",
        "ok    readers: ",
        &[&format!("{} (held exclusively)", card.reader())],
    );
    assert_line(
        &run,
        "keys",
        "warn  keys: no usable OATH key over PC/SC (see exclusive)",
        &[],
    );

    // Released: the same card is found, nothing held.
    let run = doctor(&bed);
    assert_line(
        &run,
        "exclusive",
        "ok    exclusive: no card held exclusively (1 opened in shared mode)",
        &[],
    );
    assert_line(
        &run,
        "keys",
        "ok    keys: PC/SC: ",
        &["(id ", &format!(") in {}; HID: see hid", card.reader())],
    );
}

#[test]
fn unreadable_scdaemon_conf_is_a_warning_naming_it() {
    let bed = TestBed::start();
    // A directory cannot be read as a file, also by root (mode 000 would not stop root).
    let path = bed.dir().join("home/.gnupg/scdaemon.conf");
    std::fs::create_dir_all(&path).expect("mkdir scdaemon.conf");
    let run = doctor(&bed);
    let shown = path.display().to_string();
    assert_line(
        &run,
        "scdaemon",
        &format!("warn  scdaemon: cannot read {shown}: "),
        &[&format!(
            "fix: it must be a file: `mv {shown} {shown}.old && printf 'pcsc-shared\\ndisable-ccid\\n' > {shown}`"
        )],
    );
}

#[test]
fn scdaemon_conf_without_pcsc_shared_is_a_warning_with_the_line_to_add() {
    let bed = TestBed::start();
    // $GNUPGHOME wins over ~/.gnupg, which holds a good file here.
    let home_conf = bed.dir().join("home/.gnupg/scdaemon.conf");
    std::fs::create_dir_all(home_conf.parent().unwrap()).expect("mkdir");
    std::fs::write(&home_conf, "pcsc-shared\ndisable-ccid\n").expect("write");
    let gnupghome = bed.dir().join("gnupg");
    std::fs::create_dir_all(&gnupghome).expect("mkdir");
    let conf = gnupghome.join("scdaemon.conf");
    std::fs::write(&conf, "# gpg uses pcscd\ndisable-ccid\n").expect("write");

    let run = doctor_with(&bed, &[], Some(&gnupghome));
    let shown = conf.display().to_string();
    assert_line(
        &run,
        "scdaemon",
        &format!("warn  scdaemon: {shown} lacks pcsc-shared: "),
        &[&format!(
            "fix: echo pcsc-shared >> {shown} && gpgconf --reload scdaemon"
        )],
    );
    let run = doctor(&bed);
    assert_line(
        &run,
        "scdaemon",
        &format!(
            "ok    scdaemon: {} has pcsc-shared and disable-ccid",
            home_conf.display()
        ),
        &[],
    );
}

#[test]
fn daemon_absent_from_the_bus_is_a_warning() {
    let mut bed = TestBed::start();
    bed.start_dbus();
    start_keyring(&bed);
    let run = doctor(&bed);
    assert_line(
        &run,
        "daemon",
        "warn  daemon: io.github.oathbridge.OathBridge1 is not running and not activatable on the session bus",
        &[
            "fix: install its D-Bus activation file",
            "`oathbridge daemon &`",
        ],
    );
    // The same bus answers for the Secret Service: the daemon is what is missing.
    assert_line(
        &run,
        "secret-service",
        "ok    secret-service: org.freedesktop.secrets running",
        &[],
    );
}

#[test]
fn no_secret_service_is_a_warning() {
    let mut bed = TestBed::start();
    bed.start_dbus();
    let bus = Bus::connect(&bed);
    let daemon = Daemon::start(&bed, &bus, &[]);
    let run = doctor(&bed);
    assert_line(
        &run,
        "secret-service",
        "warn  secret-service: no org.freedesktop.secrets on the session bus: `password unlock --remember` cannot keep access keys",
        &["fix: `sudo apt install gnome-keyring`"],
    );
    assert_line(
        &run,
        "daemon",
        &format!(
            "ok    daemon: io.github.oathbridge.OathBridge1 running (pid {})",
            daemon.pid()
        ),
        &[],
    );
}

#[test]
fn no_session_bus_is_a_warning_for_the_daemon_and_the_secret_service() {
    let bed = TestBed::start();
    let run = doctor(&bed);
    assert_line(
        &run,
        "daemon",
        "warn  daemon: no session bus: $DBUS_SESSION_BUS_ADDRESS is not set",
        &["fix: run it inside your desktop session, or start a bus: `dbus-run-session -- $SHELL`"],
    );
    assert_line(
        &run,
        "secret-service",
        "warn  secret-service: not checked: no session bus",
        &["dbus-run-session"],
    );
}

/// Everything in place: a key, the daemon, gnome-keyring, a good scdaemon.conf. Expected
/// warnings on the bed: `user-unit` (the bed has no systemd user manager), and possibly the
/// host-dependent `clock`, `usb` and `hidraw` (see [`HOST_DEPENDENT`]).
#[test]
fn a_healthy_bed_has_only_the_expected_warnings() {
    let mut bed = TestBed::start();
    let card = bed.attach_card(0, &["--profile", "yubikey"]);
    bed.start_dbus();
    start_keyring(&bed);
    let bus = Bus::connect(&bed);
    let _daemon = Daemon::start(&bed, &bus, &[]);
    let conf = bed.dir().join("home/.gnupg/scdaemon.conf");
    std::fs::create_dir_all(conf.parent().unwrap()).expect("mkdir");
    std::fs::write(&conf, "pcsc-shared\ndisable-ccid\n").expect("write");

    let run = doctor(&bed);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(!run.stdout.contains("FAIL"), "{}", run.stdout);
    assert_line(&run, "pcscd", "ok    pcscd: running", &[]);
    assert_line(
        &run,
        "readers",
        "ok    readers: ",
        &[&format!("{} (OATH key)", card.reader())],
    );
    assert_line(
        &run,
        "keys",
        "ok    keys: PC/SC: ",
        &[&format!(") in {}; HID: see hid", card.reader())],
    );
    assert_line(
        &run,
        "exclusive",
        "ok    exclusive: no card held exclusively",
        &[],
    );
    assert_line(
        &run,
        "scdaemon",
        "ok    scdaemon: ",
        &["has pcsc-shared and disable-ccid"],
    );
    assert_line(
        &run,
        "daemon",
        "ok    daemon: io.github.oathbridge.OathBridge1 running",
        &[],
    );
    assert_line(
        &run,
        "secret-service",
        "ok    secret-service: org.freedesktop.secrets running",
        &[],
    );
    assert_line(
        &run,
        "user-unit",
        "warn  user-unit: not checked: no systemd user manager",
        &[],
    );
    for check in CHECKS {
        let found = line(&run, check);
        if found.starts_with("warn") {
            assert!(
                check == "user-unit" || HOST_DEPENDENT.contains(&check),
                "unexpected warning: {found}"
            );
        }
    }

    let json = doctor_with(&bed, &["--json"], None);
    assert_eq!(json.code, 0);
    let value: serde_json::Value = serde_json::from_str(&json.stdout).expect("doctor --json");
    assert_eq!(value["problems"], 0);
    let statuses: Vec<&str> = value["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .map(|c| c["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses.len(), CHECKS.len());
    assert_eq!(
        value["warnings"].as_u64().unwrap() as usize,
        statuses.iter().filter(|s| **s == "warn").count()
    );
    assert_eq!(
        value["summary"].as_str().unwrap(),
        run.stdout.lines().last().unwrap()
    );
    let keys = &value["checks"][2]["details"];
    assert_eq!(keys.as_array().map(Vec::len), Some(1), "{keys}");
}

/// A key with a HID side (a Nitrokey 3 on the emulator's bridge): the `hid` line names it
/// and what it offers, beside its PC/SC side in `keys`.
#[test]
fn a_key_over_hid_is_named_in_the_hid_check() {
    let mut bed = TestBed::start();
    let socket = bed.dir().join("nk3.sock");
    let address = format!("unix:{}", socket.display());
    let card = bed.attach_card(
        0,
        &["--profile", "nitrokey", "--serial", "31", "--hid", &address],
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::os::unix::net::UnixStream::connect(&socket).is_err() {
        assert!(
            Instant::now() < deadline,
            "no HID bridge at {}",
            socket.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let socket_arg = socket.display().to_string();
    let run = doctor_with(&bed, &["--hid-socket", &socket_arg], None);
    assert_line(
        &run,
        "keys",
        "ok    keys: PC/SC: Nitrokey 3",
        &[card.reader()],
    );
    assert_line(
        &run,
        "hid",
        "ok    hid: Nitrokey 3",
        &[&socket_arg, "Secrets App over CTAPHID"],
    );
}
