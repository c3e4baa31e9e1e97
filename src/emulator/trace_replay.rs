//! Replays the real YubiKey 5.4.3 traces in `tests/data/yubikey-5.4.3-traces` (Apache-2.0, provenance in its README) against a
//! fresh yubikey-profile card.
//!
//! Everything is compared byte for byte except the random values of a real key:
//! - The card reports version 5.4.3 (the profile default is 5.7.2) so SELECT matches.
//! - Every trace starts with a SELECT of a key in an unknown prior state. None of them is
//!   locked, so the card is seeded with that first salt and the first exchange is exact too
//!   (a trace that starts locked fails loudly: it would need the old password).
//! - Later salts (after RESET) are random: only the TLV structure is compared, plus "the salt
//!   changed exactly when the real key's salt changed".
//! - A SELECT challenge (`74`) is random: after checking its structure, the card is made to
//!   use the trace's value, so the following VALIDATE (TestPIN, SHA-256 access key) replays
//!   exactly, including the wrong one (6A80) and the card's 32-byte proof.

use std::path::PathBuf;

use data_encoding::HEXLOWER_PERMISSIVE;

use super::{Card, CardConfig};
use crate::oath::tlv;

fn trace_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/yubikey-5.4.3-traces")
}

struct Exchange {
    line: usize,
    command: Vec<u8>,
    response: Vec<u8>,
}

fn parse_trace(text: &str) -> Vec<Exchange> {
    text.lines()
        .enumerate()
        .filter_map(|(index, line)| {
            let rest = line.strip_prefix("on Transmit ")?;
            let mut parts = rest.split_whitespace();
            let decode = |hex: &str| HEXLOWER_PERMISSIVE.decode(hex.as_bytes()).unwrap();
            let command = decode(parts.next()?);
            let response = decode(parts.next()?);
            Some(Exchange {
                line: index + 1,
                command,
                response,
            })
        })
        .collect()
}

fn is_select(command: &[u8]) -> bool {
    command.get(1..3) == Some(&[0xA4, 0x04])
}

fn split_sw(response: &[u8]) -> (&[u8], &[u8]) {
    response.split_at(response.len() - 2)
}

/// (tag, value) pairs of a SELECT response.
fn elements(data: &[u8]) -> Vec<(u8, Vec<u8>)> {
    tlv::parse_all(data)
        .unwrap()
        .into_iter()
        .map(|t| (t.tag, t.value.to_vec()))
        .collect()
}

fn find(elements: &[(u8, Vec<u8>)], tag: u8) -> Option<Vec<u8>> {
    elements
        .iter()
        .find(|(t, _)| *t == tag)
        .map(|(_, v)| v.clone())
}

fn replay(name: &str, exchanges: &[Exchange]) -> usize {
    let first = exchanges
        .first()
        .unwrap_or_else(|| panic!("{name}: no exchanges"));
    assert!(is_select(&first.command), "{name}: must start with SELECT");
    let first_select = elements(split_sw(&first.response).0);
    assert!(
        find(&first_select, 0x74).is_none(),
        "{name}: the key starts locked; replay would need the old password"
    );
    let first_salt: [u8; 8] = find(&first_select, 0x71)
        .and_then(|s| s.try_into().ok())
        .unwrap_or_else(|| panic!("{name}: first SELECT has no 8-byte salt"));
    let mut card = Card::new(CardConfig {
        version: Some([5, 4, 3]),
        salt: Some(first_salt),
        ..CardConfig::yubikey()
    });
    // (real key's salt, card's salt) at the previous SELECT.
    let mut last_salts = (first_salt.to_vec(), first_salt.to_vec());

    for exchange in exchanges {
        let context = format!("{name}:{}", exchange.line);
        let actual = card.process(&exchange.command);
        let (expected_data, expected_sw) = split_sw(&exchange.response);
        let (actual_data, actual_sw) = split_sw(&actual);
        assert_eq!(
            HEXLOWER_PERMISSIVE.encode(actual_sw),
            HEXLOWER_PERMISSIVE.encode(expected_sw),
            "{context}: status word"
        );
        if !is_select(&exchange.command) {
            assert_eq!(
                HEXLOWER_PERMISSIVE.encode(actual_data),
                HEXLOWER_PERMISSIVE.encode(expected_data),
                "{context}: data"
            );
            continue;
        }
        let expected = elements(expected_data);
        let actual = elements(actual_data);
        let shape = |e: &[(u8, Vec<u8>)]| e.iter().map(|(t, v)| (*t, v.len())).collect::<Vec<_>>();
        assert_eq!(
            shape(&actual),
            shape(&expected),
            "{context}: SELECT structure"
        );
        for ((tag, actual_value), (_, expected_value)) in actual.iter().zip(&expected) {
            if *tag != 0x71 && *tag != 0x74 {
                assert_eq!(
                    actual_value, expected_value,
                    "{context}: SELECT tag {tag:02x}"
                );
            }
        }
        let trace_salt = find(&expected, 0x71).unwrap();
        let card_salt = find(&actual, 0x71).unwrap();
        assert_eq!(card_salt, card.salt().to_vec());
        assert_eq!(
            trace_salt == last_salts.0,
            card_salt == last_salts.1,
            "{context}: the salt must change exactly when the real key's did"
        );
        last_salts = (trace_salt, card_salt);
        if let Some(challenge) = find(&expected, 0x74) {
            let challenge: [u8; 8] = challenge.try_into().unwrap();
            card.force_select_challenge(challenge);
        }
    }
    exchanges.len()
}

#[test]
fn real_yubikey_traces_replay() {
    let dir = trace_dir();
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| {
        panic!(
            "trace directory {} is missing ({e}); the shared/ folder must sit beside the crate",
            dir.display()
        )
    });
    let mut traces: Vec<PathBuf> = entries
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "trace"))
        .collect();
    traces.sort();
    assert!(
        traces.len() >= 16,
        "expected the 16 YubiKey traces in {}, found {}",
        dir.display(),
        traces.len()
    );
    let mut total = 0;
    for path in &traces {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(path).unwrap();
        total += replay(&name, &parse_trace(&text));
    }
    assert!(total > 100, "only {total} exchanges replayed");
}
