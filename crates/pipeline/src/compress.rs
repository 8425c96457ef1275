//! The compress flow: checkpoint -> prune -> share -> pack, one layer resident at a time.
//!
//! Each layer is pruned straight from the checkpoint file into a list of survivors,
//! clustered, turned into codes, packed, fitted to the hardware, and written (its images and
//! its part of `model.eie`) before the next layer is read; the checkpoint is hashed on
//! another thread meanwhile. Memory holds one layer's survivors and streams, whatever the
//! number of layers.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use eie_checkpoint::{Checkpoint, check_finite};
use eie_format::{
    BUNDLE_FILE, BundleMeta, BundleWriter, Codebook, PackedLayer, SourceInfo, SparseCodes,
};
use eie_images::{Fit, ImageWriter};
use eie_prune::{Global, PruneReport, Rule};
use rayon::prelude::*;

use eie_calibrate::Stats;

use crate::calibrated::{Calibration, calibrated};
use crate::dense::DenseCheckpoints;
use crate::error::{Error, Result};
use crate::observer::Observer;
use crate::plan::{LayerPlan, Plan};
use crate::provenance::Provenance;
use crate::report::{LayerOutcome, LayerReport, Report, WeightHistogram, deep_compression_entries};
use crate::settings::{CodebookWeight, LayerSettings, Pruning, RunSettings, Update};
use crate::share::{Shared, share};

/// A compress run, resolved.
#[derive(Debug, Clone)]
pub struct Job<'a> {
    /// The layers and their settings.
    pub plan: &'a Plan,
    /// Processing elements; row i of a layer goes to PE i mod N.
    pub pes: usize,
    /// How layers are fitted to the hardware.
    pub fit: Fit,
    /// Run-wide settings.
    pub run: RunSettings,
    /// The tool's version, recorded in the bundle and the manifest.
    pub tool_version: &'a str,
    /// What the bundle records about how it was made, besides the layers' own lines.
    pub provenance: Provenance,
    /// Calibration statistics, for the layers whose settings need them.
    pub calibration: Option<&'a Calibration>,
}

/// A layer whose pruning and weight sharing were decided before the pipeline (by
/// retraining): the pipeline writes and packs it as it is.
#[derive(Debug, Clone)]
pub struct Decided {
    /// Flat row-major positions of the surviving weights, ascending.
    pub positions: Vec<u64>,
    /// Their values (after fine-tuning), for the pruned checkpoint.
    pub values: Vec<f32>,
    /// The folded bias's values (after fine-tuning), for the pruned checkpoint.
    pub bias: Option<Vec<f32>>,
    /// What pruning did.
    pub prune: PruneReport,
    /// The weight sharing.
    pub shared: Shared,
}

/// What retraining hands the pipeline.
#[derive(Debug, Clone, Default)]
pub struct Retrained {
    /// One per planned layer.
    pub decided: Vec<Decided>,
    /// Biases that changed but are not folded into their layer (`--no-bias-column`).
    pub overrides: HashMap<String, Vec<f32>>,
}

/// Wall time per stage, summed over layers.
#[derive(Debug, Default, Clone)]
pub struct Timings {
    /// Reading biases.
    pub read: Duration,
    /// Pruning (reading the weights as they are scanned).
    pub prune: Duration,
    /// Clustering.
    pub cluster: Duration,
    /// Assigning codes and measuring the error.
    pub assign: Duration,
    /// Encoding the PE streams and fitting them.
    pub encode: Duration,
    /// Writing images, the bundle and the dense checkpoints.
    pub write: Duration,
    /// Waiting, at the end, for the checkpoint's hash (taken on another thread meanwhile).
    pub hash_wait: Duration,
}

/// What a run produced in its folder.
#[derive(Debug, Clone)]
pub struct Compressed {
    /// The bundle's metadata, as written.
    pub meta: BundleMeta,
    /// The figures of every layer.
    pub report: Report,
    /// Image files written.
    pub files: usize,
    /// Whether the dense checkpoints were written.
    pub dense_checkpoints: bool,
    /// Where the time went.
    pub timings: Timings,
}

/// The source record of a checkpoint file: its name (no folders) and SHA-256.
pub fn source_info(path: &Path, sha256: [u8; 32]) -> SourceInfo {
    SourceInfo {
        name: path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        sha256: Some(sha256),
    }
}

/// Writes a packed model into a folder part by part: its images and its `model.eie`.
pub(crate) struct PackedWriter {
    images: ImageWriter,
    bundle: BundleWriter,
    files: usize,
}

