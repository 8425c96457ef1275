//! The decoder as a burn module: the forward pass of `transformers`' `LlamaForCausalLM`
//! (RMSNorm before attention and MLP, rotary positions in its half-split layout,
//! grouped-query attention with a causal mask, SwiGLU, final RMSNorm, tied or untied head),
//! and its values by their Hugging Face names in PyTorch's `[out, in]` layout.

use burn::module::{Module, Param, ParamId};
use burn::tensor::activation::{silu, softmax};
use burn::tensor::module::{embedding, linear};
use burn::tensor::{Device, Int, Tensor, TensorData};
use eie_rng::Rng;

use super::shape::DecoderShape;
use crate::error::Result;
use crate::model::{to_vec, transpose};

/// One decoder block; matrices in burn's `[in, out]` layout.
#[derive(Module, Debug)]
pub(crate) struct Block {
    attn_norm: Param<Tensor<1>>,
    q: Param<Tensor<2>>,
    k: Param<Tensor<2>>,
    v: Param<Tensor<2>>,
    o: Param<Tensor<2>>,
    mlp_norm: Param<Tensor<1>>,
    gate: Param<Tensor<2>>,
    up: Param<Tensor<2>>,
    down: Param<Tensor<2>>,
}

/// The whole decoder.
#[derive(Module, Debug)]
pub(crate) struct Decoder {
    embed: Param<Tensor<2>>,
    blocks: Vec<Block>,
    norm: Param<Tensor<1>>,
    /// `[width, vocab]`; none when tied to the embedding.
    head: Option<Param<Tensor<2>>>,
}

/// A value in PyTorch's layout with its Hugging Face name.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedTensor {
    /// Its Hugging Face name (`model.layers.0.self_attn.q_proj.weight`).
    pub name: String,
    /// `[out, in]` for a matrix, `[n]` for a norm's weight.
    pub shape: Vec<usize>,
    /// Row-major values.
    pub values: Vec<f32>,
}

/// The rotary tables and the causal mask of windows of `t` tokens.
pub(crate) struct Positions {
    cos: Tensor<4>,
    sin: Tensor<4>,
    /// 0 on and below the diagonal, -inf above it.
    causal: Tensor<4>,
}

impl Positions {
    /// `transformers`' tables: inverse frequencies `1 / theta^(2i/d)` in f32, angles
    /// `position * frequency`, repeated over both halves of a head.
    pub fn new(shape: &DecoderShape, t: usize, device: &Device) -> Self {
        let d = shape.head_dim();
        let half = d / 2;
        let inv: Vec<f32> = (0..half)
            .map(|i| 1.0 / (shape.theta as f32).powf((2 * i) as f32 / d as f32))
            .collect();
        let (mut cos, mut sin) = (Vec::with_capacity(t * d), Vec::with_capacity(t * d));
        for p in 0..t {
            for i in 0..d {
                let angle = p as f32 * inv[i % half];
                cos.push(angle.cos());
                sin.push(angle.sin());
            }
        }
        let causal: Vec<f32> = (0..t * t)
            .map(|i| {
                if i % t > i / t {
                    f32::NEG_INFINITY
                } else {
                    0.0
                }
            })
            .collect();
        let table =
            |v: Vec<f32>, cols| Tensor::<4>::from_data(TensorData::new(v, [1, 1, t, cols]), device);
        Self {
            cos: table(cos, d),
            sin: table(sin, d),
            causal: table(causal, t),
        }
    }

    /// `x * cos + rotate_half(x) * sin` over `[batch, heads, t, d]`.
    fn rotate(&self, x: Tensor<4>) -> Tensor<4> {
        let d = x.dims()[3];
        let (lo, hi) = (
            x.clone().narrow(3, 0, d / 2),
            x.clone().narrow(3, d / 2, d / 2),
        );
        let rotated = Tensor::cat(vec![hi.neg(), lo], 3);
        x * self.cos.clone() + rotated * self.sin.clone()
    }
}

fn rms(x: Tensor<3>, w: Tensor<1>, eps: f64) -> Tensor<3> {
    let d = x.dims()[2];
    let scale = (x.clone() * x.clone())
        .mean_dim(2)
        .add_scalar(eps)
        .sqrt()
        .recip();
    x * scale * w.reshape([1, 1, d])
}

/// Initial values: normal with standard deviation 0.02, the projections into the residual
/// stream (o, down) scaled by 1/sqrt(2 layers) as GPT-2 and nanoGPT do; norms at 1. Drawn
/// from `seed` in the order of [`Decoder::names`], each matrix row-major `[out, in]`.
pub(crate) fn initial(shape: &DecoderShape, vocab: usize, seed: u64) -> Vec<NamedTensor> {
    let mut rng = Rng::new(seed);
    let residual = 0.02 / ((2 * shape.layers) as f64).sqrt();
    names(shape, vocab)
        .into_iter()
        .map(|(name, dims)| {
            let n: usize = dims.iter().product();
            let values = if dims.len() == 1 {
                vec![1.0; n]
            } else {
                let std = if name.ends_with("o_proj.weight") || name.ends_with("down_proj.weight") {
                    residual
                } else {
                    0.02
                };
                (0..n).map(|_| (rng.normal() * std) as f32).collect()
            };
            NamedTensor {
                name,
                shape: dims,
                values,
            }
        })
        .collect()
}

