//! Linear layers, pluggable: the forward pass asks a [`Linear`] for `y = W x + b` of each
//! token's vector, and knows nothing else of it. [`Dense`] is the float reference.

use rayon::prelude::*;

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
            let mut w = vec![0.0; raw.len()];
            for (i, row) in raw.chunks_exact(rows).enumerate() {
                for (j, &v) in row.iter().enumerate() {
                    w[j * cols + i] = v;
                }
            }
            w
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
        let mut y = vec![0.0f32; tokens * self.rows];
        // Each output is one dot product in a fixed order: the same on any thread count.
        y.par_chunks_mut(self.rows)
            .zip(x.par_chunks(self.cols))
            .for_each(|(out, xt)| {
                out.par_iter_mut().enumerate().for_each(|(r, o)| {
                    let w = &self.w[r * self.cols..(r + 1) * self.cols];
                    *o = dot(w, xt) + self.b.as_ref().map_or(0.0, |b| b[r]);
                });
            });
        Ok(y)
    }
}

/// A dot product in eight interleaved partial sums (vectorisable, and a fixed order).
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (ac, bc) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ac
        .remainder()
        .iter()
        .zip(bc.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ac.zip(bc) {
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    acc.iter().sum::<f32>() + tail
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
        let a: Vec<f32> = (0..19).map(|i| i as f32).collect();
        assert_eq!(dot(&a, &a), (0..19).map(|i| (i * i) as f32).sum::<f32>());
    }
}
