//! What training reads: a dataset's samples (a class each), or a token model's windows of a
//! token stream (the next token of every position), so that one training loop, masked
//! fine-tuning and centroid fine-tuning serve classifiers and language models alike.

use burn::tensor::{Device, Int, Tensor, TensorData};
use eie_dataset::Dataset;
use eie_model::Network;

use crate::error::{Error, Result};
use crate::model::{Model, Tape, batch};

/// A token stream `what` of a model over `vocab` tokens trained or measured in windows of
/// `context`: a window and the token after it at least, every id in the vocabulary (a
/// decoder's, a token model's, retraining's windows).
pub(crate) fn check_stream(
    vocab: usize,
    context: usize,
    tokens: &[u32],
    what: &'static str,
) -> Result<()> {
    if context == 0 {
        return Err(Error::Config {
            what: "context",
            reason: "0 tokens: expected at least 1".into(),
        });
    }
    if tokens.len() <= context {
        return Err(Error::Config {
            what,
            reason: format!(
                "{} tokens: a window of context {context} needs at least {}",
                tokens.len(),
                context + 1
            ),
        });
    }
    if let Some(&id) = tokens.iter().find(|&&id| id as usize >= vocab) {
        return Err(Error::Config {
            what,
            reason: format!("token id {id} is past the vocabulary of {vocab}"),
        });
    }
    Ok(())
}

/// Training samples.
#[derive(Debug, Clone, Copy)]
pub enum Samples<'a> {
    /// A dataset's samples, each labelled with its class.
    Dataset(&'a Dataset),
    /// A token stream's windows of `context + 1` tokens at a stride of `context` (window
    /// `i` starts at token `i * context`), each position's target the token after it; every
    /// window from a zero state.
    Windows {
        /// The token ids.
        tokens: &'a [u32],
        /// Tokens a window runs.
        context: usize,
    },
}

/// A batch's input: values, or token ids `[windows, context]`.
pub(crate) enum Input {
    Values(Tensor<2>),
    Ids(Tensor<2, Int>),
}

impl Samples<'_> {
    /// Samples (windows).
    pub fn len(&self) -> usize {
        match *self {
            Samples::Dataset(d) => d.len(),
            Samples::Windows { tokens, context } => tokens.len().saturating_sub(1) / context.max(1),
        }
    }

    /// None.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Targets a sample holds: 1, or a window's `context`.
    pub(crate) fn per_sample(&self) -> usize {
        match *self {
            Samples::Dataset(_) => 1,
            Samples::Windows { context, .. } => context,
        }
    }

    /// The samples must fit `net`: a dataset its input and classes, a token stream a token
    /// model's vocabulary, with a window's worth of tokens at least.
    pub(crate) fn check(&self, net: &Network) -> Result<()> {
        match *self {
            Samples::Dataset(d) => Ok(net.check_dataset(d)?),
            Samples::Windows { tokens, context } => {
                let Some(vocab) = net.vocab() else {
                    return Err(Error::Config {
                        what: "training text",
                        reason: format!("{} is not a token model", net.describe()),
                    });
                };
                check_stream(vocab, context, tokens, "training text")
            }
        }
    }

    /// Samples `idx` as an input batch and its targets (a window's every position's, in
    /// order).
    pub(crate) fn batch(&self, idx: &[usize], device: &Device) -> (Input, Tensor<1, Int>) {
        match *self {
            Samples::Dataset(d) => {
                let (x, y) = batch(d, idx, device);
                (Input::Values(x), y)
            }
            Samples::Windows { tokens, context } => {
                let window = |shift: usize| -> Vec<i64> {
                    idx.iter()
                        .flat_map(|&i| {
                            let s = i * context + shift;
                            tokens[s..s + context].iter().map(|&t| t as i64)
                        })
                        .collect()
                };
                let x = Tensor::<2, Int>::from_data(
                    TensorData::new(window(0), [idx.len(), context]),
                    device,
                );
                let y = Tensor::<1, Int>::from_data(
                    TensorData::new(window(1), [idx.len() * context]),
                    device,
                );
                (Input::Ids(x), y)
            }
        }
    }

    /// The targets of samples `idx`, in the order of their logits' rows.
    pub(crate) fn targets(&self, idx: &[usize]) -> Vec<usize> {
        match *self {
            Samples::Dataset(d) => idx.iter().map(|&i| d.labels()[i] as usize).collect(),
            Samples::Windows { tokens, context } => idx
                .iter()
                .flat_map(|&i| {
                    let s = i * context + 1;
                    tokens[s..s + context].iter().map(|&t| t as usize)
                })
                .collect(),
        }
    }
}

impl Model {
    /// The logits of a batch's input, one row per target, and what the backward pass needs
    /// beyond burn's graph.
    pub(crate) fn logits(&self, net: &Network, input: Input) -> (Tensor<2>, Tape) {
        match input {
            Input::Values(x) => self.forward_taped(net, x),
            Input::Ids(ids) => self.forward_tokens_taped(net, ids),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use eie_model::Arch;

    #[test]
    fn windows_are_the_streams_and_their_targets_the_next_tokens() {
        let tokens: Vec<u32> = (0..10).collect();
        let w = Samples::Windows {
            tokens: &tokens,
            context: 3,
        };
        // Windows start at 0, 3, 6; the last (6..9, targets 7..10) just fits.
        assert_eq!((w.len(), w.per_sample()), (3, 3));
        let device = Device::flex();
        let (x, y) = w.batch(&[2, 0], &device);
        let Input::Ids(x) = x else {
            panic!("token ids")
        };
        let x: Vec<i64> = x.into_data().try_into_vec_as().unwrap();
        let y: Vec<i64> = y.into_data().try_into_vec_as().unwrap();
        assert_eq!(x, [6, 7, 8, 0, 1, 2]);
        assert_eq!(y, [7, 8, 9, 1, 2, 3]);
        assert_eq!(w.targets(&[2, 0]), [7, 8, 9, 1, 2, 3]);
    }

    #[test]
    fn windows_that_do_not_fit_the_model_are_refused() {
        let lm = Network::init_arch(&"tok4-embed2-lstm3-4".parse::<Arch>().unwrap(), 0).unwrap();
        let check = |tokens: &[u32], context| {
            Samples::Windows { tokens, context }
                .check(&lm)
                .unwrap_err()
                .to_string()
        };
        assert!(check(&[0, 1, 2], 3).contains("needs at least 4"));
        assert!(check(&[0, 1, 9, 2], 2).contains("token id 9"));
        let mlp = Network::init(&[4, 3], 0).unwrap();
        let e = Samples::Windows {
            tokens: &[0, 1, 2, 3],
            context: 2,
        }
        .check(&mlp)
        .unwrap_err()
        .to_string();
        assert!(e.contains("not a token model"), "{e}");
    }
}
