//! The sealed virtual-key file (docs/sealed-virtual-key.md): the virtual key's state JSON
//! encrypted with AES-256-GCM under a key derived (HKDF-SHA256) from a FIDO2 key's
//! `hmac-secret` output. All integers big-endian.
//!
//! | offset | bytes | field |
//! |---|---|---|
//! | 0 | 8 | magic `OBSEALVK` |
//! | 8 | 2 | format version (1) |
//! | 10 | 8 | the card's YKOATH salt (public: SELECT sends it; gives the device id) |
//! | 18 | 1 | flags: bit 0 = sealed with user verification (the FIDO2 PIN); others 0 |
//! | 19 | 2 | credential id length L (1..=1024) |
//! | 21 | L | credential id (CTAP 2.1 §6.1 authenticatorMakeCredential) |
//! | 21+L | 32 | `hmac-secret` salt1 |
//! | 53+L | 12 | AES-GCM nonce |
//! | 65+L | rest | ciphertext of the state JSON, then the 16-byte tag |
//!
//! CTAP 2.1 keys derive a different `hmac-secret` with and without user verification
//! (CredRandomWithUV / WithoutUV, §12.5), so the file says which one sealed it and is
//! opened the same way, whether or not a PIN was set or removed since.
//!
//! The whole header (bytes 0 .. 65+L) is the AEAD's associated data, so a changed header
//! fails like a changed ciphertext. Key = HKDF-SHA256(salt = hmac-secret salt1,
//! IKM = hmac-secret output1, info = [`HKDF_INFO`]), 32 bytes.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hkdf::Hkdf;
use sha2::Sha256;
use thiserror::Error;
use zeroize::Zeroizing;

use super::{HmacSecret, SALT_LEN};

/// First bytes of every sealed file.
pub const MAGIC: &[u8; 8] = b"OBSEALVK";
/// The format this build writes and the newest it reads.
pub const FORMAT_VERSION: u16 = 1;
/// HKDF info string: binds the key to this use and format.
pub const HKDF_INFO: &[u8] = b"oathbridge sealed virtual key v1";
/// YKOATH salt length (bytes), as in the state file.
pub const CARD_SALT_LEN: usize = 8;
/// Flags bit: the secret was obtained with user verification (PIN).
pub const FLAG_UV: u8 = 0x01;
/// Longest credential id accepted (bytes); CTAP keys use 16..=255 in practice.
pub const MAX_CREDENTIAL_ID_LEN: usize = 1024;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// Largest sealed file read (bytes): the state of a full key is a few tens of KiB.
pub const MAX_FILE_LEN: usize = 4 * 1024 * 1024;

/// Why a sealed file cannot be read. Never quotes file contents.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SealedError {
    #[error("not a sealed virtual key (no OBSEALVK magic)")]
    NotSealed,
    #[error("truncated: the file ends inside the {0}")]
    Truncated(&'static str),
    #[error("written by a newer oathbridge (format {0}; this one reads up to {FORMAT_VERSION})")]
    NewerFormat(u16),
    #[error("invalid {0}")]
    Invalid(&'static str),
    #[error("too large (more than {MAX_FILE_LEN} bytes)")]
    TooLarge,
    /// The tag did not verify: another key's secret, or a changed file.
    #[error("cannot decrypt: the file was altered, or it was sealed with another FIDO2 credential")]
    Undecryptable,
}

/// The public header: what is needed to ask the FIDO2 key for the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub card_salt: [u8; CARD_SALT_LEN],
    /// Sealed with user verification: opening needs the FIDO2 PIN.
    pub uv: bool,
    pub credential_id: Vec<u8>,
    pub salt: [u8; SALT_LEN],
}

/// The AES-256 key of one sealed file.
pub type FileKey = Zeroizing<[u8; 32]>;

/// Whether `bytes` start like a sealed file (the caller then parses it fully).
pub fn is_sealed(bytes: &[u8]) -> bool {
    bytes.starts_with(MAGIC)
}

