//! Lenient base32 seed parsing, after ykman's `parse_b32_key`.
//!
//! Seeds are typed or pasted by people, so case, whitespace, dashes and missing `=` padding
//! are all tolerated. Errors never contain the secret text.

use std::sync::LazyLock;

use data_encoding::{BASE32_NOPAD, Encoding};
use thiserror::Error;
use zeroize::Zeroizing;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SecretError {
    #[error("secret is empty")]
    Empty,
    /// `position` counts characters of the input, from 1. The character itself is not
    /// kept: it is part of a secret.
    #[error("not base32: invalid character at position {position}")]
    InvalidCharacter { position: usize },
    #[error(
        "invalid base32 length: {length} characters cannot encode whole bytes \
         (a length of 1, 3 or 6 modulo 8 is impossible)"
    )]
    BadLength { length: usize },
}

// Python's b32decode (and so ykman) ignores non-zero bits after the last whole byte, while
// data_encoding rejects them. Padding is stripped before decoding, so NOPAD is the base.
static LENIENT_BASE32: LazyLock<Encoding> = LazyLock::new(|| {
    let mut spec = BASE32_NOPAD.specification();
    spec.check_trailing_bits = false;
    spec.encoding().unwrap_or_else(|_| BASE32_NOPAD.clone())
});

/// Decodes a base32 secret: case-insensitive, whitespace and `-` ignored, `=` padding optional.
pub fn parse_base32_secret(text: &str) -> Result<Zeroizing<Vec<u8>>, SecretError> {
    let mut cleaned = Zeroizing::new(String::with_capacity(text.len()));
    // Where padding started: anything but more padding after it is an error there.
    let mut padding_at: Option<usize> = None;
    for (index, character) in text.chars().enumerate() {
        let position = index + 1;
        if character.is_whitespace() || character == '-' {
            continue;
        }
        match character.to_ascii_uppercase() {
            '=' => {
                padding_at.get_or_insert(position);
            }
            upper @ ('A'..='Z' | '2'..='7') => match padding_at {
                None => cleaned.push(upper),
                Some(position) => {
                    return Err(SecretError::InvalidCharacter { position });
                }
            },
            _ => {
                return Err(SecretError::InvalidCharacter { position });
            }
        }
    }
    if cleaned.is_empty() {
        return Err(SecretError::Empty);
    }
    let length = cleaned.len();
    if matches!(length % 8, 1 | 3 | 6) {
        return Err(SecretError::BadLength { length });
    }
    // Every character and the length were checked above, so this cannot fail in practice.
    LENIENT_BASE32
        .decode(cleaned.as_bytes())
        .map(Zeroizing::new)
        .map_err(|_| SecretError::BadLength { length })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode(text: &str) -> Vec<u8> {
        parse_base32_secret(text).unwrap().to_vec()
    }

    #[test]
    fn padded_unpadded_lowercase_spaced_and_dashed_agree() {
        let expected = b"Hello!\xde\xad\xbe\xef".to_vec();
        for text in [
            "JBSWY3DPEHPK3PXP",
            "jbswy3dpehpk3pxp",
            "JBSW Y3DP EHPK 3PXP",
            "jbsw-y3dp-ehpk-3pxp",
            "\tJBSWY3DP\nEHPK3PXP\r\n",
        ] {
            assert_eq!(decode(text), expected, "{text:?}");
        }
        assert_eq!(decode("abba"), b"\0B");
        assert_eq!(decode("ABBA===="), b"\0B");
        assert_eq!(decode("ABBA="), b"\0B");
        assert_eq!(decode("GEZDGNBV"), b"12345");
    }

    #[test]
    fn non_zero_trailing_bits_are_ignored_like_python() {
        // "ABBB": the last character's low 4 bits fall past the second byte.
        assert_eq!(decode("ABBB"), b"\0B");
    }

    #[test]
    fn empty_inputs() {
        for text in ["", "   ", "====", " - \n"] {
            assert_eq!(
                parse_base32_secret(text),
                Err(SecretError::Empty),
                "{text:?}"
            );
        }
    }

    #[test]
    fn invalid_characters_report_the_position_only() {
        assert_eq!(
            parse_base32_secret("AB1A"),
            Err(SecretError::InvalidCharacter { position: 3 })
        );
        assert_eq!(
            parse_base32_secret("AB=BA"),
            Err(SecretError::InvalidCharacter { position: 3 })
        );
        assert_eq!(
            parse_base32_secret("ABé"),
            Err(SecretError::InvalidCharacter { position: 3 })
        );
    }

    #[test]
    fn impossible_lengths() {
        for (text, length) in [("A", 1), ("ABC", 3), ("ABCDEF", 6), ("ABCDEFGHA", 9)] {
            assert_eq!(
                parse_base32_secret(text),
                Err(SecretError::BadLength { length }),
                "{text:?}"
            );
        }
    }

    #[test]
    fn messages_do_not_contain_the_secret() {
        let secret = "JBSWY3DPEHPK3PXP1";
        let message = parse_base32_secret(secret).unwrap_err().to_string();
        assert!(!message.contains("JBSWY3DP"), "{message}");
    }

    proptest! {
        #[test]
        fn never_panics(text in ".*") {
            let _ = parse_base32_secret(&text);
        }

        #[test]
        fn round_trips_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 1..64)) {
            let text = data_encoding::BASE32.encode(&bytes);
            prop_assert_eq!(decode(&text), bytes.clone());
            prop_assert_eq!(decode(&text.trim_end_matches('=').to_lowercase()), bytes);
        }
    }
}
