//! Account commands: list, code, add, delete, rename.

use std::io::IsTerminal;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::Args;

use super::GlobalArgs;
use super::add::split_name;
use super::backend::{self, Backend};
use super::error::{CliError, CliResult};
use super::keys::Key;
use super::lookup::{all_accounts, describe, find_one, read_again_if_stale, select_matches};
use super::output::{AccountJson, CodeJson, print_json};
use crate::oath::{CodeEntry, Credential, CredentialId};
use crate::otp::OathType;

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only accounts whose id contains this text (case-insensitive)
    pub query: Option<String>,
    /// Include hidden accounts (issuer "_hidden")
    #[arg(short = 'H', long)]
    pub show_hidden: bool,
}

#[derive(Debug, Args)]
pub struct CodeArgs {
    /// Account to show: an exact id wins, else a case-insensitive substring
    pub query: Option<String>,
    /// Print only the code; fail unless exactly one account matches
    #[arg(short, long)]
    pub single: bool,
    /// Match the query against whole ids only
    #[arg(long)]
    pub exact: bool,
    /// Time to compute codes for: unix seconds or RFC 3339 (default: now)
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub at: Option<u64>,
    /// Print this many consecutive codes of one TOTP account
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub count: u32,
    /// Include hidden accounts
    #[arg(short = 'H', long)]
    pub show_hidden: bool,
    /// Keep showing codes, refreshed at each period boundary, until Ctrl-C (no touch, no HOTP)
    #[arg(short, long, conflicts_with_all = ["single", "at", "count"])]
    pub watch: bool,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// The account; must match exactly one
    pub query: String,
    /// Do not ask for confirmation
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct RenameArgs {
    /// The account; must match exactly one
    pub query: String,
    /// New name as [ISSUER:]NAME
    pub new_name: String,
}

fn parse_time(text: &str) -> Result<u64, String> {
    if let Ok(seconds) = text.parse::<u64>() {
        return Ok(seconds);
    }
    let time = humantime::parse_rfc3339_weak(text)
        .map_err(|_| format!("{text:?} is neither unix seconds nor an RFC 3339 time"))?;
    time.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .map_err(|_| "times before 1970 are not supported".to_owned())
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

pub fn list(global: &GlobalArgs, args: &ListArgs) -> CliResult<()> {
    let mut backend = backend::open(global)?;
    let query = args.query.as_deref();
    // What is on the keys, not what a cache last saw: another program may have written.
    let rows = read_again_if_stale(backend.as_mut(), all_accounts, |_| true)?;
    let keys = backend.keys();
    let matches = select_matches(&rows, |r| &r.1, query, false, args.show_hidden);
    if global.json {
        let out: Vec<AccountJson> = matches
            .iter()
            .map(|(key, credential)| AccountJson::new(&keys[*key], credential))
            .collect();
        return Ok(print_json(&out)?);
    }
    let several = keys.len() > 1;
    for (key, credential) in matches {
        let mut line = credential.id_string();
        line.push_str(&format!("  {}", credential.oath_type));
        if let Some(algorithm) = credential.algorithm {
            line.push_str(&format!(" {algorithm}"));
        }
        if credential.touch == Some(true) {
            line.push_str("  [touch]");
        }
        if several {
            line.push_str(&format!("  ({})", keys[*key].id));
        }
        println!("{line}");
    }
    Ok(())
}

pub fn code(global: &GlobalArgs, args: &CodeArgs) -> CliResult<()> {
    if args.watch {
        return super::watch::watch(global, args);
    }
    let timestamp = args.at.unwrap_or_else(now);
    let mut backend = backend::open_prefetching(global, Some(timestamp))?;
    let all_codes = |backend: &mut dyn Backend| -> CliResult<Vec<(usize, CodeEntry)>> {
        let mut rows = Vec::new();
        for index in 0..backend.keys().len() {
            let entries = backend.codes(index, timestamp)?;
            rows.extend(entries.into_iter().map(|e| (index, e)));
        }
        Ok(rows)
    };
    let query = args.query.as_deref();
    let matching = |rows: &[(usize, CodeEntry)]| -> Vec<(usize, CodeEntry)> {
        select_matches(
            rows,
            |r| &r.1.credential,
            query,
            args.exact,
            args.show_hidden,
        )
        .into_iter()
        .cloned()
        .collect()
    };
    let needs_one = args.single || args.count > 1;
    // A cache (the daemon's) may miss an account another program just added: read again
    // when nothing matches, or when one code will be printed without its name and the query
    // names no account exactly (a new exact or second match would change the answer).
    let rows = read_again_if_stale(backend.as_mut(), all_codes, |rows| {
        let exact = |q: &str| rows.iter().any(|(_, e)| e.credential.id_string() == q);
        matching(rows).is_empty() || (needs_one && query.is_some_and(|q| !exact(q)))
    })?;
    let matches = matching(&rows);
    match matches.len() {
        0 => return Err(CliError::NoMatch),
        // Without a query, a lone account is listed like many: no touch, no HOTP bump.
        1 if args.query.is_some() || needs_one => {}
        1 => return print_codes(global, backend.keys(), &matches),
        _ if needs_one => {
            let listed: Vec<(usize, Credential)> = matches
                .iter()
                .map(|(k, e)| (*k, e.credential.clone()))
                .collect();
            return Err(CliError::Ambiguous(format!(
                "{} accounts match: {}",
                listed.len(),
                describe(&listed, backend.keys())
            )));
        }
        _ => return print_codes(global, backend.keys(), &matches),
    }
    let (key_index, entry) = &matches[0];
    let codes = single_codes(
        backend.as_mut(),
        *key_index,
        &entry.credential,
        entry.code.clone(),
        timestamp,
        args.count,
    )?;
    let results: Vec<(usize, CodeEntry)> = codes
        .into_iter()
        .map(|code| {
            (
                *key_index,
                CodeEntry {
                    credential: entry.credential.clone(),
                    code: Some(code),
                },
            )
        })
        .collect();
    if args.single && !global.json {
        for (_, entry) in &results {
            if let Some(code) = &entry.code {
                println!("{}", code.value);
            }
        }
        return Ok(());
    }
    print_codes(global, backend.keys(), &results)
}

/// How long a calculation may take before a key that does not report touch is assumed to
/// wait for one (ykman prompts for HOTP after the same half second).
const TOUCH_PROMPT_DELAY: std::time::Duration = std::time::Duration::from_millis(500);

/// Codes for one account: touch and HOTP are calculated here, Steam gets its alphabet,
/// `count` > 1 walks forward one period at a time.
fn single_codes(
    backend: &mut dyn Backend,
    key: usize,
    credential: &Credential,
    listed: Option<crate::oath::Code>,
    timestamp: u64,
    count: u32,
) -> CliResult<Vec<crate::oath::Code>> {
    // Listed codes are final (Steam's alphabet included: the session made them).
    if count == 1
        && let Some(code) = listed
    {
        return Ok(vec![code]);
    }
    if count > 1 && credential.oath_type == OathType::Hotp {
        return Err(CliError::Usage(
            "--count works with TOTP accounts only".into(),
        ));
    }
    let period = u64::from(credential.id.period.max(1));
    let at: Vec<u64> = (0..u64::from(count))
        .map(|step| timestamp + step * period)
        .collect();
    match credential.touch {
        Some(true) => {
            eprintln!("Touch your key…");
            backend.calculate(key, credential, &at)
        }
        // The key does not say (CanoKey HOTP): prompt only if the answer takes a while.
        None => {
            let (done, finished) = std::sync::mpsc::channel::<()>();
            let prompt = std::thread::spawn(move || {
                if finished.recv_timeout(TOUCH_PROMPT_DELAY).is_err() {
                    eprintln!("Touch your key…");
                }
            });
            let result = backend.calculate(key, credential, &at);
            let _ = done.send(());
            let _ = prompt.join();
            result
        }
        Some(false) => backend.calculate(key, credential, &at),
    }
}

fn print_codes(global: &GlobalArgs, keys: &[Key], rows: &[(usize, CodeEntry)]) -> CliResult<()> {
    if global.json {
        let out: Vec<CodeJson> = rows
            .iter()
            .map(|(key, entry)| CodeJson {
                account: AccountJson::new(&keys[*key], &entry.credential),
                code: entry.code.as_ref().map(|c| c.value.as_str()),
                valid_from: entry.code.as_ref().map(|c| c.valid_from),
                valid_to: entry.code.as_ref().map(|c| c.valid_to),
            })
            .collect();
        return Ok(print_json(&out)?);
    }
    let width = rows
        .iter()
        .map(|(_, e)| e.credential.id_string().chars().count())
        .max()
        .unwrap_or(0);
    for (_, entry) in rows {
        let value = match (
            &entry.code,
            entry.credential.oath_type,
            entry.credential.touch,
        ) {
            (Some(code), _, _) => code.value.clone(),
            (None, OathType::Hotp, _) => "[HOTP Account]".to_owned(),
            (None, _, Some(true)) => "[Requires Touch]".to_owned(),
            (None, _, _) => "[No Code]".to_owned(),
        };
        println!("{:<width$}  {value}", entry.credential.id_string());
    }
    Ok(())
}

pub fn confirm(question: &str, force: bool) -> CliResult<()> {
    if force {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(CliError::Usage(format!(
            "{question}: pass --force to confirm"
        )));
    }
    eprint!("{question} [y/N] ");
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    if matches!(answer.trim(), "y" | "Y" | "yes") {
        Ok(())
    } else {
        Err(CliError::Failure("aborted".into()))
    }
}

pub fn delete(global: &GlobalArgs, args: &DeleteArgs) -> CliResult<()> {
    let mut backend = backend::open(global)?;
    let (key, credential) = find_one(backend.as_mut(), &args.query)?;
    confirm(
        &format!(
            "Delete {} from key {}?",
            credential.id_string(),
            backend.keys()[key].id
        ),
        args.force,
    )?;
    if delete_waits_for_touch(&backend.keys()[key]) {
        eprintln!("Touch your key to confirm the deletion…");
    }
    backend.delete(key, &credential)?;
    eprintln!("Deleted {}", credential.id_string());
    Ok(())
}

/// Whether DELETE on `key` waits for a touch (Nitrokey 3 Secrets App: ykoath.md §2.2, N6).
fn delete_waits_for_touch(key: &Key) -> bool {
    use crate::oath::device::{DeviceKind, Quirks};
    [
        DeviceKind::YubiKey,
        DeviceKind::Nitrokey3,
        DeviceKind::CanoKey,
    ]
    .into_iter()
    .find(|kind| kind.name() == key.kind)
    .is_some_and(|kind| Quirks::for_device(kind, key.firmware).delete_needs_touch)
}

pub fn rename(global: &GlobalArgs, args: &RenameArgs) -> CliResult<()> {
    let mut backend = backend::open(global)?;
    let (key, credential) = find_one(backend.as_mut(), &args.query)?;
    let (issuer, name) = split_name(&args.new_name);
    let new_id = CredentialId::new(issuer, name, credential.oath_type, credential.id.period);
    let renamed = backend.rename(key, &credential, &new_id)?;
    eprintln!(
        "Renamed {} to {}",
        credential.id_string(),
        renamed.id_string()
    );
    Ok(())
}
