//! Account commands: list, code, add, delete, rename.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::Args;
use zeroize::Zeroizing;

use super::GlobalArgs;
use super::backend::{self, Backend};
use super::error::{CliError, CliResult};
use super::input::{self, SeedInput};
use super::keys::Key;
use super::output::{AccountJson, CodeJson, print_json};
use crate::oath::consts::{DEFAULT_DIGITS, DEFAULT_PERIOD};
use crate::oath::{CodeEntry, Credential, CredentialData, CredentialId, OathError};
use crate::otp::{HashAlgorithm, OathType, OtpAuthUri};

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
pub struct AddArgs {
    /// Account name as [ISSUER:]NAME (optional with an otpauth:// input)
    pub name: Option<String>,
    /// Read the seed from FILE, or - for stdin: otpauth:// URI, otpauth-migration:// export,
    /// base32, or a PNG/JPEG image of a QR code holding one of the URIs
    #[arg(long, value_name = "FILE")]
    pub from: Option<PathBuf>,
    /// OTP type [default: totp]
    #[arg(long = "type", value_name = "TYPE")]
    pub oath_type: Option<OathType>,
    /// Hash algorithm [default: sha1]
    #[arg(long, value_name = "ALGORITHM")]
    pub algorithm: Option<HashAlgorithm>,
    /// Number of digits [default: 6]
    #[arg(long, value_parser = clap::value_parser!(u8).range(6..=8))]
    pub digits: Option<u8>,
    /// TOTP period in seconds [default: 30]
    #[arg(long, value_name = "SECONDS")]
    pub period: Option<u32>,
    /// Initial HOTP counter
    #[arg(long, value_name = "N")]
    pub counter: Option<u32>,
    /// Require a touch of the key for every code
    #[arg(long)]
    pub touch: bool,
    /// Replace an existing account with the same name
    #[arg(short, long)]
    pub force: bool,
    /// Create a random 20-byte seed and print its otpauth:// URI and a QR code of it once
    #[arg(long, conflicts_with = "from")]
    pub generate: bool,
    /// Write the account to every connected key (backup keys)
    #[arg(long)]
    pub all_devices: bool,
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

/// Split `[ISSUER:]NAME` on the first colon.
fn split_name(text: &str) -> (Option<&str>, &str) {
    match text.split_once(':') {
        Some((issuer, name)) if !issuer.is_empty() => (Some(issuer), name),
        _ => (None, text),
    }
}

/// Accounts matching `query`: an exact id wins; else case-insensitive substring.
pub(super) fn select_matches<'a, T>(
    items: &'a [T],
    credential: impl Fn(&T) -> &Credential,
    query: Option<&str>,
    exact: bool,
    show_hidden: bool,
) -> Vec<&'a T> {
    let visible = |item: &&T| show_hidden || !credential(item).id.is_hidden();
    let Some(query) = query else {
        return items.iter().filter(visible).collect();
    };
    let exact_matches: Vec<&T> = items
        .iter()
        .filter(|item| credential(item).id_string() == query)
        .collect();
    if !exact_matches.is_empty() || exact {
        return exact_matches;
    }
    let needle = query.to_lowercase();
    items
        .iter()
        .filter(visible)
        .filter(|item| {
            credential(item)
                .id_string()
                .to_lowercase()
                .contains(&needle)
        })
        .collect()
}

