//! A software FIDO2 authenticator with `hmac-secret`: a stand-in *device* for tests and
//! demos (the sealing code above it is the real code). Its state is a small JSON file:
//!
//! ```json
//! {"format": 1, "master": "<64 hex>", "pin": null, "pin_retries": 8,
//!  "touch": "approve", "made": 0}
//! ```
//!
//! `master` plays the authenticator's device secret: credential ids are authenticated with
//! it (a file with another master is "a different key"), and CredRandom of a credential is
//! HMAC-SHA-256(master, "credrandom" || uv || id) (uv = 1 when the PIN was given: CTAP 2.1
//! keys keep two), so output1 = HMAC-SHA-256(CredRandom, salt) as in CTAP 2.1 §12.5. `pin` (clear text: this is a test device) with `pin_retries`
//! follows clientPIN: a wrong PIN costs a try, at 0 the PIN is blocked. `touch: "deny"`
//! makes every user-presence check time out; optional `touch_delay_ms` is how long an
//! approved touch takes. A missing file is created with a random
//! master, no PIN and touch approved.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use data_encoding::HEXLOWER;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use zeroize::{Zeroize, Zeroizing};

use super::{FidoError, HmacSecret, HmacSecretAuthenticator, RELYING_PARTY_ID, SALT_LEN};

const FORMAT: u32 = 1;
/// clientPIN retries after a correct PIN (CTAP 2.1 §6.5.2.2: 8).
pub const PIN_RETRIES: u32 = 8;
/// Credential id: 16-byte nonce || 16-byte HMAC tag over the relying party and the nonce.
const NONCE_LEN: usize = 16;
const TAG_LEN: usize = 16;
/// Largest state file read (bytes): a real one is about 200.
const MAX_FILE_LEN: u64 = 64 * 1024;

#[derive(Serialize, Deserialize, Zeroize, Clone)]
struct SoftState {
    format: u32,
    master: String,
    pin: Option<String>,
    pin_retries: u32,
    touch: String,
    made: u64,
    #[serde(default)]
    touch_delay_ms: u64,
}

impl Drop for SoftState {
    fn drop(&mut self) {
        self.zeroize();
    }
}

/// The software authenticator backed by its JSON state file.
pub struct SoftAuthenticator {
    path: PathBuf,
    // One call at a time, like a device.
    lock: Mutex<()>,
}

fn mac(key: &[u8], parts: &[&[u8]]) -> Zeroizing<[u8; 32]> {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes keys of any length");
    for part in parts {
        mac.update(part);
    }
    Zeroizing::new(mac.finalize().into_bytes().into())
}

impl SoftAuthenticator {
    /// Open (or create) the state file at `path`.
    pub fn open(path: &Path) -> Result<Self, FidoError> {
        let authenticator = Self {
            path: path.to_path_buf(),
            lock: Mutex::new(()),
        };
        if !path.exists() {
            let mut master = Zeroizing::new([0u8; 32]);
            getrandom::fill(master.as_mut())
                .map_err(|e| FidoError::Device(format!("no randomness: {e}")))?;
            authenticator.save(&SoftState {
                format: FORMAT,
                master: HEXLOWER.encode(master.as_ref()),
                pin: None,
                pin_retries: PIN_RETRIES,
                touch: "approve".into(),
                made: 0,
                touch_delay_ms: 0,
            })?;
        }
        authenticator.load()?;
        Ok(authenticator)
    }

    fn error(&self, what: &str) -> FidoError {
        FidoError::Device(format!(
            "software authenticator {}: {what}",
            self.path.display()
        ))
    }

