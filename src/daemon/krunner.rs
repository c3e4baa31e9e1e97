//! `org.kde.krunner1` (DBus2 API) at `…/KRunner`: codes from KRunner. Run copies the
//! code to the clipboard as a secret, cleared when it expires ([`crate::desktop::clipboard`]).

use std::collections::HashMap;

use tracing::{debug, warn};
use zbus::message::Header;
use zbus::zvariant::{OwnedValue, Value};
use zbus::{Connection, interface};

use super::Shared;
use super::access::check_sender;
use super::lookup;
use crate::desktop::clipboard::{self, ClipboardError};
use crate::oath::Code;

pub struct KRunner {
    pub shared: Shared,
}

/// KF6 QueryMatch::CategoryRelevance::High.
const CATEGORY_HIGH: i32 = 70;
const COPY_ACTION: &str = "copy";

fn owned<'a>(value: impl Into<Value<'a>>) -> OwnedValue {
    value
        .into()
        .try_to_owned()
        .unwrap_or_else(|_| OwnedValue::from(0u32))
}

type Match = (
    String,
    String,
    String,
    i32,
    f64,
    HashMap<String, OwnedValue>,
);

#[interface(name = "org.kde.krunner1")]
impl KRunner {
    /// `(id, text, icon, category relevance, relevance, properties)` per account.
    #[zbus(out_args("matches"))]
    async fn r#match(
        &self,
        query: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> zbus::fdo::Result<Vec<Match>> {
        check_sender(connection, &header).await?;
        let terms: Vec<String> = query.split_whitespace().map(str::to_owned).collect();
        Ok(lookup::search(&self.shared, connection, &terms)
            .await
            .into_iter()
            .map(|found| {
                let title = found.title();
                let exact = title.eq_ignore_ascii_case(query.trim())
                    || found
                        .entry
                        .credential
                        .id
                        .name
                        .eq_ignore_ascii_case(query.trim());
                let subtext = if found.needs_touch() {
                    format!("{} · touch required", found.device_name)
                } else if found.is_hotp() {
                    format!("{} · HOTP", found.device_name)
                } else {
                    format!("{} · press Enter to copy the code", found.device_name)
                };
                let mut properties = HashMap::new();
                properties.insert("subtext".to_owned(), owned(subtext));
                properties.insert("category".to_owned(), owned("OATH codes"));
                properties.insert("actions".to_owned(), owned(vec![COPY_ACTION.to_owned()]));
                (
                    found.path.to_string(),
                    title,
                    "security-high".to_owned(),
                    CATEGORY_HIGH,
                    if exact { 1.0 } else { 0.7 },
                    properties,
                )
            })
            .collect())
    }

    #[zbus(out_args("actions"))]
    async fn actions(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> zbus::fdo::Result<Vec<(String, String, String)>> {
        check_sender(connection, &header).await?;
        Ok(vec![(
            COPY_ACTION.to_owned(),
            "Copy code".to_owned(),
            "edit-copy".to_owned(),
        )])
    }

    /// Calculate (touch prompt as usual) and copy the code.
    async fn run(
        &self,
        match_id: String,
        action_id: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> zbus::fdo::Result<()> {
        check_sender(connection, &header).await?;
        let _ = action_id; // the only action is the default one: copy
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

    #[zbus(out_args("config"))]
    async fn config(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> zbus::fdo::Result<HashMap<String, OwnedValue>> {
        check_sender(connection, &header).await?;
        Ok(HashMap::from([("MinLetterCount".to_owned(), owned(2i32))]))
    }

    /// Wayland activation token, sent just before Run; we open no window.
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
