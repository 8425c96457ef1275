//! The accuracy of every stage of a compression: the original network, pruned, pruned and
//! weight-shared (float), and the bit-exact EIE model on the images. What `eval`, `compress
//! --dataset` and retraining share.

use std::path::Path;

use eie_checkpoint::{Checkpoint, bias_name};
use eie_dataset::Dataset;
use eie_format::Bundle;
use eie_model::Arch;
use eie_pipeline::output::{PRUNED_FILE, QUANTIZED_FILE};
use eie_pipeline::provenance::{MadeBy, keys, made_by};
use eie_simulate::{Arith, LayerView, run::fractions};
use serde::Serialize;

use eie_energy::Counts;
use rayon::prelude::*;

use crate::accuracy::{
    Accuracy, EnergySetup, check_packed, eie_accuracy, eie_accuracy_counted, float_accuracy,
};
use crate::error::{Error, Result};
use crate::program::Program;
use eie_energy::Runs;
use eie_model::Network;

/// Name of the pruned float stage.
pub const PRUNED_STAGE: &str = "pruned (float)";
/// Name of the pruned and weight-shared float stage.
pub const SHARED_STAGE: &str = "pruned + shared (float)";

/// One stage's accuracy.
#[derive(Debug, Clone)]
pub struct StageAccuracy {
    /// The stage.
    pub name: String,
    /// Weight density (non-zero weights / weights) of the stage's model.
    pub density: Option<f64>,
    /// Its accuracy.
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

/// One class's accuracy, as reported.
#[derive(Debug, Clone, Serialize)]
pub struct ClassReport {
    /// The label.
    pub class: usize,
    /// Samples of the class predicted as the class.
    pub correct: u64,
    /// Samples of the class.
    pub total: u64,
    /// correct / total.
    pub top1: f64,
}

/// One stage, as reported.
#[derive(Debug, Clone, Serialize)]
pub struct StageReport {
    /// The stage.
    pub stage: String,
    /// Its weight density.
    pub density: Option<f64>,
    /// Top-1 accuracy.
    pub top1: f64,
    /// Correct predictions.
    pub correct: u64,
    /// Samples.
    pub total: u64,
    /// top1 minus the first stage's top1, in percentage points.
    pub delta_pct: f64,
    /// Mean training loss of the last epoch of the training that made this stage.
    pub train_loss: Option<f64>,
    /// Per class.
    pub per_class: Vec<ClassReport>,
    /// A language model's perplexity (then `top1` is next-token top-1 and `total` the tokens
    /// scored).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub perplexity: Option<f64>,
    /// A language model's mean negative log-likelihood, nats a token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loss: Option<f64>,
    /// An encoder's sentence embeddings: the mean cosine of each sentence's embedding with
    /// the original model's (then `top1` is retrieval's: a sentence's embedding finds the
    /// original's of the same sentence first, and `total` the sentences).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cosine: Option<f64>,
    /// An encoder's sentence embeddings: Spearman's rank correlation of all pairwise
    /// cosines with the original model's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rank_correlation: Option<f64>,
}

/// The stages as reported, each against the first.
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
            perplexity: None,
            loss: None,
            cosine: None,
            rank_correlation: None,
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

/// The description of checkpoint `ck`: `given`, else the one its metadata records (`train`
/// writes [`eie_model::ARCH_KEY`]) unless `patterns` select layers, else none.
pub fn description_of(
    ck: &Checkpoint,
    given: Option<&Arch>,
    patterns: &[String],
) -> Result<Option<Arch>> {
    if let Some(a) = given {
        if !patterns.is_empty() {
            return Err(Error::Config {
                what: "--layers",
                reason: "a model description (--arch) names every layer; --layers selects the layers of an MLP; give one of them".into(),
            });
        }
        return Ok(Some(a.clone()));
    }
    match ck.metadata().get(eie_model::ARCH_KEY) {
        Some(text) if patterns.is_empty() => {
            Ok(Some(text.parse::<Arch>().map_err(|e| Error::Config {
                what: "the checkpoint's model description",
                reason: format!(
                    "metadata {} of {}: {e}",
                    eie_model::ARCH_KEY,
                    ck.path().display()
                ),
            })?))
        }
        _ => Ok(None),
    }
}

/// The network of checkpoint `ck`: as [`description_of`] describes it, else the MLP of the
/// 2-D layers `patterns` select (every one by default), which must then be the whole network
/// ([`check_whole_network`]).
pub fn network_of(ck: &Checkpoint, given: Option<&Arch>, patterns: &[String]) -> Result<Network> {
    match description_of(ck, given, patterns)? {
        Some(arch) => Ok(Network::from_arch_checkpoint(ck, &arch)?),
        None => {
            let names = ck.select_layers(patterns)?;
            check_whole_network(ck, &names, !patterns.is_empty())?;
            Ok(Network::from_checkpoint(ck, &names)?)
        }
    }
}

/// With a dataset, the selected layers must be the whole network. A selection whose last
/// layer feeds another 2-D weight of the checkpoint would measure (and retrain) a network
/// that ends in the middle of the model; and the default selection (not `selected` by the
/// user) must leave out nothing but embedding tables: a weight it skips for its dtype or its
/// shape (a norm's scale, a convolution, an integer tensor) is part of a network that is not
/// the MLP. Linear in the number of tensors.
pub fn check_whole_network(ck: &Checkpoint, names: &[String], selected: bool) -> Result<()> {
    let all = ck.default_selection();
    if !selected
        && let Some(s) = all
            .skipped
            .iter()
            .find(|s| s.reason != eie_checkpoint::SkipReason::Embedding)
    {
        return Err(Error::NotAnMlp {
            path: ck.path().to_path_buf(),
            tensor: s.name.clone(),
            reason: s.reason.to_string(),
        });
    }
    let Some(last) = names.last() else {
        return Ok(());
    };
    let outputs = ck.info(last).map_or(0, |i| i.shape[0]);
    let chosen: std::collections::HashSet<&String> = names.iter().collect();
    for other in all.layers.iter().filter(|n| !chosen.contains(n)) {
        if ck.info(other).is_some_and(|i| i.shape[1] == outputs) {
            return Err(Error::NotWhole {
                last: last.clone(),
                next: other.clone(),
                outputs,
            });
        }
    }
    Ok(())
}

/// Whether a bundle's model was retrained.
pub fn is_retraining(bundle: &Bundle) -> bool {
    bundle.meta().settings.contains_key(keys::RETRAIN)
}

/// Why a bundle's kept weights are not the checkpoint's values at their positions, if they
/// are not: retraining changed them, or the OBS update (`update obs`) did.
pub fn kept_values_changed(bundle: &Bundle) -> Option<&'static str> {
    let settings = &bundle.meta().settings;
    if is_retraining(bundle) {
        Some("the model was retrained")
    } else if eie_pipeline::provenance::updated(settings) {
        Some("the OBS update changed the kept weights")
    } else {
        None
    }
}

