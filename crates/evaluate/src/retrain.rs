//! `compress --retrain`: Deep Compression's retraining around the two lossy stages, on the
//! whole network in memory (an MLP made of the planned layers, in order), calling into the
//! pipeline's own pruning rules and weight sharing.
//!
//! 1. Prune in rounds toward the target (the schedule), each round followed by masked
//!    fine-tuning: Adam on the surviving weights and the biases, pruned weights held at
//!    exactly zero.
//! 2. Share weights (the pipeline's clustering), then fine-tune the shared values: codes
//!    fixed, each value moved by SGD on the sum of its weights' gradients. With a share
//!    schedule the sharing is incremental (Zhou et al., INQ, 2017): the codebook is clustered
//!    once, and in steps the largest surviving weights take their shared values and are held
//!    there while masked fine-tuning retrains the others, which learn to make up the error.
//! 3. Hand the survivors and codes to the pipeline ([`eie_pipeline::Retrained`]), which
//!    writes and packs them.
//!
//! Every stage's held-out accuracy is recorded.

use std::collections::HashMap;

use eie_checkpoint::{Header, bias_name, round_to};
use eie_dataset::Dataset;
use eie_pipeline::settings::{Kind, Knob, Scope, Value, any};
use eie_pipeline::{
    Codebook, Decided, LayerPlan, Observer, Pruning, Retrained, assign, codebook, representable,
    share,
};
use eie_prune::{Global, PruneReport, Rule};

use crate::error::{Error, Result};
use crate::share::{CentroidConfig, SharedLayer, apply_shared, fine_tune_centroids};
use crate::stages::StageAccuracy;
use crate::train::{EpochStats, Held, Mode, TrainConfig, train};
use eie_model::Network;

/// The most pruning rounds a schedule may have.
pub const MAX_ROUNDS: usize = 1000;

/// How to retrain, as given (on the command line or in a recipe's `[retrain]`).
#[derive(Debug, Clone, PartialEq)]
pub struct RetrainChoices {
    /// Masked fine-tuning epochs after each pruning round.
    pub epochs: usize,
    /// Centroid fine-tuning epochs (None: as many as `epochs`).
    pub centroid_epochs: Option<usize>,
    /// Adam's learning rate for masked fine-tuning.
    pub lr: f64,
    /// SGD's learning rate for centroid fine-tuning.
    pub centroid_lr: f64,
    /// Samples per step.
    pub batch_size: usize,
    /// L2 penalty of masked fine-tuning.
    pub weight_decay: f64,
    /// Pruning rounds, evenly spaced toward the target (None: one, or `schedule`).
    pub rounds: Option<usize>,
    /// Progress of each pruning round toward the target.
    pub schedule: Option<Vec<f64>>,
    /// Fractions of each matrix's surviving weights shared and held, step by step, before
    /// the final sharing (none: Deep Compression's sharing at once).
    pub share_schedule: Option<Vec<f64>>,
}

impl Default for RetrainChoices {
    fn default() -> Self {
        let t = TrainConfig::default();
        Self {
            epochs: 3,
            centroid_epochs: None,
            lr: t.lr,
            centroid_lr: 1e-3,
            batch_size: t.batch_size,
            weight_decay: t.weight_decay,
            rounds: None,
            schedule: None,
            share_schedule: None,
        }
    }
}

fn positive(key: &'static str) -> impl Fn(&Value) -> Result<(), String> {
    move |v| match v {
        Value::Float(x) if x.is_finite() && *x > 0.0 => Ok(()),
        other => Err(format!("{key} {other} must be finite and > 0")),
    }
}

fn int(v: &Value) -> usize {
    // Every integer knob here is capped at u32::MAX or MAX_ROUNDS, so this cannot truncate.
    v.int() as usize
}

/// The rounds group: a schedule is given either way.
const SCHEDULE: &str = "rounds / schedule";

