//! Process hardening for the daemon, applied once at start, before any secret is in memory.
//!
//! The daemon's memory holds what must never leave it: seeds on their way to a key
//! (`AddAccount`/`ImportAccounts`), passwords and the access keys derived from them (kept
//! unlocked for the session, or fetched from the Secret Service). [`harden_process`] keeps
//! that memory from being copied out by ordinary means:
//!
//! - `prctl(PR_SET_DUMPABLE, 0)`: no core dump on a crash, and other processes of the same
//!   uid can no longer `ptrace` the daemon or open its `/proc/PID/mem`, `environ`, `maps`
//!   or fds — only a process with `CAP_SYS_PTRACE` (root) can. The flag is reset on
//!   `execve`, so programs the daemon starts (a terminal, `wl-copy`) are not affected.
//! - `RLIMIT_CORE` = 0 (soft and hard): no core file even where the kernel would still
//!   write one for a non-dumpable process (`fs.suid_dumpable=2`, a `core_pattern` pipe to
//!   systemd-coredump or apport). Children inherit this limit.
//!
//! This is not a boundary against root or against a process that already runs code as the
//! daemon. The systemd unit (`systemd/oathbridge.service`) sets `LimitCORE=0` too, so the
//! limit holds from exec on when the daemon runs as a service.

use std::io;

use tracing::{debug, warn};

/// Which step of [`harden_process`] failed, with the OS error.
#[derive(Debug, thiserror::Error)]
pub enum HardenError {
    #[error("cannot make the process non-dumpable (prctl PR_SET_DUMPABLE): {0}")]
    Dumpable(io::Error),
    #[error("cannot disable core dumps (setrlimit RLIMIT_CORE): {0}")]
    CoreLimit(io::Error),
}

/// Make the daemon non-dumpable and set `RLIMIT_CORE` to 0; see the module docs for why.
///
/// Call it first thing at daemon start. Never panics: each step that fails is logged with
/// `tracing::warn!` and the daemon carries on (it works without, it is only less protected).
pub fn harden_process() {
    for result in [set_non_dumpable(), disable_core_dumps()] {
        if let Err(error) = result {
            warn!(%error, "process hardening incomplete");
        }
    }
    debug!("process hardened: non-dumpable, RLIMIT_CORE=0");
}

/// prctl(2) reads its optional arguments as `unsigned long`; pass them at that width.
const NO_ARG: libc::c_ulong = 0;
/// `SUID_DUMP_DISABLE`, the value PR_SET_DUMPABLE takes for "not dumpable".
const NOT_DUMPABLE: libc::c_ulong = 0;

fn set_non_dumpable() -> Result<(), HardenError> {
    // SAFETY: PR_SET_DUMPABLE takes an integer argument (0: not dumpable) and touches no
    // memory of ours; the unused arguments are 0 as prctl(2) asks.
    let rc = unsafe { libc::prctl(libc::PR_SET_DUMPABLE, NOT_DUMPABLE, NO_ARG, NO_ARG, NO_ARG) };
    if rc == 0 {
        Ok(())
    } else {
        Err(HardenError::Dumpable(io::Error::last_os_error()))
    }
}

fn disable_core_dumps() -> Result<(), HardenError> {
    let zero = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `zero` is a valid, initialised rlimit that outlives the call, which only reads it.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_CORE, &zero) };
    if rc == 0 {
        Ok(())
    } else {
        Err(HardenError::CoreLimit(io::Error::last_os_error()))
    }
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::NO_ARG;

    /// Set in the re-executed test binary: only there does `hardened_child` harden.
    const CHILD_ENV: &str = "OATHBRIDGE_HARDEN_TEST_CHILD";
    const CHILD_TEST: &str = "daemon::harden::tests::hardened_child";
    const MARKER: &str = "hardened child: dumpable=0 core=0/0 uid-ok exe-ok";

    fn dumpable() -> i32 {
        // SAFETY: PR_GET_DUMPABLE reads a flag and returns it; no memory is passed.
        unsafe { libc::prctl(libc::PR_GET_DUMPABLE, NO_ARG, NO_ARG, NO_ARG, NO_ARG) }
    }

    fn core_limit() -> (libc::rlim_t, libc::rlim_t) {
        let mut limit = libc::rlimit {
            rlim_cur: 1,
            rlim_max: 1,
        };
        // SAFETY: `limit` is a valid rlimit the call writes into.
        let rc = unsafe { libc::getrlimit(libc::RLIMIT_CORE, &mut limit) };
        assert_eq!(rc, 0, "getrlimit: {}", std::io::Error::last_os_error());
        (limit.rlim_cur, limit.rlim_max)
    }

    /// The real check, run in a separate process (see below) so that the other unit tests
    /// keep a dumpable process. A no-op when run as part of the normal test run.
    #[test]
    fn hardened_child() {
        if std::env::var_os(CHILD_ENV).is_none() {
            return;
        }
        super::harden_process();
        assert_eq!(dumpable(), 0, "PR_GET_DUMPABLE after harden_process");
        assert_eq!(core_limit(), (0, 0), "RLIMIT_CORE after harden_process");
        // What the daemon still needs from /proc/self once non-dumpable: its uid (the
        // caller check compares against it; /proc/PID itself keeps its owner) and its
        // executable (LaunchSearch starts `oathbridge code --watch`).
        // SAFETY: getuid cannot fail and takes no arguments.
        let uid = unsafe { libc::getuid() };
        assert_eq!(
            crate::daemon::access::own_uid(),
            uid,
            "own_uid after hardening"
        );
        std::env::current_exe().expect("current_exe after hardening");
        // Idempotent: a second call changes nothing and does not panic.
        super::harden_process();
        assert_eq!(dumpable(), 0);
        println!("{MARKER}");
    }

    #[test]
    fn harden_process_makes_the_daemon_non_dumpable_without_core_dumps() {
        let exe = std::env::current_exe().expect("the test binary's path");
        let out = Command::new(exe)
            .args([CHILD_TEST, "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, "1")
            .output()
            .expect("re-run the test binary");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "hardened child failed ({}):\n{stdout}{stderr}",
            out.status
        );
        assert!(
            stdout.contains(MARKER),
            "the hardened child did not run its checks:\n{stdout}{stderr}"
        );
    }
}
