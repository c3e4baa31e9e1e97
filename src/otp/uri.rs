//! otpauth:// URIs (Google's Key Uri Format), read the way ykman's `CredentialData.parse_uri`
//! reads them (reference: ykoath.md §1.9).
//!
//! Deliberately stricter than ykman: percent-encodings must decode to UTF-8, digits must be
//! 6..=8, the period 1..=300 seconds and the secret non-empty; ykman accepts or defers those.

use std::collections::HashMap;
use std::fmt;

use data_encoding::BASE32_NOPAD;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use thiserror::Error;
use zeroize::Zeroizing;

use super::base32::{SecretError, parse_base32_secret};
use super::{HashAlgorithm, OathType};

pub const DEFAULT_DIGITS: u8 = 6;
pub const DEFAULT_PERIOD: u32 = 30;
const MAX_PERIOD: u32 = 300;

/// Messages quote parts of the URI (never the secret); long parts are cut short.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum UriError {
    #[error("not an otpauth:// URI")]
    NotOtpauth,
    #[error("missing OTP type (expected otpauth://totp/ or otpauth://hotp/)")]
    MissingType,
    #[error("unknown OTP type {0:?} (expected totp or hotp)")]
    UnknownType(String),
    #[error("missing account name")]
    MissingName,
    #[error("missing secret parameter")]
    MissingSecret,
    #[error("invalid secret: {0}")]
    InvalidSecret(#[from] SecretError),
    #[error("invalid digits {0:?} (expected 6, 7 or 8)")]
    BadDigits(String),
    #[error("invalid period {0:?} (expected whole seconds from 1 to {MAX_PERIOD})")]
    BadPeriod(String),
    #[error("invalid counter {0:?} (expected a non-negative integer)")]
    BadCounter(String),
    #[error("unknown algorithm {0:?} (expected SHA1, SHA256 or SHA512)")]
    UnknownAlgorithm(String),
    /// Names the part: "account name" or `parameter "issuer"`.
    #[error("invalid percent-encoding in {0} (not UTF-8)")]
    BadEncoding(String),
}

#[derive(Clone, PartialEq, Eq)]
pub struct OtpAuthUri {
    pub oath_type: OathType,
    pub issuer: Option<String>,
    pub name: String,
    pub secret: Zeroizing<Vec<u8>>,
    pub algorithm: HashAlgorithm,
    pub digits: u8,
    pub period: u32,
    pub counter: u64,
}

impl fmt::Debug for OtpAuthUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtpAuthUri")
            .field("oath_type", &self.oath_type)
            .field("issuer", &self.issuer)
            .field("name", &self.name)
            .field("secret", &"<redacted>")
            .field("algorithm", &self.algorithm)
            .field("digits", &self.digits)
            .field("period", &self.period)
            .field("counter", &self.counter)
            .finish()
    }
}

// RFC 3986 unreserved characters stay literal; '@' too in the label, for readable e-mails.
const VALUE_SET: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');
const LABEL_SET: &AsciiSet = &VALUE_SET.remove(b'@');

impl OtpAuthUri {
    /// Serialises back to an otpauth:// URI that [`parse_otpauth_uri`] reads to equal fields.
    /// Only non-default parameters besides `secret` and `issuer` are written.
    /// The result contains the secret.
    pub fn to_uri(&self) -> String {
        let host = match self.oath_type {
            OathType::Totp => "totp",
            OathType::Hotp => "hotp",
        };
        let issuer = self.issuer.as_deref().filter(|issuer| !issuer.is_empty());
        // The label issuer ends at the first ':', so an issuer containing one travels in the
        // query alone, and a name containing one gets an empty label issuer in front.
        let label_issuer = match issuer {
            Some(issuer) if !issuer.contains(':') => Some(issuer),
            Some(_) => Some(""),
            None if self.name.contains(':') => Some(""),
            None => None,
        };
        let mut uri = format!("otpauth://{host}/");
        if let Some(label_issuer) = label_issuer {
            uri.extend(utf8_percent_encode(label_issuer, LABEL_SET));
            uri.push(':');
        }
        uri.extend(utf8_percent_encode(&self.name, LABEL_SET));
        uri.push_str("?secret=");
        uri.push_str(&BASE32_NOPAD.encode(&self.secret));
        if let Some(issuer) = issuer {
            uri.push_str("&issuer=");
            uri.extend(utf8_percent_encode(issuer, VALUE_SET));
        }
        if self.algorithm != HashAlgorithm::Sha1 {
            uri.push_str(&format!("&algorithm={}", self.algorithm.name()));
        }
        if self.digits != DEFAULT_DIGITS {
            uri.push_str(&format!("&digits={}", self.digits));
        }
        if self.period != DEFAULT_PERIOD {
            uri.push_str(&format!("&period={}", self.period));
        }
        if self.counter != 0 {
            uri.push_str(&format!("&counter={}", self.counter));
        }
        uri
    }
}

