//! CanoKey quirks through the whole stack: the real `oathbridge` binary and daemon, the
//! real pcscd, and `oathbridge emulate --profile canokey` (ATR, OATH 6.0.0, 6985 on a
//! duplicate PUT, HOTP that increments first, `77` for touch HOTP, no OATH RESET but an
//! admin applet). Expected codes are RFC 4226 Appendix D and RFC 6238 Appendix B.

mod common;
mod daemon_common;

use std::time::{Duration, Instant};

use common::TestBed;
use common::cli::{CliRun, run_cli};
use daemon_common::{ACCOUNT, BUS_NAME, Bus, DEVICE, Daemon, WAIT, block_on_for, runtime};

const RFC_SHA1: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"; // "12345678901234567890"
const RFC_SHA256: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZA";
const RFC_SHA512: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNA";
/// Another seed, to tell a replaced account from the old one.
const OTHER_SEED: &str = "JBSWY3DPEHPK3PXP";

/// RFC 4226 Appendix D: HOTP-SHA1 codes for counters 0–9.
const RFC4226: [&str; 10] = [
    "755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871",
    "520489",
];
/// RFC 6238 Appendix B: (time, SHA1, SHA256, SHA512), 8 digits.
const TOTP_VECTORS: [(u64, &str, &str, &str); 6] = [
    (59, "94287082", "46119246", "90693936"),
    (1111111109, "07081804", "68084774", "25091201"),
    (1111111111, "14050471", "67062674", "99943326"),
    (1234567890, "89005924", "91819424", "93441116"),
    (2000000000, "69279037", "90698825", "38618901"),
    (20000000000, "65353130", "77737706", "47863826"),
];
const CANOKEY_ATR: &str = "3B F7 11 00 00 81 31 FE 65 43 61 6E 6F 6B 65 79 99";

fn canokey_bed(card_args: &[&str]) -> TestBed {
    let mut bed = TestBed::start();
    let mut args = vec!["--profile", "canokey"];
    args.extend_from_slice(card_args);
    bed.attach_card(0, &args);
    bed
}

fn run(bed: &TestBed, args: &[&str], stdin: &str) -> CliRun {
    let mut all = vec!["--direct", "--reader", "Virtual PCD 00 00"];
    all.extend_from_slice(args);
    run_cli(bed, &all, stdin)
}

/// Run and require success; returns stdout.
fn ok(bed: &TestBed, args: &[&str], stdin: &str) -> String {
    let run = run(bed, args, stdin);
    assert_eq!(
        run.code,
        0,
        "oathbridge {args:?} failed: {}\n{}",
        run.stderr,
        bed.logs()
    );
    run.stdout
}

fn code(bed: &TestBed, query: &str, at: u64) -> String {
    ok(
        bed,
        &[
            "code",
            "--exact",
            "--single",
            "--at",
            &at.to_string(),
            query,
        ],
        "",
    )
    .trim()
    .to_owned()
}

