//! A BERT encoder as a burn module: the forward pass of `transformers`' `BertModel`
//! (token, position and token-type-0 embeddings summed and LayerNormed; post-LayerNorm
//! blocks of bidirectional attention and a GELU MLP), with padding masked out of the
//! attention, and its sentence embedding pooled as sentence-transformers pools it (the mean
//! of the real tokens' states, or [CLS]'s). The linear layers are parameters; the
//! embeddings and norms are constants, since only what the images hold retrains.

use burn::module::{Module, Param, ParamId};
use burn::tensor::activation::{gelu, gelu_approximate, softmax};
use burn::tensor::module::{embedding, linear};
use burn::tensor::{Device, Int, Tensor, TensorData};
use eie_transformer::model::Norm;
use eie_transformer::{Activation, Dense, Family, LinearSpec, Model, Pooling};

use crate::decoder::NamedTensor;
use crate::error::{Error, Result};
use crate::model::{to_vec, transpose};

/// What a padded key adds to an attention score: far below any real score, finite so that
/// no softmax sees `-inf - -inf`.
const MASKED: f32 = -1e30;

/// A linear layer: `[in, out]` weights and the bias, both trained when planned.
#[derive(Module, Debug)]
pub(crate) struct Lin {
    w: Param<Tensor<2>>,
    b: Option<Param<Tensor<1>>>,
}

/// A LayerNorm's scale and shift, held.
#[derive(Module, Debug)]
pub(crate) struct Ln {
    w: Tensor<1>,
    b: Tensor<1>,
}

/// One post-norm block.
#[derive(Module, Debug)]
pub(crate) struct Block {
    q: Lin,
    k: Lin,
    v: Lin,
    o: Lin,
    norm1: Ln,
    up: Lin,
    down: Lin,
    norm2: Ln,
}

/// The whole encoder, its embeddings held.
#[derive(Module, Debug)]
pub(crate) struct Encoder {
    tokens: Tensor<2>,
    /// The position embeddings of the first `positions` positions.
    positions: Tensor<2>,
    type0: Tensor<1>,
    norm: Ln,
    blocks: Vec<Block>,
}

/// What an encoder's module is made of besides its linear layers: its shape and its held
/// values, read once from the float model.
#[derive(Debug, Clone)]
pub struct EncoderShape {
    heads: usize,
    head_dim: usize,
    hidden: usize,
    vocab: usize,
    eps: f64,
    activation: Activation,
    pooling: Pooling,
    tokens: Vec<f32>,
    positions: Vec<f32>,
    type0: Vec<f32>,
    /// The embeddings' norm, then each block's two.
    norms: Vec<(Vec<f32>, Vec<f32>)>,
    /// Per linear layer (q, k, v, o, up, down of each block): its name and its bias's name.
    names: Vec<(String, Option<String>)>,
    /// The linear layers' weights and biases.
    linear_values: usize,
}

