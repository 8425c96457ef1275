//! The forward pass of every family over a window of tokens: embeddings, blocks (attention
//! and MLP), final norm and head. Linear layers are the model's [`Linear`]s; everything else
//! (norms, activations, rotary positions, attention scores and softmax) runs here in f32,
//! on the host, as `transformers` computes it.

use rayon::prelude::*;

use crate::config::{Activation, Family};
use crate::error::{Error, Result};
use faer::MatRef;

use crate::linear::{Linear, product};
use crate::model::{Block, Model, Norm};

/// What a window of tokens produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    /// Tokens.
    pub tokens: usize,
    /// The last hidden states, `[tokens, hidden]` (decoders: after the final norm, as
    /// `transformers`' `last_hidden_state`).
    pub hidden: Vec<f32>,
    /// The head's logits, `[tokens, vocab]` (decoders, and BERT with a masked-LM head).
    pub logits: Option<Vec<f32>>,
}

impl<L: Linear> Model<L> {
    /// Runs `tokens` (ids, positions 0, 1, ...) through the model.
    pub fn forward(&self, tokens: &[u32]) -> Result<Output> {
        let c = &self.config;
        let t = tokens.len();
        if t == 0 {
            return Err(Error::Input {
                reason: "no tokens to run".into(),
            });
        }
        if t > c.positions {
            return Err(Error::Input {
                reason: format!(
                    "{t} tokens, but the model takes at most {} positions (max_position_embeddings)",
                    c.positions
                ),
            });
        }
        if let Some(w) = c.sliding_window
            && t > w
        {
            return Err(Error::Input {
                reason: format!(
                    "{t} tokens, but the model attends over a sliding window of {w} (sliding_window), which is not implemented: use at most {w} tokens a window"
                ),
            });
        }
        let mut x = self.embed(tokens)?;
        for block in &self.blocks {
            x = self.block(block, x, t)?;
        }
        if let Some(n) = &self.final_norm {
            norm_rows(n, &mut x);
        }
        let logits = if let Some(head) = &self.lm_head {
            Some(head.apply(&x, t)?)
        } else if let Some(m) = &self.mlm_head {
            let mut y = m.transform.apply(&x, t)?;
            activate(c.activation, &mut y);
            norm_rows(&m.norm, &mut y);
            Some(m.decoder.apply(&y, t)?)
        } else {
            None
        };
        Ok(Output {
            tokens: t,
            hidden: x,
            logits,
        })
    }

    fn embed(&self, tokens: &[u32]) -> Result<Vec<f32>> {
        let (h, e) = (self.config.hidden, &self.embeddings);
        let mut x = Vec::with_capacity(tokens.len() * h);
        for (p, &id) in tokens.iter().enumerate() {
            let id = id as usize;
            if id >= self.config.vocab {
                return Err(Error::Input {
                    reason: format!(
                        "token id {id} at position {p} is beyond the vocabulary of {}",
                        self.config.vocab
                    ),
                });
            }
            let start = x.len();
            x.extend_from_slice(&e.tokens[id * h..(id + 1) * h]);
            let row = &mut x[start..];
            if let Some(pos) = &e.positions {
                add(row, &pos[p * h..(p + 1) * h]);
            }
            if let Some(t0) = &e.type0 {
                add(row, t0);
            }
        }
        if let Some(n) = &e.norm {
            norm_rows(n, &mut x);
        }
        Ok(x)
    }

    fn block(&self, b: &Block<L>, mut x: Vec<f32>, t: usize) -> Result<Vec<f32>> {
        if self.config.family == Family::Bert {
            // Post-norm: x = LN1(x + attn(x)); x = LN2(x + mlp(x)).
            let a = self.attention(b, &x, t)?;
            add(&mut x, &a);
            norm_rows(&b.norm1, &mut x);
            let m = self.mlp(b, &x, t)?;
            add(&mut x, &m);
            norm_rows(&b.norm2, &mut x);
        } else {
            // Pre-norm: x += attn(norm1(x)); x += mlp(norm2(x)).
            let mut n = x.clone();
            norm_rows(&b.norm1, &mut n);
            let a = self.attention(b, &n, t)?;
            add(&mut x, &a);
            n.copy_from_slice(&x);
            norm_rows(&b.norm2, &mut n);
            let m = self.mlp(b, &n, t)?;
            add(&mut x, &m);
        }
        Ok(x)
    }

