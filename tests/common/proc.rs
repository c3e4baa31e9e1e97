//! Process helpers for the test bed: locating programs, signals without libc, bounded waits,
//! and the watchdog that cleans up after a test process that dies without running `Drop`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// The install command printed whenever a system program is missing.
pub const INSTALL_HINT: &str = "apt-get install -y --no-install-recommends pcscd vsmartcard-vpcd \
     pcsc-tools libpcsclite-dev pkg-config dbus-daemon dbus-bin \
     (or run `bash scripts/test.sh`, which installs everything and runs the tests)";

/// Finds `name` on `PATH` (plus the sbin directories, which non-root `PATH`s often lack).
/// Panics with the install command if it is missing: the test bed never skips silently.
pub fn require_program(name: &str, package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let extra = ["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"];
    let dirs = std::env::split_paths(&path).chain(extra.iter().map(PathBuf::from));
    for dir in dirs {
        let candidate = dir.join(name);
        if is_executable(&candidate) {
            return candidate;
        }
    }
    panic!(
        "test bed: required program `{name}` (Debian package `{package}`) was not found on PATH \
         or in /usr/sbin. Install it with:\n    {INSTALL_HINT}"
    );
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Sends `signal` (e.g. "TERM", "KILL") to `pid` with the shell's `kill` builtin (no libc needed).
/// Errors (process already gone) are ignored.
pub fn signal(pid: u32, signal: &str) {
    let _ = Command::new("sh")
        .arg("-c")
        .arg("kill -s \"$0\" \"$1\" 2>/dev/null")
        .arg(signal)
        .arg(pid.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// True while `/proc/<pid>` exists and is not a zombie.
pub fn pid_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // Format: "pid (comm) S ..."; comm may contain spaces and parentheses.
        Ok(stat) => match stat.rfind(')') {
            Some(i) => !matches!(stat[i + 1..].trim_start().chars().next(), Some('Z' | 'X')),
            None => true,
        },
        Err(_) => false,
    }
}

/// Stops a child: SIGTERM, then SIGKILL after `grace`, then reaps it. Never panics.
pub fn stop_child(child: &mut Child, grace: Duration) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    signal(child.id(), "TERM");
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Kills a child at once (SIGKILL, like pulling a card out) and reaps it. Never panics.
pub fn kill_child(child: &mut Child) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Stops a process that is not our child (e.g. a forked dbus-daemon): SIGTERM, wait up to
/// `grace` for it to disappear, then SIGKILL.
pub fn stop_pid(pid: u32, grace: Duration) {
    if !pid_alive(pid) {
        return;
    }
    signal(pid, "TERM");
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if !pid_alive(pid) {
            return;
        }
        thread::sleep(Duration::from_millis(10));
    }
    signal(pid, "KILL");
    let deadline = Instant::now() + Duration::from_secs(2);
    while pid_alive(pid) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
}

/// PIDs (other than ours) whose environment contains exactly `entry` ("NAME=value").
pub fn pids_with_env(entry: &str) -> Vec<u32> {
    let me = std::process::id();
    let mut found = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return found;
    };
    for ent in dir.flatten() {
        let Some(pid) = ent.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        if let Ok(env) = std::fs::read(ent.path().join("environ"))
            && env.split(|b| *b == 0).any(|e| e == entry.as_bytes())
            && pid_alive(pid)
        {
            found.push(pid);
        }
    }
    found
}

/// Runs `cmd` to completion with stdout/stderr captured, killing it after `timeout`.
/// Returns `None` on timeout (after the kill). Panics only if the program cannot be started.
pub fn output_with_timeout(cmd: &mut Command, timeout: Duration) -> Option<Output> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("test bed: cannot start {cmd:?}: {e}"));
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(timeout) {
        Ok(out) => Some(out.unwrap_or_else(|e| panic!("test bed: waiting for {pid}: {e}"))),
        Err(_) => {
            signal(pid, "KILL");
            let _ = rx.recv_timeout(Duration::from_secs(5));
            None
        }
    }
}

/// A `sh` process that cleans up the bed if the test process dies without running `Drop`
/// (SIGKILL, `exit()` with a bed in a `static`, abort on double panic).
///
/// Its stdin is a pipe only we hold (std opens pipes close-on-exec, so no other child
/// inherits it). On EOF it kills every process carrying the bed's marker environment entry
/// and removes the directory unless it is kept. `Drop` of the bed writes `done` first,
/// so a normal teardown leaves the cleanup to the bed.
pub struct Watchdog {
    child: Child,
    stdin: Option<ChildStdin>,
}

const WATCHDOG_SCRIPT: &str = r#"
trap '' INT HUP TERM
marker="$0"; dir="$1"; keep="$2"
while IFS= read -r line; do
  [ "$line" = done ] && exit 0
done
pids=$(grep -lzxF -- "$marker" /proc/[0-9]*/environ 2>/dev/null | cut -d/ -f3 | grep -vx "$$")
[ -n "$pids" ] && kill -TERM $pids 2>/dev/null
sleep 1
[ -n "$pids" ] && kill -KILL $pids 2>/dev/null
[ "$keep" = 1 ] || rm -rf -- "$dir"
exit 0
"#;

impl Watchdog {
    pub fn start(marker: &str, dir: &Path, keep: bool) -> Watchdog {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(WATCHDOG_SCRIPT)
            .arg(marker)
            .arg(dir)
            .arg(if keep { "1" } else { "0" })
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .env_remove(super::MARKER_VAR)
            .spawn()
            .unwrap_or_else(|e| panic!("test bed: cannot start the watchdog `sh`: {e}"));
        let stdin = child.stdin.take();
        Watchdog { child, stdin }
    }

    /// Normal teardown: tell the watchdog to exit without cleaning up, and reap it.
    pub fn dismiss(&mut self) {
        if let Some(mut stdin) = self.stdin.take() {
            let _ = stdin.write_all(b"done\n");
        }
        stop_child(&mut self.child, Duration::from_secs(2));
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.dismiss();
    }
}
