#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod calibrated;
mod compress;
mod dense;
mod error;
mod observer;
pub mod output;
mod pack;
pub mod plan;
pub mod provenance;
pub mod recipe;
pub mod report;
pub mod settings;
mod share;
mod verify;

pub use calibrated::{
    Calibration, CalibrationReport, DAMP, Sensitivity, codebook_retrained, prune_calibrated,
    prune_retrained, share_retrained,
};
pub use compress::{
    Compressed, Decided, Job, Retrained, Timings, compress, compress_one, prune_matrix, source_info,
};
pub use error::{Error, Result};
pub use observer::{Observer, Quiet};
pub use pack::{PackJob, Packed, pack, pack_tensor};
pub use plan::{BiasPlan, LayerPlan, MatrixPlan, Plan, Request};
pub use provenance::{
    MadeBy, Provenance, check_provenance, recorded_capacity, recorded_language, recorded_weights,
};
pub use recipe::Recipe;
pub use report::{LayerOutcome, Report};
pub use settings::{
    Assignments, CodebookKind, CodebookWeight, InitKind, Knob, LAYER_KNOBS, LayerSettings,
    PruneScore, Pruning, RUN_KNOBS, RunSettings, Update,
};
pub use share::{Codebook, Shared, assign, codebook, representable, share, weighted_codebook};
pub use verify::verify;
