//! Checks 5, 8 and 10, on this machine: gpg's scdaemon settings, the systemd user unit,
//! and whether the clock is synchronised.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::{Check, Ran, find_program, is_executable, run_bounded, shell_word};

const UNIT: &str = "oathbridge.service";
/// Where distributions put scdaemon (it is not on `PATH`).
const SCDAEMON_PATHS: &[&str] = &[
    "/usr/lib/gnupg/scdaemon",
    "/usr/lib/gnupg2/scdaemon",
    "/usr/libexec/scdaemon",
    "/usr/libexec/gnupg/scdaemon",
    "/usr/local/libexec/scdaemon",
];

/// `$GNUPGHOME`, else `~/.gnupg`.
fn gnupg_home() -> Option<PathBuf> {
    if let Some(home) = std::env::var_os("GNUPGHOME").filter(|h| !h.is_empty()) {
        return Some(home.into());
    }
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty())?;
    Some(PathBuf::from(home).join(".gnupg"))
}

fn scdaemon_installed() -> bool {
    SCDAEMON_PATHS.iter().any(|p| is_executable(Path::new(p))) || find_program("scdaemon").is_some()
}

/// Check 5: gpg's scdaemon.conf.
pub fn scdaemon_check() -> Check {
    let Some(dir) = gnupg_home() else {
        return Check::warn(
            "scdaemon",
            "not checked: neither $GNUPGHOME nor $HOME is set",
        );
    };
    let path = dir.join("scdaemon.conf");
    let read = fs::read(&path).map(|bytes| String::from_utf8_lossy(&bytes).into_owned());
    scdaemon_verdict(&path, read, scdaemon_installed())
}

/// Option names set in an scdaemon.conf (first word of each line, `#` comments skipped).
fn options(text: &str) -> Vec<&str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_whitespace().next())
        .collect()
}

pub fn scdaemon_verdict(path: &Path, read: io::Result<String>, installed: bool) -> Check {
    let word = shell_word(path);
    let reload = "gpgconf --reload scdaemon";
    let text = match read {
        Ok(text) => text,
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            return if installed {
                Check::warn(
                    "scdaemon",
                    format!(
                        "no {}: gpg's scdaemon may take the key for itself (its own CCID \
                         driver, or pcscd without sharing)",
                        path.display()
                    ),
                )
                .fix(format!(
                    "printf 'pcsc-shared\\ndisable-ccid\\n' >> {word} && {reload} \
                     (disable-ccid makes gpg use pcscd too)"
                ))
            } else {
                Check::ok("scdaemon", "gpg's scdaemon is not installed")
            };
        }
        Err(error) => {
            let fix = if path.is_dir() {
                format!(
                    "it must be a file: `mv {word} {word}.old && printf \
                     'pcsc-shared\\ndisable-ccid\\n' > {word}`"
                )
            } else {
                format!("`chmod u+r {word}` (or `sudo chown $USER {word}`)")
            };
            return Check::warn(
                "scdaemon",
                format!("cannot read {}: {error}", path.display()),
            )
            .fix(fix);
        }
    };
    let set = options(&text);
    let shared = set.contains(&"pcsc-shared");
    let no_ccid = set.contains(&"disable-ccid");
    let shown = path.display();
    match (shared, no_ccid) {
        (true, true) => Check::ok(
            "scdaemon",
            format!("{shown} has pcsc-shared and disable-ccid"),
        ),
        (true, false) => Check::warn(
            "scdaemon",
            format!(
                "{shown} has pcsc-shared but not disable-ccid: scdaemon's own CCID driver may \
                 take the USB key away from pcscd"
            ),
        )
        .fix(format!("echo disable-ccid >> {word} && {reload}")),
        (false, true) => Check::warn(
            "scdaemon",
            format!("{shown} lacks pcsc-shared: scdaemon opens the card through pcscd exclusively"),
        )
        .fix(format!("echo pcsc-shared >> {word} && {reload}")),
        (false, false) => Check::warn(
            "scdaemon",
            format!(
                "{shown} lacks pcsc-shared and disable-ccid: scdaemon may take the key \
                 exclusively"
            ),
        )
        .fix(format!(
            "printf 'pcsc-shared\\ndisable-ccid\\n' >> {word} && {reload} (disable-ccid \
             makes gpg use pcscd too)"
        )),
    }
}

/// Check 8: `systemctl --user is-enabled/is-active oathbridge.service`, when there is a
/// systemd user manager.
pub fn unit_check() -> Check {
    let Some(systemctl) = find_program("systemctl") else {
        return Check::warn("user-unit", "not checked: no systemctl");
    };
    let manager = std::env::var_os("XDG_RUNTIME_DIR")
        .filter(|d| !d.is_empty())
        .map(|dir| PathBuf::from(dir).join("systemd/private"));
    if !manager.as_deref().is_some_and(Path::exists) {
        return Check::warn(
            "user-unit",
            "not checked: no systemd user manager ($XDG_RUNTIME_DIR/systemd/private)",
        );
    }
    let state = |verb: &str| match run_bounded(&systemctl, &["--user", verb, UNIT]) {
        Ran::Exited { stdout, .. } => Ok(stdout.lines().next().unwrap_or("").trim().to_owned()),
        other => Err(other.first_line()),
    };
    match (state("is-enabled"), state("is-active")) {
        (Ok(enabled), Ok(active)) => unit_verdict(&enabled, &active),
        (Err(error), _) | (_, Err(error)) => {
            Check::warn("user-unit", format!("not checked: systemctl: {error}"))
        }
    }
}

