//! Keys coming and going under the running daemon: cards attached and killed, two cards,
//! pcscd killed and restarted (the daemon reconnects by itself), and a key pulled while a
//! Calculate waits for a touch.

mod common;
mod daemon_common;

use std::time::Duration;

use daemon_common::*;
use zbus::zvariant::Value;

fn add_sha1_account(bus: &Bus, device: &str, issuer: &str, touch: bool) -> String {
    let added = bus
        .add_account(
            &[
                ("name", Value::from("hotplug")),
                ("issuer", Value::from(issuer)),
                ("secret", Value::from(SEED_SHA1.to_vec())),
                ("digits", Value::from(8u32)),
                ("touch", Value::from(touch)),
            ],
            &[("device", path_value(device))],
        )
        .unwrap_or_else(|e| panic!("AddAccount on {device} failed: {e:?}"));
    assert_eq!(added.len(), 1, "{added:?}");
    added[0].to_string()
}

/// (id, code) of every entry at t=59, sorted.
fn codes_at_59(bus: &Bus) -> Vec<(String, String)> {
    let mut codes: Vec<(String, String)> = bus
        .get_codes(&[("timestamp", Value::from(59u64))])
        .iter()
        .map(|e| (get_str(e, "id"), get_str(e, "code")))
        .collect();
    codes.sort();
    codes
}

#[test]
fn devices_follow_cards_as_they_come_and_go() {
    let mut bed = common::TestBed::start();
    bed.start_dbus();
    let bus = Bus::connect(&bed);
    let _daemon = Daemon::start(&bed, &bus, &[]);
    assert!(
        bus.devices().is_empty(),
        "no card, no device: {:?}",
        bus.devices()
    );
    assert!(bus.get_codes(&[]).is_empty());
    let nothing = bus
        .add_account(
            &[(
                "uri",
                Value::from(format!("otpauth://totp/A:b?secret={B32_SHA1}")),
            )],
            &[],
        )
        .expect_err("AddAccount without a key must fail");
    assert_eq!(nothing.short(), "NoDevice", "{nothing:?}");

    let signals = bus.watch_signals();
    let mut card0 = bed.attach_card(0, &[]);
    let (mark, added) = signals.wait_for(0, WAIT, "InterfacesAdded(device 0)", |s| {
        s.is_added(DEVICE).is_some()
    });
    let device0 = added.is_added(DEVICE).unwrap().to_string();
    assert!(
        device0.starts_with(&format!("{DEVICES_PATH}/")),
        "{device0}"
    );
    assert_eq!(bus.devices(), vec![device0.clone()]);
    assert_eq!(bus.str_property(&device0, DEVICE, "Reader"), bed.reader(0));
    assert_eq!(bus.str_property(&device0, DEVICE, "Kind"), "hardware");
    let account0 = add_sha1_account(&bus, &device0, "Zero", false);
    assert_eq!(
        codes_at_59(&bus),
        vec![("Zero:hotplug".to_string(), "94287082".to_string())]
    );

    // A second card: a second device.
    let _card1 = bed.attach_card(1, &["--profile", "nitrokey"]);
    let (_, added) = signals.wait_for(mark + 1, WAIT, "InterfacesAdded(device 1)", |s| {
        s.is_added(DEVICE).is_some()
    });
    let device1 = added.is_added(DEVICE).unwrap().to_string();
    assert_ne!(device1, device0);
    let mut both = vec![device0.clone(), device1.clone()];
    both.sort();
    assert_eq!(bus.devices(), both);
    assert_eq!(bus.str_property(&device1, DEVICE, "Reader"), bed.reader(1));
    add_sha1_account(&bus, &device1, "One", false);
    assert_eq!(
        codes_at_59(&bus),
        vec![
            ("One:hotplug".to_string(), "94287082".to_string()),
            ("Zero:hotplug".to_string(), "94287082".to_string())
        ]
    );
    // With two keys, AddAccount needs to be told where.
    let ambiguous = bus
        .add_account(
            &[(
                "uri",
                Value::from(format!("otpauth://totp/A:b?secret={B32_SHA1}")),
            )],
            &[],
        )
        .expect_err("two keys and no device option must fail");
    assert_eq!(ambiguous.short(), "InvalidInput", "{ambiguous:?}");

    // Kill card 0: its device and account objects go, card 1 stays.
    let mark = signals.len();
    card0.unplug();
    signals.wait_for(mark, WAIT, "InterfacesRemoved(device 0)", |s| {
        s.is_removed(DEVICE) == Some(device0.as_str())
    });
    signals.wait_for(mark, WAIT, "InterfacesRemoved(account of device 0)", |s| {
        s.is_removed(ACCOUNT) == Some(account0.as_str())
    });
    assert_eq!(bus.devices(), vec![device1.clone()]);
    assert_eq!(
        codes_at_59(&bus),
        vec![("One:hotplug".to_string(), "94287082".to_string())]
    );
    let gone = bus
        .call(&account0, ACCOUNT, "Calculate", &(59u64,))
        .expect_err("the account of a removed key is gone");
    assert_eq!(
        gone.name, "org.freedesktop.DBus.Error.UnknownObject",
        "{gone:?}"
    );

    // Plugged in again (a fresh emulator: a new, empty key).
    let mark = signals.len();
    bed.reattach(&mut card0);
    signals.wait_for(mark, WAIT, "InterfacesAdded(device 0 again)", |s| {
        s.is_added(DEVICE).is_some()
    });
    assert_eq!(bus.devices().len(), 2, "{:?}", bus.devices());
}