/// `net` with each layer's weights replaced by what the packed model stores for them: per
/// stored weight with shared value `v`, `value(original, v)`; zero where nothing is stored.
/// With `folded_bias`, a folded bias becomes its column's shared values (zero where nothing
/// is stored); otherwise, and for a bias that is not folded, the bias is kept as it is
/// (pruning never touches a bias; only weight sharing does).
fn from_codes(
    net: &Network,
    bundle: &Bundle,
    folded_bias: bool,
    value: impl Fn(f32, f32) -> f32,
) -> Result<Network> {
    let mut out = net.clone();
    let views = LayerView::all(bundle);
    for (view, l) in views.iter().zip(out.layers_mut()) {
        let stored = view.stored()?;
        let original = l.weight.to_vec();
        l.weight.iter_mut().for_each(|w| *w = 0.0);
        for (&p, &v) in stored.positions.iter().zip(&stored.values) {
            l.weight[p as usize] = value(original[p as usize], v);
        }
        if let (true, Some(b), Some(shared)) = (folded_bias, l.bias, stored.bias) {
            *b = shared;
        }
    }
    Ok(out)
}

/// The float stages of a packed model made from `net`'s checkpoint: each from the output
/// folder's dense checkpoint when it holds one (`dir`), else rebuilt from `net` and the
/// packed codes, which carry the pruning mask. Pruned: the original weights where the images
/// store a weight, the biases as they were. Pruned and shared: every stored weight (and
/// folded bias) replaced by its shared value. A retrained model's pruned weights are not the
/// original ones: without its `pruned.safetensors` that stage is left out, and said so in the
/// returned notes (as is the shared stage when retraining changed a bias the images do not
/// hold). The output of `pack` is its checkpoint as it is: it has no float stages.
pub fn float_stages(
    net: &Network,
    names: &[String],
    bundle: &Bundle,
    dir: Option<&Path>,
    data: &Dataset,
) -> Result<(Vec<StageAccuracy>, Vec<String>)> {
    let changed = kept_values_changed(bundle);
    let retrained = changed.is_some();
    let compressed = made_by(&bundle.meta().settings) == Some(MadeBy::Compress);
    let loose_bias = LayerView::all(bundle)
        .iter()
        .zip(net.layers())
        .any(|(v, l)| l.bias.is_some() && !v.has_bias());
    let mut stages = Vec::new();
    let mut notes = Vec::new();
    for (file, name) in [(PRUNED_FILE, PRUNED_STAGE), (QUANTIZED_FILE, SHARED_STAGE)] {
        let path = dir.map(|d| d.join(file));
        if let Some(path) = path.filter(|p| p.is_file()) {
            let ck = Checkpoint::open(&path)?;
            let read = match net.arch() {
                Some(arch) => Network::from_arch_checkpoint(&ck, arch),
                None => Network::from_checkpoint(&ck, names),
            };
            let stage_net = read.map_err(|e| Error::Layer {
                layer: names.first().cloned().unwrap_or_default(),
                reason: format!("{}: {e}", path.display()),
            })?;
            stages.push(StageAccuracy::float(name, &stage_net, data)?);
            continue;
        }
        if !compressed {
            continue;
        }
        let rebuilt = match name {
            PRUNED_STAGE if retrained => None,
            PRUNED_STAGE => Some(from_codes(net, bundle, false, |orig, _| orig)?),
            _ if retrained && loose_bias => None,
            _ => Some(from_codes(net, bundle, true, |_, shared| shared)?),
        };
        match rebuilt {
            Some(n) => stages.push(StageAccuracy::float(name, &n, data)?),
            None => notes.push(format!(
                "not measured: {name}: {}, and the output holds no {file} (compress --dense-checkpoints writes it)",
                changed.unwrap_or("the model was retrained")
            )),
        }
    }
    Ok((stages, notes))
}

