//! Perplexity of a causal language model over a token sequence, by `transformers`' sliding
//! window ("Perplexity of fixed-length models" in its documentation): windows of `context`
//! tokens that start every `stride` tokens, each scoring only the tokens the previous window
//! did not (the rest give context). No token is scored twice; with `stride < context` every
//! token after the first is scored, with `stride == context` a window's first token is not
//! (nothing precedes it in its window), exactly as the recipe does.

use crate::config::Config;
use crate::error::{Error, Result};
use crate::linear::Linear;
use crate::model::Model;

/// What a sequence cost the model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Perplexity {
    /// Windows run.
    pub windows: usize,
    /// Tokens run through the model, every window's (context included).
    pub run: usize,
    /// Tokens scored (every token but the first).
    pub scored: usize,
    /// Their negative log-likelihood, summed (nats).
    pub nll: f64,
    /// Scored tokens the model ranked first.
    pub top1: usize,
}

impl Perplexity {
    /// exp(mean negative log-likelihood).
    pub fn perplexity(&self) -> f64 {
        (self.nll / self.scored.max(1) as f64).exp()
    }

    /// Mean negative log-likelihood, nats a token.
    pub fn loss(&self) -> f64 {
        self.nll / self.scored.max(1) as f64
    }

    /// The fraction of scored tokens ranked first.
    pub fn top1_accuracy(&self) -> f64 {
        self.top1 as f64 / self.scored.max(1) as f64
    }

    /// None scored yet.
    pub(crate) fn new() -> Self {
        Self {
            windows: 0,
            run: 0,
            scored: 0,
            nll: 0.0,
            top1: 0,
        }
    }

    /// Scores `target` against the logits `row` (of the token at `position`): its negative
    /// log-likelihood under their softmax, and whether it is the first largest.
    pub(crate) fn score(&mut self, row: &[f32], target: usize, position: usize) -> Result<()> {
        let (max_i, max) =
            row.iter().enumerate().fold(
                (0, f32::NEG_INFINITY),
                |m, (i, &v)| {
                    if v > m.1 { (i, v) } else { m }
                },
            );
        let sum: f64 = row.iter().map(|&v| ((v - max) as f64).exp()).sum();
        let nll = sum.ln() - (row[target] - max) as f64;
        if !nll.is_finite() {
            return Err(Error::Input {
                reason: format!(
                    "the model's logits at token {position} are not finite (its activations overflow f32): no perplexity"
                ),
            });
        }
        self.nll += nll;
        self.top1 += usize::from(max_i == target);
        self.scored += 1;
        Ok(())
    }
}

/// Every id must be a row of the vocabulary (a tokenizer may hold ids past its count).
pub(crate) fn check_ids(ids: &[u32], vocab: usize) -> Result<()> {
    match ids.iter().position(|&id| id as usize >= vocab) {
        Some(p) => Err(Error::Input {
            reason: format!(
                "token id {} at position {p} is beyond the vocabulary of {vocab} (config.json vocab_size)",
                ids[p]
            ),
        }),
        None => Ok(()),
    }
}

/// The windows `[begin, end)` and the first position each scores, as `transformers`' recipe
/// makes them for `len` tokens.
pub fn windows(len: usize, context: usize, stride: usize) -> Vec<(usize, usize, usize)> {
    let mut out = Vec::new();
    let mut prev_end = 0;
    let mut begin = 0;
    while begin < len {
        let end = (begin + context).min(len);
        let target = end - prev_end;
        // Positions before `first` are context; position 0 of a window predicts nothing.
        let first = (end - begin - target).max(1) + begin;
        out.push((begin, end, first));
        prev_end = end;
        if end == len {
            break;
        }
        begin += stride;
    }
    out
}

