//! What a bundle records about how it was made (`model.eie`'s settings): one typed writer,
//! [`Provenance`], the readers of what it wrote, and the checker ([`check_provenance`]):
//! `verify` refuses a `model.eie` whose recorded settings were edited to disagree with what
//! it holds.

mod check;
mod record;

pub use check::check_provenance;
pub use record::{
    Described, MadeBy, Provenance, layer_line, made_by, recorded_capacity, recorded_description,
    recorded_host_layers, recorded_language, recorded_weights, updated,
};

/// The keys of a bundle's settings, each written by [`Provenance`] and checked by
/// [`check_provenance`].
pub mod keys {
    /// The command that made the bundle: `compress` or `pack`.
    pub const COMMAND: &str = "command";
    /// The PE count.
    pub const PES: &str = "pes";
    /// The relative-index width (compress: the command line's; a recipe may give layers
    /// others, which their own lines say).
    pub const INDEX_BITS: &str = "index_bits";
    /// The column-pointer width.
    pub const POINTER_BITS: &str = "pointer_bits";
    /// The Spmat SRAM per PE, KiB.
    pub const SPMAT_KIB: &str = "spmat_kib";
    /// The pointer SRAM per PE, KiB.
    pub const POINTER_KIB: &str = "pointer_kib";
    /// The column batches asked for (`auto` or a number).
    pub const COLUMN_BATCH: &str = "column_batch";
    /// Whether biases were folded in as a last column.
    pub const BIAS_COLUMN: &str = "bias_column";
    /// pack: every layer's code width.
    pub const CODE_BITS: &str = "code_bits";
    /// pack: the layer patterns given.
    pub const LAYERS: &str = "layers";
    /// compress: the recipe's file name.
    pub const RECIPE: &str = "recipe";
    /// compress --retrain: how it retrained.
    pub const RETRAIN: &str = "retrain";
    /// compress --calibration: the samples the calibration statistics were gathered on.
    pub const CALIBRATION: &str = "calibration";
    /// The model description of a described model (a CNN, an LSTM; the checkpoint's own is
    /// `eie_model::ARCH_KEY`, `eie.arch`: docs/models.md).
    pub const DESCRIPTION: &str = "arch";
    /// A described model's layers that run on the host, comma-separated.
    pub const HOST_LAYERS: &str = "host_layers";
    /// compress of a Hugging Face language model folder: its config's `model_type` (every
    /// layer then runs once per token).
    pub const LANGUAGE: &str = "language";
    /// compress: each layer's line is under this prefix and its name.
    pub const LAYER_PREFIX: &str = "layer.";
}
