//! Checks 1, 2 and 4, from the PC/SC probe ([`super::probe`]): pcscd, its readers and the
//! OATH keys in them, and cards held exclusively by another program.

use std::path::Path;

use super::probe::{Card, Probe, Service};
use super::{Check, TIMEOUT, shell_word};

/// Where systemd keeps system unit files.
const UNIT_DIRS: &[&str] = &[
    "/etc/systemd/system",
    "/run/systemd/system",
    "/usr/local/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
];

/// Which pcscd unit files are installed.
#[derive(Debug, Clone, Copy, Default)]
pub struct PcscdUnits {
    pub socket: bool,
    pub service: bool,
}

impl PcscdUnits {
    pub fn find() -> Self {
        let present = |name: &str| UNIT_DIRS.iter().any(|d| Path::new(d).join(name).exists());
        Self {
            socket: present("pcscd.socket"),
            service: present("pcscd.service"),
        }
    }
}

/// Check 1: pcscd installed, running, or socket-activatable.
pub fn pcscd_check(probe: &Probe, binary: Option<&Path>, units: PcscdUnits) -> Check {
    let socket = probe.socket.describe();
    match (&probe.service, binary) {
        (Service::Running, _) => Check::ok("pcscd", format!("running, answers at {socket}")),
        (Service::Silent, _) => Check::fail(
            "pcscd",
            format!("does not answer at {socket} within {} s", TIMEOUT.as_secs()),
        )
        .fix("sudo systemctl restart pcscd"),
        (Service::Down(_), None) => Check::fail(
            "pcscd",
            format!("not installed; nothing answers at {socket}"),
        )
        .fix("sudo apt install pcscd"),
        (Service::Down(error), Some(binary)) => {
            let fix = if units.socket {
                "sudo systemctl enable --now pcscd.socket".to_owned()
            } else if units.service {
                "sudo systemctl enable --now pcscd.service".to_owned()
            } else {
                format!("sudo {}", shell_word(binary))
            };
            Check::fail(
                "pcscd",
                format!(
                    "installed ({}) but not running: nothing answers at {socket} ({error})",
                    binary.display()
                ),
            )
            .fix(fix)
        }
    }
}

fn not_checked(probe: &Probe) -> Option<String> {
    match (&probe.service, &probe.readers) {
        (Service::Running, Some(_)) => None,
        (Service::Running, None) => Some(format!(
            "not checked: pcscd did not list its readers within {} s",
            TIMEOUT.as_secs()
        )),
        _ => Some("not checked: pcscd is not reachable".to_owned()),
    }
}

/// Check 2a: the readers pcscd sees, and what each holds.
pub fn readers_check(probe: &Probe) -> Check {
    if let Some(why) = not_checked(probe) {
        return Check::warn("readers", why);
    }
    let readers = probe.readers.as_deref().unwrap_or_default();
    if readers.is_empty() {
        return Check::fail("readers", "pcscd sees no smart card reader")
            .fix("plug the key in (a key that is plugged in but has no reader: see `usb`)");
    }
    let described: Vec<String> = readers
        .iter()
        .map(|reader| {
            let state = match probe.cards.iter().find(|(r, _)| r == reader) {
                Some((_, Card::Empty)) => "empty",
                Some((_, Card::Key(_))) => "OATH key",
                Some((_, Card::NotOath)) => "card without OATH",
                Some((_, Card::Exclusive)) => "held exclusively",
                Some((_, Card::Silent)) => "no answer",
                Some((_, Card::Error(_))) => "error",
                None => "not checked",
            };
            format!("{reader} ({state})")
        })
        .collect();
    let count = readers.len();
    Check::ok(
        "readers",
        format!(
            "{count} reader{}: {}",
            if count == 1 { "" } else { "s" },
            described.join(", ")
        ),
    )
    .details(readers.to_vec())
}

/// The HID side has its own check line.
const HID_NOTE: &str = "HID: see hid";

