//! The field readers the app formats share. A [`Reader`] collects every problem of an entry
//! (naming the entry and the field, never the value) instead of stopping at the first.

use zeroize::Zeroizing;

use super::json::{Json, Obj};
use crate::import::{AccountSpec, InputError, InputErrors, Location};
use crate::otp::{
    HashAlgorithm, OathType, OtpAuthUri, STEAM_ISSUER, SecretError, parse_base32_secret,
};

/// Default digits and period (seconds) of every format here.
pub(super) const DEFAULT_DIGITS: u8 = 6;
pub(super) const DEFAULT_PERIOD: u32 = 30;
const MAX_PERIOD: u64 = 300;
/// Shorter seeds are refused: one byte is no secret.
pub(super) const MIN_SECRET_BYTES: usize = 2;

/// The three kinds of account the formats know; Steam is stored as Yubico's tools do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Totp,
    Hotp,
    Steam,
}

/// Reads the fields of one entry (or of the document's top), collecting every problem.
pub(super) struct Reader {
    pub at: Location,
    pub errors: Vec<InputError>,
}

impl Reader {
    pub(super) fn new(at: Location) -> Self {
        Self {
            at,
            errors: Vec::new(),
        }
    }

    pub(super) fn fail(&mut self, obj: &Obj, key: &str, problem: impl Into<String>) {
        let field = obj.field(key);
        self.errors.push(self.at.error(Some(&field), problem));
    }

