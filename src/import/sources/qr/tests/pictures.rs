//! Test pictures drawn from scratch (no downloaded images): QR codes on canvases that look like
//! the pictures people have, and hand-built files for formats `image` does not write.

use std::io::Cursor;

use image::codecs::jpeg::JpegEncoder;
use image::imageops::{self, FilterType};
use image::{DynamicImage, GrayImage, ImageBuffer, ImageFormat, Luma, Pixel, Rgb, RgbImage};
use qrcode::{Color, QrCode};

pub const CAROL: &str = "otpauth://totp/Example:carol@example.com?secret=NBQW4ZDFMQWWGYLTMUWWWZLZFUYDAMBR&issuer=Example&digits=6";
pub const DAVE: &str =
    "otpauth://totp/dave@example.com?secret=NBQW4ZDFMQWWGYLTMUWWWZLZFUYDAMBS&digits=8";
pub const FRANK: &str =
    "otpauth://totp/Steam:frank?secret=NBQW4ZDFMQWWGYLTMUWWWZLZFUYDAMBT&issuer=Steam&digits=5";
pub const HELP_URL: &str = "https://example.com/help/two-factor";

/// xorshift64* pseudo-random numbers: the same pictures on every run.
pub struct Prng(u64);

impl Prng {
    pub fn new(seed: u64) -> Self {
        Prng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u32) -> u32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        ((self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) as u32) % n.max(1)
    }
}

/// The QR code of `text` with its 4-module quiet zone: side in modules, and which are dark.
pub fn modules(text: &[u8]) -> (u32, Vec<bool>) {
    let code = QrCode::new(text).expect("encodable");
    let (width, colors) = (code.width() as u32, code.to_colors());
    let side = width + 8;
    let dark = (0..side * side).map(|i| {
        let (x, y) = (i % side, i / side);
        let inside = (4..width + 4).contains(&x) && (4..width + 4).contains(&y);
        inside && colors[((y - 4) * width + x - 4) as usize] == Color::Dark
    });
    (side, dark.collect())
}

/// Side in pixels of `text`'s code at `scale` pixels a module, quiet zone included.
pub fn code_side(text: &str, scale: u32) -> u32 {
    modules(text.as_bytes()).0 * scale
}

/// Draw the code of `text`, quiet zone included, top-left corner at `at`, `scale` pixels a
/// module, in `dark` and `light`.
pub fn draw<P: Pixel>(
    canvas: &mut ImageBuffer<P, Vec<P::Subpixel>>,
    text: &[u8],
    at: (u32, u32),
    scale: u32,
    [dark, light]: [P; 2],
) {
    let (side, dark_modules) = modules(text);
    for y in 0..side * scale {
        for x in 0..side * scale {
            let is_dark = dark_modules[((y / scale) * side + x / scale) as usize];
            canvas.put_pixel(at.0 + x, at.1 + y, if is_dark { dark } else { light });
        }
    }
}

/// `text`'s code alone, black on white, `scale` pixels a module.
pub fn plain_code(text: &str, scale: u32) -> GrayImage {
    let side = code_side(text, scale);
    let mut canvas = GrayImage::new(side, side);
    draw(
        &mut canvas,
        text.as_bytes(),
        (0, 0),
        scale,
        [Luma([0]), Luma([255])],
    );
    canvas
}

/// `image` as a file of `format`, with the `image` crate's default settings.
pub fn encode(image: impl Into<DynamicImage>, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    image.into().write_to(&mut out, format).expect("encodable");
    out.into_inner()
}

/// `image` as a JPEG file of `quality` (1 to 100).
pub fn jpeg(image: &RgbImage, quality: u8) -> Vec<u8> {
    let mut out = Vec::new();
    let encoder = JpegEncoder::new_with_quality(&mut out, quality);
    image.write_with_encoder(encoder).expect("encodable");
    out
}