/// A token model's float stages rebuilt from `net` (the original) and the packed codes, as
/// [`float_stages`] rebuilds them: pruned (the original weights where the images store one)
/// and pruned + shared (every stored weight, and folded bias, its shared value).
pub fn token_float_stages(net: &Network, bundle: &Bundle) -> Result<[(&'static str, Network); 2]> {
    Ok([
        (
            PRUNED_STAGE,
            from_codes(net, bundle, false, |orig, _| orig)?,
        ),
        (
            SHARED_STAGE,
            from_codes(net, bundle, true, |_, shared| shared)?,
        ),
    ])
}

/// Every sample's runs counted for the energy model, and the layers they are of (a described
/// model's EIE layers; its host layers are not counted).
pub struct StageRuns<'a> {
    /// The counts, layer by layer.
    pub runs: Runs,
    /// The layers counted, in order.
    pub views: Vec<LayerView<'a>>,
}

/// The bit-exact EIE model's stage on `data` (`ck`: the checkpoint the bundle was made from,
/// to name the stage), with activation fractions `given` or, when none are given,
/// calibrated on `data` itself; returns the fractions used, and with `counting` every
/// sample's run counted for the energy model.
pub fn eie_stage<'a>(
    ck: &Checkpoint,
    bundle: &'a Bundle,
    data: &Dataset,
    given: &[u8],
    arith: Arith,
    counting: Option<&EnergySetup>,
) -> Result<(StageAccuracy, Vec<u8>, Option<StageRuns<'a>>)> {
    if let Some(program) = Program::of(bundle)? {
        return described_stage(&program, bundle, data, given, arith, counting);
    }
    let views = LayerView::all(bundle);
    check_packed(&views, data)?;
    let inputs: Vec<Vec<f32>> = if given.is_empty() {
        (0..data.len()).map(|i| data.input(i).to_vec()).collect()
    } else {
        Vec::new()
    };
    let fracs = fractions(&views, &inputs, given, arith.relu_last)?;
    let (accuracy, runs) = match counting {
        Some(c) => {
            let (a, runs) = eie_accuracy_counted(&views, data, &fracs, arith, c)?;
            (a, Some(runs))
        }
        None => (eie_accuracy(&views, data, &fracs, arith)?, None),
    };
    let stage = StageAccuracy {
        name: eie_stage_name(ck, &views),
        density: Some(bundle_density(&views)?),
        accuracy,
        train_loss: None,
    };
    let counted = runs.map(|runs| StageRuns { runs, views });
    Ok((stage, fracs, counted))
}

