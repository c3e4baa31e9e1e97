//! otpauth-migration://offline?data=… URIs: Google Authenticator's "export accounts" QR codes.
//!
//! `data` is base64 of a protobuf `MigrationPayload`. We read the few fields needed with a
//! small bounds-checked reader instead of a protobuf dependency: slices only borrow the
//! input, so nothing is allocated from an attacker-chosen length.

use data_encoding::BASE64_NOPAD;
use percent_encoding::percent_decode_str;
use thiserror::Error;
use zeroize::Zeroizing;

use super::uri::{DEFAULT_PERIOD, OtpAuthUri, strip_prefix_ignore_case};
use super::{HashAlgorithm, OathType};

/// `entry` counts accounts in the payload from 1; `offset` is a byte offset into the
/// base64-decoded payload.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MigrationError {
    #[error("not an otpauth-migration://offline URI")]
    NotMigration,
    #[error("missing data parameter")]
    MissingData,
    #[error("data parameter is not valid base64")]
    BadBase64,
    #[error("malformed migration payload at byte {offset}: {reason}")]
    Malformed { offset: usize, reason: &'static str },
    #[error("migration payload contains no accounts")]
    Empty,
    #[error("account {entry}: unsupported algorithm {name}")]
    UnsupportedAlgorithm { entry: usize, name: String },
    #[error("account {entry}: unsupported {field} value {value}")]
    UnsupportedValue {
        entry: usize,
        field: &'static str,
        value: u64,
    },
    #[error("account {entry}: empty secret")]
    EmptySecret { entry: usize },
    #[error("account {entry}: missing account name")]
    MissingName { entry: usize },
}

pub fn parse_migration_uri(uri: &str) -> Result<Vec<OtpAuthUri>, MigrationError> {
    let uri = uri.trim();
    let rest = strip_prefix_ignore_case(uri, "otpauth-migration://")
        .ok_or(MigrationError::NotMigration)?;
    let rest = rest.split_once('#').map_or(rest, |(before, _)| before);
    let (host, query) = rest.split_once('?').unwrap_or((rest, ""));
    let host = host.strip_suffix('/').unwrap_or(host);
    if !host.eq_ignore_ascii_case("offline") {
        return Err(MigrationError::NotMigration);
    }
    let data = query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, value)| *key == "data" && !value.is_empty())
        .map(|(_, value)| value)
        .ok_or(MigrationError::MissingData)?;
    parse_payload(&decode_data(data)?)
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

const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LENGTH_DELIMITED: u8 = 2;
const FIXED32: u8 = 5;

/// A cursor over one protobuf message; `base` is where it starts in the whole payload.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    base: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8], base: usize) -> Self {
        Self { buf, pos: 0, base }
    }

    fn at_end(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn offset(&self) -> usize {
        self.base + self.pos
    }

    fn error(&self, offset: usize, reason: &'static str) -> MigrationError {
        MigrationError::Malformed { offset, reason }
    }

    fn varint(&mut self) -> Result<u64, MigrationError> {
        let start = self.offset();
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let Some(&byte) = self.buf.get(self.pos) else {
                return Err(self.error(start, "truncated varint"));
            };
            self.pos += 1;
            // The tenth byte may only carry the top bit of a u64.
            if shift == 63 && byte > 1 {
                return Err(self.error(start, "varint overflows 64 bits"));
            }
            value |= u64::from(byte & 0x7F) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(self.error(start, "varint overflows 64 bits"))
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], MigrationError> {
        let start = self.offset();
        let end = self.pos.checked_add(len);
        let Some(bytes) = end.and_then(|end| self.buf.get(self.pos..end)) else {
            return Err(self.error(start, "field runs past the end of its message"));
        };
        self.pos += len;
        Ok(bytes)
    }

    /// Returns the field's bytes and their offset in the whole payload.
    fn length_delimited(&mut self) -> Result<(&'a [u8], usize), MigrationError> {
        let len = self.varint()?;
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        let start = self.offset();
        Ok((self.take(len)?, start))
    }

    /// Reads a field key; returns (field number, wire type, offset of the key).
    fn key(&mut self) -> Result<(u64, u8, usize), MigrationError> {
        let start = self.offset();
        let key = self.varint()?;
        let field = key >> 3;
        // The mask keeps three bits, so the cast is lossless.
        let wire = (key & 7) as u8;
        if field == 0 {
            return Err(self.error(start, "field number 0"));
        }
        match wire {
            VARINT | FIXED64 | LENGTH_DELIMITED | FIXED32 => Ok((field, wire, start)),
            3 | 4 => Err(self.error(start, "group wire types are not supported")),
            _ => Err(self.error(start, "invalid wire type")),
        }
    }

    fn skip(&mut self, wire: u8) -> Result<(), MigrationError> {
        match wire {
            VARINT => self.varint().map(drop),
            FIXED64 => self.take(8).map(drop),
            FIXED32 => self.take(4).map(drop),
            _ => self.length_delimited().map(drop),
        }
    }
}

