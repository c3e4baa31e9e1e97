//! What the GNOME Shell search provider shows (`daemon::search_provider` module docs): the
//! texts as pure functions at chosen times, then through D-Bus against the real daemon
//! (virtual keys): the next period's code in the last seconds of a period, the key's name
//! only with several keys, and the touch notification saying how long its code lasts.

mod common;
mod daemon_common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::TestBed;
use daemon_common::*;
use oathbridge::daemon::search_provider::{
    MIN_VALIDITY, ResultTexts, group_code, result_texts, validity,
};
use oathbridge::oath::code::NEVER;
use oathbridge::oath::{Code, Credential, CredentialId};
use oathbridge::otp::{HashAlgorithm, OathType, totp};
use zbus::zvariant::{OwnedValue, Value};

const SEARCH_PATH: &str = "/io/github/oathbridge/OathBridge1/SearchProvider";
const SEARCH: &str = "org.gnome.Shell.SearchProvider2";

fn credential(issuer: Option<&str>, name: &str, oath_type: OathType, touch: bool) -> Credential {
    Credential {
        raw_id: Vec::new(),
        id: CredentialId::new(issuer, name, oath_type, 30),
        oath_type,
        algorithm: Some(HashAlgorithm::Sha1),
        digits: Some(6),
        touch: Some(touch),
    }
}

fn code(value: &str, valid_from: u64, valid_to: u64) -> Code {
    Code {
        value: value.to_owned(),
        valid_from,
        valid_to,
    }
}

fn texts(title: &str, description: &str, clipboard: Option<&str>) -> ResultTexts {
    ResultTexts {
        title: title.to_owned(),
        description: description.to_owned(),
        clipboard_text: clipboard.map(str::to_owned),
    }
}

#[test]
fn codes_are_grouped_for_reading_only() {
    assert_eq!(group_code("123456"), "123 456");
    assert_eq!(group_code("1234567"), "123 4567");
    assert_eq!(group_code("12345678"), "1234 5678");
    assert_eq!(group_code("2BCDF"), "2BCDF", "Steam codes stay as they are");
    assert_eq!(group_code("12345"), "12345");
}

#[test]
fn totp_results_show_code_name_and_time_left_with_the_issuer_once() {
    let github = credential(Some("GitHub"), "alice@example.com", OathType::Totp, false);
    let current = code("123456", 30, 60);
    assert_eq!(
        result_texts(&github, Some(&current), 39, None),
        texts(
            "GitHub",
            "123 456 · alice@example.com · 21 s left",
            Some("123456")
        )
    );
    let no_issuer = credential(None, "alice", OathType::Totp, false);
    assert_eq!(
        result_texts(&no_issuer, Some(&current), 39, None),
        texts("alice", "123 456 · 21 s left", Some("123456"))
    );
    // Several keys: the key's name ends the description.
    assert_eq!(
        result_texts(&github, Some(&current), 39, Some("YubiKey 5 NFC")).description,
        "123 456 · alice@example.com · 21 s left · YubiKey 5 NFC"
    );
}

#[test]
fn a_code_is_copied_only_with_min_validity_seconds_left() {
    assert_eq!(MIN_VALIDITY, 5);
    let github = credential(Some("GitHub"), "alice", OathType::Totp, false);
    let current = code("123456", 30, 60);
    // Exactly 5 s left: still this code.
    assert_eq!(
        result_texts(&github, Some(&current), 55, None),
        texts("GitHub", "123 456 · alice · 5 s left", Some("123456"))
    );
    // 4 s left (only when the key could not be asked ahead): said, and not copied.
    assert_eq!(
        result_texts(&github, Some(&current), 56, None),
        texts("GitHub", "123 456 · alice · expires in 4 s", None)
    );
    // The next period's code, which the daemon asks the key for in the last 5 s.
    let next = code("654321", 60, 90);
    assert_eq!(
        result_texts(&github, Some(&next), 57, None),
        texts(
            "GitHub",
            "654 321 · alice · next code, valid in 3 s",
            Some("654321")
        )
    );
    assert_eq!(
        result_texts(&github, Some(&current), 60, None),
        texts("GitHub", "123 456 · alice · expired", None)
    );
    assert_eq!(validity(&current, 40), "20 s left");
    assert_eq!(validity(&next, 58), "next code, valid in 2 s");
    assert_eq!(
        validity(&code("123456", 7, NEVER), 9),
        "",
        "HOTP codes do not expire"
    );
}

