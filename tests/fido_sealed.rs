//! Virtual keys sealed by a FIDO2 key's hmac-secret: the real binary, the software
//! authenticator as the FIDO2 device (`soft:FILE`), the real daemon on a private session
//! bus, a private "system" bus on which the test plays logind, and pcscd for `emulate`.

mod common;
mod daemon_common;

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use common::TestBed;
use daemon_common::{
    Bus, Daemon, Dict, SystemBus, block_on, block_on_for, get_str, runtime, wait_property_during,
    wait_until,
};
use zbus::zvariant::Value;

const DEVICE: &str = "io.github.oathbridge.OathBridge1.Device";
/// RFC 6238 appendix B's SHA-1 seed: 287082 (6 digits) at T = 59.
const SEED: &[u8] = b"12345678901234567890";
const WAIT: Duration = Duration::from_secs(10);

fn run(bed: &TestBed, args: &[&str], stdin: &str) -> Output {
    let mut child = bed
        .command(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start oathbridge");
    use std::io::Write;
    let _ = child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes());
    child.wait_with_output().expect("oathbridge output")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A software authenticator file with a fixed device secret and optional PIN.
fn authenticator(dir: &Path, name: &str, master: u8, pin: Option<&str>) -> String {
    let path = dir.join(name);
    let state = serde_json::json!({
        "format": 1, "master": hex(&[master; 32]), "pin": pin,
        "pin_retries": 8, "touch": "approve", "made": 0
    });
    std::fs::write(&path, state.to_string()).expect("write authenticator");
    format!("soft:{}", path.display())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `virtual-key seal FILE --seal-with FIDO`, which must succeed.
fn seal(bed: &TestBed, file: &Path, fido: &str) {
    let file = file.to_str().expect("UTF-8 temp path");
    let out = run(bed, &["virtual-key", "seal", file, "--seal-with", fido], "");
    assert!(out.status.success(), "{}", stderr(&out));
}

/// A clear-text state file (src/emulator/state.rs format) holding the RFC 6238 seed.
fn clear_state_file(path: &Path) {
    let state = serde_json::json!({
        "format": 1, "salt": "0102030405060708", "access_key": null,
        "credentials": [{"id": hex(b"alice"), "type": "totp", "algorithm": "sha1",
            "digits": 6, "key": hex(SEED), "properties": 0, "counter": 0}]
    });
    std::fs::write(path, state.to_string()).expect("write state");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
}

fn sealed(path: &Path) -> bool {
    std::fs::read(path).is_ok_and(|b| b.starts_with(b"OBSEALVK"))
}

fn code_at_59(bus: &Bus) -> Option<String> {
    let codes: Vec<Dict> = bus.get_codes(&[("timestamp", Value::from(59u64))]);
    codes
        .iter()
        .find(|e| get_str(e, "id").ends_with("alice") && e.contains_key("code"))
        .map(|e| get_str(e, "code"))
}

fn locked(bus: &Bus, device: &str) -> bool {
    bus.bool_property(device, DEVICE, "Locked")
}

/// Daemons of this binary take turns: one test's logind `Lock` on the shared "system" bus
/// must not lock another test's daemon.
fn daemon_turn() -> std::sync::MutexGuard<'static, ()> {
    static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());
    TURN.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

struct Served {
    _bed: TestBed,
    bus: Bus,
    daemon: Daemon,
    device: String,
    // After the daemon: its system bus, then the turn (the next test's daemon starts last).
    system_bus: SystemBus,
    _turn: std::sync::MutexGuard<'static, ()>,
}

fn serve(file: &Path, fido: &str) -> Served {
    let turn = daemon_turn();
    let system_bus = SystemBus::start();
    let mut bed = TestBed::start();
    bed.start_dbus();
    let bus = Bus::connect(&bed);
    let file = file.display().to_string();
    let daemon = Daemon::start_with_devices(
        &bed,
        &bus,
        &["--no-pcsc", "--virtual-key", &file, "--fido", fido],
        1,
    );
    let device = bus.devices()[0].clone();
    Served {
        _bed: bed,
        bus,
        daemon,
        device,
        system_bus,
        _turn: turn,
    }
}

#[test]
fn created_sealed_key_is_served_locked_opens_with_touch_and_relocks_on_session_lock() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fido = authenticator(dir.path(), "fido.json", 1, None);
    let file = dir.path().join("vk.sealed");
    let bed = TestBed::start();
    let made = run(
        &bed,
        &[
            "virtual-key",
            "create",
            file.to_str().unwrap(),
            "--seal-with",
            &fido,
        ],
        "",
    );
    assert!(made.status.success(), "create: {}", stderr(&made));
    assert!(sealed(&file));
    let again = run(
        &bed,
        &[
            "virtual-key",
            "create",
            file.to_str().unwrap(),
            "--seal-with",
            &fido,
        ],
        "",
    );
    assert_eq!(again.status.code(), Some(2), "{}", stderr(&again));

    let served = serve(&file, &fido);
    let (bus, device) = (&served.bus, served.device.as_str());
    assert!(locked(bus, device), "a sealed key starts locked");
    assert_eq!(code_at_59(bus), None);
    bus.call(device, DEVICE, "Unlock", &("", false))
        .expect("Unlock");
    assert!(!locked(bus, device));
    bus.add_account(
        &[
            ("name", Value::from("alice")),
            ("secret", Value::from(SEED.to_vec())),
            ("digits", Value::from(6u32)),
        ],
        &[],
    )
    .expect("AddAccount");
    assert_eq!(code_at_59(bus).as_deref(), Some("287082"));
    // Saved sealed: the account name is nowhere in the file.
    let bytes = std::fs::read(&file).expect("read sealed");
    assert!(sealed(&file) && !bytes.windows(5).any(|w| w == b"alice"));

    // logind's session Lock locks the sealed key like a password-protected one.
    let logind = block_on(async {
        zbus::connection::Builder::address(served.system_bus.address.as_str())?
            .build()
            .await
    })
    .expect("connect to the private system bus");
    block_on(logind.request_name("org.freedesktop.login1")).expect("own login1");
    block_on(logind.emit_signal(
        None::<()>,
        "/org/freedesktop/login1/session/_31",
        "org.freedesktop.login1.Session",
        "Lock",
        &(),
    ))
    .expect("emit Lock");
    wait_until(WAIT, "the session lock locked the sealed key", || {
        locked(bus, device).then_some(())
    });
    assert_eq!(code_at_59(bus), None, "a locked sealed key served a code");
    bus.call(device, DEVICE, "Unlock", &("", false))
        .expect("Unlock again");
    assert_eq!(code_at_59(bus).as_deref(), Some("287082"));
    assert!(
        served
            .daemon
            .log_text()
            .contains("sealed virtual key locked")
    );
}

