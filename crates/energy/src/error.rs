//! The crate's one error type.

use std::path::PathBuf;

/// What can go wrong reading an energy table.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The table file cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A table file with an error in it.
    #[error("energy table {}: {reason}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Text that is not TOML.
    #[error("{reason}")]
    Syntax {
        /// The parser's message (it names the line).
        reason: String,
    },
    /// A key that is not a constant of the model.
    #[error("unknown energy key \"{key}\" (the keys: {known})")]
    UnknownKey {
        /// The key.
        key: String,
        /// Every key.
        known: String,
    },
    /// A value that is not a number from 0 to the key's largest.
    #[error(
        "energy key \"{key}\" is {value}: expected a finite number, at least 0 and at most {max}"
    )]
    BadValue {
        /// The key.
        key: String,
        /// The value as written.
        value: String,
        /// The largest it may be.
        max: f64,
    },
}

/// The crate's result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;
