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
//! an image. Each later item is a layer, optionally named (`features.0=conv20k5`); the names
//! are the PyTorch module names of its tensors.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

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
pub enum Kind {
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

impl Kind {
    /// Whether the layer has tensors.
    pub fn has_tensors(&self) -> bool {
        matches!(
            self,
            Kind::Linear { .. } | Kind::Conv { .. } | Kind::Lstm { .. }
        )
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Kind::Linear { outputs } => write!(f, "{outputs}"),
            Kind::Conv {
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
            Kind::MaxPool { kernel, stride } | Kind::AvgPool { kernel, stride } => {
                let what = if matches!(self, Kind::MaxPool { .. }) {
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
            Kind::Relu => f.write_str("relu"),
            Kind::Flatten => f.write_str("flatten"),
            Kind::Lstm { hidden, layers } => {
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
    pub kind: Kind,
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
    /// Per-sample input.
    pub input: Shape,
    /// Layers, in order; the last is a Linear classifier.
    pub layers: Vec<Layer>,
}

/// One step of the forward pass a description resolves to: its layers, plus the ReLU implied
/// between two Linears, the flatten implied before a Linear on an image, and the last step
/// a Linear takes of an LSTM's outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// The description's layer it comes from.
    pub layer: usize,
    /// What it does.
    pub op: StepOp,
    /// Its input.
    pub input: Shape,
    /// Its output.
    pub output: Shape,
}

/// What a [`Step`] does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepOp {
    /// The layer itself.
    Layer(Kind),
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

fn parse_dim(text: &str, what: &str) -> std::result::Result<usize, String> {
    let n: usize = text
        .parse()
        .map_err(|_| format!("{what} \"{text}\" is not a positive integer"))?;
    if n == 0 || n > MAX_DIM {
        return Err(format!("{what} {n}: expected 1..={MAX_DIM}"));
    }
    Ok(n)
}

/// Splits `body` (after its keyword) into the leading number and its lettered options:
/// `20k5s2` -> (20, [('k', 5), ('s', 2)]).
fn numbers(body: &str, what: &str) -> std::result::Result<(usize, Vec<(char, String)>), String> {
    let lead_end = body
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(body.len());
    let lead = parse_dim(&body[..lead_end], what)?;
    let mut opts = Vec::new();
    let mut rest = &body[lead_end..];
    while let Some(c) = rest.chars().next() {
        if !c.is_ascii_lowercase() {
            return Err(format!("unexpected \"{c}\""));
        }
        let tail = &rest[1..];
        let end = tail
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(tail.len());
        if end == 0 {
            return Err(format!("\"{c}\" must be followed by a number"));
        }
        if opts.iter().any(|(o, _)| *o == c) {
            return Err(format!("\"{c}\" is given twice"));
        }
        opts.push((c, tail[..end].to_string()));
        rest = &tail[end..];
    }
    Ok((lead, opts))
}

fn parse_kind(body: &str) -> std::result::Result<Kind, String> {
    if body == "relu" {
        return Ok(Kind::Relu);
    }
    if body == "flatten" {
        return Ok(Kind::Flatten);
    }
    if body.starts_with(|c: char| c.is_ascii_digit()) {
        return Ok(Kind::Linear {
            outputs: parse_dim(body, "outputs")?,
        });
    }
    let take = |opts: &[(char, String)], allowed: &str| -> std::result::Result<(), String> {
        match opts.iter().find(|(c, _)| !allowed.contains(*c)) {
            Some((c, _)) => Err(format!(
                "unknown option \"{c}\" (this layer takes {})",
                allowed
                    .chars()
                    .map(|c| format!("\"{c}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            None => Ok(()),
        }
    };
    let get = |opts: &[(char, String)], c: char, what: &str| {
        opts.iter()
            .find(|(o, _)| *o == c)
            .map(|(_, v)| parse_dim(v, what))
            .transpose()
    };
    if let Some(rest) = body.strip_prefix("conv") {
        let (outputs, opts) = numbers(rest, "output channels")?;
        take(&opts, "ksp")?;
        let kernel = get(&opts, 'k', "kernel")?
            .ok_or("a convolution needs its kernel: convOkK, e.g. conv20k5")?;
        let stride = get(&opts, 's', "stride")?.unwrap_or(1);
        let padding = match opts.iter().find(|(c, _)| *c == 'p') {
            Some((_, v)) => v
                .parse::<usize>()
                .ok()
                .filter(|&p| p <= MAX_DIM)
                .ok_or_else(|| format!("padding \"{v}\": expected 0..={MAX_DIM}"))?,
            None => 0,
        };
        return Ok(Kind::Conv {
            outputs,
            kernel,
            stride,
            padding,
        });
    }
    for (keyword, max) in [("maxpool", true), ("avgpool", false)] {
        if let Some(rest) = body.strip_prefix(keyword) {
            let (kernel, opts) = numbers(rest, "window")?;
            take(&opts, "s")?;
            let stride = get(&opts, 's', "stride")?.unwrap_or(kernel);
            return Ok(if max {
                Kind::MaxPool { kernel, stride }
            } else {
                Kind::AvgPool { kernel, stride }
            });
        }
    }
    if let Some(rest) = body.strip_prefix("lstm") {
        let (hidden, opts) = numbers(rest, "hidden units")?;
        take(&opts, "x")?;
        let layers = get(&opts, 'x', "layers")?.unwrap_or(1);
        return Ok(Kind::Lstm { hidden, layers });
    }
    Err(
        "expected a layer: N (Linear), convOkK[sS][pP], maxpoolK[sS], avgpoolK[sS], relu, flatten or lstmH[xL]"
            .into(),
    )
}

fn parse_input(text: &str) -> std::result::Result<Shape, String> {
    let dims = text
        .split('x')
        .map(|d| parse_dim(d, "input size"))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| format!("{e}; expected N, TxF (steps x features) or CxHxW (an image)"))?;
    Ok(match dims[..] {
        [n] => Shape::Vector(n),
        [steps, features] => Shape::Sequence { steps, features },
        [channels, height, width] => Shape::Image {
            channels,
            height,
            width,
        },
        _ => return Err("expected N, TxF (steps x features) or CxHxW (an image)".into()),
    })
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        && !name.starts_with('.')
        && !name.ends_with('.')
        && !name.contains("..")
}

impl FromStr for Arch {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        let bad = |reason: String| Error::Arch {
            arch: text.to_string(),
            reason,
        };
        let items: Vec<&str> = text.split('-').map(str::trim).collect();
        if items.len() > MAX_ITEMS {
            return Err(bad(format!("{} items, at most {MAX_ITEMS}", items.len())));
        }
        if items.len() < 2 {
            return Err(bad(
                "expected an input and at least one layer joined by '-', e.g. 784-300-100-10 or 1x28x28-conv20k5-maxpool2-500-10".into(),
            ));
        }
        let input =
            parse_input(items[0]).map_err(|e| bad(format!("input \"{}\": {e}", items[0])))?;
        if input.checked_size().is_none() {
            return Err(bad(format!(
                "input \"{}\": more than {MAX_VALUES} values per sample",
                items[0]
            )));
        }
        let mut parsed = Vec::new();
        for (i, item) in items.iter().enumerate().skip(1) {
            let (name, body) = match item.split_once('=') {
                Some((n, b)) => (Some(n.trim()), b.trim()),
                None => (None, *item),
            };
            let kind = parse_kind(body).map_err(|e| bad(format!("item {i} \"{item}\": {e}")))?;
            parsed.push((i, name, kind));
        }
        let lstms = parsed
            .iter()
            .filter(|(_, _, k)| matches!(k, Kind::Lstm { .. }))
            .count();
        let mut layers: Vec<Layer> = Vec::new();
        let mut counts = [0usize; 5];
        for (i, name, kind) in parsed {
            let (slot, stem) = match kind {
                Kind::Linear { .. } => (0, "fc"),
                Kind::Conv { .. } => (1, "conv"),
                Kind::Lstm { .. } => (2, "lstm"),
                Kind::MaxPool { .. } | Kind::AvgPool { .. } => (3, "pool"),
                Kind::Relu | Kind::Flatten => (4, "act"),
            };
            counts[slot] += 1;
            let default = if slot == 2 && lstms == 1 {
                "lstm".to_string()
            } else {
                format!("{stem}{}", counts[slot])
            };
            let named = name.is_some();
            let name = match name {
                Some(n) if valid_name(n) => n.to_string(),
                Some(n) => {
                    return Err(bad(format!(
                        "item {i}: the name \"{n}\" is not a module path (letters, digits, '_' and '.')"
                    )));
                }
                None => default,
            };
            if kind.has_tensors() && layers.iter().any(|l| l.name == name) {
                return Err(bad(format!("item {i}: the name \"{name}\" is used twice")));
            }
            layers.push(Layer { name, named, kind });
        }
        let arch = Arch { input, layers };
        arch.steps().map_err(|e| match e {
            Error::Arch { reason, .. } => bad(reason),
            other => other,
        })?;
        Ok(arch)
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.input)?;
        for l in &self.layers {
            if l.named {
                write!(f, "-{}={}", l.name, l.kind)?;
            } else {
                write!(f, "-{}", l.kind)?;
            }
        }
        Ok(())
    }
}

/// The channels and output sides of a square window (`what`: a convolution, pooling) over
/// image `shape`, or why there are none.
fn image_out(
    shape: Shape,
    kernel: usize,
    stride: usize,
    padding: usize,
    what: &str,
) -> std::result::Result<(usize, usize, usize), String> {
    let Shape::Image {
        channels,
        height,
        width,
    } = shape
    else {
        return Err(format!(
            "{what} needs an image (channels x height x width), but its input is {}",
            shape.describe()
        ));
    };
    match (
        out_side(height, kernel, stride, padding),
        out_side(width, kernel, stride, padding),
    ) {
        (Some(h), Some(w)) => Ok((channels, h, w)),
        _ => Err(format!(
            "a {kernel}x{kernel} window with padding {padding} leaves no output of {}",
            shape.describe()
        )),
    }
}

/// `(side + 2 padding - kernel) / stride + 1`, or why there is no output.
fn out_side(side: usize, kernel: usize, stride: usize, padding: usize) -> Option<usize> {
    let padded = side.checked_add(padding.checked_mul(2)?)?;
    (padded >= kernel).then(|| (padded - kernel) / stride + 1)
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
                Kind::Linear { outputs } => widths.push(outputs),
                _ => return None,
            }
        }
        Some(widths)
    }

    /// The forward pass, step by step, every shape checked: a layer that cannot take its
    /// input (a convolution on a vector, a kernel larger than the padded image, an LSTM on an
    /// image) is an error naming it and its input.
    pub fn steps(&self) -> Result<Vec<Step>> {
        let bad = |layer: &Layer, reason: String| Error::Arch {
            arch: self.to_string(),
            reason: format!("{}: {reason}", layer.label()),
        };
        let mut steps = Vec::new();
        let mut shape = self.input;
        // Whether the current sequence is an LSTM's output (a Linear takes its last step).
        let mut from_lstm = false;
        let mut weights = 0usize;
        let mut add_weights = |layer: &Layer, n: Option<usize>| -> Result<()> {
            weights = n
                .and_then(|n| weights.checked_add(n))
                .filter(|&w| w <= MAX_WEIGHTS)
                .ok_or_else(|| bad(layer, format!("more than {MAX_WEIGHTS} weights in all")))?;
            Ok(())
        };
        // What one sample costs: multiply-accumulates, matrix runs, matrices.
        let (mut macs, mut runs, mut matrices) = (0u64, 0u64, 0usize);
        let mut add_cost = |layer: &Layer, m: Option<u64>, r: u64, n: usize| -> Result<()> {
            macs = m
                .and_then(|m| macs.checked_add(m))
                .filter(|&m| m <= MAX_MACS)
                .ok_or_else(|| {
                    bad(
                        layer,
                        format!("more than {MAX_MACS} multiply-accumulates per sample"),
                    )
                })?;
            runs = runs.saturating_add(r);
            matrices = matrices.saturating_add(n);
            if runs > MAX_RUNS {
                return Err(bad(
                    layer,
                    format!("more than {MAX_RUNS} matrix runs per sample"),
                ));
            }
            if matrices > MAX_MATRICES {
                return Err(bad(layer, format!("more than {MAX_MATRICES} matrices")));
            }
            Ok(())
        };
        for (i, layer) in self.layers.iter().enumerate() {
            let push = |op: StepOp, output: Shape, steps: &mut Vec<Step>, input: Shape| {
                steps.push(Step {
                    layer: i,
                    op,
                    input,
                    output,
                })
            };
            let output = match layer.kind {
                Kind::Linear { outputs } => {
                    let inputs = match shape {
                        Shape::Vector(n) => n,
                        Shape::Image { .. } => {
                            let flat = Shape::Vector(shape.size());
                            push(StepOp::ImpliedFlatten, flat, &mut steps, shape);
                            shape = flat;
                            flat.size()
                        }
                        Shape::Sequence { features, .. } if from_lstm => {
                            let last = Shape::Vector(features);
                            push(StepOp::LastStep, last, &mut steps, shape);
                            shape = last;
                            features
                        }
                        Shape::Sequence { .. } => {
                            return Err(bad(
                                layer,
                                format!(
                                    "a Linear cannot take {}; flatten it first or give the input as a vector ({})",
                                    shape.describe(),
                                    shape.size()
                                ),
                            ));
                        }
                    };
                    add_weights(layer, outputs.checked_mul(inputs))?;
                    add_cost(layer, (outputs as u64).checked_mul(inputs as u64), 1, 1)?;
                    Shape::Vector(outputs)
                }
                Kind::Conv {
                    outputs,
                    kernel,
                    stride,
                    padding,
                } => {
                    let (channels, h, w) =
                        image_out(shape, kernel, stride, padding, "a convolution")
                            .map_err(|reason| bad(layer, reason))?;
                    let kernel_weights = outputs
                        .checked_mul(channels)
                        .and_then(|n| n.checked_mul(kernel * kernel));
                    add_weights(layer, kernel_weights)?;
                    let positions = (h as u64).checked_mul(w as u64);
                    let m = kernel_weights.and_then(|k| positions?.checked_mul(k as u64));
                    add_cost(layer, m, 0, 1)?;
                    Shape::Image {
                        channels: outputs,
                        height: h,
                        width: w,
                    }
                }
                Kind::MaxPool { kernel, stride } | Kind::AvgPool { kernel, stride } => {
                    let (channels, h, w) = image_out(shape, kernel, stride, 0, "pooling")
                        .map_err(|reason| bad(layer, reason))?;
                    // Every window's values, read once each.
                    let m = [channels, h, w, kernel, kernel]
                        .iter()
                        .try_fold(1u64, |a, &d| a.checked_mul(d as u64));
                    add_cost(layer, m, 0, 0)?;
                    Shape::Image {
                        channels,
                        height: h,
                        width: w,
                    }
                }
                Kind::Relu => shape,
                Kind::Flatten => Shape::Vector(shape.size()),
                Kind::Lstm { hidden, layers } => {
                    let Shape::Sequence { steps: t, features } = shape else {
                        return Err(bad(
                            layer,
                            format!(
                                "an LSTM reads sequences (steps x features), but its input is {}",
                                shape.describe()
                            ),
                        ));
                    };
                    let four =
                        hidden
                            .checked_mul(4)
                            .filter(|&r| r <= MAX_DIM)
                            .ok_or_else(|| {
                                bad(layer, format!("4 x {hidden} gate rows is over {MAX_DIM}"))
                            })?;
                    let mut inputs = features;
                    for _ in 0..layers {
                        let n = four.checked_mul(inputs + hidden);
                        add_weights(layer, n)?;
                        let m = n.and_then(|n| (n as u64).checked_mul(t as u64));
                        add_cost(layer, m, t as u64, 1)?;
                        inputs = hidden;
                    }
                    Shape::Sequence {
                        steps: t,
                        features: hidden,
                    }
                }
            };
            if output.checked_size().is_none() {
                return Err(bad(
                    layer,
                    format!("its output {output} is more than {MAX_VALUES} values per sample"),
                ));
            }
            from_lstm = matches!(layer.kind, Kind::Lstm { .. })
                || (from_lstm && matches!(layer.kind, Kind::Relu));
            push(StepOp::Layer(layer.kind), output, &mut steps, shape);
            shape = output;
            if matches!(layer.kind, Kind::Linear { .. })
                && matches!(
                    self.layers.get(i + 1).map(|l| l.kind),
                    Some(Kind::Linear { .. })
                )
            {
                push(StepOp::ImpliedRelu, shape, &mut steps, shape);
            }
        }
        let last = self.layers.last().expect("parsed: at least one layer");
        if !matches!(last.kind, Kind::Linear { .. }) {
            return Err(bad(
                last,
                "the last layer must be the Linear classifier (its outputs are the classes)".into(),
            ));
        }
        Ok(steps)
    }

    /// Every tensor the description asks for, in order (each layer's weight, then its bias).
    pub fn tensors(&self) -> Result<Vec<TensorSpec>> {
        let steps = self.steps()?;
        let mut out = Vec::new();
        for s in &steps {
            let StepOp::Layer(kind) = s.op else { continue };
            let (layer, name) = (s.layer, &self.layers[s.layer].name);
            let mut push = |suffix: &str, shape: Vec<usize>, bias: bool| {
                out.push(TensorSpec {
                    layer,
                    name: format!("{name}.{suffix}"),
                    shape,
                    bias,
                })
            };
            match kind {
                Kind::Linear { outputs } => {
                    push("weight", vec![outputs, s.input.size()], false);
                    push("bias", vec![outputs], true);
                }
                Kind::Conv {
                    outputs, kernel, ..
                } => {
                    let Shape::Image { channels, .. } = s.input else {
                        unreachable!("checked by steps")
                    };
                    push("weight", vec![outputs, channels, kernel, kernel], false);
                    push("bias", vec![outputs], true);
                }
                Kind::Lstm { hidden, layers } => {
                    let Shape::Sequence { features, .. } = s.input else {
                        unreachable!("checked by steps")
                    };
                    for k in 0..layers {
                        let inputs = if k == 0 { features } else { hidden };
                        push(&format!("weight_ih_l{k}"), vec![4 * hidden, inputs], false);
                        push(&format!("weight_hh_l{k}"), vec![4 * hidden, hidden], false);
                        push(&format!("bias_ih_l{k}"), vec![4 * hidden], true);
                        push(&format!("bias_hh_l{k}"), vec![4 * hidden], true);
                    }
                }
                _ => {}
            }
        }
        Ok(out)
    }

    /// The classes (the last Linear's outputs).
    pub fn classes(&self) -> usize {
        match self.layers.last().map(|l| l.kind) {
            Some(Kind::Linear { outputs }) => outputs,
            _ => 0,
        }
    }
}
