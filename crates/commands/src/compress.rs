//! `compress`: a trained checkpoint to pruned, weight-shared, packed EIE images and a report;
//! with a dataset, every stage's accuracy, and with retraining, Deep Compression's
//! retraining.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use eie_checkpoint::Checkpoint;
use eie_dataset::{Dataset, SampleRange, Scaling};
use eie_evaluate::{
    Network, RETRAIN_KNOBS, RetrainChoices, RetrainSettings, Retraining, StageAccuracy,
    StageReport, TrainConfig, check_whole_network, described, description_of, eie_stage,
    float_stages, retrain, stage_reports,
};
use eie_images::Fit;
use eie_pipeline::output::{
    Inputs, Layout, REPORT_FILE, REPORT_HTML_FILE, Staging, check_out_dir, load_bundle,
};
use eie_pipeline::{
    Assignments, Calibration, CodebookWeight, Job, LayerSettings, MadeBy, Observer, Plan,
    Provenance, Recipe, RunSettings, Timings,
};
use eie_simulate::Arith;
use serde::Serialize;

mod calibration;
mod language;
mod retrain_language;
mod tokens;

use crate::budget::{Estimate, mlp_footprint};
use crate::error::{Error, Result, io};
use crate::inputs::{CalibrationRequest, DatasetRequest};
use crate::report::{Schema, to_json};
use crate::settings::{Given, assignments};

/// What to compress, how, and where to.
#[derive(Debug, Clone)]
pub struct Request {
    /// The checkpoint: a `.safetensors` file, or a sharded checkpoint's
    /// `.safetensors.index.json`.
    pub model: PathBuf,
    /// The output folder: `model.eie`, `manifest.json`, `images/` and `report.json` (and the
    /// dense checkpoints when asked for).
    pub out: PathBuf,
    /// The model description of a checkpoint made elsewhere (docs/models.md); default: the
    /// one `train` recorded in the checkpoint, else an MLP of its 2-D layers.
    pub arch: Option<String>,
    /// Layer patterns (globs, in the order given); empty: every 2-D float `*.weight` that is
    /// not an embedding table, in model order.
    pub layers: Vec<String>,
    /// A recipe file (docs/recipes.md).
    pub recipe: Option<PathBuf>,
    /// Fold each layer's `NAME.bias` in as one extra column whose input is 1.
    pub fold_bias: bool,
    /// Run a described model's convolutions on EIE as im2col products.
    pub conv_on_eie: bool,
    /// Per-layer settings given (`density`, `code_bits`, ...: [`eie_pipeline::LAYER_KNOBS`]).
    pub settings: Given,
    /// Run-wide settings given ([`eie_pipeline::RUN_KNOBS`]).
    pub run: Given,
    /// Processing elements.
    pub pes: u32,
    /// How layers are fitted to the hardware's memories.
    pub fit: Fit,
    /// Replace an earlier output of this tool in the folder.
    pub force: bool,
    /// A dataset: accuracy after every stage (`range`: the training samples with
    /// retraining, else the samples measured).
    pub data: Option<DatasetRequest>,
    /// Held-out samples accuracy is measured on (default: the dataset's range).
    pub eval_range: Option<SampleRange>,
    /// Activation fractions of the EIE stage (default: calibrated on the held-out samples).
    pub act_frac: Vec<u8>,
    /// The EIE model's arithmetic.
    pub arith: Arith,
    /// Retrain as Deep Compression does (needs a dataset).
    pub retrain: bool,
    /// Retraining settings given ([`eie_evaluate::RETRAIN_KNOBS`]).
    pub retraining: Given,
    /// Calibration samples, for the settings that gather statistics on them (`prune_score
    /// activation`, `update obs`, `codebook_weight activation`).
    pub calibration: Option<CalibrationRequest>,
    /// Distillation's teacher, a model folder (`--teacher`); none: the original.
    pub teacher: Option<PathBuf>,
}

impl Request {
    /// Compress `model` into `out` with the defaults: 64 PEs, every layer, biases folded.
    pub fn new(model: impl Into<PathBuf>, out: impl Into<PathBuf>) -> Self {
        Self {
            model: model.into(),
            out: out.into(),
            arch: None,
            layers: Vec::new(),
            recipe: None,
            fold_bias: true,
            conv_on_eie: false,
            settings: Given::new(),
            run: Given::new(),
            pes: 64,
            fit: Fit::default(),
            force: false,
            data: None,
            eval_range: None,
            act_frac: Vec::new(),
            arith: Arith::default(),
            retrain: false,
            retraining: Given::new(),
            calibration: None,
            teacher: None,
        }
    }
}

