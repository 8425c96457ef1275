//! `compress --retrain` of a decoder: Deep Compression's retraining on the next-token loss,
//! or with `distill` on the cross-entropy to the original decoder's next-token distribution.
//! The planned matrices are pruned in rounds (the pipeline's rules), each round followed by
//! masked fine-tuning (Adam on their survivors; pruned weights held at exactly zero); then
//! shared (the pipeline's clustering) and their shared values fine-tuned (codes fixed, each
//! value moved by SGD on the sum of its weights' gradients). Everything the images do not
//! hold (embedding lookup, norms, layers left in float) stays as the checkpoint has it, since
//! that is what every later stage reads from the folder: only the planned matrices train.

use burn::module::{Param, ParamId};
use burn::optim::AdamConfig;
use burn::optim::decay::WeightDecayConfig;
use burn::tensor::{Device, Tensor, TensorData};
use eie_checkpoint::round_to;
use eie_pipeline::{LayerPlan, Observer, Retrained, prune_matrix, representable, share};
use eie_prune::PruneReport;

use super::model::{Decoder, NamedTensor};
use super::shape::DecoderShape;
use super::train::{check_stream, step_gradients};
use crate::error::{Error, Result};
use crate::model::{to_vec, transpose};
use crate::retrain::{RetrainSettings, decided_layer, round_rules};
use crate::share::{CentroidConfig, centroid_step, grouped_gradients};
use crate::train::{Order, TrainConfig};

/// What a decoder's retraining reads, and where it reports.
#[derive(Clone, Copy)]
pub struct DecoderRetraining<'a> {
    /// The decoder's shape, untied (a tied head is retrained as a matrix of its own; the
    /// embedding lookup keeps the checkpoint's values).
    pub shape: &'a DecoderShape,
    /// The planned layers, by their Hugging Face names.
    pub plans: &'a [LayerPlan],
    /// PEs, for pruning balanced across them.
    pub pes: usize,
    /// The training text's token ids.
    pub tokens: &'a [u32],
    /// How to retrain.
    pub settings: &'a RetrainSettings,
    /// Told each epoch's progress.
    pub observer: &'a dyn Observer,
}

/// A shared matrix: every weight's code (PyTorch's layout; 0 where pruned) and the codebook
/// (code 0 is zero).
type Book = (Vec<u8>, Vec<f32>);

/// A stage's values, to be measured by the caller (named as the classifiers' stages are).
pub type Measure<'m> = dyn FnMut(&str, &[NamedTensor]) -> Result<()> + 'm;

