//! Training a decoder on a token stream, nanoGPT's way: windows at seeded random offsets,
//! AdamW (decoupled weight decay on the matrices only), the gradient clipped by its global
//! norm, the learning rate warmed up linearly then decayed by a cosine.

use std::ops::Range;

use burn::module::{Param, ParamId};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Int, Tensor, TensorData};
use eie_rng::Rng;

use super::model::{Decoder, NamedTensor, Positions, initial, names};
use super::shape::DecoderShape;
use crate::error::{Error, Result};
use crate::halves::{Streamed, split_gradients};
use crate::model::{Tape, to_vec};
pub(crate) use crate::samples::check_stream;
use crate::train::{SHUFFLE_STREAM, check_common};

/// How to train a decoder.
#[derive(Debug, Clone, PartialEq)]
pub struct DecoderTraining {
    /// Optimizer steps.
    pub steps: usize,
    /// Windows per step.
    pub batch_size: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// Learning rate at the end of the cosine decay.
    pub min_lr: f64,
    /// Steps of linear warm-up.
    pub warmup: usize,
    /// Decoupled weight decay of the matrices (embedding included; norms not).
    pub weight_decay: f64,
    /// Largest global gradient norm (0: no clipping).
    pub clip: f64,
    /// Adam's second-moment decay.
    pub beta2: f64,
    /// Seed of the initial values and of the window offsets.
    pub seed: u64,
}

impl Default for DecoderTraining {
    /// nanoGPT's `train_shakespeare_char` on a CPU: 2,000 steps of 12 windows, learning rate
    /// 1e-3 warmed up over 100 steps and decayed to 1e-4, weight decay 0.1, clip 1, beta2 0.99.
    fn default() -> Self {
        Self {
            steps: 2000,
            batch_size: 12,
            lr: 1e-3,
            min_lr: 1e-4,
            warmup: 100,
            weight_decay: 0.1,
            clip: 1.0,
            beta2: 0.99,
            seed: 0,
        }
    }
}

impl DecoderTraining {
    /// Checks the settings.
    pub fn validate(&self) -> Result<()> {
        check_common(self.batch_size, self.lr)?;
        let bad = |what, reason: String| Err(Error::Config { what, reason });
        if self.steps == 0 {
            return bad("steps", "0: expected at least 1".into());
        }
        if !(self.min_lr.is_finite() && self.min_lr >= 0.0 && self.min_lr <= self.lr) {
            return bad(
                "minimum learning rate",
                format!("{}: expected 0..={}", self.min_lr, self.lr),
            );
        }
        for (what, v) in [
            ("weight decay", self.weight_decay),
            ("gradient clip", self.clip),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return bad(what, format!("{v} must be finite and >= 0"));
            }
        }
        if self.lr * self.weight_decay >= 1.0 {
            return bad(
                "weight decay",
                format!(
                    "{} at a learning rate of {} would shrink every matrix by {} or more a step",
                    self.weight_decay,
                    self.lr,
                    self.lr * self.weight_decay
                ),
            );
        }
        if !(self.beta2 > 0.0 && self.beta2 < 1.0) {
            return bad(
                "beta2",
                format!("{}: expected a number in (0, 1)", self.beta2),
            );
        }
        Ok(())
    }

    /// The learning rate of step `i` (from 0).
    pub fn lr_at(&self, i: usize) -> f64 {
        if i < self.warmup {
            return self.lr * (i + 1) as f64 / (self.warmup + 1) as f64;
        }
        let span = self.steps.saturating_sub(self.warmup).max(1);
        let progress = ((i - self.warmup) as f64 / span as f64).min(1.0);
        let cosine = 0.5 * (1.0 + (std::f64::consts::PI * progress).cos());
        self.min_lr + cosine * (self.lr - self.min_lr)
    }
}

/// One step's figures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepStats {
    /// 1-based.
    pub step: usize,
    /// The batch's mean cross-entropy, nats per token.
    pub loss: f64,
    /// The learning rate it used.
    pub lr: f64,
}

/// The window offsets of every step: `batch` draws below `n - context` per step, from the
/// seed's own stream (so changing the shape never changes which text is read).
pub fn offsets(n: usize, context: usize, batch: usize, seed: u64) -> impl FnMut() -> Vec<usize> {
    let mut rng = Rng::new(seed ^ SHUFFLE_STREAM);
    let span = (n - context) as u64;
    move || (0..batch).map(|_| rng.below(span) as usize).collect()
}

