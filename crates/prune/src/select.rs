//! Exact top-k selection by magnitude without sorting: a two-pass radix select on the bit
//! pattern of |w|.
//!
//! For finite floats, `bits(|w|) = w.to_bits() & 0x7fff_ffff` orders like |w| itself, so the
//! k-th largest magnitude is found with a histogram of the high 16 bits, then one of the low
//! 16 bits inside the bin that holds it. Memory: two histograms, whatever the layer's size.

use rayon::prelude::*;

/// `|w|` as an order-preserving integer (finite values only).
pub fn abs_bits(w: f32) -> u32 {
    w.to_bits() & 0x7fff_ffff
}

/// What a selection keeps: every weight whose |w| bits are above `threshold`, and the first
/// `at_threshold` (in the order the weights are visited) whose bits equal it. Zeros are never
/// kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cut {
    /// |w| bit pattern of the smallest kept magnitude.
    pub threshold: u32,
    /// How many weights exactly at the threshold are kept, first come first kept.
    pub at_threshold: u64,
}

impl Cut {
    /// Keeps nothing.
    pub const NONE: Cut = Cut {
        threshold: u32::MAX,
        at_threshold: 0,
    };
    /// Keeps every non-zero.
    pub const ALL: Cut = Cut {
        threshold: 0,
        at_threshold: 0,
    };

    /// The threshold magnitude as a float.
    pub fn magnitude(&self) -> f32 {
        if self.threshold == u32::MAX {
            f32::INFINITY
        } else {
            f32::from_bits(self.threshold)
        }
    }
}

/// Chunks of at most this many weights are histogrammed in parallel.
const CHUNK: usize = 1 << 20;

fn split<'a>(slices: &[&'a [f32]]) -> Vec<&'a [f32]> {
    slices.iter().flat_map(|s| s.chunks(CHUNK)).collect()
}

fn histogram(
    chunks: &[&[f32]],
    bins: usize,
    bin_of: impl Fn(u32) -> Option<usize> + Sync,
) -> Vec<u64> {
    chunks
        .par_iter()
        .fold(
            || vec![0u64; bins],
            |mut h, chunk| {
                for &w in chunk.iter() {
                    if let Some(b) = bin_of(abs_bits(w)) {
                        h[b] += 1;
                    }
                }
                h
            },
        )
        .reduce(
            || vec![0u64; bins],
            |mut a, b| {
                a.iter_mut().zip(&b).for_each(|(x, y)| *x += y);
                a
            },
        )
}

/// Non-zero weights in `slices`.
pub fn count_nonzero(slices: &[&[f32]]) -> u64 {
    split(slices)
        .par_iter()
        .map(|c| c.iter().filter(|&&w| w != 0.0).count() as u64)
        .sum()
}

/// The cut that keeps exactly `min(k, non-zeros)` weights of `slices` (visited in order):
/// the largest magnitudes, ties at the smallest kept magnitude going to the earliest.
pub fn cut_for_count(slices: &[&[f32]], k: u64) -> Cut {
    let chunks = split(slices);
    let nonzero = count_nonzero(slices);
    if k >= nonzero {
        return Cut::ALL;
    }
    if k == 0 {
        return Cut::NONE;
    }
    // Pass 1: high 16 bits (bin 0 holds the zeros' bin too; zeros are skipped).
    let high = histogram(&chunks, 1 << 15, |u| (u != 0).then_some((u >> 16) as usize));
    let (bin, above) = threshold_bin(&high, k);
    // Pass 2: low 16 bits inside that bin.
    let low = histogram(&chunks, 1 << 16, |u| {
        (u != 0 && (u >> 16) as usize == bin).then_some((u & 0xffff) as usize)
    });
    let (lo, above_lo) = threshold_bin(&low, k - above);
    Cut {
        threshold: ((bin as u32) << 16) | lo as u32,
        at_threshold: k - above - above_lo,
    }
}

/// Scanning a histogram from the top: the bin where the running count reaches `k`, and the
/// count strictly above it (the bin where the `k` largest magnitudes start).
pub(crate) fn threshold_bin(hist: &[u64], k: u64) -> (usize, u64) {
    let mut above = 0u64;
    for b in (0..hist.len()).rev() {
        if above + hist[b] >= k {
            return (b, above);
        }
        above += hist[b];
    }
    (0, above)
}

/// Zeroes every weight of `slices` (visited in order) that `cut` does not keep; returns how
/// many it keeps. Ties are counted chunk by chunk first, so chunks are processed in parallel
/// and the earliest ties still win.
pub fn apply(slices: Vec<&mut [f32]>, cut: Cut) -> u64 {
    let mut chunks: Vec<&mut [f32]> = slices
        .into_iter()
        .flat_map(|s| s.chunks_mut(CHUNK))
        .collect();
    let ties: Vec<u64> = chunks
        .par_iter()
        .map(|c| {
            c.iter()
                .filter(|&&w| w != 0.0 && abs_bits(w) == cut.threshold)
                .count() as u64
        })
        .collect();
    let mut before = 0u64;
    let allowance: Vec<u64> = ties
        .iter()
        .map(|&t| {
            let a = cut.at_threshold.saturating_sub(before).min(t);
            before += t;
            a
        })
        .collect();
    chunks
        .par_iter_mut()
        .zip(allowance)
        .map(|(c, allow)| {
            let mut keeper = Keeper { cut, allow };
            let mut kept = 0u64;
            for w in c.iter_mut() {
                if keeper.keeps(*w) {
                    kept += 1;
                } else {
                    *w = 0.0;
                }
            }
            kept
        })
        .sum()
}

/// Whether each weight of `slices` (in order) would be kept by `cut`, as a bit per weight.
pub fn keep_mask(slices: &[&[f32]], cut: Cut) -> Vec<bool> {
    let mut keeper = Keeper {
        cut,
        allow: cut.at_threshold,
    };
    slices
        .iter()
        .flat_map(|s| s.iter())
        .map(|&w| keeper.keeps(w))
        .collect()
}

/// The keep rule of a [`Cut`], visiting weights in order: above the threshold always, at it
/// while the allowance for ties lasts, zeros never.
struct Keeper {
    cut: Cut,
    allow: u64,
}

impl Keeper {
    fn keeps(&mut self, w: f32) -> bool {
        let u = abs_bits(w);
        if w == 0.0 || u < self.cut.threshold {
            return false;
        }
        if u > self.cut.threshold {
            return true;
        }
        if self.allow > 0 {
            self.allow -= 1;
            return true;
        }
        false
    }
}
