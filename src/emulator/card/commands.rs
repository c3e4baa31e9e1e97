//! One handler per YKOATH instruction. Each returns the response data (SW 9000) or the
//! error status word; chaining and faults are applied by the caller.

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::{Card, random_bytes};
use crate::emulator::state::{AccessKey, PersistentState, StoredCredential};
use crate::emulator::stats::CommandKind;
use crate::oath::StatusWord;
use crate::oath::apdu::CommandApdu;
use crate::oath::consts::{
    ACCESS_KEY_LEN, AID, CHALLENGE_LEN, P2_FULL, P2_TRUNCATED, PROP_ONLY_INCREASING,
    PROP_REQUIRE_TOUCH, RESET_P1, RESET_P2, TAG_ALGORITHM, TAG_CHALLENGE, TAG_HOTP, TAG_IMF,
    TAG_KEY, TAG_NAME, TAG_NAME_LIST, TAG_PROPERTY, TAG_RESPONSE, TAG_SERIAL, TAG_TOUCH,
    TAG_TRUNCATED, TAG_VERSION,
};
use crate::oath::tlv::{self, Tlv, TlvReader};
use crate::otp::{HashAlgorithm, OathType, dynamic_truncate, hmac};

/// Nitrokey password-safe TLVs PUT may carry (login, password, metadata); ignored here.
const NITROKEY_PWS_TAGS: [u8; 3] = [0x83, 0x84, 0x85];
/// Largest access key SET CODE accepts (one hash block).
const MAX_ACCESS_KEY_LEN: usize = 64;
/// Largest HMAC key a CanoKey stores (`MAX_KEY_LEN` 66 minus type and digits).
const CANOKEY_MAX_KEY_LEN: usize = 64;

type Reply = Result<Vec<u8>, StatusWord>;

fn parse_tlvs(data: &[u8]) -> Result<Vec<Tlv<'_>>, StatusWord> {
    tlv::parse_all(data).map_err(|_| StatusWord::WrongData)
}

fn required<'a>(elements: &[Tlv<'a>], tag: u8) -> Result<&'a [u8], StatusWord> {
    tlv::find(elements, tag).ok_or(StatusWord::WrongData)
}

/// Append a TLV; every value the card builds is far below the 64 KiB TLV limit.
fn put_tlv(out: &mut Vec<u8>, tag: u8, value: &[u8]) -> Result<(), StatusWord> {
    tlv::write(out, tag, value).map_err(|_| StatusWord::MemoryFailure)
}

impl Card {
    pub(super) fn dispatch(&mut self, apdu: &CommandApdu) -> Reply {
        let nitrokey = self.profile.is_nitrokey();
        let kind = CommandKind::classify(apdu.ins, apdu.p1);
        // The Nitrokey routes none of these (no password, no rename, CALCULATE ALL compiled out).
        if nitrokey
            && matches!(
                kind,
                CommandKind::SetCode
                    | CommandKind::Validate
                    | CommandKind::Rename
                    | CommandKind::CalculateAll
            )
        {
            return Err(StatusWord::InsNotSupported);
        }
        if self.profile.is_canokey() && kind == CommandKind::Reset {
            // No OATH RESET on a CanoKey (C3): it lives in the admin applet.
            self.require_auth()?;
            return Err(StatusWord::InsNotSupported);
        }
        match kind {
            CommandKind::Reset => self.reset_applet(apdu.p1, apdu.p2),
            CommandKind::Validate => self.validate(&apdu.data),
            CommandKind::Select | CommandKind::SendRemaining | CommandKind::Other => {
                Err(StatusWord::InsNotSupported)
            }
            _ => {
                self.require_auth()?;
                match kind {
                    CommandKind::Put => self.put(&apdu.data),
                    CommandKind::Delete => self.delete(&apdu.data),
                    CommandKind::SetCode => self.set_code(&apdu.data),
                    CommandKind::Rename => self.rename(&apdu.data),
                    CommandKind::List => self.list(&apdu.data),
                    CommandKind::Calculate => self.calculate(apdu.p2, &apdu.data),
                    CommandKind::CalculateAll => self.calculate_all(apdu.p1, apdu.p2, &apdu.data),
                    _ => Err(StatusWord::InsNotSupported),
                }
            }
        }
    }

