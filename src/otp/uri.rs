//! otpauth:// URIs (Google's Key Uri Format), read the way ykman's `CredentialData.parse_uri`
//! reads them (reference: ykoath.md §1.9), with Steam in the shapes exporters write.
//!
//! Deliberately stricter than ykman, because a silent default stores a wrong account:
//! a known parameter that is empty, malformed, badly percent-encoded or given twice with
//! different values is an error; digits must be 6..=8 (5 only for Steam), the period
//! 1..=300 seconds, the counter 32 bits (every key stores 32), names free of control
//! characters. Messages name the field and never quote the URI: it may hold the seed.

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
/// The issuer that marks a Steam Guard account, as Yubico's tools store it: TOTP, SHA-1,
/// 30 s, 6 digits on the key; the client turns the full HMAC into 5 characters.
pub const STEAM_ISSUER: &str = "Steam";

/// What is wrong, by field (`digits: expected 6, 7 or 8`); never a value from the URI.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum UriError {
    #[error("not an otpauth:// URI")]
    NotOtpauth,
    #[error("type: missing (expected otpauth://totp/ or otpauth://hotp/)")]
    MissingType,
    #[error("type: unknown OTP type (expected totp, hotp or steam)")]
    UnknownType,
    #[error("name: missing account name")]
    MissingName,
    #[error("{0}: contains a control character")]
    ControlCharacter(&'static str),
    #[error("secret: missing")]
    MissingSecret,
    #[error("secret: {0}")]
    InvalidSecret(#[from] SecretError),
    #[error("digits: expected 6, 7 or 8")]
    BadDigits,
    #[error("period: expected whole seconds from 1 to {MAX_PERIOD}")]
    BadPeriod,
    #[error("counter: expected a whole number from 0 to 4294967295")]
    BadCounter,
    #[error("algorithm: expected SHA1, SHA256 or SHA512")]
    UnknownAlgorithm,
    #[error("{0}: invalid percent-encoding")]
    BadEncoding(&'static str),
    #[error("{0}: empty value")]
    EmptyValue(&'static str),
    #[error("{0}: given twice with different values")]
    Repeated(&'static str),
    #[error("{0}: a Steam account must use {1}")]
    SteamMismatch(&'static str, &'static str),
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

/// Parses one otpauth:// URI (surrounding whitespace ignored). Steam accounts (host `steam`,
/// `encoder=steam`, or issuer Steam with `digits=5`) come back with issuer [`STEAM_ISSUER`]
/// and 6 digits, the way Yubico's tools store them.
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

    let (oath_type, steam_host) = match host.to_ascii_lowercase().as_str() {
        "" => return Err(UriError::MissingType),
        "totp" => (OathType::Totp, false),
        "hotp" => (OathType::Hotp, false),
        "steam" => (OathType::Totp, true),
        _ => return Err(UriError::UnknownType),
    };

    // The label is percent-decoded but not form-decoded ('+' stays), so %3A splits too.
    check_percent_encoding(path, "name")?;
    let label = percent_decode_str(path)
        .decode_utf8()
        .map_err(|_| UriError::BadEncoding("name"))?;
    let label = label.strip_prefix('/').unwrap_or(&label);
    let (label_issuer, name) = match label.split_once(':') {
        Some((issuer, name)) => (Some(issuer), name),
        None => (None, label),
    };
    if name.is_empty() {
        return Err(UriError::MissingName);
    }

    let params = Params::parse(query)?;
    let secret_text = params.get("secret")?.ok_or(UriError::MissingSecret)?;
    let secret = parse_base32_secret(&secret_text)?;
    // The query issuer overrides the label's, as in ykman.
    let mut issuer = match params.get("issuer")? {
        Some(issuer) => Some(issuer.as_str().to_owned()),
        None => label_issuer.map(str::to_owned),
    }
    .filter(|issuer| !issuer.is_empty());
    for (field, text) in [("name", Some(name)), ("issuer", issuer.as_deref())] {
        if text.is_some_and(|t| t.chars().any(char::is_control)) {
            return Err(UriError::ControlCharacter(field));
        }
    }
    let algorithm = match params.get("algorithm")? {
        None => None,
        Some(text) => Some(text.parse().map_err(|_| UriError::UnknownAlgorithm)?),
    };
    // Python's int() ignores surrounding whitespace; so do we.
    let digits: Option<u8> = params.number("digits", UriError::BadDigits)?;
    let period: Option<u32> = params.number("period", UriError::BadPeriod)?;
    let counter: u64 = params
        .number::<u32>("counter", UriError::BadCounter)?
        .map_or(0, u64::from);
    let encoder = params.get("encoder")?;
    let steam = steam_host
        || encoder
            .as_deref()
            .is_some_and(|e| e.eq_ignore_ascii_case("steam"))
        || (digits == Some(5)
            && issuer
                .as_deref()
                .is_some_and(|i| i.eq_ignore_ascii_case(STEAM_ISSUER)));
    if steam {
        check_steam(oath_type, algorithm, period)?;
        issuer = Some(STEAM_ISSUER.to_owned());
    }
    let digits = match digits {
        None => DEFAULT_DIGITS,
        Some(5) if steam => DEFAULT_DIGITS,
        Some(digits) if (6..=8).contains(&digits) => digits,
        Some(_) => return Err(UriError::BadDigits),
    };
    let period = match period {
        None => DEFAULT_PERIOD,
        Some(period) if (1..=MAX_PERIOD).contains(&period) => period,
        Some(_) => return Err(UriError::BadPeriod),
    };
    Ok(OtpAuthUri {
        oath_type,
        issuer,
        name: name.to_owned(),
        secret,
        algorithm: algorithm.unwrap_or_default(),
        digits,
        period,
        counter,
    })
}

/// Steam codes are HMAC-SHA1 over 30 s steps; anything else would give wrong codes.
fn check_steam(
    oath_type: OathType,
    algorithm: Option<HashAlgorithm>,
    period: Option<u32>,
) -> Result<(), UriError> {
    if oath_type != OathType::Totp {
        return Err(UriError::SteamMismatch("type", "TOTP"));
    }
    if algorithm.is_some_and(|a| a != HashAlgorithm::Sha1) {
        return Err(UriError::SteamMismatch("algorithm", "SHA1"));
    }
    if period.is_some_and(|p| p != DEFAULT_PERIOD) {
        return Err(UriError::SteamMismatch("period", "30 seconds"));
    }
    Ok(())
}

/// ASCII-case-insensitive `strip_prefix`.
pub(crate) fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    if head.eq_ignore_ascii_case(prefix) {
        text.get(prefix.len()..)
    } else {
        None
    }
}

/// The parameters this module knows; others (image, color, …) are ignored.
const KNOWN: [&str; 7] = [
    "secret",
    "issuer",
    "algorithm",
    "digits",
    "period",
    "counter",
    "encoder",
];

/// The known query parameters, raw until asked for. `&`-separated pairs split on the first
/// `=`; keys are form-decoded and case-sensitive (as Python's `parse_qs`).
struct Params<'a> {
    values: HashMap<&'static str, &'a str>,
}

impl<'a> Params<'a> {
    fn parse(query: &'a str) -> Result<Self, UriError> {
        let mut values: HashMap<&'static str, &'a str> = HashMap::new();
        for pair in query.split('&').filter(|pair| !pair.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            // A key that is not UTF-8 cannot match a known one, so lossy decoding is enough.
            let key = String::from_utf8_lossy(&form_decode_bytes(key)).into_owned();
            let Some(&field) = KNOWN.iter().find(|known| **known == key) else {
                continue;
            };
            if value.is_empty() {
                return Err(UriError::EmptyValue(field));
            }
            check_percent_encoding(value, field)?;
            match values.get(field) {
                Some(first) if form_decode_bytes(first) != form_decode_bytes(value) => {
                    return Err(UriError::Repeated(field));
                }
                Some(_) => {}
                None => {
                    values.insert(field, value);
                }
            }
        }
        Ok(Self { values })
    }

    /// The form-decoded value of a known parameter.
    fn get(&self, field: &'static str) -> Result<Option<Zeroizing<String>>, UriError> {
        let Some(raw) = self.values.get(field) else {
            return Ok(None);
        };
        let text = form_decode(raw).ok_or(UriError::BadEncoding(field))?;
        if text.trim().is_empty() {
            return Err(UriError::EmptyValue(field));
        }
        Ok(Some(text))
    }

    /// A decimal number (optional `+` and surrounding spaces, like Python's `int()`).
    fn number<T: std::str::FromStr>(
        &self,
        field: &'static str,
        error: UriError,
    ) -> Result<Option<T>, UriError> {
        match self.get(field)? {
            None => Ok(None),
            Some(text) => {
                let text = text.trim();
                let digits = text.strip_prefix('+').unwrap_or(text);
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(error);
                }
                digits.parse().map(Some).map_err(|_| error)
            }
        }
    }
}

/// Every `%` must start a two-digit hex escape; a stray one is an error, not a literal.
fn check_percent_encoding(raw: &str, field: &'static str) -> Result<(), UriError> {
    let bytes = raw.as_bytes();
    let mut index = 0;
    while let Some(offset) = bytes[index..].iter().position(|&b| b == b'%') {
        let at = index + offset;
        let escape = bytes.get(at + 1..at + 3);
        if !escape.is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit)) {
            return Err(UriError::BadEncoding(field));
        }
        index = at + 3;
    }
    Ok(())
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
    fn repeats_must_agree_and_empty_values_are_errors() {
        let parsed = parse("otpauth://totp/bob?secret=abba&digits=8&digits=8&secret=abba");
        assert_eq!(parsed.secret.as_slice(), b"\0B");
        assert_eq!(parsed.digits, 8);
        assert_eq!(
            error("otpauth://totp/bob?secret=abba&digits=8&digits=7"),
            UriError::Repeated("digits")
        );
        for (uri, field) in [
            ("otpauth://totp/X:bob?secret=&secret=abba", "secret"),
            ("otpauth://totp/X:bob?secret=abba&issuer=", "issuer"),
            ("otpauth://totp/X:bob?secret=abba&issuer=%20", "issuer"),
            ("otpauth://totp/X:bob?secret=abba&digits=", "digits"),
            ("otpauth://totp/X:bob?secret=abba&period", "period"),
            (
                "otpauth://totp/Test:alice?secret=JBSWY3DPEHPK3PXP&algorithm=",
                "algorithm",
            ),
            ("otpauth://totp/X:bob?secret=abba&algorithm=+", "algorithm"),
        ] {
            assert_eq!(error(uri), UriError::EmptyValue(field), "{uri}");
        }
        // Keys are case-sensitive: SECRET is just an unknown parameter.
        assert_eq!(
            error("otpauth://totp/bob?SECRET=abba"),
            UriError::MissingSecret
        );
        // Unknown parameters may be empty.
        assert_eq!(parse("otpauth://totp/bob?secret=abba&image=").name, "bob");
    }

    #[test]
    fn steam_in_every_exporter_shape() {
        for uri in [
            "otpauth://totp/Steam:frank?secret=abba&issuer=Steam&digits=5",
            "otpauth://steam/Steam:frank?secret=abba",
            "otpauth://steam/frank?secret=abba&issuer=Steam",
            "otpauth://totp/frank?secret=abba&encoder=steam",
            "otpauth://totp/steam:frank?secret=abba&digits=5",
            "otpauth://totp/Steam:frank?secret=abba",
        ] {
            let parsed = parse(uri);
            assert_eq!(parsed.issuer.as_deref(), Some(STEAM_ISSUER), "{uri}");
            assert_eq!(parsed.name, "frank", "{uri}");
            assert_eq!(parsed.oath_type, OathType::Totp, "{uri}");
            assert_eq!((parsed.digits, parsed.period), (6, 30), "{uri}");
        }
        assert_eq!(
            error("otpauth://totp/Valve:frank?secret=abba&digits=5"),
            UriError::BadDigits
        );
        assert_eq!(
            error("otpauth://steam/frank?secret=abba&algorithm=SHA256"),
            UriError::SteamMismatch("algorithm", "SHA1")
        );
        assert_eq!(
            error("otpauth://steam/frank?secret=abba&period=60"),
            UriError::SteamMismatch("period", "30 seconds")
        );
        assert_eq!(
            error("otpauth://hotp/frank?secret=abba&encoder=steam"),
            UriError::SteamMismatch("type", "TOTP")
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
            ("otpauth://xotp/bob?secret=abba", UriError::UnknownType),
            ("otpauth://totp?secret=abba", UriError::MissingName),
            ("otpauth://totp/?secret=abba", UriError::MissingName),
            ("otpauth://totp/Issuer:?secret=abba", UriError::MissingName),
            ("otpauth://totp/bob", UriError::MissingSecret),
            ("otpauth://totp/bob?secret", UriError::EmptyValue("secret")),
            (
                "otpauth://totp/bob?secret=%20",
                UriError::EmptyValue("secret"),
            ),
            (
                "otpauth://totp/bob?secret=ab1a",
                UriError::InvalidSecret(SecretError::InvalidCharacter { position: 3 }),
            ),
            (
                "otpauth://totp/bob?secret=abc",
                UriError::InvalidSecret(SecretError::BadLength { length: 3 }),
            ),
            (
                "otpauth://totp/bob?secret=abba&digits=x",
                UriError::BadDigits,
            ),
            (
                "otpauth://totp/bob?secret=abba&digits=5",
                UriError::BadDigits,
            ),
            (
                "otpauth://totp/bob?secret=abba&digits=9",
                UriError::BadDigits,
            ),
            (
                "otpauth://totp/bob?secret=abba&digits=-6",
                UriError::BadDigits,
            ),
            (
                "otpauth://totp/bob?secret=abba&digits=99999999999999999999",
                UriError::BadDigits,
            ),
            (
                "otpauth://totp/bob?secret=abba&period=0",
                UriError::BadPeriod,
            ),
            (
                "otpauth://totp/bob?secret=abba&period=301",
                UriError::BadPeriod,
            ),
            (
                "otpauth://totp/bob?secret=abba&period=1.5",
                UriError::BadPeriod,
            ),
            (
                "otpauth://hotp/bob?secret=abba&counter=-1",
                UriError::BadCounter,
            ),
            (
                "otpauth://hotp/bob?secret=abba&counter=4294967296",
                UriError::BadCounter,
            ),
            (
                "otpauth://totp/bob?secret=abba&algorithm=MD5",
                UriError::UnknownAlgorithm,
            ),
            (
                "otpauth://totp/b%FFob?secret=abba",
                UriError::BadEncoding("name"),
            ),
            (
                "otpauth://totp/b%zzob?secret=abba",
                UriError::BadEncoding("name"),
            ),
            (
                "otpauth://totp/bob?secret=abba&issuer=%C3",
                UriError::BadEncoding("issuer"),
            ),
            (
                "otpauth://totp/bob?secret=ab%2",
                UriError::BadEncoding("secret"),
            ),
            (
                "otpauth://totp/bob%0D%0Aeve?secret=abba",
                UriError::ControlCharacter("name"),
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
    fn messages_never_quote_the_input() {
        let uri = "otpauth://totp/Example:carol@example.com?secret=NBQW4ZDFMQWWGYLTMUWWWZLZFUYDAMBR\
                   &digits=6\r\notpauth://totp/dave@example.com?secret=NBQW4ZDFMQWWGYLTMUWWWZLZFUYDAMBS";
        let message = error(uri).to_string();
        assert_eq!(message, "digits: expected 6, 7 or 8");
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
            proptest::option::of(label_text)
                // Steam is its own kind; a blank issuer parameter is refused as empty.
                .prop_filter("not Steam, not blank", |i| {
                    i.as_deref()
                        .is_none_or(|i| i != STEAM_ISSUER && !i.trim().is_empty())
                }),
            label_text,
            proptest::collection::vec(any::<u8>(), 1..80),
            prop_oneof![
                Just(HashAlgorithm::Sha1),
                Just(HashAlgorithm::Sha256),
                Just(HashAlgorithm::Sha512)
            ],
            6u8..=8,
            1u32..=MAX_PERIOD,
            any::<u32>().prop_map(u64::from),
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
        fn generated_uris_round_trip(credential in credential_strategy("[^:\\p{Cc}]+")) {
            let uri = credential.to_uri();
            prop_assert_eq!(parse_otpauth_uri(&uri), Ok(credential), "{}", uri);
        }

        #[test]
        fn generated_uris_with_colons_round_trip(credential in credential_strategy("[^\\p{Cc}]+")) {
            let uri = credential.to_uri();
            prop_assert_eq!(parse_otpauth_uri(&uri), Ok(credential), "{}", uri);
        }
    }
}