/// A busy app screen: gradient, status bar, cards with lines of text-like marks, buttons and
/// a picture.
pub fn screen(width: u32, height: u32, rng: &mut Prng) -> RgbImage {
    let mut canvas = RgbImage::from_fn(width, height, |_, y| {
        let shade = (20 * y / height) as u8;
        Rgb([245 - shade, 246 - shade, 250 - shade / 2])
    });
    fill(&mut canvas, (0, 0, width, 48), Rgb([32, 33, 40]));
    text_line(&mut canvas, (16, 18), width / 3, Rgb([230, 230, 230]), rng);
    let mut top = 64;
    while top + 140 < height {
        let card_height = 100 + rng.below(160);
        let card = (12, top, width - 24, card_height.min(height - top - 12));
        fill(&mut canvas, card, Rgb([200, 202, 210]));
        fill(
            &mut canvas,
            (card.0 + 1, card.1 + 1, card.2 - 2, card.3 - 2),
            Rgb([255; 3]),
        );
        for line in 0..(card.3 - 24) / 22 {
            let x = card.0 + 16;
            text_line(
                &mut canvas,
                (x, card.1 + 14 + line * 22),
                card.2 - 40,
                Rgb([60; 3]),
                rng,
            );
        }
        if rng.below(3) == 0 {
            let button = (card.0 + card.2 - 140, card.1 + card.3 - 44, 120, 32);
            fill(&mut canvas, button, Rgb([30, 100, 220]));
            text_line(
                &mut canvas,
                (button.0 + 14, button.1 + 10),
                90,
                Rgb([255; 3]),
                rng,
            );
        }
        top += card.3 + 16;
    }
    let picture = (width / 2, 60, width / 3, height / 8);
    for y in picture.1..picture.1 + picture.3 {
        for x in picture.0..picture.0 + picture.2 {
            let (u, v) = (
                (x - picture.0) * 255 / picture.2,
                (y - picture.1) * 255 / picture.3,
            );
            canvas.put_pixel(x, y, Rgb([u as u8, v as u8, 160]));
        }
    }
    canvas
}

/// Words of glyph-sized marks along a line of text, at most `length` pixels long.
fn text_line(
    canvas: &mut RgbImage,
    (left, top): (u32, u32),
    length: u32,
    ink: Rgb<u8>,
    rng: &mut Prng,
) {
    let mut x = left;
    while x + 12 < left + length {
        for _ in 0..2 + rng.below(7) {
            let (glyph, rise) = (3 + rng.below(5), rng.below(4));
            fill(canvas, (x, top + rise, glyph, 11 - rise), ink);
            x += glyph + 2;
        }
        x += 7;
    }
}

/// Fill the rectangle (left, top, width, height), clipped to the canvas.
fn fill(canvas: &mut RgbImage, (left, top, width, height): (u32, u32, u32, u32), color: Rgb<u8>) {
    for y in top..(top + height).min(canvas.height()) {
        for x in left..(left + width).min(canvas.width()) {
            canvas.put_pixel(x, y, color);
        }
    }
}

/// A `width` x `height` screen with the codes of `texts` drawn at their positions, `scale`
/// pixels a module, black on white.
pub fn screenshot(width: u32, height: u32, codes: &[(&str, u32, u32)], scale: u32) -> RgbImage {
    let mut canvas = screen(
        width,
        height,
        &mut Prng::new(u64::from(width) * 7 + u64::from(height)),
    );
    for &(text, x, y) in codes {
        draw(
            &mut canvas,
            text.as_bytes(),
            (x, y),
            scale,
            [Rgb([0; 3]), Rgb([255; 3])],
        );
    }
    canvas
}

/// `image` scaled by `factor` with a smoothing filter.
pub fn scaled(image: &RgbImage, factor: f32, filter: FilterType) -> RgbImage {
    let size = |side: u32| (side as f32 * factor).round() as u32;
    imageops::resize(image, size(image.width()), size(image.height()), filter)
}

/// Settings of a photo of a printed code.
pub struct Photo {
    pub size: (u32, u32),
    pub module: u32,
    pub degrees: f32,
    /// Brightness at the darkest corner, relative to the lightest (0 to 1).
    pub shadow: f32,
    pub blur: f32,
    /// Amplitude of the noise added to each pixel, in grey levels.
    pub noise: u32,
}

/// A photo of `text`'s code on paper: rotated, lit unevenly, blurred, noisy, warm-tinted.
pub fn photo(text: &str, settings: &Photo, rng: &mut Prng) -> RgbImage {
    let (width, height) = settings.size;
    let mut paper = GrayImage::from_pixel(width, height, Luma([215]));
    let side = code_side(text, settings.module);
    let at = ((width - side) / 2, (height - side) / 2);
    draw(
        &mut paper,
        text.as_bytes(),
        at,
        settings.module,
        [Luma([40]), Luma([215])],
    );
    let rotated = rotated(&paper, settings.degrees, 150);
    let blurred = imageops::blur(&rotated, settings.blur);
    RgbImage::from_fn(width, height, |x, y| {
        let light = 1.0
            - (1.0 - settings.shadow) * (x as f32 / width as f32 + y as f32 / height as f32) / 2.0;
        let noise = rng.below(2 * settings.noise + 1) as f32 - settings.noise as f32;
        let grey = f32::from(blurred.get_pixel(x, y)[0]) * light + noise;
        Rgb([1.0, 0.96, 0.88].map(|tint| (grey * tint).clamp(0.0, 255.0) as u8))
    })
}

