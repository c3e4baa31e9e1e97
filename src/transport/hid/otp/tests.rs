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

mod client_against_bad_devices {
    use std::time::{Duration, Instant};

    use proptest::prelude::*;

    use super::super::{OtpClient, OtpError, OtpTimeouts, RESP_PENDING_FLAG, with_crc};
    use crate::transport::hid::{FeatureReport, HidConnection, HidError, Report};

    type Answer = Box<dyn FnMut(usize) -> FeatureReport + Send>;

    /// A device that shows an idle status until a frame was written, then returns
    /// `answer(n)` for the n-th read after it; writes are accepted.
    struct Scripted {
        reads: Option<usize>,
        answer: Answer,
    }

    impl HidConnection for Scripted {
        fn write_output(&mut self, _: &Report) -> Result<(), HidError> {
            Err(HidError::Disconnected)
        }
        fn read_input(&mut self, _: u32) -> Result<Option<Report>, HidError> {
            Err(HidError::Disconnected)
        }
        fn set_feature(&mut self, report: &FeatureReport) -> Result<(), HidError> {
            if report[7] & 0x80 != 0 && report[7] & 0x1F == 9 {
                self.reads = Some(0);
            }
            Ok(())
        }
        fn get_feature(&mut self) -> Result<FeatureReport, HidError> {
            match self.reads.as_mut() {
                None => Ok(IDLE),
                Some(n) => {
                    *n += 1;
                    Ok((self.answer)(*n))
                }
            }
        }
        fn name(&self) -> &str {
            "scripted"
        }
    }

    fn client(answer: impl FnMut(usize) -> FeatureReport + Send + 'static) -> OtpClient<Scripted> {
        OtpClient::new(
            Scripted {
                reads: None,
                answer: Box::new(answer),
            },
            OtpTimeouts {
                busy_ms: 150,
                total_ms: 400,
            },
        )
    }

    const IDLE: FeatureReport = [0, 5, 7, 2, 1, 1, 0, 0];

    fn bounded(started: Instant) {
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn a_bad_crc_is_refused() {
        let mut framed = with_crc(&[0x11; 20]);
        framed[3] ^= 0xFF;
        framed.resize(28, 0);
        let mut c = client(move |n| {
            let seq = (n - 1) % 4;
            let mut report = [0u8; 8];
            report[..7].copy_from_slice(&framed[seq * 7..seq * 7 + 7]);
            report[7] = RESP_PENDING_FLAG | seq as u8;
            report
        });
        assert_eq!(
            c.calculate_hmac(2, &[0; 8]).map(|_| ()),
            Err(OtpError::BadCrc)
        );
    }

    #[test]
    fn silence_endless_touch_and_endless_data_end_in_bounded_time() {
        let started = Instant::now();
        // Always "busy" (a status byte that is neither data nor touch).
        let mut c = client(|_| [0, 0, 0, 0, 0, 0, 0, 0x01]);
        assert_eq!(
            c.calculate_hmac(1, &[1]).map(|_| ()),
            Err(OtpError::Timeout)
        );
        bounded(started);

        let started = Instant::now();
        let mut c = client(|_| [0, 5, 7, 2, 1, 2, 0, 0x20]);
        assert_eq!(
            c.calculate_hmac(1, &[1]).map(|_| ()),
            Err(OtpError::TouchTimeout)
        );
        bounded(started);

        let started = Instant::now();
        // Data reports forever: the sequence wraps after 32, which ends the answer.
        let mut c = client(|n| {
            [
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                RESP_PENDING_FLAG | ((n - 1) % 32) as u8,
            ]
        });
        assert_eq!(c.calculate_hmac(1, &[1]).map(|_| ()), Err(OtpError::BadCrc));
        bounded(started);

        let started = Instant::now();
        // SLOT_WRITE never clears.
        let mut c = OtpClient::new(
            Scripted {
                reads: Some(0),
                answer: Box::new(|_| [0, 5, 7, 2, 1, 0, 0, 0x80]),
            },
            OtpTimeouts {
                busy_ms: 150,
                total_ms: 400,
            },
        );
        assert_eq!(
            c.calculate_hmac(1, &[1]).map(|_| ()),
            Err(OtpError::Timeout)
        );
        bounded(started);
    }

    #[test]
    fn an_unchanged_programming_sequence_is_a_rejection() {
        let mut c = client(|_| IDLE);
        assert_eq!(
            c.write_config(1, &[0; 58]).map(|_| ()),
            Err(OtpError::Rejected)
        );
        assert_eq!(
            c.calculate_hmac(3, &[1]).map(|_| ()),
            Err(OtpError::BadSlot)
        );
    }

    #[test]
    fn listing_codes_does_not_wait_for_an_unannounced_touch() {
        // Slot 1 configured, no touch bit; a challenge makes it wait for a touch forever.
        let mut c = OtpClient::new(
            Scripted {
                reads: None,
                answer: Box::new(|_| [0, 5, 7, 2, 1, 1, 0, 0x20]),
            },
            OtpTimeouts {
                busy_ms: 150,
                total_ms: 30_000,
            },
        );
        let started = Instant::now();
        let entries = super::super::accounts::codes(&mut c, 59).unwrap();
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].credential.id.name, "slot 1");
        assert_eq!(entries[0].credential.touch, Some(true));
        assert!(entries[0].code.is_none());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(8))]
        #[test]
        fn any_device_answers_end_without_panic(reports in proptest::collection::vec(proptest::array::uniform8(any::<u8>()), 1..64)) {
            let started = Instant::now();
            let mut c = client(move |n| reports[(n - 1) % reports.len()]);
            c.on_touch(|| {});
            let _ = c.calculate_hmac(2, &[1, 2, 3]);
            let _ = c.serial();
            prop_assert!(started.elapsed() < Duration::from_secs(3));
        }
    }
}
