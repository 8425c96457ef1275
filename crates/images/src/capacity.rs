//! Per-PE SRAM capacity: does each PE's share of a layer fit its Spmat and pointer memories,
//! and if not, by how much and how many PEs would fit it.

use eie_format::{PackedLayer, SparseCodes, entry_counts, max_pointer};

use crate::error::{Memory, Overflow};
use crate::words::{CODEBOOK_WORD_BITS, SPMAT_WORD_BITS, codebook_words, entries_per_word};

/// Per-PE memory sizes, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capacity {
    /// Sparse-matrix (Spmat) SRAM per PE. The paper: 128 KB.
    pub spmat_bytes: u64,
    /// Column-pointer SRAM per PE. The paper: 32 KB.
    pub pointer_bytes: u64,
}

impl Default for Capacity {
    fn default() -> Self {
        Self {
            spmat_bytes: 128 * 1024,
            pointer_bytes: 32 * 1024,
        }
    }
}

/// Bytes of PE `pe`'s Spmat image.
pub fn spmat_bytes(layer: &PackedLayer, pe: usize) -> u64 {
    let per_word = entries_per_word(layer.entry_bits()) as u64;
    (layer.streams()[pe].entries() as u64).div_ceil(per_word) * (SPMAT_WORD_BITS as u64 / 8)
}

/// Bytes of one PE's pointer image for a layer (or column batch) of `cols` columns: every PE
/// stores `cols + 1` pointers, whatever its rows.
pub fn pointer_image_bytes(cols: usize, pointer_bits: u8) -> u64 {
    (cols as u64 + 1) * pointer_bits as u64 / 8
}

/// Bytes of one PE's pointer image.
pub fn pointer_bytes(layer: &PackedLayer, pointer_bits: u8) -> u64 {
    pointer_image_bytes(layer.cols(), pointer_bits)
}

/// Bytes of each image kind of a layer (or of one column batch).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LayerBytes {
    /// Spmat images, over all PEs.
    pub spmat: u64,
    /// Pointer images, over all PEs.
    pub pointers: u64,
    /// The codebook image (one, which every PE of the layer loads).
    pub codebook: u64,
}

impl LayerBytes {
    /// The bytes of `layer`'s images with `pointer_bits`-bit pointers.
    pub fn of(layer: &PackedLayer, pointer_bits: u8) -> Self {
        Self {
            spmat: (0..layer.pes()).map(|pe| spmat_bytes(layer, pe)).sum(),
            pointers: pointer_bytes(layer, pointer_bits) * layer.pes() as u64,
            codebook: codebook_words(layer.codebook().fixed()).len() as u64
                * (CODEBOOK_WORD_BITS as u64 / 8),
        }
    }

    /// The bytes of a layer stored as these parts: Spmat and pointer images add up, the
    /// codebook is one.
    pub fn of_parts(parts: &[PackedLayer], pointer_bits: u8) -> Self {
        parts.iter().fold(Self::default(), |acc, p| {
            let b = Self::of(p, pointer_bits);
            Self {
                spmat: acc.spmat + b.spmat,
                pointers: acc.pointers + b.pointers,
                codebook: b.codebook,
            }
        })
    }

    /// Every image together.
    pub fn total(&self) -> u64 {
        self.spmat + self.pointers + self.codebook
    }
}

/// How evenly a layer's entries (padding included) are spread over its PEs: what sets the
/// cycles of a layer, since every PE waits for the busiest.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EntryBalance {
    /// Fewest entries in a PE.
    pub min: usize,
    /// Mean entries per PE.
    pub mean: f64,
    /// Most entries in a PE.
    pub max: usize,
}

impl EntryBalance {
    /// Of `layer`'s PEs.
    pub fn of(layer: &PackedLayer) -> Self {
        let e: Vec<usize> = layer.streams().iter().map(|s| s.entries()).collect();
        Self {
            min: e.iter().copied().min().unwrap_or(0),
            mean: e.iter().sum::<usize>() as f64 / e.len().max(1) as f64,
            max: e.iter().copied().max().unwrap_or(0),
        }
    }

