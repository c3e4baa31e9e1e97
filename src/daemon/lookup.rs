//! Finding accounts for launchers (GNOME Shell, KRunner): cached codes only, never a card
//! round trip for touch accounts, so the shell is never blocked.

use zbus::Connection;
use zbus::zvariant::OwnedObjectPath;

use super::Shared;
use crate::core::CoreError;
use crate::oath::{Code, CodeEntry};
use crate::otp::OathType;

/// One account a launcher may show.
#[derive(Clone)]
pub struct Found {
    pub path: OwnedObjectPath,
    pub device_id: String,
    pub device_name: String,
    pub entry: CodeEntry,
}

impl Found {
    /// "Issuer: name", or just the name.
    pub fn title(&self) -> String {
        let id = &self.entry.credential.id;
        match &id.issuer {
            Some(issuer) => format!("{issuer}: {}", id.name),
            None => id.name.clone(),
        }
    }

    /// A code the launcher may show or copy right away (non-touch TOTP).
    pub fn ready_code(&self) -> Option<&Code> {
        self.entry.code.as_ref()
    }

    pub fn needs_touch(&self) -> bool {
        self.entry.credential.touch == Some(true)
    }

    pub fn is_hotp(&self) -> bool {
        self.entry.credential.oath_type == OathType::Hotp
    }

    /// Every term appears in the issuer or the name (case-insensitive).
    fn matches(&self, terms: &[String]) -> bool {
        let id = &self.entry.credential.id;
        let haystack = format!("{} {}", id.issuer.as_deref().unwrap_or(""), id.name).to_lowercase();
        !terms.is_empty() && terms.iter().all(|t| haystack.contains(&t.to_lowercase()))
    }
}

/// Visible (not hidden) accounts of every unlocked key, with cached codes.
pub async fn all_accounts(shared: &Shared, connection: &Connection) -> Vec<Found> {
    let mut found = Vec::new();
    for device in shared.manager.devices() {
        let id = device.info.id.clone();
        let entries = match device.handle.codes(crate::clock::unix_now()).await {
            Ok(entries) => entries,
            Err(CoreError::Locked | CoreError::DeviceRemoved) => continue,
            Err(error) => {
                tracing::debug!(%error, device = id, "skipped in search");
                continue;
            }
        };
        let Ok(paths) = super::account_paths(shared, connection, &id, &entries).await else {
            continue;
        };
        for (entry, path) in entries.into_iter().zip(paths) {
            if entry.credential.id.is_hidden() {
                continue;
            }
            if let Some(path) = path {
                found.push(Found {
                    path,
                    device_id: id.clone(),
                    device_name: device.info.name.clone(),
                    entry,
                });
            }
        }
    }
    found
}

pub async fn search(shared: &Shared, connection: &Connection, terms: &[String]) -> Vec<Found> {
    let mut found: Vec<Found> = all_accounts(shared, connection)
        .await
        .into_iter()
        .filter(|f| f.matches(terms))
        .collect();
    found.sort_by_key(|f| f.title().to_lowercase());
    found
}

/// A code for `found` now: the cached one, or a card calculation (touch waits).
pub async fn code_now(shared: &Shared, found: &Found) -> Result<Code, CoreError> {
    if let Some(code) = found.ready_code()
        && code.valid_to > crate::clock::unix_now()
    {
        return Ok(code.clone());
    }
    let device = shared.manager.get(&found.device_id)?;
    let credential = found.entry.credential.clone();
    device
        .handle
        .run(move |worker| worker.calculate(&credential, crate::clock::unix_now()))
        .await
}