/// Checks a share schedule: increasing fractions strictly between 0 and 1 (the final sharing
/// is the whole), at most [`MAX_ROUNDS`] steps.
fn check_share_schedule(schedule: &[f64]) -> Result<(), String> {
    if schedule.len() > MAX_ROUNDS {
        return Err(format!(
            "a share schedule of {} steps is over {MAX_ROUNDS}",
            schedule.len()
        ));
    }
    let increasing = schedule.windows(2).all(|w| w[0] < w[1]);
    if !increasing || schedule.iter().any(|&f| !(f > 0.0 && f < 1.0)) {
        return Err(format!(
            "share_schedule {schedule:?}: expected increasing fractions in (0, 1) (e.g. [0.5, 0.75, 0.9]; the final sharing is the whole)"
        ));
    }
    Ok(())
}

/// Checks a schedule: increasing steps in (0, 1] ending at 1, at most [`MAX_ROUNDS`].
fn check_schedule(schedule: &[f64]) -> Result<(), String> {
    if schedule.len() > MAX_ROUNDS {
        return Err(format!(
            "a schedule of {} rounds is over {MAX_ROUNDS}",
            schedule.len()
        ));
    }
    let increasing = schedule.windows(2).all(|w| w[0] < w[1]);
    if schedule.is_empty() || !increasing || schedule[0] <= 0.0 || schedule.last() != Some(&1.0) {
        return Err(format!(
            "schedule {schedule:?}: expected increasing steps in (0, 1] ending at 1 (e.g. [0.5, 0.8, 1.0])"
        ));
    }
    Ok(())
}

/// Every retraining setting: the command line's flags and the keys of a recipe's `[retrain]`.
pub static RETRAIN_KNOBS: &[Knob<RetrainChoices>] = &[
    Knob {
        key: "epochs",
        value_name: "E",
        doc: "Masked fine-tuning epochs after each pruning round.",
        kind: Kind::Int {
            min: 0,
            max: u32::MAX as u64,
        },
        group: None,
        scope: Scope::Everywhere,
        check: any,
        apply: |s, v| s.epochs = int(v),
        show: |s| Some(s.epochs.to_string()),
    },
    Knob {
        key: "centroid_epochs",
        value_name: "E",
        doc: "Centroid fine-tuning epochs (default: --epochs).",
        kind: Kind::Int {
            min: 0,
            max: u32::MAX as u64,
        },
        group: None,
        scope: Scope::Everywhere,
        check: any,
        apply: |s, v| s.centroid_epochs = Some(int(v)),
        show: |s| s.centroid_epochs.map(|e| e.to_string()),
    },
    Knob {
        key: "lr",
        value_name: "LR",
        doc: "Adam's learning rate for masked fine-tuning (docs/decisions.md says why this default).",
        kind: Kind::Float,
        group: None,
        scope: Scope::Everywhere,
        check: |v| positive("lr")(v),
        apply: |s, v| s.lr = v.float(),
        show: |s| Some(s.lr.to_string()),
    },
    Knob {
        key: "centroid_lr",
        value_name: "LR",
        doc: "SGD's learning rate for centroid fine-tuning.",
        kind: Kind::Float,
        group: None,
        scope: Scope::Everywhere,
        check: |v| positive("centroid_lr")(v),
        apply: |s, v| s.centroid_lr = v.float(),
        show: |s| Some(s.centroid_lr.to_string()),
    },
    Knob {
        key: "batch_size",
        value_name: "N",
        doc: "Samples per step of both fine-tunings.",
        kind: Kind::Int {
            min: 1,
            max: u32::MAX as u64,
        },
        group: None,
        scope: Scope::Everywhere,
        check: any,
        apply: |s, v| s.batch_size = int(v),
        show: |s| Some(s.batch_size.to_string()),
    },
    Knob {
        key: "weight_decay",
        value_name: "L2",
        doc: "L2 penalty of masked fine-tuning.",
        kind: Kind::Float,
        group: None,
        scope: Scope::Everywhere,
        check: |v| match v {
            Value::Float(x) if x.is_finite() && *x >= 0.0 => Ok(()),
            other => Err(format!("weight_decay {other} must be finite and >= 0")),
        },
        apply: |s, v| s.weight_decay = v.float(),
        show: |s| Some(s.weight_decay.to_string()),
    },
    Knob {
        key: "rounds",
        value_name: "R",
        doc: "Iterative pruning: prune and retrain in R rounds toward the target (1 by default).",
        kind: Kind::Int {
            min: 0,
            max: u64::MAX,
        },
        group: Some(SCHEDULE),
        scope: Scope::Everywhere,
        check: |v| match int(v) {
            0 => Err("rounds must be at least 1".into()),
            r if r > MAX_ROUNDS => Err(format!("rounds {r} is over {MAX_ROUNDS}")),
            _ => Ok(()),
        },
        apply: |s, v| s.rounds = Some(int(v)),
        show: |s| s.rounds.map(|r| r.to_string()),
    },
    Knob {
        key: "schedule",
        value_name: "T,T,...",
        doc: "The progress of each pruning round toward the target, increasing, ending at 1.",
        kind: Kind::Floats,
        group: Some(SCHEDULE),
        scope: Scope::RecipeOnly,
        check: |v| check_schedule(v.floats()),
        apply: |s, v| s.schedule = Some(v.floats().to_vec()),
        show: |s| s.schedule.as_ref().map(|v| format!("{v:?}")),
    },
    Knob {
        key: "share_schedule",
        value_name: "F,F,...",
        doc: "Incremental weight sharing (docs/accuracy.md): before the final sharing, the largest of each matrix's surviving weights, these fractions of them in turn, take their shared values and stay there while masked fine-tuning (epochs) retrains the rest. Increasing, in (0, 1).",
        kind: Kind::Floats,
        group: None,
        scope: Scope::RecipeOnly,
        check: |v| check_share_schedule(v.floats()),
        apply: |s, v| s.share_schedule = Some(v.floats().to_vec()),
        show: |s| s.share_schedule.as_ref().map(|v| format!("{v:?}")),
    },
];