    /// SELECT by AID. Prefix match: Yubico's Android app sends an 8-byte AID.
    pub(super) fn select(&mut self, aid: &[u8]) -> Reply {
        if !aid.starts_with(&AID) {
            return Err(StatusWord::NotFound);
        }
        self.session.selected = true;
        self.session.admin_selected = false;
        self.session.validated = false;
        self.session.select_challenge = None;
        let mut out = Vec::new();
        put_tlv(&mut out, TAG_VERSION, &self.version)?;
        if self.profile.is_nitrokey() {
            // Nitrokey quirk: a new salt (hence device id) on every SELECT, never persisted.
            self.state.salt = random_bytes();
            put_tlv(&mut out, TAG_NAME, &self.state.salt)?;
            put_tlv(&mut out, TAG_SERIAL, &self.serial.to_be_bytes())?;
            return Ok(out);
        }
        put_tlv(&mut out, TAG_NAME, &self.state.salt)?;
        if let Some(key) = &self.state.access_key {
            let challenge: [u8; CHALLENGE_LEN] = random_bytes();
            self.session.select_challenge = Some(challenge);
            put_tlv(&mut out, TAG_CHALLENGE, &challenge)?;
            put_tlv(&mut out, TAG_ALGORITHM, &[key.algorithm.code()])?;
        }
        Ok(out)
    }

    fn put(&mut self, data: &[u8]) -> Reply {
        let nitrokey = self.profile.is_nitrokey();
        let canokey = self.profile.is_canokey();
        let mut id = None;
        let mut key_field = None;
        let mut properties = 0u8;
        let mut imf = None;
        let mut reader = TlvReader::new(data);
        while let Some(tag) = reader.peek_tag() {
            if tag == TAG_PROPERTY {
                // `78 <prop>`: a bare byte, not a TLV.
                let (_, byte) = reader
                    .read_tag_and_byte()
                    .map_err(|_| StatusWord::WrongData)?;
                properties = byte;
                continue;
            }
            let element = reader.read().map_err(|_| StatusWord::WrongData)?;
            match element.tag {
                TAG_NAME => id = Some(element.value),
                TAG_KEY => key_field = Some(element.value),
                TAG_IMF => imf = Some(element.value),
                t if nitrokey && NITROKEY_PWS_TAGS.contains(&t) => {}
                _ => return Err(StatusWord::WrongData),
            }
        }
        let id = id.ok_or(StatusWord::WrongData)?;
        if id.is_empty() || id.len() > self.profile.max_id_len() {
            return Err(StatusWord::WrongData);
        }
        let Some(&[type_and_algo, digits, ref key @ ..]) = key_field else {
            return Err(StatusWord::WrongData);
        };
        let oath_type = OathType::from_code(type_and_algo & 0xF0).ok_or(StatusWord::WrongData)?;
        let algorithm =
            HashAlgorithm::from_code(type_and_algo & 0x0F).ok_or(StatusWord::WrongData)?;
        if !(1..=10).contains(&digits)
            || key.len() < self.profile.min_key_len()
            || key.len() > algorithm.block_size()
        {
            return Err(StatusWord::WrongData);
        }
        // CanoKey: 4 to 8 digits, keys up to 64 bytes, only the known property flags.
        if canokey
            && (!(4..=8).contains(&digits)
                || key.len() > CANOKEY_MAX_KEY_LEN
                || properties & !(PROP_ONLY_INCREASING | PROP_REQUIRE_TOUCH) != 0)
        {
            return Err(StatusWord::WrongData);
        }
        let counter = match imf {
            None => 0,
            Some(&[a, b, c, d]) => u64::from(u32::from_be_bytes([a, b, c, d])),
            Some(_) => return Err(StatusWord::WrongData),
        };
        if (nitrokey || canokey) && imf.is_some() && oath_type == OathType::Totp {
            return Err(StatusWord::WrongData);
        }
        let existing = self.state.position(id);
        if existing.is_some()
            && let Some(sw) = self.profile.duplicate()
        {
            // Nitrokey (6983) and CanoKey (6985) never overwrite: delete first.
            return Err(sw);
        }
        if existing.is_none() && self.state.credentials.len() >= self.profile.capacity() {
            return Err(StatusWord::NoSpace);
        }
        if nitrokey && properties & PROP_REQUIRE_TOUCH != 0 {
            self.await_touch()?;
        }
        let credential = StoredCredential {
            id: id.to_vec(),
            oath_type,
            algorithm,
            digits,
            key: Zeroizing::new(key.to_vec()),
            properties,
            counter,
        };
        match existing {
            Some(index) => self.state.credentials[index] = credential,
            None => self.state.credentials.push(credential),
        }
        self.persist()?;
        Ok(Vec::new())
    }

    fn delete(&mut self, data: &[u8]) -> Reply {
        let elements = parse_tlvs(data)?;
        let id = required(&elements, TAG_NAME)?;
        let index = self.state.position(id).ok_or(self.profile.not_found())?;
        if self.profile.is_nitrokey() {
            self.await_touch()?;
        }
        self.state.credentials.remove(index);
        self.persist()?;
        Ok(Vec::new())
    }

