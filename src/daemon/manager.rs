//! `io.github.oathbridge.OathBridge1.Manager` at the root object: codes in one round trip,
//! and adding accounts.

use zbus::message::Header;
use zbus::zvariant::OwnedObjectPath;
use zbus::{Connection, interface};

use std::time::Duration;

use super::Shared;
use super::access::{check_caller, check_reader};
use super::codes_reply::{CodeDict, CodeList};
use super::error::DaemonError;
use super::import::{Dict, accounts_from, get, invalid};
use crate::core::CoreError;
use crate::oath::CodeEntry;

/// How long GetCodes waits for one key before reporting it pending ("wait_ms" option).
const DEFAULT_KEY_WAIT: Duration = Duration::from_secs(3);

pub struct Manager {
    pub shared: Shared,
}

/// Matching like the CLI: an exact id wins, else a case-insensitive substring.
fn matching(entries: &[CodeEntry], query: Option<&str>, show_hidden: bool) -> Vec<usize> {
    let visible = |e: &CodeEntry| show_hidden || !e.credential.id.is_hidden();
    let Some(query) = query.filter(|q| !q.is_empty()) else {
        return (0..entries.len())
            .filter(|i| visible(&entries[*i]))
            .collect();
    };
    let exact: Vec<usize> = (0..entries.len())
        .filter(|i| entries[*i].credential.id_string() == query)
        .collect();
    if !exact.is_empty() {
        return exact;
    }
    let needle = query.to_lowercase();
    (0..entries.len())
        .filter(|i| visible(&entries[*i]))
        .filter(|i| {
            entries[*i]
                .credential
                .id_string()
                .to_lowercase()
                .contains(&needle)
        })
        .collect()
}

