//! The retraining run itself: pruning rounds with masked fine-tuning, weight sharing (at
//! once or incremental), centroid fine-tuning, and the decided layers handed to the
//! pipeline.

use std::collections::HashMap;

use eie_checkpoint::{Header, bias_name, round_to};
use eie_dataset::Dataset;
use eie_model::Network;
use eie_pipeline::{
    Calibration, Codebook, CodebookWeight, Decided, LayerPlan, Observer, Pruning, Retrained,
    Sensitivity, Shared, assign, codebook_retrained, prune_retrained, representable,
    share_retrained,
};
use eie_prune::{Global, PruneReport, Rule};

use super::settings::RetrainSettings;
use crate::error::{Error, Result};
use crate::model::pytorch_layout;
use crate::samples::Samples;
use crate::share::{SharedLayer, apply_shared, fine_tune_centroids_on};
use crate::stages::StageAccuracy;
use crate::train::{EpochStats, Held, Mode, SquaredGradients, gradient_weights, train_samples};

/// The per-layer rule of one round at progress `t` of the schedule, for each planned
/// matrix's `weights`. A threshold rule keeps its original standard deviation `std0` (of the
/// trained weights) in every round: the std of weights already pruned would shrink round by
/// round.
pub(crate) fn round_rules(
    weights: &[&[f32]],
    plans: &[LayerPlan],
    t: f64,
    std0: &[f64],
) -> Result<Vec<Rule>> {
    let global: Option<f64> = plans.iter().find_map(|p| match p.settings.pruning {
        Pruning::Global(d) => Some(d),
        _ => None,
    });
    let prune_err = |e: eie_prune::Error| Error::Config {
        what: "pruning",
        reason: e.to_string(),
    };
    if let Some(d) = global {
        let total: u64 = weights.iter().map(|w| w.len() as u64).sum();
        let mut g = Global::new(d.powf(t), total).map_err(prune_err)?;
        for w in weights {
            g.first_pass(w);
        }
        for w in weights {
            g.second_pass(w);
        }
        return Ok(g.counts().into_iter().map(Rule::Count).collect());
    }
    Ok(plans
        .iter()
        .zip(weights)
        .zip(std0)
        .map(|((p, w), &std0)| match p.settings.pruning {
            Pruning::None => Rule::KeepAll,
            Pruning::Density(d) => Rule::Density(d.powf(t)),
            Pruning::ThresholdStd(s) => {
                let threshold = s * t * std0;
                Rule::Count(
                    w.iter()
                        .filter(|&&w| w != 0.0 && w.abs() as f64 >= threshold)
                        .count() as u64,
                )
            }
            Pruning::Global(_) => unreachable!("handled above"),
        })
        .collect())
}

/// Every weight and bias of `net` rounded to its tensor's dtype (retraining works in f32;
/// the outputs keep the checkpoint's dtypes). A weight that rounds to zero is pruned.
fn round_to_dtypes(net: &mut Network, plans: &[LayerPlan], header: &Header) {
    for (l, p) in net.layers_mut().zip(plans) {
        l.weight.iter_mut().for_each(|w| *w = round_to(p.dtype, *w));
        // Every bias, folded or not: the dense checkpoints and the rebuilt float stages store
        // it in its checkpoint dtype, so the accuracy measured here must be of those values.
        let dtype = match &p.bias {
            Some(b) => Some(b.dtype),
            None => bias_name(&p.name)
                .and_then(|b| header.info(&b))
                .map(|i| i.dtype),
        };
        if let (Some(b), Some(dtype)) = (l.bias, dtype) {
            b.iter_mut().for_each(|v| *v = round_to(dtype, *v));
        }
    }
}

/// A stage measured by the caller (a token model's perplexity on held-out text): the stage's
/// name, the network as it stands, the last epoch's figures of the training that made it.
pub type MeasureStage<'a> = dyn Fn(&str, &Network, Option<&EpochStats>) -> Result<()> + 'a;

/// Records the accuracy of `net` on `held` as stage `name` (nothing without `held`).
fn stage(
    stages: &mut Vec<StageAccuracy>,
    observer: &dyn Observer,
    net: &Network,
    held: Option<&Dataset>,
    name: String,
    last_epoch: Option<EpochStats>,
) -> Result<()> {
    let Some(held) = held else {
        return Ok(());
    };
    let mut s = StageAccuracy::float(name, net, held)?;
    s.train_loss = last_epoch.map(|e| e.loss);
    observer.note(&s.line());
    stages.push(s);
    Ok(())
}

