//! Single-byte-tag TLV with BER lengths (1, 2 or 3 bytes), as YKOATH uses it.
//!
//! Parsing never panics and never allocates more than the input: every length is
//! checked against what is left.

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TlvError {
    #[error("TLV truncated at offset {offset}")]
    Truncated { offset: usize },
    #[error("TLV length form 0x{form:02X} at offset {offset} is not supported")]
    BadLengthForm { form: u8, offset: usize },
    #[error("expected tag 0x{expected:02X}, found 0x{found:02X}")]
    UnexpectedTag { expected: u8, found: u8 },
    #[error("missing tag 0x{0:02X}")]
    Missing(u8),
    #[error("value too long for a TLV ({0} bytes)")]
    TooLong(usize),
}

/// One parsed element, borrowing from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tlv<'a> {
    pub tag: u8,
    pub value: &'a [u8],
}

/// A cursor over TLV data. YKOATH has one non-TLV element (`78 <prop>` in PUT), so the
/// reader lets the caller take a bare byte after a tag as well as a length-prefixed value.
#[derive(Debug, Clone)]
pub struct TlvReader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> TlvReader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }

    pub fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }

    pub fn position(&self) -> usize {
        self.pos
    }

    /// The next tag without consuming it.
    pub fn peek_tag(&self) -> Option<u8> {
        self.data.get(self.pos).copied()
    }

    /// Consume a tag byte followed by one raw byte (no length): the PUT property form.
    pub fn read_tag_and_byte(&mut self) -> Result<(u8, u8), TlvError> {
        match self.data.get(self.pos..self.pos + 2) {
            Some(&[tag, byte]) => {
                self.pos += 2;
                Ok((tag, byte))
            }
            _ => Err(TlvError::Truncated { offset: self.pos }),
        }
    }

    /// Consume one TLV element.
    pub fn read(&mut self) -> Result<Tlv<'a>, TlvError> {
        let start = self.pos;
        let tag = *self
            .data
            .get(start)
            .ok_or(TlvError::Truncated { offset: start })?;
        let (len, header) = read_length(self.data, start + 1)?;
        let value_start = start + 1 + header;
        let value_end = value_start
            .checked_add(len)
            .filter(|end| *end <= self.data.len())
            .ok_or(TlvError::Truncated { offset: start })?;
        self.pos = value_end;
        Ok(Tlv {
            tag,
            value: &self.data[value_start..value_end],
        })
    }

    /// Consume one element that must carry `tag`.
    pub fn expect(&mut self, tag: u8) -> Result<&'a [u8], TlvError> {
        let tlv = self.read()?;
        if tlv.tag != tag {
            return Err(TlvError::UnexpectedTag {
                expected: tag,
                found: tlv.tag,
            });
        }
        Ok(tlv.value)
    }
}

impl<'a> Iterator for TlvReader<'a> {
    type Item = Result<Tlv<'a>, TlvError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.is_empty() {
            return None;
        }
        let item = self.read();
        if item.is_err() {
            // Stop after the first error: the rest cannot be framed.
            self.pos = self.data.len();
        }
        Some(item)
    }
}

/// Returns (length, number of length bytes).
fn read_length(data: &[u8], at: usize) -> Result<(usize, usize), TlvError> {
    let first = *data.get(at).ok_or(TlvError::Truncated { offset: at })?;
    match first {
        0x00..=0x7F => Ok((first as usize, 1)),
        0x81 => {
            let b = *data.get(at + 1).ok_or(TlvError::Truncated { offset: at })?;
            Ok((b as usize, 2))
        }
        0x82 => match data.get(at + 1..at + 3) {
            Some(&[hi, lo]) => Ok((u16::from_be_bytes([hi, lo]) as usize, 3)),
            _ => Err(TlvError::Truncated { offset: at }),
        },
        form => Err(TlvError::BadLengthForm { form, offset: at }),
    }
}

