//! The model description: a sequential network's input and layers in one string, extending
//! the MLP's `784-300-100-10` (docs/models.md has the grammar and examples).
//!
//! ```text
//! 784-300-100-10                                           LeNet-300-100
//! 1x28x28-conv20k5-maxpool2-conv50k5-maxpool2-500-10       LeNet-5 (Caffe's)
//! 28x28-lstm128-10                                         an LSTM over 28 steps of 28
//! ```
//!
//! The first item is the input: `N` a vector, `TxF` a sequence of T steps of F features, `CxHxW`
//! an image, `tokV` a stream of token ids from a vocabulary of V (a language model: an
//! embedding, LSTM layers and Linears run at every token, `tok65-embed128-lstm256-65`). Each
//! later item is a layer, optionally named (`features.0=conv20k5`); the names are the PyTorch
//! module names of its tensors.

mod grammar;
mod steps;
mod tensors;

pub use steps::Footprint;

use std::fmt;

use crate::error::Result;

/// Longest layer name (a module path): its tensors' names (`NAME.weight_hh_l0`, ...) must fit
/// the [`eie_format::MAX_NAME`] bytes a tensor name, and a layer pattern, may have.
pub const MAX_LAYER_NAME: usize = eie_format::MAX_NAME - 32;
/// Most items (input and layers) a description may have.
pub const MAX_ITEMS: usize = 256;
/// Most weights (every tensor together) a description may ask for: 4 GiB of f32.
pub const MAX_WEIGHTS: usize = 1 << 30;
/// Most multiply-accumulates per sample, every layer together (VGG-16's convolutions are
/// 15.5 G): a bound on what one sample may cost the host and the models.
pub const MAX_MACS: u64 = 1 << 34;
/// Most matrix runs per sample (an LSTM layer runs once per time step).
pub const MAX_RUNS: u64 = 1 << 16;
/// Most matrices (an LSTM of L layers is L of them).
pub const MAX_MATRICES: usize = 256;
/// Most values per sample anywhere in the network (an input, a layer's output).
pub const MAX_VALUES: usize = 1 << 30;
/// The largest size of any one dimension (a layer's outputs, a kernel, an image side).
pub const MAX_DIM: usize = eie_format::MAX_DIM;

/// What flows between layers, per sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Shape {
    /// A vector.
    Vector(usize),
    /// A sequence: `steps` vectors of `features`.
    Sequence {
        /// Time steps.
        steps: usize,
        /// Features per step.
        features: usize,
    },
    /// An image, channels x height x width (PyTorch's NCHW without the batch).
    Image {
        /// Channels.
        channels: usize,
        /// Height.
        height: usize,
        /// Width.
        width: usize,
    },
}

impl Shape {
    /// Values per sample, when they are at most [`MAX_VALUES`].
    pub fn checked_size(&self) -> Option<usize> {
        match *self {
            Shape::Vector(n) => Some(n),
            Shape::Sequence { steps, features } => steps.checked_mul(features),
            Shape::Image {
                channels,
                height,
                width,
            } => channels.checked_mul(height)?.checked_mul(width),
        }
        .filter(|&n| n <= MAX_VALUES)
    }

    /// Values per sample (shapes in a parsed description are at most [`MAX_VALUES`]).
    pub fn size(&self) -> usize {
        match *self {
            Shape::Vector(n) => n,
            Shape::Sequence { steps, features } => steps * features,
            Shape::Image {
                channels,
                height,
                width,
            } => channels * height * width,
        }
    }

    /// Its dimensions: `[n]`, `[steps, features]`, `[channels, height, width]`.
    pub fn dims(&self) -> Vec<usize> {
        match *self {
            Shape::Vector(n) => vec![n],
            Shape::Sequence { steps, features } => vec![steps, features],
            Shape::Image {
                channels,
                height,
                width,
            } => vec![channels, height, width],
        }
    }

    /// What it is, in words (`an image of 1x28x28`).
    pub fn describe(&self) -> String {
        match self {
            Shape::Vector(n) => format!("a vector of {n}"),
            Shape::Sequence { steps, features } => {
                format!("a sequence of {steps} steps of {features} features")
            }
            Shape::Image { .. } => format!("an image of {self} (channels x height x width)"),
        }
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Shape::Vector(n) => write!(f, "{n}"),
            Shape::Sequence { steps, features } => write!(f, "{steps}x{features}"),
            Shape::Image {
                channels,
                height,
                width,
            } => write!(f, "{channels}x{height}x{width}"),
        }
    }
}

/// A layer's kind and settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LayerKind {
    /// `N`: `nn.Linear` to N outputs, `NAME.weight [N, in]`, `NAME.bias [N]`.
    Linear {
        /// Outputs.
        outputs: usize,
    },
    /// `convOkK[sS][pP]`: `nn.Conv2d(in, O, K, stride=S, padding=P)`, square kernel,
    /// `NAME.weight [O, in, K, K]`, `NAME.bias [O]`.
    Conv {
        /// Output channels.
        outputs: usize,
        /// Kernel side.
        kernel: usize,
        /// Stride (default 1).
        stride: usize,
        /// Zero padding on every side (default 0).
        padding: usize,
    },
    /// `maxpoolK[sS]`: `nn.MaxPool2d(K, stride=S)` (default stride K).
    MaxPool {
        /// Window side.
        kernel: usize,
        /// Stride.
        stride: usize,
    },
    /// `avgpoolK[sS]`: `nn.AvgPool2d(K, stride=S)` (default stride K).
    AvgPool {
        /// Window side.
        kernel: usize,
        /// Stride.
        stride: usize,
    },
    /// `relu`.
    Relu,
    /// `flatten`: `nn.Flatten()`, NCHW order.
    Flatten,
    /// `embedE`: `nn.Embedding(V, E)` of a token model (`tokV`), tensor `NAME.weight [V, E]`;
    /// its matrix is the table's transpose, `[E, V]`, which a token's one-hot vector selects a
    /// column of (the paper's NT-We).
    Embed {
        /// Values a token.
        dims: usize,
    },
    /// `lstmH[xL]`: `nn.LSTM(in, H, num_layers=L, batch_first=True)`, tensors
    /// `NAME.weight_ih_l{k} [4H, in]`, `NAME.weight_hh_l{k} [4H, H]`, `NAME.bias_ih_l{k}`,
    /// `NAME.bias_hh_l{k}` (`[4H]`), gates in PyTorch's order i, f, g, o.
    Lstm {
        /// Hidden units.
        hidden: usize,
        /// Stacked layers (default 1).
        layers: usize,
    },
}

