//! Behaviour tests for the emulated card (the trace replay is in `trace_replay.rs`).

use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::*;
use crate::oath::apdu::CommandApdu;
use crate::oath::consts::AID;
use crate::oath::tlv;
use crate::oath::{Transport, TransportError};
use crate::otp::{HashAlgorithm, hmac};

const SHA1_KEY: &[u8] = b"12345678901234567890";
const SHA256_KEY: &[u8] = b"12345678901234567890123456789012";
const SHA512_KEY: &[u8] = b"1234567890123456789012345678901234567890123456789012345678901234";
const TOTP: u8 = 0x20;
const HOTP: u8 = 0x10;

fn command(ins: u8, p1: u8, p2: u8, data: &[u8]) -> Vec<u8> {
    CommandApdu::new(ins, p1, p2, data.to_vec())
        .encode()
        .unwrap()
}

fn select_apdu() -> Vec<u8> {
    let mut apdu = vec![0x00, 0xA4, 0x04, 0x00, 0x07];
    apdu.extend_from_slice(&AID);
    apdu
}

/// (data, sw)
fn split(response: Vec<u8>) -> (Vec<u8>, u16) {
    let at = response.len() - 2;
    (
        response[..at].to_vec(),
        u16::from_be_bytes([response[at], response[at + 1]]),
    )
}

fn send(card: &mut Card, apdu: &[u8]) -> (Vec<u8>, u16) {
    split(card.process(apdu))
}

fn tlvs(data: &[u8]) -> Vec<(u8, Vec<u8>)> {
    tlv::parse_all(data)
        .unwrap()
        .into_iter()
        .map(|t| (t.tag, t.value.to_vec()))
        .collect()
}

fn value(data: &[u8], tag: u8) -> Option<Vec<u8>> {
    tlvs(data)
        .into_iter()
        .find(|(t, _)| *t == tag)
        .map(|(_, v)| v)
}

/// SELECT, following `61 XX` chaining (a small chunk size chains the SELECT answer too).
fn select(card: &mut Card) -> Vec<u8> {
    let (mut data, mut sw) = send(card, &select_apdu());
    while sw >> 8 == 0x61 {
        let (more, next) = send(card, &[0x00, 0xA5, 0x00, 0x00]);
        data.extend(more);
        sw = next;
    }
    assert_eq!(sw, 0x9000);
    data
}

fn put_data(id: &[u8], kind: u8, algo: HashAlgorithm, digits: u8, key: &[u8]) -> Vec<u8> {
    let mut data = tlv::encode(0x71, id).unwrap();
    let mut key_field = vec![kind | algo.code(), digits];
    key_field.extend_from_slice(key);
    tlv::write(&mut data, 0x73, &key_field).unwrap();
    data
}

fn put(card: &mut Card, id: &[u8], kind: u8, algo: HashAlgorithm, digits: u8, key: &[u8]) -> u16 {
    send(
        card,
        &command(0x01, 0, 0, &put_data(id, kind, algo, digits, key)),
    )
    .1
}

fn calc_data(id: &[u8], challenge: &[u8]) -> Vec<u8> {
    let mut data = tlv::encode(0x71, id).unwrap();
    tlv::write(&mut data, 0x74, challenge).unwrap();
    data
}

fn calculate(card: &mut Card, p2: u8, id: &[u8], challenge: &[u8]) -> (Vec<u8>, u16) {
    send(card, &command(0xA2, 0, p2, &calc_data(id, challenge)))
}

/// The truncated code value from a `76 05 digits value` response.
fn truncated_value(data: &[u8]) -> u32 {
    let v = value(data, 0x76).expect("76 tag");
    u32::from_be_bytes([v[1], v[2], v[3], v[4]])
}

fn selected_yubikey() -> Card {
    let mut card = Card::new(CardConfig::yubikey());
    select(&mut card);
    card
}

fn totp_challenge(t: u64) -> [u8; 8] {
    (t / 30).to_be_bytes()
}

