#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

pub mod arch;
mod error;
mod network;
pub mod reference;

#[cfg(test)]
mod tests;

pub use arch::{
    Arch, ArchOp, ArchStep, Footprint, Layer, LayerKind, MAX_ITEMS, MAX_LAYER_NAME, MAX_MACS,
    MAX_MATRICES, MAX_RUNS, MAX_VALUES, MAX_WEIGHTS, Shape, TensorSpec,
};
pub use error::{Error, Result};
pub use network::{
    Dense, LayerValues, LstmTensors, MatrixSpec, Network, Op, check_against, matrix_specs,
    split_lstm,
};

/// The metadata key under which `train` records a model's description.
pub const ARCH_KEY: &str = "eie.arch";
