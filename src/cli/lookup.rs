//! Finding accounts by query on every key: an exact id wins, else a case-insensitive
//! substring; a lookup that finds nothing through the daemon asks it to read the keys again
//! (its cache misses what another program wrote a moment ago).

use tracing::debug;

use super::backend::Backend;
use super::error::{CliError, CliResult};
use super::keys::Key;
use crate::oath::Credential;

/// Accounts matching `query`: an exact id wins; else case-insensitive substring.
pub(super) fn select_matches<'a, T>(
    items: &'a [T],
    credential: impl Fn(&T) -> &Credential,
    query: Option<&str>,
    exact: bool,
    show_hidden: bool,
) -> Vec<&'a T> {
    let visible = |item: &&T| show_hidden || !credential(item).id.is_hidden();
    let Some(query) = query else {
        return items.iter().filter(visible).collect();
    };
    let exact_matches: Vec<&T> = items
        .iter()
        .filter(|item| credential(item).id_string() == query)
        .collect();
    if !exact_matches.is_empty() || exact {
        return exact_matches;
    }
    let needle = query.to_lowercase();
    items
        .iter()
        .filter(visible)
        .filter(|item| {
            credential(item)
                .id_string()
                .to_lowercase()
                .contains(&needle)
        })
        .collect()
}

/// "id (key), id (key), …" for an ambiguity message.
pub(super) fn describe(
    matches: &[impl std::borrow::Borrow<(usize, Credential)>],
    keys: &[Key],
) -> String {
    matches
        .iter()
        .map(|m| {
            let (key, credential) = m.borrow();
            format!("{} ({})", credential.id_string(), keys[*key].id)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every key's accounts, with the index of their key.
pub(super) fn all_accounts(backend: &mut dyn Backend) -> CliResult<Vec<(usize, Credential)>> {
    let mut rows = Vec::new();
    for index in 0..backend.keys().len() {
        let credentials = backend.list(index)?;
        rows.extend(credentials.into_iter().map(|c| (index, c)));
    }
    Ok(rows)
}

/// `read` again after [`Backend::refresh`] if `stale` says its rows may miss what was
/// asked for. A refresh that fails (a busy key, a timeout) keeps the first answer: the
/// lookup then ends as it would have without it.
pub(super) fn read_again_if_stale<T>(
    backend: &mut dyn Backend,
    read: impl Fn(&mut dyn Backend) -> CliResult<Vec<T>>,
    stale: impl Fn(&[T]) -> bool,
) -> CliResult<Vec<T>> {
    let rows = read(backend)?;
    if stale(&rows) {
        match backend.refresh() {
            Ok(true) => return read(backend),
            Ok(false) => {}
            Err(error) => debug!(%error, "reading the keys again failed; first answer kept"),
        }
    }
    Ok(rows)
}

/// The single account `query` names, on any key (hidden accounts included), for a write
/// (delete, rename): never from a cache, which may miss an account another program added,
/// renamed or deleted since (an exact `Acme:eve` beside a cached `Acme:eve2`, the same id
/// on a second key).
pub(super) fn find_one(backend: &mut dyn Backend, query: &str) -> CliResult<(usize, Credential)> {
    let rows = read_again_if_stale(backend, all_accounts, |_| true)?;
    let matches = select_matches(&rows, |r| &r.1, Some(query), false, true);
    match matches.as_slice() {
        [] => Err(CliError::NoMatch),
        [one] => Ok((*one).clone()),
        several => Err(CliError::Ambiguous(format!(
            "{} accounts match: {}",
            several.len(),
            describe(several, backend.keys())
        ))),
    }
}
