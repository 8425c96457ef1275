//! Training with burn: Adam on cross-entropy, minibatches in a seeded order. Also masked
//! fine-tuning after pruning: the gradients of pruned weights are zeroed before every step
//! and the mask is applied again after it, so a pruned weight stays exactly zero. Incremental
//! weight sharing holds its shared weights (and biases) at their values the same way.

use burn::module::Param;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::decay::WeightDecayConfig;
use std::sync::Mutex;

use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Tensor, TensorData};
use eie_dataset::Dataset;
use eie_rng::Rng;

use crate::error::{Error, Result};
use crate::halves::split_gradients;
use crate::model::{Model, argmax_rows, burn_dims, burn_layout};
use crate::samples::Samples;
use eie_model::Network;

/// Separates the shuffling stream from the initialisation stream of the same seed.
pub(crate) const SHUFFLE_STREAM: u64 = 0x7368_7566_666c_6521;

/// How to train.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainConfig {
    /// Passes over the data.
    pub epochs: usize,
    /// Samples per step.
    pub batch_size: usize,
    /// Adam's learning rate.
    pub lr: f64,
    /// L2 penalty added to every gradient (0: none).
    pub weight_decay: f64,
    /// Seed of the sample order.
    pub seed: u64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 10,
            batch_size: 64,
            lr: 1e-3,
            weight_decay: 0.0,
            seed: 0,
        }
    }
}

impl TrainConfig {
    /// Checks the settings.
    pub fn validate(&self) -> Result<()> {
        check_common(self.batch_size, self.lr)?;
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return Err(Error::Config {
                what: "weight decay",
                reason: format!("{} must be finite and >= 0", self.weight_decay),
            });
        }
        Ok(())
    }
}

/// Largest batch a step trains on (a batch's activations are held for the backward pass).
pub const MAX_BATCH: usize = 65536;

pub(crate) fn check_common(batch_size: usize, lr: f64) -> Result<()> {
    if batch_size == 0 || batch_size > MAX_BATCH {
        return Err(Error::Config {
            what: "batch size",
            reason: format!("{batch_size}: expected 1..={MAX_BATCH}"),
        });
    }
    if !(lr.is_finite() && lr > 0.0) {
        return Err(Error::Config {
            what: "learning rate",
            reason: format!("{lr} must be positive"),
        });
    }
    if !(lr as f32).is_normal() {
        return Err(Error::Config {
            what: "learning rate",
            reason: format!(
                "{lr:e} is below a 32-bit float's smallest normal value ({:e}): training in f32 would move no weight",
                f32::MIN_POSITIVE
            ),
        });
    }
    Ok(())
}

/// Squared gradients summed over the steps of an epoch (the empirical Fisher information's
/// diagonal, what `codebook_weight gradient` weights a codebook by), per trained matrix and
/// its bias, in burn's layout until [`SquaredGradients::values`].
#[derive(Debug, Default)]
pub(crate) struct SquaredGradients {
    weights: Vec<Option<Tensor<2>>>,
    biases: Vec<Option<Tensor<1>>>,
}

impl SquaredGradients {
    /// Adds matrix `k`'s gradient `g` (burn's layout), squared.
    pub(crate) fn add_weight(&mut self, k: usize, g: &Tensor<2>) {
        add_square(&mut self.weights, k, g);
    }

    /// Adds bias `k`'s gradient, squared.
    pub(crate) fn add_bias(&mut self, k: usize, g: &Tensor<1>) {
        add_square(&mut self.biases, k, g);
    }

    /// Matrix `k`'s sums (burn's `[in, out]` layout) and its bias's, when it had gradients.
    pub(crate) fn values(&self, k: usize) -> Result<Squares> {
        let w = match self.weights.get(k).and_then(Option::as_ref) {
            Some(t) => Some(crate::model::to_vec(t.clone())?),
            None => None,
        };
        let b = match self.biases.get(k).and_then(Option::as_ref) {
            Some(t) => Some(crate::model::to_vec(t.clone())?),
            None => None,
        };
        Ok((w, b))
    }
}

