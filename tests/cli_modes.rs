//! Direct mode and daemon mode agree (stdout, stderr, exit code) on the cases where they
//! once differed, each checked against the exact expected answer.

mod common;
mod daemon_common;

use common::TestBed;
use common::cli::{CliRun, run_cli};
use daemon_common::{Bus, Daemon};

const RFC_SHA1: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

/// Run `args` through the daemon and with `--direct`; both must agree.
fn same(bed: &TestBed, args: &[&str]) -> CliRun {
    let via_daemon = run_cli(bed, args, "");
    let mut direct_args = vec!["--direct"];
    direct_args.extend_from_slice(args);
    let direct = run_cli(bed, &direct_args, "");
    assert_eq!(
        (via_daemon.code, &via_daemon.stdout, &via_daemon.stderr),
        (direct.code, &direct.stdout, &direct.stderr),
        "{args:?}: daemon first, direct second"
    );
    via_daemon
}

#[test]
fn daemon_and_direct_agree() {
    let mut bed = TestBed::start();
    bed.attach_card(0, &["--profile", "yubikey"]);
    bed.start_dbus();
    let bus = Bus::connect(&bed);
    let added = run_cli(
        &bed,
        &[
            "--direct",
            "add",
            "GitHub:alice",
            "--digits",
            "8",
            "--from",
            "-",
        ],
        RFC_SHA1,
    );
    assert_eq!(added.code, 0, "{}", added.stderr);
    let _daemon = Daemon::start_with_devices(&bed, &bus, &[], 1);

    // `--at 0` is the epoch (RFC 6238 counter 0), not "now" as the daemon reads 0.
    let epoch = same(&bed, &["code", "-s", "alice", "--at", "0"]);
    assert_eq!((epoch.code, epoch.stdout.as_str()), (0, "84755224\n"));
    let epoch = same(&bed, &["--json", "code", "alice", "--at", "0"]);
    assert_eq!(epoch.code, 0, "{}", epoch.stderr);
    assert!(
        epoch.stdout.contains("\"code\": \"84755224\""),
        "{}",
        epoch.stdout
    );
    assert!(
        epoch.stdout.contains("\"valid_from\": 0,"),
        "{}",
        epoch.stdout
    );
    assert!(
        epoch.stdout.contains("\"valid_to\": 30"),
        "{}",
        epoch.stdout
    );
    let steps = same(&bed, &["code", "-s", "alice", "--at", "0", "--count", "2"]);
    assert_eq!(
        (steps.code, steps.stdout.as_str()),
        (0, "84755224\n94287082\n")
    );

    // A `--reader` that matches no reader: the same reason in both modes.
    let none = same(&bed, &["--reader", "nothing", "code"]);
    assert_eq!(
        (none.code, none.stderr.as_str()),
        (5, "error: no reader matches \"nothing\"\n")
    );
    assert_eq!(same(&bed, &["--reader", "nothing", "list"]).code, 5);

    // `password forget` without a Secret Service fails alike (was: exit 0 via the daemon).
    let forget = same(&bed, &["password", "forget"]);
    assert_eq!(forget.code, 1, "{}", forget.stderr);
    assert!(
        forget
            .stderr
            .starts_with("error: no Secret Service on the session bus"),
        "{}",
        forget.stderr
    );
}