pub(crate) fn ids_of(
    tokens: &[u32],
    starts: &[usize],
    t: usize,
    shift: usize,
    device: &Device,
) -> Tensor<2, Int> {
    let v: Vec<i64> = starts
        .iter()
        .flat_map(|&s| tokens[s + shift..s + shift + t].iter().map(|&x| x as i64))
        .collect();
    Tensor::<2, Int>::from_data(TensorData::new(v, [starts.len(), t]), device)
}

impl Streamed for Decoder {
    fn fork(&self) -> Self {
        Decoder::fork(self)
    }

    fn ids(&self) -> Vec<(ParamId, bool)> {
        Decoder::ids(self)
    }

    fn matrices_mut(&mut self) -> Vec<&mut Param<Tensor<2>>> {
        Decoder::matrices_mut(self)
    }
}

/// What a module computes of a batch of windows: token ids `[batch, t]` to logits
/// `[batch * t, vocab]`, and what the backward pass needs beyond burn's graph.
pub(crate) type Logits<'a, M> = dyn Fn(&M, Tensor<2, Int>) -> (Tensor<2>, Tape) + Sync + 'a;

/// The windows of one step, split in two fixed halves ([`split_gradients`]): each window's
/// next tokens, or with `targets` the teacher's next-token distributions. Returns the
/// batch's mean loss and its gradients.
pub(crate) fn stream_gradients<M: Streamed>(
    model: &M,
    logits: &Logits<M>,
    t: usize,
    tokens: &[u32],
    starts: &[usize],
    targets: Option<&[f32]>,
    device: &Device,
) -> Result<(f32, GradientsParams)> {
    let row = targets.map_or(0, |p| p.len() / (starts.len() * t).max(1));
    split_gradients(model, starts.len(), &|model: &M, r: Range<usize>| {
        let s = &starts[r.clone()];
        let x = ids_of(tokens, s, t, 0, device);
        let (out, tape) = logits(model, x);
        let loss = match targets {
            None => {
                let loss_fn = CrossEntropyLossConfig::new().init(device);
                let y = ids_of(tokens, s, t, 1, device).reshape([s.len() * t]);
                loss_fn.forward(out, y)
            }
            Some(p) => {
                // The cross-entropy to the teacher's distribution, mean over positions.
                let [n, v] = out.dims();
                let p = &p[r.start * t * row..r.end * t * row];
                let p = Tensor::<2>::from_data(TensorData::new(p.to_vec(), [n, v]), device);
                (p * log_softmax(out, 1)).sum_dim(1).mean().neg()
            }
        };
        (loss, tape)
    })
}

/// A decoder's step ([`stream_gradients`] of its forward pass): on the next tokens, or with
/// a `teacher`, on its next-token distributions (distillation).
pub(super) fn step_gradients(
    model: &Decoder,
    shape: &DecoderShape,
    tokens: &[u32],
    starts: &[usize],
    teacher: Option<(&Decoder, &DecoderShape)>,
    device: &Device,
) -> Result<(f32, GradientsParams)> {
    let t = shape.context;
    let vocab = model.vocab();
    let logits = |m: &Decoder, shape: &DecoderShape, x: Tensor<2, Int>, device: &Device| {
        let b = x.dims()[0];
        let pos = Positions::new(shape, t, device);
        m.forward(shape, x, &pos).reshape([b * t, vocab])
    };
    let targets = match teacher {
        None => None,
        Some((teacher, its)) => {
            let plain = Device::flex();
            let x = ids_of(tokens, starts, t, 0, &plain);
            Some(softmax_rows(
                &to_vec(logits(teacher, its, x, &plain))?,
                vocab,
            ))
        }
    };
    let student = |m: &Decoder, x: Tensor<2, Int>| (logits(m, shape, x, device), Tape::default());
    stream_gradients(
        model,
        &student,
        t,
        tokens,
        starts,
        targets.as_deref(),
        device,
    )
}

/// Each row of `vocab` logits as probabilities (f64 sums, the largest logit subtracted).
fn softmax_rows(logits: &[f32], vocab: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(logits.len());
    for row in logits.chunks(vocab.max(1)) {
        let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v)) as f64;
        let e: Vec<f64> = row.iter().map(|&v| (v as f64 - max).exp()).collect();
        let sum: f64 = e.iter().sum();
        out.extend(e.iter().map(|&v| (v / sum) as f32));
    }
    out
}

