//! GetCodes through the daemon: one call answers every key, kept for the command's other
//! keys; "refresh" when a lookup found nothing.

use std::collections::HashMap;

use zbus::zvariant::{OwnedValue, Value};

use super::props::{Properties, big_number, flag, path, text};
use super::{CALL_TIMEOUT, DEVICE_IFACE, DaemonBackend, MANAGER_IFACE, props};
use crate::cli::error::{CliError, CliResult};
use crate::daemon::ROOT_PATH;
use crate::oath::{Code, CodeEntry, OathError};

impl DaemonBackend {
    /// Codes of one key from GetCodes: at `timestamp`, or from the daemon's cache (None).
    pub fn get_codes(&mut self, key: usize, timestamp: Option<u64>) -> CliResult<Vec<CodeEntry>> {
        self.ensure_unlocked(key)?;
        if self.codes.as_ref().is_none_or(|(at, _)| *at != timestamp) {
            let entries = self.call_get_codes(timestamp, false)?;
            self.codes = Some((timestamp, entries));
        }
        let entries = self.codes.as_ref().map_or(&[][..], |(_, e)| e.as_slice());
        let device = self.device_paths[key].clone();
        let mut out = Vec::new();
        for entry in entries {
            if path(entry, "device").as_ref() != Some(&device) {
                continue;
            }
            if flag(entry, "pending") {
                return Err(CliError::Failure(format!(
                    "key {} is busy (waiting for a touch?); try again",
                    self.keys[key].id
                )));
            }
            let mut credential = props::credential(entry, false);
            // Digits as the key listed them, like CALCULATE ALL details in direct mode.
            credential.digits = self.accounts[key]
                .iter()
                .find(|a| a.credential.raw_id == credential.raw_id)
                .and_then(|a| a.credential.digits);
            let code = entry.contains_key("code").then(|| Code {
                value: text(entry, "code"),
                valid_from: big_number(entry, "valid_from"),
                valid_to: big_number(entry, "valid_to"),
            });
            out.push(CodeEntry { credential, code });
        }
        // GetCodes leaves locked keys out; say so, as the direct path does.
        if out.is_empty() {
            let locked: OwnedValue = self.call(
                device.as_str(),
                "org.freedesktop.DBus.Properties",
                "Get",
                &(DEVICE_IFACE, "Locked"),
            )?;
            if bool::try_from(&locked).unwrap_or(false) {
                return Err(OathError::Locked.into());
            }
        }
        Ok(out)
    }

    /// GetCodes for every key at `timestamp` (None: now), read again if `refresh`.
    fn call_get_codes(&self, timestamp: Option<u64>, refresh: bool) -> CliResult<Vec<Properties>> {
        // The CLI wants every key's answer, as in direct mode: wait as long as a call.
        let wait_ms = u32::try_from(CALL_TIMEOUT.as_millis()).unwrap_or(u32::MAX);
        let mut options: HashMap<&str, Value<'_>> = HashMap::from([
            ("show_hidden", Value::from(true)),
            ("wait_ms", Value::from(wait_ms)),
        ]);
        if let Some(timestamp) = timestamp {
            options.insert("timestamp", Value::from(at_for_daemon(timestamp)));
        }
        if refresh {
            options.insert("refresh", Value::from(true));
        }
        self.call(ROOT_PATH, MANAGER_IFACE, "GetCodes", &(options,))
    }

    /// GetCodes with "refresh": the daemon reads every key again (its cache misses what
    /// another program, ykman or `--direct`, wrote since) and updates its Account objects,
    /// which are then read again too.
    pub(super) fn refresh_codes(&mut self) -> CliResult<()> {
        let timestamp = self.codes.as_ref().and_then(|(at, _)| *at);
        let entries = self.call_get_codes(timestamp, true)?;
        self.reload()?;
        self.codes = Some((timestamp, entries));
        Ok(())
    }
}

/// The daemon reads timestamp 0 as "now"; `--at 0` means the epoch. Second 1 is in the
/// same time step as 0 for every period over 1 s, so it gives the epoch's codes and
/// validity (a 1 s period, which no issuer uses, would be one step off).
pub(super) fn at_for_daemon(timestamp: u64) -> u64 {
    timestamp.max(1)
}
