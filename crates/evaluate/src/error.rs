//! The crate's one error type.

/// What can go wrong building, training or evaluating a network. Every message names the
/// tensors, dataset or setting at fault and what was expected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A layer's tensors that cannot be a linear layer (a weight that is not 2-D, a bias of
    /// the wrong length).
    #[error("layer \"{layer}\": {reason}")]
    Layer {
        /// The weight tensor.
        layer: String,
        /// What is wrong.
        reason: String,
    },
    /// A training or evaluation setting out of range.
    #[error("{what}: {reason}")]
    Config {
        /// The setting.
        what: &'static str,
        /// What is wrong, and what was expected.
        reason: String,
    },
    /// Weight-shared layers that do not match the network they are applied to.
    #[error("shared layer \"{layer}\": {reason}")]
    Shared {
        /// The layer.
        layer: String,
        /// What is wrong.
        reason: String,
    },
    /// Training produced a loss or a weight that is not finite (a learning rate too large).
    #[error("{stage} diverged at epoch {epoch}: the loss is {loss}; lower the learning rate")]
    Diverged {
        /// What was being trained.
        stage: &'static str,
        /// 1-based epoch.
        epoch: usize,
        /// The loss.
        loss: f64,
    },
    /// Reading a tensor back from burn failed.
    #[error("reading tensor data back from burn: {reason}")]
    Tensor {
        /// burn's message.
        reason: String,
    },
    /// A selection of layers that is not a whole network.
    #[error(
        "the selected layers end at \"{last}\", but \"{next}\" (not selected) takes its {outputs} outputs: accuracy needs the whole network, so select every layer in order (by default all are) or name them all with --layers"
    )]
    NotWhole {
        /// The last selected layer.
        last: String,
        /// A layer that takes its outputs.
        next: String,
        /// Its outputs.
        outputs: usize,
    },
    /// A checkpoint whose network is more than the MLP of its 2-D layers: scoring that MLP
    /// would score another network.
    #[error(
        "{}: \"{tensor}\" ({reason}) is not a layer of an MLP, so the MLP of the checkpoint's 2-D layers is not its network; describe the network with --arch (docs/models.md), or name the layers with --layers",
        path.display()
    )]
    NotAnMlp {
        /// The checkpoint.
        path: std::path::PathBuf,
        /// A `*.weight` tensor the MLP would leave out.
        tensor: String,
        /// Why it is not a layer (its dtype, its shape).
        reason: String,
    },
    /// The network: its description, its checkpoint, a dataset that does not fit it.
    #[error(transparent)]
    Model(#[from] eie_model::Error),
    /// Compressing (the pipeline's stages, which retraining runs).
    #[error(transparent)]
    Pipeline(#[from] eie_pipeline::Error),
    /// Reading a dataset.
    #[error(transparent)]
    Dataset(#[from] eie_dataset::Error),
    /// Reading a checkpoint failed.
    #[error(transparent)]
    Checkpoint(#[from] eie_checkpoint::Error),
    /// The functional model refused a layer or input.
    #[error(transparent)]
    Simulate(#[from] eie_simulate::Error),
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
