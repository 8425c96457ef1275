//! A layer pruned and shared with calibration statistics: scores by |w| x ||x|| (Wanda),
//! compared per layer, per row or per PE; the optimal brain surgeon's update after the mask
//! (SparseGPT) and after the codebook (GPTQ); a codebook weighted by the inputs' energy.

use std::collections::BTreeMap;

use eie_calibrate::{Factor, Guarded, Stats, compensate};
use eie_checkpoint::round_to;
use eie_prune::{Group, PruneReport, Rule};
use rayon::prelude::*;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::plan::LayerPlan;
use crate::settings::{CodebookWeight, PruneScore, Update};
use crate::share::{Codebook, Shared, assign, weighted_codebook};

/// The dampening of the inputs' Hessian, as a fraction of its mean diagonal (SparseGPT's and
/// GPTQ's default).
pub const DAMP: f64 = 0.01;

/// Calibration statistics of the planned layers that need them, by layer name, and what
/// they were gathered on.
#[derive(Debug, Clone, Default)]
pub struct Calibration {
    /// Per layer.
    pub layers: BTreeMap<String, Stats>,
    /// The samples, in words (recorded in model.eie).
    pub source: String,
}

/// What calibration did to a layer (report.json's `calibration`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CalibrationReport {
    /// Input vectors the statistics saw.
    pub samples: u64,
    /// Input columns that were zero on every sample.
    pub dead_inputs: usize,
    /// The Hessian's dampening used (with the update).
    pub damp: Option<f64>,
    /// Rows where the pruning update raised the calibration outputs' error, left pruned
    /// without it.
    pub rows_without_prune_update: Option<usize>,
    /// Rows where the sharing update raised it, rounded to their nearest shared values
    /// instead.
    pub rows_without_share_update: Option<usize>,
    /// The calibration outputs' squared error after pruning, relative to the outputs' own
    /// (`sum ||X (w - w')||^2 / sum ||X w||^2`; with the Hessian).
    pub output_error_pruned: Option<f64>,
    /// The same after pruning and sharing.
    pub output_error_shared: Option<f64>,
    /// With the update: the same mask's error without it (the kept weights as they were),
    /// what the update bought.
    pub output_error_pruned_without_update: Option<f64>,
}

/// A layer decided with calibration: its survivors (the original positions the mask keeps,
/// their values after the update) and their codes.
pub(crate) struct CalibratedLayer {
    pub positions: Vec<u64>,
    pub values: Vec<f32>,
    pub prune: PruneReport,
    pub shared: Shared,
    pub report: CalibrationReport,
}

