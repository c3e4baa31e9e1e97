//! The device side of the YubiKey OTP HID protocol (profile `yubikey-otp`): status,
//! serial, slot configuration writes (with access codes) and HMAC-SHA1
//! challenge-response, with a simulated touch for button-triggered slots.
//!
//! Only HMAC-SHA1 challenge-response configurations are understood; others are stored as
//! "configured" and refuse challenges. Slots live in memory only. This emulator reports
//! `SLOTn_TOUCH` for button-triggered challenge-response slots (so clients can prompt).

use std::time::Instant;

use hmac::{Hmac, Mac};
use sha1::Sha1;
use tracing::{debug, info, warn};
use zeroize::Zeroizing;

use crate::emulator::TouchPolicy;
use crate::transport::hid::FeatureReport;
use crate::transport::hid::otp::config::{
    ACC_CODE_OFFSET, ACC_CODE_SIZE, CFG_FLAGS_OFFSET, CONFIG_SIZE, KEY_OFFSET, TKT_FLAGS_OFFSET,
    UID_OFFSET, flags, strip_challenge,
};
use crate::transport::hid::otp::{
    DUMMY_REPORT_WRITE, FrameAssembler, REPORT_DATA_SIZE, RESP_PENDING_FLAG,
    RESP_TIMEOUT_WAIT_FLAG, Request, Status, cfgstate, crc_ok, slot, with_crc,
};

/// One configured slot.
struct SlotConfig {
    /// HMAC-SHA1 key when the slot is configured for HMAC challenge-response.
    hmac_key: Option<Zeroizing<[u8; 20]>>,
    lt64: bool,
    button: bool,
    access_code: [u8; ACC_CODE_SIZE],
}

enum Mode {
    Idle,
    /// Sending data reports; after the last one, the first again (the end marker).
    Responding {
        reports: Vec<FeatureReport>,
        next: usize,
    },
    /// Waiting for the simulated touch of an HMAC challenge.
    Touch {
        until: Instant,
        approve: bool,
        response: Zeroizing<Vec<u8>>,
    },
}

/// The OTP application of a YubiKey 5.
pub struct OtpDevice {
    version: [u8; 3],
    serial: u32,
    prog_seq: u8,
    slots: [Option<SlotConfig>; 2],
    assembler: FrameAssembler,
    mode: Mode,
    touch: TouchPolicy,
}

impl OtpDevice {
    pub fn new(serial: u32, touch: TouchPolicy) -> Self {
        Self {
            version: [5, 7, 2],
            serial,
            prog_seq: 0,
            slots: [None, None],
            assembler: FrameAssembler::default(),
            mode: Mode::Idle,
            touch,
        }
    }

    fn status(&self) -> Status {
        let mut level = 0;
        for (index, slot) in self.slots.iter().enumerate() {
            if let Some(config) = slot {
                level |= if index == 0 {
                    cfgstate::SLOT1_VALID
                } else {
                    cfgstate::SLOT2_VALID
                };
                if config.button {
                    level |= if index == 0 {
                        cfgstate::SLOT1_TOUCH
                    } else {
                        cfgstate::SLOT2_TOUCH
                    };
                }
            }
        }
        Status {
            version: self.version,
            prog_seq: self.prog_seq,
            touch_level: level,
        }
    }

    /// HID SET_REPORT from the host.
    pub fn set_feature(&mut self, report: &FeatureReport) {
        if report[REPORT_DATA_SIZE] == DUMMY_REPORT_WRITE {
            self.mode = Mode::Idle;
            return;
        }
        match self.assembler.push(report) {
            Ok(Some(request)) => {
                self.mode = Mode::Idle;
                self.handle(&request);
            }
            Ok(None) => {}
            Err(fault) => debug!(?fault, "OTP frame dropped"),
        }
    }

    /// HID GET_REPORT from the host.
    pub fn get_feature(&mut self) -> FeatureReport {
        match &mut self.mode {
            Mode::Idle => self.status().to_report(0),
            Mode::Responding { reports, next } => {
                let report = reports[*next % reports.len()];
                *next = (*next + 1) % reports.len();
                report
            }
            Mode::Touch {
                until,
                approve,
                response,
            } => {
                if Instant::now() < *until {
                    return self.status().to_report(RESP_TIMEOUT_WAIT_FLAG);
                }
                if *approve {
                    let reports = data_reports(response);
                    self.mode = Mode::Responding { reports, next: 0 };
                    self.get_feature()
                } else {
                    info!("OTP: nobody touched the key");
                    self.mode = Mode::Idle;
                    self.status().to_report(0)
                }
            }
        }
    }

