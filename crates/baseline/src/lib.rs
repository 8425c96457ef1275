#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod error;
pub mod machine;

use std::time::Instant;

use eie_format::PackedLayer;
use eie_simulate::LayerView;
use faer::linalg::matmul::matmul;
use faer::sparse::linalg::matmul::sparse_dense_matmul;
use faer::sparse::{SparseRowMat, SymbolicSparseRowMat};
use faer::{Accum, Col, ColRef, Mat, MatRef, Par};
use serde::Serialize;

pub use error::{Error, Result};
pub use machine::{EnergyCounter, Machine};

/// The batch of the batched products.
pub const BATCH: usize = 64;

/// Weights below which a product runs on one thread: splitting a small product costs more
/// than it gains (MNIST's 235,500-weight fc1 took 9.4 to 38.5 us dense on two threads, 9.4 to
/// 10.1 on one).
pub const PARALLEL_WEIGHTS: usize = 1 << 20;

/// One layer as a CPU computes it: the dense weight matrix (row-major, the codebook's
/// values, zeros where pruned) and the same matrix in CSR, with the inputs (a folded bias is
/// one more column whose input is 1, as on EIE).
pub struct Operands {
    name: String,
    rows: usize,
    cols: usize,
    dense: Vec<f32>,
    csr: SparseRowMat<usize, f32>,
    x: Vec<f32>,
    xs: Vec<f32>,
}

impl Operands {
    /// The layer of `view` with `inputs` (each as many values as the layer has inputs): the
    /// first is the batch-1 input; the batch of [`BATCH`] takes them in turn, from the first
    /// again when there are fewer (a dense or CSR product costs the same whatever the values).
    pub fn of(view: LayerView, inputs: &[Vec<f32>]) -> Result<Self> {
        let name = view.name().to_string();
        let Some(first) = inputs.first() else {
            return Err(Error::NoInput { layer: name });
        };
        if let Some(bad) = inputs.iter().find(|x| x.len() != view.inputs()) {
            return Err(Error::InputLength {
                layer: name,
                expected: view.inputs(),
                got: bad.len(),
            });
        }
        let codes = PackedLayer::join_columns(view.parts()).map_err(|e| Error::Layer {
            layer: name.clone(),
            reason: e.to_string(),
        })?;
        let (rows, cols) = (view.rows(), view.cols());
        let values = view.codebook().values();
        let mut dense = vec![0f32; rows * cols];
        let mut row_ptr = vec![0usize; rows + 1];
        let mut col_idx = Vec::with_capacity(codes.codes().len());
        let mut vals = Vec::with_capacity(codes.codes().len());
        // Positions are row-major and increasing: rows in order, columns sorted within each.
        for (&p, &c) in codes.positions().iter().zip(codes.codes()) {
            let (r, col) = (p as usize / cols, p as usize % cols);
            let v = values[c as usize];
            dense[r * cols + col] = v;
            col_idx.push(col);
            vals.push(v);
            row_ptr[r + 1] += 1;
        }
        for r in 0..rows {
            row_ptr[r + 1] += row_ptr[r];
        }
        let symbolic = SymbolicSparseRowMat::new_checked(rows, cols, row_ptr, None, col_idx);
        let csr = SparseRowMat::new(symbolic, vals);
        let with_bias = |x: &[f32]| {
            let mut v = x.to_vec();
            v.resize(cols, 1.0);
            v
        };
        let x = with_bias(first);
        // Row-major [cols, BATCH]: column k is input k mod the inputs given.
        let columns: Vec<Vec<f32>> = (0..BATCH)
            .map(|k| with_bias(&inputs[k % inputs.len()]))
            .collect();
        let xs = (0..cols)
            .flat_map(|j| columns.iter().map(move |c| c[j]))
            .collect();
        Ok(Self {
            name,
            rows,
            cols,
            dense,
            csr,
            x,
            xs,
        })
    }

