//! Finding and reading the QR codes in greyscale pictures: a fixed list of passes, from the
//! cheapest to the most forgiving, stopping at the first pass that reads every code it finds.

use std::borrow::Cow;

use rqrr::PreparedImage;
use tracing::debug;
use zeroize::{Zeroize, Zeroizing};

use super::QrError;

/// A greyscale picture: `width` x `height` bytes, row by row, 0 black to 255 white (or, once
/// binarised, 1 for black and 0 for white). Zeroized when dropped.
#[derive(Clone)]
pub(super) struct Luma {
    width: usize,
    height: usize,
    pixels: Zeroizing<Vec<u8>>,
}

impl Luma {
    /// `pixels` must hold `width * height` bytes.
    pub(super) fn new(width: usize, height: usize, pixels: Zeroizing<Vec<u8>>) -> Self {
        debug_assert_eq!(pixels.len(), width * height);
        Luma {
            width,
            height,
            pixels,
        }
    }

    fn at(&self, x: usize, y: usize) -> u8 {
        self.pixels[y * self.width + x]
    }

    fn inverted(&self) -> Luma {
        let pixels = self.pixels.iter().map(|&p| u8::MAX - p).collect();
        Luma::new(self.width, self.height, Zeroizing::new(pixels))
    }

    /// `self` resampled to `factor` times its size with a triangle filter reaching `spread`
    /// source pixels each way: `1 / factor` when shrinking (every source pixel counts), 2 at
    /// full size (a light blur). None if nothing is left.
    fn resampled(&self, factor: f64, spread: f64) -> Option<Luma> {
        let size = |side: usize| (side as f64 * factor).round() as usize;
        let (width, height) = (size(self.width), size(self.height));
        if width == 0 || height == 0 {
            return None;
        }
        let (columns, rows) = (
            taps(self.width, width, factor, spread),
            taps(self.height, height, factor, spread),
        );
        // Rows first: `height` source rows of `width` resampled pixels.
        let mut across = Zeroizing::new(Vec::with_capacity(width * self.height));
        for y in 0..self.height {
            let row = &self.pixels[y * self.width..(y + 1) * self.width];
            across.extend(
                columns
                    .iter()
                    .map(|(first, weights)| weighted(weights, |i| row[first + i])),
            );
        }
        let mut pixels = Zeroizing::new(Vec::with_capacity(width * height));
        for (first, weights) in &rows {
            for x in 0..width {
                let value = weighted(weights, |i| across[(first + i) * width + x]);
                pixels.push(value.round().clamp(0.0, 255.0) as u8);
            }
        }
        Some(Luma::new(width, height, pixels))
    }
}

/// For each of `target` pixels resampled from `source`: the first source pixel it reads and
/// the weights of the source pixels from there (summing to 1).
fn taps(source: usize, target: usize, factor: f64, spread: f64) -> Vec<(usize, Vec<f32>)> {
    let tap = |index: usize| {
        let centre = (index as f64 + 0.5) / factor - 0.5;
        let first = (centre - spread).ceil().max(0.0) as usize;
        let last = ((centre + spread).floor().max(0.0) as usize).min(source - 1);
        let weights: Vec<f64> = (first..=last)
            .map(|s| (1.0 - (s as f64 - centre).abs() / spread).max(0.0))
            .collect();
        let total = weights.iter().sum::<f64>().max(f64::MIN_POSITIVE);
        (first, weights.iter().map(|w| (w / total) as f32).collect())
    };
    (0..target).map(tap).collect()
}

fn weighted<T: Into<f32>>(weights: &[f32], sample: impl Fn(usize) -> T) -> f32 {
    weights
        .iter()
        .enumerate()
        .map(|(i, w)| w * sample(i).into())
        .sum()
}

/// Side of the pictures binarised locally, in pixels: a code filling the frame then still has
/// finder centres smaller than the averaging window.
const ADAPTIVE_SIDE: f64 = 1024.0;
/// How much darker than its neighbourhood a pixel must be to count as black (grey levels).
const ADAPTIVE_BIAS: u32 = 8;
/// How much the reduced pass shrinks the picture (rqrr misses codes at some sizes and not
/// others, more so in noisy photos).
const REDUCED: f64 = 0.6;
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
}

impl Pass {
    const ALL: [Pass; 6] = [
        Pass::Plain,
        Pass::Inverted,
        Pass::Smoothed,
        Pass::Reduced,
        Pass::Adaptive,
        Pass::AdaptiveInverted,
    ];

    /// The picture this pass searches and how many source pixels one of its pixels spans;
    /// None when the pass does not apply.
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
            Pass::Reduced => Some(grey(
                Cow::Owned(luma.resampled(REDUCED, 1.0 / REDUCED)?),
                1.0 / REDUCED,
            )),
            Pass::Adaptive | Pass::AdaptiveInverted => {
                let factor = (ADAPTIVE_SIDE / luma.width.max(luma.height) as f64).min(1.0);
                let small = luma.resampled(factor, (1.0 / factor).max(2.0))?;
                let binary = binarised(&small, matches!(self, Pass::AdaptiveInverted));
                Some(View {
                    luma: Cow::Owned(binary),
                    binary: true,
                    scale: 1.0 / factor,
                })
            }
        }
    }
}

struct View<'a> {
    luma: Cow<'a, Luma>,
    /// Already black and white (1 and 0): rqrr must not threshold it again.
    binary: bool,
    /// Source pixels per view pixel, to place codes in source coordinates.
    scale: f64,
}

