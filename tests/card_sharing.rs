//! Sharing the key with programs that hold it exclusively for a moment (ykman, scdaemon):
//! short holds are waited for, long ones give a clear error naming the likely holder, and
//! ykman running beside a busy daemon makes no call fail on either side. The holds are
//! real: this process connects to the card in exclusive mode through the same pcscd.

mod common;
mod daemon_common;

use std::ffi::CString;
use std::path::PathBuf;
use std::process::Command;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::TestBed;
use common::output_with_timeout;
use daemon_common::{Bus, Daemon};
use zbus::zvariant::Value;

const SEED: &[u8] = b"12345678901234567890";

/// Hold the card in `reader` exclusively for `hold`, from this process; returns once held.
fn hold_exclusively(reader: &str, hold: Duration) -> thread::JoinHandle<()> {
    let reader = CString::new(reader).expect("reader name");
    let (held, is_held) = mpsc::channel();
    let holder = thread::spawn(move || {
        let context = pcsc::Context::establish(pcsc::Scope::User).expect("PC/SC context");
        // The daemon may be inside a (short) transaction of its own: try for a while.
        let deadline = Instant::now() + Duration::from_secs(5);
        let card = loop {
            match context.connect(&reader, pcsc::ShareMode::Exclusive, pcsc::Protocols::ANY) {
                Ok(card) => break card,
                Err(error) if Instant::now() < deadline => {
                    let _ = error;
                    thread::sleep(Duration::from_millis(5));
                }
                Err(error) => panic!("exclusive connect: {error}"),
            }
        };
        let _ = held.send(());
        thread::sleep(hold);
        let _ = card.disconnect(pcsc::Disposition::LeaveCard);
    });
    is_held.recv().expect("the holder connected");
    holder
}

/// Fields drop in order: the daemon stops before the next test may take the bed.
struct Setup {
    _daemon: Daemon,
    bus: Bus,
    bed: std::sync::MutexGuard<'static, TestBed>,
}

/// The binary's shared bed (in-process PC/SC) with one card, a bus and the daemon.
fn setup() -> Setup {
    let mut bed = TestBed::shared();
    if !bed.reader_state(0).is_some_and(|s| s.card_present()) {
        bed.attach_card(0, &[]);
    }
    if bed.dbus_address().is_none() {
        bed.start_dbus();
    }
    let bus = Bus::connect(&bed);
    let daemon = Daemon::start_with_devices(&bed, &bus, &[], 1);
    if !bus
        .get_codes(&[("timestamp", Value::from(59u64))])
        .iter()
        .any(|e| daemon_common::get_str(e, "id") == "Share:alice")
    {
        bus.add_account(
            &[
                ("name", Value::from("alice")),
                ("issuer", Value::from("Share")),
                ("secret", Value::from(SEED.to_vec())),
                ("digits", Value::from(8u32)),
            ],
            &[],
        )
        .expect("AddAccount");
    }
    Setup {
        bed,
        bus,
        _daemon: daemon,
    }
}

/// A card-bound GetCodes (an explicit time is never served from the cache).
fn card_bound(bus: &Bus, time: u64) -> Result<String, daemon_common::CallError> {
    let codes = bus.try_get_codes(&[("timestamp", Value::from(time))])?;
    Ok(codes
        .iter()
        .find(|e| daemon_common::get_str(e, "id") == "Share:alice")
        .map(|e| daemon_common::get_str(e, "code"))
        .unwrap_or_default())
}

