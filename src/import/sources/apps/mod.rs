//! Plain-JSON exports of authenticator apps, recognised by the shape of the JSON (never by the
//! file name):
//!
//! | App | Shape | Module |
//! | :-- | :---- | :----- |
//! | Aegis vault (plain or encrypted) | object with `header` and `db` | `aegis`, `aegis_vault` |
//! | 2FAS (`.2fas`) | object with `services` or `servicesEncrypted` | `twofas` |
//! | FreeOTP+ | object with `tokens` | `freeotp` |
//! | Bitwarden | object with `items` or a boolean `encrypted` | `bitwarden` |
//! | andOTP | non-empty list of objects | `andotp` |
//!
//! Each module documents the format it follows (from the app's public documentation or the
//! files it writes). Common rules: entries are numbered from 1 in the export's list; every
//! problem of every entry is reported, naming the entry and the field and never quoting a
//! value; present-but-empty or malformed values are errors, absent optional ones take the
//! format's defaults; Steam accounts become TOTP, issuer "Steam", SHA1, 6 digits, 30 s (as
//! Yubico's tools store them); seeds stay in zeroizing buffers.

mod aegis;
mod aegis_vault;
mod andotp;
mod bitwarden;
mod fields;
mod freeotp;
mod json;
mod twofas;

use json::{Json, Obj};

use crate::import::{AccountSpec, InputErrors, Location, Passwords};

/// The one error for JSON that is none of the known exports.
pub const UNKNOWN_KIND: &str =
    "JSON of an unknown kind (expected an export of Aegis, 2FAS, andOTP, Bitwarden or FreeOTP+)";

/// True when the bytes look like JSON: optional UTF-8 BOM, whitespace, then `{` or `[`.
pub fn looks_like_json(bytes: &[u8]) -> bool {
    json::looks_like_json(bytes)
}