/// A codebook weighted by squared gradients (`codebook_weight gradient`) takes them from
/// retraining's last epoch of masked fine-tuning: without one, refused by name before any
/// work.
fn check_gradient_weights(plan: &Plan, retrain: Option<&RetrainSettings>) -> Result<()> {
    let weighted = plan
        .layers
        .iter()
        .find(|l| l.settings.codebook_weight == CodebookWeight::Gradient);
    match (weighted, retrain) {
        (Some(l), s) if s.is_none_or(|s| s.fine_tune.epochs == 0) => Err(Error::NotApplicable {
            option: "--codebook-weight gradient",
            applies_to: format!(
                "retraining with masked fine-tuning (--retrain, at least one epoch), whose last epoch's squared gradients weight the codebook; layer {} asks for it",
                l.name
            ),
        }),
        _ => Ok(()),
    }
}

/// `report.json`: the pipeline's report, then what a described model runs where, then
/// accuracy.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The report's schema.
    pub schema: Schema,
    /// Every layer's figures and their totals (docs/compress.md).
    #[serde(flatten)]
    pub report: eie_pipeline::Report,
    /// A described model (a CNN, an LSTM): its description and the layers the host runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelReport>,
    /// A Hugging Face language model folder: its `model_type`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// With a dataset: accuracy after every stage.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accuracy: Option<AccuracyReport>,
    /// What was written (not in the JSON).
    #[serde(skip)]
    pub written: Written,
}

/// What a run wrote, and how long it took.
#[derive(Debug, Clone, Default)]
pub struct Written {
    /// The output folder.
    pub out: PathBuf,
    /// Image files.
    pub files: usize,
    /// Whether the dense checkpoints were written.
    pub dense_checkpoints: bool,
    /// Where the pipeline's time went.
    pub timings: Timings,
    /// Publishing the folder.
    pub publish: Duration,
    /// The whole run.
    pub total: Duration,
    /// report.json's text, as written (what `--json` prints).
    pub json: String,
}

/// A described model, as compressed.
#[derive(Debug, Clone, Serialize)]
pub struct ModelReport {
    /// The model description (docs/models.md).
    pub arch: String,
    /// Layers that run on the host, in float (their bytes are what model.eie stores).
    pub host_layers: Vec<String>,
}

