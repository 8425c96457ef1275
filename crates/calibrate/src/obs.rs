//! The optimal brain surgeon's update, column by column (SparseGPT's and GPTQ's): a row's
//! weights are fixed one column at a time, and each one's error is pushed onto the columns
//! not yet fixed, weighted by the inverse Hessian of those columns.
//!
//! With the upper Cholesky factor `U` of `H^-1` (`H^-1 = U^T U`), row `i` of `U` divided by
//! `U_ii` is exactly the update that re-solves columns `i+1..` optimally once columns `..=i`
//! are fixed (the Schur complement of the fixed columns, which GPTQ showed the factor holds
//! for every `i` at once).

use rayon::prelude::*;

use crate::{Error, Result};

/// Columns whose later-column update is batched (SparseGPT's and GPTQ's lazy batch).
pub const BLOCK: usize = 128;

/// Rows a parallel task updates.
const ROWS: usize = 8;

/// The upper Cholesky factor of a layer's damped inverse Hessian.
#[derive(Debug, Clone, PartialEq)]
pub struct Factor {
    cols: usize,
    /// Row-major, upper triangular.
    u: Vec<f64>,
    damp: f64,
    dead: usize,
}

impl Factor {
    /// Factors `hessian` (`cols x cols`, row-major, symmetric) damped by `damp` x its mean
    /// diagonal (SparseGPT's 0.01 is the usual choice). Dead columns (a zero diagonal) get the
    /// mean diagonal: their weights meet only zero inputs, so nothing is pushed onto them and
    /// they push nothing. A factorisation that fails is retried with ten times the damping,
    /// up to four times.
    pub fn new(hessian: &[f64], cols: usize, damp: f64) -> Result<Self> {
        if !(damp.is_finite() && damp > 0.0) {
            return Err(Error::Damp { got: damp });
        }
        let Some(square) = cols.checked_mul(cols) else {
            return Err(Error::Shape {
                what: "Hessian",
                expected: usize::MAX,
                got: hessian.len(),
            });
        };
        if hessian.len() != square {
            return Err(Error::Shape {
                what: "Hessian",
                expected: square,
                got: hessian.len(),
            });
        }
        if let Some(index) = hessian.iter().position(|v| !v.is_finite()) {
            return Err(Error::NonFinite {
                what: "Hessian",
                index,
                value: hessian[index],
            });
        }
        let diag: Vec<f64> = (0..cols).map(|j| hessian[j * cols + j]).collect();
        let live: Vec<f64> = diag.iter().copied().filter(|&d| d > 0.0).collect();
        let mean = if live.is_empty() {
            1.0
        } else {
            live.iter().sum::<f64>() / live.len() as f64
        };
        let dead = diag.iter().filter(|&&d| d <= 0.0).count();
        let mut lambda = damp;
        let mut last = 0;
        for _ in 0..5 {
            // The reversed matrix J H J, damped; dead columns decoupled.
            let n = cols;
            let mut a = vec![0.0f64; n * n];
            for i in 0..n {
                for j in 0..n {
                    let (hi, hj) = (n - 1 - i, n - 1 - j);
                    let v = if diag[hi] <= 0.0 || diag[hj] <= 0.0 {
                        if hi == hj { mean } else { 0.0 }
                    } else {
                        hessian[hi * n + hj]
                    };
                    a[i * n + j] = v;
                }
                a[i * n + i] += lambda * mean;
            }
            match cholesky(&mut a, n) {
                Ok(()) => {
                    let inv = lower_inverse(&a, n);
                    // U = J M^-1 J, upper.
                    let mut u = vec![0.0f64; n * n];
                    for i in 0..n {
                        for j in i..n {
                            u[i * n + j] = inv[(n - 1 - i) * n + (n - 1 - j)];
                        }
                    }
                    return Ok(Self {
                        cols,
                        u,
                        damp: lambda,
                        dead,
                    });
                }
                Err(col) => last = n - 1 - col,
            }
            lambda *= 10.0;
        }
        Err(Error::NotPositiveDefinite {
            cols,
            damp: lambda / 10.0,
            column: last,
        })
    }

    /// Inputs.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The damping used (the one asked for, or a tenfold multiple of it when that failed).
    pub fn damp(&self) -> f64 {
        self.damp
    }

    /// Dead input columns (zero on every calibration sample).
    pub fn dead(&self) -> usize {
        self.dead
    }

    /// `U`, row-major.
    pub fn upper(&self) -> &[f64] {
        &self.u
    }

    /// The diagonal of the damped inverse Hessian, `[H^-1]_jj = sum_i U_ij^2`: what the
    /// optimal brain surgeon's saliency `w^2 / [H^-1]_jj` divides by.
    pub fn inverse_diagonal(&self) -> Vec<f64> {
        let c = self.cols;
        (0..c)
            .map(|j| (0..=j).map(|i| self.u[i * c + j].powi(2)).sum())
            .collect()
    }
}

