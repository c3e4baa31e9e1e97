//! UTF-16 text files: what Windows Notepad ("Unicode") and Windows PowerShell's `>` write.
//! They are read as the same text in UTF-8; the first bytes tell them apart from UTF-8, from
//! images and from binary files: a byte-order mark, or (without one) an ASCII first
//! character, as every otpauth line, comment and JSON export starts with.

use zeroize::Zeroizing;

/// How one source's bytes are encoded, as far as text goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Utf16Le,
    Utf16Be,
    /// UTF-8, or not text at all: left to the other readers.
    Other,
}

/// UTF-16 from a byte-order mark, or from an ASCII first character paired with a zero byte.
pub fn encoding(bytes: &[u8]) -> Encoding {
    match bytes {
        [0xFF, 0xFE, ..] => Encoding::Utf16Le,
        [0xFE, 0xFF, ..] => Encoding::Utf16Be,
        [a, 0, b, 0, ..] if is_text_ascii(*a) && is_text_ascii(*b) => Encoding::Utf16Le,
        [0, a, 0, b, ..] if is_text_ascii(*a) && is_text_ascii(*b) => Encoding::Utf16Be,
        _ => Encoding::Other,
    }
}

fn is_text_ascii(byte: u8) -> bool {
    byte.is_ascii_graphic() || byte.is_ascii_whitespace()
}

/// The UTF-16 `bytes` as UTF-8 without the byte-order mark; None when they are not valid
/// UTF-16 (an odd length, a lone surrogate). Buffers are wiped: the text holds seeds.
pub fn to_utf8(bytes: &[u8], encoding: Encoding) -> Option<Zeroizing<String>> {
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    let units: Zeroizing<Vec<u16>> = Zeroizing::new(
        bytes
            .chunks_exact(2)
            .map(|pair| match encoding {
                Encoding::Utf16Be => u16::from_be_bytes([pair[0], pair[1]]),
                _ => u16::from_le_bytes([pair[0], pair[1]]),
            })
            .collect(),
    );
    let units = units.strip_prefix(&[0xFEFF]).unwrap_or(&units);
    let mut text = Zeroizing::new(String::with_capacity(units.len()));
    for unit in char::decode_utf16(units.iter().copied()) {
        text.push(unit.ok()?);
    }
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn le(text: &str, bom: bool) -> Vec<u8> {
        let mark = bom.then_some(0xFEFF);
        mark.into_iter()
            .chain(text.encode_utf16())
            .flat_map(u16::to_le_bytes)
            .collect()
    }

    fn be(text: &str, bom: bool) -> Vec<u8> {
        let mark = bom.then_some(0xFEFF);
        mark.into_iter()
            .chain(text.encode_utf16())
            .flat_map(u16::to_be_bytes)
            .collect()
    }

    #[test]
    fn both_byte_orders_with_and_without_a_mark() {
        let text = "otpauth://totp/Bäckerei:jürgen?secret=JBSWY3DPEHPK3PXP\r\n";
        for (bytes, want) in [
            (le(text, true), Encoding::Utf16Le),
            (le(text, false), Encoding::Utf16Le),
            (be(text, true), Encoding::Utf16Be),
            (be(text, false), Encoding::Utf16Be),
        ] {
            assert_eq!(encoding(&bytes), want);
            assert_eq!(
                to_utf8(&bytes, want).as_deref().map(String::as_str),
                Some(text)
            );
        }
    }

    #[test]
    fn utf8_images_and_damaged_utf16_are_not_taken_for_it() {
        for bytes in [
            &b"otpauth://totp/a?secret=JBSWY3DPEHPK3PXP"[..],
            b"\xEF\xBB\xBFotpauth://",
            b"\x89PNG\r\n\x1a\n",
            b"\0\0\x01\0",
            b"PK\x03\x04",
            b"",
        ] {
            assert_eq!(encoding(bytes), Encoding::Other, "{bytes:?}");
        }
        // A lone surrogate, an odd length.
        assert!(to_utf8(&[0xFF, 0xFE, 0x00, 0xD8, b'a', 0], Encoding::Utf16Le).is_none());
        assert!(to_utf8(&[0xFF, 0xFE, b'a'], Encoding::Utf16Le).is_none());
    }
}
