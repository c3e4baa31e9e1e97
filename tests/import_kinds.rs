//! More inputs of each kind the import issue listed, found by probing the real binary: text
//! as Windows writes it, labels and exports with padded or repeated issuers, Google
//! Authenticator batches that are out of order, mangled or inconsistent, files that are no
//! export at all, and QR pictures of several kinds. Each runs against an emulated YubiKey
//! behind a private pcscd; accepted inputs are checked by id and by code at unix time
//! 1700000000, refused ones by their exact lines, exit 2 and an unchanged key. Seeds are the
//! ASCII bytes `handed-case-key-000N`; no six characters of one may reach the output.

mod common;

use std::io::Cursor;

use common::cli::CliRun;
use common::import_key::{ImportKey, assert_error_lines};
use image::{DynamicImage, ImageFormat, Rgba, RgbaImage};
use qrcode::{Color, QrCode};

const AT: &str = "1700000000";
/// Base32 of `handed-case-key-000N`, N = 1..=4.
const SEEDS: [&str; 4] = [
    "NBQW4ZDFMQWWGYLTMUWWWZLZFUYDAMBR",
    "NBQW4ZDFMQWWGYLTMUWWWZLZFUYDAMBS",
    "NBQW4ZDFMQWWGYLTMUWWWZLZFUYDAMBT",
    "NBQW4ZDFMQWWGYLTMUWWWZLZFUYDAMBU",
];
/// RFC 6238 codes of seed 1 (6 digits) and seed 2 (8 digits) at [`AT`]; seed 3 as Steam.
const CODE_1: &str = "490998";
const CODE_2_EIGHT: &str = "81511934";
const STEAM_3: &str = "NNKW3";

/// Google Authenticator batches of one export (batch id 77, three QR codes): Example:alice
/// (seed 1), Forge:bob (seed 2, HOTP, 8 digits, counter 5, SHA256) and Mail:carol (seed 3,
/// SHA512). Protobuf written by hand after src/otp/migration.rs' field numbers; base64 and
/// percent-encoding as Google Authenticator writes them.
const BATCH_1_OF_3: &str = "otpauth-migration://offline?data=CjgKFGhhbmRlZC1jYXNlLWtleS0wMDAxEhFhbGljZUBleGFtcGxlLmNvbRoHRXhhbXBsZSABKAEwAhABGAMgAChN";
const BATCH_2_OF_3: &str = "otpauth-migration://offline?data=CioKFGhhbmRlZC1jYXNlLWtleS0wMDAyEgNib2IaBUZvcmdlIAIoAjABOAUQARgDIAEoTQ%3D%3D";
const BATCH_3_OF_3: &str = "otpauth-migration://offline?data=CikKFGhhbmRlZC1jYXNlLWtleS0wMDAzEgVjYXJvbBoETWFpbCADKAEwAhABGAMgAihN";
/// Example:franka> (seed 1): its base64 holds a '+'.
const PLUS_IN_BASE64: &str = "otpauth-migration://offline?data=Ci4KFGhhbmRlZC1jYXNlLWtleS0wMDAxEgdmcmFua2E+GgdFeGFtcGxlIAEoATACEAE=";
/// Batch 6 of an export of 2 (batch id 1).
const BATCH_OUT_OF_RANGE: &str = "otpauth-migration://offline?data=CjgKFGhhbmRlZC1jYXNlLWtleS0wMDAxEhFhbGljZUBleGFtcGxlLmNvbRoHRXhhbXBsZSABKAEwAhABGAIgBSgB";
/// Batch 2 of an export of 2 with batch id 77: disagrees with the batches above (3 codes).
const BATCH_2_OF_2: &str = "otpauth-migration://offline?data=CioKFGhhbmRlZC1jYXNlLWtleS0wMDAyEgNib2IaBUZvcmdlIAIoAjABOAUQARgCIAEoTQ%3D%3D";
/// One entry: name "example: alice" with issuer "Example" (Google keeps the label's prefix).
const NAME_REPEATS_ISSUER: &str = "otpauth-migration://offline?data=CjUKFGhhbmRlZC1jYXNlLWtleS0wMDAxEg5leGFtcGxlOiBhbGljZRoHRXhhbXBsZSABKAEwAhAB";

