//! Fitting a packed layer to the hardware: column batches, the pointer width and the per-PE
//! SRAMs. One home for the rules `pack`, `compress`, `bench-paper` and `sweep` share.

use eie_format::{PackedLayer, max_pointer};

use crate::capacity::{Capacity, check, fitting_batch, fitting_pes, pointer_image_bytes};
use crate::error::{Error, Overflow, Remedy, Result};

/// Columns of a batch when a layer must be split: the paper's activation batch (its
/// activation register files hold 4K values per layer pass).
pub const AUTO_BATCH: usize = 4096;

/// How a layer's columns are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ColumnBatch {
    /// Whole when it fits the pointer width and the pointer SRAM; otherwise in batches of
    /// [`AUTO_BATCH`] columns.
    #[default]
    Auto,
    /// Batches of at most this many columns (pointers restart at 0 in every batch); 0 keeps
    /// every layer whole.
    Columns(usize),
}

impl std::str::FromStr for ColumnBatch {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Self::Auto),
            n => n.parse::<usize>().map(Self::Columns).map_err(|_| {
                format!("expected \"auto\" or a number of columns (0: whole layers), got \"{n}\"")
            }),
        }
    }
}

impl std::fmt::Display for ColumnBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Auto => f.write_str("auto"),
            Self::Columns(c) => write!(f, "{c}"),
        }
    }
}

/// How packed layers are fitted to the hardware.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fit {
    /// Width of a column pointer in the images (16, the paper, or 32).
    pub pointer_bits: u8,
    /// Per-PE SRAM sizes.
    pub capacity: Capacity,
    /// How columns are batched.
    pub column_batch: ColumnBatch,
    /// Write layers that overflow the SRAMs anyway (their overflows are returned as
    /// warnings) instead of failing.
    pub allow_overflow: bool,
}

impl Default for Fit {
    /// The paper's hardware: 16-bit pointers, 128 KB Spmat and 32 KB pointer SRAM per PE,
    /// automatic column batches, overflows refused.
    fn default() -> Self {
        Self {
            pointer_bits: 16,
            capacity: Capacity::default(),
            column_batch: ColumnBatch::Auto,
            allow_overflow: false,
        }
    }
}

/// A layer fitted: its parts (one when stored whole), and the SRAM overflows written anyway
/// (only with [`Fit::allow_overflow`]).
#[derive(Debug, Clone)]
pub struct Placed {
    /// The parts, in column order.
    pub parts: Vec<PackedLayer>,
    /// Overflows allowed by [`Fit::allow_overflow`].
    pub overflows: Vec<Overflow>,
}

impl Fit {
    /// The pointer SRAM depends only on a layer's columns (every PE stores `cols + 1`
    /// pointers), so it can be checked before a layer is read: an error when a layer of `cols`
    /// columns (the bias column included) cannot fit whatever its PE count, or when its
    /// column batches would be more than [`eie_format::MAX_PARTS`].
    pub fn check_pointer_sram(&self, layer: &str, cols: usize) -> Result<()> {
        if let ColumnBatch::Columns(c) = self.column_batch
            && let Some(reason) = eie_format::too_many_parts(cols, c)
        {
            return Err(eie_format::Error::InvalidLayer {
                layer: layer.to_string(),
                reason,
            }
            .into());
        }
        if self.allow_overflow {
            return Ok(());
        }
        let part = match self.column_batch {
            ColumnBatch::Columns(0) => cols,
            ColumnBatch::Columns(c) => cols.min(c),
            ColumnBatch::Auto => cols.min(AUTO_BATCH),
        };
        let needed = pointer_image_bytes(part, self.pointer_bits);
        let capacity = self.capacity.pointer_bytes;
        if needed > capacity {
            return Err(Error::PointerSram {
                layer: layer.to_string(),
                pointers: part as u64 + 1,
                needed,
                capacity,
            });
        }
        Ok(())
    }

    /// The batch `layer` is stored in (0: whole), as [`Fit::column_batch`] says: automatic
    /// batches split a layer into [`AUTO_BATCH`] columns when it does not fit whole, its
    /// pointers past their width or (unless overflows are allowed) its pointer array past the
    /// pointer SRAM.
    pub fn batch_for(&self, layer: &PackedLayer) -> usize {
        let cols = match self.column_batch {
            ColumnBatch::Columns(c) => return c,
            ColumnBatch::Auto => layer.cols(),
        };
        let pointers_fit = layer.max_pointer() <= max_pointer(self.pointer_bits);
        let sram_fits = self.allow_overflow
            || pointer_image_bytes(cols, self.pointer_bits) <= self.capacity.pointer_bytes;
        if pointers_fit && sram_fits {
            0
        } else {
            AUTO_BATCH
        }
    }

    /// Splits `layer` into its column batches and checks every part: each pointer inside its
    /// width (an error naming the layer and PE, with the remedies that fit), each PE inside
    /// its SRAMs (an error, or overflows returned with [`Fit::allow_overflow`]).
    pub fn place(&self, layer: PackedLayer) -> Result<Placed> {
        let placed = self.place_all(layer)?;
        self.check_overflows(placed.overflows.clone())?;
        Ok(placed)
    }

