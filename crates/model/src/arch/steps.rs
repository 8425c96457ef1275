//! The forward pass of a description, step by step: every layer's input and output shape
//! checked, the implied steps between layers (a ReLU between Linears, a flatten before a
//! Linear, an LSTM's last step), and what one sample costs, bounded. A token model's steps
//! are one token's: the embedding's one-hot input, an LSTM's step, a Linear on its `h_t`.

use super::{
    Arch, ArchOp, ArchStep, Layer, LayerKind, MAX_DIM, MAX_MACS, MAX_MATRICES, MAX_RUNS,
    MAX_VALUES, MAX_WEIGHTS, Shape,
};
use crate::error::{Error, Result};

/// What the layers so far ask for: weights, and per sample multiply-accumulates, matrix runs
/// and matrices; each bounded.
#[derive(Default)]
struct Budget {
    weights: usize,
    macs: u64,
    runs: u64,
    matrices: usize,
}

impl Budget {
    /// `n` more weights (None: more than a machine word holds).
    fn weights(&mut self, n: Option<usize>) -> std::result::Result<(), String> {
        self.weights = n
            .and_then(|n| self.weights.checked_add(n))
            .filter(|&w| w <= MAX_WEIGHTS)
            .ok_or_else(|| format!("more than {MAX_WEIGHTS} weights in all"))?;
        Ok(())
    }