/// Retrains the planned matrices of `values` (the decoder's tensors in [`DecoderShape`]'s
/// order, untied) as `job` says; `measure` sees every stage. Returns what the pipeline packs.
pub fn retrain_decoder(
    mut values: Vec<NamedTensor>,
    job: &DecoderRetraining,
    measure: &mut Measure,
) -> Result<Retrained> {
    let settings = job.settings;
    if !settings.share_schedule.is_empty() {
        return Err(Error::Config {
            what: "retraining",
            reason: "incremental weight sharing (share_schedule) is implemented for classifiers only; leave it out for a language model".into(),
        });
    }
    let vocab = values.first().map_or(0, |e| e.shape[0]);
    check_stream(vocab, job.shape.context, job.tokens, "training text")?;
    let index = planned(&values, job.plans)?;
    // Distillation's teacher: the decoder as it came, before any pruning.
    let teacher = settings
        .distill
        .then(|| Decoder::new(job.shape, &values, &Device::flex()));
    let teacher = teacher.as_ref();
    let before: Vec<u64> = index
        .iter()
        .map(|&i| values[i].values.iter().filter(|&&w| w != 0.0).count() as u64)
        .collect();
    let std0: Vec<f64> = index
        .iter()
        .map(|&i| eie_prune::std(&values[i].values))
        .collect();
    let rounds = settings.schedule.len();
    let mut reports: Vec<Option<PruneReport>> = vec![None; index.len()];
    for (r, &t) in settings.schedule.iter().enumerate() {
        let weights: Vec<&[f32]> = index.iter().map(|&i| &values[i].values[..]).collect();
        let rules = round_rules(&weights, job.plans, t, &std0)?;
        for (k, (&i, p)) in index.iter().zip(job.plans).enumerate() {
            let (rows, cols) = (p.rows, p.inputs);
            let report = prune_matrix(
                &mut values[i].values,
                rows,
                cols,
                rules[k],
                &p.settings,
                job.pes,
            )
            .map_err(|error| eie_pipeline::Error::Prune {
                layer: p.name.clone(),
                error,
            })?;
            reports[k] = Some(report);
        }
        let round = match rounds {
            1 => String::new(),
            _ => format!(", round {}/{rounds}", r + 1),
        };
        measure(&format!("pruned{round}"), &values)?;
        if settings.fine_tune.epochs > 0 {
            let name = format!("masked fine-tuning{round}");
            masked_fine_tune(&mut values, &index, job, teacher, &name)?;
            for (&i, p) in index.iter().zip(job.plans) {
                values[i]
                    .values
                    .iter_mut()
                    .for_each(|w| *w = round_to(p.dtype, *w));
            }
            measure(&name, &values)?;
        }
    }
    // Sharing: each matrix's survivors clustered by the pipeline's own rule.
    let mut shares = Vec::with_capacity(index.len());
    let mut books: Vec<Book> = Vec::with_capacity(index.len());
    for (&i, p) in index.iter().zip(job.plans) {
        let w = &values[i].values;
        let positions: Vec<u64> = (0..w.len() as u64)
            .filter(|&j| w[j as usize] != 0.0)
            .collect();
        let kept: Vec<f32> = positions.iter().map(|&j| w[j as usize]).collect();
        let sh = share(&p.name, &kept, &[], &p.settings, p.dtype, None)?;
        let mut codes = vec![0u8; w.len()];
        for (&j, &c) in positions.iter().zip(&sh.codes) {
            codes[j as usize] = c;
        }
        let book: Vec<f32> = std::iter::once(0.0)
            .chain(sh.values.iter().copied())
            .collect();
        shares.push((positions, kept, sh));
        books.push((codes, book));
    }
    let apply = |values: &mut [NamedTensor], books: &[Book]| {
        for (&i, (codes, book)) in index.iter().zip(books) {
            for (w, &c) in values[i].values.iter_mut().zip(codes) {
                *w = book[c as usize];
            }
        }
    };
    apply(&mut values, &books);
    measure("weight-shared", &values)?;
    if settings.centroids.epochs > 0 {
        fine_tune_centroids(&mut values, &index, &mut books, job, teacher)?;
        for ((_, book), p) in books.iter_mut().zip(job.plans) {
            for v in book.iter_mut() {
                *v = representable(&p.name, *v, p.dtype, None)?;
            }
        }
        apply(&mut values, &books);
        measure("centroid fine-tuning", &values)?;
    }
    let mut decided = Vec::with_capacity(index.len());
    for ((((positions, kept, sh), (_, book)), report), before) in
        shares.into_iter().zip(books).zip(reports).zip(before)
    {
        let shared = sh.renumbered(&book);
        let Some(prune) = report else {
            return Err(Error::Config {
                what: "retraining",
                reason: "a schedule of no pruning round".into(),
            });
        };
        decided.push(decided_layer(positions, kept, None, prune, before, shared));
    }
    Ok(Retrained {
        decided,
        overrides: Default::default(),
    })
}

/// Where each plan's matrix is among `values`, checked: read as stored, of its shape.
fn planned(values: &[NamedTensor], plans: &[LayerPlan]) -> Result<Vec<usize>> {
    plans
        .iter()
        .map(|p| {
            let bad = |reason: String| Error::Layer {
                layer: p.name.clone(),
                reason,
            };
            let i = values
                .iter()
                .position(|t| t.name == p.name)
                .ok_or_else(|| bad("is not a matrix of the decoder retraining trains".into()))?;
            if p.transposed || p.bias.is_some() || values[i].shape != [p.rows, p.inputs] {
                return Err(bad(format!(
                    "planned as {} x {}{}, but the decoder's matrix is {:?} without a bias",
                    p.rows,
                    p.inputs,
                    if p.transposed { " transposed" } else { "" },
                    values[i].shape
                )));
            }
            Ok(i)
        })
        .collect()
}

/// The window starts of a token stream: windows of `context + 1` tokens at a stride of the
/// context.
fn window_starts(tokens: usize, context: usize) -> Vec<usize> {
    (0..(tokens - 1) / context).map(|w| w * context).collect()
}

/// The matrices' parameter ids by their index among `values` (only the planned ones train).
fn planned_ids(model: &Decoder, values: &[NamedTensor], index: &[usize]) -> Vec<ParamId> {
    let ids: Vec<(String, ParamId)> = model
        .matrices()
        .into_iter()
        .map(|(n, p)| (n, p.id))
        .collect();
    index
        .iter()
        .map(|&i| {
            ids.iter()
                .find(|(n, _)| *n == values[i].name)
                .expect("a planned matrix is a decoder matrix")
                .1
        })
        .collect()
}