/// A matrix's squared-gradient sums and its bias's, each when it had gradients.
pub(crate) type Squares = (Option<Vec<f32>>, Option<Vec<f32>>);

fn add_square<const D: usize>(sums: &mut Vec<Option<Tensor<D>>>, k: usize, g: &Tensor<D>) {
    if sums.len() <= k {
        sums.resize_with(k + 1, || None);
    }
    let sq = g.clone().powf_scalar(2.0);
    sums[k] = Some(match sums[k].take() {
        Some(s) => s + sq,
        None => sq,
    });
}

/// What each survivor (at flat `positions` of a `[rows, cols]` matrix, PyTorch's layout) and
/// each folded bias value counts for in a gradient-weighted codebook: its squared gradients
/// `squares` (PyTorch's layout), and the mean of the bias's (`bias`); a weight that saw no
/// gradient counts a millionth of the mean, so that every value still counts.
pub(crate) fn gradient_weights(
    squares: &[f32],
    positions: &[u64],
    bias: Option<&[f32]>,
) -> (Vec<f64>, f64) {
    let live: Vec<f64> = positions
        .iter()
        .map(|&p| squares[p as usize] as f64)
        .filter(|&v| v > 0.0)
        .collect();
    let mean = match live.is_empty() {
        true => 1.0,
        false => live.iter().sum::<f64>() / live.len() as f64,
    };
    let floor = 1e-6 * mean;
    let w = positions
        .iter()
        .map(|&p| (squares[p as usize] as f64).max(floor))
        .collect();
    let b = bias.filter(|b| !b.is_empty()).map_or(mean, |b| {
        b.iter().map(|&v| v as f64).sum::<f64>() / b.len() as f64
    });
    (w, b.max(floor))
}

/// One epoch's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct EpochStats {
    /// 1-based.
    pub epoch: usize,
    /// Mean cross-entropy over the epoch's batches (each batch weighted by its samples).
    pub loss: f64,
    /// Fraction of the epoch's samples classified right by the model as it was when it saw
    /// them (a running figure, not a held-out one).
    pub accuracy: f64,
}

/// Whether training may change every weight, only the non-zero ones, or only those not held.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode<'a> {
    /// Every weight trains.
    Dense,
    /// Weights that are zero when training starts stay exactly zero (biases train).
    Masked,
    /// As `Masked`, and the weights and biases each layer's [`Held`] marks keep the values
    /// they start with (incremental weight sharing's shared values); one per layer.
    Held(&'a [Held]),
}

/// What one layer holds at its values in [`Mode::Held`].
#[derive(Debug, Clone, PartialEq)]
pub struct Held {
    /// Per weight, `[out, in]` row-major like the weights: `true` keeps it as it is.
    pub weights: Vec<bool>,
    /// Whether the bias keeps its values.
    pub bias: bool,
}

impl Mode<'_> {
    /// The stage a diverging loss is reported in.
    fn stage(self) -> &'static str {
        match self {
            Mode::Dense => "training",
            Mode::Masked => "masked fine-tuning",
            Mode::Held(_) => "incremental weight sharing",
        }
    }

    /// Whether layer `layer` keeps its bias.
    fn holds_bias(self, layer: usize) -> bool {
        matches!(self, Mode::Held(h) if h[layer].bias)
    }
}

/// Checks that `held` has one entry per layer of `net`, each the length of its weights.
fn check_held(net: &Network, held: &[Held]) -> Result<()> {
    if held.len() != net.layers().len() {
        return Err(Error::Config {
            what: "incremental weight sharing",
            reason: format!(
                "{} held layers for a network of {}",
                held.len(),
                net.layers().len()
            ),
        });
    }
    for (l, h) in net.layers().iter().zip(held) {
        if h.weights.len() != l.weight.len() {
            return Err(Error::Config {
                what: "incremental weight sharing",
                reason: format!(
                    "layer {}: {} held flags for {} weights",
                    l.name,
                    h.weights.len(),
                    l.weight.len()
                ),
            });
        }
    }
    Ok(())
}

