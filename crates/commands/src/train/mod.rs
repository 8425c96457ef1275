//! `train`: a classifier (an MLP, a CNN, an LSTM: any model description) trained from
//! scratch (Adam, seeded) and written as a PyTorch-layout safetensors checkpoint that
//! records its description, how it was trained and its input scaling; or, on text, a
//! language model written as a Hugging Face folder ([`language`]).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use eie_dataset::SampleRange;
use eie_evaluate::{Arch, Mode, Network, TrainConfig, float_accuracy, train};
use eie_pipeline::Observer;
use eie_pipeline::output::{Inputs, OutputKind, check_file, write_file};
use serde::Serialize;

use crate::budget::Estimate;
use crate::error::{Error, Result};
use crate::inputs::DatasetRequest;
use crate::report::Schema;

pub mod language;
mod tokens;

/// Metadata keys `train` writes into a model, besides its input scaling.
mod meta {
    pub const ARCH: &str = eie_model::ARCH_KEY;
    pub const DATASET: &str = "eie.dataset";
    pub const RANGE: &str = "eie.range";
}

/// What to train, on what, and where to write it.
#[derive(Debug, Clone)]
pub struct Request {
    /// The training samples (the dataset's range) and their scaling.
    pub data: DatasetRequest,
    /// Held-out samples accuracy is reported on.
    pub eval_range: Option<SampleRange>,
    /// The model description (docs/models.md).
    pub arch: String,
    /// Epochs or steps, batch size, learning rate, weight decay, seed.
    pub settings: Settings,
    /// The checkpoint to write.
    pub out: PathBuf,
    /// Replace a checkpoint this tool wrote there.
    pub force: bool,
    /// A token model's training window, tokens (default
    /// [`crate::tokens::DEFAULT_TOKEN_CONTEXT`]; a decoder's is in its description).
    pub context: Option<usize>,
}

/// How long and how to train; each setting not given takes the default of the kind trained
/// ([`TrainConfig`]'s for a classifier, [`eie_evaluate::decoder::DecoderTraining`]'s for a
/// language model).
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// Passes over the samples (classifiers).
    pub epochs: Option<usize>,
    /// Optimizer steps (language models).
    pub steps: Option<usize>,
    /// Samples (windows of text) per step.
    pub batch_size: Option<usize>,
    /// Peak learning rate.
    pub lr: Option<f64>,
    /// Weight decay (L2 for a classifier, decoupled for a language model).
    pub weight_decay: Option<f64>,
    /// Seed of the initial weights and of the sample order.
    pub seed: u64,
}

impl Settings {
    /// A classifier's training; `--steps` is a language model's.
    fn classifier(&self) -> Result<TrainConfig> {
        if self.steps.is_some() {
            return Err(Error::NotApplicable {
                option: "--steps",
                applies_to:
                    "language models (--dataset text:FILE); a classifier trains for --epochs".into(),
            });
        }
        let d = TrainConfig::default();
        Ok(TrainConfig {
            epochs: self.epochs.unwrap_or(d.epochs),
            batch_size: self.batch_size.unwrap_or(d.batch_size),
            lr: self.lr.unwrap_or(d.lr),
            weight_decay: self.weight_decay.unwrap_or(d.weight_decay),
            seed: self.seed,
        })
    }
}

/// What `train` made.
#[derive(Debug, Clone)]
pub enum Trained {
    /// A classifier's checkpoint.
    Classifier(Report),
    /// A language model's folder.
    Language(language::LanguageReport),
}

/// What training did.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The report's schema.
    pub schema: Schema,
    /// The model description.
    pub arch: String,
    /// The training samples.
    pub data: String,
    /// Top-1 on the training samples, after training.
    pub train_top1: Accuracy,
    /// Top-1 on the held-out samples.
    pub held_out: Option<Named>,
    /// The loss of the last epoch.
    pub final_loss: Option<f64>,
    /// The checkpoint written.
    pub out: PathBuf,
    /// Training and measuring took (not in the JSON: it differs run to run).
    #[serde(skip)]
    pub elapsed: Duration,
}

/// Correct predictions of some samples.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Accuracy {
    /// Right.
    pub correct: u64,
    /// Samples.
    pub total: u64,
    /// `correct / total`.
    pub top1: f64,
}

/// An accuracy on named samples.
#[derive(Debug, Clone, Serialize)]
pub struct Named {
    /// The samples.
    pub samples: String,
    /// How many were right.
    pub accuracy: Accuracy,
}

impl From<eie_evaluate::Accuracy> for Accuracy {
    fn from(a: eie_evaluate::Accuracy) -> Self {
        Self {
            correct: a.correct,
            total: a.total,
            top1: a.top1(),
        }
    }
}

