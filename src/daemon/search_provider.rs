//! `org.gnome.Shell.SearchProvider2` at `…/SearchProvider`: codes from the GNOME overview.
//! Activating a result copies its code (the shell does the copy from `clipboardText`);
//! touch and HOTP accounts are calculated on activation and shown in a notification.

use std::collections::HashMap;

use tracing::warn;
use zbus::message::Header;
use zbus::zvariant::{OwnedValue, Value};
use zbus::{Connection, interface};

use super::Shared;
use super::access::check_sender;
use super::lookup::{self, Found};
use super::notify::Notifier;

pub struct SearchProvider {
    pub shared: Shared,
}

fn owned<'a>(value: impl Into<Value<'a>>) -> OwnedValue {
    value
        .into()
        .try_to_owned()
        .unwrap_or_else(|_| OwnedValue::from(0u32))
}

fn description(found: &Found) -> String {
    let mut parts = Vec::new();
    if let Some(issuer) = &found.entry.credential.id.issuer {
        parts.push(issuer.clone());
    }
    parts.push(found.device_name.clone());
    if found.needs_touch() {
        parts.push("touch required".into());
    } else if found.is_hotp() {
        parts.push("HOTP: activate to calculate".into());
    } else if let Some(code) = found.ready_code() {
        let left = code.valid_to.saturating_sub(crate::clock::unix_now());
        parts.push(format!("{left} s left"));
    }
    parts.join(" · ")
}

async fn find(shared: &Shared, connection: &Connection, id: &str) -> Option<Found> {
    lookup::all_accounts(shared, connection)
        .await
        .into_iter()
        .find(|f| f.path.as_str() == id)
}

#[interface(name = "org.gnome.Shell.SearchProvider2")]
impl SearchProvider {
    #[zbus(out_args("results"))]
    async fn get_initial_result_set(
        &self,
        terms: Vec<String>,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> zbus::fdo::Result<Vec<String>> {
        check_sender(connection, &header).await?;
        Ok(lookup::search(&self.shared, connection, &terms)
            .await
            .into_iter()
            .map(|f| f.path.to_string())
            .collect())
    }

    #[zbus(out_args("results"))]
    async fn get_subsearch_result_set(
        &self,
        previous_results: Vec<String>,
        terms: Vec<String>,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> zbus::fdo::Result<Vec<String>> {
        check_sender(connection, &header).await?;
        Ok(lookup::search(&self.shared, connection, &terms)
            .await
            .into_iter()
            .map(|f| f.path.to_string())
            .filter(|id| previous_results.contains(id))
            .collect())
    }

    /// Never touches the key for touch/HOTP accounts: metas come from the code cache.
    #[zbus(out_args("metas"))]
    async fn get_result_metas(
        &self,
        identifiers: Vec<String>,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> zbus::fdo::Result<Vec<HashMap<String, OwnedValue>>> {
        check_sender(connection, &header).await?;
        let all = lookup::all_accounts(&self.shared, connection).await;
        Ok(identifiers
            .iter()
            .filter_map(|id| all.iter().find(|f| f.path.as_str() == id))
            .map(|found| {
                let mut meta = HashMap::new();
                meta.insert("id".to_owned(), owned(found.path.to_string()));
                meta.insert("name".to_owned(), owned(found.title()));
                meta.insert("description".to_owned(), owned(description(found)));
                meta.insert("gicon".to_owned(), owned("security-high"));
                if let Some(code) = found.ready_code() {
                    meta.insert("clipboardText".to_owned(), owned(code.value.clone()));
                }
                meta
            })
            .collect())
    }

    /// Touch/HOTP accounts: calculate now (touch prompt as usual), then show the code in a
    /// transient notification, since a background service cannot set the clipboard.
    async fn activate_result(
        &self,
        identifier: String,
        terms: Vec<String>,
        timestamp: u32,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> zbus::fdo::Result<()> {
        check_sender(connection, &header).await?;
        let _ = (terms, timestamp);
        let Some(found) = find(&self.shared, connection, &identifier).await else {
            return Ok(());
        };
        if found.ready_code().is_some() {
            return Ok(()); // the shell copies clipboardText
        }
        match lookup::code_now(&self.shared, &found).await {
            Ok(code) => {
                Notifier::new(connection.clone())
                    .show_code(&found.title(), &code.value)
                    .await
            }
            Err(error) => warn!(%error, "search activation failed"),
        }
        Ok(())
    }

    /// Open the terminal view.
    async fn launch_search(
        &self,
        terms: Vec<String>,
        timestamp: u32,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> zbus::fdo::Result<()> {
        check_sender(connection, &header).await?;
        let _ = timestamp;
        super::launch_terminal_view(&terms);
        Ok(())
    }
}
