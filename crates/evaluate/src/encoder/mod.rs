//! A BERT sentence encoder in burn, for retraining it by distillation from the original
//! encoder's sentence embeddings (docs/models.md, "Compressing a language model").

mod model;
mod retrain;

pub use model::EncoderShape;
#[cfg(test)]
pub(crate) use retrain::embed;
pub use retrain::{EncoderRetraining, retrain_encoder};

/// The values a BERT encoder of `config` holds (every parameter, its embeddings included),
/// and the values one sentence of `context` tokens produces in a forward pass that training
/// keeps for the backward pass (per block the norms, q, k, v, the attention's scores and
/// weights per head, its output and the MLP's products): what retraining's memory budget
/// counts before anything is read.
pub fn sizes(config: &eie_transformer::Config, context: usize) -> (u64, u64) {
    let (d, f, l) = (
        config.hidden as u64,
        config.intermediate as u64,
        config.layers as u64,
    );
    let block = 4 * (d * d + d) + 2 * d * f + f + d + 4 * d;
    let params = (config.vocab as u64 + config.positions as u64 + 2) * d + l * block + 2 * d;
    let t = context as u64;
    let window = t * l * (10 * d + 3 * config.heads as u64 * t + 4 * f);
    (params, window)
}
