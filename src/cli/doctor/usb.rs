//! Checks 3 and 6, from sysfs: keys on USB whose CCID (smart card) interface pcscd does not
//! show, and the permissions of their hidraw nodes. Functions take the sysfs and /dev roots
//! so the tests can build fake trees.

use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::Check;

/// The udev rules file in the repository's `udev/` directory.
pub const RULES_FILE: &str = "69-oathbridge.rules";
const RULES_DIRS: &[&str] = &[
    "/etc/udev/rules.d",
    "/run/udev/rules.d",
    "/usr/local/lib/udev/rules.d",
    "/usr/lib/udev/rules.d",
    "/lib/udev/rules.d",
];
/// USB interface class of smart card readers (CCID).
const CLASS_CCID: &str = "0b";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vendor {
    Yubico,
    Nitrokey,
    CanoKey,
}

impl Vendor {
    pub fn from_ids(vendor: u16, product: u16) -> Option<Self> {
        match (vendor, product) {
            (0x1050, _) => Some(Self::Yubico),
            (0x20a0, 0x42b2) => Some(Self::Nitrokey),
            (0x20a0, 0x42d4) => Some(Self::CanoKey),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Yubico => "YubiKey",
            Self::Nitrokey => "Nitrokey 3",
            Self::CanoKey => "CanoKey",
        }
    }

    /// Words pcscd's CCID driver puts in the reader name.
    fn in_reader_name(self, reader: &str) -> bool {
        let reader = reader.to_lowercase();
        match self {
            Self::Yubico => reader.contains("yubico") || reader.contains("yubikey"),
            Self::Nitrokey => reader.contains("nitrokey"),
            Self::CanoKey => reader.contains("canokey"),
        }
    }

    fn enable_ccid(self) -> &'static str {
        match self {
            Self::Yubico => "`ykman config usb --enable CCID`, then replug the key",
            Self::Nitrokey => {
                "replug it; if CCID stays missing, update the firmware with `nitropy nk3 update` \
                 (in bootloader mode or with old firmware it has no CCID interface)"
            }
            Self::CanoKey => {
                "turn CCID on in the CanoKey's settings (console.canokeys.org), then replug"
            }
        }
    }
}

/// One Yubico / Nitrokey 3 / CanoKey USB device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsbKey {
    pub vendor: Vendor,
    pub ids: String,
    /// Whether one of its interfaces is a smart card (CCID) interface; `None` when sysfs
    /// lists no interfaces (not configured).
    pub ccid: Option<bool>,
}

impl UsbKey {
    fn describe(&self) -> String {
        format!("{} ({})", self.vendor.name(), self.ids)
    }
}

fn read_hex(path: &Path) -> Option<u16> {
    u16::from_str_radix(fs::read_to_string(path).ok()?.trim(), 16).ok()
}

/// The keys in `sys/bus/usb/devices`; `None` when there is no such directory.
pub fn scan_usb(sys: &Path) -> Option<Vec<UsbKey>> {
    let devices = sys.join("bus/usb/devices");
    let mut names: Vec<String> = fs::read_dir(&devices)
        .ok()?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut keys = Vec::new();
    for name in names.iter().filter(|n| !n.contains(':')) {
        let dir = devices.join(name);
        let (Some(vendor_id), Some(product_id)) = (
            read_hex(&dir.join("idVendor")),
            read_hex(&dir.join("idProduct")),
        ) else {
            continue;
        };
        let Some(vendor) = Vendor::from_ids(vendor_id, product_id) else {
            continue;
        };
        let prefix = format!("{name}:");
        let classes: Vec<String> = names
            .iter()
            .filter(|n| n.starts_with(&prefix))
            .filter_map(|n| fs::read_to_string(devices.join(n).join("bInterfaceClass")).ok())
            .map(|c| c.trim().to_lowercase())
            .collect();
        keys.push(UsbKey {
            vendor,
            ids: format!("{vendor_id:04x}:{product_id:04x}"),
            ccid: (!classes.is_empty()).then(|| classes.iter().any(|c| c == CLASS_CCID)),
        });
    }
    Some(keys)
}