/// Check 2b: the OATH keys, per transport.
pub fn keys_check(probe: &Probe) -> Check {
    if not_checked(probe).is_some() || probe.readers.as_ref().is_some_and(Vec::is_empty) {
        return Check::warn(
            "keys",
            format!("not checked over PC/SC (see pcscd and readers); {HID_NOTE}"),
        );
    }
    let keys: Vec<String> = probe
        .keys()
        .map(|(reader, key)| {
            format!(
                "{} {} (id {}{}) in {reader}",
                key.kind,
                key.firmware,
                key.id,
                if key.locked { ", password set" } else { "" }
            )
        })
        .collect();
    if !keys.is_empty() {
        return Check::ok("keys", format!("PC/SC: {}; {HID_NOTE}", keys.join(", "))).details(keys);
    }
    let not_oath = probe.readers_with(|c| matches!(c, Card::NotOath));
    let errors: Vec<String> = probe
        .cards
        .iter()
        .filter_map(|(reader, card)| match card {
            Card::Error(error) => Some(format!("{reader}: {error}")),
            _ => None,
        })
        .collect();
    if !errors.is_empty() {
        return Check::fail(
            "keys",
            format!("no OATH key over PC/SC; {}; {HID_NOTE}", errors.join("; ")),
        )
        .fix("pull the key out and plug it in again");
    }
    if !not_oath.is_empty() {
        return Check::fail(
            "keys",
            format!(
                "no OATH key over PC/SC: the card in {} has no OATH applet; {HID_NOTE}",
                not_oath.join(", ")
            ),
        )
        .fix("use an OATH key; on a YubiKey turn the applet on: `ykman config usb --enable OATH`");
    }
    if probe.cards.iter().all(|(_, card)| *card == Card::Empty) {
        return Check::fail(
            "keys",
            format!("no card in any reader: no OATH key over PC/SC; {HID_NOTE}"),
        )
        .fix("plug the key in (a key that is plugged in but shows no card: see `usb`)");
    }
    Check::warn(
        "keys",
        format!("no usable OATH key over PC/SC (see exclusive); {HID_NOTE}"),
    )
}

/// Check 4: cards another program holds exclusively. `users`: running programs known to
/// use cards ([`crate::transport::holders::describe_card_users`]); never touched.
pub fn exclusive_check(probe: &Probe, users: Option<&str>) -> Check {
    if let Some(why) = not_checked(probe) {
        return Check::warn("exclusive", why);
    }
    let held = probe.readers_with(|c| *c == Card::Exclusive);
    let silent = probe.readers_with(|c| *c == Card::Silent);
    if held.is_empty() && silent.is_empty() {
        let checked = probe
            .cards
            .iter()
            .filter(|(_, c)| *c != Card::Empty)
            .count();
        return if checked == 0 {
            Check::ok("exclusive", "no card in any reader, none held")
        } else {
            Check::ok(
                "exclusive",
                format!("no card held exclusively ({checked} opened in shared mode)"),
            )
        };
    }
    let mut found = Vec::new();
    if !held.is_empty() {
        found.push(format!(
            "the card in {} is held exclusively by another program",
            held.join(", ")
        ));
    }
    if !silent.is_empty() {
        found.push(format!(
            "the card in {} did not answer within {} s (another program may keep it busy)",
            silent.join(", "),
            TIMEOUT.as_secs()
        ));
    }
    let users = match users {
        Some(users) => format!("running card users: {users}"),
        None => "no known card user is running (pcscd does not say which program it is)".to_owned(),
    };
    Check::fail("exclusive", format!("{}; {users}", found.join("; "))).fix(
        "quit that program (ykman, Yubico Authenticator, a browser's smart-card module); \
         for gpg: `gpgconf --kill scdaemon` and add `pcsc-shared` to scdaemon.conf",
    )
}

#[cfg(test)]
mod tests {
    use super::super::probe::{DEFAULT_SOCKET, KeyInfo, Socket};
    use super::*;

