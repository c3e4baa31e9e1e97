//! The D-Bus API of the real `oathbridge daemon`, through a private dbus-daemon, a private
//! pcscd and emulated cards: introspection against the shipped XML, RFC 6238 codes from
//! GetCodes (zbus and `gdbus`), touch (TouchPending, notifications, timeout), passwords,
//! AddAccount errors, Rename, Delete and Reset.
//!
//! Not tested: access control (`check_caller` refuses other uids). That needs a second
//! uid on the same bus, which the test bed does not provide.

mod common;
mod daemon_common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use daemon_common::*;
use zbus::zvariant::Value;

// ---------------------------------------------------------------------------------------
// Helpers

/// A canonical, comparable description of one interface: members sorted by name, args in
/// order, annotations; doc comments ignored.
fn describe(iface: &zbus_xml::Interface<'_>) -> Vec<String> {
    let annotations = |list: &[zbus_xml::Annotation]| -> Vec<String> {
        let mut out: Vec<String> = list
            .iter()
            .map(|a| format!("    annotation {}={}", a.name(), a.value()))
            .collect();
        out.sort();
        out
    };
    let args = |list: &[zbus_xml::Arg]| -> Vec<String> {
        list.iter()
            .map(|a| {
                format!(
                    "    arg {} {} {:?}{}",
                    a.name().unwrap_or("<unnamed>"),
                    a.ty().inner(),
                    a.direction(),
                    annotations(a.annotations()).join("")
                )
            })
            .collect()
    };
    let mut members: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for m in iface.methods() {
        let mut lines = args(m.args());
        lines.extend(annotations(m.annotations()));
        members.insert(format!("  method {}", m.name()), lines);
    }
    for s in iface.signals() {
        let mut lines = args(s.args());
        lines.extend(annotations(s.annotations()));
        members.insert(format!("  signal {}", s.name()), lines);
    }
    for p in iface.properties() {
        members.insert(
            format!(
                "  property {} {} {:?}",
                p.name(),
                p.ty().inner(),
                p.access()
            ),
            annotations(p.annotations()),
        );
    }
    let mut out = vec![format!("interface {}", iface.name())];
    out.extend(annotations(iface.annotations()));
    for (head, lines) in members {
        out.push(head);
        out.extend(lines);
    }
    out
}

fn interface_of(xml: &str, name: &str, origin: &str) -> Vec<String> {
    let node = zbus_xml::Node::from_reader(xml.as_bytes())
        .unwrap_or_else(|e| panic!("{origin}: not valid introspection XML: {e}\n{xml}"));
    let iface = node
        .interfaces()
        .iter()
        .find(|i| i.name().as_str() == name)
        .unwrap_or_else(|| panic!("{origin}: no interface {name}:\n{xml}"));
    describe(iface)
}

fn shipped(name: &str) -> Vec<String> {
    let path = format!("{}/dbus/{name}.xml", env!("CARGO_MANIFEST_DIR"));
    let xml = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    interface_of(&xml, name, &path)
}

fn entry_ids(entries: &[Dict]) -> BTreeSet<String> {
    entries.iter().map(|e| get_str(e, "id")).collect()
}

fn code_of(entries: &[Dict], id: &str) -> String {
    let entry = entries
        .iter()
        .find(|e| get_str(e, "id") == id)
        .unwrap_or_else(|| panic!("no entry {id:?} in {entries:#?}"));
    get_str(entry, "code")
}

fn rfc_uri(issuer: &str, name: &str, algorithm: &str, secret: &str) -> String {
    format!(
        "otpauth://totp/{issuer}:{name}?secret={secret}&issuer={issuer}&algorithm={algorithm}&digits=8"
    )
}

