//! Key commands: devices, password, reset.

use std::io::{BufRead, IsTerminal};

use clap::{Args, Subcommand};
use serde::Serialize;
use zeroize::Zeroizing;

use super::GlobalArgs;
use super::accounts::confirm;
use super::backend;
use super::error::{CliError, CliResult};
use super::keys::{Key, KeyFilter, Keys, Unlock};
use super::output::print_json;
use crate::oath::OathError;
use crate::oath::device::{DeviceKind, canokey};

#[derive(Debug, Args)]
pub struct PasswordArgs {
    #[command(subcommand)]
    pub action: PasswordAction,
}

#[derive(Debug, Subcommand)]
pub enum PasswordAction {
    /// Set or change the password (current, then new: hidden prompt, or lines on stdin)
    Set {
        /// Also keep the derived key in the Secret Service, for silent unlocks
        #[arg(long)]
        remember: bool,
    },
    /// Remove the password
    Clear,
    /// Check a password (the key stays locked for other programs)
    Unlock {
        /// Keep the derived key (never the password) in the Secret Service
        #[arg(long)]
        remember: bool,
    },
    /// Drop the remembered key from the Secret Service
    Forget,
}

#[derive(Debug, Args)]
pub struct ResetArgs {
    /// Do not ask for confirmation
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Serialize)]
struct DeviceJson<'a> {
    #[serde(flatten)]
    key: &'a Key,
    used: Option<usize>,
    capacity: Option<usize>,
}

#[derive(Debug, Args)]
pub struct DevicesArgs {
    /// Make the key with this id show itself (blink) instead of listing: an OATH key's id,
    /// or a FIDO2 key's /dev/hidrawN (CTAPHID WINK, else touch to confirm)
    #[arg(long, value_name = "ID")]
    pub identify: Option<String>,
}

pub fn devices(global: &GlobalArgs, args: &DevicesArgs) -> CliResult<()> {
    if let Some(id) = &args.identify {
        return super::fido_keys::identify(global, id);
    }
    let fido = super::fido_keys::list();
    let mut backend = match backend::open(global) {
        // FIDO2-only keys are still worth listing.
        Err(CliError::NoKey(_)) if !fido.is_empty() => {
            return super::fido_keys::print(global, &fido);
        }
        other => other?,
    };
    let mut counts = Vec::new();
    for index in 0..backend.keys().len() {
        // A locked key's account count needs the password; do not ask just for this.
        let used = if backend.keys()[index].locked {
            None
        } else {
            Some(backend.list(index)?.len())
        };
        counts.push(used);
    }
    let rows: Vec<DeviceJson> = backend
        .keys()
        .iter()
        .zip(counts)
        .map(|(key, used)| DeviceJson {
            key,
            used,
            capacity: key.capacity,
        })
        .collect();
    if global.json {
        if fido.is_empty() {
            return Ok(print_json(&rows)?);
        }
        // FIDO2 keys join the array as entries of kind "FIDO2".
        let mut all: Vec<serde_json::Value> = rows
            .iter()
            .map(serde_json::to_value)
            .collect::<Result<_, _>>()
            .map_err(std::io::Error::other)?;
        all.extend(super::fido_keys::json(&fido));
        return Ok(print_json(&all)?);
    }
    for row in rows {
        let count = |n: Option<usize>| n.map_or("?".to_owned(), |n| n.to_string());
        let via = row
            .key
            .transports_note()
            .map_or_else(String::new, |t| format!("  via {t}"));
        println!(
            "{}  {} {}  serial {}  {}  {}/{} accounts  [{}]{via}",
            row.key.id,
            row.key.kind,
            row.key.firmware,
            row.key.serial.map_or("-".to_owned(), |s| s.to_string()),
            if row.key.locked { "locked" } else { "unlocked" },
            count(row.used),
            count(row.capacity),
            row.key.reader,
        );
    }
    super::fido_keys::print(global, &fido)
}

/// Passwords come from a hidden prompt on a terminal, else one per line on stdin.
struct PasswordSource {
    lines: Option<std::io::Lines<std::io::StdinLock<'static>>>,
}

impl PasswordSource {
    fn new() -> Self {
        let stdin = std::io::stdin();
        Self {
            lines: (!stdin.is_terminal()).then(|| stdin.lock().lines()),
        }
    }

    fn read(&mut self, prompt: &str) -> CliResult<Zeroizing<String>> {
        let password = match &mut self.lines {
            None => Zeroizing::new(rpassword::prompt_password(prompt)?),
            Some(lines) => match lines.next() {
                Some(line) => Zeroizing::new(line?),
                None => return Err(CliError::Input("expected a password on stdin".into())),
            },
        };
        if password.is_empty() {
            return Err(CliError::Input("empty password".into()));
        }
        Ok(password)
    }