    fn probe(service: Service, cards: &[(&str, Card)]) -> Probe {
        let running = matches!(service, Service::Running);
        Probe {
            socket: Socket {
                path: DEFAULT_SOCKET.into(),
                from_env: false,
            },
            service,
            readers: running.then(|| cards.iter().map(|(r, _)| r.to_string()).collect()),
            cards: cards
                .iter()
                .map(|(r, c)| (r.to_string(), c.clone()))
                .collect(),
        }
    }

    fn key() -> Card {
        Card::Key(KeyInfo {
            kind: "YubiKey".into(),
            firmware: "5.7.0".into(),
            id: "abc".into(),
            locked: true,
        })
    }

    #[test]
    fn pcscd_fix_depends_on_what_is_installed() {
        let down = probe(Service::Down("no service".into()), &[]);
        let bin = Path::new("/usr/sbin/pcscd");
        let units = |socket, service| PcscdUnits { socket, service };
        let fix = |b, u| pcscd_check(&down, b, u).fix.unwrap();
        assert_eq!(fix(None, units(true, true)), "sudo apt install pcscd");
        assert_eq!(
            fix(Some(bin), units(true, true)),
            "sudo systemctl enable --now pcscd.socket"
        );
        assert_eq!(
            fix(Some(bin), units(false, true)),
            "sudo systemctl enable --now pcscd.service"
        );
        assert_eq!(fix(Some(bin), units(false, false)), "sudo /usr/sbin/pcscd");
        let silent = pcscd_check(&probe(Service::Silent, &[]), Some(bin), units(true, true));
        assert!(
            silent.line().starts_with("FAIL  pcscd: does not answer"),
            "{}",
            silent.line()
        );
        let ok = pcscd_check(&probe(Service::Running, &[]), Some(bin), units(true, true));
        assert_eq!(
            ok.line(),
            "ok    pcscd: running, answers at /run/pcscd/pcscd.comm"
        );
    }

    #[test]
    fn keys_and_readers_explain_what_is_missing() {
        let none = probe(Service::Running, &[]);
        assert!(
            readers_check(&none)
                .line()
                .starts_with("FAIL  readers: pcscd sees no")
        );
        assert_eq!(keys_check(&none).status, super::super::Status::Warn);

        let empty = probe(
            Service::Running,
            &[("R0", Card::Empty), ("R1", Card::Empty)],
        );
        assert_eq!(
            readers_check(&empty).line(),
            "ok    readers: 2 readers: R0 (empty), R1 (empty)"
        );
        assert!(
            keys_check(&empty)
                .line()
                .starts_with("FAIL  keys: no card in any reader")
        );

        let other = probe(Service::Running, &[("R0", Card::NotOath)]);
        assert!(keys_check(&other).line().contains("has no OATH applet"));

        let good = probe(Service::Running, &[("R0", key()), ("R1", Card::Empty)]);
        assert_eq!(
            keys_check(&good).line(),
            "ok    keys: PC/SC: YubiKey 5.7.0 (id abc, password set) in R0; HID: see hid"
        );
        assert!(
            exclusive_check(&good, None)
                .line()
                .starts_with("ok    exclusive: no card held")
        );

        let down = probe(Service::Down("x".into()), &[]);
        for check in [
            readers_check(&down),
            keys_check(&down),
            exclusive_check(&down, None),
        ] {
            assert!(check.found.contains("not checked"), "{}", check.line());
        }
    }

    #[test]
    fn exclusive_names_the_running_card_users() {
        let held = probe(
            Service::Running,
            &[("R0", Card::Exclusive), ("R1", Card::Silent)],
        );
        let line = exclusive_check(&held, Some("scdaemon (pid 7)")).line();
        assert!(
            line.starts_with("FAIL  exclusive: the card in R0 is held exclusively"),
            "{line}"
        );
        assert!(line.contains("R1 did not answer"), "{line}");
        assert!(
            line.contains("running card users: scdaemon (pid 7)"),
            "{line}"
        );
        assert!(line.contains("fix: quit that program"), "{line}");
        let line = exclusive_check(&held, None).line();
        assert!(line.contains("no known card user is running"), "{line}");
        assert_eq!(keys_check(&held).status, super::super::Status::Warn);
    }
}