impl PackedWriter {
    pub(crate) fn create(dir: &Path, pointer_bits: u8) -> Result<Self> {
        Ok(Self {
            images: ImageWriter::new(dir, pointer_bits),
            bundle: BundleWriter::create(&dir.join(".model.eie.spool"), pointer_bits)?,
            files: 0,
        })
    }

    pub(crate) fn push(&mut self, parts: &[PackedLayer]) -> Result<()> {
        for part in parts {
            self.bundle.push(part)?;
            self.files += self.images.push(part)?;
        }
        Ok(())
    }

    /// Writes `model.eie` and `manifest.json`; returns the number of image files.
    pub(crate) fn finish(self, meta: &BundleMeta, dir: &Path) -> Result<usize> {
        self.bundle.finish(meta, &dir.join(BUNDLE_FILE))?;
        self.images.finish(&meta.tool_version, &meta.source)?;
        Ok(self.files)
    }
}

/// Runs the pipeline into `dir` (a staging folder): the images, `manifest.json` and
/// `model.eie`, and with [`RunSettings::dense_checkpoints`] the two dense checkpoints.
///
/// With `retrained`, pruning and clustering are skipped: its decided survivors and codes (one
/// per planned layer) are written and packed, and its overrides replace the values of other
/// tensors in the dense checkpoints.
pub fn compress(
    ck: &Checkpoint,
    job: &Job,
    retrained: Option<Retrained>,
    dir: &Path,
    observer: &dyn Observer,
) -> Result<Compressed> {
    let plan = job.plan;
    if job.run.dense_checkpoints {
        plan.check_dense_checkpoints()?;
    }
    let hash = ck.spawn_sha256();
    let mut timings = Timings::default();
    let (decided, overrides): (Vec<Option<Decided>>, HashMap<String, Vec<f32>>) = match retrained {
        Some(r) => {
            if r.decided.len() != plan.layers.len() {
                return Err(Error::Plan {
                    reason: format!(
                        "retraining decided {} layers, the plan has {}",
                        r.decided.len(),
                        plan.layers.len()
                    ),
                });
            }
            (r.decided.into_iter().map(Some).collect(), r.overrides)
        }
        None => (plan.layers.iter().map(|_| None).collect(), HashMap::new()),
    };
    let global = match (plan.global_density(), decided.iter().all(Option::is_none)) {
        (Some(d), true) => global_counts(ck, plan, d, observer)?,
        _ => Vec::new(),
    };
    let mut dense = if job.run.dense_checkpoints {
        Some(DenseCheckpoints::create(ck, plan, dir, job.tool_version)?)
    } else {
        None
    };
    let mut out = PackedWriter::create(dir, job.fit.pointer_bits)?;
    let mut layers = Vec::with_capacity(plan.layers.len());
    // Every layer's SRAM overflows, listed together before the run fails (or warned of).
    let mut overflows = Vec::new();
    observer.start("compress", plan.layers.len() as u64);
    for (i, (lp, decided)) in plan.layers.iter().zip(decided).enumerate() {
        observer.step(&lp.name);
        let source = match decided {
            Some(d) => Source::Decided(Box::new(d)),
            None => Source::Prune(rule(lp.settings.pruning, global.get(i).copied())?),
        };
        let stats = job.calibration.and_then(|c| c.layers.get(&lp.name));
        let (layer, outcome) =
            compress_layer(ck, lp, source, job.pes, stats, dense.as_mut(), &mut timings)?;
        let t = Instant::now();
        let placed = job.fit.place_all(layer)?;
        timings.encode += t.elapsed();
        if job.fit.allow_overflow {
            for o in &placed.overflows {
                observer.warn(&o.to_string());
            }
        }
        overflows.extend(placed.overflows.iter().cloned());
        let t = Instant::now();
        out.push(&placed.parts)?;
        timings.write += t.elapsed();
        layers.push(LayerReport::new(
            lp,
            &outcome,
            &placed.parts,
            job.fit.pointer_bits,
        ));
        observer.advance();
    }
    observer.finish();
    job.fit.check_overflows(overflows)?;
    let t = Instant::now();
    if let Some(d) = dense {
        d.finish(ck, &overrides)?;
    }
    timings.write += t.elapsed();
    let t = Instant::now();
    let sha256 = hash.wait()?;
    timings.hash_wait = t.elapsed();
    let mut settings = job.provenance.settings();
    settings.extend(plan.provenance());
    let meta = BundleMeta {
        tool_version: job.tool_version.to_string(),
        source: source_info(ck.path(), sha256),
        pointer_bits: job.fit.pointer_bits,
        settings,
    };
    let t = Instant::now();
    let files = out.finish(&meta, dir)?;
    timings.write += t.elapsed();
    let report = Report::new(&meta, job.pes, layers, &plan.skipped);
    Ok(Compressed {
        meta,
        report,
        files,
        dense_checkpoints: job.run.dense_checkpoints,
        timings,
    })
}

