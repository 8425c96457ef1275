//! `compress --retrain`: Deep Compression's retraining around the two lossy stages, on the
//! whole network in memory (an MLP made of the selected layers, in order).
//!
//! 1. Prune in rounds toward the target (the schedule), each round followed by masked
//!    fine-tuning: Adam on the surviving weights and the biases, pruned weights held at
//!    exactly zero.
//! 2. Share weights (the same clustering as without retraining), then fine-tune the shared
//!    values: codes fixed, each value moved by SGD on the sum of its weights' gradients.
//! 3. Hand the survivors and codes to the pipeline, which writes and packs them.
//!
//! Every stage's held-out accuracy is recorded for the report.

use std::collections::HashMap;

use anyhow::{Context, Result, bail};
use eie_checkpoint::{Checkpoint, round_to};
use eie_dataset::Dataset;
use eie_evaluate::{
    CentroidConfig, EpochStats, Mode, Network, SharedLayer, TrainConfig, apply_shared,
    fine_tune_centroids, train,
};
use eie_prune::{Global, PruneReport, Rule};

use super::recipe::Pruning;
use super::{Decided, LayerPlan, Shared, representable, share};
use crate::accuracy::StageAccuracy;
use crate::progress::Progress;

/// How to retrain.
#[derive(Debug, Clone, PartialEq)]
pub struct RetrainSettings {
    /// Progress of each pruning round toward the target, increasing, ending at 1: round r
    /// keeps density `D^t_r` (of a per-layer or global density D) or prunes at `t_r x S`
    /// standard deviations.
    pub schedule: Vec<f64>,
    /// Masked fine-tuning after each pruning round (its epochs, learning rate, batch size,
    /// weight decay, seed).
    pub fine_tune: TrainConfig,
    /// Centroid fine-tuning after weight sharing.
    pub centroids: CentroidConfig,
}

/// What retraining hands the pipeline.
pub struct Retrained {
    /// One per plan.
    pub decided: Vec<Decided>,
    /// Biases that changed but are not folded into their layer (`--no-bias-column`).
    pub overrides: HashMap<String, Vec<f32>>,
}