/// Prunes and shares `w` (the layer's `[rows, inputs]` f32 matrix) by `lp`'s settings with
/// `stats`; the folded bias (if any) shares the codebook, as in the plain flow.
pub(crate) fn calibrated(
    lp: &LayerPlan,
    w: Vec<f32>,
    rule: Rule,
    pes: usize,
    stats: &Stats,
    bias: Option<&[f32]>,
) -> Result<CalibratedLayer> {
    let s = &lp.settings;
    let cols = lp.inputs;
    let layer_err = |reason: String| Error::Layer {
        layer: lp.name.clone(),
        reason,
    };
    let calib_err = |e: eie_calibrate::Error| layer_err(format!("calibration: {e}"));
    let Pruned {
        factor,
        masked,
        pruned,
        prune,
        guard: prune_guard,
    } = prune_step(lp, &w, rule, pes, stats)?;
    let updating = s.update == Update::Obs;
    let rows = lp.rows;
    let positions: Vec<u64> = masked
        .iter()
        .enumerate()
        .filter(|&(_, &v)| v != 0.0)
        .map(|(i, _)| i as u64)
        .collect();
    let keep = |r: usize, c: usize| masked[r * cols + c] != 0.0;
    // Each row's calibration error, when the Hessian is at hand: of the kept result, of the
    // same mask without the update, and the outputs' own (what the ratios are of).
    let sum = |v: &[f64]| v.iter().sum::<f64>();
    let base = match updating {
        true => stats.row_errors(&w, &vec![0.0; w.len()]).map(|e| sum(&e)),
        false => None,
    };
    let relative = |e: f64| base.map(|b| if b > 0.0 { e / b } else { 0.0 });
    // As the weight's dtype holds them (the pruned checkpoint's values, the codebook's data).
    let values: Vec<f32> = positions
        .iter()
        .map(|&p| round_to(lp.dtype, pruned[p as usize]))
        .collect();

    // The codebook, each value weighted by its column's energy when asked.
    let bias_values: &[f32] = bias.unwrap_or(&[]);
    let weights = codebook_weights(s.codebook_weight, stats, &positions, cols);
    let book = weighted_codebook(
        &lp.name,
        &values,
        bias_values,
        weights.as_ref().map(|(w, b)| (w.as_slice(), *b)),
        s,
        lp.dtype,
        lp.bias.as_ref().map(|b| b.dtype),
    )?;
    let round = book.rounding();
    let mut share_guard = None;
    let shared_values: Vec<f32> = match factor.as_ref().filter(|_| updating) {
        None => values.iter().map(|&v| round(v)).collect(),
        Some(f) => {
            let mut plain = vec![0.0f32; w.len()];
            for (&p, &v) in positions.iter().zip(&values) {
                plain[p as usize] = round(v);
            }
            let mut q = w.clone();
            compensate(&mut q, rows, f, &|r, c, v| {
                if keep(r, c) {
                    round(v as f32) as f64
                } else {
                    0.0
                }
            })
            .map_err(calib_err)?;
            share_guard = stats.keep_better(&w, &mut q, &plain);
            positions.iter().map(|&p| q[p as usize]).collect()
        }
    };
    let shared = assign(&book, &shared_values, bias_values);
    let report = CalibrationReport {
        samples: stats.samples(),
        dead_inputs: stats.sq_norms().iter().filter(|&&v| v == 0.0).count(),
        damp: factor.as_ref().map(Factor::damp),
        rows_without_prune_update: prune_guard.as_ref().map(|g| g.taken),
        rows_without_share_update: share_guard.as_ref().map(|g| g.taken),
        output_error_pruned: prune_guard.as_ref().and_then(|g| relative(sum(&g.kept))),
        output_error_shared: share_guard.as_ref().and_then(|g| relative(sum(&g.kept))),
        output_error_pruned_without_update: prune_guard
            .as_ref()
            .and_then(|g| relative(sum(&g.fallback))),
    };
    Ok(CalibratedLayer {
        positions,
        values,
        prune,
        shared,
        report,
    })
}

/// A matrix pruned with calibration statistics.
struct Pruned {
    /// The damped inverse Hessian's factor (with the update or the OBS score).
    factor: Option<Factor>,
    /// The original values where the mask keeps them, zero elsewhere.
    masked: Vec<f32>,
    /// The pruned matrix: `masked`, or with the update the kept weights compensated.
    pruned: Vec<f32>,
    /// What pruning did.
    prune: PruneReport,
    /// With the update: the rows it made worse, left without it.
    guard: Option<Guarded>,
}

/// Prunes `w` (`lp`'s `[rows, inputs]` matrix) by `lp`'s score and group with `stats`, and
/// with `update obs` compensates the kept weights (rows the update makes worse keep the
/// plain mask).
fn prune_step(lp: &LayerPlan, w: &[f32], rule: Rule, pes: usize, stats: &Stats) -> Result<Pruned> {
    let s = &lp.settings;
    let (rows, cols) = (lp.rows, lp.inputs);
    let layer_err = |reason: String| Error::Layer {
        layer: lp.name.clone(),
        reason,
    };
    if stats.cols() != cols {
        return Err(layer_err(format!(
            "calibration statistics of {} inputs for a layer of {cols}",
            stats.cols()
        )));
    }
    // The update's factor (also the OBS score's).
    let factor = if s.needs_hessian() {
        let h = stats
            .hessian()
            .ok_or_else(|| layer_err("the OBS update and score need the inputs' Hessian".into()))?;
        Some(Factor::new(h, cols, DAMP).map_err(|e| layer_err(format!("calibration: {e}")))?)
    } else {
        None
    };
    let scores = scores(s.prune_score, stats, factor.as_ref(), w, cols);
    let group = if s.per_row {
        Group::Row
    } else if s.balance {
        Group::Pes(pes)
    } else {
        Group::Layer
    };
    let mut masked = w.to_vec();
    let prune = eie_prune::prune_scored(&mut masked, &scores, rows, cols, rule, group).map_err(
        |error| Error::Prune {
            layer: lp.name.clone(),
            error,
        },
    )?;
    drop(scores);
    let mut guard = None;
    let pruned = match factor.as_ref().filter(|_| s.update == Update::Obs) {
        None => masked.clone(),
        Some(f) => {
            let mut p = w.to_vec();
            compensate(&mut p, rows, f, &|r, c, v| {
                if masked[r * cols + c] != 0.0 { v } else { 0.0 }
            })
            .map_err(|e| layer_err(format!("calibration: {e}")))?;
            guard = stats.keep_better(w, &mut p, &masked);
            p
        }
    };
    Ok(Pruned {
        factor,
        masked,
        pruned,
        prune,
        guard,
    })
}

