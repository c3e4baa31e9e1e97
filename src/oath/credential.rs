//! Credential ids (`[period/][issuer:]name`) and credential descriptions.

use std::fmt;

use serde::Serialize;
use thiserror::Error;
use zeroize::Zeroizing;

use super::consts::{DEFAULT_DIGITS, DEFAULT_PERIOD, MIN_KEY_LEN, NITROKEY_MAX_ID_LEN};
use crate::otp::{HashAlgorithm, OathType, shorten_key};

/// Issuer that marks a credential hidden (ykman `-H`).
pub const HIDDEN_ISSUER: &str = "_hidden";

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CredentialError {
    #[error("account name is empty")]
    EmptyName,
    /// The id's length and the limit it exceeds, in UTF-8 bytes.
    #[error("credential id is {0} bytes; this key stores at most {1} UTF-8 bytes")]
    IdTooLong(usize, usize),
    #[error("issuer must not contain ':'")]
    ColonInIssuer,
    #[error("period must be between 1 and 300 seconds (got {0})")]
    BadPeriod(u32),
    #[error("digits must be 6, 7 or 8 (got {0})")]
    BadDigits(u8),
    #[error("secret is too short ({0} bytes; at least 2 are needed)")]
    SecretTooShort(usize),
    #[error("a counter is only meaningful for HOTP accounts")]
    CounterOnTotp,
    #[error("issuer is empty")]
    EmptyIssuer,
    #[error("name contains ':' but there is no issuer: give one as ISSUER:NAME")]
    ColonWithoutIssuer,
    #[error("issuer or name contains a control character")]
    ControlCharacter,
    /// Written as an id, the parts would read back differently (a last-resort check).
    #[error("this issuer and name cannot be stored so that they read back the same")]
    NotRoundTrip,
}

/// The parsed parts of a credential id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct CredentialId {
    pub issuer: Option<String>,
    pub name: String,
    /// TOTP period; 0 for HOTP.
    pub period: u32,
}

impl CredentialId {
    pub fn new(issuer: Option<&str>, name: &str, oath_type: OathType, period: u32) -> Self {
        Self {
            issuer: issuer.filter(|i| !i.is_empty()).map(str::to_owned),
            name: name.to_owned(),
            period: match oath_type {
                OathType::Totp => period,
                OathType::Hotp => 0,
            },
        }
    }

    /// ykman's `_format_cred_id`: `period/` only for TOTP with a non-default period.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.to_string().into_bytes()
    }

    /// ykman's `_parse_cred_id` semantics. Ids are UTF-8 in practice; anything else is
    /// decoded lossily so a foreign credential still shows up.
    pub fn parse(raw: &[u8], oath_type: OathType) -> Self {
        let text = String::from_utf8_lossy(raw).into_owned();
        match oath_type {
            OathType::Totp => parse_totp_id(&text),
            OathType::Hotp => match text.find(':') {
                Some(at) if at > 0 => Self {
                    issuer: Some(text[..at].to_owned()),
                    name: text[at + 1..].to_owned(),
                    period: 0,
                },
                _ => Self {
                    issuer: None,
                    name: text,
                    period: 0,
                },
            },
        }
    }

    pub fn is_hidden(&self) -> bool {
        self.issuer.as_deref() == Some(HIDDEN_ISSUER)
    }

    /// Check the id fits on some key (the Nitrokey 3's 127 bytes; each key's own limit,
    /// [`super::Quirks::max_id_len`], is checked against that key) and reads back as the
    /// same issuer, name and period (ykman's grammar, [`CredentialId::parse`]), so every
    /// client shows what we wrote.
    pub fn validate(&self) -> Result<(), CredentialError> {
        if self.name.is_empty() {
            return Err(CredentialError::EmptyName);
        }
        match self.issuer.as_deref() {
            Some("") => return Err(CredentialError::EmptyIssuer),
            Some(issuer) if issuer.contains(':') => return Err(CredentialError::ColonInIssuer),
            _ => {}
        }
        let parts = self.issuer.iter().chain(std::iter::once(&self.name));
        if parts.flat_map(|part| part.chars()).any(char::is_control) {
            return Err(CredentialError::ControlCharacter);
        }
        let len = self.to_bytes().len();
        if len > NITROKEY_MAX_ID_LEN {
            return Err(CredentialError::IdTooLong(len, NITROKEY_MAX_ID_LEN));
        }
        let oath_type = if self.period == 0 {
            OathType::Hotp
        } else {
            OathType::Totp
        };
        if Self::parse(&self.to_bytes(), oath_type) != *self {
            return Err(if self.issuer.is_none() && self.name.contains(':') {
                CredentialError::ColonWithoutIssuer
            } else {
                CredentialError::NotRoundTrip
            });
        }
        Ok(())
    }
}

/// The `period/` prefix of ykman's TOTP id grammar: its digits and the rest.
fn period_prefix(text: &str) -> Option<(&str, &str)> {
    text.split_once('/').filter(|(digits, after)| {
        !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) && !after.is_empty()
    })
}