    fn rename(&mut self, data: &[u8]) -> Reply {
        let elements = parse_tlvs(data)?;
        let [old, new] = elements.as_slice() else {
            return Err(StatusWord::WrongData);
        };
        if old.tag != TAG_NAME || new.tag != TAG_NAME {
            return Err(StatusWord::WrongData);
        }
        if new.value.is_empty() || new.value.len() > self.profile.max_id_len() {
            return Err(StatusWord::WrongData);
        }
        let index = self
            .state
            .position(old.value)
            .ok_or(self.profile.not_found())?;
        if self.state.position(new.value).is_some() {
            return Err(if self.profile.is_canokey() {
                StatusWord::ConditionsNotSatisfied
            } else {
                StatusWord::WrongData
            });
        }
        self.state.credentials[index].id = new.value.to_vec();
        self.persist()?;
        Ok(Vec::new())
    }

    fn list(&mut self, data: &[u8]) -> Reply {
        // Nitrokey extension: LIST with data `01` appends a properties byte (bit0 = touch).
        let with_properties = self.profile.is_nitrokey() && data == [0x01];
        let mut out = Vec::new();
        for credential in &self.state.credentials {
            let mut entry = Vec::with_capacity(credential.id.len() + 2);
            entry.push(credential.type_and_algorithm());
            entry.extend_from_slice(&credential.id);
            if with_properties {
                entry.push(u8::from(credential.requires_touch()));
            }
            put_tlv(&mut out, TAG_NAME_LIST, &entry)?;
        }
        Ok(out)
    }

    fn calculate(&mut self, p2: u8, data: &[u8]) -> Reply {
        let nitrokey = self.profile.is_nitrokey();
        if nitrokey && p2 == P2_FULL {
            return Err(StatusWord::InsNotSupported);
        }
        if p2 != P2_FULL && p2 != P2_TRUNCATED {
            return Err(StatusWord::WrongParameters);
        }
        let elements = parse_tlvs(data)?;
        let id = required(&elements, TAG_NAME)?;
        let challenge = required(&elements, TAG_CHALLENGE)?;
        let index = self.state.position(id).ok_or(self.profile.not_found())?;
        let credential = &self.state.credentials[index];
        if nitrokey && credential.algorithm == HashAlgorithm::Sha512 {
            return Err(StatusWord::FunctionNotSupported);
        }
        if credential.requires_touch() {
            self.await_touch()?;
        }
        let increments_first = self.profile.hotp_increments_first();
        let credential = &mut self.state.credentials[index];
        // HOTP ignores the supplied challenge: it uses its counter, then increments it.
        // A CanoKey increments first (C2), on 64 bits; at the top it answers 6985.
        let digest = match credential.oath_type {
            OathType::Hotp if increments_first => {
                credential.counter = credential
                    .counter
                    .checked_add(1)
                    .ok_or(StatusWord::ConditionsNotSatisfied)?;
                hmac(
                    credential.algorithm,
                    &credential.key,
                    &credential.counter.to_be_bytes(),
                )
            }
            OathType::Hotp => {
                let digest = hmac(
                    credential.algorithm,
                    &credential.key,
                    &credential.counter.to_be_bytes(),
                );
                credential.counter = if nitrokey {
                    u64::from((credential.counter as u32).wrapping_add(1))
                } else {
                    credential.counter.wrapping_add(1)
                };
                digest
            }
            OathType::Totp => hmac(credential.algorithm, &credential.key, challenge),
        };
        let digits = credential.digits;
        if credential.oath_type == OathType::Hotp {
            self.persist()?;
        }
        self.code_response(p2, digits, &digest)
    }

    fn calculate_all(&mut self, p1: u8, p2: u8, data: &[u8]) -> Reply {
        if p1 != 0x00 || (p2 != P2_FULL && p2 != P2_TRUNCATED) {
            return Err(StatusWord::WrongParameters);
        }
        let elements = parse_tlvs(data)?;
        let challenge = required(&elements, TAG_CHALLENGE)?;
        let mut out = Vec::new();
        for credential in &self.state.credentials {
            put_tlv(&mut out, TAG_NAME, &credential.id)?;
            if credential.oath_type == OathType::Hotp {
                put_tlv(&mut out, TAG_HOTP, &[credential.digits])?;
            } else if credential.requires_touch() {
                put_tlv(&mut out, TAG_TOUCH, &[credential.digits])?;
            } else {
                // Real YubiKey behaviour: every TOTP uses the given (30 s) challenge.
                let digest = hmac(credential.algorithm, &credential.key, challenge);
                out.extend(self.code_response(p2, credential.digits, &digest)?);
            }
        }
        Ok(out)
    }

