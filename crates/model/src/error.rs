//! The crate's one error type.

/// What can go wrong describing a network, reading it from a checkpoint, or fitting a
/// dataset to it. Every message names the description's layer, the tensor or the dataset at
/// fault and what was expected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No layers to build a network from.
    #[error("a network needs at least one layer")]
    NoLayers,
    /// Two consecutive layers whose shapes do not chain.
    #[error("layers \"{prev}\" and \"{next}\" do not chain: {reason}")]
    Chain {
        /// The earlier layer's weight tensor.
        prev: String,
        /// The later layer's weight tensor.
        next: String,
        /// The shapes that disagree.
        reason: String,
    },
    /// A layer's tensors that cannot be what the layer needs (a bias of the wrong length).
    #[error("layer \"{layer}\": {reason}")]
    Layer {
        /// The weight tensor.
        layer: String,
        /// What is wrong.
        reason: String,
    },
    /// A model description that does not parse, or whose layers cannot take their inputs.
    #[error("model description \"{arch}\": {reason}")]
    Arch {
        /// As given.
        arch: String,
        /// What is wrong.
        reason: String,
    },
    /// A checkpoint tensor that is not what the description asks for (missing, another
    /// shape or kind, not float).
    #[error(
        "the description's layer {layer} needs tensor \"{tensor}\" {expected}, but the checkpoint {found}"
    )]
    Mismatch {
        /// The description's layer (`conv1 (conv20k5)`).
        layer: String,
        /// The tensor.
        tensor: String,
        /// What the description asks for (`F64/F32/F16/BF16 [20, 1, 5, 5]`).
        expected: String,
        /// What the checkpoint has instead.
        found: String,
    },
    /// Checkpoint tensors the description does not use (it describes another network).
    #[error(
        "the checkpoint holds tensors the description \"{arch}\" does not use: {tensors}; describe every layer (docs/models.md)"
    )]
    Unused {
        /// The description.
        arch: String,
        /// The tensors, comma-separated.
        tensors: String,
    },
    /// A dataset whose samples are not as wide as the first layer's input.
    #[error(
        "dataset {dataset} has {width} inputs per sample, but the first layer \"{layer}\" takes {inputs}"
    )]
    Width {
        /// The dataset.
        dataset: String,
        /// Its inputs per sample.
        width: usize,
        /// The first layer.
        layer: String,
        /// The layer's inputs.
        inputs: usize,
    },
    /// A dataset whose samples are not the network's input (images given to an LSTM, a
    /// sequence to a convolution, another shape).
    #[error(
        "dataset {dataset} holds {found}, but the network's first layer \"{layer}\" reads {expected}"
    )]
    Form {
        /// The dataset.
        dataset: String,
        /// What its samples are.
        found: String,
        /// The first layer.
        layer: String,
        /// What the network reads.
        expected: String,
    },
    /// A label the network cannot output.
    #[error(
        "dataset {dataset}: sample {index} has label {label}, outside the {outputs} outputs of the last layer \"{layer}\""
    )]
    Label {
        /// The dataset.
        dataset: String,
        /// The sample, as indexed in its source.
        index: usize,
        /// The label.
        label: u32,
        /// The network's outputs.
        outputs: usize,
        /// The last layer.
        layer: String,
    },
    /// Reading a checkpoint failed.
    #[error(transparent)]
    Checkpoint(#[from] eie_checkpoint::Error),
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