/// Regex `^((\d+)/)?(([^:]+):)?(.+)$` written out by hand.
fn parse_totp_id(text: &str) -> CredentialId {
    let mut rest = text;
    let mut period = DEFAULT_PERIOD;
    if let Some((digits, after)) = period_prefix(rest) {
        // An absurd period falls back to the default rather than failing the listing.
        period = digits.parse().unwrap_or(DEFAULT_PERIOD);
        rest = after;
    }
    let (issuer, name) = match rest.split_once(':') {
        Some((issuer, name)) if !issuer.is_empty() && !name.is_empty() => {
            (Some(issuer.to_owned()), name.to_owned())
        }
        _ => (None, rest.to_owned()),
    };
    CredentialId {
        issuer,
        name,
        period,
    }
}

impl fmt::Display for CredentialId {
    /// ykman's `_format_cred_id`, except that a TOTP id whose `[issuer:]name` starts like a
    /// period (`120/grace`) gets an explicit `30/` so it does not read back as period 120.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rest = match &self.issuer {
            Some(issuer) => format!("{issuer}:{}", self.name),
            None => self.name.clone(),
        };
        let looks_like_period = period_prefix(&rest).is_some();
        if self.period != 0 && (self.period != DEFAULT_PERIOD || looks_like_period) {
            write!(f, "{}/", self.period)?;
        }
        f.write_str(&rest)
    }
}

/// A credential as the key describes it (LIST / CALCULATE ALL).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Credential {
    /// Raw id bytes as stored on the key: the handle for CALCULATE/DELETE/RENAME.
    #[serde(skip)]
    pub raw_id: Vec<u8>,
    pub id: CredentialId,
    pub oath_type: OathType,
    /// Known from LIST only.
    pub algorithm: Option<HashAlgorithm>,
    /// Known from CALCULATE ALL and PUT only.
    pub digits: Option<u8>,
    /// Known from CALCULATE ALL only (`7C`); None when the card did not say.
    pub touch: Option<bool>,
}

impl Credential {
    /// Steam Guard accounts (TOTP with issuer "Steam") get 5-character codes.
    pub fn is_steam(&self) -> bool {
        self.oath_type == OathType::Totp && self.id.issuer.as_deref() == Some("Steam")
    }

    pub fn id_string(&self) -> String {
        String::from_utf8_lossy(&self.raw_id).into_owned()
    }
}

/// Everything needed to PUT a credential. The secret is wiped on drop.
#[derive(Clone)]
pub struct CredentialData {
    pub id: CredentialId,
    pub oath_type: OathType,
    pub algorithm: HashAlgorithm,
    pub digits: u8,
    pub secret: Zeroizing<Vec<u8>>,
    pub counter: u32,
    pub touch: bool,
}

impl fmt::Debug for CredentialData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialData")
            .field("id", &self.id)
            .field("oath_type", &self.oath_type)
            .field("algorithm", &self.algorithm)
            .field("digits", &self.digits)
            .field("secret", &"<redacted>")
            .field("counter", &self.counter)
            .field("touch", &self.touch)
            .finish()
    }
}

impl CredentialData {
    pub fn totp(issuer: Option<&str>, name: &str, secret: &[u8]) -> Self {
        Self {
            id: CredentialId::new(issuer, name, OathType::Totp, DEFAULT_PERIOD),
            oath_type: OathType::Totp,
            algorithm: HashAlgorithm::Sha1,
            digits: DEFAULT_DIGITS,
            secret: Zeroizing::new(secret.to_vec()),
            counter: 0,
            touch: false,
        }
    }

    /// The checks ykman makes before PUT, independent of the key.
    pub fn validate(&self) -> Result<(), CredentialError> {
        self.id.validate()?;
        if !(6..=8).contains(&self.digits) {
            return Err(CredentialError::BadDigits(self.digits));
        }
        if self.oath_type == OathType::Totp && !(1..=300).contains(&self.id.period) {
            return Err(CredentialError::BadPeriod(self.id.period));
        }
        if self.secret.len() < 2 {
            return Err(CredentialError::SecretTooShort(self.secret.len()));
        }
        if self.oath_type == OathType::Totp && self.counter != 0 {
            return Err(CredentialError::CounterOnTotp);
        }
        Ok(())
    }