/// How to retrain, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct RetrainSettings {
    /// Progress of each pruning round toward the target, increasing, ending at 1: round r
    /// keeps density `D^t_r` (of a per-layer or global density D) or prunes at `t_r x S`
    /// standard deviations.
    pub schedule: Vec<f64>,
    /// Fractions of each matrix's surviving weights shared and held before the final
    /// sharing, increasing, in (0, 1); empty: all shared at once.
    pub share_schedule: Vec<f64>,
    /// Masked fine-tuning after each pruning round (and each incremental sharing step).
    pub fine_tune: TrainConfig,
    /// Centroid fine-tuning after weight sharing.
    pub centroids: CentroidConfig,
}

impl RetrainChoices {
    /// The settings, with `seed` for the sample order of both fine-tunings.
    pub fn resolve(&self, seed: u64) -> Result<RetrainSettings> {
        let schedule = match (&self.schedule, self.rounds) {
            (Some(s), _) => s.clone(),
            (None, r) => {
                let r = r.unwrap_or(1);
                (1..=r).map(|i| i as f64 / r as f64).collect()
            }
        };
        check_schedule(&schedule).map_err(|reason| Error::Config {
            what: "retraining",
            reason,
        })?;
        let share_schedule = self.share_schedule.clone().unwrap_or_default();
        check_share_schedule(&share_schedule).map_err(|reason| Error::Config {
            what: "retraining",
            reason,
        })?;
        if !share_schedule.is_empty() && self.epochs == 0 {
            return Err(Error::Config {
                what: "retraining",
                reason: "share_schedule retrains the unshared weights after each step: it needs masked fine-tuning epochs (epochs is 0)".into(),
            });
        }
        let settings = RetrainSettings {
            schedule,
            share_schedule,
            fine_tune: TrainConfig {
                epochs: self.epochs,
                batch_size: self.batch_size,
                lr: self.lr,
                weight_decay: self.weight_decay,
                seed,
            },
            centroids: CentroidConfig {
                epochs: self.centroid_epochs.unwrap_or(self.epochs),
                batch_size: self.batch_size,
                lr: self.centroid_lr,
                seed,
            },
        };
        settings.fine_tune.validate()?;
        settings.centroids.validate()?;
        Ok(settings)
    }
}

