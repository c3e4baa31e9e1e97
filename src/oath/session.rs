//! A YKOATH session over one transport: SELECT first, then any instruction.
//!
//! One `Session` lives for one PC/SC transaction. The card forgets the selection and the
//! unlock when another program selects a different applet, so every operation starts here.

use std::borrow::Cow;

use tracing::debug;

use super::apdu::CommandApdu;
use super::auth::{self, AccessKey};
use super::code::{self, Code, NEVER};
use super::consts::*;
use super::credential::{Credential, CredentialData, CredentialId};
use super::device::{DeviceKind, Quirks, canokey};
use super::error::OathError;
use super::exchange::exchange;
use super::select::{SelectInfo, device_id_from_salt};
use super::status::StatusWord;
use super::tlv::{self, TlvReader};
use super::transport::Transport;
use super::wire::{encode_put, parse_calculate_all, parse_list};
use crate::otp::{HashAlgorithm, OathType};

/// One entry of a code listing: the credential and, when the key gave one, its code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeEntry {
    pub credential: Credential,
    pub code: Option<Code>,
}

pub struct Session<T: Transport> {
    transport: T,
    info: SelectInfo,
    quirks: Quirks,
    unlocked: bool,
}

impl<T: Transport> Session<T> {
    /// SELECT the OATH applet. `reader` (the PC/SC reader name) helps identify the vendor.
    pub fn open(mut transport: T, reader: Option<&str>) -> Result<Self, OathError> {
        let info = select(&mut transport)?;
        let kind = DeviceKind::detect(&info, reader);
        let quirks = Quirks::for_device(kind, info.version);
        debug!(version = %info.version, ?kind, locked = info.is_locked(), "selected OATH applet");
        Ok(Self {
            transport,
            info,
            quirks,
            unlocked: false,
        })
    }

    pub fn info(&self) -> &SelectInfo {
        &self.info
    }

    pub fn quirks(&self) -> &Quirks {
        &self.quirks
    }

    /// Stable identity of the key: ykman's id from the salt, or from the serial on keys
    /// whose salt changes at every SELECT.
    pub fn device_id(&self) -> String {
        match (&self.info.salt, self.info.serial) {
            (_, Some(serial)) if !self.quirks.stable_salt => {
                device_id_from_salt(&serial.to_be_bytes())
            }
            (Some(salt), _) => device_id_from_salt(salt),
            (None, Some(serial)) => device_id_from_salt(&serial.to_be_bytes()),
            (None, None) => "unknown".to_owned(),
        }
    }

    /// True while a password is set and not yet validated in this session.
    pub fn is_locked(&self) -> bool {
        self.info.is_locked() && !self.unlocked
    }

    pub fn has_password(&self) -> bool {
        self.info.is_locked()
    }

    /// Give the transport back (ends the session).
    pub fn into_transport(self) -> T {
        self.transport
    }

    pub fn derive_key(&self, password: &str) -> Result<AccessKey, OathError> {
        let salt = self.info.salt.as_deref().ok_or_else(|| {
            OathError::NotSupported("this key has no OATH password (no salt in SELECT)".into())
        })?;
        Ok(auth::derive_access_key(password, salt))
    }

    /// Derive the key from `password` and VALIDATE. Returns the key so callers may remember it.
    pub fn unlock(&mut self, password: &str) -> Result<AccessKey, OathError> {
        let key = self.derive_key(password)?;
        self.validate(key.as_ref())?;
        Ok(key)
    }

    /// Mutual authentication: prove the key, and check the card proves it too.
    pub fn validate(&mut self, key: &[u8]) -> Result<(), OathError> {
        let Some(card_challenge) = self.info.challenge.clone() else {
            return Err(OathError::NoPassword);
        };
        let algorithm = self.info.key_algorithm;
        let host_challenge = auth::random_challenge()?;
        let mut data = Vec::with_capacity(64);
        tlv::write(
            &mut data,
            TAG_RESPONSE,
            &auth::prove(algorithm, key, &card_challenge),
        )?;
        tlv::write(&mut data, TAG_CHALLENGE, &host_challenge)?;
        let response = exchange(
            &mut self.transport,
            &CommandApdu::new(INS_VALIDATE, 0, 0, data),
        )?;
        match response.sw {
            StatusWord::Success => {}
            StatusWord::WrongData => return Err(OathError::WrongPassword),
            StatusWord::NoSuchObject => return Err(OathError::NoPassword),
            StatusWord::InsNotSupported => {
                return Err(OathError::NotSupported("OATH password".into()));
            }
            sw => {
                return Err(OathError::Card {
                    instruction: "VALIDATE",
                    sw,
                });
            }
        }
        let proof = TlvReader::new(&response.data).expect(TAG_RESPONSE)?;
        if !auth::verify_proof(algorithm, key, &host_challenge, proof) {
            return Err(OathError::BadCardProof);
        }
        self.unlocked = true;
        Ok(())
    }

