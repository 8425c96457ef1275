//! Hugging Face language model folders, as `compress` and `eval` take them: the plan of a
//! folder's linear layers, the text a model is measured on (its tokenizer's ids of a byte
//! range, windows checked before any work), and every stage's score: the original, the
//! float stages rebuilt from the images, and the bit-exact EIE model on the images. A causal
//! model is scored by its perplexity, an encoder by its masked tokens or, without a
//! masked-LM head, by how closely its sentence embeddings follow the original's.

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use eie_checkpoint::{SkipReason, Skipped, is_embedding};
use eie_dataset::SampleRange;
use eie_evaluate::{PRUNED_STAGE, SHARED_STAGE, StageReport, bundle_density};
use eie_format::Bundle;
use eie_pipeline::{BiasPlan, LayerSettings, MatrixPlan, Plan, recorded_weights};
use eie_simulate::fixed::MAX_ACT_FRAC;
use eie_simulate::{Arith, LayerView};
use eie_text::{Text, Tokenizer};
use eie_transformer::eie::{Eie, Ranges, Rebuilt, rebuilt};
use eie_transformer::masked::{MASK_SEED, Specials, is_masked};
use eie_transformer::pooled::{MIN_SENTENCES, Sentences, sentences};
use eie_transformer::{
    Dense, Fidelity, Folder, Linear, LinearSpec, Model, Perplexity, Pooled, Pooling, SentenceConfig,
};
use serde::Serialize;

use crate::budget::Estimate;
use crate::error::{Error, Result};

/// The most tokens a window takes by default: the model's positions, at most this many.
pub const DEFAULT_CONTEXT: usize = 1024;

/// Name of the bit-exact stage of a language model.
pub const EIE_STAGE: &str = "EIE bit-exact (images)";

/// Whether `path` is a Hugging Face model folder (it holds a `config.json`).
pub fn is_model_folder(path: &Path) -> bool {
    path.join("config.json").is_file()
}

/// The plan of a folder's linear layers, in forward order (docs/models.md, "Transformers"):
/// every one by default, or those `request`'s patterns (or recipe's `select`) name by their
/// Hugging Face names. A GPT-2 `Conv1D` weight is read transposed; a tied head is a layer of
/// its own, `lm_head.weight` (BERT's `cls.predictions.decoder.weight`), read from the token
/// embeddings, which stay a float lookup on the host. The embeddings, norms and any matrix
/// the forward pass does not use are listed as skipped.
pub fn plan(folder: &Folder, request: &eie_pipeline::Request) -> Result<Plan> {
    let ck = &folder.checkpoint;
    let specs = folder.linears()?;
    let dtype = |name: &str| ck.info(name).map(|i| i.dtype).expect("checked by linears");
    let matrices = specs
        .iter()
        .map(|s| MatrixPlan {
            name: s.name.clone(),
            tensor: s.weight.clone(),
            transposed: s.transposed,
            rows: s.rows,
            inputs: s.cols,
            dtype: dtype(&s.weight),
            bias: s.bias.as_ref().map(|b| BiasPlan {
                name: b.clone(),
                dtype: dtype(b),
            }),
            base: LayerSettings::default(),
        })
        .collect();
    let layers: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
    let skipped = ck
        .model_order()
        .into_iter()
        .filter(|n| n.ends_with(".weight") && !layers.contains(&n.as_str()))
        .map(|name| {
            let info = ck.info(&name).expect("listed");
            let reason = if !info.is_float() {
                SkipReason::NotFloat(info.dtype)
            } else if info.shape.len() != 2 {
                SkipReason::NotMatrix(info.shape.clone())
            } else if is_embedding(&name) {
                SkipReason::Embedding
            } else {
                SkipReason::Unused
            };
            Skipped { name, reason }
        })
        .collect();
    Ok(Plan::from_selected(matrices, request, skipped)?)
}

/// What a model is measured by on text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// A causal model: perplexity and top-1 of every next token, by `transformers`' sliding
    /// window.
    NextToken,
    /// An encoder with a masked-LM head: of the masked tokens
    /// (eie_transformer::masked).
    Masked(Specials),
    /// An encoder without one: its sentence embeddings against the original's
    /// (eie_transformer::pooled), each sentence run as `[CLS] ... [SEP]`.
    Sentences {
        /// `[CLS]`.
        cls: u32,
        /// `[SEP]`.
        sep: u32,
        /// How a sentence's token states become one vector.
        pooling: Pooling,
    },
}

