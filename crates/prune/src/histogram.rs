//! The distribution of a layer's weights for the report's figures: counts in equal bins over
//! `[-limit, limit]`, the bins of the weights before pruning and of the survivors alike, so
//! the pruning threshold and the codebook's centroids can be drawn on one axis.

use rayon::prelude::*;

use crate::sparse::{Read, add_counts, map_blocks};

/// Bins of a report's weight histogram: even, so zero is the edge between the two middle
/// bins and a symmetric threshold falls on the same place either side.
pub const HISTOGRAM_BINS: usize = 64;

/// The one binning rule: `bins` equal bins over `[-limit, limit]`, in f64.
#[derive(Debug, Clone, Copy)]
struct Binner {
    limit: f64,
    scale: f64,
    last: usize,
}

impl Binner {
    fn new(limit: f32, bins: usize) -> Self {
        let ok = limit > 0.0 && limit.is_finite();
        Self {
            limit: limit as f64,
            // A zero or non-finite limit (an all-zero layer): everything in the middle.
            scale: if ok {
                bins as f64 / (2.0 * limit as f64)
            } else {
                0.0
            },
            last: bins - 1,
        }
    }

    fn bin(&self, w: f32) -> usize {
        if self.scale == 0.0 {
            return self.last.div_ceil(2);
        }
        let x = (w as f64 + self.limit) * self.scale;
        (x.max(0.0) as usize).min(self.last)
    }
}

/// Counts of `values` in `bins` (at least 1) equal bins over `[-limit, limit]`.
pub fn histogram_of(values: &[f32], limit: f32, bins: usize) -> Vec<u64> {
    let b = Binner::new(limit, bins);
    // Four counters a bin, one per lane: neighbouring weights in one bin do not wait on
    // each other's increments.
    let mut lanes = vec![[0u64; 4]; bins];
    let mut chunks = values.chunks_exact(4);
    for c in &mut chunks {
        for (k, &w) in c.iter().enumerate() {
            lanes[b.bin(w)][k] += 1;
        }
    }
    for &w in chunks.remainder() {
        lanes[b.bin(w)][0] += 1;
    }
    lanes.iter().map(|l| l.iter().sum()).collect()
}

/// Counts of a tensor's `len` weights, read block by block through `read` (one pass; integer
/// counts, so the same whatever order the blocks are read in).
pub fn histogram(len: usize, read: &Read, limit: f32, bins: usize) -> Vec<u64> {
    map_blocks(len, read, move |block| histogram_of(block, limit, bins))
        .reduce(|| vec![0u64; bins], add_counts)
}

/// The largest |w| of a tensor's `len` finite weights (one pass; 0 for none).
pub fn max_abs(len: usize, read: &Read) -> f32 {
    map_blocks(len, read, max_abs_of).reduce(|| 0.0, f32::max)
}

/// The largest |w| of `values`, non-finite values skipped (0 for none).
pub fn max_abs_of(values: &[f32]) -> f32 {
    values
        .iter()
        .map(|w| w.abs())
        .filter(|w| w.is_finite())
        .fold(0.0, f32::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bin of `w` among `bins` equal bins over `[-limit, limit]`.
    fn bin_of(w: f32, limit: f32, bins: usize) -> usize {
        let h = histogram_of(&[w], limit, bins);
        h.iter().position(|&c| c == 1).unwrap()
    }

    #[test]
    fn the_ends_and_zero_fall_in_their_bins() {
        assert_eq!(bin_of(-1.0, 1.0, 64), 0);
        assert_eq!(bin_of(1.0, 1.0, 64), 63);
        assert_eq!(bin_of(0.0, 1.0, 64), 32);
        assert_eq!(bin_of(-1e-9, 1.0, 64), 31);
        assert_eq!(bin_of(5.0, 1.0, 64), 63);
        assert_eq!(bin_of(-5.0, 1.0, 64), 0);
        // A zero limit (an all-zero layer): everything in the middle.
        assert_eq!(bin_of(0.0, 0.0, 64), 32);
    }

    #[test]
    fn the_streamed_histogram_is_the_slice_histogram() {
        let w: Vec<f32> = (0..200_000)
            .map(|i| ((i * 7919 % 1000) as f32 - 500.0) / 333.0)
            .collect();
        let read = |first: usize, out: &mut [f32]| {
            out.copy_from_slice(&w[first..first + out.len()]);
        };
        let limit = max_abs(w.len(), &read);
        assert_eq!(limit, max_abs_of(&w));
        let h = histogram(w.len(), &read, limit, HISTOGRAM_BINS);
        assert_eq!(h, histogram_of(&w, limit, HISTOGRAM_BINS));
        assert_eq!(h.iter().sum::<u64>(), w.len() as u64);
    }
}