/// What a retraining run reads, and where it reports.
#[derive(Clone, Copy)]
pub struct Retraining<'a> {
    /// The checkpoint's tensors (their dtypes: retrained values are rounded to them).
    pub header: &'a Header,
    /// The planned layers, in the network's order.
    pub plans: &'a [LayerPlan],
    /// PEs, for pruning balanced across them.
    pub pes: usize,
    /// The training samples (none when nothing trains: no epochs): a dataset's, or a token
    /// model's windows of text.
    pub data: Option<Samples<'a>>,
    /// The held-out samples each stage's accuracy is measured on (none: not measured).
    pub held: Option<&'a Dataset>,
    /// Measures each stage instead, when there are no held-out samples (a token model's
    /// perplexity on held-out text).
    pub measure: Option<&'a MeasureStage<'a>>,
    /// How to retrain.
    pub settings: &'a RetrainSettings,
    /// Told each epoch's progress.
    pub observer: &'a dyn Observer,
    /// Calibration statistics of the layers whose settings use them: those layers are
    /// pruned by their score, group and update, and shared by their weighted codebook.
    pub calibration: Option<&'a Calibration>,
}

/// Retrains `net` (the planned layers, as read from their checkpoint) as `job` says,
/// recording each stage's accuracy on the held-out samples in `stages`. Without training
/// epochs it only prunes and shares (the pipeline's rules, on the network in memory), and
/// needs no data.
pub fn retrain(
    mut net: Network,
    job: &Retraining,
    stages: &mut Vec<StageAccuracy>,
) -> Result<Retrained> {
    let training = job.settings.fine_tune.epochs > 0 || job.settings.centroids.epochs > 0;
    let none = Dataset::from_parts("(none)", 0, 0, None, Vec::new(), Vec::new());
    let data = match job.data {
        Some(d) => d,
        None if !training => Samples::Dataset(&none),
        None => {
            return Err(Error::Config {
                what: "retraining",
                reason: "fine-tuning needs training samples".into(),
            });
        }
    };
    let mut run = Run {
        job: *job,
        data,
        stages,
        squares: None,
    };
    let before: Vec<u64> = net
        .layers()
        .iter()
        .map(|l| l.weight.iter().filter(|&&w| w != 0.0).count() as u64)
        .collect();
    let reports = run.prune_rounds(&mut net)?;
    let books = match job.settings.share_schedule.is_empty() {
        true => None,
        false => Some(run.incremental_sharing(&mut net)?),
    };
    // The network as the final sharing finds it: what pruned.safetensors holds (with a share
    // schedule, as its last step left it), and the biases kept apart from the codebook, which
    // centroid fine-tuning leaves as they are.
    let pruned = net.clone();
    let (shares, layers) = run.share(&mut net, books.as_deref())?;
    run.fine_tune_shared(&mut net, layers, shares, &pruned, reports, before)
}

/// One layer's weight sharing: its survivors' positions and values, and what sharing made of
/// them.
type LayerShare = (Vec<u64>, Vec<f32>, Shared);

/// A retraining run under way.
struct Run<'a, 's> {
    job: Retraining<'a>,
    data: Samples<'a>,
    stages: &'s mut Vec<StageAccuracy>,
    /// The last pruning round's masked fine-tuning's squared gradients, in its last epoch
    /// (for gradient-weighted codebooks).
    squares: Option<SquaredGradients>,
}

impl Run<'_, '_> {
    /// Records the accuracy of `net` as stage `name`.
    fn stage(&mut self, net: &Network, name: String, last: Option<EpochStats>) -> Result<()> {
        if let (None, Some(measure)) = (self.job.held, self.job.measure) {
            return measure(&name, net, last.as_ref());
        }
        stage(
            self.stages,
            self.job.observer,
            net,
            self.job.held,
            name,
            last,
        )
    }