#[interface(name = "io.github.oathbridge.OathBridge1.Manager")]
impl Manager {
    /// Codes of every unlocked key in one call. Options: "query" (s), "show_hidden" (b),
    /// "timestamp" (t, unix seconds; default now), "wait_ms" (u: how long to wait for each
    /// key, default 3000). Keys are asked at once. Entries: "account" (o), "device" (o),
    /// "id", "issuer", "name", "type" (s), "touch" (b), "algorithm" (s) when the key told
    /// it, and for accounts the key calculated: "code" (s), "valid_from", "valid_to" (t).
    /// A key still busy after "wait_ms" gets one entry {"device" (o), "pending" (b) true}.
    #[zbus(out_args("codes"))]
    async fn get_codes(
        &self,
        options: Dict,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> Result<CodeList, DaemonError> {
        check_caller(connection, &header).await?;
        self.codes(&options, connection).await
    }

    /// Put an account on a key: AddAccount is ImportAccounts with one credential.
    /// Credential: "uri" (s, otpauth:// or otpauth-migration://), or "name", "issuer" (s),
    /// "secret" (ay, secret), "type", "algorithm" (s), "digits", "period", "counter" (u),
    /// "touch" (b). Options: "device" (o), "all_devices" (b), "overwrite" (b). Returns the
    /// new accounts.
    #[zbus(out_args("accounts"))]
    async fn add_account(
        &self,
        credential: Dict,
        options: Dict,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> Result<Vec<OwnedObjectPath>, DaemonError> {
        check_caller(connection, &header).await?;
        self.import_accounts_inner(vec![credential], options, connection)
            .await
    }

    /// Put several accounts on the keys, all or nothing: every account is checked against
    /// every target key (ids, duplicates, capacity, support) before the first write, and a
    /// failure midway removes what this call added. Credentials as for AddAccount, plus
    /// "source" (s, where the caller read it, for messages). Options: "device" (o),
    /// "all_devices" (b), "overwrite" (b), "dry_run" (b: check only, write nothing).
    /// Errors: InvalidInput or NotSupported with one line per problem.
    #[zbus(out_args("accounts"))]
    async fn import_accounts(
        &self,
        credentials: Vec<Dict>,
        options: Dict,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> Result<Vec<OwnedObjectPath>, DaemonError> {
        check_caller(connection, &header).await?;
        self.import_accounts_inner(credentials, options, connection)
            .await
    }

    /// The daemon's version.
    #[zbus(property(emits_changed_signal = "const"))]
    async fn version(
        &self,
        #[zbus(header)] header: Option<Header<'_>>,
        #[zbus(connection)] connection: &Connection,
    ) -> zbus::fdo::Result<String> {
        check_reader(connection, header.as_ref()).await?;
        Ok(env!("CARGO_PKG_VERSION").to_owned())
    }
}

impl Manager {
    /// GetCodes after the caller check (also the fast path in [`super::fast_codes`]).
    pub async fn codes(
        &self,
        options: &Dict,
        connection: &Connection,
    ) -> Result<CodeList, DaemonError> {
        let query = get::<&str>(options, "query")?.filter(|q| !q.is_empty());
        let show_hidden = get::<bool>(options, "show_hidden")?.unwrap_or(false);
        let timestamp = get::<u64>(options, "timestamp")?.filter(|t| *t != 0);
        let wait = get::<u32>(options, "wait_ms")?
            .map_or(DEFAULT_KEY_WAIT, |ms| Duration::from_millis(u64::from(ms)));
        let refresh = get::<bool>(options, "refresh")?.unwrap_or(false);
        let at = timestamp.unwrap_or_else(crate::clock::unix_now);
        // "wait_ms" bounds the whole call: a refresh and the codes after it share it.
        let deadline = tokio::time::Instant::now() + wait;
        if refresh {
            super::listing::relist_all(&self.shared, connection, at, wait).await;
        }
        let wait = deadline.saturating_duration_since(tokio::time::Instant::now());
        let answers = super::lookup::ask_all(&self.shared, at, wait).await;
        let mut out = CodeList::default();
        for answer in answers {
            let id = answer.device.info.id;
            let entries = match answer.codes {
                Some(Ok(entries)) => entries,
                // Locked or vanished keys contribute nothing; the others still answer.
                Some(Err(CoreError::Locked | CoreError::DeviceRemoved)) => continue,
                Some(Err(error)) => return Err(error.into()),
                None => {
                    // Still busy (touch wait, slow key): say so; its answer fills the cache.
                    if let Some(path) = self.shared.registry.lock().await.device_path(&id) {
                        out.push(CodeDict::pending(path));
                    }
                    continue;
                }
            };
            // A key pulled meanwhile drops out; the others still answer.
            let Some(built) = super::built_entries(&self.shared, connection, &id, &entries).await
            else {
                continue;
            };
            match query {
                None if show_hidden || !entries.iter().any(|e| e.credential.id.is_hidden()) => {
                    out.push_all(built)
                }
                _ => out.push_picked(built, matching(&entries, query, show_hidden)),
            }
        }
        Ok(out)
    }

    async fn import_accounts_inner(
        &self,
        credentials: Vec<Dict>,
        options: Dict,
        connection: &Connection,
    ) -> Result<Vec<OwnedObjectPath>, DaemonError> {
        let mut planned = Vec::new();
        for (index, credential) in credentials.iter().enumerate() {
            planned.extend(accounts_from(credential, index + 1)?);
        }
        let overwrite = get::<bool>(&options, "overwrite")?.unwrap_or(false);
        let dry_run = get::<bool>(&options, "dry_run")?.unwrap_or(false);
        let all = get::<bool>(&options, "all_devices")?.unwrap_or(false);
        let devices = self.shared.manager.devices();
        let device_path = match options.get("device") {
            None => None,
            Some(v) => Some(
                v.try_clone()
                    .ok()
                    .and_then(|v| OwnedObjectPath::try_from(v).ok())
                    .ok_or_else(|| invalid("option \"device\" must be an object path"))?,
            ),
        };
        let targets: Vec<String> = if let Some(path) = device_path {
            let registry = self.shared.registry.lock().await;
            let id = registry
                .device_for_path(&path)
                .ok_or_else(|| DaemonError::NoDevice(format!("no key at {path}")))?;
            vec![id]
        } else if all || devices.len() == 1 {
            devices.into_iter().map(|d| d.info.id).collect()
        } else if devices.is_empty() {
            return Err(DaemonError::NoDevice("no key connected".into()));
        } else {
            return Err(invalid(
                "several keys connected: pass \"device\" or \"all_devices\"",
            ));
        };
        super::import::import(
            &self.shared,
            connection,
            planned,
            targets,
            overwrite,
            dry_run,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zbus::zvariant::{OwnedValue, Value};

    fn value<'a>(v: impl Into<Value<'a>>) -> OwnedValue {
        v.into().try_to_owned().expect("plain value")
    }

    #[test]
    fn fields_build_a_credential_and_bad_ones_are_refused() {
        let mut dict = Dict::new();
        dict.insert("name".into(), value("alice"));
        dict.insert("issuer".into(), value("GitHub"));
        dict.insert("secret".into(), value(b"12345678901234567890".to_vec()));
        dict.insert("digits".into(), value(8u32));
        let data = &accounts_from(&dict, 1).unwrap()[0].data;
        assert_eq!(data.id.to_string(), "GitHub:alice");
        assert_eq!(data.digits, 8);
        dict.insert("digits".into(), value(9u32));
        let planned = accounts_from(&dict, 1).unwrap();
        assert!(crate::import::plan::prepare(planned).is_err(), "9 digits");
        dict.insert("digits".into(), value("8"));
        assert!(accounts_from(&dict, 1).is_err(), "wrong type");
    }
}