    fn load(&self) -> Result<SoftState, FidoError> {
        use std::io::Read;
        let mut bytes = Zeroizing::new(Vec::new());
        fs::File::open(&self.path)
            .and_then(|f| f.take(MAX_FILE_LEN + 1).read_to_end(&mut bytes))
            .map_err(|e| self.error(&e.to_string()))?;
        if bytes.len() as u64 > MAX_FILE_LEN {
            return Err(self.error("file too large"));
        }
        let state: SoftState =
            serde_json::from_slice(&bytes).map_err(|_| self.error("not a state file"))?;
        if state.format != FORMAT {
            return Err(self.error("unsupported format"));
        }
        if !matches!(state.touch.as_str(), "approve" | "deny") {
            return Err(self.error("touch must be approve or deny"));
        }
        self.master(&state)?;
        Ok(state)
    }

    fn save(&self, state: &SoftState) -> Result<(), FidoError> {
        let json = Zeroizing::new(
            serde_json::to_vec_pretty(state).map_err(|e| self.error(&e.to_string()))?,
        );
        crate::emulator::write_private_atomically(&self.path, &json)
            .map_err(|e| self.error(&e.to_string()))
    }

    fn master(&self, state: &SoftState) -> Result<Zeroizing<Vec<u8>>, FidoError> {
        let master = HEXLOWER
            .decode(state.master.as_bytes())
            .map(Zeroizing::new)
            .map_err(|_| self.error("master is not lower-case hex"))?;
        if master.len() != 32 {
            return Err(self.error("master must be 32 bytes"));
        }
        Ok(master)
    }

    /// User verification by PIN, with the clientPIN retry counter.
    fn check_pin(&self, state: &mut SoftState, pin: Option<&str>) -> Result<(), FidoError> {
        let Some(expected) = state.pin.clone().map(Zeroizing::new) else {
            return Ok(());
        };
        if state.pin_retries == 0 {
            return Err(FidoError::PinBlocked);
        }
        let Some(pin) = pin else {
            return Err(FidoError::PinRequired);
        };
        if pin.as_bytes() == expected.as_bytes() {
            if state.pin_retries != PIN_RETRIES {
                state.pin_retries = PIN_RETRIES;
                self.save(state)?;
            }
            return Ok(());
        }
        state.pin_retries -= 1;
        self.save(state)?;
        if state.pin_retries == 0 {
            return Err(FidoError::PinBlocked);
        }
        Err(FidoError::WrongPin {
            retries: Some(state.pin_retries),
        })
    }

    fn user_presence(&self, state: &SoftState) -> Result<(), FidoError> {
        match state.touch.as_str() {
            "approve" => {
                // Bounded: a test device never makes a caller wait more than a minute.
                let delay = state.touch_delay_ms.min(60_000);
                std::thread::sleep(std::time::Duration::from_millis(delay));
                Ok(())
            }
            _ => Err(FidoError::TouchTimeout),
        }
    }
}

impl HmacSecretAuthenticator for SoftAuthenticator {
    fn describe(&self) -> String {
        format!("software authenticator {}", self.path.display())
    }

    /// The state file: deleting or replacing it plays pulling the key.
    fn device_node(&self) -> Option<PathBuf> {
        Some(self.path.clone())
    }

    fn pin_set(&self) -> Result<bool, FidoError> {
        Ok(self.load()?.pin.is_some())
    }

    fn make_credential(&self, pin: Option<&str>) -> Result<Vec<u8>, FidoError> {
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut state = self.load()?;
        self.check_pin(&mut state, pin)?;
        self.user_presence(&state)?;
        let master = self.master(&state)?;
        // Deterministic for a given file: the n-th credential always has the same id.
        let nonce = mac(&master, &[b"nonce", &state.made.to_be_bytes()]);
        let tag = mac(&master, &[RELYING_PARTY_ID.as_bytes(), &nonce[..NONCE_LEN]]);
        let mut id = nonce[..NONCE_LEN].to_vec();
        id.extend_from_slice(&tag[..TAG_LEN]);
        state.made += 1;
        self.save(&state)?;
        Ok(id)
    }

