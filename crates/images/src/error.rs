//! The crate's one error type.

use std::path::PathBuf;

/// What can go wrong rendering, checking or reading memory images.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A layer or bundle that breaks the format's rules.
    #[error(transparent)]
    Format(#[from] eie_format::Error),
    /// Reading a file failed.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// `manifest.json` is not valid JSON of the expected shape, or describes itself
    /// inconsistently.
    #[error("manifest {}: {reason}", path.display())]
    Manifest {
        /// The manifest file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// An image file whose SHA-256 differs from the manifest's.
    #[error("image {file}: sha256 is {found}, the manifest says {expected}")]
    Checksum {
        /// Path relative to the images' root.
        file: String,
        /// Digest in the manifest.
        expected: String,
        /// Digest of the file as read.
        found: String,
    },
    /// An image file whose contents do not match its manifest entry or its twin.
    #[error("image {file}: {reason}")]
    Image {
        /// Path relative to the images' root.
        file: String,
        /// What is wrong.
        reason: String,
    },
}

/// The crate's result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;
