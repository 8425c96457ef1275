//! The crate's one error type.

use std::path::PathBuf;

/// What can go wrong naming, reading or slicing a dataset. Every message names the file,
/// tensor or option at fault and what was expected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A dataset specification that cannot be understood (`--dataset`).
    #[error("dataset \"{spec}\": {reason}")]
    Spec {
        /// The specification as given.
        spec: String,
        /// What is wrong, and what was expected.
        reason: String,
    },
    /// An IDX file that is not one: wrong magic, an unknown element type, a gzip stream that
    /// does not decompress, data shorter or longer than its dimensions say.
    #[error("{}: not a valid IDX file: {reason}", path.display())]
    Idx {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// An images file and a labels file that do not describe the same samples.
    #[error("{} and {}: {reason}", images.display(), labels.display())]
    Pairing {
        /// The images (inputs) file.
        images: PathBuf,
        /// The labels file.
        labels: PathBuf,
        /// What disagrees.
        reason: String,
    },
    /// A tensor of a safetensors dataset that is missing or has the wrong type or shape.
    #[error("{}: tensor \"{tensor}\": {reason}", path.display())]
    Tensor {
        /// The file.
        path: PathBuf,
        /// The tensor.
        tensor: String,
        /// What is wrong, and what was expected.
        reason: String,
    },
    /// A sample range that is malformed, empty, or reaches past the end of the dataset.
    #[error("dataset {dataset}: range {range}: {reason}")]
    Range {
        /// The dataset.
        dataset: String,
        /// The range as given.
        range: String,
        /// What is wrong.
        reason: String,
    },
    /// A label that is not a class index (negative, or not an integer).
    #[error(
        "dataset {dataset}: sample {index} has label {label}, expected a class index 0, 1, ..."
    )]
    Label {
        /// The dataset.
        dataset: String,
        /// The sample (index in the source, not in the range).
        index: usize,
        /// The label as stored.
        label: String,
    },
    /// An input value that is NaN or infinite.
    #[error("dataset {dataset}: sample {index}, input {feature} is {value}")]
    NonFinite {
        /// The dataset.
        dataset: String,
        /// The sample (index in the source).
        index: usize,
        /// The input position within the sample.
        feature: usize,
        /// The value.
        value: f32,
    },
    /// Scaling parameters that cannot be applied (a standard deviation that is not positive).
    #[error("input scaling: {reason}")]
    Scaling {
        /// What is wrong.
        reason: String,
    },
    /// An input-vector file that does not hold what was asked for.
    #[error("input {}: {reason}", path.display())]
    Input {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Reading a safetensors dataset or input file failed.
    #[error(transparent)]
    Checkpoint(#[from] eie_checkpoint::Error),
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