/// The accounts of a plain-JSON export of a known authenticator app (see the module docs),
/// detected by content. `at` is the source's location (no line or entry); accounts and errors
/// are placed at `at.at_entry(n)`, `n` counting from 1 in the export's list.
///
/// `passwords` is asked once, for an encrypted Aegis vault only (`"the Aegis vault"`).
///
/// # Errors
/// Every problem found, each naming where (entry, field) in our own words, never quoting the
/// input: invalid JSON (one error, at its line and column), JSON of an unknown kind, encrypted
/// 2FAS or Bitwarden exports, a wrong password ("wrong password, or the vault is damaged"),
/// an export without accounts, and each malformed field of each entry.
pub fn parse_json(
    bytes: &[u8],
    at: &Location,
    passwords: &mut dyn Passwords,
) -> Result<Vec<AccountSpec>, InputErrors> {
    let document = json::parse(bytes, at, None)?;
    if let Json::Array(items) = &document {
        if andotp::is_backup(items) {
            return andotp::parse(items, at);
        }
    } else if let Some(root) = Obj::new(&document, "") {
        if aegis::is_vault(&root) {
            return aegis::parse(&root, at, passwords);
        }
        if twofas::is_backup(&root) {
            return twofas::parse(&root, at);
        }
        if freeotp::is_export(&root) {
            return freeotp::parse(&root, at);
        }
        if bitwarden::is_export(&root) {
            return bitwarden::parse(&root, at);
        }
    }
    Err(at.error(None, UNKNOWN_KIND).into())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use zeroize::Zeroizing;

    use super::*;
    use crate::import::{GivenPassword, NoPasswords};
    use crate::otp::{HashAlgorithm, OathType};

    pub(super) const PASSWORD: &str = "correct horse battery staple";

    /// The base32 text of the fixture seed `handed-case-key-000N`.
    pub(super) fn seed(n: usize) -> String {
        data_encoding::BASE32_NOPAD.encode(seed_bytes(n).as_bytes())
    }

    pub(super) fn seed_bytes(n: usize) -> String {
        format!("handed-case-key-{n:04}")
    }

    /// Fails when any 6-character window of a secret appears in `text`.
    pub(super) fn assert_no_leak(text: &str, secrets: &[&str]) {
        for secret in secrets {
            let chars: Vec<char> = secret.chars().collect();
            for window in chars.windows(6) {
                let window: String = window.iter().collect();
                assert!(
                    !text.contains(&window),
                    "{window:?} of a secret leaked into: {text}"
                );
            }
        }
    }

    fn leak_check(result: &Result<Vec<AccountSpec>, InputErrors>) {
        if let Err(errors) = result {
            let text = errors.to_string();
            let seeds: Vec<String> = (1..=9).map(seed).collect();
            let mut secrets: Vec<&str> = seeds.iter().map(String::as_str).collect();
            secrets.push(PASSWORD);
            assert_no_leak(&text, &secrets);
        }
    }

    /// Parses `text` as `export.json` without passwords.
    pub(super) fn parse(text: &str) -> Result<Vec<AccountSpec>, InputErrors> {
        parse_with(text.as_bytes(), "export.json", &mut NoPasswords)
    }

    pub(super) fn parse_with(
        bytes: &[u8],
        source: &str,
        passwords: &mut dyn Passwords,
    ) -> Result<Vec<AccountSpec>, InputErrors> {
        let result = parse_json(bytes, &Location::source(source), passwords);
        leak_check(&result);
        result
    }

    /// The error lines of a failing parse (checked for leaks).
    pub(super) fn errors(text: &str) -> Vec<String> {
        match parse(text) {
            Ok(accounts) => panic!("expected errors, got {accounts:?}"),
            Err(errors) => errors.0.iter().map(ToString::to_string).collect(),
        }
    }

    /// One expected account: entry, type, issuer, name, algorithm, digits, period, counter and
    /// the seed's bytes.
    pub(super) struct Expected<'a> {
        pub entry: usize,
        pub oath_type: OathType,
        pub issuer: Option<&'a str>,
        pub name: &'a str,
        pub algorithm: HashAlgorithm,
        pub digits: u8,
        pub period: u32,
        pub counter: u64,
        pub secret: &'a [u8],
    }

    pub(super) fn totp<'a>(
        entry: usize,
        issuer: Option<&'a str>,
        name: &'a str,
        secret: &'a [u8],
    ) -> Expected<'a> {
        Expected {
            entry,
            oath_type: OathType::Totp,
            issuer,
            name,
            algorithm: HashAlgorithm::Sha1,
            digits: 6,
            period: 30,
            counter: 0,
            secret,
        }
    }

    pub(super) fn steam<'a>(entry: usize, name: &'a str, secret: &'a [u8]) -> Expected<'a> {
        totp(entry, Some("Steam"), name, secret)
    }

    pub(super) fn check(accounts: &[AccountSpec], source: &str, expected: &[Expected]) {
        assert_eq!(accounts.len(), expected.len(), "{accounts:?}");
        for (spec, want) in accounts.iter().zip(expected) {
            let at = Location::source(source).at_entry(want.entry);
            assert_eq!(spec.at, at);
            let account = &spec.account;
            assert_eq!(account.oath_type, want.oath_type, "{account:?}");
            assert_eq!(account.issuer.as_deref(), want.issuer, "{account:?}");
            assert_eq!(account.name, want.name);
            assert_eq!(account.algorithm, want.algorithm, "{account:?}");
            assert_eq!(account.digits, want.digits, "{account:?}");
            assert_eq!(account.period, want.period, "{account:?}");
            assert_eq!(account.counter, want.counter, "{account:?}");
            assert_eq!(account.secret.as_slice(), want.secret, "{account:?}");
        }
    }

    #[test]
    fn looks_like_json_needs_a_brace_or_bracket_first() {
        for yes in [
            &b"{}"[..],
            b"[1]",
            b"  \n\t{",
            b"\xEF\xBB\xBF {\"a\":1}",
            b"\r\n[",
        ] {
            assert!(looks_like_json(yes), "{yes:?}");
        }
        for no in [
            &b""[..],
            b"   ",
            b"otpauth://totp/a?secret=AAAA",
            b"\"{\"",
            b"\x0c{",
            b"\xEF\xBB{",
        ] {
            assert!(!looks_like_json(no), "{no:?}");
        }
    }

    #[test]
    fn invalid_json_is_one_error_at_line_and_column_without_quoting() {
        let secret = seed(1);
        let cases = [
            (
                format!("[{{\"secret\": \"{secret}\""),
                "export.json: line 1: the JSON ends too early (column 46)",
            ),
            (
                format!("{{\n\"secret\": \"{secret}\" x}}"),
                "export.json: line 2: not valid JSON (column 46)",
            ),
            (
                format!("{{\"a\": \"{secret}\"}} trailing"),
                "export.json: line 1: not valid JSON (column 43)",
            ),
            (
                format!("{{\"a\": 1, \"a\": \"{secret}\"}}"),
                "export.json: line 1: a key appears twice in one JSON object (column 49)",
            ),
            (
                format!("[\"{secret}\u{1}\"]"),
                "export.json: line 1: not valid JSON (column 35)",
            ),
            (
                "".to_owned(),
                "export.json: line 1: the JSON ends too early (column 0)",
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(errors(&text), [expected], "{text:?}");
        }
        let invalid_utf8 = b"[{\"secret\": \"\xff\xfe\"}]";
        let result = parse_with(invalid_utf8, "x.json", &mut NoPasswords);
        assert_eq!(
            result.unwrap_err().to_string(),
            "x.json: line 1: not valid JSON (column 14)"
        );
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let text = "[".repeat(100_000);
        let errors = errors(&text);
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].starts_with("export.json: line 1: not valid JSON"),
            "{errors:?}"
        );
    }

    #[test]
    fn unknown_shapes_are_one_error() {
        for text in [
            "{}",
            "[]",
            "[1, 2]",
            "[{}, 3]",
            "\"text\"",
            "12",
            "null",
            "{\"accounts\": []}",
            "{\"header\": {}}",
        ] {
            assert_eq!(
                errors(text),
                [format!("export.json: {UNKNOWN_KIND}")],
                "{text}"
            );
        }
    }

    #[test]
    fn a_byte_order_mark_is_skipped() {
        let text = format!(
            "\u{feff}[{{\"secret\": \"{}\", \"label\": \"a\"}}]",
            seed(1)
        );
        let accounts = parse(&text).unwrap();
        check(
            &accounts,
            "export.json",
            &[totp(1, None, "a", seed_bytes(1).as_bytes())],
        );
    }

    /// A fixture's file name and bytes.
    type Fixture = (&'static str, &'static [u8]);

    macro_rules! fixture {
        ($name:literal) => {
            (
                $name,
                &include_bytes!(concat!("../../../../tests/data/import/apps/", $name))[..],
            )
        };
    }

    /// The accounts tests/data/import/apps/README.md lists for each good fixture.
    #[test]
    fn good_fixtures_yield_the_accounts_in_the_readme() {
        let s: Vec<String> = (0..=5).map(seed_bytes).collect();
        let s = |n: usize| s[n].as_bytes();
        let hotp = |entry, issuer, name, algorithm, digits, counter, secret| Expected {
            entry,
            oath_type: OathType::Hotp,
            issuer: Some(issuer),
            name,
            algorithm,
            digits,
            period: 30,
            counter,
            secret,
        };
        let cases: Vec<(Fixture, Vec<Expected>)> = vec![
            (
                fixture!("aegis-plain.json"),
                vec![
                    totp(1, Some("Example"), "alice@example.com", s(1)),
                    hotp(2, "Forge", "bob", HashAlgorithm::Sha256, 8, 0, s(2)),
                    steam(3, "carol", s(3)),
                ],
            ),
            (
                fixture!("aegis-encrypted.json"),
                vec![
                    Expected {
                        algorithm: HashAlgorithm::Sha512,
                        digits: 7,
                        period: 60,
                        ..totp(1, Some("Mail"), "dave", s(4))
                    },
                    totp(2, None, "erin", s(5)),
                ],
            ),
            (
                fixture!("2fas.2fas"),
                vec![
                    totp(1, Some("Example"), "alice@example.com", s(1)),
                    hotp(2, "Forge", "bob", HashAlgorithm::Sha256, 8, 7, s(2)),
                    steam(3, "carol", s(3)),
                ],
            ),
            (
                fixture!("andotp.json"),
                vec![
                    totp(1, Some("Example"), "alice@example.com", s(1)),
                    hotp(2, "Forge", "bob", HashAlgorithm::Sha1, 6, 0, s(2)),
                    steam(3, "carol", s(3)),
                ],
            ),
            (
                fixture!("bitwarden.json"),
                vec![
                    totp(1, Some("Example"), "alice@example.com", s(1)),
                    totp(3, Some("Forge"), "bob", s(2)),
                    steam(5, "carol", s(3)),
                ],
            ),
            (
                fixture!("freeotp-plus.json"),
                vec![
                    Expected {
                        algorithm: HashAlgorithm::Sha256,
                        ..totp(1, Some("Example"), "alice@example.com", s(1))
                    },
                    hotp(2, "Forge", "bob", HashAlgorithm::Sha1, 6, 0, s(2)),
                ],
            ),
        ];
        for ((name, bytes), expected) in cases {
            let mut password = GivenPassword(Zeroizing::new(PASSWORD.to_owned()));
            let accounts =
                parse_with(bytes, name, &mut password).unwrap_or_else(|e| panic!("{name}: {e}"));
            check(&accounts, name, &expected);
        }
    }

    /// The error lines tests/data/import/apps/README.md lists for each malformed fixture.
    #[test]
    fn malformed_fixtures_give_the_errors_in_the_readme() {
        let cases: Vec<(Fixture, Vec<&str>)> = vec![
            (
                fixture!("aegis-bad-digits.json"),
                vec!["aegis-bad-digits.json: entry 2: info.digits: expected 6, 7 or 8"],
            ),
            (
                fixture!("aegis-encrypted-tampered.json"),
                vec![
                    "aegis-encrypted-tampered.json: db: the vault is damaged (its contents fail the integrity check)",
                ],
            ),
            (
                fixture!("andotp-truncated.json"),
                vec!["andotp-truncated.json: line 19: the JSON ends too early (column 0)"],
            ),
            (
                fixture!("andotp-bad-fields.json"),
                vec![
                    "andotp-bad-fields.json: entry 1: algorithm: empty",
                    "andotp-bad-fields.json: entry 1: period: expected whole seconds from 1 to 300",
                    "andotp-bad-fields.json: entry 2: secret: not valid base32 (character 9)",
                    "andotp-bad-fields.json: entry 2: counter: expected a whole number from 0 to 4294967295",
                    "andotp-bad-fields.json: entry 3: type: unknown type (expected TOTP, HOTP or STEAM)",
                    "andotp-bad-fields.json: entry 3: label: missing",
                ],
            ),
            (
                fixture!("2fas-encrypted.2fas"),
                vec![
                    "2fas-encrypted.2fas: encrypted 2FAS backups are not supported: export again without a password",
                ],
            ),
            (
                fixture!("bitwarden-encrypted.json"),
                vec![
                    "bitwarden-encrypted.json: encrypted Bitwarden exports are not supported: export again as unencrypted JSON",
                ],
            ),
            (
                fixture!("freeotp-plus-bad-secret.json"),
                vec![
                    "freeotp-plus-bad-secret.json: entry 2: secret: expected a list of bytes (-128 to 127)",
                ],
            ),
            (
                fixture!("unknown-kind.json"),
                vec![
                    "unknown-kind.json: JSON of an unknown kind (expected an export of Aegis, 2FAS, andOTP, Bitwarden or FreeOTP+)",
                ],
            ),
        ];
        for ((name, bytes), expected) in cases {
            let mut password = GivenPassword(Zeroizing::new(PASSWORD.to_owned()));
            let errors = parse_with(bytes, name, &mut password).unwrap_err();
            let lines: Vec<String> = errors.0.iter().map(ToString::to_string).collect();
            assert_eq!(lines, expected, "{name}");
        }
    }

    #[test]
    fn the_encrypted_fixture_refuses_a_wrong_or_missing_password() {
        let (name, bytes) = fixture!("aegis-encrypted.json");
        let mut wrong = GivenPassword(Zeroizing::new("correct horse battery stapler".to_owned()));
        let errors = parse_with(bytes, name, &mut wrong).unwrap_err().to_string();
        assert_eq!(
            errors,
            "aegis-encrypted.json: wrong password, or the vault is damaged"
        );
        let errors = parse_with(bytes, name, &mut NoPasswords)
            .unwrap_err()
            .to_string();
        assert_eq!(
            errors,
            "aegis-encrypted.json: the Aegis vault is encrypted and no password was given"
        );
    }

    /// Exports of every format with `secret` (base32) in the seed's place and as a name.
    fn templates(secret: &str, bytes: &[u8]) -> Vec<String> {
        let list: Vec<String> = bytes.iter().map(|b| (*b as i8).to_string()).collect();
        let list = list.join(",");
        vec![
            format!(
                r#"{{"version":1,"header":{{"slots":null,"params":null}},"db":{{"version":3,"entries":[{{"type":"totp","name":"{secret}","issuer":"x","info":{{"secret":"{secret}","algo":"SHA1","digits":6,"period":30}}}},{{"type":"hotp","name":"b","issuer":"{secret}","info":{{"secret":"{secret}","algo":"SHA256","digits":8,"counter":3}}}}]}}}}"#
            ),
            format!(
                r#"{{"services":[{{"name":"{secret}","secret":"{secret}","otp":{{"account":"{secret}","issuer":"i","digits":6,"period":30,"algorithm":"SHA1","tokenType":"TOTP"}}}}],"schemaVersion":4}}"#
            ),
            format!(
                r#"[{{"secret":"{secret}","issuer":"{secret}","label":"l","digits":6,"type":"HOTP","algorithm":"SHA1","counter":0}},{{"secret":"{secret}","label":"m","type":"STEAM","digits":5}}]"#
            ),
            format!(
                r#"{{"encrypted":false,"items":[{{"type":1,"name":"{secret}","login":{{"username":"u","totp":"otpauth://totp/I:{secret}?secret={secret}&issuer={secret}&digits=8"}}}},{{"type":1,"name":"n","login":{{"username":"{secret}","totp":"{secret}"}}}},{{"type":1,"name":"s","login":{{"totp":"steam://{secret}"}}}}]}}"#
            ),
            format!(
                r#"{{"tokens":[{{"algo":"SHA1","counter":0,"digits":6,"issuerExt":"{secret}","label":"{secret}","period":30,"secret":[{list}],"type":"TOTP"}}],"tokenOrder":["{secret}"]}}"#
            ),
            super::aegis_vault::tests::tiny_vault(&format!(
                r#"{{"version":3,"entries":[{{"type":"totp","name":"{secret}","issuer":"x","info":{{"secret":"{secret}"}}}}]}}"#
            )),
        ]
    }

    #[test]
    fn the_unmutated_templates_are_valid_exports() {
        let seed = b"\x00\xff\x80\x7fsome seed bytes";
        let secret = data_encoding::BASE32_NOPAD.encode(seed);
        for (index, text) in templates(&secret, seed).into_iter().enumerate() {
            let mut password = GivenPassword(Zeroizing::new(PASSWORD.to_owned()));
            let accounts = parse_with(text.as_bytes(), "t.json", &mut password)
                .unwrap_or_else(|e| panic!("template {index}: {e}"));
            assert!(
                accounts
                    .iter()
                    .all(|spec| spec.account.secret.as_slice() == seed)
            );
        }
    }

    #[derive(Debug, Clone)]
    enum Mutation {
        Truncate(usize),
        Replace(usize, u8),
        Insert(usize, u8),
        Delete(usize, usize),
    }

    fn mutation() -> impl Strategy<Value = Mutation> {
        let byte = prop::sample::select(b"{}[]\":,0123456789-. aeAZ7=\\\n\xff".to_vec());
        prop_oneof![
            any::<usize>().prop_map(Mutation::Truncate),
            (any::<usize>(), byte.clone()).prop_map(|(at, b)| Mutation::Replace(at, b)),
            (any::<usize>(), byte).prop_map(|(at, b)| Mutation::Insert(at, b)),
            (any::<usize>(), 1..8usize).prop_map(|(at, n)| Mutation::Delete(at, n)),
        ]
    }

    fn apply(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
        for mutation in mutations {
            let len = bytes.len().max(1);
            match *mutation {
                Mutation::Truncate(at) => bytes.truncate(at % len),
                Mutation::Replace(at, b) => {
                    if let Some(slot) = bytes.get_mut(at % len) {
                        *slot = b;
                    }
                }
                Mutation::Insert(at, b) => bytes.insert((at % len).min(bytes.len()), b),
                Mutation::Delete(at, n) => {
                    let start = (at % len).min(bytes.len());
                    let end = (start + n).min(bytes.len());
                    bytes.drain(start..end);
                }
            }
        }
        bytes
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Whatever a damaged export looks like, no error quotes the seed or the password.
        #[test]
        fn no_error_quotes_a_seed_or_the_password(
            seed in prop::collection::vec(any::<u8>(), 10..40),
            template in 0..6usize,
            mutations in prop::collection::vec(mutation(), 0..4),
        ) {
            let secret = data_encoding::BASE32_NOPAD.encode(&seed);
            let text = templates(&secret, &seed).swap_remove(template);
            let bytes = apply(text.into_bytes(), &mutations);
            let mut password = GivenPassword(Zeroizing::new(PASSWORD.to_owned()));
            if let Err(errors) = parse_json(&bytes, &Location::source("export.json"), &mut password) {
                prop_assert!(!errors.0.is_empty());
                assert_no_leak(&errors.to_string(), &[&secret, PASSWORD]);
            }
        }
    }
}