    fn attention(&self, b: &Block<L>, x: &[f32], t: usize) -> Result<Vec<f32>> {
        let c = &self.config;
        let (qw, kvw, d) = (c.q_width(), c.kv_width(), c.head_dim);
        let qkv = concat(&b.qkv, x, t)?;
        let width = qw + 2 * kvw;
        let mut q = vec![0.0f32; t * qw];
        let mut k = vec![0.0f32; t * kvw];
        let mut v = vec![0.0f32; t * kvw];
        for p in 0..t {
            let row = &qkv[p * width..(p + 1) * width];
            q[p * qw..(p + 1) * qw].copy_from_slice(&row[..qw]);
            k[p * kvw..(p + 1) * kvw].copy_from_slice(&row[qw..qw + kvw]);
            v[p * kvw..(p + 1) * kvw].copy_from_slice(&row[qw + kvw..]);
        }
        if c.family == Family::Llama {
            let rope = Rope::new(d, c.rope_theta, t);
            rope.apply(&mut q, c.heads);
            rope.apply(&mut k, c.kv_heads);
        }
        let scale = 1.0 / (d as f32).sqrt();
        let group = c.heads / c.kv_heads;
        let causal = c.causal();
        // Per head: its scores S = Q K^T, each row scaled, masked (causal: a position sees
        // itself and what precedes it) and softmaxed, then S V; every product faer's,
        // sequential within a head (the same sums on any thread count).
        let head = |h: usize| -> Vec<f32> {
            let kvh = h / group;
            let gather = |m: &[f32], width: usize, at: usize| -> Vec<f32> {
                (0..t)
                    .flat_map(|p| m[p * width + at * d..][..d].iter().copied())
                    .collect()
            };
            let (qh, kh, vh) = (
                gather(&q, qw, h),
                gather(&k, kvw, kvh),
                gather(&v, kvw, kvh),
            );
            let mut scores = product(
                MatRef::from_row_major_slice(&qh, t, d),
                MatRef::from_column_major_slice(&kh, d, t),
                scale,
            );
            for (p, row) in scores.chunks_exact_mut(t).enumerate() {
                let seen = if causal { p + 1 } else { t };
                softmax(&mut row[..seen]);
                row[seen..].fill(0.0);
            }
            product(
                MatRef::from_row_major_slice(&scores, t, t),
                MatRef::from_row_major_slice(&vh, t, d),
                1.0,
            )
        };
        let heads: Vec<Vec<f32>> = (0..c.heads).into_par_iter().map(head).collect();
        let mut out = vec![0.0f32; t * qw];
        for (h, o) in heads.iter().enumerate() {
            for (p, row) in o.chunks_exact(d).enumerate() {
                out[p * qw + h * d..][..d].copy_from_slice(row);
            }
        }
        b.o.apply(&out, t)
    }

    fn mlp(&self, b: &Block<L>, x: &[f32], t: usize) -> Result<Vec<f32>> {
        let c = &self.config;
        let hidden = match c.activation {
            Activation::SwiGlu => {
                let mut gate = b.mlp_in[0].apply(x, t)?;
                let up = b.mlp_in[1].apply(x, t)?;
                for (g, u) in gate.iter_mut().zip(&up) {
                    *g = silu(*g) * u;
                }
                gate
            }
            a => {
                let mut y = b.mlp_in[0].apply(x, t)?;
                activate(a, &mut y);
                y
            }
        };
        b.down.apply(&hidden, t)
    }
}

/// The outputs of `layers` on the same inputs, concatenated per token.
fn concat<L: Linear>(layers: &[L], x: &[f32], t: usize) -> Result<Vec<f32>> {
    if let [one] = layers {
        return one.apply(x, t);
    }
    let parts = layers
        .iter()
        .map(|l| l.apply(x, t))
        .collect::<Result<Vec<_>>>()?;
    let width: usize = layers.iter().map(|l| l.rows()).sum();
    let mut out = Vec::with_capacity(t * width);
    for p in 0..t {
        for (l, y) in layers.iter().zip(&parts) {
            out.extend_from_slice(&y[p * l.rows()..(p + 1) * l.rows()]);
        }
    }
    Ok(out)
}

