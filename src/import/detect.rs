//! What a byte stream is, decided by content (never by file name): a QR code image, a JSON
//! export of an authenticator app, or text (otpauth lines, or one bare base32 secret).

use zeroize::Zeroizing;

use super::sources::apps;
use super::sources::names::tidy;
use super::sources::qr::{self, ImageKind};
use super::sources::text::{self, Text, UriAccounts};
use super::sources::utf16::{self, Encoding};
use super::{AccountSpec, InputErrors, Location, Passwords};
use crate::otp::Batch;

/// Largest text input, in bytes (an export of hundreds of accounts stays far below).
pub const MAX_TEXT_INPUT: usize = 256 * 1024;

/// The accounts of one source, and notes for the person (how many QR codes were found,
/// missing batches of a multi-QR export).
#[derive(Debug, Default)]
pub struct Parsed {
    pub accounts: Vec<AccountSpec>,
    /// A lone base32 secret (text input only); the caller names the account.
    pub bare_secret: Option<(Location, Zeroizing<Vec<u8>>)>,
    /// Migration batches seen, checked across all sources by [`combine`].
    pub batches: Vec<(Location, Batch)>,
    pub notes: Vec<String>,
}

/// Reads one source. `at` names it (`export.txt`, `stdin`); every problem is returned.
pub fn parse_source(
    bytes: &[u8],
    at: &Location,
    passwords: &mut dyn Passwords,
) -> Result<Parsed, InputErrors> {
    match qr::image_kind(bytes) {
        ImageKind::Supported(_) => return parse_image(bytes, at),
        ImageKind::Unsupported(format) => {
            return Err(at
                .error(
                    None,
                    format!("unsupported image format {format} (save it as PNG or JPEG)"),
                )
                .into());
        }
        ImageKind::NotAnImage => {}
    }
    let encoding = utf16::encoding(bytes);
    if encoding != Encoding::Other {
        let text = utf16::to_utf8(bytes, encoding)
            .ok_or_else(|| at.error(None, "not valid UTF-16 text (save it as UTF-8)"))?;
        return parse_source(text.as_bytes(), at, passwords);
    }
    if apps::looks_like_json(bytes) {
        let mut accounts = apps::parse_json(bytes, at, passwords)?;
        for spec in &mut accounts {
            tidy(&mut spec.account);
        }
        return Ok(Parsed {
            accounts,
            ..Parsed::default()
        });
    }
    if bytes.len() > MAX_TEXT_INPUT {
        return Err(at
            .error(
                None,
                format!("text input is larger than {MAX_TEXT_INPUT} bytes"),
            )
            .into());
    }
    let text = std::str::from_utf8(bytes).map_err(|_| {
        at.error(
            None,
            "not UTF-8 text, a QR code image (PNG, JPEG, GIF, WebP, BMP) or an app's JSON export",
        )
    })?;
    // Valid UTF-8, but binary: a ZIP archive, an encrypted backup.
    if text.contains('\0') {
        return Err(at
            .error(
                None,
                "binary data, not text, a QR code image or an app's JSON export",
            )
            .into());
    }
    match text::parse_text(text, at)? {
        Text::BareSecret(secret) => Ok(Parsed {
            bare_secret: Some((at.clone(), secret)),
            ..Parsed::default()
        }),
        Text::Accounts(found) => finish(found, Vec::new()),
    }
}

/// Every otpauth QR code in the picture is imported; other QR codes are ignored.
fn parse_image(bytes: &[u8], at: &Location) -> Result<Parsed, InputErrors> {
    let texts = qr::decode_qr_texts(bytes).map_err(|e| at.error(None, e.to_string()))?;
    let mut found = UriAccounts::default();
    let mut errors = Vec::new();
    let mut otpauth = 0;
    for (index, content) in texts.iter().enumerate() {
        if text::parse_uri(content, &at.at_code(index + 1), &mut found, &mut errors) {
            otpauth += 1;
        }
    }
    if otpauth == 0 {
        return Err(at
            .error(
                None,
                format!(
                    "no otpauth QR code in the image ({} other QR code(s) found)",
                    texts.len()
                ),
            )
            .into());
    }
    if !errors.is_empty() {
        return Err(InputErrors(errors));
    }
    let mut notes = Vec::new();
    if texts.len() > 1 {
        notes.push(format!(
            "{at}: found {} QR codes, {otpauth} of them with accounts",
            texts.len()
        ));
    }
    finish(found, notes)
}

fn finish(found: UriAccounts, notes: Vec<String>) -> Result<Parsed, InputErrors> {
    Ok(Parsed {
        accounts: found.accounts,
        batches: found.batches,
        bare_secret: None,
        notes,
    })
}