    /// Masked fine-tuning (in `mode`) as stage `name`, its epochs noted as they go, the
    /// weights rounded to their dtypes after it.
    /// With `squares`, its last epoch's squared gradients are summed there.
    fn fine_tune(
        &mut self,
        net: &mut Network,
        mode: Mode,
        name: String,
        squares: Option<&mut SquaredGradients>,
    ) -> Result<()> {
        let mut last = None;
        let observer = self.job.observer;
        train_samples(
            net,
            self.data,
            &self.job.settings.fine_tune,
            mode,
            &mut |s| {
                observer.note(&epoch_line(&name, s));
                last = Some(s.clone());
            },
            squares,
        )?;
        round_to_dtypes(net, self.job.plans, self.job.header);
        self.stage(net, name, last)
    }

    /// Step 1: prunes in rounds, each followed by masked fine-tuning. Returns each layer's
    /// last round's report.
    fn prune_rounds(&mut self, net: &mut Network) -> Result<Vec<Option<PruneReport>>> {
        let (plans, settings) = (self.job.plans, self.job.settings);
        let rounds = settings.schedule.len();
        let std0: Vec<f64> = net
            .layers()
            .iter()
            .map(|l| eie_prune::std(&l.weight))
            .collect();
        let mut reports: Vec<Option<PruneReport>> = vec![None; plans.len()];
        for (r, &t) in settings.schedule.iter().enumerate() {
            let weights: Vec<&[f32]> = net.layers().iter().map(|l| &l.weight[..]).collect();
            let rules = round_rules(&weights, plans, t, &std0)?;
            for ((l, p), (rule, report)) in net
                .layers_mut()
                .zip(plans)
                .zip(rules.into_iter().zip(reports.iter_mut()))
            {
                let stats = calibrated(self.job.calibration, p)?;
                *report = Some(prune_retrained(p, l.weight, rule, self.job.pes, stats)?);
            }
            let round = if rounds > 1 {
                format!(", round {}/{rounds}", r + 1)
            } else {
                String::new()
            };
            self.stage(net, format!("pruned{round}"), None)?;
            if settings.fine_tune.epochs > 0 {
                let weighted = plans
                    .iter()
                    .any(|p| p.settings.codebook_weight == CodebookWeight::Gradient);
                let mut sq = (weighted && r + 1 == rounds).then(SquaredGradients::default);
                let name = format!("masked fine-tuning{round}");
                self.fine_tune(net, Mode::Masked, name, sq.as_mut())?;
                if sq.is_some() {
                    self.squares = sq;
                }
            }
        }
        Ok(reports)
    }

    /// Layer `i`'s gradient weights of its survivors at `positions` (and its folded bias),
    /// when its codebook is weighted by them and they were gathered.
    fn gradients(
        &self,
        i: usize,
        l: &eie_model::Dense,
        p: &LayerPlan,
        positions: &[u64],
    ) -> Result<Option<(Vec<f64>, f64)>> {
        let Some(sq) = self
            .squares
            .as_ref()
            .filter(|_| p.settings.codebook_weight == CodebookWeight::Gradient)
        else {
            return Ok(None);
        };
        let (w, b) = sq.values(i)?;
        Ok(w.map(|w| gradient_weights(&pytorch_layout(l, &w), positions, b.as_deref())))
    }

    /// Step 2: shares every layer's survivors (at once, or with the codebooks of
    /// incremental sharing) and applies the shared values to `net`.
    fn share(
        &mut self,
        net: &mut Network,
        books: Option<&[Codebook]>,
    ) -> Result<(Vec<LayerShare>, Vec<SharedLayer>)> {
        let plans = self.job.plans;
        let mut shares = Vec::with_capacity(plans.len());
        let mut layers = Vec::with_capacity(plans.len());
        for (i, (l, p)) in net.layers().iter().zip(plans).enumerate() {
            let positions: Vec<u64> = (0..l.weight.len() as u64)
                .filter(|&i| l.weight[i as usize] != 0.0)
                .collect();
            let values: Vec<f32> = positions.iter().map(|&i| l.weight[i as usize]).collect();
            let bias: &[f32] = match (&p.bias, &l.bias) {
                (Some(_), Some(b)) => b,
                _ => &[],
            };
            let sh = match books {
                Some(books) => assign(&books[i], &values, bias),
                None => {
                    let gradients = self.gradients(i, l, p, &positions)?;
                    let by = Sensitivity {
                        stats: calibrated(self.job.calibration, p)?,
                        gradients: gradients.as_ref().map(|(w, b)| (w.as_slice(), *b)),
                    };
                    share_retrained(p, &positions, &values, bias, by)?
                }
            };
            let mut codes = vec![0u8; l.weight.len()];
            for (&pos, &c) in positions.iter().zip(&sh.codes) {
                codes[pos as usize] = c;
            }
            layers.push(SharedLayer {
                codes,
                bias_codes: p.bias.is_some().then(|| sh.bias_codes.clone()),
                values: std::iter::once(0.0)
                    .chain(sh.values.iter().copied())
                    .collect(),
            });
            shares.push((positions, values, sh));
        }
        apply_shared(net, &layers)?;
        self.stage(net, "weight-shared".into(), None)?;
        Ok((shares, layers))
    }