    /// Of a layer stored as `parts` (its column batches): each PE's entries over all parts.
    pub fn of_parts(parts: &[PackedLayer]) -> Self {
        let pes = parts.first().map_or(0, PackedLayer::pes);
        let e: Vec<usize> = (0..pes)
            .map(|pe| parts.iter().map(|p| p.streams()[pe].entries()).sum())
            .collect();
        Self {
            min: e.iter().copied().min().unwrap_or(0),
            mean: e.iter().sum::<usize>() as f64 / e.len().max(1) as f64,
            max: e.iter().copied().max().unwrap_or(0),
        }
    }

    /// max / mean (1 for an empty layer): the slowdown against perfect balance.
    pub fn imbalance(&self) -> f64 {
        if self.mean > 0.0 {
            self.max as f64 / self.mean
        } else {
            1.0
        }
    }
}

/// Whether a whole model (every layer, every column batch) stays in its PEs' SRAMs at once,
/// as it must to run pass after pass (token after token) without DRAM: what each PE holds of
/// it against `capacity`, and what a pass fetches from DRAM when it does not fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Residency {
    /// PEs.
    pub pes: usize,
    /// The most Spmat bytes one PE holds of the whole model.
    pub spmat_per_pe: u64,
    /// The pointer bytes every PE holds of the whole model (`cols + 1` pointers per layer
    /// and batch, whatever the PE count).
    pub pointers_per_pe: u64,
    /// The SRAMs per PE.
    pub capacity: Capacity,
    /// Bytes beyond the SRAMs, over all PEs: fetched from DRAM on every pass.
    pub dram_bytes_per_pass: u64,
}

impl Residency {
    /// Of a model stored as `layers` (every part of every layer, one PE count).
    pub fn of(layers: &[PackedLayer], pointer_bits: u8, capacity: Capacity) -> Self {
        let pes = layers.first().map_or(0, PackedLayer::pes);
        let spmat: Vec<u64> = (0..pes)
            .map(|pe| layers.iter().map(|l| spmat_bytes(l, pe)).sum())
            .collect();
        let pointers: u64 = layers.iter().map(|l| pointer_bytes(l, pointer_bits)).sum();
        let dram_bytes_per_pass = spmat
            .iter()
            .map(|&s| {
                s.saturating_sub(capacity.spmat_bytes)
                    + pointers.saturating_sub(capacity.pointer_bytes)
            })
            .sum();
        Self {
            pes,
            spmat_per_pe: spmat.iter().copied().max().unwrap_or(0),
            pointers_per_pe: pointers,
            capacity,
            dram_bytes_per_pass,
        }
    }

    /// Whether every PE holds its whole share.
    pub fn resident(&self) -> bool {
        self.dram_bytes_per_pass == 0
    }

    /// The fewest PEs whose Spmat SRAMs would hold the model, with its entries spread as
    /// they are now (the busiest PE's share scaled): `None` when the pointers alone, which
    /// every PE holds whatever the PE count, overflow the pointer SRAM.
    pub fn pes_to_hold(&self) -> Option<u64> {
        if self.pointers_per_pe > self.capacity.pointer_bytes {
            return None;
        }
        let needed = (self.spmat_per_pe as u128 * self.pes as u128)
            .div_ceil(self.capacity.spmat_bytes.max(1) as u128);
        Some(needed.max(1).min(u64::MAX as u128) as u64)
    }
}