/// Prunes `w` (`lp`'s `[rows, inputs]` matrix) in place by `lp`'s score, group and update
/// with `stats` (the calibration of its inputs), the updated survivors rounded to the
/// weights' dtype: a round of retraining's pruning when the layer is calibrated. Pruned
/// weights are exactly zero.
pub fn prune_calibrated(
    lp: &LayerPlan,
    w: &mut [f32],
    rule: Rule,
    pes: usize,
    stats: &Stats,
) -> Result<PruneReport> {
    let p = prune_step(lp, w, rule, pes, stats)?;
    for ((v, &m), &u) in w.iter_mut().zip(&p.masked).zip(&p.pruned) {
        *v = if m != 0.0 { round_to(lp.dtype, u) } else { 0.0 };
    }
    Ok(p.prune)
}

/// A round of retraining's pruning of `w` (`lp`'s `[rows, inputs]` matrix, in place):
/// with `stats` (a calibrated layer) by [`prune_calibrated`], else by
/// [`crate::prune_matrix`].
pub fn prune_retrained(
    lp: &LayerPlan,
    w: &mut [f32],
    rule: Rule,
    pes: usize,
    stats: Option<&Stats>,
) -> Result<PruneReport> {
    match stats {
        Some(stats) => prune_calibrated(lp, w, rule, pes, stats),
        None => {
            crate::prune_matrix(w, lp.rows, lp.inputs, rule, &lp.settings, pes).map_err(|error| {
                Error::Prune {
                    layer: lp.name.clone(),
                    error,
                }
            })
        }
    }
}

/// What each value of a retrained layer counts for in its codebook, when its settings weight
/// it: the calibration statistics (`codebook_weight activation`), or the survivors' squared
/// gradients and one weight for every folded bias value (`codebook_weight gradient`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Sensitivity<'a> {
    /// The layer's calibration statistics.
    pub stats: Option<&'a Stats>,
    /// A weight per survivor, and one for the folded bias's values.
    pub gradients: Option<(&'a [f64], f64)>,
}

/// Retraining's weight sharing of `lp`'s survivors `values` (at flat `positions`) and folded
/// bias: [`codebook_retrained`], every value taking its nearest shared value (the sharing's
/// error is left to centroid fine-tuning, not to the update). Unweighted, [`crate::share`].
pub fn share_retrained(
    lp: &LayerPlan,
    positions: &[u64],
    values: &[f32],
    bias: &[f32],
    by: Sensitivity,
) -> Result<Shared> {
    let book = codebook_retrained(lp, positions, values, bias, by)?;
    Ok(assign(&book, values, bias))
}

/// Retraining's codebook of `lp`'s survivors `values` (at flat `positions`) and folded bias:
/// the pipeline's clustering, each value weighted as `lp`'s `codebook_weight` asks (by its
/// column's calibration energy, or by its squared gradients); a weighting whose data `by`
/// lacks is an error. Unweighted, [`crate::codebook`].
pub fn codebook_retrained(
    lp: &LayerPlan,
    positions: &[u64],
    values: &[f32],
    bias: &[f32],
    by: Sensitivity,
) -> Result<Codebook> {
    let bias_dtype = lp.bias.as_ref().map(|b| b.dtype);
    let missing = |what: &str| Error::Layer {
        layer: lp.name.clone(),
        reason: format!(
            "its codebook is weighted by {what}, which this run did not gather ({})",
            match lp.settings.codebook_weight {
                CodebookWeight::Gradient => {
                    "they come from --retrain's last epoch of masked fine-tuning, in which the layer had no gradient"
                }
                _ => "give --calibration",
            }
        ),
    };
    let activation;
    let weights: Option<(&[f64], f64)> = match lp.settings.codebook_weight {
        CodebookWeight::None => None,
        CodebookWeight::Activation => {
            let st = by.stats.ok_or_else(|| missing("calibration energy"))?;
            activation = codebook_weights(CodebookWeight::Activation, st, positions, lp.inputs);
            activation.as_ref().map(|(w, b)| (w.as_slice(), *b))
        }
        CodebookWeight::Gradient => {
            let (w, b) = by.gradients.ok_or_else(|| missing("squared gradients"))?;
            if w.len() != values.len() {
                return Err(Error::Layer {
                    layer: lp.name.clone(),
                    reason: format!(
                        "{} squared gradients for {} survivors",
                        w.len(),
                        values.len()
                    ),
                });
            }
            Some((w, b))
        }
    };
    weighted_codebook(
        &lp.name,
        values,
        bias,
        weights,
        &lp.settings,
        lp.dtype,
        bias_dtype,
    )
}

