//! A linear layer's calibration statistics, accumulated over the calls the float model makes.

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use rayon::prelude::*;

use crate::{Error, Result};

/// Rows of the Hessian a parallel task accumulates.
const BAND: usize = 64;

/// What a layer's inputs were on the calibration samples: per input column the sum of
/// squares, and optionally the Hessian of the layer's squared output error, `X^T X` (the
/// factor 2 and the sample count cancel in every use).
#[derive(Debug, Clone, PartialEq)]
pub struct Stats {
    cols: usize,
    samples: u64,
    sq: Vec<f64>,
    /// Row-major `cols x cols`, symmetric.
    hessian: Option<Vec<f64>>,
}

impl Stats {
    /// Empty statistics of a layer with `cols` inputs; `hessian` keeps `X^T X` too.
    pub fn new(cols: usize, hessian: bool) -> Self {
        Self {
            cols,
            samples: 0,
            sq: vec![0.0; cols],
            hessian: hessian.then(|| vec![0.0; cols * cols]),
        }
    }

    /// Bytes [`Stats::new`] holds for `cols` inputs (what a memory estimate counts).
    pub fn bytes(cols: usize, hessian: bool) -> u64 {
        let c = cols as u64;
        8 * c + if hessian { 8 * c * c } else { 0 }
    }

    /// Adds `tokens` input vectors (row-major, `tokens x cols`). Sums run in a fixed order,
    /// so the same calls in the same order give the same bits.
    pub fn add(&mut self, x: &[f32], tokens: usize) -> Result<()> {
        let expected = tokens.saturating_mul(self.cols);
        if x.len() != expected {
            return Err(Error::Shape {
                what: "calibration inputs",
                expected,
                got: x.len(),
            });
        }
        if let Some(index) = x.iter().position(|v| !v.is_finite()) {
            return Err(Error::NonFinite {
                what: "calibration inputs",
                index,
                value: x[index] as f64,
            });
        }
        let c = self.cols;
        if c == 0 {
            self.samples += tokens as u64;
            return Ok(());
        }
        for row in x.chunks(c).take(tokens) {
            for (s, &v) in self.sq.iter_mut().zip(row) {
                *s += v as f64 * v as f64;
            }
        }
        if let Some(h) = &mut self.hessian {
            // H += X^T X by faer's product, bands of rows of H in parallel, each band one
            // sequential product (its sums' order fixed by the shapes, not the threads).
            let x64: Vec<f64> = x.iter().map(|&v| v as f64).collect();
            let xm = MatRef::from_row_major_slice(&x64, tokens, c);
            h.par_chunks_mut(BAND * c)
                .enumerate()
                .for_each(|(band, out)| {
                    let first = band * BAND;
                    let n = out.len() / c;
                    let xt = xm.subcols(first, n).transpose();
                    let y = MatMut::from_row_major_slice_mut(out, n, c);
                    matmul(y, Accum::Add, xt, xm, 1.0, Par::Seq);
                });
        }
        self.samples += tokens as u64;
        Ok(())
    }

    /// Inputs.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Input vectors seen.
    pub fn samples(&self) -> u64 {
        self.samples
    }

    /// Per input column, the sum of its squares `||X_j||^2`.
    pub fn sq_norms(&self) -> &[f64] {
        &self.sq
    }

    /// Per input column, its norm `||X_j||` (Wanda's factor).
    pub fn norms(&self) -> Vec<f64> {
        self.sq.iter().map(|s| s.sqrt()).collect()
    }

    /// `X^T X`, row-major, when kept.
    pub fn hessian(&self) -> Option<&[f64]> {
        self.hessian.as_deref()
    }

    /// Per row of `original` (`rows x cols`), the calibration inputs' squared output error
    /// of replacing it by `changed`'s row, `d_r^T H d_r`. None without the Hessian or with
    /// shapes that do not match.
    pub fn row_errors(&self, original: &[f32], changed: &[f32]) -> Option<Vec<f64>> {
        let h = self.hessian.as_ref()?;
        let c = self.cols;
        if c == 0 || original.len() != changed.len() || !original.len().is_multiple_of(c) {
            return None;
        }
        Some(
            original
                .par_chunks(c)
                .zip(changed.par_chunks(c))
                .map(|(o, n)| {
                    let d: Vec<f64> = o
                        .iter()
                        .zip(n)
                        .map(|(&a, &b)| a as f64 - b as f64)
                        .collect();
                    quadratic(h, &d)
                })
                .collect(),
        )
    }

    /// The calibration inputs' squared output error of replacing `original` (`rows x cols`)
    /// by `changed`, `sum_r d_r^T H d_r`, and the outputs' own squared norm,
    /// `sum_r w_r^T H w_r`: their ratio is the layer's relative output error. None without
    /// the Hessian or with shapes that do not match.
    pub fn output_error(&self, original: &[f32], changed: &[f32]) -> Option<(f64, f64)> {
        let errors = self.row_errors(original, changed)?;
        let zero = vec![0.0f32; original.len()];
        let norms = self.row_errors(original, &zero)?;
        Some((errors.iter().sum(), norms.iter().sum()))
    }

    /// Row by row, keeps `candidate`'s row where its output error against `original` is at
    /// most `fallback`'s, else takes `fallback`'s: the fixed-order update carries no
    /// guarantee, and a row it made worse is better left as it was. Returns the rows taken
    /// from `fallback`, and each row's error as kept and as `fallback` has it. None without
    /// the Hessian or with shapes that do not match.
    pub fn keep_better(
        &self,
        original: &[f32],
        candidate: &mut [f32],
        fallback: &[f32],
    ) -> Option<Guarded> {
        if candidate.len() != fallback.len() {
            return None;
        }
        let mut kept = self.row_errors(original, candidate)?;
        let theirs = self.row_errors(original, fallback)?;
        let c = self.cols;
        let mut taken = 0;
        for (r, (m, t)) in kept.iter_mut().zip(&theirs).enumerate() {
            if *m > *t {
                candidate[r * c..(r + 1) * c].copy_from_slice(&fallback[r * c..(r + 1) * c]);
                *m = *t;
                taken += 1;
            }
        }
        Some(Guarded {
            taken,
            kept,
            fallback: theirs,
        })
    }
}

/// What [`Stats::keep_better`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct Guarded {
    /// Rows taken from the fallback.
    pub taken: usize,
    /// Each row's output error as kept.
    pub kept: Vec<f64>,
    /// Each row's output error as the fallback has it.
    pub fallback: Vec<f64>,
}

/// `v^T H v` of a row-major symmetric `H`.
fn quadratic(h: &[f64], v: &[f64]) -> f64 {
    let c = v.len();
    (0..c)
        .map(|i| {
            if v[i] == 0.0 {
                return 0.0;
            }
            let hrow = &h[i * c..(i + 1) * c];
            v[i] * hrow.iter().zip(v).map(|(a, b)| a * b).sum::<f64>()
        })
        .sum()
}
