//! Token models on text (a model description's `tokV`: the paper's LSTM language-model kind,
//! `tok65-embed128-lstm256-65`): the `tokenizer.json` beside the checkpoint, the text's ids,
//! the windows checked before any work, and every stage's perplexity by the same sliding
//! window as a Hugging Face decoder's (crate::language): the original in float, the float
//! stages rebuilt from the images, and the bit-exact EIE model on them.

use std::path::{Path, PathBuf};
use std::time::Instant;

use eie_dataset::SampleRange;
use eie_evaluate::program::Program;
use eie_evaluate::{Arch, Network, bundle_density, token_float_stages};
use eie_format::Bundle;
use eie_simulate::{Arith, LayerView};
use eie_text::Tokenizer;
use eie_transformer::perplexity::sliding;

use crate::budget::Estimate;
use crate::error::{Error, Result};
use crate::language::{Corpus, EIE_STAGE, Measured, Metric, Score, TextSetup, bytes_of};

/// A token model's window when neither `--context` nor its checkpoint (`eie.context`, which
/// `train` records) says.
pub const DEFAULT_TOKEN_CONTEXT: usize = 64;

/// The metadata key under which `train` records a token model's training window.
pub const CONTEXT_KEY: &str = "eie.context";

/// The most tokens a token model's window may hold (an LSTM takes any length; this bounds
/// one window's work and memory).
pub const MAX_TOKEN_CONTEXT: usize = 1 << 20;

/// The text file of `spec`, for token model `arch` of checkpoint `model`: a text dataset
/// with no input scaling, and activation fractions `given` (if any) two per matrix.
pub(crate) fn text_of<'s>(
    model: &Path,
    arch: &Arch,
    spec: &'s eie_dataset::Spec,
    scaled: bool,
    given: &[u8],
) -> Result<&'s Path> {
    let eie_dataset::Spec::Text { path } = spec else {
        return Err(Error::Unfit {
            reason: format!(
                "{} is a token model ({arch}): measure it on text (--dataset text:FILE), not on {spec}",
                model.display()
            ),
        });
    };
    if scaled {
        return Err(Error::NotApplicable {
            option: "--scale, --mean and --std",
            applies_to: "image datasets (a token model reads token ids)".into(),
        });
    }
    if !given.is_empty() {
        eie_evaluate::program::check_fraction_count(given, eie_model::matrix_specs(arch)?.len())?;
    }
    Ok(path)
}

/// The tokenizer a token model reads text with: `tokenizer.json` in its checkpoint's folder.
pub fn tokenizer_path(model: &Path) -> PathBuf {
    model.parent().map_or_else(
        || PathBuf::from("tokenizer.json"),
        |d| d.join("tokenizer.json"),
    )
}