    fn hmac_secret(
        &self,
        credential_id: &[u8],
        salt: &[u8; SALT_LEN],
        pin: Option<&str>,
    ) -> Result<HmacSecret, FidoError> {
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut state = self.load()?;
        let master = self.master(&state)?;
        // CTAP looks the credential up first: a foreign id is CTAP2_ERR_NO_CREDENTIALS.
        if credential_id.len() != NONCE_LEN + TAG_LEN {
            return Err(FidoError::CredentialNotFound);
        }
        let (nonce, tag) = credential_id.split_at(NONCE_LEN);
        let expected = mac(&master, &[RELYING_PARTY_ID.as_bytes(), nonce]);
        if !constant_time_eq(&expected[..TAG_LEN], tag) {
            return Err(FidoError::CredentialNotFound);
        }
        // getAssertion needs no PIN (user presence only), but gives another secret with
        // one: CredRandomWithUV / WithoutUV (CTAP 2.1 §12.5).
        let uv = state.pin.is_some() && pin.is_some();
        if uv {
            self.check_pin(&mut state, pin)?;
        }
        self.user_presence(&state)?;
        let cred_random = mac(&master, &[b"credrandom", &[u8::from(uv)], credential_id]);
        Ok(mac(cred_random.as_ref(), &[salt]))
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_state(path: &Path, master: u8, pin: Option<&str>, touch: &str) {
        let state = serde_json::json!({
            "format": 1, "master": HEXLOWER.encode(&[master; 32]), "pin": pin,
            "pin_retries": PIN_RETRIES, "touch": touch, "made": 0
        });
        fs::write(path, state.to_string()).unwrap();
    }

    #[test]
    fn same_credential_and_salt_same_secret_and_foreign_ids_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.json"), dir.path().join("b.json"));
        write_state(&a, 1, None, "approve");
        write_state(&b, 2, None, "approve");
        let (a, b) = (
            SoftAuthenticator::open(&a).unwrap(),
            SoftAuthenticator::open(&b).unwrap(),
        );
        let id = a.make_credential(None).unwrap();
        let one = a.hmac_secret(&id, &[7; 32], None).unwrap();
        assert_eq!(one, a.hmac_secret(&id, &[7; 32], None).unwrap());
        assert_ne!(one, a.hmac_secret(&id, &[8; 32], None).unwrap());
        assert_ne!(id, a.make_credential(None).unwrap());
        assert_eq!(
            b.hmac_secret(&id, &[7; 32], None),
            Err(FidoError::CredentialNotFound)
        );
    }

    #[test]
    fn pin_retries_count_down_to_blocked_and_touch_can_time_out() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.json");
        write_state(&path, 1, Some("1234"), "approve");
        let soft = SoftAuthenticator::open(&path).unwrap();
        assert!(soft.pin_set().unwrap());
        assert_eq!(soft.make_credential(None), Err(FidoError::PinRequired));
        let id = soft.make_credential(Some("1234")).unwrap();
        assert_eq!(
            soft.hmac_secret(&id, &[0; 32], Some("0000")),
            Err(FidoError::WrongPin { retries: Some(7) })
        );
        // A correct PIN restores the counter.
        soft.hmac_secret(&id, &[0; 32], Some("1234")).unwrap();
        for left in (1..PIN_RETRIES).rev() {
            assert_eq!(
                soft.hmac_secret(&id, &[0; 32], Some("0000")),
                Err(FidoError::WrongPin {
                    retries: Some(left)
                })
            );
        }
        assert_eq!(
            soft.hmac_secret(&id, &[0; 32], Some("0000")),
            Err(FidoError::PinBlocked)
        );
        assert_eq!(
            soft.hmac_secret(&id, &[0; 32], Some("1234")),
            Err(FidoError::PinBlocked)
        );
        write_state(&path, 1, Some("1234"), "approve");
        // Touch alone works with a PIN set, and gives the other (without-UV) secret.
        assert_ne!(
            soft.hmac_secret(&id, &[0; 32], None).unwrap(),
            soft.hmac_secret(&id, &[0; 32], Some("1234")).unwrap()
        );
        write_state(&path, 1, None, "deny");
        assert_eq!(soft.make_credential(None), Err(FidoError::TouchTimeout));
    }
}