/// Accuracy after every stage.
#[derive(Debug, Clone, Serialize)]
pub struct AccuracyReport {
    /// The dataset specification.
    pub dataset: String,
    /// The training samples (with retraining).
    pub train: Option<String>,
    /// The samples accuracy is measured on.
    pub held_out: String,
    /// True when accuracy is measured on (some of) the training samples: no held-out range
    /// was given, or a text's held-out bytes overlap its training bytes.
    pub held_out_is_train: bool,
    /// How it retrained.
    pub retrain: Option<RetrainReport>,
    /// Activation fractions of the EIE model (calibrated on the held-out samples unless given).
    pub act_frac: Vec<u8>,
    /// Every stage, in order.
    pub stages: Vec<StageReport>,
    /// A language model's text, tokens and windows (its speed apart: report.json is the
    /// same on every run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<crate::language::TextReport>,
    /// How fast a language model's stages ran (not in the JSON).
    #[serde(skip)]
    pub speed: Option<crate::language::Speed>,
    /// What runs where, when it is not every layer on EIE.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// How it retrained.
#[derive(Debug, Clone, Serialize)]
pub struct RetrainReport {
    /// Each pruning round's progress toward the target.
    pub schedule: Vec<f64>,
    /// Incremental weight sharing's steps (empty: shared at once).
    pub share_schedule: Vec<f64>,
    /// Masked fine-tuning epochs per round.
    pub epochs: usize,
    /// Masked fine-tuning's learning rate.
    pub lr: f64,
    /// Its L2 penalty.
    pub weight_decay: f64,
    /// Centroid fine-tuning epochs.
    pub centroid_epochs: usize,
    /// Centroid fine-tuning's learning rate.
    pub centroid_lr: f64,
    /// Samples per step.
    pub batch_size: usize,
    /// The seed of the sample order.
    pub seed: u64,
    /// Distilled: trained on the original model's outputs, not the labels.
    pub distill: bool,
    /// The teacher's folder when it is not the original (`--teacher`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub teacher: Option<String>,
}

impl From<&RetrainSettings> for RetrainReport {
    fn from(s: &RetrainSettings) -> Self {
        Self {
            schedule: s.schedule.clone(),
            share_schedule: s.share_schedule.clone(),
            epochs: s.fine_tune.epochs,
            lr: s.fine_tune.lr,
            weight_decay: s.fine_tune.weight_decay,
            centroid_epochs: s.centroids.epochs,
            centroid_lr: s.centroids.lr,
            batch_size: s.fine_tune.batch_size,
            seed: s.fine_tune.seed,
            distill: s.distill,
            teacher: s.teacher.clone(),
        }
    }
}

/// The datasets of a run with a dataset: training samples and held-out samples.
struct Datasets {
    spec: String,
    scaling: Scaling,
    /// The training samples, with retraining.
    train: Option<Dataset>,
    /// The samples accuracy is measured on, when they are not the training samples.
    held: Option<Dataset>,
    /// The network of the planned layers.
    net: Network,
}

impl Datasets {
    fn held(&self) -> &Dataset {
        self.held
            .as_ref()
            .or(self.train.as_ref())
            .expect("one of them is loaded")
    }
}

/// A request, checked: everything a run needs.
pub struct Resolved {
    request: Request,
    ck: Checkpoint,
    plan: Plan,
    /// A network given by a model description that is not an MLP (a CNN, an LSTM): read
    /// whole, every matrix decided in memory.
    described: Option<Network>,
    run: RunSettings,
    retrain: Option<RetrainSettings>,
    data: Option<Datasets>,
    provenance: Provenance,
    inputs: Inputs,
    warnings: Vec<String>,
    /// A Hugging Face language model folder.
    language: Option<language::Language>,
    /// A token model's text and its tokens.
    tokens: Option<tokens::TokenText>,
    /// Calibration samples, read and checked.
    calibrating: Option<calibration::Calibrating>,
}

impl Request {
    /// Every check that needs no weights, before any work: the checkpoint's header, the
    /// output folder, the recipe, the settings, the model description, the dataset and the
    /// network it measures.
    pub fn resolve(self) -> Result<Resolved> {
        self.check()?;
        let mut inputs = Inputs::new();
        inputs.add(&self.model).extend(&self.recipe);
        if let Some(d) = &self.data {
            inputs.extend(d.inputs()?);
        }
        if let Some(c) = &self.calibration {
            inputs.extend(c.data.inputs()?);
        }
        let teacher = self.open_teacher(&mut inputs)?;
        // A language model folder (its config.json read and checked) or a checkpoint file.
        let folder = crate::language::is_model_folder(&self.model)
            .then(|| eie_transformer::Folder::open(&self.model))
            .transpose()?;
        // Opening reads headers only; a sharded checkpoint's shards are inputs too.
        let ck = match &folder {
            Some(f) => Checkpoint::open(f.checkpoint.path())?,
            None => Checkpoint::open(&self.model)?,
        };
        inputs.extend(ck.hashed_files());
        check_out_dir(&self.out, self.force, &inputs, Layout::Model)?;
        let recipe = self.recipe.as_deref().map(Recipe::load).transpose()?;
        let cli = assignments(eie_pipeline::LAYER_KNOBS, &self.settings)?;
        if let Some(folder) = folder {
            let run = self.run_settings(recipe.as_ref())?;
            let request = eie_pipeline::Request {
                patterns: &self.layers,
                cli: &cli,
                recipe: recipe.as_ref(),
                fold_bias: self.fold_bias,
            };
            let mut given = LayerSettings::default();
            cli.apply(&mut given);
            let choices = self.retrain_choices(recipe.as_ref())?;
            let retrain = if self.retrain {
                let mut base = given.clone();
                if let Some(r) = &recipe {
                    r.defaults.apply(&mut base);
                }
                Some(choices.resolve(base.seed)?)
            } else {
                None
            };
            let retrain = retrain.map(|mut s| {
                s.teacher = self.teacher.as_ref().map(|t| t.display().to_string());
                s
            });
            let (plan, language) =
                self.resolve_language(folder, teacher, &request, &run, retrain.as_ref())?;
            check_gradient_weights(&plan, retrain.as_ref())?;
            plan.check_fits(&self.fit)?;
            let calibrating =
                self.resolve_calibration(&ck, &plan, Some(&language.folder), false, true)?;
            let mut provenance = self.provenance(&ck, None, &given, None, None)?;
            provenance.language = Some(language.folder.config.model_type.clone());
            provenance.calibration = calibrating.as_ref().map(|c| c.source().to_string());
            if let (Some(s), Some((train, _))) = (&retrain, &language.train) {
                provenance.retrain = Some(s.describe(train));
            }
            let warnings = recipe
                .as_ref()
                .filter(|r| r.tables.contains_key("retrain") && !self.retrain)
                .map(|_| vec!["the recipe's [retrain] settings apply only with --retrain".into()])
                .unwrap_or_default();
            return Ok(Resolved {
                request: self,
                ck,
                plan,
                described: None,
                run,
                retrain,
                data: None,
                provenance,
                inputs,
                warnings,
                language: Some(language),
                tokens: None,
                calibrating,
            });
        }
        let arch = self
            .arch
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(Error::Model)?;
        let arch = description_of(&ck, arch.as_ref(), &self.layers)?;
        let (described, plan) = self.plan(&ck, arch.as_ref(), &cli, recipe.as_ref())?;
        plan.check_fits(&self.fit)?;
        let run = self.run_settings(recipe.as_ref())?;
        self.check_described(described.as_ref(), recipe.as_ref(), &run)?;
        // The command line's settings; with the recipe's [defaults], the seed of the layers
        // also orders retraining's samples.
        let mut given = LayerSettings::default();
        cli.apply(&mut given);
        let mut base = given.clone();
        if let Some(r) = &recipe {
            r.defaults.apply(&mut base);
        }
        let mut warnings = Vec::new();
        let retrain = self.classifier_retrain(recipe.as_ref(), base.seed, &mut warnings)?;
        check_gradient_weights(&plan, retrain.as_ref())?;
        // A description, --layers or a recipe's select chose the layers: not the default.
        let chosen = arch.is_some() || self.selects_layers(recipe.as_ref());
        let calibrating =
            self.resolve_calibration(&ck, &plan, None, described.is_some(), chosen)?;
        let (data, tokens) = match arch.as_ref().filter(|a| a.tokens) {
            Some(a) => (None, self.resolve_tokens(&ck, a, retrain.as_ref())?),
            None => (
                self.datasets(&ck, &plan, described.as_ref(), chosen, retrain.as_ref())?,
                None,
            ),
        };
        let mut provenance = self.provenance(
            &ck,
            described.as_ref(),
            &given,
            retrain.as_ref(),
            data.as_ref(),
        )?;
        if let (Some(s), Some(t)) = (&retrain, &tokens)
            && let Some((name, _)) = &t.train
        {
            provenance.retrain = Some(s.describe(name));
        }
        provenance.calibration = calibrating.as_ref().map(|c| c.source().to_string());
        Ok(Resolved {
            request: self,
            ck,
            plan,
            described,
            run,
            retrain,
            data,
            provenance,
            inputs,
            warnings,
            language: None,
            tokens,
            calibrating,
        })
    }

