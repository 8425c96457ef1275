//! Centroid fine-tuning (Deep Compression, section 3.3): with every weight's cluster fixed,
//! the gradient of a shared value is the sum of the gradients of the weights that share it,
//! and each shared value moves by minus the learning rate times that sum (plain SGD).
//!
//! Code 0 is the pruned weight: its value stays exactly zero. A bias folded into the layer's
//! codebook (the EIE bias column) shares values with the weights, so its gradients join the
//! sums; a bias kept apart stays as it is.

use burn::tensor::Device;
use eie_dataset::Dataset;

use crate::error::{Error, Result};
use crate::model::{Model, burn_layout, to_vec};
use crate::samples::Samples;
use crate::train::{EpochStats, Order, batch_gradients, check_common};
use eie_model::Network;

/// One layer's weight sharing: a code per weight and per folded bias value, and the value of
/// every code.
#[derive(Debug, Clone, PartialEq)]
pub struct SharedLayer {
    /// A code per weight, `[out, in]` row-major like the weights; 0 is a pruned weight.
    pub codes: Vec<u8>,
    /// A code per bias value when the bias shares the codebook; `None`: the bias is kept
    /// apart (and is not trained here).
    pub bias_codes: Option<Vec<u8>>,
    /// The value of each code; `values[0]` is 0.
    pub values: Vec<f32>,
}

/// How to fine-tune the shared values.
#[derive(Debug, Clone, PartialEq)]
pub struct CentroidConfig {
    /// Passes over the data.
    pub epochs: usize,
    /// Samples per step.
    pub batch_size: usize,
    /// SGD's learning rate on the grouped gradients.
    pub lr: f64,
    /// Seed of the sample order.
    pub seed: u64,
}

impl CentroidConfig {
    /// Checks the settings.
    pub fn validate(&self) -> Result<()> {
        check_common(self.batch_size, self.lr)
    }
}

/// The sum of `grads` per code: `sums[c] = sum of grads[i] over i with codes[i] == c`, in
/// f64, in index order.
pub fn grouped_gradients(codes: &[u8], grads: &[f32], k: usize) -> Vec<f64> {
    let mut sums = vec![0f64; k];
    for (&c, &g) in codes.iter().zip(grads) {
        sums[c as usize] += g as f64;
    }
    sums
}

/// One SGD step on the shared values: `values[c] -= lr * sums[c]`, for every code from
/// `first` on (1 to hold code 0 at zero, 0 to move every value).
pub fn centroid_step(values: &mut [f32], sums: &[f64], lr: f64, first: usize) {
    for (v, s) in values.iter_mut().zip(sums).skip(first) {
        *v = (*v as f64 - lr * s) as f32;
    }
}

