//! `oathbridge doctor`: checks what oathbridge depends on — pcscd, readers and keys, USB
//! interfaces, exclusive holders, gpg's scdaemon, hidraw permissions, the session bus, the
//! systemd user unit, the Secret Service and the clock — and says, for each problem, the
//! command that fixes it.
//!
//! It only looks: cards are opened in shared mode and left as they were, no other process
//! is stopped or signalled, nothing is written. Every external call is bounded by
//! [`TIMEOUT`] (PC/SC steps run on a thread that is abandoned when it does not answer).

mod bus;
mod hid;
mod host;
mod probe;
mod smartcard;
mod usb;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use clap::Args;
use serde::Serialize;

use super::GlobalArgs;
use super::output::print_json;
use crate::transport::hid::discovery;

/// The bound of every external call: a command, a D-Bus call, one PC/SC step.
pub const TIMEOUT: Duration = Duration::from_secs(2);

/// `doctor --help` ends with these.
pub const EXIT_CODES: &str = "\
Exit codes:
  0  no problem found (warnings allowed)
  1  at least one check failed (FAIL)
  2  usage error";

#[derive(Debug, Args)]
pub struct DoctorArgs {}

/// How one check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

impl Status {
    fn label(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Warn => "warn",
            Self::Fail => "FAIL",
        }
    }
}

/// One line of the report: what was found and, for a problem, the fix.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub check: &'static str,
    pub status: Status,
    pub found: String,
    pub fix: Option<String>,
    /// The items behind `found` (readers, keys, devices), for `--json`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<String>,
}

impl Check {
    fn new(check: &'static str, status: Status, found: impl Into<String>) -> Self {
        Self {
            check,
            status,
            found: found.into(),
            fix: None,
            details: Vec::new(),
        }
    }

    pub fn ok(check: &'static str, found: impl Into<String>) -> Self {
        Self::new(check, Status::Ok, found)
    }

    pub fn warn(check: &'static str, found: impl Into<String>) -> Self {
        Self::new(check, Status::Warn, found)
    }

    pub fn fail(check: &'static str, found: impl Into<String>) -> Self {
        Self::new(check, Status::Fail, found)
    }

    pub fn fix(mut self, fix: impl Into<String>) -> Self {
        self.fix = Some(fix.into());
        self
    }

    pub fn details(mut self, details: Vec<String>) -> Self {
        self.details = details;
        self
    }

    /// `FAIL  pcscd: not running … — fix: sudo systemctl enable --now pcscd.socket`
    pub fn line(&self) -> String {
        let mut line = format!("{:<4}  {}: {}", self.status.label(), self.check, self.found);
        if let Some(fix) = &self.fix {
            line.push_str(" — fix: ");
            line.push_str(fix);
        }
        line
    }
}

/// Every check, in order.
#[derive(Debug, Serialize)]
pub struct Report {
    pub checks: Vec<Check>,
}

impl Report {
    pub fn problems(&self) -> usize {
        self.count(Status::Fail)
    }

    pub fn warnings(&self) -> usize {
        self.count(Status::Warn)
    }

    fn count(&self, status: Status) -> usize {
        self.checks.iter().filter(|c| c.status == status).count()
    }

    /// "all good", or "1 problem, 2 warnings".
    pub fn summary(&self) -> String {
        let (problems, warnings) = (self.problems(), self.warnings());
        if problems == 0 && warnings == 0 {
            return "all good".to_owned();
        }
        let plural = |n: usize| if n == 1 { "" } else { "s" };
        format!(
            "{problems} problem{}, {warnings} warning{}",
            plural(problems),
            plural(warnings)
        )
    }
}

#[derive(Serialize)]
struct ReportJson<'a> {
    checks: &'a [Check],
    problems: usize,
    warnings: usize,
    summary: String,
}