    /// The layer's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn par(&self) -> Par {
        if self.rows * self.cols < PARALLEL_WEIGHTS {
            Par::Seq
        } else {
            Par::rayon(0)
        }
    }

    /// y = W x, dense.
    pub fn dense(&self, y: &mut Col<f32>) {
        let w = MatRef::from_row_major_slice(&self.dense, self.rows, self.cols);
        let x = ColRef::from_slice(&self.x);
        matmul(y.as_mut(), Accum::Replace, w, x, 1.0, self.par());
    }

    /// Y = W X for the batch, dense.
    pub fn dense_batch(&self, y: &mut Mat<f32>) {
        let w = MatRef::from_row_major_slice(&self.dense, self.rows, self.cols);
        let x = MatRef::from_row_major_slice(&self.xs, self.cols, BATCH);
        matmul(y.as_mut(), Accum::Replace, w, x, 1.0, self.par());
    }

    /// y = W x, CSR.
    pub fn sparse(&self, y: &mut Col<f32>) {
        let x = ColRef::from_slice(&self.x);
        sparse_dense_matmul(
            y.as_mut().as_mat_mut(),
            Accum::Replace,
            self.csr.as_ref(),
            x.as_mat(),
            1.0,
            self.par(),
        );
    }

    /// Y = W X for the batch, CSR.
    pub fn sparse_batch(&self, y: &mut Mat<f32>) {
        let x = MatRef::from_row_major_slice(&self.xs, self.cols, BATCH);
        sparse_dense_matmul(
            y.as_mut(),
            Accum::Replace,
            self.csr.as_ref(),
            x,
            1.0,
            self.par(),
        );
    }

    /// The four products' outputs for the batch-1 input (the batched ones' first column):
    /// dense, dense batched, CSR, CSR batched.
    pub fn outputs(&self) -> [Vec<f32>; 4] {
        let (mut y, mut ys) = (Col::zeros(self.rows), Mat::zeros(self.rows, BATCH));
        let col = |y: &Col<f32>| (0..self.rows).map(|i| y[i]).collect();
        let first = |y: &Mat<f32>| (0..self.rows).map(|i| y[(i, 0)]).collect();
        self.dense(&mut y);
        let a = col(&y);
        self.dense_batch(&mut ys);
        let b = first(&ys);
        self.sparse(&mut y);
        let c = col(&y);
        self.sparse_batch(&mut ys);
        [a, b, c, first(&ys)]
    }
}

/// How long to measure each product.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Budget {
    /// At least this many timed runs (after one untimed warm-up run).
    pub min_runs: usize,
    /// And at least this long in all, seconds, unless `max_runs` comes first.
    pub min_seconds: f64,
    /// At most this many runs.
    pub max_runs: usize,
}

impl Default for Budget {
    fn default() -> Self {
        Self {
            min_runs: 5,
            min_seconds: 0.2,
            max_runs: 1000,
        }
    }
}

/// One product, measured.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Measured {
    /// The median time of one run, seconds (a batched run: the whole batch).
    pub median_s: f64,
    /// Runs timed.
    pub runs: usize,
    /// Energy of one run from the machine's counter, joules, where it has one.
    pub energy_j: Option<f64>,
}

/// A layer's four products on this machine.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LayerCpu {
    /// The layer.
    pub name: String,
    /// Dense f32 matrix-vector product, batch 1.
    pub dense: Measured,
    /// CSR matrix-vector product, batch 1.
    pub sparse: Measured,
    /// Dense f32 matrix product, batch [`BATCH`].
    pub dense_batch: Measured,
    /// CSR times a dense matrix, batch [`BATCH`].
    pub sparse_batch: Measured,
}

fn measure(budget: &Budget, counter: Option<&EnergyCounter>, mut run: impl FnMut()) -> Measured {
    run();
    let mut times = Vec::new();
    let before = counter.and_then(EnergyCounter::read);
    let start = Instant::now();
    while times.len() < budget.min_runs.max(1)
        || (start.elapsed().as_secs_f64() < budget.min_seconds && times.len() < budget.max_runs)
    {
        let t = Instant::now();
        run();
        times.push(t.elapsed().as_secs_f64());
    }
    let energy_j = match (counter, before) {
        (Some(c), Some(b)) => c
            .read()
            .map(|a| c.joules_between(b, a) / times.len() as f64),
        _ => None,
    };
    times.sort_by(f64::total_cmp);
    Measured {
        median_s: times[times.len() / 2],
        runs: times.len(),
        energy_j,
    }
}