/// [`eie_stage`] of a described model (a CNN, an LSTM): its [`Program`], host layers in float,
/// every other matrix bit-exact; the energy counts are of the EIE layers (an LSTM's every
/// step of a sequence added up).
fn described_stage<'a>(
    program: &Program<'a>,
    bundle: &'a Bundle,
    data: &Dataset,
    given: &[u8],
    arith: Arith,
    counting: Option<&EnergySetup>,
) -> Result<(StageAccuracy, Vec<u8>, Option<StageRuns<'a>>)> {
    let net = program.network();
    net.check_dataset(data)?;
    let fracs = program.fractions(given, (0..data.len()).map(|i| data.input(i)))?;
    if let Some(c) = counting {
        c.params.validate()?;
    }
    let eie = program.eie_layers();
    let per_sample = (0..data.len())
        .into_par_iter()
        .map(|i| -> Result<(usize, Vec<Counts>, Vec<u64>)> {
            let (p, runs) =
                program.run(data.input(i), &fracs, arith, counting.map(|c| &c.params))?;
            let Some(c) = counting else {
                return Ok((p, Vec::new(), Vec::new()));
            };
            let (counts, repeats) = program.energy_counts(&runs, c);
            Ok((p, counts, repeats))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut runs = counting.map(|_| Runs::new());
    let mut predictions = Vec::with_capacity(per_sample.len());
    for (p, counts, repeats) in &per_sample {
        predictions.push(*p);
        if let Some(r) = &mut runs {
            r.add_repeated(counts, repeats);
        }
    }
    let counted = runs.map(|runs| StageRuns {
        runs,
        views: program.eie_views(),
    });
    let views = program.views();
    let host = views.len() - eie.len();
    let stage = StageAccuracy {
        name: if host > 0 {
            "EIE bit-exact (images; convolutions on the host, float)".into()
        } else if net.layers().iter().any(|l| l.is_conv()) {
            "EIE bit-exact (images; convolutions as im2col products)".into()
        } else {
            "EIE bit-exact (images)".into()
        },
        density: Some(bundle_density(&LayerView::all(bundle))?),
        accuracy: Accuracy::count(&predictions, data.labels(), net.outputs()),
        train_loss: None,
    };
    Ok((stage, fracs, counted))
}

/// The bit-exact stage's name; it says so when the images leave out biases the checkpoint
/// has (`pack`, or `compress --no-bias-column`), since the float stages keep them.
fn eie_stage_name(ck: &Checkpoint, views: &[LayerView]) -> String {
    let missing = views
        .iter()
        .any(|v| !v.has_bias() && bias_name(v.name()).is_some_and(|b| ck.info(&b).is_some()));
    if missing {
        "EIE bit-exact (images, without biases)".into()
    } else {
        "EIE bit-exact (images)".into()
    }
}

/// The density of packed layers: stored non-zero weights (bias column excluded) over weights.
pub fn bundle_density(views: &[LayerView]) -> Result<f64> {
    let (mut nz, mut n) = (0u64, 0u64);
    for view in views {
        n += (view.rows() * view.inputs()) as u64;
        nz += view.stored()?.codes.iter().filter(|&&c| c != 0).count() as u64;
    }
    Ok(if n == 0 { 0.0 } else { nz as f64 / n as f64 })
}
