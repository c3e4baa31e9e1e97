//! Codes on the clipboard the way password managers put them there.
//!
//! - Offered with the `x-kde-passwordManagerHint` target set to `secret` (arboard's
//!   `exclude_from_history`), which Klipper, CopyQ and the GNOME clipboard extensions honour:
//!   the code stays out of their history. On Wayland through the data-control protocol
//!   (KWin, wlroots compositors); elsewhere (X11, Mutter through XWayland) through X11.
//! - Cleared when the code expires (`valid_to`), unless the clipboard changed since: if it
//!   no longer holds our code, someone copied something else, and that is left alone.
//! - One long-lived owner: an X11 selection is served by arboard's thread for as long as its
//!   `Clipboard` lives, a Wayland one by wl-clipboard-rs's thread until it is replaced. Both
//!   belong to one std thread here ("clipboard"), fed by a channel, so the async daemon never
//!   blocks on the display and the selection outlives the D-Bus call that made it.
//!
//! Tuning and tests: `OATHBRIDGE_CLIPBOARD_CLEAR_AFTER_MS=N` clears N milliseconds after the
//! copy instead of at the code's expiry (values that are not a number are ignored).

use std::sync::OnceLock;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tracing::{debug, warn};
use zeroize::Zeroizing;

/// Environment variable: clear this many milliseconds after the copy (tests, tuning).
pub const CLEAR_AFTER_ENV: &str = "OATHBRIDGE_CLIPBOARD_CLEAR_AFTER_MS";

/// Codes that never expire (HOTP) stay this long: one default TOTP period.
pub const NO_EXPIRY_CLEAR_AFTER: Duration = Duration::from_secs(30);

/// The longest the clipboard thread sleeps before looking at the wall clock again, so a
/// suspend (the monotonic clock stops) does not delay the clearing by the time asleep.
const MAX_NAP: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum ClipboardError {
    #[error("no display: neither DISPLAY nor WAYLAND_DISPLAY is set")]
    NoDisplay,
    #[error("clipboard unavailable: {0}")]
    Unavailable(String),
}

/// Whether a display server is named in the environment (X11 or Wayland).
pub fn has_display() -> bool {
    ["DISPLAY", "WAYLAND_DISPLAY"]
        .iter()
        .any(|name| std::env::var_os(name).is_some_and(|value| !value.is_empty()))
}

/// Puts `code` on the clipboard, marked as a secret, and schedules its removal at
/// `valid_to` (unix seconds; [`crate::oath::code::NEVER`] for codes that do not expire).
/// Returns once the clipboard is ours; a later copy replaces this one and its schedule.
pub async fn copy_secret(code: &str, valid_to: u64) -> Result<(), ClipboardError> {
    if !has_display() {
        return Err(ClipboardError::NoDisplay);
    }
    let clear_at = clear_time(valid_to, SystemTime::now(), clear_after_from_env());
    let (reply, answer) = tokio::sync::oneshot::channel();
    let stopped = || ClipboardError::Unavailable("the clipboard thread stopped".to_owned());
    requests()
        .send(Request {
            text: Zeroizing::new(code.to_owned()),
            clear_at,
            reply,
        })
        .map_err(|_| stopped())?;
    answer.await.map_err(|_| stopped())?
}

/// When a code valid until `valid_to` leaves the clipboard, copied at `now`.
pub fn clear_time(valid_to: u64, now: SystemTime, clear_after: Option<Duration>) -> SystemTime {
    if let Some(after) = clear_after {
        return now + after;
    }
    if valid_to >= crate::oath::code::NEVER {
        return now + NO_EXPIRY_CLEAR_AFTER;
    }
    UNIX_EPOCH
        .checked_add(Duration::from_secs(valid_to))
        .unwrap_or(now + NO_EXPIRY_CLEAR_AFTER)
}

/// [`CLEAR_AFTER_ENV`] as a duration, when set to a number of milliseconds.
pub fn clear_after_from_env() -> Option<Duration> {
    parse_clear_after(std::env::var(CLEAR_AFTER_ENV).ok().as_deref())
}

fn parse_clear_after(value: Option<&str>) -> Option<Duration> {
    value?.trim().parse().ok().map(Duration::from_millis)
}

struct Request {
    text: Zeroizing<String>,
    clear_at: SystemTime,
    reply: tokio::sync::oneshot::Sender<Result<(), ClipboardError>>,
}

/// The channel to the clipboard thread, started on the first copy.
fn requests() -> &'static mpsc::Sender<Request> {
    static REQUESTS: OnceLock<mpsc::Sender<Request>> = OnceLock::new();
    REQUESTS.get_or_init(|| {
        let (sender, receiver) = mpsc::channel();
        // If the thread cannot start, the receiver is dropped with the closure and every
        // send fails: copies then report the clipboard as unavailable.
        if let Err(error) = std::thread::Builder::new()
            .name("clipboard".to_owned())
            .spawn(move || serve(receiver))
        {
            warn!(%error, "cannot start the clipboard thread");
        }
        sender
    })
}

