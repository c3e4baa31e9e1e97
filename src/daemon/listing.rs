//! Listing a key's accounts into Account objects, and the object paths and prebuilt
//! GetCodes entries for a key's codes.

use std::sync::Arc;

use zbus::Connection;
use zbus::zvariant::OwnedObjectPath;

use super::error::DaemonResult;
use super::registry::{self, Registry};
use super::{Shared, codes_reply};
use crate::oath::CodeEntry;

/// How a key is listed.
#[derive(Clone, Copy)]
enum Listing {
    /// LIST (with CALCULATE ALL details where the key has it).
    Again,
    /// A key that just arrived: the codes the listing read are kept.
    Arrived,
    /// GetCodes "refresh": LIST and CALCULATE ALL at this second (unix seconds) even if
    /// the step is cached; the key's cache is replaced by these codes.
    Refresh(u64),
}

/// List the key's accounts and make the Account objects match (nothing while locked).
pub async fn refresh_accounts(
    shared: &Shared,
    connection: &Connection,
    id: &str,
) -> DaemonResult<()> {
    list_accounts(shared, connection, id, Listing::Again).await
}

/// [`refresh_accounts`] for a key that just arrived, keeping the codes the listing read.
pub(super) async fn list_arrived(
    shared: &Shared,
    connection: &Connection,
    id: &str,
) -> DaemonResult<()> {
    list_accounts(shared, connection, id, Listing::Arrived).await
}

/// Every key read again, at once, for at most `wait` in all (GetCodes "refresh": the
/// caller expects an account another program added or removed since the codes were
/// cached). Failures are left for the codes that follow to report.
pub(super) async fn relist_all(
    shared: &Shared,
    connection: &Connection,
    at: u64,
    wait: std::time::Duration,
) {
    let mut relists = tokio::task::JoinSet::new();
    for device in shared.manager.devices() {
        let (shared, connection) = (shared.clone(), connection.clone());
        relists.spawn(async move {
            let id = device.info.id;
            let listed = list_accounts(&shared, &connection, &id, Listing::Refresh(at)).await;
            if let Err(error) = listed {
                tracing::debug!(%error, device = id, "refresh failed");
            }
        });
    }
    let all = async { while relists.join_next().await.is_some() {} };
    if tokio::time::timeout(wait, all).await.is_err() {
        // Not cancelled midway (its Account objects would be half synced): it finishes
        // alone, and the codes asked after it report the key as pending while it runs.
        relists.detach_all();
    }
}

async fn list_accounts(
    shared: &Shared,
    connection: &Connection,
    id: &str,
    how: Listing,
) -> DaemonResult<()> {
    let device = shared.manager.get(id)?;
    let listed = match how {
        Listing::Again => device.handle.run(|worker| worker.accounts()).await,
        Listing::Arrived => {
            device
                .handle
                .run(|worker| worker.accounts_on_arrival())
                .await
        }
        Listing::Refresh(at) => match device.handle.relist(at).await {
            // Another caller's relist, started after this one asked, did it (and syncs).
            Ok(None) => return Ok(()),
            Ok(Some(credentials)) => Ok(credentials),
            Err(error) => Err(error),
        },
    };
    match listed {
        Ok(credentials) => {
            registry::sync_accounts(shared, connection, id, &credentials).await;
            Ok(())
        }
        Err(crate::core::CoreError::Locked) => Ok(()),
        Err(error) => Err(error.into()),
    }
}

/// Account object paths for code entries, listing the key again if it has accounts we
/// have not seen (added by another program).
pub async fn account_paths(
    shared: &Shared,
    connection: &Connection,
    id: &str,
    entries: &[CodeEntry],
) -> DaemonResult<Vec<Option<OwnedObjectPath>>> {
    let lookup = |registry: &Registry| -> Vec<Option<OwnedObjectPath>> {
        let paths: std::collections::HashMap<&[u8], &OwnedObjectPath> =
            registry.accounts_of(id).collect();
        entries
            .iter()
            .map(|e| {
                paths
                    .get(e.credential.raw_id.as_slice())
                    .map(|p| (*p).clone())
            })
            .collect()
    };
    let paths = lookup(&*shared.registry.lock().await);
    if paths.iter().all(Option::is_some) {
        return Ok(paths);
    }
    refresh_accounts(shared, connection, id).await?;
    Ok(lookup(&*shared.registry.lock().await))
}

/// GetCodes entries for `entries` of key `id`: prebuilt ones while the codes and the
/// registry are unchanged, else built now (and kept). None when the key has no object.
pub async fn built_entries(
    shared: &Shared,
    connection: &Connection,
    id: &str,
    entries: &Arc<Vec<CodeEntry>>,
) -> Option<codes_reply::Built> {
    {
        let registry = shared.registry.lock().await;
        if let Some(built) = shared.replies.get(id, entries, registry.generation()) {
            return Some(built);
        }
    }
    let paths = account_paths(shared, connection, id, entries).await.ok()?;
    let registry = shared.registry.lock().await;
    let device = registry.device_path(id)?;
    let built: codes_reply::Built = Arc::new(
        entries
            .iter()
            .zip(paths)
            .map(|(entry, path)| {
                codes_reply::BuiltEntry::new(codes_reply::CodeDict::for_entry(
                    entry,
                    path,
                    device.clone(),
                ))
            })
            .collect(),
    );
    shared
        .replies
        .put(id, entries.clone(), registry.generation(), built.clone());
    Some(built)
}