/// The file key from the `hmac-secret` output (HKDF-SHA256, RFC 5869).
pub fn derive_key(header: &Header, secret: &HmacSecret) -> FileKey {
    let hkdf = Hkdf::<Sha256>::new(Some(&header.salt), secret.as_ref());
    let mut key = Zeroizing::new([0u8; 32]);
    // 32 bytes is far below HKDF-SHA256's 8160-byte limit.
    let _ = hkdf.expand(HKDF_INFO, key.as_mut());
    key
}

impl Header {
    fn encode(&self, nonce: &[u8; NONCE_LEN]) -> Vec<u8> {
        let mut out = Vec::with_capacity(65 + self.credential_id.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_be_bytes());
        out.extend_from_slice(&self.card_salt);
        out.push(if self.uv { FLAG_UV } else { 0 });
        // Checked on creation and parse: fits u16.
        out.extend_from_slice(&(self.credential_id.len() as u16).to_be_bytes());
        out.extend_from_slice(&self.credential_id);
        out.extend_from_slice(&self.salt);
        out.extend_from_slice(nonce);
        out
    }
}

/// A parsed sealed file: header, the bytes it authenticates, and the ciphertext.
#[derive(Debug, Clone)]
pub struct SealedFile {
    pub header: Header,
    aad: Vec<u8>,
    nonce: [u8; NONCE_LEN],
    ciphertext: Vec<u8>,
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], SealedError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len())
            .ok_or(SealedError::Truncated(what))?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], SealedError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }
}

impl SealedFile {
    /// Parse and check the header; the ciphertext is checked by [`SealedFile::open`].
    pub fn parse(bytes: &[u8]) -> Result<Self, SealedError> {
        if bytes.len() > MAX_FILE_LEN {
            return Err(SealedError::TooLarge);
        }
        let mut reader = Reader { bytes, at: 0 };
        if reader.take(MAGIC.len(), "magic").ok() != Some(MAGIC.as_slice()) {
            return Err(SealedError::NotSealed);
        }
        let version = u16::from_be_bytes(reader.array("format version")?);
        if version > FORMAT_VERSION {
            return Err(SealedError::NewerFormat(version));
        }
        if version == 0 {
            return Err(SealedError::Invalid("format version"));
        }
        let card_salt = reader.array("card salt")?;
        let [flags] = reader.array("flags")?;
        if flags & !FLAG_UV != 0 {
            return Err(SealedError::Invalid("flags"));
        }
        let id_len = usize::from(u16::from_be_bytes(reader.array("credential id length")?));
        if id_len == 0 || id_len > MAX_CREDENTIAL_ID_LEN {
            return Err(SealedError::Invalid("credential id length"));
        }
        let credential_id = reader.take(id_len, "credential id")?.to_vec();
        let salt = reader.array("hmac-secret salt")?;
        let nonce = reader.array("nonce")?;
        let aad = bytes[..reader.at].to_vec();
        let ciphertext = &bytes[reader.at..];
        if ciphertext.len() < TAG_LEN {
            return Err(SealedError::Truncated("ciphertext"));
        }
        Ok(Self {
            header: Header {
                card_salt,
                uv: flags & FLAG_UV != 0,
                credential_id,
                salt,
            },
            aad,
            nonce,
            ciphertext: ciphertext.to_vec(),
        })
    }

