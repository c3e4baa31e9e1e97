//! `code --watch`: the code listing, refreshed at every period boundary until Ctrl-C.
//!
//! On a terminal the screen is redrawn in place each second with the seconds left; otherwise
//! (a pipe, a log file) one block is printed per period, separated by blank lines. Like a
//! listing, watching never calculates touch or HOTP accounts: they show placeholders, so no
//! touch is requested and no HOTP counter moves. Ctrl-C ends it (default SIGINT handling).
//! Through the daemon, a terminal view polls GetCodes every second: it answers from its
//! cache, so keys and accounts added or removed meanwhile show up at once.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tracing::debug;
use zeroize::Zeroizing;

use super::GlobalArgs;
use super::accounts::{CodeArgs, now};
use super::backend::Backend;
use super::error::{CliError, CliResult, exit};
use super::keys::{Keys, Unlock};
use super::lookup::select_matches;
use super::via_daemon::DaemonBackend;
use crate::oath::{CodeEntry, OathError};
use crate::otp::OathType;

/// Refresh boundary when no listed code says otherwise (no TOTP account without touch).
const DEFAULT_REFRESH: u64 = 30;

/// Clear from the cursor to the end of the line / of the screen, and home the cursor.
const CLEAR_LINE: &str = "\x1b[K";
const CLEAR_BELOW: &str = "\x1b[J";
const HOME: &str = "\x1b[H";
const CLEAR_SCREEN: &str = "\x1b[2J";

pub fn watch(global: &GlobalArgs, args: &CodeArgs) -> CliResult<()> {
    if global.json {
        return Err(CliError::Usage(
            "--watch does not combine with --json".into(),
        ));
    }
    let on_terminal = std::io::stdout().is_terminal();
    let mut source = match global.direct {
        true => None,
        false => DaemonBackend::attach(global)?,
    };
    debug!(via_daemon = source.is_some(), "watch source");
    // Direct mode: asked once per key and kept (zeroized on exit) so a locked key does not
    // prompt every period. The daemon keeps its unlocks itself.
    let mut passwords: HashMap<String, Zeroizing<String>> = HashMap::new();
    let mut rows: Vec<CodeEntry> = Vec::new();
    let mut refresh_at = 0;
    let mut refreshed = None;
    let mut waiting_for: Option<String> = None;
    if on_terminal {
        print!("{CLEAR_SCREEN}");
    }
    loop {
        let timestamp = now();
        let poll = on_terminal && source.is_some();
        if timestamp >= refresh_at || poll {
            let fresh = match &mut source {
                Some(daemon) => fetch_from_daemon(daemon, args, &mut refreshed),
                None => fetch(global, args, &mut passwords, timestamp),
            };
            match fresh {
                Ok(fresh) => {
                    rows = fresh;
                    refresh_at = next_refresh(&rows, timestamp);
                    waiting_for = None;
                    if !on_terminal {
                        // render() ends with a newline: a blank line separates the blocks.
                        println!("{}", render(&rows, timestamp));
                    }
                }
                // A key pulled out (or not yet plugged in): keep watching for it.
                Err(
                    error @ (CliError::NoKey(_)
                    | CliError::Pcsc(_)
                    | CliError::Daemon {
                        code: exit::NO_KEY, ..
                    }),
                ) => {
                    let message = error.to_string();
                    if !on_terminal && waiting_for.as_deref() != Some(message.as_str()) {
                        eprintln!("error: {message}; waiting for a key");
                    }
                    rows.clear();
                    waiting_for = Some(message);
                    refresh_at = timestamp + 1;
                }
                Err(other) => return Err(other),
            }
        }
        if on_terminal {
            let mut screen = String::from(HOME);
            match &waiting_for {
                Some(message) => {
                    let _ = writeln!(screen, "{message}; waiting for a key{CLEAR_LINE}");
                }
                None => {
                    for line in render(&rows, timestamp).lines() {
                        let _ = writeln!(screen, "{line}{CLEAR_LINE}");
                    }
                    let left = refresh_at.saturating_sub(timestamp);
                    let _ = writeln!(
                        screen,
                        "{CLEAR_LINE}\nRefreshing in {left} s · Ctrl-C to quit{CLEAR_LINE}"
                    );
                }
            }
            screen.push_str(CLEAR_BELOW);
            print!("{screen}");
        }
        std::io::stdout().flush()?;
        sleep_until(if on_terminal {
            now() + 1
        } else {
            refresh_at.max(now() + 1)
        });
    }
}

/// The daemon's cached codes of every matching account (keys read afresh each time). When
/// none match, the daemon reads the keys again once per time step (`refreshed`: the last
/// step it did): its cache may miss an account another program just added.
fn fetch_from_daemon(
    daemon: &mut DaemonBackend,
    args: &CodeArgs,
    refreshed: &mut Option<u64>,
) -> CliResult<Vec<CodeEntry>> {
    let read = |daemon: &mut DaemonBackend| -> CliResult<Vec<CodeEntry>> {
        daemon.reload()?;
        let mut rows = Vec::new();
        for key in 0..daemon.keys_len() {
            rows.extend(daemon.get_codes(key, None)?);
        }
        matching(rows, args)
    };
    match read(daemon) {
        Err(CliError::NoMatch) if *refreshed != Some(now() / 30) => {
            *refreshed = Some(now() / 30);
            daemon.refresh()?;
            read(daemon)
        }
        other => other,
    }
}