/// The code we put on the clipboard and when it must go.
struct Pending {
    text: Zeroizing<String>,
    clear_at: SystemTime,
}

#[derive(Default)]
struct Owner {
    /// Created on the first copy and kept: on X11 dropping it would give the selection up.
    clipboard: Option<arboard::Clipboard>,
    pending: Option<Pending>,
}

fn serve(requests: mpsc::Receiver<Request>) {
    let mut owner = Owner::default();
    loop {
        let request = match &owner.pending {
            None => match requests.recv() {
                Ok(request) => request,
                Err(_) => return,
            },
            Some(pending) => {
                let left = pending
                    .clear_at
                    .duration_since(SystemTime::now())
                    .unwrap_or(Duration::ZERO);
                if left.is_zero() {
                    owner.clear_if_unchanged();
                    continue;
                }
                match requests.recv_timeout(left.min(MAX_NAP)) {
                    Ok(request) => request,
                    Err(RecvTimeoutError::Timeout) => continue,
                    Err(RecvTimeoutError::Disconnected) => {
                        owner.clear_if_unchanged();
                        return;
                    }
                }
            }
        };
        let result = owner.copy(request.text, request.clear_at);
        let _ = request.reply.send(result);
    }
}

impl Owner {
    fn copy(
        &mut self,
        text: Zeroizing<String>,
        clear_at: SystemTime,
    ) -> Result<(), ClipboardError> {
        let reused = self.clipboard.is_some();
        let mut result = self.set(&text);
        if result.is_err() && reused {
            // The display connection may have died (X server restarted): start over once.
            self.clipboard = None;
            result = self.set(&text);
        }
        match result {
            Ok(()) => {
                self.pending = Some(Pending { text, clear_at });
                Ok(())
            }
            // An earlier code, if any, may still be there: its schedule stays.
            Err(error) => Err(ClipboardError::Unavailable(error.to_string())),
        }
    }

    fn set(&mut self, text: &str) -> Result<(), arboard::Error> {
        use arboard::SetExtLinux;
        let clipboard = match &mut self.clipboard {
            Some(clipboard) => clipboard,
            None => self.clipboard.insert(arboard::Clipboard::new()?),
        };
        clipboard.set().exclude_from_history().text(text)
    }

    /// Empties the clipboard if it still holds the pending code.
    fn clear_if_unchanged(&mut self) {
        let Some(pending) = self.pending.take() else {
            return;
        };
        let Some(clipboard) = self.clipboard.as_mut() else {
            return;
        };
        // On X11 arboard answers from its own copy while it owns the selection, and asks the
        // owner otherwise; on Wayland it reads the current offer.
        match clipboard.get().text().map(Zeroizing::new) {
            Ok(current) if *current == *pending.text => match clipboard.clear() {
                Ok(()) => debug!("expired code cleared from the clipboard"),
                Err(error) => warn!(%error, "cannot clear the expired code from the clipboard"),
            },
            Ok(_) | Err(arboard::Error::ContentNotAvailable) => {
                debug!("the clipboard changed since the code was copied; left alone");
            }
            Err(error) => debug!(%error, "cannot read the clipboard; left alone"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_leave_at_their_expiry() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000_010);
        assert_eq!(
            clear_time(1_000_020, now, None),
            UNIX_EPOCH + Duration::from_secs(1_000_020)
        );
    }

    #[test]
    fn codes_that_never_expire_leave_after_one_period() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000_010);
        assert_eq!(
            clear_time(crate::oath::code::NEVER, now, None),
            now + NO_EXPIRY_CLEAR_AFTER
        );
        assert_eq!(clear_time(u64::MAX, now, None), now + NO_EXPIRY_CLEAR_AFTER);
    }

    #[test]
    fn the_override_wins() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000_010);
        let after = Some(Duration::from_millis(1500));
        assert_eq!(
            clear_time(1_000_020, now, after),
            now + Duration::from_millis(1500)
        );
        assert_eq!(
            clear_time(crate::oath::code::NEVER, now, after),
            now + Duration::from_millis(1500)
        );
    }

    #[test]
    fn the_override_is_milliseconds_or_nothing() {
        assert_eq!(
            parse_clear_after(Some("250")),
            Some(Duration::from_millis(250))
        );
        assert_eq!(
            parse_clear_after(Some(" 0 ")),
            Some(Duration::from_millis(0))
        );
        assert_eq!(parse_clear_after(Some("2s")), None);
        assert_eq!(parse_clear_after(Some("")), None);
        assert_eq!(parse_clear_after(None), None);
    }
}