/// One layer through prune, share and pack, in memory (what [`compress`] does to every layer
/// before writing it): its packed streams (whole, before column batches) and what pruning and
/// sharing did, adding the time of each stage to `timings`. A global density needs every
/// layer: [`compress`] runs it.
pub fn compress_one(
    ck: &Checkpoint,
    plan: &LayerPlan,
    pes: usize,
    timings: &mut Timings,
) -> Result<(PackedLayer, LayerOutcome)> {
    let rule = rule(plan.settings.pruning, None)?;
    compress_layer(ck, plan, Source::Prune(rule), pes, None, None, timings)
}

/// The pruning rule of a layer's setting; a global density keeps `global_count` weights (the
/// layer's share, which only a pass over every layer finds).
fn rule(pruning: Pruning, global_count: Option<u64>) -> Result<Rule> {
    Ok(match pruning {
        Pruning::None => Rule::KeepAll,
        Pruning::Density(d) => Rule::Density(d),
        Pruning::ThresholdStd(s) => Rule::ThresholdStd(s),
        Pruning::Global(_) => Rule::Count(global_count.ok_or_else(|| Error::Plan {
            reason: "a global density needs every layer: run the whole pipeline".into(),
        })?),
    })
}

/// For a global density: the count each layer keeps (two streaming passes over the layers).
fn global_counts(
    ck: &Checkpoint,
    plan: &Plan,
    density: f64,
    observer: &dyn Observer,
) -> Result<Vec<u64>> {
    let total: u64 = plan.layers.iter().map(|l| (l.rows * l.inputs) as u64).sum();
    let mut g = Global::new(density, total).map_err(|error| Error::Prune {
        layer: "every layer".into(),
        error,
    })?;
    observer.start("global threshold", 2 * plan.layers.len() as u64);
    for pass in 0..2 {
        for l in &plan.layers {
            observer.step(&l.name);
            // Order does not matter to a count: a transposed tensor is read as stored.
            let m = ck.read_matrix(&l.tensor)?;
            if pass == 0 {
                g.first_pass(&m.data)
            } else {
                g.second_pass(&m.data)
            }
            observer.advance();
        }
    }
    observer.finish();
    Ok(g.counts())
}

/// Elements per parallel item when summing.
const CHUNK: usize = 1 << 20;

/// The surviving weights of a layer: flat row-major positions (ascending) and values.
struct Survivors {
    positions: Vec<u64>,
    values: Vec<f32>,
    report: PruneReport,
    histogram: WeightHistogram,
}

/// The histogram of a layer's weights `before` pruning and its survivors `kept`, over the
/// largest |w| of either (both in memory).
fn histogram_pair(before: &[f32], kept: &[f32]) -> WeightHistogram {
    let limit = eie_prune::max_abs_of(before).max(eie_prune::max_abs_of(kept));
    let bins = eie_prune::HISTOGRAM_BINS;
    WeightHistogram::new(
        limit,
        Some(eie_prune::histogram_of(before, limit, bins)),
        kept,
    )
}

/// Prunes a layer's `rows x cols` matrix in place by magnitude, compared as its settings
/// say: within each row (`per_row`), within each PE's rows (`balance`), or the whole layer.
/// The one rule every path that prunes a matrix in memory takes (balanced and per-row
/// pruning here, retraining's rounds).
pub fn prune_matrix(
    w: &mut [f32],
    rows: usize,
    cols: usize,
    rule: Rule,
    settings: &LayerSettings,
    pes: usize,
) -> std::result::Result<PruneReport, eie_prune::Error> {
    if settings.per_row {
        let scores: Vec<f32> = w.iter().map(|v| v.abs()).collect();
        eie_prune::prune_scored(w, &scores, rows, cols, rule, eie_prune::Group::Row)
    } else {
        eie_prune::prune(w, rows, cols, rule, settings.balance.then_some(pes))
    }
}

