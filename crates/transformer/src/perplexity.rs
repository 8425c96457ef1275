//! Perplexity of a causal language model over a token sequence, by `transformers`' sliding
//! window ("Perplexity of fixed-length models" in its documentation): windows of `context`
//! tokens that start every `stride` tokens, each scoring only the tokens the previous window
//! did not (the rest give context). No token is scored twice; with `stride < context` every
//! token after the first is scored, with `stride == context` a window's first token is not
//! (nothing precedes it in its window), exactly as the recipe does.

use crate::error::{Error, Result};
use crate::linear::Linear;
use crate::model::Model;

/// What a sequence cost the model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Perplexity {
    /// Windows run.
    pub windows: usize,
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

impl<L: Linear> Model<L> {
    /// Perplexity over `ids` in windows of `context` tokens every `stride` (at most the
    /// model's positions; `stride` at most `context`).
    pub fn perplexity(&self, ids: &[u32], context: usize, stride: usize) -> Result<Perplexity> {
        if !self.config.causal() || self.lm_head.is_none() {
            return Err(Error::Input {
                reason: format!(
                    "perplexity needs a causal language model; {} is not one",
                    self.config.model_type
                ),
            });
        }
        if context < 2 || context > self.config.positions || stride == 0 || stride > context {
            return Err(Error::Input {
                reason: format!(
                    "a context of {context} tokens every {stride}: expected 2 <= context <= {} (the model's positions) and 1 <= stride <= context",
                    self.config.positions
                ),
            });
        }
        if ids.len() < 2 {
            return Err(Error::Input {
                reason: format!("{} tokens: perplexity needs at least 2", ids.len()),
            });
        }
        let vocab = self.config.vocab;
        let mut p = Perplexity {
            windows: 0,
            scored: 0,
            nll: 0.0,
            top1: 0,
        };
        for (begin, end, first) in windows(ids.len(), context, stride) {
            let out = self.forward(&ids[begin..end])?;
            let logits = out.logits.expect("a causal model has a head");
            for j in first..end {
                let row = &logits[(j - 1 - begin) * vocab..(j - begin) * vocab];
                let target = ids[j] as usize;
                let (max_i, max) =
                    row.iter()
                        .enumerate()
                        .fold(
                            (0, f32::NEG_INFINITY),
                            |m, (i, &v)| if v > m.1 { (i, v) } else { m },
                        );
                let sum: f64 = row.iter().map(|&v| ((v - max) as f64).exp()).sum();
                p.nll += sum.ln() - (row[target] - max) as f64;
                p.top1 += usize::from(max_i == target);
                p.scored += 1;
            }
            p.windows += 1;
        }
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
