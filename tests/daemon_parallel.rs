//! GetCodes asks every key at once: a key stalled in a touch wait is reported pending after
//! the caller's wait, and never holds back the other keys' codes.

mod common;
mod daemon_common;

use std::time::Duration;

use daemon_common::{Bus, Daemon, Dict, get_bool, get_str};
use zbus::zvariant::Value;

const ACCOUNT: &str = "io.github.oathbridge.OathBridge1.Account";
const SEED: &[u8] = b"12345678901234567890";

fn add(bus: &Bus, device: &str, name: &str, touch: bool) -> String {
    let added = bus
        .add_account(
            &[
                ("name", Value::from(name)),
                ("issuer", Value::from("Par")),
                ("secret", Value::from(SEED.to_vec())),
                ("digits", Value::from(8u32)),
                ("touch", Value::from(touch)),
            ],
            &[(
                "device",
                Value::from(zbus::zvariant::ObjectPath::try_from(device).expect("path")),
            )],
        )
        .unwrap_or_else(|e| panic!("AddAccount {name}: {e:?}"));
    added[0].to_string()
}

#[test]
fn a_key_waiting_for_touch_is_pending_and_the_others_answer() {
    let mut bed = common::TestBed::start();
    bed.attach_card(0, &[]);
    // Nobody touches this key for 20 s.
    bed.attach_card(1, &["--touch", "approve", "--touch-delay-ms", "20000"]);
    bed.start_dbus();
    let bus = Bus::connect(&bed);
    let _daemon = Daemon::start_with_devices(&bed, &bus, &[], 2);
    let devices = bus.devices();
    let reader_of =
        |path: &str| bus.str_property(path, "io.github.oathbridge.OathBridge1.Device", "Reader");
    let (quick, slow) = if reader_of(&devices[0]).ends_with("00 00") {
        (devices[0].clone(), devices[1].clone())
    } else {
        (devices[1].clone(), devices[0].clone())
    };
    add(&bus, &quick, "quick", false);
    let touchy = add(&bus, &slow, "touchy", true);

    // Stall the slow key's worker in a touch wait.
    let stalled = bus.clone();
    let waiting = std::thread::spawn(move || {
        let _ = stalled.call_for(
            Duration::from_secs(60),
            &touchy,
            ACCOUNT,
            "Calculate",
            &(59u64,),
        );
    });
    std::thread::sleep(Duration::from_millis(300));

    let entries: Vec<Dict> = bus.get_codes(&[
        ("timestamp", Value::from(59u64)),
        ("wait_ms", Value::from(1000u32)),
    ]);
    let quick_code = entries
        .iter()
        .find(|e| e.contains_key("id") && get_str(e, "id") == "Par:quick")
        .map(|e| get_str(e, "code"));
    assert_eq!(quick_code.as_deref(), Some("94287082"), "{entries:#?}");
    let pending: Vec<&Dict> = entries
        .iter()
        .filter(|e| e.contains_key("pending") && get_bool(e, "pending"))
        .collect();
    assert_eq!(pending.len(), 1, "{entries:#?}");
    assert_eq!(get_str(pending[0], "device"), slow);
    assert!(
        !entries
            .iter()
            .any(|e| e.contains_key("id") && get_str(e, "id") == "Par:touchy"),
        "the stalled key's accounts are not listed while it is pending"
    );
    drop(waiting);
}