#[test]
fn rfc6238_vectors_truncated_and_full() {
    let mut card = selected_yubikey();
    let keys = [
        (HashAlgorithm::Sha1, SHA1_KEY),
        (HashAlgorithm::Sha256, SHA256_KEY),
        (HashAlgorithm::Sha512, SHA512_KEY),
    ];
    for (algo, key) in keys {
        assert_eq!(
            put(&mut card, algo.name().as_bytes(), TOTP, algo, 8, key),
            0x9000
        );
    }
    let vectors: [(u64, [u32; 3]); 4] = [
        (59, [94287082, 46119246, 90693936]),
        (1111111109, [7081804, 68084774, 25091201]),
        (1234567890, [89005924, 91819424, 93441116]),
        (20000000000, [65353130, 77737706, 47863826]),
    ];
    for (t, expected) in vectors {
        for ((algo, key), code) in keys.iter().zip(expected) {
            let id = algo.name().as_bytes();
            let (data, sw) = calculate(&mut card, 0x01, id, &totp_challenge(t));
            assert_eq!(sw, 0x9000);
            assert_eq!(value(&data, 0x76).unwrap()[0], 8);
            assert_eq!(truncated_value(&data), code, "{algo} t={t}");
            let (data, sw) = calculate(&mut card, 0x00, id, &totp_challenge(t));
            assert_eq!(sw, 0x9000);
            let full = value(&data, 0x75).unwrap();
            assert_eq!(full[0], 8);
            assert_eq!(full[1..], hmac(*algo, key, &totp_challenge(t))[..]);
        }
    }
}

#[test]
fn hotp_uses_then_increments_its_counter_and_honours_imf() {
    let mut card = selected_yubikey();
    assert_eq!(
        put(&mut card, b"h", HOTP, HashAlgorithm::Sha1, 6, SHA1_KEY),
        0x9000
    );
    let expected = [755224, 287082, 359152, 969429];
    for code in expected {
        // The supplied challenge is ignored.
        let (data, _) = calculate(&mut card, 0x01, b"h", &[0xFF; 8]);
        assert_eq!(truncated_value(&data), code);
    }
    // A full CALCULATE bumps the counter too (counter 4 → 338314 next is counter 5).
    let (data, _) = calculate(&mut card, 0x00, b"h", &[]);
    assert_eq!(
        value(&data, 0x75).unwrap()[1..],
        hmac(HashAlgorithm::Sha1, SHA1_KEY, &4u64.to_be_bytes())[..]
    );
    let (data, _) = calculate(&mut card, 0x01, b"h", &[]);
    assert_eq!(truncated_value(&data), 254676);

    let mut imf = put_data(b"imf", HOTP, HashAlgorithm::Sha1, 6, SHA1_KEY);
    imf.extend_from_slice(&[0x7A, 0x04, 0, 0, 0, 5]);
    assert_eq!(send(&mut card, &command(0x01, 0, 0, &imf)).1, 0x9000);
    let (data, _) = calculate(&mut card, 0x01, b"imf", &[]);
    assert_eq!(truncated_value(&data), 254676);
    // IMF must be 4 bytes.
    let mut bad = put_data(b"bad", HOTP, HashAlgorithm::Sha1, 6, SHA1_KEY);
    bad.extend_from_slice(&[0x7A, 0x02, 0, 5]);
    assert_eq!(send(&mut card, &command(0x01, 0, 0, &bad)).1, 0x6A80);
}

#[test]
fn put_validation_and_overwrite() {
    let mut card = selected_yubikey();
    let sha1 = HashAlgorithm::Sha1;
    assert_eq!(put(&mut card, &[b'a'; 64], TOTP, sha1, 6, SHA1_KEY), 0x9000);
    assert_eq!(put(&mut card, &[b'a'; 65], TOTP, sha1, 6, SHA1_KEY), 0x6A80);
    assert_eq!(put(&mut card, b"", TOTP, sha1, 6, SHA1_KEY), 0x6A80);
    assert_eq!(put(&mut card, b"x", 0x30, sha1, 6, SHA1_KEY), 0x6A80);
    // Unknown algorithm nibble (4).
    let mut unknown_algo = put_data(b"x", TOTP, sha1, 6, SHA1_KEY);
    unknown_algo[5] = 0x24;
    assert_eq!(
        send(&mut card, &command(0x01, 0, 0, &unknown_algo)).1,
        0x6A80
    );
    assert_eq!(put(&mut card, b"short", TOTP, sha1, 6, &[1; 13]), 0x6A80);
    // Overwrite keeps one entry, with the new parameters.
    assert_eq!(put(&mut card, b"x", TOTP, sha1, 6, SHA1_KEY), 0x9000);
    assert_eq!(
        put(&mut card, b"x", HOTP, HashAlgorithm::Sha256, 8, SHA256_KEY),
        0x9000
    );
    let (list, sw) = send(&mut card, &command(0xA1, 0, 0, &[]));
    assert_eq!(sw, 0x9000);
    let entries = tlvs(&list);
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[1], (0x72, [&[0x12][..], b"x"].concat()));
    // Property byte with no length: `78 02`; a missing property byte is a syntax error.
    let mut touch = put_data(b"t", TOTP, sha1, 6, SHA1_KEY);
    touch.extend_from_slice(&[0x78, 0x02]);
    assert_eq!(send(&mut card, &command(0x01, 0, 0, &touch)).1, 0x9000);
    let mut cut = put_data(b"t2", TOTP, sha1, 6, SHA1_KEY);
    cut.push(0x78);
    assert_eq!(send(&mut card, &command(0x01, 0, 0, &cut)).1, 0x6A80);
}

