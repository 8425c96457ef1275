//! `compress --retrain`: Deep Compression's retraining around the two lossy stages, on the
//! whole network in memory (an MLP made of the planned layers, in order), calling into the
//! pipeline's own pruning rules and weight sharing.
//!
//! 1. Prune in rounds toward the target (the schedule), each round followed by masked
//!    fine-tuning: Adam on the surviving weights and the biases, pruned weights held at
//!    exactly zero.
//! 2. Share weights (the pipeline's clustering), then fine-tune the shared values: codes
//!    fixed, each value moved by SGD on the sum of its weights' gradients. With a share
//!    schedule the sharing is incremental (Zhou et al., INQ, 2017): the codebook is clustered
//!    once, and in steps the largest surviving weights take their shared values and are held
//!    there while masked fine-tuning retrains the others, which learn to make up the error.
//! 3. Hand the survivors and codes to the pipeline ([`eie_pipeline::Retrained`]), which
//!    writes and packs them.
//!
//! Every stage's held-out accuracy is recorded.

mod run;
mod settings;
pub(crate) mod student;
#[cfg(test)]
mod tests;

pub use run::{MeasureStage, Retraining, retrain};
pub(crate) use run::{calibrated, decided_layer, round_rules};
pub use settings::{MAX_ROUNDS, RETRAIN_KNOBS, RetrainChoices, RetrainSettings};
