//! What the accuracy commands share (`train`, `eval`, `compress` with a dataset, `demo`):
//! dataset and scaling options, the scaling a model records, and the per-stage accuracy
//! table.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, bail};
use eie_checkpoint::Checkpoint;
use eie_dataset::{Dataset, SampleRange, Scaling, Spec};
use eie_evaluate::{Accuracy, Network, eie_accuracy, float_accuracy};
use eie_format::Bundle;
use eie_simulate::{Arith, LayerView, float};
use serde::Serialize;

use crate::commands::table::Table;
use crate::compress::{PRUNED_FILE, QUANTIZED_FILE};

/// Metadata keys `train` writes into a model, and the other commands read back.
pub mod meta {
    pub const ARCH: &str = "eie.arch";
    pub const DATASET: &str = "eie.dataset";
    pub const RANGE: &str = "eie.range";
    pub const SCALE: &str = "eie.scale";
    pub const MEAN: &str = "eie.mean";
    pub const STD: &str = "eie.std";
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScaleKind {
    /// Integer inputs (U8 pixels) divided by their type's largest value: [0, 1].
    Unit,
    /// Inputs as stored.
    Raw,
}

/// How inputs are scaled; each default is what the model records (`train` writes it), else
/// `unit`, mean 0, std 1.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ScaleOptions {
    /// unit: integer inputs (U8 pixels) divided by their type's largest value, to [0, 1];
    /// raw: as stored (float inputs are always taken as stored).
    #[arg(long, value_enum)]
    pub scale: Option<ScaleKind>,
    /// Subtracted from every input after --scale.
    #[arg(long, allow_negative_numbers = true)]
    pub mean: Option<f32>,
    /// Every input is divided by it after subtracting the mean.
    #[arg(long)]
    pub std: Option<f32>,
}

impl ScaleOptions {
    /// Whether any scaling option was given (they apply only to a dataset).
    pub fn is_set(&self) -> bool {
        self.scale.is_some() || self.mean.is_some() || self.std.is_some()
    }

    /// The scaling: given options first, then the model's metadata, then the defaults.
    pub fn resolve(&self, model_meta: &BTreeMap<String, String>) -> Result<Scaling> {
        let recorded = |key: &str| -> Result<Option<f32>> {
            model_meta
                .get(key)
                .map(|v| {
                    v.parse::<f32>()
                        .with_context(|| format!("model metadata {key} = \"{v}\" is not a number"))
                })
                .transpose()
        };
        let unit = match self.scale {
            Some(k) => k == ScaleKind::Unit,
            None => model_meta.get(meta::SCALE).is_none_or(|s| s != "raw"),
        };
        let s = Scaling {
            unit,
            mean: match self.mean {
                Some(m) => m,
                None => recorded(meta::MEAN)?.unwrap_or(0.0),
            },
            std: match self.std {
                Some(s) => s,
                None => recorded(meta::STD)?.unwrap_or(1.0),
            },
        };
        s.validate()?;
        Ok(s)
    }
}

/// The metadata that records a scaling.
pub fn scaling_meta(s: &Scaling) -> [(String, String); 3] {
    [
        (
            meta::SCALE.into(),
            if s.unit { "unit" } else { "raw" }.into(),
        ),
        (meta::MEAN.into(), s.mean.to_string()),
        (meta::STD.into(), s.std.to_string()),
    ]
}

/// Loads a dataset range, with its name in any error.
pub fn load(spec: &Spec, range: Option<SampleRange>, scaling: &Scaling) -> Result<Dataset> {
    Ok(eie_dataset::load(spec, range.unwrap_or_default(), scaling)?)
}

/// One stage's accuracy.
pub struct StageAccuracy {
    pub name: String,
    /// Weight density (non-zero weights / weights) of the stage's model.
    pub density: Option<f64>,
    pub accuracy: Accuracy,
    /// The training loss at the end of the training that made this stage, if any.
    pub train_loss: Option<f64>,
}

impl StageAccuracy {
    /// The float network's accuracy on `data`, as stage `name`.
    pub fn float(name: impl Into<String>, net: &Network, data: &Dataset) -> Result<Self> {
        Ok(Self {
            name: name.into(),
            density: Some(net.density()),
            accuracy: float_accuracy(net, data)?,
            train_loss: None,
        })
    }

    /// The progress line of the stage.
    pub fn line(&self) -> String {
        let a = &self.accuracy;
        format!(
            "{}: held-out top-1 {:.2}% ({}/{})",
            self.name,
            100.0 * a.top1(),
            a.correct,
            a.total
        )
    }
}

/// The float stages of an output folder: its pruned and its quantized checkpoint (the
/// network of `names` in each), those that are there.
pub fn checkpoint_stages(
    dir: &Path,
    names: &[String],
    data: &Dataset,
) -> Result<Vec<StageAccuracy>> {
    let mut stages = Vec::new();
    for (file, name) in [
        (PRUNED_FILE, "pruned (float)"),
        (QUANTIZED_FILE, "pruned + shared (float)"),
    ] {
        let path = dir.join(file);
        if path.is_file() {
            let ck = Checkpoint::open(&path)?;
            let net = Network::from_checkpoint(&ck, names)
                .with_context(|| format!("{}", path.display()))?;
            stages.push(StageAccuracy::float(name, &net, data)?);
        }
    }
    Ok(stages)
}