/// The per-layer rule of one round at progress `t` of the schedule. A threshold rule keeps
/// its original standard deviation `std0` (of the trained weights) in every round: the std
/// of weights already pruned would shrink round by round.
fn round_rules(net: &Network, plans: &[LayerPlan], t: f64, std0: &[f64]) -> Result<Vec<Rule>> {
    let global: Option<f64> = plans.iter().find_map(|p| match p.settings.pruning {
        Pruning::Global(d) => Some(d),
        _ => None,
    });
    if let Some(d) = global {
        let total: u64 = net.layers().iter().map(|l| l.weight.len() as u64).sum();
        let mut g = Global::new(d.powf(t), total)?;
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

/// Every weight and bias of `net` rounded to its tensor's dtype in `ck` (retraining works in
/// f32; the outputs keep the checkpoint's dtypes). A weight that rounds to zero is pruned.
fn round_to_dtypes(net: &mut Network, ck: &Checkpoint) {
    for l in net.layers_mut() {
        if let Some(info) = ck.info(l.name) {
            l.weight
                .iter_mut()
                .for_each(|w| *w = round_to(info.dtype, *w));
        }
        if let (Some(b), Some(stem)) = (l.bias, l.name.strip_suffix(".weight"))
            && let Some(info) = ck.info(&format!("{stem}.bias"))
        {
            b.iter_mut().for_each(|v| *v = round_to(info.dtype, *v));
        }
    }
}

fn stage(
    stages: &mut Vec<StageAccuracy>,
    progress: &Progress,
    net: &Network,
    held: &Dataset,
    name: String,
    last_epoch: Option<EpochStats>,
) -> Result<()> {
    let mut s = StageAccuracy::float(name, net, held)?;
    s.train_loss = last_epoch.map(|e| e.loss);
    progress.note(&s.line());
    stages.push(s);
    Ok(())
}

/// Retrains `net` (the plans' layers, as read from `ck`) on `data`, recording each stage's
/// accuracy on `held` in `stages`.
#[allow(clippy::too_many_arguments)]
pub fn retrain(
    ck: &Checkpoint,
    plans: &[LayerPlan],
    pes: usize,
    mut net: Network,
    data: &Dataset,
    held: &Dataset,
    settings: &RetrainSettings,
    progress: &Progress,
    stages: &mut Vec<StageAccuracy>,
) -> Result<Retrained> {
    let rounds = settings.schedule.len();
    let epoch_line = |what: String| {
        move |s: &EpochStats| {
            progress.note(&format!(
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
                eie_prune::prune(l.weight, l.outputs, l.inputs, rule, balance)
                    .with_context(|| format!("pruning \"{}\"", p.name))?,
            );
        }
        let round = if rounds > 1 {
            format!(", round {}/{rounds}", r + 1)
        } else {
            String::new()
        };
        stage(stages, progress, &net, held, format!("pruned{round}"), None)?;
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
            round_to_dtypes(&mut net, ck);
            stage(
                stages,
                progress,
                &net,
                held,
                format!("masked fine-tuning{round}"),
                last,
            )?;
        }
    }

    let pruned = net.clone();

    // 2. Share weights, then fine-tune the shared values.
    let mut shares = Vec::with_capacity(plans.len());
    let mut layers = Vec::with_capacity(plans.len());
    for (l, p) in net.layers().iter().zip(plans) {
        let dtype = ck.info(&p.name).expect("planned").dtype;
        let bias_dtype = p.bias.as_ref().map(|b| ck.info(b).expect("planned").dtype);
        let positions: Vec<u64> = (0..l.weight.len() as u64)
            .filter(|&i| l.weight[i as usize] != 0.0)
            .collect();
        let values: Vec<f32> = positions.iter().map(|&i| l.weight[i as usize]).collect();
        let bias: &[f32] = match (&p.bias, &l.bias) {
            (Some(_), Some(b)) => b,
            _ => &[],
        };
        let sh = share(&p.name, &values, bias, &p.settings, dtype, bias_dtype)?;
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
    stage(stages, progress, &net, held, "weight-shared".into(), None)?;
    if settings.centroids.epochs > 0 {
        let mut last = None;
        let line = epoch_line("centroid fine-tuning".into());
        fine_tune_centroids(&mut net, &mut layers, data, &settings.centroids, &mut |s| {
            line(s);
            last = Some(s.clone());
        })?;
        // The values as the checkpoint's dtypes hold them, measured as written.
        for (shared, p) in layers.iter_mut().zip(plans) {
            let dtype = ck.info(&p.name).expect("planned").dtype;
            let bias_dtype = p.bias.as_ref().map(|b| ck.info(b).expect("planned").dtype);
            for v in shared.values.iter_mut() {
                *v = representable(&p.name, *v, dtype, bias_dtype)?;
            }
        }
        apply_shared(&mut net, &layers)?;
        stage(
            stages,
            progress,
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
        let shared = renumber(&shared.values, &sh)?;
        if let (None, Some(name), Some(b)) = (&p.bias, &l.bias_name, &l.bias) {
            overrides.insert(name.clone(), b.clone());
        }
        let Some(prune) = report else {
            bail!("layer \"{}\" was not pruned", p.name);
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

/// The codes of `sh` renumbered for the fine-tuned values `tuned` (indexed by old code,
/// `tuned[0]` = 0): values that became zero give code 0, equal values one code, ascending.
fn renumber(tuned: &[f32], sh: &Shared) -> Result<Shared> {
    let mut values: Vec<f32> = tuned[1..].iter().copied().filter(|&v| v != 0.0).collect();
    values.sort_by(f32::total_cmp);
    values.dedup();
    let map: Vec<u8> = tuned
        .iter()
        .map(|&v| {
            if v == 0.0 {
                0
            } else {
                values.iter().position(|&u| u == v).expect("listed") as u8 + 1
            }
        })
        .collect();
    Ok(Shared {
        values,
        codes: sh.codes.iter().map(|&c| map[c as usize]).collect(),
        bias_codes: sh.bias_codes.iter().map(|&c| map[c as usize]).collect(),
        clustering: sh.clustering.clone(),
    })
}
