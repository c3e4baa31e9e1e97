//! An unlock never outlives the insertion, and suspend or a session lock locks the keys:
//! the real daemon, an emulated YubiKey behind pcscd, a private session bus and a private
//! "system" bus on which the test plays logind.

mod common;
mod daemon_common;

use std::time::Duration;

use common::TestBed;
use common::keyring::start_keyring;
use daemon_common::{Bus, Daemon, Dict, SystemBus, block_on, get_str, wait_until};
use zbus::zvariant::Value;

const DEVICE: &str = "io.github.oathbridge.OathBridge1.Device";
/// RFC 6238's SHA-1 seed.
const SEED: &[u8] = b"12345678901234567890";
const WAIT: Duration = Duration::from_secs(10);

/// Each test starts its own "system" bus ([`SystemBus`]); the daemon finds it through the
/// process environment, so the tests take turns: one test's PrepareForSleep never reaches
/// another test's daemon.
fn logind_turn() -> std::sync::MutexGuard<'static, ()> {
    static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());
    TURN.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn connect(address: &str) -> zbus::Connection {
    block_on(async { zbus::connection::Builder::address(address)?.build().await })
        .expect("connect to the private system bus")
}

fn emit(
    connection: &zbus::Connection,
    path: &str,
    interface: &str,
    member: &str,
    body: &(impl serde::Serialize + zbus::zvariant::DynamicType),
) {
    block_on(connection.emit_signal(None::<()>, path, interface, member, body))
        .expect("emit signal");
}

struct Setup {
    bed: TestBed,
    bus: Bus,
    daemon: Daemon,
    card: common::CardHandle,
}

impl Setup {
    fn new(card_args: &[&str], daemon_args: &[&str]) -> Setup {
        let mut bed = TestBed::start();
        let card = bed.attach_card(0, card_args);
        bed.start_dbus();
        let bus = Bus::connect(&bed);
        let daemon = Daemon::start_with_devices(&bed, &bus, daemon_args, 1);
        let device = bus.devices()[0].clone();
        bus.add_account(
            &[
                ("name", Value::from("alice")),
                ("issuer", Value::from("Lock")),
                ("secret", Value::from(SEED.to_vec())),
                ("digits", Value::from(8u32)),
            ],
            &[],
        )
        .expect("AddAccount");
        bus.call(&device, DEVICE, "SetPassword", &("", "pw", false))
            .expect("SetPassword");
        let setup = Setup {
            bed,
            bus,
            daemon,
            card,
        };
        assert!(setup.has_code(), "unlocked after SetPassword");
        setup
    }

    /// The account's code is served (cached "now" codes, as a launcher asks).
    fn has_code(&self) -> bool {
        let codes: Vec<Dict> = self.bus.get_codes(&[]);
        codes
            .iter()
            .any(|e| get_str(e, "id") == "Lock:alice" && e.contains_key("code"))
    }

    fn locked(&self) -> bool {
        let devices = self.bus.devices();
        let Some(device) = devices.first() else {
            return false;
        };
        self.bus.bool_property(device, DEVICE, "Locked")
    }

    fn wait_locked(&self, what: &str) {
        wait_until(WAIT, what, || self.locked().then_some(()));
        assert!(!self.has_code(), "{what}: a locked key still served a code");
    }

    fn unlock(&self) {
        let device = self.bus.devices()[0].clone();
        self.bus
            .call(&device, DEVICE, "Unlock", &("pw", false))
            .expect("Unlock");
        assert!(self.has_code(), "codes after Unlock");
    }

    /// Still unlocked after `what` had time to act.
    fn stays_unlocked(&self, what: &str) {
        std::thread::sleep(Duration::from_millis(500));
        assert!(!self.locked(), "{what} locked the key");
        assert!(self.has_code(), "{what}: no code");
    }
}

#[test]
fn a_replug_the_frozen_daemon_did_not_see_locks_the_key() {
    let _turn = logind_turn();
    let _system = SystemBus::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("card.json");
    let state = state.display().to_string();
    // Deaf to the other tests' suspend and lock signals: only the re-plug may lock it.
    let mut setup = Setup::new(
        &["--state", &state],
        &[
            "--keep-unlocked-on-suspend",
            "--keep-unlocked-on-screen-lock",
        ],
    );
    // Freeze the daemon (as a suspend does), pull the key and plug it back, wake it up.
    let pid = setup.daemon.pid();
    common::proc::signal(pid, "STOP");
    setup.card.unplug();
    setup.bed.wait_card_present(0, false);
    setup.bed.reattach(&mut setup.card);
    setup.bed.wait_card_present(0, true);
    common::proc::signal(pid, "CONT");
    // Right away (before or after the monitor notices), no code without the password.
    assert!(!setup.has_code(), "codes served after an unseen re-plug");
    setup.wait_locked("an unseen re-plug");
    setup.unlock();
}