    /// Retraining of a checkpoint (not a language model folder), resolved with `seed`; a
    /// recipe's `[retrain]` without `--retrain` is warned of, distillation refused.
    fn classifier_retrain(
        &self,
        recipe: Option<&Recipe>,
        seed: u64,
        warnings: &mut Vec<String>,
    ) -> Result<Option<RetrainSettings>> {
        let choices = self.retrain_choices(recipe)?;
        if choices.distill && self.retrain {
            return Err(Error::NotApplicable {
                option: "--distill",
                applies_to: format!(
                    "language model folders (LLaMA-family decoders, sentence encoders); {} retrains on its labels",
                    self.model.display()
                ),
            });
        }
        if self.retrain {
            return Ok(Some(choices.resolve(seed)?));
        }
        if recipe.is_some_and(|r| r.tables.contains_key("retrain")) {
            warnings.push("the recipe's [retrain] settings apply only with --retrain".into());
        }
        Ok(None)
    }

    /// The checks that need no file: the values and the options that go together.
    pub fn check(&self) -> Result<()> {
        crate::checks::pes(self.pes)?;
        crate::checks::fit(&self.fit)?;
        self.arith.validate()?;
        let needs_data = |option: &'static str| Error::NotApplicable {
            option,
            applies_to: "a dataset; give --dataset".into(),
        };
        if self.data.is_none() {
            if !self.act_frac.is_empty() {
                return Err(needs_data("--act-frac"));
            }
            if self.retrain {
                return Err(needs_data("--retrain"));
            }
            if self.eval_range.is_some() {
                return Err(needs_data("--eval-range"));
            }
        }
        if self.teacher.is_some() && !self.retrain {
            return Err(Error::Option {
                option: "--teacher".into(),
                reason: "the teacher of distillation applies only with --retrain --distill".into(),
            });
        }
        if let Some((key, _)) = self.retraining.first().filter(|_| !self.retrain) {
            return Err(Error::Option {
                option: format!("--{}", key.replace('_', "-")),
                reason: "a retraining setting applies only with --retrain".into(),
            });
        }
        Ok(())
    }