impl EncoderShape {
    /// The shape and held values of `model` (a BERT encoder read by eie-transformer, whose
    /// linear layers `specs` lists in forward order), pooled by `pooling`; its linear
    /// layers' values by name (weights `[out, in]`, biases `[out]`), in the order
    /// the encoder module takes them. Anything but a BERT encoder is refused.
    pub fn of(
        model: &Model<Dense>,
        specs: &[LinearSpec],
        pooling: Pooling,
    ) -> Result<(Self, Vec<NamedTensor>)> {
        let c = &model.config;
        let refuse = |reason: String| Error::Config {
            what: "an encoder's retraining",
            reason,
        };
        if c.family != Family::Bert || model.lm_head.is_some() || model.mlm_head.is_some() {
            return Err(refuse(format!(
                "retrains BERT encoders without a head (measured by their sentence embeddings); this is a {} model{}",
                c.model_type,
                if model.mlm_head.is_some() {
                    " with a masked-LM head"
                } else {
                    ""
                }
            )));
        }
        if c.activation == Activation::SwiGlu || c.heads * c.head_dim != c.hidden {
            return Err(refuse(format!(
                "a BERT encoder of {} heads of {} over a width of {} with a {:?} MLP is not one this encoder implements",
                c.heads, c.head_dim, c.hidden, c.activation
            )));
        }
        let layer_norm = |n: &Norm| match n {
            Norm::Layer { w, b, eps } => Ok(((w.clone(), b.clone()), *eps)),
            Norm::Rms { .. } => Err(refuse("has an RMSNorm, which BERT does not".into())),
        };
        let e = &model.embeddings;
        let (Some(positions), Some(type0), Some(norm)) = (&e.positions, &e.type0, &e.norm) else {
            return Err(refuse(
                "lacks position or token-type embeddings or their norm".into(),
            ));
        };
        let (first, eps) = layer_norm(norm)?;
        let mut norms = vec![first];
        let mut linears = Vec::new();
        for b in &model.blocks {
            if b.qkv.len() != 3 || b.mlp_in.len() != 1 {
                return Err(refuse(
                    "a block is not BERT's q, k, v and one MLP input".into(),
                ));
            }
            norms.push(layer_norm(&b.norm1)?.0);
            norms.push(layer_norm(&b.norm2)?.0);
            linears.extend([&b.qkv[0], &b.qkv[1], &b.qkv[2], &b.o, &b.mlp_in[0], &b.down]);
        }
        if linears.len() != specs.len() {
            return Err(refuse(format!(
                "{} linear layers, but the folder lists {}",
                linears.len(),
                specs.len()
            )));
        }
        let mut names = Vec::new();
        let mut values = Vec::new();
        for (d, s) in linears.iter().zip(specs) {
            if d.name != s.name || d.b.is_some() != s.bias.is_some() {
                return Err(refuse(format!(
                    "layer {} is not the folder's {}",
                    d.name, s.name
                )));
            }
            values.push(NamedTensor {
                name: s.name.clone(),
                shape: vec![d.rows, d.cols],
                values: d.w.clone(),
            });
            if let (Some(name), Some(b)) = (&s.bias, &d.b) {
                values.push(NamedTensor {
                    name: name.clone(),
                    shape: vec![d.rows],
                    values: b.clone(),
                });
            }
            names.push((s.name.clone(), s.bias.clone()));
        }
        let shape = Self {
            heads: c.heads,
            head_dim: c.head_dim,
            hidden: c.hidden,
            vocab: c.vocab,
            eps: eps as f64,
            activation: c.activation,
            pooling,
            tokens: e.tokens.clone(),
            positions: positions.clone(),
            type0: type0.clone(),
            norms,
            names,
            linear_values: values.iter().map(|v: &NamedTensor| v.values.len()).sum(),
        };
        Ok((shape, values))
    }

    /// Positions the encoder takes.
    pub fn positions(&self) -> usize {
        self.positions.len() / self.hidden.max(1)
    }

    /// Tokens in the vocabulary.
    pub fn vocab(&self) -> usize {
        self.vocab
    }

    /// Values a sentence's embedding holds.
    pub fn width(&self) -> usize {
        self.hidden
    }

    /// Values a module holds: the linear layers' weights and biases, the embeddings and
    /// the norms.
    pub fn parameters(&self) -> usize {
        self.linear_values
            + self.tokens.len()
            + self.positions.len()
            + self.type0.len()
            + self
                .norms
                .iter()
                .map(|(w, b)| w.len() + b.len())
                .sum::<usize>()
    }
}

