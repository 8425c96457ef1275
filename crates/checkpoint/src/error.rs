//! The crate's one error type.

use std::path::PathBuf;

/// What can go wrong reading, selecting or writing checkpoint tensors. Every message names
/// the file or tensor at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Opening, mapping, reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file is not a valid safetensors file (too short, header length past the end,
    /// header not JSON, offsets overlapping, out of range or not covering the data).
    #[error("{}: not a valid safetensors file: {reason}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A sharded checkpoint's index that is not what it should be (not JSON, no weight map,
    /// a shard name that is not a plain file name, a missing shard).
    #[error("{}: {reason}", path.display())]
    Index {
        /// The index file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A shard whose tensors disagree with the index.
    #[error("{}: shard {shard}, tensor \"{tensor}\": {reason}", index.display())]
    ShardMismatch {
        /// The index file.
        index: PathBuf,
        /// The shard's file name.
        shard: String,
        /// The tensor.
        tensor: String,
        /// What disagrees.
        reason: String,
    },
    /// No tensor of that name.
    #[error("{}: no tensor named \"{tensor}\"", path.display())]
    TensorNotFound {
        /// The checkpoint.
        path: PathBuf,
        /// The name asked for.
        tensor: String,
    },
    /// A tensor whose element type is not a supported float type.
    #[error(
        "tensor \"{tensor}\" has dtype {dtype}, expected a float tensor (F64, F32, F16 or BF16)"
    )]
    UnsupportedDtype {
        /// Tensor name.
        tensor: String,
        /// Its dtype.
        dtype: String,
    },
    /// A tensor selected as a layer that is not 2-D (a 4-D one is a convolution's kernel,
    /// which runs on the host as its model description says).
    #[error(
        "tensor \"{tensor}\" has shape {shape:?}, expected a 2-D [out, in] weight matrix{}",
        conv_hint(shape)
    )]
    NotMatrix {
        /// Tensor name.
        tensor: String,
        /// Its shape.
        shape: Vec<usize>,
    },
    /// A NaN or infinite value in a weight tensor.
    #[error(
        "tensor \"{tensor}\" holds {value} at index {index} (row {row}, column {col}): weights must be finite"
    )]
    NonFinite {
        /// Tensor name.
        tensor: String,
        /// Flat (row-major) index of the first bad value.
        index: usize,
        /// Its row.
        row: usize,
        /// Its column.
        col: usize,
        /// The value.
        value: f32,
    },
    /// A layer pattern that selects no tensor.
    #[error("pattern \"{pattern}\" selects no tensor ({available})")]
    NoMatch {
        /// The pattern.
        pattern: String,
        /// A short list of the names that exist.
        available: String,
    },
    /// A layer pattern that is not accepted (too long to match in bounded time).
    #[error("pattern \"{pattern}\": {reason}")]
    BadPattern {
        /// The pattern.
        pattern: String,
        /// Why.
        reason: String,
    },
    /// Nothing to select at all.
    #[error("{}: {reason}", path.display())]
    NothingSelected {
        /// The checkpoint.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A checkpoint of more tensors than are read (counted before its header is parsed).
    #[error("{}: holds {count} tensors; at most {max} are read", path.display())]
    TooManyTensors {
        /// The file (or a sharded checkpoint's index).
        path: PathBuf,
        /// Tensors it holds (at least: a sharded checkpoint's count stops at the shard that
        /// passes the limit).
        count: usize,
        /// The limit, [`crate::MAX_TENSORS`].
        max: usize,
    },
    /// More layers selected than one command takes.
    #[error(
        "{}: {count} layers selected; one command takes at most {max} (select fewer with --layers)",
        path.display()
    )]
    TooManyLayers {
        /// The checkpoint.
        path: PathBuf,
        /// Layers selected.
        count: usize,
        /// The limit, [`crate::MAX_LAYERS`].
        max: usize,
    },
    /// A tensor given to the writer whose data length does not match its shape and dtype.
    #[error("tensor \"{tensor}\" to write: {reason}")]
    BadTensor {
        /// Tensor name.
        tensor: String,
        /// What is wrong.
        reason: String,
    },
    /// The safetensors serialiser failed.
    #[error("{}: cannot write safetensors: {reason}", path.display())]
    Write {
        /// The file being written.
        path: PathBuf,
        /// The serialiser's message.
        reason: String,
    },
}

/// The crate's result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What to do with a 4-D tensor selected as a layer.
fn conv_hint(shape: &[usize]) -> &'static str {
    if shape.len() == 4 {
        "; it is a convolution's kernel [out, in, kh, kw]: give the model's description (--arch, docs/models.md) and compress runs it on the host, or on EIE as im2col products with --conv-on-eie"
    } else {
        ""
    }
}