impl Metric {
    /// In words, for the report.
    pub fn name(&self) -> &'static str {
        match self {
            Metric::NextToken => "next token",
            Metric::Masked(_) => "masked tokens (15%)",
            Metric::Sentences {
                pooling: Pooling::Mean,
                ..
            } => "sentence embeddings (mean-pooled)",
            Metric::Sentences {
                pooling: Pooling::Cls,
                ..
            } => "sentence embeddings ([CLS])",
        }
    }
}

/// The text a language model is measured on, resolved: every check that needs neither the
/// weights nor the text done.
#[derive(Debug)]
pub struct TextSetup {
    /// What is measured.
    pub metric: Metric,
    /// The text file.
    pub path: std::path::PathBuf,
    /// Its bytes to read (ends not yet moved to character boundaries).
    pub bytes: (u64, u64),
    /// The model's tokenizer.
    pub tokenizer: Tokenizer,
    /// Tokens a window holds.
    pub context: usize,
    /// Tokens between windows' starts.
    pub stride: usize,
}

impl TextSetup {
    /// Checks the windows against the model (default context: its positions or sliding
    /// window, at most [`DEFAULT_CONTEXT`]; default stride: half the context), reads its
    /// tokenizer (which must fit the vocabulary) and the byte range against the file.
    pub fn resolve(
        folder: &Folder,
        path: &Path,
        range: Option<SampleRange>,
        context: Option<usize>,
        stride: Option<usize>,
    ) -> Result<Self> {
        let c = &folder.config;
        let tokenizer = Tokenizer::load(&folder.dir.join("tokenizer.json"))?;
        let (metric, context, stride) = if c.causal() {
            let context = context.unwrap_or(
                c.positions
                    .min(c.sliding_window.unwrap_or(usize::MAX))
                    .min(DEFAULT_CONTEXT),
            );
            let stride = stride.unwrap_or(context.div_ceil(2));
            eie_transformer::perplexity::check_windows(c, context, stride)?;
            (Metric::NextToken, context, stride)
        } else {
            let specs = folder.linears()?;
            let head = specs.iter().any(|s| s.name.starts_with("cls.predictions."));
            if stride.is_some() {
                return Err(Error::NotApplicable {
                    option: "--stride",
                    applies_to: "causal language models (an encoder's windows do not overlap)"
                        .into(),
                });
            }
            // Without a head, the most tokens a sentence is embedded with, as its
            // sentence-transformers files say.
            let sentence = match head {
                true => None,
                false => Some(SentenceConfig::of_folder(&folder.dir, c.hidden)?),
            };
            let most = sentence
                .as_ref()
                .and_then(|s| s.max_seq_length)
                .unwrap_or(512);
            let context = context.unwrap_or(c.positions.min(most));
            if context < 3 || context > c.positions {
                return Err(Error::Unfit {
                    reason: format!(
                        "a context of {context} tokens: expected 3 <= context <= {} (the model's positions; [CLS] and [SEP] take two)",
                        c.positions
                    ),
                });
            }
            let measure = if head {
                "masked-token accuracy"
            } else {
                "embedding a sentence"
            };
            let id = |token: &str| {
                tokenizer.token_id(token).ok_or_else(|| Error::Unfit {
                    reason: format!(
                        "{} has no {token} token, which {measure} needs",
                        tokenizer.path().display()
                    ),
                })
            };
            let (cls, sep) = (id("[CLS]")?, id("[SEP]")?);
            let metric = match sentence {
                None => Metric::Masked(Specials {
                    cls,
                    sep,
                    mask: id("[MASK]")?,
                }),
                Some(s) => Metric::Sentences {
                    cls,
                    sep,
                    pooling: s.pooling,
                },
            };
            (metric, context, context - 2)
        };
        if tokenizer.id_bound() > c.vocab {
            return Err(Error::Unfit {
                reason: format!(
                    "{} has {} tokens with ids up to {}, but the model's vocabulary (config.json vocab_size) is {}",
                    tokenizer.path().display(),
                    tokenizer.vocab_size(),
                    tokenizer.id_bound() - 1,
                    c.vocab
                ),
            });
        }
        let bytes = bytes_of(path, range)?;
        Ok(Self {
            metric,
            path: path.to_path_buf(),
            bytes,
            tokenizer,
            context,
            stride,
        })
    }

