//! Tests of the test bed itself (tests/common): private pcscd, vpcd readers, emulator cards,
//! private dbus-daemon, teardown.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::{TestBed, output_with_timeout, parse_reader_state, proc::pid_alive};

fn wait_gone(pid: u32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while pid_alive(pid) {
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(20));
    }
    true
}

#[test]
fn parses_pcsc_scan_card_listing() {
    let out = " \nSat Nov 28 04:15:48 2026\n Reader 0: Virtual PCD 00 00\n  Event number: 1\n  \
               Card state: Card inserted, \n  ATR: 3B 80 80 01 01\n\nATR: 3B 80 80 01 01\n \
               Reader 1: Virtual PCD 00 01\n  Event number: 0\n  Card state: Card removed, \n";
    let s0 = parse_reader_state(out, "Virtual PCD 00 00").unwrap();
    assert!(s0.card_present());
    assert_eq!(s0.atr.as_deref(), Some("3B 80 80 01 01"));
    let s1 = parse_reader_state(out, "Virtual PCD 00 01").unwrap();
    assert!(!s1.card_present());
    assert_eq!(s1.atr, None);
    assert_eq!(parse_reader_state(out, "Virtual PCD 00 02"), None);
}

#[test]
fn start_lists_both_readers_without_cards() {
    let bed = TestBed::start();
    assert!(bed.csock().exists());
    assert_eq!(bed.reader(0), "Virtual PCD 00 00");
    assert_eq!(bed.reader(1), "Virtual PCD 00 01");
    let mut cmd = Command::new("pcsc_scan");
    cmd.arg("-r").envs(bed.env());
    let out = output_with_timeout(&mut cmd, Duration::from_secs(10)).expect("pcsc_scan -r hung");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout.lines().map(str::trim).collect::<Vec<_>>(),
        ["0: Virtual PCD 00 00", "1: Virtual PCD 00 01"],
        "pcsc_scan -r output: {stdout}"
    );
    for slot in 0..2 {
        let state = bed.reader_state(slot).expect("reader listed");
        assert!(!state.card_present(), "slot {slot}: {state:?}");
    }
    let env = bed.env();
    let csock = env
        .iter()
        .find(|(k, _)| k == "PCSCLITE_CSOCK_NAME")
        .map(|(_, v)| v.clone());
    assert_eq!(csock, Some(bed.csock().display().to_string()));
    assert!(!env.iter().any(|(k, _)| k == "DBUS_SESSION_BUS_ADDRESS"));
}

#[test]
fn card_attach_unplug_reattach() {
    let mut bed = TestBed::start();
    let mut card = bed.attach_card(0, &[]);
    assert!(card.is_running());
    let state = bed.reader_state(0).expect("reader listed");
    assert!(state.card_present(), "{state:?}");
    let atr = state.atr.expect("an inserted card has an ATR");
    // ykman needs an ATR whose T0 high nibble is not 0xF (see testbed.md §3).
    let t0 = atr.split(' ').nth(1).expect("ATR has a T0 byte");
    assert!(!t0.starts_with('F'), "ATR {atr}");
    assert!(!bed.reader_state(1).unwrap().card_present());

    card.unplug();
    assert!(!card.is_running());
    bed.wait_card_present(0, false);

    bed.reattach(&mut card);
    assert!(card.is_running());
    bed.wait_card_present(0, true);

    card.terminate();
    bed.wait_card_present(0, false);
}

#[test]
fn cards_in_both_slots() {
    let mut bed = TestBed::start();
    let _c0 = bed.attach_card(0, &[]);
    let mut c1 = bed.attach_card(1, &["--profile", "nitrokey"]);
    bed.wait_card_present(0, true);
    bed.wait_card_present(1, true);
    c1.unplug();
    bed.wait_card_present(1, false);
    bed.wait_card_present(0, true);
}