/// Prunes a layer. Plain rules select straight from the tensor in the file (no f32 copy);
/// balanced and per-row pruning need every row at once, so they prune an f32 copy in place.
fn survivors(ck: &Checkpoint, lp: &LayerPlan, rule: Rule, pes: usize) -> Result<Survivors> {
    let (name, rows, inputs) = (&lp.name, lp.rows, lp.inputs);
    let prune_err = |error| Error::Prune {
        layer: name.clone(),
        error,
    };
    if lp.settings.balance || lp.settings.per_row {
        let mut w = layer_matrix(ck, lp)?;
        // Counted before pruning zeroes them; the survivors are among these values.
        let limit = eie_prune::max_abs_of(&w);
        let before = eie_prune::histogram_of(&w, limit, eie_prune::HISTOGRAM_BINS);
        let report =
            prune_matrix(&mut w, rows, inputs, rule, &lp.settings, pes).map_err(prune_err)?;
        let (positions, values): (Vec<u64>, Vec<f32>) = w
            .iter()
            .enumerate()
            .filter(|&(_, &v)| v != 0.0)
            .map(|(i, &v)| (i as u64, v))
            .unzip();
        let histogram = WeightHistogram::new(limit, Some(before), &values);
        return Ok(Survivors {
            positions,
            values,
            report,
            histogram,
        });
    }
    if lp.transposed {
        // Stored [inputs, rows]: selected from the layer's own [rows, inputs] copy.
        let w = layer_matrix(ck, lp)?;
        let read = |first: usize, out: &mut [f32]| {
            out.copy_from_slice(&w[first..first + out.len()]);
        };
        let sel = eie_prune::select(w.len(), &read, rule).map_err(prune_err)?;
        return Ok(Survivors {
            histogram: histogram_pair(&w, &sel.values),
            positions: sel.positions,
            values: sel.values,
            report: sel.report,
        });
    }
    let reader = ck.reader(&lp.tensor)?;
    // The selection reads through an infallible callback: the first read error is kept (the
    // block read as zeros meanwhile) and returned after it.
    let failed = std::sync::Mutex::new(None);
    let read = |first: usize, out: &mut [f32]| {
        if let Err(e) = reader.read(first, out) {
            out.fill(0.0);
            failed.lock().expect("not poisoned").get_or_insert(e);
        }
    };
    let selected = eie_prune::select(reader.len(), &read, rule).map(|sel| {
        // One more pass for the histogram. Every plain rule keeps the largest magnitudes,
        // so the survivors hold the largest |w| unless none survive.
        let limit = match eie_prune::max_abs_of(&sel.values) {
            0.0 => eie_prune::max_abs(reader.len(), &read),
            m => m,
        };
        let before = eie_prune::histogram(reader.len(), &read, limit, eie_prune::HISTOGRAM_BINS);
        (WeightHistogram::new(limit, Some(before), &sel.values), sel)
    });
    if let Some(e) = failed.into_inner().expect("not poisoned") {
        return Err(e.into());
    }
    match selected {
        Ok((histogram, sel)) => Ok(Survivors {
            positions: sel.positions,
            values: sel.values,
            report: sel.report,
            histogram,
        }),
        Err(eie_prune::Error::NonFinite { index, value }) => {
            Err(eie_checkpoint::Error::NonFinite {
                tensor: name.to_string(),
                index,
                row: index / inputs.max(1),
                col: index % inputs.max(1),
                value,
            }
            .into())
        }
        Err(e) => Err(prune_err(e)),
    }
}

/// A layer's weights as an f32 `[rows, inputs]` matrix, every value finite: its tensor as
/// stored, or transposed.
fn layer_matrix(ck: &Checkpoint, lp: &LayerPlan) -> Result<Vec<f32>> {
    let m = ck.read_matrix(&lp.tensor)?;
    if !lp.transposed {
        return Ok(m.data);
    }
    if (m.rows, m.cols) != (lp.inputs, lp.rows) {
        return Err(Error::Layer {
            layer: lp.name.clone(),
            reason: format!(
                "reads {} transposed, which must be [{}, {}], not [{}, {}]",
                lp.tensor, lp.inputs, lp.rows, m.rows, m.cols
            ),
        });
    }
    Ok(eie_checkpoint::transpose(&m.data, m.rows, m.cols))
}

/// A layer's folded bias, every value finite.
fn read_bias(ck: &Checkpoint, lp: &LayerPlan) -> Result<Option<Vec<f32>>> {
    match &lp.bias {
        Some(b) => {
            let v = ck.read_f32(&b.name)?;
            check_finite(&b.name, &v, 1)?;
            Ok(Some(v))
        }
        None => Ok(None),
    }
}

/// A retrained layer's histogram. Retraining changed the weights: the checkpoint's, read
/// again, are the before (in any order: a histogram), when the matrix is one tensor of it.
fn retrained_histogram(ck: &Checkpoint, lp: &LayerPlan, kept: &[f32]) -> WeightHistogram {
    let h = match ck.read_f32(&lp.tensor) {
        Ok(w) if w.len() == lp.rows * lp.inputs => histogram_pair(&w, kept),
        _ => WeightHistogram::new(eie_prune::max_abs_of(kept), None, kept),
    };
    h.updated(true)
}