    /// The memory the text and one stage's model take (docs/reliability.md, "Budgets"): the
    /// model's weights as f32 (`models` of them alive at once), one window's activations
    /// (the residual stream and its norms, q, k, v, the MLP's hidden layer and the logits, 4
    /// bytes each, four of them alive at once at most; the attention's scores are a head's
    /// `context x context` per thread), and the text's bytes with its tokenization
    /// (tokenizers keeps each byte's alignment and each token's string, offsets and masks: 153
    /// bytes a byte of plain text, 371 for a token a byte, measured; 448 counted); sentence
    /// embeddings, their pairwise cosines and ranks (16 bytes a pair of sentences counted, for
    /// as many sentences as the bytes could hold, at most
    /// [`eie_transformer::pooled::MAX_SENTENCES`]).
    pub(crate) fn estimate(&self, folder: &Folder, models: u64) -> Estimate {
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
        // A head's scores (context x context), queries, keys, values and outputs per task,
        // as many tasks at once as threads (at most one per head).
        let tasks = rayon::current_num_threads().min(c.heads) as u64;
        let (t, d) = (self.context as u64, c.head_dim as u64);
        let scores = tasks.saturating_mul(t * t + 4 * t * d).saturating_mul(4);
        let bytes = self.bytes.1 - self.bytes.0;
        let mut e = Estimate::default();
        e.add(
            format!("{models} x the model's {weights} weights as f32"),
            models * weights * 4,
        )
        .add(
            format!("a window of {} tokens' activations", self.context),
            per_token * self.context as u64 * 4 * 4,
        )
        .add("the attention's scores", scores)
        .add(
            format!("{bytes} bytes of text, tokenized"),
            bytes.saturating_mul(448),
        );
        if let Metric::Sentences { .. } = self.metric {
            let n = (bytes / 2 + 1).min(eie_transformer::pooled::MAX_SENTENCES as u64);
            e.add(
                format!("{n} sentences' embeddings and their pairwise cosines"),
                16 * n * n + 4 * n * c.hidden as u64 * 4,
            );
        }
        e
    }

    /// Reads the text and tokenizes it.
    pub fn load(&self) -> Result<Corpus> {
        let text = Text::load(&self.path, Some(self.bytes))?;
        if let Metric::Sentences { .. } = self.metric {
            return self.load_sentences(text);
        }
        let ids = self.tokenizer.encode(&text.text, false)?;
        let unscored = match self.metric {
            Metric::NextToken => {
                (ids.len() < 2).then_some("scoring the next token needs at least 2")
            }
            Metric::Masked(_) => (!(0..ids.len()).any(|i| is_masked(MASK_SEED, i)))
                .then_some("none of them would be masked"),
            Metric::Sentences { .. } => unreachable!("loaded above"),
        };
        if let Some(why) = unscored {
            return Err(Error::Unfit {
                reason: format!(
                    "{} [bytes {}..{}] holds {} tokens: {why}; give more text",
                    self.path.display(),
                    text.start,
                    text.end,
                    ids.len(),
                ),
            });
        }
        Ok(Corpus {
            bytes: [text.start, text.end],
            ids,
            sentences: None,
        })
    }

    /// An encoder's `[CLS]` and `[SEP]` (0 and 0 for a causal model, which has none).
    pub(crate) fn specials(&self) -> (u32, u32) {
        match self.metric {
            Metric::NextToken => (0, 0),
            Metric::Masked(s) => (s.cls, s.sep),
            Metric::Sentences { cls, sep, .. } => (cls, sep),
        }
    }

    /// A text's sentences: its distinct lines (eie_transformer::pooled::sentences), each
    /// tokenized alone and cut to the context less its two specials.
    pub(crate) fn load_sentences(&self, text: Text) -> Result<Corpus> {
        let mut lines = Vec::new();
        for line in text.text.lines() {
            lines.push(self.tokenizer.encode(line.trim(), false)?);
        }
        let s = sentences(lines, self.context - 2);
        if s.ids.len() < MIN_SENTENCES {
            return Err(Error::Unfit {
                reason: format!(
                    "{} [bytes {}..{}] holds {} distinct lines with a token: comparing sentence embeddings takes at least {MIN_SENTENCES} (a sentence a line); give more text",
                    self.path.display(),
                    text.start,
                    text.end,
                    s.ids.len(),
                ),
            });
        }
        Ok(Corpus {
            bytes: [text.start, text.end],
            ids: s.ids.concat(),
            sentences: Some(s),
        })
    }
}

/// A text's tokens.
#[derive(Debug)]
pub struct Corpus {
    /// The bytes read (ends moved to character boundaries).
    pub bytes: [u64; 2],
    /// The tokenizer's ids (of an encoder measured by its sentence embeddings: the
    /// sentences', one after another).
    pub ids: Vec<u32>,
    /// An encoder measured by its sentence embeddings: the sentences.
    pub sentences: Option<Sentences>,
}

