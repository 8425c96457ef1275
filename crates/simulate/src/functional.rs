//! The bit-exact functional model: docs/fixed-point.md section 3, computed from the packed
//! streams (codes, relative row indices, column pointers) the way the PEs do, never from a
//! dense matrix.

use crate::error::Result;
use crate::fixed::{Arith, round_shift, saturate};
use crate::layer::LayerView;
use crate::walk::{self, PeWalk, Visit};

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
    let active = active(view, input);
    Ok(walked(view, input, &active, f_in, f_out, arith, relu, 64).0)
}

/// The columns a 16-bit input broadcasts: its non-zeros, and the bias column.
pub(crate) fn active(view: LayerView, input: &[i16]) -> Vec<bool> {
    let mut active: Vec<bool> = input.iter().map(|&a| a != 0).collect();
    if view.has_bias() {
        active.push(true);
    }
    active
}

/// [`layer`] in one walk of the streams that also gathers what the timing model needs
/// (`walk::all` with `spmat_width`), PE by PE, on every core for a large layer: a row's
/// products are added in the order they always were (its PE's, column by column), so the
/// results are the serial walk's, bit for bit. `input` and `arith` are checked by the caller.
#[allow(clippy::too_many_arguments)]
pub(crate) fn walked(
    view: LayerView,
    input: &[i16],
    active: &[bool],
    f_in: u8,
    f_out: u8,
    arith: Arith,
    relu: bool,
    spmat_width: u32,
) -> (LayerOutput, Vec<PeWalk>) {
    let w = arith.acc_bits as u32;
    let f_acc = f_out as i32 + arith.guard_bits() as i32;
    let fixed = view.codebook().fixed();
    let shift = f_in as i32 + view.codebook().frac_bits() as i32 - f_acc;
    let (n, rows) = (view.pes(), view.rows());
    let local = |k: usize| eie_format::slice_rows(rows, n, k);
    let mut acc = vec![0i128; rows];
    let mut products = vec![0u32; rows];
    // With at most 15 fractional bits at the input (the bias column's activation, the
    // constant 1, is then 2^15 at most), |a x w| <= 2^30; shifted left by at most 31 bits and added to a W-bit (<= 62) accumulator it
    // stays within i64: then i64 gives i128's results exactly. Other fractions (which the
    // commands never pass) take i128.
    let walks = if f_in <= 15 && (-31..=62).contains(&shift) {
        let bias = 1i64 << f_in;
        let (left, right) = if shift > 0 {
            (0, shift as u32)
        } else {
            ((-shift) as u32, 0)
        };
        let walks = walk::all(view, active, spmat_width, |k| Narrow {
            a: 0,
            acc: vec![0; local(k)],
            products: vec![0; local(k)],
            input,
            bias,
            fixed,
            left,
            right,
            half: if right > 0 { 1 << (right - 1) } else { 0 },
            lo: -(1i64 << (w - 1)),
            hi: (1i64 << (w - 1)) - 1,
        });
        let walks = walks.into_iter().map(|(w, v)| (w, v.acc, v.products));
        gather(n, walks, &mut acc, &mut products)
    } else {
        let walks = walk::all(view, active, spmat_width, |k| Wide {
            a: 0,
            acc: vec![0; local(k)],
            products: vec![0; local(k)],
            input,
            bias: 1i128 << f_in,
            fixed,
            shift,
            bits: w,
        });
        let walks = walks.into_iter().map(|(w, v)| (w, v.acc, v.products));
        gather(n, walks, &mut acc, &mut products)
    };
    let outputs = acc
        .iter()
        .map(|&v| {
            let b = saturate(round_shift(v, f_acc - f_out as i32), 16) as i16;
            if relu { b.max(0) } else { b }
        })
        .collect();
    let output = LayerOutput {
        outputs,
        accumulators: acc.into_iter().map(|v| v as i64).collect(),
        products,
    };
    (output, walks)
}

/// Every PE's accumulators and product counts (local rows) into the layer's rows (PE k's
/// local row l is row k + l x n), and the PEs' walks.
fn gather<T: Into<i128>>(
    n: usize,
    walks: impl Iterator<Item = (PeWalk, Vec<T>, Vec<u32>)>,
    acc: &mut [i128],
    products: &mut [u32],
) -> Vec<PeWalk> {
    walks
        .enumerate()
        .map(|(k, (walk, a, p))| {
            for (l, (v, c)) in a.into_iter().zip(p).enumerate() {
                acc[k + l * n] = v.into();
                products[k + l * n] = c;
            }
            walk
        })
        .collect()
}

/// One PE's accumulators in i64, for every shift that keeps a product and a sum in it.
struct Narrow<'a> {
    /// The column's activation.
    a: i64,
    acc: Vec<i64>,
    products: Vec<u32>,
    input: &'a [i16],
    bias: i64,
    fixed: &'a [i16],
    /// A product is shifted left, rounded at half and shifted right (one of the two is 0).
    left: u32,
    right: u32,
    half: i64,
    lo: i64,
    hi: i64,
}