/// Check 3: keys on USB without a PC/SC reader. `readers`: `None` when pcscd did not list
/// them; `usable`: OATH keys found over PC/SC (a problem is a FAIL only without one).
pub fn usb_check(keys: Option<&[UsbKey]>, readers: Option<&[String]>, usable: usize) -> Check {
    let Some(keys) = keys else {
        return Check::ok("usb", "no USB bus visible (no /sys/bus/usb/devices)");
    };
    if keys.is_empty() {
        return Check::ok("usb", "no YubiKey, Nitrokey 3 or CanoKey on USB");
    }
    let details: Vec<String> = keys.iter().map(UsbKey::describe).collect();
    let mut problems = Vec::new();
    let mut fixes: Vec<String> = Vec::new();
    let mut add_fix = |fix: String| {
        if !fixes.contains(&fix) {
            fixes.push(fix);
        }
    };
    for key in keys.iter().filter(|k| k.ccid == Some(false)) {
        problems.push(format!(
            "{} is on USB with its CCID (smart card) interface turned off",
            key.describe()
        ));
        add_fix(format!(
            "{}: {}",
            key.vendor.name(),
            key.vendor.enable_ccid()
        ));
    }
    if let Some(readers) = readers {
        for vendor in [Vendor::Yubico, Vendor::Nitrokey, Vendor::CanoKey] {
            let on_usb: Vec<&UsbKey> = keys
                .iter()
                .filter(|k| k.vendor == vendor && k.ccid != Some(false))
                .collect();
            let shown = readers.iter().filter(|r| vendor.in_reader_name(r)).count();
            if on_usb.len() > shown {
                let list: Vec<String> = on_usb.iter().map(|k| k.describe()).collect();
                problems.push(format!(
                    "{} on USB, but pcscd shows {shown} reader(s) for it",
                    list.join(", ")
                ));
                add_fix(
                    "install pcscd's CCID driver: `sudo apt install libccid && sudo systemctl \
                     restart pcscd` (if gpg's scdaemon took the key: add `disable-ccid` to \
                     scdaemon.conf and run `gpgconf --kill scdaemon`)"
                        .to_owned(),
                );
            }
        }
    }
    if problems.is_empty() {
        let note = if readers.is_some() {
            "each with a PC/SC reader"
        } else {
            "readers not checked: pcscd is not reachable"
        };
        return Check::ok("usb", format!("{} on USB, {note}", details.join(", "))).details(details);
    }
    let check = if usable == 0 {
        Check::fail("usb", problems.join("; "))
    } else {
        Check::warn("usb", problems.join("; "))
    };
    check.fix(fixes.join("; ")).details(details)
}

/// One hidraw node of a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HidNode {
    pub dev: PathBuf,
    pub vendor: Vendor,
    pub ids: String,
    /// Readable and writable by this user.
    pub usable: bool,
}

/// `HID_ID=0003:00001050:00000407` → (0x1050, 0x0407).
fn parse_hid_id(uevent: &str) -> Option<(u16, u16)> {
    let value = uevent.lines().find_map(|l| l.strip_prefix("HID_ID="))?;
    let mut parts = value.trim().split(':').skip(1);
    let vendor = u32::from_str_radix(parts.next()?, 16).ok()?;
    let product = u32::from_str_radix(parts.next()?, 16).ok()?;
    Some((u16::try_from(vendor).ok()?, u16::try_from(product).ok()?))
}

/// Whether this (real) user may read and write `path`; nothing is opened.
fn accessible(path: &Path) -> bool {
    let Ok(name) = CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: `name` is a valid NUL-terminated string that outlives the call.
    unsafe { libc::access(name.as_ptr(), libc::R_OK | libc::W_OK) == 0 }
}

