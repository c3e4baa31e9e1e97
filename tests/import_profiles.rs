//! Importing onto the Nitrokey 3 and CanoKey emulator profiles, the key-dependent side of
//! the import issue: ids and codes read back the same (direct, through the daemon, and for
//! the Nitrokey over its HID bridge), plans that name every problem before writing (SHA-512,
//! id and seed limits per key, capacity, existing ids, two different keys at once), and
//! replacements on keys that cannot overwrite. Codes are RFC 6238 / RFC 4226 for the seed
//! "12345678901234567890", at unix time 1700000000 unless said otherwise.

mod common;
mod daemon_common;

use std::path::PathBuf;

use common::TestBed;
use common::cli::{CliRun, run_cli, run_command};
use common::hid::HidEmulator;
use daemon_common::{Bus, Daemon};

const AT: &str = "1700000000";
const RFC_SHA1: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
/// RFC 6238's SHA-512 seed: 64 bytes, the most a CanoKey stores.
const RFC_SHA512: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNA";
/// Bytes 0..40, another seed: its code at AT (SHA1, 6 digits) is 145417.
const OTHER: &str = "AAAQEAYEAUDAOCAJBIFQYDIOB4IBCEQTCQKRMFYYDENBWHA5DYPSAIJCEMSCKJRH";

/// Ids that are easy to get wrong, with the issuer, name and period they must read back as
/// and their code at AT.
const IDS: [(&str, Option<&str>, &str, u64, &str); 8] = [
    (
        "otpauth://totp/120%2Fgrace?secret=S",
        None,
        "120/grace",
        30,
        "921300",
    ),
    (
        "otpauth://totp/42%2Fanswer?secret=S&period=60",
        None,
        "42/answer",
        60,
        "895298",
    ),
    (
        "otpauth://totp/Acme:a%3Ab?secret=S&issuer=Acme",
        Some("Acme"),
        "a:b",
        30,
        "921300",
    ),
    (
        "otpauth://totp/B%C3%BCro:J%C3%BCrgen%20%E6%97%A5%E6%9C%AC?secret=S&issuer=B%C3%BCro",
        Some("Büro"),
        "Jürgen 日本",
        30,
        "921300",
    ),
    (
        "otpauth://totp/Steam:frank?secret=S&issuer=Steam&digits=5",
        Some("Steam"),
        "frank",
        30,
        "R87JJ",
    ),
    (
        "otpauth://totp/Acme:wide?secret=S&issuer=Acme&period=15&digits=8&algorithm=SHA256",
        Some("Acme"),
        "wide",
        15,
        "42846256",
    ),
    (
        "otpauth://totp/Acme:seven?secret=S&issuer=Acme&digits=7",
        Some("Acme"),
        "seven",
        30,
        "1921300",
    ),
    (
        "otpauth://totp/Acme:touchy?secret=S&issuer=Acme",
        Some("Acme"),
        "touchy",
        30,
        "921300",
    ),
];

/// How the CLI reaches the key.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Direct,
    Daemon,
    /// Nitrokey only: the emulator on a HID bridge socket, no CCID side.
    Hid,
}

/// One or two emulated keys behind a private pcscd, and the daemon or HID bridge.
struct Setup {
    bed: TestBed,
    mode: Mode,
    socket: Option<PathBuf>,
    _hid: Option<HidEmulator>,
    _daemon: Option<Daemon>,
}

impl Setup {
    /// `cards[i]` are the emulator arguments of the card in slot i.
    fn new(cards: &[&[&str]], mode: Mode) -> Setup {
        let mut bed = TestBed::start();
        let (mut socket, mut hid) = (None, None);
        if mode == Mode::Hid {
            let path = bed.dir().join("nitrokey.sock");
            hid = Some(HidEmulator::start(&bed, &path, cards[0]));
            socket = Some(path);
        } else {
            for (slot, args) in cards.iter().enumerate() {
                bed.attach_card(slot as u8, args);
            }
        }
        let daemon = (mode == Mode::Daemon).then(|| {
            bed.start_dbus();
            let bus = Bus::connect(&bed);
            Daemon::start_with_devices(&bed, &bus, &[], cards.len())
        });
        Setup {
            bed,
            mode,
            socket,
            _hid: hid,
            _daemon: daemon,
        }
    }

    fn run(&self, args: &[&str], stdin: &str) -> CliRun {
        let socket = self.socket.as_ref().map(|s| s.display().to_string());
        let mut all = Vec::new();
        match self.mode {
            Mode::Direct => all.push("--direct"),
            Mode::Daemon => {}
            Mode::Hid => all.extend(["--direct", "--hid-socket", socket.as_deref().unwrap()]),
        }
        all.extend_from_slice(args);
        let run = if self.mode == Mode::Hid {
            let mut command = self.bed.command(&all);
            command.env_remove(oathbridge::transport::hid::discovery::SOCKETS_ENV);
            run_command(command, stdin)
        } else {
            run_cli(&self.bed, &all, stdin)
        };
        assert_no_seed(&run, args);
        run
    }

