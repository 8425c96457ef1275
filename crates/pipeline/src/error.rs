//! The crate's one error type.

use std::path::PathBuf;

/// What can go wrong resolving and running the compress pipeline. Messages name the layer,
/// setting, recipe or file at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // ---- the stages' own errors -------------------------------------------------------
    /// Reading the checkpoint.
    #[error(transparent)]
    Checkpoint(#[from] eie_checkpoint::Error),
    /// Packing a layer or writing the bundle.
    #[error(transparent)]
    Format(#[from] eie_format::Error),
    /// Fitting a layer to the hardware, or writing its images.
    #[error(transparent)]
    Images(#[from] eie_images::Error),
    /// Pruning a layer.
    #[error("pruning \"{layer}\": {error}")]
    Prune {
        /// The layer.
        layer: String,
        /// What the pruner said.
        error: eie_prune::Error,
    },
    /// Clustering a layer's weights.
    #[error("clustering \"{layer}\": {error}")]
    Cluster {
        /// The layer.
        layer: String,
        /// What the quantizer said.
        error: eie_quantize::Error,
    },

    // ---- settings and plans -------------------------------------------------------------
    /// A setting's value, or a combination of settings, that is not allowed.
    #[error("{place}: {reason}")]
    Setting {
        /// Where it was given: "command line", or a recipe and its table.
        place: String,
        /// What is wrong, naming the key.
        reason: String,
    },
    /// A recipe file that cannot be read or parsed.
    #[error("recipe {}: {reason}", path.display())]
    Recipe {
        /// The recipe file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Layers and settings that cannot go together.
    #[error("{reason}")]
    Plan {
        /// What is wrong.
        reason: String,
    },
    /// A layer whose tensors cannot be compressed as asked.
    #[error("layer \"{layer}\": {reason}")]
    Layer {
        /// The layer.
        layer: String,
        /// What is wrong.
        reason: String,
    },

    // ---- output -------------------------------------------------------------------------
    /// An output that cannot be written where asked.
    #[error("{reason}")]
    Output {
        /// What is wrong, naming the path.
        reason: String,
    },
    /// A model folder whose images, manifest and `model.eie` do not say the same.
    #[error("{}: {reason}", dir.display())]
    Disagree {
        /// The folder.
        dir: PathBuf,
        /// What differs.
        reason: String,
    },
    /// A `model.eie` that does not load.
    #[error("{} is not a valid bundle: {error}", path.display())]
    Bundle {
        /// The file.
        path: PathBuf,
        /// What the loader found.
        error: eie_format::Error,
    },
    /// A file-system operation failed.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What was being done ("cannot create", "cannot move ... into place").
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// The crate's result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An [`Error::Io`] maker for `path`.
pub(crate) fn io(
    what: &'static str,
    path: &std::path::Path,
) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.to_path_buf();
    move |source| Error::Io { what, path, source }
}