    fn read_new(&mut self) -> CliResult<Zeroizing<String>> {
        let password = self.read("New password: ")?;
        if self.lines.is_none() && *self.read("Repeat new password: ")? != *password {
            return Err(CliError::Input("the passwords do not match".into()));
        }
        Ok(password)
    }
}

pub fn password(global: &GlobalArgs, args: &PasswordArgs) -> CliResult<()> {
    let mut backend = backend::open(global)?;
    let index = backend.single()?;
    let key = backend.keys()[index].clone();
    if let PasswordAction::Forget = args.action {
        backend.forget(index)?;
        return Ok(());
    }
    let mut source = PasswordSource::new();
    // Asked first when the key needs it now (direct: a password is set; daemon: the daemon
    // does not hold it unlocked).
    let current = if key.locked {
        Some(source.read(&format!("Current password for key {}: ", key.id))?)
    } else {
        None
    };
    match args.action {
        PasswordAction::Set { remember } => {
            let new = source.read_new()?;
            backend.set_password(
                index,
                current.as_deref().map(|p| p.as_str()),
                &new,
                remember,
            )?;
            eprintln!("Password set on key {}", key.id);
        }
        PasswordAction::Clear => {
            if !backend.has_password(index) {
                return Err(OathError::NoPassword.into());
            }
            backend.set_password(index, current.as_deref().map(|p| p.as_str()), "", false)?;
            eprintln!("Password removed from key {}", key.id);
        }
        PasswordAction::Unlock { remember } => {
            if !backend.has_password(index) {
                return Err(OathError::NoPassword.into());
            }
            // Unlocked in the daemon's memory: still check the password given.
            let current = match current {
                Some(current) => current,
                None => source.read(&format!("Current password for key {}: ", key.id))?,
            };
            backend.unlock(index, &current, remember)?;
            eprintln!("Password is correct");
        }
        PasswordAction::Forget => {}
    }
    Ok(())
}

pub fn reset(global: &GlobalArgs, args: &ResetArgs) -> CliResult<()> {
    let mut backend = backend::open(global)?;
    let index = backend.single()?;
    let key = backend.keys()[index].clone();
    let id = key.id.clone();
    confirm(
        &format!("Delete ALL accounts and the password from key {id}?"),
        args.force,
    )?;
    if key.kind == DeviceKind::CanoKey.name() {
        reset_canokey(&key)?;
    } else {
        backend.reset(index)?;
    }
    eprintln!("Key {id} reset");
    Ok(())
}

/// A CanoKey's OATH applet has no RESET: its admin applet resets it after VERIFY of the
/// admin PIN. Asked for only after the confirmation, from a hidden prompt or the first
/// line of stdin (never argv). Talks to the key through pcscd even when the daemon serves
/// it (the daemon's `Reset` takes no PIN); the daemon then sees a new key.
fn reset_canokey(key: &Key) -> CliResult<()> {
    let pin = PasswordSource::new()
        .read(&format!("Admin PIN of CanoKey {}: ", key.id))
        .map_err(|error| match error {
            CliError::Input(_) => CliError::Input(
                "resetting a CanoKey needs its admin PIN (its OATH applet has no RESET; the \
                 admin applet resets it): type it at the prompt, or give it as the first \
                 line of stdin"
                    .into(),
            ),
            other => other,
        })?;
    if !canokey::ADMIN_PIN_LEN.contains(&pin.len()) {
        return Err(CliError::Input(format!(
            "a CanoKey admin PIN has {} to {} characters",
            canokey::ADMIN_PIN_LEN.start(),
            canokey::ADMIN_PIN_LEN.end()
        )));
    }
    let keys = Keys::discover(&KeyFilter {
        reader: Some(key.reader.clone()),
        device: Some(key.id.clone()),
        ..KeyFilter::default()
    })?;
    let target = keys.single()?;
    keys.with_session_unlocking(target, Unlock::Skip, |session| {
        match session.reset_with_admin_pin(pin.as_bytes()) {
            Err(OathError::WrongPassword) => {
                eprintln!(
                    "The CanoKey refused the admin PIN (after {} wrong PINs in a row its admin \
                     applet is blocked)",
                    canokey::ADMIN_PIN_RETRIES
                );
                Err(OathError::WrongPassword.into())
            }
            result => Ok(result?),
        }
    })
}