    /// A nested object; absent is an error when `required`.
    pub(super) fn object<'a>(
        &mut self,
        obj: &Obj<'a>,
        key: &str,
        required: bool,
    ) -> Option<Obj<'a>> {
        match obj.get(key) {
            None if required => self.fail(obj, key, "missing"),
            None => {}
            Some(value) => match Obj::new(value, format!("{}.", obj.field(key))) {
                Some(nested) => return Some(nested),
                None => self.fail(obj, key, "expected an object"),
            },
        }
        None
    }

    /// A required list.
    pub(super) fn list<'a>(&mut self, obj: &Obj<'a>, key: &str) -> Option<&'a [Json]> {
        match obj.get(key) {
            Some(Json::Array(items)) => return Some(items),
            None => self.fail(obj, key, "missing"),
            Some(_) => self.fail(obj, key, "expected a list"),
        }
        None
    }

    /// Optional text: absent gives None, another type an error.
    pub(super) fn text<'a>(&mut self, obj: &Obj<'a>, key: &str) -> Option<&'a str> {
        match obj.get(key) {
            Some(Json::Str(text)) => Some(text.as_str()),
            None => None,
            Some(_) => {
                self.fail(obj, key, "expected text");
                None
            }
        }
    }

    /// Required, non-empty text (an account name).
    pub(super) fn required_text<'a>(&mut self, obj: &Obj<'a>, key: &str) -> Option<&'a str> {
        match obj.get(key) {
            None => self.fail(obj, key, "missing"),
            Some(_) => match self.text(obj, key) {
                Some("") => self.fail(obj, key, "empty"),
                text => return text,
            },
        }
        None
    }

    /// Optional text where empty means none (issuers, usernames); no control characters.
    pub(super) fn non_empty(&mut self, obj: &Obj, key: &str) -> Option<String> {
        let text = self.text(obj, key).filter(|text| !text.is_empty())?;
        if text.chars().any(char::is_control) {
            self.fail(obj, key, "contains a control character");
            return None;
        }
        Some(text.to_owned())
    }

    /// A required account name: non-empty, no control characters.
    pub(super) fn name(&mut self, obj: &Obj, key: &str) -> String {
        match obj.get(key) {
            None => self.fail(obj, key, "missing"),
            Some(Json::Str(text)) if text.is_empty() => self.fail(obj, key, "empty"),
            Some(_) => return self.non_empty(obj, key).unwrap_or_default(),
        }
        String::new()
    }

    /// An optional account type `TOTP`, `HOTP` or `STEAM` (any case); absent means TOTP.
    /// None when it is empty or unknown (reported).
    pub(super) fn kind(&mut self, obj: &Obj, key: &str) -> Option<Kind> {
        let Some(text) = self.text(obj, key) else {
            return obj.get(key).is_none().then_some(Kind::Totp);
        };
        match text.to_ascii_uppercase().as_str() {
            "TOTP" => Some(Kind::Totp),
            "HOTP" => Some(Kind::Hotp),
            "STEAM" => Some(Kind::Steam),
            "" => {
                self.fail(obj, key, "empty");
                None
            }
            _ => {
                self.fail(obj, key, "unknown type (expected TOTP, HOTP or STEAM)");
                None
            }
        }
    }

    /// A whole number (JSON number, or text of digits); absent gives `default`.
    fn number(
        &mut self,
        obj: &Obj,
        key: &str,
        default: u64,
        valid: impl Fn(u64) -> bool,
        problem: &str,
    ) -> u64 {
        let value = match obj.get(key) {
            None => return default,
            Some(Json::Uint(number)) => Some(*number),
            Some(Json::Str(text)) if !text.trim().starts_with('+') => text.trim().parse().ok(),
            Some(_) => None,
        };
        match value.filter(|number| valid(*number)) {
            Some(number) => number,
            None => {
                self.fail(obj, key, problem);
                default
            }
        }
    }

    pub(super) fn digits(&mut self, obj: &Obj, key: &str) -> u8 {
        let digits = self.number(
            obj,
            key,
            DEFAULT_DIGITS.into(),
            |d| (6..=8).contains(&d),
            "expected 6, 7 or 8",
        );
        u8::try_from(digits).unwrap_or(DEFAULT_DIGITS)
    }

    pub(super) fn period(&mut self, obj: &Obj, key: &str) -> u32 {
        let problem = "expected whole seconds from 1 to 300";
        let period = self.number(
            obj,
            key,
            DEFAULT_PERIOD.into(),
            |p| (1..=MAX_PERIOD).contains(&p),
            problem,
        );
        u32::try_from(period).unwrap_or(DEFAULT_PERIOD)
    }

    /// The key keeps a 32-bit counter.
    pub(super) fn counter(&mut self, obj: &Obj, key: &str) -> u64 {
        let max = u64::from(u32::MAX);
        self.number(
            obj,
            key,
            0,
            |c| c <= max,
            "expected a whole number from 0 to 4294967295",
        )
    }

    /// Optional algorithm name (`SHA1`, `sha-256`, …); absent gives SHA-1.
    pub(super) fn algorithm(&mut self, obj: &Obj, key: &str) -> HashAlgorithm {
        match obj.get(key) {
            None => HashAlgorithm::Sha1,
            Some(Json::Str(text)) if text.is_empty() => {
                self.fail(obj, key, "empty");
                HashAlgorithm::Sha1
            }
            Some(Json::Str(text)) => text.parse().unwrap_or_else(|_| {
                self.fail(obj, key, "expected SHA1, SHA256 or SHA512");
                HashAlgorithm::Sha1
            }),
            Some(_) => {
                self.fail(obj, key, "expected SHA1, SHA256 or SHA512");
                HashAlgorithm::Sha1
            }
        }
    }

    /// A required base32 seed (lenient: case, spaces, padding).
    pub(super) fn base32_secret(&mut self, obj: &Obj, key: &str) -> Zeroizing<Vec<u8>> {
        match obj.get(key) {
            None => self.fail(obj, key, "missing"),
            Some(Json::Str(text)) => match parse_base32_secret(text) {
                Ok(secret) => {
                    self.check_secret_length(obj, key, &secret);
                    return secret;
                }
                Err(error) => self.fail(obj, key, secret_problem(&error)),
            },
            Some(_) => self.fail(obj, key, "expected base32 text"),
        }
        Zeroizing::new(Vec::new())
    }

    pub(super) fn check_secret_length(&mut self, obj: &Obj, key: &str, secret: &[u8]) {
        if secret.is_empty() {
            self.fail(obj, key, "empty");
        } else if secret.len() < MIN_SECRET_BYTES {
            self.fail(obj, key, "too short (at least 2 bytes)");
        }
    }

    /// The account of `kind`, reading the algorithm (from `algorithm_key`), digits, period and
    /// counter from `obj` only where the kind uses them; Steam takes fixed parameters (see
    /// [`Self::check_steam`]). An unknown kind (None, already reported) reads nothing more,
    /// so one bad type is one error.
    pub(super) fn account(
        &mut self,
        kind: Option<Kind>,
        obj: &Obj,
        algorithm_key: &str,
        issuer: Option<String>,
        name: String,
        secret: Zeroizing<Vec<u8>>,
    ) -> OtpAuthUri {
        let kind = match kind {
            None => return steam_account(name, secret),
            Some(Kind::Steam) => {
                self.check_steam(obj, algorithm_key);
                return steam_account(name, secret);
            }
            Some(kind) => kind,
        };
        let algorithm = self.algorithm(obj, algorithm_key);
        let digits = self.digits(obj, "digits");
        let (oath_type, period, counter) = match kind {
            Kind::Hotp => (OathType::Hotp, DEFAULT_PERIOD, self.counter(obj, "counter")),
            _ => (OathType::Totp, self.period(obj, "period"), 0),
        };
        OtpAuthUri {
            oath_type,
            issuer,
            name,
            secret,
            algorithm,
            digits,
            period,
            counter,
        }
    }

    /// Steam codes are HMAC-SHA1 over 30 s steps, shown as 5 characters: stored parameters
    /// must agree (digits 5, or 6 as on the key) or the codes would be wrong.
    fn check_steam(&mut self, obj: &Obj, algorithm_key: &str) {
        if obj.get(algorithm_key).is_some()
            && self.algorithm(obj, algorithm_key) != HashAlgorithm::Sha1
        {
            self.fail(obj, algorithm_key, "a Steam account must use SHA1");
        }
        let problem = "a Steam account must use 5 (or 6) digits";
        self.number(
            obj,
            "digits",
            5,
            |digits| digits == 5 || digits == 6,
            problem,
        );
        let problem = "a Steam account must use 30 seconds";
        self.number(obj, "period", 30, |period| period == 30, problem);
    }

    /// Keeps `account` when this entry had no problem, else its problems.
    pub(super) fn finish(self, account: OtpAuthUri, found: &mut Found) {
        if self.errors.is_empty() {
            found.accounts.push(AccountSpec {
                at: self.at,
                account,
            });
        } else {
            found.errors.extend(self.errors);
        }
    }
}