/// What a stage scored.
#[derive(Debug, Clone)]
pub enum Score {
    /// A language model's tokens: perplexity and top-1.
    Tokens(Perplexity),
    /// An encoder's sentence embeddings against the original's.
    Sentences(Fidelity),
}

/// One stage measured on a corpus.
#[derive(Debug, Clone)]
pub struct Measured {
    /// The stage's name.
    pub name: String,
    /// Its weight density over the compressed layers (`None`: the original).
    pub density: Option<f64>,
    /// Its score.
    pub score: Score,
    /// Seconds it took.
    pub seconds: f64,
    /// The original's sentence embeddings, which later stages are compared with.
    pub pooled: Option<Pooled>,
    /// The mean training loss of the last epoch of the training that made this stage.
    pub train_loss: Option<f64>,
}

impl Measured {
    /// The stage as reported, against `base` (the original's).
    pub fn report(&self, base: &Measured) -> StageReport {
        let (top1, correct, total) = self.top1();
        let mut r = StageReport {
            stage: self.name.clone(),
            density: self.density,
            top1,
            correct,
            total,
            delta_pct: 100.0 * (top1 - base.top1().0),
            train_loss: self.train_loss,
            per_class: Vec::new(),
            perplexity: None,
            loss: None,
            cosine: None,
            rank_correlation: None,
        };
        match &self.score {
            Score::Tokens(p) => {
                r.perplexity = Some(p.perplexity());
                r.loss = Some(p.loss());
            }
            Score::Sentences(f) => {
                r.cosine = Some(f.mean_cosine);
                r.rank_correlation = Some(f.rank_correlation);
            }
        }
        r
    }

    /// Top-1 (of the next or masked tokens, or of retrieval), its hits and its trials.
    fn top1(&self) -> (f64, u64, u64) {
        match &self.score {
            Score::Tokens(p) => (p.top1_accuracy(), p.top1 as u64, p.scored as u64),
            Score::Sentences(f) => (f.top1_accuracy(), f.top1 as u64, f.sentences as u64),
        }
    }

    /// Tokens scored, or sentences compared.
    pub fn scored(&self) -> usize {
        self.top1().2 as usize
    }

    /// Windows (or sentences) run.
    pub fn windows(&self) -> usize {
        match &self.score {
            Score::Tokens(p) => p.windows,
            Score::Sentences(f) => f.sentences,
        }
    }

    /// The stage's score in a few words, for progress notes.
    pub fn summary(&self) -> String {
        match &self.score {
            Score::Tokens(p) => format!("perplexity {:.3}, loss {:.4}", p.perplexity(), p.loss()),
            Score::Sentences(f) => format!(
                "mean cosine {:.4}, rank correlation {:.4}, retrieval top-1 {}/{}",
                f.mean_cosine, f.rank_correlation, f.top1, f.sentences
            ),
        }
    }

    /// Tokens a second (every window's tokens, context and specials included).
    pub fn tokens_per_second(&self) -> f64 {
        let run = match &self.score {
            Score::Tokens(p) => p.run,
            Score::Sentences(f) => f.run,
        };
        run as f64 / self.seconds.max(1e-9)
    }
}

/// Runs `model` over the corpus's windows (or sentences, whose embeddings are compared with
/// `reference`'s, the original's; none: this is the original).
pub(crate) fn measure<L: Linear>(
    name: &str,
    density: Option<f64>,
    model: &Model<L>,
    corpus: &Corpus,
    setup: &TextSetup,
    reference: Option<&Measured>,
) -> Result<Measured> {
    let start = Instant::now();
    let mut pooled = None;
    let score = match setup.metric {
        Metric::NextToken => {
            Score::Tokens(model.perplexity(&corpus.ids, setup.context, setup.stride)?)
        }
        Metric::Masked(s) => {
            Score::Tokens(model.masked_lm(&corpus.ids, setup.context, s, MASK_SEED)?)
        }
        Metric::Sentences { cls, sep, pooling } => {
            let list = &corpus.sentences.as_ref().expect("loaded as sentences").ids;
            let mine = model.pooled(list, cls, sep, pooling)?;
            let base = match reference.map(|r| r.pooled.as_ref()) {
                None => &mine,
                Some(Some(base)) => base,
                Some(None) => {
                    return Err(Error::Unfit {
                        reason: format!(
                            "{name}: the original's sentence embeddings, which it is compared with, were not kept"
                        ),
                    });
                }
            };
            let f = Fidelity::between(base, &mine)?;
            if reference.is_none() {
                pooled = Some(mine);
            }
            Score::Sentences(f)
        }
    };
    Ok(Measured {
        name: name.into(),
        density,
        score,
        seconds: start.elapsed().as_secs_f64(),
        pooled,
        train_loss: None,
    })
}