#[test]
fn capacity_is_64_and_overwrite_still_works_when_full() {
    let mut card = selected_yubikey();
    for i in 0..64 {
        let id = format!("cred-{i:02}");
        assert_eq!(
            put(
                &mut card,
                id.as_bytes(),
                TOTP,
                HashAlgorithm::Sha1,
                6,
                SHA1_KEY
            ),
            0x9000
        );
    }
    assert_eq!(
        put(
            &mut card,
            b"one-more",
            TOTP,
            HashAlgorithm::Sha1,
            6,
            SHA1_KEY
        ),
        0x6A84
    );
    assert_eq!(
        put(
            &mut card,
            b"cred-00",
            HOTP,
            HashAlgorithm::Sha1,
            6,
            SHA1_KEY
        ),
        0x9000
    );
    assert_eq!(card.credential_count(), 64);
}

#[test]
fn delete_and_rename() {
    let mut card = selected_yubikey();
    put(&mut card, b"a", TOTP, HashAlgorithm::Sha1, 6, SHA1_KEY);
    put(&mut card, b"b", TOTP, HashAlgorithm::Sha1, 6, SHA1_KEY);
    let rename = |old: &[u8], new: &[u8]| {
        let mut data = tlv::encode(0x71, old).unwrap();
        tlv::write(&mut data, 0x71, new).unwrap();
        command(0x05, 0, 0, &data)
    };
    assert_eq!(send(&mut card, &rename(b"a", b"b")).1, 0x6A80);
    assert_eq!(send(&mut card, &rename(b"zz", b"c")).1, 0x6984);
    assert_eq!(send(&mut card, &rename(b"a", &[b'c'; 65])).1, 0x6A80);
    assert_eq!(send(&mut card, &rename(b"a", b"c")).1, 0x9000);
    assert_eq!(calculate(&mut card, 1, b"c", &[0; 8]).1, 0x9000);
    assert_eq!(calculate(&mut card, 1, b"a", &[0; 8]).1, 0x6984);
    let delete = |id: &[u8]| command(0x02, 0, 0, &tlv::encode(0x71, id).unwrap());
    assert_eq!(send(&mut card, &delete(b"c")).1, 0x9000);
    assert_eq!(send(&mut card, &delete(b"c")).1, 0x6984);
    let (list, _) = send(&mut card, &command(0xA1, 0, 0, &[]));
    assert_eq!(tlvs(&list), vec![(0x72, vec![0x21, b'b'])]);
}

#[test]
fn calculate_all_reports_totp_hotp_and_touch() {
    let mut card = selected_yubikey();
    put(&mut card, b"totp", TOTP, HashAlgorithm::Sha1, 8, SHA1_KEY);
    put(&mut card, b"hotp", HOTP, HashAlgorithm::Sha1, 6, SHA1_KEY);
    let mut touch = put_data(b"touch", TOTP, HashAlgorithm::Sha256, 6, SHA256_KEY);
    touch.extend_from_slice(&[0x78, 0x02]);
    send(&mut card, &command(0x01, 0, 0, &touch));
    let challenge = tlv::encode(0x74, &totp_challenge(59)).unwrap();
    let (data, sw) = send(&mut card, &command(0xA4, 0, 1, &challenge));
    assert_eq!(sw, 0x9000);
    let mut expected = tlv::encode(0x71, b"totp").unwrap();
    expected.extend_from_slice(&[0x76, 0x05, 0x08, 0x05, 0x9E, 0xB4, 0xEA]);
    expected.extend(tlv::encode(0x71, b"hotp").unwrap());
    expected.extend_from_slice(&[0x77, 0x01, 0x06]);
    expected.extend(tlv::encode(0x71, b"touch").unwrap());
    expected.extend_from_slice(&[0x7C, 0x01, 0x06]);
    assert_eq!(data, expected);
    // HOTP was not calculated, so its counter is still 0.
    let (data, _) = calculate(&mut card, 1, b"hotp", &[]);
    assert_eq!(truncated_value(&data), 755224);
    // Full variant.
    let (data, _) = send(&mut card, &command(0xA4, 0, 0, &challenge));
    let full = value(&data, 0x75).unwrap();
    assert_eq!(
        full[1..],
        hmac(HashAlgorithm::Sha1, SHA1_KEY, &totp_challenge(59))[..]
    );
    assert_eq!(send(&mut card, &command(0xA4, 0, 1, &[])).1, 0x6A80);
}

