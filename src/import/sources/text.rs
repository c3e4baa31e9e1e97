//! Text inputs: any number of `otpauth://` and `otpauth-migration://` lines (any line
//! ending, a BOM, blank lines and `#` comments allowed), or one bare base32 secret.

use zeroize::Zeroizing;

use super::names::tidy;
use crate::import::{AccountSpec, InputError, InputErrors, Location};
use crate::otp::{
    Batch, Migration, MigrationError, parse_base32_secret, parse_migration_uri, parse_otpauth_uri,
};

/// Accounts read from URIs, and the migration batches they came in (to check that a
/// multi-QR export is complete).
#[derive(Debug, Default)]
pub struct UriAccounts {
    pub accounts: Vec<AccountSpec>,
    pub batches: Vec<(Location, Batch)>,
}

/// What a text input holds.
#[derive(Debug)]
pub enum Text {
    Accounts(UriAccounts),
    /// A lone base32 secret: the account's name and settings come from the caller.
    BareSecret(Zeroizing<Vec<u8>>),
}

/// Reads a text input. Every bad line is reported; none is quoted.
pub fn parse_text(text: &str, at: &Location) -> Result<Text, InputErrors> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    // CRLF, CR and LF all end a line.
    let normalized = Zeroizing::new(text.replace("\r\n", "\n").replace('\r', "\n"));
    let lines: Vec<(usize, &str)> = normalized
        .split('\n')
        .enumerate()
        .map(|(index, line)| (index + 1, line.trim()))
        .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'))
        .collect();
    match lines.as_slice() {
        [] => return Err(at.error(None, "no account in the input").into()),
        [(number, line)] if !is_uri(line) => {
            return parse_base32_secret(line)
                .map(Text::BareSecret)
                .map_err(|e| {
                    at.at_line(*number)
                        .error(Some("secret"), e.to_string())
                        .into()
                });
        }
        _ => {}
    }
    let mut found = UriAccounts::default();
    let mut errors = Vec::new();
    for (number, line) in lines {
        let here = at.at_line(number);
        if !parse_uri(line, &here, &mut found, &mut errors) {
            errors.push(here.error(
                None,
                "not an otpauth:// or otpauth-migration:// URI (a bare secret must be alone)",
            ));
        }
    }
    if errors.is_empty() {
        Ok(Text::Accounts(found))
    } else {
        Err(InputErrors(errors))
    }
}

fn is_uri(text: &str) -> bool {
    text.get(..8)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("otpauth:"))
        || text
            .get(..18)
            .is_some_and(|scheme| scheme.eq_ignore_ascii_case("otpauth-migration:"))
}

/// Reads one URI (a text line or a QR code's content) into `found`, problems into `errors`.
/// Returns false when the text is neither kind of URI.
pub fn parse_uri(
    text: &str,
    at: &Location,
    found: &mut UriAccounts,
    errors: &mut Vec<InputError>,
) -> bool {
    let text = text.trim();
    let lower = text.get(..18).unwrap_or(text).to_ascii_lowercase();
    if lower.starts_with("otpauth-migration:") {
        match parse_migration(text) {
            Ok(migration) => {
                let several = migration.accounts.len() > 1;
                for (index, mut account) in migration.accounts.into_iter().enumerate() {
                    tidy(&mut account);
                    let place = if several || migration.batch.is_some() {
                        at.at_entry(index + 1)
                    } else {
                        at.clone()
                    };
                    found.accounts.push(AccountSpec { at: place, account });
                }
                if let Some(batch) = migration.batch {
                    found.batches.push((at.clone(), batch));
                }
            }
            Err(problems) => errors.extend(problems.into_iter().map(|p| match p {
                MigrationError::Entry {
                    entry,
                    field,
                    problem,
                } => at.at_entry(entry).error(Some(field), problem),
                other => at.error(None, other.to_string()),
            })),
        }
        true
    } else if lower.starts_with("otpauth:") {
        match parse_otpauth_uri(text) {
            Ok(mut account) => {
                tidy(&mut account);
                found.accounts.push(AccountSpec {
                    at: at.clone(),
                    account,
                });
            }
            Err(error) => errors.push(at.error(None, error.to_string())),
        }
        true
    } else {
        false
    }
}

/// A migration URI whose base64 `data` had its `+` turned into spaces (form-decoded by a
/// scanner app or a script) is read with the `+` back; a URI is one line, so a space inside
/// it is never line wrapping.
fn parse_migration(text: &str) -> Result<Migration, Vec<MigrationError>> {
    let first = parse_migration_uri(text);
    if first.is_ok() || !text.contains(' ') {
        return first;
    }
    let plus = Zeroizing::new(text.replace(' ', "+"));
    parse_migration_uri(&plus).or(first)
}

