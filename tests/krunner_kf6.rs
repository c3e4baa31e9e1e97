//! Plasma 6 (KDE Frameworks 6 KRunner) at the protocol level: the calls KF6's `DBusRunner`
//! makes, in its order — `Config` (when the runner is loaded, `X-Plasma-API=DBus2`),
//! `Actions` (once per match session, before its first `Match`), `Match`,
//! `SetActivationToken` (just before `Run` on Wayland), `Run`, `Teardown` — sent with zbus
//! to the real daemon (an emulated card behind the bed's pcscd, a private bus, a private
//! Xvfb for the clipboard), with the reply shapes and value types KF6 reads:
//! - `Config` → `a{sv}`: only keys KF6 knows, each with the type it converts
//!   (`MinLetterCount` an int, …);
//! - `Actions` → `a(sss)` (`KRunner::Action`: id, text, icon);
//! - `Match` → `a(sssida{sv})`, the `i` a `KRunner::QueryMatch::CategoryRelevance`
//!   (Lowest 0, Low 30, Moderate 50, High 70, Highest 100), the relevance 0–1, properties
//!   with the types KF6 reads (`subtext`/`category` strings, `actions` a string list of
//!   ids from `Actions`, …);
//! - `SetActivationToken(s)`, `Run(ss)` and `Teardown()` → empty replies, also when the
//!   call expects none (KF6 sends `Run` and the token without waiting); `Run` with the
//!   `copy` action and with the default action (Enter: empty id) copies the RFC code.
//!
//! Also: the object introspects as KF6's `org.kde.krunner1.xml` describes it, and the
//! shipped .desktop file holds what KF6's loader (`parseMetaDataFromDesktopFile`) reads.

mod common;
mod daemon_common;

use std::collections::HashMap;
use std::path::PathBuf;

use common::TestBed;
use common::x11::Xvfb;
use daemon_common::*;
use oathbridge::otp::{HashAlgorithm, totp};
use zbus::Message;
use zbus::message::Flags;
use zbus::zvariant::{OwnedValue, Value};

const PATH: &str = "/io/github/oathbridge/OathBridge1/KRunner";
const IFACE: &str = "org.kde.krunner1";
/// KF6 `KRunner::QueryMatch::CategoryRelevance`.
const CATEGORY_RELEVANCES: [i32; 5] = [0, 30, 50, 70, 100];

type Match = (
    String,
    String,
    String,
    i32,
    f64,
    HashMap<String, OwnedValue>,
);

/// `org.kde.krunner1.<method>(body)` as KF6 sends it; the reply, which must be a return.
fn call<B>(bus: &Bus, method: &str, body: &B) -> Message
where
    B: serde::Serialize + zbus::zvariant::DynamicType,
{
    bus.call(PATH, IFACE, method, body)
        .unwrap_or_else(|e| panic!("{method}: {e:?}"))
}

fn signature(message: &Message) -> String {
    message.body().signature().to_string()
}

fn string_list(value: &OwnedValue) -> Option<Vec<String>> {
    Vec::<String>::try_from(value.try_clone().ok()?).ok()
}

/// The properties of a match, with the D-Bus types KF6's `convertMatches` reads.
fn check_properties(row: &Match, action_ids: &[String]) {
    for (key, value) in &row.5 {
        match (key.as_str(), &**value) {
            ("subtext" | "category", Value::Str(_)) => {}
            ("urls", _) => assert!(string_list(value).is_some(), "urls: {value:?}"),
            ("multiline", Value::Bool(_)) => {}
            ("actions", _) => {
                let ids = string_list(value)
                    .unwrap_or_else(|| panic!("actions is not a string list: {value:?}"));
                for id in ids {
                    assert!(action_ids.contains(&id), "action {id} is not in Actions");
                }
            }
            ("icon-data", Value::Structure(s)) => {
                assert_eq!(s.signature().to_string(), "(iiibiiay)")
            }
            (key, value) => {
                panic!("property KF6 does not read or cannot convert: {key} = {value:?}")
            }
        }
    }
}

/// The codes of the RFC 6238 seed for each second in `from..=to`.
fn codes(from: u64, to: u64) -> Vec<String> {
    (from..=to)
        .map(|t| totp(HashAlgorithm::Sha1, SEED_SHA1, t, 30, 6))
        .collect()
}

