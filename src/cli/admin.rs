//! Key commands: devices, password, reset.

use std::io::{BufRead, IsTerminal};

use clap::{Args, Subcommand};
use serde::Serialize;
use zeroize::Zeroizing;

use super::GlobalArgs;
use super::accounts::confirm;
use super::error::{CliError, CliResult};
use super::keys::{Key, Keys, Unlock};
use super::output::print_json;

#[derive(Debug, Args)]
pub struct PasswordArgs {
    #[command(subcommand)]
    pub action: PasswordAction,
}

#[derive(Debug, Subcommand)]
pub enum PasswordAction {
    /// Set or change the password (current, then new: hidden prompt, or lines on stdin)
    Set,
    /// Remove the password
    Clear,
    /// Check a password (the key stays locked for other programs)
    Unlock,
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

pub fn devices(global: &GlobalArgs) -> CliResult<()> {
    let keys = Keys::discover(&global.filter())?;
    let mut rows = Vec::new();
    for key in &keys.keys {
        // A locked key's account count needs the password; do not ask just for this.
        let used = if key.locked {
            None
        } else {
            Some(keys.with_session(key, |session| Ok(session.list()?.len()))?)
        };
        rows.push(DeviceJson {
            key,
            used,
            capacity: key.quirks.capacity,
        });
    }
    if global.json {
        return Ok(print_json(&rows)?);
    }
    for row in rows {
        let count = |n: Option<usize>| n.map_or("?".to_owned(), |n| n.to_string());
        println!(
            "{}  {} {}  serial {}  {}  {}/{} accounts  [{}]",
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
    Ok(())
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
    let keys = Keys::discover(&global.filter())?;
    let key = keys.single()?;
    let mut source = PasswordSource::new();
    let current = if key.locked {
        Some(source.read(&format!("Current password for key {}: ", key.id))?)
    } else {
        None
    };
    let unlock = match &current {
        Some(password) => Unlock::With(password),
        None => Unlock::Prompt,
    };
    match args.action {
        PasswordAction::Set => {
            let new = source.read_new()?;
            keys.with_session_unlocking(key, unlock, |session| {
                session.set_password(&new)?;
                Ok(())
            })?;
            eprintln!("Password set on key {}", key.id);
        }
        PasswordAction::Clear => {
            if !key.locked {
                return Err(CliError::Oath(crate::oath::OathError::NoPassword));
            }
            keys.with_session_unlocking(key, unlock, |session| Ok(session.clear_password()?))?;
            eprintln!("Password removed from key {}", key.id);
        }
        PasswordAction::Unlock => {
            if !key.locked {
                return Err(CliError::Oath(crate::oath::OathError::NoPassword));
            }
            keys.with_session_unlocking(key, unlock, |_| Ok(()))?;
            eprintln!("Password is correct");
        }
    }
    Ok(())
}

pub fn reset(global: &GlobalArgs, args: &ResetArgs) -> CliResult<()> {
    let keys = Keys::discover(&global.filter())?;
    let key = keys.single()?;
    confirm(
        &format!("Delete ALL accounts and the password from key {}?", key.id),
        args.force,
    )?;
    keys.with_session_unlocking(key, Unlock::Skip, |session| Ok(session.reset()?))?;
    eprintln!("Key {} reset", key.id);
    Ok(())
}