/// Checks every PE of `layer` against `capacity`; one [`Overflow`] per memory that does not
/// fit (empty when everything fits).
pub fn check(layer: &PackedLayer, pointer_bits: u8, capacity: &Capacity) -> Vec<Overflow> {
    let mut out = Vec::new();
    let spmat: Vec<u64> = (0..layer.pes()).map(|pe| spmat_bytes(layer, pe)).collect();
    let over: Vec<usize> = (0..layer.pes())
        .filter(|&pe| spmat[pe] > capacity.spmat_bytes)
        .collect();
    let ptr = pointer_bytes(layer, pointer_bits);
    let ptr_over = ptr > capacity.pointer_bytes;
    if over.is_empty() && !ptr_over {
        return out;
    }
    // More PEs can fix the Spmat, whatever the pointers do (their overflow, reported on its
    // own, does not depend on the PE count).
    let fitting = if over.is_empty() {
        None
    } else {
        fitting_pes(&layer.decode_sparse(), layer, pointer_bits, capacity)
    };
    if let Some(&worst) = over
        .iter()
        .max_by_key(|&&pe| (spmat[pe], std::cmp::Reverse(pe)))
    {
        out.push(Overflow {
            layer: layer.name().to_string(),
            memory: Memory::Spmat,
            pe: worst,
            needed: spmat[worst],
            capacity: capacity.spmat_bytes,
            pes_over: over.len(),
            pes: layer.pes(),
            fitting_pes: fitting,
        });
    }
    if ptr_over {
        out.push(Overflow {
            layer: layer.name().to_string(),
            memory: Memory::Pointers,
            pe: 0,
            needed: ptr,
            capacity: capacity.pointer_bytes,
            pes_over: layer.pes(),
            pes: layer.pes(),
            fitting_pes: None,
        });
    }
    out
}

/// A PE count, above the layer's, at which every PE's entries fit both the Spmat SRAM and
/// the pointer width. Entry counts are not monotonic in N, so this binary-searches as if they
/// were and then verifies the answer; None when even one row per PE does not fit.
pub fn fitting_pes(
    codes: &SparseCodes,
    layer: &PackedLayer,
    pointer_bits: u8,
    capacity: &Capacity,
) -> Option<usize> {
    let per_word = entries_per_word(layer.entry_bits()) as u64;
    let limit = (capacity.spmat_bytes / (SPMAT_WORD_BITS as u64 / 8))
        .saturating_mul(per_word)
        .min(max_pointer(pointer_bits));
    let fits = |n: usize| {
        entry_counts(codes, n, layer.index_bits())
            .map(|counts| counts.iter().all(|&c| c <= limit))
            .unwrap_or(false)
    };
    let nnz = codes.len() as u64;
    let lower = (nnz.div_ceil(limit.max(1)) as usize).max(layer.pes() + 1);
    let upper = codes.rows().max(lower);
    if !fits(upper) {
        return None;
    }
    let (mut lo, mut hi) = (lower, upper);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if fits(mid) { hi = mid } else { lo = mid + 1 }
    }
    Some(hi)
}

/// The largest column batch (at most the layer's columns) at which every part holds at
/// most `limit` entries in every PE, preferring a power of two; None when one column alone is
/// too much. Columns keep their entry counts when a layer is split, so this needs no
/// re-encoding.
pub fn fitting_batch(layer: &PackedLayer, limit: u64) -> Option<usize> {
    let cols = layer.cols();
    let fits = |batch: usize| {
        layer.streams().iter().all(|s| {
            (0..cols)
                .step_by(batch)
                .all(|a| (s.ptr()[(a + batch).min(cols)] - s.ptr()[a]) as u64 <= limit)
        })
    };
    if cols == 0 || !fits(1) {
        return None;
    }
    let (mut lo, mut hi) = (1usize, cols);
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if fits(mid) { lo = mid } else { hi = mid - 1 }
    }
    let power = 1usize << lo.ilog2();
    Some(if fits(power) { power } else { lo })
}

/// The largest SRAM a PE may be given, either memory: 1 TiB (a bundle records KiB).
pub const MAX_SRAM_BYTES: u64 = 1 << 40;

/// `part` as a percentage of `whole` (0 for an empty whole): padding of entries, and the like.
pub fn pct(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        100.0 * part as f64 / whole as f64
    }
}

#[cfg(test)]
mod tests {
    use eie_format::{CodeMatrix, Codebook, SparseCodes};

    use super::*;

    fn layer(rows: usize, cols: usize, pes: usize) -> PackedLayer {
        let m = CodeMatrix::new(rows, cols, vec![1; rows * cols]).unwrap();
        PackedLayer::encode("fc", &m, Codebook::new(4, &[0.5]).unwrap(), pes, 4).unwrap()
    }

