//! andOTP plain JSON backups, after the backups andOTP writes: a top-level list of
//!
//! ```json
//! {"secret": "BASE32", "issuer": "Example", "label": "alice", "digits": 6, "type": "TOTP",
//!  "algorithm": "SHA1", "period": 30, "counter": 0, "thumbnail": "Default", "tags": []}
//! ```
//!
//! `type` is `TOTP`, `HOTP` or `STEAM`; `label` is the account name. Absent `type`,
//! `algorithm`, `digits`, `period` and `counter` mean TOTP, SHA1, 6, 30 s and 0. Encrypted
//! andOTP backups are binary, not JSON, and do not reach this reader.

use super::fields;
use super::json::Json;
use crate::import::{AccountSpec, InputErrors, Location};

/// True for a non-empty list of objects.
pub(super) fn is_backup(items: &[Json]) -> bool {
    !items.is_empty() && items.iter().all(|item| matches!(item, Json::Object(_)))
}

pub(super) fn parse(entries: &[Json], at: &Location) -> Result<Vec<AccountSpec>, InputErrors> {
    let found = fields::each_entry(entries, at, |reader, entry| {
        let kind = reader.kind(entry, "type");
        let secret = reader.base32_secret(entry, "secret");
        let name = reader.name(entry, "label");
        let issuer = reader.non_empty(entry, "issuer");
        Some(reader.account(kind, entry, "algorithm", issuer, name, secret))
    });
    found.into_result(at, "entries")
}

#[cfg(test)]
mod tests {
    use super::super::tests::{Expected, check, errors, parse, seed, seed_bytes, steam, totp};
    use crate::otp::{HashAlgorithm, OathType};

    #[test]
    fn reads_every_type_and_field() {
        let text = format!(
            r#"[{{"secret":"{}======","issuer":"Example","label":"alice","digits":7,"type":"TOTP","algorithm":"SHA256","thumbnail":"Default","last_used":1,"used_frequency":0,"period":45,"tags":[]}},
               {{"secret":"{}","issuer":"Forge","label":"bob","digits":8,"type":"HOTP","algorithm":"SHA512","counter":4294967295,"tags":["x"]}},
               {{"secret":"{}","issuer":"Valve","label":"carol","digits":5,"type":"STEAM","algorithm":"SHA1"}},
               {{"secret":"{}","label":"dave"}}]"#,
            seed(1),
            seed(2),
            seed(3),
            seed(4)
        );
        let accounts = parse(&text).unwrap();
        let s: Vec<String> = (0..=4).map(seed_bytes).collect();
        check(
            &accounts,
            "export.json",
            &[
                Expected {
                    algorithm: HashAlgorithm::Sha256,
                    digits: 7,
                    period: 45,
                    ..totp(1, Some("Example"), "alice", s[1].as_bytes())
                },
                Expected {
                    oath_type: OathType::Hotp,
                    algorithm: HashAlgorithm::Sha512,
                    digits: 8,
                    counter: 4_294_967_295,
                    ..totp(2, Some("Forge"), "bob", s[2].as_bytes())
                },
                steam(3, "carol", s[3].as_bytes()),
                totp(4, None, "dave", s[4].as_bytes()),
            ],
        );
    }

    #[test]
    fn malformed_entries_are_reported() {
        let s1 = seed(1);
        let text = format!(
            r#"[{{"secret":"{s1}","label":"a","type":"MOTP","digits":5}},
               {{"secret":"{s1}","label":"a","type":"TOTP","digits":9,"period":300.5,"algorithm":"sha3"}},
               {{"secret":"{s1}","label":"a","type":"HOTP","counter":-5}},
               {{"secret":"","label":"","issuer":7}},
               {{"label":"a","type":false}},
               {{"secret":"{s1}","label":"a","type":"STEAM","digits":8}}]"#
        );
        assert_eq!(
            errors(&text),
            [
                "export.json: entry 1: type: unknown type (expected TOTP, HOTP or STEAM)",
                "export.json: entry 2: algorithm: expected SHA1, SHA256 or SHA512",
                "export.json: entry 2: digits: expected 6, 7 or 8",
                "export.json: entry 2: period: expected whole seconds from 1 to 300",
                "export.json: entry 3: counter: expected a whole number from 0 to 4294967295",
                "export.json: entry 4: secret: empty",
                "export.json: entry 4: label: empty",
                "export.json: entry 4: issuer: expected text",
                "export.json: entry 5: type: expected text",
                "export.json: entry 5: secret: missing",
                "export.json: entry 6: digits: a Steam account must use 5 (or 6) digits",
            ]
        );
    }
}