    /// Distillation's teacher (`--teacher`), opened (its config checked, its checkpoint's
    /// headers read), the folder and its shards added to the inputs: a folder, of a model a
    /// folder is distilled from.
    fn open_teacher(&self, inputs: &mut Inputs) -> Result<Option<eie_transformer::Folder>> {
        let Some(dir) = &self.teacher else {
            return Ok(None);
        };
        if !crate::language::is_model_folder(&self.model) {
            return Err(Error::NotApplicable {
                option: "--teacher",
                applies_to: format!(
                    "Hugging Face language model folders (decoders and sentence encoders); {} is not one",
                    self.model.display()
                ),
            });
        }
        if !crate::language::is_model_folder(dir) {
            return Err(Error::Unfit {
                reason: format!(
                    "--teacher {}: expected a Hugging Face model folder (config.json and model.safetensors)",
                    dir.display()
                ),
            });
        }
        let f = eie_transformer::Folder::open(dir)?;
        inputs.add(dir);
        inputs.extend(Checkpoint::open(f.checkpoint.path())?.hashed_files());
        Ok(Some(f))
    }

    /// The plan of the layers, and the network of a described model that is not an MLP. A
    /// described MLP is streamed by the pipeline, its layers checked against the
    /// description here; the description names them, in order: they are the selection.
    fn plan(
        &self,
        ck: &Checkpoint,
        arch: Option<&eie_model::Arch>,
        cli: &Assignments<LayerSettings>,
        recipe: Option<&Recipe>,
    ) -> Result<(Option<Network>, Plan)> {
        let request = eie_pipeline::Request {
            patterns: &self.layers,
            cli,
            recipe,
            fold_bias: self.fold_bias,
        };
        Ok(match arch {
            Some(a) if a.mlp_widths().is_none() => {
                let net = Network::from_arch_checkpoint(ck, a)?;
                let plans = described::matrix_plans(ck.header(), &net)?;
                (Some(net), Plan::from_matrices(plans, &request)?)
            }
            Some(a) => {
                let present = eie_model::check_against(ck, a)?;
                let named: Vec<String> = present
                    .into_iter()
                    .filter(|t| !t.bias)
                    .map(|t| t.name)
                    .collect();
                let request = eie_pipeline::Request {
                    patterns: &named,
                    ..request
                };
                (None, Plan::resolve(ck.header(), &request)?)
            }
            None => (None, Plan::resolve(ck.header(), &request)?),
        })
    }

    /// The run-wide settings: the recipe's, then the command line's (a key in both is an
    /// error).
    fn run_settings(&self, recipe: Option<&Recipe>) -> Result<RunSettings> {
        let cli = assignments(eie_pipeline::RUN_KNOBS, &self.run)?;
        let mut run = RunSettings::default();
        if let Some(r) = recipe {
            let both = cli.overlap(&r.run);
            if !both.is_empty() {
                return Err(Error::SetTwice {
                    keys: both.join(", "),
                    place: format!("recipe {}", r.path.display()),
                });
            }
            r.run.apply(&mut run);
        }
        cli.apply(&mut run);
        Ok(run)
    }

    /// The retraining settings: the command line and the recipe's `[retrain]` (a key in both
    /// is an error), then the defaults. The recipe's table is checked whether or not
    /// retraining is asked for.
    fn retrain_choices(&self, recipe: Option<&Recipe>) -> Result<RetrainChoices> {
        let cli = assignments(RETRAIN_KNOBS, &self.retraining)?;
        let table = match recipe.and_then(|r| r.tables.get("retrain").map(|t| (r, t))) {
            Some((r, t)) => {
                let from_recipe =
                    Assignments::from_toml(RETRAIN_KNOBS, t, |_| true).map_err(|reason| {
                        eie_pipeline::Error::Setting {
                            place: r.place("[retrain]"),
                            reason,
                        }
                    })?;
                let both = cli.overlap(&from_recipe);
                if !both.is_empty() {
                    return Err(Error::SetTwice {
                        keys: both.join(", "),
                        place: format!("[retrain] of recipe {}", r.path.display()),
                    });
                }
                from_recipe
            }
            None => Assignments::new(),
        };
        let mut choices = RetrainChoices::default();
        cli.merged(&table).apply(&mut choices);
        Ok(choices)
    }

