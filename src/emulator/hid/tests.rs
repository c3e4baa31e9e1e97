//! The HID clients against the emulated devices over a real bridge socket.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::otp::OtpDevice;
use super::{HidModel, bind, serve};
use crate::emulator::{Card, CardConfig, TouchPolicy};
use crate::oath::{CredentialData, OathError, Session};
use crate::transport::hid::bridge::BridgeConnection;
use crate::transport::hid::ctaphid::Timeouts;
use crate::transport::hid::otp::{
    OtpClient, OtpError, OtpTimeouts, hmac_sha1_config, totp_from_hmac,
};
use crate::transport::hid::secrets::SecretsTransport;

fn start(model: HidModel) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hid.sock");
    let listener = bind(&path).unwrap();
    std::thread::spawn(move || serve(listener, model));
    (dir, path)
}

fn nitrokey(touch: TouchPolicy) -> (tempfile::TempDir, std::path::PathBuf, Arc<Mutex<Card>>) {
    let mut config = CardConfig::nitrokey();
    config.faults.touch = touch;
    let card = Arc::new(Mutex::new(Card::new(config)));
    let (dir, path) = start(HidModel::Nitrokey {
        card: card.clone(),
        serial: 7,
    });
    (dir, path, card)
}

#[test]
fn secrets_app_over_ctaphid_runs_a_session() {
    let (_dir, path, _card) = nitrokey(TouchPolicy::default());
    let connection = BridgeConnection::connect(&path).unwrap();
    let transport = SecretsTransport::open(connection, Timeouts::default()).unwrap();
    let mut session = Session::open(transport, None).unwrap();
    session
        .put(
            &CredentialData::totp(Some("ex"), "alice", b"12345678901234567890"),
            false,
        )
        .unwrap();
    let entries = session.calculate_all(59).unwrap();
    assert_eq!(entries.len(), 1);
    let code = entries[0].code.as_ref().unwrap();
    assert_eq!(code.value, "287082");
}

#[test]
fn a_touch_wait_sends_keepalives_and_a_denied_touch_is_a_timeout_status() {
    let (_dir, path, card) = nitrokey(TouchPolicy::default());
    let connection = BridgeConnection::connect(&path).unwrap();
    let mut transport = SecretsTransport::open(connection, Timeouts::default()).unwrap();
    let prompts = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = prompts.clone();
    transport.on_keepalive(move |status| {
        if status == crate::transport::hid::ctaphid::KeepaliveStatus::UserPresenceNeeded {
            counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    });
    let mut session = Session::open(transport, None).unwrap();
    let mut data = CredentialData::totp(None, "touchy", b"12345678901234567890");
    data.touch = true;
    let credential = session.put(&data, false).unwrap();
    card.lock().unwrap().faults().set_touch(TouchPolicy::Deny {
        timeout: Duration::from_millis(400),
    });
    prompts.store(0, std::sync::atomic::Ordering::Relaxed);
    let started = Instant::now();
    let result = session.calculate_code(&credential, 59);
    assert!(matches!(result, Err(OathError::TouchTimeout)), "{result:?}");
    assert!(started.elapsed() >= Duration::from_millis(400));
    assert!(prompts.load(std::sync::atomic::Ordering::Relaxed) >= 2);
}

fn otp(touch: TouchPolicy) -> (tempfile::TempDir, std::path::PathBuf) {
    start(HidModel::YubikeyOtp {
        device: Arc::new(Mutex::new(OtpDevice::new(1234567, touch))),
        serial: 1234567,
    })
}

#[test]
fn otp_slot_programming_and_challenge_response() {
    let (_dir, path) = otp(TouchPolicy::default());
    let mut client = OtpClient::new(
        BridgeConnection::connect(&path).unwrap(),
        OtpTimeouts::default(),
    );
    assert_eq!(client.serial().unwrap(), 1234567);
    let status = client.read_status().unwrap();
    assert!(!status.is_configured(2));
    assert_eq!(client.calculate_hmac(2, &[0; 8]), Err(OtpError::Rejected));
    let config = hmac_sha1_config(b"12345678901234567890", false, &[0; 6]).unwrap();
    let status = client.write_config(2, &config).unwrap();
    assert!(status.is_configured(2));
    for (time, expected) in [(59u64, "287082"), (1_111_111_109, "081804")] {
        let hmac = client
            .calculate_hmac(2, &(time / 30).to_be_bytes())
            .unwrap();
        assert_eq!(totp_from_hmac(&hmac, 6), expected);
    }
}

#[test]
fn otp_access_code_and_touch() {
    let (_dir, path) = otp(TouchPolicy::Deny {
        timeout: Duration::from_millis(300),
    });
    let mut client = OtpClient::new(
        BridgeConnection::connect(&path).unwrap(),
        OtpTimeouts::default(),
    );
    let mut config = hmac_sha1_config(b"key", true, &[0; 6]).unwrap();
    // Give the slot an access code (offset 38 of the configuration), fix its CRC.
    config[38..44].copy_from_slice(&[1, 2, 3, 4, 5, 6]);
    let crc = !crate::transport::hid::otp::crc16(&config[..50]);
    config[50..52].copy_from_slice(&crc.to_le_bytes());
    client.write_config(1, &config).unwrap();
    let again = hmac_sha1_config(b"other", false, &[0; 6]).unwrap();
    assert_eq!(client.write_config(1, &again), Err(OtpError::Rejected));
    let touched = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = touched.clone();
    client.on_touch(move || flag.store(true, std::sync::atomic::Ordering::Relaxed));
    assert!(client.read_status().unwrap().is_touch_triggered(1));
    assert_eq!(
        client.calculate_hmac(1, &[1; 8]),
        Err(OtpError::TouchTimeout)
    );
    assert!(touched.load(std::sync::atomic::Ordering::Relaxed));
}

#[test]
fn a_vanished_device_is_disconnected() {
    let dir = tempfile::tempdir().unwrap();
    let result = BridgeConnection::connect(&dir.path().join("none.sock"));
    assert!(matches!(
        result,
        Err(crate::transport::hid::HidError::Disconnected)
    ));
}
