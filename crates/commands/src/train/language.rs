//! `train --dataset text:FILE --arch llama:...`: a LLaMA-style decoder trained on a text's
//! characters and written as a Hugging Face folder (`config.json`, `model.safetensors`,
//! `tokenizer.json`, `tokenizer_config.json`) that `transformers` loads as it is and that
//! `eval`, `compress` and `simulate` take like any other.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use eie_checkpoint::Writer;
use eie_dataset::Spec;
use eie_evaluate::decoder::{
    DecoderShape, DecoderTraining, NamedTensor, decoder_loss, train_decoder,
};
use eie_pipeline::Observer;
use eie_pipeline::output::{Inputs, Layout, Staging, file_sha256, language_hash_key};
use eie_text::{Text, Tokenizer, UNKNOWN_TOKEN, character_tokenizer};
use serde::Serialize;

use super::{Request, Settings};
use crate::budget::Estimate;
use crate::error::{Error, Result};
use crate::language::{bytes_of, too_short};
use crate::report::Schema;

/// What training a language model did.
#[derive(Debug, Clone, Serialize)]
pub struct LanguageReport {
    /// The report's schema.
    pub schema: Schema,
    /// The decoder's canonical description.
    pub arch: String,
    /// The text trained on, with its bytes.
    pub data: String,
    /// Its tokens (characters).
    pub tokens: usize,
    /// The tokenizer's vocabulary (its distinct characters and `<unk>`).
    pub vocab: usize,
    /// Trainable values.
    pub parameters: usize,
    /// Optimizer steps.
    pub steps: usize,
    /// The mean training loss of the last 100 steps (or all, if fewer), nats per token.
    pub final_loss: f64,
    /// The loss on the held-out bytes (`--eval-range`).
    pub held_out: Option<HeldOut>,
    /// The folder written.
    pub out: PathBuf,
    /// Training took (not in the JSON: it differs run to run).
    #[serde(skip)]
    pub elapsed: Duration,
}

/// A loss on held-out text.
#[derive(Debug, Clone, Serialize)]
pub struct HeldOut {
    /// The bytes.
    pub text: String,
    /// Its tokens.
    pub tokens: usize,
    /// Mean next-token cross-entropy over windows of the context at a stride of the context,
    /// nats per token.
    pub loss: f64,
    /// `exp(loss)`.
    pub perplexity: f64,
}

impl HeldOut {
    /// The loss `loss` gives the held-out text `held` (its name and token ids), when given.
    pub(super) fn measured(
        held: Option<(String, Vec<u32>)>,
        loss: impl FnOnce(&[u32]) -> Result<f64>,
    ) -> Result<Option<Self>> {
        let Some((text, ids)) = held else {
            return Ok(None);
        };
        let loss = loss(&ids)?;
        Ok(Some(Self {
            text,
            tokens: ids.len(),
            loss,
            perplexity: loss.exp(),
        }))
    }
}

impl Settings {
    /// A language model's training; `--epochs` is a classifier's.
    pub(super) fn decoder(&self) -> Result<DecoderTraining> {
        if self.epochs.is_some() {
            return Err(Error::NotApplicable {
                option: "--epochs",
                applies_to: "classifiers; a language model trains for --steps".into(),
            });
        }
        let d = DecoderTraining::default();
        let cfg = DecoderTraining {
            steps: self.steps.unwrap_or(d.steps),
            batch_size: self.batch_size.unwrap_or(d.batch_size),
            lr: self.lr.unwrap_or(d.lr),
            min_lr: self.lr.map_or(d.min_lr, |lr| lr / 10.0),
            weight_decay: self.weight_decay.unwrap_or(d.weight_decay),
            seed: self.seed,
            ..d
        };
        cfg.validate()?;
        Ok(cfg)
    }
}

