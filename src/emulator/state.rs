//! What the card remembers (credentials, access key, salt) and its JSON state file.
//!
//! The file holds secrets: it is written atomically with mode 0600, and a file that
//! group or others can read is refused at load time.

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use data_encoding::HEXLOWER;
use serde::{Deserialize, Serialize};
use thiserror::Error;
use zeroize::{Zeroize, Zeroizing};

use crate::oath::consts::PROP_REQUIRE_TOUCH;
use crate::otp::{HashAlgorithm, OathType};

/// Bumped when the file layout changes incompatibly.
const FORMAT_VERSION: u32 = 1;
/// Longest id any profile accepts; longer ids in a file mean the file is corrupt.
const MAX_STORED_ID_LEN: usize = 127;
pub(crate) const SALT_LEN: usize = 8;

#[derive(Debug, Error)]
pub enum StateError {
    #[error("state file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "state file {path} is readable by group or others (mode {mode:03o}); run chmod 600 on it"
    )]
    Insecure { path: PathBuf, mode: u32 },
    #[error("state file {path} is not a regular file")]
    NotAFile { path: PathBuf },
    #[error("state file {path} is invalid: {reason}")]
    Invalid { path: PathBuf, reason: String },
}

/// One credential as the card stores it.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct StoredCredential {
    pub id: Vec<u8>,
    pub oath_type: OathType,
    pub algorithm: HashAlgorithm,
    pub digits: u8,
    pub key: Zeroizing<Vec<u8>>,
    /// The raw PUT property byte (0x02 = require touch).
    pub properties: u8,
    /// HOTP moving factor: the next CALCULATE uses this value, then increments it.
    pub counter: u64,
}

impl StoredCredential {
    pub fn type_and_algorithm(&self) -> u8 {
        self.oath_type.code() | self.algorithm.code()
    }

    pub fn requires_touch(&self) -> bool {
        self.properties & PROP_REQUIRE_TOUCH != 0
    }
}

/// The password (access key) protecting the applet.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct AccessKey {
    pub algorithm: HashAlgorithm,
    pub key: Zeroizing<Vec<u8>>,
}

// Debug without the key bytes: secrets never reach logs or panic messages.
impl fmt::Debug for StoredCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredCredential")
            .field("id", &String::from_utf8_lossy(&self.id))
            .field("oath_type", &self.oath_type)
            .field("algorithm", &self.algorithm)
            .field("digits", &self.digits)
            .field("properties", &self.properties)
            .field("counter", &self.counter)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for AccessKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessKey")
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

/// Everything that survives a power cycle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PersistentState {
    pub salt: [u8; SALT_LEN],
    pub access_key: Option<AccessKey>,
    pub credentials: Vec<StoredCredential>,
}

impl PersistentState {
    pub fn fresh(salt: [u8; SALT_LEN]) -> Self {
        Self {
            salt,
            access_key: None,
            credentials: Vec::new(),
        }
    }

    pub fn position(&self, id: &[u8]) -> Option<usize> {
        self.credentials.iter().position(|c| c.id == id)
    }

    /// Write the state to `path` atomically (temp file in the same directory + rename).
    pub fn save(&self, path: &Path) -> Result<(), StateError> {
        let json = self.to_json().map_err(|reason| StateError::Invalid {
            path: path.to_path_buf(),
            reason,
        })?;
        write_private_atomically(path, &json)
    }

    /// The state file's JSON (what [`PersistentState::save`] writes), for sealing.
    pub fn to_json(&self) -> Result<Zeroizing<Vec<u8>>, String> {
        let file = StateFile::from_state(self);
        serde_json::to_vec_pretty(&file)
            .map(Zeroizing::new)
            .map_err(|e| e.to_string())
    }

    /// Parse and validate state JSON (a state file's contents, or an opened sealed file).
    pub fn from_json(bytes: &[u8]) -> Result<Self, String> {
        let file: StateFile = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        file.to_state()
    }

