//! A stack of LSTM layers run as one fused operation, forward and backward through time,
//! written out by hand over plain f32 slices: burn's autodiff of the same cell (a dozen small
//! tensors and graph nodes a step) spent four fifths of an LSTM's training time on
//! elementwise kernels, copies and libm's scalar `expf`, and trained it 5x slower than
//! PyTorch's fused cell (docs/performance.md, "Training against PyTorch").
//!
//! Gates follow PyTorch (i, f, g, o), with a zero initial state. A layer's matrix is burn's
//! layout of the packed LSTM matrix, `[features + H, 4H]`: the `W_ih` rows, then the `W_hh`
//! rows. Inside, every sequence is time-major (`[steps, batch, width]`) so that a step's rows
//! are contiguous for its matrix product; the stack's input and output are sample-major
//! (`[batch, steps, width]`), as burn's tensors are.

use std::cell::RefCell;

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};

/// One layer's parameters.
#[derive(Debug, Clone)]
pub(crate) struct Weights {
    /// `[features + hidden, 4 hidden]` row-major.
    pub w: Vec<f32>,
    /// `[4 hidden]`, when the layer has a bias.
    pub b: Option<Vec<f32>>,
    /// Inputs per step.
    pub features: usize,
    /// The state's width.
    pub hidden: usize,
}

/// What one layer's forward pass keeps for its backward pass, time-major.
#[derive(Debug)]
pub(crate) struct Saved {
    /// The layer's input, `[steps, batch, features]`.
    x: Vec<f32>,
    /// The activated gates (i, f, g, o), `[steps, batch, 4H]`.
    gates: Vec<f32>,
    /// The cell, `[steps, batch, H]`.
    c: Vec<f32>,
    /// `tanh` of the cell.
    tc: Vec<f32>,
    /// The output, `[steps, batch, H]`.
    h: Vec<f32>,
}

/// One layer's gradients: its matrix's (burn's layout) and its bias's.
pub(crate) type LayerGradients = (Vec<f32>, Option<Vec<f32>>);

/// `c = a b` (or `c += a b`): row-major views, one sequential product whose sums' order is
/// fixed by the shapes.
fn product(c: MatMut<'_, f32>, a: MatRef<'_, f32>, b: MatRef<'_, f32>, add: bool) {
    let accum = if add { Accum::Add } else { Accum::Replace };
    matmul(c, accum, a, b, 1.0, Par::Seq);
}

fn rows(v: &[f32], r: usize, c: usize) -> MatRef<'_, f32> {
    MatRef::from_row_major_slice(v, r, c)
}

fn rows_mut(v: &mut [f32], r: usize, c: usize) -> MatMut<'_, f32> {
    MatMut::from_row_major_slice_mut(v, r, c)
}

thread_local! {
    /// Buffers the passes reuse: every step allocates and frees the same sizes, and glibc
    /// handing a worker thread's freed memory back to the system made a quarter of an LSTM's
    /// training time page faults. At most [`SPARES`] buffers and [`SPARE_BYTES`] are kept a
    /// thread: a training step's worth at the usual batch sizes, never a large batch's.
    static SPARE: RefCell<Vec<Vec<f32>>> = const { RefCell::new(Vec::new()) };
}

const SPARES: usize = 32;
const SPARE_BYTES: usize = 64 << 20;

/// `n` zeros, in a spare buffer when one is large enough.
fn zeros(n: usize) -> Vec<f32> {
    let spare = SPARE.with(|s| {
        let mut s = s.borrow_mut();
        let best = (0..s.len())
            .filter(|&i| s[i].capacity() >= n)
            .min_by_key(|&i| s[i].capacity());
        best.map(|i| s.swap_remove(i))
    });
    let mut v = spare.unwrap_or_default();
    v.clear();
    v.resize(n, 0.0);
    v
}

