//! Finding and reading the QR codes in greyscale pictures: a fixed list of passes, from the
//! cheapest to the most forgiving, stopping at the first pass that reads every code it finds,
//! all within a wall-clock budget.

use std::borrow::Cow;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use rqrr::PreparedImage;
use tracing::debug;
use zeroize::{Zeroize, Zeroizing};

use super::QrError;
use super::pixels::Luma;

/// Wall-clock time for all the passes over one image (a release build needs under 2 s for
/// 12 passes over 4096x4096). rqrr can run for hours on some textures (random noise at
/// 2048x2048 already: its alignment-pattern search grows with the geometry of bogus finder
/// patterns). A pass still running at the deadline is left to finish on its own thread,
/// unheard, and the search ends with what was found.
pub(super) const SEARCH_BUDGET: Duration = Duration::from_secs(15);

/// Longest side of the pictures binarised locally, in pixels: a code filling the frame then
/// still has finder centres smaller than the averaging window.
const ADAPTIVE_SIDE: f64 = 1024.0;
/// How much darker than its neighbourhood a pixel must be to count as black (grey levels).
const ADAPTIVE_BIAS: u32 = 8;
/// How much the reduced pass shrinks the picture (rqrr misses codes at some sizes and not
/// others, more so in noisy photos).
const REDUCED: f64 = 0.6;
/// How much the enlarged pass enlarges the picture.
const ENLARGED: f64 = 1.5;
/// Pictures larger than this (pixels in all; a phone screenshot has 4.6 million) are not
/// enlarged.
const ENLARGED_MAX_PIXELS: usize = 5_000_000;
/// Pictures smaller than this (pixels, shorter side) are not reduced.
const REDUCED_MIN_SIDE: usize = 200;

/// One way to look at a picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Pass {
    /// rqrr's own row-wise threshold on the picture as is: clean screenshots and exports.
    Plain,
    /// The same on the negative: light-on-dark codes (dark mode).
    Inverted,
    /// Lightly blurred: sensor noise and JPEG artefacts in photos.
    Smoothed,
    /// Shrunk by [`REDUCED`], averaging: noise, blur, and sizes rqrr happens to miss.
    Reduced,
    /// Each pixel against the mean of the square around it: uneven lighting.
    Adaptive,
    /// The same, light-on-dark.
    AdaptiveInverted,
    /// Enlarged by [`ENLARGED`] (bilinear): modules under 3 pixels, as in screenshots of
    /// a display scaled down.
    Enlarged,
}

impl Pass {
    const ALL: [Pass; 7] = [
        Pass::Plain,
        Pass::Inverted,
        Pass::Smoothed,
        Pass::Reduced,
        Pass::Adaptive,
        Pass::AdaptiveInverted,
        Pass::Enlarged,
    ];

    /// The picture this pass searches; None when the pass does not apply.
    fn view(self, luma: &Luma) -> Option<View<'_>> {
        let grey = |luma, scale| View {
            luma,
            binary: false,
            scale,
        };
        match self {
            Pass::Plain => Some(grey(Cow::Borrowed(luma), 1.0)),
            Pass::Inverted => Some(grey(Cow::Owned(luma.inverted()), 1.0)),
            Pass::Smoothed => Some(grey(Cow::Owned(luma.resampled(1.0, 2.0)?), 1.0)),
            Pass::Reduced if luma.width.min(luma.height) < REDUCED_MIN_SIDE => None,
            Pass::Reduced => {
                let reduced = luma.resampled(REDUCED, 1.0 / REDUCED)?;
                Some(grey(Cow::Owned(reduced), 1.0 / REDUCED))
            }
            Pass::Enlarged if luma.width * luma.height > ENLARGED_MAX_PIXELS => None,
            Pass::Enlarged => {
                let large = luma.resampled(ENLARGED, 1.0)?;
                Some(grey(Cow::Owned(large), 1.0 / ENLARGED))
            }
            Pass::Adaptive | Pass::AdaptiveInverted => {
                let factor = (ADAPTIVE_SIDE / luma.width.max(luma.height) as f64).min(1.0);
                let small = luma.resampled(factor, (1.0 / factor).max(2.0))?;
                let binary = small.binarised(self == Pass::AdaptiveInverted, ADAPTIVE_BIAS);
                Some(View {
                    luma: Cow::Owned(binary),
                    binary: true,
                    scale: 1.0 / factor,
                })
            }
        }
    }
}

/// The picture one pass hands to rqrr.
struct View<'a> {
    luma: Cow<'a, Luma>,
    /// Already black and white (1 and 0): rqrr must not threshold it again.
    binary: bool,
    /// Source pixels per view pixel, to place codes in source coordinates.
    scale: f64,
}

/// A decoded text and where its code is, in source pixels.
pub(super) struct Found {
    text: Zeroizing<String>,
    top: i64,
    bottom: i64,
    left: i64,
}

/// What passes saw: QR-like patterns, those decoded, those decoded to bytes that are not UTF-8.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Tally {
    grids: usize,
    decoded: usize,
    not_utf8: usize,
}

/// The outcome of the passes over one image.
pub(super) struct Search {
    /// Distinct texts, in the order found.
    found: Vec<Found>,
    /// Summed over the passes run.
    total: Tally,
    /// The pass that read every code it found (None: no pass did).
    pub(super) deciding: Option<Pass>,
    /// The budget ran out before the passes did.
    pub(super) out_of_time: bool,
}