    /// Read and validate a state file written by [`PersistentState::save`].
    pub fn load(path: &Path) -> Result<Self, StateError> {
        let io_error = |source| StateError::Io {
            path: path.to_path_buf(),
            source,
        };
        let metadata = fs::metadata(path).map_err(io_error)?;
        if !metadata.is_file() {
            return Err(StateError::NotAFile {
                path: path.to_path_buf(),
            });
        }
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(StateError::Insecure {
                path: path.to_path_buf(),
                mode,
            });
        }
        let mut bytes = Zeroizing::new(Vec::new());
        fs::File::open(path)
            .and_then(|mut f| f.read_to_end(&mut bytes))
            .map_err(io_error)?;
        let invalid = |reason: String| StateError::Invalid {
            path: path.to_path_buf(),
            reason,
        };
        Self::from_json(&bytes).map_err(invalid)
    }
}

/// On-disk layout. Secrets are hex strings, wiped when the value is dropped.
#[derive(Serialize, Deserialize, Zeroize)]
struct StateFile {
    format: u32,
    salt: String,
    access_key: Option<AccessKeyFile>,
    credentials: Vec<CredentialFile>,
}

#[derive(Serialize, Deserialize, Zeroize)]
struct AccessKeyFile {
    algorithm: String,
    key: String,
}

#[derive(Serialize, Deserialize, Zeroize)]
struct CredentialFile {
    /// Hex, because ids are bytes and need not be UTF-8.
    id: String,
    #[serde(rename = "type")]
    oath_type: String,
    algorithm: String,
    digits: u8,
    key: String,
    properties: u8,
    counter: u64,
}

impl Drop for StateFile {
    fn drop(&mut self) {
        self.zeroize();
    }
}

fn algorithm_name(algorithm: HashAlgorithm) -> String {
    algorithm.name().to_ascii_lowercase()
}

fn decode_hex(what: &str, text: &str) -> Result<Zeroizing<Vec<u8>>, String> {
    HEXLOWER
        .decode(text.to_ascii_lowercase().as_bytes())
        .map(Zeroizing::new)
        .map_err(|_| format!("{what} is not hex"))
}

impl StateFile {
    fn from_state(state: &PersistentState) -> Self {
        Self {
            format: FORMAT_VERSION,
            salt: HEXLOWER.encode(&state.salt),
            access_key: state.access_key.as_ref().map(|k| AccessKeyFile {
                algorithm: algorithm_name(k.algorithm),
                key: HEXLOWER.encode(&k.key),
            }),
            credentials: state
                .credentials
                .iter()
                .map(|c| CredentialFile {
                    id: HEXLOWER.encode(&c.id),
                    oath_type: c.oath_type.name().to_ascii_lowercase(),
                    algorithm: algorithm_name(c.algorithm),
                    digits: c.digits,
                    key: HEXLOWER.encode(&c.key),
                    properties: c.properties,
                    counter: c.counter,
                })
                .collect(),
        }
    }

