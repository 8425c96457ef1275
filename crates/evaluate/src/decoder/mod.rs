//! A small LLaMA-style decoder trained on text with burn, its values named as Hugging Face
//! names them, so the folder `train` writes is one `transformers` loads (docs/models.md).

mod model;
mod retrain;
mod shape;
mod train;

/// The training loop over a token stream, shared with the described token models.
pub(crate) mod stream {
    pub(crate) use super::train::{check_stream, ids_of, train_stream};
}

pub use model::NamedTensor;
pub use retrain::{DecoderRetraining, Measure, retrain_decoder};
pub use shape::{DecoderShape, FAMILY, NORM_EPS};
pub use train::{DecoderTraining, StepStats, decoder_loss, offsets, train_decoder};

/// Every tensor's Hugging Face name and PyTorch shape, in the order a decoder's values are
/// held (the head last, when untied).
pub fn tensor_names(shape: &DecoderShape, vocab: usize) -> Vec<(String, Vec<usize>)> {
    model::names(shape, vocab)
}

/// The seeded initial values of a decoder (what [`train_decoder`] starts from).
pub fn initial_values(shape: &DecoderShape, vocab: usize, seed: u64) -> Vec<NamedTensor> {
    model::initial(shape, vocab, seed)
}