    /// Steps 2b and 3: fine-tunes the shared values (codes fixed), then decides every
    /// layer: the fine-tuned values made representable, zeros and duplicates folded away,
    /// ascending.
    fn fine_tune_shared(
        &mut self,
        net: &mut Network,
        mut layers: Vec<SharedLayer>,
        shares: Vec<LayerShare>,
        pruned: &Network,
        reports: Vec<Option<PruneReport>>,
        before: Vec<u64>,
    ) -> Result<Retrained> {
        let plans = self.job.plans;
        if self.job.settings.centroids.epochs > 0 {
            let mut last = None;
            let observer = self.job.observer;
            let name = "centroid fine-tuning";
            fine_tune_centroids_on(
                net,
                &mut layers,
                self.data,
                &self.job.settings.centroids,
                &mut |s| {
                    observer.note(&epoch_line(name, s));
                    last = Some(s.clone());
                },
            )?;
            // The values as the checkpoint's dtypes hold them, measured as written.
            for (shared, p) in layers.iter_mut().zip(plans) {
                let bias_dtype = p.bias.as_ref().map(|b| b.dtype);
                for v in shared.values.iter_mut() {
                    *v = representable(&p.name, *v, p.dtype, bias_dtype)?;
                }
            }
            apply_shared(net, &layers)?;
            self.stage(net, name.into(), last)?;
        }
        let mut decided = Vec::with_capacity(plans.len());
        let mut overrides = HashMap::new();
        for ((((positions, values, sh), shared), p), ((l, report), before)) in shares
            .into_iter()
            .zip(&layers)
            .zip(plans)
            .zip(pruned.layers().iter().zip(reports).zip(before))
        {
            let shared = sh.renumbered(&shared.values);
            if let (None, Some(name), Some(b)) = (&p.bias, &l.bias_name, &l.bias) {
                overrides.insert(name.clone(), b.clone());
            }
            let Some(prune) = report else {
                return Err(Error::Layer {
                    layer: p.name.clone(),
                    reason: "was not pruned".into(),
                });
            };
            // Against the trained weights: non-zeros before the first round, the survivors
            // after retraining and their smallest magnitude. The balance figures are the last
            // round's.
            let bias = p.bias.as_ref().and_then(|_| l.bias.clone());
            decided.push(decided_layer(
                positions, values, bias, prune, before, shared,
            ));
        }
        Ok(Retrained { decided, overrides })
    }

    /// Incremental weight sharing: each layer's codebook clustered once from its survivors
    /// (and folded bias), then, step by step, the largest of the survivors not yet shared (a
    /// fraction of them all, per the share schedule) take their nearest shared value and are
    /// held there while masked fine-tuning retrains the rest; a folded bias is shared and
    /// held from the first step. Returns the codebooks, which the final sharing assigns every
    /// value to.
    fn incremental_sharing(&mut self, net: &mut Network) -> Result<Vec<Codebook>> {
        let plans = self.job.plans;
        let mut books = Vec::with_capacity(plans.len());
        let mut held = Vec::with_capacity(plans.len());
        let mut survivors = Vec::with_capacity(plans.len());
        for (l, p) in net.layers().iter().zip(plans) {
            let positions: Vec<u64> = (0..l.weight.len() as u64)
                .filter(|&i| l.weight[i as usize] != 0.0)
                .collect();
            let values: Vec<f32> = positions.iter().map(|&i| l.weight[i as usize]).collect();
            let bias: &[f32] = match (&p.bias, &l.bias) {
                (Some(_), Some(b)) => b,
                _ => &[],
            };
            let gradients = self.gradients(books.len(), l, p, &positions)?;
            let by = Sensitivity {
                stats: calibrated(self.job.calibration, p)?,
                gradients: gradients.as_ref().map(|(w, b)| (w.as_slice(), *b)),
            };
            books.push(codebook_retrained(p, &positions, &values, bias, by)?);
            held.push(Held {
                weights: vec![false; l.weight.len()],
                bias: !bias.is_empty(),
            });
            survivors.push(values.len());
        }
        let schedule = &self.job.settings.share_schedule;
        let steps = schedule.len();
        for (k, &fraction) in schedule.iter().enumerate() {
            for (((l, p), book), (h, &n)) in net
                .layers_mut()
                .zip(plans)
                .zip(&books)
                .zip(held.iter_mut().zip(&survivors))
            {
                hold_largest(l.weight, book, &mut h.weights, n, fraction);
                if let (Some(_), Some(b)) = (&p.bias, l.bias) {
                    let sh = assign(book, &[], b);
                    for (v, &c) in b.iter_mut().zip(&sh.bias_codes) {
                        *v = sh.value(c);
                    }
                }
            }
            let step = format!("sharing step {}/{steps}", k + 1);
            self.stage(net, format!("shared {}%, {step}", percent(fraction)), None)?;
            self.fine_tune(
                net,
                Mode::Held(&held),
                format!("masked fine-tuning, {step}"),
                None,
            )?;
        }
        Ok(books)
    }
}