/// Where a layer's survivors and codes come from.
enum Source {
    /// Prune the checkpoint's tensor by this rule, then cluster.
    Prune(Rule),
    /// Decided already (retraining).
    Decided(Box<Decided>),
}

/// One layer through prune, share and pack; writes its dense checkpoints' tensors on the way.
#[allow(clippy::too_many_arguments)]
fn compress_layer(
    ck: &Checkpoint,
    lp: &LayerPlan,
    source: Source,
    pes: usize,
    stats: Option<&Stats>,
    mut dense: Option<&mut DenseCheckpoints>,
    timings: &mut Timings,
) -> Result<(PackedLayer, LayerOutcome)> {
    let s = &lp.settings;
    let name = &lp.name;

    // Prune (or take the decided survivors), in storage order, and the folded bias.
    let t = Instant::now();
    let mut calibration = None;
    if matches!(source, Source::Prune(_)) && s.codebook_weight == CodebookWeight::Gradient {
        return Err(Error::Layer {
            layer: name.clone(),
            reason: "its codebook is weighted by squared gradients (codebook_weight gradient), which only retraining gathers: give --retrain".into(),
        });
    }
    let (positions, values, prune, bias, decided_shared, tuned_bias, histogram) = match source {
        Source::Prune(rule) if s.needs_calibration() => {
            let stats = stats.ok_or_else(|| Error::Layer {
                layer: name.clone(),
                reason: "its settings (prune_score, update, codebook_weight) need calibration statistics: give --calibration".into(),
            })?;
            let bias = read_bias(ck, lp)?;
            let w = layer_matrix(ck, lp)?;
            check_finite(&lp.tensor, &w, lp.inputs)?;
            // Binned before calibration takes the matrix: survivors it updates past the
            // largest |w| count in the end bins.
            let limit = eie_prune::max_abs_of(&w);
            let before = eie_prune::histogram_of(&w, limit, eie_prune::HISTOGRAM_BINS);
            let c = calibrated(lp, w, rule, pes, stats, bias.as_deref())?;
            timings.prune += t.elapsed();
            calibration = Some(c.report);
            let histogram = WeightHistogram::new(limit, Some(before), &c.values)
                .updated(s.update != Update::None);
            (
                c.positions,
                c.values,
                c.prune,
                bias,
                Some(c.shared),
                false,
                histogram,
            )
        }
        Source::Prune(rule) => {
            let sv = survivors(ck, lp, rule, pes)?;
            timings.prune += t.elapsed();
            let t = Instant::now();
            let bias = read_bias(ck, lp)?;
            timings.read += t.elapsed();
            (
                sv.positions,
                sv.values,
                sv.report,
                bias,
                None,
                false,
                sv.histogram,
            )
        }
        Source::Decided(d) => {
            let d = *d;
            let histogram = retrained_histogram(ck, lp, &d.values);
            (
                d.positions,
                d.values,
                d.prune,
                d.bias,
                Some(d.shared),
                true,
                histogram,
            )
        }
    };
    if let Some(d) = dense.as_deref_mut() {
        let t = Instant::now();
        let tuned = if tuned_bias { bias.as_deref() } else { None };
        d.pruned(ck, lp, &positions, &values, tuned)?;
        timings.write += t.elapsed();
    }

    // Cluster the survivors and the non-zero biases (folded in, they share the codebook).
    let bias_values: &[f32] = bias.as_deref().unwrap_or(&[]);
    let t = Instant::now();
    let shared = match decided_shared {
        Some(sh) => sh,
        None => share(
            name,
            &values,
            bias_values,
            s,
            lp.dtype,
            lp.bias.as_ref().map(|b| b.dtype),
        )?,
    };
    let codebook = Codebook::new(s.code_bits, &shared.values).map_err(|e| Error::Layer {
        layer: name.clone(),
        reason: format!("codebook: {e}"),
    })?;
    timings.cluster += t.elapsed();
    let t = Instant::now();
    let value_of = |c: u8| shared.value(c);
    let (codes, bias_codes) = (&shared.codes, &shared.bias_codes);
    let sse =
        sum_sq_err(&values, codes, &value_of) + sum_sq_err(bias_values, bias_codes, &value_of);
    timings.assign += t.elapsed();
    if let Some(d) = dense {
        let t = Instant::now();
        d.quantized(lp, &positions, &shared)?;
        timings.write += t.elapsed();
    }

    // The layer's sparse codes, the bias as one more column.
    let t = Instant::now();
    let clustered = (codes.len() + bias_values.iter().filter(|&&v| v != 0.0).count()) as u64;
    drop(values);
    let sparse = sparse_codes(lp, positions, codes, bias.is_some().then_some(bias_codes))?;
    let dc_entries = deep_compression_entries(sparse.positions(), s.index_bits);
    let mut layer = PackedLayer::encode_sparse(name.clone(), &sparse, codebook, pes, s.index_bits)?;
    if let Some(b) = &lp.bias {
        layer = layer.with_bias(b.name.clone())?;
    }
    timings.encode += t.elapsed();
    Ok((
        layer,
        LayerOutcome {
            prune,
            clustering: shared.clustering,
            centroids: shared.values,
            sse,
            clustered,
            dc_entries,
            calibration,
            histogram,
        },
    ))
}

