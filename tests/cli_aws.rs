//! The AWS IAM virtual MFA flow end to end: the two ways AWS hands out a seed (a QR code PNG,
//! and a Base32StringSeed file), `add --from FILE` onto an emulated card behind the real
//! pcscd, then the two consecutive codes `aws iam enable-mfa-device` wants.

mod common;

use std::io::Cursor;
use std::process::Output;
use std::time::Duration;

use common::TestBed;
use data_encoding::BASE32_NOPAD;
use image::{GrayImage, ImageFormat, Luma};
use oathbridge::otp::{HashAlgorithm, totp};
use qrcode::{Color, QrCode};

const ACCOUNT: &str = "alice@123456789012";
const ISSUER: &str = "Amazon Web Services";

/// `text` as a QR code PNG the way the AWS console draws it: black on white, 4-module
/// quiet zone, a few pixels a module.
fn qr_png(text: &str) -> Vec<u8> {
    let code = QrCode::new(text.as_bytes()).expect("URI fits in a QR code");
    let modules = code.width() as u32;
    let (scale, quiet) = (5, 4);
    let side = (modules + 2 * quiet) * scale;
    let mut canvas = GrayImage::from_pixel(side, side, Luma([255]));
    for (index, color) in code.to_colors().into_iter().enumerate() {
        if color == Color::Dark {
            let (x, y) = (index as u32 % modules, index as u32 / modules);
            for dy in 0..scale {
                for dx in 0..scale {
                    canvas.put_pixel(
                        (x + quiet) * scale + dx,
                        (y + quiet) * scale + dy,
                        Luma([0]),
                    );
                }
            }
        }
    }
    let mut png = Cursor::new(Vec::new());
    canvas
        .write_to(&mut png, ImageFormat::Png)
        .expect("encode PNG");
    png.into_inner()
}

fn run(bed: &TestBed, args: &[&str]) -> Output {
    let mut cmd = bed.command(args);
    let output = common::output_with_timeout(&mut cmd, Duration::from_secs(30))
        .unwrap_or_else(|| panic!("oathbridge {args:?} did not finish within 30 s"));
    assert_eq!(
        output.status.code(),
        Some(0),
        "oathbridge {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&output.stderr),
        bed.logs()
    );
    output
}

#[test]
fn aws_qr_png_and_base32_seed_file_give_rfc6238_codes() {
    let mut bed = TestBed::start();
    bed.attach_card(0, &[]);
    let reader = bed.reader(0);

    // AWS virtual MFA seeds are 40 random bytes (64 base32 characters).
    let mut qr_seed = [0u8; 40];
    let mut file_seed = [0u8; 40];
    getrandom::fill(&mut qr_seed).expect("random");
    getrandom::fill(&mut file_seed).expect("random");
    let uri = format!(
        "otpauth://totp/Amazon%20Web%20Services:{ACCOUNT}?secret={}&issuer=Amazon%20Web%20Services",
        BASE32_NOPAD.encode(&qr_seed)
    );
    let png_path = bed.dir().join("alice-qr.png");
    std::fs::write(&png_path, qr_png(&uri)).expect("write PNG");
    // What `--bootstrap-method Base32StringSeed --outfile` writes.
    let seed_path = bed.dir().join("bob-seed.txt");
    std::fs::write(&seed_path, format!("{}\n", BASE32_NOPAD.encode(&file_seed)))
        .expect("write seed");

    let png_arg = png_path.display().to_string();
    let seed_arg = seed_path.display().to_string();
    run(&bed, &["--reader", &reader, "add", "--from", &png_arg]);
    run(
        &bed,
        &[
            "--reader",
            &reader,
            "add",
            "Amazon Web Services:bob@123456789012",
            "--from",
            &seed_arg,
        ],
    );

    let listing = run(&bed, &["--reader", &reader, "--json", "list"]);
    let accounts: serde_json::Value = serde_json::from_slice(&listing.stdout).expect("JSON");
    let ids: Vec<&str> = accounts
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|a| a["id"].as_str())
        .collect();
    assert_eq!(
        ids,
        [
            format!("{ISSUER}:{ACCOUNT}"),
            format!("{ISSUER}:bob@123456789012")
        ]
    );

    for (query, seed) in [(ACCOUNT, &qr_seed), ("bob@123456789012", &file_seed)] {
        for at in [1_700_000_000u64, 1_700_000_029, 2_000_000_015] {
            let output = run(
                &bed,
                &[
                    "--reader",
                    &reader,
                    "code",
                    "-s",
                    query,
                    "--count",
                    "2",
                    "--at",
                    &at.to_string(),
                ],
            );
            let stdout = String::from_utf8(output.stdout).expect("UTF-8");
            let codes: Vec<&str> = stdout.lines().collect();
            let expected = [
                totp(HashAlgorithm::Sha1, seed, at, 30, 6),
                totp(HashAlgorithm::Sha1, seed, at + 30, 30, 6),
            ];
            assert_eq!(codes, expected, "{query} at {at}");
        }
    }
}
