//! gnome-keyring as the Secret Service on a test bed's private bus.

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::TestBed;

/// Start gnome-keyring's Secret Service on the bed's bus, unlocked, in the bed's private
/// HOME and runtime dir (the bed's teardown ends it with the other bed processes).
pub fn start_keyring(bed: &TestBed) {
    let program = "/usr/bin/gnome-keyring-daemon";
    assert!(
        std::path::Path::new(program).exists(),
        "gnome-keyring-daemon missing: apt-get install gnome-keyring (scripts/test.sh does)"
    );
    for (key, value) in bed.env() {
        if key == "XDG_RUNTIME_DIR" || key == "HOME" {
            std::fs::create_dir_all(&value).expect("private dir");
            std::fs::set_permissions(&value, std::fs::Permissions::from_mode(0o700))
                .expect("chmod");
        }
    }
    let mut command = Command::new("sh");
    bed.apply_env(&mut command);
    let status = command
        .args(["-c", "printf testpass | gnome-keyring-daemon --unlock --components=secrets --daemonize >/dev/null"])
        .status()
        .expect("run gnome-keyring-daemon");
    assert!(status.success(), "gnome-keyring-daemon failed to start");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut busctl = Command::new("busctl");
        bed.apply_env(&mut busctl);
        let found = busctl
            .args(["--user", "status", "org.freedesktop.secrets"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if found {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the Secret Service did not appear on the test bus"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