/// `image` turned by `degrees` about its centre (bilinear), `fill` where nothing maps.
pub fn rotated(image: &GrayImage, degrees: f32, fill: u8) -> GrayImage {
    let (sin, cos) = degrees.to_radians().sin_cos();
    let (cx, cy) = (image.width() as f32 / 2.0, image.height() as f32 / 2.0);
    let sample = |x: f32, y: f32| {
        let inside = x >= 0.0 && y >= 0.0 && x < image.width() as f32 && y < image.height() as f32;
        if inside {
            f32::from(image.get_pixel(x as u32, y as u32)[0])
        } else {
            f32::from(fill)
        }
    };
    GrayImage::from_fn(image.width(), image.height(), |x, y| {
        let (dx, dy) = (x as f32 - cx, y as f32 - cy);
        let (sx, sy) = (cos * dx + sin * dy + cx, -sin * dx + cos * dy + cy);
        let (fx, fy) = (sx - sx.floor(), sy - sy.floor());
        let (x0, y0) = (sx.floor(), sy.floor());
        let top = sample(x0, y0) * (1.0 - fx) + sample(x0 + 1.0, y0) * fx;
        let bottom = sample(x0, y0 + 1.0) * (1.0 - fx) + sample(x0 + 1.0, y0 + 1.0) * fx;
        Luma([(top * (1.0 - fy) + bottom * fy).round() as u8])
    })
}

/// A PNG file written chunk by chunk: IHDR with these fields, PLTE if `palette`, one IDAT of
/// `rows` (each starting with its filter byte) stored uncompressed, IEND.
pub fn png(
    size: (u32, u32),
    depth_and_type: [u8; 2],
    palette: Option<&[u8]>,
    rows: &[u8],
) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut header = [size.0.to_be_bytes(), size.1.to_be_bytes()].concat();
    header.extend([depth_and_type[0], depth_and_type[1], 0, 0, 0]);
    chunk(&mut out, b"IHDR", &header);
    if let Some(palette) = palette {
        chunk(&mut out, b"PLTE", palette);
    }
    chunk(&mut out, b"IDAT", &zlib_stored(rows));
    chunk(&mut out, b"IEND", &[]);
    out
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend((data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend(kind);
    out.extend(data);
    let crc = crc32(&out[start..]);
    out.extend(crc.to_be_bytes());
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = u32::MAX;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A zlib stream of stored (uncompressed) deflate blocks.
fn zlib_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = data.chunks(65_535).collect();
    for (index, block) in blocks.iter().enumerate() {
        out.push(u8::from(index + 1 == blocks.len()));
        let length = block.len() as u16;
        out.extend(length.to_le_bytes());
        out.extend((!length).to_le_bytes());
        out.extend(*block);
    }
    if blocks.is_empty() {
        out.extend([1, 0, 0, 0xFF, 0xFF]);
    }
    let (a, b) = data.iter().fold((1u32, 0u32), |(a, b), &byte| {
        let a = (a + u32::from(byte)) % 65_521;
        (a, (b + a) % 65_521)
    });
    out.extend(((b << 16) | a).to_be_bytes());
    out
}

/// `image` as a little-endian, uncompressed, 8-bit greyscale TIFF with a single strip.
pub fn tiff(image: &GrayImage) -> Vec<u8> {
    let (width, height) = image.dimensions();
    const SHORT: u16 = 3;
    const LONG: u16 = 4;
    let entries: [(u16, u16, u32); 8] = [
        (256, LONG, width),
        (257, LONG, height),
        (258, SHORT, 8),
        (259, SHORT, 1),
        (262, SHORT, 1),
        (273, LONG, 8 + 2 + 8 * 12 + 4),
        (278, LONG, height),
        (279, LONG, width * height),
    ];
    let mut out = b"II*\0".to_vec();
    out.extend(8u32.to_le_bytes());
    out.extend((entries.len() as u16).to_le_bytes());
    for (tag, kind, value) in entries {
        out.extend(tag.to_le_bytes());
        out.extend(kind.to_le_bytes());
        out.extend(1u32.to_le_bytes());
        out.extend(value.to_le_bytes());
    }
    out.extend(0u32.to_le_bytes());
    out.extend(image.as_raw());
    out
}
