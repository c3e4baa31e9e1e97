//! Aegis Authenticator vaults, plain or encrypted, after Aegis' `docs/vault.md`:
//!
//! ```json
//! {"version": 1,
//!  "header": {"slots": null, "params": null},
//!  "db": {"version": 2, "entries": [
//!    {"type": "totp", "name": "alice", "issuer": "Example",
//!     "info": {"secret": "BASE32", "algo": "SHA1", "digits": 6, "period": 30}}]}}
//! ```
//!
//! `type` is `totp`, `hotp` (with `info.counter`) or `steam`; Yandex and mOTP entries cannot be
//! stored on a key and are errors. `info.algo`, `digits`, `period` and `counter` default to
//! SHA1, 6, 30 s and 0 when absent. An encrypted vault has a base64 string as `db`
//! (see [`super::aegis_vault`]).

use zeroize::Zeroizing;

use super::aegis_vault;
use super::fields::{self, Kind, Reader};
use super::json::{self, Json, Obj};
use crate::import::{AccountSpec, InputErrors, Location, Passwords};

/// The vault format version this reader knows.
const VAULT_VERSION: u64 = 1;

/// True for an object with `header` and `db`.
pub(super) fn is_vault(root: &Obj) -> bool {
    root.get("header").is_some() && root.get("db").is_some()
}

/// The accounts of an Aegis vault; asks `passwords` only when the vault is encrypted.
pub(super) fn parse(
    root: &Obj,
    at: &Location,
    passwords: &mut dyn Passwords,
) -> Result<Vec<AccountSpec>, InputErrors> {
    let mut top = Reader::new(at.clone());
    match root.get("version") {
        None | Some(Json::Uint(VAULT_VERSION)) => {}
        Some(Json::Uint(_)) => top.fail(root, "version", "unsupported vault version (expected 1)"),
        Some(_) => top.fail(root, "version", "expected a whole number"),
    }
    let header = top.object(root, "header", true);
    if !top.errors.is_empty() {
        return Err(InputErrors(top.errors));
    }
    let db = root.get("db");
    if let Some(db) = db.and_then(|db| Obj::new(db, "db.")) {
        return parse_content(&db, at);
    }
    match (db, header) {
        (Some(Json::Str(ciphertext)), Some(header)) => {
            let plaintext: Zeroizing<Vec<u8>> =
                aegis_vault::decrypt(&header, ciphertext, at, passwords)?;
            let content = json::parse(&plaintext, at, Some("db"))?;
            match Obj::new(&content, "db.") {
                Some(db) => parse_content(&db, at),
                None => Err(at
                    .error(Some("db"), "the decrypted vault is not a JSON object")
                    .into()),
            }
        }
        _ => Err(at
            .error(Some("db"), "expected an object or a base64 string")
            .into()),
    }
}

/// The `db` object: `{"version": N, "entries": [...]}`.
fn parse_content(db: &Obj, at: &Location) -> Result<Vec<AccountSpec>, InputErrors> {
    let mut top = Reader::new(at.clone());
    let Some(entries) = top.list(db, "entries") else {
        return Err(InputErrors(top.errors));
    };
    let found = fields::each_entry(entries, at, |reader, entry| {
        let kind = entry_kind(reader, entry);
        let name = reader.name(entry, "name");
        let issuer = reader.non_empty(entry, "issuer");
        let info = reader.object(entry, "info", true)?;
        let secret = reader.base32_secret(&info, "secret");
        Some(reader.account(kind, &info, "algo", issuer, name, secret))
    });
    found.into_result(at, "db.entries")
}

fn entry_kind(reader: &mut Reader, entry: &Obj) -> Option<Kind> {
    let text = reader.required_text(entry, "type")?;
    let kind = match text.to_ascii_lowercase().as_str() {
        "totp" => Kind::Totp,
        "hotp" => Kind::Hotp,
        "steam" => Kind::Steam,
        "yandex" => {
            reader.fail(
                entry,
                "type",
                "Yandex entries are not supported (no key computes their codes)",
            );
            return None;
        }
        "motp" => {
            reader.fail(
                entry,
                "type",
                "mOTP entries are not supported (no key computes their codes)",
            );
            return None;
        }
        _ => {
            reader.fail(entry, "type", "unknown type (expected totp, hotp or steam)");
            return None;
        }
    };
    Some(kind)
}

#[cfg(test)]
mod tests {
    use super::super::tests::{Expected, check, errors, parse, seed, seed_bytes, steam, totp};
    use crate::otp::{HashAlgorithm, OathType};

    fn vault(entries: &str) -> String {
        format!(
            r#"{{"version":1,"header":{{"slots":null,"params":null}},"db":{{"version":3,"entries":[{entries}],"groups":[]}}}}"#
        )
    }

