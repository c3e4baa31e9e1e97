//! Bitwarden JSON exports (unencrypted), after Bitwarden's export format:
//!
//! ```json
//! {"encrypted": false, "folders": [],
//!  "items": [{"type": 1, "name": "Example",
//!             "login": {"username": "alice", "password": "…", "totp": "…"}}]}
//! ```
//!
//! `login.totp` is an `otpauth://` URI, `steam://BASE32`, or a bare base32 seed (TOTP, SHA1,
//! 6 digits, 30 s, issuer = item name, name = username, or the item name alone when there is
//! no username). Items without a TOTP are passwords and are skipped, but an export without
//! any TOTP is an error. Encrypted exports (`"encrypted": true`) are refused. Entries are
//! numbered by their place in `items`.

use zeroize::Zeroizing;

use super::fields::{self, Reader, secret_problem};
use super::json::{Json, Obj};
use crate::import::{AccountSpec, InputErrors, Location};
use crate::otp::{HashAlgorithm, OathType, OtpAuthUri, UriError, parse_otpauth_uri};

pub(super) const ENCRYPTED: &str =
    "encrypted Bitwarden exports are not supported: export again as unencrypted JSON";

/// True for an object with `items` or a boolean `encrypted`.
pub(super) fn is_export(root: &Obj) -> bool {
    root.get("items").is_some() || matches!(root.get("encrypted"), Some(Json::Bool(_)))
}

pub(super) fn parse(root: &Obj, at: &Location) -> Result<Vec<AccountSpec>, InputErrors> {
    if matches!(root.get("encrypted"), Some(Json::Bool(true)))
        || matches!(root.get("passwordProtected"), Some(Json::Bool(true)))
    {
        return Err(at.error(None, ENCRYPTED).into());
    }
    let mut top = Reader::new(at.clone());
    let Some(items) = top.list(root, "items") else {
        return Err(InputErrors(top.errors));
    };
    let found = fields::each_entry(items, at, |reader, item| {
        // Cards, notes and identities have no `login`.
        let login = reader.object(item, "login", false)?;
        let totp = reader.text(&login, "totp")?;
        Some(item_account(reader, item, &login, totp))
    });
    if found.accounts.is_empty() && found.errors.is_empty() {
        return Err(at.error(Some("items"), "no item with a TOTP secret").into());
    }
    found.into_result(at, "items")
}

fn item_account(reader: &mut Reader, item: &Obj, login: &Obj, totp: &str) -> OtpAuthUri {
    let trimmed = totp.trim();
    if starts_with_ignore_case(trimmed, "otpauth://") {
        return match parse_otpauth_uri(trimmed) {
            Ok(account) => {
                reader.check_secret_length(login, "totp", &account.secret);
                account
            }
            Err(error) => {
                reader.fail(login, "totp", uri_problem(&error));
                empty_account()
            }
        };
    }
    let steam = starts_with_ignore_case(trimmed, "steam://");
    let seed = if steam {
        trimmed.get("steam://".len()..).unwrap_or("")
    } else {
        trimmed
    };
    let secret = match crate::otp::parse_base32_secret(seed) {
        Ok(secret) => {
            reader.check_secret_length(login, "totp", &secret);
            secret
        }
        Err(error) => {
            reader.fail(login, "totp", secret_problem(&error));
            Zeroizing::new(Vec::new())
        }
    };
    let item_name = reader.non_empty(item, "name");
    let username = reader.non_empty(login, "username");
    let (issuer, name) = match (username, item_name) {
        (Some(username), item_name) => (item_name, username),
        (None, Some(item_name)) => (None, item_name),
        (None, None) => {
            reader.fail(item, "name", "missing (and no login.username)");
            (None, String::new())
        }
    };
    if steam {
        return fields::steam_account(name, secret);
    }
    OtpAuthUri {
        oath_type: OathType::Totp,
        issuer,
        name,
        secret,
        algorithm: HashAlgorithm::Sha1,
        digits: fields::DEFAULT_DIGITS,
        period: fields::DEFAULT_PERIOD,
        counter: 0,
    }
}