/// Batches of one export must not repeat, must lie inside the export and agree on its size;
/// missing ones are worth a note (the person may have scanned one QR code of several on
/// purpose), naming them.
pub fn check_batches(batches: &[(Location, Batch)]) -> (Vec<InputError>, Vec<String>) {
    let mut errors = Vec::new();
    let mut notes = Vec::new();
    for (index, (at, batch)) in batches.iter().enumerate() {
        let earlier = &batches[..index];
        if !(0..batch.size).contains(&batch.index) {
            errors.push(at.error(
                Some("data"),
                format!(
                    "QR code number {} is outside its export of {} QR codes",
                    i64::from(batch.index) + 1,
                    batch.size
                ),
            ));
        } else if let Some((first, other)) = earlier
            .iter()
            .find(|(_, b)| b.id == batch.id && b.size != batch.size)
        {
            errors.push(at.error(
                Some("data"),
                format!(
                    "this QR code says its export has {} QR codes, the one at {first} says {}",
                    batch.size, other.size
                ),
            ));
        } else if let Some((first, _)) = earlier
            .iter()
            .find(|(_, b)| b.id == batch.id && b.index == batch.index)
        {
            errors.push(at.error(
                None,
                format!(
                    "QR code {} of {} of this export was already given at {first}",
                    batch.index + 1,
                    batch.size
                ),
            ));
        }
    }
    if !errors.is_empty() {
        return (errors, notes);
    }
    let mut ids: Vec<i32> = batches.iter().map(|(_, b)| b.id).collect();
    ids.sort_unstable();
    ids.dedup();
    for id in ids {
        let of_export: Vec<&Batch> = batches
            .iter()
            .map(|(_, b)| b)
            .filter(|b| b.id == id)
            .collect();
        let size = of_export.iter().map(|b| b.size).max().unwrap_or(0);
        let missing: Vec<String> = (0..size)
            .filter(|i| !of_export.iter().any(|b| b.index == *i))
            .map(|i| (i + 1).to_string())
            .collect();
        if !missing.is_empty() {
            notes.push(format!(
                "the export has {size} QR codes; code(s) {} were not given, so their accounts \
                 are not imported",
                missing.join(", ")
            ));
        }
    }
    (errors, notes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAROL: &str = "otpauth://totp/Example:carol@example.com?secret=NBQW4ZDFMQWWGYLTMUWWWZLZFUYDAMBR&issuer=Example&digits=6";
    const DAVE: &str =
        "otpauth://totp/dave@example.com?secret=NBQW4ZDFMQWWGYLTMUWWWZLZFUYDAMBS&digits=8";

    fn accounts(text: &str) -> UriAccounts {
        match parse_text(text, &Location::source("t")) {
            Ok(Text::Accounts(found)) => found,
            Ok(Text::BareSecret(_)) => panic!("bare secret"),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn every_line_ending_bom_comments_and_blank_lines() {
        for text in [
            format!("{CAROL}\r\n{DAVE}\r\n"),
            format!("{CAROL}\n{DAVE}"),
            format!("{CAROL}\r{DAVE}\r"),
            format!("\u{feff}# my accounts\r\n\r\n{CAROL}\r\n   \r\n# dave\r\n{DAVE}\r\n"),
        ] {
            let found = accounts(&text);
            let names: Vec<&str> = found
                .accounts
                .iter()
                .map(|a| a.account.name.as_str())
                .collect();
            assert_eq!(names, ["carol@example.com", "dave@example.com"], "{text:?}");
            assert_eq!(found.accounts[1].account.digits, 8);
        }
    }

    #[test]
    fn errors_name_the_line_and_never_quote_it() {
        let text = format!(
            "{CAROL}\r\notpauth://totp/x?secret=NBQW4ZDFMQWWGYLTMUWWWZLZFUYDAMBS&digits=6\r\n\r\nNBQW4ZDFMQWWGYLT\r\n{DAVE}&digits=9"
        );
        let errors = parse_text(&text, &Location::source("a.txt")).expect_err("bad lines");
        assert_eq!(
            errors.to_string(),
            "a.txt: line 4: not an otpauth:// or otpauth-migration:// URI (a bare secret must be alone)\n\
             a.txt: line 5: digits: given twice with different values"
        );
    }

    #[test]
    fn a_lone_line_without_a_scheme_is_a_bare_secret() {
        match parse_text("\u{feff} JBSW Y3DP EHPK 3PXP \r\n", &Location::source("t")) {
            Ok(Text::BareSecret(secret)) => {
                assert_eq!(secret.as_slice(), b"Hello!\xde\xad\xbe\xef")
            }
            other => panic!("{other:?}"),
        }
        let error = parse_text("JBSWY3DPEHPK3PX1", &Location::source("t")).expect_err("bad");
        assert_eq!(
            error.to_string(),
            "t: line 1: secret: not base32: invalid character at position 16"
        );
        assert_eq!(
            parse_text(" \n# only a comment\n", &Location::source("t"))
                .expect_err("empty")
                .to_string(),
            "t: no account in the input"
        );
    }

    #[test]
    fn batches_of_one_export_are_one_import() {
        let text = "otpauth-migration://offline?data=CjYKFGhhbmRlZC1jYXNlLWtleS0wMDAxEhFoZWlkaUBleGFtcGxlLmNvbRoFRm9yZ2UgASgBMAIQARgCIAAoTQ%3D%3D\n\
                    otpauth-migration://offline?data=CjUKFGhhbmRlZC1jYXNlLWtleS0wMDAyEhFoZWlkaUBleGFtcGxlLmNvbRoEV2lraSABKAEwAhABGAIgAShN\n";
        let found = accounts(text);
        assert_eq!(found.accounts.len(), 2);
        assert_eq!(found.accounts[1].at.to_string(), "t: line 2, entry 1");
        let (errors, notes) = check_batches(&found.batches);
        assert!(
            errors.is_empty() && notes.is_empty(),
            "{errors:?} {notes:?}"
        );
        let (errors, notes) = check_batches(&found.batches[..1]);
        assert!(errors.is_empty());
        assert_eq!(notes.len(), 1, "{notes:?}");
        let twice = [found.batches[0].clone(), found.batches[0].clone()];
        assert_eq!(check_batches(&twice).0.len(), 1);
    }

    #[test]
    fn labels_are_tidied_as_people_meant_them() {
        let text = "otpauth://totp/Example:%20alice?secret=NBQW4ZDFMQWWGYLTMUWWWZLZFUYDAMBR\n\
                    otpauth://totp/Forge : bob ?secret=NBQW4ZDFMQWWGYLTMUWWWZLZFUYDAMBS&issuer=Forge\n";
        let found = accounts(text);
        let ids: Vec<(Option<&str>, &str)> = found
            .accounts
            .iter()
            .map(|a| (a.account.issuer.as_deref(), a.account.name.as_str()))
            .collect();
        assert_eq!(ids, [(Some("Example"), "alice"), (Some("Forge"), "bob")]);
    }

    #[test]
    fn a_migration_uri_whose_plus_signs_became_spaces_is_read() {
        // Example:franka> with seed handed-case-key-0001: the '>' puts a '+' in the base64.
        let raw = "Ci4KFGhhbmRlZC1jYXNlLWtleS0wMDAxEgdmcmFua2E+GgdFeGFtcGxlIAEoATACEAE=";
        assert!(raw.contains('+'));
        let plus = accounts(&format!("otpauth-migration://offline?data={raw}"));
        let spaced = accounts(&format!(
            "otpauth-migration://offline?data={}",
            raw.replace('+', " ")
        ));
        assert_eq!(plus.accounts.len(), 1);
        assert_eq!(spaced.accounts[0].account, plus.accounts[0].account);
    }

    fn batch(index: i32, size: i32) -> (Location, Batch) {
        let at = Location::source("t").at_line(usize::try_from(index).unwrap_or(0) + 1);
        (at, Batch { id: 7, index, size })
    }

    #[test]
    fn batches_outside_their_export_or_disagreeing_on_its_size_are_refused() {
        let (errors, _) = check_batches(&[batch(0, 2), batch(5, 2)]);
        assert_eq!(
            errors.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["t: line 6: data: QR code number 6 is outside its export of 2 QR codes"]
        );
        let (errors, _) = check_batches(&[batch(-1, 2)]);
        assert_eq!(errors.len(), 1);
        let (errors, _) = check_batches(&[batch(0, 2), batch(1, 3)]);
        assert_eq!(
            errors.iter().map(ToString::to_string).collect::<Vec<_>>(),
            [
                "t: line 2: data: this QR code says its export has 3 QR codes, the one at t: line 1 says 2"
            ]
        );
        // Out of order and complete: no error, no note.
        let (errors, notes) = check_batches(&[batch(2, 3), batch(0, 3), batch(1, 3)]);
        assert!(
            errors.is_empty() && notes.is_empty(),
            "{errors:?} {notes:?}"
        );
        let (_, notes) = check_batches(&[batch(2, 3), batch(0, 3)]);
        assert_eq!(
            notes,
            [
                "the export has 3 QR codes; code(s) 2 were not given, so their accounts are not imported"
            ]
        );
    }
}