    /// `76 05 <digits> <value>` (P2=01) or `75 <1+n> <digits> <hmac>` (P2=00).
    fn code_response(&self, p2: u8, digits: u8, digest: &[u8]) -> Reply {
        let mut value = Vec::with_capacity(digest.len() + 1);
        value.push(digits);
        let tag = if p2 == P2_TRUNCATED {
            let raw = dynamic_truncate(digest);
            // The YubiKey reduces mod 10^digits; the Nitrokey and the CanoKey return the
            // raw 31-bit value.
            let code = if self.profile.raw_truncation() {
                raw
            } else {
                let modulus = 10u64.pow(u32::from(digits.min(10)));
                u32::try_from(u64::from(raw) % modulus).unwrap_or(raw)
            };
            value.extend_from_slice(&code.to_be_bytes());
            TAG_TRUNCATED
        } else {
            value.extend_from_slice(digest);
            TAG_RESPONSE
        };
        let mut out = Vec::with_capacity(value.len() + 2);
        put_tlv(&mut out, tag, &value)?;
        Ok(out)
    }

    fn set_code(&mut self, data: &[u8]) -> Reply {
        let elements = parse_tlvs(data)?;
        let key_field = required(&elements, TAG_KEY)?;
        let Some((&algorithm_byte, key)) = key_field.split_first() else {
            // `73 00`: remove the password.
            self.state.access_key = None;
            self.session.select_challenge = None;
            self.persist()?;
            return Ok(Vec::new());
        };
        let algorithm = match algorithm_byte & 0x0F {
            0x01 => HashAlgorithm::Sha1,
            0x02 if !self.profile.is_canokey() => HashAlgorithm::Sha256,
            _ => return Err(StatusWord::WrongData),
        };
        if key.is_empty() || key.len() > MAX_ACCESS_KEY_LEN {
            return Err(StatusWord::WrongData);
        }
        // CanoKey: a 16-byte SHA-1 access key, nothing else.
        if self.profile.is_canokey() && key.len() != ACCESS_KEY_LEN {
            return Err(StatusWord::WrongData);
        }
        let challenge = required(&elements, TAG_CHALLENGE)?;
        let response = required(&elements, TAG_RESPONSE)?;
        if challenge.len() != CHALLENGE_LEN {
            return Err(StatusWord::WrongData);
        }
        // The client proves it holds the key it is setting.
        let expected = Zeroizing::new(hmac(algorithm, key, challenge));
        if !bool::from(expected.as_slice().ct_eq(response)) {
            return Err(StatusWord::NoSuchObject);
        }
        self.state.access_key = Some(AccessKey {
            algorithm,
            key: Zeroizing::new(key.to_vec()),
        });
        // Setting the code leaves this selection unlocked.
        self.session.validated = true;
        self.session.select_challenge = None;
        self.persist()?;
        Ok(Vec::new())
    }

    fn validate(&mut self, data: &[u8]) -> Reply {
        let Some(access_key) = &self.state.access_key else {
            return Err(StatusWord::NoSuchObject);
        };
        let elements = parse_tlvs(data)?;
        let response = required(&elements, TAG_RESPONSE)?;
        let host_challenge = required(&elements, TAG_CHALLENGE)?;
        // Single use: a second VALIDATE needs a new SELECT.
        let select_challenge = self
            .session
            .select_challenge
            .take()
            .ok_or(StatusWord::WrongData)?;
        let expected = Zeroizing::new(hmac(
            access_key.algorithm,
            &access_key.key,
            &select_challenge,
        ));
        if !bool::from(expected.as_slice().ct_eq(response)) {
            return Err(StatusWord::WrongData);
        }
        self.session.validated = true;
        let proof = hmac(access_key.algorithm, &access_key.key, host_challenge);
        let mut out = Vec::with_capacity(proof.len() + 2);
        put_tlv(&mut out, TAG_RESPONSE, &proof)?;
        Ok(out)
    }

    fn reset_applet(&mut self, p1: u8, p2: u8) -> Reply {
        if (p1, p2) != (RESET_P1, RESET_P2) {
            return Err(StatusWord::WrongParameters);
        }
        if self.profile.is_nitrokey() {
            self.await_touch()?;
        }
        self.state = PersistentState::fresh(random_bytes());
        self.session.validated = false;
        self.session.select_challenge = None;
        self.persist()?;
        Ok(Vec::new())
    }
}
