//! Vectors: CRC-16/X-25 check value, RFC 4226/6238 test values, frame layout.

use hmac::{Hmac, Mac};
use proptest::prelude::*;
use sha1::Sha1;

use super::config::{CONFIG_SIZE, strip_challenge};
use super::*;

fn hmac_sha1(key: &[u8], message: &[u8]) -> [u8; 20] {
    let mut mac = Hmac::<Sha1>::new_from_slice(key).unwrap();
    mac.update(message);
    mac.finalize().into_bytes().into()
}

#[test]
fn crc_matches_the_x25_check_value_and_residual() {
    // CRC-16/X-25 of "123456789" is 0x906E after its final inversion.
    assert_eq!(!crc16(b"123456789"), 0x906E);
    assert!(crc_ok(&with_crc(b"123456789")));
    let mut broken = with_crc(b"123456789");
    broken[3] ^= 1;
    assert!(!crc_ok(&broken));
}

#[test]
fn frames_are_ten_reports_with_zero_middles_skipped() {
    let frame = build_frame(slot::CHAL_HMAC_2, &[0xAB; 8]).unwrap();
    assert_eq!(frame[64], 0x38);
    assert_eq!(
        u16::from_le_bytes([frame[65], frame[66]]),
        crc16(&frame[..64])
    );
    let reports = frame_reports(&frame);
    // Report 0 and 1 carry the challenge; 2..=8 are zero except 9 (slot, CRC at 63..).
    let seqs: Vec<u8> = reports.iter().map(|r| r[7] & SEQUENCE_MASK).collect();
    assert_eq!(seqs, vec![0, 1, 9]);
    assert!(reports.iter().all(|r| r[7] & SLOT_WRITE_FLAG != 0));
    let mut assembler = FrameAssembler::default();
    let mut request = None;
    for report in &reports {
        request = assembler.push(report).unwrap();
    }
    let request = request.unwrap();
    assert_eq!(request.slot, 0x38);
    assert_eq!(&request.payload[..8], &[0xAB; 8]);
    assert!(build_frame(1, &[0; 65]).is_none());
}

#[test]
fn a_frame_with_a_bad_crc_is_dropped() {
    let frame = build_frame(slot::CHAL_HMAC_1, &[1; 64]).unwrap();
    let mut reports = frame_reports(&frame);
    reports[3][0] ^= 0x55;
    let mut assembler = FrameAssembler::default();
    let mut last = Ok(None);
    for report in &reports {
        last = assembler.push(report);
    }
    assert_eq!(last, Err(FrameFault::BadCrc));
}

#[test]
fn hmac_config_has_a_valid_crc_and_the_key_split_across_fields() {
    let key = b"12345678901234567890";
    let payload = hmac_sha1_config(key, true, &[0; 6]).unwrap();
    assert_eq!(payload.len(), CONFIG_SIZE + 6);
    assert!(crc_ok(&payload[..CONFIG_SIZE]));
    assert_eq!(&payload[22..38], &key[..16]);
    assert_eq!(&payload[16..20], &key[16..]);
    assert_eq!(payload[47] & 0x08, 0x08, "button trigger");
    assert!(hmac_sha1_config(&[0; 21], false, &[0; 6]).is_none());
}

#[test]
fn challenge_padding_round_trips_through_the_lt64_rule() {
    for message in [
        &[0u8, 0, 0, 0, 0, 0, 0, 1][..],
        &[0, 0, 0, 0, 0, 0, 0, 0],
        &[9; 8],
    ] {
        let challenge = hmac_challenge(message);
        assert_eq!(strip_challenge(&challenge), message);
    }
}

#[test]
fn rfc6238_sha1_values_from_the_slot_hmac() {
    let key = b"12345678901234567890";
    for (time, expected) in [
        (59u64, "287082"),
        (1_111_111_109, "081804"),
        (1_234_567_890, "005924"),
    ] {
        let step = (time / 30).to_be_bytes();
        assert_eq!(totp_from_hmac(&hmac_sha1(key, &step), 6), expected);
    }
    assert_eq!(
        totp_from_hmac(&hmac_sha1(key, &1u64.to_be_bytes()), 8),
        "94287082"
    );
}

proptest! {
    #[test]
    fn assembler_never_panics(reports in proptest::collection::vec(proptest::array::uniform8(any::<u8>()), 0..40)) {
        let mut assembler = FrameAssembler::default();
        for report in &reports {
            let _ = assembler.push(report);
        }
    }

    #[test]
    fn challenges_strip_back(message in proptest::collection::vec(any::<u8>(), 1..64)) {
        let challenge = hmac_challenge(&message);
        prop_assert_eq!(strip_challenge(&challenge), &message[..]);
    }
}
