//! Secrets in and out of D-Bus: `dbus-monitor` records the private bus for a whole session
//! with the daemon — AddAccount with a seed (as bytes and in a URI), ImportAccounts,
//! SetPassword with `remember` (a real Secret Service: gnome-keyring, as in
//! tests/cli_remember.rs), Lock, Unlock with the password, GetManagedObjects, GetAll,
//! GetCodes, Calculate — and no signal, reply or other message carries a seed (as the
//! byte array dbus-monitor prints, in hex or ASCII, or in base32), the password, or the
//! derived access key (hex, base32, base64).
//!
//! Not checked, because they carry the secrets by design:
//! - the method calls whose arguments are the secrets: Manager.AddAccount,
//!   Manager.ImportAccounts, Device.Unlock, Device.SetPassword;
//! - the daemon's method calls to the Secret Service: `remember` stores the derived key
//!   with CreateItem in a "plain" session (src/secrets.rs), so that call holds the key.
//!
//! Everything else is checked: every signal (PropertiesChanged, InterfacesAdded, …), every
//! method return and error (GetManagedObjects, GetAll, and also the GetCodes and Calculate
//! replies, which carry codes but must not carry a seed), and every other method call.
//! The test also shows that the excluded calls do hold the secrets in the forms searched
//! for, so the search would find them anywhere else.

mod common;
mod daemon_common;

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::TestBed;
use common::keyring::start_keyring;
use common::proc::{require_program, stop_child};
use daemon_common::*;
use data_encoding::{BASE32_NOPAD, BASE64, HEXLOWER};
use zbus::zvariant::Value;

/// A seed sent as bytes: not printable, so dbus-monitor prints it as hex.
const SEED_BYTES: &[u8] = &[
    0xde, 0xad, 0xbe, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0xfe, 0xdc, 0xba, 0x98,
    0x76, 0x54, 0x32, 0x10,
];
/// A seed sent as bytes that are all printable: dbus-monitor prints it as a string.
const SEED_ASCII: &[u8] = b"monitor-ascii-seed-0123456789";
/// Seeds sent inside `otpauth://` URIs (base32), to AddAccount and to ImportAccounts.
const SEED_URI: &[u8] = &[
    0x9a, 0x1f, 0x03, 0xc4, 0x5e, 0x77, 0x20, 0xb1, 0x0d, 0xe8, 0x42, 0x6f, 0x93, 0x11, 0xac, 0x58,
    0xf0, 0x2b, 0x7d, 0x36,
];
const SEED_IMPORT: &[u8] = &[
    0x51, 0xe2, 0x08, 0x9d, 0xb4, 0x3c, 0x6a, 0xf7, 0x12, 0x85, 0xce, 0x49, 0x0b, 0x73, 0xd6, 0x2e,
    0xa0, 0x64, 0x1b, 0xff,
];
const PASSWORD: &str = "monitor-pass-7f3a9c";

/// One message as dbus-monitor printed it.
#[derive(Debug)]
struct Recorded {
    /// "signal", "method call", "method return" or "error".
    kind: String,
    sender: String,
    destination: String,
    interface: String,
    member: String,
    /// The whole text, header line included.
    text: String,
}

impl Recorded {
    fn field(header: &str, name: &str) -> String {
        header
            .split([' ', ';'])
            .find_map(|part| part.strip_prefix(name)?.strip_prefix('='))
            .unwrap_or_default()
            .to_owned()
    }

    fn is_call(&self, interface: &str, member: &str) -> bool {
        self.kind == "method call" && self.interface == interface && self.member == member
    }
}

/// Splits dbus-monitor's default output into messages (a header line at column 0, then
/// the body, indented; strings may span lines).
fn parse_monitor(output: &str) -> Vec<Recorded> {
    const KINDS: [&str; 4] = ["signal", "method call", "method return", "error"];
    let mut messages: Vec<Recorded> = Vec::new();
    for line in output.lines() {
        let kind = KINDS
            .iter()
            .find(|k| line.starts_with(&format!("{k} time=")));
        match kind {
            Some(kind) => messages.push(Recorded {
                kind: kind.to_string(),
                sender: Recorded::field(line, "sender"),
                destination: Recorded::field(line, "destination"),
                interface: Recorded::field(line, "interface"),
                member: Recorded::field(line, "member"),
                text: format!("{line}\n"),
            }),
            None => {
                if let Some(last) = messages.last_mut() {
                    last.text.push_str(line);
                    last.text.push('\n');
                }
            }
        }
    }
    messages
}

/// The forms of one secret that must not appear.
struct Secret {
    what: String,
    /// Searched in the message text as printed.
    plain: Vec<String>,
    /// Searched in the text with all whitespace removed, lowercased (dbus-monitor prints
    /// byte arrays as hex bytes, 16 to a line).
    hex: String,
}