/// Masked fine-tuning of the planned matrices on the next-token loss: `epochs` passes over
/// the training windows in a seeded order, Adam, pruned weights and everything unplanned
/// held.
fn masked_fine_tune(
    values: &mut Vec<NamedTensor>,
    index: &[usize],
    job: &DecoderRetraining,
    teacher: Option<&Decoder>,
    name: &str,
) -> Result<()> {
    let cfg: &TrainConfig = &job.settings.fine_tune;
    cfg.validate()?;
    let (shape, t) = (job.shape, job.shape.context);
    let device = Device::flex().autodiff();
    let plain = Device::flex();
    let mut model = Decoder::new(shape, values, &device);
    let ids = planned_ids(&model, values, index);
    // 1 trains a weight, 0 holds it at zero; in burn's [in, out] layout.
    let masks: Vec<Tensor<2>> = index
        .iter()
        .map(|&i| {
            let v = &values[i];
            let (o, n) = (v.shape[0], v.shape[1]);
            let m: Vec<f32> = v.values.iter().map(|&w| (w != 0.0) as u8 as f32).collect();
            Tensor::<2>::from_data(TensorData::new(transpose(&m, o, n), [n, o]), &plain)
        })
        .collect();
    let mut adam = AdamConfig::new().with_epsilon(1e-8);
    if cfg.weight_decay > 0.0 {
        adam = adam.with_weight_decay(Some(WeightDecayConfig::new(cfg.weight_decay as f32)));
    }
    let mut optim = adam.init();
    let starts = window_starts(job.tokens.len(), t);
    let mut order = Order::new(starts.len(), cfg.seed);
    for epoch in 1..=cfg.epochs {
        let (mut sum, mut count) = (0f64, 0usize);
        for chunk in order.next_epoch().chunks(cfg.batch_size) {
            let s: Vec<usize> = chunk.iter().map(|&w| starts[w]).collect();
            let (value, mut grads) =
                step_gradients(&model, shape, job.tokens, &s, teacher, &device)?;
            sum += value as f64 * s.len() as f64;
            count += s.len();
            for (id, matrix) in model.ids() {
                match (ids.iter().position(|p| *p == id), matrix) {
                    (Some(k), _) => {
                        if let Some(g) = grads.remove::<2>(id) {
                            grads.register(id, g * masks[k].clone());
                        }
                    }
                    (None, true) => drop(grads.remove::<2>(id)),
                    (None, false) => drop(grads.remove::<1>(id)),
                }
            }
            model = optim.step(cfg.lr, model, grads);
            for p in model.matrices_mut() {
                if let Some(k) = ids.iter().position(|id| *id == p.id) {
                    let w = p.clone();
                    let kept = w.val().inner() * masks[k].clone();
                    *p = Param::initialized(w.id, kept.autodiff().require_grad());
                }
            }
        }
        let loss = sum / count.max(1) as f64;
        if !loss.is_finite() {
            return Err(Error::Diverged {
                stage: "masked fine-tuning",
                epoch,
                loss,
            });
        }
        job.observer.note(&format!(
            "  {name} epoch {epoch}: loss {loss:.4} nats/token"
        ));
    }
    *values = model.tensors(shape)?;
    Ok(())
}

/// Centroid fine-tuning: codes fixed, each shared value moved by SGD on the sum of its
/// weights' gradients (code 0, the pruned weights, stays 0).
fn fine_tune_centroids(
    values: &mut [NamedTensor],
    index: &[usize],
    books: &mut [Book],
    job: &DecoderRetraining,
    teacher: Option<&Decoder>,
) -> Result<()> {
    let cfg: &CentroidConfig = &job.settings.centroids;
    cfg.validate()?;
    let (shape, t) = (job.shape, job.shape.context);
    let device = Device::flex().autodiff();
    let starts = window_starts(job.tokens.len(), t);
    let mut order = Order::new(starts.len(), cfg.seed);
    for epoch in 1..=cfg.epochs {
        let (mut sum, mut count) = (0f64, 0usize);
        for chunk in order.next_epoch().chunks(cfg.batch_size) {
            let model = Decoder::new(shape, values, &device);
            let ids = planned_ids(&model, values, index);
            let s: Vec<usize> = chunk.iter().map(|&w| starts[w]).collect();
            let (value, grads) = step_gradients(&model, shape, job.tokens, &s, teacher, &device)?;
            sum += value as f64 * s.len() as f64;
            count += s.len();
            for ((&i, id), (codes, book)) in index.iter().zip(&ids).zip(books.iter_mut()) {
                let Some(g) = grads.get::<2>(*id).map(|g| to_vec(g.inner())).transpose()? else {
                    continue;
                };
                let (o, n) = (values[i].shape[0], values[i].shape[1]);
                let g = transpose(&g, n, o);
                let sums = grouped_gradients(codes, &g, book.len());
                centroid_step(book, &sums, cfg.lr, 1);
                if book.iter().any(|v| !v.is_finite()) {
                    return Err(Error::Diverged {
                        stage: "centroid fine-tuning",
                        epoch,
                        loss: value as f64,
                    });
                }
                for (w, &c) in values[i].values.iter_mut().zip(codes.iter()) {
                    *w = book[c as usize];
                }
            }
        }
        let loss = sum / count.max(1) as f64;
        job.observer.note(&format!(
            "  centroid fine-tuning epoch {epoch}: loss {loss:.4} nats/token"
        ));
    }
    Ok(())
}
