//! `oathbridge emulate`: run a software YKOATH card behind pcscd's vpcd driver and/or as a
//! HID device on a bridge socket (`--hid unix:PATH`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tracing::info;

use crate::emulator::{
    Card, CardConfig, DEFAULT_CHUNK_SIZE, Faults, Profile, TouchPolicy, hid, vpcd,
};

#[derive(clap::Args, Debug)]
pub struct EmulateArgs {
    /// vpcd address to connect to (the card is the TCP client), e.g. 127.0.0.1:35963
    #[arg(long, value_name = "HOST:PORT", required_unless_present = "hid")]
    pub vpcd: Option<String>,
    /// Also (or only) be a USB HID device on this bridge socket: the nitrokey profile
    /// speaks CTAPHID (Secrets App over vendor command 0x70), yubikey-otp the YubiKey OTP
    /// protocol; with --vpcd as well, both reach the same card
    #[arg(long, value_name = "unix:PATH", value_parser = crate::emulator::hid::parse_address)]
    pub hid: Option<PathBuf>,
    /// Device to imitate
    #[arg(long, value_enum, default_value_t = ProfileArg::Yubikey)]
    pub profile: ProfileArg,
    /// Keep credentials, password and salt in this JSON file (mode 0600), or in a file
    /// sealed by a FIDO2 key (`oathbridge virtual-key create`; opening asks for a touch)
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// The FIDO2 key that opens a sealed --state file: auto, /dev/hidrawN or soft:FILE
    /// (default $OATHBRIDGE_FIDO, else auto)
    #[arg(long, value_name = "ID")]
    pub fido: Option<crate::fido::AuthenticatorSpec>,
    /// Whether the simulated user touches the card when asked
    #[arg(long, value_enum, default_value_t = TouchArg::Approve)]
    pub touch: TouchArg,
    /// With --touch approve: how long the touch takes
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub touch_delay_ms: u64,
    /// With --touch deny: how long the card waits before answering 6982
    #[arg(long, value_name = "MS", default_value_t = 15_000)]
    pub touch_timeout_ms: u64,
    /// Chain responses longer than this with 61XX (0 = never chain)
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_CHUNK_SIZE)]
    pub chunk_size: usize,
    /// Inject a fault (repeatable): power-loss-after=N, truncated, malformed,
    /// endless-more-data, oversized
    #[arg(long = "fault", value_name = "FAULT")]
    pub faults: Vec<FaultArg>,
    /// Serial number the nitrokey profile reports in SELECT
    #[arg(long, value_name = "N")]
    pub serial: Option<u32>,
    /// Answer every APDU this long after it arrives, like a key over USB
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub apdu_latency_ms: u64,
    /// Answer this instruction after MS instead (repeatable): a name (select, list,
    /// calculate, calculate-all, send-remaining, put, delete, rename, validate, set-code,
    /// reset) or a hex INS byte, e.g. calculate=40 or a2=40
    #[arg(long = "latency", value_name = "INS=MS")]
    pub latency: Vec<vpcd::InstructionLatency>,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProfileArg {
    Yubikey,
    Nitrokey,
    Canokey,
    // A YubiKey whose HID side is the OTP application (two slots).
    YubikeyOtp,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum TouchArg {
    Approve,
    Deny,
}

/// One `--fault` switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultArg {
    PowerLossAfter(u64),
    Truncated,
    Malformed,
    EndlessMoreData,
    Oversized,
}

impl FromStr for FaultArg {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(count) = s.strip_prefix("power-loss-after=") {
            return count
                .parse()
                .map(Self::PowerLossAfter)
                .map_err(|_| format!("power-loss-after needs a number of APDUs, got {count:?}"));
        }
        match s {
            "truncated" => Ok(Self::Truncated),
            "malformed" => Ok(Self::Malformed),
            "endless-more-data" => Ok(Self::EndlessMoreData),
            "oversized" => Ok(Self::Oversized),
            _ => Err(format!(
                "unknown fault {s:?} (expected power-loss-after=N, truncated, malformed, \
                 endless-more-data or oversized)"
            )),
        }
    }
}