/// The sources of one import together: migration batches may be spread over several
/// files. Returns every account, and the notes for the person.
pub fn combine(sources: Vec<Parsed>) -> Result<(Vec<AccountSpec>, Vec<String>), InputErrors> {
    let batches: Vec<(Location, Batch)> = sources
        .iter()
        .flat_map(|s| s.batches.iter().cloned())
        .collect();
    let (errors, batch_notes) = text::check_batches(&batches);
    if !errors.is_empty() {
        return Err(InputErrors(errors));
    }
    let mut accounts = Vec::new();
    let mut notes = Vec::new();
    for source in sources {
        accounts.extend(source.accounts);
        notes.extend(source.notes);
    }
    notes.extend(batch_notes);
    Ok((accounts, notes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::NoPasswords;
    use proptest::prelude::*;

    /// Base32 seeds of 20 random bytes.
    fn seed() -> impl Strategy<Value = String> {
        proptest::collection::vec(any::<u8>(), 20)
            .prop_map(|bytes| data_encoding::BASE32_NOPAD.encode(&bytes))
    }

    fn assert_no_window(text: &str, seed: &str) -> Result<(), TestCaseError> {
        for window in seed.as_bytes().windows(6) {
            let window = std::str::from_utf8(window).unwrap_or_default();
            prop_assert!(!text.contains(window), "{window} in {text}");
        }
        Ok(())
    }

    fn parsed(bytes: &[u8]) -> Result<Parsed, InputErrors> {
        parse_source(bytes, &Location::source("in"), &mut NoPasswords)
    }

    fn ids(parsed: &Parsed) -> Vec<String> {
        parsed
            .accounts
            .iter()
            .map(|a| format!("{:?}:{}", a.account.issuer, a.account.name))
            .collect()
    }

    #[test]
    fn utf16_text_and_json_read_like_utf8() {
        let text = "# Notepad\r\notpauth://totp/Caf%C3%A9:%20ann?secret=NBQW4ZDFMQWWGYLTMUWWWZLZFUYDAMBR\r\n";
        let json = r#"[{"secret":"NBQW4ZDFMQWWGYLTMUWWWZLZFUYDAMBR","issuer":"Café","label":"ann","type":"TOTP"}]"#;
        for content in [text, json] {
            let utf8 = parsed(content.as_bytes()).expect("UTF-8");
            let le: Vec<u8> = std::iter::once(0xFEFF)
                .chain(content.encode_utf16())
                .flat_map(u16::to_le_bytes)
                .collect();
            let be: Vec<u8> = content.encode_utf16().flat_map(u16::to_be_bytes).collect();
            for bytes in [le, be] {
                let utf16 = parsed(&bytes).expect("UTF-16");
                assert_eq!(ids(&utf16), ids(&utf8));
                assert_eq!(ids(&utf16), [r#"Some("Café"):ann"#]);
            }
        }
        let odd = [0xFF, 0xFE, b'o', 0, b't'];
        assert_eq!(
            parsed(&odd).expect_err("odd length").to_string(),
            "in: not valid UTF-16 text (save it as UTF-8)"
        );
    }

    #[test]
    fn binary_files_are_not_read_as_a_secret() {
        let zip = b"PK\x03\x04\x14\0\0\0\x08\0NBQW4ZDFMQWWGYLT";
        assert_eq!(
            parsed(zip).expect_err("binary").to_string(),
            "in: binary data, not text, a QR code image or an app's JSON export"
        );
    }

    #[test]
    fn app_exports_are_tidied_too() {
        let json = r#"[{"secret":"NBQW4ZDFMQWWGYLTMUWWWZLZFUYDAMBR","issuer":" Mail ","label":"mail: erin","type":"TOTP"}]"#;
        assert_eq!(
            ids(&parsed(json.as_bytes()).expect("andOTP")),
            [r#"Some("Mail"):erin"#]
        );
    }

    proptest! {
        /// A seed inside a damaged input never shows up in what the pipeline says about it.
        #[test]
        fn seeds_in_malformed_inputs_are_never_echoed(
            seed in seed(),
            label in "[A-Za-z0-9:%@ ]{0,12}",
            junk in "[A-Za-z0-9=&%#?:/+ \r\n]{0,24}",
            cut in 0usize..160,
            insert in 0usize..160,
        ) {
            let uri = format!(
                "otpauth://totp/{label}?secret={seed}&digits=6{junk}\r\notpauth-migration://offline?data={seed}{junk}\n{seed}{junk}"
            );
            let mut bytes = uri.into_bytes();
            bytes.truncate(cut.max(20).min(bytes.len()));
            let at = insert.min(bytes.len());
            bytes.splice(at..at, b"%Z\r\n&digits=".iter().copied());
            if let Err(errors) = parse_source(&bytes, &Location::source("input"), &mut NoPasswords) {
                assert_no_window(&errors.to_string(), &seed)?;
            }
        }
    }
}