/// The text token model `arch` (checkpoint `model`, its metadata `meta`) is measured on,
/// resolved: its tokenizer (which must fit the vocabulary), windows of `context` (default
/// the recorded training window, else [`DEFAULT_TOKEN_CONTEXT`]) every `stride` (default
/// half the context), the byte range checked against the file.
pub fn setup(
    model: &Path,
    arch: &Arch,
    meta: &std::collections::BTreeMap<String, String>,
    text: &Path,
    range: Option<SampleRange>,
    context: Option<usize>,
    stride: Option<usize>,
) -> Result<TextSetup> {
    let vocab = arch.vocab().expect("a token model");
    let path = tokenizer_path(model);
    if !path.exists() {
        return Err(Error::Unfit {
            reason: format!(
                "{} is a token model ({}): it reads text with the tokenizer.json beside it, and {} does not exist",
                model.display(),
                arch,
                path.display()
            ),
        });
    }
    let tokenizer = Tokenizer::load(&path)?;
    if tokenizer.id_bound() > vocab {
        return Err(Error::Unfit {
            reason: format!(
                "{} has {} tokens with ids up to {}, but the model's vocabulary (tok{vocab}) is {vocab}",
                path.display(),
                tokenizer.vocab_size(),
                tokenizer.id_bound() - 1
            ),
        });
    }
    let recorded = match meta.get(CONTEXT_KEY) {
        None => None,
        Some(v) => Some(
            v.parse::<usize>()
                .ok()
                .filter(|c| (2..=MAX_TOKEN_CONTEXT).contains(c))
                .ok_or_else(|| Error::Unfit {
                    reason: format!(
                        "{}: metadata {CONTEXT_KEY} is \"{}\", not a window of 2 to {MAX_TOKEN_CONTEXT} tokens",
                        model.display(),
                        eie_format::shown(v)
                    ),
                })?,
        ),
    };
    let context = context.or(recorded).unwrap_or(DEFAULT_TOKEN_CONTEXT);
    let stride = stride.unwrap_or(context.div_ceil(2));
    if !(2..=MAX_TOKEN_CONTEXT).contains(&context) || stride == 0 || stride > context {
        return Err(Error::Unfit {
            reason: format!(
                "a context of {context} tokens every {stride}: expected 2 <= context <= {MAX_TOKEN_CONTEXT} and 1 <= stride <= context"
            ),
        });
    }
    Ok(TextSetup {
        metric: Metric::NextToken,
        path: text.to_path_buf(),
        bytes: bytes_of(text, range)?,
        tokenizer,
        context,
        stride,
    })
}

/// The memory a token model's measuring takes, from its description before anything is
/// read: `models` copies of its weights as f32 (the original and the stages'), a window's
/// activations on every thread (every token's values through the layers, as
/// [`Arch::footprint`] counts them), the logits of the windows computed at once, and the text
/// tokenized (as [`TextSetup`]'s estimate counts it).
pub(crate) fn estimate(arch: &Arch, setup: &TextSetup, models: u64) -> Result<Estimate> {
    let fp = arch.footprint()?;
    let (weights, per_token) = (fp.weights, fp.values + arch.input.size() as u64);
    let vocab = arch.vocab().expect("a token model");
    let bytes = setup.bytes.1 - setup.bytes.0;
    let mut e = Estimate::default();
    e.add(
        format!("{models} x the model's {weights} weights as f32"),
        models * weights * 4,
    )
    .add(
        format!(
            "a window of {} tokens' activations on each thread",
            setup.context
        ),
        (per_token * setup.context as u64 * 4).saturating_mul(rayon::current_num_threads() as u64),
    )
    .add(
        "the logits of the windows computed at once",
        (windows_at_once(setup.context, vocab) as u64)
            .saturating_mul(setup.context as u64)
            .saturating_mul(vocab as u64 * 4),
    )
    .add(
        format!("{bytes} bytes of text, tokenized"),
        bytes.saturating_mul(448),
    );
    Ok(e)
}

/// The most windows whose logits are computed at once, in parallel.
const WINDOWS_AT_ONCE: usize = 64;

/// The most bytes of logits held at once (`context x V` floats a window): fewer windows at
/// once when a window's are large.
const LOGITS_AT_ONCE: u64 = 256 << 20;

/// Windows computed at once for windows of `context` tokens over `vocab`: at most
/// [`WINDOWS_AT_ONCE`], their logits within [`LOGITS_AT_ONCE`], one at least.
fn windows_at_once(context: usize, vocab: usize) -> usize {
    let one = (context as u64)
        .saturating_mul(vocab as u64)
        .saturating_mul(4);
    ((LOGITS_AT_ONCE / one.max(1)) as usize).clamp(1, WINDOWS_AT_ONCE)
}

