//! QR code images (PNG or JPEG) holding an otpauth:// or otpauth-migration:// URI: the AWS
//! console's "Show QR code", `aws iam create-virtual-mfa-device --bootstrap-method
//! QRCodePNG`, a screenshot of a Google Authenticator export.
//!
//! Hostile images are bounded before decoding: at most [`MAX_DIMENSION`] pixels a side and
//! [`MAX_DECODED_BYTES`] of decoder allocations, so a small PNG cannot expand into gigabytes.
//!
//! Several QR codes in one image: codes that do not hold an otpauth URI are ignored, so a
//! screenshot with an unrelated QR code beside the secret still works. Two or more different
//! otpauth codes are refused ([`QrError::SeveralQrCodes`]) rather than guessing which account
//! was meant. Without any otpauth code, a single other code's text is returned (the caller
//! then reports what the text is not).
//!
//! Errors never quote the QR content: it is the secret.

use std::io::Cursor;

use image::{ImageFormat, ImageReader, Limits};
use thiserror::Error;
use tracing::debug;
use zeroize::{Zeroize, Zeroizing};

/// Largest accepted width or height, in pixels (a phone screenshot is ~1440x3200).
pub const MAX_DIMENSION: u32 = 4096;
/// Largest accepted decoder allocation (the decoded pixels count), in bytes.
pub const MAX_DECODED_BYTES: u64 = 64 * 1024 * 1024;

const PNG_MAGIC: &[u8] = b"\x89PNG\r\n\x1a\n";
const JPEG_MAGIC: &[u8] = &[0xFF, 0xD8, 0xFF];

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum QrError {
    #[error("not a PNG or JPEG image")]
    NotAnImage,
    #[error(
        "the image is too large (at most {MAX_DIMENSION}x{MAX_DIMENSION} pixels and {} MiB decoded)",
        MAX_DECODED_BYTES / (1024 * 1024)
    )]
    TooLarge,
    #[error("the {0} image is damaged or truncated")]
    Damaged(&'static str),
    #[error("no QR code found in the image")]
    NoQrCode,
    #[error("a QR code was found but could not be read (blurred, cut off or damaged)")]
    Unreadable,
    #[error("the image holds {0} different otpauth QR codes; crop it to the one to add")]
    SeveralQrCodes(usize),
    #[error("the QR code does not hold UTF-8 text")]
    NotUtf8,
}

/// True when `bytes` starts like a PNG or JPEG file.
pub fn looks_like_image(bytes: &[u8]) -> bool {
    bytes.starts_with(PNG_MAGIC) || bytes.starts_with(JPEG_MAGIC)
}

/// The text of the QR code in a PNG or JPEG image (see the module docs for several codes).
pub fn decode_qr_image(bytes: &[u8]) -> Result<Zeroizing<String>, QrError> {
    let (format, name) = if bytes.starts_with(PNG_MAGIC) {
        (ImageFormat::Png, "PNG")
    } else if bytes.starts_with(JPEG_MAGIC) {
        (ImageFormat::Jpeg, "JPEG")
    } else {
        return Err(QrError::NotAnImage);
    };
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_DIMENSION);
    limits.max_image_height = Some(MAX_DIMENSION);
    limits.max_alloc = Some(MAX_DECODED_BYTES);
    reader.limits(limits);
    let image = reader.decode().map_err(|error| match error {
        image::ImageError::Limits(_) => QrError::TooLarge,
        // The decoder's message names chunks and offsets only, never pixel data.
        other => {
            debug!(format = name, error = %other, "image decoding failed");
            QrError::Damaged(name)
        }
    })?;
    let (width, height) = (image.width() as usize, image.height() as usize);
    // The pixels draw the secret: keep our copies in zeroized buffers.
    let luma = Zeroizing::new(image.to_luma8().into_raw());
    drop(Zeroizing::new(image.into_bytes()));
    let mut prepared = rqrr::PreparedImage::prepare_from_greyscale(width, height, |x, y| {
        luma.get(y * width + x).copied().unwrap_or(u8::MAX)
    });
    drop(luma);
    let grids = prepared.detect_grids();
    debug!(width, height, grids = grids.len(), "QR detection");
    if grids.is_empty() {
        return Err(QrError::NoQrCode);
    }
    let mut texts: Vec<Zeroizing<String>> = Vec::new();
    let mut saw_non_utf8 = false;
    for grid in &grids {
        let mut content = Zeroizing::new(Vec::new());
        if let Err(error) = grid.decode_to(&mut *content) {
            debug!(%error, "QR grid not decodable");
            continue;
        }
        match String::from_utf8(std::mem::take(&mut *content)) {
            Ok(text) => {
                let text = Zeroizing::new(text);
                if !texts.contains(&text) {
                    texts.push(text);
                }
            }
            Err(error) => {
                error.into_bytes().zeroize();
                saw_non_utf8 = true;
            }
        }
    }
    choose(texts, saw_non_utf8)
}

