//! The crate's one error type.

/// What can go wrong setting up a layer for the CPU.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A packed layer that cannot be decoded.
    #[error("layer \"{layer}\": {reason}")]
    Layer {
        /// The layer.
        layer: String,
        /// What is wrong.
        reason: String,
    },
    /// No input vector to run the layer on.
    #[error("layer \"{layer}\": no input vector to run it on")]
    NoInput {
        /// The layer.
        layer: String,
    },
    /// An input vector of the wrong length.
    #[error("layer \"{layer}\" takes {expected} inputs, an input vector has {got}")]
    InputLength {
        /// The layer.
        layer: String,
        /// Its inputs.
        expected: usize,
        /// The vector's length.
        got: usize,
    },
}

/// The crate's result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;