#[test]
fn chaining_with_chunk_size_16() {
    let config = CardConfig {
        chunk_size: 16,
        ..CardConfig::yubikey()
    };
    let mut card = Card::new(config);
    select(&mut card);
    for i in 0..20 {
        let id = format!("chained-credential-{i:02}");
        put(
            &mut card,
            id.as_bytes(),
            TOTP,
            HashAlgorithm::Sha1,
            6,
            SHA1_KEY,
        );
    }
    let (first, sw) = send(&mut card, &command(0xA1, 0, 0, &[]));
    assert_eq!(first.len(), 16);
    let total = 20 * (2 + 1 + "chained-credential-00".len());
    // More than 255 bytes left: 61 00.
    assert_eq!(sw, 0x6100);
    let mut all = first;
    let mut last_sw = sw;
    while last_sw >> 8 == 0x61 {
        let (chunk, sw) = send(&mut card, &[0x00, 0xA5, 0x00, 0x00]);
        assert!(chunk.len() <= 16);
        if sw >> 8 == 0x61 {
            let remaining = total - all.len() - chunk.len();
            assert_eq!(
                usize::from((sw & 0xFF) as u8),
                if remaining >= 256 { 0 } else { remaining }
            );
        }
        all.extend(chunk);
        last_sw = sw;
    }
    assert_eq!(last_sw, 0x9000);
    assert_eq!(all.len(), total);
    assert_eq!(tlvs(&all).len(), 20);
    // Another command in between discards the rest.
    let (_, sw) = send(&mut card, &command(0xA1, 0, 0, &[]));
    assert_eq!(sw >> 8, 0x61);
    select(&mut card);
    assert_eq!(send(&mut card, &[0x00, 0xA5, 0x00, 0x00]).1, 0x6985);
}

fn set_code_data(algo_byte: u8, key: &[u8], challenge: &[u8], response: &[u8]) -> Vec<u8> {
    let mut key_field = vec![algo_byte];
    key_field.extend_from_slice(key);
    let mut data = tlv::encode(0x73, &key_field).unwrap();
    tlv::write(&mut data, 0x74, challenge).unwrap();
    tlv::write(&mut data, 0x75, response).unwrap();
    data
}

fn validate_data(response: &[u8], challenge: &[u8]) -> Vec<u8> {
    let mut data = tlv::encode(0x75, response).unwrap();
    tlv::write(&mut data, 0x74, challenge).unwrap();
    data
}

#[test]
fn password_locks_and_validate_unlocks() {
    let mut card = selected_yubikey();
    put(&mut card, b"a", TOTP, HashAlgorithm::Sha1, 6, SHA1_KEY);
    assert_eq!(
        send(
            &mut card,
            &command(0xA3, 0, 0, &validate_data(&[0; 20], &[1; 8]))
        )
        .1,
        0x6984
    );
    let key = [0x42u8; 16];
    let challenge = [7u8; 8];
    let good = hmac(HashAlgorithm::Sha1, &key, &challenge);
    let wrong = set_code_data(0x21, &key, &challenge, &[0; 20]);
    assert_eq!(send(&mut card, &command(0x03, 0, 0, &wrong)).1, 0x6984);
    let bad_algo = set_code_data(0x23, &key, &challenge, &good);
    assert_eq!(send(&mut card, &command(0x03, 0, 0, &bad_algo)).1, 0x6A80);
    let set = set_code_data(0x21, &key, &challenge, &good);
    assert_eq!(send(&mut card, &command(0x03, 0, 0, &set)).1, 0x9000);
    // Still unlocked in this selection.
    assert_eq!(send(&mut card, &command(0xA1, 0, 0, &[])).1, 0x9000);

    let data = select(&mut card);
    let select_challenge = value(&data, 0x74).unwrap();
    assert_eq!(select_challenge.len(), 8);
    assert_eq!(value(&data, 0x7B).unwrap(), vec![0x01]);
    let locked = [
        command(0xA1, 0, 0, &[]),
        command(0xA2, 0, 1, &calc_data(b"a", &[0; 8])),
        command(0xA4, 0, 1, &tlv::encode(0x74, &[0; 8]).unwrap()),
        command(
            0x01,
            0,
            0,
            &put_data(b"b", TOTP, HashAlgorithm::Sha1, 6, SHA1_KEY),
        ),
        command(0x02, 0, 0, &tlv::encode(0x71, b"a").unwrap()),
        command(0x05, 0, 0, &[0x71, 1, b'a', 0x71, 1, b'b']),
        command(0x03, 0, 0, &[0x73, 0x00]),
        vec![0x00, 0xA5, 0x00, 0x00],
    ];
    for apdu in &locked {
        assert_eq!(send(&mut card, apdu).1, 0x6982, "{apdu:02x?}");
    }
    // A wrong response is 6A80 and burns the challenge.
    assert_eq!(
        send(
            &mut card,
            &command(0xA3, 0, 0, &validate_data(&[0; 20], &[1; 8]))
        )
        .1,
        0x6A80
    );
    let right = hmac(HashAlgorithm::Sha1, &key, &select_challenge);
    assert_eq!(
        send(
            &mut card,
            &command(0xA3, 0, 0, &validate_data(&right, &[1; 8]))
        )
        .1,
        0x6A80
    );

    let select_challenge = value(&select(&mut card), 0x74).unwrap();
    let right = hmac(HashAlgorithm::Sha1, &key, &select_challenge);
    let host_challenge = [9u8; 8];
    let (data, sw) = send(
        &mut card,
        &command(0xA3, 0, 0, &validate_data(&right, &host_challenge)),
    );
    assert_eq!(sw, 0x9000);
    assert_eq!(
        value(&data, 0x75).unwrap(),
        hmac(HashAlgorithm::Sha1, &key, &host_challenge)
    );
    for apdu in &locked[..3] {
        assert_eq!(send(&mut card, apdu).1, 0x9000);
    }
    // Power cycling locks again.
    card.power_off();
    card.power_on();
    assert_eq!(send(&mut card, &command(0xA1, 0, 0, &[])).1, 0x6D00);
    let select_challenge = value(&select(&mut card), 0x74).unwrap();
    assert_eq!(send(&mut card, &command(0xA1, 0, 0, &[])).1, 0x6982);
    let right = hmac(HashAlgorithm::Sha1, &key, &select_challenge);
    assert_eq!(
        send(
            &mut card,
            &command(0xA3, 0, 0, &validate_data(&right, &[1; 8]))
        )
        .1,
        0x9000
    );
    // Clear the password: SELECT no longer carries a challenge.
    assert_eq!(
        send(&mut card, &command(0x03, 0, 0, &[0x73, 0x00])).1,
        0x9000
    );
    let data = select(&mut card);
    assert_eq!(value(&data, 0x74), None);
    assert_eq!(send(&mut card, &command(0xA1, 0, 0, &[])).1, 0x9000);
}

