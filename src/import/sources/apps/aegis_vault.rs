//! Decryption of an encrypted Aegis vault, after Aegis' `docs/vault.md` ("Encryption",
//! "Slots"):
//!
//! ```json
//! "header": {
//!   "slots": [{"type": 1, "key": "HEX", "key_params": {"nonce": "HEX", "tag": "HEX"},
//!              "n": 32768, "r": 8, "p": 1, "salt": "HEX"}],
//!   "params": {"nonce": "HEX", "tag": "HEX"}},
//! "db": "BASE64"
//! ```
//!
//! For each password slot (type 1): key = scrypt(password, salt, N, r, p, 32 bytes); the
//! master key = AES-256-GCM-decrypt(`key`, `key_params`); the content =
//! AES-256-GCM-decrypt(base64 `db`, `params`). Other slot types (raw, biometric) are skipped.
//!
//! A hostile file cannot make us spend minutes or gigabytes: N ≤ 2^20, r ≤ 32, p ≤ 16,
//! 128·N·r ≤ 128 MiB and N·r·p ≤ 2^22 (16 times Aegis' own work), at most 4 password slots;
//! everything is checked before the password is asked for.

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::generic_array::GenericArray;
use aes_gcm::aead::{AeadInPlace, KeyInit};
use data_encoding::{BASE64, HEXLOWER_PERMISSIVE};
use zeroize::Zeroizing;

use super::fields::Reader;
use super::json::{Json, Obj};
use crate::import::{InputErrors, Location, Passwords};

pub(super) const MAX_LOG_N: u32 = 20;
pub(super) const MAX_R: u64 = 32;
pub(super) const MAX_P: u64 = 16;
/// scrypt allocates 128·N·r bytes: N·r ≤ 2^20 keeps that at 128 MiB.
const MAX_N_TIMES_R: u64 = 1 << 20;
/// scrypt's work grows with N·r·p; Aegis itself uses 2^18.
const MAX_N_TIMES_R_TIMES_P: u64 = 1 << 22;
const MAX_PASSWORD_SLOTS: usize = 4;
const MAX_SALT_BYTES: usize = 256;
const PASSWORD_SLOT: u64 = 1;

pub(super) const WRONG_PASSWORD: &str = "wrong password, or the vault is damaged";

type Key = [u8; 32];
type NonceBytes = [u8; 12];
type TagBytes = [u8; 16];

/// A password slot: the master key sealed with a key derived from the password.
struct PasswordSlot {
    sealed_key: Key,
    nonce: NonceBytes,
    tag: TagBytes,
    salt: Vec<u8>,
    params: scrypt::Params,
}

/// The decrypted `db` (JSON text) of an encrypted vault. Asks `passwords` once, after the
/// header and `db` were checked; errors never quote the file or the password.
pub(super) fn decrypt(
    header: &Obj,
    db: &str,
    at: &Location,
    passwords: &mut dyn Passwords,
) -> Result<Zeroizing<Vec<u8>>, InputErrors> {
    let mut reader = Reader::new(at.clone());
    let sealed_db = reader.object(header, "params", true).map(|params| {
        let nonce = hex_field::<12>(&mut reader, &params, "nonce");
        let tag = hex_field::<16>(&mut reader, &params, "tag");
        (nonce, tag)
    });
    let slots = password_slots(&mut reader, header);
    let ciphertext = BASE64.decode(db.as_bytes()).map(Zeroizing::new);
    if ciphertext.is_err() {
        reader.errors.push(at.error(Some("db"), "not valid base64"));
    }
    let (Ok(mut content), Some((Some(nonce), Some(tag))), true) =
        (ciphertext, sealed_db, reader.errors.is_empty())
    else {
        return Err(InputErrors(reader.errors));
    };

    let password = passwords.password(at, "the Aegis vault")?;
    let master_key = slots
        .iter()
        .find_map(|slot| unseal_master_key(slot, password.as_bytes()))
        .ok_or_else(|| at.error(None, WRONG_PASSWORD))?;
    let opened = Aes256Gcm::new_from_slice(&master_key[..])
        .ok()
        .and_then(|cipher| {
            cipher
                .decrypt_in_place_detached(
                    &GenericArray::from(nonce),
                    b"",
                    &mut content[..],
                    &GenericArray::from(tag),
                )
                .ok()
        });
    match opened {
        Some(()) => Ok(content),
        None => Err(at
            .error(
                Some("db"),
                "the vault is damaged (its contents fail the integrity check)",
            )
            .into()),
    }
}

