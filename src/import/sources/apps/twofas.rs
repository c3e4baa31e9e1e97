//! 2FAS Authenticator backups (`.2fas`), after the backups 2FAS writes (schema versions 1–4):
//!
//! ```json
//! {"services": [{"name": "Example", "secret": "BASE32",
//!                "otp": {"account": "alice", "issuer": "Example", "digits": 6, "period": 30,
//!                        "algorithm": "SHA1", "counter": 0, "tokenType": "TOTP"}}],
//!  "schemaVersion": 4}
//! ```
//!
//! The issuer is the service `name` (as 2FAS shows it), else `otp.issuer`; the account name is
//! `otp.account`, else `otp.label`, else the service name alone (then without an issuer).
//! `otp` and its fields are optional: TOTP, SHA1, 6 digits, 30 s, counter 0. A backup
//! encrypted with a password (`servicesEncrypted`) is refused.

use super::fields::{self, Reader};
use super::json::{Json, Obj};
use crate::import::{AccountSpec, InputErrors, Location};

pub(super) const ENCRYPTED: &str =
    "encrypted 2FAS backups are not supported: export again without a password";

/// True for an object with `services` or `servicesEncrypted`.
pub(super) fn is_backup(root: &Obj) -> bool {
    root.get("services").is_some() || root.get("servicesEncrypted").is_some()
}

pub(super) fn parse(root: &Obj, at: &Location) -> Result<Vec<AccountSpec>, InputErrors> {
    let services = match root.get("services") {
        Some(Json::Array(services)) if !services.is_empty() => services,
        _ if root.get("servicesEncrypted").is_some() => {
            return Err(at.error(None, ENCRYPTED).into());
        }
        _ => {
            let mut top = Reader::new(at.clone());
            top.list(root, "services");
            if top.errors.is_empty() {
                return Err(at
                    .error(Some("services"), "no accounts in the export")
                    .into());
            }
            return Err(InputErrors(top.errors));
        }
    };
    let found = fields::each_entry(services, at, |reader, service| {
        // Without `otp`, its fields are read from an empty object and take their defaults.
        let empty = Json::Object(Vec::new());
        let otp = reader
            .object(service, "otp", false)
            .or_else(|| Obj::new(&empty, "otp."))?;
        let kind = reader.kind(&otp, "tokenType");
        let secret = reader.base32_secret(service, "secret");
        let service_name = reader.non_empty(service, "name");
        let otp_issuer = reader.non_empty(&otp, "issuer");
        let account = reader.non_empty(&otp, "account");
        let label = reader.non_empty(&otp, "label");
        let (issuer, name) = match (account.or(label), service_name.clone()) {
            (Some(name), _) => (service_name.or(otp_issuer), name),
            (None, Some(service_name)) => (None, service_name),
            (None, None) => {
                reader.fail(&otp, "account", "missing");
                (None, String::new())
            }
        };
        Some(reader.account(kind, &otp, "algorithm", issuer, name, secret))
    });
    found.into_result(at, "services")
}

#[cfg(test)]
mod tests {
    use super::super::tests::{Expected, check, errors, parse, seed, seed_bytes, steam, totp};
    use crate::otp::{HashAlgorithm, OathType};

    fn backup(services: &str) -> String {
        format!(
            r#"{{"services":[{services}],"groups":[],"updatedAt":1,"schemaVersion":4,"appOrigin":"android"}}"#
        )
    }

    fn service(name: &str, n: usize, otp: &str) -> String {
        format!(
            r#"{{"name":"{name}","secret":"{}","updatedAt":1,"otp":{otp},"order":{{"position":0}}}}"#,
            seed(n)
        )
    }

    #[test]
    fn reads_every_type_and_field() {
        let services = [
            service(
                "Example",
                1,
                r#"{"label":"alice","account":"alice","issuer":"Ex","digits":8,"period":60,"algorithm":"SHA512","tokenType":"TOTP"}"#,
            ),
            service(
                "Forge",
                2,
                r#"{"account":"bob","digits":7,"algorithm":"SHA256","counter":9,"tokenType":"HOTP"}"#,
            ),
            service(
                "Valve",
                3,
                r#"{"account":"carol","issuer":"Steam","digits":5,"period":30,"algorithm":"SHA1","tokenType":"STEAM"}"#,
            ),
            service("", 4, r#"{"label":"dave","issuer":"Mail"}"#),
            service("Lonely", 5, r#"{"account":"","issuer":""}"#),
            format!(r#"{{"name":"Bare","secret":"{}"}}"#, seed(1)),
        ];
        let accounts = parse(&backup(&services.join(","))).unwrap();
        let s: Vec<String> = (0..=5).map(seed_bytes).collect();
        check(
            &accounts,
            "export.json",
            &[
                Expected {
                    algorithm: HashAlgorithm::Sha512,
                    digits: 8,
                    period: 60,
                    ..totp(1, Some("Example"), "alice", s[1].as_bytes())
                },
                Expected {
                    oath_type: OathType::Hotp,
                    algorithm: HashAlgorithm::Sha256,
                    digits: 7,
                    counter: 9,
                    ..totp(2, Some("Forge"), "bob", s[2].as_bytes())
                },
                steam(3, "carol", s[3].as_bytes()),
                totp(4, Some("Mail"), "dave", s[4].as_bytes()),
                totp(5, None, "Lonely", s[5].as_bytes()),
                totp(6, None, "Bare", s[1].as_bytes()),
            ],
        );
    }

    #[test]
    fn encrypted_backups_are_refused() {
        let text = r#"{"services":[],"schemaVersion":4,"servicesEncrypted":"QUJD:REVG:R0hJ"}"#;
        assert_eq!(errors(text), [format!("export.json: {}", super::ENCRYPTED)]);
    }

    #[test]
    fn malformed_services_are_reported() {
        let services = [
            service("A", 1, r#"{"account":"a","tokenType":"YANDEX"}"#),
            service("A", 1, r#"{"account":"a","tokenType":""}"#),
            service("A", 1, r#"{"account":"a","digits":"eight","period":-30}"#),
            service(
                "A",
                1,
                r#"{"account":"a","algorithm":"","counter":1,"tokenType":"HOTP"}"#,
            ),
            service("A", 1, r#""otp""#),
            r#"{"name":"A","otp":{"account":"a"}}"#.to_owned(),
            r#"{"secret":"GEZDGNBVGY3TQOJQ","otp":{}}"#.to_owned(),
            r#"{"name":"A","secret":["x"],"otp":{"account":7}}"#.to_owned(),
            "null".to_owned(),
        ];
        assert_eq!(
            errors(&backup(&services.join(","))),
            [
                "export.json: entry 1: otp.tokenType: unknown type (expected TOTP, HOTP or STEAM)",
                "export.json: entry 2: otp.tokenType: empty",
                "export.json: entry 3: otp.digits: expected 6, 7 or 8",
                "export.json: entry 3: otp.period: expected whole seconds from 1 to 300",
                "export.json: entry 4: otp.algorithm: empty",
                "export.json: entry 5: otp: expected an object",
                "export.json: entry 6: secret: missing",
                "export.json: entry 7: otp.account: missing",
                "export.json: entry 8: secret: expected base32 text",
                "export.json: entry 8: otp.account: expected text",
                "export.json: entry 9: expected an object",
            ]
        );
    }

    #[test]
    fn empty_or_missing_services() {
        assert_eq!(
            errors(&backup("")),
            ["export.json: services: no accounts in the export"]
        );
        assert_eq!(
            errors(r#"{"services":{},"schemaVersion":4}"#),
            ["export.json: services: expected a list"]
        );
    }
}
