//! Every import fixture through the real binary, against an emulated YubiKey behind pcscd:
//! each good export adds exactly its accounts (checked by id and by RFC code at unix time
//! 1700000000); each malformed input is refused with exit 2, one `error:` line per problem
//! naming where, the key unchanged, and no six-character piece of any seed or password in
//! the output. Fixtures: tests/data/import/ (see the README files there).

mod common;

use std::path::PathBuf;

use common::import_key::{ImportKey, assert_error_lines};

const AT: &str = "1700000000";
const PASSWORD: &str = "correct horse battery staple";
/// Base32 of `handed-case-key-000N`, N = 1..=5.
const SEEDS: [&str; 5] = [
    "NBQW4ZDFMQWWGYLTMUWWWZLZFUYDAMBR",
    "NBQW4ZDFMQWWGYLTMUWWWZLZFUYDAMBS",
    "NBQW4ZDFMQWWGYLTMUWWWZLZFUYDAMBT",
    "NBQW4ZDFMQWWGYLTMUWWWZLZFUYDAMBU",
    "NBQW4ZDFMQWWGYLTMUWWWZLZFUYDAMBV",
];

fn fixture(path: &str) -> String {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests/data/import", path]
        .iter()
        .collect();
    assert!(path.exists(), "missing fixture {}", path.display());
    path.display().to_string()
}

/// The import tests' key: no seed or the test password may reach the output.
struct Key(ImportKey);

impl std::ops::Deref for Key {
    type Target = ImportKey;
    fn deref(&self) -> &ImportKey {
        &self.0
    }
}

impl Key {
    fn new() -> Key {
        let secrets: Vec<&str> = SEEDS.iter().copied().chain([PASSWORD]).collect();
        Key(ImportKey::new(&secrets))
    }

    fn code(&self, id: &str) -> String {
        self.0.code(id, AT)
    }

    /// Refused with exit 2, exactly `lines` (in order, each after `error: `), key unchanged.
    fn refused(&self, what: &str, args: &[&str], stdin: &str, lines: &[&str]) {
        let before = self.ids();
        let run = self.run(args, stdin);
        assert_eq!(run.code, 2, "{what}: exit {}: {}", run.code, run.stderr);
        assert_error_lines(what, &run.stderr, lines);
        assert_eq!(self.ids(), before, "{what}: the key changed");
    }
}

#[test]
fn every_app_export_adds_exactly_its_accounts() {
    let key = Key::new();
    let cases: &[(&str, &[&str], &str)] = &[
        (
            "apps/aegis-plain.json",
            &["Example:alice@example.com", "Forge:bob", "Steam:frank"],
            "",
        ),
        (
            "apps/aegis-encrypted.json",
            &["60/Mail:dave", "erin"],
            PASSWORD,
        ),
        (
            "apps/2fas.2fas",
            &["Example:alice@example.com", "Forge:bob", "Steam:frank"],
            "",
        ),
        (
            "apps/andotp.json",
            &["Example:alice@example.com", "Forge:bob", "Steam:frank"],
            "",
        ),
        (
            "apps/bitwarden.json",
            &["Example:alice@example.com", "Forge:bob", "Steam:frank"],
            "",
        ),
        (
            "apps/freeotp-plus.json",
            &["Example:alice@example.com", "Forge:bob"],
            "",
        ),
    ];
    for (file, ids, stdin) in cases {
        key.reset();
        let path = fixture(file);
        let run = key.run(&["add", "--from", &path], &format!("{stdin}\n"));
        assert_eq!(run.code, 0, "{file}: {}", run.stderr);
        let mut want: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
        want.sort();
        // The README names Steam accounts by their exports' names; compare issuers only.
        let got = key.ids();
        assert_eq!(got.len(), want.len(), "{file}: {got:?}");
        for id in ids.iter().filter(|id| !id.starts_with("Steam:")) {
            assert!(
                got.contains(&id.to_string()),
                "{file}: {id} missing from {got:?}"
            );
        }
        if ids.contains(&"Example:alice@example.com") && !file.contains("freeotp") {
            assert_eq!(key.code("Example:alice@example.com"), "490998", "{file}");
        }
        if let Some(steam) = got.iter().find(|id| id.starts_with("Steam:")) {
            assert_eq!(key.code(steam).len(), 5, "{file}: Steam code");
        }
    }
}

