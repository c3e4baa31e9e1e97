//! A private X server for tests that need a display (clipboard, KRunner), and `xclip` as a
//! second X client of it. Missing programs fail loudly with the package to install.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use super::TestBed;
use super::proc::{output_with_timeout, require_program, stop_child};

/// How long a helper X client may take.
const CLIENT_WAIT: Duration = Duration::from_secs(10);

/// Xvfb on a free display (`-displayfd`: it picks one and tells us), stopped on drop. It
/// carries the bed's environment and marker, so the bed's watchdog also ends it.
pub struct Xvfb {
    child: Child,
    pub display: String,
}

impl Xvfb {
    /// Starts Xvfb with one screen of `screen` (e.g. `640x480x24`); its log is
    /// `xvfb.log` in the bed dir.
    pub fn start(bed: &TestBed, screen: &str) -> Xvfb {
        let log = bed.dir().join("xvfb.log");
        let mut cmd = Command::new(require_program("Xvfb", "xvfb"));
        bed.apply_env(&mut cmd);
        cmd.args([
            "-displayfd",
            "1",
            "-nolisten",
            "tcp",
            "-screen",
            "0",
            screen,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).expect("create xvfb.log"));
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("test: cannot start Xvfb: {e}"));
        let stdout = child.stdout.take().expect("Xvfb stdout");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let number = rx
            .recv_timeout(CLIENT_WAIT)
            .ok()
            .map(|line| line.trim().to_owned())
            .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        let Some(number) = number else {
            stop_child(&mut child, Duration::from_secs(2));
            panic!(
                "test: Xvfb did not report a display within 10 s\n--- xvfb.log ---\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        };
        Xvfb {
            child,
            display: format!(":{number}"),
        }
    }

    /// `program args` as a client of this display with the bed's environment, bounded by
    /// 10 s: (success, stdout). `program` is (name, Debian package).
    pub fn tool(&self, bed: &TestBed, program: (&str, &str), args: &[&str]) -> (bool, String) {
        let mut cmd = Command::new(require_program(program.0, program.1));
        bed.apply_env(&mut cmd);
        cmd.env("DISPLAY", &self.display)
            .env_remove("WAYLAND_DISPLAY")
            .args(args);
        let out = output_with_timeout(&mut cmd, CLIENT_WAIT)
            .unwrap_or_else(|| panic!("test: {} {args:?} took over 10 s", program.0));
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }

    /// `xclip -selection clipboard <args>`: (success, stdout).
    pub fn xclip(&self, bed: &TestBed, args: &[&str]) -> (bool, String) {
        let mut all = vec!["-selection", "clipboard"];
        all.extend_from_slice(args);
        self.tool(bed, ("xclip", "xclip"), &all)
    }

    /// Another client takes the clipboard with `text` (xclip forks a server that keeps it
    /// until someone else takes it or Xvfb ends); returns once `xclip -o` reads it back.
    pub fn copy(&self, bed: &TestBed, text: &str) {
        let mut cmd = Command::new(require_program("xclip", "xclip"));
        bed.apply_env(&mut cmd);
        cmd.env("DISPLAY", &self.display)
            .env_remove("WAYLAND_DISPLAY")
            .args(["-selection", "clipboard", "-i"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = cmd.spawn().expect("start xclip -i");
        child
            .stdin
            .take()
            .expect("xclip stdin")
            .write_all(text.as_bytes())
            .expect("write to xclip");
        let status = child.wait().expect("wait for xclip -i");
        assert!(status.success(), "xclip -i failed: {status}");
        let deadline = Instant::now() + CLIENT_WAIT;
        while self.xclip(bed, &["-o"]).1 != text {
            assert!(
                Instant::now() < deadline,
                "xclip did not own the clipboard in 10 s"
            );
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        stop_child(&mut self.child, Duration::from_secs(2));
    }
}