/// A stage's perplexity: `logits` of every window. Windows start from a zero state, so they
/// are independent: they run [`windows_at_once`] at a time, in parallel, and are scored in
/// the text's order (the chunks do not depend on the thread count, so neither do the sums,
/// nor which error is reported first).
fn measure(
    name: &str,
    density: Option<f64>,
    vocab: usize,
    corpus: &Corpus,
    setup: &TextSetup,
    logits: impl Fn(&[u32]) -> Result<Vec<f32>> + Sync,
) -> Result<Measured> {
    use rayon::prelude::*;
    let start = Instant::now();
    let ids = &corpus.ids;
    let windows = eie_transformer::perplexity::windows(ids.len(), setup.context, setup.stride);
    let at_once = windows_at_once(setup.context, vocab);
    let mut next = 0;
    let mut ready = std::collections::VecDeque::new();
    let p = sliding(
        ids,
        vocab,
        setup.context,
        setup.stride,
        |w: &[u32]| -> Result<Vec<f32>> {
            if ready.is_empty() {
                let chunk = &windows[next..(next + at_once).min(windows.len())];
                let computed: Vec<Result<Vec<f32>>> = chunk
                    .par_iter()
                    .map(|&(b, e, _)| logits(&ids[b..e]))
                    .collect();
                // The first window's error, whichever thread met it.
                let computed = computed.into_iter().collect::<Result<Vec<_>>>()?;
                ready.extend(chunk.iter().map(|&(b, e, _)| &ids[b..e]).zip(computed));
                next += chunk.len();
            }
            match ready.pop_front() {
                // The windows sliding asks for are these, in this order.
                Some((window, l)) if window == w => Ok(l),
                _ => Err(Error::Unfit {
                    reason: "the windows computed ahead are not the ones scored".into(),
                }),
            }
        },
    )?;
    Ok(Measured {
        name: name.into(),
        density,
        score: Score::Tokens(p),
        seconds: start.elapsed().as_secs_f64(),
        pooled: None,
        train_loss: None,
    })
}

/// The original model's stage, in float.
pub fn original(net: &Network, corpus: &Corpus, setup: &TextSetup) -> Result<Measured> {
    stage("original (float)", None, net, corpus, setup)
}

/// Network `net`'s stage `name`, in float.
pub(crate) fn stage(
    name: &str,
    density: Option<f64>,
    net: &Network,
    corpus: &Corpus,
    setup: &TextSetup,
) -> Result<Measured> {
    let vocab = net.vocab().expect("a token model");
    measure(name, density, vocab, corpus, setup, |w| {
        Ok(net.forward_tokens(w))
    })
}

/// Every compressed stage of `bundle` (made from `net`): pruned (with `pruned`: a
/// retrained model's pruned weights are not the original ones) and pruned + shared in float,
/// rebuilt from the images, and the bit-exact EIE model on them, with activation fractions
/// `given` or, when none are given, calibrated on the corpus's windows. Returns the stages
/// and the fractions.
pub fn compressed(
    net: &Network,
    bundle: &Bundle,
    corpus: &Corpus,
    setup: &TextSetup,
    given: &[u8],
    arith: Arith,
    pruned: bool,
) -> Result<(Vec<Measured>, Vec<u8>)> {
    let vocab = net.vocab().expect("a token model");
    let views = LayerView::all(bundle);
    let density = Some(bundle_density(&views)?);
    let mut stages = Vec::new();
    for (name, stage) in token_float_stages(net, bundle)? {
        if name == eie_evaluate::PRUNED_STAGE && !pruned {
            continue;
        }
        stages.push(measure(name, density, vocab, corpus, setup, |w| {
            Ok(stage.forward_tokens(w))
        })?);
    }
    let program = Program::of(bundle)?.ok_or_else(|| Error::Unfit {
        reason: "the bundle records no token model's description".into(),
    })?;
    let windows =
        eie_transformer::perplexity::windows(corpus.ids.len(), setup.context, setup.stride);
    let fracs =
        program.token_fractions(given, windows.iter().map(|&(b, e, _)| &corpus.ids[b..e]))?;
    stages.push(measure(EIE_STAGE, density, vocab, corpus, setup, |w| {
        Ok(program.token_logits(w, &fracs, arith)?)
    })?);
    Ok((stages, fracs))
}