/// The import tests' key: no seed (nor its lower-case form) may reach the output.
struct Key(ImportKey);

impl std::ops::Deref for Key {
    type Target = ImportKey;
    fn deref(&self) -> &ImportKey {
        &self.0
    }
}

impl Key {
    fn new() -> Key {
        let lower: Vec<String> = SEEDS.iter().map(|s| s.to_lowercase()).collect();
        let secrets: Vec<&str> = SEEDS
            .iter()
            .copied()
            .chain(lower.iter().map(String::as_str))
            .collect();
        Key(ImportKey::new(&secrets))
    }

    fn code(&self, id: &str) -> String {
        self.0.code(id, AT)
    }

    fn file(&self, name: &str, bytes: &[u8]) -> String {
        let path = self.bed.dir().join(name);
        std::fs::write(&path, bytes).expect("write input file");
        path.display().to_string()
    }

    fn add(&self, files: &[(&str, &[u8])]) -> CliRun {
        let mut args = vec!["add".to_owned()];
        for (name, bytes) in files {
            args.push("--from".into());
            args.push(self.file(name, bytes));
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.run(&args, "")
    }

    /// Added with exit 0: exactly `ids` on the (reset) key afterwards.
    fn added(&self, what: &str, files: &[(&str, &[u8])], ids: &[&str]) -> CliRun {
        self.reset();
        let run = self.add(files);
        assert_eq!(run.code, 0, "{what}: {}", run.stderr);
        let mut want: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
        want.sort();
        assert_eq!(self.ids(), want, "{what}");
        run
    }

    /// Refused with exit 2 and exactly these lines (each after `error: `), key unchanged.
    fn refused(&self, what: &str, files: &[(&str, &[u8])], lines: &[&str]) {
        let before = self.ids();
        let run = self.add(files);
        assert_eq!(run.code, 2, "{what}: exit {}: {}", run.code, run.stderr);
        // Files are named by their path; compare from the file name on.
        let stderr = run
            .stderr
            .replace(&format!("{}/", self.bed.dir().display()), "");
        assert_error_lines(what, &stderr, lines);
        assert_eq!(self.ids(), before, "{what}: the key changed");
    }
}

fn utf16(text: &str, big_endian: bool, bom: bool) -> Vec<u8> {
    let mark = bom.then_some(0xFEFF_u16);
    mark.into_iter()
        .chain(text.encode_utf16())
        .flat_map(|unit| {
            if big_endian {
                unit.to_be_bytes()
            } else {
                unit.to_le_bytes()
            }
        })
        .collect()
}

#[test]
fn text_as_windows_writes_it_and_labels_as_people_type_them() {
    let key = Key::new();
    let lines = format!(
        "# exported\r\n\tOTPAUTH://TOTP/Example:%20alice%40example.com?secret={}&issuer=Example \r\n\r\n\
         otpauth://totp/Forge%20%3A%20bob?secret={}&digits=8\u{a0}\r\n",
        SEEDS[0].to_lowercase(),
        SEEDS[1]
    );
    let want = ["Example:alice@example.com", "Forge:bob"];
    for (what, bytes) in [
        ("UTF-8", lines.clone().into_bytes()),
        (
            "UTF-16 LE with BOM (Notepad, PowerShell)",
            utf16(&lines, false, true),
        ),
        ("UTF-16 BE with BOM", utf16(&lines, true, true)),
        ("UTF-16 LE without BOM", utf16(&lines, false, false)),
    ] {
        key.added(what, &[("accounts.txt", &bytes)], &want);
        assert_eq!(key.code("Example:alice@example.com"), CODE_1, "{what}");
        assert_eq!(key.code("Forge:bob"), CODE_2_EIGHT, "{what}");
    }
    // Padded and unpadded spellings of one id are one id: refused as a repeat.
    let twice = format!(
        "otpauth://totp/Example:alice?secret={}\notpauth://totp/Example:%20alice?secret={}\n",
        SEEDS[0], SEEDS[1]
    );
    key.refused(
        "the same id padded",
        &[("twice.txt", twice.as_bytes())],
        &["twice.txt: line 2: Example:alice: the same id as twice.txt: line 1; an id can be added once"],
    );
    // A blank name is no name.
    let blank = format!("otpauth://totp/Example:%20%20?secret={}", SEEDS[0]);
    key.refused(
        "blank name",
        &[("blank.txt", blank.as_bytes())],
        &["blank.txt: line 1: account name is empty"],
    );
    let odd = [0xFF, 0xFE, b'o', 0, b't'];
    key.refused(
        "broken UTF-16",
        &[("odd.txt", &odd)],
        &["odd.txt: not valid UTF-16 text (save it as UTF-8)"],
    );
}

#[test]
fn migration_batches_in_any_order_mangled_or_inconsistent() {
    let key = Key::new();
    // Out of order, over two files: one import.
    let first = format!("{BATCH_3_OF_3}\r\n{BATCH_1_OF_3}\r\n");
    key.added(
        "batches out of order",
        &[
            ("b3b1.txt", first.as_bytes()),
            ("b2.txt", BATCH_2_OF_3.as_bytes()),
        ],
        &["Example:alice@example.com", "Forge:bob", "Mail:carol"],
    );
    assert_eq!(key.code("Example:alice@example.com"), CODE_1);
    // A missing batch: the others are imported, the missing one named.
    let run = key.added(
        "batch 2 missing",
        &[(
            "b1b3.txt",
            format!("{BATCH_1_OF_3}\n{BATCH_3_OF_3}\n").as_bytes(),
        )],
        &["Example:alice@example.com", "Mail:carol"],
    );
    assert!(
        run.stderr.contains(
            "note: the export has 3 QR codes; code(s) 2 were not given, so their accounts are not imported"
        ),
        "{}",
        run.stderr
    );
    // '+' turned into spaces by a form-decoding scanner: read as '+'.
    let spaced = PLUS_IN_BASE64.replace('+', " ");
    key.added(
        "data with spaces",
        &[("spaced.txt", spaced.as_bytes())],
        &["Example:franka>"],
    );
    assert_eq!(key.code("Example:franka>"), CODE_1);
    // The label's issuer repeated in the name, in another case and with a space: dropped.
    key.added(
        "name repeats the issuer",
        &[("repeat.txt", NAME_REPEATS_ISSUER.as_bytes())],
        &["Example:alice"],
    );
    key.reset();
    key.refused(
        "batch outside its export",
        &[("oob.txt", BATCH_OUT_OF_RANGE.as_bytes())],
        &["oob.txt: line 1: data: QR code number 6 is outside its export of 2 QR codes"],
    );
    key.refused(
        "batches disagreeing on the export's size",
        &[(
            "sizes.txt",
            format!("{BATCH_1_OF_3}\n{BATCH_2_OF_2}\n").as_bytes(),
        )],
        &["sizes.txt: line 2: data: this QR code says its export has 2 QR codes, the one at sizes.txt: line 1 says 3"],
    );
}

#[test]
fn app_exports_with_padded_or_repeated_issuers() {
    let key = Key::new();
    let aegis = format!(
        r#"{{"version":1,"header":{{"slots":null,"params":null}},"db":{{"version":3,"entries":[
        {{"type":"totp","uuid":"a","name":" alice@example.com ","issuer":"Example ","note":null,"favorite":false,"icon":null,"info":{{"secret":"{}","algo":"SHA1","digits":6,"period":30}},"groups":[]}},
        {{"type":"steam","uuid":"b","name":"Steam: frank","issuer":"Steam","note":"","favorite":false,"icon":null,"info":{{"secret":"{}","algo":"SHA1","digits":5,"period":30}},"groups":["g"]}}],
        "groups":[{{"uuid":"g","name":"Games"}}]}}}}"#,
        SEEDS[0], SEEDS[2]
    );
    key.added(
        "Aegis",
        &[("aegis.json", aegis.as_bytes())],
        &["Example:alice@example.com", "Steam:frank"],
    );
    assert_eq!(key.code("Steam:frank"), STEAM_3);
    let bitwarden = format!(
        r#"{{"encrypted":false,"folders":[],"items":[{{"type":1,"name":"Example","notes":null,"login":{{"username":"alice","totp":"otpauth://totp/Example:%20alice?secret={}&issuer=Example"}}}}]}}"#,
        SEEDS[0]
    );
    key.added(
        "Bitwarden",
        &[("bw.json", bitwarden.as_bytes())],
        &["Example:alice"],
    );
    assert_eq!(key.code("Example:alice"), CODE_1);
    // The same export saved as UTF-16 by a Windows editor.
    key.added(
        "Bitwarden in UTF-16",
        &[("bw16.json", &utf16(&bitwarden, false, true))],
        &["Example:alice"],
    );
}

