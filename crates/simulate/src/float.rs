//! The float model: the same layer in floating point with the same quantized weights (the
//! codebook's float values), f64 accumulation. Calibration runs it, and the fixed-point
//! result is compared with it (docs/fixed-point.md section 5).

use crate::fixed::{MAX_ACT_FRAC, fraction_for};
use crate::layer::LayerView;
use crate::walk::{self, Visit};

/// `W x (+ bias)` then ReLU if `relu`, for float input `x` (length: the layer's inputs).
///
/// PE by PE (on every core for a large layer), each row's products added in column order as
/// in a serial walk, so the sums are the same to the bit. Padding is skipped: its product is a
/// zero, which leaves a sum that starts at +0.0 as it was (for finite inputs; any other
/// input takes the serial walk with padding, whose products are then NaN as before).
pub fn layer(view: LayerView, x: &[f32], relu: bool) -> Vec<f64> {
    let values = view.codebook().values();
    let (n, rows, inputs) = (view.pes(), view.rows(), view.inputs());
    if x.iter().any(|v| !v.is_finite()) {
        return serial(view, x, relu);
    }
    let input = |j: usize| if j < inputs { x[j] as f64 } else { 1.0 };
    let active: Vec<bool> = (0..view.cols()).map(|j| input(j) != 0.0).collect();
    let walks = walk::all(view, &active, 64, |k| Sums {
        input: 0.0,
        y: vec![0f64; eie_format::slice_rows(rows, n, k)],
        x,
        inputs,
        values,
    });
    let mut y = vec![0f64; rows];
    for (k, (_, sums)) in walks.into_iter().enumerate() {
        for (l, v) in sums.y.into_iter().enumerate() {
            y[k + l * n] = v;
        }
    }
    if relu {
        y.iter_mut().for_each(|v| *v = v.max(0.0));
    }
    y
}

/// [`layer`] serially with padding's products too: for an input that is not finite, whose
/// padding products (0 x inf) are NaN, as they always were.
fn serial(view: LayerView, x: &[f32], relu: bool) -> Vec<f64> {
    let values = view.codebook().values();
    let mut y = vec![0f64; view.rows()];
    view.for_each_entry(
        |j| {
            let input = if j < view.inputs() { x[j] as f64 } else { 1.0 };
            (input != 0.0).then_some(input)
        },
        |input, row, code| y[row] += values[code as usize] as f64 * input,
    );
    if relu {
        y.iter_mut().for_each(|v| *v = v.max(0.0));
    }
    y
}

/// One PE's float sums of its rows.
struct Sums<'a> {
    /// The column's input.
    input: f64,
    y: Vec<f64>,
    x: &'a [f32],
    inputs: usize,
    values: &'a [f32],
}

impl Visit for Sums<'_> {
    #[inline(always)]
    fn column(&mut self, j: usize) {
        // The bias column's input is 1.
        self.input = if j < self.inputs {
            self.x[j] as f64
        } else {
            1.0
        };
    }

    #[inline(always)]
    fn entry(&mut self, row: usize, code: u8) {
        self.y[row] += self.values[code as usize] as f64 * self.input;
    }
}

/// Whether layer `index` of `count` applies ReLU on write-back.
pub fn relu_at(index: usize, count: usize, relu_last: bool) -> bool {
    index + 1 < count || relu_last
}

/// Calibration (docs/fixed-point.md section 1): runs the float model on every sample input
/// and picks, at each of the layers + 1 boundaries, the largest fraction at which the largest
/// |value| seen fits 16 bits.
pub fn calibrate(layers: &[LayerView], inputs: &[Vec<f32>], relu_last: bool) -> Vec<u8> {
    let mut max = vec![0f64; layers.len() + 1];
    for x in inputs {
        let mut a: Vec<f64> = x.iter().map(|&v| v as f64).collect();
        max[0] = max[0].max(a.iter().fold(0.0, |m, v| m.max(v.abs())));
        for (i, view) in layers.iter().enumerate() {
            let input: Vec<f32> = a.iter().map(|&v| v as f32).collect();
            a = layer(*view, &input, relu_at(i, layers.len(), relu_last));
            max[i + 1] = max[i + 1].max(a.iter().fold(0.0, |m, v| m.max(v.abs())));
        }
    }
    max.into_iter()
        .map(|m| {
            if m.is_finite() {
                fraction_for(m)
            } else {
                MAX_ACT_FRAC
            }
        })
        .collect()
}
