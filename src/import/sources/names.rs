//! Issuers and names as the person meant them, for every source: the Key Uri Format allows
//! spaces after the label's colon (`Example: alice`), exporters pad fields, and Google
//! Authenticator (and some apps) keep the issuer in front of the name as well (`Example:alice`
//! with issuer `Example`, in any letter case). Left as they are, these become ids such as
//! `Example: alice` or `Example:example:alice` that no other client shows the same way.

use crate::otp::OtpAuthUri;

/// Trims white space around the issuer and the name (an issuer left empty is none), then
/// drops a copy of the issuer (letter case ignored) and its `:` from the front of the name.
/// A name that is only that copy is kept: dropping it would leave no name.
pub fn tidy(account: &mut OtpAuthUri) {
    let issuer = account
        .issuer
        .as_deref()
        .map(str::trim)
        .filter(|issuer| !issuer.is_empty())
        .map(str::to_owned);
    let mut name = account.name.trim();
    if let Some(issuer) = issuer.as_deref()
        && let Some(rest) = strip_issuer(name, issuer)
    {
        name = rest;
    }
    account.name = name.to_owned();
    account.issuer = issuer;
}

/// `name` without a leading `issuer` (any case), spaces and `:`; None unless a name is left.
fn strip_issuer<'a>(name: &'a str, issuer: &str) -> Option<&'a str> {
    let head = name.get(..issuer.len())?;
    if !head.to_lowercase().eq(&issuer.to_lowercase()) {
        return None;
    }
    let rest = name.get(issuer.len()..)?.trim_start().strip_prefix(':')?;
    Some(rest.trim()).filter(|rest| !rest.is_empty())
}

#[cfg(test)]
mod tests {
    use zeroize::Zeroizing;

    use super::*;
    use crate::otp::{HashAlgorithm, OathType};

    fn tidied(issuer: Option<&str>, name: &str) -> (Option<String>, String) {
        let mut account = OtpAuthUri {
            oath_type: OathType::Totp,
            issuer: issuer.map(str::to_owned),
            name: name.to_owned(),
            secret: Zeroizing::new(b"handed-case-key-0001".to_vec()),
            algorithm: HashAlgorithm::Sha1,
            digits: 6,
            period: 30,
            counter: 0,
        };
        tidy(&mut account);
        (account.issuer, account.name)
    }

    #[test]
    fn spaces_around_issuer_and_name_go() {
        for (issuer, name) in [
            (Some("Example"), " alice"),
            (Some(" Example "), "alice  "),
            (Some("Example\u{a0}"), "\u{a0}\talice"),
        ] {
            assert_eq!(
                tidied(issuer, name),
                (Some("Example".to_owned()), "alice".to_owned()),
                "{issuer:?} {name:?}"
            );
        }
        assert_eq!(tidied(Some("  "), " bob "), (None, "bob".to_owned()));
        // Spaces inside stay; a blank name stays blank (the plan refuses it).
        assert_eq!(
            tidied(Some("My Bank"), "alice  smith"),
            (Some("My Bank".to_owned()), "alice  smith".to_owned())
        );
        assert_eq!(
            tidied(Some("A"), "  "),
            (Some("A".to_owned()), String::new())
        );
    }

    #[test]
    fn the_issuer_repeated_in_front_of_the_name_goes() {
        for name in [
            "Example:alice",
            "example:alice",
            "EXAMPLE : alice",
            "Example: alice",
        ] {
            assert_eq!(
                tidied(Some("Example"), name),
                (Some("Example".to_owned()), "alice".to_owned()),
                "{name:?}"
            );
        }
        // Not a copy of the issuer, or nothing after it: unchanged.
        for (issuer, name) in [
            ("Example", "Examples:alice"),
            ("Example", "Example:"),
            ("Example", "Example alice"),
            ("Mail", "alice:Mail"),
            ("Ä", "ä:x"),
        ] {
            let want = if issuer == "Ä" { "x" } else { name };
            assert_eq!(
                tidied(Some(issuer), name),
                (Some(issuer.to_owned()), want.to_owned()),
                "{issuer:?} {name:?}"
            );
        }
        assert_eq!(tidied(None, "Mail:alice"), (None, "Mail:alice".to_owned()));
    }
}