/// Keeps `v` for [`zeros`] to hand out again, while the thread's spares stay within bounds.
fn recycle(v: Vec<f32>) {
    SPARE.with(|s| {
        let mut s = s.borrow_mut();
        let held: usize = s.iter().map(|b| b.capacity() * 4).sum();
        if s.len() < SPARES && held + v.capacity() * 4 <= SPARE_BYTES {
            s.push(v);
        }
    });
}

/// `[a, b, w]` to `[b, a, w]` (sample-major to time-major and back), in a spare buffer.
fn swap_major(v: &[f32], a: usize, b: usize, w: usize) -> Vec<f32> {
    let mut out = zeros(v.len());
    swap_into(v, &mut out, a, b, w);
    out
}

/// [`swap_major`] into `out`.
fn swap_into(v: &[f32], out: &mut [f32], a: usize, b: usize, w: usize) {
    for i in 0..a {
        for j in 0..b {
            out[(j * a + i) * w..(j * a + i + 1) * w]
                .copy_from_slice(&v[(i * b + j) * w..(i * b + j + 1) * w]);
        }
    }
}

/// `e^x` to about 2 ulp for every finite f32 (Cephes' `expf`: `x = n ln 2 + r`, a degree-6
/// polynomial in `r`), branch-free so that a slice of it vectorises; below -87 it gives
/// `e^-87`, above 88 `e^88` (`sigmoid` and `tanh` need no more), and NaN stays NaN so a
/// diverging run is still seen.
#[inline(always)]
fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // 1.5 * 2^23: adding and subtracting it rounds to the nearest integer.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    // `k`'s low mantissa bits hold `n` (two's complement): shifted into the exponent field
    // and biased, they are 2^n's bits, with no float-to-integer conversion to vectorise.
    let k = x * LOG2E + ROUND;
    let n = k - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = ((((1.987_569_2e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r
        + 1.666_666_5e-1)
        * r
        + 0.5;
    let e = p * r * r + r + 1.0;
    e * f32::from_bits((k.to_bits() << 23).wrapping_add(127 << 23))
}

fn sigmoid_in_place(v: &mut [f32]) {
    for x in v {
        *x = 1.0 / (1.0 + exp(-*x));
    }
}

/// `tanh x = 1 - 2 / (e^2x + 1)`: within 1e-7 of the true value everywhere.
fn tanh_in_place(v: &mut [f32]) {
    for x in v {
        *x = 1.0 - 2.0 / (exp(2.0 * *x) + 1.0);
    }
}

/// Defines `$body` (an `#[inline(always)]` function of `$block`) and `$name`, which runs it
/// compiled for the widest vectors the CPU has: the same operations in another
/// width, so every width gives the same bits (Rust never fuses a multiply and an add by
/// itself; an explicit `mul_add` is one rounding on every path, a single instruction where
/// the CPU has FMA).
macro_rules! widest {
    ($(#[$m:meta])* fn $name:ident($($a:ident: $t:ty),* $(,)?) => $body:ident $block:block) => {
        #[allow(clippy::too_many_arguments)]
        #[inline(always)]
        fn $body($($a: $t),*) $block

        $(#[$m])*
        fn $name($($a: $t),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,fma")]
                fn avx512($($a: $t),*) {
                    $body($($a),*)
                }
                #[target_feature(enable = "avx2,fma")]
                fn avx2($($a: $t),*) {
                    $body($($a),*)
                }
                let fma = std::arch::is_x86_feature_detected!("fma");
                if fma && std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU has AVX-512F and FMA, checked just above.
                    return unsafe { avx512($($a),*) };
                }
                if fma && std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: the CPU has AVX2 and FMA, checked just above.
                    return unsafe { avx2($($a),*) };
                }
            }
            $body($($a),*)
        }
    };
}

/// A step's batch at most this large multiplies `W_hh` by [`Panels`] rather than by faer,
/// which packs the whole matrix again for every step's few rows (a quarter of an LSTM
/// language model's training time went to that packing).
const SMALL_BATCH: usize = 64;

/// Rows of the batch summed at once, in registers.
const ROWS: usize = 8;
/// Columns of a panel.
const COLS: usize = 32;

/// A `[k, n]` matrix packed once per pass for the steps' products: each block of [`COLS`]
/// columns a contiguous `[k, COLS]` panel, the last `n % COLS` columns a `[k, rest]` one,
/// so a step reads every panel straight through.
struct Panels {
    k: usize,
    n: usize,
    data: Vec<f32>,
}

impl Panels {
    /// Packs `m` (`[rows, cols]` row-major), or its transpose when `transposed`.
    fn new(m: &[f32], rows: usize, cols: usize, transposed: bool) -> Self {
        let (k, n) = if transposed {
            (cols, rows)
        } else {
            (rows, cols)
        };
        let at = |i: usize, j: usize| {
            if transposed {
                m[j * cols + i]
            } else {
                m[i * cols + j]
            }
        };
        let mut data = zeros(k * n);
        let mut o = 0;
        let mut c0 = 0;
        while c0 < n {
            let width = COLS.min(n - c0);
            for i in 0..k {
                for j in c0..c0 + width {
                    data[o] = at(i, j);
                    o += 1;
                }
            }
            c0 += width;
        }
        Self { k, n, data }
    }
}

widest!(
    /// `out += x p` (`x`: `[batch, k]`, `out`: `[batch, n]`, row-major): each output's
    /// products fused-added from zero over `k` in order, then added to it, whatever the
    /// vector width.
    fn add_product(p: &Panels, out: &mut [f32], x: &[f32], batch: usize) => add_product_body {
        let mut r = 0;
        while r < batch {
            let block = (batch - r).min(ROWS);
            match block {
                1 => rows_block::<1>(p, out, x, r),
                2 => rows_block::<2>(p, out, x, r),
                3 => rows_block::<3>(p, out, x, r),
                4 => rows_block::<4>(p, out, x, r),
                5 => rows_block::<5>(p, out, x, r),
                6 => rows_block::<6>(p, out, x, r),
                7 => rows_block::<7>(p, out, x, r),
                _ => rows_block::<ROWS>(p, out, x, r),
            }
            r += block;
        }
    }
);

/// Rows `r0..r0 + R` of [`add_product`].
#[inline(always)]
fn rows_block<const R: usize>(p: &Panels, out: &mut [f32], x: &[f32], r0: usize) {
    let (k, n) = (p.k, p.n);
    let mut c0 = 0;
    while c0 + COLS <= n {
        let panel = &p.data[c0 * k..(c0 + COLS) * k];
        let mut acc = [[0.0f32; COLS]; R];
        for (i, w) in panel.chunks_exact(COLS).enumerate() {
            for (r, a) in acc.iter_mut().enumerate() {
                let s = x[(r0 + r) * k + i];
                for (v, &wv) in a.iter_mut().zip(w) {
                    *v = s.mul_add(wv, *v);
                }
            }
        }
        for (r, a) in acc.iter().enumerate() {
            let o = &mut out[(r0 + r) * n + c0..(r0 + r) * n + c0 + COLS];
            for (o, &v) in o.iter_mut().zip(a) {
                *o += v;
            }
        }
        c0 += COLS;
    }
    let rest = n - c0;
    if rest > 0 {
        let panel = &p.data[c0 * k..];
        for r in 0..R {
            for j in 0..rest {
                let mut v = 0.0f32;
                for i in 0..k {
                    v = x[(r0 + r) * k + i].mul_add(panel[i * rest + j], v);
                }
                out[(r0 + r) * n + c0 + j] += v;
            }
        }
    }
}

widest!(
    /// One step's cells from its gates' pre-activations `g` (`[batch, 4H]`, activated in
    /// place), the previous cell `prev` (none at the first step): the cell `c`, its `tanh`
    /// `tc` and the output `out` (`[batch, H]` each).
    fn cells_forward(
        g: &mut [f32],
        prev: Option<&[f32]>,
        c: &mut [f32],
        tc: &mut [f32],
        out: &mut [f32],
        h: usize,
    ) => cells_forward_body {
        for (r, row) in g.chunks_exact_mut(4 * h).enumerate() {
            sigmoid_in_place(&mut row[..2 * h]);
            tanh_in_place(&mut row[2 * h..3 * h]);
            sigmoid_in_place(&mut row[3 * h..]);
            let (i, rest) = row.split_at(h);
            let (fg, rest) = rest.split_at(h);
            let (gg, o) = rest.split_at(h);
            let cell = &mut c[r * h..(r + 1) * h];
            for j in 0..h {
                cell[j] = i[j] * gg[j];
            }
            if let Some(prev) = prev {
                let prev = &prev[r * h..(r + 1) * h];
                for j in 0..h {
                    cell[j] += fg[j] * prev[j];
                }
            }
            let t = &mut tc[r * h..(r + 1) * h];
            t.copy_from_slice(cell);
            tanh_in_place(t);
            let y = &mut out[r * h..(r + 1) * h];
            for j in 0..h {
                y[j] = o[j] * t[j];
            }
        }
    }
);

widest!(
    /// One step's cells backward: from the activated gates, the cell's `tanh`, the previous
    /// cell (none at the first step), the loss's gradient of the step's output `dout` and
    /// what the next step carries back through `W_hh` (`dh_next`) and the forget gate (`dc`,
    /// updated in place), the gates' pre-activation gradients `d` (`[batch, 4H]`).
    #[allow(clippy::too_many_arguments)]
    fn cells_backward(
        gates: &[f32],
        tc: &[f32],
        prev: Option<&[f32]>,
        dout: &[f32],
        dh_next: &[f32],
        dc: &mut [f32],
        d: &mut [f32],
        h: usize,
    ) => cells_backward_body {
        let g4 = 4 * h;
        for (r, (row, drow)) in gates
            .chunks_exact(g4)
            .zip(d.chunks_exact_mut(g4))
            .enumerate()
        {
            let k = r * h..(r + 1) * h;
            let (tc, dout, dh_next, dc) = (
                &tc[k.clone()],
                &dout[k.clone()],
                &dh_next[k.clone()],
                &mut dc[k.clone()],
            );
            let (di, rest) = drow.split_at_mut(h);
            let (df, rest) = rest.split_at_mut(h);
            let (dgg, d_o) = rest.split_at_mut(h);
            for j in 0..h {
                let (i, fg, gg, o) = (row[j], row[h + j], row[2 * h + j], row[3 * h + j]);
                let dh = dout[j] + dh_next[j];
                let dcell = dc[j] + dh * o * (1.0 - tc[j] * tc[j]);
                di[j] = dcell * gg * i * (1.0 - i);
                dgg[j] = dcell * i * (1.0 - gg * gg);
                d_o[j] = dh * tc[j] * o * (1.0 - o);
                df[j] = dcell * fg * (1.0 - fg);
                dc[j] = dcell * fg;
            }
            match prev {
                Some(prev) => {
                    for (a, &p) in df.iter_mut().zip(&prev[k]) {
                        *a *= p;
                    }
                }
                None => df.fill(0.0),
            }
        }
    }
);

/// One layer over `x` (`[steps, batch, features]`, time-major), from a zero state.
fn forward(l: &Weights, x: Vec<f32>, batch: usize, steps: usize) -> Saved {
    let (f, h) = (l.features, l.hidden);
    let g4 = 4 * h;
    let (wih, whh) = l.w.split_at(f * g4);
    // Every step's input part of the gates, and the bias, in one product.
    let mut gates = zeros(steps * batch * g4);
    if let Some(b) = &l.b {
        for row in gates.chunks_exact_mut(g4) {
            row.copy_from_slice(b);
        }
    }
    product(
        rows_mut(&mut gates, steps * batch, g4),
        rows(&x, steps * batch, f),
        rows(wih, f, g4),
        l.b.is_some(),
    );
    let mut c = zeros(steps * batch * h);
    let mut tc = zeros(steps * batch * h);
    let mut out = zeros(steps * batch * h);
    let n = batch * h;
    let panels = (batch <= SMALL_BATCH).then(|| Panels::new(whh, h, g4, false));
    for t in 0..steps {
        let g = &mut gates[t * batch * g4..(t + 1) * batch * g4];
        if t > 0 {
            let prev = &out[(t - 1) * n..t * n];
            match &panels {
                Some(p) => add_product(p, g, prev, batch),
                None => product(
                    rows_mut(g, batch, g4),
                    rows(prev, batch, h),
                    rows(whh, h, g4),
                    true,
                ),
            }
        }
        let (before, now) = c.split_at_mut(t * n);
        let prev = (t > 0).then(|| &before[(t - 1) * n..]);
        cells_forward(
            g,
            prev,
            &mut now[..n],
            &mut tc[t * n..(t + 1) * n],
            &mut out[t * n..(t + 1) * n],
            h,
        );
    }
    if let Some(p) = panels {
        recycle(p.data);
    }
    Saved {
        x,
        gates,
        c,
        tc,
        h: out,
    }
}

/// One layer's backward pass through time from `dout` (`[steps, batch, H]`, time-major, the
/// loss's gradient with respect to every step's output): the layer's gradients, and its
/// input's (time-major) when `input` asks for it.
fn backward(
    l: &Weights,
    s: Saved,
    dout: &[f32],
    batch: usize,
    steps: usize,
    input: bool,
) -> (LayerGradients, Option<Vec<f32>>) {
    let (f, h) = (l.features, l.hidden);
    let g4 = 4 * h;
    let n = batch * h;
    let (wih, whh) = l.w.split_at(f * g4);
    let panels = (batch <= SMALL_BATCH).then(|| Panels::new(whh, h, g4, true));
    // The gates' pre-activation gradients of every step, `[steps, batch, 4H]`.
    let mut dg = zeros(steps * batch * g4);
    // dL/dh_t carried back through W_hh, and dL/dc_t through the forget gate.
    let mut dh_next = zeros(n);
    let mut dc = zeros(n);
    for t in (0..steps).rev() {
        let gates = &s.gates[t * batch * g4..(t + 1) * batch * g4];
        let tc = &s.tc[t * n..(t + 1) * n];
        let d = &mut dg[t * batch * g4..(t + 1) * batch * g4];
        let prev = (t > 0).then(|| &s.c[(t - 1) * n..t * n]);
        cells_backward(
            gates,
            tc,
            prev,
            &dout[t * n..(t + 1) * n],
            &dh_next,
            &mut dc,
            d,
            h,
        );
        if t > 0 {
            match &panels {
                Some(p) => {
                    dh_next.fill(0.0);
                    add_product(p, &mut dh_next, d, batch);
                }
                None => product(
                    rows_mut(&mut dh_next, batch, h),
                    rows(d, batch, g4),
                    rows(whh, h, g4).transpose(),
                    false,
                ),
            }
        }
    }
    // The gradients go to burn and never come back: not from the spares.
    let mut dw = vec![0.0f32; (f + h) * g4];
    let (dwih, dwhh) = dw.split_at_mut(f * g4);
    product(
        rows_mut(dwih, f, g4),
        rows(&s.x, steps * batch, f).transpose(),
        rows(&dg, steps * batch, g4),
        false,
    );
    // h_{t-1} of steps 1.. against their gates' gradients (h_{-1} is zero).
    if steps > 1 {
        product(
            rows_mut(dwhh, h, g4),
            rows(&s.h[..(steps - 1) * n], (steps - 1) * batch, h).transpose(),
            rows(&dg[batch * g4..], (steps - 1) * batch, g4),
            false,
        );
    }
    let db = l.b.as_ref().map(|_| {
        let mut db = vec![0.0f32; g4];
        for row in dg.chunks_exact(g4) {
            for (a, &v) in db.iter_mut().zip(row) {
                *a += v;
            }
        }
        db
    });
    let dx = input.then(|| {
        let mut dx = zeros(steps * batch * f);
        product(
            rows_mut(&mut dx, steps * batch, f),
            rows(&dg, steps * batch, g4),
            rows(wih, f, g4).transpose(),
            false,
        );
        dx
    });
    if let Some(p) = panels {
        recycle(p.data);
    }
    for v in [dg, dh_next, dc, s.x, s.gates, s.c, s.tc, s.h] {
        recycle(v);
    }
    ((dw, db), dx)
}

/// The stack over `x` (`[batch, steps, features]`, sample-major): the last layer's every
/// step (`[batch, steps, H]`) and what each layer keeps for [`stack_backward`].
pub(crate) fn stack_forward(
    layers: &[Weights],
    x: &[f32],
    batch: usize,
    steps: usize,
) -> (Vec<f32>, Vec<Saved>) {
    let first = layers.first().map_or(0, |l| l.features);
    let mut input = swap_major(x, batch, steps, first);
    let mut saved = Vec::with_capacity(layers.len());
    for l in layers {
        let s = forward(l, input, batch, steps);
        input = zeros(s.h.len());
        input.copy_from_slice(&s.h);
        saved.push(s);
    }
    let h = layers.last().map_or(first, |l| l.hidden);
    // The output goes to burn: a plain allocation, not a spare.
    let mut out = vec![0.0f32; input.len()];
    swap_into(&input, &mut out, steps, batch, h);
    recycle(input);
    (out, saved)
}

/// The stack's backward pass from `dout` (`[batch, steps, H]`, sample-major): each layer's
/// gradients, and the stack's input's (sample-major) when `input` asks for it.
pub(crate) fn stack_backward(
    layers: &[Weights],
    saved: Vec<Saved>,
    dout: &[f32],
    batch: usize,
    steps: usize,
    input: bool,
) -> (Vec<LayerGradients>, Option<Vec<f32>>) {
    let h = layers.last().map_or(0, |l| l.hidden);
    let mut d = swap_major(dout, batch, steps, h);
    let mut grads = Vec::with_capacity(layers.len());
    let mut dx = None;
    for (k, (l, s)) in layers.iter().zip(saved).enumerate().rev() {
        let (g, below) = backward(l, s, &d, batch, steps, k > 0 || input);
        grads.push(g);
        match below {
            Some(b) if k > 0 => recycle(std::mem::replace(&mut d, b)),
            below => dx = below,
        }
    }
    recycle(d);
    grads.reverse();
    let first = layers.first().map_or(0, |l| l.features);
    let dx = dx.map(|d| {
        let mut sample_major = vec![0.0f32; d.len()];
        swap_into(&d, &mut sample_major, steps, batch, first);
        recycle(d);
        sample_major
    });
    (grads, dx)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vectorisable `exp` against the standard library's, over the range the gates use.
    #[test]
    fn exp_is_within_a_few_ulp() {
        let mut x = -87.0f32;
        while x < 88.0 {
            let (got, want) = (exp(x), x.exp());
            assert!(
                ((got - want) / want).abs() < 4e-7,
                "{x}: {got} against {want}"
            );
            x += 0.0137;
        }
        assert!(exp(f32::NAN).is_nan());
        assert_eq!(exp(-1000.0), exp(-87.0));
        assert!(exp(1000.0).is_finite());
        let mut v = vec![0.0, 20.0, -20.0, 1e-3, f32::NAN];
        tanh_in_place(&mut v);
        assert!(v[0].abs() < 1e-7 && (v[1] - 1.0).abs() < 1e-7 && (v[2] + 1.0).abs() < 1e-7);
        assert!((v[3] - 1e-3f32.tanh()).abs() < 1e-7 && v[4].is_nan());
    }

    use burn::nn::loss::CrossEntropyLossConfig;
    use burn::tensor::{Device, Int, Tensor, TensorData};
    use eie_model::{Arch, Network};
    use proptest::prelude::*;

    use crate::model::{Model, UNFUSED, to_vec};

    /// Every parameter's gradient of one cross-entropy step of `net` on `x` (values, or
    /// token ids when `tokens`), by the fused stack or (`unfused`) by burn's autodiff of its
    /// own per-step cell.
    fn gradients(
        net: &Network,
        x: &[f32],
        batch: usize,
        tokens: bool,
        unfused: bool,
        bias: bool,
    ) -> Vec<Vec<f32>> {
        UNFUSED.set(unfused);
        let device = Device::flex().autodiff();
        let mut model = Model::new(net, &device);
        if !bias {
            // An LSTM read from a checkpoint without biases.
            for op in net.ops() {
                if let eie_model::Op::Lstm { layer, .. } = *op {
                    model.biases[layer] = None;
                }
            }
        }
        let (logits, tape) = if tokens {
            let t = x.len() / batch;
            let ids: Vec<i64> = x.iter().map(|&v| v as i64).collect();
            let ids = Tensor::<2, Int>::from_data(TensorData::new(ids, [batch, t]), &device);
            model.forward_tokens_taped(net, ids)
        } else {
            let w = x.len() / batch;
            let x = Tensor::<2>::from_data(TensorData::new(x.to_vec(), [batch, w]), &device);
            model.forward_taped(net, x)
        };
        UNFUSED.set(false);
        let rows = logits.dims()[0];
        let y: Vec<i64> = (0..rows as i64).map(|r| r % net.outputs() as i64).collect();
        let y = Tensor::<1, Int>::from_data(TensorData::new(y, [rows]), &device);
        let loss = CrossEntropyLossConfig::new()
            .init(&device)
            .forward(logits, y);
        let grads = tape.gradients(&loss, &model).unwrap();
        let mut out = Vec::new();
        for (w, b) in model.weights.iter().zip(&model.biases) {
            out.push(to_vec(grads.get::<2>(w.id).expect("every matrix trains")).unwrap());
            if let Some(b) = b {
                out.push(to_vec(grads.get::<1>(b.id).expect("every bias trains")).unwrap());
            }
        }
        out
    }

    fn assert_close(fused: &[Vec<f32>], reference: &[Vec<f32>]) {
        assert_eq!(fused.len(), reference.len());
        for (k, (a, b)) in fused.iter().zip(reference).enumerate() {
            let scale = b.iter().fold(1e-3f32, |m, v| m.max(v.abs()));
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                assert!(
                    (x - y).abs() <= 2e-4 * scale,
                    "parameter {k}, value {i}: fused {x} against burn's {y} (largest {scale})"
                );
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(12))]

        /// The fused stack's gradients are burn's autodiff of the per-step cell, for a
        /// classifier (stacked layers, the last step read) and a token model (the embedding
        /// rows included), to f32 rounding.
        #[test]
        fn fused_gradients_are_burns(
            batch in 1usize..5,
            steps in 1usize..6,
            features in 1usize..7,
            hidden in 1usize..9,
            layers in 1usize..3,
            seed in 0u64..1000,
            size in 0usize..3,
            bias in any::<bool>(),
        ) {
            // Small batches, a block of 8 rows and more, and above SMALL_BATCH (W_hh by
            // faer instead of panels); widths past one panel of 32 columns.
            let batch = [batch, 8 + 2 * batch, SMALL_BATCH + batch][size];
            let hidden = if size == 1 { 30 + hidden } else { hidden };
            let arch = format!("{steps}x{features}-lstm{hidden}x{layers}-3");
            let net = Network::init_arch(&arch.parse::<Arch>().unwrap(), seed).unwrap();
            let x: Vec<f32> = (0..batch * steps * features)
                .map(|i| ((i as u64 * 2654435761 + seed) % 1000) as f32 / 500.0 - 1.0)
                .collect();
            assert_close(
                &gradients(&net, &x, batch, false, false, bias),
                &gradients(&net, &x, batch, false, true, bias),
            );
            let arch = format!("tok7-embed{features}-lstm{hidden}x{layers}-7");
            let net = Network::init_arch(&arch.parse::<Arch>().unwrap(), seed).unwrap();
            let ids: Vec<f32> = (0..batch * steps).map(|i| ((i as u64 * 5 + seed) % 7) as f32).collect();
            assert_close(
                &gradients(&net, &ids, batch, true, false, bias),
                &gradients(&net, &ids, batch, true, true, bias),
            );
        }
    }

    fn values(n: usize, seed: u64) -> Vec<f32> {
        (0..n as u64)
            .map(|i| ((i * 2654435761 + seed * 97) % 2001) as f32 / 333.0 - 3.0)
            .collect()
    }

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    /// The kernels as dispatched (AVX-512 or AVX2 where the CPU has them) give the bits of
    /// their generic build: the fused cell rounds the same at every vector width (faer's and
    /// burn's own products still pick their kernels by CPU).
    #[test]
    fn every_vector_width_gives_the_same_bits() {
        let (batch, k, n) = (5, 37, 70);
        for transposed in [false, true] {
            let p = Panels::new(
                &values(k * n, 1),
                if transposed { n } else { k },
                if transposed { k } else { n },
                transposed,
            );
            let x = values(batch * k, 2);
            let (mut a, mut b) = (values(batch * n, 3), values(batch * n, 3));
            add_product(&p, &mut a, &x, batch);
            add_product_body(&p, &mut b, &x, batch);
            assert_eq!(bits(&a), bits(&b));
        }
        let h = 19;
        let prev = values(batch * h, 4);
        let run = |dispatched: bool| {
            let mut g = values(batch * 4 * h, 5);
            let (mut c, mut tc, mut out) = (
                vec![0.0; batch * h],
                vec![0.0; batch * h],
                vec![0.0; batch * h],
            );
            let (mut dc, mut d) = (values(batch * h, 6), vec![0.0; batch * 4 * h]);
            let (dout, dh) = (values(batch * h, 7), values(batch * h, 8));
            if dispatched {
                cells_forward(&mut g, Some(&prev), &mut c, &mut tc, &mut out, h);
                cells_backward(&g, &tc, Some(&prev), &dout, &dh, &mut dc, &mut d, h);
            } else {
                cells_forward_body(&mut g, Some(&prev), &mut c, &mut tc, &mut out, h);
                cells_backward_body(&g, &tc, Some(&prev), &dout, &dh, &mut dc, &mut d, h);
            }
            [g, c, tc, out, dc, d].map(|v| bits(&v))
        };
        assert_eq!(run(true), run(false));
    }

    /// Packed panels multiply as the plain product does, transposed or not, with a last
    /// panel narrower than the others.
    #[test]
    fn panels_multiply_as_the_matrix() {
        let (batch, k, n) = (3, 5, 35);
        let m = values(k * n, 9);
        let x = values(batch * k, 10);
        let want: Vec<f32> = (0..batch * n)
            .map(|o| {
                (0..k)
                    .map(|i| x[o / n * k + i] * m[i * n + o % n])
                    .sum::<f32>()
                    + 1.0
            })
            .collect();
        let t: Vec<f32> = (0..n * k).map(|o| m[(o % k) * n + o / k]).collect();
        for p in [Panels::new(&m, k, n, false), Panels::new(&t, n, k, true)] {
            let mut out = vec![1.0f32; batch * n];
            add_product(&p, &mut out, &x, batch);
            for (a, b) in out.iter().zip(&want) {
                assert!((a - b).abs() < 1e-4, "{a} against {b}");
            }
        }
    }

    #[test]
    fn swap_major_is_its_own_inverse() {
        let v: Vec<f32> = (0..24).map(|i| i as f32).collect();
        let t = swap_major(&v, 2, 3, 4);
        assert_eq!(&t[4..8], &v[12..16]);
        assert_eq!(swap_major(&t, 3, 2, 4), v);
    }
}