/// The codes of a layer's survivors as sparse codes of the packed matrix: row-major over
/// `inputs` columns, plus the bias as one more column when `bias_codes` is given. Survivors
/// whose shared value is zero (see [`share`]) are not stored.
fn sparse_codes(
    lp: &LayerPlan,
    positions: Vec<u64>,
    codes: &[u8],
    bias_codes: Option<&[u8]>,
) -> Result<SparseCodes> {
    let (rows, inputs) = (lp.rows, lp.inputs);
    let bad = |e: eie_format::Error| Error::Layer {
        layer: lp.name.clone(),
        reason: e.to_string(),
    };
    let Some(bias_codes) = bias_codes else {
        if !codes.contains(&0) {
            return SparseCodes::new(rows, inputs, positions, codes.to_vec()).map_err(bad);
        }
        let (pos, out): (Vec<u64>, Vec<u8>) = positions
            .into_iter()
            .zip(codes.iter().copied())
            .filter(|&(_, c)| c != 0)
            .unzip();
        return SparseCodes::new(rows, inputs, pos, out).map_err(bad);
    };
    let cols = inputs as u64 + 1;
    let mut pos = Vec::with_capacity(positions.len() + rows);
    let mut out = Vec::with_capacity(positions.len() + rows);
    let mut at = 0;
    for (r, &bc) in bias_codes.iter().enumerate() {
        let (start, end) = ((r * inputs) as u64, ((r + 1) * inputs) as u64);
        while at < positions.len() && positions[at] < end {
            if codes[at] != 0 {
                pos.push(r as u64 * cols + (positions[at] - start));
                out.push(codes[at]);
            }
            at += 1;
        }
        if bc != 0 {
            pos.push(r as u64 * cols + inputs as u64);
            out.push(bc);
        }
    }
    SparseCodes::new(rows, inputs + 1, pos, out).map_err(bad)
}

/// Sum of (value - shared value)^2, in fixed chunks summed in order (the same bits however
/// the chunks are scheduled).
fn sum_sq_err(values: &[f32], codes: &[u8], value_of: &(dyn Fn(u8) -> f32 + Sync)) -> f64 {
    let partials: Vec<f64> = values
        .par_chunks(CHUNK)
        .zip(codes.par_chunks(CHUNK))
        .map(|(v, c)| {
            v.iter()
                .zip(c)
                .map(|(&v, &c)| (v as f64 - value_of(c) as f64).powi(2))
                .sum()
        })
        .collect();
    partials.iter().sum()
}

#[cfg(test)]
mod tests {
    use eie_checkpoint::{Dtype, Writer, f32_bytes};
    use eie_format::Bundle;
    use eie_images::ColumnBatch;

    use super::*;
    use crate::output::{PRUNED_FILE, QUANTIZED_FILE};
    use crate::provenance::MadeBy;
    use crate::settings::{Assignments, LAYER_KNOBS};
    use crate::{LayerSettings, MatrixPlan, Quiet, Request};

    /// fc1 [16, 12] with a bias, fc2 [4, 16]: deterministic, distinct magnitudes.
    fn model(dir: &Path) -> Checkpoint {
        let w = |n: usize, k: usize| -> Vec<f32> {
            (0..n)
                .map(|i| (((i * 37 + k) % 101) as f32 - 50.0) / 64.0)
                .collect()
        };
        let path = dir.join("m.safetensors");
        let specs = vec![
            ("fc1.weight".to_string(), Dtype::F32, vec![16, 12]),
            ("fc1.bias".to_string(), Dtype::F32, vec![16]),
            ("fc2.weight".to_string(), Dtype::F32, vec![4, 16]),
        ];
        let mut f = Writer::create(&path, &Default::default(), &specs).unwrap();
        f.write_tensor(&f32_bytes(&w(192, 1))).unwrap();
        f.write_tensor(&f32_bytes(&w(16, 2))).unwrap();
        f.write_tensor(&f32_bytes(&w(64, 3))).unwrap();
        f.finish().unwrap();
        Checkpoint::open(&path).unwrap()
    }

