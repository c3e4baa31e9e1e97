//! otpauth-migration://offline?data=… URIs: Google Authenticator's "Transfer accounts" QR
//! codes. `data` is base64 of a protobuf `MigrationPayload`, decoded with `prost`; an export
//! of many accounts is split into batches (one QR code each) that share a `batch_id`.
//!
//! Field numbers follow the `MigrationPayload` message that Google Authenticator writes
//! (OtpParameters: 1 secret, 2 name, 3 issuer, 4 algorithm, 5 digits, 6 type, 7 counter;
//! payload: 1 otp_parameters, 2 version, 3 batch_size, 4 batch_index, 5 batch_id).

use data_encoding::BASE64_NOPAD;
use percent_encoding::percent_decode_str;
use prost::Message;
use thiserror::Error;
use zeroize::{Zeroize, Zeroizing};

use super::uri::{DEFAULT_PERIOD, OtpAuthUri, strip_prefix_ignore_case};
use super::{HashAlgorithm, OathType};

/// A problem with the whole URI, or with one account (`entry` counts from 1). Messages name
/// the field and never quote the payload.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MigrationError {
    #[error("not an otpauth-migration://offline URI")]
    NotMigration,
    #[error("data: missing")]
    MissingData,
    #[error("data: not valid base64")]
    BadBase64,
    #[error("data: not a valid migration payload")]
    Malformed,
    #[error("data: the payload holds no accounts")]
    Empty,
    #[error("entry {entry}: {field}: {problem}")]
    Entry {
        entry: usize,
        field: &'static str,
        problem: &'static str,
    },
}

/// Which part of a multi-QR export a payload is (`index` counts from 0, as stored).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batch {
    pub id: i32,
    pub index: i32,
    pub size: i32,
}

/// The accounts of one payload, or every problem found in it.
#[derive(Debug)]
pub struct Migration {
    pub accounts: Vec<OtpAuthUri>,
    /// Present when the export was split over several QR codes.
    pub batch: Option<Batch>,
}

#[derive(Clone, PartialEq, Message)]
struct MigrationPayload {
    #[prost(message, repeated, tag = "1")]
    otp_parameters: Vec<OtpParameters>,
    #[prost(int32, tag = "2")]
    version: i32,
    #[prost(int32, tag = "3")]
    batch_size: i32,
    #[prost(int32, tag = "4")]
    batch_index: i32,
    #[prost(int32, tag = "5")]
    batch_id: i32,
}

#[derive(Clone, PartialEq, Message)]
struct OtpParameters {
    #[prost(bytes = "vec", tag = "1")]
    secret: Vec<u8>,
    #[prost(string, tag = "2")]
    name: String,
    #[prost(string, tag = "3")]
    issuer: String,
    /// 0 unspecified, 1 SHA1, 2 SHA256, 3 SHA512, 4 MD5.
    #[prost(int32, tag = "4")]
    algorithm: i32,
    /// 0 unspecified, 1 six, 2 eight.
    #[prost(int32, tag = "5")]
    digits: i32,
    /// 0 unspecified, 1 HOTP, 2 TOTP.
    #[prost(int32, tag = "6")]
    otp_type: i32,
    #[prost(int64, tag = "7")]
    counter: i64,
}

impl Drop for OtpParameters {
    fn drop(&mut self) {
        self.secret.zeroize();
    }
}