/// MigrationPayload: field 1 is a repeated OtpParameters; version and batch fields are ignored.
fn parse_payload(payload: &[u8]) -> Result<Vec<OtpAuthUri>, MigrationError> {
    let mut reader = Reader::new(payload, 0);
    let mut accounts = Vec::new();
    while !reader.at_end() {
        let (field, wire, key_offset) = reader.key()?;
        match (field, wire) {
            (1, LENGTH_DELIMITED) => {
                let (bytes, start) = reader.length_delimited()?;
                accounts.push(parse_entry(bytes, start, accounts.len() + 1)?);
            }
            (1, _) => return Err(reader.error(key_offset, "account field has the wrong wire type")),
            _ => reader.skip(wire)?,
        }
    }
    if accounts.is_empty() {
        return Err(MigrationError::Empty);
    }
    Ok(accounts)
}

/// OtpParameters: 1 secret, 2 name, 3 issuer, 4 algorithm, 5 digits, 6 type, 7 counter.
/// Repeated scalar fields follow protobuf's last-one-wins rule.
fn parse_entry(bytes: &[u8], base: usize, entry: usize) -> Result<OtpAuthUri, MigrationError> {
    let mut reader = Reader::new(bytes, base);
    let mut secret: Zeroizing<Vec<u8>> = Zeroizing::new(Vec::new());
    let mut name = String::new();
    let mut issuer = String::new();
    let (mut algorithm, mut digits, mut otp_type, mut counter) = (0, 0, 0, 0);
    while !reader.at_end() {
        let (field, wire, key_offset) = reader.key()?;
        let expected = match field {
            1..=3 => LENGTH_DELIMITED,
            4..=7 => VARINT,
            _ => {
                reader.skip(wire)?;
                continue;
            }
        };
        if wire != expected {
            return Err(reader.error(key_offset, "account field has the wrong wire type"));
        }
        match field {
            1 => *secret = reader.length_delimited()?.0.to_vec(),
            2 => name = utf8(reader.length_delimited()?, "account name is not UTF-8")?,
            3 => issuer = utf8(reader.length_delimited()?, "issuer is not UTF-8")?,
            4 => algorithm = reader.varint()?,
            5 => digits = reader.varint()?,
            6 => otp_type = reader.varint()?,
            _ => counter = reader.varint()?,
        }
    }

    if secret.is_empty() {
        return Err(MigrationError::EmptySecret { entry });
    }
    let algorithm = match algorithm {
        0 | 1 => HashAlgorithm::Sha1,
        2 => HashAlgorithm::Sha256,
        3 => HashAlgorithm::Sha512,
        4 => {
            return Err(MigrationError::UnsupportedAlgorithm {
                entry,
                name: "MD5".to_owned(),
            });
        }
        other => {
            return Err(MigrationError::UnsupportedAlgorithm {
                entry,
                name: format!("(code {other})"),
            });
        }
    };
    let digits = match digits {
        0 | 1 => 6,
        2 => 8,
        value => {
            return Err(MigrationError::UnsupportedValue {
                entry,
                field: "digits",
                value,
            });
        }
    };
    let oath_type = match otp_type {
        0 | 2 => OathType::Totp,
        1 => OathType::Hotp,
        value => {
            return Err(MigrationError::UnsupportedValue {
                entry,
                field: "type",
                value,
            });
        }
    };
    let (issuer, name) = split_name(issuer, name);
    if name.is_empty() {
        return Err(MigrationError::MissingName { entry });
    }
    Ok(OtpAuthUri {
        oath_type,
        issuer,
        name,
        secret,
        algorithm,
        digits,
        period: DEFAULT_PERIOD,
        counter,
    })
}

fn utf8((bytes, offset): (&[u8], usize), reason: &'static str) -> Result<String, MigrationError> {
    std::str::from_utf8(bytes)
        .map(str::to_owned)
        .map_err(|_| MigrationError::Malformed { offset, reason })
}