    fn require_unlocked(&self) -> Result<(), OathError> {
        if self.is_locked() {
            Err(OathError::Locked)
        } else {
            Ok(())
        }
    }

    /// Map the status words every authenticated instruction shares.
    fn fail(&self, instruction: &'static str, sw: StatusWord) -> OathError {
        match sw {
            StatusWord::SecurityStatusNotSatisfied if self.is_locked() => OathError::Locked,
            sw if self.quirks.is_not_found(sw) => OathError::NotFound,
            StatusWord::MemoryFailure => OathError::Corrupted,
            StatusWord::InsNotSupported => OathError::NotSupported(instruction.to_lowercase()),
            sw => OathError::Card { instruction, sw },
        }
    }

    /// LIST: every credential with its type and algorithm.
    pub fn list(&mut self) -> Result<Vec<Credential>, OathError> {
        self.require_unlocked()?;
        let with_properties = self.quirks.list_properties;
        let data = if with_properties { vec![0x01] } else { vec![] };
        let response = exchange(&mut self.transport, &CommandApdu::new(INS_LIST, 0, 0, data))?;
        if response.sw != StatusWord::Success {
            return Err(self.fail("LIST", response.sw));
        }
        parse_list(&response.data, with_properties)
    }

    /// LIST, plus touch and digits from CALCULATE ALL on keys that have it (LIST alone does
    /// not tell them; CALCULATE ALL neither bumps HOTP counters nor waits for touch).
    pub fn list_detailed(&mut self, timestamp: u64) -> Result<Vec<Credential>, OathError> {
        Ok(self.list_with_codes(timestamp)?.0)
    }

    /// [`Self::list_detailed`], plus the CALCULATE ALL answer it read on the way (None on
    /// keys without CALCULATE ALL), so a caller can keep those codes instead of asking again.
    pub fn list_with_codes(
        &mut self,
        timestamp: u64,
    ) -> Result<(Vec<Credential>, Option<Vec<CodeEntry>>), OathError> {
        let mut credentials = self.list()?;
        if !self.quirks.calculate_all {
            return Ok((credentials, None));
        }
        let details = self.calculate_all(timestamp)?;
        for credential in &mut credentials {
            if let Some(entry) = details
                .iter()
                .find(|e| e.credential.raw_id == credential.raw_id)
            {
                credential.touch = entry.credential.touch;
                credential.digits = entry.credential.digits;
            }
        }
        Ok((credentials, Some(details)))
    }

    /// Codes for every credential at `timestamp` in one pass. Touch and HOTP credentials come
    /// back without a code; TOTPs with a non-30 s period are recomputed singly.
    pub fn calculate_all(&mut self, timestamp: u64) -> Result<Vec<CodeEntry>, OathError> {
        self.require_unlocked()?;
        if !self.quirks.calculate_all {
            return self.calculate_all_by_list(timestamp);
        }
        let mut data = Vec::with_capacity(10);
        tlv::write(
            &mut data,
            TAG_CHALLENGE,
            &totp_challenge(timestamp, DEFAULT_PERIOD),
        )?;
        let command = CommandApdu::new(INS_CALCULATE_ALL, 0, P2_TRUNCATED, data);
        let response = exchange(&mut self.transport, &command)?;
        match response.sw {
            StatusWord::Success => {}
            StatusWord::InsNotSupported | StatusWord::ConditionsNotSatisfied => {
                debug!("CALCULATE ALL unsupported; falling back to LIST + CALCULATE");
                self.quirks.calculate_all = false;
                return self.calculate_all_by_list(timestamp);
            }
            sw => return Err(self.fail("CALCULATE ALL", sw)),
        }
        let mut entries = parse_calculate_all(&response.data, timestamp)?;
        for entry in &mut entries {
            // Steam and non-30 s accounts: CALCULATE ALL's numeric 30 s code is not theirs.
            if entry.code.is_some()
                && (entry.credential.is_steam() || entry.credential.id.period != DEFAULT_PERIOD)
            {
                entry.code = Some(self.calculate_code(&entry.credential, timestamp)?);
            }
            if entry.credential.oath_type == OathType::Hotp && !self.quirks.hotp_touch_reported {
                // `77` says nothing about touch on this key (CanoKey): unknown, not "no".
                entry.credential.touch = None;
            }
        }
        Ok(entries)
    }

