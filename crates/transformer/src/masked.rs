//! Masked-token accuracy of an encoder with a masked-LM head (BERT's): the text's tokens in
//! consecutive windows of `context - 2`, each wrapped as `[CLS] ... [SEP]`, with a fixed 15%
//! of them replaced by `[MASK]` ([`is_masked`]: a hash of each token's index in the text and
//! a seed, so a token is masked or not whatever the window); every masked token scored by the
//! head's logits at its position: top-1 and the negative log-likelihood (its exponential of
//! the mean is reported as the masked-token perplexity).

use crate::error::{Error, Result};
use crate::linear::Linear;
use crate::model::Model;
use crate::perplexity::Perplexity;

/// Percent of a text's tokens masked.
pub const MASK_PERCENT: u64 = 15;

/// The seed of [`is_masked`] that `eval` and `compress` use.
pub const MASK_SEED: u64 = 0;

/// The ids of an encoder's special tokens, from its tokenizer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Specials {
    /// Starts every window (`[CLS]`).
    pub cls: u32,
    /// Ends every window (`[SEP]`).
    pub sep: u32,
    /// Replaces a masked token (`[MASK]`).
    pub mask: u32,
}

/// Whether the text's token `index` is masked: SplitMix64's finaliser of `seed` and the
/// index, below [`MASK_PERCENT`] of 100.
pub fn is_masked(seed: u64, index: usize) -> bool {
    let mut z = (seed ^ index as u64).wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z ^ (z >> 31)) % 100 < MASK_PERCENT
}

impl<L: Linear> Model<L> {
    /// Masked-token accuracy and loss over `ids` in windows of `context` tokens (the two
    /// specials included), masked by [`is_masked`] with `seed`.
    pub fn masked_lm(
        &self,
        ids: &[u32],
        context: usize,
        specials: Specials,
        seed: u64,
    ) -> Result<Perplexity> {
        if self.mlm_head.is_none() {
            return Err(Error::Input {
                reason: format!(
                    "masked-token accuracy needs a masked-LM head (cls.predictions.*), which this {} checkpoint lacks",
                    self.config.model_type
                ),
            });
        }
        if context < 3 || context > self.config.positions {
            return Err(Error::Input {
                reason: format!(
                    "a context of {context} tokens: expected 3 <= context <= {} (the model's positions; [CLS] and [SEP] take two)",
                    self.config.positions
                ),
            });
        }
        // A masked token's own id never reaches the embedding's check: checked here.
        crate::perplexity::check_ids(ids, self.config.vocab)?;
        let vocab = self.config.vocab;
        let mut p = Perplexity::new();
        let chunk = context - 2;
        for (w, tokens) in ids.chunks(chunk).enumerate() {
            let first = w * chunk;
            let mut input = Vec::with_capacity(tokens.len() + 2);
            input.push(specials.cls);
            input.extend(tokens.iter().enumerate().map(|(i, &t)| {
                if is_masked(seed, first + i) {
                    specials.mask
                } else {
                    t
                }
            }));
            input.push(specials.sep);
            let out = self.forward(&input)?;
            let logits = out.logits.expect("checked: a masked-LM head");
            for (i, &t) in tokens.iter().enumerate() {
                if is_masked(seed, first + i) {
                    let row = &logits[(i + 1) * vocab..(i + 2) * vocab];
                    p.score(row, t as usize, first + i)?;
                }
            }
            p.windows += 1;
            p.run += input.len();
        }
        if p.scored == 0 {
            return Err(Error::Input {
                reason: format!("{} tokens, none of them masked: give more text", ids.len()),
            });
        }
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn about_one_token_in_seven_is_masked_whatever_the_window() {
        let masked = (0..100_000).filter(|&i| is_masked(MASK_SEED, i)).count();
        assert!((14_000..16_000).contains(&masked), "{masked}");
    }
}