    fn ok(&self, args: &[&str], stdin: &str) -> String {
        let run = self.run(args, stdin);
        assert_eq!(run.code, 0, "{args:?}: {}\n{}", run.stderr, self.bed.logs());
        run.stdout
    }

    /// `code --at AT -s` of one account on the key in `reader` (None: the only key).
    fn code(&self, reader: Option<&str>, query: &str, at: &str) -> String {
        let mut args = Vec::new();
        if let Some(reader) = reader {
            args.extend(["--reader", reader]);
        }
        args.extend(["code", "--exact", "-s", "--at", at, query]);
        self.ok(&args, "").trim().to_owned()
    }

    fn list(&self, reader: Option<&str>) -> Vec<serde_json::Value> {
        let mut args = vec!["--json"];
        if let Some(reader) = reader {
            args.extend(["--reader", reader]);
        }
        args.extend(["list", "-H"]);
        serde_json::from_str(&self.ok(&args, "")).expect("list JSON")
    }

    fn ids(&self, reader: Option<&str>) -> Vec<String> {
        self.list(reader)
            .iter()
            .map(|a| a["id"].as_str().expect("id").to_owned())
            .collect()
    }
}

/// Seeds never appear in the output (six-character windows).
fn assert_no_seed(run: &CliRun, args: &[&str]) {
    for seed in [RFC_SHA1, OTHER, &RFC_SHA512[40..]] {
        for window in seed.as_bytes().windows(6) {
            let window = std::str::from_utf8(window).expect("ascii");
            assert!(
                !run.stdout.contains(window) && !run.stderr.contains(window),
                "{args:?}: a seed fragment {window} in the output: {}{}",
                run.stdout,
                run.stderr
            );
        }
    }
}

/// Exit `code`, every stderr line an `error:` line, each of `names` named.
fn refused(run: &CliRun, code: i32, names: &[&str]) {
    assert_eq!(run.code, code, "{}", run.stderr);
    for line in run.stderr.lines() {
        assert!(line.starts_with("error: "), "{line}");
    }
    for name in names {
        assert!(run.stderr.contains(name), "{name} not in {}", run.stderr);
    }
}

fn uri(template: &str) -> String {
    template.replace("secret=S", &format!("secret={RFC_SHA1}"))
}

/// Every id of [`IDS`] (the last with `--touch`) and a HOTP account from counter 1: they
/// list with the issuer, name and period written, and give RFC codes; HOTP codes follow
/// one another, from the requested counter, also on a CanoKey (which counts first).
fn ids_and_codes_round_trip(profile: &str, mode: Mode) {
    let setup = Setup::new(&[&["--profile", profile]], mode);
    let (touchy, plain) = IDS.split_last().expect("ids");
    let lines: Vec<String> = plain.iter().map(|(u, ..)| uri(u)).collect();
    setup.ok(&["add", "--from", "-"], &lines.join("\n"));
    setup.ok(&["add", "--touch", "--from", "-"], &uri(touchy.0));
    let hotp = format!("otpauth://hotp/Acme:counter?secret={RFC_SHA1}&issuer=Acme&counter=1");
    setup.ok(&["add", "--from", "-"], &hotp);

    let listed = setup.list(None);
    for (_, issuer, name, period, code) in IDS {
        let entry = listed
            .iter()
            .find(|a| a["name"] == name)
            .unwrap_or_else(|| panic!("{profile}: {name} not listed: {listed:?}"));
        assert_eq!(entry["issuer"].as_str(), issuer, "{profile}: {name}");
        assert_eq!(entry["period"], period, "{profile}: {name}");
        let id = entry["id"].as_str().expect("id");
        assert_eq!(setup.code(None, id, AT), code, "{profile}: code of {id}");
    }
    let touch = listed
        .iter()
        .find(|a| a["name"] == "touchy")
        .expect("touchy");
    assert_eq!(touch["touch"], true, "{profile}: the touch flag");
    // RFC 4226 counters 1, 2, 3.
    for expected in ["287082", "359152", "969429"] {
        assert_eq!(setup.code(None, "Acme:counter", AT), expected, "{profile}");
    }
}

#[test]
fn nitrokey_ids_and_codes_direct() {
    ids_and_codes_round_trip("nitrokey", Mode::Direct);
}

#[test]
fn nitrokey_ids_and_codes_through_the_daemon() {
    ids_and_codes_round_trip("nitrokey", Mode::Daemon);
}

#[test]
fn nitrokey_ids_and_codes_over_hid() {
    ids_and_codes_round_trip("nitrokey", Mode::Hid);
}