/// The original model's stage.
pub fn original(folder: &Folder, corpus: &Corpus, setup: &TextSetup) -> Result<Measured> {
    let model = eie_transformer::dense(folder)?;
    measure("original (float)", None, &model, corpus, setup, None)
}

/// Every compressed stage of `bundle` (made from `folder`): pruned and pruned + shared, in
/// float, rebuilt from the images, and the bit-exact EIE model on them, with activation
/// fractions `given` or, when none are given, calibrated on the corpus in the shared stage's
/// run; each scored against `original`'s. Returns the stages, the fractions and notes on
/// what runs where.
#[allow(clippy::too_many_arguments)]
pub fn compressed(
    folder: &Folder,
    bundle: &Bundle,
    corpus: &Corpus,
    setup: &TextSetup,
    original: &Measured,
    given: &[u8],
    arith: Arith,
) -> Result<(Vec<Measured>, Vec<u8>, Vec<String>)> {
    let views = LayerView::all(bundle);
    let specs = folder.linears()?;
    let index = check_layers(folder, &specs, bundle, &views)?;
    check_fractions(given, &views)?;
    let density = Some(bundle_density(&views)?);
    let mut stages = Vec::new();
    let mut notes = Vec::new();
    // A retrained or updated model's pruned weights are not the original ones at the kept
    // positions.
    if let Some(why) = eie_evaluate::kept_values_changed(bundle) {
        let more = if eie_evaluate::is_retraining(bundle) {
            "compress reports its retraining stages"
        } else {
            "the pruned and shared stage holds them, shared"
        };
        notes.push(format!("not measured: {PRUNED_STAGE}: {why} ({more})"));
    } else {
        let pruned = stage(folder, &index, &|d, i| {
            Ok(Box::new(rebuilt(&d, &views[i], Rebuilt::Pruned)?))
        })?;
        stages.push(measure(
            PRUNED_STAGE,
            density,
            &pruned,
            corpus,
            setup,
            Some(original),
        )?);
    }
    let ranges = Ranges::new(views.len());
    let shared = stage(folder, &index, &|d, i| {
        let s = rebuilt(&d, &views[i], Rebuilt::Shared)?;
        Ok(Box::new(ranges.record(i, s)))
    })?;
    stages.push(measure(
        SHARED_STAGE,
        density,
        &shared,
        corpus,
        setup,
        Some(original),
    )?);
    drop(shared);
    let fracs = if given.is_empty() {
        ranges.fractions()
    } else {
        given.to_vec()
    };
    let eie = stage(folder, &index, &|d, i| {
        Ok(Box::new(Eie::new(
            &d,
            views[i],
            [fracs[2 * i], fracs[2 * i + 1]],
            arith,
        )?))
    })?;
    stages.push(measure(
        EIE_STAGE,
        density,
        &eie,
        corpus,
        setup,
        Some(original),
    )?);
    let host: Vec<&str> = specs
        .iter()
        .map(|s| s.name.as_str())
        .filter(|n| !index.contains_key(n))
        .collect();
    if !host.is_empty() {
        notes.push(format!(
            "{} of the model's {} linear layers are not in the images and run in float on the host in every stage: {}",
            host.len(),
            specs.len(),
            host.join(", ")
        ));
    }
    let loose: Vec<&str> = views
        .iter()
        .filter(|v| !v.has_bias())
        .filter_map(|v| {
            let spec = specs.iter().find(|s| s.name == v.name())?;
            spec.bias.as_ref().map(|_| v.name())
        })
        .collect();
    if !loose.is_empty() {
        notes.push(format!(
            "the images hold no bias column for {} (compressed with --no-bias-column): the EIE stage adds their float biases on the host",
            loose.join(", ")
        ));
    }
    Ok((stages, fracs, notes))
}

/// A stage's model: each packed layer made by `make` from its original and its index in the
/// images, the rest the original floats.
fn stage<'a>(
    folder: &Folder,
    index: &HashMap<&str, usize>,
    make: &dyn Fn(Dense, usize) -> eie_transformer::Result<Box<dyn Linear + 'a>>,
) -> Result<Model<Box<dyn Linear + 'a>>> {
    Ok(folder.model(&mut |spec| {
        let d = Dense::read(&folder.checkpoint, spec)?;
        match index.get(spec.name.as_str()) {
            Some(&i) => make(d, i),
            None => Ok(Box::new(d) as Box<dyn Linear>),
        }
    })?)
}