/// The master key, when `password` opens `slot`.
fn unseal_master_key(slot: &PasswordSlot, password: &[u8]) -> Option<Zeroizing<Key>> {
    let mut derived = Zeroizing::new([0u8; 32]);
    scrypt::scrypt(password, &slot.salt, &slot.params, &mut derived[..]).ok()?;
    let cipher = Aes256Gcm::new_from_slice(&derived[..]).ok()?;
    let mut master_key = Zeroizing::new(slot.sealed_key);
    cipher
        .decrypt_in_place_detached(
            &GenericArray::from(slot.nonce),
            b"",
            &mut master_key[..],
            &GenericArray::from(slot.tag),
        )
        .ok()?;
    Some(master_key)
}

/// The well-formed password slots of `header.slots`; problems go to `reader`.
fn password_slots(reader: &mut Reader, header: &Obj) -> Vec<PasswordSlot> {
    let mut slots = Vec::new();
    let Some(list) = reader.list(header, "slots") else {
        return slots;
    };
    let errors_before = reader.errors.len();
    let mut count = 0;
    for (index, slot) in list.iter().enumerate() {
        let Some(slot) = Obj::new(slot, format!("header.slots[{index}].")) else {
            reader.fail(header, &format!("slots[{index}]"), "expected an object");
            continue;
        };
        match slot.get("type") {
            Some(Json::Uint(PASSWORD_SLOT)) => {}
            Some(Json::Uint(_)) => continue,
            None => {
                reader.fail(&slot, "type", "missing");
                continue;
            }
            Some(_) => {
                reader.fail(&slot, "type", "expected a whole number");
                continue;
            }
        }
        count += 1;
        let sealed_key = hex_field::<32>(reader, &slot, "key");
        let key_params = reader.object(&slot, "key_params", true);
        let (nonce, tag) = match key_params {
            Some(key_params) => (
                hex_field::<12>(reader, &key_params, "nonce"),
                hex_field::<16>(reader, &key_params, "tag"),
            ),
            None => (None, None),
        };
        let salt = salt(reader, &slot);
        let params = scrypt_params(reader, &slot);
        if let (Some(sealed_key), Some(nonce), Some(tag), Some(salt), Some(params)) =
            (sealed_key, nonce, tag, salt, params)
        {
            slots.push(PasswordSlot {
                sealed_key,
                nonce,
                tag,
                salt,
                params,
            });
        }
    }
    if count == 0 && reader.errors.len() == errors_before {
        reader.fail(
            header,
            "slots",
            "no password slot (this vault can only be unlocked with biometrics)",
        );
    } else if count > MAX_PASSWORD_SLOTS {
        reader.fail(header, "slots", "more than 4 password slots");
    }
    slots
}

/// Exactly `N` bytes as `2N` hexadecimal digits.
fn hex_field<const N: usize>(reader: &mut Reader, obj: &Obj, key: &str) -> Option<[u8; N]> {
    let text = match obj.get(key) {
        None => {
            reader.fail(obj, key, "missing");
            return None;
        }
        Some(_) => reader.text(obj, key)?,
    };
    let bytes = (text.len() == 2 * N)
        .then(|| HEXLOWER_PERMISSIVE.decode(text.as_bytes()).ok())
        .flatten()
        .and_then(|bytes| <[u8; N]>::try_from(bytes).ok());
    if bytes.is_none() {
        reader.fail(obj, key, format!("expected {} hexadecimal digits", 2 * N));
    }
    bytes
}

