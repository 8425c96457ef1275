//! A layer as the models see it: one packed layer, or the consecutive parts of a layer stored
//! in column batches.

use eie_format::{Bundle, Codebook, PackedLayer};

use crate::error::{Error, Result};

/// One logical layer: its parts in column order (a single part for a whole layer).
#[derive(Debug, Clone, Copy)]
pub struct LayerView<'a> {
    parts: &'a [PackedLayer],
}

impl<'a> LayerView<'a> {
    /// A view of `parts` (consecutive parts of one layer, as a validated bundle holds them).
    ///
    /// # Panics
    /// If `parts` is empty.
    pub fn new(parts: &'a [PackedLayer]) -> Self {
        assert!(!parts.is_empty(), "a layer has at least one part");
        Self { parts }
    }

    /// Every layer of a bundle, in model order.
    pub fn all(bundle: &'a Bundle) -> Vec<LayerView<'a>> {
        bundle
            .logical_layers()
            .into_iter()
            .map(LayerView::new)
            .collect()
    }

    /// The parts, in column order.
    pub fn parts(&self) -> &'a [PackedLayer] {
        self.parts
    }

    /// Name.
    pub fn name(&self) -> &'a str {
        self.parts[0].name()
    }

    /// Rows (outputs).
    pub fn rows(&self) -> usize {
        self.parts[0].rows()
    }

    /// Columns, the bias column included.
    pub fn cols(&self) -> usize {
        self.parts[0].total_cols()
    }

    /// Whether the last column is a folded bias (input constant 1).
    pub fn has_bias(&self) -> bool {
        self.parts[0].bias().is_some()
    }

    /// Inputs: columns not counting the bias column.
    pub fn inputs(&self) -> usize {
        self.cols() - usize::from(self.has_bias())
    }

    /// PEs the rows are interleaved over.
    pub fn pes(&self) -> usize {
        self.parts[0].pes()
    }

    /// The codebook (shared by the parts).
    pub fn codebook(&self) -> &'a Codebook {
        self.parts[0].codebook()
    }

    /// Visits, in broadcast order, the entries of every column `j` (over the parts; the bias
    /// column is `j = inputs()`) for which `column(j)` gives an activation: column by
    /// column, PE by PE, each PE's entries in stream order, as `visit(activation, row,
    /// code)`, padding (code 0) included. The one place the models decode relative row
    /// indices. Always inlined: as a call, `bench-paper` ran 1.4x slower (0.44 s, not 0.32).
    #[inline(always)]
    pub(crate) fn for_each_entry<A: Copy>(
        &self,
        mut column: impl FnMut(usize) -> Option<A>,
        mut visit: impl FnMut(A, usize, u8),
    ) {
        let pes = self.pes();
        for part in self.parts {
            for local_col in 0..part.cols() {
                let Some(a) = column(part.first_col() + local_col) else {
                    continue;
                };
                for (pe, s) in part.streams().iter().enumerate() {
                    let mut next = 0usize;
                    for e in s.ptr()[local_col] as usize..s.ptr()[local_col + 1] as usize {
                        let local = next + s.z()[e] as usize;
                        next = local + 1;
                        visit(a, pe + local * pes, s.codes()[e]);
                    }
                }
            }
        }
    }

    /// Checks that an input vector has this layer's input count.
    pub fn check_input(&self, len: usize) -> Result<()> {
        if len != self.inputs() {
            return Err(Error::InputLength {
                layer: self.name().to_string(),
                expected: self.inputs(),
                got: len,
            });
        }
        Ok(())
    }
}

/// Checks that `layers` chain: each takes as many inputs as the previous has rows, all on
/// the same number of PEs (`docs/fixed-point.md` section 4).
pub fn check_chain(layers: &[LayerView]) -> Result<()> {
    for w in layers.windows(2) {
        let (a, b) = (w[0], w[1]);
        let chain = |reason: String| {
            Err(Error::Chain {
                prev: a.name().to_string(),
                next: b.name().to_string(),
                reason,
            })
        };
        if b.inputs() != a.rows() {
            return chain(format!(
                "it takes {} inputs, \"{}\" has {} rows",
                b.inputs(),
                a.name(),
                a.rows()
            ));
        }
        if b.pes() != a.pes() {
            return chain(format!(
                "it is packed for {} PEs, \"{}\" for {}",
                b.pes(),
                a.name(),
                a.pes()
            ));
        }
    }
    Ok(())
}