/// The hidraw nodes (`sys/class/hidraw/*`, devices under `dev`) of Yubico, Nitrokey 3 and
/// CanoKey keys.
pub fn scan_hidraw(sys: &Path, dev: &Path) -> Vec<HidNode> {
    let Ok(entries) = fs::read_dir(sys.join("class/hidraw")) else {
        return Vec::new();
    };
    let mut nodes: Vec<HidNode> = entries
        .flatten()
        .filter_map(|entry| {
            let uevent = fs::read_to_string(entry.path().join("device/uevent")).ok()?;
            let (vendor_id, product_id) = parse_hid_id(&uevent)?;
            let vendor = Vendor::from_ids(vendor_id, product_id)?;
            let node = dev.join(entry.file_name());
            Some(HidNode {
                usable: accessible(&node),
                dev: node,
                vendor,
                ids: format!("{vendor_id:04x}:{product_id:04x}"),
            })
        })
        .collect();
    nodes.sort_by(|a, b| a.dev.cmp(&b.dev));
    nodes
}

/// Where the project's udev rules are installed, if anywhere.
pub fn rules_installed() -> Option<PathBuf> {
    RULES_DIRS
        .iter()
        .map(|dir| Path::new(dir).join(RULES_FILE))
        .find(|path| path.is_file())
}

/// Check 6: hidraw nodes of keys usable by this user; the udev rules.
pub fn hidraw_check(nodes: &[HidNode], rules: Option<&Path>) -> Check {
    let rules_note = match rules {
        Some(path) => format!("udev rules installed ({})", path.display()),
        None => format!("udev rules ({RULES_FILE}) not installed"),
    };
    let describe = |n: &HidNode| format!("{} ({} {})", n.dev.display(), n.vendor.name(), n.ids);
    if nodes.is_empty() {
        return Check::ok(
            "hidraw",
            format!("no HID keys; {rules_note} (needed for HID keys)"),
        );
    }
    let details: Vec<String> = nodes.iter().map(describe).collect();
    let blocked: Vec<String> = nodes.iter().filter(|n| !n.usable).map(describe).collect();
    if blocked.is_empty() {
        return Check::ok(
            "hidraw",
            format!("usable: {}; {rules_note}", details.join(", ")),
        )
        .details(details);
    }
    let fix = if rules.is_some() {
        "replug the key, or log out and in again (the rules give access to the user of the \
         active session)"
            .to_owned()
    } else {
        format!(
            "from the oathbridge sources: `sudo install -m 644 udev/{RULES_FILE} \
             /etc/udev/rules.d/ && sudo udevadm control --reload && sudo udevadm trigger` \
             (or `bash scripts/install.sh`)"
        )
    };
    Check::warn(
        "hidraw",
        format!(
            "not readable and writable by you: {}; {rules_note}",
            blocked.join(", ")
        ),
    )
    .fix(fix)
    .details(details)
}

#[cfg(test)]
mod tests {
    use super::super::Status;
    use super::*;

    fn write(path: &Path, text: &str) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    /// A fake USB device `name` with `classes` as its interfaces.
    fn device(sys: &Path, name: &str, ids: (&str, &str), classes: &[&str]) {
        let devices = sys.join("bus/usb/devices");
        write(
            &devices.join(name).join("idVendor"),
            &format!("{}\n", ids.0),
        );
        write(
            &devices.join(name).join("idProduct"),
            &format!("{}\n", ids.1),
        );
        for (n, class) in classes.iter().enumerate() {
            write(
                &devices
                    .join(format!("{name}:1.{n}"))
                    .join("bInterfaceClass"),
                &format!("{class}\n"),
            );
        }
    }