/// Trains a decoder of `shape` over `vocab` tokens on `tokens` from seeded initial values;
/// `on_step` sees each step. Returns the values by Hugging Face name.
pub fn train_decoder(
    shape: &DecoderShape,
    vocab: usize,
    tokens: &[u32],
    cfg: &DecoderTraining,
    on_step: &mut dyn FnMut(&StepStats),
) -> Result<Vec<NamedTensor>> {
    cfg.validate()?;
    check_stream(vocab, shape.context, tokens, "training text")?;
    let device = Device::flex().autodiff();
    let t = shape.context;
    let model = Decoder::new(shape, &initial(shape, vocab, cfg.seed), &device);
    let logits = |m: &Decoder, x: Tensor<2, Int>| {
        let b = x.dims()[0];
        let pos = Positions::new(shape, t, &device);
        let out = m.forward(shape, x, &pos).reshape([b * t, vocab]);
        (out, Tape::default())
    };
    let model = train_stream(model, &logits, t, tokens, cfg, "decoder training", on_step)?;
    model.tensors(shape)
}

/// nanoGPT's loop over a token stream: windows of `t + 1` tokens at seeded offsets, AdamW
/// with its decay applied by hand to the matrices only (as nanoGPT leaves norms and biases
/// out), the gradient clipped by its global norm, the learning rate of [`DecoderTraining::lr_at`].
/// The tokens must be checked (more than `t`, every one in the vocabulary).
pub(crate) fn train_stream<M: Streamed>(
    mut model: M,
    logits: &Logits<M>,
    t: usize,
    tokens: &[u32],
    cfg: &DecoderTraining,
    stage: &'static str,
    on_step: &mut dyn FnMut(&StepStats),
) -> Result<M> {
    let device = Device::flex().autodiff();
    let ids = model.ids();
    let mut optim = AdamConfig::new()
        .with_beta_2(cfg.beta2 as f32)
        .with_epsilon(1e-8)
        .init();
    let mut next = offsets(tokens.len(), t, cfg.batch_size, cfg.seed);
    for step in 0..cfg.steps {
        let starts = next();
        let (value, mut grads) =
            stream_gradients(&model, logits, t, tokens, &starts, None, &device)?;
        if !value.is_finite() {
            return Err(Error::Diverged {
                stage,
                epoch: step + 1,
                loss: value as f64,
            });
        }
        if cfg.clip > 0.0 {
            clip_global_norm(&mut grads, &ids, cfg.clip, stage)?;
        }
        let lr = cfg.lr_at(step);
        if cfg.weight_decay > 0.0 {
            let keep = 1.0 - lr * cfg.weight_decay;
            for p in model.matrices_mut() {
                let w = p.clone();
                let decayed = w.val().inner().mul_scalar(keep);
                *p = burn::module::Param::initialized(w.id, decayed.autodiff().require_grad());
            }
        }
        model = optim.step(lr, model, grads);
        on_step(&StepStats {
            step: step + 1,
            loss: value as f64,
            lr,
        });
    }
    Ok(model)
}

/// Scales every gradient by `max / norm` when their global L2 norm is above `max`
/// (PyTorch's `clip_grad_norm_`).
pub(crate) fn clip_global_norm(
    grads: &mut GradientsParams,
    ids: &[(burn::module::ParamId, bool)],
    max: f64,
    stage: &'static str,
) -> Result<()> {
    let mut sum = 0f64;
    for &(id, matrix) in ids {
        let sq: Option<f32> = if matrix {
            grads
                .get::<2>(id)
                .map(|g| (g.clone() * g).sum().into_scalar())
        } else {
            grads
                .get::<1>(id)
                .map(|g| (g.clone() * g).sum().into_scalar())
        };
        sum += sq.unwrap_or(0.0) as f64;
    }
    let norm = sum.sqrt();
    if !norm.is_finite() {
        return Err(Error::Diverged {
            stage,
            epoch: 0,
            loss: norm,
        });
    }
    let coef = max / (norm + 1e-6);
    if coef >= 1.0 {
        return Ok(());
    }
    for &(id, matrix) in ids {
        if matrix {
            if let Some(g) = grads.remove::<2>(id) {
                grads.register(id, g.mul_scalar(coef));
            }
        } else if let Some(g) = grads.remove::<1>(id) {
            grads.register(id, g.mul_scalar(coef));
        }
    }
    Ok(())
}