/// Every packed layer must be a linear layer of the folder's model, packed from the tensor the
/// model reads it from, the same way round (a square GPT-2 `Conv1D` packed as stored would
/// pass every shape check): their indices by name.
pub fn check_layers<'a>(
    folder: &Folder,
    specs: &[LinearSpec],
    bundle: &Bundle,
    views: &'a [LayerView<'a>],
) -> Result<HashMap<&'a str, usize>> {
    let mut index = HashMap::new();
    let way = |t: &str, transposed: bool| {
        format!(
            "{t}{}",
            if transposed {
                ", transposed"
            } else {
                ", as stored"
            }
        )
    };
    for (i, v) in views.iter().enumerate() {
        let Some(spec) = specs.iter().find(|s| s.name == v.name()) else {
            let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
            return Err(Error::Unfit {
                reason: format!(
                    "the images hold layer {}, which is not a linear layer of the model in {} ({})",
                    v.name(),
                    folder.dir.display(),
                    eie_checkpoint::name_list(&names)
                ),
            });
        };
        let (tensor, transposed) = recorded_weights(&bundle.meta().settings, v.name());
        if (tensor.as_str(), transposed) != (spec.weight.as_str(), spec.transposed) {
            return Err(Error::Unfit {
                reason: format!(
                    "the images' layer {} was packed from {}, but the model in {} computes it from {}: compress the folder itself (eie-compress compress {})",
                    v.name(),
                    way(&tensor, transposed),
                    folder.dir.display(),
                    way(&spec.weight, spec.transposed),
                    folder.dir.display()
                ),
            });
        }
        index.insert(v.name(), i);
    }
    Ok(index)
}

/// Activation fractions given for the EIE stage: two per packed layer (input, output, in the
/// images' order), each at most [`MAX_ACT_FRAC`].
pub fn check_fractions(given: &[u8], views: &[LayerView]) -> Result<()> {
    let bad = |reason: String| {
        Err(Error::Option {
            option: "--act-frac".into(),
            reason,
        })
    };
    if !given.is_empty() && given.len() != 2 * views.len() {
        return bad(format!(
            "{} fractions given; the images hold {} layers, which take two each (input, output) in their order: {}",
            given.len(),
            views.len(),
            eie_checkpoint::name_list(&views.iter().map(|v| v.name()).collect::<Vec<_>>())
        ));
    }
    match given.iter().find(|&&f| f > MAX_ACT_FRAC) {
        Some(f) => bad(format!("{f} is over {MAX_ACT_FRAC}")),
        None => Ok(()),
    }
}

/// What a language model was evaluated on, and how.
#[derive(Debug, Clone, Serialize)]
pub struct TextReport {
    /// What was measured: "next token", "masked tokens (15%)" (then `perplexity` and
    /// `top1` are of the masked tokens), or "sentence embeddings (mean-pooled)" or
    /// "(`[CLS]`)" (then each stage has `cosine` and `rank_correlation`, and `top1` is
    /// retrieval's).
    pub metric: &'static str,
    /// The tokenizer.json.
    pub tokenizer: String,
    /// The text's bytes read (ends moved to character boundaries).
    pub bytes: [u64; 2],
    /// The text's tokens.
    pub tokens: usize,
    /// Tokens a window holds.
    pub context: usize,
    /// Tokens between windows' starts (an encoder's windows: the context less its two
    /// specials).
    pub stride: usize,
    /// Windows run (an encoder's sentence embeddings: a window a sentence).
    pub windows: usize,
    /// An encoder's sentence embeddings: the text's lines that became sentences.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sentences: Option<SentenceCounts>,
    /// How fast it ran (wall time: `eval`'s JSON has it, `compress`'s report.json, which
    /// must be the same on every run, does not).
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub speed: Option<Speed>,
}

/// A text's lines as sentences (eie_transformer::pooled::sentences).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct SentenceCounts {
    /// Lines that held a token.
    pub lines: usize,
    /// Of them, distinct (after cutting to the context).
    pub distinct: usize,
    /// Sentences compared: the first distinct ones, at most
    /// eie_transformer::pooled::MAX_SENTENCES.
    pub compared: usize,
    /// Of those, cut to the context less its two specials.
    pub cut: usize,
}

/// How fast a language model's stages ran.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Speed {
    /// Seconds the float model took.
    pub seconds: f64,
    /// Tokens a second through the float model (every window's tokens, context included).
    pub tokens_per_second: f64,
    /// Tokens a second through the bit-exact EIE model, when it ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eie_tokens_per_second: Option<f64>,
}