#[test]
fn reset_wipes_everything_and_rotates_the_salt() {
    let mut card = selected_yubikey();
    let salt = value(&select(&mut card), 0x71).unwrap();
    put(&mut card, b"a", TOTP, HashAlgorithm::Sha1, 6, SHA1_KEY);
    let key = [1u8; 16];
    let set = set_code_data(
        0x01,
        &key,
        &[2; 8],
        &hmac(HashAlgorithm::Sha1, &key, &[2; 8]),
    );
    assert_eq!(send(&mut card, &command(0x03, 0, 0, &set)).1, 0x9000);
    select(&mut card);
    assert_eq!(send(&mut card, &[0x00, 0x04, 0xDE, 0xAE]).1, 0x6A86);
    // RESET needs no password.
    assert_eq!(send(&mut card, &[0x00, 0x04, 0xDE, 0xAD]).1, 0x9000);
    let data = select(&mut card);
    assert_ne!(value(&data, 0x71).unwrap(), salt);
    assert_eq!(value(&data, 0x74), None);
    assert_eq!(send(&mut card, &command(0xA1, 0, 0, &[])), (vec![], 0x9000));
}

#[test]
fn selection_rules_and_malformed_apdus() {
    let mut card = Card::new(CardConfig::yubikey());
    assert_eq!(send(&mut card, &command(0xA1, 0, 0, &[])).1, 0x6D00);
    let mut other = vec![0x00, 0xA4, 0x04, 0x00, 0x08];
    other.extend_from_slice(&[0xA0, 0, 0, 0x05, 0x27, 0x47, 0x11, 0x17]);
    assert_eq!(send(&mut card, &other).1, 0x6A82);
    let data = select(&mut card);
    assert_eq!(&data[..5], &[0x79, 0x03, 0x05, 0x07, 0x02]);
    assert_eq!(value(&data, 0x71).unwrap().len(), 8);
    // 8-byte AID (Android app) is accepted too.
    let mut long_aid = vec![0x00, 0xA4, 0x04, 0x00, 0x08];
    long_aid.extend_from_slice(&AID);
    long_aid.push(0x01);
    assert_eq!(send(&mut card, &long_aid).1, 0x9000);
    assert_eq!(send(&mut card, &[0x00, 0xA1]).1, 0x6700);
    assert_eq!(
        send(&mut card, &[0x00, 0x01, 0x00, 0x00, 0x05, 0x71]).1,
        0x6700
    );
    assert_eq!(
        send(&mut card, &command(0x01, 0, 0, &[0x71, 0x09, 0x61])).1,
        0x6A80
    );
    assert_eq!(send(&mut card, &command(0x42, 0, 0, &[])).1, 0x6D00);
    assert_eq!(send(&mut card, &[0x80, 0xA1, 0x00, 0x00]).1, 0x6E00);
    assert_eq!(card.process(&[]), vec![0x67, 0x00]);
    assert_eq!(card.atr(), vec![0x3B, 0x80, 0x80, 0x01, 0x01]);
}