#[test]
fn touch_and_hotp_results_carry_no_code() {
    let gitlab = credential(Some("GitLab"), "bob", OathType::Totp, true);
    assert_eq!(
        result_texts(&gitlab, None, 39, None),
        texts("GitLab", "bob · touch required", None)
    );
    let bank = credential(Some("Bank"), "carol", OathType::Hotp, false);
    assert_eq!(
        result_texts(&bank, None, 39, Some("Backup key")),
        texts(
            "Bank",
            "carol · HOTP: press Enter for the code · Backup key",
            None
        )
    );
    // Touch not known (the key did not say) and no code: calculated on activation.
    let mut unknown = credential(Some("Work"), "dave", OathType::Totp, false);
    unknown.touch = None;
    assert_eq!(
        result_texts(&unknown, None, 39, None),
        texts("Work", "dave · press Enter for the code", None)
    );
}

// ---------------------------------------------------------------------------------------
// Through D-Bus, against the real daemon.

fn rfc(at: u64) -> String {
    totp(HashAlgorithm::Sha1, SEED_SHA1, at, 30, 6)
}

fn initial(bus: &Bus, terms: &[&str]) -> Vec<String> {
    bus.call(SEARCH_PATH, SEARCH, "GetInitialResultSet", &(terms,))
        .unwrap_or_else(|e| panic!("GetInitialResultSet: {e:?}"))
        .body()
        .deserialize()
        .expect("as")
}

fn metas(bus: &Bus, ids: &[String]) -> Vec<HashMap<String, OwnedValue>> {
    bus.call(SEARCH_PATH, SEARCH, "GetResultMetas", &(ids,))
        .unwrap_or_else(|e| panic!("GetResultMetas: {e:?}"))
        .body()
        .deserialize()
        .expect("aa{sv}")
}

fn text(meta: &HashMap<String, OwnedValue>, key: &str) -> Option<String> {
    meta.get(key)
        .map(|v| <&str>::try_from(v).expect("string").to_owned())
}