impl TextReport {
    /// The report of `original`'s run over `corpus`, and the EIE stage's speed.
    pub fn new(
        setup: &TextSetup,
        corpus: &Corpus,
        original: &Measured,
        eie: Option<&Measured>,
    ) -> Self {
        Self {
            metric: setup.metric.name(),
            tokenizer: setup.tokenizer.path().display().to_string(),
            bytes: corpus.bytes,
            tokens: corpus.ids.len(),
            context: setup.context,
            stride: setup.stride,
            windows: original.windows(),
            sentences: corpus.sentences.as_ref().map(|s| SentenceCounts {
                lines: s.lines,
                distinct: s.distinct,
                compared: s.ids.len(),
                cut: s.cut,
            }),
            speed: Some(Speed {
                seconds: original.seconds,
                tokens_per_second: original.tokens_per_second(),
                eie_tokens_per_second: eie.map(Measured::tokens_per_second),
            }),
        }
    }
}

/// The decoder eie-evaluate retrains for `folder`'s config, windows of `context` tokens; a
/// config it does not implement refused by name.
pub(crate) fn decoder_shape(
    folder: &Folder,
    context: usize,
) -> Result<eie_evaluate::decoder::DecoderShape> {
    let c = &folder.config;
    let refuse = |why: String| Error::NotApplicable {
        option: "--retrain",
        applies_to: format!(
            "LLaMA-family decoders of model_type llama without biases, whose heads split the width ({} {why})",
            folder.dir.join("config.json").display()
        ),
    };
    if c.family != eie_transformer::Family::Llama || c.model_type != "llama" {
        return Err(refuse(format!("has model_type {}", c.model_type)));
    }
    if c.qkv_bias || c.o_bias || c.mlp_bias {
        return Err(refuse("has biases".into()));
    }
    if c.heads * c.head_dim != c.hidden {
        return Err(refuse(format!(
            "has {} heads of {} for a width of {}",
            c.heads, c.head_dim, c.hidden
        )));
    }
    let description = format!(
        "llama:layers={},heads={},kv-heads={},width={},mlp={},context={},tied=false,theta={},eps={}",
        c.layers, c.heads, c.kv_heads, c.hidden, c.intermediate, context, c.rope_theta, c.norm_eps
    );
    description
        .parse()
        .map_err(|e| refuse(format!("does not fit: {e}")))
}

/// An encoder eie-evaluate retrains: a BERT whose heads split the width, retrained by
/// distillation (it has no labels); anything else refused by name.
pub(crate) fn check_encoder(
    folder: &Folder,
    settings: &eie_evaluate::RetrainSettings,
) -> Result<()> {
    let c = &folder.config;
    let refuse = |why: String| Error::NotApplicable {
        option: "--retrain",
        applies_to: format!(
            "LLaMA-family decoders, and BERT encoders whose heads split the width ({} {why})",
            folder.dir.join("config.json").display()
        ),
    };
    if c.family != eie_transformer::Family::Bert {
        return Err(refuse(format!("has model_type {}", c.model_type)));
    }
    if c.heads * c.head_dim != c.hidden {
        return Err(refuse(format!(
            "has {} heads of {} for a width of {}",
            c.heads, c.head_dim, c.hidden
        )));
    }
    if !settings.distill {
        return Err(Error::NotApplicable {
            option: "--retrain without --distill",
            applies_to: format!(
                "models with labels to train on; {} is an encoder measured by its sentence embeddings, which retrains by distillation from the original: add --distill",
                folder.dir.display()
            ),
        });
    }
    Ok(())
}

/// A teacher of distillation tokenizes as the model does (the same tokenizer.json, byte for
/// byte, and the same vocabulary), and distillation is asked for.
fn check_same_tokens(
    folder: &Folder,
    teacher: &Folder,
    settings: &eie_evaluate::RetrainSettings,
) -> Result<()> {
    if !settings.distill {
        return Err(Error::Option {
            option: "--teacher".into(),
            reason: "the teacher of distillation applies only with --distill".into(),
        });
    }
    let read = |f: &Folder| {
        let p = f.dir.join("tokenizer.json");
        std::fs::read(&p).map_err(|e| Error::Unfit {
            reason: format!(
                "{}: {e} (distillation's teacher and model must share it)",
                p.display()
            ),
        })
    };
    if read(folder)? != read(teacher)? || folder.config.vocab != teacher.config.vocab {
        return Err(Error::Unfit {
            reason: format!(
                "--teacher {}: its tokenizer.json or vocabulary ({} tokens) is not the model's ({} tokens, {}): distillation compares the two models' outputs on the same token ids",
                teacher.dir.display(),
                teacher.config.vocab,
                folder.config.vocab,
                folder.dir.join("tokenizer.json").display()
            ),
        });
    }
    Ok(())
}