    /// The key as sent to the card: hashed if longer than a block, zero-padded to 14 bytes.
    pub fn key_for_card(&self) -> Zeroizing<Vec<u8>> {
        let mut key = Zeroizing::new(shorten_key(self.algorithm, &self.secret));
        if key.len() < MIN_KEY_LEN {
            key.resize(MIN_KEY_LEN, 0);
        }
        key
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_ykman() {
        let id = |i: Option<&str>, n, p| CredentialId::new(i, n, OathType::Totp, p).to_string();
        assert_eq!(id(Some("Issuer"), "name", 20), "20/Issuer:name");
        assert_eq!(id(Some("Issuer"), "name", 30), "Issuer:name");
        assert_eq!(id(None, "name", 20), "20/name");
        assert_eq!(
            CredentialId::new(Some("I"), "n", OathType::Hotp, 20).to_string(),
            "I:n"
        );
    }

    #[test]
    fn parses_like_ykman() {
        let t = |s: &str| CredentialId::parse(s.as_bytes(), OathType::Totp);
        assert_eq!(t("20/Issuer:name").period, 20);
        assert_eq!(t("20/Issuer:name").issuer.as_deref(), Some("Issuer"));
        assert_eq!(
            t("weird/Issuer:name").issuer.as_deref(),
            Some("weird/Issuer")
        );
        assert_eq!(t("name").issuer, None);
        assert_eq!(t("a:b:c").name, "b:c");
        assert_eq!(t(":x").name, ":x");
        let h = CredentialId::parse(b"Iss:n", OathType::Hotp);
        assert_eq!(
            (h.issuer.as_deref(), h.name.as_str(), h.period),
            (Some("Iss"), "n", 0)
        );
        assert!(t("_hidden:secret").is_hidden());
    }

    #[test]
    fn id_length_is_counted_in_utf8_bytes() {
        // The longest id any key stores is the Nitrokey 3's 127 bytes.
        let name = "é".repeat(63) + "x"; // 127 bytes
        assert!(
            CredentialId::new(None, &name, OathType::Totp, 30)
                .validate()
                .is_ok()
        );
        assert_eq!(
            CredentialId::new(Some("x"), &name, OathType::Totp, 30).validate(),
            Err(CredentialError::IdTooLong(129, 127))
        );
    }

    #[test]
    fn names_that_look_like_a_period_get_an_explicit_one() {
        let grace = CredentialId::new(None, "120/grace", OathType::Totp, 30);
        assert_eq!(grace.to_string(), "30/120/grace");
        assert_eq!(
            CredentialId::parse(&grace.to_bytes(), OathType::Totp),
            grace
        );
        let issuer = CredentialId::new(Some("120/Example"), "x", OathType::Totp, 60);
        assert_eq!(issuer.to_string(), "60/120/Example:x");
        assert_eq!(
            CredentialId::parse(&issuer.to_bytes(), OathType::Totp),
            issuer
        );
        let hotp = CredentialId::new(None, "120/grace", OathType::Hotp, 30);
        assert_eq!(hotp.to_string(), "120/grace");
        assert!(grace.validate().is_ok() && issuer.validate().is_ok() && hotp.validate().is_ok());
    }

    #[test]
    fn ids_that_cannot_read_back_are_refused() {
        let id = |i: Option<&str>, n: &str, t| CredentialId::new(i, n, t, 30);
        assert_eq!(
            id(None, "a:b", OathType::Totp).validate(),
            Err(CredentialError::ColonWithoutIssuer)
        );
        assert_eq!(
            id(None, "x:", OathType::Hotp).validate(),
            Err(CredentialError::ColonWithoutIssuer)
        );
        assert_eq!(
            id(Some("I"), "a\nb", OathType::Totp).validate(),
            Err(CredentialError::ControlCharacter)
        );
        let empty_issuer = CredentialId {
            issuer: Some(String::new()),
            name: "n".into(),
            period: 30,
        };
        assert_eq!(empty_issuer.validate(), Err(CredentialError::EmptyIssuer));
        assert!(id(None, ":x", OathType::Totp).validate().is_ok());
        assert!(id(Some("I"), "a:b", OathType::Hotp).validate().is_ok());
    }

    proptest::proptest! {
        /// Whatever passes validation reads back as the same issuer, name and period.
        #[test]
        fn every_valid_id_round_trips(
            issuer in proptest::option::of("[0-9/:a-zA-Z _é]{0,12}"),
            name in "[0-9/:a-zA-Z _é]{0,20}",
            totp in proptest::bool::ANY,
            period in 1u32..=300,
        ) {
            let oath_type = if totp { OathType::Totp } else { OathType::Hotp };
            let id = CredentialId::new(issuer.as_deref(), &name, oath_type, period);
            if id.validate().is_ok() {
                proptest::prop_assert_eq!(CredentialId::parse(&id.to_bytes(), oath_type), id);
            }
        }

        /// The refusals are rare: ids without ':' in the name always validate.
        #[test]
        fn ids_without_colons_in_the_name_are_accepted(
            issuer in proptest::option::of("[0-9/a-zA-Z _é]{1,12}"),
            name in "[0-9/a-zA-Z _é]{1,20}",
            period in 1u32..=300,
        ) {
            let id = CredentialId::new(issuer.as_deref(), &name, OathType::Totp, period);
            proptest::prop_assert_eq!(id.validate(), Ok(()));
        }
    }

    #[test]
    fn short_keys_are_padded_long_keys_hashed() {
        let mut data = CredentialData::totp(None, "a", b"ab");
        assert_eq!(data.key_for_card().len(), 14);
        data.secret = Zeroizing::new(vec![1; 65]);
        assert_eq!(data.key_for_card().len(), 20);
    }
}