#[derive(Serialize)]
pub struct ClassReport {
    pub class: usize,
    pub correct: u64,
    pub total: u64,
    pub top1: f64,
}

#[derive(Serialize)]
pub struct StageReport {
    pub stage: String,
    pub density: Option<f64>,
    pub top1: f64,
    pub correct: u64,
    pub total: u64,
    /// top1 minus the first stage's top1, in percentage points.
    pub delta_pct: f64,
    /// Mean training loss of the last epoch of the training that made this stage.
    pub train_loss: Option<f64>,
    pub per_class: Vec<ClassReport>,
}

pub fn stage_reports(stages: &[StageAccuracy]) -> Vec<StageReport> {
    let base = stages.first().map_or(0.0, |s| s.accuracy.top1());
    stages
        .iter()
        .map(|s| StageReport {
            stage: s.name.clone(),
            density: s.density,
            top1: s.accuracy.top1(),
            correct: s.accuracy.correct,
            total: s.accuracy.total,
            delta_pct: 100.0 * (s.accuracy.top1() - base),
            train_loss: s.train_loss,
            per_class: s
                .accuracy
                .per_class
                .iter()
                .enumerate()
                .map(|(class, c)| ClassReport {
                    class,
                    correct: c.correct,
                    total: c.total,
                    top1: if c.total == 0 {
                        0.0
                    } else {
                        c.correct as f64 / c.total as f64
                    },
                })
                .collect(),
        })
        .collect()
}

/// The stages as a table: accuracy and its change against the first stage.
pub fn render_stages(stages: &[StageReport]) -> String {
    let mut t = Table::new(&["stage", "density", "top-1", "vs first", "correct"]);
    for s in stages {
        t.row(vec![
            s.stage.clone(),
            s.density
                .map(|d| format!("{:.2}%", 100.0 * d))
                .unwrap_or_default(),
            format!("{:.2}%", 100.0 * s.top1),
            format!("{:+.2}", s.delta_pct),
            format!("{}/{}", s.correct, s.total),
        ]);
    }
    t.render()
}

/// The bit-exact EIE model's stage on `data` (`ck`: the checkpoint the bundle was made from,
/// to name the stage), with activation fractions `given` or, when none are given,
/// calibrated on `data` itself; returns the fractions used.
pub fn eie_stage(
    ck: &Checkpoint,
    bundle: &Bundle,
    data: &Dataset,
    given: &[u8],
    arith: Arith,
) -> Result<(StageAccuracy, Vec<u8>)> {
    let views = LayerView::all(bundle);
    eie_evaluate::check_packed(&views, data)?;
    let fracs = if given.is_empty() {
        let inputs: Vec<Vec<f32>> = (0..data.len()).map(|i| data.input(i).to_vec()).collect();
        float::calibrate(&views, &inputs, arith.relu_last)
    } else {
        eie_simulate::fixed::check_fractions(given, views.len())?;
        given.to_vec()
    };
    let stage = StageAccuracy {
        name: eie_stage_name(ck, bundle),
        density: Some(bundle_density(bundle)),
        accuracy: eie_accuracy(&views, data, &fracs, arith)?,
        train_loss: None,
    };
    Ok((stage, fracs))
}

/// With a dataset, the selected layers must be the whole network: a selection whose last
/// layer feeds another 2-D weight of the checkpoint would measure (and retrain) a network
/// that ends in the middle of the model.
pub fn check_whole_network(ck: &Checkpoint, names: &[String]) -> Result<()> {
    let (Some(last), Ok(all)) = (names.last(), ck.select_layers(&[])) else {
        return Ok(());
    };
    let outputs = ck.info(last).map_or(0, |i| i.shape[0]);
    for other in all.iter().filter(|n| !names.contains(n)) {
        if ck.info(other).is_some_and(|i| i.shape[1] == outputs) {
            bail!(
                "the selected layers end at \"{last}\", but \"{other}\" (not selected) takes its {outputs} outputs: accuracy needs the whole network, so select every layer in order (by default all are) or name them all with --layers"
            );
        }
    }
    Ok(())
}

/// The bit-exact stage's name; it says so when the images leave out biases the checkpoint
/// has (`pack`, or `compress --no-bias-column`), since the float stages keep them.
fn eie_stage_name(ck: &Checkpoint, bundle: &Bundle) -> String {
    let missing = LayerView::all(bundle).iter().any(|v| {
        !v.has_bias()
            && v.name()
                .strip_suffix(".weight")
                .is_some_and(|stem| ck.info(&format!("{stem}.bias")).is_some())
    });
    if missing {
        "EIE bit-exact (images, without biases)".into()
    } else {
        "EIE bit-exact (images)".into()
    }
}

/// The density of a bundle's layers: stored non-zero weights (bias column excluded) over
/// weights.
fn bundle_density(bundle: &Bundle) -> f64 {
    let (mut nz, mut n) = (0u64, 0u64);
    for view in LayerView::all(bundle) {
        n += (view.rows() * view.inputs()) as u64;
        for part in view.parts() {
            let m = part.decode_sparse();
            let last = part.first_col() + part.cols();
            let bias_col = view.has_bias() && last == view.cols();
            nz += m
                .positions()
                .iter()
                .zip(m.codes())
                .filter(|&(&p, &c)| {
                    c != 0 && !(bias_col && (p % part.cols() as u64) as usize == part.cols() - 1)
                })
                .count() as u64;
        }
    }
    if n == 0 { 0.0 } else { nz as f64 / n as f64 }
}