    /// Keys without CALCULATE ALL: LIST, then CALCULATE each TOTP known not to need touch.
    fn calculate_all_by_list(&mut self, timestamp: u64) -> Result<Vec<CodeEntry>, OathError> {
        let credentials = self.list()?;
        let mut entries = Vec::with_capacity(credentials.len());
        for credential in credentials {
            let code = if credential.oath_type == OathType::Totp
                && credential.touch == Some(false)
                && (credential.algorithm != Some(HashAlgorithm::Sha512) || self.quirks.sha512)
            {
                Some(self.calculate_code(&credential, timestamp)?)
            } else {
                None
            };
            entries.push(CodeEntry { credential, code });
        }
        Ok(entries)
    }

    /// CALCULATE one credential (truncated). Waits for touch if the key asks for it.
    pub fn calculate(
        &mut self,
        credential: &Credential,
        timestamp: u64,
    ) -> Result<Code, OathError> {
        let (challenge, from, to) = match credential.oath_type {
            OathType::Totp => {
                let period = credential.id.period.max(1);
                let (from, to) = code::totp_window(timestamp, period);
                (totp_challenge(timestamp, period).to_vec(), from, to)
            }
            OathType::Hotp => (Vec::new(), timestamp, NEVER),
        };
        let data = self.calculate_raw(&credential.raw_id, &challenge, P2_TRUNCATED)?;
        let value = TlvReader::new(&data).expect(TAG_TRUNCATED)?;
        Code::from_truncated(value, from, to)
            .ok_or_else(|| OathError::Malformed("truncated response is not 5 bytes".into()))
    }

    /// The code a user expects for `credential`: Steam's alphabet for Steam accounts, the
    /// truncated numeric code otherwise.
    pub fn calculate_code(
        &mut self,
        credential: &Credential,
        timestamp: u64,
    ) -> Result<Code, OathError> {
        if credential.is_steam() {
            self.calculate_steam(credential, timestamp)
        } else {
            self.calculate(credential, timestamp)
        }
    }

    /// The full HMAC for a challenge (P2=00); also the basis of Steam codes.
    pub fn calculate_full(
        &mut self,
        raw_id: &[u8],
        challenge: &[u8],
    ) -> Result<Vec<u8>, OathError> {
        if !self.quirks.full_response {
            return Err(OathError::NotSupported("full HMAC responses".into()));
        }
        let data = self.calculate_raw(raw_id, challenge, P2_FULL)?;
        let value = TlvReader::new(&data).expect(TAG_RESPONSE)?;
        value
            .split_first()
            .map(|(_digits, hmac)| hmac.to_vec())
            .ok_or_else(|| OathError::Malformed("empty full response".into()))
    }

    /// Steam Guard code: full response at the 30 s step, Steam alphabet.
    pub fn calculate_steam(
        &mut self,
        credential: &Credential,
        timestamp: u64,
    ) -> Result<Code, OathError> {
        let challenge = totp_challenge(timestamp, DEFAULT_PERIOD);
        let value = if self.quirks.raw_truncation && !self.quirks.full_response {
            let data = self.calculate_raw(&credential.raw_id, &challenge, P2_TRUNCATED)?;
            match TlvReader::new(&data).expect(TAG_TRUNCATED)? {
                &[_digits, a, b, c, d] => u32::from_be_bytes([a, b, c, d]),
                _ => {
                    return Err(OathError::Malformed(
                        "truncated response is not 5 bytes".into(),
                    ));
                }
            }
        } else {
            crate::otp::dynamic_truncate(&self.calculate_full(&credential.raw_id, &challenge)?)
        };
        let (from, to) = code::totp_window(timestamp, DEFAULT_PERIOD);
        Ok(Code {
            value: code::steam_code(value),
            valid_from: from,
            valid_to: to,
        })
    }