pub fn unit_verdict(enabled: &str, active: &str) -> Check {
    match (enabled, active) {
        ("" | "not-found", _) => Check::warn(
            "user-unit",
            format!("{UNIT} is not installed: the daemon does not start with the session"),
        )
        .fix("`bash scripts/install.sh --user` from the oathbridge sources"),
        ("masked", _) => Check::warn("user-unit", format!("{UNIT} is masked"))
            .fix(format!("systemctl --user unmask {UNIT}")),
        (_, "failed") => Check::warn("user-unit", format!("{UNIT} failed")).fix(format!(
            "read `journalctl --user -u {UNIT} -n 50`, then `systemctl --user restart {UNIT}`"
        )),
        (enabled, active) => Check::ok("user-unit", format!("{UNIT} {enabled}, {active}")),
    }
}

/// Check 10: TOTP needs the right time; ask timedatectl whether NTP keeps it.
pub fn clock_check() -> Check {
    let now = humantime::format_rfc3339_seconds(SystemTime::now());
    let compare = "compare `date -u` with a trusted clock; codes need it right to within ~30 s";
    let Some(timedatectl) = find_program("timedatectl") else {
        return Check::warn(
            "clock",
            format!("not checked: no timedatectl; system time {now}"),
        )
        .fix(compare);
    };
    match run_bounded(&timedatectl, &["show", "-p", "NTPSynchronized", "--value"]) {
        Ran::Exited {
            success: true,
            stdout,
            ..
        } if stdout.trim() == "yes" => Check::ok("clock", format!("synchronised by NTP ({now})")),
        Ran::Exited {
            success: true,
            stdout,
            ..
        } if stdout.trim() == "no" => Check::warn(
            "clock",
            format!("not synchronised by NTP ({now}): a clock off by ~30 s gives refused codes"),
        )
        .fix("sudo timedatectl set-ntp true"),
        other => Check::warn(
            "clock",
            format!(
                "not checked: timedatectl: {}; system time {now}",
                other.first_line()
            ),
        )
        .fix(compare),
    }
}

#[cfg(test)]
mod tests {
    use super::super::Status;
    use super::*;

    fn verdict(text: &str) -> Check {
        scdaemon_verdict(
            Path::new("/h/.gnupg/scdaemon.conf"),
            Ok(text.to_owned()),
            true,
        )
    }

    #[test]
    fn scdaemon_conf_needs_pcsc_shared_and_disable_ccid() {
        let good = verdict("# mine\npcsc-shared\ndisable-ccid\nreader-port Yubico\n");
        assert_eq!(good.status, Status::Ok);
        let line = verdict("disable-ccid\n").line();
        assert!(
            line.starts_with("warn  scdaemon: /h/.gnupg/scdaemon.conf lacks pcsc-shared"),
            "{line}"
        );
        assert!(
            line.ends_with(
                "fix: echo pcsc-shared >> /h/.gnupg/scdaemon.conf && gpgconf --reload scdaemon"
            ),
            "{line}"
        );
        assert!(
            verdict("pcsc-shared")
                .line()
                .contains("echo disable-ccid >>")
        );
        assert!(
            verdict("# pcsc-shared\n")
                .line()
                .contains("lacks pcsc-shared and disable-ccid")
        );
    }

    #[test]
    fn a_missing_or_unreadable_scdaemon_conf() {
        let path = Path::new("/h/.gnupg/scdaemon.conf");
        let missing = || Err(io::Error::from(io::ErrorKind::NotFound));
        assert_eq!(scdaemon_verdict(path, missing(), false).status, Status::Ok);
        let line = scdaemon_verdict(path, missing(), true).line();
        assert!(
            line.starts_with("warn  scdaemon: no /h/.gnupg/scdaemon.conf"),
            "{line}"
        );
        let denied = Err(io::Error::from(io::ErrorKind::PermissionDenied));
        let line = scdaemon_verdict(path, denied, false).line();
        assert!(
            line.starts_with("warn  scdaemon: cannot read /h/.gnupg/scdaemon.conf"),
            "{line}"
        );
        assert!(line.contains("chmod u+r /h/.gnupg/scdaemon.conf"), "{line}");
    }

    #[test]
    fn unit_states() {
        assert_eq!(
            unit_verdict("enabled", "active").line(),
            "ok    user-unit: oathbridge.service enabled, active"
        );
        assert_eq!(unit_verdict("static", "inactive").status, Status::Ok);
        assert!(
            unit_verdict("not-found", "inactive")
                .line()
                .contains("not installed")
        );
        assert!(
            unit_verdict("", "inactive")
                .line()
                .contains("install.sh --user")
        );
        assert!(unit_verdict("masked", "inactive").line().contains("unmask"));
        assert!(
            unit_verdict("enabled", "failed")
                .line()
                .contains("journalctl --user")
        );
    }
}
