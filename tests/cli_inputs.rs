//! Malformed seed inputs against the real binary and an emulated card: each is refused with
//! exit code 2 and a one-line message, and nothing reaches the key.

mod common;

use std::io::{Cursor, Write};
use std::process::{Output, Stdio};
use std::time::Duration;

use common::TestBed;
use image::{GrayImage, ImageFormat, Luma};
use qrcode::{Color, QrCode};

const SEED: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";

/// Runs `oathbridge args` with `stdin`, bounded to 30 s.
fn run(bed: &TestBed, args: &[&str], stdin: &[u8]) -> Output {
    let mut cmd = bed.command(args);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn oathbridge");
    let mut pipe = child.stdin.take().expect("stdin");
    // The CLI may refuse before reading everything: a closed pipe is fine.
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

fn png(canvas: &GrayImage) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    canvas
        .write_to(&mut out, ImageFormat::Png)
        .expect("encode PNG");
    out.into_inner()
}

fn qr_png(text: &str) -> Vec<u8> {
    let code = QrCode::new(text.as_bytes()).expect("encodable");
    let modules = code.width() as u32;
    let scale = 4;
    let side = (modules + 8) * scale;
    let mut canvas = GrayImage::from_pixel(side, side, Luma([255]));
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
    png(&canvas)
}

/// Clap's own usage errors end with this hint line; ours are a single line.
const CLAP_HINT: &str = "For more information, try '--help'.";

fn assert_refused(bed: &TestBed, what: &str, args: &[&str], stdin: &[u8]) {
    let output = run(bed, args, stdin);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(2),
        "{what}: expected exit 2, got {:?}; stderr: {stderr}",
        output.status.code()
    );
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|line| !line.trim().is_empty() && line.trim() != CLAP_HINT)
        .collect();
    assert_eq!(
        lines.len(),
        1,
        "{what}: expected one error line, got {stderr:?}"
    );
    assert!(lines[0].starts_with("error: "), "{what}: {stderr:?}");
    assert!(
        !stderr.contains(SEED) && !stderr.contains("JBSWY3DP"),
        "{what}: the error quotes the seed: {stderr:?}"
    );
    assert!(
        output.stdout.is_empty(),
        "{what}: printed {:?}",
        String::from_utf8_lossy(&output.stdout)
    );
}