/// In place: the lower Cholesky factor of `a` (`n x n`, row-major; the upper triangle is left
/// as it was and ignored). Err(column) where a pivot is not positive.
fn cholesky(a: &mut [f64], n: usize) -> std::result::Result<(), usize> {
    for i in 0..n {
        for j in 0..=i {
            let (ri, rj) = (i * n, j * n);
            let dot: f64 = a[ri..ri + j]
                .iter()
                .zip(&a[rj..rj + j])
                .map(|(x, y)| x * y)
                .sum();
            let s = a[ri + j] - dot;
            if i == j {
                if !(s > 0.0 && s.is_finite()) {
                    return Err(i);
                }
                a[ri + i] = s.sqrt();
            } else {
                a[ri + j] = s / a[rj + j];
            }
        }
    }
    Ok(())
}

/// The inverse of the lower triangle of `m` (`n x n`, row-major), lower, row by row: row `i`
/// of the inverse is `-(sum_k<i m_ik N_k) / m_ii` with `N_ii = 1 / m_ii`.
fn lower_inverse(m: &[f64], n: usize) -> Vec<f64> {
    let mut inv = vec![0.0f64; n * n];
    let mut acc = vec![0.0f64; n];
    for i in 0..n {
        acc[..i].iter_mut().for_each(|v| *v = 0.0);
        for k in 0..i {
            let mik = m[i * n + k];
            if mik == 0.0 {
                continue;
            }
            let nk = &inv[k * n..k * n + k + 1];
            for (a, &v) in acc[..=k].iter_mut().zip(nk) {
                *a += mik * v;
            }
        }
        let d = m[i * n + i];
        for j in 0..i {
            inv[i * n + j] = -acc[j] / d;
        }
        inv[i * n + i] = 1.0 / d;
    }
    inv
}

/// Fixes every weight of `w` (`rows x cols`, row-major) to `target(row, col, value)`, column
/// by column, each row's error compensated on its columns not yet fixed (the optimal brain
/// surgeon's update with the fixed order). `value` is the weight as updated so far; `target`
/// returns what it becomes (0 where pruned, its shared value, or `value` itself to keep it
/// free). The weights stay f64 while they are updated and are rounded to f32 once.
pub fn compensate(
    w: &mut [f32],
    rows: usize,
    factor: &Factor,
    target: &(dyn Fn(usize, usize, f64) -> f64 + Sync),
) -> Result<()> {
    compensate_in_blocks(w, rows, factor, target, BLOCK)
}

/// [`compensate`] with blocks of `block` columns (tests reach several blocks with few
/// columns).
pub(crate) fn compensate_in_blocks(
    w: &mut [f32],
    rows: usize,
    factor: &Factor,
    target: &(dyn Fn(usize, usize, f64) -> f64 + Sync),
    block: usize,
) -> Result<()> {
    let block = block.max(1);
    let c = factor.cols;
    if w.len() != rows.saturating_mul(c) {
        return Err(Error::Shape {
            what: "weights",
            expected: rows.saturating_mul(c),
            got: w.len(),
        });
    }
    if c == 0 {
        return Ok(());
    }
    let u = &factor.u;
    w.par_chunks_mut(ROWS * c)
        .enumerate()
        .for_each(|(chunk, out)| {
            let first = chunk * ROWS;
            let n = out.len() / c;
            let mut x: Vec<f64> = out.iter().map(|&v| v as f64).collect();
            let mut err = vec![0.0f64; n * block];
            for b0 in (0..c).step_by(block) {
                let b1 = (b0 + block).min(c);
                for i in b0..b1 {
                    let urow = &u[i * c..(i + 1) * c];
                    let d = urow[i];
                    for r in 0..n {
                        let row = &mut x[r * c..(r + 1) * c];
                        let v = row[i];
                        let q = target(first + r, i, v);
                        row[i] = q;
                        let e = (v - q) / d;
                        err[r * block + (i - b0)] = e;
                        if e != 0.0 {
                            for (xj, &uj) in row[i + 1..b1].iter_mut().zip(&urow[i + 1..b1]) {
                                *xj -= e * uj;
                            }
                        }
                    }
                }
                // The columns after the block take the block's errors at once.
                if b1 < c {
                    for r in 0..n {
                        let row = &mut x[r * c..(r + 1) * c];
                        for i in b0..b1 {
                            let e = err[r * block + (i - b0)];
                            if e == 0.0 {
                                continue;
                            }
                            let urow = &u[i * c + b1..(i + 1) * c];
                            for (xj, &uj) in row[b1..].iter_mut().zip(urow) {
                                *xj -= e * uj;
                            }
                        }
                    }
                }
            }
            for (o, &v) in out.iter_mut().zip(&x) {
                *o = v as f32;
            }
        });
    Ok(())
}
