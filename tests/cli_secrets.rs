//! Seeds never leave through the CLI's side channels: not in argv (no option takes one), not
//! in stdout (except `add --generate`'s own URI and QR code, by design), not in stderr with
//! the most verbose logging, not in error messages about malformed input.
//!
//! Every seed is looked for as base32 (either case), hex (either case) and raw bytes, and as
//! any 10-byte / 12-character window of those, so a partial leak is caught too.

mod common;

use std::io::{Cursor, Read, Write};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use common::TestBed;
use data_encoding::{BASE32_NOPAD, HEXLOWER, HEXUPPER};
use image::{GrayImage, ImageFormat, Luma};
use qrcode::{Color, QrCode};

const TRACE: (&str, &str) = ("OATHBRIDGE_LOG", "oathbridge=trace");

/// A seed and the byte strings that would betray it.
struct Secret {
    label: String,
    needles: Vec<Vec<u8>>,
}

impl Secret {
    fn new(label: &str, seed: &[u8]) -> Self {
        let mut needles = Vec::new();
        let b32 = BASE32_NOPAD.encode(seed);
        for text in [
            b32.clone(),
            b32.to_lowercase(),
            HEXLOWER.encode(seed),
            HEXUPPER.encode(seed),
        ] {
            windows(text.as_bytes(), 12, &mut needles);
        }
        windows(seed, 10, &mut needles);
        Self {
            label: label.to_owned(),
            needles,
        }
    }

    fn found_in(&self, haystack: &[u8]) -> bool {
        self.needles.iter().any(|needle| {
            haystack
                .windows(needle.len())
                .any(|w| w == needle.as_slice())
        })
    }
}

fn windows(text: &[u8], size: usize, out: &mut Vec<Vec<u8>>) {
    if text.len() <= size {
        out.push(text.to_vec());
    } else {
        out.extend(text.windows(size).map(<[u8]>::to_vec));
    }
}

fn random_seed() -> [u8; 20] {
    let mut seed = [0u8; 20];
    getrandom::fill(&mut seed).expect("random");
    seed
}

/// `oathbridge -vvv args` with trace logging and `stdin`, bounded to 30 s.
fn run(bed: &TestBed, args: &[&str], stdin: &[u8]) -> Output {
    let mut cmd = bed.command(&[&["-vvv"], args].concat());
    cmd.env(TRACE.0, TRACE.1)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn oathbridge");
    let mut pipe = child.stdin.take().expect("stdin");
    let _ = pipe.write_all(stdin);
    drop(pipe);
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(output) => output.expect("wait for oathbridge"),
        Err(_) => {
            common::proc::signal(pid, "KILL");
            panic!("oathbridge {args:?} did not finish within 30 s");
        }
    }
}

fn assert_clean(secrets: &[Secret], what: &str, stdout: &[u8], stderr: &[u8]) {
    for secret in secrets {
        for (stream, bytes) in [("stdout", stdout), ("stderr", stderr)] {
            assert!(
                !secret.found_in(bytes),
                "{what}: the {} seed appears in {stream}:\n{}",
                secret.label,
                String::from_utf8_lossy(bytes)
            );
        }
    }
}

