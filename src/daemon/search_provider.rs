//! `org.gnome.Shell.SearchProvider2` at `…/SearchProvider`: codes from the GNOME overview.
//! Activating a result copies its code (the shell does the copy from `clipboardText`);
//! touch and HOTP accounts are calculated on activation and shown in a notification.
//!
//! # What a result shows ([`result_texts`])
//!
//! One row per account: the title is the issuer (the name when there is none), the
//! description carries the code and what to know about it, the issuer never twice:
//!
//! | account | title | description | `clipboardText` |
//! |---|---|---|---|
//! | TOTP | `GitHub` | `123 456 · alice@example.com · 21 s left` | `123456` |
//! | TOTP, last seconds | `GitHub` | `654 321 · alice@example.com · next code, valid in 3 s` | `654321` |
//! | TOTP, no issuer | `alice` | `123 456 · 21 s left` | `123456` |
//! | touch | `GitLab` | `bob · touch required` | none |
//! | HOTP | `Bank` | `carol · HOTP: press Enter for the code` | none |
//!
//! Codes are grouped for reading (`123 456`, `1234 5678`; Steam codes as they are); the
//! clipboard gets them ungrouped. ` · <key name>` ends the description only when several
//! keys are connected (the same account on a main and a backup key). The seconds are as of
//! the moment the shell asked: it keeps a result's texts for as long as the search text is
//! not cleared.
//!
//! # Short validity: never a code about to expire
//!
//! The shell copies `clipboardText` when the user presses Enter, and the user then switches
//! to a browser and pastes: a code with one second left would be refused. So the shell is
//! given the codes valid [`MIN_VALIDITY`] (5) seconds from now: in the last 5 seconds of a
//! period that is the **next** period's code (the key calculates it for that time; one
//! extra CALCULATE ALL, cached like every other), shown as `next code, valid in N s`.
//! Most servers accept it early (RFC 6238 §6: a step of clock drift either way), and by
//! the time it is pasted it is the current one. A code with less than 5 s left is shown only when
//! the key could not be asked in time (busy with a touch): then it says `expires in N s`
//! and is not given as `clipboardText`. Touch accounts follow the same rule on activation
//! (the key is asked for the code 5 s ahead); their notification says how long it lasts.

use std::collections::HashMap;

use tracing::warn;
use zbus::message::Header;
use zbus::zvariant::{OwnedValue, Value};
use zbus::{Connection, interface};

use super::Shared;
use super::access::check_sender;
use super::lookup::{self, Found};
use super::notify::Notifier;
use crate::oath::{Code, Credential};
use crate::otp::OathType;

/// The seconds a code must still be valid for when the shell gets it (see the module docs).
pub const MIN_VALIDITY: u64 = 5;

pub struct SearchProvider {
    pub shared: Shared,
}

/// What the shell shows for one result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultTexts {
    /// The meta's `name`: the issuer, else the account name.
    pub title: String,
    /// The meta's `description`.
    pub description: String,
    /// The meta's `clipboardText`: only a code valid for [`MIN_VALIDITY`] seconds or more.
    pub clipboard_text: Option<String>,
}

/// `123456` → `123 456`, `12345678` → `1234 5678`, `1234567` → `123 4567`; anything else
/// (Steam's letters, short codes) unchanged.
pub fn group_code(code: &str) -> String {
    if code.len() < 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return code.to_owned();
    }
    let (head, tail) = code.split_at(code.len() / 2);
    format!("{head} {tail}")
}

/// How long `code` lasts, seen at `now`: `21 s left`, `next code, valid in 3 s` (not valid
/// yet), `expires in 3 s` (less than [`MIN_VALIDITY`] left), `expired`; empty for codes
/// that do not expire (HOTP).
pub fn validity(code: &Code, now: u64) -> String {
    if code.valid_to >= crate::oath::code::NEVER {
        String::new()
    } else if code.valid_from > now {
        format!("next code, valid in {} s", code.valid_from - now)
    } else if code.valid_to <= now {
        "expired".to_owned()
    } else if code.valid_to - now < MIN_VALIDITY {
        format!("expires in {} s", code.valid_to - now)
    } else {
        format!("{} s left", code.valid_to - now)
    }
}

