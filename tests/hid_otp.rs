//! The YubiKey OTP application over HID, end to end with the real binary and no pcscd:
//! program slot 2 with the RFC 6238 seed, read its TOTP codes, a touch slot, refusals.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::cli::{CliRun, run_command};
use common::proc::stop_child;

const B32_SHA1: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

struct Setup {
    dir: tempfile::TempDir,
    socket: PathBuf,
    emulator: Child,
}

impl Setup {
    fn start(args: &[&str]) -> Setup {
        let dir = tempfile::tempdir().expect("temp dir");
        let socket = dir.path().join("otp.sock");
        let log = std::fs::File::create(dir.path().join("emulator.log")).expect("log");
        let emulator = Command::new(env!("CARGO_BIN_EXE_oathbridge"))
            .args(["emulate", "--profile", "yubikey-otp", "--serial", "5550123"])
            .env("OATHBRIDGE_LOG", "oathbridge=debug")
            .arg("--hid")
            .arg(format!("unix:{}", socket.display()))
            .args(args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup"))
            .stderr(log)
            .spawn()
            .expect("start the emulator");
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::os::unix::net::UnixStream::connect(&socket).is_err() {
            assert!(Instant::now() < deadline, "the emulator did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        Setup {
            dir,
            socket,
            emulator,
        }
    }

    /// The binary with no pcscd (a socket path nobody serves), no bus, our socket only.
    fn run(&self, args: &[&str], stdin: &str) -> CliRun {
        run_command(command(self.dir.path(), Some(&self.socket), args), stdin)
    }

    fn ok(&self, args: &[&str], stdin: &str) -> String {
        let run = self.run(args, stdin);
        assert_eq!(run.code, 0, "{args:?}: {}", run.stderr);
        run.stdout
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        stop_child(&mut self.emulator, Duration::from_secs(3));
        if std::thread::panicking() {
            eprintln!(
                "emulator log ({}):\n{}",
                self.socket.display(),
                std::fs::read_to_string(self.dir.path().join("emulator.log")).unwrap_or_default()
            );
        }
    }
}

fn command(dir: &Path, socket: Option<&Path>, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_oathbridge"));
    command
        .env("PCSCLITE_CSOCK_NAME", dir.join("no-pcscd.comm"))
        .env("HOME", dir)
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .env_remove("RUST_LOG")
        .env_remove(oathbridge::transport::hid::discovery::SOCKETS_ENV);
    if let Some(socket) = socket {
        command.env(
            oathbridge::transport::hid::discovery::SOCKETS_ENV,
            socket.as_os_str(),
        );
    }
    command.args(args);
    command
}

#[test]
fn slot_2_with_the_rfc6238_seed_gives_the_rfc_codes() {
    let setup = Setup::start(&[]);
    let devices = setup.ok(&["devices"], "");
    assert!(
        devices.contains("YubiKey OTP") && devices.contains("serial 5550123"),
        "{devices}"
    );
    assert!(devices.contains("0/2 accounts"), "{devices}");

    let added = setup.run(&["add", "--slot", "2", "--from", "-"], B32_SHA1);
    assert_eq!(added.code, 0, "{}", added.stderr);
    assert!(
        added.stderr.contains("Programmed slot 2"),
        "{}",
        added.stderr
    );
    assert_eq!(setup.ok(&["code", "--at", "59"], ""), "slot 2  287082\n");
    assert_eq!(
        setup.ok(&["code", "--at", "1111111109"], ""),
        "slot 2  081804\n"
    );
    assert_eq!(
        setup.ok(&["code", "-s", "slot 2", "--at", "1234567890"], ""),
        "005924\n"
    );
    let json = setup.ok(&["--json", "code", "--at", "59"], "");
    assert!(json.contains("287082"), "{json}");

    // A configured slot is not overwritten without --force.
    let again = setup.run(&["add", "--slot", "2", "--from", "-"], B32_SHA1);
    assert_eq!(again.code, 2, "{}", again.stderr);
    assert!(again.stderr.contains("--force"), "{}", again.stderr);
    // What a slot cannot hold is refused before anything is written.
    for (args, why) in [
        (
            &["add", "--slot", "1", "--digits", "8", "--from", "-"][..],
            "digits",
        ),
        (
            &["add", "--slot", "1", "--algorithm", "sha256", "--from", "-"][..],
            "SHA1",
        ),
        (
            &["add", "--slot", "1", "--period", "60", "--from", "-"][..],
            "period",
        ),
    ] {
        let refused = setup.run(args, B32_SHA1);
        assert_eq!(refused.code, 8, "{args:?}: {}", refused.stderr);
        assert!(refused.stderr.contains(why), "{args:?}: {}", refused.stderr);
        assert!(!refused.stderr.contains(B32_SHA1));
    }
    // 21 bytes: one more than a slot holds.
    let long = setup.run(
        &["add", "--slot", "1", "--from", "-"],
        "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGE",
    );
    assert_eq!(long.code, 8, "{}", long.stderr);
    assert!(long.stderr.contains("at most 20"), "{}", long.stderr);
    let list = setup.ok(&["list"], "");
    assert_eq!(list.lines().count(), 1, "nothing written to slot 1: {list}");

    let forced = setup.run(
        &["add", "--slot", "2", "--force", "--from", "-"],
        "GEZDGNBVGY3TQOJQ",
    );
    assert_eq!(forced.code, 0, "{}", forced.stderr);
    assert_ne!(setup.ok(&["code", "--at", "59"], ""), "slot 2  287082\n");
}

#[test]
fn a_touch_slot_prompts_and_times_out_without_a_touch() {
    let setup = Setup::start(&["--touch", "deny", "--touch-timeout-ms", "700"]);
    setup.ok(&["add", "--slot", "1", "--touch", "--from", "-"], B32_SHA1);
    let list = setup.ok(&["list"], "");
    assert!(list.contains("slot 1") && list.contains("touch"), "{list}");
    // Listing codes does not wait for a touch.
    let codes = setup.ok(&["code", "--at", "59"], "");
    assert!(
        codes.contains("slot 1") && !codes.contains("287082"),
        "{codes}"
    );
    let started = Instant::now();
    let run = setup.run(&["code", "-s", "slot 1", "--at", "59"], "");
    assert_eq!(run.code, 7, "{}", run.stderr);
    assert!(
        run.stderr.to_lowercase().contains("touch"),
        "{}",
        run.stderr
    );
    assert!(started.elapsed() >= Duration::from_millis(700));
}

#[test]
fn a_touch_slot_gives_its_code_after_the_touch() {
    let setup = Setup::start(&["--touch", "approve", "--touch-delay-ms", "300"]);
    setup.ok(&["add", "--slot", "1", "--touch", "--from", "-"], B32_SHA1);
    let run = setup.run(&["code", "-s", "slot 1", "--at", "59"], "");
    assert_eq!(
        (run.code, run.stdout.as_str()),
        (0, "287082\n"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.to_lowercase().contains("touch"),
        "{}",
        run.stderr
    );
}

#[test]
fn no_pcscd_and_no_hid_key_is_said_plainly() {
    let dir = tempfile::tempdir().expect("temp dir");
    let run = run_command(command(dir.path(), None, &["devices"]), "");
    assert_eq!(run.code, 5, "{}", run.stderr);
    assert!(
        run.stderr.contains("pcscd is not running") && run.stderr.contains("no HID key"),
        "{}",
        run.stderr
    );
    // A bridge socket that nobody serves: the same answer, not an error about the socket.
    let gone = dir.path().join("gone.sock");
    let run = run_command(command(dir.path(), Some(&gone), &["devices"]), "");
    assert_eq!(run.code, 5, "{}", run.stderr);
}