fn add(x: &mut [f32], y: &[f32]) {
    for (a, b) in x.iter_mut().zip(y) {
        *a += b;
    }
}

/// `n` on every row of `x` (rows of the norm's width).
pub fn norm_rows(n: &Norm, x: &mut [f32]) {
    let width = match n {
        Norm::Layer { w, .. } | Norm::Rms { w, .. } => w.len(),
    };
    x.par_chunks_mut(width).for_each(|row| match n {
        Norm::Layer { w, b, eps } => {
            let mean = row.iter().sum::<f32>() / width as f32;
            let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / width as f32;
            let inv = 1.0 / (var + eps).sqrt();
            for ((v, g), s) in row.iter_mut().zip(w).zip(b) {
                *v = (*v - mean) * inv * g + s;
            }
        }
        Norm::Rms { w, eps } => {
            let ms = row.iter().map(|v| v * v).sum::<f32>() / width as f32;
            let inv = 1.0 / (ms + eps).sqrt();
            for (v, g) in row.iter_mut().zip(w) {
                *v = g * (*v * inv);
            }
        }
    });
}

fn activate(a: Activation, x: &mut [f32]) {
    match a {
        Activation::Gelu => x.iter_mut().for_each(|v| *v = gelu(*v)),
        Activation::GeluTanh => x.iter_mut().for_each(|v| *v = gelu_tanh(*v)),
        Activation::SwiGlu => x.iter_mut().for_each(|v| *v = silu(*v)),
    }
}

/// GELU with the exact error function: x/2 (1 + erf(x / sqrt 2)), computed in f64.
pub fn gelu(x: f32) -> f32 {
    let x = x as f64;
    (0.5 * x * (1.0 + erf(x / std::f64::consts::SQRT_2))) as f32
}

/// GELU's tanh approximation (`gelu_new`).
pub fn gelu_tanh(x: f32) -> f32 {
    let x = x as f64;
    let inner = (2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x * x * x);
    (0.5 * x * (1.0 + inner.tanh())) as f32
}

/// x sigmoid(x).
pub fn silu(x: f32) -> f32 {
    x / (1.0 + (-x).exp())
}

/// The error function, to about 1e-15 (Rust's `f64::erf` is not stable): Numerical Recipes'
/// (3rd ed., 6.2.2) Chebyshev expansion `erfc(z) = t exp(-z^2 + P(t))`, `t = 2 / (2 + z)`.
pub fn erf(x: f64) -> f64 {
    // The coefficients as published, some with more digits than an f64 holds.
    #[allow(clippy::excessive_precision)]
    const COF: [f64; 28] = [
        -1.3026537197817094,
        6.4196979235649026e-1,
        1.9476473204185836e-2,
        -9.561514786808631e-3,
        -9.46595344482036e-4,
        3.66839497852761e-4,
        4.2523324806907e-5,
        -2.0278578112534e-5,
        -1.624290004647e-6,
        1.303655835580e-6,
        1.5626441722e-8,
        -8.5238095915e-8,
        6.529054439e-9,
        5.059343495e-9,
        -9.91364156e-10,
        -2.27365122e-10,
        9.6467911e-11,
        2.394038e-12,
        -6.886027e-12,
        8.94487e-13,
        3.13092e-13,
        -1.12708e-13,
        3.81e-16,
        7.106e-15,
        -1.523e-15,
        -9.4e-17,
        1.21e-16,
        -2.8e-17,
    ];
    let z = x.abs();
    let t = 2.0 / (2.0 + z);
    let ty = 4.0 * t - 2.0;
    let (mut d, mut dd) = (0.0f64, 0.0f64);
    for &c in COF[1..].iter().rev() {
        let tmp = d;
        d = ty * d - dd + c;
        dd = tmp;
    }
    let erfc = t * (-z * z + 0.5 * (COF[0] + ty * d) - dd).exp();
    if x >= 0.0 { 1.0 - erfc } else { erfc - 1.0 }
}