    fn run(
        ck: &Checkpoint,
        settings: &[(&str, &str)],
        fit: Fit,
        dense: bool,
        dir: &Path,
    ) -> Compressed {
        let mut cli = Assignments::new();
        for (k, v) in settings {
            cli.set_text(LAYER_KNOBS, k, v).unwrap();
        }
        let plan = Plan::resolve(
            ck.header(),
            &Request {
                patterns: &[],
                cli: &cli,
                recipe: None,
                fold_bias: true,
            },
        )
        .unwrap();
        let job = Job {
            plan: &plan,
            pes: 3,
            fit,
            run: RunSettings {
                dense_checkpoints: dense,
            },
            tool_version: "test",
            provenance: Provenance::new(MadeBy::Compress, 3, 4, &fit),
            calibration: None,
        };
        std::fs::create_dir_all(dir).unwrap();
        compress(ck, &job, None, dir, &Quiet).unwrap()
    }

    /// A layer read transposed from a `[inputs, rows]` tensor (GPT-2's `Conv1D`) or from
    /// another tensor (a tied head) packs exactly as the same matrix stored as itself, by
    /// every pruning rule; dense checkpoints of either are refused before any work.
    #[test]
    fn transposed_and_borrowed_weights_pack_as_the_matrix_itself() {
        let tmp = tempfile::tempdir().unwrap();
        let fc1: Vec<f32> = (0..192)
            .map(|i| (((i * 37 + 1) % 101) as f32 - 50.0) / 64.0)
            .collect();
        let mut t = vec![0f32; 192];
        for r in 0..16 {
            for c in 0..12 {
                t[c * 16 + r] = fc1[r * 12 + c];
            }
        }
        let path = tmp.path().join("t.safetensors");
        let specs = vec![
            ("fc1.weight".to_string(), Dtype::F32, vec![16, 12]),
            ("conv.weight".to_string(), Dtype::F32, vec![12, 16]),
        ];
        let mut f = Writer::create(&path, &Default::default(), &specs).unwrap();
        f.write_tensor(&f32_bytes(&fc1)).unwrap();
        f.write_tensor(&f32_bytes(&t)).unwrap();
        f.finish().unwrap();
        let ck = Checkpoint::open(&path).unwrap();
        let matrix = |name: &str, tensor: &str, transposed| MatrixPlan {
            name: name.into(),
            tensor: tensor.into(),
            transposed,
            rows: 16,
            inputs: 12,
            dtype: Dtype::F32,
            bias: None,
            base: LayerSettings::default(),
        };
        for settings in [
            &[("density", "0.3")][..],
            &[("density", "0.3"), ("balance", "true")],
            &[("global_density", "0.5")],
        ] {
            let mut cli = Assignments::new();
            for (k, v) in settings {
                cli.set_text(LAYER_KNOBS, k, v).unwrap();
            }
            let request = Request {
                patterns: &[],
                cli: &cli,
                recipe: None,
                fold_bias: true,
            };
            let packed = |plan: &Plan, dir: &str, dense: bool| {
                let job = Job {
                    plan,
                    pes: 3,
                    fit: Fit::default(),
                    run: RunSettings {
                        dense_checkpoints: dense,
                    },
                    tool_version: "test",
                    provenance: Provenance::new(MadeBy::Compress, 3, 4, &Fit::default()),
                    calibration: None,
                };
                let dir = tmp.path().join(dir);
                std::fs::create_dir_all(&dir).unwrap();
                compress(&ck, &job, None, &dir, &Quiet).map(|_| {
                    Bundle::from_bytes(&std::fs::read(dir.join(BUNDLE_FILE)).unwrap()).unwrap()
                })
            };
            let plain = Plan::from_selected(
                vec![
                    matrix("fc1.weight", "fc1.weight", false),
                    matrix("conv.weight", "conv.weight", true),
                    matrix("head.weight", "fc1.weight", false),
                ],
                &request,
                Vec::new(),
            )
            .unwrap();
            let b = packed(&plain, "a", false).unwrap();
            let [a, c, h] = b.layers() else {
                panic!("three layers")
            };
            let codes = |l: &PackedLayer| {
                let s = PackedLayer::join_columns(std::slice::from_ref(l)).unwrap();
                (
                    s.positions().to_vec(),
                    s.codes().to_vec(),
                    l.codebook().clone(),
                )
            };
            assert_eq!(codes(c), codes(a), "{settings:?}");
            assert_eq!(codes(h), codes(a), "{settings:?}");
            let line = &b.meta().settings["layer.conv.weight"];
            assert!(
                line.ends_with("weights conv.weight transposed; bias none"),
                "{line}"
            );
            let err = packed(&plain, "b", true).unwrap_err().to_string();
            assert!(err.contains("conv.weight is stored transposed"), "{err}");
        }
    }