/// Runs every check and prints the report: exit 0 without FAIL, 1 with one.
pub fn run(global: &GlobalArgs, _args: &DoctorArgs) -> ExitCode {
    let report = collect(global);
    if global.json {
        let json = ReportJson {
            checks: &report.checks,
            problems: report.problems(),
            warnings: report.warnings(),
            summary: report.summary(),
        };
        if let Err(error) = print_json(&json) {
            eprintln!("error: {error}");
            return ExitCode::from(1);
        }
    } else {
        for check in &report.checks {
            println!("{}", check.line());
        }
        println!("{}", report.summary());
    }
    if report.problems() > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn collect(global: &GlobalArgs) -> Report {
    let sys = Path::new("/sys");
    let pcsc = probe::probe();
    let usb_keys = usb::scan_usb(sys);
    let session = bus::probe();
    let checks = vec![
        smartcard::pcscd_check(
            &pcsc,
            find_program("pcscd").as_deref(),
            smartcard::PcscdUnits::find(),
        ),
        smartcard::readers_check(&pcsc),
        smartcard::keys_check(&pcsc),
        hid::hid_keys_check(&discovery::enumerate(&discovery::bridge_sockets(
            &global.hid_sockets,
        ))),
        usb::usb_check(
            usb_keys.as_deref(),
            pcsc.readers.as_deref(),
            pcsc.keys().count(),
        ),
        smartcard::exclusive_check(
            &pcsc,
            crate::transport::holders::describe_card_users().as_deref(),
        ),
        host::scdaemon_check(),
        usb::hidraw_check(
            &usb::scan_hidraw(sys, Path::new("/dev")),
            usb::rules_installed().as_deref(),
        ),
        bus::daemon_check(&session),
        host::unit_check(),
        bus::secrets_check(&session),
        host::clock_check(),
    ];
    Report { checks }
}

/// What a bounded external command did.
#[derive(Debug)]
pub enum Ran {
    Exited {
        success: bool,
        stdout: String,
        stderr: String,
    },
    /// It could not be started (the message says why).
    NotStarted(String),
    /// Killed after [`TIMEOUT`].
    TimedOut,
}

impl Ran {
    /// The first line of stderr (or stdout) of a finished run, for messages.
    pub fn first_line(&self) -> String {
        match self {
            Self::Exited { stdout, stderr, .. } => {
                let text = if stderr.trim().is_empty() {
                    stdout
                } else {
                    stderr
                };
                let line = text.lines().next().unwrap_or("").trim();
                line.trim_end_matches('.').to_owned()
            }
            Self::NotStarted(why) => why.clone(),
            Self::TimedOut => format!("no answer within {} s", TIMEOUT.as_secs()),
        }
    }
}

/// Runs `program args` with no stdin and captured output, killed after [`TIMEOUT`].
pub fn run_bounded(program: &Path, args: &[&str]) -> Ran {
    let mut child = match Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(error) => return Ran::NotStarted(format!("cannot run {}: {error}", program.display())),
    };
    // Pipes are read on threads: a grandchild keeping them open cannot block us.
    let (sender, receiver) = mpsc::channel();
    let pipes: [Option<Box<dyn Read + Send>>; 2] = [
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    ];
    for (index, pipe) in pipes.into_iter().enumerate() {
        let sender = sender.clone();
        std::thread::spawn(move || {
            let mut text = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut text);
            }
            let _ = sender.send((index, String::from_utf8_lossy(&text).into_owned()));
        });
    }
    let deadline = Instant::now() + TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Ran::TimedOut;
            }
            Err(error) => {
                return Ran::NotStarted(format!("waiting for {}: {error}", program.display()));
            }
        }
    };
    let mut outputs = [String::new(), String::new()];
    let read_deadline = Instant::now() + Duration::from_millis(500);
    for _ in 0..2 {
        let left = read_deadline.saturating_duration_since(Instant::now());
        match receiver.recv_timeout(left) {
            Ok((index, text)) => outputs[index] = text,
            Err(_) => break,
        }
    }
    let [stdout, stderr] = outputs;
    Ran::Exited {
        success: status.success(),
        stdout,
        stderr,
    }
}

/// `name` on `PATH` or in the sbin directories (which a user's `PATH` often lacks).
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let extra = ["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"];
    std::env::split_paths(&path)
        .chain(extra.iter().map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

pub fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `path` as one shell word, for fixes people paste.
pub fn shell_word(path: &Path) -> String {
    let text = path.display().to_string();
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+:@%,~".contains(c));
    if plain {
        text
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_counts_problems_and_warnings() {
        let mut report = Report {
            checks: vec![Check::ok("a", "fine"), Check::ok("b", "fine")],
        };
        assert_eq!(report.summary(), "all good");
        report.checks.push(Check::warn("c", "hmm"));
        assert_eq!(report.summary(), "0 problems, 1 warning");
        report
            .checks
            .push(Check::fail("d", "broken").fix("mend it"));
        report.checks.push(Check::warn("e", "hmm"));
        assert_eq!(report.summary(), "1 problem, 2 warnings");
    }

    #[test]
    fn a_line_has_status_finding_and_fix() {
        let check = Check::fail("pcscd", "not running").fix("sudo systemctl start pcscd");
        assert_eq!(
            check.line(),
            "FAIL  pcscd: not running — fix: sudo systemctl start pcscd"
        );
        assert_eq!(
            Check::ok("clock", "synchronised").line(),
            "ok    clock: synchronised"
        );
    }

    #[test]
    fn bounded_commands_are_killed_after_the_timeout() {
        let started = Instant::now();
        let ran = run_bounded(Path::new("/bin/sleep"), &["30"]);
        assert!(matches!(ran, Ran::TimedOut), "{ran:?}");
        assert!(started.elapsed() < TIMEOUT + Duration::from_secs(2));
        let ran = run_bounded(
            Path::new("/bin/sh"),
            &["-c", "echo out; echo err >&2; exit 3"],
        );
        match ran {
            Ran::Exited {
                success,
                ref stdout,
                ref stderr,
            } => {
                assert!(!success);
                assert_eq!((stdout.as_str(), stderr.as_str()), ("out\n", "err\n"));
                assert_eq!(ran.first_line(), "err");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            run_bounded(Path::new("/nonexistent/program"), &[]),
            Ran::NotStarted(_)
        ));
    }

    #[test]
    fn shell_words_are_quoted_only_when_needed() {
        assert_eq!(
            shell_word(Path::new("/home/a/.gnupg/x.conf")),
            "/home/a/.gnupg/x.conf"
        );
        assert_eq!(
            shell_word(Path::new("/home/a b/it's")),
            r"'/home/a b/it'\''s'"
        );
    }
}
