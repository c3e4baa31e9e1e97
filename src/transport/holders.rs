//! Which other programs may be holding a smart card: processes whose name is one of the
//! usual PC/SC users, read from `/proc/*/comm` (never touched, never signalled). pcscd does
//! not say who holds a card, so this is a hint for messages and `doctor`, not a fact.

use std::fs;

/// Programs known to open OATH/OpenPGP/PIV cards through pcscd.
pub const KNOWN_CARD_USERS: &[&str] = &[
    "scdaemon",
    "ykman",
    "yubioath-deskto",
    "authenticator",
    "nitropy",
    "opensc-tool",
    "pkcs11-tool",
    "pcsc_scan",
    "gpg-agent",
    "p11-kit-remote",
];

/// A running process that may hold a card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardUser {
    pub pid: u32,
    pub name: String,
}

/// Running processes named like a known card user, by pid. Unreadable entries are skipped.
pub fn card_users() -> Vec<CardUser> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut users: Vec<CardUser> = entries
        .flatten()
        .filter_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let comm = fs::read_to_string(entry.path().join("comm")).ok()?;
            let name = comm.trim();
            KNOWN_CARD_USERS.contains(&name).then(|| CardUser {
                pid,
                name: name.to_owned(),
            })
        })
        .collect();
    users.sort_by_key(|u| u.pid);
    users
}

/// "scdaemon (pid 1234), ykman (pid 99)", or None when no known card user runs.
pub fn describe_card_users() -> Option<String> {
    let users = card_users();
    (!users.is_empty()).then(|| {
        users
            .iter()
            .map(|u| format!("{} (pid {})", u.name, u.pid))
            .collect::<Vec<_>>()
            .join(", ")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_running_program_by_its_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fake = dir.path().join("scdaemon");
        fs::copy("/bin/sleep", &fake).expect("copy sleep");
        let mut child = std::process::Command::new(&fake)
            .arg("30")
            .spawn()
            .expect("start the fake scdaemon");
        let pid = child.id();
        // Until the child has exec'd, its comm is still ours.
        let mut found = card_users();
        for _ in 0..100 {
            if found.iter().any(|u| u.pid == pid) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
            found = card_users();
        }
        let described = describe_card_users().unwrap_or_default();
        let _ = child.kill();
        let _ = child.wait();
        assert!(
            found.contains(&CardUser {
                pid,
                name: "scdaemon".into()
            }),
            "{found:?}"
        );
        assert!(
            described.contains(&format!("scdaemon (pid {pid})")),
            "{described}"
        );
    }
}
