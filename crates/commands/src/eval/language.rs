//! `eval` of a Hugging Face language model folder on text: its tokenizer's ids of the text's
//! byte range, perplexity and next-token top-1 by `transformers`' sliding window, reported in
//! the same stage table as a classifier's accuracy.

use std::time::Instant;

use eie_dataset::Spec;
use eie_evaluate::StageReport;
use eie_text::{Text, Tokenizer};
use eie_transformer::{Folder, dense};
use serde::Serialize;

use super::{Report, Request};
use crate::budget::Estimate;
use crate::error::{Error, Result};
use crate::report::Schema;

/// The most tokens a window takes by default: the model's positions, at most this many.
pub const DEFAULT_CONTEXT: usize = 1024;

/// What a language model was evaluated on, and how.
#[derive(Debug, Clone, Serialize)]
pub struct TextReport {
    /// The tokenizer.json.
    pub tokenizer: String,
    /// The text's bytes read (ends moved to character boundaries).
    pub bytes: [u64; 2],
    /// The text's tokens.
    pub tokens: usize,
    /// Tokens a window holds.
    pub context: usize,
    /// Tokens between windows' starts.
    pub stride: usize,
    /// Windows run.
    pub windows: usize,
    /// Seconds the float model took.
    pub seconds: f64,
    /// Tokens a second through the float model (every window's tokens, context included).
    pub tokens_per_second: f64,
}

impl Request {
    /// Whether `model` is a Hugging Face folder (a language model), not a checkpoint file.
    pub(super) fn is_language_model(&self) -> bool {
        self.model.join("config.json").is_file()
    }

    /// Evaluates a language model folder on the text of `--dataset text:FILE`.
    pub(super) fn language(&self) -> Result<Report> {
        let not_here = |option: &'static str| Error::NotApplicable {
            option,
            applies_to:
                "classifier checkpoints (a language model folder is read by its config.json)".into(),
        };
        if self.arch.is_some() {
            return Err(not_here("--arch"));
        }
        if !self.layers.is_empty() {
            return Err(not_here("--layers"));
        }
        if self.data.scale.is_set() {
            return Err(not_here("--scale, --mean and --std"));
        }
        if self.dir.is_some() {
            return Err(Error::Unfit {
                reason: "the compressed stages of a language model are not evaluated yet: eval the folder alone for its float perplexity".into(),
            });
        }
        let Spec::Text { path } = &self.data.spec else {
            return Err(Error::Unfit {
                reason: format!(
                    "{} is a language model: evaluate it on text (--dataset text:FILE), not on {}",
                    self.model.display(),
                    self.data.spec
                ),
            });
        };
        let folder = Folder::open(&self.model)?;
        let c = &folder.config;
        // Every check that needs no weights and no text, before the estimate.
        let context = self.context.unwrap_or(
            c.positions
                .min(c.sliding_window.unwrap_or(usize::MAX))
                .min(DEFAULT_CONTEXT),
        );
        let stride = self.stride.unwrap_or(context.div_ceil(2));
        eie_transformer::perplexity::check_windows(c, context, stride)?;
        let tokenizer = Tokenizer::load(&self.model.join("tokenizer.json"))?;
        if tokenizer.vocab_size() > c.vocab {
            return Err(Error::Unfit {
                reason: format!(
                    "{} has {} tokens (ids up to {}), but the model's vocabulary (config.json vocab_size) is {}",
                    tokenizer.path().display(),
                    tokenizer.vocab_size(),
                    tokenizer.vocab_size() - 1,
                    c.vocab
                ),
            });
        }
        let range = Text::range(
            path,
            self.data
                .range
                .map(|r| (r.start.map(|a| a as u64), r.end.map(|b| b as u64))),
        )?;
        self.estimate_language(&folder, range.1 - range.0, context)?;
        let text = Text::load(path, Some(range))?;
        let ids = tokenizer.encode(&text.text, false)?;
        let model = dense(&folder)?;
        let start = Instant::now();
        let p = model.perplexity(&ids, context, stride)?;
        let seconds = start.elapsed().as_secs_f64();
        Ok(Report {
            schema: Schema("eval"),
            model: self.model.display().to_string(),
            dir: None,
            dataset: format!("{} [bytes {}..{}]", self.data.spec, text.start, text.end),
            samples: p.scored,
            scaling: "token ids".into(),
            act_frac: None,
            act_frac_calibrated: false,
            stages: vec![StageReport {
                stage: "original (float)".into(),
                density: None,
                top1: p.top1_accuracy(),
                correct: p.top1 as u64,
                total: p.scored as u64,
                delta_pct: 0.0,
                train_loss: None,
                per_class: Vec::new(),
                perplexity: Some(p.perplexity()),
                loss: Some(p.loss()),
            }],
            notes: Vec::new(),
            energy: None,
            text: Some(TextReport {
                tokenizer: tokenizer.path().display().to_string(),
                bytes: [text.start, text.end],
                tokens: ids.len(),
                context,
                stride,
                windows: p.windows,
                seconds,
                tokens_per_second: p.run as f64 / seconds.max(1e-9),
            }),
        })
    }

    /// The weights as f32 (every float tensor of the checkpoint), one window's activations
    /// (the residual stream and its norms, q, k, v, the MLP's hidden layer and the logits, 4
    /// bytes each, four of them alive at once at most; the attention's scores are one
    /// position's at a time per thread), and the text's bytes with its tokenization
    /// (tokenizers keeps each byte's alignment and each token's string, offsets and masks: 153
    /// bytes a byte of plain text, 371 for a token a byte, measured; 448 counted).
    fn estimate_language(&self, folder: &Folder, bytes: u64, context: usize) -> Result<()> {
        let c = &folder.config;
        let weights: u64 = folder
            .checkpoint
            .tensors()
            .iter()
            .filter(|t| t.is_float())
            .map(|t| t.elements() as u64)
            .sum();
        let per_token =
            (4 * c.hidden + c.q_width() + 2 * c.kv_width() + 2 * c.intermediate + c.vocab) as u64;
        let scores = (rayon::current_num_threads() * context * 4) as u64;
        Estimate::default()
            .add(format!("the model's {weights} weights as f32"), weights * 4)
            .add(
                format!("a window of {context} tokens' activations"),
                per_token * context as u64 * 4 * 4,
            )
            .add("the attention's scores", scores)
            .add(
                format!("{bytes} bytes of text, tokenized"),
                bytes.saturating_mul(448),
            )
            .check(self.data.max_memory)
    }
}
