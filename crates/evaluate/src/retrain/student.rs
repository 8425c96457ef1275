//! `compress --retrain` of a transformer in burn (a decoder on the next-token loss or its
//! teacher's distribution, an encoder on its teacher's sentence embeddings): the planned
//! matrices are pruned in rounds (the pipeline's rules), each round followed by masked
//! fine-tuning (Adam on their survivors and their folded biases; pruned weights held at
//! exactly zero); then shared (the pipeline's clustering, a folded bias in the codebook) and
//! their shared values fine-tuned (codes fixed, each value moved by SGD on the sum of its
//! weights' gradients). Everything the images do not hold (embeddings, norms, layers left in
//! float) stays as the checkpoint has it, since that is what every later stage reads from the
//! folder: only the planned matrices and their folded biases train.

use burn::module::{Param, ParamId};
use burn::optim::AdamConfig;
use burn::optim::GradientsParams;
use burn::optim::decay::WeightDecayConfig;
use burn::tensor::{Device, Tensor, TensorData};
use eie_checkpoint::round_to;
use eie_pipeline::{
    Calibration, CodebookWeight, LayerPlan, Observer, Retrained, Sensitivity, prune_retrained,
    representable, share_retrained,
};
use eie_prune::PruneReport;

use super::{RetrainSettings, calibrated, decided_layer, round_rules};
use crate::decoder::NamedTensor;
use crate::error::{Error, Result};
use crate::halves::Streamed;
use crate::model::{to_vec, transpose};
use crate::share::{CentroidConfig, centroid_step, grouped_gradients};
use crate::train::{Order, SquaredGradients, TrainConfig, gradient_weights};

/// A transformer retrained in burn: how its values become a module and back, and one step's
/// loss and gradients.
pub(crate) trait Student {
    /// The burn module (its matrices and forks as a token stream's models have them).
    type Model: Streamed;
    /// The module holding `values` on `device`.
    fn module(&self, values: &[NamedTensor], device: &Device) -> Self::Model;
    /// Its values, in the order [`Student::module`] took them.
    fn values(&self, model: &Self::Model) -> Result<Vec<NamedTensor>>;
    /// Every parameter with its name (the values' names for those the values hold), and
    /// whether it is a matrix.
    fn params(&self, model: &Self::Model) -> Vec<(String, ParamId, bool)>;
    /// Examples (windows, sentences) a pass over the training data holds.
    fn examples(&self) -> usize;
    /// The mean loss of examples `batch` and its gradients.
    fn step(
        &self,
        model: &Self::Model,
        batch: &[usize],
        device: &Device,
    ) -> Result<(f32, GradientsParams)>;
    /// What the loss is, for the progress lines ("nats/token").
    fn unit(&self) -> &'static str;
}

/// What a retraining reads, and where it reports.
#[derive(Clone, Copy)]
pub(crate) struct Job<'a> {
    /// The planned layers, by their Hugging Face names.
    pub plans: &'a [LayerPlan],
    /// PEs, for pruning balanced across them.
    pub pes: usize,
    /// How to retrain.
    pub settings: &'a RetrainSettings,
    /// Told each epoch's progress.
    pub observer: &'a dyn Observer,
    /// Calibration statistics of the layers whose settings use them.
    pub calibration: Option<&'a Calibration>,
}

/// A stage's values, to be measured by the caller (named as the classifiers' stages are).
pub type Measure<'m> = dyn FnMut(&str, &[NamedTensor]) -> Result<()> + 'm;

/// A planned matrix among the values: its index, and its folded bias's.
#[derive(Clone, Copy)]
struct Planned {
    weight: usize,
    bias: Option<usize>,
}

/// A shared matrix: every weight's code (PyTorch's layout; 0 where pruned), the folded
/// bias's codes, and the codebook (code 0 is zero).
struct Book {
    codes: Vec<u8>,
    bias_codes: Vec<u8>,
    values: Vec<f32>,
}

