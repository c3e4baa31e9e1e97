//! The inputs of the import issue, each as a test with its right value: direct mode and
//! through the daemon, on the YubiKey and Nitrokey 3 emulator profiles, behind a real pcscd.
//! Codes are checked at unix time 1700000000; seeds are the ASCII bytes
//! `handed-case-key-000N`.

mod common;
mod daemon_common;

use std::io::Cursor;

use common::TestBed;
use common::cli::{CliRun, run_cli};
use daemon_common::{Bus, Daemon};
use image::{GrayImage, ImageFormat, Luma};
use qrcode::{Color, QrCode};

const AT: &str = "1700000000";
const SEEDS: [&str; 4] = [
    "NBQW4ZDFMQWWGYLTMUWWWZLZFUYDAMBR",
    "NBQW4ZDFMQWWGYLTMUWWWZLZFUYDAMBS",
    "NBQW4ZDFMQWWGYLTMUWWWZLZFUYDAMBT",
    "NBQW4ZDFMQWWGYLTMUWWWZLZFUYDAMBU",
];
const CAROL: &str = "otpauth://totp/Example:carol@example.com?secret=NBQW4ZDFMQWWGYLTMUWWWZLZFUYDAMBR&issuer=Example&digits=6";
const DAVE: &str =
    "otpauth://totp/dave@example.com?secret=NBQW4ZDFMQWWGYLTMUWWWZLZFUYDAMBS&digits=8";
const FRANK: &str =
    "otpauth://totp/Steam:frank?secret=NBQW4ZDFMQWWGYLTMUWWWZLZFUYDAMBT&issuer=Steam&digits=5";
const DUPLICATES: &str = "otpauth-migration://offline?data=CjQKFGhhbmRlZC1jYXNlLWtleS0wMDAxEhBlcmluQGV4YW1wbGUuY29tGgRNYWlsIAEoATACCjQKFGhhbmRlZC1jYXNlLWtleS0wMDAyEhBlcmluQGV4YW1wbGUuY29tGgRNYWlsIAEoATACCigKFGhhbmRlZC1jYXNlLWtleS0wMDAzEgRlcmluGgRDaGF0IAEoATACEAEYASAAKAA%3D";
const BATCH_1: &str = "otpauth-migration://offline?data=CjYKFGhhbmRlZC1jYXNlLWtleS0wMDAxEhFoZWlkaUBleGFtcGxlLmNvbRoFRm9yZ2UgASgBMAIQARgCIAAoTQ%3D%3D";
const BATCH_2: &str = "otpauth-migration://offline?data=CjUKFGhhbmRlZC1jYXNlLWtleS0wMDAyEhFoZWlkaUBleGFtcGxlLmNvbRoEV2lraSABKAEwAhABGAIgAShN";

/// One emulated key (and, in daemon mode, the daemon) on a private bed.
struct Setup {
    bed: TestBed,
    direct: bool,
    _daemon: Option<Daemon>,
}

impl Setup {
    fn new(profile: &str, direct: bool) -> Setup {
        let mut bed = TestBed::start();
        bed.attach_card(0, &["--profile", profile]);
        let daemon = if direct {
            None
        } else {
            bed.start_dbus();
            let bus = Bus::connect(&bed);
            Some(Daemon::start_with_devices(&bed, &bus, &[], 1))
        };
        Setup {
            bed,
            direct,
            _daemon: daemon,
        }
    }

    fn run(&self, args: &[&str], stdin: &str) -> CliRun {
        let mut all = Vec::new();
        if self.direct {
            all.push("--direct");
        }
        all.extend_from_slice(args);
        let run = run_cli(&self.bed, &all, stdin);
        assert_no_seed(&run, args);
        run
    }

    fn file(&self, name: &str, bytes: &[u8]) -> String {
        let path = self.bed.dir().join(name);
        std::fs::write(&path, bytes).expect("write input file");
        path.display().to_string()
    }

    fn add_file(&self, name: &str, bytes: &[u8]) -> CliRun {
        let path = self.file(name, bytes);
        self.run(&["add", "--from", &path], "")
    }

    fn code(&self, query: &str) -> String {
        let run = self.run(&["code", query, "--at", AT, "-s"], "");
        assert_eq!(run.code, 0, "code {query}: {}", run.stderr);
        run.stdout.trim().to_owned()
    }

    fn list(&self) -> String {
        let run = self.run(&["list", "-H"], "");
        assert_eq!(run.code, 0, "list: {}", run.stderr);
        run.stdout
    }

    /// Exit 2, every stderr line an `error:` line naming a place, and the key unchanged.
    fn refused(&self, what: &str, run: &CliRun, before: &str, names: &[&str]) {
        assert_eq!(run.code, 2, "{what}: {}", run.stderr);
        for line in run.stderr.lines() {
            assert!(line.starts_with("error: "), "{what}: {line}");
        }
        for name in names {
            assert!(
                run.stderr.contains(name),
                "{what}: {name} not named in {}",
                run.stderr
            );
        }
        assert_eq!(self.list(), before, "{what}: the key changed");
    }
}