#[test]
fn a_short_exclusive_hold_is_waited_for() {
    let setup = setup();
    let holder = hold_exclusively(&setup.bed.reader(0), Duration::from_millis(300));
    let started = Instant::now();
    // A time no other test asks for: the answer cannot come from the daemon's cache.
    let code = card_bound(&setup.bus, 1_111_111_109).expect("GetCodes while held for 300 ms");
    assert_eq!(code, "07081804");
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "did not wait?"
    );
    holder.join().expect("holder");
    // The CLI talking to the key directly waits the same way.
    let holder = hold_exclusively(&setup.bed.reader(0), Duration::from_millis(300));
    let run = common::cli::run_cli(
        &setup.bed,
        &["--direct", "code", "Share:alice", "--at", "59", "-s"],
        "",
    );
    holder.join().expect("holder");
    assert_eq!(
        (run.code, run.stdout.trim()),
        (0, "94287082"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_long_hold_is_a_clear_error_naming_the_likely_holder() {
    let setup = setup();
    // A process that looks like gpg's scdaemon, so the message can name it.
    let dir = tempfile::tempdir().expect("tempdir");
    let fake = dir.path().join("scdaemon");
    std::fs::copy("/bin/sleep", &fake).expect("copy sleep");
    let mut scdaemon = Command::new(&fake)
        .arg("30")
        .spawn()
        .expect("fake scdaemon");
    let holder = hold_exclusively(&setup.bed.reader(0), Duration::from_secs(5));
    let started = Instant::now();
    let error = card_bound(&setup.bus, 89).expect_err("held for longer than the wait");
    let waited = started.elapsed();
    let _ = scdaemon.kill();
    let _ = scdaemon.wait();
    holder.join().expect("holder");
    assert_eq!(error.short(), "CardError", "{error:?}");
    assert!(
        error
            .message
            .contains(&format!("scdaemon (pid {})", scdaemon.id())),
        "{error:?}"
    );
    assert!(
        waited >= Duration::from_millis(1500) && waited < Duration::from_secs(4),
        "waited {waited:?}"
    );
}

fn ykman() -> PathBuf {
    std::env::var_os("OATHBRIDGE_YKMAN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            panic!("OATHBRIDGE_YKMAN is not set: run `bash scripts/test.sh` (it installs ykman)")
        })
}

#[test]
fn ykman_beside_a_busy_daemon_makes_nothing_fail() {
    let setup = setup();
    let ykman = ykman();
    let reader = setup.bed.reader(0);
    let env = setup.bed.env();
    let yk_done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let done = yk_done.clone();
    let yk = thread::spawn(move || {
        let mut failures = Vec::new();
        for _ in 0..10 {
            let mut cmd = Command::new(&ykman);
            cmd.env_remove("DBUS_SESSION_BUS_ADDRESS")
                .envs(env.iter().cloned())
                .args(["--reader", &reader, "oath", "accounts", "code"]);
            let out = output_with_timeout(&mut cmd, Duration::from_secs(60)).expect("ykman hung");
            let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
            if !out.status.success() || !stdout.contains("Share:alice") {
                failures.push(format!("{stdout}{}", String::from_utf8_lossy(&out.stderr)));
            }
        }
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        failures
    });
    let mut failed = Vec::new();
    let mut calls = 0;
    let base = 1_700_000_000u64;
    // 400 card-bound calls (distinct times, so none is served from a cache) from 4 clients.
    let workers: Vec<_> = (0..4u64)
        .map(|w| {
            let bus = setup.bus.clone();
            let yk_done = yk_done.clone();
            thread::spawn(move || {
                let mut errors = Vec::new();
                let mut i = 0u64;
                // 100 calls per client, spread over ykman's runs (as a busy desktop would
                // ask, not a flood that leaves ykman no moment to connect exclusively).
                while i < 100 {
                    if let Err(e) = card_bound(&bus, base + 30 * (w * 100_000 + i)) {
                        errors.push(format!("{e:?}"));
                    }
                    i += 1;
                    if !yk_done.load(std::sync::atomic::Ordering::Relaxed) {
                        thread::sleep(Duration::from_millis(40));
                    }
                }
                (i, errors)
            })
        })
        .collect();
    for worker in workers {
        let (made, errors) = worker.join().expect("caller");
        calls += made;
        failed.extend(errors);
    }
    let ykman_failures = yk.join().expect("ykman runner");
    assert_eq!(calls, 400);
    println!("{calls} card-bound GetCodes calls beside 10 ykman runs");
    assert!(
        failed.is_empty(),
        "{} of {calls} calls failed: {:?}",
        failed.len(),
        &failed[..failed.len().min(3)]
    );
    assert!(
        ykman_failures.is_empty(),
        "ykman failed: {ykman_failures:?}"
    );
}