/// Retrains the planned matrices of `values` as `job` says; `measure` sees every stage.
/// Returns what the pipeline packs.
pub(crate) fn retrain_student<S: Student>(
    student: &S,
    mut values: Vec<NamedTensor>,
    job: &Job,
    measure: &mut Measure,
) -> Result<Retrained> {
    let settings = job.settings;
    if !settings.share_schedule.is_empty() {
        return Err(Error::Config {
            what: "retraining",
            reason: "incremental weight sharing (share_schedule) is implemented for classifiers only; leave it out for a language model".into(),
        });
    }
    let index = planned(&values, job.plans)?;
    let before: Vec<u64> = index
        .iter()
        .map(|p| {
            values[p.weight]
                .values
                .iter()
                .filter(|&&w| w != 0.0)
                .count() as u64
        })
        .collect();
    let std0: Vec<f64> = index
        .iter()
        .map(|p| eie_prune::std(&values[p.weight].values))
        .collect();
    let rounds = settings.schedule.len();
    let mut reports: Vec<Option<PruneReport>> = vec![None; index.len()];
    // The squared gradients of the last round's last epoch, for gradient-weighted codebooks.
    let weighted = job
        .plans
        .iter()
        .any(|p| p.settings.codebook_weight == CodebookWeight::Gradient);
    let mut squares = None;
    for (r, &t) in settings.schedule.iter().enumerate() {
        let weights: Vec<&[f32]> = index.iter().map(|p| &values[p.weight].values[..]).collect();
        let rules = round_rules(&weights, job.plans, t, &std0)?;
        for (k, (at, p)) in index.iter().zip(job.plans).enumerate() {
            let stats = calibrated(job.calibration, p)?;
            let report =
                prune_retrained(p, &mut values[at.weight].values, rules[k], job.pes, stats)?;
            reports[k] = Some(report);
        }
        let round = match rounds {
            1 => String::new(),
            _ => format!(", round {}/{rounds}", r + 1),
        };
        measure(&format!("pruned{round}"), &values)?;
        if settings.fine_tune.epochs > 0 {
            let name = format!("masked fine-tuning{round}");
            let mut sq = (weighted && r + 1 == rounds).then(SquaredGradients::default);
            masked_fine_tune(student, &mut values, &index, job, &name, sq.as_mut())?;
            squares = sq;
            // As the checkpoint's dtypes hold them: the weights, and a folded bias.
            for (at, p) in index.iter().zip(job.plans) {
                let mut round = |i: usize, d| {
                    values[i]
                        .values
                        .iter_mut()
                        .for_each(|w| *w = round_to(d, *w));
                };
                round(at.weight, p.dtype);
                if let (Some(b), Some(bias)) = (at.bias, &p.bias) {
                    round(b, bias.dtype);
                }
            }
            measure(&name, &values)?;
        }
    }
    // Sharing: each matrix's survivors and folded bias clustered by the pipeline's own rule.
    let mut shares = Vec::with_capacity(index.len());
    let mut books: Vec<Book> = Vec::with_capacity(index.len());
    for (k, (at, p)) in index.iter().zip(job.plans).enumerate() {
        let w = &values[at.weight].values;
        let positions: Vec<u64> = (0..w.len() as u64)
            .filter(|&j| w[j as usize] != 0.0)
            .collect();
        let kept: Vec<f32> = positions.iter().map(|&j| w[j as usize]).collect();
        let bias: Option<Vec<f32>> = at.bias.map(|b| values[b].values.clone());
        let gradients = match &squares {
            Some(sq) if p.settings.codebook_weight == CodebookWeight::Gradient => {
                let (w, b) = sq.values(k)?;
                let (o, n) = (p.rows, p.inputs);
                w.map(|w| gradient_weights(&transpose(&w, n, o), &positions, b.as_deref()))
            }
            _ => None,
        };
        let sh = share_retrained(
            p,
            &positions,
            &kept,
            bias.as_deref().unwrap_or(&[]),
            Sensitivity {
                stats: calibrated(job.calibration, p)?,
                gradients: gradients.as_ref().map(|(w, b)| (w.as_slice(), *b)),
            },
        )?;
        let mut codes = vec![0u8; w.len()];
        for (&j, &c) in positions.iter().zip(&sh.codes) {
            codes[j as usize] = c;
        }
        let book: Vec<f32> = std::iter::once(0.0)
            .chain(sh.values.iter().copied())
            .collect();
        books.push(Book {
            codes,
            bias_codes: sh.bias_codes.clone(),
            values: book,
        });
        shares.push((positions, kept, sh));
    }
    apply(&mut values, &index, &books);
    measure("weight-shared", &values)?;
    if settings.centroids.epochs > 0 {
        fine_tune_centroids(student, &mut values, &index, &mut books, job)?;
        for (book, p) in books.iter_mut().zip(job.plans) {
            for v in book.values.iter_mut() {
                *v = representable(&p.name, *v, p.dtype, p.bias.as_ref().map(|b| b.dtype))?;
            }
        }
        apply(&mut values, &index, &books);
        measure("centroid fine-tuning", &values)?;
    }
    let mut decided = Vec::with_capacity(index.len());
    for (((((positions, kept, sh), book), report), before), at) in shares
        .into_iter()
        .zip(books)
        .zip(reports)
        .zip(before)
        .zip(&index)
    {
        let shared = sh.renumbered(&book.values);
        let Some(prune) = report else {
            return Err(Error::Config {
                what: "retraining",
                reason: "a schedule of no pruning round".into(),
            });
        };
        let bias = at.bias.map(|b| values[b].values.clone());
        decided.push(decided_layer(positions, kept, bias, prune, before, shared));
    }
    Ok(Retrained {
        decided,
        overrides: Default::default(),
    })
}

