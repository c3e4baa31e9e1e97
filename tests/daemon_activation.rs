//! Starting the daemon the ways a desktop does: D-Bus activation through the shipped
//! `.service` file, the shipped systemd user unit (checked with `systemd-analyze verify`),
//! and `daemon --replace` taking the name over from a running instance.

mod common;
mod daemon_common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use daemon_common::*;

const SERVICE_FILE: &str = "io.github.oathbridge.OathBridge1.service";

fn repo_file(relative: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// The shipped file with its single `<key>=` line replaced; panics if the key is not there
/// exactly once.
fn rewrite_line(text: &str, key: &str, value: &str) -> String {
    let prefix = format!("{key}=");
    let hits = text.lines().filter(|l| l.starts_with(&prefix)).count();
    assert_eq!(hits, 1, "expected one {prefix} line in:\n{text}");
    let mut out: String = text
        .lines()
        .map(|l| {
            if l.starts_with(&prefix) {
                format!("{prefix}{value}")
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    out.push('\n');
    out
}

#[test]
fn the_first_call_activates_the_daemon() {
    let shipped = repo_file(&format!("dbus/{SERVICE_FILE}"));
    // Everything but Exec= is used as shipped.
    let mut lines: Vec<&str> = shipped
        .lines()
        .filter(|l| !l.starts_with("Exec="))
        .collect();
    lines.sort();
    assert_eq!(
        lines,
        vec![
            "Name=io.github.oathbridge.OathBridge1",
            "SystemdService=oathbridge.service",
            "[D-BUS Service]",
        ],
        "the shipped activation file changed; review this test"
    );
    assert!(
        shipped.contains("\nExec=/usr/bin/oathbridge daemon\n"),
        "{shipped}"
    );

    let mut bed = common::TestBed::start();
    let services = bed.dir().join("services");
    std::fs::create_dir_all(&services).expect("mkdir services");
    let state = bed.dir().join("vk.json");
    let exec = format!(
        "{} daemon --no-pcsc --virtual-key {}",
        env!("CARGO_BIN_EXE_oathbridge"),
        state.display()
    );
    std::fs::write(
        services.join(SERVICE_FILE),
        rewrite_line(&shipped, "Exec", &exec),
    )
    .expect("write the service file");
    bed.start_dbus_with_services(&services);
    let bus = Bus::connect(&bed);
    assert_eq!(
        bus.owner_pid(BUS_NAME),
        None,
        "nobody owns the name before the call"
    );

    // The very first call, from a shell, starts the daemon and gets an answer.
    let (ok, out, err) = gdbus_call(
        &bed,
        ROOT_PATH,
        "io.github.oathbridge.OathBridge1.Manager.GetCodes",
        &["{}"],
    );
    assert!(ok, "the activating GetCodes failed: {err}\n{}", bed.logs());
    assert_eq!(
        out.trim(),
        "(@aa{sv} [],)",
        "a new virtual key has no accounts"
    );
    let pid = bus
        .owner_pid(BUS_NAME)
        .unwrap_or_else(|| panic!("the activated daemon does not own the name\n{}", bed.logs()));
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    assert!(
        cmdline.contains("daemon --no-pcsc --virtual-key"),
        "the owner is not our Exec line: {cmdline}"
    );

    // It is a working service: its virtual key takes an account and answers RFC codes.
    let devices = wait_until(WAIT, "the virtual key's device object", || {
        Some(bus.devices()).filter(|d| d.len() == 1)
    });
    assert_eq!(bus.str_property(&devices[0], DEVICE, "Kind"), "virtual");
    let (ok, _, err) = gdbus_call(
        &bed,
        ROOT_PATH,
        "io.github.oathbridge.OathBridge1.Manager.AddAccount",
        &[
            "{'name': <'activated'>, 'secret': <[byte 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x30]>, 'digits': <uint32 8>}",
            "{}",
        ],
    );
    assert!(ok, "AddAccount by fields from gdbus failed: {err}");
    let (ok, out, err) = gdbus_call(
        &bed,
        ROOT_PATH,
        "io.github.oathbridge.OathBridge1.Manager.GetCodes",
        &["{'timestamp': <uint64 59>}"],
    );
    assert!(ok, "{err}");
    assert!(out.contains("'code': <'94287082'>"), "{out}");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&state)
            .unwrap_or_else(|e| panic!("the virtual key's state file {}: {e}", state.display()))
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "state file mode {mode:o}");
    }
    // The bed stops the activated daemon (it carries the bed's marker environment).
}

#[test]
fn the_systemd_unit_verifies() {
    let analyze = Path::new("/usr/bin/systemd-analyze");
    assert!(
        analyze.exists(),
        "systemd-analyze is missing: install the `systemd` package (this test does not skip)"
    );
    let shipped = repo_file("systemd/oathbridge.service");
    assert!(
        shipped.contains("\nExecStart=/usr/bin/oathbridge daemon\n"),
        "{shipped}"
    );
    for (key, value) in [
        ("Type", "dbus"),
        ("BusName", "io.github.oathbridge.OathBridge1"),
    ] {
        assert!(
            shipped.lines().any(|l| l == format!("{key}={value}")),
            "the unit lacks {key}={value}"
        );
    }
    let bed = common::TestBed::start();
    let dir = bed.dir().join("units");
    std::fs::create_dir_all(&dir).expect("mkdir units");
    let unit = dir.join("oathbridge.service");
    let exec = format!("{} daemon", env!("CARGO_BIN_EXE_oathbridge"));
    std::fs::write(&unit, rewrite_line(&shipped, "ExecStart", &exec)).expect("write unit");

    // As a user unit (how it is installed), and in system mode; both work without a
    // running systemd (--user needs XDG_RUNTIME_DIR, which the bed provides).
    for mode in [&["--user"][..], &[][..]] {
        let mut cmd = Command::new(analyze);
        cmd.args(mode).arg("verify").arg(&unit);
        bed.apply_env(&mut cmd);
        let out = common::output_with_timeout(&mut cmd, Duration::from_secs(30))
            .expect("systemd-analyze verify did not finish within 30 s");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "systemd-analyze {mode:?} verify failed ({}):\n{stdout}{stderr}",
            out.status
        );
        assert!(
            stdout.trim().is_empty() && stderr.trim().is_empty(),
            "systemd-analyze {mode:?} verify warned about the unit:\n{stdout}{stderr}"
        );
    }
}