    #[test]
    fn finds_keys_and_their_ccid_interfaces() {
        let dir = tempfile::tempdir().unwrap();
        let sys = dir.path();
        assert_eq!(scan_usb(sys), None);
        device(sys, "1-1", ("1050", "0407"), &["03", "03", "0b"]);
        device(sys, "1-2", ("1050", "0402"), &["03"]);
        device(sys, "1-3", ("20a0", "42b2"), &["0b"]);
        device(sys, "1-4", ("046d", "c52b"), &["03"]);
        device(sys, "usb1", ("1d6b", "0002"), &["09"]);
        let keys = scan_usb(sys).unwrap();
        let found: Vec<(&str, Option<bool>)> =
            keys.iter().map(|k| (k.ids.as_str(), k.ccid)).collect();
        assert_eq!(
            found,
            [
                ("1050:0407", Some(true)),
                ("1050:0402", Some(false)),
                ("20a0:42b2", Some(true))
            ]
        );

        let readers = vec!["Nitrokey Nitrokey 3 [CCID/ICCD Interface] 00 00".to_owned()];
        let check = usb_check(Some(&keys), Some(&readers), 1);
        assert_eq!(check.status, Status::Warn, "{}", check.line());
        let line = check.line();
        assert!(
            line.contains(
                "YubiKey (1050:0402) is on USB with its CCID (smart card) interface turned off"
            ),
            "{line}"
        );
        assert!(line.contains("ykman config usb --enable CCID"), "{line}");
        assert!(
            line.contains("YubiKey (1050:0407) on USB, but pcscd shows 0 reader(s)"),
            "{line}"
        );
        assert!(line.contains("sudo apt install libccid"), "{line}");
        assert_eq!(
            usb_check(Some(&keys), Some(&readers), 0).status,
            Status::Fail
        );

        let nitrokey_only = [keys[2].clone()];
        let check = usb_check(Some(&nitrokey_only), Some(&readers), 1);
        assert_eq!(
            check.line(),
            "ok    usb: Nitrokey 3 (20a0:42b2) on USB, each with a PC/SC reader"
        );
        let nitrokey_off = [UsbKey {
            ccid: Some(false),
            ..keys[2].clone()
        }];
        assert!(
            usb_check(Some(&nitrokey_off), None, 0)
                .line()
                .contains("nitropy nk3 update")
        );
        assert_eq!(usb_check(Some(&[]), None, 0).status, Status::Ok);
        assert_eq!(usb_check(None, None, 0).status, Status::Ok);
    }

    #[test]
    fn hidraw_nodes_of_keys_are_found_by_hid_id() {
        let dir = tempfile::tempdir().unwrap();
        let (sys, dev) = (dir.path().join("sys"), dir.path().join("dev"));
        let uevent = |name: &str, id: &str| {
            write(
                &sys.join("class/hidraw").join(name).join("device/uevent"),
                &format!("DRIVER=hid-generic\nHID_ID={id}\nHID_NAME=x\n"),
            );
        };
        uevent("hidraw0", "0003:0000046D:0000C52B");
        uevent("hidraw1", "0003:00001050:00000407");
        uevent("hidraw2", "0003:000020A0:000042D4");
        write(&dev.join("hidraw1"), "");
        let nodes = scan_hidraw(&sys, &dev);
        assert_eq!(nodes.len(), 2, "{nodes:?}");
        assert_eq!(
            (nodes[0].vendor, nodes[0].ids.as_str()),
            (Vendor::Yubico, "1050:0407")
        );
        assert_eq!(
            (nodes[1].vendor, nodes[1].ids.as_str()),
            (Vendor::CanoKey, "20a0:42d4")
        );
        // hidraw2 has no device node at all: never usable.
        assert!(!nodes[1].usable);

        let check = hidraw_check(&nodes[1..], None);
        assert_eq!(check.status, Status::Warn);
        assert!(
            check.line().contains("not readable and writable by you"),
            "{}",
            check.line()
        );
        assert!(
            check.line().contains("udev/69-oathbridge.rules"),
            "{}",
            check.line()
        );
        let rules = Path::new("/etc/udev/rules.d/69-oathbridge.rules");
        assert!(
            hidraw_check(&nodes[1..], Some(rules))
                .line()
                .contains("replug the key")
        );
        let usable = [HidNode {
            usable: true,
            ..nodes[0].clone()
        }];
        assert_eq!(hidraw_check(&usable, Some(rules)).status, Status::Ok);
        let none = hidraw_check(&[], None);
        assert_eq!(none.status, Status::Ok);
        assert!(none.found.starts_with("no HID keys"), "{}", none.found);
    }

    #[test]
    fn the_rules_file_name_is_the_repositorys() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("udev")
            .join(RULES_FILE);
        assert!(path.is_file(), "{} is missing", path.display());
    }
}