#[test]
fn touch_policy_approves_after_delay_or_denies_after_timeout() {
    let mut card = selected_yubikey();
    let mut touch = put_data(b"t", TOTP, HashAlgorithm::Sha1, 6, SHA1_KEY);
    touch.extend_from_slice(&[0x78, 0x02]);
    send(&mut card, &command(0x01, 0, 0, &touch));
    let faults = card.faults();
    faults.set_touch(TouchPolicy::Approve {
        delay: Duration::from_millis(30),
    });
    let started = Instant::now();
    let (data, sw) = calculate(&mut card, 1, b"t", &totp_challenge(59));
    assert_eq!((truncated_value(&data), sw), (287082, 0x9000));
    assert!(started.elapsed() >= Duration::from_millis(30));
    faults.set_touch(TouchPolicy::Deny {
        timeout: Duration::from_millis(30),
    });
    let started = Instant::now();
    assert_eq!(
        calculate(&mut card, 1, b"t", &totp_challenge(59)),
        (vec![], 0x6982)
    );
    assert!(started.elapsed() >= Duration::from_millis(30));
}

#[test]
fn nitrokey_quirks() {
    let config = CardConfig {
        serial: 0x0A0B0C0D,
        ..CardConfig::nitrokey()
    };
    let mut card = Card::new(config);
    let first = select(&mut card);
    assert_eq!(&first[..5], &[0x79, 0x03, 0x04, 0x0F, 0x00]);
    assert_eq!(value(&first, 0x8F).unwrap(), vec![0x0A, 0x0B, 0x0C, 0x0D]);
    let second = select(&mut card);
    assert_ne!(
        value(&first, 0x71),
        value(&second, 0x71),
        "salt changes every SELECT"
    );

    let sha1 = HashAlgorithm::Sha1;
    assert_eq!(put(&mut card, b"a", TOTP, sha1, 8, SHA1_KEY), 0x9000);
    assert_eq!(put(&mut card, b"a", TOTP, sha1, 8, SHA1_KEY), 0x6983);
    assert_eq!(
        put(&mut card, &[b'l'; 127], TOTP, sha1, 6, SHA1_KEY),
        0x9000
    );
    assert_eq!(
        put(&mut card, &[b'l'; 128], TOTP, sha1, 6, SHA1_KEY),
        0x6A80
    );
    assert_eq!(put(&mut card, b"short-key", TOTP, sha1, 6, &[1; 4]), 0x9000);
    assert_eq!(
        put(
            &mut card,
            b"512",
            TOTP,
            HashAlgorithm::Sha512,
            6,
            SHA512_KEY
        ),
        0x9000
    );
    assert_eq!(calculate(&mut card, 1, b"512", &[0; 8]).1, 0x6A81);
    assert_eq!(calculate(&mut card, 0, b"a", &[0; 8]).1, 0x6D00);
    assert_eq!(calculate(&mut card, 1, b"missing", &[0; 8]).1, 0x6A82);
    // Raw dynamic truncation, not reduced mod 10^digits.
    let (data, _) = calculate(&mut card, 1, b"a", &totp_challenge(59));
    let raw = crate::otp::dynamic_truncate(&hmac(sha1, SHA1_KEY, &totp_challenge(59)));
    assert_eq!(truncated_value(&data), raw);
    assert_eq!(raw % 100_000_000, 94287082);

    for (apdu, expected) in [
        (command(0x03, 0, 0, &[0x73, 0x00]), 0x6D00),
        (
            command(0xA3, 0, 0, &validate_data(&[0; 20], &[0; 8])),
            0x6D00,
        ),
        (command(0x05, 0, 0, &[0x71, 1, b'a', 0x71, 1, b'b']), 0x6D00),
        (
            command(0xA4, 0, 1, &tlv::encode(0x74, &[0; 8]).unwrap()),
            0x6D00,
        ),
        (
            command(0x02, 0, 0, &tlv::encode(0x71, b"nope").unwrap()),
            0x6A82,
        ),
        (vec![0x00, 0xA5, 0x00, 0x00], 0x6985),
    ] {
        assert_eq!(send(&mut card, &apdu).1, expected, "{apdu:02x?}");
    }
    // LIST v1 appends a properties byte.
    let (list, _) = send(&mut card, &command(0xA1, 0, 0, &[0x01]));
    assert_eq!(tlvs(&list)[0], (0x72, vec![0x21, b'a', 0x00]));

    // Touch for DELETE, RESET and touch-flagged PUT.
    card.faults().set_touch(TouchPolicy::Deny {
        timeout: Duration::ZERO,
    });
    let delete = command(0x02, 0, 0, &tlv::encode(0x71, b"a").unwrap());
    assert_eq!(send(&mut card, &delete).1, 0x6982);
    assert_eq!(send(&mut card, &[0x00, 0x04, 0xDE, 0xAD]).1, 0x6982);
    let mut touch = put_data(b"t", TOTP, sha1, 6, SHA1_KEY);
    touch.extend_from_slice(&[0x78, 0x02]);
    assert_eq!(send(&mut card, &command(0x01, 0, 0, &touch)).1, 0x6982);
    card.faults().set_touch(TouchPolicy::default());
    assert_eq!(send(&mut card, &command(0x01, 0, 0, &touch)).1, 0x9000);
    assert_eq!(send(&mut card, &delete).1, 0x9000);

    // HOTP counter is a u32 that wraps.
    let mut hotp = put_data(b"h", HOTP, sha1, 6, SHA1_KEY);
    hotp.extend_from_slice(&[0x7A, 0x04, 0xFF, 0xFF, 0xFF, 0xFF]);
    assert_eq!(send(&mut card, &command(0x01, 0, 0, &hotp)).1, 0x9000);
    calculate(&mut card, 1, b"h", &[]);
    let (data, _) = calculate(&mut card, 1, b"h", &[]);
    let raw = crate::otp::dynamic_truncate(&hmac(sha1, SHA1_KEY, &0u64.to_be_bytes()));
    assert_eq!(truncated_value(&data), raw);
    // TOTP with IMF is refused.
    let mut totp_imf = put_data(b"ti", TOTP, sha1, 6, SHA1_KEY);
    totp_imf.extend_from_slice(&[0x7A, 0x04, 0, 0, 0, 1]);
    assert_eq!(send(&mut card, &command(0x01, 0, 0, &totp_imf)).1, 0x6A80);

    // Capacity 50.
    send(&mut card, &[0x00, 0x04, 0xDE, 0xAD]);
    for i in 0..50 {
        assert_eq!(
            put(
                &mut card,
                format!("c{i}").as_bytes(),
                TOTP,
                sha1,
                6,
                SHA1_KEY
            ),
            0x9000
        );
    }
    assert_eq!(put(&mut card, b"full", TOTP, sha1, 6, SHA1_KEY), 0x6A84);
}