fn starts_with_ignore_case(text: &str, prefix: &str) -> bool {
    text.get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
}

/// A placeholder for an item whose problems were already reported; never kept.
fn empty_account() -> OtpAuthUri {
    fields::steam_account(String::new(), Zeroizing::new(Vec::new()))
}

/// Our words for an otpauth URI problem; the URI's own messages may quote it.
fn uri_problem(error: &UriError) -> String {
    let problem = match error {
        UriError::NotOtpauth => "not an otpauth:// URI",
        UriError::MissingType => "otpauth URI without a type (expected totp, hotp or steam)",
        UriError::UnknownType => "otpauth URI of an unknown type (expected totp, hotp or steam)",
        UriError::MissingName => "otpauth URI without an account name",
        UriError::MissingSecret => "otpauth URI without a secret",
        UriError::InvalidSecret(error) => {
            return format!("otpauth URI secret: {}", secret_problem(error));
        }
        UriError::BadDigits => "otpauth URI digits: expected 6, 7 or 8",
        UriError::BadPeriod => "otpauth URI period: expected whole seconds from 1 to 300",
        UriError::BadCounter => "otpauth URI counter: expected a whole number from 0 to 4294967295",
        UriError::UnknownAlgorithm => "otpauth URI algorithm: expected SHA1, SHA256 or SHA512",
        // These name a field of the URI with a static text of the parser, never input.
        UriError::BadEncoding(field) => {
            return format!("otpauth URI {field}: invalid percent-encoding");
        }
        UriError::ControlCharacter(field) => {
            return format!("otpauth URI {field}: contains a control character");
        }
        UriError::EmptyValue(field) => return format!("otpauth URI {field}: empty"),
        UriError::Repeated(field) => {
            return format!("otpauth URI {field}: given twice with different values");
        }
        UriError::SteamMismatch(field, expected) => {
            return format!("otpauth URI {field}: a Steam account must use {expected}");
        }
        #[allow(unreachable_patterns)]
        _ => "not a valid otpauth URI",
    };
    problem.to_owned()
}

#[cfg(test)]
mod tests {
    use super::super::tests::{Expected, check, errors, parse, seed, seed_bytes, steam, totp};
    use crate::otp::{HashAlgorithm, OathType};