#[test]
fn drop_stops_everything_and_removes_the_dir() {
    let mut bed = TestBed::start();
    let card = bed.attach_card(0, &[]);
    bed.start_dbus();
    let pcscd = bed.pcscd_pid();
    let card_pid = card.pid().expect("card runs");
    let dbus = bed.dbus_pid().expect("dbus started");
    let dir = bed.dir().to_path_buf();
    for pid in [pcscd, card_pid, dbus] {
        assert!(pid_alive(pid), "pid {pid} should run");
    }
    drop(bed);
    for pid in [pcscd, card_pid, dbus] {
        assert!(
            wait_gone(pid, Duration::from_secs(1)),
            "pid {pid} survived the drop"
        );
    }
    assert!(!Path::new(&format!("/proc/{pcscd}")).exists() || !pid_alive(pcscd));
    if std::env::var(common::KEEP_ENV).as_deref() != Ok("1") {
        assert!(!dir.exists(), "{} not removed", dir.display());
    }
}

#[test]
fn parallel_beds_get_different_ports() {
    let beds: Vec<TestBed> = (0..3)
        .map(|_| thread::spawn(TestBed::start))
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().expect("bed start"))
        .collect();
    let mut ports: Vec<u16> = beds.iter().map(TestBed::port).collect();
    ports.sort_unstable();
    ports.dedup();
    assert_eq!(ports.len(), 3, "ports {ports:?}");
    for bed in &beds {
        assert!(bed.reader_state(0).is_some());
        assert!(bed.reader_state(1).is_some());
    }
    let socks: std::collections::HashSet<_> = beds.iter().map(TestBed::csock).collect();
    assert_eq!(socks.len(), 3);
}

#[test]
fn private_dbus_answers_and_command_gets_the_address() {
    let mut bed = TestBed::start();
    let address = bed.start_dbus();
    assert_eq!(
        address,
        format!("unix:path={}", bed.dir().join("bus.sock").display())
    );
    assert!(
        bed.env()
            .contains(&("DBUS_SESSION_BUS_ADDRESS".to_string(), address.clone()))
    );
    let mut cmd = Command::new("dbus-send");
    cmd.args([
        "--session",
        "--print-reply",
        "--dest=org.freedesktop.DBus",
        "/org/freedesktop/DBus",
        "org.freedesktop.DBus.GetId",
    ])
    .envs(bed.env());
    let out = output_with_timeout(&mut cmd, Duration::from_secs(10)).expect("dbus-send hung");
    assert!(
        out.status.success(),
        "dbus-send failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("string \""));

    // `command` gives the real binary the bed's environment.
    let cmd = bed.command(&["--help"]);
    assert_eq!(
        Path::new(cmd.get_program()),
        Path::new(env!("CARGO_BIN_EXE_oathbridge"))
    );
    let envs: Vec<_> = cmd.get_envs().collect();
    let get = |k: &str| {
        envs.iter()
            .find(|(n, _)| *n == k)
            .and_then(|(_, v)| *v)
            .map(|v| v.to_string_lossy().into_owned())
    };
    assert_eq!(get("DBUS_SESSION_BUS_ADDRESS"), Some(address));
    assert_eq!(
        get("PCSCLITE_CSOCK_NAME"),
        Some(bed.csock().display().to_string())
    );
    // RUST_LOG is removed (present in get_envs with a None value).
    assert!(envs.iter().any(|(n, v)| *n == "RUST_LOG" && v.is_none()));
}

#[test]
fn dbus_activation_dir_is_used() {
    let mut bed = TestBed::start();
    let services = bed.dir().join("services");
    std::fs::create_dir_all(&services).unwrap();
    let marker = bed.dir().join("activated");
    std::fs::write(
        services.join("org.oathbridge.TestActivation.service"),
        format!(
            "[D-BUS Service]\nName=org.oathbridge.TestActivation\nExec=/bin/sh -c 'echo \"$PCSCLITE_CSOCK_NAME\" > {}'\n",
            marker.display()
        ),
    )
    .unwrap();
    bed.start_dbus_with_services(&services);
    let mut cmd = Command::new("dbus-send");
    // The service never claims its name, so the call gets no answer: do not wait long.
    cmd.args([
        "--session",
        "--print-reply",
        "--reply-timeout=2000",
        "--dest=org.freedesktop.DBus",
        "/org/freedesktop/DBus",
        "org.freedesktop.DBus.StartServiceByName",
        "string:org.oathbridge.TestActivation",
        "uint32:0",
    ])
    .envs(bed.env());
    let _ = output_with_timeout(&mut cmd, Duration::from_secs(30)).expect("dbus-send hung");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !marker.exists() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    let written = std::fs::read_to_string(&marker).expect("activated service ran");
    assert_eq!(written.trim(), bed.csock().display().to_string());
}