#[test]
fn response_faults() {
    let mut card = selected_yubikey();
    put(&mut card, b"abc", TOTP, HashAlgorithm::Sha1, 6, SHA1_KEY);
    let list = command(0xA1, 0, 0, &[]);
    let (clean, _) = send(&mut card, &list);
    let faults = card.faults();

    faults.update(|f| f.truncated_responses = true);
    assert_eq!(
        send(&mut card, &list),
        (clean[..clean.len() / 2].to_vec(), 0x9000)
    );
    faults.set(Faults::default());

    faults.update(|f| f.malformed_tlv = true);
    let (data, sw) = send(&mut card, &list);
    assert_eq!(sw, 0x9000);
    assert!(tlv::parse_all(&data).is_err());
    faults.set(Faults::default());

    faults.update(|f| f.endless_more_data = true);
    assert_eq!(send(&mut card, &list), (clean.clone(), 0x61FF));
    for _ in 0..5 {
        let (garbage, sw) = send(&mut card, &[0x00, 0xA5, 0x00, 0x00]);
        assert_eq!((garbage.len(), sw), (255, 0x61FF));
    }
    faults.set(Faults::default());

    faults.update(|f| f.oversized_response = true);
    let (blob, sw) = send(&mut card, &list);
    assert_eq!((blob.len(), sw), (OVERSIZED_RESPONSE_LEN, 0x9000));
    faults.set(Faults::default());
    assert_eq!(send(&mut card, &list), (clean, 0x9000));
}

#[test]
fn in_process_transport_power_loss_and_stats() {
    let mut transport = EmulatorTransport::new(Card::new(CardConfig::yubikey()));
    let handle = transport.handle();
    transport.transmit(&select_apdu()).unwrap();
    let challenge = tlv::encode(0x74, &[0; 8]).unwrap();
    let response = transport
        .transmit(&command(0xA4, 0, 1, &challenge))
        .unwrap();
    assert_eq!(response, vec![0x90, 0x00]);
    assert_eq!(handle.stats().count(CommandKind::CalculateAll), 1);
    assert_eq!(handle.stats().count(CommandKind::Select), 1);
    assert_eq!(handle.stats().count_ins(0xA4), 2);

    handle.faults().update(|f| f.power_loss_after = Some(1));
    assert!(transport.transmit(&command(0xA1, 0, 0, &[])).is_ok());
    assert_eq!(
        transport.transmit(&command(0xA1, 0, 0, &[])),
        Err(TransportError::CardRemoved)
    );
    assert_eq!(
        transport.transmit(&select_apdu()),
        Err(TransportError::CardRemoved)
    );
    handle.replug();
    // Back, but the selection was lost with the power.
    assert_eq!(
        transport.transmit(&command(0xA1, 0, 0, &[])).unwrap(),
        vec![0x6D, 0x00]
    );
    handle.power_cycle();
    // The APDU sent while unplugged never reached the card.
    assert_eq!(handle.stats().total(), 5);
    handle.stats().clear();
    assert_eq!(handle.stats().total(), 0);
}