/// Parses one migration URI. Per-account problems are all reported, one error each.
pub fn parse_migration_uri(uri: &str) -> Result<Migration, Vec<MigrationError>> {
    let uri = uri.trim();
    let rest = strip_prefix_ignore_case(uri, "otpauth-migration://")
        .ok_or_else(|| vec![MigrationError::NotMigration])?;
    let rest = rest.split_once('#').map_or(rest, |(before, _)| before);
    let (host, query) = rest.split_once('?').unwrap_or((rest, ""));
    let host = host.strip_suffix('/').unwrap_or(host);
    if !host.eq_ignore_ascii_case("offline") {
        return Err(vec![MigrationError::NotMigration]);
    }
    let data = query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, value)| *key == "data" && !value.is_empty())
        .map(|(_, value)| value)
        .ok_or_else(|| vec![MigrationError::MissingData])?;
    let bytes = decode_data(data).map_err(|e| vec![e])?;
    let payload =
        MigrationPayload::decode(bytes.as_slice()).map_err(|_| vec![MigrationError::Malformed])?;
    if payload.otp_parameters.is_empty() {
        return Err(vec![MigrationError::Empty]);
    }
    let mut accounts = Vec::new();
    let mut errors = Vec::new();
    for (index, parameters) in payload.otp_parameters.iter().enumerate() {
        match account(parameters, index + 1) {
            Ok(account) => accounts.push(account),
            Err(error) => errors.push(error),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let batch = (payload.batch_size > 1).then_some(Batch {
        id: payload.batch_id,
        index: payload.batch_index,
        size: payload.batch_size,
    });
    Ok(Migration { accounts, batch })
}

/// Percent-decoding only: a literal '+' is base64, not a space. Whitespace (line wrapping)
/// is dropped, padding is optional and the URL-safe alphabet is accepted too.
fn decode_data(raw: &str) -> Result<Zeroizing<Vec<u8>>, MigrationError> {
    let decoded: Zeroizing<Vec<u8>> = Zeroizing::new(percent_decode_str(raw).collect());
    let mut text: Zeroizing<Vec<u8>> = Zeroizing::new(
        decoded
            .iter()
            .filter(|byte| !byte.is_ascii_whitespace())
            .map(|&byte| match byte {
                b'-' => b'+',
                b'_' => b'/',
                byte => byte,
            })
            .collect(),
    );
    while text.last() == Some(&b'=') {
        text.pop();
    }
    BASE64_NOPAD
        .decode(&text)
        .map(Zeroizing::new)
        .map_err(|_| MigrationError::BadBase64)
}

fn account(parameters: &OtpParameters, entry: usize) -> Result<OtpAuthUri, MigrationError> {
    let problem = |field, problem| MigrationError::Entry {
        entry,
        field,
        problem,
    };
    if parameters.secret.is_empty() {
        return Err(problem("secret", "empty"));
    }
    let algorithm = match parameters.algorithm {
        0 | 1 => HashAlgorithm::Sha1,
        2 => HashAlgorithm::Sha256,
        3 => HashAlgorithm::Sha512,
        4 => return Err(problem("algorithm", "MD5 is not supported by OATH keys")),
        _ => return Err(problem("algorithm", "unknown value")),
    };
    let digits = match parameters.digits {
        0 | 1 => 6,
        2 => 8,
        _ => return Err(problem("digits", "unknown value")),
    };
    let oath_type = match parameters.otp_type {
        0 | 2 => OathType::Totp,
        1 => OathType::Hotp,
        _ => return Err(problem("type", "unknown value")),
    };
    let counter = u32::try_from(parameters.counter)
        .map_err(|_| problem("counter", "expected a whole number from 0 to 4294967295"))?;
    let (issuer, name) = split_name(&parameters.issuer, &parameters.name);
    if name.is_empty() {
        return Err(problem("name", "missing account name"));
    }
    if name
        .chars()
        .chain(issuer.iter().flat_map(|i| i.chars()))
        .any(char::is_control)
    {
        return Err(problem("name", "contains a control character"));
    }
    Ok(OtpAuthUri {
        oath_type,
        issuer,
        name,
        secret: Zeroizing::new(parameters.secret.clone()),
        algorithm,
        digits,
        period: DEFAULT_PERIOD,
        counter: u64::from(counter),
    })
}

/// Google often stores the name as "Issuer:name". Without an issuer field it is split like an
/// otpauth:// label; with one, a matching "issuer:" prefix is dropped from the name.
fn split_name(issuer: &str, name: &str) -> (Option<String>, String) {
    if issuer.is_empty() {
        return match name.split_once(':') {
            Some((label_issuer, rest)) => (
                Some(label_issuer.to_owned()).filter(|issuer| !issuer.is_empty()),
                rest.to_owned(),
            ),
            None => (None, name.to_owned()),
        };
    }
    let name = match name
        .strip_prefix(issuer)
        .and_then(|rest| rest.strip_prefix(':'))
    {
        Some(rest) if !rest.is_empty() => rest,
        _ => name,
    };
    (Some(issuer.to_owned()), name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parameters(secret: &[u8], name: &str, issuer: &str) -> OtpParameters {
        OtpParameters {
            secret: secret.to_vec(),
            name: name.to_owned(),
            issuer: issuer.to_owned(),
            algorithm: 1,
            digits: 1,
            otp_type: 2,
            counter: 0,
        }
    }

    fn uri_for(payload: &MigrationPayload) -> String {
        let data = data_encoding::BASE64.encode(&payload.encode_to_vec());
        let escaped: String =
            percent_encoding::utf8_percent_encode(&data, percent_encoding::NON_ALPHANUMERIC)
                .collect();
        format!("otpauth-migration://offline?data={escaped}")
    }

    fn payload(entries: Vec<OtpParameters>) -> MigrationPayload {
        MigrationPayload {
            otp_parameters: entries,
            version: 1,
            batch_size: 1,
            batch_index: 0,
            batch_id: 7,
        }
    }

    fn parse(uri: &str) -> Migration {
        parse_migration_uri(uri).unwrap_or_else(|e| panic!("{e:?}"))
    }

    /// The Google Authenticator export: Mail:erin twice, then Chat:erin.
    const DUPLICATE_EXPORT: &str = "otpauth-migration://offline?data=CjQKFGhhbmRlZC1jYXNlLWtleS0wMDAxEhBlcmluQGV4YW1wbGUuY29tGgRNYWlsIAEoATACCjQKFGhhbmRlZC1jYXNlLWtleS0wMDAyEhBlcmluQGV4YW1wbGUuY29tGgRNYWlsIAEoATACCigKFGhhbmRlZC1jYXNlLWtleS0wMDAzEgRlcmluGgRDaGF0IAEoATACEAEYASAAKAA%3D";
    const BATCH_1_OF_2: &str = "otpauth-migration://offline?data=CjYKFGhhbmRlZC1jYXNlLWtleS0wMDAxEhFoZWlkaUBleGFtcGxlLmNvbRoFRm9yZ2UgASgBMAIQARgCIAAoTQ%3D%3D";
    const BATCH_2_OF_2: &str = "otpauth-migration://offline?data=CjUKFGhhbmRlZC1jYXNlLWtleS0wMDAyEhFoZWlkaUBleGFtcGxlLmNvbRoEV2lraSABKAEwAhABGAIgAShN";

    #[test]
    fn google_export_with_a_repeated_name_keeps_every_entry() {
        let migration = parse(DUPLICATE_EXPORT);
        let ids: Vec<(Option<&str>, &str, &[u8])> = migration
            .accounts
            .iter()
            .map(|a| (a.issuer.as_deref(), a.name.as_str(), a.secret.as_slice()))
            .collect();
        assert_eq!(
            ids,
            [
                (
                    Some("Mail"),
                    "erin@example.com",
                    &b"handed-case-key-0001"[..]
                ),
                (
                    Some("Mail"),
                    "erin@example.com",
                    &b"handed-case-key-0002"[..]
                ),
                (Some("Chat"), "erin", &b"handed-case-key-0003"[..]),
            ]
        );
        assert_eq!(migration.batch, None);
    }

    #[test]
    fn batches_carry_their_place_in_the_export() {
        let first = parse(BATCH_1_OF_2);
        let second = parse(BATCH_2_OF_2);
        assert_eq!(
            first.batch,
            Some(Batch {
                id: 77,
                index: 0,
                size: 2
            })
        );
        assert_eq!(
            second.batch,
            Some(Batch {
                id: 77,
                index: 1,
                size: 2
            })
        );
        assert_eq!(first.accounts[0].issuer.as_deref(), Some("Forge"));
        assert_eq!(second.accounts[0].issuer.as_deref(), Some("Wiki"));
        assert_eq!(
            second.accounts[0].secret.as_slice(),
            b"handed-case-key-0002"
        );
    }

    #[test]
    fn enums_and_defaults() {
        let mut hotp = parameters(b"12345678901234567890", "bob", "");
        hotp.algorithm = 2;
        hotp.digits = 2;
        hotp.otp_type = 1;
        hotp.counter = 5;
        let mut unspecified = parameters(b"\x01\x02", "carol", "");
        (
            unspecified.algorithm,
            unspecified.digits,
            unspecified.otp_type,
        ) = (0, 0, 0);
        let migration = parse(&uri_for(&payload(vec![hotp, unspecified])));
        let bob = &migration.accounts[0];
        assert_eq!(bob.oath_type, OathType::Hotp);
        assert_eq!(bob.algorithm, HashAlgorithm::Sha256);
        assert_eq!((bob.digits, bob.counter), (8, 5));
        let carol = &migration.accounts[1];
        assert_eq!(carol.oath_type, OathType::Totp);
        assert_eq!(carol.algorithm, HashAlgorithm::Sha1);
        assert_eq!((carol.digits, carol.period), (6, 30));
    }

    #[test]
    fn issuer_splitting() {
        let cases = [
            ("", "ACME:bob", Some("ACME"), "bob"),
            ("", "ACME:bob:x", Some("ACME"), "bob:x"),
            ("", ":bob", None, "bob"),
            ("ACME", "ACME:bob", Some("ACME"), "bob"),
            ("ACME", "Other:bob", Some("ACME"), "Other:bob"),
            ("ACME", "ACME:", Some("ACME"), "ACME:"),
            ("ACME", "bob", Some("ACME"), "bob"),
        ];
        for (issuer, name, expected_issuer, expected_name) in cases {
            let migration = parse(&uri_for(&payload(vec![parameters(b"ab", name, issuer)])));
            let account = &migration.accounts[0];
            assert_eq!(
                account.issuer.as_deref(),
                expected_issuer,
                "{issuer} {name}"
            );
            assert_eq!(account.name, expected_name, "{issuer} {name}");
        }
    }

    #[test]
    fn base64_variants_are_accepted() {
        let data = payload(vec![parameters(b"\xfb\xff\xbf\xfe", "x", "")]).encode_to_vec();
        let standard = data_encoding::BASE64.encode(&data);
        let url_safe = data_encoding::BASE64URL_NOPAD.encode(&data);
        let wrapped = format!("{}\n {}", &standard[..8], &standard[8..]);
        for text in [
            standard.clone(),
            standard.trim_end_matches('=').to_owned(),
            url_safe,
        ] {
            let uri = format!("otpauth-migration://offline?data={text}");
            assert_eq!(
                parse(&uri).accounts[0].secret.as_slice(),
                b"\xfb\xff\xbf\xfe"
            );
        }
        let uri = format!("  OTPAUTH-MIGRATION://Offline/?other=1&data={wrapped}  ");
        assert_eq!(parse(&uri).accounts.len(), 1);
    }

    #[test]
    fn uri_and_payload_errors() {
        let one = |uri: &str| parse_migration_uri(uri).expect_err(uri);
        assert_eq!(
            one("otpauth://totp/x?secret=ab"),
            [MigrationError::NotMigration]
        );
        assert_eq!(
            one("otpauth-migration://online?data=AA"),
            [MigrationError::NotMigration]
        );
        assert_eq!(
            one("otpauth-migration://offline?data="),
            [MigrationError::MissingData]
        );
        assert_eq!(
            one("otpauth-migration://offline?data=!!"),
            [MigrationError::BadBase64]
        );
        assert_eq!(
            one("otpauth-migration://offline?data=CgQK"),
            [MigrationError::Malformed]
        );
        let empty = uri_for(&payload(Vec::new()));
        assert_eq!(one(&empty), [MigrationError::Empty]);
    }

    #[test]
    fn every_bad_entry_is_reported_by_number_and_field() {
        let mut md5 = parameters(b"ab", "a", "");
        md5.algorithm = 4;
        let mut digits = parameters(b"ab", "b", "");
        digits.digits = 3;
        let mut counter = parameters(b"ab", "c", "");
        counter.counter = -1;
        let no_secret = parameters(b"", "d", "");
        let no_name = parameters(b"ab", "", "");
        let good = parameters(b"ab", "f", "");
        let errors = parse_migration_uri(&uri_for(&payload(vec![
            md5, digits, counter, no_secret, no_name, good,
        ])))
        .expect_err("bad entries");
        let texts: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            texts,
            [
                "entry 1: algorithm: MD5 is not supported by OATH keys",
                "entry 2: digits: unknown value",
                "entry 3: counter: expected a whole number from 0 to 4294967295",
                "entry 4: secret: empty",
                "entry 5: name: missing account name",
            ]
        );
    }

    #[test]
    fn truncated_payloads_fail_without_panicking() {
        let data = payload(vec![parameters(
            b"handed-case-key-0001",
            "x@example.com",
            "X",
        )])
        .encode_to_vec();
        for cut in 1..data.len() {
            let text = data_encoding::BASE64.encode(&data[..cut]);
            let _ = parse_migration_uri(&format!("otpauth-migration://offline?data={text}"));
        }
    }

    proptest! {
        #[test]
        fn arbitrary_payloads_never_panic(data in proptest::collection::vec(any::<u8>(), 0..256)) {
            let text = data_encoding::BASE64.encode(&data);
            let _ = parse_migration_uri(&format!("otpauth-migration://offline?data={text}"));
        }

        #[test]
        fn arbitrary_strings_never_panic(text in ".*") {
            let _ = parse_migration_uri(&text);
        }
    }
}
