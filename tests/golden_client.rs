//! Our client against real YubiKey 5.4.3 answers (tests/data/yubikey-5.4.3-traces, Apache-2.0, see the README there).
//!
//! The traces were recorded by another client (yawn/ykoath). Here our decoders read the
//! key's real responses, our encoder must produce the same PUT bytes, and a `Session`
//! driven by the recorded answers returns the RFC codes.

use std::collections::HashMap;
use std::path::PathBuf;

use oathbridge::oath::apdu::CommandApdu;
use oathbridge::oath::code::Code;
use oathbridge::oath::tlv::TlvReader;
use oathbridge::oath::wire::{encode_put, parse_calculate_all, parse_list};
use oathbridge::oath::{
    CredentialData, CredentialId, OathError, SelectInfo, Session, Transport, TransportError,
    Version,
};
use oathbridge::otp::{HashAlgorithm, OathType};
use zeroize::Zeroizing;

struct Exchange {
    command: Vec<u8>,
    response: Vec<u8>,
}

fn trace_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/yubikey-5.4.3-traces");
    assert!(
        dir.is_dir(),
        "golden traces missing at {} (shared/ must sit beside the checkout)",
        dir.display()
    );
    dir
}

fn hex(text: &str) -> Vec<u8> {
    data_encoding::HEXLOWER_PERMISSIVE
        .decode(text.as_bytes())
        .unwrap_or_else(|e| panic!("bad hex {text:?}: {e}"))
}