pub fn parse_otpauth_uri(uri: &str) -> Result<OtpAuthUri, UriError> {
    let uri = uri.trim();
    let rest = strip_prefix_ignore_case(uri, "otpauth:").ok_or(UriError::NotOtpauth)?;
    let rest = rest.strip_prefix("//").ok_or(UriError::MissingType)?;
    // Python's urlsplit drops the fragment first, then splits off the query.
    let rest = rest.split_once('#').map_or(rest, |(before, _)| before);
    let (authority_and_path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (host, path) = authority_and_path
        .find('/')
        .map_or((authority_and_path, ""), |slash| {
            authority_and_path.split_at(slash)
        });

    let oath_type = match host.to_ascii_lowercase().as_str() {
        "" => return Err(UriError::MissingType),
        "totp" => OathType::Totp,
        "hotp" => OathType::Hotp,
        _ => return Err(UriError::UnknownType(shorten(host))),
    };

    // The label is percent-decoded but not form-decoded ('+' stays), so %3A splits too.
    let label = percent_decode_str(path)
        .decode_utf8()
        .map_err(|_| UriError::BadEncoding("account name".to_owned()))?;
    let label = label.strip_prefix('/').unwrap_or(&label);
    let (label_issuer, name) = match label.split_once(':') {
        Some((issuer, name)) => (Some(issuer), name),
        None => (None, label),
    };
    if name.is_empty() {
        return Err(UriError::MissingName);
    }

    let params = query_params(query);
    let param = |key: &str| -> Result<Option<Zeroizing<String>>, UriError> {
        params
            .get(key)
            .map(|raw| {
                form_decode(raw).ok_or_else(|| UriError::BadEncoding(format!("parameter {key:?}")))
            })
            .transpose()
    };

    let secret_text = param("secret")?.ok_or(UriError::MissingSecret)?;
    let secret = parse_base32_secret(&secret_text)?;
    // The query issuer overrides the label's, as in ykman.
    let issuer = match param("issuer")? {
        Some(issuer) => Some(issuer.as_str().to_owned()),
        None => label_issuer.map(str::to_owned),
    }
    .filter(|issuer| !issuer.is_empty());
    let algorithm = match param("algorithm")? {
        None => HashAlgorithm::Sha1,
        Some(text) => text
            .parse()
            .map_err(|_| UriError::UnknownAlgorithm(shorten(&text)))?,
    };
    // Python's int() ignores surrounding whitespace; so do we.
    let digits = match param("digits")? {
        None => DEFAULT_DIGITS,
        Some(text) => text
            .trim()
            .parse()
            .ok()
            .filter(|digits| (6..=8).contains(digits))
            .ok_or_else(|| UriError::BadDigits(shorten(&text)))?,
    };
    let period = match param("period")? {
        None => DEFAULT_PERIOD,
        Some(text) => text
            .trim()
            .parse()
            .ok()
            .filter(|period| (1..=MAX_PERIOD).contains(period))
            .ok_or_else(|| UriError::BadPeriod(shorten(&text)))?,
    };
    let counter = match param("counter")? {
        None => 0,
        Some(text) => text
            .trim()
            .parse()
            .map_err(|_| UriError::BadCounter(shorten(&text)))?,
    };

    Ok(OtpAuthUri {
        oath_type,
        issuer,
        name: name.to_owned(),
        secret,
        algorithm,
        digits,
        period,
        counter,
    })
}

/// ASCII-case-insensitive `strip_prefix`.
pub(super) fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    if head.eq_ignore_ascii_case(prefix) {
        text.get(prefix.len()..)
    } else {
        None
    }
}