/// The mean next-token cross-entropy (nats per token) of the decoder `tensors` on `tokens`:
/// windows of `context + 1` tokens at a stride of `context`, each position of those windows
/// scored once (the last `(len - 1) mod context` tokens, which fill no window, are not).
pub fn decoder_loss(shape: &DecoderShape, tensors: &[NamedTensor], tokens: &[u32]) -> Result<f64> {
    let vocab = tensors.first().map_or(0, |e| e.shape[0]);
    check_stream(vocab, shape.context, tokens, "held-out text")?;
    if names(shape, vocab).len() != tensors.len() {
        return Err(Error::Config {
            what: "decoder values",
            reason: format!("{} tensors for {}", tensors.len(), shape),
        });
    }
    let device = Device::flex();
    let t = shape.context;
    let pos = Positions::new(shape, t, &device);
    let model = Decoder::new(shape, tensors, &device);
    let loss_fn = CrossEntropyLossConfig::new().init(&device);
    let starts: Vec<usize> = (0..(tokens.len() - 1) / t).map(|w| w * t).collect();
    let (mut sum, mut count) = (0f64, 0usize);
    for chunk in starts.chunks(32) {
        let x = ids_of(tokens, chunk, t, 0, &device);
        let y = ids_of(tokens, chunk, t, 1, &device).reshape([chunk.len() * t]);
        let logits = model
            .forward(shape, x, &pos)
            .reshape([chunk.len() * t, vocab]);
        let loss: f32 = loss_fn.forward(logits, y).into_scalar();
        sum += loss as f64 * (chunk.len() * t) as f64;
        count += chunk.len() * t;
    }
    Ok(sum / count as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_warms_up_then_decays_to_the_minimum() {
        let c = DecoderTraining::default();
        assert!((c.lr_at(0) - 1e-3 / 101.0).abs() < 1e-12);
        assert!((c.lr_at(100) - 1e-3).abs() < 1e-12);
        assert!((c.lr_at(1999) - 1e-4).abs() < 1e-6);
        assert!(c.lr_at(1000) < c.lr_at(500));
    }

    #[test]
    fn training_lowers_the_loss_and_is_deterministic() {
        // A repeating text a small decoder learns in a few dozen steps.
        let text: Vec<u32> = (0..4000).map(|i| [0, 1, 2, 3, 2, 1][i % 6]).collect();
        let shape: DecoderShape = "llama:layers=1,heads=2,kv-heads=1,width=16,context=12"
            .parse()
            .unwrap();
        let cfg = DecoderTraining {
            steps: 60,
            batch_size: 4,
            lr: 1e-2,
            warmup: 5,
            ..Default::default()
        };
        let before = decoder_loss(&shape, &initial(&shape, 4, 0), &text).unwrap();
        let mut losses = Vec::new();
        let pool = |n| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .build()
                .unwrap()
        };
        let a = pool(2)
            .install(|| train_decoder(&shape, 4, &text, &cfg, &mut |s| losses.push(s.loss)))
            .unwrap();
        let after = decoder_loss(&shape, &a, &text).unwrap();
        // Near uniform at first (a tied head leans a little towards repeating the input).
        assert!((before - 4f64.ln()).abs() < 0.15, "{before}");
        assert!(after < 0.5 * before, "{before} -> {after}");
        // The same values on one thread as on two.
        let b = pool(1)
            .install(|| train_decoder(&shape, 4, &text, &cfg, &mut |_| {}))
            .unwrap();
        assert_eq!(a, b);
        let names: Vec<_> = a.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names.len(), 1 + 9 + 1);
        assert_eq!(a[2].shape, vec![16, 16]); // q_proj [out, in]
        assert_eq!(a[3].shape, vec![8, 16]); // k_proj of one key/value head of width 8
    }

    #[test]
    fn offsets_are_those_the_pytorch_benchmark_draws() {
        // bench/language/train.py's port of the generator draws the same windows.
        let mut next = offsets(1_000_000, 64, 4, 0);
        assert_eq!(next(), [833095, 946663, 400834, 158862]);
    }

    #[test]
    fn too_short_a_text_and_a_token_past_the_vocabulary_are_refused() {
        let shape: DecoderShape = "llama:layers=1,heads=2,width=16,context=8".parse().unwrap();
        let cfg = DecoderTraining {
            steps: 1,
            ..Default::default()
        };
        let e = train_decoder(&shape, 4, &[0; 8], &cfg, &mut |_| {}).unwrap_err();
        assert!(e.to_string().contains("needs at least 9"), "{e}");
        let e = train_decoder(&shape, 4, &[7; 20], &cfg, &mut |_| {}).unwrap_err();
        assert!(e.to_string().contains("token id 7"), "{e}");
    }
}