fn load(name: &str) -> Vec<Exchange> {
    let path = trace_dir().join(format!("{name}.trace"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .filter_map(|line| line.strip_prefix("on Transmit "))
        .map(|rest| {
            let (command, response) = rest.split_once(' ').expect("command and response");
            Exchange {
                command: hex(command),
                response: hex(response),
            }
        })
        .collect()
}

fn split_sw(response: &[u8]) -> (&[u8], u16) {
    let (data, sw) = response.split_at(response.len() - 2);
    (data, u16::from_be_bytes([sw[0], sw[1]]))
}

/// Rebuild the `CredentialData` a recorded PUT describes (secret included).
fn credential_from_put(data: &[u8]) -> CredentialData {
    let mut reader = TlvReader::new(data);
    let id = reader.expect(0x71).unwrap().to_vec();
    let key = reader.expect(0x73).unwrap();
    let oath_type = OathType::from_code(key[0] & 0xF0).unwrap();
    let mut credential = CredentialData {
        id: CredentialId::parse(&id, oath_type),
        oath_type,
        algorithm: HashAlgorithm::from_code(key[0] & 0x0F).unwrap(),
        digits: key[1],
        secret: Zeroizing::new(key[2..].to_vec()),
        counter: 0,
        touch: false,
    };
    while let Some(tag) = reader.peek_tag() {
        match tag {
            0x78 => credential.touch = reader.read_tag_and_byte().unwrap().1 == 0x02,
            0x7A => {
                let imf = reader.expect(0x7A).unwrap();
                credential.counter = u32::from_be_bytes(imf.try_into().unwrap());
            }
            other => panic!("unexpected tag {other:02X} in PUT"),
        }
    }
    credential
}

#[test]
fn every_recorded_put_is_byte_identical_to_ours() {
    let mut checked = 0;
    for entry in std::fs::read_dir(trace_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "trace") {
            continue;
        }
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        for exchange in load(&name) {
            let command = CommandApdu::parse(&exchange.command).unwrap();
            if command.ins != 0x01 {
                continue;
            }
            let credential = credential_from_put(&command.data);
            if credential.validate().is_err() {
                // TestPutNameTooLong: the id is over 64 bytes; we refuse before sending.
                assert!(credential.id.to_bytes().len() > 64, "{name}");
                continue;
            }
            assert_eq!(encode_put(&credential).unwrap(), command.data, "{name}");
            checked += 1;
        }
    }
    assert!(checked >= 20, "only {checked} PUTs found");
}

#[test]
fn select_answers_decode() {
    let pin = load("TestPIN");
    let (first, sw) = split_sw(&pin[0].response);
    assert_eq!(sw, 0x9000);
    let info = SelectInfo::parse(first).unwrap();
    assert_eq!(info.version, Version(5, 4, 3));
    assert!(!info.is_locked());
    // After SET CODE with a SHA-256 key the key is locked and says so.
    let (locked, _) = split_sw(&pin[6].response);
    let info = SelectInfo::parse(locked).unwrap();
    assert!(info.is_locked());
    assert_eq!(info.key_algorithm, HashAlgorithm::Sha256);
}

#[test]
fn list_answer_decodes() {
    let trace = load("TestList");
    let (data, sw) = split_sw(&trace.last().unwrap().response);
    assert_eq!(sw, 0x9000);
    let list = parse_list(data, false).unwrap();
    let ids: Vec<_> = list.iter().map(|c| c.id_string()).collect();
    assert_eq!(
        ids,
        ["rfc6238-test-01", "rfc6238-test-02", "rfc6238-test-03"]
    );
    let algorithms: Vec<_> = list.iter().map(|c| c.algorithm.unwrap()).collect();
    assert_eq!(
        algorithms,
        [
            HashAlgorithm::Sha1,
            HashAlgorithm::Sha256,
            HashAlgorithm::Sha512
        ]
    );
}

#[test]
fn calculate_all_answers_decode_to_rfc6238_codes() {
    let trace = load("TestCalculate");
    let exchange = trace
        .iter()
        .find(|e| e.command[1] == 0xA4 && e.command[2] == 0x00)
        .unwrap();
    let (data, _) = split_sw(&exchange.response);
    let entries = parse_calculate_all(data, 59).unwrap();
    let codes: Vec<_> = entries
        .iter()
        .map(|e| e.code.clone().unwrap().value)
        .collect();
    assert_eq!(codes, ["94287082", "46119246", "90693936"]);
    assert_eq!(entries[0].code.as_ref().unwrap().valid_to, 60);

    let touch = load("TestCalculateRequireTouch");
    let exchange = touch
        .iter()
        .find(|e| e.command[1] == 0xA4 && e.command[2] == 0x00)
        .unwrap();
    let entries = parse_calculate_all(split_sw(&exchange.response).0, 59).unwrap();
    assert_eq!(entries[0].credential.touch, Some(true));
    assert_eq!(entries[0].code, None);
}

#[test]
fn calculate_answers_decode_to_rfc4226_codes() {
    let expected = [
        "755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871",
        "520489",
    ];
    let trace = load("TestCalculateHOTPCounterInit");
    let codes: Vec<String> = trace
        .iter()
        .filter(|e| e.command[1] == 0xA2)
        .map(|e| {
            let value = TlvReader::new(split_sw(&e.response).0)
                .expect(0x76)
                .unwrap();
            Code::from_truncated(value, 0, 0).unwrap().value
        })
        .collect();
    assert_eq!(&codes[..10], &expected);
    assert_eq!(codes[10], "45520489", "8-digit counter 9");
}

/// Answers recorded responses by (INS, P1), in recording order.
struct Replay {
    answers: HashMap<(u8, u8), Vec<Vec<u8>>>,
    sent: Vec<Vec<u8>>,
}

impl Replay {
    fn new(trace: &[Exchange]) -> Self {
        let mut answers: HashMap<(u8, u8), Vec<Vec<u8>>> = HashMap::new();
        for exchange in trace {
            let key = (exchange.command[1], exchange.command[2]);
            answers
                .entry(key)
                .or_default()
                .push(exchange.response.clone());
        }
        for queue in answers.values_mut() {
            queue.reverse();
        }
        Self {
            answers,
            sent: Vec::new(),
        }
    }
}

impl Transport for Replay {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        self.sent.push(apdu.to_vec());
        let key = (apdu[1], apdu[2]);
        self.answers
            .get_mut(&key)
            .and_then(Vec::pop)
            .ok_or_else(|| TransportError::Io(format!("no recorded answer for {key:02X?}")))
    }
}

#[test]
fn a_session_on_recorded_answers_gives_rfc_codes() {
    let trace = load("TestCalculate");
    let mut replay = Replay::new(&trace);
    let mut session = Session::open(&mut replay, None).unwrap();
    let entries = session.calculate_all(59).unwrap();
    let codes: Vec<_> = entries
        .iter()
        .map(|e| e.code.clone().unwrap().value)
        .collect();
    assert_eq!(codes, ["94287082", "46119246", "90693936"]);
    drop(session);
    // Our CALCULATE ALL is the recorded one plus an explicit Le.
    assert_eq!(replay.sent[1], hex("00a400010a7408000000000000000100"));
}

#[test]
fn a_recorded_validate_answer_does_not_prove_our_challenge() {
    // The key's VALIDATE answer in the trace answers the recording client's challenge.
    // Replayed to us, mutual authentication must reject it, whatever key we try.
    let trace = load("TestPIN");
    let locked: Vec<Exchange> = trace
        .into_iter()
        .skip(6)
        .filter(|e| e.command[1] != 0xA3 || e.response.len() > 2)
        .collect();
    let mut replay = Replay::new(&locked);
    let mut session = Session::open(&mut replay, None).unwrap();
    assert!(session.is_locked());
    let result = session.validate(&[0u8; 16]);
    assert!(matches!(result, Err(OathError::BadCardProof)), "{result:?}");
}