/// A retrained layer as the pipeline packs it: its survivors and their shared codes, the
/// pruning counted against the trained weights (`before` non-zeros before the first round;
/// kept and threshold, the smallest surviving magnitude, after retraining).
pub(crate) fn decided_layer(
    positions: Vec<u64>,
    values: Vec<f32>,
    bias: Option<Vec<f32>>,
    prune: PruneReport,
    before: u64,
    shared: Shared,
) -> Decided {
    let threshold = values.iter().fold(f32::INFINITY, |m, v| m.min(v.abs()));
    Decided {
        positions,
        values,
        bias,
        prune: PruneReport {
            before,
            kept: shared.codes.iter().filter(|&&c| c != 0).count() as u64,
            threshold,
            ..prune
        },
        shared,
    }
}

/// The calibration statistics of layer `p` when its settings use them (an error when they
/// were not gathered), none when they do not.
pub(crate) fn calibrated<'c>(
    calibration: Option<&'c Calibration>,
    p: &LayerPlan,
) -> Result<Option<&'c eie_calibrate::Stats>> {
    if !p.settings.needs_calibration() {
        return Ok(None);
    }
    match calibration.and_then(|c| c.layers.get(&p.name)) {
        Some(s) => Ok(Some(s)),
        None => Err(Error::Layer {
            layer: p.name.clone(),
            reason: "its settings use calibration statistics, which were not gathered (give --calibration)".into(),
        }),
    }
}

/// A line of an epoch's progress.
fn epoch_line(what: &str, s: &EpochStats) -> String {
    format!(
        "  {what} epoch {}: loss {:.4}, running top-1 {:.2}%",
        s.epoch,
        s.loss,
        100.0 * s.accuracy
    )
}

/// `fraction` as a percentage, to two decimals without trailing zeros ("50", "87.5").
fn percent(fraction: f64) -> String {
    let text = format!("{:.2}", 100.0 * fraction);
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Shares and holds the largest of `weight`'s survivors not yet held until `fraction` of the
/// `survivors` the sharing started with (rounded) are held (ties: the lower index first). A weight
/// whose nearest shared value is zero becomes a zero (pruned), as the final sharing would
/// make it.
pub(super) fn hold_largest(
    weight: &mut [f32],
    book: &Codebook,
    held: &mut [bool],
    survivors: usize,
    fraction: f64,
) {
    let target = ((fraction * survivors as f64).round() as usize).min(survivors);
    let already = held.iter().filter(|&&h| h).count();
    let mut free: Vec<usize> = (0..weight.len())
        .filter(|&j| weight[j] != 0.0 && !held[j])
        .collect();
    free.sort_by(|&a, &b| weight[b].abs().total_cmp(&weight[a].abs()).then(a.cmp(&b)));
    free.truncate(target.saturating_sub(already));
    let values: Vec<f32> = free.iter().map(|&j| weight[j]).collect();
    let sh = assign(book, &values, &[]);
    for (&j, &c) in free.iter().zip(&sh.codes) {
        weight[j] = sh.value(c);
        held[j] = true;
    }
}