    fn calculate_raw(
        &mut self,
        raw_id: &[u8],
        challenge: &[u8],
        p2: u8,
    ) -> Result<Vec<u8>, OathError> {
        self.require_unlocked()?;
        let mut data = Vec::with_capacity(raw_id.len() + challenge.len() + 4);
        tlv::write(&mut data, TAG_NAME, raw_id)?;
        tlv::write(&mut data, TAG_CHALLENGE, challenge)?;
        let response = exchange(
            &mut self.transport,
            &CommandApdu::new(INS_CALCULATE, 0, p2, data),
        )?;
        match response.sw {
            StatusWord::Success => Ok(response.data),
            // After a successful unlock 6982 can only mean the touch timed out.
            StatusWord::SecurityStatusNotSatisfied | StatusWord::ConditionsNotSatisfied
                if !self.is_locked() =>
            {
                Err(OathError::TouchTimeout)
            }
            StatusWord::FunctionNotSupported => {
                Err(OathError::NotSupported("this algorithm".into()))
            }
            sw => Err(self.fail("CALCULATE", sw)),
        }
    }

    /// Check what this key supports before writing anything.
    pub fn check_supported(&self, data: &CredentialData) -> Result<(), OathError> {
        data.validate()?;
        let id_len = data.id.to_bytes().len();
        if id_len > self.quirks.max_id_len {
            return Err(OathError::Credential(
                super::credential::CredentialError::IdTooLong(id_len, self.quirks.max_id_len),
            ));
        }
        if let Some(max) = self.quirks.max_key_len
            && data.key_for_card().len() > max
        {
            return Err(OathError::NotSupported(format!(
                "seeds over {max} bytes for {}",
                data.algorithm.name()
            )));
        }
        if data.algorithm == HashAlgorithm::Sha512 && !self.quirks.sha512 {
            return Err(OathError::NotSupported("SHA-512".into()));
        }
        if data.touch && !self.quirks.touch {
            return Err(OathError::NotSupported("require-touch accounts".into()));
        }
        Ok(())
    }

    /// PUT a credential. With `overwrite` an existing id is replaced (deleted first on keys
    /// that refuse to overwrite); without it an existing id is an error and nothing changes.
    pub fn put(&mut self, data: &CredentialData, overwrite: bool) -> Result<Credential, OathError> {
        self.require_unlocked()?;
        self.check_supported(data)?;
        let raw_id = data.id.to_bytes();
        let existing = self.list()?;
        let exists = existing.iter().any(|c| c.raw_id == raw_id);
        if exists && !overwrite {
            return Err(OathError::AlreadyExists);
        }
        if !exists
            && let Some(capacity) = self.quirks.capacity
            && existing.len() >= capacity
        {
            return Err(OathError::NoSpace);
        }
        self.put_planned(data, exists)
    }