impl Visit for Narrow<'_> {
    #[inline(always)]
    fn column(&mut self, j: usize) {
        self.a = self.input.get(j).map_or(self.bias, |&v| v as i64);
    }

    #[inline(always)]
    fn entry(&mut self, row: usize, code: u8) {
        let p = ((self.a * self.fixed[code as usize] as i64) << self.left) + self.half;
        let r = &mut self.acc[row];
        *r = (*r + (p >> self.right)).clamp(self.lo, self.hi);
        self.products[row] += 1;
    }
}

/// One PE's accumulators in i128, for the shifts i64 cannot hold.
struct Wide<'a> {
    /// The column's activation.
    a: i128,
    acc: Vec<i128>,
    products: Vec<u32>,
    input: &'a [i16],
    bias: i128,
    fixed: &'a [i16],
    shift: i32,
    bits: u32,
}

impl Visit for Wide<'_> {
    fn column(&mut self, j: usize) {
        self.a = self.input.get(j).map_or(self.bias, |&v| v as i128);
    }

    fn entry(&mut self, row: usize, code: u8) {
        let p = round_shift(self.a * self.fixed[code as usize] as i128, self.shift);
        self.acc[row] = saturate(self.acc[row] + p, self.bits);
        self.products[row] += 1;
    }
}

/// A layer's entries decoded once from its streams, in the order [`layer`] visits them (part,
/// column, PE, entry), padding dropped: for running many vectors through the same layer (a
/// language model's every token) with [`layer`]'s arithmetic, bit for bit, without decoding
/// the streams again each time. Its outputs are [`layer`]'s (`tests.rs` holds them equal on
/// every case of the functional model's tester).
#[derive(Debug, Clone)]
pub struct Compiled {
    name: String,
    rows: usize,
    inputs: usize,
    /// Entry ranges by column (the bias column last).
    starts: Vec<usize>,
    /// (row, fixed-point weight) of every non-padding entry.
    entries: Vec<(u32, i16)>,
    frac_bits: u8,
}

impl Compiled {
    /// Decodes `view`'s streams.
    pub fn new(view: LayerView) -> Self {
        let fixed = view.codebook().fixed();
        let cols = view.cols();
        let mut by_col: Vec<Vec<(u32, i16)>> = vec![Vec::new(); cols];
        view.for_each_entry(Some, |j: usize, row, code| {
            if code != 0 {
                by_col[j].push((row as u32, fixed[code as usize]));
            }
        });
        let mut starts = Vec::with_capacity(cols + 1);
        let mut entries = Vec::with_capacity(by_col.iter().map(Vec::len).sum());
        starts.push(0);
        for c in by_col {
            entries.extend(c);
            starts.push(entries.len());
        }
        Self {
            name: view.name().to_string(),
            rows: view.rows(),
            inputs: view.inputs(),
            starts,
            entries,
            frac_bits: view.codebook().frac_bits(),
        }
    }

    /// [`layer`]'s outputs on `input`.
    pub fn run(
        &self,
        input: &[i16],
        f_in: u8,
        f_out: u8,
        arith: Arith,
        relu: bool,
    ) -> Result<Vec<i16>> {
        arith.validate()?;
        crate::fixed::check_fractions(&[f_in, f_out], 1)?;
        if input.len() != self.inputs {
            return Err(crate::Error::InputLength {
                layer: self.name.clone(),
                expected: self.inputs,
                got: input.len(),
            });
        }
        let w = arith.acc_bits as u32;
        let f_acc = f_out as i32 + arith.guard_bits() as i32;
        let shift = f_in as i32 + self.frac_bits as i32 - f_acc;
        // |a x w| < 2^30; shifted left by at most 31 bits and added to a W-bit (<= 62)
        // accumulator it stays within i64: then i64 gives i128's results exactly.
        let acc: Vec<i128> = if shift >= -31 {
            let (hi, lo) = ((1i64 << (w - 1)) - 1, -(1i64 << (w - 1)));
            let mut acc = vec![0i64; self.rows];
            self.each(input, f_in, |a, row, weight| {
                let p = a as i64 * weight as i64;
                let p = if shift > 0 {
                    (p + (1i64 << (shift - 1))) >> shift
                } else {
                    p << (-shift)
                };
                let r = &mut acc[row as usize];
                *r = (*r + p).clamp(lo, hi);
            });
            acc.into_iter().map(i128::from).collect()
        } else {
            let mut acc = vec![0i128; self.rows];
            self.each(input, f_in, |a, row, weight| {
                let p = round_shift(a as i128 * weight as i128, shift);
                let r = &mut acc[row as usize];
                *r = saturate(*r + p, w);
            });
            acc
        };
        Ok(acc
            .iter()
            .map(|&v| {
                let b = saturate(round_shift(v, f_acc - f_out as i32), 16) as i16;
                if relu { b.max(0) } else { b }
            })
            .collect())
    }

    /// Every entry of every non-zero column, in order, with its column's activation (the
    /// bias column's is the constant 1).
    fn each(&self, input: &[i16], f_in: u8, mut visit: impl FnMut(i32, u32, i16)) {
        for (j, range) in self.starts.windows(2).enumerate() {
            let a = match input.get(j) {
                Some(&a) => a as i32,
                None => 1i32 << f_in,
            };
            if a == 0 {
                continue;
            }
            for &(row, weight) in &self.entries[range[0]..range[1]] {
                visit(a, row, weight);
            }
        }
    }
}