/// A decoder's teacher (`--teacher`): a decoder eie-evaluate runs, of any shape, that
/// tokenizes as the model does; its shape, for windows of the model's context.
pub(crate) fn check_teacher(
    folder: &Folder,
    teacher: &Folder,
    settings: &eie_evaluate::RetrainSettings,
    shape: &eie_evaluate::decoder::DecoderShape,
) -> Result<eie_evaluate::decoder::DecoderShape> {
    check_same_tokens(folder, teacher, settings)?;
    let ts = decoder_shape(teacher, shape.context)?;
    check_tensors(teacher, &ts)?;
    Ok(ts)
}

/// A sentence encoder's teacher (`--teacher`): a BERT encoder of the same width (its
/// sentence embeddings are the targets) that takes the model's sentences (of up to `context`
/// tokens) and tokenizes as the model does.
pub(crate) fn check_encoder_teacher(
    folder: &Folder,
    teacher: &Folder,
    settings: &eie_evaluate::RetrainSettings,
    context: usize,
) -> Result<()> {
    check_same_tokens(folder, teacher, settings)?;
    check_encoder(teacher, settings)?;
    if teacher
        .linears()?
        .iter()
        .any(|s| s.name.starts_with("cls.predictions."))
    {
        return Err(Error::Unfit {
            reason: format!(
                "--teacher {}: a BERT with a masked-LM head (cls.predictions.*); a sentence encoder's teacher is one without (its pooled embeddings are the targets): save its BertModel alone",
                teacher.dir.display()
            ),
        });
    }
    SentenceConfig::of_folder(&teacher.dir, teacher.config.hidden)?;
    let (s, t) = (&folder.config, &teacher.config);
    if t.hidden != s.hidden || t.positions < context {
        return Err(Error::Unfit {
            reason: format!(
                "--teacher {}: width {} and {} positions; the model's sentence embeddings are {} wide and its sentences up to {} tokens",
                teacher.dir.display(),
                t.hidden,
                t.positions,
                s.hidden,
                context
            ),
        });
    }
    Ok(())
}

/// The name a decoder tensor is stored under: a tied head is the embedding.
pub(crate) fn stored<'a>(folder: &Folder, name: &'a str) -> &'a str {
    if name == "lm_head.weight" && folder.config.tie_head {
        "model.embed_tokens.weight"
    } else {
        name
    }
}

/// Every tensor retraining reads is in the checkpoint with the config's element count (from
/// the header, before any work).
pub(crate) fn check_tensors(
    folder: &Folder,
    shape: &eie_evaluate::decoder::DecoderShape,
) -> Result<()> {
    for (name, dims) in eie_evaluate::decoder::tensor_names(shape, folder.config.vocab) {
        let stored = stored(folder, &name);
        let n: usize = dims.iter().product();
        let found = folder.checkpoint.info(stored).map(|i| i.elements());
        if found != Some(n) {
            return Err(Error::Unfit {
                reason: format!(
                    "{}: retraining reads tensor {stored} of {n} values ({dims:?}), {}",
                    folder.dir.display(),
                    match found {
                        Some(m) => format!("which holds {m}"),
                        None => "which the checkpoint does not have under that name".into(),
                    }
                ),
            });
        }
    }
    Ok(())
}

/// Whether the training text's bytes (when there was training) share a byte with the
/// measured text's: its figures are then not held out.
pub(crate) fn overlaps(train: Option<[u64; 2]>, measured: [u64; 2]) -> bool {
    train.is_some_and(|[a, b]| a < measured[1] && measured[0] < b)
}

/// The bytes of text file `path` that `--range` (or `--eval-range`) selects.
pub(crate) fn bytes_of(path: &Path, range: Option<SampleRange>) -> Result<(u64, u64)> {
    Ok(Text::range(
        path,
        range.map(|r| (r.start.map(|a| a as u64), r.end.map(|b| b as u64))),
    )?)
}

/// A text too short for one window of `context` tokens and the token after it.
pub(crate) fn too_short(
    what: &str,
    path: &Path,
    text: &Text,
    tokens: usize,
    context: usize,
) -> Error {
    Error::Unfit {
        reason: format!(
            "{what}{} [bytes {}..{}] holds {tokens} tokens: a window of context {context} needs at least {}; give more text",
            path.display(),
            text.start,
            text.end,
            context + 1
        ),
    }
}
