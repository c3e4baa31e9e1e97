//! `org.kde.krunner1` (DBus2 API) at `…/KRunner`: codes from KRunner, for Plasma 5 (KF5
//! KRunner 5.x) and Plasma 6 (KF6). Run copies the code to the clipboard as a secret,
//! cleared when it expires ([`crate::desktop::clipboard`]).
//!
//! # Rows
//!
//! Text: `Issuer: name`. Subtext, short enough for KRunner's default width (KF5 shows it
//! beside the text of the selected row only, elided in the middle):
//! - non-touch TOTP: the code and its seconds left, `287082 · 17 s`;
//! - touch accounts: `touch required`; HOTP accounts: `HOTP · Enter` (neither is calculated
//!   before Enter: launchers never wait for a key);
//! - ` · <key name>` is added only when several keys are connected.
//!
//! # Ranking
//!
//! The fourth field of a match is read as `Plasma::QueryMatch::Type` by KF5 and as
//! `KRunner::QueryMatch::CategoryRelevance` by KF6; both sort by it first, then by the
//! relevance (0–1). The query is compared with the issuer, the account name and
//! "issuer name", ignoring case, `:` and repeated spaces:
//! - **equal** to one of them: [`EXACT`] = 100 (KF5 `ExactMatch`, KF6 `Highest`), relevance
//!   1.0 — the row comes first, as the Command Line runner's "Run git" does for `git`;
//! - **a prefix** of one of them: [`PARTIAL`] = 30 (KF5 `PossibleMatch`, KF6 `Low`),
//!   relevance 0.5–0.9 by closeness (the query's share of the longest field it starts);
//! - **inside** them otherwise (every word of the query appears somewhere): [`PARTIAL`],
//!   relevance 0.1–0.4 by the query's share of `issuer name`.
//!
//! Rows with the same score keep alphabetical order (a 0.0001 step per place). 50 and 70 are
//! never sent: KF5 runs no action for an `InformationalMatch` (50; Enter puts its data in
//! the search field) and ranks a `HelperMatch` (70, "an action not directly related to the
//! search term") below every exact match of other runners.
//!
//! # Actions
//!
//! One action, `copy` (the same as Enter), named on every row (`actions` property).
//! KRunner asks for the actions at the start of each match session, before its first
//! `Match` (KF5 waits for the answer, KF6 sends `Match` after it): the .desktop file does
//! not set `X-Plasma-Request-Actions-Once`, with which KF5 asks only once per KRunner start
//! and never again when that call failed (the daemon was not running, nor activatable).
//! `Config` does not carry `Actions` either (see `config` below). The daemon is
//! D-Bus activated by KRunner's first call (`Config`, at the first query after KRunner
//! starts), through the activation file installed with the runner.

use std::collections::HashMap;

use tracing::{debug, warn};
use zbus::message::Header;
use zbus::zvariant::{OwnedValue, Value};
use zbus::{Connection, interface};

use super::Shared;
use super::access::check_sender;
use super::lookup::{self, Found};
use crate::desktop::clipboard::{self, ClipboardError};
use crate::oath::Code;

pub struct KRunner {
    pub shared: Shared,
}

/// KF5 `Plasma::QueryMatch::ExactMatch`, KF6 `KRunner::QueryMatch::CategoryRelevance::Highest`.
pub const EXACT: i32 = 100;
/// KF5 `Plasma::QueryMatch::PossibleMatch`, KF6 `KRunner::QueryMatch::CategoryRelevance::Low`.
pub const PARTIAL: i32 = 30;
/// The one action: copy the code (what Enter does too).
pub const COPY_ACTION: &str = "copy";
const CATEGORY: &str = "OATH codes";
const ICON: &str = "security-high";
/// Relevance step between rows of the same score, keeping their alphabetical order.
const TIE_STEP: f64 = 0.0001;

fn owned<'a>(value: impl Into<Value<'a>>) -> OwnedValue {
    value
        .into()
        .try_to_owned()
        .unwrap_or_else(|_| OwnedValue::from(0u32))
}

/// `(id, text, icon, type / category relevance, relevance, properties)`.
pub type Match = (
    String,
    String,
    String,
    i32,
    f64,
    HashMap<String, OwnedValue>,
);

/// `(id, text, icon)` of an action.
type Action = (String, String, String);

