//! The crate's one error type.

use std::path::PathBuf;

/// Why a command refused a request or failed. Every message names the option, file, layer
/// or tensor at fault and what was expected; the libraries' own errors pass through as they
/// are.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // ---- the stages' own errors -------------------------------------------------------
    /// Reading a checkpoint.
    #[error(transparent)]
    Checkpoint(#[from] eie_checkpoint::Error),
    /// Reading a dataset or input vectors.
    #[error(transparent)]
    Dataset(#[from] eie_dataset::Error),
    /// A model description, or a checkpoint read against one.
    #[error(transparent)]
    Model(#[from] eie_model::Error),
    /// The compress pipeline, recipes and output folders.
    #[error(transparent)]
    Pipeline(#[from] eie_pipeline::Error),
    /// A packed layer or a `model.eie` bundle.
    #[error(transparent)]
    Format(#[from] eie_format::Error),
    /// Images, manifests and fitting layers to the hardware.
    #[error(transparent)]
    Images(#[from] eie_images::Error),
    /// The functional and timing models.
    #[error(transparent)]
    Simulate(#[from] eie_simulate::Error),
    /// The energy model.
    #[error(transparent)]
    Energy(#[from] eie_energy::Error),
    /// The CPU baseline.
    #[error(transparent)]
    Baseline(#[from] eie_baseline::Error),
    /// Training, retraining and accuracy.
    #[error(transparent)]
    Evaluate(#[from] eie_evaluate::Error),
    /// The reference RTL and the HDL simulators.
    #[error(transparent)]
    Rtl(#[from] eie_rtl::Error),
    /// A Hugging Face model folder, or running it.
    #[error(transparent)]
    Transformer(#[from] eie_transformer::Error),
    /// Text, or a tokenizer.
    #[error(transparent)]
    Text(#[from] eie_text::Error),
    /// The HTML report could not be rendered.
    #[error(transparent)]
    Html(#[from] eie_html::Error),

    // ---- requests -----------------------------------------------------------------------
    /// An option that cannot be used as given, or not with this model.
    #[error("{option}: {reason}")]
    Option {
        /// The option as the command line spells it (`--layer`, `--pe 9`).
        option: String,
        /// Why, naming the model or the value at fault.
        reason: String,
    },
    /// An option given without what it applies to.
    #[error("{option} applies to {applies_to}")]
    NotApplicable {
        /// The option (`--act-frac`).
        option: &'static str,
        /// What it needs, and what to give.
        applies_to: String,
    },
    /// A value given twice to an option that takes each value once.
    #[error("{option} gives {value} twice")]
    Repeated {
        /// The option (`--values`).
        option: &'static str,
        /// The value.
        value: String,
    },
    /// The same settings given on the command line and in a recipe.
    #[error("{keys} set both on the command line and in {place}; keep one")]
    SetTwice {
        /// The settings, comma-separated.
        keys: String,
        /// The recipe (and its table).
        place: String,
    },
    /// A PE count other than the one the model was packed for.
    #[error(
        "model.eie was packed for {packed} PEs; the PE count is fixed by packing: re-pack with --pes {given}"
    )]
    PesFixed {
        /// The model's PE count.
        packed: usize,
        /// The one given.
        given: u32,
    },
    /// A layer name the packed model does not hold.
    #[error("no layer named \"{name}\" (layers: {known})")]
    NoLayer {
        /// The name asked for.
        name: String,
        /// The model's layers, comma-separated.
        known: String,
    },
    /// A packed model, or a file of it, that cannot serve this request (another
    /// checkpoint's output, a file where a folder is needed, a described model where a
    /// chain of layers is needed).
    #[error("{reason}")]
    Unfit {
        /// What is wrong, naming the file or folder.
        reason: String,
    },
    /// Input vectors that do not fit the model.
    #[error("{reason}")]
    Inputs {
        /// What is wrong, naming the file or dataset.
        reason: String,
    },
    /// A file-system operation failed.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What was being done ("cannot create").
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// rtl-check's work folder could not be created.
    #[error(
        "cannot create the work folder {} (rtl-check writes a new folder; give one that does not exist): {source}",
        path.display()
    )]
    WorkFolder {
        /// The folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Something could not be done, and the step it was part of.
    #[error("{context}: {source}")]
    Context {
        /// The step, as the user knows it.
        context: &'static str,
        /// Why.
        source: Box<Error>,
    },

    // ---- results --------------------------------------------------------------------------
    /// The RTL testbench reported mismatches or could not load a file.
    #[error("the testbench failed: {}", failures.join("; "))]
    Testbench {
        /// One line per failure the testbench printed.
        failures: Vec<String>,
    },
    /// The RTL's cycle counts differ from the timing model's.
    #[error(
        "FAIL: outputs agree, but the RTL's cycle counts differ from the timing model's in {}",
        layers.join(", ")
    )]
    Cycles {
        /// The layers whose counts differ.
        layers: Vec<String>,
    },
    /// A command whose work, estimated before it starts, needs more memory than it may take.
    #[error(
        "this would need about {estimate} of memory ({largest}), over --max-memory {limit}; give a larger --max-memory if the machine has it"
    )]
    Memory {
        /// The estimate.
        estimate: String,
        /// Its largest part, and what that part is.
        largest: String,
        /// The limit.
        limit: String,
    },
    /// A chart could not be drawn.
    #[error("{chart}: {reason}")]
    Draw {
        /// Which chart.
        chart: String,
        /// What the plotting library said.
        reason: String,
    },
    /// A report could not be serialised.
    #[error("cannot serialise the report: {0}")]
    Json(#[from] serde_json::Error),
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

/// An error and its causes in one line, joined by ": ", leaving out a cause the message
/// already shows (library errors that show their source and also expose it); control
/// characters escaped and very long names or patterns cut ([`eie_format::shown`]). What the
/// command line prints after `error: `, and the message of a Python exception.
pub fn one_line(e: &(dyn std::error::Error + 'static)) -> String {
    let mut line = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        cause = c.source();
    }
    eie_format::shown(&line)
}