#[test]
fn malformed_app_exports_are_refused_where_they_are_wrong() {
    let key = Key::new();
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "apps/aegis-bad-digits.json",
            "",
            &["aegis-bad-digits.json: entry 2: info.digits: expected 6, 7 or 8"],
        ),
        (
            "apps/aegis-encrypted-tampered.json",
            PASSWORD,
            &[
                "aegis-encrypted-tampered.json: db: the vault is damaged (its contents fail the integrity check)",
            ],
        ),
        (
            "apps/aegis-encrypted.json",
            "not the password",
            &["aegis-encrypted.json: wrong password, or the vault is damaged"],
        ),
        (
            "apps/andotp-truncated.json",
            "",
            &["andotp-truncated.json: line 19: the JSON ends too early (column 0)"],
        ),
        (
            "apps/andotp-bad-fields.json",
            "",
            &[
                "andotp-bad-fields.json: entry 1: algorithm: empty",
                "andotp-bad-fields.json: entry 1: period: expected whole seconds from 1 to 300",
                "andotp-bad-fields.json: entry 2: secret: not valid base32 (character 9)",
                "andotp-bad-fields.json: entry 2: counter: expected a whole number from 0 to 4294967295",
                "andotp-bad-fields.json: entry 3: type: unknown type (expected TOTP, HOTP or STEAM)",
                "andotp-bad-fields.json: entry 3: label: missing",
            ],
        ),
        (
            "apps/2fas-encrypted.2fas",
            "",
            &[
                "2fas-encrypted.2fas: encrypted 2FAS backups are not supported: export again without a password",
            ],
        ),
        (
            "apps/bitwarden-encrypted.json",
            "",
            &[
                "bitwarden-encrypted.json: encrypted Bitwarden exports are not supported: export again as unencrypted JSON",
            ],
        ),
        (
            "apps/freeotp-plus-bad-secret.json",
            "",
            &[
                "freeotp-plus-bad-secret.json: entry 2: secret: expected a list of bytes (-128 to 127)",
            ],
        ),
        (
            "apps/unknown-kind.json",
            "",
            &[
                "unknown-kind.json: JSON of an unknown kind (expected an export of Aegis, 2FAS, andOTP, Bitwarden or FreeOTP+)",
            ],
        ),
    ];
    for (file, stdin, lines) in cases {
        let path = fixture(file);
        key.refused(
            file,
            &["add", "--from", &path],
            &format!("{stdin}\n"),
            lines,
        );
    }
}