    fn export(items: &str) -> String {
        format!(r#"{{"encrypted":false,"folders":[],"items":[{items}]}}"#)
    }

    fn login(name: &str, username: &str, totp: &str) -> String {
        format!(
            r#"{{"type":1,"name":"{name}","notes":null,"login":{{"uris":null,"username":{username},"password":"hunter2","totp":{totp}}}}}"#
        )
    }

    #[test]
    fn reads_uris_bare_secrets_and_steam() {
        let (s1, s2, s3, s4) = (seed(1), seed(2), seed(3), seed(4));
        let items = [
            login(
                "Item",
                "null",
                &format!(
                    r#""otpauth://totp/Deno:Mason?secret={s1}&issuer=Deno&algorithm=SHA256&digits=8&period=60""#
                ),
            ),
            login(
                "Item",
                "null",
                &format!(r#""otpauth://hotp/Mason?secret={s2}&counter=5""#),
            ),
            login("Bank", r#""bob""#, "null"),
            r#"{"type":2,"name":"Note","secureNote":{"type":0}}"#.to_owned(),
            login(
                "Forge",
                r#""bob""#,
                &format!(r#"" {} ""#, s3.to_lowercase()),
            ),
            login("Forge", r#""""#, &format!(r#""{s4}""#)),
            login("Valve", r#""carol""#, &format!(r#""steam://{s1}""#)),
            login("Valve", "null", &format!(r#""STEAM://{s2}""#)),
        ];
        let accounts = parse(&export(&items.join(","))).unwrap();
        let s: Vec<String> = (0..=4).map(seed_bytes).collect();
        check(
            &accounts,
            "export.json",
            &[
                Expected {
                    algorithm: HashAlgorithm::Sha256,
                    digits: 8,
                    period: 60,
                    ..totp(1, Some("Deno"), "Mason", s[1].as_bytes())
                },
                Expected {
                    oath_type: OathType::Hotp,
                    counter: 5,
                    ..totp(2, None, "Mason", s[2].as_bytes())
                },
                totp(5, Some("Forge"), "bob", s[3].as_bytes()),
                totp(6, None, "Forge", s[4].as_bytes()),
                steam(7, "carol", s[1].as_bytes()),
                steam(8, "Valve", s[2].as_bytes()),
            ],
        );
    }

    #[test]
    fn encrypted_and_empty_exports_are_refused() {
        let encrypted = [
            r#"{"encrypted":true,"items":[]}"#,
            r#"{"encrypted":true,"passwordProtected":true,"salt":"x","data":"2.a|b|c"}"#,
        ];
        for text in encrypted {
            assert_eq!(errors(text), [format!("export.json: {}", super::ENCRYPTED)]);
        }
        let no_totp = export(
            &[
                login("Bank", r#""bob""#, "null"),
                r#"{"type":3,"name":"Card"}"#.to_owned(),
            ]
            .join(","),
        );
        assert_eq!(
            errors(&no_totp),
            ["export.json: items: no item with a TOTP secret"]
        );
        assert_eq!(
            errors(&export("")),
            ["export.json: items: no item with a TOTP secret"]
        );
        assert_eq!(
            errors(r#"{"encrypted":false}"#),
            ["export.json: items: missing"]
        );
    }

    #[test]
    fn bad_totp_values_are_reported_without_quoting() {
        let s1 = seed(1);
        let items = [
            login(
                "A",
                "null",
                &format!(r#""otpauth://totp/A:b?secret={s1}&digits=9""#),
            ),
            login(
                "A",
                "null",
                &format!(r#""otpauth://totp/A:b?secret={s1}&period=0""#),
            ),
            login(
                "A",
                "null",
                &format!(r#""otpauth://totp/A:b?secret={s1}&algorithm=MD5""#),
            ),
            login(
                "A",
                "null",
                &format!(r#""otpauth://yandex/A:b?secret={s1}""#),
            ),
            login("A", "null", &format!(r#""otpauth://totp/?secret={s1}""#)),
            login("A", "null", r#""otpauth://totp/A:b?issuer=A""#),
            login(
                "A",
                "null",
                &format!(r#""otpauth://totp/A:b?secret={}1""#, &s1[..20]),
            ),
            login("A", "null", r#""otpauth://totp/A:b?secret=AA""#),
            login("A", "null", &format!(r#""{}!""#, &s1[..20])),
            login("A", "null", r#""""#),
            login("A", "null", r#""steam://""#),
            login("A", "null", "7"),
            format!(r#"{{"type":1,"login":{{"totp":"{s1}"}}}}"#),
            r#"{"type":1,"name":"A","login":"x"}"#.to_owned(),
        ];
        let errors = errors(&export(&items.join(",")));
        assert_eq!(
            errors,
            [
                "export.json: entry 1: login.totp: otpauth URI digits: expected 6, 7 or 8",
                "export.json: entry 2: login.totp: otpauth URI period: expected whole seconds from 1 to 300",
                "export.json: entry 3: login.totp: otpauth URI algorithm: expected SHA1, SHA256 or SHA512",
                "export.json: entry 4: login.totp: otpauth URI of an unknown type (expected totp, hotp or steam)",
                "export.json: entry 5: login.totp: otpauth URI without an account name",
                "export.json: entry 6: login.totp: otpauth URI without a secret",
                "export.json: entry 7: login.totp: otpauth URI secret: not valid base32 (character 21)",
                "export.json: entry 8: login.totp: too short (at least 2 bytes)",
                "export.json: entry 9: login.totp: not valid base32 (character 21)",
                "export.json: entry 10: login.totp: empty",
                "export.json: entry 11: login.totp: empty",
                "export.json: entry 12: login.totp: expected text",
                "export.json: entry 13: name: missing (and no login.username)",
                "export.json: entry 14: login: expected an object",
            ]
        );
    }
}