impl Encoder {
    /// The module holding `values` (the linear layers' weights and biases, in
    /// [`EncoderShape::of`]'s order) on `device`.
    pub fn new(shape: &EncoderShape, values: &[NamedTensor], device: &Device) -> Self {
        let mut it = values.iter();
        let mut lin = |bias: bool| {
            let w = it.next().expect("one weight per linear layer");
            let (o, i) = (w.shape[0], w.shape[1]);
            let w = Param::from_tensor(Tensor::<2>::from_data(
                TensorData::new(transpose(&w.values, o, i), [i, o]),
                device,
            ));
            let b = bias.then(|| {
                let b = it.next().expect("one bias per biased linear layer");
                Param::from_tensor(Tensor::<1>::from_data(
                    TensorData::new(b.values.clone(), [o]),
                    device,
                ))
            });
            Lin { w, b }
        };
        let vector =
            |v: &[f32]| Tensor::<1>::from_data(TensorData::new(v.to_vec(), [v.len()]), device);
        let ln = |n: &(Vec<f32>, Vec<f32>)| Ln {
            w: vector(&n.0),
            b: vector(&n.1),
        };
        let h = shape.hidden;
        let has_bias = |k: usize| shape.names[k].1.is_some();
        let blocks = (0..shape.names.len() / 6)
            .map(|l| {
                let k = 6 * l;
                let (q, kk, v, o) = (
                    lin(has_bias(k)),
                    lin(has_bias(k + 1)),
                    lin(has_bias(k + 2)),
                    lin(has_bias(k + 3)),
                );
                let (up, down) = (lin(has_bias(k + 4)), lin(has_bias(k + 5)));
                Block {
                    q,
                    k: kk,
                    v,
                    o,
                    norm1: ln(&shape.norms[1 + 2 * l]),
                    up,
                    down,
                    norm2: ln(&shape.norms[2 + 2 * l]),
                }
            })
            .collect();
        Self {
            tokens: Tensor::<2>::from_data(
                TensorData::new(shape.tokens.clone(), [shape.vocab, h]),
                device,
            ),
            positions: Tensor::<2>::from_data(
                TensorData::new(shape.positions.clone(), [shape.positions(), h]),
                device,
            ),
            type0: vector(&shape.type0),
            norm: ln(&shape.norms[0]),
            blocks,
        }
    }

    fn linears(&self) -> Vec<&Lin> {
        self.blocks
            .iter()
            .flat_map(|b| [&b.q, &b.k, &b.v, &b.o, &b.up, &b.down])
            .collect()
    }

    /// The linear layers' values, in [`EncoderShape::of`]'s order and names.
    pub fn values(&self, shape: &EncoderShape) -> Result<Vec<NamedTensor>> {
        let mut out = Vec::new();
        for (l, (name, bias)) in self.linears().into_iter().zip(&shape.names) {
            let [i, o] = l.w.val().dims();
            out.push(NamedTensor {
                name: name.clone(),
                shape: vec![o, i],
                values: transpose(&to_vec(l.w.val())?, i, o),
            });
            if let (Some(b), Some(name)) = (&l.b, bias) {
                out.push(NamedTensor {
                    name: name.clone(),
                    shape: vec![o],
                    values: to_vec(b.val())?,
                });
            }
        }
        Ok(out)
    }

    /// Every parameter's name (its value's), id, and whether it is a matrix.
    pub fn params(&self, shape: &EncoderShape) -> Vec<(String, ParamId, bool)> {
        let mut out = Vec::new();
        for (l, (name, bias)) in self.linears().into_iter().zip(&shape.names) {
            out.push((name.clone(), l.w.id, true));
            if let (Some(b), Some(name)) = (&l.b, bias) {
                out.push((name.clone(), b.id, false));
            }
        }
        out
    }

    /// Every parameter's id, and whether it is a matrix.
    pub fn ids(&self) -> Vec<(ParamId, bool)> {
        let mut out = Vec::new();
        for l in self.linears() {
            out.push((l.w.id, true));
            out.extend(l.b.iter().map(|b| (b.id, false)));
        }
        out
    }

    /// Every weight matrix, mutably.
    pub fn matrices_mut(&mut self) -> Vec<&mut Param<Tensor<2>>> {
        self.blocks
            .iter_mut()
            .flat_map(|b| {
                [
                    &mut b.q.w,
                    &mut b.k.w,
                    &mut b.v.w,
                    &mut b.o.w,
                    &mut b.up.w,
                    &mut b.down.w,
                ]
            })
            .collect()
    }