/// One listing of every matching account: CALCULATE ALL only, no touch, no HOTP.
fn fetch(
    global: &GlobalArgs,
    args: &CodeArgs,
    passwords: &mut HashMap<String, Zeroizing<String>>,
    timestamp: u64,
) -> CliResult<Vec<CodeEntry>> {
    // Discovered afresh each period, so a key plugged back in is picked up again.
    let keys = Keys::discover(&global.filter())?;
    let mut rows = Vec::new();
    for key in &keys.keys {
        if key.locked && !passwords.contains_key(&key.id) {
            if !std::io::stdin().is_terminal() {
                return Err(OathError::Locked.into());
            }
            let password = Zeroizing::new(rpassword::prompt_password(format!(
                "Password for key {}: ",
                key.id
            ))?);
            passwords.insert(key.id.clone(), password);
        }
        let unlock = match passwords.get(&key.id) {
            Some(password) => Unlock::With(password.as_str()),
            None => Unlock::Skip,
        };
        let entries = keys
            .with_session_unlocking(key, unlock, |session| Ok(session.calculate_all(timestamp)?))?;
        rows.extend(entries);
    }
    matching(rows, args)
}

fn matching(rows: Vec<CodeEntry>, args: &CodeArgs) -> CliResult<Vec<CodeEntry>> {
    let matches = select_matches(
        &rows,
        |entry| &entry.credential,
        args.query.as_deref(),
        args.exact,
        args.show_hidden,
    );
    debug!(accounts = matches.len(), "watch refresh");
    if matches.is_empty() {
        return Err(CliError::NoMatch);
    }
    Ok(matches.into_iter().cloned().collect())
}

/// The first moment a shown code expires; [`DEFAULT_REFRESH`] boundaries without codes.
fn next_refresh(rows: &[CodeEntry], timestamp: u64) -> u64 {
    rows.iter()
        .filter_map(|entry| entry.code.as_ref().map(|code| code.valid_to))
        .filter(|valid_to| *valid_to > timestamp)
        .min()
        .unwrap_or(timestamp - timestamp % DEFAULT_REFRESH + DEFAULT_REFRESH)
}

/// The listing as `code` prints it, plus the seconds each code has left.
fn render(rows: &[CodeEntry], timestamp: u64) -> String {
    let width = rows
        .iter()
        .map(|entry| entry.credential.id_string().chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for entry in rows {
        let id = entry.credential.id_string();
        let _ = match (
            &entry.code,
            entry.credential.oath_type,
            entry.credential.touch,
        ) {
            (Some(code), _, _) => writeln!(
                out,
                "{id:<width$}  {}  {:>2} s",
                code.value,
                code.valid_to.saturating_sub(timestamp)
            ),
            (None, OathType::Hotp, _) => writeln!(out, "{id:<width$}  [HOTP Account]"),
            (None, _, Some(true)) => writeln!(out, "{id:<width$}  [Requires Touch]"),
            (None, _, _) => writeln!(out, "{id:<width$}  [No Code]"),
        };
    }
    out
}

/// Sleep until the wall clock reaches `unix_seconds` (whole-second aligned redraws).
fn sleep_until(unix_seconds: u64) {
    let target = UNIX_EPOCH + Duration::from_secs(unix_seconds);
    if let Ok(wait) = target.duration_since(SystemTime::now()) {
        std::thread::sleep(wait);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oath::{Code, Credential, CredentialId};

    fn entry(name: &str, oath_type: OathType, touch: bool, code: Option<(&str, u64)>) -> CodeEntry {
        let id = CredentialId::new(Some("Example"), name, oath_type, 30);
        CodeEntry {
            credential: Credential {
                raw_id: id.to_bytes(),
                id,
                oath_type,
                algorithm: None,
                digits: Some(6),
                touch: Some(touch),
            },
            code: code.map(|(value, valid_to)| Code {
                value: value.to_owned(),
                valid_from: valid_to - 30,
                valid_to,
            }),
        }
    }

    #[test]
    fn renders_codes_with_seconds_left_and_placeholders() {
        let rows = [
            entry("alice", OathType::Totp, false, Some(("123456", 60))),
            entry("touchy", OathType::Totp, true, None),
            entry("counter", OathType::Hotp, false, None),
        ];
        assert_eq!(
            render(&rows, 47),
            "Example:alice    123456  13 s\n\
             Example:touchy   [Requires Touch]\n\
             Example:counter  [HOTP Account]\n"
        );
    }

    #[test]
    fn refreshes_when_the_first_code_expires() {
        let rows = [
            entry("a", OathType::Totp, false, Some(("1", 60))),
            entry("b", OathType::Totp, false, Some(("2", 120))),
        ];
        assert_eq!(next_refresh(&rows, 47), 60);
        assert_eq!(next_refresh(&[], 47), 60);
        assert_eq!(
            next_refresh(&[entry("t", OathType::Totp, true, None)], 61),
            90
        );
    }
}