    /// `data` as this key must store it: on keys that increment a HOTP counter before
    /// computing (CanoKey) the counter is written one lower, so the first code is RFC
    /// 4226's for the requested counter (0 stays 0: see [`Quirks::hotp_increments_first`]).
    /// Apply it exactly once per PUT, right before encoding.
    pub fn for_card<'a>(&self, data: &'a CredentialData) -> Cow<'a, CredentialData> {
        let imf = self.quirks.hotp_imf(data.counter);
        if data.oath_type != OathType::Hotp || imf == data.counter {
            return Cow::Borrowed(data);
        }
        let mut adjusted = data.clone();
        adjusted.counter = imf;
        Cow::Owned(adjusted)
    }

    /// PUT a credential whose checks were made by the caller (an import plan): no LIST.
    /// `replaces` says the id is on the key; keys that refuse to overwrite get DELETE first.
    pub fn put_planned(
        &mut self,
        data: &CredentialData,
        replaces: bool,
    ) -> Result<Credential, OathError> {
        self.require_unlocked()?;
        let adjusted = self.for_card(data);
        let data: &CredentialData = &adjusted;
        let raw_id = data.id.to_bytes();
        if replaces && !self.quirks.overwrite {
            self.delete_raw(&raw_id)?;
        }
        let command = CommandApdu::new(INS_PUT, 0, 0, encode_put(data)?);
        let response = exchange(&mut self.transport, &command)?;
        match response.sw {
            StatusWord::Success => {}
            StatusWord::NoSpace | StatusWord::Aborted => return Err(OathError::NoSpace),
            StatusWord::WrongData => return Err(OathError::Rejected),
            sw if self.quirks.is_duplicate(sw) => return Err(OathError::AlreadyExists),
            StatusWord::SecurityStatusNotSatisfied if !self.is_locked() => {
                return Err(OathError::TouchTimeout);
            }
            sw => return Err(self.fail("PUT", sw)),
        }
        Ok(Credential {
            raw_id,
            id: data.id.clone(),
            oath_type: data.oath_type,
            algorithm: Some(data.algorithm),
            digits: Some(data.digits),
            touch: Some(data.touch),
        })
    }

    pub fn delete(&mut self, credential: &Credential) -> Result<(), OathError> {
        self.require_unlocked()?;
        self.delete_raw(&credential.raw_id)
    }

    /// DELETE by the raw id bytes (what LIST returned, or what a PUT wrote).
    pub fn delete_raw(&mut self, raw_id: &[u8]) -> Result<(), OathError> {
        self.require_unlocked()?;
        let command = CommandApdu::new(INS_DELETE, 0, 0, tlv::encode(TAG_NAME, raw_id)?);
        let response = exchange(&mut self.transport, &command)?;
        match response.sw {
            StatusWord::Success => Ok(()),
            StatusWord::SecurityStatusNotSatisfied if !self.is_locked() => {
                Err(OathError::TouchTimeout)
            }
            sw => Err(self.fail("DELETE", sw)),
        }
    }

    /// RENAME keeps the secret and type; `new_id` must not exist yet.
    pub fn rename(
        &mut self,
        credential: &Credential,
        new_id: &CredentialId,
    ) -> Result<Credential, OathError> {
        self.require_unlocked()?;
        if !self.quirks.rename {
            return Err(OathError::NotSupported(format!(
                "renaming accounts ({} {})",
                self.quirks.kind.name(),
                self.info.version
            )));
        }
        // A rename keeps the credential's period (ykman does the same).
        let mut new_id = new_id.clone();
        new_id.period = credential.id.period;
        new_id.validate()?;
        let new_raw = new_id.to_bytes();
        if new_raw.len() > self.quirks.max_id_len {
            return Err(OathError::Credential(
                super::credential::CredentialError::IdTooLong(
                    new_raw.len(),
                    self.quirks.max_id_len,
                ),
            ));
        }
        if self.list()?.iter().any(|c| c.raw_id == new_raw) {
            return Err(OathError::AlreadyExists);
        }
        let mut data = tlv::encode(TAG_NAME, &credential.raw_id)?;
        tlv::write(&mut data, TAG_NAME, &new_raw)?;
        let response = exchange(
            &mut self.transport,
            &CommandApdu::new(INS_RENAME, 0, 0, data),
        )?;
        match response.sw {
            StatusWord::Success => Ok(Credential {
                raw_id: new_raw,
                id: new_id,
                ..credential.clone()
            }),
            StatusWord::WrongData => Err(OathError::Rejected),
            sw => Err(self.fail("RENAME", sw)),
        }
    }

    /// SET CODE with a key derived from `password`; returns the key.
    pub fn set_password(&mut self, password: &str) -> Result<AccessKey, OathError> {
        self.require_unlocked()?;
        if !self.quirks.password {
            return Err(OathError::NotSupported("OATH password".into()));
        }
        let key = self.derive_key(password)?;
        let challenge = auth::random_challenge()?;
        let mut key_field = zeroize::Zeroizing::new(Vec::with_capacity(17));
        key_field.push(OathType::Totp.code() | HashAlgorithm::Sha1.code());
        key_field.extend_from_slice(key.as_ref());
        let mut data = zeroize::Zeroizing::new(Vec::with_capacity(64));
        tlv::write(&mut data, TAG_KEY, &key_field)?;
        tlv::write(&mut data, TAG_CHALLENGE, &challenge)?;
        tlv::write(
            &mut data,
            TAG_RESPONSE,
            &auth::prove(HashAlgorithm::Sha1, key.as_ref(), &challenge),
        )?;
        let command = CommandApdu::new(INS_SET_CODE, 0, 0, data.to_vec());
        self.set_code(command)?;
        Ok(key)
    }

    /// SET CODE with an empty key: remove the password.
    pub fn clear_password(&mut self) -> Result<(), OathError> {
        self.require_unlocked()?;
        if !self.quirks.password {
            return Err(OathError::NotSupported("OATH password".into()));
        }
        self.set_code(CommandApdu::new(INS_SET_CODE, 0, 0, vec![TAG_KEY, 0x00]))
    }

    fn set_code(&mut self, command: CommandApdu) -> Result<(), OathError> {
        let response = exchange(&mut self.transport, &command)?;
        match response.sw {
            StatusWord::Success => {}
            sw => return Err(self.fail("SET CODE", sw)),
        }
        // The new state (locked or not) shows in a fresh SELECT; we stay authenticated.
        let unlocked = self.unlocked || !self.info.is_locked();
        self.info = select(&mut self.transport)?;
        self.unlocked = unlocked && self.info.is_locked();
        Ok(())
    }

    /// RESET: wipe every credential and the password; the key gets a new identity.
    /// Keys without an OATH RESET (CanoKey) are refused with the reason, before any APDU;
    /// they reset through [`Session::reset_with_admin_pin`].
    pub fn reset(&mut self) -> Result<(), OathError> {
        if self.quirks.admin_reset {
            return Err(OathError::NotSupported(format!(
                "OATH RESET on a {}: its OATH applet has none; it is reset through its admin \
                 applet with the admin PIN, which `oathbridge reset` asks for",
                self.quirks.kind.name()
            )));
        }
        let command = CommandApdu::new(INS_RESET, RESET_P1, RESET_P2, Vec::new());
        let response = exchange(&mut self.transport, &command)?;
        match response.sw {
            StatusWord::Success => {}
            StatusWord::SecurityStatusNotSatisfied => return Err(OathError::TouchTimeout),
            sw => return Err(self.fail("RESET", sw)),
        }
        self.info = select(&mut self.transport)?;
        self.unlocked = false;
        Ok(())
    }

    /// Reset the OATH applet of a key that has no OATH RESET (CanoKey): SELECT its admin
    /// applet, VERIFY the admin `pin`, reset OATH; then SELECT OATH again, also after a
    /// failure (the session stays usable, locked again if a password is set). A wrong PIN
    /// is [`OathError::WrongPassword`] (the card counts it: after 3 in a row the admin
    /// applet is blocked and answers 6983).
    pub fn reset_with_admin_pin(&mut self, pin: &[u8]) -> Result<(), OathError> {
        if !self.quirks.admin_reset {
            return self.reset();
        }
        if !canokey::ADMIN_PIN_LEN.contains(&pin.len()) {
            return Err(OathError::WrongPassword);
        }
        let result = admin_reset_oath(&mut self.transport, pin);
        let info = select(&mut self.transport);
        result?;
        self.info = info?;
        self.unlocked = false;
        Ok(())
    }
}