/// Parse all elements of `data`.
pub fn parse_all(data: &[u8]) -> Result<Vec<Tlv<'_>>, TlvError> {
    TlvReader::new(data).collect()
}

/// Value of the first element with `tag`, if any.
pub fn find<'a>(elements: &[Tlv<'a>], tag: u8) -> Option<&'a [u8]> {
    elements.iter().find(|t| t.tag == tag).map(|t| t.value)
}

/// Append `tag`, a BER length and `value` to `out`.
pub fn write(out: &mut Vec<u8>, tag: u8, value: &[u8]) -> Result<(), TlvError> {
    out.push(tag);
    match value.len() {
        len @ 0..=0x7F => out.push(len as u8),
        len @ 0x80..=0xFF => out.extend_from_slice(&[0x81, len as u8]),
        len @ 0x100..=0xFFFF => {
            out.push(0x82);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        len => return Err(TlvError::TooLong(len)),
    }
    out.extend_from_slice(value);
    Ok(())
}

/// Encode one element into a new buffer.
pub fn encode(tag: u8, value: &[u8]) -> Result<Vec<u8>, TlvError> {
    let mut out = Vec::with_capacity(value.len() + 4);
    write(&mut out, tag, value)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_the_three_length_forms() {
        let mut data = vec![0x71, 0x02, 0xAA, 0xBB];
        data.extend_from_slice(&[0x72, 0x81, 0x80]);
        data.extend(std::iter::repeat_n(0x11, 0x80));
        data.extend_from_slice(&[0x73, 0x82, 0x01, 0x00]);
        data.extend(std::iter::repeat_n(0x22, 0x100));
        let all = parse_all(&data).unwrap();
        assert_eq!(all.len(), 3);
        assert_eq!(all[0].value, &[0xAA, 0xBB]);
        assert_eq!(all[1].value.len(), 0x80);
        assert_eq!(all[2].value.len(), 0x100);
    }

    #[test]
    fn rejects_lengths_past_the_end_and_unknown_forms() {
        assert_eq!(
            parse_all(&[0x71, 0x05, 0x01]),
            Err(TlvError::Truncated { offset: 0 })
        );
        assert_eq!(
            parse_all(&[0x71, 0x82, 0x01]),
            Err(TlvError::Truncated { offset: 1 })
        );
        assert_eq!(
            parse_all(&[0x71, 0x84, 0, 0, 0, 1]),
            Err(TlvError::BadLengthForm {
                form: 0x84,
                offset: 1
            })
        );
        assert_eq!(parse_all(&[0x71]), Err(TlvError::Truncated { offset: 1 }));
    }

    #[test]
    fn property_byte_form_is_read_raw() {
        let mut reader = TlvReader::new(&[0x78, 0x02, 0x7A, 0x04, 0, 0, 0, 1]);
        assert_eq!(reader.read_tag_and_byte().unwrap(), (0x78, 0x02));
        assert_eq!(reader.expect(0x7A).unwrap(), &[0, 0, 0, 1]);
        assert!(reader.is_empty());
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..600)) {
            let mut consumed = 0usize;
            for item in TlvReader::new(&data) {
                match item {
                    Ok(tlv) => consumed += tlv.value.len(),
                    Err(_) => break,
                }
            }
            prop_assert!(consumed <= data.len());
        }

        #[test]
        fn encode_then_parse_round_trips(
            items in proptest::collection::vec((any::<u8>(), proptest::collection::vec(any::<u8>(), 0..400)), 0..6)
        ) {
            let mut out = Vec::new();
            for (tag, value) in &items {
                write(&mut out, *tag, value).unwrap();
            }
            let parsed = parse_all(&out).unwrap();
            prop_assert_eq!(parsed.len(), items.len());
            for (tlv, (tag, value)) in parsed.iter().zip(&items) {
                prop_assert_eq!(tlv.tag, *tag);
                prop_assert_eq!(tlv.value, value.as_slice());
            }
        }
    }
}