/// Every distinct QR text in the pictures `views` (the same image composited differently),
/// in reading order. Runs at most `views.len()` x 7 passes, within [`SEARCH_BUDGET`].
pub(super) fn find_texts(views: &[Luma]) -> Result<Vec<Zeroizing<String>>, QrError> {
    let Search { found, total, .. } = search(views, SEARCH_BUDGET);
    if found.is_empty() {
        return Err(match total {
            Tally { not_utf8: 1.., .. } => QrError::NotUtf8,
            Tally { grids: 1.., .. } => QrError::Unreadable,
            _ => QrError::NoQrCode,
        });
    }
    Ok(reading_order(found))
}

/// Run the passes over `views` until one reads every code it finds, or `budget` is spent.
pub(super) fn search(views: &[Luma], budget: Duration) -> Search {
    let deadline = Instant::now() + budget;
    let mut search = Search {
        found: Vec::new(),
        total: Tally::default(),
        deciding: None,
        out_of_time: false,
    };
    for (index, luma) in views.iter().enumerate() {
        for pass in Pass::ALL {
            let Some(view) = pass.view(luma) else {
                continue;
            };
            let Some((codes, tally)) = read_codes_until(view, deadline) else {
                debug!(view = index, ?pass, "QR search out of time");
                search.out_of_time = true;
                return search;
            };
            debug!(
                view = index,
                ?pass,
                grids = tally.grids,
                decoded = tally.decoded,
                "QR pass"
            );
            search.total.grids += tally.grids;
            search.total.not_utf8 += tally.not_utf8;
            for code in codes {
                if search.found.iter().all(|f| f.text != code.text) {
                    search.found.push(code);
                }
            }
            if tally.decoded > 0 && tally.decoded == tally.grids {
                debug!(
                    view = index,
                    ?pass,
                    codes = search.found.len(),
                    "QR pass read every code"
                );
                search.deciding = Some(pass);
                return search;
            }
        }
    }
    search
}

/// [`read_codes`] on a thread of its own, waited for until `deadline` (None: not done by
/// then). A pass that panics (rqrr overflows on odd geometry in debug builds) found nothing.
fn read_codes_until(view: View<'_>, deadline: Instant) -> Option<(Vec<Found>, Tally)> {
    let View {
        luma,
        binary,
        scale,
    } = view;
    let luma = luma.into_owned();
    let (sender, receiver) = mpsc::sync_channel(1);
    let worker = thread::Builder::new()
        .name("qr-pass".into())
        .spawn(move || {
            // The receiver is gone when the search ran out of time: nobody is waiting.
            let _ = sender.send(read_codes(&luma, binary, scale));
        });
    if let Err(error) = worker {
        debug!(%error, "no thread for a QR pass");
        return Some(Default::default());
    }
    match receiver.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        Ok(result) => Some(result),
        Err(RecvTimeoutError::Disconnected) => Some(Default::default()),
        Err(RecvTimeoutError::Timeout) => None,
    }
}

/// Detect and decode the codes in `luma` (a pass's view, `scale` source pixels a pixel).
fn read_codes(luma: &Luma, binary: bool, scale: f64) -> (Vec<Found>, Tally) {
    let (width, height) = (luma.width, luma.height);
    let mut prepared = if binary {
        PreparedImage::prepare_from_bitmap(width, height, |x, y| luma.at(x, y) != 0)
    } else {
        PreparedImage::prepare_from_greyscale(width, height, |x, y| luma.at(x, y))
    };
    let grids = prepared.detect_grids();
    let mut tally = Tally {
        grids: grids.len(),
        ..Tally::default()
    };
    let mut codes = Vec::new();
    for grid in &grids {
        let mut bytes = Zeroizing::new(Vec::new());
        if let Err(error) = grid.decode_to(&mut *bytes) {
            debug!(%error, "QR grid not decodable");
            continue;
        }
        tally.decoded += 1;
        match String::from_utf8(std::mem::take(&mut *bytes)) {
            Ok(text) => codes.push(placed(Zeroizing::new(text), &grid.bounds, scale)),
            Err(error) => {
                error.into_bytes().zeroize();
                tally.not_utf8 += 1;
            }
        }
    }
    (codes, tally)
}

/// `text` with the box around `corners` (view pixels), in source pixels.
fn placed(text: Zeroizing<String>, corners: &[rqrr::Point; 4], scale: f64) -> Found {
    let source = |value: i32| (f64::from(value) * scale) as i64;
    let (xs, ys) = (corners.map(|p| source(p.x)), corners.map(|p| source(p.y)));
    let (top, bottom) = (ys.into_iter().min(), ys.into_iter().max());
    let left = xs.into_iter().min();
    Found {
        text,
        top: top.unwrap_or(0),
        bottom: bottom.unwrap_or(0),
        left: left.unwrap_or(0),
    }
}

/// Texts top to bottom; codes whose centre is above the bottom of a row's first code are in
/// that row, read left to right.
fn reading_order(mut found: Vec<Found>) -> Vec<Zeroizing<String>> {
    found.sort_by_key(|f| f.top + f.bottom);
    let mut row_bottom = i64::MIN;
    let mut rows = Vec::with_capacity(found.len());
    for f in &found {
        if (f.top + f.bottom) / 2 > row_bottom {
            row_bottom = f.bottom;
        }
        rows.push(row_bottom);
    }
    let mut ordered: Vec<_> = rows.into_iter().zip(found).collect();
    ordered.sort_by_key(|(row, f)| (*row, f.left));
    ordered.into_iter().map(|(_, f)| f.text).collect()
}
