//! Where commands get their keys from: the daemon over D-Bus when it is on the session bus
//! (or can be activated), else the keys directly through pcscd. Same data either way, so
//! the commands print the same output and exit with the same codes.

use tracing::debug;

use super::GlobalArgs;
use super::error::{CliError, CliResult};
use super::keys::{Key, Keys, Unlock};
use crate::import::apply::apply;
use crate::import::plan::{KeyPlan, KeyView, Planned, plan_key};
use crate::oath::{Code, CodeEntry, Credential, CredentialId, Session, Transport};
use crate::secrets::SecretStore;

pub trait Backend {
    fn keys(&self) -> &[Key];
    /// Accounts of one key, with touch and digits where the key reports them.
    fn list(&mut self, key: usize) -> CliResult<Vec<Credential>>;
    /// Codes of one key at `timestamp` (touch and HOTP accounts without a code).
    fn codes(&mut self, key: usize, timestamp: u64) -> CliResult<Vec<CodeEntry>>;
    /// One account's codes at each timestamp (waits for touch; Steam codes for Steam).
    fn calculate(
        &mut self,
        key: usize,
        credential: &Credential,
        at: &[u64],
    ) -> CliResult<Vec<Code>>;
    /// Check an import against one key without writing: every problem, or Ok.
    fn check_import(&mut self, key: usize, accounts: &[Planned], force: bool) -> CliResult<()>;
    /// Plan and write an import onto one key in one go; on failure the key keeps nothing
    /// of it (or the error says exactly what is left).
    fn import(
        &mut self,
        key: usize,
        accounts: &[Planned],
        force: bool,
    ) -> CliResult<Vec<Credential>>;
    fn delete(&mut self, key: usize, credential: &Credential) -> CliResult<()>;
    fn rename(
        &mut self,
        key: usize,
        credential: &Credential,
        new_id: &CredentialId,
    ) -> CliResult<Credential>;

    /// Set the password (`new` non-empty) or clear it (`new` empty). `current` is the
    /// password in force, when there is one.
    fn set_password(
        &mut self,
        key: usize,
        current: Option<&str>,
        new: &str,
        remember: bool,
    ) -> CliResult<()>;
    /// Check `password`; with `remember`, keep the derived key in the Secret Service.
    fn unlock(&mut self, key: usize, password: &str, remember: bool) -> CliResult<()>;
    /// Drop the remembered key.
    fn forget(&mut self, key: usize) -> CliResult<()>;
    /// Delete every account and the password.
    fn reset(&mut self, key: usize) -> CliResult<()>;

    /// Make the key show itself (blink). Directly, every key is reached over PC/SC, which
    /// has no WINK: exit 8 with the reason.
    fn identify(&mut self, key: usize) -> CliResult<()> {
        Err(CliError::Coded {
            code: super::error::exit::UNSUPPORTED,
            message: format!(
                "key {} cannot identify itself over CCID (PC/SC has no WINK)",
                self.keys()[key].id
            ),
        })
    }

    /// Read the keys again where answers may come from a cache (the daemon's), so that a
    /// lookup that found nothing can try once more: an account another program added since
    /// is then found. True if anything was read again; direct mode always reads the keys.
    fn refresh(&mut self) -> CliResult<bool> {
        Ok(false)
    }

    /// A password is set on the key (`Key::locked` says whether one is needed now).
    fn has_password(&self, key: usize) -> bool {
        self.keys()[key].locked
    }

    /// The one key a write goes to; several keys need `--device` or `--reader`.
    fn single(&self) -> CliResult<usize> {
        super::keys::single_index(self.keys())
    }
}

/// Pick the backend for this invocation.
pub fn open(global: &GlobalArgs) -> CliResult<Box<dyn Backend>> {
    open_prefetching(global, None)
}

/// Like [`open`] for a command that starts with every key's codes at `codes_at`: talking to
/// the keys directly, discovery calculates them in the same transaction (one SELECT).
pub fn open_prefetching(global: &GlobalArgs, codes_at: Option<u64>) -> CliResult<Box<dyn Backend>> {
    // A bridge socket named on the command line is reached directly: the daemon may not
    // know it.
    if !global.direct
        && global.hid_sockets.is_empty()
        && let Some(daemon) = super::via_daemon::DaemonBackend::connect(global)?
    {
        debug!("using the oathbridge daemon");
        return Ok(Box::new(daemon));
    }
    debug!("talking to the keys directly");
    Ok(Box::new(DirectBackend {
        keys: Keys::discover_prefetching(&global.filter(), codes_at)?,
    }))
}

pub struct DirectBackend {
    pub keys: Keys,
}

/// Run a Secret Service operation from synchronous code.
pub(super) fn with_store<R>(
    action: impl AsyncFnOnce(&SecretStore) -> Result<R, crate::secrets::SecretsError>,
) -> CliResult<R> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Failure(format!("cannot start the async runtime: {e}")))?;
    runtime
        .block_on(async {
            let store = SecretStore::open_session_bus().await?;
            action(&store).await
        })
        .map_err(|e| CliError::Failure(e.to_string()))
}

fn remember_key(id: &str, key: &[u8]) -> CliResult<()> {
    with_store(async |store| store.store(id, key).await)?;
    eprintln!("Remembered the password of key {id} in the Secret Service");
    Ok(())
}

impl Backend for DirectBackend {
    fn keys(&self) -> &[Key] {
        &self.keys.keys
    }

