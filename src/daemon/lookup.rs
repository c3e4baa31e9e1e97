//! Finding accounts for launchers (GNOME Shell, KRunner): cached codes only, never a card
//! round trip for touch accounts, so the shell is never blocked.

use zbus::Connection;
use zbus::zvariant::OwnedObjectPath;

use std::time::Duration;

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

/// One key's answer to [`ask_all`]: its codes, its error, or None if it is still busy.
pub struct KeyAnswer {
    pub device: crate::core::DeviceSnapshot,
    pub codes: Option<Result<std::sync::Arc<Vec<CodeEntry>>, CoreError>>,
}

/// Codes at `at` from every key at once, each given at most `wait`: a slow key (a
/// Nitrokey, a touch wait) delays only itself, and its late answer still fills its cache.
/// In the manager's order.
pub async fn ask_all(shared: &Shared, at: u64, wait: Duration) -> Vec<KeyAnswer> {
    let mut asks = tokio::task::JoinSet::new();
    let mut answers = Vec::new();
    for (order, device) in shared.manager.devices().into_iter().enumerate() {
        // Answered from the cache: no task, no timer.
        if let Some(codes) = device.handle.cached_codes(at) {
            answers.push((
                order,
                KeyAnswer {
                    device,
                    codes: Some(Ok(codes)),
                },
            ));
            continue;
        }
        asks.spawn(async move {
            let codes = tokio::time::timeout(wait, device.handle.codes(at))
                .await
                .ok();
            (order, KeyAnswer { device, codes })
        });
    }
    while let Some(joined) = asks.join_next().await {
        if let Ok(answer) = joined {
            answers.push(answer);
        }
    }
    answers.sort_by_key(|(order, _)| *order);
    answers.into_iter().map(|(_, answer)| answer).collect()
}

/// How long launchers wait for a key: they must feel instant.
const LAUNCHER_WAIT: Duration = Duration::from_millis(500);

/// Visible (not hidden) accounts of every unlocked key, with cached codes.
pub async fn all_accounts(shared: &Shared, connection: &Connection) -> Vec<Found> {
    all_accounts_at(shared, connection, crate::clock::unix_now()).await
}

/// [`all_accounts`] with the codes valid at `at` (GNOME search asks a few seconds ahead:
/// see [`super::search_provider`]). Keys that do not answer within the launcher wait are
/// left out.
pub async fn all_accounts_at(shared: &Shared, connection: &Connection, at: u64) -> Vec<Found> {
    let mut found = Vec::new();
    for answer in ask_all(shared, at, LAUNCHER_WAIT).await {
        let device = answer.device;
        let id = device.info.id.clone();
        let entries = match answer.codes {
            Some(Ok(entries)) => entries,
            None | Some(Err(CoreError::Locked | CoreError::DeviceRemoved)) => continue,
            Some(Err(error)) => {
                tracing::debug!(%error, device = id, "skipped in search");
                continue;
            }
        };
        let Ok(paths) = super::account_paths(shared, connection, &id, &entries).await else {
            continue;
        };
        for (entry, path) in entries.iter().zip(paths) {
            if entry.credential.id.is_hidden() {
                continue;
            }
            if let Some(path) = path {
                found.push(Found {
                    path,
                    device_id: id.clone(),
                    device_name: device.info.name.clone(),
                    entry: entry.clone(),
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
    code_at(shared, found, crate::clock::unix_now()).await
}

/// The code of `found` valid at `at`: the cached one, or a card calculation (touch waits).
pub async fn code_at(shared: &Shared, found: &Found, at: u64) -> Result<Code, CoreError> {
    if let Some(code) = found.ready_code()
        && code.valid_from <= at
        && at < code.valid_to
    {
        return Ok(code.clone());
    }
    let device = shared.manager.get(&found.device_id)?;
    let credential = found.entry.credential.clone();
    device
        .handle
        .run(move |worker| worker.calculate(&credential, at))
        .await
}