#[test]
fn daemon_unlock_takes_the_fido_pin_and_counts_retries() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fido = authenticator(dir.path(), "fido.json", 3, Some("1234"));
    let file = dir.path().join("vk.sealed");
    let bed = TestBed::start();
    let made = run(
        &bed,
        &[
            "virtual-key",
            "create",
            file.to_str().unwrap(),
            "--seal-with",
            &fido,
        ],
        "1234\n",
    );
    assert!(made.status.success(), "create with PIN: {}", stderr(&made));
    let served = serve(&file, &fido);
    let (bus, device) = (&served.bus, served.device.as_str());
    let wrong = bus
        .call(device, DEVICE, "Unlock", &("0000", false))
        .expect_err("a wrong PIN unlocked");
    assert_eq!(wrong.short(), "WrongPassword");
    assert!(wrong.message.contains("7 tries left"), "{}", wrong.message);
    assert!(!wrong.message.contains("0000"));
    let missing = bus
        .call(device, DEVICE, "Unlock", &("", false))
        .expect_err("no PIN unlocked");
    assert_eq!(missing.short(), "WrongPassword");
    assert!(locked(bus, device));
    bus.call(device, DEVICE, "Unlock", &("1234", false))
        .expect("the right PIN");
    assert!(!locked(bus, device));
    let refused = bus
        .call(device, DEVICE, "SetPassword", &("", "pw", false))
        .expect_err("an OATH password on a sealed key");
    assert_eq!(refused.short(), "NotSupported", "{}", refused.message);
}