/// The sample order of every epoch: one permutation, reshuffled each epoch.
pub(crate) struct Order {
    rng: Rng,
    order: Vec<usize>,
}

impl Order {
    pub fn new(n: usize, seed: u64) -> Self {
        Self {
            rng: Rng::new(seed ^ SHUFFLE_STREAM),
            order: (0..n).collect(),
        }
    }

    pub fn next_epoch(&mut self) -> &[usize] {
        self.rng.shuffle(&mut self.order);
        &self.order
    }
}

/// Samples `idx` of `data` as one step of `model`, in the two fixed halves of
/// [`split_gradients`] (so on two threads when there are two): the batch's mean
/// cross-entropy, its gradients, and how many of its targets the model got right.
pub(crate) fn batch_gradients(
    model: &Model,
    net: &Network,
    data: Samples,
    idx: &[usize],
    device: &Device,
) -> Result<(f32, GradientsParams, usize)> {
    let counts = Mutex::new(Vec::new());
    let (value, grads) = split_gradients(model, idx.len(), &|m: &Model, r| {
        let which = &idx[r];
        let (x, y) = data.batch(which, device);
        let (logits, tape) = m.logits(net, x);
        let right = argmax_rows(logits.clone().inner()).map(|p| {
            p.iter()
                .zip(data.targets(which))
                .filter(|&(&p, t)| p == t)
                .count()
        });
        counts.lock().unwrap_or_else(|e| e.into_inner()).push(right);
        let loss_fn = CrossEntropyLossConfig::new().init(device);
        (loss_fn.forward(logits, y), tape)
    })?;
    let counts = counts.into_inner().unwrap_or_else(|e| e.into_inner());
    let right = counts.into_iter().sum::<Result<usize>>()?;
    Ok((value, grads, right))
}

/// Trains `net` on `data` in place; `on_epoch` sees each epoch's figures as it ends.
pub fn train(
    net: &mut Network,
    data: &Dataset,
    cfg: &TrainConfig,
    mode: Mode,
    on_epoch: &mut dyn FnMut(&EpochStats),
) -> Result<Vec<EpochStats>> {
    train_samples(net, Samples::Dataset(data), cfg, mode, on_epoch, None)
}

