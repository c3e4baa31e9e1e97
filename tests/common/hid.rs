//! A HID-only emulated key: `oathbridge emulate --hid unix:PATH` without vpcd, as a
//! Nitrokey 3 (CTAPHID) or a YubiKey OTP application reached through its bridge socket.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::TestBed;
use super::proc::stop_child;

/// An emulator process serving `socket`, stopped when dropped (also when a test fails).
pub struct HidEmulator(Child);

impl HidEmulator {
    /// Start it with `args` (e.g. `--profile nitrokey`) and wait until it listens. Its log
    /// is `<bed dir>/<socket file stem>.log`.
    pub fn start(bed: &TestBed, socket: &Path, args: &[&str]) -> HidEmulator {
        let name = socket.file_stem().and_then(|s| s.to_str()).unwrap_or("hid");
        let log = std::fs::File::create(bed.dir().join(format!("{name}.log"))).expect("log");
        let child = Command::new(env!("CARGO_BIN_EXE_oathbridge"))
            .arg("emulate")
            .args(args)
            .arg("--hid")
            .arg(format!("unix:{}", socket.display()))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup"))
            .stderr(log)
            .spawn()
            .expect("start the HID emulator");
        let emulator = HidEmulator(child);
        wait_socket(socket);
        emulator
    }

    /// Pulled out: SIGKILL, no goodbye (its socket file even stays behind).
    pub fn pull(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for HidEmulator {
    fn drop(&mut self) {
        stop_child(&mut self.0, Duration::from_secs(3));
    }
}

/// Wait until an emulator listens on `socket`.
pub fn wait_socket(socket: &Path) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::os::unix::net::UnixStream::connect(socket).is_err() {
        assert!(
            Instant::now() < deadline,
            "no HID bridge at {}",
            socket.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