    /// A key with a Secrets App HID side blinks (CTAPHID WINK, CTAP 2.1 §11.2.9.2.1);
    /// over CCID alone, or a YubiKey OTP interface, it cannot (exit 8).
    fn identify(&mut self, key: usize) -> CliResult<()> {
        let found = &self.keys.keys[key];
        let Some(hid) = found.access.hid.as_ref().filter(|_| !found.access.otp) else {
            return Err(CliError::Coded {
                code: super::error::exit::UNSUPPORTED,
                message: format!(
                    "key {} cannot identify itself over {} (no WINK there)",
                    found.id,
                    if found.access.otp {
                        "its OTP interface"
                    } else {
                        "CCID"
                    }
                ),
            });
        };
        let mut secrets = hid
            .open_secrets()
            .map_err(crate::oath::OathError::Transport)?;
        secrets
            .wink()
            .map_err(|e| CliError::from(crate::oath::OathError::Transport(e)))
    }

    fn list(&mut self, key: usize) -> CliResult<Vec<Credential>> {
        if self.keys.keys[key].access.otp {
            return super::hid_keys::list(&self.keys.keys[key]);
        }
        let now = crate::clock::unix_now();
        self.keys.with_session(&self.keys.keys[key], |session| {
            Ok(session.list_detailed(now)?)
        })
    }

    fn codes(&mut self, key: usize, timestamp: u64) -> CliResult<Vec<CodeEntry>> {
        if let Some(entries) = self.keys.take_prefetched(key, timestamp) {
            return Ok(entries);
        }
        if self.keys.keys[key].access.otp {
            return super::hid_keys::codes(&self.keys.keys[key], timestamp);
        }
        self.keys.with_session(&self.keys.keys[key], |session| {
            Ok(session.calculate_all(timestamp)?)
        })
    }

    fn calculate(
        &mut self,
        key: usize,
        credential: &Credential,
        at: &[u64],
    ) -> CliResult<Vec<Code>> {
        if self.keys.keys[key].access.otp {
            return super::hid_keys::calculate(&self.keys.keys[key], credential, at);
        }
        self.keys.with_session(&self.keys.keys[key], |session| {
            at.iter()
                .map(|t| Ok(session.calculate_code(credential, *t)?))
                .collect()
        })
    }

    fn check_import(&mut self, key: usize, accounts: &[Planned], force: bool) -> CliResult<()> {
        let label = self.keys.keys[key].id.clone();
        self.keys.with_session(&self.keys.keys[key], |session| {
            plan_on(session, &label, accounts, force).map(drop)
        })
    }

    fn import(
        &mut self,
        key: usize,
        accounts: &[Planned],
        force: bool,
    ) -> CliResult<Vec<Credential>> {
        let label = self.keys.keys[key].id.clone();
        self.keys.with_session(&self.keys.keys[key], |session| {
            // Planned again inside this transaction: the key may have changed since.
            let plan = plan_on(session, &label, accounts, force)?;
            match apply(session, accounts, &plan) {
                Ok(written) => Ok(written.credentials),
                Err(error) => {
                    let message = format!("key {label}: writing failed: {error}");
                    Err(CliError::Import {
                        code: CliError::from(error.cause).exit_code(),
                        message,
                    })
                }
            }
        })
    }

    fn delete(&mut self, key: usize, credential: &Credential) -> CliResult<()> {
        self.keys.with_session(&self.keys.keys[key], |session| {
            Ok(session.delete(credential)?)
        })
    }

    fn rename(
        &mut self,
        key: usize,
        credential: &Credential,
        new_id: &CredentialId,
    ) -> CliResult<Credential> {
        self.keys.with_session(&self.keys.keys[key], |session| {
            Ok(session.rename(credential, new_id)?)
        })
    }

    fn set_password(
        &mut self,
        key: usize,
        current: Option<&str>,
        new: &str,
        remember: bool,
    ) -> CliResult<()> {
        let target = &self.keys.keys[key];
        if remember {
            // Fail before the password changes, not after.
            with_store(async |_| Ok(()))?;
        }
        let unlock = current.map_or(Unlock::Prompt, Unlock::With);
        let derived = self
            .keys
            .with_session_unlocking(target, unlock, |session| {
                if new.is_empty() {
                    session.clear_password()?;
                    Ok(None)
                } else {
                    Ok(Some(session.set_password(new)?))
                }
            })?;
        // A key remembered for the old password would fail from now on.
        if target.locked {
            let _ = with_store(async |store| store.forget(&target.id).await);
        }
        if remember && let Some(derived) = derived {
            remember_key(&target.id, derived.as_ref())?;
        }
        Ok(())
    }

    fn unlock(&mut self, key: usize, password: &str, remember: bool) -> CliResult<()> {
        let target = &self.keys.keys[key];
        let derived =
            self.keys
                .with_session_unlocking(target, Unlock::With(password), |session| {
                    Ok(session.derive_key(password)?)
                })?;
        if remember {
            remember_key(&target.id, derived.as_ref())?;
        }
        Ok(())
    }

    fn forget(&mut self, key: usize) -> CliResult<()> {
        let id = self.keys.keys[key].id.clone();
        if !with_store(async |store| store.forget(&id).await)? {
            eprintln!("No password was remembered for key {id}");
        }
        Ok(())
    }

    fn reset(&mut self, key: usize) -> CliResult<()> {
        self.keys
            .with_session_unlocking(&self.keys.keys[key], Unlock::Skip, |session| {
                Ok(session.reset()?)
            })
    }
}

/// The plan for one key, from its accounts now (one LIST).
fn plan_on<T: Transport>(
    session: &mut Session<T>,
    label: &str,
    accounts: &[Planned],
    force: bool,
) -> CliResult<KeyPlan> {
    let existing = session.list()?;
    let quirks = session.quirks().clone();
    let key = KeyView {
        label,
        quirks: &quirks,
        existing: &existing,
    };
    plan_key(accounts, &key, force).map_err(|problems| CliError::refused(&problems))
}
