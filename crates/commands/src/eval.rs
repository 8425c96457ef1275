//! `eval`: top-1 accuracy of a checkpoint, and of what `compress` made from it: pruned and
//! pruned-and-shared (float, from the output's dense checkpoints or rebuilt from the
//! checkpoint and the packed codes), and the bit-exact fixed-point EIE model run through the
//! functional simulator on the images, each sample also through the timing model for its
//! energy.

mod language;
mod tokens;

use std::path::PathBuf;

use eie_checkpoint::Checkpoint;
use eie_dataset::Dataset;
use eie_evaluate::{
    EnergySetup, Network, StageAccuracy, StageReport, eie_stage, float_stages, network_of,
    stage_reports,
};
use eie_format::hex;
use eie_pipeline::recorded_capacity;
use eie_simulate::{Arith, TimingParams};
use serde::Serialize;

use crate::budget::{Estimate, mlp_footprint};
use crate::energy_table::EnergyTable;
use crate::error::{Error, Result};
use crate::inputs::DatasetRequest;
use crate::packed::PackedModel;
use crate::report::Schema;
use crate::report::energy::CostReport;

/// What to evaluate, and on which samples.
#[derive(Debug, Clone)]
pub struct Request {
    /// The original checkpoint (`.safetensors`, or a sharded checkpoint's index).
    pub model: PathBuf,
    /// An output folder of `compress` (or `pack`) made from the model: its stages and its
    /// images are evaluated too.
    pub dir: Option<PathBuf>,
    /// The samples.
    pub data: DatasetRequest,
    /// The model description of a checkpoint made elsewhere.
    pub arch: Option<String>,
    /// Layer patterns of an MLP (empty: every layer).
    pub layers: Vec<String>,
    /// Activation fractions of the EIE stage (default: calibrated on these samples).
    pub act_frac: Vec<u8>,
    /// The EIE model's arithmetic.
    pub arith: Arith,
    /// The timing model's hardware, for the bit-exact stage's energy.
    pub timing: TimingParams,
    /// The energy model's constants.
    pub energy: EnergyTable,
    /// A language model's window, tokens (default: its positions, at most
    /// [`crate::language::DEFAULT_CONTEXT`]).
    pub context: Option<usize>,
    /// Tokens between a language model's windows (default: half the context).
    pub stride: Option<usize>,
}

pub use crate::language::{DEFAULT_CONTEXT, TextReport};

/// Every stage's accuracy.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The report's schema.
    pub schema: Schema,
    /// The checkpoint.
    pub model: String,
    /// The output folder.
    pub dir: Option<String>,
    /// The samples.
    pub dataset: String,
    /// How many.
    pub samples: usize,
    /// Their input scaling.
    pub scaling: String,
    /// Activation fractions of the EIE model, when it ran.
    pub act_frac: Option<Vec<u8>>,
    /// Whether they were calibrated on these samples (not in the JSON).
    #[serde(skip)]
    pub act_frac_calibrated: bool,
    /// Every stage, in order.
    pub stages: Vec<StageReport>,
    /// Stages that could not be measured, and why; what runs where, when it is not every
    /// layer on EIE.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// What the bit-exact stage's runs cost (docs/energy.md), when it ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub energy: Option<CostReport>,
    /// A language model's text, tokens and windows (then `samples` counts tokens scored).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<TextReport>,
}

/// The images on disk in `dir`, checked against `bundle` (its model.eie): they are what the
/// EIE model runs.
fn check_images(dir: &std::path::Path, bundle: &eie_format::Bundle) -> Result<()> {
    let images = eie_images::load(dir)?;
    if images.layers != bundle.layers() {
        return Err(Error::Unfit {
            reason: format!(
                "the images in {} differ from model.eie (run `eie-compress verify {}`)",
                dir.display(),
                dir.display()
            ),
        });
    }
    Ok(())
}

/// The bit-exact stage and what it needs to be measured.
struct Compressed {
    model: PackedModel,
    dir: PathBuf,
}

impl Request {
    /// Measures every stage.
    pub fn run(&self) -> Result<Report> {
        self.check()?;
        if crate::language::is_model_folder(&self.model) {
            return self.language();
        }
        if self.model.is_dir() {
            return Err(Error::Unfit {
                reason: format!(
                    "{} is a folder without config.json: eval takes a checkpoint file, or a Hugging Face model folder (config.json, model.safetensors, tokenizer.json)",
                    self.model.display()
                ),
            });
        }
        let ck = Checkpoint::open(&self.model)?;
        let arch = self
            .arch
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(Error::Model)?;
        // Given, else recorded in the checkpoint: resolved once, for the estimate and the net.
        let arch = eie_evaluate::description_of(&ck, arch.as_ref(), &self.layers)?;
        if let Some(a) = arch.as_ref().filter(|a| a.tokens) {
            return self.tokens(&ck, a);
        }
        for (option, given) in [("--context", self.context), ("--stride", self.stride)] {
            if given.is_some() {
                return Err(Error::NotApplicable {
                    option,
                    applies_to: "language models: a Hugging Face folder (one with config.json), or a token model (tokV-embedE-...)".into(),
                });
            }
        }
        self.estimate(&ck, arch.as_ref())?;
        let net = network_of(&ck, arch.as_ref(), &self.layers)?;
        let names: Vec<String> = net.layers().iter().map(|l| l.name.clone()).collect();
        let scaling = self.data.scaling(&ck.metadata())?;
        let data = self.data.load_estimated(None, &scaling)?;
        net.check_dataset(&data)?;
        let table = self.energy.table()?;

        let mut stages = vec![StageAccuracy::float("original (float)", &net, &data)?];
        let mut report = Report {
            schema: Schema("eval"),
            model: self.model.display().to_string(),
            dir: self.dir.as_ref().map(|d| d.display().to_string()),
            dataset: data.name().to_string(),
            samples: data.len(),
            scaling: scaling.to_string(),
            act_frac: None,
            act_frac_calibrated: self.act_frac.is_empty(),
            stages: Vec::new(),
            notes: Vec::new(),
            energy: None,
            text: None,
        };
        if let Some(dir) = &self.dir {
            let c = Compressed {
                model: PackedModel::load(dir)?,
                dir: dir.clone(),
            };
            self.check_made_from(&ck, &net, &names, &c)?;
            let bundle = &c.model.bundle;
            let (float, why) = float_stages(&net, &names, bundle, Some(&c.dir), &data)?;
            stages.extend(float);
            report.notes = why;
            let (stage, fracs, cost) = self.eie(&ck, &c, &data, &table)?;
            stages.push(stage);
            report.act_frac = Some(fracs);
            report.energy = cost;
        }
        report.stages = stage_reports(&stages);
        Ok(report)
    }