#[test]
fn codes_come_back_after_pcscd_restarts() {
    let mut bed = common::TestBed::start();
    bed.attach_card(0, &[]);
    bed.start_dbus();
    let bus = Bus::connect(&bed);
    let mut daemon = Daemon::start_with_devices(&bed, &bus, &[], 1);
    let devices = bus.devices();
    assert_eq!(devices.len(), 1, "{devices:?}");
    add_sha1_account(&bus, &devices[0], "Restart", false);
    let expected = vec![("Restart:hotplug".to_string(), "94287082".to_string())];
    assert_eq!(codes_at_59(&bus), expected);

    let signals = bus.watch_signals();
    let old_pcscd = bed.pcscd_pid();
    common::proc::signal(old_pcscd, "TERM");
    wait_until(WAIT, "the old pcscd to exit", || {
        (!common::proc::pid_alive(old_pcscd)).then_some(())
    });
    signals.wait_for(0, WAIT, "InterfacesRemoved(device) after pcscd died", |s| {
        s.is_removed(DEVICE) == Some(devices[0].as_str())
    });
    assert!(
        bus.get_codes(&[]).is_empty(),
        "without pcscd, no key answers"
    );

    bed.restart_pcscd();
    assert_ne!(bed.pcscd_pid(), old_pcscd);
    bed.wait_card_present(0, true);
    // The daemon retries once a second: codes come back without restarting it.
    wait_until(WAIT, "codes after the pcscd restart", || {
        (codes_at_59(&bus) == expected).then_some(())
    });
    assert_eq!(bus.devices().len(), 1);
    assert!(
        daemon.wait_exit(Duration::ZERO).is_none(),
        "the daemon exited:\n{}",
        bed.logs()
    );
    assert_eq!(bus.owner_pid(BUS_NAME), Some(daemon.pid()));
}

#[test]
fn key_pulled_during_a_touch_wait_fails_the_call() {
    let mut bed = common::TestBed::start();
    let mut card = bed.attach_card(0, &["--touch", "approve", "--touch-delay-ms", "3000"]);
    bed.start_dbus();
    let bus = Bus::connect(&bed);
    let _daemon = Daemon::start_with_devices(&bed, &bus, &[], 1);
    let device = bus.devices().pop().expect("one device");
    let account = add_sha1_account(&bus, &device, "Pulled", true);
    let signals = bus.watch_signals();

    let call = {
        let conn = bus.conn.clone();
        let path = account.clone();
        runtime().spawn(async move {
            conn.call_method(
                Some(BUS_NAME),
                path.as_str(),
                Some(ACCOUNT),
                "Calculate",
                &(59u64,),
            )
            .await
        })
    };
    wait_property_during(&bus, &device, DEVICE, "TouchPending", &call);
    assert!(!call.is_finished(), "Calculate returned before the touch");
    card.unplug();
    let result = block_on_for(WAIT, "Calculate after the key was pulled", call).expect("join");
    let error = match result {
        Ok(reply) => panic!(
            "Calculate succeeded although the key was pulled: {:?}",
            reply.body().deserialize::<(String, u64, u64)>()
        ),
        Err(zbus::Error::MethodError(name, message, _)) => (name.to_string(), message),
        Err(other) => panic!("transport error instead of an error reply: {other}"),
    };
    assert_eq!(
        error.0,
        "io.github.oathbridge.OathBridge1.Error.DeviceRemoved",
        "a key pulled mid-operation: {error:?}\n{}",
        bed.logs()
    );
    signals.wait_for(0, WAIT, "InterfacesRemoved(device)", |s| {
        s.is_removed(DEVICE) == Some(device.as_str())
    });
    assert!(bus.devices().is_empty());
}