fn actions() -> Vec<Action> {
    vec![(
        COPY_ACTION.to_owned(),
        "Copy code".to_owned(),
        "edit-copy".to_owned(),
    )]
}

/// Lower case, `:` as a space, single spaces, trimmed.
fn canonical(text: &str) -> String {
    text.to_lowercase()
        .replace(':', " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The score of an account for `query`: (type / category relevance, relevance). See the
/// module docs.
pub fn rank(query: &str, issuer: Option<&str>, name: &str) -> (i32, f64) {
    let query = canonical(query);
    let name = canonical(name);
    let issuer = issuer.map(canonical).filter(|issuer| !issuer.is_empty());
    let both = match &issuer {
        Some(issuer) => format!("{issuer} {name}"),
        None => name.clone(),
    };
    let fields: Vec<&str> = [issuer.as_deref(), Some(name.as_str()), Some(both.as_str())]
        .into_iter()
        .flatten()
        .filter(|field| !field.is_empty())
        .collect();
    if query.is_empty() {
        return (PARTIAL, 0.1);
    }
    if fields.contains(&query.as_str()) {
        return (EXACT, 1.0);
    }
    let share = |field: &str| query.chars().count() as f64 / field.chars().count().max(1) as f64;
    let prefix = fields
        .iter()
        .filter(|field| field.starts_with(&query))
        .map(|field| share(field))
        .fold(None, |best: Option<f64>, s| {
            Some(best.map_or(s, |b| b.max(s)))
        });
    match prefix {
        Some(share) => (PARTIAL, 0.5 + 0.4 * share.min(1.0)),
        None => (PARTIAL, 0.1 + 0.3 * share(&both).min(1.0)),
    }
}

/// `287082 · 17 s`, `touch required`, `HOTP · Enter`, plus ` · <key>` with several keys.
pub fn subtext(found: &Found, now: u64, several_keys: bool) -> String {
    let mut text = if found.needs_touch() {
        "touch required".to_owned()
    } else if found.is_hotp() {
        "HOTP · Enter".to_owned()
    } else {
        match found.ready_code().filter(|code| code.valid_to > now) {
            Some(code) => format!("{} · {} s", code.value, code.valid_to - now),
            None => "press Enter".to_owned(),
        }
    };
    if several_keys {
        text.push_str(" · ");
        text.push_str(&found.device_name);
    }
    text
}

#[interface(name = "org.kde.krunner1")]
impl KRunner {
    /// `(id, text, icon, type / category relevance, relevance, properties)` per account,
    /// best first.
    #[zbus(out_args("matches"))]
    async fn r#match(
        &self,
        query: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> zbus::fdo::Result<Vec<Match>> {
        check_sender(connection, &header).await?;
        let terms: Vec<String> = query.split_whitespace().map(str::to_owned).collect();
        let found = lookup::search(&self.shared, connection, &terms).await;
        let several_keys = self.shared.manager.devices().len() > 1;
        let now = crate::clock::unix_now();
        let mut matches: Vec<Match> = found
            .iter()
            .map(|found| {
                let id = &found.entry.credential.id;
                let (kind, relevance) = rank(&query, id.issuer.as_deref(), &id.name);
                let properties = HashMap::from([
                    (
                        "subtext".to_owned(),
                        owned(subtext(found, now, several_keys)),
                    ),
                    ("category".to_owned(), owned(CATEGORY)),
                    ("actions".to_owned(), owned(vec![COPY_ACTION.to_owned()])),
                ]);
                (
                    found.path.to_string(),
                    found.title(),
                    ICON.to_owned(),
                    kind,
                    relevance,
                    properties,
                )
            })
            .collect();
        // Best first; equal scores stay alphabetical (lookup's order) and get told apart.
        matches.sort_by(|a, b| b.3.cmp(&a.3).then(b.4.total_cmp(&a.4)));
        let mut previous: Option<(i32, f64)> = None;
        let mut step = 0.0;
        for entry in &mut matches {
            let score = (entry.3, entry.4);
            step = if previous == Some(score) {
                step + TIE_STEP
            } else {
                0.0
            };
            previous = Some(score);
            entry.4 = (entry.4 - step).max(0.0);
        }
        Ok(matches)
    }

    #[zbus(out_args("actions"))]
    async fn actions(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> zbus::fdo::Result<Vec<Action>> {
        check_sender(connection, &header).await?;
        Ok(actions())
    }

    /// Calculate (touch prompt as usual) and copy the code: the default action (Enter, an
    /// empty `action_id`) and `copy` do the same.
    async fn run(
        &self,
        match_id: String,
        action_id: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> zbus::fdo::Result<()> {
        check_sender(connection, &header).await?;
        if !action_id.is_empty() && action_id != COPY_ACTION {
            debug!(action_id, "unknown KRunner action ignored");
            return Ok(());
        }
        let Some(found) = lookup::all_accounts(&self.shared, connection)
            .await
            .into_iter()
            .find(|f| f.path.as_str() == match_id)
        else {
            return Ok(());
        };
        match lookup::code_now(&self.shared, &found).await {
            Ok(code) => copy_code(&code).await,
            Err(error) => warn!(%error, "KRunner run failed"),
        }
        Ok(())
    }

    async fn teardown(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> zbus::fdo::Result<()> {
        check_sender(connection, &header).await
    }

    /// `MinLetterCount` only. Not `Actions`: KF5 (5.103) cannot read them from this map (it
    /// gets an empty list) and then skips the `Actions` call of the session, so the first
    /// rows would lack the copy action. KRunner calls `Actions` at each session's start.
    #[zbus(out_args("config"))]
    async fn config(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> zbus::fdo::Result<HashMap<String, OwnedValue>> {
        check_sender(connection, &header).await?;
        Ok(HashMap::from([("MinLetterCount".to_owned(), owned(2i32))]))
    }

    /// Wayland activation token (KF6 sends it just before Run); we open no window.
    async fn set_activation_token(
        &self,
        token: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> zbus::fdo::Result<()> {
        check_sender(connection, &header).await?;
        let _ = token;
        Ok(())
    }
}

/// Puts the code on the clipboard, hidden from clipboard managers' history and cleared when
/// it expires. Never Klipper's `setClipboardContents`: that would put it in Klipper's history.
/// No display (no `DISPLAY`, no `WAYLAND_DISPLAY`): nothing to copy to, KRunner does nothing.
async fn copy_code(code: &Code) {
    match clipboard::copy_secret(&code.value, code.valid_to).await {
        Ok(()) => debug!("code copied to the clipboard"),
        Err(ClipboardError::NoDisplay) => debug!("no display: code not copied"),
        Err(error) => warn!(%error, "cannot copy the code"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exact_issuer_or_name_is_an_exact_match() {
        for query in [
            "github",
            "GitHub",
            " github ",
            "alice@example.com",
            "github alice@example.com",
            "GitHub: alice@example.com",
            "github:alice@example.com",
        ] {
            assert_eq!(
                rank(query, Some("GitHub"), "alice@example.com"),
                (EXACT, 1.0),
                "{query}"
            );
        }
        assert_eq!(rank("alice", None, "Alice"), (EXACT, 1.0));
    }

    #[test]
    fn a_prefix_is_a_possible_match_ranked_by_closeness() {
        let (kind, git) = rank("git", Some("GitHub"), "alice");
        let (_, gith) = rank("gith", Some("GitHub"), "alice");
        let (_, githu) = rank("githu", Some("GitHub"), "alice");
        assert_eq!(kind, PARTIAL);
        assert!(0.5 < git && git < gith && gith < githu && githu < 0.9);
        // The shorter field the query starts is the closer one.
        let (_, short) = rank("git", Some("Git"), "x");
        assert_eq!(short, 1.0, "equal is exact");
        let (_, lab) = rank("git", Some("GitLab Enterprise"), "bob");
        assert!(lab < git);
    }

    #[test]
    fn a_word_inside_ranks_below_every_prefix() {
        let (kind, inside) = rank("hub", Some("GitHub"), "alice");
        assert_eq!(kind, PARTIAL);
        assert!((0.1..=0.4).contains(&inside), "{inside}");
        let (_, prefix) = rank("alice", Some("GitHub"), "alice.smith");
        assert!(prefix >= 0.5);
    }

    #[test]
    fn no_informational_or_helper_types() {
        for (query, issuer, name) in [
            ("git", Some("GitHub"), "alice"),
            ("hub", Some("GitHub"), "alice"),
            ("github", Some("GitHub"), "alice"),
            ("", None, "x"),
        ] {
            let (kind, relevance) = rank(query, issuer, name);
            assert!(kind == EXACT || kind == PARTIAL, "{kind}");
            assert!((0.0..=1.0).contains(&relevance));
        }
    }
}