/// Times the four products of `ops`, one after the other, within `budget`; with `counter`,
/// also their energy.
pub fn measure_layer(ops: &Operands, budget: &Budget, counter: Option<&EnergyCounter>) -> LayerCpu {
    let (mut y, mut ys) = (Col::zeros(ops.rows), Mat::zeros(ops.rows, BATCH));
    LayerCpu {
        name: ops.name.clone(),
        dense: measure(budget, counter, || ops.dense(&mut y)),
        sparse: measure(budget, counter, || ops.sparse(&mut y)),
        dense_batch: measure(budget, counter, || ops.dense_batch(&mut ys)),
        sparse_batch: measure(budget, counter, || ops.sparse_batch(&mut ys)),
    }
}

/// The geometric mean of `values` (0 for none).
pub fn geomean(values: &[f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    (values.iter().map(|v| v.ln()).sum::<f64>() / values.len() as f64).exp()
}

#[cfg(test)]
mod tests {
    use eie_simulate::{Arith, fixed, float, functional, workload};

    use super::*;

    /// The CPU computes the same layer: all four products equal the float model of the
    /// packed layer (the codebook's values, the folded bias) within f32 rounding.
    #[test]
    fn the_products_are_the_layer() {
        // 90 columns, the last a folded bias; in column batches of 32.
        let (codes, book) = workload::random_layer(70, 90, 0.2, 4, 3);
        let layer = PackedLayer::encode_sparse("w", &codes, book, 8, 4)
            .unwrap()
            .with_bias("b")
            .unwrap();
        let parts = layer.split_columns(32).unwrap();
        let view = LayerView::new(&parts);
        let mut rng = eie_rng::Rng::new(5);
        let x: Vec<f32> = (0..view.inputs())
            .map(|_| rng.below(2000) as f32 / 1000.0 - 1.0)
            .collect();
        let ops = Operands::of(view, std::slice::from_ref(&x)).unwrap();
        let expected = float::layer(view, &x, false);
        let scale = expected.iter().fold(1.0f64, |m, v| m.max(v.abs()));
        for (k, out) in ops.outputs().iter().enumerate() {
            assert_eq!(out.len(), 70);
            for (a, b) in out.iter().zip(&expected) {
                assert!(
                    ((*a as f64) - b).abs() <= 1e-5 * scale,
                    "product {k}: {a} vs {b}"
                );
            }
        }
        // And the bit-exact fixed-point model's outputs, within its rounding (16-bit inputs,
        // codebook and outputs): far below what a wrong layer (a missing bias, a transposed
        // matrix) would give.
        let f_out = fixed::fraction_for(scale);
        let q: Vec<i16> = x.iter().map(|&v| fixed::to_q16(v, 14)).collect();
        let eie = functional::layer(view, &q, 14, f_out, Arith::default(), false).unwrap();
        for (a, &b) in ops.outputs()[0].iter().zip(&eie.outputs) {
            let b = fixed::from_q16(b, f_out) as f64;
            assert!(((*a as f64) - b).abs() <= 0.01 * scale, "{a} vs EIE's {b}");
        }
        let m = measure_layer(
            &ops,
            &Budget {
                min_runs: 3,
                min_seconds: 0.0,
                max_runs: 3,
            },
            None,
        );
        assert_eq!(m.dense.runs, 3);
        assert!(m.sparse_batch.median_s > 0.0);
        assert_eq!(m.dense.energy_j, None);
    }

    #[test]
    fn inputs_are_checked() {
        let (codes, book) = workload::random_layer(8, 6, 0.5, 4, 1);
        let layer = PackedLayer::encode_sparse("w", &codes, book, 2, 4).unwrap();
        let view = LayerView::new(std::slice::from_ref(&layer));
        assert!(matches!(
            Operands::of(view, &[]),
            Err(Error::NoInput { .. })
        ));
        let e = Operands::of(view, &[vec![0.0; 5]])
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("\"w\"") && e.contains("6") && e.contains("5"),
            "{e}"
        );
    }

    #[test]
    fn geomean_of_ratios() {
        assert!((geomean(&[2.0, 8.0]) - 4.0).abs() < 1e-12);
        assert_eq!(geomean(&[]), 0.0);
    }
}