#[test]
fn files_that_are_no_export_are_named() {
    let key = Key::new();
    key.refused(
        "a ZIP archive",
        &[("backup.zip", b"PK\x03\x04\x14\0\0\0\x08\0NBQW4ZDF")],
        &["backup.zip: binary data, not text, a QR code image or an app's JSON export"],
    );
    key.refused(
        "a PDF",
        &[("sheet.pdf", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")],
        &["sheet.pdf: unsupported image format PDF (save it as PNG or JPEG)"],
    );
}

/// `text`'s QR code, `scale` pixels a module with a 4-module quiet zone, at `at` on `canvas`.
fn draw(canvas: &mut RgbaImage, text: &str, at: (u32, u32), scale: u32, colors: [Rgba<u8>; 2]) {
    let code = QrCode::new(text.as_bytes()).expect("encodable");
    let width = code.width() as u32;
    let side = width + 8;
    let dark = code.to_colors();
    for y in 0..side * scale {
        for x in 0..side * scale {
            let (mx, my) = (x / scale, y / scale);
            let inside = (4..width + 4).contains(&mx) && (4..width + 4).contains(&my);
            let is_dark = inside && dark[((my - 4) * width + mx - 4) as usize] == Color::Dark;
            canvas.put_pixel(at.0 + x, at.1 + y, colors[usize::from(!is_dark)]);
        }
    }
}

fn side(text: &str, scale: u32) -> u32 {
    (QrCode::new(text.as_bytes()).expect("encodable").width() as u32 + 8) * scale
}

fn encode(image: DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    image.write_to(&mut out, format).expect("encode image");
    out.into_inner()
}

#[test]
fn qr_pictures_of_migration_exports_and_crowded_screens() {
    let key = Key::new();
    // Two batches, each a PNG screenshot, given in reverse order.
    let batch = |text: &str| {
        let s = side(text, 4);
        let mut canvas = RgbaImage::from_pixel(s, s, Rgba([255, 255, 255, 255]));
        draw(
            &mut canvas,
            text,
            (0, 0),
            4,
            [Rgba([0, 0, 0, 255]), Rgba([255, 255, 255, 255])],
        );
        encode(DynamicImage::ImageRgba8(canvas), ImageFormat::Png)
    };
    let (one, two, three) = (
        batch(BATCH_1_OF_3),
        batch(BATCH_2_OF_3),
        batch(BATCH_3_OF_3),
    );
    key.added(
        "migration screenshots",
        &[("3.png", &three), ("2.png", &two), ("1.png", &one)],
        &["Example:alice@example.com", "Forge:bob", "Mail:carol"],
    );
    // Light modules on a transparent background (a dark-mode app's export icon), with a
    // help link's code beside the account's.
    let account = format!(
        "otpauth://totp/Example:alice?secret={}&issuer=Example",
        SEEDS[0]
    );
    let link = "https://example.com/help/two-factor";
    let (a, l) = (side(&account, 5), side(link, 5));
    let mut canvas = RgbaImage::from_pixel(a + l + 40, a.max(l) + 20, Rgba([0, 0, 0, 0]));
    let light_on_clear = [Rgba([250, 250, 250, 255]), Rgba([0, 0, 0, 0])];
    draw(&mut canvas, link, (10, 10), 5, light_on_clear);
    draw(&mut canvas, &account, (l + 30, 10), 5, light_on_clear);
    let png = encode(DynamicImage::ImageRgba8(canvas.clone()), ImageFormat::Png);
    let run = key.added(
        "light on transparent",
        &[("clear.png", &png)],
        &["Example:alice"],
    );
    assert!(
        run.stderr
            .contains("found 2 QR codes, 1 of them with accounts"),
        "{}",
        run.stderr
    );
    assert_eq!(key.code("Example:alice"), CODE_1);
    // The same picture flattened onto a dark background, as JPEG.
    let mut dark = RgbaImage::from_pixel(canvas.width(), canvas.height(), Rgba([30, 30, 40, 255]));
    image::imageops::overlay(&mut dark, &canvas, 0, 0);
    let jpeg = encode(
        DynamicImage::ImageRgb8(DynamicImage::ImageRgba8(dark).to_rgb8()),
        ImageFormat::Jpeg,
    );
    key.added(
        "light on dark JPEG",
        &[("dark.jpg", &jpeg)],
        &["Example:alice"],
    );
}

#[test]
fn force_is_planned_whole_before_the_first_write() {
    let key = Key::new();
    // 63 of the YubiKey 5.7's 64 places used; the first holds seed 1.
    let fill: String = (1..=63)
        .map(|n| format!("otpauth://totp/Fill:n{n}?secret={}\n", SEEDS[0]))
        .collect();
    let names: Vec<String> = (1..=63).map(|n| format!("Fill:n{n}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    key.added("63 accounts", &[("fill.txt", fill.as_bytes())], &names);
    // Replacing n1 and adding two more needs 65 places: nothing stays, n1 keeps its seed.
    let more = format!(
        "otpauth://totp/Fill:n1?secret={}\notpauth://totp/New:a?secret={}\notpauth://totp/New:b?secret={}\n",
        SEEDS[1], SEEDS[2], SEEDS[3]
    );
    let path = key.file("more.txt", more.as_bytes());
    let run = key.run(&["add", "--force", "--from", &path], "");
    // Over PC/SC the emulator is a generic OATH key of unknown capacity: the key itself says
    // it is full. The new accounts go first, so the replacement was never written.
    assert_eq!(run.code, 8, "{}", run.stderr);
    assert!(
        run.stderr.contains("no space left on the key")
            && run.stderr.contains("the key is as it was before")
            && !run.stderr.contains("replaced"),
        "{}",
        run.stderr
    );
    assert_eq!(key.ids().len(), 63);
    assert_eq!(key.code("Fill:n1"), CODE_1, "n1 was overwritten");
    // One new account fits: n1 replaced (seed 2, 6 digits), New:a added.
    let fits = format!(
        "otpauth://totp/Fill:n1?secret={}\notpauth://totp/New:a?secret={}\n",
        SEEDS[1], SEEDS[2]
    );
    let path = key.file("fits.txt", fits.as_bytes());
    let run = key.run(&["add", "--force", "--from", &path], "");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(key.ids().len(), 64);
    assert_eq!(key.code("Fill:n1"), "511934");
}
