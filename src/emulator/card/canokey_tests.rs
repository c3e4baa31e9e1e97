//! The CanoKey profile against the reference (ykoath.md C1–C6 and the probe table), and
//! the client's CanoKey quirks against it through the in-process transport.

use super::{Card, CardConfig};
use crate::emulator::{EmulatorTransport, Profile};
use crate::oath::apdu::CommandApdu;
use crate::oath::consts::AID;
use crate::oath::device::{DeviceKind, canokey};
use crate::oath::tlv;
use crate::oath::{CredentialData, CredentialId, OathError, Session};
use crate::otp::{HashAlgorithm, OathType, hmac};

const SHA1_KEY: &[u8] = b"12345678901234567890";
const SHA256_KEY: &[u8] = b"12345678901234567890123456789012";
const SHA512_KEY: &[u8] = b"1234567890123456789012345678901234567890123456789012345678901234";
const TOTP: u8 = 0x20;
const HOTP: u8 = 0x10;
/// RFC 4226 Appendix D, counters 0–9.
const RFC4226: [&str; 10] = [
    "755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871",
    "520489",
];

fn send(card: &mut Card, ins: u8, p1: u8, p2: u8, data: &[u8]) -> (Vec<u8>, u16) {
    let apdu = CommandApdu::new(ins, p1, p2, data.to_vec())
        .encode()
        .unwrap();
    let mut response = card.process(&apdu);
    let sw = response.split_off(response.len() - 2);
    (response, u16::from_be_bytes([sw[0], sw[1]]))
}

fn select(card: &mut Card) -> (Vec<u8>, u16) {
    send(card, 0xA4, 0x04, 0x00, &AID)
}

fn selected() -> Card {
    let mut card = Card::new(CardConfig::canokey());
    assert_eq!(select(&mut card).1, 0x9000);
    card
}

fn put_data(id: &[u8], kind: u8, algo: HashAlgorithm, digits: u8, key: &[u8]) -> Vec<u8> {
    let mut data = tlv::encode(0x71, id).unwrap();
    let mut key_field = vec![kind | algo.code(), digits];
    key_field.extend_from_slice(key);
    tlv::write(&mut data, 0x73, &key_field).unwrap();
    data
}

fn put(card: &mut Card, data: &[u8]) -> u16 {
    send(card, 0x01, 0, 0, data).1
}

fn calc_data(id: &[u8], challenge: &[u8]) -> Vec<u8> {
    let mut data = tlv::encode(0x71, id).unwrap();
    tlv::write(&mut data, 0x74, challenge).unwrap();
    data
}

/// The code of a truncated (`76`) answer, reduced as a client does.
fn code_of(data: &[u8], digits: u32) -> String {
    let elements = tlv::parse_all(data).unwrap();
    let value = tlv::find(&elements, 0x76).expect("76 tag");
    let raw = u32::from_be_bytes([value[1], value[2], value[3], value[4]]);
    format!(
        "{:0width$}",
        raw % 10u32.pow(digits),
        width = digits as usize
    )
}

fn tags(data: &[u8]) -> Vec<(u8, Vec<u8>)> {
    tlv::parse_all(data)
        .unwrap()
        .into_iter()
        .map(|t| (t.tag, t.value.to_vec()))
        .collect()
}

#[test]
fn select_answers_version_6_and_a_salt_and_the_atr_is_a_canokeys() {
    let mut card = Card::new(CardConfig::canokey());
    assert_eq!(card.profile(), Profile::CanoKey);
    assert_eq!(
        card.atr(),
        [
            0x3B, 0xF7, 0x11, 0x00, 0x00, 0x81, 0x31, 0xFE, 0x65, 0x43, 0x61, 0x6E, 0x6F, 0x6B,
            0x65, 0x79, 0x99
        ]
    );
    assert_eq!(&card.atr()[9..16], b"Canokey");
    let (data, sw) = select(&mut card);
    assert_eq!(sw, 0x9000);
    let answer = tags(&data);
    assert_eq!(answer[0], (0x79, vec![6, 0, 0]));
    assert_eq!(answer[1].0, 0x71);
    assert_eq!(answer[1].1.len(), 8);
    assert_eq!(answer.len(), 2, "no serial, no challenge: {answer:?}");
    // The salt is stable (unlike a Nitrokey's).
    let (again, _) = select(&mut card);
    assert_eq!(again, data);
}

