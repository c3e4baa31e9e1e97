//! Telling image formats apart by their first bytes, decoding the supported ones within
//! bounds, and turning the pixels into the greyscale views the scan searches.

use std::io::Cursor;

use image::{DynamicImage, ImageError, ImageFormat, ImageReader, Limits};
use tracing::debug;
use zeroize::Zeroizing;

use super::pixels::Luma;
use super::{MAX_DECODED_BYTES, MAX_DIMENSION, QrError};

/// What the first bytes of a file say it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageKind {
    /// A format [`decode_qr_texts`](super::decode_qr_texts) reads: "PNG", "JPEG", "GIF",
    /// "WebP" or "BMP".
    Supported(&'static str),
    /// An image format recognised but not decoded: "TIFF", "HEIC", "AVIF", "SVG", "ICO",
    /// "PSD", "JPEG XL", "JPEG 2000", "QOI", "OpenEXR" or "PDF".
    Unsupported(&'static str),
    /// Anything else: text, JSON, a video, random bytes.
    NotAnImage,
}

/// The kind of file `bytes` (its whole content, or at least its first 4 KiB) starts like.
/// Only looks at the bytes: a `Supported` file may still be damaged.
pub fn image_kind(bytes: &[u8]) -> ImageKind {
    if let Some((_, name)) = supported(bytes) {
        ImageKind::Supported(name)
    } else if let Some(name) = unsupported(bytes) {
        ImageKind::Unsupported(name)
    } else {
        ImageKind::NotAnImage
    }
}

fn supported(bytes: &[u8]) -> Option<(ImageFormat, &'static str)> {
    const MAGIC: [(&[u8], ImageFormat, &str); 4] = [
        (b"\x89PNG\r\n\x1a\n", ImageFormat::Png, "PNG"),
        (&[0xFF, 0xD8, 0xFF], ImageFormat::Jpeg, "JPEG"),
        (b"GIF87a", ImageFormat::Gif, "GIF"),
        (b"GIF89a", ImageFormat::Gif, "GIF"),
    ];
    let found = MAGIC.iter().find(|(magic, ..)| bytes.starts_with(magic));
    if let Some(&(_, format, name)) = found {
        Some((format, name))
    } else if bytes.starts_with(b"RIFF") && bytes.get(8..12) == Some(b"WEBP") {
        Some((ImageFormat::WebP, "WebP"))
    } else if is_bmp(bytes) {
        Some((ImageFormat::Bmp, "BMP"))
    } else {
        None
    }
}

/// "BM" is also how text can start: require a known DIB header size after the file header.
fn is_bmp(bytes: &[u8]) -> bool {
    let header_size = bytes
        .get(14..18)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    bytes.starts_with(b"BM") && matches!(header_size, Some(12 | 40 | 52 | 56 | 64 | 108 | 124))
}

fn unsupported(bytes: &[u8]) -> Option<&'static str> {
    const MAGIC: [(&[u8], &str); 12] = [
        (b"II*\0", "TIFF"),
        (b"MM\0*", "TIFF"),
        (b"II+\0", "TIFF"),
        (b"MM\0+", "TIFF"),
        (b"8BPS", "PSD"),
        (&[0xFF, 0x0A], "JPEG XL"),
        (b"\0\0\0\x0CJXL \r\n\x87\n", "JPEG XL"),
        (b"\0\0\0\x0CjP  \r\n\x87\n", "JPEG 2000"),
        (&[0xFF, 0x4F, 0xFF, 0x51], "JPEG 2000"),
        (b"qoif", "QOI"),
        (&[0x76, 0x2F, 0x31, 0x01], "OpenEXR"),
        // A printed recovery sheet or a saved web page: people pass these too.
        (b"%PDF-", "PDF"),
    ];
    let found = MAGIC.iter().find(|(magic, _)| bytes.starts_with(magic));
    found
        .map(|&(_, name)| name)
        .or_else(|| heif_brand(bytes))
        .or_else(|| is_ico(bytes).then_some("ICO"))
        .or_else(|| is_svg(bytes).then_some("SVG"))
}

/// HEIC or AVIF from an ISO media file's `ftyp` box; None for videos and other brands.
fn heif_brand(bytes: &[u8]) -> Option<&'static str> {
    if bytes.get(4..8) != Some(b"ftyp") {
        return None;
    }
    let size = u32::from_be_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
    let major = bytes.get(8..12)?;
    let compatible = bytes.get(16..size.min(bytes.len()).max(16))?;
    let mut brands = compatible.chunks_exact(4).chain([major]);
    match major {
        b"avif" | b"avis" => Some("AVIF"),
        b"heic" | b"heix" | b"hevc" | b"hevx" | b"heim" | b"heis" => Some("HEIC"),
        b"mif1" | b"msf1" if brands.any(|b| b == b"avif" || b == b"avis") => Some("AVIF"),
        b"mif1" | b"msf1" => Some("HEIC"),
        _ => None,
    }
}

/// Windows icon or cursor: reserved 0, type 1 or 2, at least one entry whose reserved byte is 0.
fn is_ico(bytes: &[u8]) -> bool {
    let count = bytes
        .get(4..6)
        .map_or(0, |c| u16::from_le_bytes([c[0], c[1]]));
    (bytes.starts_with(&[0, 0, 1, 0]) || bytes.starts_with(&[0, 0, 2, 0]))
        && count > 0
        && bytes.len() >= 22
        && bytes[9] == 0
}

