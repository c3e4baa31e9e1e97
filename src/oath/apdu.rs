//! Command APDUs (ISO 7816-4 short and extended forms, always with Le) and responses.

use thiserror::Error;

use super::status::StatusWord;

/// Largest command data field we ever build or accept (extended Lc).
pub const MAX_COMMAND_DATA: usize = 0xFFFF;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ApduError {
    #[error("APDU shorter than its 4-byte header")]
    TooShort,
    #[error("APDU length fields do not match its size ({0} bytes)")]
    BadLength(usize),
    #[error("command data too long ({0} bytes)")]
    DataTooLong(usize),
    #[error("response shorter than its 2-byte status word")]
    ResponseTooShort,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandApdu {
    pub cla: u8,
    pub ins: u8,
    pub p1: u8,
    pub p2: u8,
    pub data: Vec<u8>,
    /// Expected response length; 0 means "as much as there is" (encoded as 00 / 00 00).
    pub le: usize,
}

impl CommandApdu {
    pub fn new(ins: u8, p1: u8, p2: u8, data: Vec<u8>) -> Self {
        Self {
            cla: 0x00,
            ins,
            p1,
            p2,
            data,
            le: 0,
        }
    }

    /// Encode in short form when the data fits, extended otherwise. An Le is always sent:
    /// some cards (CanoKey) misbehave on case-1 APDUs.
    pub fn encode(&self) -> Result<Vec<u8>, ApduError> {
        let mut out = Vec::with_capacity(self.data.len() + 9);
        out.extend_from_slice(&[self.cla, self.ins, self.p1, self.p2]);
        let short = self.data.len() <= 0xFF && self.le <= 0x100;
        if short {
            if !self.data.is_empty() {
                out.push(self.data.len() as u8);
                out.extend_from_slice(&self.data);
            }
            out.push((self.le & 0xFF) as u8);
            return Ok(out);
        }
        if self.data.len() > MAX_COMMAND_DATA {
            return Err(ApduError::DataTooLong(self.data.len()));
        }
        out.push(0x00);
        if !self.data.is_empty() {
            out.extend_from_slice(&(self.data.len() as u16).to_be_bytes());
            out.extend_from_slice(&self.data);
        }
        let le = if self.le >= 0x10000 {
            0
        } else {
            self.le as u16
        };
        out.extend_from_slice(&le.to_be_bytes());
        Ok(out)
    }

    /// Parse any of the ISO 7816-4 cases 1–4, short or extended.
    pub fn parse(bytes: &[u8]) -> Result<Self, ApduError> {
        let (header, body) = bytes.split_at_checked(4).ok_or(ApduError::TooShort)?;
        let mut apdu = Self {
            cla: header[0],
            ins: header[1],
            p1: header[2],
            p2: header[3],
            data: Vec::new(),
            le: 0,
        };
        let bad = || ApduError::BadLength(bytes.len());
        match body {
            // Case 1.
            [] => {}
            // Case 2 short.
            [le] => apdu.le = if *le == 0 { 0x100 } else { *le as usize },
            // Extended forms start with 00 and have at least 3 length bytes.
            [0x00, rest @ ..] if rest.len() >= 2 => {
                let n = u16::from_be_bytes([rest[0], rest[1]]) as usize;
                let after = &rest[2..];
                if after.is_empty() {
                    // Case 2 extended.
                    apdu.le = if n == 0 { 0x10000 } else { n };
                } else {
                    // Case 3/4 extended.
                    if n == 0 || after.len() < n {
                        return Err(bad());
                    }
                    apdu.data = after[..n].to_vec();
                    match &after[n..] {
                        [] => {}
                        [hi, lo] => {
                            let le = u16::from_be_bytes([*hi, *lo]) as usize;
                            apdu.le = if le == 0 { 0x10000 } else { le };
                        }
                        _ => return Err(bad()),
                    }
                }
            }
            // Case 3/4 short.
            [lc, rest @ ..] => {
                let n = *lc as usize;
                if n == 0 || rest.len() < n {
                    return Err(bad());
                }
                apdu.data = rest[..n].to_vec();
                match &rest[n..] {
                    [] => {}
                    [le] => apdu.le = if *le == 0 { 0x100 } else { *le as usize },
                    _ => return Err(bad()),
                }
            }
        }
        Ok(apdu)
    }
}

/// A response APDU split into data and status word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub data: Vec<u8>,
    pub sw: StatusWord,
}

impl Response {
    pub fn parse(mut bytes: Vec<u8>) -> Result<Self, ApduError> {
        if bytes.len() < 2 {
            return Err(ApduError::ResponseTooShort);
        }
        let sw_at = bytes.len() - 2;
        let sw = StatusWord::from_u16(u16::from_be_bytes([bytes[sw_at], bytes[sw_at + 1]]));
        bytes.truncate(sw_at);
        Ok(Self { data: bytes, sw })
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.data.clone();
        out.extend_from_slice(&self.sw.to_bytes());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn short_forms_always_carry_le() {
        let list = CommandApdu::new(0xA1, 0, 0, vec![]);
        assert_eq!(list.encode().unwrap(), vec![0x00, 0xA1, 0x00, 0x00, 0x00]);
        let calc = CommandApdu::new(0xA2, 0, 1, vec![0x71, 0x01, 0x61]);
        assert_eq!(
            calc.encode().unwrap(),
            vec![0x00, 0xA2, 0x00, 0x01, 0x03, 0x71, 0x01, 0x61, 0x00]
        );
    }

    #[test]
    fn long_data_uses_extended_form() {
        let apdu = CommandApdu::new(0x01, 0, 0, vec![0xAB; 300]);
        let bytes = apdu.encode().unwrap();
        assert_eq!(&bytes[4..7], &[0x00, 0x01, 0x2C]);
        assert_eq!(&bytes[bytes.len() - 2..], &[0x00, 0x00]);
        assert_eq!(CommandApdu::parse(&bytes).unwrap().data.len(), 300);
    }

    #[test]
    fn parses_trace_commands() {
        // SELECT as ykman sends it: case 3 without Le.
        let select = CommandApdu::parse(&[
            0x00, 0xA4, 0x04, 0x00, 0x07, 0xA0, 0x00, 0x00, 0x05, 0x27, 0x21, 0x01,
        ])
        .unwrap();
        assert_eq!(select.data, vec![0xA0, 0x00, 0x00, 0x05, 0x27, 0x21, 0x01]);
        // RESET: case 1.
        let reset = CommandApdu::parse(&[0x00, 0x04, 0xDE, 0xAD]).unwrap();
        assert_eq!((reset.p1, reset.p2), (0xDE, 0xAD));
        assert!(CommandApdu::parse(&[0x00, 0x01, 0x00, 0x00, 0x05, 0x01]).is_err());
    }

    proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = CommandApdu::parse(&bytes);
        }

        #[test]
        fn encode_parse_round_trip(ins in any::<u8>(), p1 in any::<u8>(), p2 in any::<u8>(),
                                   data in proptest::collection::vec(any::<u8>(), 0..600)) {
            let apdu = CommandApdu::new(ins, p1, p2, data);
            let parsed = CommandApdu::parse(&apdu.encode().unwrap()).unwrap();
            prop_assert_eq!(parsed.data, apdu.data);
            prop_assert_eq!((parsed.ins, parsed.p1, parsed.p2), (ins, p1, p2));
        }
    }
}
