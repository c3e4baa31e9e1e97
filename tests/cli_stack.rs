//! The real `oathbridge` binary against emulated cards behind the real pcscd (via vpcd).
//! RFC 4226/6238 vectors through the whole path, both card profiles, several keys,
//! passwords, touch, hostile cards and unplugging.

mod common;

use common::TestBed;
use common::cli::{CliRun, run_cli};

const RFC_SHA1: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"; // "12345678901234567890"
const RFC_SHA256: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZA";
const RFC_SHA512: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNA";

/// RFC 6238 Appendix B: (time, SHA1, SHA256, SHA512), 8 digits.
const TOTP_VECTORS: [(u64, &str, &str, &str); 6] = [
    (59, "94287082", "46119246", "90693936"),
    (1111111109, "07081804", "68084774", "25091201"),
    (1111111111, "14050471", "67062674", "99943326"),
    (1234567890, "89005924", "91819424", "93441116"),
    (2000000000, "69279037", "90698825", "38618901"),
    (20000000000, "65353130", "77737706", "47863826"),
];

fn run(bed: &TestBed, args: &[&str], stdin: &str) -> CliRun {
    run_cli(bed, args, stdin)
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

fn code_at(bed: &TestBed, reader: &str, query: &str, at: u64) -> String {
    ok(
        bed,
        &[
            "--reader",
            reader,
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

fn add_rfc_totp(bed: &TestBed, reader: &str, with_sha512: bool) {
    let mut accounts = vec![
        ("rfc-sha1", "sha1", RFC_SHA1),
        ("rfc-sha256", "sha256", RFC_SHA256),
    ];
    if with_sha512 {
        accounts.push(("rfc-sha512", "sha512", RFC_SHA512));
    }
    for (name, algorithm, secret) in accounts {
        ok(
            bed,
            &[
                "--reader",
                reader,
                "add",
                name,
                "--algorithm",
                algorithm,
                "--digits",
                "8",
                "--from",
                "-",
            ],
            secret,
        );
    }
}

#[test]
fn rfc6238_vectors_through_pcscd_on_a_yubikey_profile_card() {
    let mut bed = TestBed::start();
    bed.attach_card(0, &["--profile", "yubikey"]);
    let reader = bed.reader(0);
    add_rfc_totp(&bed, &reader, true);
    for (t, sha1, sha256, sha512) in TOTP_VECTORS {
        assert_eq!(code_at(&bed, &reader, "rfc-sha1", t), sha1, "SHA1 at {t}");
        assert_eq!(
            code_at(&bed, &reader, "rfc-sha256", t),
            sha256,
            "SHA256 at {t}"
        );
        assert_eq!(
            code_at(&bed, &reader, "rfc-sha512", t),
            sha512,
            "SHA512 at {t}"
        );
    }
    // All at once (CALCULATE ALL), as JSON with validity windows.
    let json = ok(
        &bed,
        &["--reader", &reader, "--json", "code", "--at", "59"],
        "",
    );
    let codes: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    let codes = codes.as_array().expect("array");
    assert_eq!(codes.len(), 3);
    for entry in codes {
        assert_eq!(entry["valid_from"], 30);
        assert_eq!(entry["valid_to"], 60);
    }
    assert_eq!(codes[0]["code"], "94287082");
}

#[test]
fn rfc4226_hotp_counts_up_and_period_60_is_recomputed() {
    let mut bed = TestBed::start();
    bed.attach_card(0, &[]);
    let reader = bed.reader(0);
    ok(
        &bed,
        &[
            "--reader",
            &reader,
            "add",
            "Bank:hotp",
            "--type",
            "hotp",
            "--from",
            "-",
        ],
        RFC_SHA1,
    );
    let expected = ["755224", "287082", "359152", "969429", "338314"];
    for code in expected {
        assert_eq!(code_at(&bed, &reader, "Bank:hotp", 0), code);
    }
    // Listing does not calculate HOTP (the counter must not move).
    let listing = ok(&bed, &["--reader", &reader, "code"], "");
    assert!(listing.contains("[HOTP Account]"), "{listing}");
    assert_eq!(code_at(&bed, &reader, "Bank:hotp", 0), "254676");
    // A 60 s TOTP: CALCULATE ALL uses 30 s steps, the client recomputes it.
    ok(
        &bed,
        &[
            "--reader", &reader, "add", "slow", "--period", "60", "--digits", "8", "--from", "-",
        ],
        RFC_SHA1,
    );
    let json = ok(
        &bed,
        &["--reader", &reader, "--json", "code", "slow", "--at", "119"],
        "",
    );
    let codes: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    let expected = oathbridge::otp::totp(
        oathbridge::otp::HashAlgorithm::Sha1,
        b"12345678901234567890",
        119,
        60,
        8,
    );
    assert_eq!(codes[0]["code"], expected.as_str());
    assert_eq!(codes[0]["id"], "60/slow");
    assert_eq!(codes[0]["valid_from"], 60);
    // --count gives consecutive periods (AWS asks for two).
    let two = ok(
        &bed,
        &[
            "--reader", &reader, "code", "-s", "slow", "--count", "2", "--at", "119",
        ],
        "",
    );
    let lines: Vec<&str> = two.lines().collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(
        lines[1],
        oathbridge::otp::totp(
            oathbridge::otp::HashAlgorithm::Sha1,
            b"12345678901234567890",
            179,
            60,
            8
        )
    );
}

#[test]
fn nitrokey_profile_uses_list_and_calculate() {
    let mut bed = TestBed::start();
    bed.attach_card(0, &["--profile", "nitrokey"]);
    let reader = bed.reader(0);
    add_rfc_totp(&bed, &reader, false);
    for (t, sha1, sha256, _) in TOTP_VECTORS {
        assert_eq!(code_at(&bed, &reader, "rfc-sha1", t), sha1);
        assert_eq!(code_at(&bed, &reader, "rfc-sha256", t), sha256);
    }
    // SHA-512 is refused before anything is written.
    let refused = run(
        &bed,
        &[
            "--reader",
            &reader,
            "add",
            "x",
            "--algorithm",
            "sha512",
            "--from",
            "-",
        ],
        RFC_SHA512,
    );
    assert_eq!(refused.code, 8, "{}", refused.stderr);
    // Duplicate without --force: refused; with --force: replaced (delete + put).
    let dup = run(
        &bed,
        &["--reader", &reader, "add", "rfc-sha1", "--from", "-"],
        RFC_SHA1,
    );
    assert_eq!(dup.code, 2, "{}", dup.stderr);
    assert!(
        dup.stderr.contains("rfc-sha1: already on the key"),
        "{}",
        dup.stderr
    );
    ok(
        &bed,
        &[
            "--reader", &reader, "add", "rfc-sha1", "--force", "--digits", "6", "--from", "-",
        ],
        RFC_SHA1,
    );
    assert_eq!(code_at(&bed, &reader, "rfc-sha1", 59), "287082");
    let devices = ok(&bed, &["--reader", &reader, "--json", "devices"], "");
    let devices: serde_json::Value = serde_json::from_str(&devices).expect("JSON");
    assert_eq!(devices[0]["kind"], "Nitrokey 3");
    assert_eq!(devices[0]["capacity"], 50);
    assert_eq!(devices[0]["used"], 2);
}

#[test]
fn two_keys_at_once() {
    let mut bed = TestBed::start();
    bed.attach_card(0, &["--profile", "yubikey"]);
    bed.attach_card(1, &["--profile", "nitrokey"]);
    let devices = ok(&bed, &["--json", "devices"], "");
    let devices: serde_json::Value = serde_json::from_str(&devices).expect("JSON");
    assert_eq!(devices.as_array().map(Vec::len), Some(2), "{devices}");
    // A write needs one key.
    let ambiguous = run(&bed, &["add", "a", "--from", "-"], RFC_SHA1);
    assert_eq!(ambiguous.code, 4, "{}", ambiguous.stderr);
    let yubikey_id = devices[0]["id"].as_str().expect("id").to_owned();
    ok(
        &bed,
        &["--device", &yubikey_id, "add", "on-yubikey", "--from", "-"],
        RFC_SHA1,
    );
    ok(
        &bed,
        &["--reader", "00 01", "add", "on-nitrokey", "--from", "-"],
        RFC_SHA1,
    );
    let listing = ok(&bed, &["--json", "list"], "");
    let listing: serde_json::Value = serde_json::from_str(&listing).expect("JSON");
    let ids: Vec<&str> = listing
        .as_array()
        .expect("array")
        .iter()
        .map(|a| a["id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids, ["on-yubikey", "on-nitrokey"]);
    assert_eq!(listing[0]["device"], yubikey_id.as_str());
    // Both keys hold the same seed: same code.
    let a = ok(&bed, &["code", "-s", "on-yubikey", "--at", "59"], "");
    let b = ok(&bed, &["code", "-s", "on-nitrokey", "--at", "59"], "");
    assert_eq!((a.trim(), b.trim()), ("287082", "287082"));
    // A query matching both is ambiguous with --single.
    let both = run(&bed, &["code", "-s", "on-", "--at", "59"], "");
    assert_eq!(both.code, 4, "{}", both.stderr);
    let none = run(&bed, &["code", "-s", "nothing"], "");
    assert_eq!(none.code, 3, "{}", none.stderr);
}

#[test]
fn password_set_lock_clear() {
    let mut bed = TestBed::start();
    bed.attach_card(0, &[]);
    let reader = bed.reader(0);
    ok(
        &bed,
        &["--reader", &reader, "add", "acct", "--from", "-"],
        RFC_SHA1,
    );
    ok(
        &bed,
        &["--reader", &reader, "password", "set"],
        "correct horse\n",
    );
    let locked = run(&bed, &["--reader", &reader, "list"], "");
    assert_eq!(locked.code, 6, "{}", locked.stderr);
    assert!(locked.stderr.contains("password"), "{}", locked.stderr);
    let wrong = run(
        &bed,
        &["--reader", &reader, "password", "unlock"],
        "wrong\n",
    );
    assert_eq!(wrong.code, 6, "{}", wrong.stderr);
    assert!(wrong.stderr.contains("wrong password"), "{}", wrong.stderr);
    ok(
        &bed,
        &["--reader", &reader, "password", "unlock"],
        "correct horse\n",
    );
    // Change, then clear with the new password.
    ok(
        &bed,
        &["--reader", &reader, "password", "set"],
        "correct horse\nbattery staple\n",
    );
    ok(
        &bed,
        &["--reader", &reader, "password", "clear"],
        "battery staple\n",
    );
    assert!(ok(&bed, &["--reader", &reader, "list"], "").contains("acct"));
}

#[test]
fn touch_approve_and_deny() {
    let mut bed = TestBed::start();
    bed.attach_card(0, &["--touch", "approve", "--touch-delay-ms", "200"]);
    bed.attach_card(1, &["--touch", "deny", "--touch-timeout-ms", "300"]);
    for reader in [bed.reader(0), bed.reader(1)] {
        ok(
            &bed,
            &[
                "--reader", &reader, "add", "touchy", "--touch", "--digits", "8", "--from", "-",
            ],
            RFC_SHA1,
        );
        let listing = ok(&bed, &["--reader", &reader, "code"], "");
        assert!(listing.contains("[Requires Touch]"), "{listing}");
    }
    let approved = run(
        &bed,
        &[
            "--reader",
            &bed.reader(0),
            "code",
            "-s",
            "touchy",
            "--at",
            "59",
        ],
        "",
    );
    assert_eq!(approved.code, 0, "{}", approved.stderr);
    assert_eq!(approved.stdout.trim(), "94287082");
    assert!(
        approved.stderr.contains("Touch your key"),
        "{}",
        approved.stderr
    );
    let denied = run(
        &bed,
        &["--reader", &bed.reader(1), "code", "-s", "touchy"],
        "",
    );
    assert_eq!(denied.code, 7, "{}", denied.stderr);
}

#[test]
fn chained_responses_rename_delete_reset() {
    let mut bed = TestBed::start();
    bed.attach_card(0, &["--chunk-size", "16"]);
    let reader = bed.reader(0);
    for i in 0..12 {
        ok(
            &bed,
            &[
                "--reader",
                &reader,
                "add",
                &format!("Issuer{i}:user{i}@example.com"),
                "--from",
                "-",
            ],
            RFC_SHA1,
        );
    }
    let listing = ok(&bed, &["--reader", &reader, "list"], "");
    assert_eq!(listing.lines().count(), 12, "{listing}");
    ok(
        &bed,
        &[
            "--reader",
            &reader,
            "rename",
            "Issuer3:user3@example.com",
            "New:name",
        ],
        "",
    );
    assert_eq!(code_at(&bed, &reader, "New:name", 59), "287082");
    let gone = run(
        &bed,
        &[
            "--reader",
            &reader,
            "code",
            "-s",
            "--exact",
            "Issuer3:user3@example.com",
        ],
        "",
    );
    assert_eq!(gone.code, 3);
    let ambiguous = run(
        &bed,
        &["--reader", &reader, "delete", "--force", "Issuer1"],
        "",
    );
    assert_eq!(
        ambiguous.code, 4,
        "Issuer1 and Issuer10, Issuer11: {}",
        ambiguous.stderr
    );
    ok(
        &bed,
        &["--reader", &reader, "delete", "--force", "New:name"],
        "",
    );
    assert_eq!(
        ok(&bed, &["--reader", &reader, "list"], "").lines().count(),
        11
    );
    let unconfirmed = run(&bed, &["--reader", &reader, "reset"], "");
    assert_eq!(unconfirmed.code, 2, "{}", unconfirmed.stderr);
    ok(&bed, &["--reader", &reader, "reset", "--force"], "");
    assert_eq!(ok(&bed, &["--reader", &reader, "list"], ""), "");
}

#[test]
fn hostile_cards_give_errors_not_hangs_or_panics() {
    for fault in ["endless-more-data", "oversized", "truncated", "malformed"] {
        let mut bed = TestBed::start();
        bed.attach_card(0, &["--fault", fault]);
        let result = run(&bed, &["--reader", &bed.reader(0), "code"], "");
        assert!(
            matches!(result.code, 1 | 5),
            "fault {fault}: exit {} stdout {:?} stderr {:?}",
            result.code,
            result.stdout,
            result.stderr
        );
        assert_eq!(
            result.stderr.trim().lines().count(),
            1,
            "{fault}: {}",
            result.stderr
        );
    }
}

#[test]
fn power_loss_mid_operation_is_reported_as_a_removed_key() {
    let mut bed = TestBed::start();
    // Discovery's SELECT is answered; its CALCULATE ALL, and everything after, finds no card.
    bed.attach_card(0, &["--fault", "power-loss-after=1"]);
    let result = run(&bed, &["--reader", &bed.reader(0), "code"], "");
    assert_eq!(result.code, 5, "{}", result.stderr);
    assert!(result.stderr.contains("removed"), "{}", result.stderr);
}

#[test]
fn unplugged_key_and_bad_input() {
    let mut bed = TestBed::start();
    let mut card = bed.attach_card(0, &[]);
    let reader = bed.reader(0);
    for (args, input, why) in [
        (vec!["add", "n", "--from", "-"], "not base32!", "bad base32"),
        (
            vec!["add", "n", "--from", "-"],
            "otpauth://xotp/a?secret=GEZDGNBV",
            "bad type",
        ),
        (
            vec!["add", "n", "--from", "-"],
            "otpauth://totp/a?secret=GEZDGNBV&digits=9",
            "bad digits",
        ),
        (
            vec!["add", &"x".repeat(65), "--from", "-"],
            RFC_SHA1,
            "name too long",
        ),
        (vec!["add", "--from", "-"], RFC_SHA1, "no name"),
        (vec!["add", "n", "--from", "-"], "", "empty"),
    ] {
        let mut full = vec!["--reader", reader.as_str()];
        full.extend(args);
        let result = run(&bed, &full, input);
        assert_eq!(result.code, 2, "{why}: {}", result.stderr);
        assert_eq!(
            result.stderr.trim().lines().count(),
            1,
            "{why}: {}",
            result.stderr
        );
        assert!(!result.stderr.contains(RFC_SHA1), "{why}: secret leaked");
    }
    assert_eq!(
        ok(&bed, &["--reader", &reader, "list"], ""),
        "",
        "nothing written"
    );
    card.unplug();
    bed.wait_card_present(0, false);
    let gone = run(&bed, &["--reader", &reader, "code"], "");
    assert_eq!(gone.code, 5, "{}", gone.stderr);
}
