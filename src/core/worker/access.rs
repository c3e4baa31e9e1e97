//! The second half of [`Worker`]: unlocking (OATH password or a sealed virtual key's
//! FIDO2 touch), passwords, locking, identify (WINK) and RESET.

use std::time::{Duration, Instant};

use super::*;

impl Worker {
    /// Check `password`, keep the derived key in memory. Failed attempts back off.
    pub fn unlock(&mut self, password: &str) -> Result<(), CoreError> {
        if let Some(at) = self.next_unlock_at
            && Instant::now() < at
        {
            let wait = at.saturating_duration_since(Instant::now()).as_secs() + 1;
            return Err(CoreError::WrongPassword(format!(
                "too many wrong passwords; try again in {wait} s"
            )));
        }
        if let Link::Sealed { key, .. } = &self.link {
            // The password is the FIDO2 PIN (empty without one); the FIDO2 key counts tries.
            // TouchPending (and the desktop prompt) while the FIDO2 key waits for the touch.
            let what = "opening the sealed virtual key";
            self.events.touch_pending(&self.info.id, what, true);
            let result = key.unlock(password);
            self.events.touch_pending(&self.info.id, what, false);
            result.map_err(crate::fido::vault::core_error)?;
            self.cache.lock().clear();
            return Ok(());
        }
        self.access_key = None;
        let insertion = self.insertion();
        let password = zeroize::Zeroizing::new(password.to_owned());
        let result = with_pcsc(self, move |session| {
            if !session.has_password() {
                return Err(CoreError::InvalidInput(
                    "the key has no password set".into(),
                ));
            }
            Ok(session.unlock(&password)?)
        });
        match result {
            Ok(key) => {
                self.failed_unlocks = 0;
                self.next_unlock_at = None;
                self.keep_access_key(key, insertion);
                Ok(())
            }
            Err(error) => {
                if matches!(error, CoreError::WrongPassword(_)) {
                    self.failed_unlocks += 1;
                    let delay = Duration::from_millis(250u64 << self.failed_unlocks.min(6));
                    self.next_unlock_at = Some(Instant::now() + delay);
                }
                Err(error)
            }
        }
    }

    /// Unlock with a key remembered earlier (no rate limit: it is not a guess). A key that
    /// no longer fits is an error the caller reports and forgets.
    pub fn unlock_with_key(&mut self, key: &[u8]) -> Result<(), CoreError> {
        let mut access_key: AccessKey = zeroize::Zeroizing::new([0u8; 16]);
        if key.len() != access_key.len() {
            return Err(CoreError::WrongPassword(
                "remembered key has the wrong size".into(),
            ));
        }
        access_key.copy_from_slice(key);
        let candidate = access_key.clone();
        let insertion = self.insertion();
        with_pcsc(self, move |session| {
            Ok(session.validate(candidate.as_ref())?)
        })?;
        self.keep_access_key(access_key, insertion);
        Ok(())
    }

    /// The key in memory, for remembering it.
    pub fn access_key(&self) -> Option<zeroize::Zeroizing<Vec<u8>>> {
        self.access_key
            .as_ref()
            .map(|k| zeroize::Zeroizing::new(k.to_vec()))
    }

    /// Set (or with an empty `new`, clear) the password. `current` is needed when one is set
    /// and the key is not unlocked yet.
    pub fn set_password(&mut self, current: &str, new: &str) -> Result<(), CoreError> {
        if matches!(self.link, Link::Sealed { .. }) {
            return Err(CoreError::NotSupported(
                "a sealed virtual key is protected by its FIDO2 key, not an OATH password".into(),
            ));
        }
        if self.info.has_password && self.access_key.is_none() {
            self.unlock(current)?;
        }
        let insertion = self.insertion();
        let new = zeroize::Zeroizing::new(new.to_owned());
        let key = self.session(move |session| {
            if new.is_empty() {
                session.clear_password()?;
                Ok(None)
            } else {
                Ok(Some(session.set_password(&new)?))
            }
        })?;
        self.info.has_password = key.is_some();
        match key {
            Some(key) => self.keep_access_key(key, insertion),
            None => self.lock(),
        }
        Ok(())
    }

    /// Drop the key from memory.
    pub fn lock(&mut self) {
        if let Link::Sealed { key, .. } = &self.link {
            key.lock();
        }
        self.access_key = None;
        self.unlocked_in = None;
        self.cache.lock().clear();
    }

    /// Make the key show itself (blink), dispatched by transport: a key with a CTAPHID
    /// side (the Nitrokey 3's Secrets App) gets CTAPHID WINK (CTAP 2.1 §11.2.9.2.1); over
    /// CCID (PC/SC) there is no such command, a YubiKey OTP interface has none either, and
    /// a virtual key has no light. Errors: `NotSupported` with the reason.
    pub fn wink(&mut self) -> Result<(), CoreError> {
        let hid = match (&self.link, &self.fallback) {
            (Link::Hid { path, .. }, _) | (Link::Pcsc { .. }, Some(Link::Hid { path, .. })) => path,
            (Link::Pcsc { .. }, _) => {
                return Err(CoreError::NotSupported(
                    "the key cannot identify itself over CCID (PC/SC has no WINK)".into(),
                ));
            }
            (Link::Otp { .. }, _) => {
                return Err(CoreError::NotSupported(
                    "a YubiKey OTP interface has no WINK command".into(),
                ));
            }
            (Link::Virtual { .. } | Link::Sealed { .. }, _) => {
                return Err(CoreError::NotSupported(
                    "a virtual key has no light to blink".into(),
                ));
            }
        };
        let mut secrets = hid
            .open_secrets()
            .map_err(crate::oath::OathError::Transport)?;
        secrets
            .wink()
            .map_err(|e| CoreError::from(crate::oath::OathError::Transport(e)))
    }

    /// Forget the cached codes (session locked, suspend): the next request asks the key.
    pub fn clear_cache(&mut self) {
        self.cache.lock().clear();
    }

    /// RESET: every account and the password go; the key gets a new id (so the caller
    /// treats it as a new key).
    pub fn reset(&mut self) -> Result<DeviceInfo, CoreError> {
        self.cache.lock().clear();
        self.access_key = None;
        let link = self.link.clone();
        with_pcsc(self, |session| Ok(session.reset()?))?;
        self.pcsc_identify(&link)
    }

    fn pcsc_identify(&mut self, link: &Link) -> Result<DeviceInfo, CoreError> {
        let info = identify(link, self.pcsc.as_ref())?;
        self.info = info.clone();
        Ok(info)
    }
}

/// A session that skips the automatic VALIDATE (for unlock and reset).
fn with_pcsc<R>(
    worker: &mut Worker,
    action: impl FnOnce(&mut Session<&mut dyn Transport>) -> Result<R, CoreError>,
) -> Result<R, CoreError> {
    worker.establish_pcsc()?;
    let mut action = Some(action);
    with_transport(
        &worker.link,
        worker.fallback.as_ref(),
        worker.pcsc.as_ref(),
        &mut |transport, reader| {
            let mut session = Session::open(transport, reader)?;
            match action.take() {
                Some(action) => action(&mut session),
                None => Err(CoreError::Card("operation ran twice".into())),
            }
        },
    )
}