impl Secret {
    fn bytes(what: &str, bytes: &[u8]) -> Secret {
        let mut plain = vec![
            BASE32_NOPAD.encode(bytes),
            BASE32_NOPAD.encode(bytes).to_lowercase(),
            BASE64.encode(bytes),
        ];
        if bytes.iter().all(|b| b.is_ascii_graphic()) {
            plain.push(String::from_utf8_lossy(bytes).into_owned());
        }
        Secret {
            what: what.to_owned(),
            plain,
            hex: HEXLOWER.encode(bytes),
        }
    }

    fn text(what: &str, text: &str) -> Secret {
        let mut secret = Secret::bytes(what, text.as_bytes());
        secret.plain.push(text.to_owned());
        secret
    }

    fn found_in(&self, text: &str) -> bool {
        let squeezed: String = text
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_lowercase();
        self.plain.iter().any(|p| text.contains(p.as_str())) || squeezed.contains(&self.hex)
    }
}

fn failed(bed: &TestBed, what: &str, error: CallError) -> ! {
    panic!("{what}: {error:?}\n{}", bed.logs())
}

fn otpauth(name: &str, seed: &[u8]) -> String {
    format!(
        "otpauth://totp/Monitor:{name}?secret={}&issuer=Monitor&digits=8",
        BASE32_NOPAD.encode(seed)
    )
}

