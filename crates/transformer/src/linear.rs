//! Linear layers, pluggable: the forward pass asks a [`Linear`] for `y = W x + b` of each
//! token's vector, and knows nothing else of it. [`Dense`] is the float reference.

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use rayon::prelude::*;

/// Tokens and outputs a dense layer multiplies at once on one thread.
const TOKEN_BLOCK: usize = 128;
const ROW_BLOCK: usize = 256;

use eie_checkpoint::Checkpoint;

use crate::error::{Error, Result};

/// One linear layer of a model as its checkpoint stores it: what `make` builds a [`Linear`]
/// from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinearSpec {
    /// The layer's Hugging Face name: its weight tensor's, or for a tied head the name
    /// transformers gives it (`lm_head.weight`, `cls.predictions.decoder.weight`).
    pub name: String,
    /// The weight tensor read (for a tied head, the token embeddings').
    pub weight: String,
    /// The bias tensor's name, when the layer has one.
    pub bias: Option<String>,
    /// Outputs.
    pub rows: usize,
    /// Inputs.
    pub cols: usize,
    /// Whether the tensor is stored `[in, out]` (GPT-2's `Conv1D`) rather than PyTorch's
    /// `[out, in]`.
    pub transposed: bool,
}

/// `y = W x + b` on token vectors.
pub trait Linear: Send + Sync {
    /// Outputs.
    fn rows(&self) -> usize;
    /// Inputs.
    fn cols(&self) -> usize;
    /// The layer on `tokens` vectors of [`Linear::cols`] values each, row-major: `tokens`
    /// vectors of [`Linear::rows`] values.
    fn apply(&self, x: &[f32], tokens: usize) -> Result<Vec<f32>>;
}

impl<T: Linear + ?Sized> Linear for Box<T> {
    fn rows(&self) -> usize {
        (**self).rows()
    }

    fn cols(&self) -> usize {
        (**self).cols()
    }

    fn apply(&self, x: &[f32], tokens: usize) -> Result<Vec<f32>> {
        (**self).apply(x, tokens)
    }
}

/// `alpha a b`, row-major, as one sequential product (faer's; its sums' order is fixed by the
/// shapes, never by the thread count): the one matrix product of the float path.
pub(crate) fn product(a: MatRef<'_, f32>, b: MatRef<'_, f32>, alpha: f32) -> Vec<f32> {
    let (n, m) = (a.nrows(), b.ncols());
    let mut out = vec![0.0f32; n * m];
    let y = MatMut::from_row_major_slice_mut(&mut out, n, m);
    matmul(y, Accum::Replace, a, b, alpha, Par::Seq);
    out
}

/// A dense float layer, `[rows, cols]` row-major (PyTorch's `[out, in]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Dense {
    /// The weight tensor's name.
    pub name: String,
    /// Outputs.
    pub rows: usize,
    /// Inputs.
    pub cols: usize,
    /// The weights.
    pub w: Vec<f32>,
    /// The bias.
    pub b: Option<Vec<f32>>,
}

impl Dense {
    /// Reads the layer `spec` describes (a `[in, out]` tensor transposed), every value
    /// finite.
    pub fn read(ck: &Checkpoint, spec: &LinearSpec) -> Result<Self> {
        let raw = ck.read_f32(&spec.weight)?;
        let (rows, cols) = (spec.rows, spec.cols);
        let w = if spec.transposed {
            eie_checkpoint::transpose(&raw, cols, rows)
        } else {
            raw
        };
        eie_checkpoint::check_finite(&spec.weight, &w, cols)?;
        let b = match &spec.bias {
            Some(name) => {
                let b = ck.read_f32(name)?;
                eie_checkpoint::check_finite(name, &b, rows)?;
                Some(b)
            }
            None => None,
        };
        Ok(Self {
            name: spec.name.clone(),
            rows,
            cols,
            w,
            b,
        })
    }
}

impl Linear for Dense {
    fn rows(&self) -> usize {
        self.rows
    }

    fn cols(&self) -> usize {
        self.cols
    }