/// Helper for `watchdog_cleans_up_after_a_killed_test_process`: runs only when that test
/// starts this binary with OATHBRIDGE_SELFTEST_HELPER=1.
#[test]
fn helper_bed_that_hangs() {
    if std::env::var("OATHBRIDGE_SELFTEST_HELPER").as_deref() != Ok("1") {
        return;
    }
    let bed = TestBed::start();
    println!("PCSCD_PID {}", bed.pcscd_pid());
    println!("DIR {}", bed.dir().display());
    loop {
        thread::sleep(Duration::from_secs(60));
    }
}

#[test]
fn watchdog_cleans_up_after_a_killed_test_process() {
    /// Kills the helper even if this test fails half-way.
    struct KillOnDrop(std::process::Child);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "helper_bed_that_hangs",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("OATHBRIDGE_SELFTEST_HELPER", "1")
        .env_remove(common::KEEP_ENV)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut child = KillOnDrop(child);
    let mut lines = BufReader::new(child.0.stdout.take().unwrap()).lines();
    let mut pcscd = None;
    let mut dir = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        // libtest prints "test helper_bed_that_hangs ... " before the helper's first line.
        if let Some((_, p)) = line.split_once("PCSCD_PID ") {
            pcscd = Some(p.trim().parse::<u32>().unwrap());
        } else if let Some(d) = line.strip_prefix("DIR ") {
            dir = Some(std::path::PathBuf::from(d.trim()));
            break;
        }
    }
    let (pcscd, dir) = (
        pcscd.expect("helper printed pid"),
        dir.expect("helper printed dir"),
    );
    assert!(pid_alive(pcscd));
    drop(child); // SIGKILL: no Drop runs in the helper.
    assert!(
        wait_gone(pcscd, Duration::from_secs(5)),
        "pcscd {pcscd} survived its test process"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while dir.exists() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !dir.exists(),
        "{} not removed by the watchdog",
        dir.display()
    );
}

/// In-process PC/SC (the `pcsc` crate in this test process): the shared bed sets
/// PCSCLITE_CSOCK_NAME for the process before the first PC/SC call.
#[test]
fn shared_bed_serves_in_process_pcsc() {
    let mut bed = TestBed::shared();
    if !bed.reader_state(0).is_some_and(|s| s.card_present()) {
        bed.attach_card(0, &[]);
    }
    assert_eq!(
        std::env::var_os("PCSCLITE_CSOCK_NAME"),
        Some(bed.csock().into_os_string())
    );
    let ctx = pcsc::Context::establish(pcsc::Scope::User).expect("SCardEstablishContext");
    let readers: Vec<String> = ctx
        .list_readers_owned()
        .expect("SCardListReaders")
        .into_iter()
        .map(|r| r.to_string_lossy().into_owned())
        .collect();
    assert_eq!(readers, ["Virtual PCD 00 00", "Virtual PCD 00 01"]);
    let reader = std::ffi::CString::new(bed.reader(0)).unwrap();
    let card = ctx
        .connect(&reader, pcsc::ShareMode::Shared, pcsc::Protocols::ANY)
        .expect("SCardConnect");
    // SELECT the YKOATH applet: the answer ends in 90 00.
    let select = [
        0x00, 0xA4, 0x04, 0x00, 0x07, 0xA0, 0x00, 0x00, 0x05, 0x27, 0x21, 0x01,
    ];
    let mut buf = [0u8; 258];
    let resp = card.transmit(&select, &mut buf).expect("SCardTransmit");
    assert!(resp.ends_with(&[0x90, 0x00]), "SELECT answered {resp:02X?}");
    // The same process cannot point libpcsclite at another bed.
    drop(bed);
    let other = TestBed::start();
    let claimed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        other.use_for_this_process()
    }));
    assert!(claimed.is_err(), "a second bed must not claim the process");
}
