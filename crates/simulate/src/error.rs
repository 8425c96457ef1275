//! The crate's one error type.

/// What can go wrong setting up or running a simulation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A packed layer or bundle that breaks the format's rules.
    #[error(transparent)]
    Format(#[from] eie_format::Error),
    /// Images that cannot be read back.
    #[error(transparent)]
    Images(#[from] eie_images::Error),
    /// An input vector of the wrong length.
    #[error("layer \"{layer}\" takes {expected} inputs, the input vector has {got}")]
    InputLength {
        /// The layer fed.
        layer: String,
        /// Its input count (its columns, not counting a bias column).
        expected: usize,
        /// The vector's length.
        got: usize,
    },
    /// A NaN or infinite input value.
    #[error("input value {index} is {value}: inputs must be finite")]
    NonFiniteInput {
        /// Index in the input vector.
        index: usize,
        /// The value.
        value: f32,
    },
    /// Consecutive layers whose shapes do not chain, or whose PE counts differ.
    #[error("layer \"{next}\" cannot take the output of layer \"{prev}\": {reason}")]
    Chain {
        /// The earlier layer.
        prev: String,
        /// The later layer.
        next: String,
        /// What does not match.
        reason: String,
    },
    /// Inputs given for layers that do not form a network.
    #[error(
        "layer \"{next}\" cannot take the output of layer \"{prev}\": {reason}; the layers do not form a network, so give --layer NAME to feed one of them"
    )]
    NotANetwork {
        /// The earlier layer.
        prev: String,
        /// The layer that cannot take its outputs.
        next: String,
        /// Why.
        reason: String,
    },
    /// A parameter outside its range.
    #[error("{what} must be {expected}, got {got}")]
    Parameter {
        /// The parameter.
        what: &'static str,
        /// Its allowed values.
        expected: &'static str,
        /// The value given.
        got: String,
    },
    /// A run given no layer to run.
    #[error("no layer to run: the packed model holds none, or none was selected")]
    NoLayers,
    /// One of the authors' simulator's data files that cannot be read, written or used.
    #[error("{}: {reason}", file.display())]
    AuthorsFile {
        /// The file.
        file: std::path::PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A layer the authors' simulator cannot run.
    #[error("layer \"{layer}\" cannot go to the authors' simulator: {reason}")]
    AuthorsLayer {
        /// The layer.
        layer: String,
        /// Why.
        reason: String,
    },
    /// A number of activation fractions that does not match the layers.
    #[error("{got} activation fractions given, the model has {expected} layer boundaries")]
    Fractions {
        /// Boundaries: layers + 1.
        expected: usize,
        /// Fractions given.
        got: usize,
    },
}

/// The crate's result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;