impl Request {
    pub(super) fn language(&self, observer: &dyn Observer) -> Result<LanguageReport> {
        let start = Instant::now();
        let Spec::Text { path } = &self.data.spec else {
            unreachable!("only text comes here")
        };
        let shape: DecoderShape = self.arch.parse().map_err(|e| Error::Unfit {
            reason: format!(
                "a text dataset trains a language model, described as llama:layers=4,heads=4,width=128,context=64 (docs/models.md): {e}"
            ),
        })?;
        let cfg = self.settings.decoder()?;
        if self.data.scale.is_set() {
            return Err(Error::NotApplicable {
                option: "--scale, --mean and --std",
                applies_to: "datasets of numbers (text is read as characters)".into(),
            });
        }
        let Staged {
            held_bytes,
            mut estimate,
            text,
            staging,
            tokenizer_path: _,
            tokenizer,
        } = self.stage_text(path)?;
        let vocab = tokenizer.vocab_size();
        let tokens = tokenizer.encode(&text.text, false)?;
        if tokens.len() <= shape.context {
            return Err(too_short("", path, &text, tokens.len(), shape.context));
        }
        let parameters = shape.parameters(vocab);
        // The parameters twice: a step's second half runs on a fork of them.
        let per_window = shape.window_values(vocab) as u64;
        // The held-out loss runs 32 windows at a time.
        estimate.training(2 * parameters as u64, per_window, cfg.batch_size.max(32));
        estimate.add(format!("{} tokens", tokens.len()), tokens.len() as u64 * 4);
        estimate.check(self.data.max_memory)?;
        let held = held_bytes
            .map(|b| self.held_out(path, b, &tokenizer, shape.context))
            .transpose()?;
        observer.note(&format!(
            "training {shape} ({parameters} values) on {} tokens of {} ({} characters and {UNKNOWN_TOKEN}), {} steps of {} windows",
            tokens.len(),
            self.data.spec,
            vocab - 1,
            cfg.steps,
            cfg.batch_size
        ));
        let mut log = StepLog::new(cfg.steps);
        let values = train_decoder(&shape, vocab, &tokens, &cfg, &mut |s| log.see(s, observer))?;
        let final_loss = log.final_loss();
        let held_out = HeldOut::measured(held, |ids| Ok(decoder_loss(&shape, &values, ids)?))?;
        let mut metadata = BTreeMap::from([
            (super::meta::DATASET.into(), self.data.spec.to_string()),
            (
                super::meta::RANGE.into(),
                format!("{}..{}", text.start, text.end),
            ),
            ("eie.final_loss".into(), format!("{final_loss:.6}")),
        ]);
        if let Some(h) = &held_out {
            metadata.insert("eie.eval_loss".into(), format!("{:.6}", h.loss));
        }
        write_folder(staging.path(), &shape, &cfg, metadata, &values)?;
        // The folder must be one this tool's own reader takes, as every other command will.
        eie_transformer::Folder::open(staging.path())?.linears()?;
        staging.publish()?;
        Ok(LanguageReport {
            schema: Schema("train"),
            arch: shape.to_string(),
            data: format!("{} [bytes {}..{}]", self.data.spec, text.start, text.end),
            tokens: tokens.len(),
            vocab,
            parameters,
            steps: cfg.steps,
            final_loss,
            held_out,
            out: self.out.clone(),
            elapsed: start.elapsed(),
        })
    }
}

/// Writes the folder's four files into `dir`: the values with `metadata` and how they were
/// trained, the config, and the tokenizer's config (`tokenizer.json` is there already).
fn write_folder(
    dir: &Path,
    shape: &DecoderShape,
    cfg: &DecoderTraining,
    mut metadata: BTreeMap<String, String>,
    values: &[NamedTensor],
) -> Result<()> {
    let tool = crate::tool_version();
    metadata.extend([
        ("format".to_string(), "pt".to_string()),
        ("eie.tool_version".into(), tool.clone()),
        (eie_model::ARCH_KEY.into(), shape.to_string()),
        ("eie.steps".into(), cfg.steps.to_string()),
        ("eie.seed".into(), cfg.seed.to_string()),
        ("eie.lr".into(), cfg.lr.to_string()),
        ("eie.batch_size".into(), cfg.batch_size.to_string()),
        ("eie.weight_decay".into(), cfg.weight_decay.to_string()),
    ]);
    let vocab = values[0].shape[0];
    let config = serde_json::to_string_pretty(&shape.config_json(vocab, &tool))
        .expect("a JSON value serialises");
    write(&dir.join("config.json"), config.as_bytes())?;
    let tokenizer_config = serde_json::json!({
        "tokenizer_class": "PreTrainedTokenizerFast",
        "unk_token": UNKNOWN_TOKEN,
        "model_max_length": shape.context,
        "clean_up_tokenization_spaces": false,
    });
    let json = serde_json::to_string_pretty(&tokenizer_config).expect("a JSON value serialises");
    write(&dir.join("tokenizer_config.json"), json.as_bytes())?;
    // What --force later recognises as this tool's: the other files' hashes, recorded here.
    for name in ["config.json", "tokenizer.json", "tokenizer_config.json"] {
        let hash = file_sha256(&dir.join(name)).ok_or_else(|| Error::Unfit {
            reason: format!("cannot read back {}", dir.join(name).display()),
        })?;
        metadata.insert(language_hash_key(name), hash);
    }
    write_safetensors(&dir.join("model.safetensors"), &metadata, values)
}

