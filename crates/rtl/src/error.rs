//! The crate's one error type.

use std::path::PathBuf;

/// What can go wrong preparing or running a co-simulation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A model parameter the reference design does not implement.
    #[error("the RTL does not support {parameter} = {got}: it supports {supported}")]
    Unsupported {
        /// The parameter.
        parameter: &'static str,
        /// The model's value.
        got: String,
        /// What the design supports.
        supported: &'static str,
    },
    /// Images and vectors that do not describe the same model.
    #[error("the vectors do not match the images: {reason}")]
    Mismatch {
        /// What differs.
        reason: String,
    },
    /// An image the manifest lists without a `$readmemh` file.
    #[error("layer \"{layer}\" has no $readmemh {kind} image{pe} in the manifest")]
    MissingImage {
        /// The layer.
        layer: String,
        /// "Spmat", "pointer" or "codebook".
        kind: &'static str,
        /// " for PE k", or empty.
        pe: String,
    },
    /// A path the generated Verilog cannot name (not UTF-8, or a control character).
    #[error("{} cannot be named in Verilog: {reason}", path.display())]
    Path {
        /// The path.
        path: PathBuf,
        /// Why.
        reason: &'static str,
    },
    /// Reading or writing a file.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A simulator that is not installed.
    #[error("{tool} is not installed (it is needed for --simulator {simulator}): {source}")]
    NoSimulator {
        /// The program.
        tool: &'static str,
        /// The simulator chosen.
        simulator: &'static str,
        /// The cause.
        source: std::io::Error,
    },
    /// A simulator that refused the design or stopped abnormally.
    #[error("{tool} failed ({status}): {output}")]
    Tool {
        /// The program.
        tool: &'static str,
        /// Its exit status.
        status: String,
        /// The last lines it printed.
        output: String,
    },
}

/// The crate's result type.
pub type Result<T> = std::result::Result<T, Error>;