/// 1 where a pixel is darker (`inverted`: lighter) than the mean of the square around it by
/// more than [`ADAPTIVE_BIAS`], else 0. Sliding sums keep the work linear in the pixels.
fn binarised(luma: &Luma, inverted: bool) -> Luma {
    let (width, height) = (luma.width, luma.height);
    let radius = (width.max(height) / 16).clamp(4, 64);
    // Sum of each column over the rows [y - radius, y + radius] inside the picture.
    let mut columns = Zeroizing::new(vec![0u32; width]);
    let mut prefix = Zeroizing::new(vec![0u32; width + 1]);
    let mut out = Zeroizing::new(Vec::with_capacity(width * height));
    let add_row = |columns: &mut [u32], y: usize, sign: bool| {
        for (x, sum) in columns.iter_mut().enumerate() {
            let p = u32::from(luma.at(x, y));
            *sum = if sign { *sum + p } else { *sum - p };
        }
    };
    (0..radius.min(height)).for_each(|y| add_row(&mut columns, y, true));
    for y in 0..height {
        if y + radius < height {
            add_row(&mut columns, y + radius, true);
        }
        if y > radius {
            add_row(&mut columns, y - radius - 1, false);
        }
        let rows = (y + radius).min(height - 1) + 1 - y.saturating_sub(radius);
        for x in 0..width {
            prefix[x + 1] = prefix[x] + columns[x];
        }
        for x in 0..width {
            let (left, right) = (x.saturating_sub(radius), (x + radius).min(width - 1) + 1);
            let (sum, count) = (prefix[right] - prefix[left], (rows * (right - left)) as u32);
            let p = u32::from(luma.at(x, y));
            let black = if inverted {
                p * count > sum + ADAPTIVE_BIAS * count
            } else {
                (p + ADAPTIVE_BIAS) * count < sum
            };
            out.push(u8::from(black));
        }
    }
    Luma::new(width, height, out)
}

/// A decoded text and where its code is, in source pixels.
pub(super) struct Found {
    text: Zeroizing<String>,
    top: i64,
    bottom: i64,
    left: i64,
}

/// What one pass saw.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Tally {
    grids: usize,
    decoded: usize,
    not_utf8: usize,
}

/// Every distinct QR text in the pictures `views` (the same image composited differently),
/// in reading order. Runs at most `views.len()` x 6 passes.
pub(super) fn find_texts(views: &[Luma]) -> Result<Vec<Zeroizing<String>>, QrError> {
    let (found, total, _) = search(views);
    if found.is_empty() {
        return Err(match total {
            Tally { not_utf8: 1.., .. } => QrError::NotUtf8,
            Tally { grids: 1.., .. } => QrError::Unreadable,
            _ => QrError::NoQrCode,
        });
    }
    Ok(reading_order(found))
}

/// Run the passes over `views` until one reads every code it finds. Returns the distinct texts,
/// the counts over all passes run, and the pass that read everything (None: none did).
pub(super) fn search(views: &[Luma]) -> (Vec<Found>, Tally, Option<Pass>) {
    let mut found = Vec::new();
    let mut total = Tally::default();
    for (index, luma) in views.iter().enumerate() {
        for pass in Pass::ALL {
            let Some(view) = pass.view(luma) else {
                continue;
            };
            let tally = read_codes(&view, &mut found);
            debug!(
                view = index,
                ?pass,
                grids = tally.grids,
                decoded = tally.decoded,
                "QR pass"
            );
            eprintln!(
                "TMP view={index} {pass:?} {}x{} grids={} decoded={}",
                luma.width, luma.height, tally.grids, tally.decoded
            );
            total.grids += tally.grids;
            total.not_utf8 += tally.not_utf8;
            if tally.decoded > 0 && tally.decoded == tally.grids {
                debug!(
                    view = index,
                    ?pass,
                    codes = found.len(),
                    "QR pass read every code found"
                );
                return (found, total, Some(pass));
            }
        }
    }
    (found, total, None)
}

/// Detect and decode the codes in `view`, adding texts not yet in `found`.
fn read_codes(view: &View<'_>, found: &mut Vec<Found>) -> Tally {
    let (width, height, luma) = (view.luma.width, view.luma.height, &view.luma);
    let mut prepared = if view.binary {
        PreparedImage::prepare_from_bitmap(width, height, |x, y| luma.at(x, y) != 0)
    } else {
        PreparedImage::prepare_from_greyscale(width, height, |x, y| luma.at(x, y))
    };
    let grids = prepared.detect_grids();
    let mut tally = Tally {
        grids: grids.len(),
        ..Tally::default()
    };
    for grid in &grids {
        let mut bytes = Zeroizing::new(Vec::new());
        if let Err(error) = grid.decode_to(&mut *bytes) {
            debug!(%error, "QR grid not decodable");
            continue;
        }
        tally.decoded += 1;
        let text = match String::from_utf8(std::mem::take(&mut *bytes)) {
            Ok(text) => Zeroizing::new(text),
            Err(error) => {
                error.into_bytes().zeroize();
                tally.not_utf8 += 1;
                continue;
            }
        };
        if found.iter().all(|f| f.text != text) {
            let ys = grid.bounds.map(|p| (f64::from(p.y) * view.scale) as i64);
            let xs = grid.bounds.map(|p| (f64::from(p.x) * view.scale) as i64);
            let (top, bottom) = (ys.iter().min().copied(), ys.iter().max().copied());
            let left = xs.iter().min().copied().unwrap_or(0);
            found.push(Found {
                text,
                top: top.unwrap_or(0),
                bottom: bottom.unwrap_or(0),
                left,
            });
        }
    }
    tally
}

/// Texts top to bottom; codes whose centre is above the bottom of a row's first code are in
/// that row, read left to right.
fn reading_order(mut found: Vec<Found>) -> Vec<Zeroizing<String>> {
    found.sort_by_key(|f| f.top + f.bottom);
    let mut rows = Vec::with_capacity(found.len());
    let mut row_bottom = i64::MIN;
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
