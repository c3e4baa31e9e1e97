//! `org.kde.krunner1` (DBus2 API) at `…/KRunner`: codes from KRunner. Run copies the
//! code through Klipper, or wl-copy / xclip when those are installed.

use std::collections::HashMap;
use std::io::Write;
use std::process::{Command, Stdio};

use tracing::{debug, warn};
use zbus::zvariant::{OwnedValue, Value};
use zbus::{Connection, interface};

use super::Shared;
use super::lookup;

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
        #[zbus(connection)] connection: &Connection,
    ) -> Vec<Match> {
        let terms: Vec<String> = query.split_whitespace().map(str::to_owned).collect();
        lookup::search(&self.shared, connection, &terms)
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
            .collect()
    }

    #[zbus(out_args("actions"))]
    fn actions(&self) -> Vec<(String, String, String)> {
        vec![(
            COPY_ACTION.to_owned(),
            "Copy code".to_owned(),
            "edit-copy".to_owned(),
        )]
    }

    /// Calculate (touch prompt as usual) and copy the code.
    async fn run(
        &self,
        match_id: String,
        action_id: String,
        #[zbus(connection)] connection: &Connection,
    ) {
        let _ = action_id; // the only action is the default one: copy
        let Some(found) = lookup::all_accounts(&self.shared, connection)
            .await
            .into_iter()
            .find(|f| f.path.as_str() == match_id)
        else {
            return;
        };
        match lookup::code_now(&self.shared, &found).await {
            Ok(code) => copy_to_clipboard(connection, &code.value).await,
            Err(error) => warn!(%error, "KRunner run failed"),
        }
    }

    fn teardown(&self) {}

    #[zbus(out_args("config"))]
    fn config(&self) -> HashMap<String, OwnedValue> {
        HashMap::from([("MinLetterCount".to_owned(), owned(2i32))])
    }

    /// Wayland activation token, sent just before Run; we open no window.
    fn set_activation_token(&self, token: String) {
        let _ = token;
    }
}

/// Klipper (Plasma's clipboard) when it is on the bus, else wl-copy, else xclip.
pub async fn copy_to_clipboard(connection: &Connection, text: &str) {
    let klipper = connection
        .call_method(
            Some("org.kde.klipper"),
            "/klipper",
            Some("org.kde.klipper.klipper"),
            "setClipboardContents",
            &(text,),
        )
        .await;
    if klipper.is_ok() {
        return;
    }
    // Fallbacks offer plain text only: they cannot add the password-manager hint.
    for (program, args) in [
        ("wl-copy", vec!["--type", "text/plain"]),
        ("xclip", vec!["-selection", "clipboard"]),
    ] {
        let spawned = Command::new(program)
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let Ok(mut child) = spawned else {
            continue;
        };
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.write_all(text.as_bytes());
        }
        // Both fork a server that keeps the selection; reap the foreground process.
        tokio::task::spawn_blocking(move || child.wait());
        return;
    }
    debug!("no clipboard available (no Klipper, wl-copy or xclip)");
}