#[test]
fn kf6_call_sequence_gets_the_replies_kf6_reads() {
    common::proc::require_program("xclip", "xclip");
    let mut bed = TestBed::start();
    let xvfb = Xvfb::start(&bed, "1280x1024x24");
    bed.attach_card(0, &[]);
    bed.start_dbus();
    let bus = Bus::connect(&bed);
    let mut daemon = Daemon::spawn_with_env(
        &bed,
        &[],
        &[
            ("DISPLAY", xvfb.display.as_str()),
            ("OATHBRIDGE_CLIPBOARD_CLEAR_AFTER_MS", "120000"),
        ],
        &["WAYLAND_DISPLAY"],
    );
    daemon.wait_owner(&bed, &bus);
    wait_until(WAIT, "one device object", || {
        (bus.devices().len() == 1).then_some(())
    });
    for (uri, touch) in [
        (
            format!("otpauth://totp/GitHub:alice?secret={B32_SHA1}"),
            false,
        ),
        (format!("otpauth://totp/GitLab:bob?secret={B32_SHA1}"), true),
        (
            format!("otpauth://hotp/Acme:counter?secret={B32_SHA1}&counter=0"),
            false,
        ),
    ] {
        bus.add_account(
            &[("uri", Value::from(uri)), ("touch", Value::from(touch))],
            &[],
        )
        .unwrap_or_else(|e| panic!("AddAccount: {e:?}\n{}", bed.logs()));
    }

    // Config, when KF6 loads a DBus2 runner: keys it knows, with the types it converts.
    let reply = call(&bus, "Config", &());
    assert_eq!(signature(&reply), "a{sv}");
    let config: HashMap<String, OwnedValue> = reply.body().deserialize().expect("a{sv}");
    for (key, value) in &config {
        match (key.as_str(), &**value) {
            ("MinLetterCount", Value::I32(n)) => assert!(*n >= 0),
            ("MatchRegex", Value::Str(_)) => {}
            ("TriggerWords", _) => assert!(string_list(value).is_some()),
            ("Actions", Value::Array(a)) => assert_eq!(a.element_signature().to_string(), "(sss)"),
            (key, value) => panic!("Config entry KF6 does not read: {key} = {value:?}"),
        }
    }
    assert_eq!(
        config.get("MinLetterCount").map(|v| &**v),
        Some(&Value::I32(2))
    );

    // Actions, at the start of the match session.
    let reply = call(&bus, "Actions", &());
    assert_eq!(signature(&reply), "a(sss)");
    let actions: Vec<(String, String, String)> = reply.body().deserialize().expect("a(sss)");
    assert_eq!(
        actions,
        [(
            "copy".to_owned(),
            "Copy code".to_owned(),
            "edit-copy".to_owned()
        )]
    );
    let action_ids: Vec<String> = actions.iter().map(|a| a.0.clone()).collect();

    // Match: an exact issuer is Highest (100) and relevance 1; a prefix is Low (30), below.
    let before = oathbridge::clock::unix_now();
    let reply = call(&bus, "Match", &("github",));
    let after = oathbridge::clock::unix_now();
    assert_eq!(signature(&reply), "a(sssida{sv})");
    let rows: Vec<Match> = reply.body().deserialize().expect("matches");
    assert_eq!(rows.len(), 1, "{rows:?}");
    let github = rows[0].clone();
    assert!(
        github
            .0
            .starts_with("/io/github/oathbridge/OathBridge1/accounts/")
    );
    assert_eq!(github.1, "GitHub: alice");
    assert_eq!(github.2, "security-high");
    assert_eq!((github.3, github.4), (100, 1.0));
    check_properties(&github, &action_ids);
    let subtext = <&str>::try_from(&github.5["subtext"]).expect("subtext");
    assert!(
        codes(before, after)
            .iter()
            .any(|c| subtext.starts_with(&format!("{c} · "))),
        "subtext {subtext:?} lacks the RFC code"
    );

    let rows: Vec<Match> = call(&bus, "Match", &("git",))
        .body()
        .deserialize()
        .expect("git");
    let texts: Vec<&str> = rows.iter().map(|r| r.1.as_str()).collect();
    assert_eq!(texts, ["GitHub: alice", "GitLab: bob"]);
    for row in &rows {
        assert!(CATEGORY_RELEVANCES.contains(&row.3), "{row:?}");
        assert_eq!(row.3, 30, "a prefix is Low: {row:?}");
        assert!(row.4 > 0.0 && row.4 < 1.0, "{row:?}");
        check_properties(row, &action_ids);
    }
    assert!(rows[0].4 > rows[1].4, "best first, ties alphabetical");
    assert_eq!(
        <&str>::try_from(&rows[1].5["subtext"]).expect("subtext"),
        "touch required"
    );
    let rows: Vec<Match> = call(&bus, "Match", &("counter",))
        .body()
        .deserialize()
        .expect("m");
    assert_eq!((rows[0].1.as_str(), rows[0].3), ("Acme: counter", 100));
    assert_eq!(
        <&str>::try_from(&rows[0].5["subtext"]).expect("subtext"),
        "HOTP · Enter"
    );
    check_properties(&rows[0], &action_ids);
    let none: Vec<Match> = call(&bus, "Match", &("no-such-account",))
        .body()
        .deserialize()
        .expect("m");
    assert!(none.is_empty());

    // SetActivationToken then Run, as KF6 does on Wayland: the copy action, then Enter's
    // default action (empty id), both copy the code; also sent without expecting replies.
    xvfb.copy(&bed, "before");
    let reply = call(&bus, "SetActivationToken", &("kf6-token-1",));
    assert_eq!(signature(&reply), "");
    let before = oathbridge::clock::unix_now();
    let reply = call(&bus, "Run", &(github.0.as_str(), "copy"));
    assert_eq!(signature(&reply), "");
    let copied = wait_until(WAIT, "the code on the clipboard", || {
        let (ok, text) = xvfb.xclip(&bed, &["-o"]);
        (ok && text != "before").then_some(text)
    });
    assert!(codes(before, oathbridge::clock::unix_now()).contains(&copied));
    let (_, targets) = xvfb.xclip(&bed, &["-o", "-t", "TARGETS"]);
    assert!(
        targets.lines().any(|t| t == "x-kde-passwordManagerHint"),
        "{targets}"
    );

    xvfb.copy(&bed, "again");
    for (method, body) in [
        ("SetActivationToken", ("kf6-token-2".to_owned(), None)),
        ("Run", (github.0.clone(), Some(String::new()))),
    ] {
        let builder = Message::method_call(PATH, method)
            .expect("message")
            .destination(BUS_NAME)
            .expect("destination")
            .interface(IFACE)
            .expect("interface")
            .with_flags(Flags::NoReplyExpected)
            .expect("flags");
        let message = match body {
            (token, None) => builder.build(&(token,)),
            (id, Some(action)) => builder.build(&(id, action)),
        }
        .expect("build");
        block_on(bus.conn.send(&message)).expect("send without reply");
    }
    let before = oathbridge::clock::unix_now();
    let copied = wait_until(WAIT, "Enter's code on the clipboard", || {
        let (ok, text) = xvfb.xclip(&bed, &["-o"]);
        (ok && text != "again").then_some(text)
    });
    assert!(codes(before - 2, oathbridge::clock::unix_now()).contains(&copied));

    // An unknown action and a match id that is no account: empty replies, nothing copied.
    xvfb.copy(&bed, "kept");
    assert_eq!(
        signature(&call(&bus, "Run", &(github.0.as_str(), "other"))),
        ""
    );
    assert_eq!(signature(&call(&bus, "Run", &("/nowhere", ""))), "");
    assert_eq!(xvfb.xclip(&bed, &["-o"]).1, "kept");

    let reply = call(&bus, "Teardown", &());
    assert_eq!(signature(&reply), "");
}