    #[test]
    fn fitting_batch_keeps_every_part_within_the_limit() {
        // 2 x 100 dense, 1 PE: 2 entries per column.
        let l = layer(2, 100, 1);
        assert_eq!(
            fitting_batch(&l, 200),
            Some(64),
            "100 columns fit; a power of two preferred"
        );
        assert_eq!(fitting_batch(&l, 64), Some(32));
        assert_eq!(fitting_batch(&l, 1), None);
    }

    /// Two layers that each fit alone may not fit together: the model's share per PE is the
    /// sum, and what passes the SRAMs is fetched on every pass, by every PE.
    #[test]
    fn a_model_is_resident_only_when_every_layer_fits_at_once() {
        // 8 x 64 dense on 2 PEs: 4 rows a PE, 256 entries of 8 bits = 256 bytes of Spmat a
        // PE; 65 16-bit pointers = 130 bytes.
        let (a, b) = (layer(8, 64, 2), layer(8, 64, 2));
        assert_eq!(spmat_bytes(&a, 0), 256);
        let cap = |spmat, pointer_bytes| Capacity {
            spmat_bytes: spmat,
            pointer_bytes,
        };
        let r = Residency::of(std::slice::from_ref(&a), 16, cap(256, 130));
        assert!(r.resident());
        assert_eq!(r.pes_to_hold(), Some(2));
        let both = [a, b];
        let r = Residency::of(&both, 16, cap(256, 130));
        assert_eq!((r.spmat_per_pe, r.pointers_per_pe), (512, 260));
        assert!(!r.resident());
        assert_eq!(r.dram_bytes_per_pass, 2 * (256 + 130));
        assert_eq!(r.pes_to_hold(), None, "the pointers alone overflow");
        let r = Residency::of(&both, 16, cap(256, 260));
        assert_eq!(r.dram_bytes_per_pass, 2 * 256);
        assert_eq!(r.pes_to_hold(), Some(4));
    }

    #[test]
    fn fits_within_the_paper_memories() {
        assert!(check(&layer(64, 100, 8), 16, &Capacity::default()).is_empty());
    }

    #[test]
    fn spmat_overflow_names_worst_pe_and_a_pe_count_that_fits() {
        // 10 x 100 dense, 2 PEs: PE 0 holds 5 rows = 500 entries = 63 words = 504 B.
        let l = layer(10, 100, 2);
        let cap = Capacity {
            spmat_bytes: 256,
            pointer_bytes: 1024,
        };
        let over = check(&l, 16, &cap);
        assert_eq!(over.len(), 1);
        let o = &over[0];
        assert_eq!(
            (o.memory, o.pe, o.needed, o.pes_over),
            (Memory::Spmat, 0, 504, 2)
        );
        // 256 B = 32 words = 256 entries: 2 rows (200 entries) per PE fit, 3 do not -> 5 PEs.
        assert_eq!(o.fitting_pes, Some(5));
        let text = o.to_string();
        assert!(
            text.contains("248 B") && text.contains("5 PEs would fit it"),
            "{text}"
        );
    }

    #[test]
    fn pointer_overflow_cannot_be_fixed_by_more_pes() {
        let l = layer(4, 100, 2);
        let cap = Capacity {
            spmat_bytes: 1 << 20,
            pointer_bytes: 100,
        };
        let over = check(&l, 16, &cap);
        assert_eq!(over.len(), 1);
        assert_eq!(
            (over[0].memory, over[0].needed, over[0].fitting_pes),
            (Memory::Pointers, 202, None)
        );
        assert!(over[0].to_string().contains("no PE count fits"));
    }

    #[test]
    fn fitting_pes_respects_the_pointer_width() {
        // 300 columns dense, 3 rows: with an 8-bit-wide limit (255 entries) a PE may hold no
        // whole row, so no count fits; with 16 bits the next count, 2, fits.
        let l = layer(3, 300, 1);
        let m = SparseCodes::from_dense(&l.decode());
        let big = Capacity {
            spmat_bytes: 1 << 20,
            pointer_bytes: 1 << 20,
        };
        assert_eq!(fitting_pes(&m, &l, 8, &big), None);
        assert_eq!(fitting_pes(&m, &l, 16, &big), Some(2));
    }
}