fn add_hotp(bed: &TestBed, name: &str, extra: &[&str], seed: &str) {
    let mut args = vec!["add", name, "--type", "hotp"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--from", "-"]);
    ok(bed, &args, seed);
}

/// The next three codes of HOTP account `query` are RFC 4226's from counter `first` on.
fn assert_hotp_codes(bed: &TestBed, query: &str, first: usize) {
    for (counter, expected) in RFC4226.iter().enumerate().skip(first).take(3) {
        assert_eq!(code(bed, query, 0), *expected, "{query}: counter {counter}");
    }
}

fn json(text: &str) -> Vec<serde_json::Value> {
    serde_json::from_str::<serde_json::Value>(text)
        .expect("JSON")
        .as_array()
        .expect("array")
        .clone()
}

#[test]
fn is_detected_as_a_canokey_behind_vpcd() {
    let bed = canokey_bed(&[]);
    let state = bed.reader_state(0).expect("reader listed");
    assert_eq!(state.atr.as_deref(), Some(CANOKEY_ATR));
    let devices = json(&ok(&bed, &["--json", "devices"], ""));
    assert_eq!(devices.len(), 1);
    assert_eq!(devices[0]["kind"], "CanoKey", "{devices:?}");
    assert_eq!(devices[0]["firmware"], serde_json::json!([6, 0, 0]));
    assert_eq!(devices[0]["serial"], serde_json::Value::Null);
    assert_eq!(devices[0]["capacity"], 100);
}

#[test]
fn hotp_codes_follow_rfc4226_from_the_requested_counter() {
    let bed = canokey_bed(&[]);
    // --counter 5: written as IMF 4, the card increments first: counters 5, 6, 7.
    add_hotp(&bed, "Bank:from5", &["--counter", "5"], RFC_SHA1);
    assert_hotp_codes(&bed, "Bank:from5", 5);
    // --counter 1 is written as IMF 0.
    add_hotp(&bed, "Bank:from1", &["--counter", "1"], RFC_SHA1);
    assert_hotp_codes(&bed, "Bank:from1", 1);
    // Counter 0 cannot be written one lower: accepted, and the first code is counter 1's
    // (documented; servers' look-ahead window takes it).
    add_hotp(&bed, "Bank:from0", &[], RFC_SHA1);
    assert_hotp_codes(&bed, "Bank:from0", 1);
    // Listing never moves a counter.
    let listing = ok(&bed, &["code"], "");
    assert!(listing.contains("[HOTP Account]"), "{listing}");
    assert_eq!(code(&bed, "Bank:from5", 0), RFC4226[8]);
}

#[test]
fn totp_sha1_sha256_sha512_follow_rfc6238() {
    let bed = canokey_bed(&[]);
    for (name, algorithm, seed) in [
        ("rfc-sha1", "sha1", RFC_SHA1),
        ("rfc-sha256", "sha256", RFC_SHA256),
        ("rfc-sha512", "sha512", RFC_SHA512),
    ] {
        ok(
            &bed,
            &[
                "add",
                name,
                "--algorithm",
                algorithm,
                "--digits",
                "8",
                "--from",
                "-",
            ],
            seed,
        );
    }
    for (t, sha1, sha256, sha512) in TOTP_VECTORS {
        assert_eq!(code(&bed, "rfc-sha1", t), sha1, "SHA1 at {t}");
        assert_eq!(code(&bed, "rfc-sha256", t), sha256, "SHA256 at {t}");
        assert_eq!(code(&bed, "rfc-sha512", t), sha512, "SHA512 at {t}");
    }
    // All at once: CALCULATE ALL (the card answers the raw 31-bit values).
    let codes = json(&ok(&bed, &["--json", "code", "--at", "59"], ""));
    let by_id = |id: &str| codes.iter().find(|c| c["id"] == id).unwrap()["code"].clone();
    assert_eq!(by_id("rfc-sha1"), "94287082");
    assert_eq!(by_id("rfc-sha256"), "46119246");
    assert_eq!(by_id("rfc-sha512"), "90693936");
}

#[test]
fn duplicate_add_is_refused_and_force_replaces_it() {
    let bed = canokey_bed(&[]);
    let add = |force: bool, seed: &str| {
        let mut args = vec!["add", "Mail:alice", "--digits", "8", "--from", "-"];
        if force {
            args.push("--force");
        }
        run(&bed, &args, seed)
    };
    assert_eq!(add(false, RFC_SHA1).code, 0);
    let refused = add(false, OTHER_SEED);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(refused.stderr.contains("Mail:alice"), "{}", refused.stderr);
    assert_eq!(code(&bed, "Mail:alice", 59), "94287082", "unchanged");
    // --force: DELETE + PUT (a CanoKey answers 6985 to PUT of an existing name).
    let replaced = add(true, OTHER_SEED);
    assert_eq!(replaced.code, 0, "{}\n{}", replaced.stderr, bed.logs());
    let expected = oathbridge::otp::totp(
        oathbridge::otp::HashAlgorithm::Sha1,
        b"Hello!\xde\xad\xbe\xef",
        59,
        30,
        8,
    );
    assert_eq!(code(&bed, "Mail:alice", 59), expected);
    let listed = json(&ok(&bed, &["--json", "list"], ""));
    assert_eq!(listed.len(), 1, "{listed:?}");
}

#[test]
fn reset_goes_through_the_admin_applet_with_the_pin_from_stdin() {
    let bed = canokey_bed(&[]);
    ok(&bed, &["add", "a", "--from", "-"], RFC_SHA1);
    let id_before = json(&ok(&bed, &["--json", "devices"], ""))[0]["id"].clone();

    // Not confirmed: nothing is asked, nothing happens.
    let unconfirmed = run(&bed, &["reset"], "123456\n");
    assert_eq!(unconfirmed.code, 2, "{}", unconfirmed.stderr);
    assert!(
        unconfirmed.stderr.contains("--force"),
        "{}",
        unconfirmed.stderr
    );
    // Confirmed but no PIN: refused, with the reason.
    let no_pin = run(&bed, &["reset", "--force"], "");
    assert_eq!(no_pin.code, 2, "{}", no_pin.stderr);
    assert!(no_pin.stderr.contains("admin PIN"), "{}", no_pin.stderr);
    // A wrong PIN: exit 6, the key untouched.
    let wrong = run(&bed, &["reset", "--force"], "654321\n");
    assert_eq!(wrong.code, 6, "{}", wrong.stderr);
    assert!(wrong.stderr.contains("admin PIN"), "{}", wrong.stderr);
    assert_eq!(json(&ok(&bed, &["--json", "list"], "")).len(), 1);

    let reset = run(&bed, &["reset", "--force"], "123456\n");
    assert_eq!(reset.code, 0, "{}\n{}", reset.stderr, bed.logs());
    assert!(!reset.stderr.contains("123456"), "the PIN is never echoed");
    assert!(json(&ok(&bed, &["--json", "list"], "")).is_empty());
    let id_after = json(&ok(&bed, &["--json", "devices"], ""))[0]["id"].clone();
    assert_ne!(
        id_after, id_before,
        "a reset CanoKey has a new salt, so a new id"
    );
}

#[test]
fn touch_hotp_is_listed_as_unknown_and_the_daemon_prompts() {
    let mut bed = canokey_bed(&["--touch", "approve", "--touch-delay-ms", "1500"]);
    add_hotp(&bed, "Vpn:touchy", &["--touch"], RFC_SHA1);
    // LIST and CALCULATE ALL do not tell (`77` for every HOTP): unknown, not "no".
    let listed = json(&ok(&bed, &["--json", "list"], ""));
    assert_eq!(listed[0]["type"], "HOTP", "{listed:?}");
    assert_eq!(listed[0]["touch"], serde_json::Value::Null, "{listed:?}");
    // The card still waits for the touch; the CLI gets counter 1's code (added with 0).
    let started = Instant::now();
    assert_eq!(code(&bed, "Vpn:touchy", 0), RFC4226[1]);
    assert!(
        started.elapsed() >= Duration::from_millis(1400),
        "touch waited for"
    );

    // The daemon shows TouchPending while a HOTP CALCULATE runs on this key.
    bed.start_dbus();
    let bus = Bus::connect(&bed);
    let _daemon = Daemon::start_with_devices(&bed, &bus, &[], 1);
    let device = bus.devices().remove(0);
    assert_eq!(bus.str_property(&device, DEVICE, "Name"), "CanoKey");
    let account = bus
        .accounts()
        .into_iter()
        .find(|a| bus.str_property(a, ACCOUNT, "Id") == "Vpn:touchy")
        .expect("account object");
    assert!(!bus.bool_property(&account, ACCOUNT, "RequiresTouch"));
    let call = {
        let conn = bus.conn.clone();
        let path = account.clone();
        runtime().spawn(async move {
            conn.call_method(
                Some(BUS_NAME),
                path.as_str(),
                Some(ACCOUNT),
                "Calculate",
                &(0u64,),
            )
            .await
        })
    };
    daemon_common::wait_property_during(&bus, &device, DEVICE, "TouchPending", &call);
    let reply = block_on_for(WAIT, "Calculate with touch", call)
        .expect("join")
        .unwrap_or_else(|e| panic!("Calculate failed: {e}\n{}", bed.logs()));
    let (code, _, _) = reply
        .body()
        .deserialize::<(String, u64, u64)>()
        .expect("(s, t, t)");
    assert_eq!(code, RFC4226[2]);
}