impl EmulateArgs {
    fn card_config(&self) -> CardConfig {
        let profile = match self.profile {
            ProfileArg::Yubikey | ProfileArg::YubikeyOtp => Profile::YubiKey,
            ProfileArg::Nitrokey => Profile::Nitrokey,
            ProfileArg::Canokey => Profile::CanoKey,
        };
        let touch = match self.touch {
            TouchArg::Approve => TouchPolicy::Approve {
                delay: Duration::from_millis(self.touch_delay_ms),
            },
            TouchArg::Deny => TouchPolicy::Deny {
                timeout: Duration::from_millis(self.touch_timeout_ms),
            },
        };
        let mut faults = Faults {
            touch,
            ..Faults::default()
        };
        for fault in &self.faults {
            match *fault {
                FaultArg::PowerLossAfter(n) => faults.power_loss_after = Some(n),
                FaultArg::Truncated => faults.truncated_responses = true,
                FaultArg::Malformed => faults.malformed_tlv = true,
                FaultArg::EndlessMoreData => faults.endless_more_data = true,
                FaultArg::Oversized => faults.oversized_response = true,
            }
        }
        let defaults = CardConfig::for_profile(profile);
        CardConfig {
            profile,
            serial: self.serial.unwrap_or(defaults.serial),
            chunk_size: self.chunk_size,
            faults,
            ..defaults
        }
    }
}

pub fn run(args: EmulateArgs) -> ExitCode {
    if let Some(path) = &args.hid {
        // Before any thread starts: SIGTERM then removes the socket ("unplugs" the device).
        hid::remove_on_exit(path.clone());
    }
    let config = args.card_config();
    let profile = config.profile;
    let serial = config.serial;
    let touch = config.faults.touch;
    let mut card = Card::new(config.clone());
    if let Some(path) = args
        .state
        .as_ref()
        .filter(|p| crate::fido::vault::is_sealed_file(p))
    {
        card = match super::virtual_key::open_card(path, args.fido.as_ref(), config) {
            Ok(card) => card,
            Err(error) => return error.report(),
        };
    } else if let Some(path) = &args.state {
        if path.exists() {
            super::virtual_key::warn_clear_text(path);
        }
        card = match card.with_state_file(path) {
            Ok(card) => card,
            Err(e) => {
                eprintln!("oathbridge emulate: {e}");
                return ExitCode::FAILURE;
            }
        };
    }
    info!(
        "emulating a {profile} card with {} credential(s)",
        card.credential_count()
    );
    let card = Arc::new(Mutex::new(card));
    let listener = match args.hid.as_deref().map(hid::bind).transpose() {
        Ok(listener) => listener,
        Err(e) => {
            let path = args
                .hid
                .as_deref()
                .unwrap_or_else(|| std::path::Path::new(""));
            eprintln!("oathbridge emulate: HID bridge {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    };
    let hid_server = listener.map(|listener| {
        let model = match args.profile {
            ProfileArg::YubikeyOtp => hid::HidModel::YubikeyOtp {
                device: Arc::new(Mutex::new(hid::otp::OtpDevice::new(serial, touch))),
                serial,
            },
            _ => hid::HidModel::Nitrokey {
                card: card.clone(),
                serial,
            },
        };
        std::thread::spawn(move || {
            hid::serve(listener, model).map_err(|e| format!("HID bridge: {e}"))
        })
    });
    let Some(address) = &args.vpcd else {
        let result = match hid_server.map(std::thread::JoinHandle::join) {
            Some(Ok(result)) => result,
            _ => Err("HID bridge stopped".to_owned()),
        };
        return match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("oathbridge emulate: {e}");
                ExitCode::FAILURE
            }
        };
    };
    info!("connecting to vpcd at {address}");
    let latency = vpcd::Latency::new(
        Duration::from_millis(args.apdu_latency_ms),
        args.latency.clone(),
    );
    match vpcd::serve_with_latency(address, card, &latency) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("oathbridge emulate: vpcd address {address}: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(clap::Parser, Debug)]
    struct Harness {
        #[command(flatten)]
        args: EmulateArgs,
    }

    #[test]
    fn flags_build_the_card_config() {
        let harness = Harness::try_parse_from([
            "emulate",
            "--vpcd",
            "127.0.0.1:35963",
            "--profile",
            "nitrokey",
            "--touch",
            "deny",
            "--touch-timeout-ms",
            "50",
            "--chunk-size",
            "16",
            "--fault",
            "power-loss-after=3",
            "--fault",
            "truncated",
            "--serial",
            "7",
        ])
        .unwrap();
        let config = harness.args.card_config();
        assert_eq!(config.profile, Profile::Nitrokey);
        assert_eq!(config.serial, 7);
        assert_eq!(config.chunk_size, 16);
        assert_eq!(config.faults.power_loss_after, Some(3));
        assert!(config.faults.truncated_responses);
        assert_eq!(
            config.faults.touch,
            TouchPolicy::Deny {
                timeout: Duration::from_millis(50)
            }
        );
        assert!(Harness::try_parse_from(["emulate", "--vpcd", "x:1", "--fault", "bogus"]).is_err());
        assert!(Harness::try_parse_from(["emulate"]).is_err());
    }
}
