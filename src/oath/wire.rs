//! Encoding of PUT payloads and decoding of LIST / CALCULATE ALL answers.

use super::code::{self, Code};
use super::consts::*;
use super::credential::{Credential, CredentialData, CredentialId};
use super::error::OathError;
use super::session::CodeEntry;
use super::tlv::{self, TlvReader};
use crate::otp::{HashAlgorithm, OathType};

/// The PUT payload: 71 id, 73 type|algo digits key, [78 02], [7A 04 counter].
pub fn encode_put(data: &CredentialData) -> Result<Vec<u8>, OathError> {
    let key = data.key_for_card();
    let mut key_field = zeroize::Zeroizing::new(Vec::with_capacity(key.len() + 2));
    key_field.push(data.oath_type.code() | data.algorithm.code());
    key_field.push(data.digits);
    key_field.extend_from_slice(&key);
    let mut out = Vec::with_capacity(key.len() + 80);
    tlv::write(&mut out, TAG_NAME, &data.id.to_bytes())?;
    tlv::write(&mut out, TAG_KEY, &key_field)?;
    if data.touch {
        out.extend_from_slice(&[TAG_PROPERTY, PROP_REQUIRE_TOUCH]);
    }
    if data.oath_type == OathType::Hotp && data.counter > 0 {
        tlv::write(&mut out, TAG_IMF, &data.counter.to_be_bytes())?;
    }
    Ok(out)
}

/// LIST answer: `72 <len> <type|algo> <id> [props]`. Entries that are not OTP accounts
/// (Nitrokey password-safe, reverse-HOTP, HMAC slots) are skipped.
pub fn parse_list(data: &[u8], with_properties: bool) -> Result<Vec<Credential>, OathError> {
    let mut credentials = Vec::new();
    for item in TlvReader::new(data) {
        let item = item?;
        if item.tag != TAG_NAME_LIST {
            continue;
        }
        let (kind, rest) = item
            .value
            .split_first()
            .ok_or_else(|| OathError::Malformed("empty LIST entry".into()))?;
        let (raw_id, touch) = match (with_properties, rest.split_last()) {
            (true, Some((props, id))) => (id, Some(props & 0x01 != 0)),
            _ => (rest, None),
        };
        let Some(oath_type) = OathType::from_code(kind & MASK_TYPE) else {
            continue;
        };
        credentials.push(Credential {
            raw_id: raw_id.to_vec(),
            id: CredentialId::parse(raw_id, oath_type),
            oath_type,
            algorithm: HashAlgorithm::from_code(kind & MASK_ALGO),
            digits: None,
            touch,
        });
    }
    Ok(credentials)
}

/// CALCULATE ALL answer: pairs of `71 id` and one of `76` (code), `7C` (touch), `77` (HOTP).
/// Codes are for the 30 s step at `timestamp`.
pub fn parse_calculate_all(data: &[u8], timestamp: u64) -> Result<Vec<CodeEntry>, OathError> {
    let mut entries = Vec::new();
    let mut reader = TlvReader::new(data);
    while !reader.is_empty() {
        let raw_id = reader.expect(TAG_NAME)?.to_vec();
        let answer = reader.read()?;
        let (oath_type, touch, digits) = match (answer.tag, answer.value) {
            (TAG_TRUNCATED, [digits, ..]) => (OathType::Totp, false, *digits),
            (TAG_TOUCH, [digits, ..]) => (OathType::Totp, true, *digits),
            (TAG_HOTP, [digits, ..]) => (OathType::Hotp, false, *digits),
            (tag, _) => {
                return Err(OathError::Malformed(format!(
                    "unexpected tag 0x{tag:02X} in CALCULATE ALL"
                )));
            }
        };
        let code =
            if answer.tag == TAG_TRUNCATED {
                let (from, to) = code::totp_window(timestamp, DEFAULT_PERIOD);
                Some(Code::from_truncated(answer.value, from, to).ok_or_else(|| {
                    OathError::Malformed("truncated response is not 5 bytes".into())
                })?)
            } else {
                None
            };
        let id = CredentialId::parse(&raw_id, oath_type);
        entries.push(CodeEntry {
            credential: Credential {
                raw_id,
                id,
                oath_type,
                algorithm: None,
                digits: Some(digits),
                touch: Some(touch),
            },
            code,
        });
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn put_encoding_matches_the_touch_trace() {
        // TestCalculateRequireTouch: TOTP/SHA256, touch, 14-byte key 00..00 12 34 12 34.
        let mut key = vec![0u8; 10];
        key.extend_from_slice(&[0x12, 0x34, 0x12, 0x34]);
        let mut data = CredentialData::totp(None, "touch required", &key);
        data.algorithm = HashAlgorithm::Sha256;
        data.touch = true;
        let expected = "710e746f7563682072657175697265647310220600000000000000000000123412347802";
        assert_eq!(
            data_encoding::HEXLOWER.encode(&encode_put(&data).unwrap()),
            expected
        );
    }

    #[test]
    fn hotp_counter_goes_into_imf() {
        let mut data = CredentialData::totp(None, "h", b"12345678901234567890");
        data.oath_type = OathType::Hotp;
        data.id = CredentialId::new(None, "h", OathType::Hotp, 30);
        data.counter = 1;
        let encoded = encode_put(&data).unwrap();
        assert_eq!(&encoded[encoded.len() - 6..], &[0x7A, 0x04, 0, 0, 0, 1]);
    }

    #[test]
    fn nitrokey_list_with_properties() {
        let data = [
            0x72, 0x04, 0x21, b'a', b'b', 0x01, 0x72, 0x03, 0xF0, b'p', 0x00,
        ];
        let list = parse_list(&data, true).unwrap();
        assert_eq!(list.len(), 1, "password-safe entry skipped");
        assert_eq!(list[0].raw_id, b"ab");
        assert_eq!(list[0].touch, Some(true));
    }

    proptest! {
        #[test]
        fn hostile_answers_never_panic(data in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = parse_list(&data, false);
            let _ = parse_list(&data, true);
            let _ = parse_calculate_all(&data, 59);
        }
    }
}