    /// What a described model refuses: folding no biases (its biases ride in the bias
    /// columns: the host convolutions take theirs from there, and the float and bit-exact
    /// stages must hold the same ones), a recipe's layer selection, dense checkpoints of an
    /// LSTM, and im2col convolutions of a model without any.
    fn check_described(
        &self,
        described: Option<&Network>,
        recipe: Option<&Recipe>,
        run: &RunSettings,
    ) -> Result<()> {
        let Some(net) = described else {
            if self.conv_on_eie {
                return Err(Error::NotApplicable {
                    option: "--conv-on-eie",
                    applies_to: format!(
                        "a model described with convolutions (--arch, docs/models.md); {} is read as an MLP",
                        self.model.display()
                    ),
                });
            }
            return Ok(());
        };
        let refuse = |option: &str, reason: String| {
            Err(Error::Option {
                option: option.into(),
                reason,
            })
        };
        let what = format!(
            "{} is a described model ({})",
            self.model.display(),
            net.describe()
        );
        if !self.fold_bias && net.layers().iter().any(|l| l.bias.is_some()) {
            return refuse(
                "--no-bias-column",
                format!(
                    "{what}, whose biases are in its matrices' bias columns; leave the option out"
                ),
            );
        }
        if let Some(r) = recipe.filter(|r| !r.select.is_empty()) {
            return Err(Error::Unfit {
                reason: format!(
                    "recipe {}: `select` picks an MLP's layers; {what}, every matrix of which is compressed",
                    r.path.display()
                ),
            });
        }
        if run.dense_checkpoints
            && let Some(l) = net.layers().iter().find(|l| l.lstm.is_some() || l.table)
        {
            let what = match l.lstm {
                Some(_) => "the LSTM's packed matrix",
                None => "the embedding's matrix (its table's transpose)",
            };
            return refuse(
                "--dense-checkpoints",
                format!(
                    "{what} {} is not a tensor of {}; dense checkpoints of LSTM and token models are not written yet",
                    l.name,
                    self.model.display()
                ),
            );
        }
        if self.conv_on_eie && !net.layers().iter().any(|l| l.is_conv()) {
            return refuse(
                "--conv-on-eie",
                format!(
                    "{} ({}) has no convolution",
                    self.model.display(),
                    net.describe()
                ),
            );
        }
        Ok(())
    }

    /// With a dataset: the training and held-out samples and the network they measure,
    /// checked against each other before the long work.
    fn datasets(
        &self,
        ck: &Checkpoint,
        plan: &Plan,
        described: Option<&Network>,
        chosen: bool,
        retrain: Option<&RetrainSettings>,
    ) -> Result<Option<Datasets>> {
        let Some(d) = &self.data else {
            return Ok(None);
        };
        let names = plan.names();
        if !self.act_frac.is_empty() {
            match described {
                // Two per matrix; the chained pairs are checked on the bundle written.
                Some(_) => {
                    eie_evaluate::program::check_fraction_count(&self.act_frac, names.len())?
                }
                None => eie_simulate::fixed::check_fractions(&self.act_frac, names.len())?,
            }
        }
        if described.is_none() {
            check_whole_network(ck, &names, chosen)?;
        }
        let scaling = d.scaling(&ck.metadata())?;
        // Without retraining nothing trains: the range alone names the samples measured.
        let (train, held) = match (self.retrain, self.eval_range) {
            (true, e) => (Some(d.range), e),
            (false, Some(e)) => (None, Some(e)),
            (false, None) => (None, Some(d.range.unwrap_or_default())),
        };
        self.estimate(d, plan, described, train, held, retrain)?;
        let train = train.map(|r| d.load_estimated(r, &scaling)).transpose()?;
        let held = held
            .map(|r| d.load_estimated(Some(r), &scaling))
            .transpose()?;
        let net = match described {
            Some(n) => n.clone(),
            None => Network::from_checkpoint(ck, &names).map_err(|e| Error::Context {
                context: "the compressed layers, as a network (accuracy needs an MLP or a model description, --arch)",
                source: Box::new(e.into()),
            })?,
        };
        if let Some(t) = &train {
            net.check_dataset(t)?;
        }
        let d = Datasets {
            spec: d.spec.to_string(),
            scaling,
            train,
            held,
            net,
        };
        d.net.check_dataset(d.held())?;
        Ok(Some(d))
    }