/// Softmax in place, shifted by the maximum.
/// e^x for x in [-80, 0]: x = n ln 2 + r (|r| <= ln 2 / 2), e^r by its degree-7 Taylor
/// polynomial (relative error below 2e-8, under f32's half ulp), times 2^n set in the
/// exponent bits. Inline arithmetic, no library call: the attention's softmax calls it for
/// every score.
#[inline]
fn exp(x: f32) -> f32 {
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    let n = (x * std::f32::consts::LOG2_E).round();
    let r = (x - n * LN2_HI) - n * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0
                    + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r / 5040.0))))));
    p * f32::from_bits(((n as i32 + 127) as u32) << 23)
}

fn softmax(x: &mut [f32]) {
    let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0f32;
    for v in x.iter_mut() {
        // Below e^-80 a weight is under f32's precision of the sum (at least 1) and would be
        // subnormal (slow on every CPU): it is 0.
        let d = *v - max;
        *v = if d < -80.0 { 0.0 } else { exp(d) };
        sum += *v;
    }
    for v in x.iter_mut() {
        *v /= sum;
    }
}

/// Rotary positions as `transformers`' LLaMA applies them: the head split in halves
/// `[a, b]`, rotated to `[a cos - b sin, b cos + a sin]` with angle `p / theta^(2i/d)`.
struct Rope {
    d: usize,
    cos: Vec<f32>,
    sin: Vec<f32>,
}

impl Rope {
    fn new(d: usize, theta: f64, positions: usize) -> Self {
        let half = d / 2;
        let mut cos = Vec::with_capacity(positions * half);
        let mut sin = Vec::with_capacity(positions * half);
        for p in 0..positions {
            for i in 0..half {
                // As transformers: the inverse frequency and the angle in f32.
                let inv = (1.0 / theta.powf((2 * i) as f64 / d as f64)) as f32;
                let angle = p as f32 * inv;
                cos.push(angle.cos());
                sin.push(angle.sin());
            }
        }
        Self { d, cos, sin }
    }

    /// Rotates every head of every position of `x` (`[positions, heads * d]`).
    fn apply(&self, x: &mut [f32], heads: usize) {
        let half = self.d / 2;
        for (p, row) in x.chunks_mut(heads * self.d).enumerate() {
            let (cos, sin) = (&self.cos[p * half..][..half], &self.sin[p * half..][..half]);
            for head in row.chunks_mut(self.d) {
                let (a, b) = head.split_at_mut(half);
                for i in 0..half {
                    let (x1, x2) = (a[i], b[i]);
                    a[i] = x1 * cos[i] - x2 * sin[i];
                    b[i] = x2 * cos[i] + x1 * sin[i];
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erf_and_the_activations_match_known_values() {
        for (x, want) in [
            (0.0, 0.0),
            (0.5, 0.520_499_877_813_046_5),
            (1.0, 0.842_700_792_949_714_9),
            (2.0, 0.995_322_265_018_952_7),
            (-1.5, -0.966_105_146_475_310_7),
            (4.0, 0.999_999_984_582_742_1),
        ] {
            assert!((erf(x) - want).abs() < 1e-14, "erf({x}) = {}", erf(x));
        }
        assert!((gelu(1.0) - 0.841_344_7).abs() < 1e-6);
        assert!((gelu_tanh(1.0) - 0.841_192).abs() < 1e-6);
        assert!((silu(1.0) - 0.731_058_6).abs() < 1e-6);
        let mut s = vec![1.0, 2.0, 3.0];
        softmax(&mut s);
        assert!((s.iter().sum::<f32>() - 1.0).abs() < 1e-6 && s[2] > s[1]);
    }

    #[test]
    fn rotary_positions_rotate_pairs_and_leave_position_0() {
        let rope = Rope::new(4, 10000.0, 2);
        let mut x = vec![1.0, 2.0, 3.0, 4.0, 1.0, 2.0, 3.0, 4.0];
        rope.apply(&mut x, 1);
        assert_eq!(&x[..4], &[1.0, 2.0, 3.0, 4.0]);
        // Position 1, pair 0 rotated by 1 radian; pair 1 by 1/100.
        let (c, s) = (1.0f32.cos(), 1.0f32.sin());
        assert!((x[4] - (1.0 * c - 3.0 * s)).abs() < 1e-6);
        assert!((x[6] - (3.0 * c + 1.0 * s)).abs() < 1e-6);
        let norm = |v: &[f32]| v.iter().map(|a| a * a).sum::<f32>();
        assert!((norm(&x[4..]) - 30.0).abs() < 1e-4);
    }
}
