//! Greyscale pictures and the operations the passes need: negative, resampling (shrinking or
//! a light blur) and a locally adaptive black-and-white threshold. Every buffer derived from
//! the pixels is zeroized when dropped: they draw the secret.

use zeroize::Zeroizing;

/// A greyscale picture: `width` x `height` bytes, row by row, 0 black to 255 white (or, once
/// binarised, 1 for black and 0 for white). Zeroized when dropped.
#[derive(Clone)]
pub(super) struct Luma {
    pub(super) width: usize,
    pub(super) height: usize,
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

    pub(super) fn at(&self, x: usize, y: usize) -> u8 {
        self.pixels[y * self.width + x]
    }

    /// The negative: light-on-dark becomes dark-on-light.
    pub(super) fn inverted(&self) -> Luma {
        let pixels = self.pixels.iter().map(|&p| u8::MAX - p).collect();
        Luma::new(self.width, self.height, Zeroizing::new(pixels))
    }

    /// `self` resampled to `factor` times its size with a triangle filter reaching `spread`
    /// source pixels each way: `1 / factor` when shrinking (every source pixel counts), 2 at
    /// full size (a light blur). None if nothing is left.
    pub(super) fn resampled(&self, factor: f64, spread: f64) -> Option<Luma> {
        let size = |side: usize| (side as f64 * factor).round() as usize;
        let (width, height) = (size(self.width), size(self.height));
        if width == 0 || height == 0 {
            return None;
        }
        let columns = taps(self.width, width, factor, spread);
        let rows = taps(self.height, height, factor, spread);
        // Along the rows first: `self.height` rows of `width` resampled pixels.
        let mut across = Zeroizing::new(Vec::with_capacity(width * self.height));
        for row in self.pixels.chunks_exact(self.width) {
            across.extend(
                columns
                    .iter()
                    .map(|(first, w)| weighted(w, |i| row[first + i])),
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

    /// 1 where a pixel is darker (`inverted`: lighter) than the mean of the square around it
    /// by more than `bias` grey levels, else 0. The square reaches a 16th of the longer side
    /// (4 to 64 pixels) each way; sliding sums keep the work linear in the pixels.
    pub(super) fn binarised(&self, inverted: bool, bias: u32) -> Luma {
        let (width, height) = (self.width, self.height);
        let radius = (width.max(height) / 16).clamp(4, 64);
        // Each column's sum over the rows [y - radius, y + radius] inside the picture.
        let mut columns = Zeroizing::new(vec![0u32; width]);
        let mut prefix = Zeroizing::new(vec![0u32; width + 1]);
        let mut out = Zeroizing::new(Vec::with_capacity(width * height));
        (0..radius.min(height)).for_each(|y| self.add_row(&mut columns, y, true));
        for y in 0..height {
            if y + radius < height {
                self.add_row(&mut columns, y + radius, true);
            }
            if y > radius {
                self.add_row(&mut columns, y - radius - 1, false);
            }
            let rows = (y + radius).min(height - 1) + 1 - y.saturating_sub(radius);
            for x in 0..width {
                prefix[x + 1] = prefix[x] + columns[x];
            }
            for x in 0..width {
                let (left, right) = (x.saturating_sub(radius), (x + radius).min(width - 1) + 1);
                let (sum, count) = (prefix[right] - prefix[left], (rows * (right - left)) as u32);
                let p = u32::from(self.at(x, y));
                let black = if inverted {
                    p * count > sum + bias * count
                } else {
                    (p + bias) * count < sum
                };
                out.push(u8::from(black));
            }
        }
        Luma::new(width, height, out)
    }

    /// Add row `y` to the column sums (or, not `add`, take it away).
    fn add_row(&self, columns: &mut [u32], y: usize, add: bool) {
        let row = &self.pixels[y * self.width..(y + 1) * self.width];
        for (sum, &p) in columns.iter_mut().zip(row) {
            *sum = if add {
                *sum + u32::from(p)
            } else {
                *sum - u32::from(p)
            };
        }
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