#[test]
fn truncated_full_and_all_calculations_with_sha1_sha256_sha512() {
    let mut card = selected();
    let keys = [
        (
            b"sha1".as_slice(),
            HashAlgorithm::Sha1,
            SHA1_KEY,
            "94287082",
        ),
        (b"sha256", HashAlgorithm::Sha256, SHA256_KEY, "46119246"),
        (b"sha512", HashAlgorithm::Sha512, SHA512_KEY, "90693936"),
    ];
    for (id, algorithm, key, _) in keys {
        assert_eq!(
            put(&mut card, &put_data(id, TOTP, algorithm, 8, key)),
            0x9000
        );
    }
    let challenge = 1u64.to_be_bytes(); // t = 59
    for (id, algorithm, key, expected) in keys {
        let (data, sw) = send(&mut card, 0xA2, 0, 0x01, &calc_data(id, &challenge));
        assert_eq!(sw, 0x9000);
        assert_eq!(code_of(&data, 8), expected);
        // Full response (P2=00): `75 <digits> <hmac>`.
        let (data, sw) = send(&mut card, 0xA2, 0, 0x00, &calc_data(id, &challenge));
        assert_eq!(sw, 0x9000);
        let mut full = vec![8];
        full.extend(hmac(algorithm, key, &challenge));
        assert_eq!(tags(&data), [(0x75, full)]);
    }
    // The truncated answer is the raw 31-bit value, as on the card (not reduced).
    let (data, _) = send(&mut card, 0xA2, 0, 0x01, &calc_data(b"sha1", &challenge));
    let value = &tags(&data)[0].1;
    assert!(u32::from_be_bytes([value[1], value[2], value[3], value[4]]) >= 100_000_000);
    let mut all = Vec::new();
    tlv::write(&mut all, 0x74, &challenge).unwrap();
    let (data, sw) = send(&mut card, 0xA4, 0, 0x01, &all);
    assert_eq!(sw, 0x9000);
    let answer = tags(&data);
    assert_eq!(answer.len(), 6);
    for (pair, (_, _, _, expected)) in answer.chunks(2).zip(keys) {
        assert_eq!(pair[1].0, 0x76);
        assert_eq!(
            code_of(&tlv::encode(0x76, &pair[1].1).unwrap(), 8),
            expected
        );
    }
}

#[test]
fn put_never_overwrites_and_unknown_names_are_6984() {
    let mut card = selected();
    let data = put_data(b"dup", TOTP, HashAlgorithm::Sha1, 6, SHA1_KEY);
    assert_eq!(put(&mut card, &data), 0x9000);
    assert_eq!(put(&mut card, &data), 0x6985, "PUT of an existing name");
    let name = tlv::encode(0x71, b"dup").unwrap();
    assert_eq!(send(&mut card, 0x02, 0, 0, &name).1, 0x9000);
    assert_eq!(send(&mut card, 0x02, 0, 0, &name).1, 0x6984, "DELETE again");
    assert_eq!(
        send(&mut card, 0xA2, 0, 1, &calc_data(b"dup", &[0; 8])).1,
        0x6984
    );
    assert_eq!(put(&mut card, &data), 0x9000, "added again after DELETE");
    // Short keys are taken as they are; 4–8 digits; TOTP with an IMF is 6A80.
    assert_eq!(
        put(
            &mut card,
            &put_data(b"k", TOTP, HashAlgorithm::Sha1, 6, b"k")
        ),
        0x9000
    );
    for digits in [3, 9] {
        let data = put_data(b"d", TOTP, HashAlgorithm::Sha1, digits, SHA1_KEY);
        assert_eq!(put(&mut card, &data), 0x6A80, "{digits} digits");
    }
    let mut with_imf = put_data(b"i", TOTP, HashAlgorithm::Sha1, 6, SHA1_KEY);
    with_imf.extend_from_slice(&[0x7A, 0x04, 0, 0, 0, 1]);
    assert_eq!(put(&mut card, &with_imf), 0x6A80);
    // RENAME onto an existing name is 6985 too.
    let mut rename = tlv::encode(0x71, b"k").unwrap();
    tlv::write(&mut rename, 0x71, b"dup").unwrap();
    assert_eq!(send(&mut card, 0x05, 0, 0, &rename).1, 0x6985);
}