    /// A language model's eval does not count the bit-exact stage's energy (`simulate DIR`
    /// gives its energy a token): an energy table given to it is refused, not ignored.
    fn no_energy_table(&self) -> Result<()> {
        match self.energy.file {
            Some(_) => Err(Error::NotApplicable {
                option: "--energy-table",
                applies_to: "the bit-exact stage of a classifier's eval (a language model's energy a token is simulate DIR's)".into(),
            }),
            None => Ok(()),
        }
    }

    /// The checks that need no file: the arithmetic's and the hardware's values, and what
    /// only an output folder's bit-exact stage takes.
    pub fn check(&self) -> Result<()> {
        self.arith.validate()?;
        self.timing.validate()?;
        if self.dir.is_none() {
            let needs_dir = |option| Error::NotApplicable {
                option,
                applies_to: "the bit-exact stage of an output folder; give DIR".into(),
            };
            if !self.act_frac.is_empty() {
                return Err(needs_dir("--act-frac"));
            }
            if self.energy.file.is_some() {
                return Err(needs_dir("--energy-table"));
            }
        }
        Ok(())
    }

    /// The network's (described by `arch`, else the MLP of the layers selected) and the
    /// samples' memory, estimated from the headers before either is read.
    fn estimate(&self, ck: &Checkpoint, arch: Option<&eie_model::Arch>) -> Result<()> {
        let (weights, values) = match arch {
            Some(a) => {
                let fp = a.footprint()?;
                (fp.weights, fp.values)
            }
            None => mlp_footprint(ck.select_layers(&self.layers)?.iter().filter_map(|n| {
                let shape = ck.info(n)?.shape;
                Some((shape[0], shape[1]))
            })),
        };
        let shape = self.data.shape()?;
        let samples = self.data.count(shape, None)?;
        Estimate::default()
            .inference(weights, values, samples)
            .samples(samples, shape.width)
            .check(self.data.max_memory)
    }

    /// The output must come from this very checkpoint, as this network (its description
    /// and layers), and its images on disk must be what `model.eie` says.
    fn check_made_from(
        &self,
        ck: &Checkpoint,
        net: &Network,
        names: &[String],
        c: &Compressed,
    ) -> Result<()> {
        let (file, bundle) = (&c.model.file, &c.model.bundle);
        let unfit = |reason: String| Err(Error::Unfit { reason });
        self.check_source(ck, &c.model)?;
        let recorded = eie_pipeline::provenance::recorded_description(&bundle.meta().settings);
        if let (Some(r), Some(a)) = (recorded, net.arch())
            && r != a.to_string()
        {
            return unfit(format!(
                "{} was compressed as {r}, but the network of {} is described as {a}: evaluate it with the description it was compressed with",
                file.display(),
                self.model.display()
            ));
        }
        let packed: Vec<&str> = eie_simulate::LayerView::all(bundle)
            .iter()
            .map(|v| v.name())
            .collect();
        if packed != names {
            return unfit(format!(
                "{} holds layers {packed:?}, but the network of {} is {names:?}; select the same layers with --layers",
                file.display(),
                self.model.display()
            ));
        }
        check_images(&c.dir, bundle)
    }

    /// The packed model must have been made from the checkpoint `ck` (its recorded SHA-256).
    fn check_source(&self, ck: &Checkpoint, p: &PackedModel) -> Result<()> {
        let ours = ck.sha256()?;
        let source = &p.bundle.meta().source;
        if source.sha256 != Some(ours) {
            return Err(Error::Unfit {
                reason: format!(
                    "{} was made from {} (sha256 {}), not from {} (sha256 {}): evaluate an output folder against the checkpoint it was compressed from",
                    p.file.display(),
                    source.name,
                    source.sha256.map_or("unknown".into(), |h| hex(&h)),
                    self.model.display(),
                    hex(&ours)
                ),
            });
        }
        Ok(())
    }

    /// The bit-exact EIE stage, its fractions and what its runs cost.
    fn eie(
        &self,
        ck: &Checkpoint,
        c: &Compressed,
        data: &Dataset,
        table: &eie_energy::Table,
    ) -> Result<(StageAccuracy, Vec<u8>, Option<CostReport>)> {
        let bundle = &c.model.bundle;
        let counting = EnergySetup {
            params: self.timing,
            pointer_bits: bundle.meta().pointer_bits,
            capacity: recorded_capacity(&bundle.meta().settings),
        };
        let (stage, fracs, runs) = eie_stage(
            ck,
            bundle,
            data,
            &self.act_frac,
            self.arith,
            Some(&counting),
        )?;
        let cost = runs.map(|r| {
            let costed = r.runs.costed(&r.views, counting.pointer_bits, table);
            CostReport::new(&costed, table)
        });
        Ok((stage, fracs, cost))
    }
}