fn add(bus: &Bus, uri: &str, touch: bool, options: &[(&str, Value<'_>)]) {
    bus.add_account(
        &[("uri", Value::from(uri)), ("touch", Value::from(touch))],
        options,
    )
    .unwrap_or_else(|e| panic!("AddAccount {uri}: {e:?}"));
}

/// Sleeps until the current 30 s period is at second `offset` (0..30), at most 31 s.
fn wait_for_second(offset: u64) {
    let deadline = Instant::now() + Duration::from_secs(31);
    while oathbridge::clock::unix_now() % 30 != offset {
        assert!(
            Instant::now() < deadline,
            "clock did not reach second {offset}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn metas_hand_out_the_next_code_in_the_last_seconds_of_a_period() {
    let mut bed = TestBed::start();
    bed.start_dbus();
    let bus = Bus::connect(&bed);
    let state = bed.dir().join("vk.json").display().to_string();
    let _daemon = Daemon::start(&bed, &bus, &["--no-pcsc", "--virtual-key", &state]);
    add(
        &bus,
        &format!("otpauth://totp/GitHub:alice?secret={B32_SHA1}"),
        false,
        &[],
    );
    let ids = initial(&bus, &["github"]);
    assert_eq!(ids.len(), 1, "{ids:?}");

    // Plenty of time left: this period's code (now if the period is young, else after the
    // check below, at the start of the next period: no long wait either way).
    let plenty_left = || {
        let now = oathbridge::clock::unix_now();
        let meta = &metas(&bus, &ids)[0];
        let description = text(meta, "description").expect("description");
        assert_eq!(text(meta, "clipboardText"), Some(rfc(now)), "{description}");
        assert!(description.ends_with(" s left"), "{description}");
    };
    let checked_plenty = oathbridge::clock::unix_now() % 30 <= 20;
    if checked_plenty {
        plenty_left();
    }

    // 4 s left: the next period's code, said so. Retried once if the call straddled a
    // boundary (a very slow machine).
    for attempt in 0..2 {
        wait_for_second(26);
        let before = oathbridge::clock::unix_now();
        let meta = &metas(&bus, &ids)[0];
        let after = oathbridge::clock::unix_now();
        if before / 30 != after / 30 || after % 30 < 26 {
            assert!(attempt == 0, "GetResultMetas took too long twice");
            continue;
        }
        let description = text(meta, "description").expect("description");
        let next = rfc(before + 30);
        assert_ne!(
            next,
            rfc(before),
            "the RFC seed gives different codes per period"
        );
        assert_eq!(
            text(meta, "clipboardText"),
            Some(next.clone()),
            "{description}"
        );
        let shown = format!("{} {}", &next[..3], &next[3..]);
        let waits: Vec<String> = (before..=after)
            .map(|t| format!("{shown} · alice · next code, valid in {} s", 30 - t % 30))
            .collect();
        assert!(
            waits.contains(&description),
            "{description} not in {waits:?}"
        );
        if !checked_plenty {
            wait_for_second(1);
            plenty_left();
        }
        return;
    }
}

#[test]
fn several_keys_name_the_key_and_touch_activation_notifies_with_the_time_left() {
    let mut bed = TestBed::start();
    bed.start_dbus();
    let bus = Bus::connect(&bed);
    let notifications = NotificationServer::start(&bed);
    let first = bed.dir().join("first.json").display().to_string();
    let second = bed.dir().join("second.json").display().to_string();
    let _daemon = Daemon::start_with_devices(
        &bed,
        &bus,
        &[
            "--no-pcsc",
            "--virtual-key",
            &first,
            "--virtual-key",
            &second,
        ],
        2,
    );
    let devices = bus.devices();
    add(
        &bus,
        &format!("otpauth://totp/GitHub:alice?secret={B32_SHA1}"),
        false,
        &[("all_devices", Value::from(true))],
    );
    add(
        &bus,
        &format!("otpauth://totp/GitLab:bob?secret={B32_SHA1}"),
        true,
        &[("device", path_value(&devices[0]))],
    );
    let names: Vec<String> = devices
        .iter()
        .map(|d| bus.str_property(d, DEVICE, "Name"))
        .collect();

    let github = initial(&bus, &["github"]);
    assert_eq!(github.len(), 2, "one GitHub account per key: {github:?}");
    let descriptions: Vec<String> = metas(&bus, &github)
        .iter()
        .map(|m| text(m, "description").expect("description"))
        .collect();
    for description in &descriptions {
        assert!(
            names
                .iter()
                .any(|n| description.ends_with(&format!(" · {n}"))),
            "{description} does not end with a key name of {names:?}"
        );
    }

    // Activating the touch account: the code in a notification, with its time left.
    let gitlab = initial(&bus, &["gitlab"]);
    assert_eq!(gitlab.len(), 1);
    let meta = &metas(&bus, &gitlab)[0];
    assert_eq!(text(meta, "name").as_deref(), Some("GitLab"));
    assert!(meta.get("clipboardText").is_none());
    let before = oathbridge::clock::unix_now();
    bus.call(
        SEARCH_PATH,
        SEARCH,
        "ActivateResult",
        &(gitlab[0].as_str(), vec!["gitlab"], 0u32),
    )
    .unwrap_or_else(|e| panic!("ActivateResult: {e:?}"));
    let after = oathbridge::clock::unix_now();
    let body = wait_until(WAIT, "the code notification", || {
        notifications
            .calls()
            .into_iter()
            .find_map(|call| match call {
                NotifyCall::Notify { summary, body, .. } if summary == "GitLab: bob" => Some(body),
                _ => None,
            })
    });
    let expected: Vec<String> = [before, after]
        .iter()
        .map(|t| rfc(t + MIN_VALIDITY))
        .collect();
    let (shown, left) = body.split_once(" · ").expect("code · time");
    assert!(
        expected.contains(&shown.replace(' ', "")),
        "{body}: not one of {expected:?}"
    );
    assert!(
        left.ends_with(" s left") || left.starts_with("next code, valid in "),
        "{body}"
    );
}