fn salt(reader: &mut Reader, slot: &Obj) -> Option<Vec<u8>> {
    let text = match slot.get("salt") {
        None => {
            reader.fail(slot, "salt", "missing");
            return None;
        }
        Some(_) => reader.text(slot, "salt")?,
    };
    let salt = (text.len() <= 2 * MAX_SALT_BYTES)
        .then(|| HEXLOWER_PERMISSIVE.decode(text.as_bytes()).ok())
        .flatten();
    if salt.is_none() {
        reader.fail(
            slot,
            "salt",
            "expected at most 256 bytes as hexadecimal digits",
        );
    }
    salt
}

/// N, r and p within the bounds in the module docs.
fn scrypt_params(reader: &mut Reader, slot: &Obj) -> Option<scrypt::Params> {
    let mut whole = |key: &str, valid: &dyn Fn(u64) -> bool, problem: &str| -> Option<u64> {
        match slot.get(key) {
            None => reader.fail(slot, key, "missing"),
            Some(Json::Uint(value)) if valid(*value) => return Some(*value),
            Some(_) => reader.fail(slot, key, problem),
        }
        None
    };
    let n = whole(
        "n",
        &|n| n.is_power_of_two() && (2..=1 << MAX_LOG_N).contains(&n),
        "expected a power of two from 2 to 2^20 (scrypt N)",
    );
    let r = whole(
        "r",
        &|r| (1..=MAX_R).contains(&r),
        "expected 1 to 32 (scrypt r)",
    );
    let p = whole(
        "p",
        &|p| (1..=MAX_P).contains(&p),
        "expected 1 to 16 (scrypt p)",
    );
    let (n, r, p) = (n?, r?, p?);
    if n * r > MAX_N_TIMES_R || n * r * p > MAX_N_TIMES_R_TIMES_P {
        reader.fail(
            slot,
            "n",
            "scrypt parameters too costly (at most 128 MiB and 16 times the work Aegis uses)",
        );
        return None;
    }
    let params = u8::try_from(n.trailing_zeros()).ok().and_then(|log_n| {
        scrypt::Params::new(log_n, u32::try_from(r).ok()?, u32::try_from(p).ok()?, 32).ok()
    });
    if params.is_none() {
        reader.fail(
            slot,
            "n",
            "scrypt parameters not allowed by scrypt (N too large for r)",
        );
    }
    params
}

#[cfg(test)]
pub(super) mod tests {
    use aes_gcm::aead::{AeadInPlace, KeyInit};
    use data_encoding::HEXLOWER;
    use zeroize::Zeroizing;

    use super::super::tests::{PASSWORD, assert_no_leak, parse_with, seed};
    use super::*;
    use crate::import::{GivenPassword, InputError, NoPasswords};

    /// Refuses to be asked: the file should have been refused before.
    struct MustNotAsk;

    impl Passwords for MustNotAsk {
        fn password(&mut self, _: &Location, _: &str) -> Result<Zeroizing<String>, InputError> {
            panic!("asked for a password");
        }
    }

    fn seal(key: &[u8], nonce: [u8; 12], plaintext: &[u8]) -> (String, String, String) {
        let cipher = Aes256Gcm::new_from_slice(key).unwrap();
        let mut buffer = plaintext.to_vec();
        let tag = cipher
            .encrypt_in_place_detached(&GenericArray::from(nonce), b"", &mut buffer)
            .unwrap();
        (
            HEXLOWER.encode(&buffer),
            HEXLOWER.encode(&nonce),
            HEXLOWER.encode(&tag),
        )
    }