/// The texts of one result at `now`. `code` is the key's code for `credential` (normally
/// the one valid at `now + MIN_VALIDITY`), `device` the key's name when several keys are
/// connected.
pub fn result_texts(
    credential: &Credential,
    code: Option<&Code>,
    now: u64,
    device: Option<&str>,
) -> ResultTexts {
    let id = &credential.id;
    let (title, name) = match &id.issuer {
        Some(issuer) => (issuer.clone(), Some(id.name.clone())),
        None => (id.name.clone(), None),
    };
    let mut parts = Vec::new();
    let mut clipboard_text = None;
    let status = if credential.touch == Some(true) {
        "touch required".to_owned()
    } else if credential.oath_type == OathType::Hotp {
        "HOTP: press Enter for the code".to_owned()
    } else if let Some(code) = code {
        parts.push(group_code(&code.value));
        let fresh = code.valid_to > now && code.valid_to - now >= MIN_VALIDITY;
        if fresh {
            clipboard_text = Some(code.value.clone());
        }
        validity(code, now)
    } else {
        "press Enter for the code".to_owned()
    };
    parts.extend(name);
    parts.push(status);
    parts.extend(device.map(str::to_owned));
    ResultTexts {
        title,
        description: parts.join(" · "),
        clipboard_text,
    }
}

fn owned<'a>(value: impl Into<Value<'a>>) -> OwnedValue {
    value
        .into()
        .try_to_owned()
        .unwrap_or_else(|_| OwnedValue::from(0u32))
}

async fn find(shared: &Shared, connection: &Connection, id: &str) -> Option<Found> {
    lookup::all_accounts(shared, connection)
        .await
        .into_iter()
        .find(|f| f.path.as_str() == id)
}

/// The accounts behind `identifiers` with the codes the shell may show at `now` (see the
/// module docs): the codes valid `MIN_VALIDITY` seconds ahead; for a key that could not be
/// asked in time (busy with a touch), its cached codes of `now`, which [`result_texts`]
/// flags when they are short. A missing meta would make the shell drop every result of
/// this provider.
async fn shown_accounts(
    shared: &Shared,
    connection: &Connection,
    identifiers: &[String],
    now: u64,
) -> Vec<Found> {
    let mut all = lookup::all_accounts_at(shared, connection, now + MIN_VALIDITY).await;
    let missing = identifiers
        .iter()
        .any(|id| !all.iter().any(|f| f.path.as_str() == id));
    if missing {
        let answered: Vec<String> = all.iter().map(|f| f.device_id.clone()).collect();
        let current = lookup::all_accounts_at(shared, connection, now).await;
        all.extend(
            current
                .into_iter()
                .filter(|f| !answered.contains(&f.device_id)),
        );
    }
    all
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

    /// Never touches the key for touch/HOTP accounts: metas come from the code cache (plus
    /// one CALCULATE ALL in the last seconds of a period, for the next codes).
    #[zbus(out_args("metas"))]
    async fn get_result_metas(
        &self,
        identifiers: Vec<String>,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> zbus::fdo::Result<Vec<HashMap<String, OwnedValue>>> {
        check_sender(connection, &header).await?;
        let now = crate::clock::unix_now();
        let several_keys = self.shared.manager.devices().len() > 1;
        let all = shown_accounts(&self.shared, connection, &identifiers, now).await;
        Ok(identifiers
            .iter()
            .filter_map(|id| all.iter().find(|f| f.path.as_str() == id))
            .map(|found| {
                let texts = result_texts(
                    &found.entry.credential,
                    found.ready_code(),
                    now,
                    several_keys.then_some(found.device_name.as_str()),
                );
                let mut meta = HashMap::new();
                meta.insert("id".to_owned(), owned(found.path.to_string()));
                meta.insert("name".to_owned(), owned(texts.title));
                meta.insert("description".to_owned(), owned(texts.description));
                meta.insert("gicon".to_owned(), owned("security-high"));
                if let Some(code) = texts.clipboard_text {
                    meta.insert("clipboardText".to_owned(), owned(code));
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
        // TOTP: the code valid MIN_VALIDITY seconds ahead, as in the metas.
        let ahead = if found.is_hotp() { 0 } else { MIN_VALIDITY };
        match lookup::code_at(&self.shared, &found, crate::clock::unix_now() + ahead).await {
            Ok(code) => {
                // After the touch: say how long the code lasts from now.
                let left = validity(&code, crate::clock::unix_now());
                let mut body = group_code(&code.value);
                if !left.is_empty() {
                    body = format!("{body} · {left}");
                }
                Notifier::new(connection.clone())
                    .show_code(&found.title(), &body)
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