/// Checks that `shared` describes `net`'s layers.
pub fn check_shared(net: &Network, shared: &[SharedLayer]) -> Result<()> {
    if shared.len() != net.layers().len() {
        return Err(Error::Shared {
            layer: "(all)".into(),
            reason: format!(
                "{} shared layers for a network of {}",
                shared.len(),
                net.layers().len()
            ),
        });
    }
    for (l, s) in net.layers().iter().zip(shared) {
        let bad = |reason: String| {
            Err(Error::Shared {
                layer: l.name.clone(),
                reason,
            })
        };
        if s.codes.len() != l.weight.len() {
            return bad(format!(
                "{} codes for {} weights",
                s.codes.len(),
                l.weight.len()
            ));
        }
        if s.values.first() != Some(&0.0) {
            return bad("code 0 must be the value 0".into());
        }
        if s.values.iter().any(|v| !v.is_finite()) {
            return bad("a shared value is not finite".into());
        }
        let k = s.values.len();
        let codes = s.codes.iter().chain(s.bias_codes.iter().flatten());
        if let Some(&c) = codes.clone().find(|&&c| c as usize >= k) {
            return bad(format!("code {c} is outside its {k} values"));
        }
        if let Some(bc) = &s.bias_codes {
            match &l.bias {
                Some(b) if b.len() == bc.len() => {}
                _ => {
                    return bad(format!(
                        "{} bias codes, but the layer has no bias of that length",
                        bc.len()
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Writes the shared values into `net`: every weight (and folded bias) becomes its code's
/// value.
pub fn apply_shared(net: &mut Network, shared: &[SharedLayer]) -> Result<()> {
    check_shared(net, shared)?;
    for (l, s) in net.layers_mut().zip(shared) {
        for (w, &c) in l.weight.iter_mut().zip(&s.codes) {
            *w = s.values[c as usize];
        }
        if let (Some(b), Some(bc)) = (l.bias, &s.bias_codes) {
            for (v, &c) in b.iter_mut().zip(bc) {
                *v = s.values[c as usize];
            }
        }
    }
    Ok(())
}

/// Fine-tunes the shared values of `shared` on `data` (codes fixed, code 0 held at zero),
/// then writes them into `net`. `on_epoch` sees each epoch's figures as it ends.
pub fn fine_tune_centroids(
    net: &mut Network,
    shared: &mut [SharedLayer],
    data: &Dataset,
    cfg: &CentroidConfig,
    on_epoch: &mut dyn FnMut(&EpochStats),
) -> Result<Vec<EpochStats>> {
    fine_tune_centroids_on(net, shared, Samples::Dataset(data), cfg, on_epoch)
}

/// [`fine_tune_centroids`] on any [`Samples`] (a token model's windows of text too).
pub fn fine_tune_centroids_on(
    net: &mut Network,
    shared: &mut [SharedLayer],
    data: Samples,
    cfg: &CentroidConfig,
    on_epoch: &mut dyn FnMut(&EpochStats),
) -> Result<Vec<EpochStats>> {
    cfg.validate()?;
    data.check(net)?;
    apply_shared(net, shared)?;
    let device = Device::flex().autodiff();
    // Codes in burn's layout, to group burn's gradients.
    let codes_t: Vec<Vec<u8>> = net
        .layers()
        .iter()
        .zip(shared.iter())
        .map(|(l, s)| burn_layout(l, &s.codes))
        .collect();
    let mut order = Order::new(data.len(), cfg.seed);
    let mut history = Vec::new();
    for epoch in 1..=cfg.epochs {
        let (mut loss_sum, mut correct) = (0f64, 0usize);
        for idx in order.next_epoch().chunks(cfg.batch_size) {
            let model = Model::new(net, &device);
            let (value, grads, right) = batch_gradients(&model, net, data, idx, &device)?;
            loss_sum += value as f64 * idx.len() as f64;
            correct += right;
            for (((w, b), s), codes) in model
                .weights
                .iter()
                .zip(&model.biases)
                .zip(shared.iter_mut())
                .zip(&codes_t)
            {
                let k = s.values.len();
                let g = grads.get::<2>(w.id).map(to_vec).transpose()?;
                let mut sums = match g {
                    Some(g) => grouped_gradients(codes, &g, k),
                    None => vec![0.0; k],
                };
                if let (Some(bc), Some(b)) = (&s.bias_codes, b)
                    && let Some(gb) = grads.get::<1>(b.id).map(to_vec).transpose()?
                {
                    for (sum, extra) in sums.iter_mut().zip(grouped_gradients(bc, &gb, k)) {
                        *sum += extra;
                    }
                }
                centroid_step(&mut s.values, &sums, cfg.lr, 1);
                if s.values.iter().any(|v| !v.is_finite()) {
                    return Err(Error::Diverged {
                        stage: "centroid fine-tuning",
                        epoch,
                        loss: f64::NAN,
                    });
                }
            }
            apply_shared(net, shared)?;
        }
        let stats = EpochStats {
            epoch,
            loss: loss_sum / data.len() as f64,
            accuracy: correct as f64 / (data.len() * data.per_sample()) as f64,
        };
        if !stats.loss.is_finite()
            || shared
                .iter()
                .any(|s| s.values.iter().any(|v| !v.is_finite()))
        {
            return Err(Error::Diverged {
                stage: "centroid fine-tuning",
                epoch,
                loss: stats.loss,
            });
        }
        on_epoch(&stats);
        history.push(stats);
    }
    Ok(history)
}
