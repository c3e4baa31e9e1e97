//! Running the real `oathbridge` binary with input on stdin, bounded in time.

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use super::TestBed;

/// What one run of the binary produced.
pub struct CliRun {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Run `command` with `stdin`; a hung client fails the test after 60 s instead of hanging
/// CI, and a panic (exit 101) always fails it.
pub fn run_command(mut command: Command, stdin: &str) -> CliRun {
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("spawn oathbridge");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        // The command may refuse before reading its input: a closed pipe is fine.
        .ok();
    let pid = child.id();
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = sender.send(child.wait_with_output());
    });
    let output: Output = match receiver.recv_timeout(Duration::from_secs(60)) {
        Ok(result) => result.expect("wait oathbridge"),
        Err(_) => {
            super::proc::signal(pid, "KILL");
            panic!("oathbridge did not finish within 60 s");
        }
    };
    let run = CliRun {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    assert_ne!(run.code, 101, "oathbridge panicked: {}", run.stderr);
    run
}

/// `oathbridge <args>` with the bed's environment.
pub fn run_cli(bed: &TestBed, args: &[&str], stdin: &str) -> CliRun {
    run_command(bed.command(args), stdin)
}
