//! A layer as the models see it: one packed layer, or the consecutive parts of a layer stored
//! in column batches.

use eie_format::{Bundle, Codebook, PackedLayer};

use crate::error::{Error, Result};

/// What a layer stores, as float values: its weights sparse, the bias column apart.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    /// Flat row-major positions of the stored weights in the `rows x inputs` weight matrix
    /// (the bias column left out), ascending.
    pub positions: Vec<u64>,
    /// Their codes.
    pub codes: Vec<u8>,
    /// Their values (the codebook's floats).
    pub values: Vec<f32>,
    /// The bias column's values, 0.0 where it stores nothing; `None` without a bias column.
    pub bias: Option<Vec<f32>>,
}

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

    /// What the layer stores ([`Stored`]): its parts' codes joined, the bias column apart,
    /// every code's float value from the codebook. The one decoding of a packed layer into
    /// weights that unpack, the float stages and a described model's host layers share.
    pub fn stored(&self) -> Result<Stored> {
        let codes = PackedLayer::join_columns(self.parts)?;
        let book = self.codebook().values();
        let (cols, inputs) = (self.cols() as u64, self.inputs() as u64);
        let mut bias = self.has_bias().then(|| vec![0f32; self.rows()]);
        let mut out = Stored {
            positions: Vec::with_capacity(codes.len()),
            codes: Vec::with_capacity(codes.len()),
            values: Vec::with_capacity(codes.len()),
            bias: None,
        };
        for (&p, &c) in codes.positions().iter().zip(codes.codes()) {
            let (row, col) = (p / cols, p % cols);
            match &mut bias {
                Some(b) if col == inputs => b[row as usize] = book[c as usize],
                _ => {
                    out.positions.push(row * inputs + col);
                    out.codes.push(c);
                    out.values.push(book[c as usize]);
                }
            }
        }
        out.bias = bias;
        Ok(out)
    }

    /// The stored weights as a dense `rows x inputs` matrix (0.0 where pruned), and the bias
    /// column's values.
    pub fn dense(&self) -> Result<(Vec<f32>, Option<Vec<f32>>)> {
        let s = self.stored()?;
        let mut w = vec![0f32; self.rows() * self.inputs()];
        for (&p, &v) in s.positions.iter().zip(&s.values) {
            w[p as usize] = v;
        }
        Ok((w, s.bias))
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