    /// An encrypted vault holding `content`, made the way Aegis makes one.
    pub(crate) fn vault(content: &str, password: &str, n: u64, r: u32, p: u32) -> String {
        let master_key = [7u8; 32];
        let salt = [1u8; 32];
        let params = scrypt::Params::new(n.trailing_zeros() as u8, r, p, 32).unwrap();
        let mut derived = [0u8; 32];
        scrypt::scrypt(password.as_bytes(), &salt, &params, &mut derived).unwrap();
        let (key, key_nonce, key_tag) = seal(&derived, [2; 12], &master_key);
        let (db, db_nonce, db_tag) = seal(&master_key, [3; 12], content.as_bytes());
        let db = data_encoding::BASE64.encode(&HEXLOWER.decode(db.as_bytes()).unwrap());
        let salt = HEXLOWER.encode(&salt);
        format!(
            r#"{{"version":1,"header":{{"slots":[{{"type":2,"key":"{key}","key_params":{{"nonce":"{key_nonce}","tag":"{key_tag}"}}}},{{"type":1,"key":"{key}","key_params":{{"nonce":"{key_nonce}","tag":"{key_tag}"}},"n":{n},"r":{r},"p":{p},"salt":"{salt}"}}],"params":{{"nonce":"{db_nonce}","tag":"{db_tag}"}}}},"db":"{db}"}}"#
        )
    }

    /// A vault with cheap scrypt parameters (N=2), for fast tests.
    pub(crate) fn tiny_vault(content: &str) -> String {
        vault(content, PASSWORD, 2, 1, 1)
    }

    fn content() -> String {
        format!(
            r#"{{"version":3,"entries":[{{"type":"totp","name":"a","issuer":"I","info":{{"secret":"{}","algo":"SHA256","digits":8,"period":60}}}},{{"type":"steam","name":"s","issuer":"","info":{{"secret":"{}","digits":5}}}}]}}"#,
            seed(1),
            seed(2)
        )
    }

    fn open(text: &str, password: &str) -> Result<Vec<crate::import::AccountSpec>, InputErrors> {
        let mut password = GivenPassword(Zeroizing::new(password.to_owned()));
        parse_with(text.as_bytes(), "vault.json", &mut password)
    }