/// The per-layer rule of one round at progress `t` of the schedule. A threshold rule keeps
/// its original standard deviation `std0` (of the trained weights) in every round: the std
/// of weights already pruned would shrink round by round.
fn round_rules(net: &Network, plans: &[LayerPlan], t: f64, std0: &[f64]) -> Result<Vec<Rule>> {
    let global: Option<f64> = plans.iter().find_map(|p| match p.settings.pruning {
        Pruning::Global(d) => Some(d),
        _ => None,
    });
    let prune_err = |e: eie_prune::Error| Error::Config {
        what: "pruning",
        reason: e.to_string(),
    };
    if let Some(d) = global {
        let total: u64 = net.layers().iter().map(|l| l.weight.len() as u64).sum();
        let mut g = Global::new(d.powf(t), total).map_err(prune_err)?;
        for l in net.layers() {
            g.first_pass(&l.weight);
        }
        for l in net.layers() {
            g.second_pass(&l.weight);
        }
        return Ok(g.counts().into_iter().map(Rule::Count).collect());
    }
    Ok(plans
        .iter()
        .zip(net.layers())
        .zip(std0)
        .map(|((p, l), &std0)| match p.settings.pruning {
            Pruning::None => Rule::KeepAll,
            Pruning::Density(d) => Rule::Density(d.powf(t)),
            Pruning::ThresholdStd(s) => {
                let threshold = s * t * std0;
                Rule::Count(
                    l.weight
                        .iter()
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

/// Retrains `net` (the planned layers, as read from their checkpoint; `plans` in the same
/// order, their tensors described by `header`) on `data`, recording each stage's accuracy on
/// `held` in `stages`; balanced pruning balances over `pes` PEs. Without training epochs it
/// only prunes and shares (the pipeline's rules, on the network in memory), and needs no
/// data.
#[allow(clippy::too_many_arguments)]
pub fn retrain(
    header: &Header,
    plans: &[LayerPlan],
    pes: usize,
    mut net: Network,
    data: Option<&Dataset>,
    held: Option<&Dataset>,
    settings: &RetrainSettings,
    observer: &dyn Observer,
    stages: &mut Vec<StageAccuracy>,
) -> Result<Retrained> {
    let rounds = settings.schedule.len();
    let training = settings.fine_tune.epochs > 0 || settings.centroids.epochs > 0;
    let data = match data {
        Some(d) => d,
        None if !training => &Dataset::from_parts("(none)", 0, 0, None, Vec::new(), Vec::new()),
        None => {
            return Err(Error::Config {
                what: "retraining",
                reason: "fine-tuning needs training samples".into(),
            });
        }
    };
    let epoch_line = |what: String| {
        move |s: &EpochStats| {
            observer.note(&format!(
                "  {what} epoch {}: loss {:.4}, running top-1 {:.2}%",
                s.epoch,
                s.loss,
                100.0 * s.accuracy
            ))
        }
    };

    // 1. Prune in rounds, each followed by masked fine-tuning.
    let std0: Vec<f64> = net
        .layers()
        .iter()
        .map(|l| eie_prune::std(&l.weight))
        .collect();
    let before: Vec<u64> = net
        .layers()
        .iter()
        .map(|l| l.weight.iter().filter(|&&w| w != 0.0).count() as u64)
        .collect();
    let mut reports: Vec<Option<PruneReport>> = vec![None; plans.len()];
    for (r, &t) in settings.schedule.iter().enumerate() {
        let rules = round_rules(&net, plans, t, &std0)?;
        for ((l, p), (rule, report)) in net
            .layers_mut()
            .zip(plans)
            .zip(rules.into_iter().zip(reports.iter_mut()))
        {
            let balance = p.settings.balance.then_some(pes);
            *report = Some(
                eie_prune::prune(l.weight, l.outputs, l.inputs, rule, balance).map_err(
                    |error| eie_pipeline::Error::Prune {
                        layer: p.name.clone(),
                        error,
                    },
                )?,
            );
        }
        let round = if rounds > 1 {
            format!(", round {}/{rounds}", r + 1)
        } else {
            String::new()
        };
        stage(stages, observer, &net, held, format!("pruned{round}"), None)?;
        if settings.fine_tune.epochs > 0 {
            let mut last = None;
            let line = epoch_line(format!("masked fine-tuning{round}"));
            train(
                &mut net,
                data,
                &settings.fine_tune,
                Mode::Masked,
                &mut |s| {
                    line(s);
                    last = Some(s.clone());
                },
            )?;
            round_to_dtypes(&mut net, plans, header);
            stage(
                stages,
                observer,
                &net,
                held,
                format!("masked fine-tuning{round}"),
                last,
            )?;
        }
    }

    // 2. Share weights (at once, or in steps with a share schedule), then fine-tune the
    // shared values.
    let books = if settings.share_schedule.is_empty() {
        None
    } else {
        Some(incremental_sharing(
            &mut net, plans, header, data, held, settings, observer, stages,
        )?)
    };
    // The network as the final sharing finds it: what pruned.safetensors holds (with a share
    // schedule, as its last step left it), and the biases kept apart from the codebook, which
    // centroid fine-tuning leaves as they are.
    let pruned = net.clone();
    let mut shares = Vec::with_capacity(plans.len());
    let mut layers = Vec::with_capacity(plans.len());
    for (i, (l, p)) in net.layers().iter().zip(plans).enumerate() {
        let bias_dtype = p.bias.as_ref().map(|b| b.dtype);
        let positions: Vec<u64> = (0..l.weight.len() as u64)
            .filter(|&i| l.weight[i as usize] != 0.0)
            .collect();
        let values: Vec<f32> = positions.iter().map(|&i| l.weight[i as usize]).collect();
        let bias: &[f32] = match (&p.bias, &l.bias) {
            (Some(_), Some(b)) => b,
            _ => &[],
        };
        let sh = match &books {
            Some(books) => assign(&books[i], &values, bias),
            None => share(&p.name, &values, bias, &p.settings, p.dtype, bias_dtype)?,
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
    apply_shared(&mut net, &layers)?;
    stage(stages, observer, &net, held, "weight-shared".into(), None)?;
    if settings.centroids.epochs > 0 {
        let mut last = None;
        let line = epoch_line("centroid fine-tuning".into());
        fine_tune_centroids(&mut net, &mut layers, data, &settings.centroids, &mut |s| {
            line(s);
            last = Some(s.clone());
        })?;
        // The values as the checkpoint's dtypes hold them, measured as written.
        for (shared, p) in layers.iter_mut().zip(plans) {
            let bias_dtype = p.bias.as_ref().map(|b| b.dtype);
            for v in shared.values.iter_mut() {
                *v = representable(&p.name, *v, p.dtype, bias_dtype)?;
            }
        }
        apply_shared(&mut net, &layers)?;
        stage(
            stages,
            observer,
            &net,
            held,
            "centroid fine-tuning".into(),
            last,
        )?;
    }

    // 3. The decided layers: fine-tuned values made representable, zeros and duplicates
    // folded away, ascending.
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
        // Against the trained weights: non-zeros before the first round, the survivors after
        // retraining and their smallest magnitude. The balance figures are the last round's.
        let threshold = values.iter().fold(f32::INFINITY, |m, v| m.min(v.abs()));
        decided.push(Decided {
            positions,
            values,
            bias: p.bias.as_ref().and_then(|_| l.bias.clone()),
            prune: PruneReport {
                before,
                kept: shared.codes.iter().filter(|&&c| c != 0).count() as u64,
                threshold,
                ..prune
            },
            shared,
        });
    }
    Ok(Retrained { decided, overrides })
}

/// Incremental weight sharing: each layer's codebook clustered once from its survivors (and
/// folded bias), then, step by step, the largest of the survivors not yet shared (a fraction
/// of them all, per the share schedule) take their nearest shared value and are held there
/// while masked fine-tuning retrains the rest; a folded bias is shared and held from the
/// first step. Returns the codebooks, which the final sharing assigns every value to.
#[allow(clippy::too_many_arguments)]
fn incremental_sharing(
    net: &mut Network,
    plans: &[LayerPlan],
    header: &Header,
    data: &Dataset,
    held_out: Option<&Dataset>,
    settings: &RetrainSettings,
    observer: &dyn Observer,
    stages: &mut Vec<StageAccuracy>,
) -> Result<Vec<Codebook>> {
    let mut books = Vec::with_capacity(plans.len());
    let mut held = Vec::with_capacity(plans.len());
    let mut survivors = Vec::with_capacity(plans.len());
    for (l, p) in net.layers().iter().zip(plans) {
        let values: Vec<f32> = l.weight.iter().copied().filter(|&w| w != 0.0).collect();
        let bias: &[f32] = match (&p.bias, &l.bias) {
            (Some(_), Some(b)) => b,
            _ => &[],
        };
        let bias_dtype = p.bias.as_ref().map(|b| b.dtype);
        books.push(codebook(
            &p.name,
            &values,
            bias,
            &p.settings,
            p.dtype,
            bias_dtype,
        )?);
        held.push(Held {
            weights: vec![false; l.weight.len()],
            bias: !bias.is_empty(),
        });
        survivors.push(values.len());
    }
    let steps = settings.share_schedule.len();
    for (k, &fraction) in settings.share_schedule.iter().enumerate() {
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
        let shared = format!("shared {}%, {step}", percent(fraction));
        stage(stages, observer, net, held_out, shared, None)?;
        let name = format!("masked fine-tuning, {step}");
        let mut last = None;
        train(
            net,
            data,
            &settings.fine_tune,
            Mode::Held(&held),
            &mut |s| {
                observer.note(&format!(
                    "  {name} epoch {}: loss {:.4}, running top-1 {:.2}%",
                    s.epoch,
                    s.loss,
                    100.0 * s.accuracy
                ));
                last = Some(s.clone());
            },
        )?;
        round_to_dtypes(net, plans, header);
        stage(stages, observer, net, held_out, name, last)?;
    }
    Ok(books)
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
fn hold_largest(
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

#[cfg(test)]
mod retrain_tests {
    use eie_checkpoint::Dtype;
    use eie_pipeline::Assignments;

    use super::*;

    #[test]
    fn choices_resolve_to_a_schedule() {
        let mut a = Assignments::<RetrainChoices>::new();
        a.set_text(RETRAIN_KNOBS, "rounds", "4").unwrap();
        a.set_text(RETRAIN_KNOBS, "epochs", "2").unwrap();
        let mut c = RetrainChoices::default();
        a.apply(&mut c);
        let s = c.resolve(7).unwrap();
        assert_eq!(s.schedule, [0.25, 0.5, 0.75, 1.0]);
        assert_eq!((s.fine_tune.epochs, s.centroids.epochs), (2, 2));
        assert_eq!((s.fine_tune.seed, s.centroids.seed), (7, 7));
        let e = a.set_text(RETRAIN_KNOBS, "rounds", "100000").unwrap_err();
        assert_eq!(e, "rounds 100000 is over 1000");
        let t: toml::Table = toml::from_str("schedule = [0.5, 0.4]\n").unwrap();
        let e = Assignments::from_toml(RETRAIN_KNOBS, &t, |_| true).unwrap_err();
        assert!(e.contains("increasing"), "{e}");
        let t: toml::Table = toml::from_str("schedule = [0.5, 1.0]\nrounds = 2\n").unwrap();
        let e = Assignments::from_toml(RETRAIN_KNOBS, &t, |_| true).unwrap_err();
        assert!(e.contains("give one of rounds and schedule"), "{e}");
    }

    #[test]
    fn share_schedules_are_increasing_fractions_below_one() {
        for bad in [
            "[0.5, 0.4]",
            "[0.5, 1.0]",
            "[0.0, 0.5]",
            "[-0.1]",
            "[0.5, 0.5]",
        ] {
            let t: toml::Table = toml::from_str(&format!("share_schedule = {bad}\n")).unwrap();
            let e = Assignments::from_toml(RETRAIN_KNOBS, &t, |_| true).unwrap_err();
            assert!(e.contains("increasing fractions in (0, 1)"), "{bad}: {e}");
        }
        let t: toml::Table = toml::from_str("share_schedule = [0.5, 0.75, 0.9]\n").unwrap();
        let a = Assignments::from_toml(RETRAIN_KNOBS, &t, |_| true).unwrap();
        let mut c = RetrainChoices::default();
        a.apply(&mut c);
        assert_eq!(c.resolve(1).unwrap().share_schedule, [0.5, 0.75, 0.9]);
        assert!(
            RetrainChoices::default()
                .resolve(1)
                .unwrap()
                .share_schedule
                .is_empty()
        );
    }

    /// Each step holds the largest survivors not yet held, up to its fraction of the
    /// survivors the sharing started with, at their nearest shared value; held weights stay
    /// held, pruned ones stay zero.
    #[test]
    fn hold_largest_shares_the_largest_first() {
        let settings = eie_pipeline::LayerSettings {
            code_bits: 2,
            ..Default::default()
        };
        let values = [-2.0, -2.0, 0.5, 0.5, 3.0, 3.0];
        let book = codebook("fc", &values, &[], &settings, Dtype::F32, None).unwrap();
        assert_eq!(book.centroids, [-2.0, 0.5, 3.0]);
        let mut w = [0.4f32, 0.0, -2.5, 2.9, 0.6, -0.3];
        let mut held = [false; 6];
        // 5 survivors: half is 3 (2.5 rounded): -2.5, 2.9 and 0.6.
        hold_largest(&mut w, &book, &mut held, 5, 0.5);
        assert_eq!(w, [0.4, 0.0, -2.0, 3.0, 0.5, -0.3]);
        assert_eq!(held, [false, false, true, true, true, false]);
        // One more (4 of 5): 0.4, larger than -0.3; the held ones are not chosen again.
        hold_largest(&mut w, &book, &mut held, 5, 0.8);
        assert_eq!(w, [0.5, 0.0, -2.0, 3.0, 0.5, -0.3]);
        assert_eq!(held, [true, false, true, true, true, false]);
    }

    /// The schema in docs/recipes.md is a recipe every key of which is read as documented.
    #[test]
    fn the_documented_schema_parses() {
        use eie_pipeline::{Recipe, RunSettings};
        let doc = include_str!("../../../docs/recipes.md");
        let block = doc
            .split("```toml\n")
            .nth(1)
            .and_then(|b| b.split("```").next())
            .expect("a toml block");
        let recipe = Recipe::parse(std::path::Path::new("docs/recipes.md"), block).unwrap();
        assert_eq!(recipe.select, ["classifier.*.weight"]);
        assert_eq!(recipe.rules.len(), 1);
        let mut run = RunSettings::default();
        recipe.run.apply(&mut run);
        assert!(!run.dense_checkpoints);
        let t = &recipe.tables["retrain"];
        let a = Assignments::from_toml(RETRAIN_KNOBS, t, |_| true).unwrap();
        let mut c = RetrainChoices::default();
        a.apply(&mut c);
        assert_eq!((c.rounds, c.epochs, c.batch_size), (Some(3), 4, 64));
        // Uncommented, each documented alternative is a key the parser knows.
        for alt in block.lines().filter_map(|l| l.strip_prefix("# ")) {
            let Some((key, _)) = alt.split_once(" = ") else {
                continue;
            };
            let read = if eie_pipeline::LAYER_KNOBS.iter().any(|k| k.key == key) {
                let text = format!("[defaults]\n{alt}\n");
                Recipe::parse(std::path::Path::new("alt.toml"), &text)
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            } else {
                let t: toml::Table = toml::from_str(alt).map_err(|e| e.to_string()).unwrap();
                Assignments::from_toml(RETRAIN_KNOBS, &t, |_| true).map(|_| ())
            };
            assert!(read.is_ok(), "documented alternative {alt:?}: {read:?}");
        }
    }
}