#[test]
fn suspend_and_session_lock_lock_the_key() {
    let _turn = logind_turn();
    let system = SystemBus::start();
    let setup = Setup::new(&[], &[]);
    let logind = connect(&system.address);
    block_on(logind.request_name("org.freedesktop.login1")).expect("own login1");
    let impostor = connect(&system.address);
    let manager = ("/org/freedesktop/login1", "org.freedesktop.login1.Manager");

    // A signal from anyone but logind's name owner changes nothing.
    emit(&impostor, manager.0, manager.1, "PrepareForSleep", &(true,));
    setup.stays_unlocked("an impostor's PrepareForSleep");
    emit(&logind, manager.0, manager.1, "PrepareForSleep", &(false,));
    setup.stays_unlocked("waking up");

    emit(&logind, manager.0, manager.1, "PrepareForSleep", &(true,));
    setup.wait_locked("PrepareForSleep(true)");
    setup.unlock();

    let session = "/org/freedesktop/login1/session/_31";
    emit(
        &logind,
        session,
        "org.freedesktop.login1.Session",
        "Lock",
        &(),
    );
    setup.wait_locked("the session's Lock");
    setup.unlock();

    let screen = &setup.bus.conn;
    emit(
        screen,
        "/org/freedesktop/ScreenSaver",
        "org.freedesktop.ScreenSaver",
        "ActiveChanged",
        &(false,),
    );
    setup.stays_unlocked("ActiveChanged(false)");
    emit(
        screen,
        "/org/freedesktop/ScreenSaver",
        "org.freedesktop.ScreenSaver",
        "ActiveChanged",
        &(true,),
    );
    setup.wait_locked("ScreenSaver ActiveChanged(true)");
}

#[test]
fn locking_can_be_turned_off() {
    let _turn = logind_turn();
    let system = SystemBus::start();
    let setup = Setup::new(
        &[],
        &[
            "--keep-unlocked-on-suspend",
            "--keep-unlocked-on-screen-lock",
        ],
    );
    let logind = connect(&system.address);
    block_on(logind.request_name("org.freedesktop.login1")).expect("own login1");
    emit(
        &logind,
        "/org/freedesktop/login1",
        "org.freedesktop.login1.Manager",
        "PrepareForSleep",
        &(true,),
    );
    emit(
        &logind,
        "/org/freedesktop/login1/session/_31",
        "org.freedesktop.login1.Session",
        "Lock",
        &(),
    );
    setup.stays_unlocked("suspend and lock with locking turned off");
}

#[test]
fn remembered_keys_come_back_silently_after_a_suspend() {
    let _turn = logind_turn();
    let system = SystemBus::start();
    let mut bed = TestBed::start();
    bed.attach_card(0, &[]);
    bed.start_dbus();
    start_keyring(&bed);
    let bus = Bus::connect(&bed);
    let _daemon = Daemon::start_with_devices(&bed, &bus, &[], 1);
    let device = bus.devices()[0].clone();
    bus.call(&device, DEVICE, "SetPassword", &("", "pw", true))
        .expect("SetPassword with remember");
    assert!(bus.bool_property(&device, DEVICE, "Remembered"));
    let logind = connect(&system.address);
    block_on(logind.request_name("org.freedesktop.login1")).expect("own login1");
    emit(
        &logind,
        "/org/freedesktop/login1",
        "org.freedesktop.login1.Manager",
        "PrepareForSleep",
        &(true,),
    );
    // Locked, then unlocked again from the Secret Service: watch for the lock to happen
    // through the daemon's log, then for the key to be unlocked.
    wait_until(WAIT, "the daemon locked for the suspend", || {
        _daemon
            .log_text()
            .contains("locking every key")
            .then_some(())
    });
    wait_until(WAIT, "the remembered key unlocked again", || {
        (!bus.bool_property(&device, DEVICE, "Locked")).then_some(())
    });
}