    /// Decrypt with `key`: the state JSON.
    pub fn open(&self, key: &FileKey) -> Result<Zeroizing<Vec<u8>>, SealedError> {
        let cipher = Aes256Gcm::new_from_slice(key.as_ref())
            .map_err(|_| SealedError::Invalid("key length"))?;
        cipher
            .decrypt(
                Nonce::from_slice(&self.nonce),
                Payload {
                    msg: &self.ciphertext,
                    aad: &self.aad,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| SealedError::Undecryptable)
    }
}

/// Encrypt `plaintext` under `key` with a fresh random nonce: the whole file.
pub fn seal(header: &Header, key: &FileKey, plaintext: &[u8]) -> Result<Vec<u8>, SealedError> {
    if header.credential_id.is_empty() || header.credential_id.len() > MAX_CREDENTIAL_ID_LEN {
        return Err(SealedError::Invalid("credential id length"));
    }
    let mut nonce = [0u8; NONCE_LEN];
    getrandom::fill(&mut nonce).map_err(|_| SealedError::Invalid("randomness"))?;
    let aad = header.encode(&nonce);
    let cipher =
        Aes256Gcm::new_from_slice(key.as_ref()).map_err(|_| SealedError::Invalid("key length"))?;
    let ciphertext = cipher
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad: &aad,
            },
        )
        .map_err(|_| SealedError::Invalid("plaintext length"))?;
    let mut out = aad;
    out.extend_from_slice(&ciphertext);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header {
            card_salt: [1; 8],
            uv: true,
            credential_id: vec![2; 48],
            salt: [3; 32],
        }
    }

    fn key() -> FileKey {
        derive_key(&header(), &Zeroizing::new([9; 32]))
    }

    #[test]
    fn round_trip_and_layout() {
        let sealed = seal(&header(), &key(), b"{\"format\":1}").unwrap();
        assert!(is_sealed(&sealed));
        assert_eq!(&sealed[8..10], &[0, 1]);
        assert_eq!(sealed[18], FLAG_UV);
        assert_eq!(&sealed[19..21], &[0, 48]);
        assert_eq!(sealed.len(), 65 + 48 + 12 + TAG_LEN);
        let file = SealedFile::parse(&sealed).unwrap();
        assert_eq!(file.header, header());
        assert_eq!(file.open(&key()).unwrap().as_slice(), b"{\"format\":1}");
        // A fresh nonce each time.
        assert_ne!(sealed, seal(&header(), &key(), b"{\"format\":1}").unwrap());
    }

    #[test]
    fn key_depends_on_secret_salt_and_info() {
        let other_secret = derive_key(&header(), &Zeroizing::new([8; 32]));
        let mut other_salt = header();
        other_salt.salt = [4; 32];
        assert_ne!(key(), other_secret);
        assert_ne!(key(), derive_key(&other_salt, &Zeroizing::new([9; 32])));
    }

    #[test]
    fn every_truncation_and_every_flipped_byte_is_refused() {
        let sealed = seal(&header(), &key(), b"secret state").unwrap();
        for len in 0..sealed.len() {
            let refused = SealedFile::parse(&sealed[..len]).and_then(|f| f.open(&key()));
            assert!(refused.is_err(), "truncated to {len} bytes was accepted");
        }
        for at in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[at] ^= 0x01;
            let refused = SealedFile::parse(&bad).and_then(|f| f.open(&key()));
            assert!(refused.is_err(), "flipped byte {at} was accepted");
        }
    }

    #[test]
    fn wrong_key_newer_format_and_garbage() {
        let sealed = seal(&header(), &key(), b"x").unwrap();
        let wrong = derive_key(&header(), &Zeroizing::new([0; 32]));
        assert_eq!(
            SealedFile::parse(&sealed).unwrap().open(&wrong),
            Err(SealedError::Undecryptable)
        );
        let mut newer = sealed.clone();
        newer[8..10].copy_from_slice(&2u16.to_be_bytes());
        assert_eq!(
            SealedFile::parse(&newer).unwrap_err(),
            SealedError::NewerFormat(2)
        );
        assert_eq!(
            SealedFile::parse(b"{\"format\": 1}").unwrap_err(),
            SealedError::NotSealed
        );
        let mut flags = sealed.clone();
        flags[18] = 0x80;
        assert_eq!(
            SealedFile::parse(&flags).unwrap_err(),
            SealedError::Invalid("flags")
        );
        let mut no_id = sealed;
        no_id[19..21].copy_from_slice(&[0, 0]);
        assert_eq!(
            SealedFile::parse(&no_id).unwrap_err(),
            SealedError::Invalid("credential id length")
        );
    }
}