/// The CanoKey admin applet: SELECT, VERIFY PIN, RESET OATH.
fn admin_reset_oath<T: Transport>(transport: &mut T, pin: &[u8]) -> Result<(), OathError> {
    let mut send = |instruction, ins, p1, data: Vec<u8>| {
        let sw = exchange(&mut *transport, &CommandApdu::new(ins, p1, 0, data))?.sw;
        match sw {
            StatusWord::Success => Ok(()),
            StatusWord::Other(sw)
                if ins == canokey::INS_VERIFY_PIN
                    && sw > canokey::SW_PIN_RETRIES
                    && sw <= canokey::SW_PIN_RETRIES | 0x0F =>
            {
                Err(OathError::WrongPassword)
            }
            sw => Err(OathError::Card { instruction, sw }),
        }
    };
    send(
        "SELECT admin applet",
        INS_SELECT,
        P1_SELECT_BY_AID,
        canokey::ADMIN_AID.to_vec(),
    )?;
    send("VERIFY admin PIN", canokey::INS_VERIFY_PIN, 0, pin.to_vec())?;
    send("admin RESET OATH", canokey::INS_RESET_OATH, 0, Vec::new())
}

fn select<T: Transport>(transport: &mut T) -> Result<SelectInfo, OathError> {
    let command = CommandApdu::new(INS_SELECT, P1_SELECT_BY_AID, 0, AID.to_vec());
    let response = exchange(transport, &command)?;
    match response.sw {
        StatusWord::Success => SelectInfo::parse(&response.data),
        sw => Err(OathError::NoOathApplet(sw)),
    }
}

/// The TOTP challenge: floor(t / period) as 8 big-endian bytes.
pub fn totp_challenge(timestamp: u64, period: u32) -> [u8; 8] {
    crate::otp::totp_counter(timestamp, period).to_be_bytes()
}
