//! The crate's one error type.

use std::path::PathBuf;

/// What can go wrong reading a Hugging Face model folder or running it. Every message names
/// the file, the config field or the tensor at fault and what was expected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file that cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A config.json that is not a JSON object, or over its size limit.
    #[error("{}: {reason}", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A config field that is missing, of another type, or out of range.
    #[error("{}: field \"{field}\": {reason}", path.display())]
    Field {
        /// The config file.
        path: PathBuf,
        /// The field.
        field: String,
        /// What was expected, and what it holds.
        reason: String,
    },
    /// A `model_type` this crate does not run.
    #[error("{}: model_type \"{model_type}\" is not one eie-compress runs (it runs {known})", path.display())]
    UnknownFamily {
        /// The config file.
        path: PathBuf,
        /// What the config says.
        model_type: String,
        /// The families it runs.
        known: &'static str,
    },
    /// A config setting that changes the computation in a way this crate does not implement
    /// (rope scaling, a sliding window, another activation): refused rather than ignored.
    #[error("{}: field \"{field}\" = {value}: {reason}", path.display())]
    Unsupported {
        /// The config file.
        path: PathBuf,
        /// The field.
        field: String,
        /// Its value, as JSON.
        value: String,
        /// What is supported.
        reason: String,
    },
    /// A tensor the config calls for that the checkpoint lacks.
    #[error("the checkpoint has no tensor \"{tensor}\", which {reason}")]
    Missing {
        /// The Hugging Face name.
        tensor: String,
        /// Why it is needed.
        reason: String,
    },
    /// A tensor whose shape disagrees with the config.
    #[error("tensor \"{tensor}\" is {got:?}, but the config makes it {expected:?}")]
    Shape {
        /// The tensor.
        tensor: String,
        /// From the config.
        expected: Vec<usize>,
        /// In the checkpoint.
        got: Vec<usize>,
    },
    /// Reading a tensor failed.
    #[error(transparent)]
    Checkpoint(#[from] eie_checkpoint::Error),
    /// A layer's images that the functional model cannot run, or an input it cannot take
    /// (a value that is not finite).
    #[error("layer {layer} on EIE: {source}")]
    Simulate {
        /// The layer.
        layer: String,
        /// Why.
        source: eie_simulate::Error,
    },
    /// Input the model cannot take (a token id beyond the vocabulary, more tokens than
    /// positions).
    #[error("{reason}")]
    Input {
        /// What is wrong.
        reason: String,
    },
}

/// The crate's result type.
pub type Result<T> = std::result::Result<T, Error>;