/// Pick the one text to use among the decoded, distinct QR contents.
fn choose(
    mut texts: Vec<Zeroizing<String>>,
    saw_non_utf8: bool,
) -> Result<Zeroizing<String>, QrError> {
    let is_otpauth = |text: &str| {
        text.trim_start()
            .get(..8)
            .is_some_and(|scheme| scheme.eq_ignore_ascii_case("otpauth:"))
            || text
                .trim_start()
                .get(..18)
                .is_some_and(|scheme| scheme.eq_ignore_ascii_case("otpauth-migration:"))
    };
    let otpauth_count = texts.iter().filter(|t| is_otpauth(t)).count();
    match otpauth_count {
        1 => {
            let index = texts.iter().position(|t| is_otpauth(t)).unwrap_or(0);
            Ok(texts.swap_remove(index))
        }
        0 if texts.len() == 1 => Ok(texts.swap_remove(0)),
        0 if texts.is_empty() && saw_non_utf8 => Err(QrError::NotUtf8),
        0 if texts.is_empty() => Err(QrError::Unreadable),
        0 => Err(QrError::SeveralQrCodes(texts.len())),
        several => Err(QrError::SeveralQrCodes(several)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use image::{GrayImage, Luma};
    use qrcode::{Color, QrCode};

    /// `content` as a QR code, `scale` pixels a module, 4 modules of quiet zone, at (`left`, 0).
    fn draw(canvas: &mut GrayImage, content: &[u8], left: u32, scale: u32) {
        let code = QrCode::new(content).expect("encodable");
        let width = code.width() as u32;
        for (index, color) in code.to_colors().into_iter().enumerate() {
            let (mx, my) = (index as u32 % width, index as u32 / width);
            if color == Color::Dark {
                for dy in 0..scale {
                    for dx in 0..scale {
                        canvas.put_pixel(
                            left + (mx + 4) * scale + dx,
                            (my + 4) * scale + dy,
                            Luma([0]),
                        );
                    }
                }
            }
        }
    }

    fn encode(canvas: &GrayImage, format: ImageFormat) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        canvas.write_to(&mut out, format).expect("encode");
        out.into_inner()
    }

    const URI: &str = "otpauth://totp/Example:alice?secret=JBSWY3DPEHPK3PXP&issuer=Example";

    #[test]
    fn reads_a_png_and_a_jpeg() {
        let mut canvas = GrayImage::from_pixel(300, 300, Luma([255]));
        draw(&mut canvas, URI.as_bytes(), 0, 6);
        assert_eq!(
            decode_qr_image(&encode(&canvas, ImageFormat::Png))
                .as_deref()
                .map(|s| s.as_str()),
            Ok(URI)
        );
        assert_eq!(
            decode_qr_image(&encode(&canvas, ImageFormat::Jpeg))
                .as_deref()
                .map(|s| s.as_str()),
            Ok(URI)
        );
    }

    #[test]
    fn picks_the_otpauth_code_and_refuses_two() {
        let mut canvas = GrayImage::from_pixel(640, 300, Luma([255]));
        draw(&mut canvas, URI.as_bytes(), 0, 6);
        draw(&mut canvas, b"https://example.com/help", 320, 6);
        assert_eq!(
            decode_qr_image(&encode(&canvas, ImageFormat::Png))
                .as_deref()
                .map(|s| s.as_str()),
            Ok(URI)
        );

        let mut canvas = GrayImage::from_pixel(640, 300, Luma([255]));
        draw(&mut canvas, URI.as_bytes(), 0, 6);
        draw(
            &mut canvas,
            b"otpauth://totp/bob?secret=JBSWY3DPEHPK3PXQ",
            320,
            6,
        );
        assert_eq!(
            decode_qr_image(&encode(&canvas, ImageFormat::Png)),
            Err(QrError::SeveralQrCodes(2))
        );
    }

    #[test]
    fn refuses_non_images_damaged_images_and_blank_images() {
        assert_eq!(decode_qr_image(b"GIF89a...."), Err(QrError::NotAnImage));
        let canvas = GrayImage::from_pixel(64, 64, Luma([255]));
        let png = encode(&canvas, ImageFormat::Png);
        assert_eq!(decode_qr_image(&png), Err(QrError::NoQrCode));
        assert_eq!(
            decode_qr_image(&png[..png.len() / 2]),
            Err(QrError::Damaged("PNG"))
        );
    }

    #[test]
    fn refuses_huge_images_before_decoding_them() {
        // One pixel wider than allowed: refused from the header, before any pixel is decoded.
        let canvas = GrayImage::from_pixel(MAX_DIMENSION + 1, 1, Luma([255]));
        assert_eq!(
            decode_qr_image(&encode(&canvas, ImageFormat::Png)),
            Err(QrError::TooLarge)
        );
    }

    #[test]
    fn errors_do_not_quote_the_content() {
        for error in [
            QrError::NotUtf8,
            QrError::Unreadable,
            QrError::SeveralQrCodes(2),
        ] {
            assert!(!error.to_string().contains("JBSWY3DP"));
        }
    }
}
