//! Reading secrets: from a file, stdin or a hidden prompt, never from argv.

use std::io::{IsTerminal, Read};
use std::path::Path;

use zeroize::Zeroizing;

use super::error::{CliError, CliResult};
use crate::otp::{
    OtpAuthUri, decode_qr_image, looks_like_image, parse_base32_secret, parse_migration_uri,
    parse_otpauth_uri,
};

/// Largest input we read: QR code images (a phone screenshot is a few MiB) are the big ones.
const MAX_INPUT: u64 = 16 * 1024 * 1024;
/// Largest text input (a migration export of many accounts stays far below).
const MAX_TEXT_INPUT: usize = 64 * 1024;

/// What a seed input turned out to be.
pub enum SeedInput {
    /// One or more complete accounts (otpauth:// or otpauth-migration://).
    Accounts(Vec<OtpAuthUri>),
    /// A bare base32 secret; the account details come from the command line.
    Secret(Zeroizing<Vec<u8>>),
}

/// Read the seed from `from` (a path, or `-` for stdin), else a hidden prompt on a
/// terminal, else stdin.
pub fn read_seed(from: Option<&Path>) -> CliResult<SeedInput> {
    let text = match from {
        Some(path) if path.as_os_str() == "-" => read_limited(std::io::stdin().lock())?,
        Some(path) => {
            let file = std::fs::File::open(path)
                .map_err(|e| CliError::Input(format!("cannot read {}: {e}", path.display())))?;
            read_limited(file)?
        }
        None if std::io::stdin().is_terminal() => Zeroizing::new(
            rpassword::prompt_password("Secret (base32 or otpauth:// URI): ")?.into_bytes(),
        ),
        None => read_limited(std::io::stdin().lock())?,
    };
    parse_seed(&text)
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

/// Detect the kind of input by its content: a PNG/JPEG QR code image, else text.
pub fn parse_seed(bytes: &[u8]) -> CliResult<SeedInput> {
    if looks_like_image(bytes) {
        let text = decode_qr_image(bytes).map_err(|e| CliError::Input(e.to_string()))?;
        return parse_seed_text(text.as_bytes());
    }
    if bytes.len() > MAX_TEXT_INPUT {
        return Err(CliError::Input(format!(
            "text input is larger than {MAX_TEXT_INPUT} bytes"
        )));
    }
    parse_seed_text(bytes)
}

/// A base32 secret, an otpauth:// URI or an otpauth-migration:// export.
fn parse_seed_text(bytes: &[u8]) -> CliResult<SeedInput> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| CliError::Input("secret input is not UTF-8 text".into()))?
        .trim();
    if text.is_empty() {
        return Err(CliError::Input("no secret given".into()));
    }
    let lower = text.get(..22).unwrap_or(text).to_ascii_lowercase();
    if lower.starts_with("otpauth-migration:") {
        let accounts = parse_migration_uri(text).map_err(|e| CliError::Input(e.to_string()))?;
        return Ok(SeedInput::Accounts(accounts));
    }
    if lower.starts_with("otpauth:") {
        let account = parse_otpauth_uri(text).map_err(|e| CliError::Input(e.to_string()))?;
        return Ok(SeedInput::Accounts(vec![account]));
    }
    let secret = parse_base32_secret(text).map_err(|e| CliError::Input(e.to_string()))?;
    Ok(SeedInput::Secret(secret))
}