/// [`train`] on any [`Samples`]: a dataset's, or a token model's windows of text (an epoch
/// a pass over the windows in a seeded order; its loss and accuracy per token).
pub(crate) fn train_samples(
    net: &mut Network,
    data: Samples,
    cfg: &TrainConfig,
    mode: Mode,
    on_epoch: &mut dyn FnMut(&EpochStats),
    mut squares: Option<&mut SquaredGradients>,
) -> Result<Vec<EpochStats>> {
    cfg.validate()?;
    data.check(net)?;
    let device = Device::flex().autodiff();
    let plain = Device::flex();
    if let Mode::Held(held) = mode {
        check_held(net, held)?;
    }
    let mut model = Model::new(net, &device);
    // Masks in burn's layout, 1 trains a weight, 0 holds it: at zero (pruned) or, in Held
    // mode, at its value, which `holds` adds back after every step.
    let mut masks = Vec::new();
    let mut holds = Vec::new();
    if mode != Mode::Dense {
        for (i, l) in net.layers().iter().enumerate() {
            let held = |j: usize| matches!(mode, Mode::Held(h) if h[i].weights[j]);
            let m: Vec<f32> = (0..l.weight.len())
                .map(|j| {
                    if l.weight[j] != 0.0 && !held(j) {
                        1.0
                    } else {
                        0.0
                    }
                })
                .collect();
            let h: Vec<f32> = (0..l.weight.len())
                .map(|j| if held(j) { l.weight[j] } else { 0.0 })
                .collect();
            let tensor = |v: Vec<f32>| {
                Tensor::<2>::from_data(TensorData::new(burn_layout(l, &v), burn_dims(l)), &plain)
            };
            masks.push(tensor(m));
            holds.push(matches!(mode, Mode::Held(_)).then(|| tensor(h)));
        }
    }
    let mut adam = AdamConfig::new().with_epsilon(1e-8);
    if cfg.weight_decay > 0.0 {
        adam = adam.with_weight_decay(Some(WeightDecayConfig::new(cfg.weight_decay as f32)));
    }
    let mut optim = adam.init();
    let mut order = Order::new(data.len(), cfg.seed);
    let mut history = Vec::new();
    for epoch in 1..=cfg.epochs {
        let (mut loss_sum, mut correct) = (0f64, 0usize);
        for idx in order.next_epoch().chunks(cfg.batch_size) {
            let (value, mut grads, right) = batch_gradients(&model, net, data, idx, &device)?;
            loss_sum += value as f64 * idx.len() as f64;
            correct += right;
            // The last epoch's squared gradients, when asked for.
            let mut gather = squares.as_deref_mut().filter(|_| epoch == cfg.epochs);
            for (k, (w, m)) in model.weights.iter().zip(&masks).enumerate() {
                if let Some(g) = grads.remove::<2>(w.id) {
                    let g = g * m.clone();
                    if let Some(sq) = gather.as_deref_mut() {
                        sq.add_weight(k, &g);
                    }
                    grads.register(w.id, g);
                }
            }
            // A bias without a gradient is one the optimizer leaves as it is.
            for (i, b) in model.biases.iter().enumerate() {
                if let (true, Some(b)) = (mode.holds_bias(i), b) {
                    grads.remove::<1>(b.id);
                } else if let (Some(sq), Some(b)) = (gather.as_deref_mut(), b)
                    && let Some(g) = grads.get::<1>(b.id)
                {
                    sq.add_bias(i, &g);
                }
            }
            model = optim.step(cfg.lr, model, grads);
            for ((p, m), h) in model.weights.iter_mut().zip(&masks).zip(&holds) {
                let w = p.clone();
                let mut kept = w.val().inner() * m.clone();
                if let Some(h) = h {
                    kept = kept + h.clone();
                }
                *p = Param::initialized(w.id, kept.autodiff().require_grad());
            }
        }
        let stats = EpochStats {
            epoch,
            loss: loss_sum / data.len() as f64,
            accuracy: correct as f64 / (data.len() * data.per_sample()) as f64,
        };
        if !stats.loss.is_finite() {
            return Err(Error::Diverged {
                stage: mode.stage(),
                epoch,
                loss: stats.loss,
            });
        }
        on_epoch(&stats);
        history.push(stats);
    }
    model.store(net)?;
    Ok(history)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Survivors count their squared gradients; one that saw none a millionth of the live
    /// mean; the bias its own mean, or the survivors' without one.
    #[test]
    fn gradient_weights_floor_the_unseen_and_average_the_bias() {
        let squares = [4.0, 0.0, 2.0, 9.0, 0.0, 6.0];
        let (w, b) = gradient_weights(&squares, &[0, 1, 2, 5], Some(&[1.0, 3.0]));
        assert_eq!(w, vec![4.0, 4e-6, 2.0, 6.0]);
        assert_eq!(b, 2.0);
        let (_, b) = gradient_weights(&squares, &[0, 2], None);
        assert_eq!(b, 3.0);
        let (w, b) = gradient_weights(&[0.0; 3], &[0, 2], Some(&[]));
        assert_eq!((w, b), (vec![1e-6, 1e-6], 1.0));
    }

    /// Squared gradients add up, step by step, per matrix and bias.
    #[test]
    fn squared_gradients_sum_each_step() {
        let d = Device::flex();
        let mut sq = SquaredGradients::default();
        let g = Tensor::<2>::from_data(TensorData::new(vec![1.0f32, -2.0], [1, 2]), &d);
        sq.add_weight(1, &g);
        sq.add_weight(1, &g.clone().mul_scalar(2.0));
        sq.add_bias(
            1,
            &Tensor::<1>::from_data(TensorData::new(vec![3.0f32], [1]), &d),
        );
        let (w, b) = sq.values(1).unwrap();
        assert_eq!(w, Some(vec![5.0, 20.0]));
        assert_eq!(b, Some(vec![9.0]));
        assert_eq!(sq.values(0).unwrap(), (None, None));
    }
}