/// A Steam account as Yubico's tools store it: TOTP, issuer "Steam", SHA-1, 6 digits, 30 s.
pub(super) fn steam_account(name: String, secret: Zeroizing<Vec<u8>>) -> OtpAuthUri {
    OtpAuthUri {
        oath_type: OathType::Totp,
        issuer: Some(STEAM_ISSUER.to_owned()),
        name,
        secret,
        algorithm: HashAlgorithm::Sha1,
        digits: DEFAULT_DIGITS,
        period: DEFAULT_PERIOD,
        counter: 0,
    }
}

/// Our words for a base32 problem (the error's own text may one day quote the input).
pub(super) fn secret_problem(error: &SecretError) -> String {
    match error {
        SecretError::Empty => "empty".to_owned(),
        SecretError::InvalidCharacter { position, .. } => {
            format!("not valid base32 (character {position})")
        }
        SecretError::BadLength { .. } => "not valid base32 (impossible length)".to_owned(),
    }
}

/// The accounts and problems of a whole export.
#[derive(Default)]
pub(super) struct Found {
    pub accounts: Vec<AccountSpec>,
    pub errors: Vec<InputError>,
}

impl Found {
    /// Every problem if there was any; an export without accounts is a problem at `list`.
    pub(super) fn into_result(
        self,
        at: &Location,
        list: &str,
    ) -> Result<Vec<AccountSpec>, InputErrors> {
        if !self.errors.is_empty() {
            Err(InputErrors(self.errors))
        } else if self.accounts.is_empty() {
            Err(at.error(Some(list), "no accounts in the export").into())
        } else {
            Ok(self.accounts)
        }
    }
}

/// Reads every entry of `list` (numbered from 1 at `at`) with `parse_one`, which gives the
/// entry's account, or None for an entry without one (its problems, if any, are reported). An
/// entry that is not an object is a problem; an entry with any problem gives no account.
pub(super) fn each_entry(
    list: &[Json],
    at: &Location,
    mut parse_one: impl FnMut(&mut Reader, &Obj) -> Option<OtpAuthUri>,
) -> Found {
    let mut found = Found::default();
    for (index, entry) in list.iter().enumerate() {
        let mut reader = Reader::new(at.at_entry(index + 1));
        let Some(entry) = Obj::new(entry, "") else {
            found
                .errors
                .push(reader.at.error(None, "expected an object"));
            continue;
        };
        match parse_one(&mut reader, &entry) {
            Some(account) => reader.finish(account, &mut found),
            None => found.errors.extend(reader.errors),
        }
    }
    found
}