#[test]
fn replace_takes_the_name_and_the_old_instance_exits() {
    let mut bed = common::TestBed::start();
    bed.start_dbus();
    let bus = Bus::connect(&bed);
    let vk1 = bed.dir().join("vk1.json");
    let vk2 = bed.dir().join("vk2.json");
    let mut first = Daemon::start(
        &bed,
        &bus,
        &["--no-pcsc", "--virtual-key", vk1.to_str().unwrap()],
    );
    // Without --replace a second instance refuses and exits.
    let mut refused = Daemon::spawn(&bed, &["--no-pcsc", "--virtual-key", vk2.to_str().unwrap()]);
    let status = refused
        .wait_exit(WAIT)
        .unwrap_or_else(|| panic!("a second instance without --replace kept running"));
    assert!(!status.success(), "{status}");
    assert!(
        refused.log_text().contains("already running"),
        "{}",
        refused.log_text()
    );
    assert_eq!(bus.owner_pid(BUS_NAME), Some(first.pid()));

    let second = Daemon::start(
        &bed,
        &bus,
        &[
            "--replace",
            "--no-pcsc",
            "--virtual-key",
            vk2.to_str().unwrap(),
        ],
    );
    assert_eq!(bus.owner_pid(BUS_NAME), Some(second.pid()));
    let status = first.wait_exit(WAIT).unwrap_or_else(|| {
        panic!(
            "the replaced daemon did not exit by itself within {WAIT:?}\n{}",
            bed.logs()
        )
    });
    assert!(status.success(), "the replaced daemon exited with {status}");
    assert!(
        first.log_text().contains("bus name taken over"),
        "{}",
        first.log_text()
    );
    // The new instance serves its own virtual key.
    let devices = wait_until(WAIT, "the new instance's device object", || {
        Some(bus.devices()).filter(|d| d.len() == 1)
    });
    let reader = bus.str_property(&devices[0], DEVICE, "Reader");
    assert!(reader.contains("vk2.json"), "{reader}");
}

