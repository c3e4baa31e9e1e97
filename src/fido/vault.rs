//! Sealed virtual keys on disk and in memory: create, migrate a clear-text state file,
//! open with the FIDO2 key's `hmac-secret`, hold the opened card, re-seal every change.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use thiserror::Error;
use tracing::info;
use zeroize::Zeroizing;

use super::sealed::{self, FileKey, Header, SealedError, SealedFile};
use super::{FidoError, HmacSecretAuthenticator, SALT_LEN};
use crate::emulator::{
    Card, CardConfig, StateError, StateSink, WriteStep, write_private_atomically,
    write_private_atomically_with,
};

/// Why a sealed virtual key could not be made, migrated or opened. Messages name the file
/// and the problem, never contents, PINs or keys.
#[derive(Debug, Error)]
pub enum VaultError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("sealed virtual key {path}: {source}")]
    Sealed { path: PathBuf, source: SealedError },
    #[error("{0}")]
    Fido(#[from] FidoError),
    #[error("{0}")]
    State(#[from] StateError),
    #[error("{path} already exists; not overwriting it")]
    Exists { path: PathBuf },
    #[error("{path} is already sealed")]
    AlreadySealed { path: PathBuf },
    #[error("sealed virtual key {path}: the opened state is invalid: {reason}")]
    BadState { path: PathBuf, reason: String },
}

/// Read at most [`sealed::MAX_FILE_LEN`] + 1 bytes of `path`.
fn read_bounded(path: &Path) -> Result<Zeroizing<Vec<u8>>, VaultError> {
    let mut bytes = Zeroizing::new(Vec::new());
    std::fs::File::open(path)
        .and_then(|f| {
            f.take(sealed::MAX_FILE_LEN as u64 + 1)
                .read_to_end(&mut bytes)
        })
        .map_err(|source| VaultError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(bytes)
}

/// Whether `path` is a sealed file (starts with the magic). A missing file is not.
pub fn is_sealed_file(path: &Path) -> bool {
    let mut magic = [0u8; 8];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok()
        && sealed::is_sealed(&magic)
}

/// Parse `path` as a sealed file (header checked, ciphertext not yet).
pub fn read_sealed(path: &Path) -> Result<SealedFile, VaultError> {
    let bytes = read_bounded(path)?;
    SealedFile::parse(&bytes).map_err(|source| VaultError::Sealed {
        path: path.to_path_buf(),
        source,
    })
}

/// The PIN to send: the given one when the authenticator has a PIN set, else none.
fn pin_for<'a>(
    authenticator: &dyn HmacSecretAuthenticator,
    pin: Option<&'a str>,
) -> Result<Option<&'a str>, FidoError> {
    if !authenticator.pin_set()? {
        return Ok(None);
    }
    match pin {
        Some(pin) if !pin.is_empty() => Ok(Some(pin)),
        _ => Err(FidoError::PinRequired),
    }
}

/// A new credential and salt, and the file key they give (two touches: makeCredential,
/// then getAssertion for the `hmac-secret` output).
fn new_seal(
    authenticator: &dyn HmacSecretAuthenticator,
    pin: Option<&str>,
    card_salt: [u8; sealed::CARD_SALT_LEN],
) -> Result<(Header, FileKey), VaultError> {
    let pin = pin_for(authenticator, pin)?;
    let credential_id = authenticator.make_credential(pin)?;
    let mut salt = [0u8; SALT_LEN];
    getrandom::fill(&mut salt)
        .map_err(|e| FidoError::Device(format!("no randomness for the salt: {e}")))?;
    let header = Header {
        card_salt,
        uv: pin.is_some(),
        credential_id,
        salt,
    };
    let secret = authenticator.hmac_secret(&header.credential_id, &header.salt, pin)?;
    let key = sealed::derive_key(&header, &secret);
    Ok((header, key))
}

fn seal_bytes(
    path: &Path,
    header: &Header,
    key: &FileKey,
    json: &[u8],
) -> Result<Vec<u8>, VaultError> {
    sealed::seal(header, key, json).map_err(|source| VaultError::Sealed {
        path: path.to_path_buf(),
        source,
    })
}

