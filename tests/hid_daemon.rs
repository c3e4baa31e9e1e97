//! The daemon with HID keys: a Nitrokey 3 present on CCID and HID is one device (served
//! over HID while another program holds its CCID side); a HID-only key on a machine
//! without pcscd comes and goes with the same signals as a CCID key; a YubiKey OTP
//! application's slots are accounts of a device.

mod common;
mod daemon_common;

use std::time::Duration;

use common::TestBed;
use common::hid::{HidEmulator, wait_socket};
use common::holder::Holder;
use common::proc::stop_pid;
use daemon_common::*;
use zbus::zvariant::Value;

#[test]
#[ignore = "helper process"]
fn hold_card_exclusively() {
    common::holder::hold_if_asked();
}

fn add_account(bus: &Bus, device: &str) -> String {
    let added = bus
        .add_account(
            &[
                ("name", Value::from("hid")),
                ("issuer", Value::from("Bridge")),
                ("secret", Value::from(SEED_SHA1.to_vec())),
                ("digits", Value::from(8u32)),
            ],
            &[("device", path_value(device))],
        )
        .unwrap_or_else(|e| panic!("AddAccount on {device} failed: {e:?}"));
    assert_eq!(added.len(), 1, "{added:?}");
    added[0].to_string()
}

fn codes_at(bus: &Bus, time: u64) -> Vec<(String, String)> {
    bus.get_codes(&[("timestamp", Value::from(time))])
        .iter()
        .map(|e| (get_str(e, "id"), get_str(e, "code")))
        .collect()
}

#[test]
fn a_key_on_ccid_and_hid_is_one_device_served_over_hid_while_ccid_is_held() {
    let mut bed = TestBed::start();
    bed.start_dbus();
    let bus = Bus::connect(&bed);
    let socket = bed.dir().join("nk3.sock");
    let address = format!("unix:{}", socket.display());
    let card = bed.attach_card(0, &["--profile", "nitrokey", "--hid", &address]);
    wait_socket(&socket);
    let socket_arg = socket.display().to_string();
    let daemon = Daemon::start_with_devices(&bed, &bus, &["--hid-socket", &socket_arg], 1);
    // Give a wrongly separate HID device a moment to show up; it must not.
    std::thread::sleep(Duration::from_millis(500));
    let devices = bus.devices();
    assert_eq!(devices.len(), 1, "one key, one device: {devices:?}");
    let device = devices[0].clone();
    assert_eq!(bus.str_property(&device, DEVICE, "Reader"), card.reader());
    let transports = Vec::<String>::try_from(bus.property(&device, DEVICE, "Transports"))
        .expect("Transports is an as");
    assert_eq!(transports, ["ccid", "hid"]);
    // `devices` through the daemon says so too.
    let listed = common::cli::run_cli(&bed, &["devices"], "");
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    assert!(listed.stdout.contains("via ccid+hid"), "{}", listed.stdout);
    add_account(&bus, &device);
    assert_eq!(
        codes_at(&bus, 59),
        vec![("Bridge:hid".to_string(), "94287082".to_string())]
    );

    let mut holder = Holder::start(&bed, card.reader());
    // A time not asked before, so the key must answer: over HID.
    assert_eq!(
        codes_at(&bus, 1111111109),
        vec![("Bridge:hid".to_string(), "07081804".to_string())],
        "{}",
        bed.logs()
    );
    assert!(holder.is_holding());
    assert!(
        daemon.log_text().contains("using the key's HID side"),
        "{}",
        daemon.log_text()
    );
    assert_eq!(bus.devices(), vec![device]);
}

#[test]
fn a_hid_key_without_pcscd_comes_and_goes_with_the_usual_signals() {
    let mut bed = TestBed::start();
    // A machine without pcscd.
    stop_pid(bed.pcscd_pid(), Duration::from_secs(3));
    bed.start_dbus();
    let bus = Bus::connect(&bed);
    let socket = bed.dir().join("hid-only.sock");
    let socket_arg = socket.display().to_string();
    let daemon = Daemon::start(&bed, &bus, &["--hid-socket", &socket_arg]);
    assert!(bus.devices().is_empty());
    let log = daemon.log_text();
    assert!(log.contains("0 key(s) at start"), "{log}");

    let signals = bus.watch_signals();
    let mut emulator = HidEmulator::start(&bed, &socket, &["--profile", "nitrokey"]);
    let (_, added) = signals.wait_for(0, WAIT, "InterfacesAdded(HID device)", |s| {
        s.is_added(DEVICE).is_some()
    });
    let device = added.is_added(DEVICE).expect("device path").to_string();
    let reader = bus.str_property(&device, DEVICE, "Reader");
    assert!(
        reader.contains("HID") && reader.contains("hid-only.sock"),
        "{reader}"
    );
    let transports = Vec::<String>::try_from(bus.property(&device, DEVICE, "Transports"))
        .expect("Transports is an as");
    assert_eq!(transports, ["hid"]);
    let account = add_account(&bus, &device);
    assert_eq!(
        codes_at(&bus, 59),
        vec![("Bridge:hid".to_string(), "94287082".to_string())]
    );

    let mark = signals.len();
    emulator.pull();
    signals.wait_for(mark, WAIT, "InterfacesRemoved(device)", |s| {
        s.is_removed(DEVICE) == Some(device.as_str())
    });
    signals.wait_for(mark, WAIT, "InterfacesRemoved(account)", |s| {
        s.is_removed(ACCOUNT) == Some(account.as_str())
    });
    assert!(bus.devices().is_empty());
    assert!(codes_at(&bus, 59).is_empty());
}

#[test]
fn yubikey_otp_slots_are_accounts_of_a_hid_device() {
    let mut bed = TestBed::start();
    bed.start_dbus();
    let bus = Bus::connect(&bed);
    let socket = bed.dir().join("otp.sock");
    let socket_arg = socket.display().to_string();
    let _emulator = HidEmulator::start(
        &bed,
        &socket,
        &["--profile", "yubikey-otp", "--serial", "777"],
    );
    // Program slot 2 with the RFC 6238 seed (the CLI, talking to the key directly).
    let mut add = bed.command(&[
        "--direct",
        "--hid-socket",
        &socket_arg,
        "add",
        "--slot",
        "2",
        "--from",
        "-",
    ]);
    add.env_remove(oathbridge::transport::hid::discovery::SOCKETS_ENV);
    let added = common::cli::run_command(add, B32_SHA1);
    assert_eq!(added.code, 0, "{}", added.stderr);

    let _daemon = Daemon::start_with_devices(&bed, &bus, &["--hid-socket", &socket_arg], 1);
    let device = bus.devices()[0].clone();
    assert!(
        bus.str_property(&device, DEVICE, "Reader")
            .contains("otp.sock")
    );
    // Its slots are Account objects as soon as the daemon serves (before any GetCodes,
    // which would list the key again).
    let accounts = bus.accounts();
    assert_eq!(accounts.len(), 1, "{:?}", bus.managed_objects());
    assert_eq!(bus.str_property(&accounts[0], ACCOUNT, "Name"), "slot 2");
    assert_eq!(
        codes_at(&bus, 59),
        vec![("slot 2".to_string(), "287082".to_string())]
    );
    let refused = bus
        .add_account(
            &[
                ("name", Value::from("x")),
                ("secret", Value::from(SEED_SHA1.to_vec())),
            ],
            &[("device", path_value(&device))],
        )
        .expect_err("an OTP application takes no OATH accounts");
    assert_eq!(refused.short(), "NotSupported", "{refused:?}");
}