/// Crash-injected `virtual-key seal`: the process aborts after the temp file is written
/// (before the rename), then after the rename; the path always holds one whole file.
#[test]
fn seal_migration_with_a_crash_leaves_the_old_or_the_new_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fido = authenticator(dir.path(), "fido.json", 5, None);
    let file = dir.path().join("vk.json");
    clear_state_file(&file);
    let clear = std::fs::read(&file).expect("read clear");
    let bed = TestBed::start();
    let seal = |crash: Option<&str>| {
        let mut command = bed.command(&[
            "virtual-key",
            "seal",
            file.to_str().unwrap(),
            "--seal-with",
            &fido,
        ]);
        if let Some(step) = crash {
            command.env("OATHBRIDGE_TEST_CRASH_AT", step);
        }
        command.stdin(Stdio::null()).output().expect("run seal")
    };
    let crashed = seal(Some("temp-written"));
    assert!(
        !crashed.status.success() && crashed.status.code().is_none(),
        "expected an abort"
    );
    assert_eq!(
        std::fs::read(&file).expect("read"),
        clear,
        "old file must survive"
    );

    let crashed = seal(Some("renamed"));
    assert!(crashed.status.code().is_none(), "expected an abort");
    assert!(sealed(&file), "after the rename the new file is complete");

    // A sealed file is not sealed twice; it serves the seed's codes.
    let twice = seal(None);
    assert_eq!(twice.status.code(), Some(2), "{}", stderr(&twice));
    let served = serve(&file, &fido);
    served
        .bus
        .call(&served.device, DEVICE, "Unlock", &("", false))
        .expect("Unlock");
    assert_eq!(code_at_59(&served.bus).as_deref(), Some("287082"));
}