#[test]
fn canokey_ids_and_codes_direct() {
    ids_and_codes_round_trip("canokey", Mode::Direct);
}

#[test]
fn canokey_ids_and_codes_through_the_daemon() {
    ids_and_codes_round_trip("canokey", Mode::Daemon);
}

/// The limits of each key, planned before the first write, with every problem named.
fn limits(profile: &str, mode: Mode) {
    let setup = Setup::new(&[&["--profile", profile]], mode);
    let nitrokey = profile == "nitrokey";
    // 100 bytes: too long for YKOATH's 64, within the Nitrokey 3's 127 (reference §2.3).
    let long = format!("Long:{}", "n".repeat(95));
    let long_uri = format!("otpauth://totp/{long}?secret={RFC_SHA1}");
    let sha512 = format!("otpauth://totp/Big:sha512?secret={RFC_SHA512}&algorithm=SHA512");
    let repeated = format!("otpauth://totp/Ok:one?secret={RFC_SHA1}");
    let input = format!("{long_uri}\n{sha512}\n{repeated}\n{repeated}\n");
    let run = setup.run(&["add", "--from", "-"], &input);
    // The repeated id (the input) and what the key refuses, in one answer.
    let mut names = vec!["line 4", "Ok:one"];
    if nitrokey {
        names.extend(["line 2", "SHA-512"]);
    } else {
        names.extend(["line 1", "at most 64"]);
    }
    refused(&run, 2, &names);
    assert!(setup.ids(None).is_empty(), "{profile}: nothing written");

    let run = setup.run(&["add", "--from", "-"], &format!("{long_uri}\n{sha512}"));
    if nitrokey {
        refused(&run, 8, &["line 2", "SHA-512"]);
        setup.ok(&["add", "--from", "-"], &long_uri);
        assert_eq!(setup.code(None, &long, AT), "921300");
        let too_long = format!("otpauth://totp/Long:{}?secret={RFC_SHA1}", "n".repeat(123));
        let run = setup.run(&["add", "--from", "-"], &too_long);
        refused(&run, 2, &["128 bytes", "127"]);
    } else {
        refused(&run, 2, &["line 1", "at most 64"]);
        // SHA-512 with RFC 6238's 64-byte seed fits; 100 bytes do not, not even with
        // --force over an existing account, which stays as it was.
        setup.ok(&["add", "--from", "-"], &sha512);
        assert_eq!(setup.code(None, "Big:sha512", AT), "826435");
        let big: String = RFC_SHA512
            .chars()
            .chain(RFC_SHA512.chars())
            .take(160)
            .collect();
        let replace = format!(
            "otpauth://totp/Ok:new?secret={RFC_SHA1}\n\
             otpauth://totp/Big:sha512?secret={big}&algorithm=SHA512"
        );
        let run = setup.run(&["add", "--force", "--from", "-"], &replace);
        refused(&run, 8, &["line 2", "secret", "at most 64"]);
        assert_eq!(setup.ids(None), ["Big:sha512"]);
        assert_eq!(setup.code(None, "Big:sha512", AT), "826435");
    }
}

#[test]
fn nitrokey_limits_direct() {
    limits("nitrokey", Mode::Direct);
}

#[test]
fn nitrokey_limits_through_the_daemon() {
    limits("nitrokey", Mode::Daemon);
}

#[test]
fn canokey_limits_direct() {
    limits("canokey", Mode::Direct);
}

#[test]
fn canokey_limits_through_the_daemon() {
    limits("canokey", Mode::Daemon);
}

/// Keys that cannot overwrite (Nitrokey 6983, CanoKey 6985): an existing id is refused
/// without --force and replaced (DELETE, then PUT) with it; capacity counts only new ids.
fn existing_ids_and_capacity(profile: &str, capacity: usize) {
    let setup = Setup::new(&[&["--profile", profile]], Mode::Direct);
    let fill: Vec<String> = (1..=capacity - 2)
        .map(|i| format!("otpauth://totp/Fill:n{i}?secret={RFC_SHA1}"))
        .collect();
    setup.ok(&["add", "--from", "-"], &fill.join("\n"));
    let before = setup.ids(None);

    let replace = format!(
        "otpauth://totp/Fill:n1?secret={OTHER}\notpauth://totp/Fill:n2?secret={OTHER}\n\
         otpauth://totp/New:a?secret={OTHER}\notpauth://totp/New:b?secret={OTHER}"
    );
    let run = setup.run(&["add", "--from", "-"], &replace);
    refused(&run, 2, &["line 1", "line 2", "Fill:n1", "--force"]);
    let three_new = format!("{replace}\notpauth://totp/New:c?secret={OTHER}");
    let run = setup.run(&["add", "--force", "--from", "-"], &three_new);
    refused(
        &run,
        8,
        &[&format!("{} of {capacity} places are used", capacity - 2)],
    );
    assert_eq!(setup.ids(None), before, "{profile}: nothing written");

    // Two replacements and two new accounts fill the key exactly.
    setup.ok(&["add", "--force", "--from", "-"], &replace);
    assert_eq!(setup.ids(None).len(), capacity);
    for id in ["Fill:n1", "Fill:n2", "New:a", "New:b"] {
        assert_eq!(setup.code(None, id, AT), "145417", "{profile}: {id}");
    }
    assert_eq!(setup.code(None, "Fill:n3", AT), "921300");
}