    fn to_state(&self) -> Result<PersistentState, String> {
        if self.format != FORMAT_VERSION {
            return Err(format!("unsupported format {}", self.format));
        }
        let salt = decode_hex("salt", &self.salt)?;
        let salt: [u8; SALT_LEN] = salt
            .as_slice()
            .try_into()
            .map_err(|_| format!("salt must be {SALT_LEN} bytes"))?;
        let access_key = match &self.access_key {
            None => None,
            Some(k) => {
                let algorithm: HashAlgorithm = k.algorithm.parse()?;
                if algorithm == HashAlgorithm::Sha512 {
                    return Err("access key algorithm must be sha1 or sha256".into());
                }
                let key = decode_hex("access key", &k.key)?;
                if key.is_empty() {
                    return Err("access key is empty".into());
                }
                Some(AccessKey { algorithm, key })
            }
        };
        let mut credentials = Vec::with_capacity(self.credentials.len());
        for c in &self.credentials {
            let id = decode_hex("credential id", &c.id)?.to_vec();
            if id.is_empty() || id.len() > MAX_STORED_ID_LEN {
                return Err(format!("credential id length {} out of range", id.len()));
            }
            if credentials.iter().any(|s: &StoredCredential| s.id == id) {
                return Err("duplicate credential id".into());
            }
            let key = decode_hex("credential key", &c.key)?;
            if key.is_empty() {
                return Err("credential key is empty".into());
            }
            if !(1..=10).contains(&c.digits) {
                return Err(format!("credential digits {} out of range", c.digits));
            }
            credentials.push(StoredCredential {
                id,
                oath_type: c.oath_type.parse()?,
                algorithm: c.algorithm.parse()?,
                digits: c.digits,
                key,
                properties: c.properties,
                counter: c.counter,
            });
        }
        Ok(PersistentState {
            salt,
            access_key,
            credentials,
        })
    }
}

/// A point inside [`write_private_atomically_with`], for crash-injection tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteStep {
    /// The temp file is written and fsynced; `path` still holds the old contents.
    TempWritten,
    /// The rename happened; the directory is not fsynced yet.
    Renamed,
}

/// Write `bytes` to a fresh 0600 temp file beside `path`, fsync it, rename it over `path`,
/// then fsync the directory: at every moment `path` holds the old or the new contents.
pub fn write_private_atomically(path: &Path, bytes: &[u8]) -> Result<(), StateError> {
    write_private_atomically_with(path, bytes, &mut |_| Ok(()))
}

/// [`write_private_atomically`], calling `hook` at each [`WriteStep`]; an error from the
/// hook stops the write there (the temp file is removed).
pub fn write_private_atomically_with(
    path: &Path,
    bytes: &[u8],
    hook: &mut dyn FnMut(WriteStep) -> std::io::Result<()>,
) -> Result<(), StateError> {
    // Distinguishes temp files of several cards in one process.
    static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);
    let io_error = |source| StateError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file_name = path.file_name().ok_or_else(|| StateError::NotAFile {
        path: path.to_path_buf(),
    })?;
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let temp = dir.join(format!(
        ".{}.{}.{}.tmp",
        file_name.to_string_lossy(),
        std::process::id(),
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temp)
        .and_then(|mut file| {
            file.write_all(bytes)?;
            file.sync_all()
        })
        .and_then(|()| hook(WriteStep::TempWritten))
        .and_then(|()| fs::rename(&temp, path));
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result.map_err(io_error)?;
    hook(WriteStep::Renamed).map_err(io_error)?;
    // The rename itself is durable only once the directory is.
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> PersistentState {
        PersistentState {
            salt: [1, 2, 3, 4, 5, 6, 7, 8],
            access_key: Some(AccessKey {
                algorithm: HashAlgorithm::Sha256,
                key: Zeroizing::new(vec![0xAB; 16]),
            }),
            credentials: vec![StoredCredential {
                id: vec![0xFF, b'a'],
                oath_type: OathType::Hotp,
                algorithm: HashAlgorithm::Sha512,
                digits: 8,
                key: Zeroizing::new(b"12345678901234567890".to_vec()),
                properties: PROP_REQUIRE_TOUCH,
                counter: 42,
            }],
        }
    }

    #[test]
    fn round_trip_with_private_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("card.json");
        sample().save(&path).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(PersistentState::load(&path).unwrap(), sample());
        // No temp files left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn refuses_readable_or_garbage_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("card.json");
        sample().save(&path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            PersistentState::load(&path),
            Err(StateError::Insecure { mode: 0o644, .. })
        ));
        fs::write(&path, b"{not json").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        assert!(matches!(
            PersistentState::load(&path),
            Err(StateError::Invalid { .. })
        ));
        assert!(matches!(
            PersistentState::load(dir.path()),
            Err(StateError::NotAFile { .. })
        ));
    }
}
