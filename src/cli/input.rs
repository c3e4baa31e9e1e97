//! Reading import sources: files, stdin or a hidden prompt, never argv. Passwords of
//! encrypted exports come from a hidden prompt, or the first line of stdin.

use std::io::{BufRead, IsTerminal, Read};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::error::{CliError, CliResult};
use crate::import::{InputError, Location, Parsed, Passwords, parse_source};

/// Largest input we read, in bytes: QR code images (a phone screenshot is a few MiB).
const MAX_INPUT: u64 = 16 * 1024 * 1024;

/// Read and parse every source (`-` is stdin; none means a hidden prompt on a terminal,
/// else stdin). Every problem of every source is reported together.
pub fn read_sources(from: &[PathBuf]) -> CliResult<Vec<Parsed>> {
    let stdin_is_source = from.is_empty() || from.iter().any(|p| p.as_os_str() == "-");
    let mut passwords = CliPasswords { stdin_is_source };
    let mut parsed = Vec::new();
    let mut errors: Vec<InputError> = Vec::new();
    let sources: Vec<Option<&Path>> = if from.is_empty() {
        vec![None]
    } else {
        from.iter().map(|p| Some(p.as_path())).collect()
    };
    for source in sources {
        let (name, bytes) = read_one(source)?;
        match parse_source(&bytes, &Location::source(&name), &mut passwords) {
            Ok(found) => parsed.push(found),
            Err(problems) => errors.extend(problems.0),
        }
    }
    if errors.is_empty() {
        Ok(parsed)
    } else {
        Err(CliError::Input(
            crate::import::InputErrors(errors).to_string(),
        ))
    }
}

fn read_one(source: Option<&Path>) -> CliResult<(String, Zeroizing<Vec<u8>>)> {
    match source {
        Some(path) if path.as_os_str() == "-" => {
            Ok(("stdin".into(), read_limited(std::io::stdin().lock())?))
        }
        Some(path) => {
            let name = path.display().to_string();
            let file = std::fs::File::open(path)
                .map_err(|e| CliError::Input(format!("{name}: cannot read: {e}")))?;
            Ok((name, read_limited(file)?))
        }
        None if std::io::stdin().is_terminal() => Ok((
            "prompt".into(),
            Zeroizing::new(
                rpassword::prompt_password("Secret (base32 or otpauth:// URI): ")?.into_bytes(),
            ),
        )),
        None => Ok(("stdin".into(), read_limited(std::io::stdin().lock())?)),
    }
}

fn read_limited(reader: impl Read) -> CliResult<Zeroizing<Vec<u8>>> {
    let mut buffer = Zeroizing::new(Vec::new());
    reader.take(MAX_INPUT + 1).read_to_end(&mut buffer)?;
    if buffer.len() as u64 > MAX_INPUT {
        return Err(CliError::Input(format!(
            "input is larger than {MAX_INPUT} bytes"
        )));
    }
    Ok(buffer)
}

/// A hidden prompt on the terminal; without one, the first line of stdin (unless stdin is
/// itself the export being read).
struct CliPasswords {
    stdin_is_source: bool,
}

impl Passwords for CliPasswords {
    fn password(&mut self, at: &Location, what: &str) -> Result<Zeroizing<String>, InputError> {
        let password = if std::io::stdin().is_terminal() || self.stdin_is_source {
            rpassword::prompt_password(format!("Password for {what} ({at}): "))
                .map(Zeroizing::new)
                .map_err(|_| {
                    at.error(
                        None,
                        format!("{what} is encrypted: give its password on a terminal"),
                    )
                })?
        } else {
            let mut line = Zeroizing::new(String::new());
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .map_err(|_| at.error(None, "cannot read the password from stdin"))?;
            let trimmed = line.trim_end_matches(['\r', '\n']);
            Zeroizing::new(trimmed.to_owned())
        };
        if password.is_empty() {
            return Err(at.error(None, format!("no password given for {what}")));
        }
        Ok(password)
    }
}