/// Refuses what perplexity cannot be measured with: a model that is not a causal language
/// model, or windows of `context` tokens every `stride` it cannot take (fewer than 2, more
/// than its positions or its sliding window; a stride of 0 or past the context).
pub fn check_windows(config: &Config, context: usize, stride: usize) -> Result<()> {
    if !config.causal() {
        return Err(Error::Input {
            reason: format!(
                "perplexity needs a causal language model; {} is an encoder (measured by its masked tokens, or by its pooled sentence embeddings)",
                config.model_type
            ),
        });
    }
    let most = config
        .positions
        .min(config.sliding_window.unwrap_or(usize::MAX));
    if most < 2 {
        return Err(Error::Input {
            reason: format!("the model takes {most} position: no window of 2 tokens fits"),
        });
    }
    if context < 2 || context > most || stride == 0 || stride > context {
        return Err(Error::Input {
            reason: format!(
                "a context of {context} tokens every {stride}: expected 2 <= context <= {most} (the model's positions{}) and 1 <= stride <= context",
                if config.sliding_window.is_some() {
                    " and sliding window"
                } else {
                    ""
                }
            ),
        });
    }
    Ok(())
}

impl<L: Linear> Model<L> {
    /// Perplexity over `ids` in windows of `context` tokens every `stride`
    /// ([`check_windows`]). Logits that are not finite are an error, not a perplexity.
    pub fn perplexity(&self, ids: &[u32], context: usize, stride: usize) -> Result<Perplexity> {
        check_windows(&self.config, context, stride)?;
        sliding(ids, self.config.vocab, context, stride, |window| {
            Ok(self
                .forward(window)?
                .logits
                .expect("a causal model has a head"))
        })
    }
}

/// Perplexity over `ids` of any causal model over `vocab` tokens whose logits of a window
/// (`[window, vocab]`) `forward` computes, in windows of `context` tokens every `stride`
/// ([`windows`]; the windows themselves are the caller's to check). Ids past the vocabulary
/// and logits that are not finite are errors.
pub fn sliding<E: From<Error>>(
    ids: &[u32],
    vocab: usize,
    context: usize,
    stride: usize,
    mut forward: impl FnMut(&[u32]) -> std::result::Result<Vec<f32>, E>,
) -> std::result::Result<Perplexity, E> {
    if ids.len() < 2 {
        return Err(Error::Input {
            reason: format!("{} tokens: perplexity needs at least 2", ids.len()),
        }
        .into());
    }
    check_ids(ids, vocab)?;
    let mut p = Perplexity::new();
    for (begin, end, first) in windows(ids.len(), context, stride) {
        let logits = forward(&ids[begin..end])?;
        if logits.len() != (end - begin) * vocab {
            return Err(Error::Input {
                reason: format!(
                    "a window of {} tokens gave {} logits, not {} a token",
                    end - begin,
                    logits.len(),
                    vocab
                ),
            }
            .into());
        }
        for j in first..end {
            let row = &logits[(j - 1 - begin) * vocab..(j - begin) * vocab];
            p.score(row, ids[j] as usize, j - 1)?;
        }
        p.windows += 1;
        p.run += end - begin;
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_past_the_vocabulary_are_named() {
        assert!(check_ids(&[0, 3, 9], 10).is_ok());
        let e = check_ids(&[0, 10, 3], 10).unwrap_err().to_string();
        assert!(e.contains("token id 10 at position 1"), "{e}");
    }

    #[test]
    fn every_token_after_the_first_is_scored_once() {
        for (len, context, stride) in [
            (10, 4, 2),
            (10, 4, 4),
            (3, 8, 8),
            (100, 64, 32),
            (65, 64, 1),
        ] {
            let w = windows(len, context, stride);
            let mut scored = vec![0; len];
            for &(b, e, f) in &w {
                assert!(e - b <= context && b < f && f <= e, "{w:?}");
                for s in &mut scored[f..e] {
                    *s += 1;
                }
            }
            assert_eq!(scored[0], 0);
            for (i, &s) in scored.iter().enumerate().skip(1) {
                // Only a window's first token, when windows do not overlap, goes unscored.
                let unscored = stride == context && w.iter().any(|&(b, _, _)| b == i);
                assert_eq!(s, usize::from(!unscored), "{len} {context} {stride}: {w:?}");
            }
            assert_eq!(w.last().unwrap().1, len);
        }
    }
}