impl Request {
    /// Trains and writes the checkpoint (a folder for a language model), all or nothing;
    /// each epoch or stretch of steps is noted to `observer`.
    pub fn run(&self, observer: &dyn Observer) -> Result<Trained> {
        if matches!(self.data.spec, eie_dataset::Spec::Text { .. }) {
            if self.arch.starts_with("tok") {
                return self.tokens(observer).map(Trained::Language);
            }
            if self.context.is_some() {
                return Err(Error::NotApplicable {
                    option: "--context",
                    applies_to: "token models (tok-embedE-lstmH); a decoder's window is its description's context=".into(),
                });
            }
            return self.language(observer).map(Trained::Language);
        }
        if self.context.is_some() {
            return Err(Error::NotApplicable {
                option: "--context",
                applies_to: "token models trained on text (tok-embedE-lstmH)".into(),
            });
        }
        self.classifier(observer).map(Trained::Classifier)
    }

    fn classifier(&self, observer: &dyn Observer) -> Result<Report> {
        let start = Instant::now();
        let arch: Arch = self.arch.parse().map_err(Error::Model)?;
        let cfg = &self.settings.classifier()?;
        cfg.validate()?;
        let fp = arch.footprint()?;
        let mut estimate = Estimate::default();
        let shape = self.data.shape()?;
        let samples = self.data.count(shape, None)?;
        estimate
            .training(fp.weights, fp.values, cfg.batch_size.min(samples))
            .samples(samples, shape.width);
        if let Some(r) = self.eval_range {
            estimate.samples(self.data.count(shape, Some(r))?, shape.width);
        }
        estimate.check(self.data.max_memory)?;
        let mut inputs = Inputs::new();
        inputs.extend(self.data.inputs()?);
        check_file(&self.out, self.force, OutputKind::Safetensors, &inputs)?;
        let scaling = self.data.scaling(&BTreeMap::new())?;
        let data = self.data.load_estimated(None, &scaling)?;
        let held = self
            .eval_range
            .map(|r| self.data.load_estimated(Some(r), &scaling))
            .transpose()?;
        let mut net = Network::init_arch(&arch, cfg.seed)?;
        net.check_dataset(&data)?;
        if let Some(h) = &held {
            net.check_dataset(h)?;
        }
        observer.note(&format!(
            "training {arch} on {} ({} samples), {} epochs",
            data.name(),
            data.len(),
            cfg.epochs
        ));
        let history = train(&mut net, &data, cfg, Mode::Dense, &mut |s| {
            observer.note(&format!(
                "  epoch {}/{}: loss {:.4}, running top-1 {:.2}%",
                s.epoch,
                cfg.epochs,
                s.loss,
                100.0 * s.accuracy
            ))
        })?;
        let mut metadata = BTreeMap::from([
            ("format".to_string(), "pt".to_string()),
            ("eie.tool_version".into(), crate::tool_version()),
            (meta::ARCH.into(), arch.to_string()),
            (meta::DATASET.into(), self.data.spec.to_string()),
            (
                meta::RANGE.into(),
                self.data.range.unwrap_or_default().to_string(),
            ),
            ("eie.epochs".into(), cfg.epochs.to_string()),
            ("eie.seed".into(), cfg.seed.to_string()),
            ("eie.lr".into(), cfg.lr.to_string()),
            ("eie.batch_size".into(), cfg.batch_size.to_string()),
            ("eie.weight_decay".into(), cfg.weight_decay.to_string()),
        ]);
        metadata.extend(scaling.to_metadata());
        let final_loss = history.last().map(|l| l.loss);
        if let Some(loss) = final_loss {
            metadata.insert("eie.final_loss".into(), format!("{loss:.6}"));
        }
        let train_top1 = Accuracy::from(float_accuracy(&net, &data)?);
        let elapsed = start.elapsed();
        let held_out = match &held {
            Some(h) => {
                let acc = float_accuracy(&net, h)?;
                metadata.insert(
                    "eie.eval_range".into(),
                    self.eval_range.unwrap_or_default().to_string(),
                );
                metadata.insert("eie.eval_top1".into(), format!("{:.6}", acc.top1()));
                Some(Named {
                    samples: h.name().to_string(),
                    accuracy: acc.into(),
                })
            }
            None => None,
        };
        write_file(
            &self.out,
            self.force,
            OutputKind::Safetensors,
            &inputs,
            |tmp| -> Result<()> {
                net.write_safetensors(tmp, &metadata)?;
                Ok(())
            },
        )?;
        Ok(Report {
            schema: Schema("train"),
            arch: arch.to_string(),
            data: data.name().to_string(),
            train_top1,
            held_out,
            final_loss,
            out: self.out.clone(),
            elapsed,
        })
    }
}