    fn error_lines(text: &str, passwords: &mut dyn Passwords) -> Vec<String> {
        let errors = parse_with(text.as_bytes(), "vault.json", passwords).unwrap_err();
        errors.0.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn decrypts_with_the_password() {
        let accounts = open(&tiny_vault(&content()), PASSWORD).unwrap();
        assert_eq!(accounts.len(), 2);
        let first = &accounts[0].account;
        assert_eq!(first.issuer.as_deref(), Some("I"));
        assert_eq!((first.digits, first.period), (8, 60));
        assert_eq!(first.secret.as_slice(), b"handed-case-key-0001");
        assert_eq!(accounts[1].account.issuer.as_deref(), Some("Steam"));
        assert_eq!(accounts[1].at, Location::source("vault.json").at_entry(2));
    }

    #[test]
    fn realistic_parameters_work() {
        let text = vault(&content(), "pässwörd", 1 << 15, 8, 1);
        assert_eq!(open(&text, "pässwörd").unwrap().len(), 2);
    }

    #[test]
    fn wrong_or_missing_password_is_one_error_without_the_password() {
        let text = tiny_vault(&content());
        let errors = open(&text, "correct horse battery stapler").unwrap_err();
        assert_eq!(errors.to_string(), format!("vault.json: {WRONG_PASSWORD}"));
        assert_no_leak(&errors.to_string(), &["correct horse battery stapler"]);
        assert_eq!(
            error_lines(&text, &mut NoPasswords),
            ["vault.json: the Aegis vault is encrypted and no password was given"]
        );
    }

    #[test]
    fn tampering_is_detected() {
        let text = tiny_vault(&content());
        let vault: serde_json::Value = serde_json::from_str(&text).unwrap();
        let db = vault["db"].as_str().unwrap();
        let mut bytes = data_encoding::BASE64.decode(db.as_bytes()).unwrap();
        bytes[5] ^= 1;
        let tampered_db = text.replace(db, &data_encoding::BASE64.encode(&bytes));
        let errors = open(&tampered_db, PASSWORD).unwrap_err().to_string();
        assert_eq!(
            errors,
            "vault.json: db: the vault is damaged (its contents fail the integrity check)"
        );

        let db_tag = vault["header"]["params"]["tag"].as_str().unwrap();
        let tampered_tag = text.replace(db_tag, &"0".repeat(32));
        assert!(
            open(&tampered_tag, PASSWORD)
                .unwrap_err()
                .to_string()
                .contains("damaged")
        );

        let key = vault["header"]["slots"][1]["key"].as_str().unwrap();
        let tampered_key = text.replace(key, &format!("00{}", &key[2..]));
        assert_eq!(
            open(&tampered_key, PASSWORD).unwrap_err().to_string(),
            format!("vault.json: {WRONG_PASSWORD}")
        );
    }

    #[test]
    fn decrypted_content_is_checked_like_a_plain_vault() {
        let errors = open(&tiny_vault("{\"entries\": [}"), PASSWORD)
            .unwrap_err()
            .to_string();
        assert_eq!(errors, "vault.json: db: not valid JSON (line 1, column 14)");
        let errors = open(&tiny_vault("[1]"), PASSWORD).unwrap_err().to_string();
        assert_eq!(
            errors,
            "vault.json: db: the decrypted vault is not a JSON object"
        );
        let bad = format!(
            r#"{{"entries":[{{"type":"totp","name":"a","info":{{"secret":"{}","digits":5}}}}]}}"#,
            seed(3)
        );
        let errors = open(&tiny_vault(&bad), PASSWORD).unwrap_err().to_string();
        assert_eq!(
            errors,
            "vault.json: entry 1: info.digits: expected 6, 7 or 8"
        );
    }

    /// A vault whose one password slot has these fields (raw JSON after `"type":1,`).
    fn with_slot(slot: &str) -> String {
        format!(
            r#"{{"version":1,"header":{{"slots":[{{"type":1,{slot}}}],"params":{{"nonce":"{}","tag":"{}"}}}},"db":"AAAA"}}"#,
            "00".repeat(12),
            "00".repeat(16)
        )
    }

    fn slot(n: &str, r: &str, p: &str) -> String {
        format!(
            r#""key":"{}","key_params":{{"nonce":"{}","tag":"{}"}},"n":{n},"r":{r},"p":{p},"salt":"{}""#,
            "00".repeat(32),
            "00".repeat(12),
            "00".repeat(16),
            "11".repeat(32)
        )
    }

    #[test]
    fn absurd_scrypt_parameters_are_refused_before_asking() {
        let cases = [
            (
                slot("1073741824", "8", "1"),
                "header.slots[0].n: expected a power of two from 2 to 2^20 (scrypt N)",
            ),
            (
                slot("32769", "8", "1"),
                "header.slots[0].n: expected a power of two from 2 to 2^20 (scrypt N)",
            ),
            (
                slot("1", "8", "1"),
                "header.slots[0].n: expected a power of two from 2 to 2^20 (scrypt N)",
            ),
            (
                slot("-32768", "8", "1"),
                "header.slots[0].n: expected a power of two from 2 to 2^20 (scrypt N)",
            ),
            (
                slot("\"32768\"", "8", "1"),
                "header.slots[0].n: expected a power of two from 2 to 2^20 (scrypt N)",
            ),
            (
                slot("32768", "1000", "1"),
                "header.slots[0].r: expected 1 to 32 (scrypt r)",
            ),
            (
                slot("32768", "0", "1"),
                "header.slots[0].r: expected 1 to 32 (scrypt r)",
            ),
            (
                slot("32768", "8", "100"),
                "header.slots[0].p: expected 1 to 16 (scrypt p)",
            ),
            (
                slot("32768", "8", "1e3"),
                "header.slots[0].p: expected 1 to 16 (scrypt p)",
            ),
            (
                slot("1048576", "8", "1"),
                "header.slots[0].n: scrypt parameters too costly (at most 128 MiB and 16 times the work Aegis uses)",
            ),
            (
                slot("262144", "4", "16"),
                "header.slots[0].n: scrypt parameters too costly (at most 128 MiB and 16 times the work Aegis uses)",
            ),
            (
                slot("131072", "1", "1"),
                "header.slots[0].n: scrypt parameters not allowed by scrypt (N too large for r)",
            ),
        ];
        for (slot, expected) in cases {
            assert_eq!(
                error_lines(&with_slot(&slot), &mut MustNotAsk),
                [format!("vault.json: {expected}")],
                "{slot}"
            );
        }
    }

    #[test]
    fn malformed_headers_are_refused_before_asking() {
        let good_slot = slot("32768", "8", "1");
        let cases = [
            (
                with_slot(&good_slot).replace(r#""db":"AAAA""#, r#""db":"AA*A""#),
                vec!["db: not valid base64"],
            ),
            (
                with_slot(&good_slot.replace(&"00".repeat(32), "00")),
                vec!["header.slots[0].key: expected 64 hexadecimal digits"],
            ),
            (
                with_slot(&good_slot.replace(&"11".repeat(32), "xyz")),
                vec!["header.slots[0].salt: expected at most 256 bytes as hexadecimal digits"],
            ),
            (
                with_slot(r#""n":32768"#),
                vec![
                    "header.slots[0].key: missing",
                    "header.slots[0].key_params: missing",
                    "header.slots[0].salt: missing",
                    "header.slots[0].r: missing",
                    "header.slots[0].p: missing",
                ],
            ),
            (
                with_slot(&good_slot).replace(r#"[{"type":1,"#, r#"[{"type":2},{"type":"one","#),
                vec!["header.slots[1].type: expected a whole number"],
            ),
            (
                with_slot(&good_slot).replace(r#"{"type":1,"#, r#"{"type":2,"#),
                vec![
                    "header.slots: no password slot (this vault can only be unlocked with biometrics)",
                ],
            ),
            (
                with_slot(&good_slot).replace(r#""slots":["#, r#""slots":[7,"#),
                vec!["header.slots[0]: expected an object"],
            ),
            (
                with_slot(&good_slot).replace(r#","params":{"#, r#","nothing":{"#),
                vec!["header.params: missing"],
            ),
            (
                with_slot(&good_slot).replace(r#""db":"AAAA""#, r#""db":7"#),
                vec!["db: expected an object or a base64 string"],
            ),
            (
                with_slot(&good_slot).replace(r#""version":1"#, r#""version":2"#),
                vec!["version: unsupported vault version (expected 1)"],
            ),
        ];
        for (text, expected) in cases {
            let expected: Vec<String> = expected
                .iter()
                .map(|line| format!("vault.json: {line}"))
                .collect();
            assert_eq!(error_lines(&text, &mut MustNotAsk), expected, "{text}");
        }
        let nonce = with_slot(&good_slot).replacen(
            &format!(r#""nonce":"{}""#, "00".repeat(12)),
            r#""nonce":"zz""#,
            2,
        );
        assert_eq!(
            error_lines(&nonce, &mut MustNotAsk),
            [
                "vault.json: header.params.nonce: expected 24 hexadecimal digits",
                "vault.json: header.slots[0].key_params.nonce: expected 24 hexadecimal digits"
            ]
        );
        let many = with_slot(&[good_slot.as_str(); 5].join(r#"},{"type":1,"#));
        assert_eq!(
            error_lines(&many, &mut MustNotAsk),
            ["vault.json: header.slots: more than 4 password slots"]
        );
    }
}