#[test]
fn the_object_introspects_as_kf6_declares_org_kde_krunner1() {
    let (_bed, bus, _daemon) = bed_with_daemon(&["--no-pcsc"]);
    let xml = bus.introspect(PATH);
    let node = zbus_xml::Node::from_reader(xml.as_bytes()).expect("introspection XML");
    let iface = node
        .interfaces()
        .iter()
        .find(|i| i.name().as_str() == IFACE)
        .unwrap_or_else(|| panic!("no {IFACE} at {PATH}:\n{xml}"));
    let mut methods: Vec<String> = iface
        .methods()
        .iter()
        .map(|m| {
            let args: Vec<String> = m
                .args()
                .iter()
                .map(|a| {
                    let direction = match a.direction() {
                        Some(zbus_xml::ArgDirection::Out) => "out",
                        _ => "in",
                    };
                    format!("{direction} {}", a.ty().inner())
                })
                .collect();
            format!("{}({})", m.name(), args.join(", "))
        })
        .collect();
    methods.sort();
    // KF6 krunner src/data/org.kde.krunner1.xml.
    assert_eq!(
        methods,
        [
            "Actions(out a(sss))",
            "Config(out a{sv})",
            "Match(in s, out a(sssida{sv}))",
            "Run(in s, in s)",
            "SetActivationToken(in s)",
            "Teardown()",
        ]
    );
    assert!(iface.signals().is_empty() && iface.properties().is_empty());
}

#[test]
fn the_desktop_file_holds_what_kf6_loads() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("desktop/oathbridge-krunner.desktop");
    let text = std::fs::read_to_string(&path).expect("KRunner .desktop file");
    let mut group = "";
    let mut entries = HashMap::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.starts_with('[') {
            group = line;
            continue;
        }
        assert_eq!(
            group, "[Desktop Entry]",
            "entry outside [Desktop Entry]: {line}"
        );
        let (key, value) = line.split_once('=').expect("key=value");
        assert!(entries.insert(key, value).is_none(), "{key} twice");
    }
    // KF6 parseMetaDataFromDesktopFile: Id, API, service, path; lifecycle calls need DBus2.
    assert_eq!(entries.get("X-KDE-PluginInfo-Name"), Some(&"oathbridge"));
    assert_eq!(entries.get("X-Plasma-API"), Some(&"DBus2"));
    assert_eq!(entries.get("X-Plasma-DBusRunner-Service"), Some(&BUS_NAME));
    assert_eq!(entries.get("X-Plasma-DBusRunner-Path"), Some(&PATH));
    assert_eq!(
        entries.get("X-KDE-PluginInfo-EnabledByDefault"),
        Some(&"true")
    );
    assert!(entries.get("Name").is_some_and(|n| !n.is_empty()));
    assert!(
        entries
            .get("X-Plasma-Runner-Min-Letter-Count")
            .is_none_or(|n| n.parse::<u32>().is_ok())
    );
    // Actions are asked for at every session, never only once per KRunner start.
    assert_eq!(entries.get("X-Plasma-Request-Actions-Once"), None);
}
