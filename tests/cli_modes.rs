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

/// An account another program writes while the daemon runs (ykman, `--direct`) is found
/// through the daemon at once, though the daemon already cached that time step: a lookup
/// that finds nothing makes it read the keys again (GetCodes "refresh").
#[test]
fn accounts_another_program_adds_are_found_at_once() {
    another_program_adds(&["--profile", "yubikey"], true);
}

/// The same on a key without CALCULATE ALL, where a refresh lists and calculates each
/// account instead.
#[test]
fn accounts_another_program_adds_are_found_at_once_on_a_nitrokey() {
    another_program_adds(&["--profile", "nitrokey"], false);
}

fn another_program_adds(card: &[&str], password: bool) {
    let mut bed = TestBed::start();
    bed.attach_card(0, card);
    bed.start_dbus();
    let bus = Bus::connect(&bed);
    let add = |bed: &TestBed, id: &str| {
        let added = run_cli(bed, &["--direct", "add", id, "--from", "-"], RFC_SHA1);
        assert_eq!(added.code, 0, "{id}: {}", added.stderr);
    };
    add(&bed, "GitHub:alice");
    let _daemon = Daemon::start_with_devices(&bed, &bus, &[], 1);
    let at = "1800000000";

    // The daemon caches the step with alice only.
    let first = run_cli(&bed, &["code", "--at", at], "");
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert!(!first.stdout.contains("bob"), "{}", first.stdout);

    add(&bed, "Acme:bob");
    let bob = same(&bed, &["code", "-s", "bob", "--at", at]);
    assert_eq!(bob.code, 0, "{}", bob.stderr);
    assert_eq!(bob.stdout.trim().len(), 6, "{}", bob.stdout);
    // The refreshed step has both, from the cache now.
    let both = same(&bed, &["code", "--at", at]);
    assert_eq!(both.stdout.lines().count(), 2, "{}", both.stdout);

    add(&bed, "Acme:carol");
    let carol = same(&bed, &["list", "carol"]);
    assert_eq!(
        (carol.code, carol.stdout.as_str()),
        (0, "Acme:carol  TOTP SHA1\n")
    );

    add(&bed, "Acme:dave");
    let deleted = run_cli(&bed, &["delete", "dave", "--force"], "");
    assert_eq!(deleted.code, 0, "{}", deleted.stderr);
    let gone = run_cli(&bed, &["--direct", "list", "dave"], "");
    assert_eq!((gone.code, gone.stdout.as_str()), (0, ""));

    // A write acts on the account named exactly, even if the cached listing only had one
    // whose id contains the name.
    add(&bed, "Acme:eve2");
    let cached = run_cli(&bed, &["list", "eve"], "");
    assert_eq!(cached.stdout, "Acme:eve2  TOTP SHA1\n", "{}", cached.stderr);
    add(&bed, "Acme:eve");
    let deleted = run_cli(&bed, &["delete", "Acme:eve", "--force"], "");
    assert_eq!(deleted.code, 0, "{}", deleted.stderr);
    let left = run_cli(&bed, &["--direct", "list", "eve"], "");
    assert_eq!(
        (left.code, left.stdout.as_str()),
        (0, "Acme:eve2  TOTP SHA1\n"),
        "Acme:eve deleted, Acme:eve2 kept"
    );

    // One code printed without its name: the account named exactly, not a cached one that
    // contains the name.
    add(&bed, "Acme:fay2");
    let cached = run_cli(&bed, &["code", "--at", at], "");
    assert!(cached.stdout.contains("Acme:fay2"), "{}", cached.stdout);
    let fay2 = run_cli(
        &bed,
        &["--direct", "code", "-s", "Acme:fay2", "--at", at],
        "",
    );
    // Another seed, so that the two codes differ.
    let added = run_cli(
        &bed,
        &["--direct", "add", "Acme:fay", "--from", "-"],
        "JBSWY3DPEHPK3PXP",
    );
    assert_eq!(added.code, 0, "{}", added.stderr);
    let fay = same(&bed, &["code", "-s", "Acme:fay", "--at", at]);
    assert_eq!(fay.code, 0, "{}", fay.stderr);
    assert_ne!(fay.stdout, fay2.stdout, "Acme:fay's code, not Acme:fay2's");

    // `list` shows what is on the key.
    add(&bed, "Acme:gus");
    let listed = same(&bed, &["list"]);
    assert!(listed.stdout.contains("Acme:gus"), "{}", listed.stdout);

    // Still no match after reading the keys again: exit 3, as in direct mode.
    let none = same(&bed, &["code", "nobody", "--at", at]);
    assert_eq!(none.code, 3, "{}", none.stderr);

    if password {
        // A password another program sets, then removes: the daemon learns of both.
        let set = run_cli(&bed, &["--direct", "password", "set"], "pw\npw\n");
        assert_eq!(set.code, 0, "{}", set.stderr);
        let locked = same(&bed, &["code", "nobody", "--at", at]);
        assert_eq!(locked.code, 6, "{}", locked.stderr);
        let cleared = run_cli(&bed, &["--direct", "password", "clear"], "pw\n");
        assert_eq!(cleared.code, 0, "{}", cleared.stderr);
        let open = same(&bed, &["code", "-s", "Acme:gus", "--at", at]);
        assert_eq!(open.code, 0, "{}", open.stderr);
    }
}
