//! "Touch your key" desktop notifications through org.freedesktop.Notifications, when a
//! notification server is on the bus. Without one, nothing happens and nothing fails.

use std::collections::HashMap;

use tracing::debug;
use zbus::Connection;
use zbus::zvariant::Value;

const DESTINATION: &str = "org.freedesktop.Notifications";
const PATH: &str = "/org/freedesktop/Notifications";

pub struct Notifier {
    connection: Connection,
    shown: Option<u32>,
}

impl Notifier {
    pub fn new(connection: Connection) -> Self {
        Self {
            connection,
            shown: None,
        }
    }

    /// Show "Touch your key for <account>" (the account id only, never a code).
    pub async fn touch_prompt(&mut self, account: &str) {
        let hints: HashMap<&str, Value<'_>> = HashMap::from([("urgency", Value::U8(2))]);
        let reply = self
            .connection
            .call_method(
                Some(DESTINATION),
                PATH,
                Some(DESTINATION),
                "Notify",
                &(
                    "oathbridge",
                    self.shown.unwrap_or(0),
                    "security-high",
                    "Touch your key",
                    format!("Touch your key for {account}"),
                    Vec::<&str>::new(),
                    hints,
                    -1i32,
                ),
            )
            .await;
        match reply.and_then(|m| m.body().deserialize::<u32>()) {
            Ok(id) => self.shown = Some(id),
            Err(error) => debug!(%error, "no notification server"),
        }
    }

    /// Show a code that could not be copied (GNOME search on touch accounts). Transient,
    /// so it stays out of the notification history.
    pub async fn show_code(&mut self, account: &str, code: &str) {
        let hints: HashMap<&str, Value<'_>> =
            HashMap::from([("transient", Value::Bool(true)), ("urgency", Value::U8(1))]);
        let _ = self
            .connection
            .call_method(
                Some(DESTINATION),
                PATH,
                Some(DESTINATION),
                "Notify",
                &(
                    "oathbridge",
                    0u32,
                    "security-high",
                    account,
                    code,
                    Vec::<&str>::new(),
                    hints,
                    30_000i32,
                ),
            )
            .await;
    }

    /// Withdraw the prompt after the touch (or the timeout).
    pub async fn withdraw(&mut self) {
        if let Some(id) = self.shown.take() {
            let _ = self
                .connection
                .call_method(
                    Some(DESTINATION),
                    PATH,
                    Some(DESTINATION),
                    "CloseNotification",
                    &(id,),
                )
                .await;
        }
    }
}