/// No six-character window of any seed in the output (nor in the arguments we passed).
fn assert_no_seed(run: &CliRun, args: &[&str]) {
    for seed in SEEDS {
        for window in seed.as_bytes().windows(6) {
            let window = std::str::from_utf8(window).expect("ascii");
            for (stream, text) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
                assert!(
                    !text.contains(window),
                    "{args:?}: {stream} holds a seed fragment {window}: {text}"
                );
            }
        }
    }
}

/// A QR code of `text`, light modules on a dark background (a dark-mode screenshot).
fn light_on_dark_png(text: &str) -> Vec<u8> {
    let code = QrCode::new(text.as_bytes()).expect("encodable");
    let modules = code.width() as u32;
    let scale = 5;
    let side = (modules + 8) * scale;
    let mut canvas = GrayImage::from_pixel(side, side, Luma([24]));
    for (index, color) in code.to_colors().into_iter().enumerate() {
        if color == Color::Dark {
            let (x, y) = (index as u32 % modules, index as u32 / modules);
            for dy in 0..scale {
                for dx in 0..scale {
                    canvas.put_pixel((x + 4) * scale + dx, (y + 4) * scale + dy, Luma([230]));
                }
            }
        }
    }
    let mut out = Cursor::new(Vec::new());
    canvas
        .write_to(&mut out, ImageFormat::Png)
        .expect("encode PNG");
    out.into_inner()
}

fn every_row(profile: &str, direct: bool) {
    let setup = Setup::new(profile, direct);

    // Two otpauth lines with CRLF endings: both added, each with its own digits.
    let run = setup.add_file("two.txt", format!("{CAROL}\r\n{DAVE}\r\n").as_bytes());
    assert_eq!(run.code, 0, "CRLF file: {}", run.stderr);
    assert_eq!(setup.code("Example:carol@example.com"), "490998");
    assert_eq!(setup.code("dave@example.com"), "81511934");

    // A bad second line refuses the whole file, naming the line, quoting nothing.
    let before = setup.list();
    let bad = format!("{CAROL}\r\n{DAVE}&digits=9\r\n");
    let run = setup.add_file("bad.txt", bad.as_bytes());
    setup.refused("bad digits", &run, &before, &["line 2", "digits"]);

    // Two batches of one Google Authenticator export: one import.
    let run = setup.add_file("batches.txt", format!("{BATCH_1}\n{BATCH_2}\n").as_bytes());
    assert_eq!(run.code, 0, "batches: {}", run.stderr);
    assert_eq!(setup.code("Forge:heidi@example.com"), "490998");
    assert_eq!(setup.code("Wiki:heidi@example.com"), "511934");

    // The same account twice in one payload: refused before the first write.
    let before = setup.list();
    let run = setup.run(&["add", "--from", "-"], DUPLICATES);
    setup.refused(
        "duplicate ids",
        &run,
        &before,
        &["Mail:erin@example.com", "entry 2"],
    );
    let run = setup.run(&["add", "--force", "--from", "-"], DUPLICATES);
    setup.refused(
        "duplicate ids with --force",
        &run,
        &before,
        &["Mail:erin@example.com"],
    );

    // An issuer-less name that starts like a period reads back as period 30.
    let grace = "otpauth://totp/120%2Fgrace?secret=NBQW4ZDFMQWWGYLTMUWWWZLZFUYDAMBR";
    let run = setup.run(&["add", "--from", "-"], grace);
    assert_eq!(run.code, 0, "120/grace: {}", run.stderr);
    assert_eq!(setup.code("120/grace"), "490998");

    // Steam with digits=5: a Steam account with Steam's code.
    let run = setup.run(&["add", "--from", "-"], FRANK);
    assert_eq!(run.code, 0, "Steam: {}", run.stderr);
    assert_eq!(setup.code("Steam:frank"), "NNKW3");
    // The listing (CALCULATE ALL for the others) shows Steam's code too, not a number.
    let listing = setup.run(&["code", "--at", AT], "");
    assert!(
        listing
            .stdout
            .lines()
            .any(|l| l.starts_with("Steam:frank") && l.ends_with("NNKW3")),
        "{}",
        listing.stdout
    );

    // A light-on-dark QR code (dark-mode screenshot).
    let dark = "otpauth://totp/Dark:mode@example.com?secret=NBQW4ZDFMQWWGYLTMUWWWZLZFUYDAMBU";
    let run = setup.add_file("dark.png", &light_on_dark_png(dark));
    assert_eq!(run.code, 0, "dark QR: {}", run.stderr);
    assert!(setup.list().contains("Dark:mode@example.com"));

    // An empty value is an error, never a silent default.
    let before = setup.list();
    let empty = "otpauth://totp/Test:alice?secret=JBSWY3DPEHPK3PXP&algorithm=";
    let run = setup.run(&["add", "--from", "-"], empty);
    setup.refused("empty algorithm", &run, &before, &["algorithm"]);
}

#[test]
fn yubikey_direct() {
    every_row("yubikey", true);
}

#[test]
fn yubikey_through_the_daemon() {
    every_row("yubikey", false);
}

#[test]
fn nitrokey_direct() {
    every_row("nitrokey", true);
}

#[test]
fn nitrokey_through_the_daemon() {
    every_row("nitrokey", false);
}