/// Python's `parse_qs` defaults: `&`-separated pairs split on the first `=`; pairs without
/// `=` or with an empty value are dropped; keys are form-decoded and case-sensitive; the
/// first occurrence of a key wins. Values stay raw until asked for.
fn query_params(query: &str) -> HashMap<String, &str> {
    let mut params = HashMap::new();
    for pair in query.split('&') {
        let Some((key, value)) = pair.split_once('=') else {
            continue;
        };
        if value.is_empty() {
            continue;
        }
        // A key that is not UTF-8 cannot match a known one, so lossy decoding is enough.
        let key = String::from_utf8_lossy(&form_decode_bytes(key)).into_owned();
        params.entry(key).or_insert(value);
    }
    params
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space, then percent-decoding.
/// Buffers are zeroized because the value may be the secret.
fn form_decode_bytes(raw: &str) -> Zeroizing<Vec<u8>> {
    let spaced = Zeroizing::new(raw.replace('+', " "));
    Zeroizing::new(percent_decode_str(&spaced).collect())
}

fn form_decode(raw: &str) -> Option<Zeroizing<String>> {
    let bytes = form_decode_bytes(raw);
    let text = std::str::from_utf8(&bytes).ok()?;
    Some(Zeroizing::new(text.to_owned()))
}

/// Quotes at most 40 characters of user input in an error message.
fn shorten(text: &str) -> String {
    const LIMIT: usize = 40;
    match text.char_indices().nth(LIMIT) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(uri: &str) -> OtpAuthUri {
        parse_otpauth_uri(uri).unwrap_or_else(|err| panic!("{uri}: {err}"))
    }

    fn error(uri: &str) -> UriError {
        parse_otpauth_uri(uri).expect_err(uri)
    }

    #[test]
    fn query_issuer_overrides_label_issuer() {
        let parsed = parse("otpauth://totp/TestA:account?secret=abba&issuer=TestB");
        assert_eq!(parsed.issuer.as_deref(), Some("TestB"));
        assert_eq!(parsed.name, "account");
    }

    #[test]
    fn ykman_full_payload() {
        let parsed = parse(
            "otpauth://totp/Issuer:account?secret=abba&issuer=Issuer&algorithm=SHA256\
             &digits=7&period=20&counter=5",
        );
        assert_eq!(parsed.oath_type, OathType::Totp);
        assert_eq!(parsed.issuer.as_deref(), Some("Issuer"));
        assert_eq!(parsed.name, "account");
        assert_eq!(parsed.secret.as_slice(), b"\0B");
        assert_eq!(parsed.algorithm, HashAlgorithm::Sha256);
        assert_eq!(parsed.digits, 7);
        assert_eq!(parsed.period, 20);
        assert_eq!(parsed.counter, 5);
    }

    #[test]
    fn defaults() {
        let parsed = parse("otpauth://hotp/alice?secret=JBSWY3DPEHPK3PXP");
        assert_eq!(parsed.oath_type, OathType::Hotp);
        assert_eq!(parsed.issuer, None);
        assert_eq!(parsed.name, "alice");
        assert_eq!(parsed.secret.as_slice(), b"Hello!\xde\xad\xbe\xef");
        assert_eq!(parsed.algorithm, HashAlgorithm::Sha1);
        assert_eq!(parsed.digits, 6);
        assert_eq!(parsed.period, 30);
        assert_eq!(parsed.counter, 0);
    }

    #[test]
    fn label_is_not_trimmed_and_encoded_colon_splits() {
        assert_eq!(parse("otpauth://totp/ACME:%20bob?secret=abba").name, " bob");
        let parsed = parse("otpauth://totp/ACME%3Abob?secret=abba");
        assert_eq!(parsed.issuer.as_deref(), Some("ACME"));
        assert_eq!(parsed.name, "bob");
        // Only the first ':' splits; '+' in the path is literal.
        let parsed = parse("otpauth://totp/A:b:c+d?secret=abba");
        assert_eq!(parsed.issuer.as_deref(), Some("A"));
        assert_eq!(parsed.name, "b:c+d");
    }

    #[test]
    fn scheme_and_type_are_case_insensitive_and_whitespace_is_trimmed() {
        let parsed = parse("  \n OTPAUTH://TOTP/bob?secret=abba \t");
        assert_eq!(parsed.oath_type, OathType::Totp);
        assert_eq!(
            parse("otpauth://HoTp/bob?secret=abba").oath_type,
            OathType::Hotp
        );
    }

    #[test]
    fn first_occurrence_wins_and_empty_values_are_absent() {
        let parsed = parse("otpauth://totp/bob?secret=abba&digits=8&digits=7&secret=GEZDGNBV");
        assert_eq!(parsed.secret.as_slice(), b"\0B");
        assert_eq!(parsed.digits, 8);
        let parsed = parse("otpauth://totp/X:bob?secret=&secret=abba&issuer=&digits=&period");
        assert_eq!(parsed.secret.as_slice(), b"\0B");
        assert_eq!(parsed.issuer.as_deref(), Some("X"));
        assert_eq!(parsed.digits, 6);
        // Keys are case-sensitive: SECRET is just an unknown parameter.
        assert_eq!(
            error("otpauth://totp/bob?SECRET=abba"),
            UriError::MissingSecret
        );
    }

    #[test]
    fn lenient_secrets() {
        for secret in [
            "jbswy3dpehpk3pxp",
            "JBSW%20Y3DP%20EHPK%203PXP",
            "JBSW+Y3DP+EHPK+3PXP",
            "JBSWY3DPEHPK3PXP%3D%3D%3D",
        ] {
            let parsed = parse(&format!("otpauth://totp/bob?secret={secret}"));
            assert_eq!(
                parsed.secret.as_slice(),
                b"Hello!\xde\xad\xbe\xef",
                "{secret}"
            );
        }
    }

    #[test]
    fn plus_in_query_is_a_space() {
        let parsed = parse("otpauth://totp/x?secret=abba&issuer=Big+Corp%2B");
        assert_eq!(parsed.issuer.as_deref(), Some("Big Corp+"));
    }

    #[test]
    fn unknown_params_and_fragments_are_ignored() {
        let parsed = parse(
            "otpauth://totp/bob?secret=abba&image=https%3A%2F%2Fx%2Fy.png&foo&=bar&x=%FF#frag",
        );
        assert_eq!(parsed.name, "bob");
        assert_eq!(parsed.secret.as_slice(), b"\0B");
    }

    #[test]
    fn aws_style() {
        let parsed = parse(
            "otpauth://totp/Amazon%20Web%20Services:alice@123456789012\
             ?secret=JBSWY3DPEHPK3PXP&issuer=Amazon%20Web%20Services",
        );
        assert_eq!(parsed.issuer.as_deref(), Some("Amazon Web Services"));
        assert_eq!(parsed.name, "alice@123456789012");
    }

    #[test]
    fn integers_accept_python_int_spellings() {
        let parsed = parse("otpauth://hotp/bob?secret=abba&digits=+8&period=%2060%20&counter=007");
        assert_eq!((parsed.digits, parsed.period, parsed.counter), (8, 60, 7));
        assert_eq!(
            parse("otpauth://totp/bob?secret=abba&algorithm=sha512").algorithm,
            HashAlgorithm::Sha512
        );
    }

    #[test]
    fn each_error_variant() {
        let cases: &[(&str, UriError)] = &[
            ("https://totp/bob?secret=abba", UriError::NotOtpauth),
            ("otpauth-migration://offline?data=x", UriError::NotOtpauth),
            ("otpauth:totp/bob?secret=abba", UriError::MissingType),
            ("otpauth:///bob?secret=abba", UriError::MissingType),
            (
                "otpauth://xotp/bob?secret=abba",
                UriError::UnknownType("xotp".into()),
            ),
            ("otpauth://totp?secret=abba", UriError::MissingName),
            ("otpauth://totp/?secret=abba", UriError::MissingName),
            ("otpauth://totp/Issuer:?secret=abba", UriError::MissingName),
            ("otpauth://totp/bob", UriError::MissingSecret),
            ("otpauth://totp/bob?secret", UriError::MissingSecret),
            (
                "otpauth://totp/bob?secret=%20",
                UriError::InvalidSecret(SecretError::Empty),
            ),
            (
                "otpauth://totp/bob?secret=ab1a",
                UriError::InvalidSecret(SecretError::InvalidCharacter {
                    position: 3,
                    character: '1',
                }),
            ),
            (
                "otpauth://totp/bob?secret=abc",
                UriError::InvalidSecret(SecretError::BadLength { length: 3 }),
            ),
            (
                "otpauth://totp/bob?secret=abba&digits=x",
                UriError::BadDigits("x".into()),
            ),
            (
                "otpauth://totp/bob?secret=abba&digits=5",
                UriError::BadDigits("5".into()),
            ),
            (
                "otpauth://totp/bob?secret=abba&digits=9",
                UriError::BadDigits("9".into()),
            ),
            (
                "otpauth://totp/bob?secret=abba&period=0",
                UriError::BadPeriod("0".into()),
            ),
            (
                "otpauth://totp/bob?secret=abba&period=301",
                UriError::BadPeriod("301".into()),
            ),
            (
                "otpauth://totp/bob?secret=abba&period=1.5",
                UriError::BadPeriod("1.5".into()),
            ),
            (
                "otpauth://hotp/bob?secret=abba&counter=-1",
                UriError::BadCounter("-1".into()),
            ),
            (
                "otpauth://totp/bob?secret=abba&algorithm=MD5",
                UriError::UnknownAlgorithm("MD5".into()),
            ),
            (
                "otpauth://totp/b%FFob?secret=abba",
                UriError::BadEncoding("account name".into()),
            ),
            (
                "otpauth://totp/bob?secret=abba&issuer=%C3",
                UriError::BadEncoding("parameter \"issuer\"".into()),
            ),
        ];
        for (uri, expected) in cases {
            assert_eq!(&error(uri), expected, "{uri}");
        }
    }

    #[test]
    fn messages_never_contain_the_secret() {
        let secret = "JBSWY3DPEHPK3PXQ0";
        for uri in [
            format!("otpauth://totp/bob?secret={secret}"),
            format!("otpauth://totp/bob?secret={secret}%FF"),
            format!("otpauth://totp/bob?secret={secret}X"),
        ] {
            let message = error(&uri).to_string();
            assert!(!message.contains("JBSWY3DP"), "{message}");
        }
    }

    #[test]
    fn long_values_are_cut_in_messages() {
        let long = "9".repeat(100);
        let message = error(&format!("otpauth://totp/bob?secret=abba&digits={long}")).to_string();
        assert!(message.len() < 100, "{message}");
    }

    #[test]
    fn debug_redacts_the_secret() {
        let parsed = parse("otpauth://totp/bob?secret=JBSWY3DPEHPK3PXP");
        let debug = format!("{parsed:?}");
        assert!(debug.contains("<redacted>"), "{debug}");
        assert!(!debug.contains("72") && !debug.contains("Hello"), "{debug}");
    }

    #[test]
    fn to_uri_writes_only_non_default_params() {
        let parsed = parse("otpauth://totp/ACME%20Co:bob@example.com?secret=JBSWY3DPEHPK3PXP");
        assert_eq!(
            parsed.to_uri(),
            "otpauth://totp/ACME%20Co:bob@example.com?secret=JBSWY3DPEHPK3PXP&issuer=ACME%20Co"
        );
        let parsed =
            parse("otpauth://totp/Issuer:account?secret=abba&algorithm=SHA256&digits=8&period=60");
        assert_eq!(
            parsed.to_uri(),
            "otpauth://totp/Issuer:account?secret=ABBA&issuer=Issuer&algorithm=SHA256\
             &digits=8&period=60"
        );
    }

    #[test]
    fn to_uri_keeps_colons_out_of_the_label_issuer() {
        let mut credential = parse("otpauth://hotp/x?secret=abba&counter=9");
        for (issuer, name) in [(None, "a:b"), (Some("I:J"), "n"), (Some("I:J"), "a:b")] {
            credential.issuer = issuer.map(str::to_owned);
            credential.name = name.to_owned();
            assert_eq!(parse(&credential.to_uri()), credential);
        }
    }

    fn credential_strategy(label_text: &'static str) -> impl Strategy<Value = OtpAuthUri> {
        (
            prop_oneof![Just(OathType::Totp), Just(OathType::Hotp)],
            proptest::option::of(label_text),
            label_text,
            proptest::collection::vec(any::<u8>(), 1..80),
            prop_oneof![
                Just(HashAlgorithm::Sha1),
                Just(HashAlgorithm::Sha256),
                Just(HashAlgorithm::Sha512)
            ],
            6u8..=8,
            1u32..=MAX_PERIOD,
            any::<u64>(),
        )
            .prop_map(
                |(oath_type, issuer, name, secret, algorithm, digits, period, counter)| {
                    OtpAuthUri {
                        oath_type,
                        issuer,
                        name,
                        secret: Zeroizing::new(secret),
                        algorithm,
                        digits,
                        period,
                        counter,
                    }
                },
            )
    }

    proptest! {
        #[test]
        fn arbitrary_strings_never_panic(text in ".*") {
            let _ = parse_otpauth_uri(&text);
        }

        #[test]
        fn arbitrary_otpauth_parts_never_panic(
            label in ".*",
            secret in ".*",
            rest in "[a-z=&%0-9A-F+#?:]*",
        ) {
            let _ = parse_otpauth_uri(&format!("otpauth://totp/{label}?secret={secret}&{rest}"));
        }

        #[test]
        fn generated_uris_round_trip(credential in credential_strategy("[^:]+")) {
            let uri = credential.to_uri();
            prop_assert_eq!(parse_otpauth_uri(&uri), Ok(credential), "{}", uri);
        }

        #[test]
        fn generated_uris_with_colons_round_trip(credential in credential_strategy(".+")) {
            let uri = credential.to_uri();
            prop_assert_eq!(parse_otpauth_uri(&uri), Ok(credential), "{}", uri);
        }
    }
}