/// `<svg`, possibly after a byte-order mark, white space, an XML declaration, an SVG doctype
/// or comments (looked for in the first 4 KiB).
fn is_svg(bytes: &[u8]) -> bool {
    let text = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = &text[text.iter().take_while(|b| b.is_ascii_whitespace()).count()..];
    let head = &text[..text.len().min(4096)];
    text.starts_with(b"<svg")
        || ([&b"<?xml"[..], b"<!DOCTYPE svg", b"<!--"]
            .iter()
            .any(|p| text.starts_with(p))
            && head.windows(4).any(|w| w == b"<svg"))
}

/// Decode a supported image within [`MAX_DIMENSION`] and [`MAX_DECODED_BYTES`].
pub(super) fn decode(bytes: &[u8]) -> Result<DynamicImage, QrError> {
    let Some((format, name)) = supported(bytes) else {
        let name = unsupported(bytes).unwrap_or("unknown");
        return Err(QrError::UnsupportedFormat(name));
    };
    if format == ImageFormat::Jpeg && jpeg_is_truncated(bytes) {
        return Err(QrError::Damaged(name));
    }
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_DIMENSION);
    limits.max_image_height = Some(MAX_DIMENSION);
    limits.max_alloc = Some(MAX_DECODED_BYTES);
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    reader.limits(limits);
    // The decoders' messages name chunks, markers and offsets only, never pixel data.
    let image = reader.decode().map_err(|error| match error {
        ImageError::Limits(_) => QrError::TooLarge,
        ImageError::Unsupported(error) => {
            debug!(format = name, %error, "image variant not supported");
            QrError::UnsupportedFormat(name)
        }
        error => {
            debug!(format = name, %error, "image decoding failed");
            QrError::Damaged(name)
        }
    })?;
    if image.width() == 0 || image.height() == 0 {
        return Err(QrError::Damaged(name));
    }
    Ok(image)
}

/// True when the segments before a JPEG's first scan are intact but no end-of-image marker
/// follows it: zune-jpeg fills in the missing rows with grey instead of failing. Bytes after
/// the end marker (a phone's motion-photo video) are allowed.
fn jpeg_is_truncated(bytes: &[u8]) -> bool {
    let mut at = 2;
    while let Some(&[0xFF, marker, high, low]) = bytes.get(at..at + 4) {
        let end = at + 2 + usize::from(u16::from_be_bytes([high, low]));
        match marker {
            0xFF => at += 1,
            0xDA => {
                let scans = bytes.get(end..).unwrap_or_default();
                return !scans.windows(2).any(|pair| pair == [0xFF, 0xD9]);
            }
            _ => at = end,
        }
    }
    false
}

/// The greyscale pictures to search, in order: the image itself; for images with an alpha
/// channel, composited onto white, then onto black (white modules on a transparent
/// background). Consumes and wipes the decoded pixels.
pub(super) fn greyscale_views(image: DynamicImage) -> Vec<Luma> {
    let views = if image.color().has_alpha() {
        let rgba = Zeroizing::new(image.to_rgba8().into_raw());
        let (width, height) = (image.width() as usize, image.height() as usize);
        vec![
            composite(&rgba, width, height, u8::MAX),
            composite(&rgba, width, height, 0),
        ]
    } else {
        let grey = image.to_luma8();
        let (width, height) = (grey.width() as usize, grey.height() as usize);
        vec![Luma::new(width, height, Zeroizing::new(grey.into_raw()))]
    };
    wipe(image);
    views
}

/// Luma of RGBA pixels over an opaque `background` grey (Rec. 709 weights, as `image` uses).
fn composite(rgba: &[u8], width: usize, height: usize, background: u8) -> Luma {
    let background = u32::from(background);
    let pixels = rgba.chunks_exact(4).map(|p| {
        let [r, g, b, a] = [p[0], p[1], p[2], p[3]].map(u32::from);
        let luma = (2126 * r + 7152 * g + 722 * b) / 10_000;
        ((luma * a + background * (255 - a) + 127) / 255) as u8
    });
    Luma::new(width, height, Zeroizing::new(pixels.collect()))
}

/// Zeroize the decoded pixels, in place whatever their sample type.
fn wipe(image: DynamicImage) {
    match image {
        DynamicImage::ImageLuma16(i) => drop(Zeroizing::new(i.into_raw())),
        DynamicImage::ImageLumaA16(i) => drop(Zeroizing::new(i.into_raw())),
        DynamicImage::ImageRgb16(i) => drop(Zeroizing::new(i.into_raw())),
        DynamicImage::ImageRgba16(i) => drop(Zeroizing::new(i.into_raw())),
        DynamicImage::ImageRgb32F(i) => drop(Zeroizing::new(i.into_raw())),
        DynamicImage::ImageRgba32F(i) => drop(Zeroizing::new(i.into_raw())),
        // 8-bit samples: `into_bytes` hands over the buffer itself.
        other => drop(Zeroizing::new(other.into_bytes())),
    }
}