/// `emulate --state FILE --fido ID`: Some(output) when it exits within 5 s (a refusal),
/// None when it opened the file and kept trying to reach vpcd (port 1: nobody there).
fn emulate_open(bed: &TestBed, file: &Path, fido: &str) -> Option<Output> {
    let mut child = bed
        .command(&[
            "emulate",
            "--vpcd",
            "127.0.0.1:1",
            "--state",
            file.to_str().unwrap(),
            "--fido",
            fido,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start emulate");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while std::time::Instant::now() < deadline {
        if child.try_wait().expect("try_wait").is_some() {
            return Some(child.wait_with_output().expect("output"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

#[test]
fn tampered_truncated_newer_and_wrong_key_files_are_refused_untouched() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fido = authenticator(dir.path(), "fido.json", 7, None);
    let other = authenticator(dir.path(), "other.json", 8, None);
    let touch_denied = dir.path().join("deny.json");
    std::fs::write(
        &touch_denied,
        serde_json::json!({"format": 1, "master": hex(&[7; 32]), "pin": null,
            "pin_retries": 8, "touch": "deny", "made": 0})
        .to_string(),
    )
    .expect("write");
    let touch_denied = format!("soft:{}", touch_denied.display());
    let file = dir.path().join("vk.json");
    clear_state_file(&file);
    let bed = TestBed::start();
    seal(&bed, &file, &fido);
    let good = std::fs::read(&file).expect("read");

    let variant = |name: &str, bytes: &[u8]| -> PathBuf {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).expect("write variant");
        path
    };
    let mut flipped = good.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    let mut header = good.clone();
    header[12] ^= 1; // the card salt: authenticated as associated data
    let mut newer = good.clone();
    newer[8..10].copy_from_slice(&[0, 2]);
    let cases: [(&str, Vec<u8>, &str, i32, &str); 5] = [
        ("flipped", flipped, &fido, 2, "altered"),
        ("header", header, &fido, 2, "altered"),
        ("truncated", good[..40].to_vec(), &fido, 2, "truncated"),
        ("newer", newer, &fido, 8, "newer"),
        (
            "good",
            good.clone(),
            &other,
            5,
            "does not hold the credential",
        ),
    ];
    for (name, bytes, fido, code, says) in cases {
        let path = variant(name, &bytes);
        let out = emulate_open(&bed, &path, fido).expect("a refused file must exit");
        let text = stderr(&out);
        assert_eq!(out.status.code(), Some(code), "{name}: {text}");
        assert!(text.contains(says), "{name}: {text}");
        assert_eq!(
            std::fs::read(&path).expect("read"),
            bytes,
            "{name}: file changed"
        );
    }
    let out = emulate_open(&bed, &file, &touch_denied).expect("touch timeout must exit");
    assert_eq!(
        out.status.code(),
        Some(7),
        "touch timeout: {}",
        stderr(&out)
    );
    // The right key opens it: the emulator then keeps trying to reach vpcd.
    assert!(
        emulate_open(&bed, &file, &fido).is_none(),
        "the right FIDO2 key did not open the file"
    );
    assert_eq!(std::fs::read(&file).expect("read"), good);
}

#[test]
fn emulate_serves_a_sealed_key_through_pcscd() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fido = authenticator(dir.path(), "fido.json", 9, None);
    let file = dir.path().join("vk.json");
    clear_state_file(&file);
    let mut bed = TestBed::start();
    seal(&bed, &file, &fido);
    let file = file.display().to_string();
    let _card = bed.attach_card(0, &["--state", &file, "--fido", &fido]);
    let out = run(&bed, &["--direct", "code", "alice", "--at", "59"], "");
    assert!(out.status.success(), "{}\n{}", stderr(&out), bed.logs());
    assert!(String::from_utf8_lossy(&out.stdout).contains("287082"));
}

/// `devices --identify` and `Device.Identify()`: a key reached over CCID and a virtual key
/// say why they cannot blink (exit 8); no FIDO2 device here, so `devices` starts cleanly.
#[test]
fn identify_says_why_ccid_and_virtual_keys_cannot_blink() {
    let mut bed = TestBed::start();
    bed.attach_card(0, &[]);
    let listed = run(&bed, &["--direct", "devices"], "");
    assert!(listed.status.success(), "{}", stderr(&listed));
    let id = String::from_utf8_lossy(&listed.stdout)
        .split_whitespace()
        .next()
        .expect("a device id")
        .to_owned();
    let direct = run(&bed, &["--direct", "devices", "--identify", &id], "");
    assert_eq!(direct.status.code(), Some(8), "{}", stderr(&direct));
    assert!(stderr(&direct).contains("cannot identify itself over CCID"));
    let missing = run(&bed, &["devices", "--identify", "/dev/hidraw-none"], "");
    assert_eq!(missing.status.code(), Some(5), "{}", stderr(&missing));

    let _turn = daemon_turn();
    let _system_bus = SystemBus::start();
    bed.start_dbus();
    let bus = Bus::connect(&bed);
    let vk = bed.dir().join("vk.json").display().to_string();
    let _daemon = Daemon::start_with_devices(&bed, &bus, &["--virtual-key", &vk], 2);
    for device in bus.devices() {
        let refused = bus
            .call(&device, DEVICE, "Identify", &())
            .expect_err("Identify on a CCID or virtual key");
        assert_eq!(refused.short(), "NotSupported", "{}", refused.message);
    }
    let vk_id = bus
        .devices()
        .into_iter()
        .find(|d| bus.str_property(d, DEVICE, "Kind") == "virtual")
        .map(|d| bus.str_property(&d, DEVICE, "Id"))
        .expect("the virtual key");
    let virtual_key = run(&bed, &["devices", "--identify", &vk_id], "");
    assert_eq!(
        virtual_key.status.code(),
        Some(8),
        "{}",
        stderr(&virtual_key)
    );
    assert!(
        stderr(&virtual_key).contains("virtual key"),
        "{}",
        stderr(&virtual_key)
    );
    let via_daemon = run(&bed, &["devices", "--identify", &id], "");
    assert_eq!(via_daemon.status.code(), Some(8), "{}", stderr(&via_daemon));
    assert!(
        stderr(&via_daemon).contains("CCID"),
        "{}",
        stderr(&via_daemon)
    );
}

/// Pulling the FIDO2 key (the software authenticator's file leaves, as a hidraw node does)
/// locks the opened store at the next request; plugged back, Unlock opens it again.
#[test]
fn pulling_the_fido_key_locks_the_sealed_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fido = authenticator(dir.path(), "fido.json", 11, None);
    let file = dir.path().join("vk.json");
    clear_state_file(&file);
    let bed = TestBed::start();
    seal(&bed, &file, &fido);
    let served = serve(&file, &fido);
    let (bus, device) = (&served.bus, served.device.as_str());
    bus.call(device, DEVICE, "Unlock", &("", false))
        .expect("Unlock");
    assert_eq!(code_at_59(bus).as_deref(), Some("287082"));
    let node = dir.path().join("fido.json");
    let away = dir.path().join("unplugged.json");
    std::fs::rename(&node, &away).expect("pull the key");
    assert_eq!(code_at_59(bus), None, "a code after the FIDO2 key left");
    assert!(locked(bus, device));
    assert!(
        served
            .daemon
            .log_text()
            .contains("was pulled; locked again")
    );
    std::fs::copy(&away, &node).expect("plug it back");
    bus.call(device, DEVICE, "Unlock", &("", false))
        .expect("Unlock after the replug");
    assert_eq!(code_at_59(bus).as_deref(), Some("287082"));
}

/// At a terminal-less CLI the FIDO2 PIN is the first stdin line: missing or wrong, exit 6
/// with the tries left, never echoing the PIN; the file is untouched.
#[test]
fn cli_open_with_a_missing_or_wrong_pin_exits_6() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fido = authenticator(dir.path(), "fido.json", 13, Some("4321"));
    let file = dir.path().join("vk.json");
    clear_state_file(&file);
    let bed = TestBed::start();
    let out = run(
        &bed,
        &[
            "virtual-key",
            "seal",
            file.to_str().unwrap(),
            "--seal-with",
            &fido,
        ],
        "4321\n",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let sealed_bytes = std::fs::read(&file).expect("read");
    let missing = emulate_open(&bed, &file, &fido).expect("no PIN must exit");
    assert_eq!(missing.status.code(), Some(6), "{}", stderr(&missing));
    assert!(stderr(&missing).contains("PIN"), "{}", stderr(&missing));
    let wrong = run(
        &bed,
        &[
            "emulate",
            "--vpcd",
            "127.0.0.1:1",
            "--state",
            file.to_str().unwrap(),
            "--fido",
            &fido,
        ],
        "9999\n",
    );
    let text = stderr(&wrong);
    assert_eq!(wrong.status.code(), Some(6), "{text}");
    assert!(
        text.contains("7 tries left") && !text.contains("9999"),
        "{text}"
    );
    assert_eq!(std::fs::read(&file).expect("read"), sealed_bytes);
}

/// A file sealed with touch alone keeps opening with touch alone after a PIN is set on the
/// FIDO2 key (CTAP 2.1 keeps a secret with and one without user verification).
#[test]
fn a_pin_set_after_sealing_does_not_lock_the_file_out() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fido = authenticator(dir.path(), "fido.json", 15, None);
    let file = dir.path().join("vk.json");
    clear_state_file(&file);
    let bed = TestBed::start();
    seal(&bed, &file, &fido);
    let info = run(&bed, &["virtual-key", "info", file.to_str().unwrap()], "");
    assert!(String::from_utf8_lossy(&info.stdout).contains("opens with touch"));
    // The same device secret, now with a PIN.
    let fido = authenticator(dir.path(), "fido.json", 15, Some("1234"));
    assert!(
        emulate_open(&bed, &file, &fido).is_none(),
        "the touch-only file did not open after a PIN was set"
    );
}

/// While `Unlock` waits for the FIDO2 touch, the device shows TouchPending (the desktop
/// client's cue), and clears it after.
#[test]
fn unlock_shows_touch_pending_while_the_fido_key_waits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fido_file = dir.path().join("fido.json");
    let fido = authenticator(dir.path(), "fido.json", 17, None);
    let file = dir.path().join("vk.json");
    clear_state_file(&file);
    let bed = TestBed::start();
    seal(&bed, &file, &fido);
    let slow = serde_json::json!({"format": 1, "master": hex(&[17; 32]), "pin": null,
        "pin_retries": 8, "touch": "approve", "made": 1, "touch_delay_ms": 1500});
    std::fs::write(&fido_file, slow.to_string()).expect("slow touch");
    let served = serve(&file, &fido);
    let (bus, device) = (&served.bus, served.device.clone());
    let call = {
        let conn = bus.conn.clone();
        let path = device.clone();
        runtime().spawn(async move {
            conn.call_method(
                Some("io.github.oathbridge.OathBridge1"),
                path.as_str(),
                Some(DEVICE),
                "Unlock",
                &("", false),
            )
            .await
        })
    };
    wait_property_during(bus, &device, DEVICE, "TouchPending", &call);
    block_on_for(WAIT, "Unlock with a slow touch", call)
        .expect("join")
        .expect("Unlock");
    wait_until(WAIT, "TouchPending = false after the touch", || {
        (!bus.bool_property(&device, DEVICE, "TouchPending")).then_some(())
    });
    assert_eq!(code_at_59(bus).as_deref(), Some("287082"));
}