    fn apply(&self, x: &[f32], tokens: usize) -> Result<Vec<f32>> {
        if x.len() != tokens * self.cols {
            return Err(Error::Input {
                reason: format!(
                    "layer {} takes {} inputs a token, given {} values for {tokens} tokens",
                    self.name,
                    self.cols,
                    x.len()
                ),
            });
        }
        let (rows, cols) = (self.rows, self.cols);
        let mut y = vec![0.0f32; tokens * rows];
        if rows == 0 || cols == 0 {
            return Ok(y);
        }
        // Blocks of a fixed number of tokens and of outputs, each one sequential product
        // (faer's, the order of its sums fixed by the block's shape): the same sums on any
        // thread count.
        let blocks: Vec<(usize, usize)> = (0..tokens)
            .step_by(TOKEN_BLOCK)
            .flat_map(|t0| (0..rows).step_by(ROW_BLOCK).map(move |r0| (t0, r0)))
            .collect();
        let parts: Vec<Vec<f32>> = blocks
            .par_iter()
            .map(|&(t0, r0)| {
                let (n, m) = ((tokens - t0).min(TOKEN_BLOCK), (rows - r0).min(ROW_BLOCK));
                let xm = MatRef::from_row_major_slice(&x[t0 * cols..(t0 + n) * cols], n, cols);
                // W's rows r0.. stored row-major are W^T's columns, column-major.
                let wt =
                    MatRef::from_column_major_slice(&self.w[r0 * cols..(r0 + m) * cols], cols, m);
                product(xm, wt, 1.0)
            })
            .collect();
        for (&(t0, r0), part) in blocks.iter().zip(&parts) {
            let m = (rows - r0).min(ROW_BLOCK);
            for (i, row) in part.chunks_exact(m).enumerate() {
                let dst = &mut y[(t0 + i) * rows + r0..][..m];
                dst.copy_from_slice(row);
                if let Some(b) = &self.b {
                    dst.iter_mut()
                        .zip(&b[r0..r0 + m])
                        .for_each(|(o, b)| *o += b);
                }
            }
        }
        Ok(y)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dense_layer_is_w_x_plus_b_per_token() {
        let d = Dense {
            name: "l".into(),
            rows: 2,
            cols: 3,
            w: vec![1.0, 2.0, 3.0, -1.0, 0.0, 1.0],
            b: Some(vec![0.5, -0.5]),
        };
        let y = d.apply(&[1.0, 1.0, 1.0, 0.0, 2.0, 4.0], 2).unwrap();
        assert_eq!(y, vec![6.5, -0.5, 16.5, 3.5]);
        assert!(d.apply(&[1.0; 4], 2).is_err());
    }

    /// Over several blocks of tokens and outputs: the products' sums within f32 rounding,
    /// and the same bits on one thread and on four.
    #[test]
    fn blocks_give_the_same_sums_on_any_thread_count() {
        let (rows, cols, tokens) = (300, 70, 260);
        let d = Dense {
            name: "l".into(),
            rows,
            cols,
            w: (0..rows * cols)
                .map(|i| ((i * 37 % 101) as f32 - 50.0) / 50.0)
                .collect(),
            b: Some((0..rows).map(|r| r as f32 / 100.0).collect()),
        };
        let x: Vec<f32> = (0..tokens * cols)
            .map(|i| ((i * 13 % 17) as f32 - 8.0) / 8.0)
            .collect();
        let on = |threads| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| d.apply(&x, tokens).unwrap())
        };
        let y = on(1);
        assert_eq!(y, on(4));
        for t in [0, 129, 259] {
            for r in [0, 255, 299] {
                let want: f64 = (0..cols)
                    .map(|c| d.w[r * cols + c] as f64 * x[t * cols + c] as f64)
                    .sum::<f64>()
                    + d.b.as_ref().unwrap()[r] as f64;
                assert!((y[t * rows + r] as f64 - want).abs() < 1e-4, "{t} {r}");
            }
        }
    }
}