/// Each weight's pruning score: |w|, or |w| times its column's factor over the factors'
/// mean (the same order of scores, none of a live column's underflowing to zero in f32: a
/// zero score is never kept). Wanda's factor is the column's input norm, the optimal brain
/// surgeon's `1 / sqrt([H^-1]_jj)`.
fn scores(
    score: PruneScore,
    stats: &Stats,
    factor: Option<&Factor>,
    w: &[f32],
    cols: usize,
) -> Vec<f32> {
    let column: Vec<f64> = match (score, factor) {
        (PruneScore::Magnitude, _) => return w.iter().map(|v| v.abs()).collect(),
        (PruneScore::Activation, _) => stats.norms(),
        (PruneScore::Obs, Some(f)) => f
            .inverse_diagonal()
            .iter()
            .map(|d| 1.0 / d.sqrt())
            .collect(),
        (PruneScore::Obs, None) => unreachable!("the OBS score has its factor made first"),
    };
    let mean = column.iter().sum::<f64>() / column.len().max(1) as f64;
    let scale = if mean > 0.0 { 1.0 / mean } else { 1.0 };
    w.par_iter()
        .enumerate()
        .map(|(i, v)| (v.abs() as f64 * column[i % cols] * scale).min(f32::MAX as f64) as f32)
        .collect()
}

/// What each survivor (at `positions`) and each folded bias value counts for in the
/// codebook: nothing special, or its column's `||X_j||^2` (a bias value's input is 1 on
/// every sample; a dead column's values still need a weight > 0: a millionth of the mean).
fn codebook_weights(
    weight: CodebookWeight,
    stats: &Stats,
    positions: &[u64],
    cols: usize,
) -> Option<(Vec<f64>, f64)> {
    if weight != CodebookWeight::Activation {
        return None;
    }
    let sq = stats.sq_norms();
    let live: Vec<f64> = sq.iter().copied().filter(|&v| v > 0.0).collect();
    let mean = if live.is_empty() {
        1.0
    } else {
        live.iter().sum::<f64>() / live.len() as f64
    };
    let floor = 1e-6 * mean;
    let w = positions
        .iter()
        .map(|&p| sq[p as usize % cols].max(floor))
        .collect();
    Some((w, (stats.samples() as f64).max(floor)))
}

#[cfg(test)]
mod tests {
    use eie_checkpoint::Dtype;
    use eie_rng::Rng;

    use super::*;
    use crate::settings::LayerSettings;
    use crate::share::share;

    fn layer(rows: usize, inputs: usize, settings: LayerSettings) -> LayerPlan {
        LayerPlan {
            name: "fc.weight".into(),
            tensor: "fc.weight".into(),
            transposed: false,
            rows,
            inputs,
            dtype: Dtype::F32,
            bias: None,
            settings,
        }
    }

    /// Inputs with a few loud columns (a transformer's outlier channels).
    fn stats(rng: &mut Rng, cols: usize, hessian: bool) -> Stats {
        let tokens = 3 * cols;
        let x: Vec<f32> = (0..tokens * cols)
            .map(|i| {
                let loud = if i % cols < 3 { 8.0 } else { 1.0 };
                (rng.normal() * loud) as f32
            })
            .collect();
        let mut s = Stats::new(cols, hessian);
        s.add(&x, tokens).unwrap();
        s
    }