// BUG: `daemon --virtual-key FILE` documents "created, mode 0600, if missing", but the
// daemon only writes FILE on the first change (AddAccount…): `Card::with_state_file` does
// not save a missing file. Until then the key's random salt, hence its device id and
// object path, changes on every daemon start. This test fails until the daemon saves the
// new state at start.
#[test]
fn a_missing_virtual_key_file_is_created_at_start() {
    let mut bed = common::TestBed::start();
    bed.start_dbus();
    let bus = Bus::connect(&bed);
    let state = bed.dir().join("fresh.json");
    let args = ["--no-pcsc", "--virtual-key", state.to_str().unwrap()];
    let first_id = {
        let _daemon = Daemon::start_with_devices(&bed, &bus, &args, 1);
        let devices = bus.devices();
        assert_eq!(devices.len(), 1, "{devices:?}");
        bus.str_property(&devices[0], DEVICE, "Id")
    };
    assert!(
        state.exists(),
        "--virtual-key {} was not created at start",
        state.display()
    );
    let _daemon = Daemon::start_with_devices(&bed, &bus, &args, 1);
    let devices = bus.devices();
    assert_eq!(
        bus.str_property(&devices[0], DEVICE, "Id"),
        first_id,
        "the virtual key keeps its id across daemon restarts"
    );
}

/// Stops the daemon that owns the name (started by activation, so not our child) and
/// waits until the name is free.
fn stop_activated(bed: &common::TestBed, bus: &Bus) {
    let pid = bus
        .owner_pid(BUS_NAME)
        .unwrap_or_else(|| panic!("no daemon owns {BUS_NAME}\n{}", bed.logs()));
    common::proc::stop_pid(pid, Duration::from_secs(3));
    wait_until(WAIT, "the bus name to be released", || {
        bus.owner_pid(BUS_NAME).is_none().then_some(())
    });
}

// BUG: the daemon takes its bus name before it serves the Device and Account objects of
// the keys it found at start: `serve()` adds them only after `build()` has requested the
// name (its comment says the first call "already sees them"). dbus-daemon delivers the
// activating call the moment the name is taken, so a client that activates the daemon
// with GetManagedObjects (what an ObjectManager client does first) gets no or only some
// of the keys. GetCodes skips keys without an object too (`continue` when
// `device_path` is None), with a narrower window. This test fails until the objects are
// served before the name is requested.
#[test]
fn the_activating_call_sees_every_key() {
    let mut bed = common::TestBed::start();
    bed.attach_card(0, &[]);
    bed.attach_card(1, &[]);
    let services = bed.dir().join("services");
    std::fs::create_dir_all(&services).expect("mkdir services");
    let exec = format!("{} daemon", env!("CARGO_BIN_EXE_oathbridge"));
    let shipped = repo_file(&format!("dbus/{SERVICE_FILE}"));
    std::fs::write(
        services.join(SERVICE_FILE),
        rewrite_line(&shipped, "Exec", &exec),
    )
    .expect("write the service file");
    bed.start_dbus_with_services(&services);
    let bus = Bus::connect(&bed);
    let mut misses = Vec::new();
    for round in 1..=3 {
        let (ok, out, err) = gdbus_call(
            &bed,
            ROOT_PATH,
            "org.freedesktop.DBus.ObjectManager.GetManagedObjects",
            &[],
        );
        assert!(
            ok,
            "activating GetManagedObjects failed: {err}\n{}",
            bed.logs()
        );
        let devices = out
            .matches("'io.github.oathbridge.OathBridge1.Device'")
            .count();
        if devices != 2 {
            misses.push(format!(
                "round {round}: {devices} of 2 keys: {}",
                out.trim()
            ));
        }
        stop_activated(&bed, &bus);
    }
    assert!(
        misses.is_empty(),
        "the activating GetManagedObjects missed keys:\n{}",
        misses.join("\n")
    );
}