    /// The same values as new leaves of their own, keeping the parameters' ids (a step's
    /// second half runs on it: crate::decoder::stream's `Streamed::fork`).
    pub fn fork(&self) -> Self {
        let lin = |l: &Lin| Lin {
            w: Param::initialized(l.w.id, l.w.val().detach().require_grad()),
            b: l.b
                .as_ref()
                .map(|b| Param::initialized(b.id, b.val().detach().require_grad())),
        };
        let ln = |n: &Ln| Ln {
            w: n.w.clone(),
            b: n.b.clone(),
        };
        Self {
            tokens: self.tokens.clone(),
            positions: self.positions.clone(),
            type0: self.type0.clone(),
            norm: ln(&self.norm),
            blocks: self
                .blocks
                .iter()
                .map(|b| Block {
                    q: lin(&b.q),
                    k: lin(&b.k),
                    v: lin(&b.v),
                    o: lin(&b.o),
                    norm1: ln(&b.norm1),
                    up: lin(&b.up),
                    down: lin(&b.down),
                    norm2: ln(&b.norm2),
                })
                .collect(),
        }
    }

    /// The pooled sentence embeddings `[batch, hidden]` of token ids `[batch, t]`, `real`
    /// `[batch, t]` 1 at a sentence's tokens and 0 at its padding.
    pub fn pooled(&self, shape: &EncoderShape, ids: Tensor<2, Int>, real: Tensor<2>) -> Tensor<2> {
        let [b, t] = ids.dims();
        let (h, hd, d) = (shape.heads, shape.head_dim, shape.hidden);
        let scale = 1.0 / (hd as f64).sqrt();
        let ln = |x: Tensor<3>, n: &Ln| {
            let mean = x.clone().mean_dim(2);
            let c = x - mean;
            let var = (c.clone() * c.clone()).mean_dim(2);
            c * var.add_scalar(shape.eps).sqrt().recip() * n.w.clone().reshape([1, 1, d])
                + n.b.clone().reshape([1, 1, d])
        };
        let lin = |x: Tensor<3>, l: &Lin| linear(x, l.w.val(), l.b.as_ref().map(|b| b.val()));
        let x = embedding(self.tokens.clone(), ids)
            + self.positions.clone().narrow(0, 0, t).reshape([1, t, d])
            + self.type0.clone().reshape([1, 1, d]);
        let mut x = ln(x, &self.norm);
        // 0 where a key is a token, MASKED where it is padding.
        let mask = real
            .clone()
            .sub_scalar(1.0)
            .mul_scalar(-MASKED)
            .reshape([b, 1, 1, t]);
        for blk in &self.blocks {
            let split = |l: &Lin| lin(x.clone(), l).reshape([b, t, h, hd]).swap_dims(1, 2);
            let (q, k, v) = (split(&blk.q), split(&blk.k), split(&blk.v));
            let scores = q.matmul(k.swap_dims(2, 3)).mul_scalar(scale) + mask.clone();
            let a = softmax(scores, 3)
                .matmul(v)
                .swap_dims(1, 2)
                .reshape([b, t, d]);
            x = ln(x.clone() + lin(a, &blk.o), &blk.norm1);
            let m = lin(x.clone(), &blk.up);
            let m = match shape.activation {
                Activation::GeluTanh => gelu_approximate(m),
                _ => gelu(m),
            };
            x = ln(x.clone() + lin(m, &blk.down), &blk.norm2);
        }
        match shape.pooling {
            Pooling::Cls => x.narrow(1, 0, 1).reshape([b, d]),
            Pooling::Mean => {
                let r = real.reshape([b, t, 1]);
                let count = r.clone().sum_dim(1);
                (x * r).sum_dim(1).div(count).reshape([b, d])
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use eie_checkpoint::{Dtype, Writer};
    use eie_rng::Rng;
    use eie_transformer::{Folder, dense};

    use super::*;
    use crate::encoder::embed;

    /// A BERT folder (width 16, 2 heads, 2 blocks, MLP 24, vocabulary 13, 10 positions),
    /// its values seeded normals, the norms near 1.
    fn bert(dir: &std::path::Path, activation: &str) {
        let config = serde_json::json!({"model_type": "bert", "vocab_size": 13,
            "hidden_size": 16, "intermediate_size": 24, "num_hidden_layers": 2,
            "num_attention_heads": 2, "max_position_embeddings": 10, "type_vocab_size": 2,
            "hidden_act": activation, "layer_norm_eps": 1e-12});
        std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
        let mut t: Vec<(String, Vec<usize>)> = vec![
            ("embeddings.word_embeddings.weight".into(), vec![13, 16]),
            ("embeddings.position_embeddings.weight".into(), vec![10, 16]),
            (
                "embeddings.token_type_embeddings.weight".into(),
                vec![2, 16],
            ),
            ("embeddings.LayerNorm.weight".into(), vec![16]),
            ("embeddings.LayerNorm.bias".into(), vec![16]),
        ];
        for i in 0..2 {
            let b = format!("encoder.layer.{i}.");
            for (n, s) in [
                ("attention.self.query", vec![16, 16]),
                ("attention.self.key", vec![16, 16]),
                ("attention.self.value", vec![16, 16]),
                ("attention.output.dense", vec![16, 16]),
                ("intermediate.dense", vec![24, 16]),
                ("output.dense", vec![16, 24]),
            ] {
                t.push((format!("{b}{n}.weight"), s.clone()));
                t.push((format!("{b}{n}.bias"), vec![s[0]]));
            }
            for n in ["attention.output.LayerNorm", "output.LayerNorm"] {
                t.push((format!("{b}{n}.weight"), vec![16]));
                t.push((format!("{b}{n}.bias"), vec![16]));
            }
        }
        let specs: Vec<_> = t
            .iter()
            .map(|(n, s)| (n.clone(), Dtype::F32, s.clone()))
            .collect();
        let mut w =
            Writer::create(&dir.join("model.safetensors"), &BTreeMap::new(), &specs).unwrap();
        let mut rng = Rng::new(7);
        for (name, s) in &t {
            let n: usize = s.iter().product();
            let base = if name.ends_with("LayerNorm.weight") {
                1.0
            } else {
                0.0
            };
            let bytes: Vec<u8> = (0..n)
                .flat_map(|_| (base + 0.4 * rng.normal() as f32).to_le_bytes())
                .collect();
            w.write_tensor(&bytes).unwrap();
        }
        w.finish().unwrap();
    }

    /// burn's encoder embeds sentences of different lengths, padded together, as
    /// eie-transformer's float forward pass embeds each alone: mean and [CLS] pooling, exact
    /// and tanh GELU.
    #[test]
    fn the_encoder_embeds_padded_sentences_as_the_reference_embeds_each_alone() {
        let sentences: Vec<Vec<u32>> = vec![
            vec![4, 5, 6],
            vec![7],
            vec![8, 9, 10, 11, 12, 3],
            vec![3, 3],
        ];
        for (activation, pooling) in [
            ("gelu", Pooling::Mean),
            ("gelu", Pooling::Cls),
            ("gelu_new", Pooling::Mean),
        ] {
            let dir = tempfile::tempdir().unwrap();
            bert(dir.path(), activation);
            let folder = Folder::open(dir.path()).unwrap();
            let model = dense(&folder).unwrap();
            let specs = folder.linears().unwrap();
            let (shape, values) = EncoderShape::of(&model, &specs, pooling).unwrap();
            assert_eq!(values.len(), 2 * 6 * 2);
            let want = model.pooled(&sentences, 1, 2, pooling).unwrap();
            let wrapped: Vec<Vec<u32>> = sentences
                .iter()
                .map(|s| [&[1][..], s, &[2]].concat())
                .collect();
            let got = embed(&shape, &values, &wrapped).unwrap();
            assert_eq!(got.len(), want.values.len());
            for (g, w) in got.iter().zip(&want.values) {
                assert!(
                    (g - w).abs() < 1e-4 * (1.0 + w.abs()),
                    "{activation} {pooling:?}: {g} against {w}"
                );
            }
            // The values come back as they went in.
            let back = Encoder::new(&shape, &values, &Device::flex())
                .values(&shape)
                .unwrap();
            assert_eq!(back, values);
        }
    }
}