    #[test]
    fn magnitude_without_an_update_is_the_plain_flow() {
        let mut rng = Rng::new(1);
        let (rows, cols) = (12, 20);
        let w: Vec<f32> = (0..rows * cols).map(|_| rng.normal() as f32).collect();
        let lp = layer(rows, cols, LayerSettings::default());
        let st = stats(&mut rng, cols, false);
        let c = calibrated(&lp, w.clone(), Rule::Density(0.4), 4, &st, None).unwrap();
        let mut plain = w.clone();
        let report = eie_prune::prune(&mut plain, rows, cols, Rule::Density(0.4), None).unwrap();
        let positions: Vec<u64> = (0..plain.len() as u64)
            .filter(|&i| plain[i as usize] != 0.0)
            .collect();
        let values: Vec<f32> = positions.iter().map(|&i| plain[i as usize]).collect();
        assert_eq!(
            (&c.positions, &c.values, &c.prune),
            (&positions, &values, &report)
        );
        let sh = share("fc.weight", &values, &[], &lp.settings, Dtype::F32, None).unwrap();
        assert_eq!((&c.shared.values, &c.shared.codes), (&sh.values, &sh.codes));
        assert_eq!(
            c.report.output_error_pruned, None,
            "no Hessian, no output error"
        );
    }

    #[test]
    fn activation_scores_keep_the_loud_columns_and_the_update_lowers_the_error() {
        let mut rng = Rng::new(2);
        let (rows, cols) = (16, 24);
        let w: Vec<f32> = (0..rows * cols).map(|_| rng.normal() as f32).collect();
        let settings = LayerSettings {
            prune_score: PruneScore::Activation,
            per_row: true,
            update: Update::Obs,
            codebook_weight: CodebookWeight::Activation,
            ..LayerSettings::default()
        };
        let lp = layer(rows, cols, settings);
        let st = stats(&mut rng, cols, true);
        let c = calibrated(&lp, w.clone(), Rule::Density(0.25), 4, &st, None).unwrap();
        // Per row: 6 of 24 each; the loud columns' weights, scored 8x, mostly among them.
        assert_eq!(c.positions.len(), rows * 6);
        let loud = c
            .positions
            .iter()
            .filter(|&&p| (p as usize % cols) < 3)
            .count();
        assert!(loud >= rows * 2, "{loud} kept of the loud columns");
        let r = &c.report;
        let (pruned, without) = (
            r.output_error_pruned.unwrap(),
            r.output_error_pruned_without_update.unwrap(),
        );
        assert!(pruned < without, "{pruned} vs {without}");
        assert!(r.output_error_shared.unwrap() >= pruned * 0.5);
        assert_eq!(r.samples, 72);
        // Every code is a shared value of the codebook, and a kept value's.
        assert!(
            c.shared
                .codes
                .iter()
                .all(|&k| (k as usize) <= c.shared.values.len())
        );
        // The OBS saliency without the update: the same count kept, the kept values the
        // originals, a factor made (its dampening reported).
        let obs_score = LayerSettings {
            prune_score: PruneScore::Obs,
            ..LayerSettings::default()
        };
        let o = calibrated(
            &layer(rows, cols, obs_score),
            w.clone(),
            Rule::Density(0.25),
            4,
            &st,
            None,
        )
        .unwrap();
        assert_eq!(o.positions.len(), rows * cols / 4);
        assert!(
            o.positions
                .iter()
                .zip(&o.values)
                .all(|(&p, &v)| w[p as usize] == v)
        );
        assert_eq!(o.report.damp, Some(DAMP));
        assert_ne!(o.positions, c.positions, "another score, another mask");
        // An F16 layer's updated values are ones F16 holds (what its pruned checkpoint gets).
        let mut half = layer(rows, cols, lp.settings.clone());
        half.dtype = Dtype::F16;
        let h = calibrated(&half, w.clone(), Rule::Density(0.25), 4, &st, None).unwrap();
        assert!(h.values.iter().all(|&v| round_to(Dtype::F16, v) == v));
        assert!(
            h.shared
                .values
                .iter()
                .all(|&v| round_to(Dtype::F16, v) == v)
        );
        // A layer's statistics of another width are refused by name.
        let other = stats(&mut rng, cols + 1, true);
        let e = calibrated(&lp, w, Rule::Density(0.25), 4, &other, None)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("fc.weight") && e.contains("25 inputs"), "{e}");
    }
}