#[test]
fn nitrokey_existing_ids_and_capacity() {
    existing_ids_and_capacity("nitrokey", 50);
}

#[test]
fn canokey_existing_ids_and_capacity() {
    existing_ids_and_capacity("canokey", 100);
}

/// `--all-devices` onto a Nitrokey 3 and a CanoKey: every key is planned first; one
/// refusing writes nothing to either. The dry run names both.
fn all_devices(mode: Mode) {
    let setup = Setup::new(
        &[&["--profile", "nitrokey"], &["--profile", "canokey"]],
        mode,
    );
    let (nk, ck) = ("Virtual PCD 00 00", "Virtual PCD 00 01");
    let good = format!(
        "otpauth://totp/Both:one?secret={RFC_SHA1}\n\
         otpauth://hotp/Both:count?secret={RFC_SHA1}&counter=5"
    );
    let sha512 = format!("otpauth://totp/Big:sha512?secret={RFC_SHA512}&algorithm=SHA512");
    let run = setup.run(
        &["add", "--all-devices", "--from", "-"],
        &format!("{good}\n{sha512}"),
    );
    refused(&run, 8, &["line 3", "SHA-512"]);
    assert!(setup.ids(Some(nk)).is_empty() && setup.ids(Some(ck)).is_empty());

    let plan = setup.ok(
        &["--json", "add", "--all-devices", "--dry-run", "--from", "-"],
        &good,
    );
    let plan: Vec<serde_json::Value> = serde_json::from_str(&plan).expect("plan JSON");
    assert_eq!(plan.len(), 4, "{plan:?}");
    let devices: std::collections::BTreeSet<&str> =
        plan.iter().filter_map(|p| p["device"].as_str()).collect();
    assert_eq!(devices.len(), 2, "{plan:?}");
    assert!(setup.ids(Some(nk)).is_empty() && setup.ids(Some(ck)).is_empty());

    setup.ok(&["add", "--all-devices", "--from", "-"], &good);
    for reader in [nk, ck] {
        assert_eq!(setup.code(Some(reader), "Both:one", AT), "921300");
        // RFC 4226 counters 5 and 6 on both keys.
        assert_eq!(setup.code(Some(reader), "Both:count", AT), "254676");
        assert_eq!(setup.code(Some(reader), "Both:count", AT), "287922");
    }
}

#[test]
fn all_devices_nitrokey_and_canokey_direct() {
    all_devices(Mode::Direct);
}

#[test]
fn all_devices_nitrokey_and_canokey_through_the_daemon() {
    all_devices(Mode::Daemon);
}

/// A Nitrokey 3 whose touch does not come: a touch account is not stored, and a
/// replacement (DELETE waits for a touch) fails before this run added anything.
#[test]
fn nitrokey_without_a_touch_writes_nothing() {
    let setup = Setup::new(
        &[&[
            "--profile",
            "nitrokey",
            "--touch",
            "deny",
            "--touch-timeout-ms",
            "300",
        ]],
        Mode::Direct,
    );
    let two = format!("otpauth://totp/T:a?secret={RFC_SHA1}\notpauth://totp/T:b?secret={RFC_SHA1}");
    let run = setup.run(&["add", "--touch", "--from", "-"], &two);
    assert_eq!(run.code, 7, "{}", run.stderr);
    assert!(run.stderr.contains("nothing was written"), "{}", run.stderr);
    assert!(setup.ids(None).is_empty());

    setup.ok(
        &["add", "--from", "-"],
        &format!("otpauth://totp/T:a?secret={RFC_SHA1}"),
    );
    let replace = format!("otpauth://totp/T:new?secret={OTHER}\notpauth://totp/T:a?secret={OTHER}");
    let run = setup.run(&["add", "--force", "--from", "-"], &replace);
    assert_eq!(run.code, 7, "{}", run.stderr);
    assert!(run.stderr.contains("touch"), "{}", run.stderr);
    assert!(
        run.stderr.contains("as it was before"),
        "the key is unchanged: {}",
        run.stderr
    );
    assert_eq!(setup.ids(None), ["T:a"]);
    assert_eq!(setup.code(None, "T:a", AT), "921300");
}