#[test]
fn hotp_increments_before_computing() {
    let mut card = selected();
    let hotp = put_data(b"hotp", HOTP, HashAlgorithm::Sha1, 6, SHA1_KEY);
    assert_eq!(put(&mut card, &hotp), 0x9000);
    let calc = calc_data(b"hotp", &[]);
    // Stored with counter 0, the first code is counter 1's (C2).
    for expected in &RFC4226[1..4] {
        let (data, sw) = send(&mut card, 0xA2, 0, 1, &calc);
        assert_eq!(sw, 0x9000);
        assert_eq!(code_of(&data, 6), *expected);
    }
    // IMF 5 gives counter 6's code first.
    let mut imf = put_data(b"imf", HOTP, HashAlgorithm::Sha1, 6, SHA1_KEY);
    imf.extend_from_slice(&[0x7A, 0x04, 0, 0, 0, 5]);
    assert_eq!(put(&mut card, &imf), 0x9000);
    let (data, _) = send(&mut card, 0xA2, 0, 1, &calc_data(b"imf", &[]));
    assert_eq!(code_of(&data, 6), RFC4226[6]);
}

#[test]
fn calculate_all_and_list_hide_the_touch_of_hotp_accounts() {
    let mut card = selected();
    let mut touch_hotp = put_data(b"touch-hotp", HOTP, HashAlgorithm::Sha1, 6, SHA1_KEY);
    touch_hotp.extend_from_slice(&[0x78, 0x02]);
    let mut touch_totp = put_data(b"touch-totp", TOTP, HashAlgorithm::Sha1, 6, SHA1_KEY);
    touch_totp.extend_from_slice(&[0x78, 0x02]);
    for data in [touch_hotp, touch_totp] {
        assert_eq!(put(&mut card, &data), 0x9000);
    }
    let mut all = Vec::new();
    tlv::write(&mut all, 0x74, &[0; 8]).unwrap();
    let (data, _) = send(&mut card, 0xA4, 0, 1, &all);
    let answer = tags(&data);
    assert_eq!(
        answer[1],
        (0x77, vec![6]),
        "touch HOTP answers 77, never 7C"
    );
    assert_eq!(answer[3], (0x7C, vec![6]), "touch TOTP answers 7C");
    // LIST: type/algorithm and name only, also when asked with data 01.
    for request in [&[][..], &[0x01]] {
        let (data, _) = send(&mut card, 0xA1, 0, 0, request);
        let list = tags(&data);
        assert_eq!(
            list[0],
            (0x72, [b"\x11".as_slice(), b"touch-hotp"].concat())
        );
    }
}

#[test]
fn no_oath_reset_but_the_admin_applet_resets_oath_with_the_pin() {
    let mut card = selected();
    let data = put_data(b"a", TOTP, HashAlgorithm::Sha1, 6, SHA1_KEY);
    assert_eq!(put(&mut card, &data), 0x9000);
    let (before, _) = select(&mut card);
    assert_eq!(send(&mut card, 0x04, 0xDE, 0xAD, &[]).1, 0x6D00, "C3");
    assert_eq!(card.credential_count(), 1);

    assert_eq!(
        send(&mut card, 0xA4, 0x04, 0, &canokey::ADMIN_AID).1,
        0x9000
    );
    // The OATH applet is no longer selected: its instructions are not the admin's.
    assert_eq!(send(&mut card, 0xA1, 0, 0, &[]).1, 0x6982);
    assert_eq!(
        send(&mut card, 0x05, 0, 0, &[]).1,
        0x6982,
        "RESET OATH needs the PIN"
    );
    assert_eq!(send(&mut card, 0x20, 0, 0, &[]).1, 0x63C3, "3 tries left");
    assert_eq!(send(&mut card, 0x20, 0, 0, b"12345").1, 0x6700, "too short");
    assert_eq!(send(&mut card, 0x20, 0, 0, b"654321").1, 0x63C2);
    assert_eq!(send(&mut card, 0x20, 0, 0, b"123456").1, 0x9000);
    assert_eq!(send(&mut card, 0x20, 0, 0, &[]).1, 0x9000, "verified");
    assert_eq!(send(&mut card, 0x99, 0, 0, &[]).1, 0x6D00);
    assert_eq!(send(&mut card, 0x05, 0, 0, &[]).1, 0x9000);
    assert_eq!(card.credential_count(), 0);
    let (after, sw) = select(&mut card);
    assert_eq!(sw, 0x9000);
    assert_ne!(tags(&after)[1], tags(&before)[1], "a new salt");

    // Power off forgets the PIN; three wrong PINs block the applet.
    card.power_off();
    card.power_on();
    assert_eq!(
        send(&mut card, 0xA4, 0x04, 0, &canokey::ADMIN_AID).1,
        0x9000
    );
    assert_eq!(send(&mut card, 0x05, 0, 0, &[]).1, 0x6982);
    assert_eq!(send(&mut card, 0x20, 0, 0, b"000000").1, 0x63C2);
    assert_eq!(send(&mut card, 0x20, 0, 0, b"000000").1, 0x63C1);
    assert_eq!(send(&mut card, 0x20, 0, 0, b"000000").1, 0x6983);
    assert_eq!(send(&mut card, 0x20, 0, 0, b"123456").1, 0x6983, "blocked");
    // Other profiles have no admin applet.
    let mut yubikey = Card::new(CardConfig::yubikey());
    assert_eq!(
        send(&mut yubikey, 0xA4, 0x04, 0, &canokey::ADMIN_AID).1,
        0x6A82
    );
}