/// Every tensor's Hugging Face name and PyTorch shape, in the folder's order.
pub(crate) fn names(shape: &DecoderShape, vocab: usize) -> Vec<(String, Vec<usize>)> {
    let (d, kv, f) = (shape.width, shape.kv_width(), shape.mlp);
    let mut out = vec![("model.embed_tokens.weight".to_string(), vec![vocab, d])];
    for l in 0..shape.layers {
        let p = format!("model.layers.{l}");
        out.extend([
            (format!("{p}.input_layernorm.weight"), vec![d]),
            (format!("{p}.self_attn.q_proj.weight"), vec![d, d]),
            (format!("{p}.self_attn.k_proj.weight"), vec![kv, d]),
            (format!("{p}.self_attn.v_proj.weight"), vec![kv, d]),
            (format!("{p}.self_attn.o_proj.weight"), vec![d, d]),
            (format!("{p}.post_attention_layernorm.weight"), vec![d]),
            (format!("{p}.mlp.gate_proj.weight"), vec![f, d]),
            (format!("{p}.mlp.up_proj.weight"), vec![f, d]),
            (format!("{p}.mlp.down_proj.weight"), vec![d, f]),
        ]);
    }
    out.push(("model.norm.weight".into(), vec![d]));
    if !shape.tied {
        out.push(("lm_head.weight".into(), vec![vocab, d]));
    }
    out
}

impl Decoder {
    /// The module holding `tensors` (in [`names`]' order and shapes) on `device`.
    pub fn new(shape: &DecoderShape, tensors: &[NamedTensor], device: &Device) -> Self {
        let mut it = tensors.iter();
        let mut next = || it.next().expect("one tensor per name");
        let vector = |t: &NamedTensor| {
            Param::from_tensor(Tensor::<1>::from_data(
                TensorData::new(t.values.clone(), [t.shape[0]]),
                device,
            ))
        };
        // PyTorch's [out, in] to burn's [in, out].
        let matrix = |t: &NamedTensor| {
            let (o, i) = (t.shape[0], t.shape[1]);
            Param::from_tensor(Tensor::<2>::from_data(
                TensorData::new(transpose(&t.values, o, i), [i, o]),
                device,
            ))
        };
        let e = next();
        let embed = Param::from_tensor(Tensor::<2>::from_data(
            TensorData::new(e.values.clone(), [e.shape[0], e.shape[1]]),
            device,
        ));
        let blocks = (0..shape.layers)
            .map(|_| Block {
                attn_norm: vector(next()),
                q: matrix(next()),
                k: matrix(next()),
                v: matrix(next()),
                o: matrix(next()),
                mlp_norm: vector(next()),
                gate: matrix(next()),
                up: matrix(next()),
                down: matrix(next()),
            })
            .collect();
        let norm = vector(next());
        let head = (!shape.tied).then(|| matrix(next()));
        Self {
            embed,
            blocks,
            norm,
            head,
        }
    }

    /// The values by name, in PyTorch's layout (the inverse of [`Decoder::new`]).
    pub fn tensors(&self, shape: &DecoderShape) -> Result<Vec<NamedTensor>> {
        let vocab = self.embed.val().dims()[0];
        let mut values = Vec::new();
        values.push(to_vec(self.embed.val())?);
        let matrix = |p: &Param<Tensor<2>>| -> Result<Vec<f32>> {
            let [i, o] = p.val().dims();
            Ok(transpose(&to_vec(p.val())?, i, o))
        };
        for b in &self.blocks {
            values.push(to_vec(b.attn_norm.val())?);
            for m in [&b.q, &b.k, &b.v, &b.o] {
                values.push(matrix(m)?);
            }
            values.push(to_vec(b.mlp_norm.val())?);
            for m in [&b.gate, &b.up, &b.down] {
                values.push(matrix(m)?);
            }
        }
        values.push(to_vec(self.norm.val())?);
        if let Some(h) = &self.head {
            values.push(matrix(h)?);
        }
        Ok(names(shape, vocab)
            .into_iter()
            .zip(values)
            .map(|((name, shape), values)| NamedTensor {
                name,
                shape,
                values,
            })
            .collect())
    }