fn describe(matches: &[impl std::borrow::Borrow<(usize, Credential)>], keys: &[Key]) -> String {
    matches
        .iter()
        .map(|m| {
            let (key, credential) = m.borrow();
            format!("{} ({})", credential.id_string(), keys[*key].id)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn list(global: &GlobalArgs, args: &ListArgs) -> CliResult<()> {
    let mut backend = backend::open(global)?;
    let mut rows: Vec<(usize, Credential)> = Vec::new();
    for index in 0..backend.keys().len() {
        let credentials = backend.list(index)?;
        rows.extend(credentials.into_iter().map(|c| (index, c)));
    }
    let keys = backend.keys();
    let matches = select_matches(
        &rows,
        |r| &r.1,
        args.query.as_deref(),
        false,
        args.show_hidden,
    );
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
    let mut backend = backend::open(global)?;
    let mut rows: Vec<(usize, CodeEntry)> = Vec::new();
    for index in 0..backend.keys().len() {
        let entries = backend.codes(index, timestamp)?;
        rows.extend(entries.into_iter().map(|e| (index, e)));
    }
    let matches: Vec<(usize, CodeEntry)> = select_matches(
        &rows,
        |r| &r.1.credential,
        args.query.as_deref(),
        args.exact,
        args.show_hidden,
    )
    .into_iter()
    .cloned()
    .collect();
    let needs_one = args.single || args.count > 1;
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
    let is_steam = credential.is_steam();
    if count == 1
        && !is_steam
        && let Some(code) = listed
    {
        return Ok(vec![code]);
    }
    if count > 1 && credential.oath_type == OathType::Hotp {
        return Err(CliError::Usage(
            "--count works with TOTP accounts only".into(),
        ));
    }
    if credential.touch == Some(true) {
        eprintln!("Touch your key…");
    }
    let period = u64::from(credential.id.period.max(1));
    let at: Vec<u64> = (0..u64::from(count))
        .map(|step| timestamp + step * period)
        .collect();
    backend.calculate(key, credential, &at)
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

/// Turn the seed input and flags into the accounts to write.
fn accounts_to_add(args: &AddArgs) -> CliResult<Vec<CredentialData>> {
    let seed = if args.generate {
        let mut secret = Zeroizing::new(vec![0u8; 20]);
        getrandom::fill(&mut secret).map_err(|e| CliError::Failure(e.to_string()))?;
        SeedInput::Secret(secret)
    } else {
        input::read_seed(args.from.as_deref())?
    };
    let from_flags = |secret: Zeroizing<Vec<u8>>, issuer: Option<&str>, name: &str| {
        let oath_type = args.oath_type.unwrap_or_default();
        CredentialData {
            id: CredentialId::new(
                issuer,
                name,
                oath_type,
                args.period.unwrap_or(DEFAULT_PERIOD),
            ),
            oath_type,
            algorithm: args.algorithm.unwrap_or_default(),
            digits: args.digits.unwrap_or(DEFAULT_DIGITS),
            secret,
            counter: args.counter.unwrap_or(0),
            touch: args.touch,
        }
    };
    let accounts = match seed {
        SeedInput::Secret(secret) => {
            let name = args.name.as_deref().ok_or_else(|| {
                CliError::Usage(
                    "a bare secret needs an account name: oathbridge add [ISSUER:]NAME".into(),
                )
            })?;
            let (issuer, name) = split_name(name);
            vec![from_flags(secret, issuer, name)]
        }
        SeedInput::Accounts(uris) => {
            if uris.len() > 1 && args.name.is_some() {
                return Err(CliError::Usage(
                    "a NAME cannot be given for an export with several accounts".into(),
                ));
            }
            uris.into_iter()
                .map(|uri| from_uri(uri, args))
                .collect::<CliResult<_>>()?
        }
    };
    for account in &accounts {
        account.validate().map_err(OathError::from)?;
    }
    Ok(accounts)
}

/// A parsed URI, with the command line's NAME and flags taking precedence.
fn from_uri(uri: OtpAuthUri, args: &AddArgs) -> CliResult<CredentialData> {
    let oath_type = args.oath_type.unwrap_or(uri.oath_type);
    let (issuer, name) = match args.name.as_deref() {
        Some(text) => {
            let (issuer, name) = split_name(text);
            (issuer.map(str::to_owned), name.to_owned())
        }
        None => (uri.issuer.clone(), uri.name.clone()),
    };
    let counter = match args.counter {
        Some(counter) => counter,
        None => u32::try_from(uri.counter)
            .map_err(|_| CliError::Input("counter does not fit in 32 bits".into()))?,
    };
    Ok(CredentialData {
        id: CredentialId::new(
            issuer.as_deref(),
            &name,
            oath_type,
            args.period.unwrap_or(uri.period),
        ),
        oath_type,
        algorithm: args.algorithm.unwrap_or(uri.algorithm),
        digits: args.digits.unwrap_or(uri.digits),
        secret: uri.secret.clone(),
        counter,
        touch: args.touch,
    })
}

pub fn add(global: &GlobalArgs, args: &AddArgs) -> CliResult<()> {
    let accounts = accounts_to_add(args)?;
    let mut backend = backend::open(global)?;
    let targets: Vec<usize> = if args.all_devices {
        (0..backend.keys().len()).collect()
    } else {
        vec![backend.single()?]
    };
    let mut added = Vec::new();
    for key in targets {
        // Every account is checked before the first write, so a refusal changes nothing.
        for credential in backend.add(key, &accounts, args.force)? {
            added.push((backend.keys()[key].id.clone(), credential.id_string()));
        }
    }
    if args.generate
        && let Some(account) = accounts.first()
    {
        let uri = OtpAuthUri {
            oath_type: account.oath_type,
            issuer: account.id.issuer.clone(),
            name: account.id.name.clone(),
            secret: account.secret.clone(),
            algorithm: account.algorithm,
            digits: account.digits,
            period: account.id.period,
            counter: u64::from(account.counter),
        };
        let uri = Zeroizing::new(uri.to_uri());
        println!("{}", uri.as_str());
        // The QR code is for a phone app; JSON consumers get the URI line only.
        if !global.json {
            println!("{}", terminal_qr(&uri)?.as_str());
        }
    }
    if global.json {
        let out: Vec<_> = added
            .iter()
            .map(|(device, id)| serde_json::json!({"device": device, "id": id}))
            .collect();
        return Ok(print_json(&out)?);
    }
    for (device, id) in added {
        eprintln!("Added {id} to key {device}");
    }
    Ok(())
}

/// `text` as a QR code of Unicode half blocks (two modules a character row), with the quiet
/// zone. Light modules are drawn as blocks: on the usual dark-background terminal the code
/// then shows dark-on-light, as scanners expect.
fn terminal_qr(text: &str) -> CliResult<Zeroizing<String>> {
    use qrcode::render::unicode::Dense1x2;
    let code = qrcode::QrCode::new(text.as_bytes())
        .map_err(|e| CliError::Failure(format!("cannot draw the QR code: {e}")))?;
    Ok(Zeroizing::new(
        code.render::<Dense1x2>()
            .dark_color(Dense1x2::Light)
            .light_color(Dense1x2::Dark)
            .quiet_zone(true)
            .build(),
    ))
}

/// The single account `query` names, on any key (hidden accounts included).
fn find_one(backend: &mut dyn Backend, query: &str) -> CliResult<(usize, Credential)> {
    let mut rows = Vec::new();
    for index in 0..backend.keys().len() {
        let credentials = backend.list(index)?;
        rows.extend(credentials.into_iter().map(|c| (index, c)));
    }
    let matches = select_matches(&rows, |r| &r.1, Some(query), false, true);
    match matches.as_slice() {
        [] => Err(CliError::NoMatch),
        [one] => Ok((*one).clone()),
        several => Err(CliError::Ambiguous(format!(
            "{} accounts match: {}",
            several.len(),
            describe(several, backend.keys())
        ))),
    }
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
    backend.delete(key, &credential)?;
    eprintln!("Deleted {}", credential.id_string());
    Ok(())
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