#[test]
fn state_file_round_trip() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("card.json");
    let key = [5u8; 16];
    let salt;
    {
        let mut card = Card::new(CardConfig::yubikey())
            .with_state_file(&path)
            .unwrap();
        salt = value(&select(&mut card), 0x71).unwrap();
        put(&mut card, b"h", HOTP, HashAlgorithm::Sha1, 6, SHA1_KEY);
        let mut touch = put_data(b"t", TOTP, HashAlgorithm::Sha256, 8, SHA256_KEY);
        touch.extend_from_slice(&[0x78, 0x02]);
        send(&mut card, &command(0x01, 0, 0, &touch));
        calculate(&mut card, 1, b"h", &[]);
        let set = set_code_data(
            0x21,
            &key,
            &[3; 8],
            &hmac(HashAlgorithm::Sha1, &key, &[3; 8]),
        );
        assert_eq!(send(&mut card, &command(0x03, 0, 0, &set)).1, 0x9000);
    }
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("\"counter\": 1"), "{text}");

    let mut card = Card::new(CardConfig::yubikey())
        .with_state_file(&path)
        .unwrap();
    let data = select(&mut card);
    assert_eq!(value(&data, 0x71).unwrap(), salt);
    let challenge = value(&data, 0x74).expect("password survived");
    let right = hmac(HashAlgorithm::Sha1, &key, &challenge);
    assert_eq!(
        send(
            &mut card,
            &command(0xA3, 0, 0, &validate_data(&right, &[0; 8]))
        )
        .1,
        0x9000
    );
    let (data, _) = calculate(&mut card, 1, b"h", &[]);
    assert_eq!(truncated_value(&data), 287082, "counter survived");
    let (list, _) = send(
        &mut card,
        &command(0xA4, 0, 1, &tlv::encode(0x74, &[0; 8]).unwrap()),
    );
    assert!(
        list.ends_with(&[0x7C, 0x01, 0x08]),
        "touch property survived"
    );

    // Explicit save/load, and a world-readable file is refused.
    let copy = dir.path().join("copy.json");
    card.save_state(&copy).unwrap();
    let mut other = Card::new(CardConfig::yubikey());
    other.load_state(&copy).unwrap();
    assert_eq!(value(&select(&mut other), 0x71).unwrap(), salt);
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o640)).unwrap();
    assert!(matches!(
        Card::new(CardConfig::yubikey()).with_state_file(&copy),
        Err(StateError::Insecure { .. })
    ));
}

proptest! {
    #[test]
    fn arbitrary_apdus_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let mut card = Card::new(CardConfig { chunk_size: 8, ..CardConfig::yubikey() });
        let response = card.process(&bytes);
        prop_assert!(response.len() >= 2);
        select(&mut card);
        put(&mut card, b"a", TOTP, HashAlgorithm::Sha1, 6, SHA1_KEY);
        let response = card.process(&bytes);
        prop_assert!(response.len() >= 2);
    }

    #[test]
    fn arbitrary_bodies_for_every_instruction_never_panic(
        ins in prop::sample::select(vec![0x01u8, 0x02, 0x03, 0x04, 0x05, 0xA1, 0xA2, 0xA3, 0xA4, 0xA5]),
        p1 in any::<u8>(), p2 in any::<u8>(),
        data in proptest::collection::vec(any::<u8>(), 0..300),
        nitrokey in any::<bool>(),
    ) {
        let config = if nitrokey { CardConfig::nitrokey() } else { CardConfig::yubikey() };
        let mut card = Card::new(CardConfig { chunk_size: 8, ..config });
        select(&mut card);
        put(&mut card, b"a", HOTP, HashAlgorithm::Sha1, 6, SHA1_KEY);
        let apdu = CommandApdu::new(ins, p1, p2, data).encode().unwrap();
        let response = card.process(&apdu);
        prop_assert!(response.len() >= 2);
        let response = card.process(&[0x00, 0xA5, 0x00, 0x00]);
        prop_assert!(response.len() >= 2);
    }
}