impl LayerKind {
    /// Whether the layer has tensors.
    pub fn has_tensors(&self) -> bool {
        matches!(
            self,
            LayerKind::Linear { .. }
                | LayerKind::Conv { .. }
                | LayerKind::Lstm { .. }
                | LayerKind::Embed { .. }
        )
    }
}

impl fmt::Display for LayerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            LayerKind::Linear { outputs } => write!(f, "{outputs}"),
            LayerKind::Conv {
                outputs,
                kernel,
                stride,
                padding,
            } => {
                write!(f, "conv{outputs}k{kernel}")?;
                if stride != 1 {
                    write!(f, "s{stride}")?;
                }
                if padding != 0 {
                    write!(f, "p{padding}")?;
                }
                Ok(())
            }
            LayerKind::MaxPool { kernel, stride } | LayerKind::AvgPool { kernel, stride } => {
                let what = if matches!(self, LayerKind::MaxPool { .. }) {
                    "maxpool"
                } else {
                    "avgpool"
                };
                write!(f, "{what}{kernel}")?;
                if stride != kernel {
                    write!(f, "s{stride}")?;
                }
                Ok(())
            }
            LayerKind::Relu => f.write_str("relu"),
            LayerKind::Flatten => f.write_str("flatten"),
            LayerKind::Embed { dims } => write!(f, "embed{dims}"),
            LayerKind::Lstm { hidden, layers } => {
                write!(f, "lstm{hidden}")?;
                if layers != 1 {
                    write!(f, "x{layers}")?;
                }
                Ok(())
            }
        }
    }
}

/// One layer of a description.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Layer {
    /// Its module name: given (`features.0=conv20k5`), or the default (`conv1`, `fc2`,
    /// `lstm`, `pool1`; `act1` for a ReLU or a flatten).
    pub name: String,
    /// Whether the name was given.
    pub named: bool,
    /// What it is.
    pub kind: LayerKind,
}

impl Layer {
    /// The layer as messages name it: `conv1 (conv20k5)`.
    pub fn label(&self) -> String {
        format!("{} ({})", self.name, self.kind)
    }
}

/// A model description: the input and the layers in order.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Arch {
    /// Per-sample input (a token model's: one token's one-hot vector, `Vector(V)`).
    pub input: Shape,
    /// Layers, in order; the last is a Linear classifier (a token model's: the next token's
    /// logits).
    pub layers: Vec<Layer>,
    /// A token model (`tokV`): every layer runs once a token, an LSTM carrying its state from
    /// one token to the next.
    pub tokens: bool,
}

/// One step of the forward pass a description resolves to: its layers, plus the ReLU implied
/// between two Linears, the flatten implied before a Linear on an image, and the last step
/// a Linear takes of an LSTM's outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArchStep {
    /// The description's layer it comes from.
    pub layer: usize,
    /// What it does.
    pub op: ArchOp,
    /// Its input.
    pub input: Shape,
    /// Its output.
    pub output: Shape,
}

/// What a [`ArchStep`] does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchOp {
    /// The layer itself.
    Layer(LayerKind),
    /// A ReLU implied between two Linears.
    ImpliedRelu,
    /// An image flattened (NCHW) before a Linear.
    ImpliedFlatten,
    /// The last time step of an LSTM's outputs, before a Linear.
    LastStep,
}

/// A tensor a description asks the checkpoint for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorSpec {
    /// The description's layer.
    pub layer: usize,
    /// Its name in the checkpoint.
    pub name: String,
    /// Its shape, PyTorch's layout.
    pub shape: Vec<usize>,
    /// A bias (optional: a layer may have none).
    pub bias: bool,
}

impl Arch {
    /// The description of an MLP of `widths` (`[784, 300, 100, 10]`), default names.
    pub fn mlp(widths: &[usize]) -> Result<Self> {
        let text = widths
            .iter()
            .map(|w| w.to_string())
            .collect::<Vec<_>>()
            .join("-");
        text.parse()
    }

    /// The widths of an MLP description (a vector input and Linear layers only), else `None`.
    pub fn mlp_widths(&self) -> Option<Vec<usize>> {
        let Shape::Vector(n) = self.input else {
            return None;
        };
        let mut widths = vec![n];
        for l in &self.layers {
            match l.kind {
                LayerKind::Linear { outputs } => widths.push(outputs),
                _ => return None,
            }
        }
        Some(widths)
    }

    /// A token model's vocabulary (`None`: not a token model).
    pub fn vocab(&self) -> Option<usize> {
        self.tokens.then(|| self.input.size())
    }

    /// The classes (the last Linear's outputs).
    pub fn classes(&self) -> usize {
        match self.layers.last().map(|l| l.kind) {
            Some(LayerKind::Linear { outputs }) => outputs,
            _ => 0,
        }
    }
}