/// A language model's training text, read within the budget, and its output folder staged
/// with the text's character tokenizer written there.
pub(super) struct Staged {
    /// The held-out bytes (`--eval-range`), checked against the file.
    pub held_bytes: Option<(u64, u64)>,
    /// The memory counted so far (the text's); training's is added to it.
    pub estimate: Estimate,
    /// The training text (`--range`).
    pub text: Text,
    /// The output, staged.
    pub staging: Staging,
    /// The tokenizer's file in the staging folder.
    pub tokenizer_path: PathBuf,
    /// The tokenizer.
    pub tokenizer: Tokenizer,
}

impl Request {
    /// Checks the text's ranges and the output folder, reads the training text within the
    /// budget (tokenizing first; the model's and training's memory come after), stages the
    /// output and writes the text's character tokenizer into it.
    pub(super) fn stage_text(&self, path: &Path) -> Result<Staged> {
        let train_bytes = bytes_of(path, self.data.range)?;
        let held_bytes = self
            .eval_range
            .map(|r| bytes_of(path, Some(r)))
            .transpose()?;
        let mut inputs = Inputs::new();
        inputs.add(path);
        eie_pipeline::output::check_out_dir(&self.out, self.force, &inputs, Layout::Language)?;
        let text_bytes = train_bytes.1 - train_bytes.0 + held_bytes.map_or(0, |b| b.1 - b.0);
        let mut estimate = Estimate::default();
        estimate.add(
            format!("{text_bytes} bytes of text, tokenized"),
            text_bytes.saturating_mul(448),
        );
        estimate.check(self.data.max_memory)?;
        let text = Text::load(path, Some(train_bytes))?;
        let staging = Staging::create(&self.out, self.force, &inputs, Layout::Language)?;
        let tokenizer_path = staging.path().join("tokenizer.json");
        write(&tokenizer_path, character_tokenizer(&text.text).as_bytes())?;
        let tokenizer = Tokenizer::load(&tokenizer_path)?;
        Ok(Staged {
            held_bytes,
            estimate,
            text,
            staging,
            tokenizer_path,
            tokenizer,
        })
    }
}

/// The notes of a language model's training steps (about 20 of them, each the mean loss
/// since the last), and the mean of the last 100 steps' losses, the final figure.
pub(super) struct StepLog {
    steps: usize,
    every: usize,
    recent: std::collections::VecDeque<f64>,
    sum: f64,
    n: usize,
}

impl StepLog {
    pub(super) fn new(steps: usize) -> Self {
        Self {
            steps,
            every: (steps / 20).max(1),
            recent: std::collections::VecDeque::with_capacity(101),
            sum: 0.0,
            n: 0,
        }
    }

    pub(super) fn see(&mut self, s: &eie_evaluate::decoder::StepStats, observer: &dyn Observer) {
        self.recent.push_back(s.loss);
        if self.recent.len() > 100 {
            self.recent.pop_front();
        }
        (self.sum, self.n) = (self.sum + s.loss, self.n + 1);
        if s.step.is_multiple_of(self.every) || s.step == self.steps {
            observer.note(&format!(
                "  step {}/{}: loss {:.4} (mean of the last {}), lr {:.2e}",
                s.step,
                self.steps,
                self.sum / self.n as f64,
                self.n,
                s.lr
            ));
            (self.sum, self.n) = (0.0, 0);
        }
    }

    pub(super) fn final_loss(&self) -> f64 {
        self.recent.iter().sum::<f64>() / self.recent.len().max(1) as f64
    }
}

impl Request {
    /// The held-out bytes `b` of `path`, named, and their token ids (a window of `context`
    /// and the token after it at least).
    pub(super) fn held_out(
        &self,
        path: &Path,
        b: (u64, u64),
        tokenizer: &Tokenizer,
        context: usize,
    ) -> Result<(String, Vec<u32>)> {
        let h = Text::load(path, Some(b))?;
        let ids = tokenizer.encode(&h.text, false)?;
        if ids.len() <= context {
            return Err(too_short("--eval-range: ", path, &h, ids.len(), context));
        }
        Ok((
            format!("{} [bytes {}..{}]", self.data.spec, h.start, h.end),
            ids,
        ))
    }
}

pub(super) fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).map_err(|source| {
        Error::Pipeline(eie_pipeline::Error::Io {
            what: "cannot write",
            path: path.to_path_buf(),
            source,
        })
    })
}

fn write_safetensors(
    path: &Path,
    metadata: &BTreeMap<String, String>,
    values: &[NamedTensor],
) -> Result<()> {
    let declared: Vec<_> = values
        .iter()
        .map(|t| (t.name.clone(), eie_checkpoint::Dtype::F32, t.shape.clone()))
        .collect();
    let mut w = Writer::create(path, metadata, &declared)?;
    for t in values {
        w.write_tensor(&eie_checkpoint::f32_bytes(&t.values))?;
    }
    w.finish()?;
    Ok(())
}