/// Every planned matrix (and folded bias) takes its code's value.
fn apply(values: &mut [NamedTensor], index: &[Planned], books: &[Book]) {
    for (at, book) in index.iter().zip(books) {
        for (w, &c) in values[at.weight].values.iter_mut().zip(&book.codes) {
            *w = book.values[c as usize];
        }
        if let Some(b) = at.bias {
            for (v, &c) in values[b].values.iter_mut().zip(&book.bias_codes) {
                *v = book.values[c as usize];
            }
        }
    }
}

/// Where each plan's matrix (and folded bias) is among `values`, checked: read as stored, of
/// its shape.
fn planned(values: &[NamedTensor], plans: &[LayerPlan]) -> Result<Vec<Planned>> {
    plans
        .iter()
        .map(|p| {
            let bad = |reason: String| Error::Layer {
                layer: p.name.clone(),
                reason,
            };
            let weight = values
                .iter()
                .position(|t| t.name == p.name)
                .ok_or_else(|| bad("is not a matrix of the model retraining trains".into()))?;
            if p.transposed || values[weight].shape != [p.rows, p.inputs] {
                return Err(bad(format!(
                    "planned as {} x {}{}, but the model's matrix is {:?}",
                    p.rows,
                    p.inputs,
                    if p.transposed { " transposed" } else { "" },
                    values[weight].shape
                )));
            }
            let bias = match &p.bias {
                None => None,
                Some(b) => {
                    let i = values.iter().position(|t| t.name == b.name);
                    match i {
                        Some(i) if values[i].shape == [p.rows] => Some(i),
                        _ => {
                            return Err(bad(format!(
                                "its bias {} of {} values is not one the model retraining trains",
                                b.name, p.rows
                            )));
                        }
                    }
                }
            };
            Ok(Planned { weight, bias })
        })
        .collect()
}

/// The parameter ids of the planned matrices and of their folded biases, by their index.
fn planned_ids<S: Student>(
    student: &S,
    model: &S::Model,
    values: &[NamedTensor],
    index: &[Planned],
) -> Vec<(ParamId, Option<ParamId>)> {
    let params = student.params(model);
    let id = |i: usize| {
        params
            .iter()
            .find(|(n, _, _)| *n == values[i].name)
            .expect("a planned value is a parameter")
            .1
    };
    index
        .iter()
        .map(|at| (id(at.weight), at.bias.map(id)))
        .collect()
}