#[test]
fn no_signal_or_reply_carries_a_seed_the_password_or_the_access_key() {
    let dbus_monitor = require_program("dbus-monitor", "dbus-bin");
    let mut bed = TestBed::start();
    bed.attach_card(0, &[]);
    let address = bed.start_dbus();
    start_keyring(&bed);
    let bus = Bus::connect(&bed);

    // dbus-monitor for the whole session (we run as the bus's uid: it becomes a monitor
    // and sees every message). Ready once it shows our own marker signal.
    let log_path = bed.dir().join("bus-monitor.log");
    let log = File::create(&log_path).expect("bus-monitor.log");
    let mut monitor_cmd = Command::new(dbus_monitor);
    monitor_cmd.args(["--address", &address]);
    bed.apply_env(&mut monitor_cmd);
    let mut monitor = monitor_cmd
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("dup"))
        .stderr(log)
        .spawn()
        .expect("start dbus-monitor");
    let read = || String::from_utf8_lossy(&fs::read(&log_path).unwrap_or_default()).into_owned();
    let mark = |text: &str| {
        let conn = bus.conn.clone();
        let text = text.to_owned();
        block_on(async move {
            conn.emit_signal(
                None::<&str>,
                "/io/github/oathbridge/Test",
                "io.github.oathbridge.Test",
                "Marker",
                &(text,),
            )
            .await
        })
        .expect("emit the marker signal");
    };
    wait_until(WAIT, "dbus-monitor to record", || {
        mark("monitor-start");
        std::thread::sleep(Duration::from_millis(50));
        read().contains("monitor-start").then_some(())
    });

    // The session.
    let _daemon = Daemon::start_with_devices(&bed, &bus, &[], 1);
    let device = bus.devices().remove(0);
    let device_id = bus.str_property(&device, DEVICE, "Id");
    bus.add_account(
        &[
            ("issuer", Value::from("Monitor")),
            ("name", Value::from("bytes")),
            ("secret", Value::from(SEED_BYTES.to_vec())),
            ("digits", Value::from(8u32)),
        ],
        &[],
    )
    .unwrap_or_else(|e| failed(&bed, "AddAccount with a seed", e));
    bus.add_account(&[("uri", Value::from(otpauth("uri", SEED_URI)))], &[])
        .unwrap_or_else(|e| failed(&bed, "AddAccount with a URI", e));
    let import = vec![
        dict(&[("uri", Value::from(otpauth("import", SEED_IMPORT)))]),
        dict(&[
            ("issuer", Value::from("Monitor")),
            ("name", Value::from("ascii")),
            ("secret", Value::from(SEED_ASCII.to_vec())),
            ("digits", Value::from(8u32)),
        ]),
    ];
    for dry_run in [true, false] {
        bus.call(
            ROOT_PATH,
            MANAGER,
            "ImportAccounts",
            &(import.clone(), dict(&[("dry_run", Value::from(dry_run))])),
        )
        .unwrap_or_else(|e| failed(&bed, "ImportAccounts", e));
    }
    bus.call(
        device.as_str(),
        DEVICE,
        "SetPassword",
        &("", PASSWORD, true),
    )
    .unwrap_or_else(|e| failed(&bed, "SetPassword with remember", e));
    assert!(
        bus.bool_property(&device, DEVICE, "Remembered"),
        "SetPassword(remember) did not remember\n{}",
        bed.logs()
    );
    bus.call(device.as_str(), DEVICE, "Lock", &())
        .unwrap_or_else(|e| failed(&bed, "Lock", e));
    bus.call(device.as_str(), DEVICE, "Unlock", &(PASSWORD, true))
        .unwrap_or_else(|e| failed(&bed, "Unlock with remember", e));
    let accounts = bus.accounts();
    assert_eq!(accounts.len(), 4, "{accounts:?}\n{}", bed.logs());
    for path in &accounts {
        bus.call(
            path.as_str(),
            "org.freedesktop.DBus.Properties",
            "GetAll",
            &(ACCOUNT,),
        )
        .unwrap_or_else(|e| failed(&bed, "GetAll Account", e));
        for at in [0u64, 59] {
            bus.call(path.as_str(), ACCOUNT, "Calculate", &(at,))
                .unwrap_or_else(|e| failed(&bed, "Calculate", e));
        }
    }
    bus.call(
        device.as_str(),
        "org.freedesktop.DBus.Properties",
        "GetAll",
        &(DEVICE,),
    )
    .unwrap_or_else(|e| failed(&bed, "GetAll Device", e));
    let codes = bus.get_codes(&[]);
    assert_eq!(codes.len(), 4, "{codes:#?}");
    let daemon_name = bus.name_owner(BUS_NAME);
    let secrets_name = bus.name_owner("org.freedesktop.secrets");
    wait_until(WAIT, "the end marker at dbus-monitor", || {
        mark("monitor-end");
        std::thread::sleep(Duration::from_millis(50));
        read().contains("monitor-end").then_some(())
    });
    stop_child(&mut monitor, Duration::from_secs(2));

    // The key the daemon derived and remembered (read after the recording ended).
    let key = {
        let conn = bus.conn.clone();
        let id = device_id.clone();
        block_on(async move {
            let store = oathbridge::secrets::SecretStore::open(&conn).await?;
            store.get(&id).await
        })
        .unwrap_or_else(|e| panic!("read the remembered key: {e}"))
        .expect("the daemon remembered a key")
    };
    assert_eq!(key.len(), 16, "a 16-byte access key");

    let secrets = [
        Secret::bytes("the seed sent as bytes", SEED_BYTES),
        Secret::bytes("the printable seed", SEED_ASCII),
        Secret::bytes("the seed in AddAccount's URI", SEED_URI),
        Secret::bytes("the seed in ImportAccounts' URI", SEED_IMPORT),
        Secret::text("the password", PASSWORD),
        Secret::bytes("the derived access key", &key),
    ];
    let messages = parse_monitor(&read());
    let secret_call = |m: &Recorded| {
        m.is_call(MANAGER, "AddAccount")
            || m.is_call(MANAGER, "ImportAccounts")
            || m.is_call(DEVICE, "Unlock")
            || m.is_call(DEVICE, "SetPassword")
    };
    let to_secret_service = |m: &Recorded| {
        m.kind == "method call"
            && m.sender == daemon_name
            && (m.destination == secrets_name || m.destination == "org.freedesktop.secrets")
    };
    let mut checked: BTreeMap<String, usize> = BTreeMap::new();
    let mut leaks = Vec::new();
    let mut excluded_text = String::new();
    for message in &messages {
        if secret_call(message) || to_secret_service(message) {
            excluded_text.push_str(&message.text);
            continue;
        }
        let label = match message.kind.as_str() {
            "signal" | "method call" => format!("{} {}", message.kind, message.member),
            other => other.to_owned(),
        };
        *checked.entry(label).or_default() += 1;
        for secret in &secrets {
            if secret.found_in(&message.text) {
                leaks.push(format!("{} in:\n{}", secret.what, message.text));
            }
        }
    }
    assert!(
        leaks.is_empty(),
        "secrets on the bus outside their own calls:\n{}",
        leaks.join("\n")
    );

    // Not vacuous: the excluded calls hold every secret in a form searched for …
    for secret in &secrets {
        assert!(
            secret.found_in(&excluded_text),
            "{} is not in the calls that carry it: the search would miss it elsewhere",
            secret.what
        );
    }
    // … and the messages the issue names were there and checked.
    for expected in [
        "signal InterfacesAdded",
        "signal PropertiesChanged",
        "method call GetManagedObjects",
        "method call GetAll",
        "method call GetCodes",
        "method call Calculate",
        "method return",
    ] {
        assert!(
            checked.contains_key(expected),
            "no {expected} recorded: {checked:?}"
        );
    }
}
