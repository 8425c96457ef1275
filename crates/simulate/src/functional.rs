//! The bit-exact functional model: docs/fixed-point.md section 3, computed from the packed
//! streams (codes, relative row indices, column pointers) the way the PEs do, never from a
//! dense matrix.

use crate::error::Result;
use crate::fixed::{Arith, round_shift, saturate};
use crate::layer::LayerView;

/// One layer's results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerOutput {
    /// Output activations, 16-bit with the output fraction, after write-back and ReLU.
    pub outputs: Vec<i16>,
    /// Every row's accumulator before write-back (W-bit values).
    pub accumulators: Vec<i64>,
    /// Products added into each row (for the error bound).
    pub products: Vec<u32>,
}

/// Runs one layer on 16-bit input activations (`f_in` fractional bits, length: the layer's
/// inputs) to outputs with `f_out` fractional bits.
pub fn layer(
    view: LayerView,
    input: &[i16],
    f_in: u8,
    f_out: u8,
    arith: Arith,
    relu: bool,
) -> Result<LayerOutput> {
    arith.validate()?;
    view.check_input(input.len())?;
    let w = arith.acc_bits as u32;
    let f_acc = f_out as i32 + arith.guard_bits() as i32;
    let fixed = view.codebook().fixed();
    let shift = f_in as i32 + view.codebook().frac_bits() as i32 - f_acc;
    let mut acc = vec![0i128; view.rows()];
    let mut products = vec![0u32; view.rows()];
    view.for_each_entry(
        |j| {
            // The bias column's activation is the constant 1.
            let a = if j < view.inputs() {
                input[j] as i128
            } else {
                1i128 << f_in
            };
            (a != 0).then_some(a)
        },
        |a, row, code| {
            if code == 0 {
                return; // padding
            }
            let p = a * fixed[code as usize] as i128;
            acc[row] = saturate(acc[row] + round_shift(p, shift), w);
            products[row] += 1;
        },
    );
    let outputs = acc
        .iter()
        .map(|&v| {
            let b = saturate(round_shift(v, f_acc - f_out as i32), 16) as i16;
            if relu { b.max(0) } else { b }
        })
        .collect();
    Ok(LayerOutput {
        outputs,
        accumulators: acc.into_iter().map(|v| v as i64).collect(),
        products,
    })
}