    /// [`Fit::place`] with every SRAM overflow returned, allowed or not, so that a run over
    /// many layers can list them all before failing once with [`Fit::check_overflows`].
    pub fn place_all(&self, layer: PackedLayer) -> Result<Placed> {
        let batch = self.batch_for(&layer);
        let parts = layer.split_columns(batch)?;
        for part in &parts {
            if let Err(eie_format::Error::PointerOverflow {
                layer,
                pe,
                value,
                pointer_bits,
            }) = part.check_pointer_width(self.pointer_bits)
            {
                return Err(Error::PointerOverflow {
                    layer,
                    pe,
                    value,
                    pointer_bits,
                    remedies: self.remedies(part),
                });
            }
        }
        let overflows: Vec<Overflow> = parts
            .iter()
            .flat_map(|p| check(p, self.pointer_bits, &self.capacity))
            .collect();
        Ok(Placed { parts, overflows })
    }

    /// An error listing `overflows` (of one layer or many), unless there are none or
    /// [`Fit::allow_overflow`] allows them.
    pub fn check_overflows(&self, overflows: Vec<Overflow>) -> Result<()> {
        if overflows.is_empty() || self.allow_overflow {
            return Ok(());
        }
        Err(Error::Capacity {
            spmat_bytes: self.capacity.spmat_bytes,
            pointer_bytes: self.capacity.pointer_bytes,
            overflows,
        })
    }

    /// Every change that would fit a part whose pointers overflow, each verified.
    fn remedies(&self, part: &PackedLayer) -> Vec<Remedy> {
        let unlimited = Capacity {
            spmat_bytes: u64::MAX / 2,
            pointer_bytes: u64::MAX / 2,
        };
        let mut out = Vec::new();
        if let Some(n) = fitting_pes(&part.decode_sparse(), part, self.pointer_bits, &unlimited)
            && n <= 65536
        {
            out.push(Remedy::Pes(n));
        }
        if self.pointer_bits < 32 {
            out.push(Remedy::WidePointers);
        }
        if let Some(b) = fitting_batch(part, max_pointer(self.pointer_bits)) {
            out.push(Remedy::ColumnBatch(b));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use eie_format::{CodeMatrix, Codebook};

    use super::*;

    fn dense(rows: usize, cols: usize, pes: usize) -> PackedLayer {
        let m = CodeMatrix::new(rows, cols, vec![1; rows * cols]).unwrap();
        PackedLayer::encode("w", &m, Codebook::new(4, &[0.5]).unwrap(), pes, 4).unwrap()
    }

    #[test]
    fn column_batches_parse_and_print() {
        for (text, batch) in [
            ("auto", ColumnBatch::Auto),
            ("0", ColumnBatch::Columns(0)),
            ("4096", ColumnBatch::Columns(4096)),
        ] {
            assert_eq!(text.parse::<ColumnBatch>().unwrap(), batch);
            assert_eq!(batch.to_string(), text);
        }
        assert!("-1".parse::<ColumnBatch>().is_err());
        assert!("some".parse::<ColumnBatch>().is_err());
    }

    #[test]
    fn auto_keeps_what_fits_and_splits_what_does_not() {
        let fit = Fit::default();
        // 64 x 100 on 8 PEs: 800 entries per PE, 101 pointers: whole.
        assert_eq!(fit.batch_for(&dense(64, 100, 8)), 0);
        // 2 x 40000 on 1 PE: 80000 entries pass 16 bits, 40001 pointers pass 32 KB: 4096.
        let wide = dense(2, 40_000, 1);
        assert_eq!(fit.batch_for(&wide), AUTO_BATCH);
        let placed = fit.place(wide.clone()).unwrap();
        assert_eq!(placed.parts.len(), 10);
        assert!(placed.overflows.is_empty());
        // Whole with 32-bit pointers when overflows are allowed.
        let wide32 = Fit {
            pointer_bits: 32,
            allow_overflow: true,
            ..Fit::default()
        };
        assert_eq!(wide32.batch_for(&wide), 0);
        // 20 rows on 1 PE: 4096 columns hold 81920 entries: the batches are refused, naming
        // a batch that fits.
        let err = fit.place(dense(20, 5000, 1)).unwrap_err().to_string();
        assert!(
            err.contains("column batches (--column-batch 2048)"),
            "{err}"
        );
    }

    #[test]
    fn pointer_overflow_names_the_remedies() {
        let fit = Fit {
            column_batch: ColumnBatch::Columns(0),
            allow_overflow: true,
            ..Fit::default()
        };
        let err = fit.place(dense(2, 40_000, 1)).unwrap_err().to_string();
        assert!(
            err.contains("\"w\" PE 0")
                && err.contains(
                    "--pes 2, or --pointer-bits 32, or column batches (--column-batch 16384) would fit it"
                ),
            "{err}"
        );
    }

    #[test]
    fn the_pointer_sram_is_checked_from_the_columns_alone() {
        let small = Fit {
            capacity: Capacity {
                spmat_bytes: 1 << 20,
                pointer_bytes: 1024,
            },
            column_batch: ColumnBatch::Columns(0),
            ..Fit::default()
        };
        assert!(small.check_pointer_sram("w", 511).is_ok());
        let err = small.check_pointer_sram("w", 512).unwrap_err().to_string();
        assert!(err.contains("513 pointers (1026 B)"), "{err}");
        let batched = Fit {
            column_batch: ColumnBatch::Columns(256),
            ..small
        };
        assert!(batched.check_pointer_sram("w", 100_000).is_ok());
        let auto = Fit {
            column_batch: ColumnBatch::Auto,
            ..small
        };
        // Automatic batches of 4096 columns need 8194 B of pointers.
        assert!(auto.check_pointer_sram("w", 100_000).is_err());
        let auto = Fit {
            capacity: Capacity::default(),
            ..auto
        };
        assert!(auto.check_pointer_sram("w", 100_000).is_ok());
    }
}