    /// The same values as new leaves of their own: a step's second half runs its forward and
    /// backward passes on it, in a graph that shares no node with the first half's (burn's
    /// autodiff merges graphs that share a node and runs a graph's backward pass under one
    /// lock), while its gradients keep the parameters' ids.
    pub fn fork(&self) -> Self {
        let m = |p: &Param<Tensor<2>>| Param::initialized(p.id, p.val().detach().require_grad());
        let v = |p: &Param<Tensor<1>>| Param::initialized(p.id, p.val().detach().require_grad());
        Self {
            embed: m(&self.embed),
            blocks: self
                .blocks
                .iter()
                .map(|b| Block {
                    attn_norm: v(&b.attn_norm),
                    q: m(&b.q),
                    k: m(&b.k),
                    v: m(&b.v),
                    o: m(&b.o),
                    mlp_norm: v(&b.mlp_norm),
                    gate: m(&b.gate),
                    up: m(&b.up),
                    down: m(&b.down),
                })
                .collect(),
            norm: v(&self.norm),
            head: self.head.as_ref().map(m),
        }
    }

    /// Tokens in the vocabulary.
    pub fn vocab(&self) -> usize {
        self.embed.val().dims()[0]
    }

    /// Every parameter's id, and whether it is a matrix (weight decay applies to those).
    pub fn ids(&self) -> Vec<(ParamId, bool)> {
        let mut ids = vec![(self.embed.id, true)];
        for b in &self.blocks {
            ids.push((b.attn_norm.id, false));
            ids.extend([&b.q, &b.k, &b.v, &b.o].map(|p| (p.id, true)));
            ids.push((b.mlp_norm.id, false));
            ids.extend([&b.gate, &b.up, &b.down].map(|p| (p.id, true)));
        }
        ids.push((self.norm.id, false));
        ids.extend(self.head.iter().map(|p| (p.id, true)));
        ids
    }

    /// Every matrix parameter with its Hugging Face name, in [`names`]' order (the head,
    /// when untied, as `lm_head.weight`).
    pub fn matrices(&self) -> Vec<(String, &Param<Tensor<2>>)> {
        let mut out = vec![("model.embed_tokens.weight".to_string(), &self.embed)];
        for (l, b) in self.blocks.iter().enumerate() {
            let p = format!("model.layers.{l}");
            out.extend([
                (format!("{p}.self_attn.q_proj.weight"), &b.q),
                (format!("{p}.self_attn.k_proj.weight"), &b.k),
                (format!("{p}.self_attn.v_proj.weight"), &b.v),
                (format!("{p}.self_attn.o_proj.weight"), &b.o),
                (format!("{p}.mlp.gate_proj.weight"), &b.gate),
                (format!("{p}.mlp.up_proj.weight"), &b.up),
                (format!("{p}.mlp.down_proj.weight"), &b.down),
            ]);
        }
        out.extend(self.head.iter().map(|h| ("lm_head.weight".to_string(), h)));
        out
    }

    /// Every matrix parameter, mutably, in [`Decoder::matrices`]' order.
    pub fn matrices_mut(&mut self) -> Vec<&mut Param<Tensor<2>>> {
        let mut out = vec![&mut self.embed];
        for b in &mut self.blocks {
            out.extend([
                &mut b.q,
                &mut b.k,
                &mut b.v,
                &mut b.o,
                &mut b.gate,
                &mut b.up,
                &mut b.down,
            ]);
        }
        out.extend(self.head.as_mut());
        out
    }

    /// The logits `[batch, t, vocab]` of token ids `[batch, t]`.
    pub fn forward(&self, shape: &DecoderShape, ids: Tensor<2, Int>, pos: &Positions) -> Tensor<3> {
        let [b, t] = ids.dims();
        let (h, kv, hd) = (shape.heads, shape.kv_heads, shape.head_dim());
        let scale = 1.0 / (hd as f64).sqrt();
        let mut x = embedding(self.embed.val(), ids);
        for blk in &self.blocks {
            let n = rms(x.clone(), blk.attn_norm.val(), shape.eps);
            let split = |w: &Param<Tensor<2>>, heads: usize| {
                linear(n.clone(), w.val(), None)
                    .reshape([b, t, heads, hd])
                    .swap_dims(1, 2)
            };
            let q = pos.rotate(split(&blk.q, h));
            let mut k = pos.rotate(split(&blk.k, kv));
            let mut v = split(&blk.v, kv);
            if kv < h {
                // transformers' repeat_kv: query head j reads key/value head j / (h / kv).
                let repeat = |x: Tensor<4>| {
                    x.unsqueeze_dim::<5>(2)
                        .repeat_dim(2, h / kv)
                        .reshape([b, h, t, hd])
                };
                k = repeat(k);
                v = repeat(v);
            }
            let scores = q.matmul(k.swap_dims(2, 3)).mul_scalar(scale) + pos.causal.clone();
            let a = softmax(scores, 3)
                .matmul(v)
                .swap_dims(1, 2)
                .reshape([b, t, h * hd]);
            x = x + linear(a, blk.o.val(), None);
            let n = rms(x.clone(), blk.mlp_norm.val(), shape.eps);
            let g = silu(linear(n.clone(), blk.gate.val(), None)) * linear(n, blk.up.val(), None);
            x = x + linear(g, blk.down.val(), None);
        }
        let x = rms(x, self.norm.val(), shape.eps);
        let head = match &self.head {
            Some(p) => p.val(),
            None => self.embed.val().transpose(),
        };
        linear(x, head, None)
    }
}