    /// The network's and the samples' memory with a dataset, estimated before either is read:
    /// training with `train` samples, measuring on `held` ones.
    fn estimate(
        &self,
        d: &DatasetRequest,
        plan: &Plan,
        described: Option<&Network>,
        train: Option<Option<SampleRange>>,
        held: Option<SampleRange>,
        retrain: Option<&RetrainSettings>,
    ) -> Result<()> {
        let (weights, mut values) = mlp_footprint(plan.layers.iter().map(|l| (l.rows, l.inputs)));
        if let Some(a) = described.and_then(Network::arch) {
            values = a.footprint()?.values;
        }
        let mut estimate = Estimate::default();
        let shape = d.shape()?;
        if let Some(range) = train {
            let batch = retrain.map_or(TrainConfig::default().batch_size, |s| {
                s.fine_tune.batch_size
            });
            let samples = d.count(shape, range)?;
            estimate
                .training(weights, values, batch.min(samples))
                .samples(samples, shape.width);
            if retrain.is_some() && self.calibration.is_some() {
                // Calibrated retraining holds the statistics through the training.
                estimate.add(
                    "the calibration statistics, held through retraining",
                    plan.calibration_bytes(),
                );
            }
        }
        if let Some(range) = held {
            let samples = d.count(shape, Some(range))?;
            estimate
                .inference(weights, values, samples)
                .samples(samples, shape.width);
        }
        estimate.check(d.max_memory)
    }

    /// Whether the user chose the layers (`--layers`, a recipe's `select`), rather than the
    /// default selection.
    fn selects_layers(&self, recipe: Option<&Recipe>) -> bool {
        !self.layers.is_empty() || recipe.is_some_and(|r| !r.select.is_empty())
    }

    /// What the bundle records about how it was made.
    fn provenance(
        &self,
        ck: &Checkpoint,
        described: Option<&Network>,
        given: &LayerSettings,
        retrain: Option<&RetrainSettings>,
        data: Option<&Datasets>,
    ) -> Result<Provenance> {
        let mut p = Provenance::new(
            MadeBy::Compress,
            self.pes as usize,
            given.index_bits,
            &self.fit,
        );
        p.bias_column = self.fold_bias;
        p.described = described.map(|net| described::provenance(net, self.conv_on_eie));
        // The input scaling travels on, for `simulate --dataset`: the one measured with, or
        // the one the model was trained with.
        p.scaling = match data {
            Some(d) => d.scaling.to_metadata().into_iter().collect(),
            None => {
                let recorded = ck.metadata();
                eie_dataset::meta::ALL
                    .iter()
                    .filter_map(|&k| recorded.get(k).map(|v| (k.to_string(), v.clone())))
                    .collect()
            }
        };
        if let (Some(s), Some(d)) = (retrain, data) {
            p.retrain = Some(s.describe(d.train.as_ref().map_or("", |t| t.name())));
        }
        p.recipe = self.recipe.as_ref().map(|r| {
            r.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        });
        Ok(p)
    }
}

impl Resolved {
    /// Warnings about the request that do not stop it (a recipe's `[retrain]` without
    /// retraining).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Compresses, measures and publishes: the folder holds the old output or the whole new
    /// one, never a part.
    pub fn run(self, observer: &dyn Observer) -> Result<Report> {
        let start = Instant::now();
        for w in &self.warnings {
            observer.warn(w);
        }
        let r = &self;
        let version = crate::tool_version();
        let calibration = match &r.calibrating {
            Some(c) => Some(c.run(&r.plan, r.language.as_ref().map(|l| &l.folder), observer)?),
            None => None,
        };
        let job = Job {
            plan: &r.plan,
            pes: r.request.pes as usize,
            fit: r.request.fit,
            run: r.run.clone(),
            tool_version: &version,
            provenance: r.provenance.clone(),
            calibration: calibration.as_ref(),
        };
        let staging = Staging::create(&r.request.out, r.request.force, &r.inputs, Layout::Model)?;
        let mut stages: Vec<StageAccuracy> = Vec::new();
        let (retrained, retrained_text) = match (&r.language, &r.retrain, &r.tokens, &r.described) {
            (Some(l), Some(settings), _, _) => {
                let (done, measured) = retrain_language::retrain(
                    l,
                    &r.plan,
                    settings,
                    job.pes,
                    calibration.as_ref(),
                    observer,
                )?;
                (Some(done), measured)
            }
            (None, Some(settings), Some(text), Some(net)) => {
                let (done, measured) = r.retrain_tokens(net, text, settings, job.pes, observer)?;
                (Some(done), measured)
            }
            _ => (
                self.retrain_stages(job.pes, calibration.as_ref(), observer, &mut stages)?,
                Vec::new(),
            ),
        };
        let done = eie_pipeline::compress(&r.ck, &job, retrained, staging.path(), observer)?;
        let settings = done.meta.settings.clone();
        let accuracy = match (&r.language, &r.tokens, &r.described) {
            (Some(l), _, _) => {
                let (_, bundle) = load_bundle(staging.path())?;
                r.request
                    .measure_language(l, &bundle, retrained_text, r.retrain.as_ref())?
            }
            (None, Some(text), Some(net)) => {
                let (_, bundle) = load_bundle(staging.path())?;
                Some(r.request.measure_tokens(
                    net,
                    text,
                    &bundle,
                    retrained_text,
                    r.retrain.as_ref(),
                )?)
            }
            _ => self.measure(staging.path(), stages)?,
        };
        let mut report = Report {
            schema: Schema("compress"),
            report: done.report,
            model: r.described.as_ref().map(|net| ModelReport {
                arch: net.describe(),
                host_layers: described::host_layers(net, r.request.conv_on_eie),
            }),
            language: r
                .language
                .as_ref()
                .map(|l| l.folder.config.model_type.clone()),
            accuracy,
            written: Written {
                out: r.request.out.clone(),
                files: done.files,
                dense_checkpoints: done.dense_checkpoints,
                timings: done.timings,
                ..Written::default()
            },
        };
        let json = to_json(&report)?;
        let t = Instant::now();
        let file = staging.path().join(REPORT_FILE);
        std::fs::write(&file, &json).map_err(io("cannot write", Path::new(REPORT_FILE)))?;
        // The page, from report.json as written: its every number is one of report.json's.
        // One it cannot render (a figure that is not finite, written as null) is left out
        // with a warning; the images are the run's work.
        let doc = crate::page::document(serde_json::from_str(&json)?, &settings, None, None);
        match crate::page::render(&doc) {
            Ok(html) => {
                let file = staging.path().join(REPORT_HTML_FILE);
                std::fs::write(&file, html)
                    .map_err(io("cannot write", Path::new(REPORT_HTML_FILE)))?;
            }
            Err(e) => observer.warn(&format!("{REPORT_HTML_FILE} not written: {e}")),
        }
        staging.publish()?;
        report.written.json = json;
        report.written.publish = t.elapsed();
        report.written.total = start.elapsed();
        Ok(report)
    }