/// Google often stores the name as "Issuer:name". Without an issuer field it is split like an
/// otpauth:// label; with one, a matching "issuer:" prefix is dropped from the name.
fn split_name(issuer: String, name: String) -> (Option<String>, String) {
    if issuer.is_empty() {
        return match name.split_once(':') {
            Some((label_issuer, rest)) => (
                Some(label_issuer.to_owned()).filter(|issuer| !issuer.is_empty()),
                rest.to_owned(),
            ),
            None => (None, name),
        };
    }
    let name = match name
        .strip_prefix(issuer.as_str())
        .and_then(|rest| rest.strip_prefix(':'))
    {
        Some(rest) if !rest.is_empty() => rest.to_owned(),
        _ => name,
    };
    (Some(issuer), name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // A test-only protobuf encoder.
    fn varint(mut value: u64, out: &mut Vec<u8>) {
        while value >= 0x80 {
            out.push((value as u8) | 0x80);
            value >>= 7;
        }
        out.push(value as u8);
    }

    fn field_varint(field: u64, value: u64, out: &mut Vec<u8>) {
        varint(field << 3, out);
        varint(value, out);
    }

    fn field_bytes(field: u64, bytes: &[u8], out: &mut Vec<u8>) {
        varint((field << 3) | 2, out);
        varint(bytes.len() as u64, out);
        out.extend_from_slice(bytes);
    }

    #[derive(Default)]
    struct Entry<'a> {
        secret: &'a [u8],
        name: &'a str,
        issuer: &'a str,
        algorithm: u64,
        digits: u64,
        otp_type: u64,
        counter: u64,
    }

    fn encode_entry(entry: &Entry) -> Vec<u8> {
        let mut out = Vec::new();
        field_bytes(1, entry.secret, &mut out);
        field_bytes(2, entry.name.as_bytes(), &mut out);
        if !entry.issuer.is_empty() {
            field_bytes(3, entry.issuer.as_bytes(), &mut out);
        }
        field_varint(4, entry.algorithm, &mut out);
        field_varint(5, entry.digits, &mut out);
        field_varint(6, entry.otp_type, &mut out);
        if entry.counter != 0 {
            field_varint(7, entry.counter, &mut out);
        }
        out
    }

    fn payload(entries: &[Entry]) -> Vec<u8> {
        let mut out = Vec::new();
        for entry in entries {
            field_bytes(1, &encode_entry(entry), &mut out);
        }
        out
    }

    /// Google's own trailer: version 1, batch size 1, batch index 0, batch id.
    fn with_trailer(mut out: Vec<u8>) -> Vec<u8> {
        field_varint(2, 1, &mut out);
        field_varint(3, 1, &mut out);
        field_varint(4, 0, &mut out);
        field_varint(5, 0x1234_5678, &mut out);
        out
    }

    fn uri_for(payload: &[u8]) -> String {
        let base64 = data_encoding::BASE64.encode(payload);
        let encoded =
            percent_encoding::utf8_percent_encode(&base64, percent_encoding::NON_ALPHANUMERIC);
        format!("otpauth-migration://offline?data={encoded}")
    }

    fn two_entries() -> Vec<u8> {
        payload(&[
            Entry {
                secret: b"Hello!\xde\xad\xbe\xef",
                name: "alice@example.com",
                issuer: "Example",
                algorithm: 1,
                digits: 1,
                otp_type: 2,
                ..Entry::default()
            },
            Entry {
                secret: b"12345678901234567890",
                name: "bob",
                algorithm: 2,
                digits: 2,
                otp_type: 1,
                counter: 5,
                ..Entry::default()
            },
        ])
    }

    #[test]
    fn two_entries_totp_sha1_and_hotp_sha256() {
        let accounts = parse_migration_uri(&uri_for(&with_trailer(two_entries()))).unwrap();
        assert_eq!(accounts.len(), 2);
        let first = &accounts[0];
        assert_eq!(first.oath_type, OathType::Totp);
        assert_eq!(first.issuer.as_deref(), Some("Example"));
        assert_eq!(first.name, "alice@example.com");
        assert_eq!(first.secret.as_slice(), b"Hello!\xde\xad\xbe\xef");
        assert_eq!(first.algorithm, HashAlgorithm::Sha1);
        assert_eq!((first.digits, first.period, first.counter), (6, 30, 0));
        let second = &accounts[1];
        assert_eq!(second.oath_type, OathType::Hotp);
        assert_eq!(second.issuer, None);
        assert_eq!(second.name, "bob");
        assert_eq!(second.secret.as_slice(), b"12345678901234567890");
        assert_eq!(second.algorithm, HashAlgorithm::Sha256);
        assert_eq!((second.digits, second.counter), (8, 5));
    }

    #[test]
    fn unspecified_enums_default_to_totp_sha1_six_digits() {
        let mut entry = Vec::new();
        field_bytes(1, b"\x01\x02", &mut entry);
        field_bytes(2, b"carol", &mut entry);
        let mut data = Vec::new();
        field_bytes(1, &entry, &mut data);
        let account = &parse_migration_uri(&uri_for(&data)).unwrap()[0];
        assert_eq!(account.oath_type, OathType::Totp);
        assert_eq!(account.algorithm, HashAlgorithm::Sha1);
        assert_eq!(account.digits, 6);
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
            let data = payload(&[Entry {
                secret: b"ab",
                name,
                issuer,
                ..Entry::default()
            }]);
            let account = &parse_migration_uri(&uri_for(&data)).unwrap()[0];
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
        // Bytes chosen so that the base64 text contains '+', '/' and padding.
        let data = payload(&[Entry {
            secret: b"\xfb\xff\xbf\xfe",
            name: "x",
            ..Entry::default()
        }]);
        let standard = data_encoding::BASE64.encode(&data);
        assert!(
            standard.contains('+') || standard.contains('/'),
            "{standard}"
        );
        let url_safe = data_encoding::BASE64URL_NOPAD.encode(&data);
        let wrapped = format!("{}\n {}", &standard[..8], &standard[8..]);
        for text in [
            standard.clone(),
            standard.trim_end_matches('=').to_owned(),
            url_safe,
        ] {
            let uri = format!("otpauth-migration://offline?data={text}");
            let account = &parse_migration_uri(&uri).unwrap()[0];
            assert_eq!(account.secret.as_slice(), b"\xfb\xff\xbf\xfe");
        }
        let uri = format!("  OTPAUTH-MIGRATION://Offline/?other=1&data={wrapped}  ");
        assert_eq!(parse_migration_uri(&uri).unwrap().len(), 1);
    }

    #[test]
    fn unknown_fields_of_every_wire_type_are_skipped() {
        let mut entry = encode_entry(&Entry {
            secret: b"ab",
            name: "x",
            ..Entry::default()
        });
        field_varint(9, u64::MAX, &mut entry);
        varint((10 << 3) | 1, &mut entry);
        entry.extend_from_slice(&[0xAA; 8]);
        varint((11 << 3) | 5, &mut entry);
        entry.extend_from_slice(&[0xBB; 4]);
        field_bytes(12, b"ignored", &mut entry);
        let mut data = Vec::new();
        field_bytes(1, &entry, &mut data);
        field_bytes(5, b"not really a batch id", &mut data);
        assert_eq!(parse_migration_uri(&uri_for(&data)).unwrap()[0].name, "x");
    }

    #[test]
    fn uri_errors() {
        let cases = [
            ("otpauth://totp/x?secret=abba", MigrationError::NotMigration),
            (
                "otpauth-migration://online?data=AA",
                MigrationError::NotMigration,
            ),
            ("otpauth-migration://offline", MigrationError::MissingData),
            (
                "otpauth-migration://offline?data=",
                MigrationError::MissingData,
            ),
            (
                "otpauth-migration://offline?data=A",
                MigrationError::BadBase64,
            ),
            (
                "otpauth-migration://offline?data=%FF%FF",
                MigrationError::BadBase64,
            ),
            (
                "otpauth-migration://offline?data=AA%3D%3D",
                MigrationError::Malformed {
                    offset: 0,
                    reason: "field number 0",
                },
            ),
        ];
        for (uri, expected) in cases {
            assert_eq!(parse_migration_uri(uri), Err(expected), "{uri}");
        }
    }

    #[test]
    fn payload_errors() {
        let entry_with = |entry: Entry| payload(&[entry]);
        let base = || Entry {
            secret: b"ab",
            name: "x",
            ..Entry::default()
        };
        let cases = [
            (Vec::new(), MigrationError::MissingData),
            (with_trailer(Vec::new()), MigrationError::Empty),
            (
                entry_with(Entry {
                    algorithm: 4,
                    ..base()
                }),
                MigrationError::UnsupportedAlgorithm {
                    entry: 1,
                    name: "MD5".into(),
                },
            ),
            (
                entry_with(Entry {
                    algorithm: 9,
                    ..base()
                }),
                MigrationError::UnsupportedAlgorithm {
                    entry: 1,
                    name: "(code 9)".into(),
                },
            ),
            (
                entry_with(Entry {
                    digits: 3,
                    ..base()
                }),
                MigrationError::UnsupportedValue {
                    entry: 1,
                    field: "digits",
                    value: 3,
                },
            ),
            (
                entry_with(Entry {
                    otp_type: 3,
                    ..base()
                }),
                MigrationError::UnsupportedValue {
                    entry: 1,
                    field: "type",
                    value: 3,
                },
            ),
            (
                entry_with(Entry {
                    secret: b"",
                    ..base()
                }),
                MigrationError::EmptySecret { entry: 1 },
            ),
            (
                entry_with(Entry { name: "", ..base() }),
                MigrationError::MissingName { entry: 1 },
            ),
            (
                entry_with(Entry {
                    name: "ACME:",
                    ..base()
                }),
                MigrationError::MissingName { entry: 1 },
            ),
            (
                vec![0x0B, 0x00],
                MigrationError::Malformed {
                    offset: 0,
                    reason: "group wire types are not supported",
                },
            ),
            (
                vec![0x0F],
                MigrationError::Malformed {
                    offset: 0,
                    reason: "invalid wire type",
                },
            ),
            (
                vec![0x08, 0x01],
                MigrationError::Malformed {
                    offset: 0,
                    reason: "account field has the wrong wire type",
                },
            ),
            (
                vec![0x0A, 0x05, 0x10, 0x01],
                MigrationError::Malformed {
                    offset: 2,
                    reason: "field runs past the end of its message",
                },
            ),
            (
                vec![
                    0x10, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x02,
                ],
                MigrationError::Malformed {
                    offset: 1,
                    reason: "varint overflows 64 bits",
                },
            ),
            (
                vec![0x0A, 0x03, 0x12, 0x01, 0xFF],
                MigrationError::Malformed {
                    offset: 4,
                    reason: "account name is not UTF-8",
                },
            ),
        ];
        for (data, expected) in cases {
            assert_eq!(
                parse_migration_uri(&uri_for(&data)),
                Err(expected),
                "{data:02x?}"
            );
        }
        // Errors name the account by its position.
        let data = payload(&[
            base(),
            Entry {
                secret: b"",
                ..base()
            },
        ]);
        assert_eq!(
            parse_migration_uri(&uri_for(&data)),
            Err(MigrationError::EmptySecret { entry: 2 })
        );
    }

    #[test]
    fn truncation_at_every_offset_errors_unless_on_a_field_boundary() {
        let data = with_trailer(two_entries());
        // Offsets where a top-level field ends: a prefix there is itself a valid payload.
        let mut boundaries = Vec::new();
        let mut reader = Reader::new(&data, 0);
        while !reader.at_end() {
            let (_, wire, _) = reader.key().unwrap();
            reader.skip(wire).unwrap();
            boundaries.push(reader.offset());
        }
        let first_entry_end = boundaries[0];
        for cut in 0..data.len() {
            let result = parse_migration_uri(&uri_for(&data[..cut]));
            if cut == 0 {
                // Empty payload, empty base64: no data at all.
                assert_eq!(result, Err(MigrationError::MissingData));
            } else if boundaries.contains(&cut) {
                let expected = if cut == first_entry_end { 1 } else { 2 };
                assert_eq!(result.unwrap().len(), expected, "cut at {cut}");
            } else {
                assert!(
                    matches!(result, Err(MigrationError::Malformed { .. })),
                    "cut at {cut}: {result:?}"
                );
            }
        }
    }

    #[test]
    fn debug_of_results_hides_secrets() {
        let accounts = parse_migration_uri(&uri_for(&two_entries())).unwrap();
        let debug = format!("{accounts:?}");
        assert!(!debug.contains("Hello"), "{debug}");
    }

    proptest! {
        #[test]
        fn arbitrary_payloads_never_panic(data in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = parse_migration_uri(&uri_for(&data));
        }

        #[test]
        fn arbitrary_strings_never_panic(text in ".*") {
            let _ = parse_migration_uri(&text);
            let _ = parse_migration_uri(&format!("otpauth-migration://offline?data={text}"));
        }

        #[test]
        fn mutated_payloads_never_panic(
            index in any::<proptest::sample::Index>(),
            byte in any::<u8>(),
        ) {
            let mut data = with_trailer(two_entries());
            let position = index.index(data.len());
            data[position] = byte;
            let _ = parse_migration_uri(&uri_for(&data));
        }
    }
}
