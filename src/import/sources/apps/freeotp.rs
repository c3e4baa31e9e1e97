//! FreeOTP+ JSON exports, after the export FreeOTP+ writes:
//!
//! ```json
//! {"tokens": [{"algo": "SHA1", "counter": 0, "digits": 6, "issuerExt": "Example",
//!              "label": "alice", "period": 30, "secret": [104, -97, ...], "type": "TOTP"}],
//!  "tokenOrder": ["Example:alice"]}
//! ```
//!
//! `secret` is the seed as Java's signed bytes (-128..=127). `type` is `TOTP` or `HOTP`; a TOTP
//! token whose `issuerExt` is `Steam` shows Steam codes in FreeOTP+ and becomes a Steam
//! account. Absent `type`, `algo`, `digits`, `period` and `counter` mean TOTP, SHA1, 6, 30 s
//! and 0. `tokenOrder` only orders the list in the app and is not read; entries are numbered
//! by their place in `tokens`.

use zeroize::Zeroizing;

use super::fields::{self, Kind, Reader};
use super::json::{Json, Obj};
use crate::import::{AccountSpec, InputErrors, Location};
use crate::otp::STEAM_ISSUER;

const BAD_SECRET: &str = "expected a list of bytes (-128 to 127)";

/// True for an object with `tokens`.
pub(super) fn is_export(root: &Obj) -> bool {
    root.get("tokens").is_some()
}

pub(super) fn parse(root: &Obj, at: &Location) -> Result<Vec<AccountSpec>, InputErrors> {
    let mut top = Reader::new(at.clone());
    let Some(tokens) = top.list(root, "tokens") else {
        return Err(InputErrors(top.errors));
    };
    let found = fields::each_entry(tokens, at, |reader, token| {
        let issuer = reader.non_empty(token, "issuerExt");
        let kind = reader.kind(token, "type");
        let kind = match (kind, issuer.as_deref()) {
            (Some(Kind::Totp), Some(STEAM_ISSUER)) => Some(Kind::Steam),
            (kind, _) => kind,
        };
        let secret = byte_secret(reader, token, "secret");
        let name = reader.name(token, "label");
        Some(reader.account(kind, token, "algo", issuer, name, secret))
    });
    found.into_result(at, "tokens")
}

/// A required seed given as a list of signed bytes.
fn byte_secret(reader: &mut Reader, obj: &Obj, key: &str) -> Zeroizing<Vec<u8>> {
    let items = match obj.get(key) {
        Some(Json::Array(items)) => items,
        None => {
            reader.fail(obj, key, "missing");
            return Zeroizing::new(Vec::new());
        }
        Some(_) => {
            reader.fail(obj, key, BAD_SECRET);
            return Zeroizing::new(Vec::new());
        }
    };
    // The exact size up front: a reallocation would leave a copy of the seed behind.
    let mut secret = Zeroizing::new(Vec::with_capacity(items.len()));
    for item in items {
        let byte = match item {
            Json::Uint(value) => i8::try_from(*value).ok(),
            Json::Negative(value) => i8::try_from(*value).ok(),
            _ => None,
        };
        match byte {
            Some(byte) => secret.push(byte as u8),
            None => {
                reader.fail(obj, key, BAD_SECRET);
                return Zeroizing::new(Vec::new());
            }
        }
    }
    reader.check_secret_length(obj, key, &secret);
    secret
}

#[cfg(test)]
mod tests {
    use super::super::tests::{Expected, check, errors, parse, steam, totp};
    use crate::otp::{HashAlgorithm, OathType};

    #[test]
    fn reads_every_type_field_and_signed_byte() {
        let text = r#"{"tokenOrder":["x"],"tokens":[
            {"algo":"SHA512","counter":0,"digits":8,"issuerExt":"Example","issuerInt":"Example","label":"alice","period":20,"secret":[-19,64,-59,-18,-128,127,0,1],"type":"TOTP"},
            {"algo":"SHA256","counter":10299,"digits":7,"issuerExt":"","label":"bob","period":30,"secret":[85,42,-108,-71],"type":"HOTP"},
            {"issuerExt":"Steam","label":"carol","secret":[1,2,3,4,5],"digits":5,"type":"TOTP"},
            {"label":"dave","secret":[9,9]}]}"#;
        let accounts = parse(text).unwrap();
        check(
            &accounts,
            "export.json",
            &[
                Expected {
                    algorithm: HashAlgorithm::Sha512,
                    digits: 8,
                    period: 20,
                    ..totp(
                        1,
                        Some("Example"),
                        "alice",
                        &[0xED, 0x40, 0xC5, 0xEE, 0x80, 0x7F, 0x00, 0x01],
                    )
                },
                Expected {
                    oath_type: OathType::Hotp,
                    algorithm: HashAlgorithm::Sha256,
                    digits: 7,
                    counter: 10299,
                    ..totp(2, None, "bob", &[85, 42, 0x94, 0xB9])
                },
                steam(3, "carol", &[1, 2, 3, 4, 5]),
                totp(4, None, "dave", &[9, 9]),
            ],
        );
    }

    #[test]
    fn malformed_tokens_are_reported() {
        let text = r#"{"tokens":[
            {"label":"a","secret":[1,2,128],"type":"TOTP"},
            {"label":"a","secret":[1,-129]},
            {"label":"a","secret":[1,"2"]},
            {"label":"a","secret":[1,2.5]},
            {"label":"a","secret":"JBSWY3DP"},
            {"label":"a","secret":[]},
            {"label":"a","secret":[7]},
            {"secret":[1,2],"type":"MOTP","digits":4},
            {"label":"a","secret":[1,2],"digits":6,"period":0,"algo":"SHA1","counter":-1,"type":"HOTP"}]}"#;
        assert_eq!(
            errors(text),
            [
                "export.json: entry 1: secret: expected a list of bytes (-128 to 127)",
                "export.json: entry 2: secret: expected a list of bytes (-128 to 127)",
                "export.json: entry 3: secret: expected a list of bytes (-128 to 127)",
                "export.json: entry 4: secret: expected a list of bytes (-128 to 127)",
                "export.json: entry 5: secret: expected a list of bytes (-128 to 127)",
                "export.json: entry 6: secret: empty",
                "export.json: entry 7: secret: too short (at least 2 bytes)",
                "export.json: entry 8: type: unknown type (expected TOTP, HOTP or STEAM)",
                "export.json: entry 8: label: missing",
                "export.json: entry 9: counter: expected a whole number from 0 to 4294967295",
            ]
        );
        assert_eq!(
            errors(r#"{"tokens":[]}"#),
            ["export.json: tokens: no accounts in the export"]
        );
        assert_eq!(
            errors(r#"{"tokens":7}"#),
            ["export.json: tokens: expected a list"]
        );
    }
}