    #[test]
    fn the_streamed_outputs_are_one_consistent_model() {
        let tmp = tempfile::tempdir().unwrap();
        let ck = model(tmp.path());
        let out = tmp.path().join("out");
        let fit = Fit {
            column_batch: ColumnBatch::Columns(5),
            ..Fit::default()
        };
        let done = run(&ck, &[("density", "0.25")], fit, false, &out);
        let bundle = Bundle::from_bytes(&std::fs::read(out.join(BUNDLE_FILE)).unwrap()).unwrap();
        assert_eq!(bundle.meta(), &done.meta);
        assert_eq!(done.meta.source.sha256, Some(ck.sha256().unwrap()));
        // fc1: 13 columns with its bias in batches of 5; fc2: 16 columns.
        let parts: Vec<(&str, usize)> = bundle
            .layers()
            .iter()
            .map(|l| (l.name(), l.cols()))
            .collect();
        assert_eq!(
            parts,
            [
                ("fc1.weight", 5),
                ("fc1.weight", 5),
                ("fc1.weight", 3),
                ("fc2.weight", 5),
                ("fc2.weight", 5),
                ("fc2.weight", 5),
                ("fc2.weight", 1)
            ]
        );
        let images = eie_images::load(&out).unwrap();
        assert_eq!(images.layers, bundle.layers());
        assert_eq!(
            images
                .manifest
                .layers
                .iter()
                .map(|l| l.files.len())
                .sum::<usize>(),
            done.files
        );
        // The report's figures are the bundle's.
        let r = &done.report;
        assert_eq!(r.layers[0].pruning.kept, 48);
        assert_eq!(r.layers[1].pruning.kept, 16);
        let entries: usize = bundle.layers().iter().map(PackedLayer::entries).sum();
        assert_eq!(r.totals.entries, entries);
        let bytes: u64 = bundle
            .layers()
            .iter()
            .map(|l| eie_images::LayerBytes::of(l, 16).total())
            .sum::<u64>();
        // The report counts a layer's 32-byte codebook once, not once per batch.
        assert_eq!(bytes, r.totals.bytes.total + (7 - 2) * 32);
        assert!(!out.join(PRUNED_FILE).exists() && !out.join(QUANTIZED_FILE).exists());
        assert!(!out.join(".model.eie.spool").exists());
    }

    #[test]
    fn dense_checkpoints_hold_the_pruned_and_the_shared_values() {
        let tmp = tempfile::tempdir().unwrap();
        let ck = model(tmp.path());
        let out = tmp.path().join("out");
        run(
            &ck,
            &[("density", "0.5"), ("code_bits", "2")],
            Fit::default(),
            true,
            &out,
        );
        let bundle = Bundle::from_bytes(&std::fs::read(out.join(BUNDLE_FILE)).unwrap()).unwrap();
        let p = Checkpoint::open(out.join(PRUNED_FILE)).unwrap();
        let q = Checkpoint::open(out.join(QUANTIZED_FILE)).unwrap();
        let names: Vec<String> = q.tensors().into_iter().map(|t| t.name).collect();
        assert_eq!(names, ["fc1.weight", "fc1.bias", "fc2.weight"]);
        let original = ck.read_f32("fc2.weight").unwrap();
        let pruned = p.read_f32("fc2.weight").unwrap();
        assert_eq!(pruned.iter().filter(|&&v| v != 0.0).count(), 32);
        for (o, v) in original.iter().zip(&pruned) {
            assert!(*v == 0.0 || v == o);
        }
        // The quantized weights are what the images hold.
        let fc2 = bundle.layer("fc2.weight").unwrap();
        assert_eq!(q.read_f32("fc2.weight").unwrap(), fc2.dense());
        assert_eq!(
            p.read_f32("fc1.bias").unwrap(),
            ck.read_f32("fc1.bias").unwrap()
        );
    }

    #[test]
    fn a_global_density_keeps_its_share_over_all_layers() {
        let tmp = tempfile::tempdir().unwrap();
        let ck = model(tmp.path());
        let done = run(
            &ck,
            &[("global_density", "0.2")],
            Fit::default(),
            false,
            &tmp.path().join("g"),
        );
        let kept: u64 = done.report.layers.iter().map(|l| l.pruning.kept).sum();
        assert_eq!(kept, (0.2f64 * 256.0).round() as u64);
    }
}