    /// With a dataset, the original network's stage and (with retraining) retraining's;
    /// a described network is pruned and shared in memory even without either.
    fn retrain_stages(
        &self,
        pes: usize,
        calibration: Option<&Calibration>,
        observer: &dyn Observer,
        stages: &mut Vec<StageAccuracy>,
    ) -> Result<Option<eie_pipeline::Retrained>> {
        let job = |settings, data, held| Retraining {
            header: self.ck.header(),
            plans: &self.plan.layers,
            pes,
            data,
            held,
            measure: None,
            settings,
            observer,
            calibration,
        };
        if let Some(d) = &self.data {
            let original = StageAccuracy::float("original (float)", &d.net, d.held())?;
            observer.note(&original.line());
            stages.push(original);
            if let Some(settings) = &self.retrain {
                let data = Some(eie_evaluate::Samples::Dataset(
                    d.train.as_ref().expect("loaded with retraining"),
                ));
                let job = job(settings, data, Some(d.held()));
                return Ok(Some(retrain(d.net.clone(), &job, stages)?));
            }
        }
        match &self.described {
            Some(net) => {
                let settings =
                    RetrainSettings::prune_and_share_only(self.plan.layers[0].settings.seed);
                let job = job(&settings, None, None);
                Ok(Some(retrain(net.clone(), &job, &mut Vec::new())?))
            }
            None => Ok(None),
        }
    }

    /// With a dataset, the stages after the pipeline: the float stages rebuilt from the
    /// bundle (without retraining, which measured them already) and the bit-exact EIE model
    /// on exactly the bundle written.
    fn measure(
        &self,
        dir: &Path,
        mut stages: Vec<StageAccuracy>,
    ) -> Result<Option<AccuracyReport>> {
        let Some(d) = &self.data else {
            return Ok(None);
        };
        let (_, bundle) = load_bundle(dir)?;
        if self.retrain.is_none() {
            let (float, _) =
                float_stages(&d.net, &self.plan.names(), &bundle, Some(dir), d.held())?;
            stages.extend(float);
        }
        let (stage, fracs, _) = eie_stage(
            &self.ck,
            &bundle,
            d.held(),
            &self.request.act_frac,
            self.request.arith,
            None,
        )?;
        stages.push(stage);
        Ok(Some(AccuracyReport {
            dataset: d.spec.clone(),
            train: d.train.as_ref().map(|t| t.name().to_string()),
            held_out: d.held().name().to_string(),
            held_out_is_train: d.held.is_none(),
            retrain: self.retrain.as_ref().map(RetrainReport::from),
            act_frac: fracs,
            stages: stage_reports(&stages),
            text: None,
            speed: None,
            notes: Vec::new(),
        }))
    }
}