/// One card in slot 0, a daemon, and the card's device object path.
fn one_card(card_args: &[&str]) -> (common::TestBed, Bus, Daemon, String) {
    let mut bed = common::TestBed::start();
    bed.attach_card(0, card_args);
    bed.start_dbus();
    let bus = Bus::connect(&bed);
    let daemon = Daemon::start_with_devices(&bed, &bus, &[], 1);
    let devices = bus.devices();
    assert_eq!(
        devices.len(),
        1,
        "one card, one device: {devices:?}\n{}",
        bed.logs()
    );
    let device = devices[0].clone();
    (bed, bus, daemon, device)
}

fn add_fields_account(
    bus: &Bus,
    issuer: &str,
    name: &str,
    options: &[(&str, Value<'_>)],
) -> String {
    let added = bus
        .add_account(
            &[
                ("name", Value::from(name)),
                ("issuer", Value::from(issuer)),
                ("secret", Value::from(SEED_SHA1.to_vec())),
                ("digits", Value::from(8u32)),
            ],
            options,
        )
        .unwrap_or_else(|e| panic!("AddAccount {issuer}:{name} failed: {e:?}"));
    assert_eq!(added.len(), 1, "one key, one new account: {added:?}");
    added[0].to_string()
}

// ---------------------------------------------------------------------------------------
// 1. Introspection

#[test]
fn introspection_matches_the_shipped_xml() {
    let (bed, bus, _daemon, device) = one_card(&[]);
    let account = add_fields_account(&bus, "Intro", "spect", &[]);
    for (path, name) in [
        (ROOT_PATH, MANAGER),
        (device.as_str(), DEVICE),
        (account.as_str(), ACCOUNT),
    ] {
        let live_xml = bus.introspect(path);
        let live = interface_of(&live_xml, name, &format!("Introspect({path})"));
        let expected = shipped(name);
        assert_eq!(
            live.join("\n"),
            expected.join("\n"),
            "the live {name} at {path} differs from dbus/{name}.xml (left: live, right: file)\n{}",
            bed.logs()
        );
    }
    // The root also serves the ObjectManager the clients rely on.
    let root = zbus_xml::Node::from_reader(bus.introspect(ROOT_PATH).as_bytes()).unwrap();
    assert!(
        root.interfaces()
            .iter()
            .any(|i| i.name().as_str() == "org.freedesktop.DBus.ObjectManager"),
        "root has no ObjectManager"
    );
    let version = bus.str_property(ROOT_PATH, MANAGER, "Version");
    assert_eq!(version, env!("CARGO_PKG_VERSION"));
}

// ---------------------------------------------------------------------------------------
// 2. GetCodes: RFC 6238 values, filters, object paths, gdbus

#[test]
fn get_codes_returns_rfc6238_codes() {
    let (bed, bus, _daemon, device) = one_card(&[]);
    let algorithms = [
        ("sha1", "SHA1", SEED_SHA1, B32_SHA1),
        ("sha256", "SHA256", SEED_SHA256, B32_SHA256),
        ("sha512", "SHA512", SEED_SHA512, B32_SHA512),
    ];
    for (name, upper, seed, b32) in algorithms {
        let by_uri = bus
            .add_account(
                &[("uri", Value::from(rfc_uri("ByUri", name, upper, b32)))],
                &[],
            )
            .unwrap_or_else(|e| panic!("AddAccount by uri ({name}) failed: {e:?}"));
        let by_fields = bus
            .add_account(
                &[
                    ("name", Value::from(name)),
                    ("issuer", Value::from("ByFields")),
                    ("secret", Value::from(seed.to_vec())),
                    ("algorithm", Value::from(name)),
                    ("digits", Value::from(8u32)),
                ],
                &[],
            )
            .unwrap_or_else(|e| panic!("AddAccount by fields ({name}) failed: {e:?}"));
        assert_eq!(by_uri.len(), 1, "{by_uri:?}");
        assert_eq!(by_fields.len(), 1, "{by_fields:?}");
        assert_ne!(by_uri[0], by_fields[0]);
        assert_eq!(
            bus.str_property(by_fields[0].as_str(), ACCOUNT, "Algorithm"),
            name
        );
    }
    // A hidden account (issuer "_hidden").
    add_fields_account(&bus, "_hidden", "backup", &[]);

    for (at, sha1, sha256, sha512) in RFC_VECTORS {
        let entries = bus.get_codes(&[("timestamp", Value::from(at))]);
        assert_eq!(
            entry_ids(&entries),
            BTreeSet::from(
                [
                    "ByUri:sha1",
                    "ByUri:sha256",
                    "ByUri:sha512",
                    "ByFields:sha1",
                    "ByFields:sha256",
                    "ByFields:sha512"
                ]
                .map(String::from)
            ),
            "hidden accounts are left out by default"
        );
        for issuer in ["ByUri", "ByFields"] {
            assert_eq!(code_of(&entries, &format!("{issuer}:sha1")), sha1, "t={at}");
            assert_eq!(
                code_of(&entries, &format!("{issuer}:sha256")),
                sha256,
                "t={at}"
            );
            assert_eq!(
                code_of(&entries, &format!("{issuer}:sha512")),
                sha512,
                "t={at}"
            );
        }
        for entry in &entries {
            assert_eq!(get_u64(entry, "valid_from"), at / 30 * 30);
            assert_eq!(get_u64(entry, "valid_to"), at / 30 * 30 + 30);
            assert_eq!(get_str(entry, "type"), "totp");
            assert!(!get_bool(entry, "touch"));
            assert_eq!(get_str(entry, "device"), device);
            let id = get_str(entry, "id");
            let account = get_str(entry, "account");
            assert!(
                account.starts_with(&format!("{ACCOUNTS_PATH}/")),
                "account path {account}"
            );
            // The account object exists and is the same account.
            assert_eq!(bus.str_property(&account, ACCOUNT, "Id"), id);
            assert_eq!(bus.str_property(&account, ACCOUNT, "Device"), device);
            assert_eq!(
                get_str(entry, "issuer"),
                bus.str_property(&account, ACCOUNT, "Issuer")
            );
            assert_eq!(
                get_str(entry, "name"),
                bus.str_property(&account, ACCOUNT, "Name")
            );
        }
    }
    assert!(bus.devices().contains(&device));

    // Filters.
    let hidden = bus.get_codes(&[
        ("timestamp", Value::from(59u64)),
        ("show_hidden", Value::from(true)),
    ]);
    assert_eq!(hidden.len(), 7, "show_hidden adds the hidden account");
    assert_eq!(code_of(&hidden, "_hidden:backup"), "94287082");
    let query = bus.get_codes(&[
        ("timestamp", Value::from(59u64)),
        ("query", Value::from("byfields")),
    ]);
    assert_eq!(
        entry_ids(&query),
        BTreeSet::from(["ByFields:sha1", "ByFields:sha256", "ByFields:sha512"].map(String::from)),
        "query is a case-insensitive substring"
    );
    let exact = bus.get_codes(&[
        ("timestamp", Value::from(59u64)),
        ("query", Value::from("ByUri:sha256")),
    ]);
    assert_eq!(
        entry_ids(&exact),
        BTreeSet::from(["ByUri:sha256".to_string()])
    );
    let none = bus.get_codes(&[("query", Value::from("no such account"))]);
    assert!(none.is_empty(), "{none:?}");
    // Without a timestamp: codes for now.
    let now = bus.get_codes(&[]);
    assert_eq!(now.len(), 6);
    let unix_now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    for entry in &now {
        let from = get_u64(entry, "valid_from");
        assert!(
            from <= unix_now && unix_now < from + 60,
            "valid_from {from} vs now {unix_now}"
        );
        assert_eq!(get_str(entry, "code").len(), 8);
    }

    // The exact signatures shells use.
    let (ok, out, err) = gdbus_call(
        &bed,
        ROOT_PATH,
        "io.github.oathbridge.OathBridge1.Manager.AddAccount",
        &[
            &format!(
                "{{'uri': <'{}'>}}",
                rfc_uri("Shell", "gdbus", "SHA256", B32_SHA256)
            ),
            "@a{sv} {}",
        ],
    );
    assert!(ok, "gdbus AddAccount failed: {err}\n{}", bed.logs());
    assert!(
        out.contains(ACCOUNTS_PATH),
        "AddAccount returns the new path: {out}"
    );
    let (ok, out, err) = gdbus_call(
        &bed,
        ROOT_PATH,
        "io.github.oathbridge.OathBridge1.Manager.GetCodes",
        &["{'timestamp': <uint64 1111111109>, 'query': <'Shell:gdbus'>}"],
    );
    assert!(ok, "gdbus GetCodes failed: {err}\n{}", bed.logs());
    assert!(
        out.contains("'code': <'68084774'>"),
        "gdbus GetCodes output lacks the RFC SHA256 code: {out}"
    );
    assert!(out.contains("'id': <'Shell:gdbus'>"), "{out}");
    assert!(!out.contains("ByUri"), "the query filters: {out}");
    // An empty dictionary, as `gdbus call … '{}'` sends it.
    let (ok, out, err) = gdbus_call(
        &bed,
        ROOT_PATH,
        "io.github.oathbridge.OathBridge1.Manager.GetCodes",
        &["{}"],
    );
    assert!(ok, "gdbus GetCodes {{}} failed: {err}");
    assert_eq!(out.matches("'code'").count(), 7, "{out}");
}

// ---------------------------------------------------------------------------------------
// 3. Touch: TouchPending, notifications, timeout

#[test]
fn calculate_with_touch_pending_notification_and_timeout() {
    let mut bed = common::TestBed::start();
    bed.attach_card(0, &["--touch", "approve", "--touch-delay-ms", "1500"]);
    bed.attach_card(1, &["--touch", "deny", "--touch-timeout-ms", "500"]);
    bed.start_dbus();
    let notifications = NotificationServer::start(&bed);
    let bus = Bus::connect(&bed);
    let _daemon = Daemon::start_with_devices(&bed, &bus, &[], 2);
    let devices = bus.devices();
    assert_eq!(devices.len(), 2, "{devices:?}\n{}", bed.logs());
    let by_reader = |reader: &str| -> String {
        devices
            .iter()
            .find(|d| bus.str_property(d, DEVICE, "Reader") == reader)
            .unwrap_or_else(|| panic!("no device in {reader}: {devices:?}"))
            .clone()
    };
    let approving = by_reader(&bed.reader(0));
    let denying = by_reader(&bed.reader(1));
    let signals = bus.watch_signals();

    let touch = [("touch", Value::from(true))];
    let approve_account = {
        let options = [("device", path_value(&approving))];
        let added = bus
            .add_account(
                &[
                    ("name", Value::from("approve")),
                    ("issuer", Value::from("Touch")),
                    ("secret", Value::from(SEED_SHA1.to_vec())),
                    ("digits", Value::from(8u32)),
                    touch[0].clone(),
                ],
                &options,
            )
            .expect("AddAccount with touch");
        added[0].to_string()
    };
    let deny_account = {
        let options = [("device", path_value(&denying))];
        let added = bus
            .add_account(
                &[
                    ("name", Value::from("deny")),
                    ("issuer", Value::from("Touch")),
                    ("secret", Value::from(SEED_SHA1.to_vec())),
                    ("digits", Value::from(8u32)),
                    touch[0].clone(),
                ],
                &options,
            )
            .expect("AddAccount with touch");
        added[0].to_string()
    };
    assert!(bus.bool_property(&approve_account, ACCOUNT, "RequiresTouch"));
    // GetCodes lists touch accounts without a code (no touch is asked for).
    let entries = bus.get_codes(&[("timestamp", Value::from(59u64))]);
    let touch_entry = entries
        .iter()
        .find(|e| get_str(e, "id") == "Touch:approve")
        .expect("touch account listed");
    assert!(get_bool(touch_entry, "touch"));
    assert!(!touch_entry.contains_key("code"), "{touch_entry:?}");
    assert!(!bus.bool_property(&approving, DEVICE, "TouchPending"));

    // Approve after 1.5 s: meanwhile TouchPending is true, read on another connection.
    let caller = Bus::connect(&bed);
    let started = Instant::now();
    let call = {
        let conn = caller.conn.clone();
        let path = approve_account.clone();
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
    wait_property_during(&bus, &approving, DEVICE, "TouchPending", &call);
    let reply = block_on_for(WAIT, "Calculate with touch", call)
        .expect("join")
        .unwrap_or_else(|e| panic!("Calculate with touch failed: {e}\n{}", bed.logs()));
    let elapsed = started.elapsed();
    let (code, from, to) = reply
        .body()
        .deserialize::<(String, u64, u64)>()
        .expect("Calculate returns (s, t, t)");
    assert_eq!((code.as_str(), from, to), ("94287082", 30, 60));
    assert!(
        elapsed >= Duration::from_millis(1400),
        "the touch took {elapsed:?}, not ≥ 1.5 s: was it asked for?"
    );
    wait_until(WAIT, "TouchPending = false after the touch", || {
        (!bus.bool_property(&approving, DEVICE, "TouchPending")).then_some(())
    });
    // Both changes were signalled, in order.
    let touch_changed = |value: bool| {
        let approving = approving.clone();
        move |s: &Signal| {
            matches!(s, Signal::PropertiesChanged { path, interface, changed, .. }
                if *path == approving && interface == DEVICE
                    && changed.get("TouchPending").map(|v| &**v) == Some(&Value::Bool(value)))
        }
    };
    let (on, _) = signals.wait_for(
        0,
        WAIT,
        "PropertiesChanged(TouchPending=true)",
        touch_changed(true),
    );
    signals.wait_for(
        on + 1,
        WAIT,
        "PropertiesChanged(TouchPending=false)",
        touch_changed(false),
    );

    // The notification server was asked to show the prompt, then to withdraw it.
    let calls = wait_until(WAIT, "Notify and CloseNotification", || {
        let calls = notifications.calls();
        calls
            .iter()
            .any(|c| matches!(c, NotifyCall::Close { .. }))
            .then_some(calls)
    });
    let NotifyCall::Notify {
        id, summary, body, ..
    } = &calls[0]
    else {
        panic!("the first notification call is not Notify: {calls:?}");
    };
    assert!(
        body.contains("Touch:approve"),
        "the prompt names the account: {body:?}"
    );
    for text in [summary, body] {
        assert!(
            !text.contains("94287082"),
            "a code in the notification: {text:?}"
        );
    }
    assert_eq!(
        calls[1],
        NotifyCall::Close { id: *id },
        "the prompt is withdrawn: {calls:?}"
    );
    assert_eq!(calls.len(), 2, "{calls:?}");

    // Deny: the card answers 6982 after 500 ms → TouchTimeout.
    let error = bus
        .call(&deny_account, ACCOUNT, "Calculate", &(59u64,))
        .expect_err("Calculate without a touch must fail");
    assert_eq!(
        error.name,
        "io.github.oathbridge.OathBridge1.Error.TouchTimeout",
        "{error:?}\n{}",
        bed.logs()
    );
    wait_until(WAIT, "TouchPending = false after the timeout", || {
        (!bus.bool_property(&denying, DEVICE, "TouchPending")).then_some(())
    });
    let calls = wait_until(WAIT, "the second prompt withdrawn", || {
        let calls = notifications.calls();
        (calls.len() >= 4).then_some(calls)
    });
    match (&calls[2], &calls[3]) {
        (NotifyCall::Notify { id, body, .. }, NotifyCall::Close { id: closed }) => {
            assert!(body.contains("Touch:deny"), "{body:?}");
            assert_eq!(id, closed);
        }
        other => panic!("expected Notify then CloseNotification: {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// 4. Passwords

#[test]
fn password_lock_unlock_and_rate_limit() {
    let (bed, bus, _daemon, device) = one_card(&[]);
    let signals = bus.watch_signals();
    let locked_changed = |value: bool| {
        let device = device.clone();
        move |s: &Signal| {
            matches!(s, Signal::PropertiesChanged { path, interface, changed, .. }
                if *path == device && interface == DEVICE
                    && changed.get("Locked").map(|v| &**v) == Some(&Value::Bool(value)))
        }
    };
    add_fields_account(&bus, "Pw", "alice", &[]);
    let at = [("timestamp", Value::from(59u64))];
    assert_eq!(code_of(&bus.get_codes(&at), "Pw:alice"), "94287082");
    assert!(!bus.bool_property(&device, DEVICE, "Locked"));

    bus.call(&device, DEVICE, "SetPassword", &("", "pw", false))
        .unwrap_or_else(|e| panic!("SetPassword failed: {e:?}\n{}", bed.logs()));
    assert!(
        !bus.bool_property(&device, DEVICE, "Locked"),
        "setting the password keeps the key unlocked"
    );
    assert_eq!(code_of(&bus.get_codes(&at), "Pw:alice"), "94287082");

    let mark = signals.len();
    bus.call(&device, DEVICE, "Lock", &()).expect("Lock");
    assert!(bus.bool_property(&device, DEVICE, "Locked"));
    signals.wait_for(
        mark,
        WAIT,
        "PropertiesChanged(Locked=true)",
        locked_changed(true),
    );
    let locked = bus.get_codes(&at);
    assert!(
        locked.iter().all(|e| get_str(e, "device") != device),
        "a locked key contributes no codes: {locked:?}"
    );

    let wrong = bus
        .call(&device, DEVICE, "Unlock", &("wrong", false))
        .expect_err("a wrong password must fail");
    assert_eq!(wrong.short(), "WrongPassword", "{wrong:?}");
    let mut failed_at = Instant::now();
    let mut attempts = 1;
    let limited = loop {
        let error = bus
            .call(&device, DEVICE, "Unlock", &("wrong", false))
            .expect_err("another wrong attempt must fail");
        assert_eq!(error.short(), "WrongPassword", "{error:?}");
        attempts += 1;
        if error.message.contains("try again in") {
            break error;
        }
        // Not limited: only acceptable if this machine was too slow to retry within the
        // 500 ms back-off (the back-off doubles, so a later attempt gets limited).
        assert!(
            failed_at.elapsed() >= Duration::from_millis(500) && attempts < 4,
            "attempt {attempts} came {:?} after a wrong password and was not rate-limited: \
             {error:?}",
            failed_at.elapsed()
        );
        failed_at = Instant::now();
    };
    assert!(bus.bool_property(&device, DEVICE, "Locked"));

    // Even the right password waits for the back-off; then it works.
    let wait_s: u64 = limited
        .message
        .split("try again in ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no wait in {limited:?}"));
    assert!(
        (1..=3).contains(&wait_s),
        "a back-off of at most 2 s is announced as {wait_s} s"
    );
    std::thread::sleep(Duration::from_secs(wait_s));
    let mark = signals.len();
    bus.call(&device, DEVICE, "Unlock", &("pw", false))
        .unwrap_or_else(|e| panic!("Unlock with the right password failed: {e:?}"));
    assert!(!bus.bool_property(&device, DEVICE, "Locked"));
    signals.wait_for(
        mark,
        WAIT,
        "PropertiesChanged(Locked=false)",
        locked_changed(false),
    );
    assert_eq!(code_of(&bus.get_codes(&at), "Pw:alice"), "94287082");

    // Clearing the password: Lock no longer hides anything.
    bus.call(&device, DEVICE, "SetPassword", &("pw", "", false))
        .unwrap_or_else(|e| panic!("clearing the password failed: {e:?}"));
    bus.call(&device, DEVICE, "Lock", &()).expect("Lock");
    assert!(!bus.bool_property(&device, DEVICE, "Locked"));
    assert_eq!(code_of(&bus.get_codes(&at), "Pw:alice"), "94287082");
}

// ---------------------------------------------------------------------------------------
// 5. AddAccount errors, Rename, Delete, Reset

#[test]
fn add_account_errors_rename_delete_and_reset() {
    let (bed, bus, _daemon, device) = one_card(&[]);
    let signals = bus.watch_signals();
    let first = add_fields_account(&bus, "Keep", "me", &[]);
    let at = [("timestamp", Value::from(59u64))];
    let before = entry_ids(&bus.get_codes(&at));
    let accounts_before = bus.accounts();

    let bad: [(&str, Vec<(&str, Value<'_>)>); 5] = [
        (
            "a malformed URI",
            vec![("uri", Value::from("otpauth:/nope"))],
        ),
        (
            "a URI with a bad secret",
            vec![("uri", Value::from("otpauth://totp/X:y?secret=!!!!"))],
        ),
        (
            "9 digits",
            vec![
                ("name", Value::from("nine")),
                ("secret", Value::from(SEED_SHA1.to_vec())),
                ("digits", Value::from(9u32)),
            ],
        ),
        ("a missing secret", vec![("name", Value::from("nosecret"))]),
        (
            "a secret of the wrong type",
            vec![
                ("name", Value::from("str")),
                ("secret", Value::from("GEZDGNBV")),
            ],
        ),
    ];
    for (what, credential) in bad {
        let error = bus
            .add_account(&credential, &[])
            .expect_err(&format!("AddAccount with {what} must fail"));
        assert_eq!(error.short(), "InvalidInput", "{what}: {error:?}");
        assert!(!error.message.is_empty(), "{what}: an empty message");
    }
    assert_eq!(
        entry_ids(&bus.get_codes(&at)),
        before,
        "nothing was written"
    );
    assert_eq!(
        bus.accounts(),
        accounts_before,
        "no account object was added"
    );

    // Rename: same object, new Id, PropertiesChanged.
    let mark = signals.len();
    bus.call(&first, ACCOUNT, "Rename", &("Kept", "renamed"))
        .unwrap_or_else(|e| panic!("Rename failed: {e:?}\n{}", bed.logs()));
    assert_eq!(bus.str_property(&first, ACCOUNT, "Id"), "Kept:renamed");
    assert_eq!(bus.str_property(&first, ACCOUNT, "Issuer"), "Kept");
    assert_eq!(bus.str_property(&first, ACCOUNT, "Name"), "renamed");
    let (_, changed) = signals.wait_for(mark, WAIT, "PropertiesChanged(Id)", |s| {
        matches!(s, Signal::PropertiesChanged { path, interface, changed, .. }
            if *path == first && interface == ACCOUNT && changed.contains_key("Id"))
    });
    let Signal::PropertiesChanged { changed, .. } = changed else {
        unreachable!()
    };
    assert_eq!(get_str(&changed, "Id"), "Kept:renamed");
    let renamed = bus.get_codes(&at);
    assert_eq!(code_of(&renamed, "Kept:renamed"), "94287082");
    assert!(!entry_ids(&renamed).contains("Keep:me"));
    assert_eq!(
        renamed
            .iter()
            .find(|e| get_str(e, "id") == "Kept:renamed")
            .map(|e| get_str(e, "account")),
        Some(first.clone()),
        "the renamed account keeps its object"
    );
    // Renaming to an existing id fails.
    let second = add_fields_account(&bus, "Other", "one", &[]);
    let clash = bus
        .call(&second, ACCOUNT, "Rename", &("Kept", "renamed"))
        .expect_err("renaming onto an existing account must fail");
    assert_eq!(clash.short(), "InvalidInput", "{clash:?}");

    // Delete: the object goes away with InterfacesRemoved.
    let mark = signals.len();
    bus.call(&second, ACCOUNT, "Delete", &())
        .unwrap_or_else(|e| panic!("Delete failed: {e:?}"));
    signals.wait_for(mark, WAIT, "InterfacesRemoved(account)", |s| {
        s.is_removed(ACCOUNT) == Some(second.as_str())
    });
    assert!(!bus.accounts().contains(&second));
    let gone = bus
        .try_property(&second, ACCOUNT, "Id")
        .expect_err("a deleted account's object is gone");
    assert_eq!(
        gone.name, "org.freedesktop.DBus.Error.UnknownObject",
        "{gone:?}"
    );
    assert!(!entry_ids(&bus.get_codes(&at)).contains("Other:one"));

    // Reset: the device object is replaced by a new one, the accounts are gone.
    let old_id = bus.str_property(&device, DEVICE, "Id");
    let mark = signals.len();
    bus.call(&device, DEVICE, "Reset", &())
        .unwrap_or_else(|e| panic!("Reset failed: {e:?}\n{}", bed.logs()));
    signals.wait_for(mark, WAIT, "InterfacesRemoved(old device)", |s| {
        s.is_removed(DEVICE) == Some(device.as_str())
    });
    signals.wait_for(mark, WAIT, "InterfacesRemoved(its account)", |s| {
        s.is_removed(ACCOUNT) == Some(first.as_str())
    });
    let (_, added) = signals.wait_for(mark, WAIT, "InterfacesAdded(new device)", |s| {
        s.is_added(DEVICE).is_some()
    });
    let new_device = added.is_added(DEVICE).unwrap().to_string();
    assert_ne!(new_device, device, "the reset key is a new device object");
    assert_eq!(bus.devices(), vec![new_device.clone()]);
    assert_ne!(bus.str_property(&new_device, DEVICE, "Id"), old_id);
    assert!(bus.accounts().is_empty(), "{:?}", bus.accounts());
    assert!(bus.get_codes(&at).is_empty());
    // The new object works.
    let again = add_fields_account(&bus, "After", "reset", &[]);
    assert_eq!(bus.str_property(&again, ACCOUNT, "Device"), new_device);
}

// BUG: Account.Rename emits PropertiesChanged for Id, Issuer and Name but not for Hidden,
// although Hidden follows the issuer ("_hidden") and the XML declares it as emitting
// (no EmitsChangedSignal annotation = true). A launcher caching properties keeps showing
// an account renamed into "_hidden". This test fails until the daemon emits it.
#[test]
fn renaming_into_hidden_signals_hidden() {
    let (_bed, bus, _daemon, _device) = one_card(&[]);
    let account = add_fields_account(&bus, "Visible", "acct", &[]);
    assert!(!bus.bool_property(&account, ACCOUNT, "Hidden"));
    let signals = bus.watch_signals();
    bus.call(&account, ACCOUNT, "Rename", &("_hidden", "acct"))
        .unwrap_or_else(|e| panic!("Rename failed: {e:?}"));
    assert!(bus.bool_property(&account, ACCOUNT, "Hidden"));
    signals.wait_for(0, WAIT, "PropertiesChanged(Hidden=true)", |s| {
        matches!(s, Signal::PropertiesChanged { path, interface, changed, invalidated }
            if *path == account && interface == ACCOUNT
                && (changed.get("Hidden").map(|v| &**v) == Some(&Value::Bool(true))
                    || invalidated.iter().any(|p| p == "Hidden")))
    });
}