    /// `macs` more multiply-accumulates in `runs` runs of `matrices` more matrices.
    fn cost(
        &mut self,
        macs: Option<u64>,
        runs: u64,
        matrices: usize,
    ) -> std::result::Result<(), String> {
        self.macs = macs
            .and_then(|m| self.macs.checked_add(m))
            .filter(|&m| m <= MAX_MACS)
            .ok_or_else(|| format!("more than {MAX_MACS} multiply-accumulates per sample"))?;
        self.runs = self.runs.saturating_add(runs);
        self.matrices = self.matrices.saturating_add(matrices);
        if self.runs > MAX_RUNS {
            return Err(format!("more than {MAX_RUNS} matrix runs per sample"));
        }
        if self.matrices > MAX_MATRICES {
            return Err(format!("more than {MAX_MATRICES} matrices"));
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

/// A Linear of `outputs` on `inputs` values.
fn linear(
    outputs: usize,
    inputs: usize,
    budget: &mut Budget,
) -> std::result::Result<Shape, String> {
    budget.weights(outputs.checked_mul(inputs))?;
    budget.cost((outputs as u64).checked_mul(inputs as u64), 1, 1)?;
    Ok(Shape::Vector(outputs))
}

/// A layer other than a Linear on `shape`: its output (`tokens`: of one token of a token
/// model).
fn output_of(
    kind: LayerKind,
    shape: Shape,
    tokens: bool,
    budget: &mut Budget,
) -> std::result::Result<Shape, String> {
    Ok(match kind {
        LayerKind::Linear { outputs } => linear(outputs, shape.size(), budget)?,
        LayerKind::Conv {
            outputs,
            kernel,
            stride,
            padding,
        } => {
            let (channels, h, w) = image_out(shape, kernel, stride, padding, "a convolution")?;
            let kernel_weights = outputs
                .checked_mul(channels)
                .and_then(|n| n.checked_mul(kernel * kernel));
            budget.weights(kernel_weights)?;
            let positions = (h as u64).checked_mul(w as u64);
            budget.cost(
                kernel_weights.and_then(|k| positions?.checked_mul(k as u64)),
                0,
                1,
            )?;
            Shape::Image {
                channels: outputs,
                height: h,
                width: w,
            }
        }
        LayerKind::MaxPool { kernel, stride } | LayerKind::AvgPool { kernel, stride } => {
            let (channels, h, w) = image_out(shape, kernel, stride, 0, "pooling")?;
            // Every window's values, read once each.
            let m = [channels, h, w, kernel, kernel]
                .iter()
                .try_fold(1u64, |a, &d| a.checked_mul(d as u64));
            budget.cost(m, 0, 0)?;
            Shape::Image {
                channels,
                height: h,
                width: w,
            }
        }
        LayerKind::Relu => shape,
        LayerKind::Flatten => Shape::Vector(shape.size()),
        LayerKind::Lstm { hidden, layers } => lstm(hidden, layers, shape, tokens, budget)?,
        LayerKind::Embed { dims } => {
            // A one-hot vector selects one column: `dims` products.
            budget.weights(dims.checked_mul(shape.size()))?;
            budget.cost(Some(dims as u64), 1, 1)?;
            Shape::Vector(dims)
        }
    })
}

/// An LSTM of `layers` layers of `hidden` units on `shape`: a sequence, or one step of a
/// token model (`tokens`: a vector a token, its state carried to the next).
fn lstm(
    hidden: usize,
    layers: usize,
    shape: Shape,
    tokens: bool,
    budget: &mut Budget,
) -> std::result::Result<Shape, String> {
    let (steps, features) = match (shape, tokens) {
        (Shape::Sequence { steps, features }, false) => (steps, features),
        (Shape::Vector(features), true) => (1, features),
        (_, false) => {
            return Err(format!(
                "an LSTM reads sequences (steps x features), but its input is {}",
                shape.describe()
            ));
        }
        (_, true) => {
            return Err(format!(
                "a token model's LSTM reads one vector a token, but its input is {}",
                shape.describe()
            ));
        }
    };
    let four = hidden
        .checked_mul(4)
        .filter(|&r| r <= MAX_DIM)
        .ok_or_else(|| format!("4 x {hidden} gate rows is over {MAX_DIM}"))?;
    let mut inputs = features;
    for _ in 0..layers {
        let n = four.checked_mul(inputs + hidden);
        budget.weights(n)?;
        let m = n.and_then(|n| (n as u64).checked_mul(steps as u64));
        budget.cost(m, steps as u64, 1)?;
        inputs = hidden;
    }
    Ok(match tokens {
        true => Shape::Vector(hidden),
        false => Shape::Sequence {
            steps,
            features: hidden,
        },
    })
}

/// The step a Linear needs before it to take `shape`: a flatten of an image, an LSTM's last
/// step of a sequence; none for a vector.
fn before_linear(
    shape: Shape,
    from_lstm: bool,
) -> std::result::Result<Option<(ArchOp, Shape)>, String> {
    match shape {
        Shape::Vector(_) => Ok(None),
        Shape::Image { .. } => Ok(Some((ArchOp::ImpliedFlatten, Shape::Vector(shape.size())))),
        Shape::Sequence { features, .. } if from_lstm => {
            Ok(Some((ArchOp::LastStep, Shape::Vector(features))))
        }
        Shape::Sequence { .. } => Err(format!(
            "a Linear cannot take {}; flatten it first or give the input as a vector ({})",
            shape.describe(),
            shape.size()
        )),
    }
}

impl Arch {
    /// The forward pass, step by step, every shape checked: a layer that cannot take its
    /// input (a convolution on a vector, a kernel larger than the padded image, an LSTM on an
    /// image) is an error naming it and its input.
    pub fn steps(&self) -> Result<Vec<ArchStep>> {
        let bad = |layer: &Layer, reason: String| Error::Arch {
            arch: self.to_string(),
            reason: format!("{}: {reason}", layer.label()),
        };
        let mut steps = Vec::new();
        let mut shape = self.input;
        // Whether the current sequence is an LSTM's output (a Linear takes its last step).
        let mut from_lstm = false;
        let mut budget = Budget::default();
        for (i, layer) in self.layers.iter().enumerate() {
            let embed = matches!(layer.kind, LayerKind::Embed { .. });
            if embed && (i != 0 || !self.tokens) {
                return Err(bad(
                    layer,
                    "an embedding takes token ids: it is the first layer of a token model (tokV-embedE-...)".into(),
                ));
            }
            if self.tokens
                && !matches!(
                    layer.kind,
                    LayerKind::Embed { .. }
                        | LayerKind::Lstm { .. }
                        | LayerKind::Linear { .. }
                        | LayerKind::Relu
                )
            {
                return Err(bad(
                    layer,
                    "a token model's layers are its embedding, LSTMs, Linears and ReLUs, each run once a token".into(),
                ));
            }
            if self.tokens && i == 0 && !embed {
                return Err(bad(
                    layer,
                    format!(
                        "a token model (tok{}) starts with its embedding: tok{}-embedE-...",
                        self.input.size(),
                        self.input.size()
                    ),
                ));
            }
            let mut push = |op, input, output| {
                steps.push(ArchStep {
                    layer: i,
                    op,
                    input,
                    output,
                })
            };
            if matches!(layer.kind, LayerKind::Linear { .. })
                && let Some((op, flat)) =
                    before_linear(shape, from_lstm).map_err(|r| bad(layer, r))?
            {
                push(op, shape, flat);
                shape = flat;
            }
            let output = output_of(layer.kind, shape, self.tokens, &mut budget)
                .map_err(|r| bad(layer, r))?;
            if output.checked_size().is_none() {
                return Err(bad(
                    layer,
                    format!("its output {output} is more than {MAX_VALUES} values per sample"),
                ));
            }
            from_lstm = matches!(layer.kind, LayerKind::Lstm { .. })
                || (from_lstm && matches!(layer.kind, LayerKind::Relu));
            push(ArchOp::Layer(layer.kind), shape, output);
            shape = output;
            let next = self.layers.get(i + 1).map(|l| l.kind);
            if matches!(layer.kind, LayerKind::Linear { .. })
                && matches!(next, Some(LayerKind::Linear { .. }))
            {
                push(ArchOp::ImpliedRelu, shape, shape);
            }
        }
        let last = self.layers.last().expect("parsed: at least one layer");
        if !matches!(last.kind, LayerKind::Linear { .. }) {
            return Err(bad(
                last,
                match self.tokens {
                    true => "the last layer must be the Linear that gives the next token's logits",
                    false => {
                        "the last layer must be the Linear classifier (its outputs are the classes)"
                    }
                }
                .into(),
            ));
        }
        if let Some(v) = self.vocab()
            && self.classes() != v
        {
            return Err(bad(
                last,
                format!(
                    "the next token's logits are {v}, one a token of the vocabulary of tok{v}, not {}",
                    self.classes()
                ),
            ));
        }
        Ok(steps)
    }
}

/// What a description asks of memory per sample: its weights (every tensor, biases
/// included), and the values its forward pass produces (every step's output, and an LSTM's
/// gates and cell states at every time step), which training holds for the backward pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Footprint {
    /// Weights.
    pub weights: u64,
    /// Values one sample's forward pass produces.
    pub values: u64,
}

impl Arch {
    /// The description's [`Footprint`].
    pub fn footprint(&self) -> Result<Footprint> {
        let weights = self
            .tensors()?
            .iter()
            .map(|t| t.shape.iter().product::<usize>() as u64)
            .sum();
        let mut values = 0u64;
        for s in self.steps()? {
            values += s.output.size() as u64;
            match (s.op, s.input) {
                (
                    ArchOp::Layer(LayerKind::Lstm { hidden, layers }),
                    Shape::Sequence { steps, .. },
                ) => {
                    // Four gates and the cell, every step of every layer.
                    values += 5 * (hidden * steps * layers) as u64;
                }
                // A token model's: one step's (its windows multiply them).
                (ArchOp::Layer(LayerKind::Lstm { hidden, layers }), Shape::Vector(_)) => {
                    values += 5 * (hidden * layers) as u64;
                }
                _ => {}
            }
        }
        Ok(Footprint { weights, values })
    }
}