/// Masked fine-tuning of the planned matrices and their folded biases: `epochs` passes over
/// the training examples in a seeded order, Adam, pruned weights and everything unplanned
/// held.
fn masked_fine_tune<S: Student>(
    student: &S,
    values: &mut Vec<NamedTensor>,
    index: &[Planned],
    job: &Job,
    name: &str,
    mut squares: Option<&mut SquaredGradients>,
) -> Result<()> {
    let cfg: &TrainConfig = &job.settings.fine_tune;
    cfg.validate()?;
    let device = Device::flex().autodiff();
    let plain = Device::flex();
    let mut model = student.module(values, &device);
    let ids = planned_ids(student, &model, values, index);
    // 1 trains a weight, 0 holds it at zero; in burn's [in, out] layout.
    let masks: Vec<Tensor<2>> = index
        .iter()
        .map(|at| {
            let v = &values[at.weight];
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
    let mut order = Order::new(student.examples(), cfg.seed);
    for epoch in 1..=cfg.epochs {
        let (mut sum, mut count) = (0f64, 0usize);
        for batch in order.next_epoch().chunks(cfg.batch_size) {
            let (value, mut grads) = student.step(&model, batch, &device)?;
            sum += value as f64 * batch.len() as f64;
            count += batch.len();
            // The last epoch's squared gradients, when asked for.
            let mut gather = squares.as_deref_mut().filter(|_| epoch == cfg.epochs);
            for (_, id, matrix) in student.params(&model) {
                let weight = ids.iter().position(|p| p.0 == id);
                let bias = ids.iter().position(|p| p.1 == Some(id));
                match (weight, bias, matrix) {
                    (Some(k), _, _) => {
                        if let Some(g) = grads.remove::<2>(id) {
                            let g = g * masks[k].clone();
                            if let Some(sq) = gather.as_deref_mut() {
                                sq.add_weight(k, &g);
                            }
                            grads.register(id, g);
                        }
                    }
                    (None, Some(k), _) => {
                        if let (Some(sq), Some(g)) = (gather.as_deref_mut(), grads.get::<1>(id)) {
                            sq.add_bias(k, &g);
                        }
                    }
                    (None, None, true) => drop(grads.remove::<2>(id)),
                    (None, None, false) => drop(grads.remove::<1>(id)),
                }
            }
            model = optim.step(cfg.lr, model, grads);
            for p in model.matrices_mut() {
                if let Some(k) = ids.iter().position(|id| id.0 == p.id) {
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
            "  {name} epoch {epoch}: loss {loss:.4} {}",
            student.unit()
        ));
    }
    *values = student.values(&model)?;
    Ok(())
}

/// Centroid fine-tuning: codes fixed, each shared value moved by SGD on the sum of its
/// weights' (and folded bias values') gradients (code 0, the pruned weights, stays 0).
fn fine_tune_centroids<S: Student>(
    student: &S,
    values: &mut [NamedTensor],
    index: &[Planned],
    books: &mut [Book],
    job: &Job,
) -> Result<()> {
    let cfg: &CentroidConfig = &job.settings.centroids;
    cfg.validate()?;
    let device = Device::flex().autodiff();
    let mut order = Order::new(student.examples(), cfg.seed);
    for epoch in 1..=cfg.epochs {
        let (mut sum, mut count) = (0f64, 0usize);
        for batch in order.next_epoch().chunks(cfg.batch_size) {
            let model = student.module(values, &device);
            let ids = planned_ids(student, &model, values, index);
            let (value, grads) = student.step(&model, batch, &device)?;
            sum += value as f64 * batch.len() as f64;
            count += batch.len();
            for ((at, (w_id, b_id)), book) in index.iter().zip(&ids).zip(books.iter_mut()) {
                let Some(g) = grads
                    .get::<2>(*w_id)
                    .map(|g| to_vec(g.inner()))
                    .transpose()?
                else {
                    continue;
                };
                let (o, n) = (values[at.weight].shape[0], values[at.weight].shape[1]);
                let g = transpose(&g, n, o);
                let mut sums = grouped_gradients(&book.codes, &g, book.values.len());
                if let Some(b) = b_id.and_then(|id| grads.get::<1>(id)) {
                    let g = to_vec(b.inner())?;
                    let more = grouped_gradients(&book.bias_codes, &g, book.values.len());
                    sums.iter_mut().zip(more).for_each(|(s, m)| *s += m);
                }
                centroid_step(&mut book.values, &sums, cfg.lr, 1);
                if book.values.iter().any(|v| !v.is_finite()) {
                    return Err(Error::Diverged {
                        stage: "centroid fine-tuning",
                        epoch,
                        loss: value as f64,
                    });
                }
            }
            apply(values, index, books);
        }
        let loss = sum / count.max(1) as f64;
        job.observer.note(&format!(
            "  centroid fine-tuning epoch {epoch}: loss {loss:.4} {}",
            student.unit()
        ));
    }
    Ok(())
}
