//! QR code images holding otpauth:// or otpauth-migration:// URIs: the AWS console's "Show QR
//! code", `aws iam create-virtual-mfa-device --bootstrap-method QRCodePNG`, a screenshot of a
//! Google Authenticator export, a phone photo of a monitor or a printout.
//!
//! Read: PNG, JPEG, GIF, WebP and BMP ([`image_kind`] names other image formats so the caller
//! can say "save it as PNG"). Dark-on-light and light-on-dark codes, transparent backgrounds,
//! small codes in large cluttered screenshots, and photos (slightly rotated, unevenly lit,
//! blurred, noisy) are found by a fixed, small number of passes (see `scan`), within a
//! wall-clock budget: each pass runs on a thread of its own, and one that rqrr stalls on is
//! abandoned (it finishes on its own, or with the process).
//!
//! Hostile images are bounded before decoding: at most [`MAX_DIMENSION`] pixels a side and
//! [`MAX_DECODED_BYTES`] of decoder allocations, so a small file cannot expand into gigabytes.
//! Our pixel buffers are zeroized when dropped (they draw the secret); rqrr's internal
//! black-and-white copies cannot be reached and are not.
//!
//! Errors and logs never quote the QR content: it is the secret.

mod format;
mod pixels;
mod scan;

#[cfg(test)]
mod tests;

use thiserror::Error;
use zeroize::Zeroizing;

pub use format::{ImageKind, image_kind};

/// Largest accepted width or height, in pixels (a phone screenshot is ~1440x3200).
pub const MAX_DIMENSION: u32 = 4096;
/// Largest accepted decoder allocation (the decoded pixels count), in bytes.
pub const MAX_DECODED_BYTES: u64 = 64 * 1024 * 1024;

/// Why no text came out of an image. Display texts are one line and never quote pixels or
/// QR content.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum QrError {
    /// An image format that is not decoded, by name ("HEIC", "TIFF", ...; "unknown" for bytes
    /// that are no image at all: check [`image_kind`] first).
    #[error("unsupported image format {0} (save it as PNG or JPEG)")]
    UnsupportedFormat(&'static str),
    /// Wider or higher than [`MAX_DIMENSION`], or more than [`MAX_DECODED_BYTES`] decoded.
    #[error(
        "the image is too large (at most {MAX_DIMENSION}x{MAX_DIMENSION} pixels and {} MiB decoded)",
        MAX_DECODED_BYTES / (1024 * 1024)
    )]
    TooLarge,
    /// The file of this format ("PNG", "JPEG", ...) is truncated or corrupt.
    #[error("the {0} image is damaged or truncated")]
    Damaged(&'static str),
    /// Nothing resembling a QR code.
    #[error("no QR code found in the image")]
    NoQrCode,
    /// A QR-like pattern was found, but no pass decoded it.
    #[error("a QR code was found but could not be read (blurred, cut off or damaged)")]
    Unreadable,
    /// QR codes were decoded, but none holds UTF-8 text.
    #[error("the QR code does not hold UTF-8 text")]
    NotUtf8,
}

/// Every distinct text held by a QR code in the image `bytes` (a whole PNG, JPEG, GIF, WebP or
/// BMP file), in reading order: top to bottom, then left to right for codes side by side.
///
/// Texts of any kind are returned (otpauth URIs, web links, ...): the caller picks. Codes
/// holding bytes that are not UTF-8 are skipped.
///
/// # Errors
/// [`QrError::UnsupportedFormat`] unless [`image_kind`] says `Supported`; [`QrError::TooLarge`]
/// and [`QrError::Damaged`] from decoding the file; [`QrError::NoQrCode`],
/// [`QrError::Unreadable`] or [`QrError::NotUtf8`] when no text was decoded.
pub fn decode_qr_texts(bytes: &[u8]) -> Result<Vec<Zeroizing<String>>, QrError> {
    let image = format::decode(bytes)?;
    let views = format::greyscale_views(image);
    scan::find_texts(&views)
}