// ---------------------------------------------------------------------------------------
// The client's quirks against the emulated CanoKey

fn session(card: Card) -> Session<EmulatorTransport> {
    // vpcd's reader name says nothing: the SELECT answer identifies the key.
    Session::open(EmulatorTransport::new(card), Some("Virtual PCD 00 00")).unwrap()
}

fn hotp(name: &str, counter: u32, touch: bool) -> CredentialData {
    let mut data = CredentialData::totp(None, name, SHA1_KEY);
    data.oath_type = OathType::Hotp;
    data.id = CredentialId::new(None, name, OathType::Hotp, 30);
    data.counter = counter;
    data.touch = touch;
    data
}

#[test]
fn client_compensates_the_hotp_counter_and_reports_touch_as_unknown() {
    let mut session = session(Card::new(CardConfig::canokey()));
    assert_eq!(session.quirks().kind, DeviceKind::CanoKey);
    for (name, counter) in [("from5", 5), ("from1", 1), ("from0", 0)] {
        session.put(&hotp(name, counter, false), false).unwrap();
    }
    session.put(&hotp("touchy", 0, true), false).unwrap();
    let listed = session.list_detailed(59).unwrap();
    let find = |name: &str| listed.iter().find(|c| c.id.name == name).unwrap().clone();
    for (name, first) in [("from5", 5), ("from1", 1), ("from0", 1)] {
        let credential = find(name);
        assert_eq!(credential.touch, None, "{name}: touch is not reported");
        for (counter, expected) in RFC4226.iter().enumerate().skip(first).take(3) {
            let code = session.calculate(&credential, 0).unwrap();
            assert_eq!(code.value, *expected, "{name} at counter {counter}");
        }
    }
    assert_eq!(find("touchy").touch, None);
    // Duplicates: refused without --force, replaced (DELETE + PUT) with it.
    assert!(matches!(
        session.put(&hotp("from5", 5, false), false),
        Err(OathError::AlreadyExists)
    ));
    session.put(&hotp("from5", 5, false), true).unwrap();
    let code = session.calculate(&find("from5"), 0).unwrap();
    assert_eq!(code.value, RFC4226[5], "replaced: counter 5 again");
}

#[test]
fn client_resets_through_the_admin_applet_only() {
    let mut session = session(Card::new(CardConfig::canokey()));
    session.put(&hotp("h", 0, false), false).unwrap();
    let id = session.device_id();
    // The OATH RESET is refused before any APDU, with the reason.
    match session.reset() {
        Err(OathError::NotSupported(reason)) => assert!(reason.contains("admin PIN"), "{reason}"),
        other => panic!("reset: {other:?}"),
    }
    assert!(matches!(
        session.reset_with_admin_pin(b"654321"),
        Err(OathError::WrongPassword)
    ));
    assert!(matches!(
        session.reset_with_admin_pin(b"12"),
        Err(OathError::WrongPassword)
    ));
    assert_eq!(session.list().unwrap().len(), 1, "nothing reset yet");
    session.reset_with_admin_pin(b"123456").unwrap();
    assert!(session.list().unwrap().is_empty());
    assert_ne!(session.device_id(), id, "a new identity");
}