#[test]
fn malformed_inputs_exit_2_with_one_line_and_write_nothing() {
    let mut bed = TestBed::start();
    bed.attach_card(0, &[]);
    let reader = bed.reader(0);
    let add = |name: Option<&str>| {
        let mut args = vec!["--reader", &reader, "add"];
        args.extend(name);
        args.extend(["--from", "-"]);
        args.into_iter().map(str::to_owned).collect::<Vec<_>>()
    };

    let uri_cases: &[(&str, String)] = &[
        (
            "wrong scheme",
            format!("https://totp/Example:alice?secret={SEED}"),
        ),
        (
            "wrong OTP type",
            format!("otpauth://motp/Example:alice?secret={SEED}"),
        ),
        (
            "missing secret",
            "otpauth://totp/Example:alice?issuer=Example".to_owned(),
        ),
        (
            "empty secret",
            "otpauth://totp/Example:alice?secret=".to_owned(),
        ),
        (
            "bad base32",
            format!("otpauth://totp/Example:alice?secret={SEED}!!19"),
        ),
        (
            "digits 9",
            format!("otpauth://totp/Example:alice?secret={SEED}&digits=9"),
        ),
        (
            "digits 5",
            format!("otpauth://totp/Example:alice?secret={SEED}&digits=5"),
        ),
        (
            "period 0",
            format!("otpauth://totp/Example:alice?secret={SEED}&period=0"),
        ),
        (
            "unknown algorithm",
            format!("otpauth://totp/Example:alice?secret={SEED}&algorithm=MD5"),
        ),
        (
            "bad percent-encoding",
            format!("otpauth://totp/Example:%FF%FEalice?secret={SEED}"),
        ),
        (
            "bad percent-encoding in issuer",
            format!("otpauth://totp/alice?secret={SEED}&issuer=%C3%28"),
        ),
        (
            "name over 64 bytes",
            format!("otpauth://totp/{}?secret={SEED}", "a".repeat(65)),
        ),
        (
            "migration with bad base64",
            "otpauth-migration://offline?data=%%%not-base64!!".to_owned(),
        ),
        (
            "migration with bad protobuf",
            "otpauth-migration://offline?data=AAAAAAAA".to_owned(),
        ),
        (
            "migration without data",
            "otpauth-migration://offline".to_owned(),
        ),
        ("empty input", String::new()),
        (
            "not UTF-8",
            String::from_utf8_lossy(b"\xff\xfe\xfd").into_owned(),
        ),
    ];
    for (what, input) in uri_cases {
        let args = add(None);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_refused(&bed, what, &args, input.as_bytes());
    }
    // Raw non-UTF-8 bytes too (the lossy string above is valid UTF-8).
    let args = add(Some("Example:alice"));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_refused(&bed, "raw non-UTF-8", &args, b"\xff\xfe\xfd");

    let uri = format!("otpauth://totp/Example:alice?secret={SEED}&issuer=Example");
    let good_png = qr_png(&uri);
    let image_cases: Vec<(&str, Vec<u8>)> = vec![
        ("truncated PNG", good_png[..good_png.len() / 2].to_vec()),
        ("PNG with a garbled body", {
            let mut png = good_png.clone();
            for byte in png.iter_mut().skip(40).step_by(3) {
                *byte ^= 0x5A;
            }
            png
        }),
        (
            "PNG without a QR code",
            png(&GrayImage::from_pixel(200, 200, Luma([255]))),
        ),
        (
            "JPEG magic then garbage",
            b"\xFF\xD8\xFF\xE0garbage".to_vec(),
        ),
        (
            "QR code of a non-otpauth text",
            qr_png("https://example.com/not-a-seed"),
        ),
        (
            "QR code of a bad URI",
            qr_png(&format!("otpauth://totp/x?secret={SEED}&digits=9")),
        ),
    ];
    for (what, bytes) in &image_cases {
        let args = add(None);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_refused(&bed, what, &args, bytes);
        // The same through a file, as the AWS CLI leaves it.
        let path = bed.dir().join("input.png");
        std::fs::write(&path, bytes).expect("write image");
        let path = path.display().to_string();
        assert_refused(
            &bed,
            what,
            &["--reader", &reader, "add", "--from", &path],
            &[],
        );
    }

    let long_name = format!("Example:{}", "n".repeat(60));
    let flag_cases: &[(&str, Vec<&str>)] = &[
        (
            "NAME over 64 bytes",
            vec!["add", long_name.as_str(), "--from", "-"],
        ),
        (
            "--digits 5",
            vec!["add", "Example:alice", "--digits", "5", "--from", "-"],
        ),
        (
            "--digits 9",
            vec!["add", "Example:alice", "--digits", "9", "--from", "-"],
        ),
        ("bare seed without NAME", vec!["add", "--from", "-"]),
        (
            "--period 0",
            vec!["add", "Example:alice", "--period", "0", "--from", "-"],
        ),
        (
            "unknown --algorithm",
            vec!["add", "Example:alice", "--algorithm", "md5", "--from", "-"],
        ),
    ];
    for (what, args) in flag_cases {
        let mut full = vec!["--reader", reader.as_str()];
        full.extend(args);
        assert_refused(&bed, what, &full, SEED.as_bytes());
    }

    let listing = run(&bed, &["--reader", &reader, "--json", "list"], &[]);
    assert_eq!(listing.status.code(), Some(0));
    let accounts: serde_json::Value = serde_json::from_slice(&listing.stdout).expect("JSON");
    assert_eq!(accounts, serde_json::json!([]), "something was written");

    // The corpus is not vacuous: the same QR image and seed are accepted when well formed.
    let output = run(
        &bed,
        &["--reader", &reader, "add", "--from", "-"],
        &good_png,
    );
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