/// Runs, checks the exit code and that no seed leaked; returns stdout.
fn checked(bed: &TestBed, secrets: &[Secret], args: &[&str], stdin: &[u8], code: i32) -> String {
    let output = run(bed, args, stdin);
    assert_eq!(
        output.status.code(),
        Some(code),
        "oathbridge {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_clean(
        secrets,
        &format!("{args:?}"),
        &output.stdout,
        &output.stderr,
    );
    // The trace filter really was on: a silent stderr would prove nothing.
    if code == 0 && !args.contains(&"completions") {
        assert!(
            String::from_utf8_lossy(&output.stderr).contains("TRACE")
                || String::from_utf8_lossy(&output.stderr).contains("DEBUG"),
            "{args:?}: no trace/debug logs on stderr"
        );
    }
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn qr_png(text: &str) -> Vec<u8> {
    let code = QrCode::new(text.as_bytes()).expect("encodable");
    let modules = code.width() as u32;
    let scale = 4;
    let mut canvas =
        GrayImage::from_pixel((modules + 8) * scale, (modules + 8) * scale, Luma([255]));
    for (index, color) in code.to_colors().into_iter().enumerate() {
        if color == Color::Dark {
            let (x, y) = (index as u32 % modules, index as u32 / modules);
            for dy in 0..scale {
                for dx in 0..scale {
                    canvas.put_pixel((x + 4) * scale + dx, (y + 4) * scale + dy, Luma([0]));
                }
            }
        }
    }
    let mut out = Cursor::new(Vec::new());
    canvas.write_to(&mut out, ImageFormat::Png).expect("PNG");
    out.into_inner()
}

/// A Google Authenticator export of one TOTP account (protobuf, base64, percent-encoded).
fn migration_uri(seed: &[u8], name: &str, issuer: &str) -> String {
    fn field_bytes(field: u8, bytes: &[u8], out: &mut Vec<u8>) {
        out.push((field << 3) | 2);
        out.push(u8::try_from(bytes.len()).expect("short field"));
        out.extend_from_slice(bytes);
    }
    let mut entry = Vec::new();
    field_bytes(1, seed, &mut entry);
    field_bytes(2, name.as_bytes(), &mut entry);
    field_bytes(3, issuer.as_bytes(), &mut entry);
    entry.extend_from_slice(&[4 << 3, 1, 5 << 3, 1, 6 << 3, 2]); // SHA1, 6 digits, TOTP
    let mut payload = Vec::new();
    field_bytes(1, &entry, &mut payload);
    migration_uri_of(&payload)
}

fn migration_uri_of(payload: &[u8]) -> String {
    let base64 = data_encoding::BASE64.encode(payload);
    let encoded =
        percent_encoding::utf8_percent_encode(&base64, percent_encoding::NON_ALPHANUMERIC);
    format!("otpauth-migration://offline?data={encoded}")
}

#[test]
fn no_option_takes_a_secret() {
    let help = |args: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_oathbridge"))
            .args(args)
            .arg("--help")
            .output()
            .expect("help");
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let top = help(&[]);
    let mut pages = vec![top.clone()];
    let commands: Vec<String> = top
        .lines()
        .skip_while(|line| line.trim_end() != "Commands:")
        .skip(1)
        .take_while(|line| line.starts_with("  "))
        .filter_map(|line| line.split_whitespace().next().map(str::to_owned))
        .collect();
    assert!(commands.iter().any(|c| c == "add"), "{top}");
    for command in &commands {
        pages.push(help(&[command]));
    }
    for password_action in ["set", "clear", "unlock"] {
        pages.push(help(&["password", password_action]));
    }
    for page in &pages {
        for option in [
            "--secret",
            "--seed",
            "--key ",
            "--password",
            "--pin",
            "--uri",
        ] {
            assert!(
                !page.contains(option),
                "an option that would put a secret in argv: {option}\n{page}"
            );
        }
    }
    assert!(help(&["add"]).contains("--from <FILE>"));
}

#[test]
fn seeds_stay_out_of_logs_errors_and_output() {
    let mut bed = TestBed::start();
    bed.attach_card(0, &[]);
    let reader = bed.reader(0);
    let on_card = |args: &[&str]| -> Vec<String> {
        ["--reader", reader.as_str()]
            .iter()
            .chain(args)
            .map(|s| s.to_string())
            .collect()
    };

    let ascii_seed = *b"zq-SECRET-seed-77x!9";
    let hotp_seed = *b"hq-HOTPKEY-seed-42#5";
    let uri_seed = random_seed();
    let migration_seed = random_seed();
    let qr_seed = random_seed();
    let mut secrets = vec![
        Secret::new("ascii", &ascii_seed),
        Secret::new("hotp", &hotp_seed),
        Secret::new("uri", &uri_seed),
        Secret::new("migration", &migration_seed),
        Secret::new("qr", &qr_seed),
    ];
    let b32 = |seed: &[u8]| BASE32_NOPAD.encode(seed);

    // Adding: every input format, from stdin and from a file.
    let adds: Vec<(Vec<String>, Vec<u8>)> = vec![
        (
            on_card(&["add", "Leak:base32", "--from", "-"]),
            format!("{}\n", b32(&ascii_seed)).into_bytes(),
        ),
        (
            on_card(&["add", "Leak:hotp", "--type", "hotp", "--from", "-"]),
            b32(&hotp_seed).into_bytes(),
        ),
        (
            on_card(&["add", "--touch", "--from", "-"]),
            format!(
                "otpauth://totp/Leak:uri?secret={}&issuer=Leak",
                b32(&uri_seed)
            )
            .into_bytes(),
        ),
        (
            on_card(&["add", "--from", "-"]),
            migration_uri(&migration_seed, "migration", "Leak").into_bytes(),
        ),
        (
            on_card(&["add", "--from", "-"]),
            qr_png(&format!(
                "otpauth://totp/Leak:qr?secret={}&issuer=Leak",
                b32(&qr_seed)
            )),
        ),
    ];
    for (args, stdin) in &adds {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        checked(&bed, &secrets, &args, stdin, 0);
    }

    // --generate prints its seed on stdout once, by design; stderr stays clean.
    let args = on_card(&["add", "Leak:generated", "--generate"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = run(&bed, &args, b"");
    assert_eq!(output.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let uri = stdout.lines().next().expect("the URI line");
    let generated = uri
        .split_once("secret=")
        .and_then(|(_, rest)| rest.split('&').next())
        .expect("secret parameter");
    let generated = BASE32_NOPAD
        .decode(generated.as_bytes())
        .expect("base32 secret");
    assert!(
        stdout.contains('█') || stdout.contains('▀') || stdout.contains('▄'),
        "no QR code printed:\n{stdout}"
    );
    secrets.push(Secret::new("generated", &generated));
    assert_clean(&secrets, "--generate stderr", b"", &output.stderr);

    // Every other command, verbose.
    let commands: &[&[&str]] = &[
        &["devices"],
        &["--json", "devices"],
        &["list"],
        &["--json", "list", "-H"],
        &["code"],
        &["--json", "code"],
        &["code", "-s", "Leak:base32"],
        &["code", "Leak:base32", "--count", "3", "--at", "1700000000"],
        &["code", "-s", "Leak:hotp"],
        &["code", "-s", "Leak:uri"], // touch, approved by the emulator
        &["code", "-s", "Leak:migration"],
        &["code", "-s", "Leak:qr"],
        &["rename", "Leak:generated", "Leak:renamed"],
        &["delete", "Leak:renamed", "--force"],
    ];
    for args in commands {
        let args = on_card(args);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        checked(&bed, &secrets, &args, b"", 0);
    }

    // --watch: read the first block, then stop it (and look at its argv while it runs).
    let watch = on_card(&["-vvv", "code", "--watch"]);
    let watch: Vec<&str> = watch.iter().map(String::as_str).collect();
    let mut child = bed
        .command(&watch)
        .env(TRACE.0, TRACE.1)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn watch");
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", child.id())).unwrap_or_default();
    assert_clean(&secrets, "watch argv", &cmdline, b"");
    let mut stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut seen = Vec::new();
        let mut buffer = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buffer) {
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&buffer[..n]);
            let _ = tx.send(seen.clone());
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut block = Vec::new();
    while Instant::now() < deadline && !String::from_utf8_lossy(&block).contains("\n\n") {
        if let Ok(seen) = rx.recv_timeout(Duration::from_millis(200)) {
            block = seen;
        }
    }
    common::proc::signal(child.id(), "TERM");
    let status = child.wait().expect("wait watch");
    let mut stderr = Vec::new();
    if let Some(mut pipe) = child.stderr.take() {
        let _ = pipe.read_to_end(&mut stderr);
    }
    let text = String::from_utf8_lossy(&block).into_owned();
    assert!(!status.success(), "watch exited on its own: {text}");
    assert!(text.contains("Leak:base32"), "no watch block: {text:?}");
    assert!(text.contains("[HOTP Account]"), "{text}");
    assert!(text.contains("[Requires Touch]"), "{text}");
    assert!(!text.contains('\x1b'), "escape codes on a pipe: {text:?}");
    assert_clean(&secrets, "code --watch", &block, &stderr);

    // Malformed inputs built around a seed: the error names the problem, not the seed.
    let seed = b32(&ascii_seed);
    let malformed: Vec<(&str, Vec<u8>)> = vec![
        ("bad base32", format!("{seed}!!").into_bytes()),
        ("base32 with a 1", format!("{seed}1").into_bytes()),
        (
            "base32 and punctuation",
            format!("{seed}, 0x18").into_bytes(),
        ),
        (
            "URI digits 9",
            format!("otpauth://totp/X:y?secret={seed}&digits=9").into_bytes(),
        ),
        (
            "URI bad secret",
            format!("otpauth://totp/X:y?secret={seed}0").into_bytes(),
        ),
        (
            "URI unknown algorithm",
            format!("otpauth://totp/X:y?secret={seed}&algorithm=MD5").into_bytes(),
        ),
        (
            "URI unknown type",
            format!("otpauth://motp/X:y?secret={seed}").into_bytes(),
        ),
        ("migration, bad protobuf", {
            let mut payload = migration_uri(&ascii_seed, "x", "X").into_bytes();
            payload.extend_from_slice(b"%FF%FF");
            payload
        }),
        (
            "migration, truncated protobuf",
            migration_uri_of(&[&[0x0A, 0x40, 0x0A, 0x14][..], &ascii_seed[..]].concat())
                .into_bytes(),
        ),
        ("truncated QR PNG", {
            let png = qr_png(&format!("otpauth://totp/X:y?secret={seed}"));
            png[..png.len() * 2 / 3].to_vec()
        }),
        (
            "QR PNG with a bad URI",
            qr_png(&format!("otpauth://totp/X:y?secret={seed}&period=0")),
        ),
    ];
    for (what, stdin) in &malformed {
        let args = on_card(&["add", "X:y", "--from", "-"]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let output = run(&bed, &args, stdin);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{what}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert_clean(&secrets, what, &output.stdout, &output.stderr);
    }

    // Password commands and a locked key, then reset.
    let with_password = |args: &[&str], stdin: &[u8], code: i32| {
        let args = on_card(args);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        checked(&bed, &secrets, &args, stdin, code);
    };
    with_password(&["password", "set"], b"hunter2-oathbridge\n", 0);
    with_password(&["code"], b"", 6);
    with_password(&["password", "unlock"], b"hunter2-oathbridge\n", 0);
    with_password(&["password", "unlock"], b"wrong-password\n", 6);
    with_password(&["password", "clear"], b"hunter2-oathbridge\n", 0);
    with_password(&["reset", "--force"], b"", 0);
}
