#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod accuracy;
pub mod decoder;
pub mod described;
pub mod encoder;
mod error;
mod halves;
mod lstm;
mod model;
pub mod program;
pub mod retrain;
pub mod samples;
mod share;
mod stages;
pub mod tokens;
mod train;

#[cfg(test)]
mod testkit;
#[cfg(test)]
mod tests;
// The test kit names this crate by name, as the benchmark that includes it does.
#[cfg(test)]
extern crate self as eie_evaluate;

pub use accuracy::{
    Accuracy, ClassCount, EnergySetup, check_packed, eie_accuracy, eie_accuracy_counted,
    eie_predict, float_accuracy, logits, predict,
};
pub use eie_model::{Arch, Dense, LayerValues, Network};
pub use error::{Error, Result};
pub use retrain::{
    MeasureStage, RETRAIN_KNOBS, RetrainChoices, RetrainSettings, Retraining, retrain,
};
pub use samples::Samples;
pub use share::{
    CentroidConfig, SharedLayer, apply_shared, centroid_step, check_shared, fine_tune_centroids,
    fine_tune_centroids_on, grouped_gradients,
};
pub use stages::{
    ClassReport, PRUNED_STAGE, SHARED_STAGE, StageAccuracy, StageReport, StageRuns, bundle_density,
    check_whole_network, description_of, eie_stage, float_stages, is_retraining,
    kept_values_changed, network_of, stage_reports, token_float_stages,
};
pub use train::{EpochStats, Held, MAX_BATCH, Mode, TrainConfig, train};