/// `virtual-key create`: a new empty virtual key (YubiKey profile) sealed at `path`, which
/// must not exist.
pub fn create(
    path: &Path,
    authenticator: &dyn HmacSecretAuthenticator,
    pin: Option<&str>,
) -> Result<Header, VaultError> {
    if path.exists() {
        return Err(VaultError::Exists {
            path: path.to_path_buf(),
        });
    }
    let card = Card::new(CardConfig::yubikey());
    let (header, key) = new_seal(authenticator, pin, card.oath_salt())?;
    let json = card.state_json().map_err(|reason| VaultError::BadState {
        path: path.to_path_buf(),
        reason,
    })?;
    let bytes = seal_bytes(path, &header, &key, &json)?;
    write_private_atomically(path, &bytes)?;
    info!(path = %path.display(), "sealed virtual key created");
    Ok(header)
}

/// `virtual-key seal`: replace the clear-text state file at `path` by a sealed file of the
/// same state, atomically (`hook` sees each step, for crash-injection tests). Checked
/// before writing: the sealed bytes open again with the same key.
pub fn seal_existing(
    path: &Path,
    authenticator: &dyn HmacSecretAuthenticator,
    pin: Option<&str>,
    hook: &mut dyn FnMut(WriteStep) -> std::io::Result<()>,
) -> Result<Header, VaultError> {
    if is_sealed_file(path) {
        return Err(VaultError::AlreadySealed {
            path: path.to_path_buf(),
        });
    }
    let card = Card::new(CardConfig::yubikey()).with_state_file(path)?;
    if !path.exists() {
        return Err(VaultError::Io {
            path: path.to_path_buf(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        });
    }
    let json = card.state_json().map_err(|reason| VaultError::BadState {
        path: path.to_path_buf(),
        reason,
    })?;
    let (header, key) = new_seal(authenticator, pin, card.oath_salt())?;
    let bytes = seal_bytes(path, &header, &key, &json)?;
    let check = SealedFile::parse(&bytes).and_then(|f| f.open(&key));
    if check.as_deref().map(|j| j.as_slice()) != Ok(json.as_slice()) {
        return Err(VaultError::BadState {
            path: path.to_path_buf(),
            reason: "the sealed copy did not open again".into(),
        });
    }
    write_private_atomically_with(path, &bytes, hook)?;
    info!(path = %path.display(), "virtual key sealed");
    Ok(header)
}

/// An opened sealed file: its header, file key and state JSON.
pub struct Opened {
    pub header: Header,
    pub key: FileKey,
    pub json: Zeroizing<Vec<u8>>,
}

/// Ask the authenticator for the secret (touch, and the PIN when the file was sealed with
/// user verification) and decrypt `path`.
pub fn open(
    path: &Path,
    authenticator: &dyn HmacSecretAuthenticator,
    pin: Option<&str>,
) -> Result<Opened, VaultError> {
    let file = read_sealed(path)?;
    // Opened as it was sealed: with the PIN (user verification) or with touch alone.
    let pin = match pin {
        _ if !file.header.uv => None,
        Some(pin) if !pin.is_empty() => Some(pin),
        _ => return Err(FidoError::PinRequired.into()),
    };
    let secret = authenticator.hmac_secret(&file.header.credential_id, &file.header.salt, pin)?;
    let key = sealed::derive_key(&file.header, &secret);
    let json = file.open(&key).map_err(|source| VaultError::Sealed {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(Opened {
        header: file.header,
        key,
        json,
    })
}

/// Saves an opened card's changes: encrypt with the held key (fresh nonce), write atomically.
pub struct SealingSink {
    path: PathBuf,
    header: Header,
    key: FileKey,
}

impl std::fmt::Debug for SealingSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealingSink")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl StateSink for SealingSink {
    fn save(&self, json: &[u8]) -> Result<(), String> {
        let bytes = sealed::seal(&self.header, &self.key, json).map_err(|e| e.to_string())?;
        write_private_atomically(&self.path, &bytes).map_err(|e| e.to_string())
    }
}

/// A card (`config`'s profile and faults) from an opened file, saving its changes sealed
/// to `path`.
pub fn card_from(path: &Path, opened: Opened, config: CardConfig) -> Result<Card, VaultError> {
    let Opened { header, key, json } = opened;
    let sink = SealingSink {
        path: path.to_path_buf(),
        header: header.clone(),
        key,
    };
    let card = Card::new(config)
        .with_state_sink(&json, Box::new(sink))
        .map_err(|reason| VaultError::BadState {
            path: path.to_path_buf(),
            reason,
        })?;
    if card.oath_salt() != header.card_salt {
        return Err(VaultError::BadState {
            path: path.to_path_buf(),
            reason: "the header and the state disagree on the card salt".into(),
        });
    }
    Ok(card)
}

/// What the daemon reports when opening a sealed key fails: touch timeout, PIN problems
/// as wrong password, a bad file as invalid input, the rest (no or another FIDO2 key) as
/// a card error with the message.
pub fn core_error(error: VaultError) -> crate::core::CoreError {
    use crate::core::CoreError;
    match error {
        VaultError::Fido(FidoError::TouchTimeout) => CoreError::TouchTimeout,
        VaultError::Fido(
            e @ (FidoError::PinRequired | FidoError::WrongPin { .. } | FidoError::PinBlocked),
        ) => CoreError::WrongPassword(e.to_string()),
        e @ (VaultError::Sealed { .. } | VaultError::BadState { .. }) => {
            CoreError::InvalidInput(e.to_string())
        }
        other => CoreError::Card(other.to_string()),
    }
}

/// A sealed virtual key served by the daemon: locked (only the header known) until
/// [`unlock`](Self::unlock); the opened card lives in memory until [`lock`](Self::lock).
pub struct SealedVirtualKey {
    path: PathBuf,
    card_salt: [u8; sealed::CARD_SALT_LEN],
    authenticator: Arc<dyn HmacSecretAuthenticator>,
    opened: Mutex<Option<OpenCard>>,
}

/// The opened card, and the FIDO2 key's device node (path, device, inode) when it opened:
/// a replugged key gets a new node, so a changed inode means the key left.
struct OpenCard {
    card: Arc<Mutex<Card>>,
    node: Option<(PathBuf, u64, u64)>,
}

fn node_identity(path: PathBuf) -> Option<(PathBuf, u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let metadata = std::fs::metadata(&path).ok()?;
    Some((path, metadata.dev(), metadata.ino()))
}

impl SealedVirtualKey {
    /// Read the header of `path` (nothing is decrypted yet).
    pub fn load(
        path: &Path,
        authenticator: Arc<dyn HmacSecretAuthenticator>,
    ) -> Result<Self, VaultError> {
        let file = read_sealed(path)?;
        Ok(Self {
            path: path.to_path_buf(),
            card_salt: file.header.card_salt,
            authenticator,
            opened: Mutex::new(None),
        })
    }

    fn slot(&self) -> MutexGuard<'_, Option<OpenCard>> {
        self.opened.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The opened card, or None while locked.
    pub fn card(&self) -> Option<Arc<Mutex<Card>>> {
        self.slot().as_ref().map(|open| open.card.clone())
    }

    /// Whether the FIDO2 key that opened the store is still plugged in (same device node).
    /// True while locked, and when its node was not known.
    pub fn authenticator_present(&self) -> bool {
        let slot = self.slot();
        let Some(OpenCard {
            node: Some((path, dev, ino)),
            ..
        }) = slot.as_ref()
        else {
            return true;
        };
        node_identity(path.clone()).is_some_and(|(_, d, i)| d == *dev && i == *ino)
    }

    pub fn is_open(&self) -> bool {
        self.slot().is_some()
    }

    /// An empty card with the sealed card's salt: answers SELECT like it (same device id)
    /// while the store is locked.
    pub fn stand_in(&self) -> Card {
        Card::new(CardConfig {
            salt: Some(self.card_salt),
            ..CardConfig::yubikey()
        })
    }

    /// Open the store with a touch on the FIDO2 key; `pin` is its clientPIN (empty when
    /// none is set). Blocks for the touch.
    pub fn unlock(&self, pin: &str) -> Result<(), VaultError> {
        let pin = (!pin.is_empty()).then_some(pin);
        let opened = open(&self.path, self.authenticator.as_ref(), pin)?;
        let card = card_from(&self.path, opened, CardConfig::yubikey())?;
        let node = self.authenticator.device_node().and_then(node_identity);
        *self.slot() = Some(OpenCard {
            card: Arc::new(Mutex::new(card)),
            node,
        });
        info!(path = %self.path.display(), "sealed virtual key opened");
        Ok(())
    }

    /// Drop the opened card (its secrets are zeroized as they drop).
    pub fn lock(&self) {
        if self.slot().take().is_some() {
            info!(path = %self.path.display(), "sealed virtual key locked");
        }
    }
}

#[cfg(test)]
#[path = "vault_tests.rs"]
mod tests;