#[test]
fn malformed_text_inputs_name_the_line_entry_and_field() {
    let key = Key::new();
    let good = format!(
        "otpauth://totp/Example:carol@example.com?secret={}",
        SEEDS[0]
    );
    let cases: Vec<(&str, String, Vec<String>)> = vec![
        (
            "truncated URI",
            format!("{good}\r\notpauth://totp/x?secr"),
            vec!["stdin: line 2: secret: missing".into()],
        ),
        (
            "huge digits",
            format!("{good}\notpauth://totp/x?secret={}&digits=99999999999999", SEEDS[1]),
            vec!["stdin: line 2: digits: expected 6, 7 or 8".into()],
        ),
        (
            "huge period and counter",
            format!(
                "otpauth://totp/x?secret={}&period=100000\notpauth://hotp/y?secret={}&counter=4294967296",
                SEEDS[1], SEEDS[2]
            ),
            vec![
                "stdin: line 1: period: expected whole seconds from 1 to 300".into(),
                "stdin: line 2: counter: expected a whole number from 0 to 4294967295".into(),
            ],
        ),
        (
            "empty values",
            format!("otpauth://totp/x?secret={}&issuer=&digits=6", SEEDS[1]),
            vec!["stdin: line 1: issuer: empty value".into()],
        ),
        (
            "bad percent-encoding",
            format!("otpauth://totp/a%2?secret={}\notpauth://totp/b?secret={}%G0", SEEDS[1], SEEDS[2]),
            vec![
                "stdin: line 1: name: invalid percent-encoding".into(),
                "stdin: line 2: secret: invalid percent-encoding".into(),
            ],
        ),
        (
            "wrong field types",
            format!("otpauth://totp/x?secret={}&period=thirty&algorithm=SHA3", SEEDS[1]),
            vec!["stdin: line 1: algorithm: expected SHA1, SHA256 or SHA512".into()],
        ),
        (
            "seed with a bad character",
            format!("otpauth://totp/x?secret={}1", SEEDS[1]),
            vec!["stdin: line 1: secret: not base32: invalid character at position 33".into()],
        ),
        (
            "unknown line",
            format!("{good}\nhttps://example.com/{}", SEEDS[1]),
            vec!["stdin: line 2: not an otpauth:// or otpauth-migration:// URI (a bare secret must be alone)".into()],
        ),
        (
            "migration with bad base64",
            "otpauth-migration://offline?data=CjQKF!!".to_owned(),
            vec!["stdin: line 1: data: not valid base64".into()],
        ),
        (
            "a name that cannot read back",
            format!("otpauth://totp/%3Aa:b?secret={}", SEEDS[1]),
            vec!["stdin: line 1: name contains ':' but there is no issuer: give one as ISSUER:NAME".into()],
        ),
    ];
    for (what, stdin, lines) in cases {
        let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
        key.refused(what, &["add", "--from", "-"], &stdin, &lines);
    }
    // Logs at the most verbose level say no more about the input than the errors do.
    let bad = format!("{good}\notpauth://totp/x?secret={}&digits=5", SEEDS[1]);
    let run = key.run(&["-vvv", "add", "--from", "-"], &bad);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let path = fixture("apps/aegis-encrypted.json");
    let run = key.run(&["-vvv", "add", "--from", &path], "wrong password\n");
    assert_eq!(run.code, 2, "{}", run.stderr);
    let run = key.run(
        &["-vvv", "add", "--from", &path, "--dry-run"],
        &format!("{PASSWORD}\n"),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    // An image format we cannot read is named as such, not taken for text.
    let tiff = b"II*\0\x08\0\0\0\0\0\0\0";
    let path = key.bed.dir().join("scan.tif");
    std::fs::write(&path, tiff).expect("write");
    let path = path.display().to_string();
    key.refused(
        "TIFF",
        &["add", "--from", &path],
        "",
        &["scan.tif: unsupported image format TIFF (save it as PNG or JPEG)"],
    );
}

#[test]
fn dry_run_plans_and_writes_nothing() {
    let key = Key::new();
    let path = fixture("apps/aegis-plain.json");
    let run = key.run(&["--json", "add", "--from", &path, "--dry-run"], "");
    assert_eq!(run.code, 0, "{}", run.stderr);
    let plan: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON plan");
    let rows = plan.as_array().expect("array");
    assert_eq!(rows.len(), 3, "{plan}");
    assert!(rows.iter().all(|r| r["action"] == "add"), "{plan}");
    assert!(key.ids().is_empty(), "dry run wrote");
    let run = key.run(&["add", "--from", &path], "");
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = key.run(&["add", "--from", &path, "--dry-run", "--force"], "");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stdout
            .lines()
            .filter(|l| l.starts_with("replace "))
            .count(),
        3
    );
    // Without --force, every existing id is a problem, all reported at once.
    let run = key.run(&["add", "--from", &path, "--dry-run"], "");
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(run.stderr.lines().count(), 3, "{}", run.stderr);
}

#[test]
fn qr_images_of_every_kind_add_their_accounts() {
    let key = Key::new();
    let carol = "Example:carol@example.com";
    let dave = "dave@example.com";
    let cases: &[(&str, &[&str])] = &[
        ("images/dark-mode.png", &[carol]),
        ("images/transparent.png", &[dave]),
        ("images/two-codes.png", &[carol, dave]),
        ("images/screenshot.jpg", &["Steam:frank"]),
        ("images/photo.jpg", &[dave]),
        ("images/code.gif", &[dave]),
        ("images/code.webp", &["Steam:frank"]),
        ("images/code.bmp", &[carol]),
    ];
    for (file, ids) in cases {
        let path = fixture(file);
        let run = key.run(&["--json", "add", "--from", &path, "--dry-run"], "");
        assert_eq!(run.code, 0, "{file}: {}", run.stderr);
        let plan: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON plan");
        let got: Vec<&str> = plan
            .as_array()
            .expect("array")
            .iter()
            .filter_map(|row| row["id"].as_str())
            .collect();
        assert_eq!(&got, ids, "{file}");
        if ids.len() > 1 {
            assert!(
                run.stderr.contains("found 2 QR codes"),
                "{file}: {}",
                run.stderr
            );
        }
    }
    // One real write from an image, and its code.
    let run = key.run(&["add", "--from", &fixture("images/dark-mode.png")], "");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(key.code(carol), "490998");
    key.refused(
        "TIFF",
        &["add", "--from", &fixture("images/not-supported.tiff")],
        "",
        &["not-supported.tiff: unsupported image format TIFF (save it as PNG or JPEG)"],
    );
}