    fn entry(kind: &str, name: &str, info: &str) -> String {
        format!(
            r#"{{"type":"{kind}","uuid":"u","name":"{name}","issuer":"Iss","icon":null,"info":{info}}}"#
        )
    }

    fn info(extra: &str) -> String {
        format!(r#"{{"secret":"{}"{extra}}}"#, seed(1))
    }

    #[test]
    fn reads_every_type_and_field() {
        let entries = [
            entry("totp", "alice", &format!(r#"{{"secret":"{}","algo":"SHA512","digits":8,"period":60}}"#, seed(1))),
            entry("HOTP", "bob", &format!(r#"{{"secret":"{}","algo":"SHA256","digits":7,"counter":42}}"#, seed(2))),
            entry("steam", "carol", &format!(r#"{{"secret":"{}","algo":"SHA1","digits":5,"period":30}}"#, seed(3))),
            r#"{"type":"totp","name":"dave","issuer":"","info":{"secret":"nbqw 4zdf mqww gylt muww wzlz fuyd ambu"}}"#.to_owned(),
        ];
        let accounts = parse(&vault(&entries.join(","))).unwrap();
        let (s1, s2, s3, s4) = (seed_bytes(1), seed_bytes(2), seed_bytes(3), seed_bytes(4));
        check(
            &accounts,
            "export.json",
            &[
                Expected {
                    algorithm: HashAlgorithm::Sha512,
                    digits: 8,
                    period: 60,
                    ..totp(1, Some("Iss"), "alice", s1.as_bytes())
                },
                Expected {
                    oath_type: OathType::Hotp,
                    algorithm: HashAlgorithm::Sha256,
                    digits: 7,
                    counter: 42,
                    ..totp(2, Some("Iss"), "bob", s2.as_bytes())
                },
                steam(3, "carol", s3.as_bytes()),
                totp(4, None, "dave", s4.as_bytes()),
            ],
        );
    }

    #[test]
    fn absent_fields_take_defaults() {
        let text = vault(&format!(
            r#"{{"type":"hotp","name":"n","info":{}}},{{"type":"steam","name":"s","info":{}}}"#,
            info(""),
            info("")
        ));
        let accounts = parse(&text).unwrap();
        let s1 = seed_bytes(1);
        check(
            &accounts,
            "export.json",
            &[
                Expected {
                    oath_type: OathType::Hotp,
                    ..totp(1, None, "n", s1.as_bytes())
                },
                steam(2, "s", s1.as_bytes()),
            ],
        );
    }

    #[test]
    fn unsupported_and_unknown_types_are_errors() {
        let kinds = ["yandex", "motp", "TOTPX", "", "7"];
        let entries: Vec<String> = kinds
            .iter()
            .map(|kind| entry(kind, "n", &info("")))
            .collect();
        let mut entries = entries.join(",");
        entries = entries.replace(r#""type":"7""#, r#""type":7"#);
        entries.push_str(&format!(r#",{{"name":"n","info":{}}}"#, info("")));
        assert_eq!(
            errors(&vault(&entries)),
            [
                "export.json: entry 1: type: Yandex entries are not supported (no key computes their codes)",
                "export.json: entry 2: type: mOTP entries are not supported (no key computes their codes)",
                "export.json: entry 3: type: unknown type (expected totp, hotp or steam)",
                "export.json: entry 4: type: empty",
                "export.json: entry 5: type: expected text",
                "export.json: entry 6: type: missing",
            ]
        );
    }

    #[test]
    fn every_malformed_field_of_every_entry_is_reported() {
        let cases = [
            (r#","digits":9"#, "info.digits: expected 6, 7 or 8"),
            (r#","digits":5"#, "info.digits: expected 6, 7 or 8"),
            (r#","digits":0"#, "info.digits: expected 6, 7 or 8"),
            (r#","digits":"6x""#, "info.digits: expected 6, 7 or 8"),
            (r#","digits":6.0"#, "info.digits: expected 6, 7 or 8"),
            (
                r#","digits":99999999999999999999999"#,
                "info.digits: expected 6, 7 or 8",
            ),
            (
                r#","period":0"#,
                "info.period: expected whole seconds from 1 to 300",
            ),
            (
                r#","period":301"#,
                "info.period: expected whole seconds from 1 to 300",
            ),
            (
                r#","period":[30]"#,
                "info.period: expected whole seconds from 1 to 300",
            ),
            (r#","algo":"""#, "info.algo: empty"),
            (
                r#","algo":"MD5""#,
                "info.algo: expected SHA1, SHA256 or SHA512",
            ),
            (r#","algo":1"#, "info.algo: expected SHA1, SHA256 or SHA512"),
        ];
        let entries: Vec<String> = cases
            .iter()
            .map(|(extra, _)| entry("totp", "n", &info(extra)))
            .collect();
        let expected: Vec<String> = cases
            .iter()
            .enumerate()
            .map(|(index, (_, problem))| format!("export.json: entry {}: {problem}", index + 1))
            .collect();
        assert_eq!(errors(&vault(&entries.join(","))), expected);

        let hotp = [
            r#","counter":-1"#,
            r#","counter":4294967296"#,
            r#","counter":"x""#,
        ];
        let entries: Vec<String> = hotp
            .iter()
            .map(|extra| entry("hotp", "n", &info(extra)))
            .collect();
        for line in errors(&vault(&entries.join(","))) {
            assert!(
                line.ends_with("info.counter: expected a whole number from 0 to 4294967295"),
                "{line}"
            );
        }
    }

    #[test]
    fn bad_secrets_names_and_infos() {
        let s1 = seed(1);
        let entries = [
            r#"{"type":"totp","name":"n","info":{"secret":""}}"#.to_owned(),
            format!(
                r#"{{"type":"totp","name":"n","info":{{"secret":"{}1"}}}}"#,
                &s1[..16]
            ),
            format!(
                r#"{{"type":"totp","name":"n","info":{{"secret":"{}"}}}}"#,
                &s1[..9]
            ),
            r#"{"type":"totp","name":"n","info":{"secret":"AE"}}"#.to_owned(),
            r#"{"type":"totp","name":"n","info":{"secret":12345}}"#.to_owned(),
            r#"{"type":"totp","name":"n","info":{}}"#.to_owned(),
            format!(r#"{{"type":"totp","info":{}}}"#, info("")),
            format!(r#"{{"type":"totp","name":"","info":{}}}"#, info("")),
            format!(r#"{{"type":"totp","name":"a\u0007b","info":{}}}"#, info("")),
            format!(
                r#"{{"type":"totp","name":"{s1}","issuer":["{s1}"],"info":{}}}"#,
                info("")
            ),
            r#"{"type":"totp","name":"n"}"#.to_owned(),
            r#"{"type":"totp","name":"n","info":"x"}"#.to_owned(),
            format!(
                r#"{{"type":"steam","name":"n","info":{}}}"#,
                info(r#","algo":"SHA256","digits":7,"period":60"#)
            ),
            "[]".to_owned(),
        ];
        assert_eq!(
            errors(&vault(&entries.join(","))),
            [
                "export.json: entry 1: info.secret: empty",
                "export.json: entry 2: info.secret: not valid base32 (character 17)",
                "export.json: entry 3: info.secret: not valid base32 (impossible length)",
                "export.json: entry 4: info.secret: too short (at least 2 bytes)",
                "export.json: entry 5: info.secret: expected base32 text",
                "export.json: entry 6: info.secret: missing",
                "export.json: entry 7: name: missing",
                "export.json: entry 8: name: empty",
                "export.json: entry 9: name: contains a control character",
                "export.json: entry 10: issuer: expected text",
                "export.json: entry 11: info: missing",
                "export.json: entry 12: info: expected an object",
                "export.json: entry 13: info.algo: a Steam account must use SHA1",
                "export.json: entry 13: info.digits: a Steam account must use 5 (or 6) digits",
                "export.json: entry 13: info.period: a Steam account must use 30 seconds",
                "export.json: entry 14: expected an object",
            ]
        );
    }

    #[test]
    fn vault_level_problems() {
        let cases = [
            (
                r#"{"version":1,"header":{},"db":{"entries":[]}}"#,
                "export.json: db.entries: no accounts in the export",
            ),
            (
                r#"{"version":1,"header":{},"db":{"version":1}}"#,
                "export.json: db.entries: missing",
            ),
            (
                r#"{"version":1,"header":{},"db":{"entries":{}}}"#,
                "export.json: db.entries: expected a list",
            ),
            (
                r#"{"version":1,"header":{},"db":[]}"#,
                "export.json: db: expected an object or a base64 string",
            ),
            (
                r#"{"version":1,"header":7,"db":{}}"#,
                "export.json: header: expected an object",
            ),
            (
                r#"{"version":2,"header":{},"db":{}}"#,
                "export.json: version: unsupported vault version (expected 1)",
            ),
            (
                r#"{"version":"1","header":{},"db":{}}"#,
                "export.json: version: expected a whole number",
            ),
            (
                r#"{"version":1,"header":{"slots":null},"db":"AAAA"}"#,
                "export.json: header.params: missing",
            ),
        ];
        for (text, expected) in cases {
            let lines = errors(text);
            assert_eq!(lines[0], expected, "{text}");
        }
    }
}