    fn handle(&mut self, request: &Request) {
        match request.slot {
            slot::CONFIG_1 => self.configure(0, &request.payload),
            slot::CONFIG_2 => self.configure(1, &request.payload),
            slot::DEVICE_SERIAL => {
                self.mode = Mode::Responding {
                    reports: data_reports(&self.serial.to_be_bytes()),
                    next: 0,
                }
            }
            slot::CHAL_HMAC_1 => self.challenge(0, &request.payload),
            slot::CHAL_HMAC_2 => self.challenge(1, &request.payload),
            other => debug!(slot = other, "OTP command not emulated; ignored"),
        }
    }

    fn configure(&mut self, index: usize, payload: &[u8; 64]) {
        let config = &payload[..CONFIG_SIZE];
        let given_code = &payload[CONFIG_SIZE..CONFIG_SIZE + ACC_CODE_SIZE];
        if let Some(current) = &self.slots[index]
            && current.access_code != [0; ACC_CODE_SIZE]
            && current.access_code != given_code
        {
            warn!(
                slot = index + 1,
                "OTP: wrong access code; configuration refused"
            );
            return;
        }
        if config.iter().all(|&b| b == 0) {
            self.slots[index] = None;
        } else {
            if !crc_ok(config) {
                warn!(slot = index + 1, "OTP: configuration CRC wrong; refused");
                return;
            }
            let chal_hmac = config[TKT_FLAGS_OFFSET] & flags::TKT_CHAL_RESP != 0
                && config[CFG_FLAGS_OFFSET] & flags::CFG_CHAL_HMAC == flags::CFG_CHAL_HMAC;
            let hmac_key = chal_hmac.then(|| {
                let mut key = Zeroizing::new([0u8; 20]);
                key[..16].copy_from_slice(&config[KEY_OFFSET..KEY_OFFSET + 16]);
                key[16..].copy_from_slice(&config[UID_OFFSET..UID_OFFSET + 4]);
                key
            });
            let mut access_code = [0u8; ACC_CODE_SIZE];
            access_code.copy_from_slice(&config[ACC_CODE_OFFSET..ACC_CODE_OFFSET + ACC_CODE_SIZE]);
            self.slots[index] = Some(SlotConfig {
                hmac_key,
                lt64: config[CFG_FLAGS_OFFSET] & flags::CFG_HMAC_LT64 != 0,
                button: config[CFG_FLAGS_OFFSET] & flags::CFG_CHAL_BTN_TRIG != 0,
                access_code,
            });
        }
        self.prog_seq = if self.slots.iter().all(Option::is_none) {
            0
        } else {
            self.prog_seq.wrapping_add(1).max(1)
        };
        info!(slot = index + 1, "OTP: slot configuration written");
    }

    fn challenge(&mut self, index: usize, payload: &[u8; 64]) {
        let Some(config) = &self.slots[index] else {
            debug!(slot = index + 1, "OTP: challenge to an empty slot");
            return;
        };
        let Some(key) = &config.hmac_key else {
            debug!(
                slot = index + 1,
                "OTP: slot is not an HMAC challenge-response slot"
            );
            return;
        };
        let message = if config.lt64 {
            strip_challenge(payload)
        } else {
            &payload[..]
        };
        let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(&key[..]) else {
            return;
        };
        mac.update(message);
        let response = Zeroizing::new(mac.finalize().into_bytes().to_vec());
        if config.button {
            let (approve, wait) = match self.touch {
                TouchPolicy::Approve { delay } => (true, delay),
                TouchPolicy::Deny { timeout } => (false, timeout),
            };
            self.mode = Mode::Touch {
                until: Instant::now() + wait,
                approve,
                response,
            };
        } else {
            self.mode = Mode::Responding {
                reports: data_reports(&response),
                next: 0,
            };
        }
    }
}

/// `data` + CRC in reports flagged RESP_PENDING with sequence numbers.
fn data_reports(data: &[u8]) -> Vec<FeatureReport> {
    let framed = Zeroizing::new(with_crc(data));
    framed
        .chunks(REPORT_DATA_SIZE)
        .enumerate()
        .map(|(seq, chunk)| {
            let mut report = [0u8; 8];
            report[..chunk.len()].copy_from_slice(chunk);
            report[REPORT_DATA_SIZE] = RESP_PENDING_FLAG | seq as u8;
            report
        })
        .collect()
}
