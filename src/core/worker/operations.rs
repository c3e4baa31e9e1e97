//! The operations a [`Worker`] runs for callers: listing accounts, codes (through the
//! step cache), one code (touch prompts), and writes (import, put, delete, rename), each
//! of which empties the cache.

use super::*;

impl Worker {
    /// Every account, with touch/digits details where the key reports them.
    pub fn accounts(&mut self) -> Result<Vec<Credential>, CoreError> {
        // A listing made now supersedes the one kept from the identification.
        let now = crate::clock::unix_now();
        self.cache.lock().take_listing(now);
        if let Link::Otp { path, .. } = &self.link {
            return otp::accounts(path);
        }
        self.session(|session| Ok(session.list_detailed(now)?))
    }

    /// [`Self::accounts`] for a key that just arrived (daemon start, plugged in): the
    /// listing reads every code on the way, and they are kept, so the first GetCodes (the
    /// call that activated the daemon) needs no card exchange of its own.
    pub fn accounts_on_arrival(&mut self) -> Result<Vec<Credential>, CoreError> {
        let now = crate::clock::unix_now();
        // Listed with the identification a moment ago (same transaction as its SELECT).
        if let Some(credentials) = self.cache.lock().take_listing(now) {
            return Ok(credentials);
        }
        if let Link::Otp { path, .. } = &self.link {
            return otp::accounts(path);
        }
        let (credentials, codes) = self.session(|session| Ok(session.list_with_codes(now)?))?;
        if let Some(codes) = codes {
            self.cache.lock().insert(now, codes);
        }
        Ok(credentials)
    }

    /// Every account, read again with its codes at `timestamp` even when that step is
    /// cached: for a caller who expects an account another program added or removed since.
    /// LIST and CALCULATE ALL in one transaction (one LIST and a CALCULATE per TOTP on keys
    /// without CALCULATE ALL); once read, every cached step is replaced by this step's
    /// codes, and a failed read leaves the cache as it was. None when a relist that started
    /// after the request (`seen`: [`CodeCache::relists`] then) already succeeded:
    /// concurrent refreshes share the card exchanges.
    pub fn relist(
        &mut self,
        timestamp: u64,
        seen: u64,
    ) -> Result<Option<Vec<Credential>>, CoreError> {
        self.check_insertion();
        let number = {
            let mut cache = self.cache.lock();
            if cache.relisted_since(seen) {
                return Ok(None);
            }
            cache.start_relist()
        };
        let (credentials, codes) = match &self.link {
            Link::Otp { path, .. } => (otp::accounts(path)?, None),
            _ => {
                let read = |worker: &mut Self| {
                    worker.session(|session| {
                        if session.quirks().calculate_all {
                            return Ok(session.list_with_codes(timestamp)?);
                        }
                        // No CALCULATE ALL (Nitrokey 3): its stand-in lists the key and
                        // calculates each TOTP, so that listing is the accounts too.
                        let entries = session.calculate_all(timestamp)?;
                        let credentials = entries.iter().map(|e| e.credential.clone()).collect();
                        Ok((credentials, Some(entries)))
                    })
                };
                match read(self) {
                    // Reading is idempotent: once more after another program's reset.
                    Err(CoreError::CardReset) => read(self)?,
                    other => other?,
                }
            }
        };
        self.cache.lock().relist_done(number, timestamp, codes);
        Ok(Some(credentials))
    }

    /// Codes for every account at `timestamp` (default now), from the cache when its step
    /// was computed (requests queued behind the first one find it filled: one card round
    /// trip per step), else one CALCULATE ALL.
    pub fn codes(&mut self, timestamp: Option<u64>) -> Result<Arc<Vec<CodeEntry>>, CoreError> {
        let now = timestamp.unwrap_or_else(crate::clock::unix_now);
        // Cached codes of a password-protected key are only as good as its insertion.
        self.check_insertion();
        if let Some(entries) = self.cache.lock().get(now) {
            return Ok(entries);
        }
        let entries = match &self.link {
            Link::Otp { path, .. } => otp::codes(path, now),
            _ => self.session(|session| Ok(session.calculate_all(now)?)),
        };
        let entries = match entries {
            // Reading codes is idempotent: once more after another program's reset.
            Err(CoreError::CardReset) => self.session(|session| Ok(session.calculate_all(now)?))?,
            other => other?,
        };
        Ok(self.cache.lock().insert(now, entries))
    }

    /// One code, waiting for touch when the account needs it.
    pub fn calculate(
        &mut self,
        credential: &Credential,
        timestamp: u64,
    ) -> Result<Code, CoreError> {
        let touch = credential.touch != Some(false) || credential.oath_type == OathType::Hotp;
        let label = credential.id_string();
        if touch {
            self.events.touch_pending(&self.info.id, &label, true);
        }
        let result = match &self.link {
            Link::Otp { path, .. } => otp::calculate(path, credential, timestamp),
            _ => self.session(|session| Ok(session.calculate_code(credential, timestamp)?)),
        };
        if touch {
            self.events.touch_pending(&self.info.id, &label, false);
        }
        result
    }

    /// Plan `accounts` on this key (one LIST) and, unless `dry_run`, write them all in the
    /// same transaction; a failure midway removes what this call added.
    pub fn import(
        &mut self,
        accounts: &[Planned],
        force: bool,
        dry_run: bool,
    ) -> Result<Vec<Credential>, CoreError> {
        if !dry_run {
            self.cache.lock().clear();
        }
        let label = self.info.id.clone();
        self.session(|session| {
            let existing = session.list()?;
            let quirks = session.quirks().clone();
            let key = KeyView {
                label: &label,
                quirks: &quirks,
                existing: &existing,
            };
            let plan = plan_key(accounts, &key, force).map_err(CoreError::Refused)?;
            if dry_run {
                return Ok(Vec::new());
            }
            match apply(session, accounts, &plan) {
                Ok(written) => Ok(written.credentials),
                Err(error) => Err(CoreError::ImportFailed {
                    removed: matches!(
                        error.cause,
                        crate::oath::OathError::Transport(crate::oath::TransportError::CardRemoved)
                    ),
                    message: format!("key {label}: writing failed: {error}"),
                }),
            }
        })
    }

    pub fn put(&mut self, data: &CredentialData, overwrite: bool) -> Result<Credential, CoreError> {
        self.cache.lock().clear();
        self.session(|session| Ok(session.put(data, overwrite)?))
    }

    pub fn delete(&mut self, credential: &Credential) -> Result<(), CoreError> {
        self.cache.lock().clear();
        self.session(|session| Ok(session.delete(credential)?))
    }

    pub fn rename(
        &mut self,
        credential: &Credential,
        new_id: &CredentialId,
    ) -> Result<Credential, CoreError> {
        self.cache.lock().clear();
        self.session(|session| Ok(session.rename(credential, new_id)?))
    }
}
