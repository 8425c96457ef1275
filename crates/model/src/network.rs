//! The network as plain data: its weight tensors as matrices in PyTorch's layout (a Linear's
//! `[out, in]`, a convolution's `[out, in, kh, kw]` read as `[out, in*kh*kw]`, an LSTM's
//! `weight_ih` and `weight_hh`), and the forward pass as a list of operations over them.
//! Building one checks every shape; burn only sees it inside training and evaluation.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use eie_checkpoint::{Checkpoint, Dtype, Writer, f32_bytes};
use eie_dataset::{Dataset, Form};
use eie_rng::Rng;

use crate::arch::{Arch, Kind, MAX_WEIGHTS, Shape, StepOp, TensorSpec};
use crate::error::{Error, Result};

/// One weight tensor as a matrix: `y = W x + b`.
#[derive(Debug, Clone, PartialEq)]
pub struct Dense {
    /// The weight tensor's name (`fc1.weight`, `lstm.weight_ih_l0`).
    pub name: String,
    /// The bias tensor's name, when the layer has a bias.
    pub bias_name: Option<String>,
    /// Rows of W.
    pub outputs: usize,
    /// Columns of W.
    pub inputs: usize,
    /// The tensor's shape as stored: `[outputs, inputs]`, or a convolution's
    /// `[outputs, channels, kh, kw]`.
    pub shape: Vec<usize>,
    /// W, `outputs x inputs`, row-major (PyTorch's layout).
    pub weight: Vec<f32>,
    /// b, `outputs` values.
    pub bias: Option<Vec<f32>>,
}

impl Dense {
    /// Whether the tensor is a convolution's kernel (4-D).
    pub fn is_conv(&self) -> bool {
        self.shape.len() == 4
    }
}

/// One operation of the forward pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `y = W x + b` with layer `layer`.
    Linear {
        /// Index into [`Network::layers`].
        layer: usize,
    },
    /// A convolution with layer `layer` (its matrix is `[out, in*k*k]`).
    Conv {
        /// Index into [`Network::layers`].
        layer: usize,
        /// Kernel side.
        kernel: usize,
        /// Stride.
        stride: usize,
        /// Zero padding on every side.
        padding: usize,
    },
    /// One LSTM layer over the whole sequence: gates `W_ih x_t + b_ih + W_hh h_{t-1} + b_hh`
    /// in PyTorch's order i, f, g, o; outputs every `h_t`.
    Lstm {
        /// Index of `weight_ih` in [`Network::layers`].
        ih: usize,
        /// Index of `weight_hh`.
        hh: usize,
        /// Hidden units.
        hidden: usize,
    },
    /// Max pooling, square window.
    MaxPool {
        /// Window side.
        kernel: usize,
        /// Stride.
        stride: usize,
    },
    /// Average pooling, square window.
    AvgPool {
        /// Window side.
        kernel: usize,
        /// Stride.
        stride: usize,
    },
    /// `max(x, 0)`.
    Relu,
    /// An image or sequence as a vector (NCHW order).
    Flatten,
    /// A sequence's last step.
    LastStep,
}

/// A sequential network: operations over weight matrices, input to logits.
#[derive(Debug, Clone, PartialEq)]
pub struct Network {
    arch: Option<Arch>,
    ops: Vec<Op>,
    /// `shapes[i]` is op i's input; the last is the logits'.
    shapes: Vec<Shape>,
    layers: Vec<Dense>,
}

fn check_dense(l: &Dense) -> Result<()> {
    let bad = |reason: String| {
        Err(Error::Layer {
            layer: l.name.clone(),
            reason,
        })
    };
    if l.outputs.checked_mul(l.inputs) != Some(l.weight.len()) || l.outputs == 0 || l.inputs == 0 {
        return bad(format!(
            "{} weights for {} x {}",
            l.weight.len(),
            l.outputs,
            l.inputs
        ));
    }
    if l.shape.iter().product::<usize>() != l.weight.len() || l.shape.first() != Some(&l.outputs) {
        return bad(format!(
            "shape {:?} for {} x {}",
            l.shape, l.outputs, l.inputs
        ));
    }
    if let Some(b) = &l.bias
        && b.len() != l.outputs
    {
        return bad(format!("{} biases for {} outputs", b.len(), l.outputs));
    }
    Ok(())
}

impl Network {
    /// A multilayer perceptron of `layers` (2-D, in order, ReLU between them), which must
    /// chain (each takes as many inputs as the previous has outputs).
    pub fn new(layers: Vec<Dense>) -> Result<Self> {
        if layers.is_empty() {
            return Err(Error::NoLayers);
        }
        for l in &layers {
            check_dense(l)?;
        }
        for w in layers.windows(2) {
            if w[1].inputs != w[0].outputs {
                return Err(Error::Chain {
                    prev: w[0].name.clone(),
                    next: w[1].name.clone(),
                    reason: format!(
                        "\"{}\" has {} outputs ([{}, {}]) but \"{}\" takes {} inputs ([{}, {}])",
                        w[0].name,
                        w[0].outputs,
                        w[0].outputs,
                        w[0].inputs,
                        w[1].name,
                        w[1].inputs,
                        w[1].outputs,
                        w[1].inputs
                    ),
                });
            }
        }
        let mut ops = Vec::new();
        let mut shapes = vec![Shape::Vector(layers[0].inputs)];
        for (i, l) in layers.iter().enumerate() {
            ops.push(Op::Linear { layer: i });
            shapes.push(Shape::Vector(l.outputs));
            if i + 1 < layers.len() {
                ops.push(Op::Relu);
                shapes.push(Shape::Vector(l.outputs));
            }
        }
        Ok(Self {
            arch: None,
            ops,
            shapes,
            layers,
        })
    }

    /// The network `arch` describes, with `layers` its tensors in the order of
    /// [`Arch::tensors`] (weights only; biases ride in their [`Dense`]).
    pub fn from_parts(arch: &Arch, layers: Vec<Dense>) -> Result<Self> {
        let specs: Vec<TensorSpec> = arch.tensors()?.into_iter().filter(|t| !t.bias).collect();
        if specs.len() != layers.len() {
            return Err(Error::Arch {
                arch: arch.to_string(),
                reason: format!(
                    "{} weight tensors given for the {} it describes",
                    layers.len(),
                    specs.len()
                ),
            });
        }
        for (spec, l) in specs.iter().zip(&layers) {
            check_dense(l)?;
            if l.shape != spec.shape {
                return Err(Error::Mismatch {
                    layer: arch.layers[spec.layer].label(),
                    tensor: spec.name.clone(),
                    expected: format!("{:?}", spec.shape),
                    found: format!("gives {} {:?}", l.name, l.shape),
                });
            }
        }
        let mut ops = Vec::new();
        let mut shapes = vec![arch.input];
        let mut next = 0usize;
        for step in arch.steps()? {
            match step.op {
                StepOp::ImpliedRelu => ops.push(Op::Relu),
                StepOp::ImpliedFlatten => ops.push(Op::Flatten),
                StepOp::LastStep => ops.push(Op::LastStep),
                StepOp::Layer(kind) => match kind {
                    Kind::Linear { .. } => {
                        ops.push(Op::Linear { layer: next });
                        next += 1;
                    }
                    Kind::Conv {
                        kernel,
                        stride,
                        padding,
                        ..
                    } => {
                        ops.push(Op::Conv {
                            layer: next,
                            kernel,
                            stride,
                            padding,
                        });
                        next += 1;
                    }
                    Kind::Lstm { hidden, layers: n } => {
                        for k in 0..n {
                            ops.push(Op::Lstm {
                                ih: next,
                                hh: next + 1,
                                hidden,
                            });
                            next += 2;
                            if k + 1 < n {
                                let Shape::Sequence { steps, .. } = step.output else {
                                    unreachable!("an LSTM outputs a sequence")
                                };
                                shapes.push(Shape::Sequence {
                                    steps,
                                    features: hidden,
                                });
                            }
                        }
                    }
                    Kind::MaxPool { kernel, stride } => ops.push(Op::MaxPool { kernel, stride }),
                    Kind::AvgPool { kernel, stride } => ops.push(Op::AvgPool { kernel, stride }),
                    Kind::Relu => ops.push(Op::Relu),
                    Kind::Flatten => ops.push(Op::Flatten),
                },
            }
            shapes.push(step.output);
        }
        // An LSTM's matrices: both biases or neither.
        for op in &ops {
            if let Op::Lstm { ih, hh, .. } = *op
                && layers[ih].bias.is_some() != layers[hh].bias.is_some()
            {
                return Err(Error::Layer {
                    layer: layers[ih].name.clone(),
                    reason: format!(
                        "has a bias but \"{}\" has none, or the other way round: give both LSTM biases or neither",
                        layers[hh].name
                    ),
                });
            }
        }
        Ok(Self {
            arch: Some(arch.clone()),
            ops,
            shapes,
            layers,
        })
    }

    /// The network made of the checkpoint's 2-D tensors `names`, in order, each with its
    /// `NAME.bias` when the checkpoint has one: an MLP.
    pub fn from_checkpoint(ck: &Checkpoint, names: &[String]) -> Result<Self> {
        let mut layers = Vec::with_capacity(names.len());
        for name in names {
            let m = ck.read_matrix(name)?;
            eie_checkpoint::check_finite(name, &m.data, m.cols)?;
            let bias_name = eie_checkpoint::bias_name(name).filter(|b| ck.info(b).is_some());
            let bias = match &bias_name {
                Some(b) => Some(read_bias(ck, name, b, m.rows)?),
                None => None,
            };
            layers.push(Dense {
                name: name.clone(),
                bias_name,
                outputs: m.rows,
                inputs: m.cols,
                shape: vec![m.rows, m.cols],
                weight: m.data,
                bias,
            });
        }
        Self::new(layers)
    }

    /// The network `arch` describes, its tensors read from `ck`: every weight must be there
    /// with the described shape, a bias is optional but of the described shape, and the
    /// checkpoint must hold no other tensor. Every mismatch names the description's layer
    /// and the tensor.
    pub fn from_arch_checkpoint(ck: &Checkpoint, arch: &Arch) -> Result<Self> {
        let specs = arch.tensors()?;
        let mut used = BTreeSet::new();
        let mut layers: Vec<Dense> = Vec::new();
        for spec in &specs {
            let label = arch.layers[spec.layer].label();
            let mismatch = |found: String| Error::Mismatch {
                layer: label.clone(),
                tensor: spec.name.clone(),
                expected: format!("{:?} (a float tensor)", spec.shape),
                found,
            };
            let Some(info) = ck.info(&spec.name) else {
                if spec.bias {
                    continue;
                }
                return Err(mismatch(format!(
                    "has no such tensor (it holds {})",
                    ck.available()
                )));
            };
            used.insert(spec.name.clone());
            if !info.is_float() {
                return Err(mismatch(format!(
                    "holds it as {:?} {:?}",
                    info.dtype, info.shape
                )));
            }
            if info.shape != spec.shape {
                return Err(mismatch(format!(
                    "holds {:?}{}",
                    info.shape,
                    shape_hint(&spec.name, &info.shape)
                )));
            }
            let values = ck.read_f32(&spec.name)?;
            eie_checkpoint::check_finite(&spec.name, &values, *spec.shape.last().unwrap_or(&1))?;
            if spec.bias {
                attach_bias(&mut layers, spec, values);
            } else {
                let outputs = spec.shape[0];
                layers.push(Dense {
                    name: spec.name.clone(),
                    bias_name: None,
                    outputs,
                    inputs: values.len() / outputs,
                    shape: spec.shape.clone(),
                    weight: values,
                    bias: None,
                });
            }
        }
        let unused: Vec<String> = ck
            .tensors()
            .into_iter()
            .map(|t| t.name)
            .filter(|n| !used.contains(n))
            .collect();
        if !unused.is_empty() {
            return Err(Error::Unused {
                arch: arch.to_string(),
                tensors: unused.join(", "),
            });
        }
        Self::from_parts(arch, layers)
    }

    /// A freshly initialised network as `arch` describes, PyTorch's default initialisation
    /// (every Linear and convolution weight and bias uniform in `[-1/sqrt(fan_in),
    /// 1/sqrt(fan_in)]`, every LSTM tensor in `[-1/sqrt(H), 1/sqrt(H)]`), tensors drawn in
    /// [`Arch::tensors`] order from eie-rng with `seed`.
    pub fn init_arch(arch: &Arch, seed: u64) -> Result<Self> {
        let specs = arch.tensors()?;
        let total = specs
            .iter()
            .try_fold(0usize, |n, s| n.checked_add(s.shape.iter().product()));
        if total.is_none_or(|n| n > MAX_WEIGHTS) {
            return Err(Error::Arch {
                arch: arch.to_string(),
                reason: format!("more than {MAX_WEIGHTS} weights"),
            });
        }
        let mut rng = Rng::new(seed);
        let mut layers: Vec<Dense> = Vec::new();
        for spec in &specs {
            let kind = arch.layers[spec.layer].kind;
            let fan_in = match kind {
                Kind::Lstm { hidden, .. } => hidden,
                _ if spec.bias => layers.last().map_or(1, |l| l.inputs),
                _ => spec.shape[1..].iter().product(),
            };
            let bound = 1.0 / (fan_in as f64).sqrt();
            let n: usize = spec.shape.iter().product();
            let values: Vec<f32> = (0..n)
                .map(|_| ((2.0 * rng.uniform() - 1.0) * bound) as f32)
                .collect();
            if spec.bias {
                attach_bias(&mut layers, spec, values);
            } else {
                layers.push(Dense {
                    name: spec.name.clone(),
                    bias_name: None,
                    outputs: spec.shape[0],
                    inputs: n / spec.shape[0],
                    shape: spec.shape.clone(),
                    weight: values,
                    bias: None,
                });
            }
        }
        Self::from_parts(arch, layers)
    }

    /// A freshly initialised MLP of the given widths (`[784, 300, 100, 10]`), layers `fc1`,
    /// `fc2`, ... with biases ([`Network::init_arch`] of [`Arch::mlp`]).
    pub fn init(widths: &[usize], seed: u64) -> Result<Self> {
        // As an MLP read back from its checkpoint is: no description attached.
        Self::new(Self::init_arch(&Arch::mlp(widths)?, seed)?.layers)
    }

    /// The description, when the network was built from one.
    pub fn arch(&self) -> Option<&Arch> {
        self.arch.as_ref()
    }

    /// The weight tensors, in order.
    pub fn layers(&self) -> &[Dense] {
        &self.layers
    }

    /// The forward pass.
    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    /// `shapes()[i]` is the input of op i; the last is the logits' (a vector of the classes).
    pub fn shapes(&self) -> &[Shape] {
        &self.shapes
    }

    /// The weight tensors, to change their values (not their shapes).
    pub fn layers_mut(&mut self) -> impl Iterator<Item = LayerValues<'_>> {
        self.layers.iter_mut().map(|l| LayerValues {
            name: &l.name,
            outputs: l.outputs,
            inputs: l.inputs,
            weight: &mut l.weight,
            bias: l.bias.as_mut(),
        })
    }

    /// The input of a sample.
    pub fn input(&self) -> Shape {
        self.shapes[0]
    }

    /// Values per input sample.
    pub fn inputs(&self) -> usize {
        self.shapes[0].size()
    }

    /// Outputs of the last layer (classes).
    pub fn outputs(&self) -> usize {
        self.layers.last().expect("non-empty").outputs
    }

    /// Whether the network is an MLP (Linear and ReLU over a vector).
    pub fn is_mlp(&self) -> bool {
        self.ops
            .iter()
            .all(|op| matches!(op, Op::Linear { .. } | Op::Relu))
    }

    /// The description as text: the one it was built from, else the MLP's widths.
    pub fn describe(&self) -> String {
        match &self.arch {
            Some(a) => a.to_string(),
            None => std::iter::once(self.inputs())
                .chain(self.layers.iter().map(|l| l.outputs))
                .map(|w| w.to_string())
                .collect::<Vec<_>>()
                .join("-"),
        }
    }

    /// Checks that `data` fits: its samples are the network's input (a vector of as many
    /// values; an image or a grid for a convolution; a sequence or a grid for an LSTM), every
    /// label one of the last layer's outputs.
    pub fn check_dataset(&self, data: &Dataset) -> Result<()> {
        let first = self.layers[0].name.clone();
        let input = self.input();
        let described = |shape: &[usize], form: Form| -> String {
            let dims = shape
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join("x");
            match form {
                Form::Image => format!("images of {dims}"),
                Form::Sequence => format!("sequences of {dims} (steps x features)"),
                Form::Plain => format!("samples of {dims}"),
            }
        };
        let form_error = || Error::Form {
            dataset: data.name().to_string(),
            found: described(data.shape(), data.form()),
            layer: first.clone(),
            expected: input.describe(),
        };
        match input {
            Shape::Vector(n) => {
                if data.width() != n {
                    return Err(Error::Width {
                        dataset: data.name().to_string(),
                        width: data.width(),
                        layer: first,
                        inputs: n,
                    });
                }
            }
            Shape::Image {
                channels,
                height,
                width,
            } => {
                let fits = match data.shape() {
                    [c, h, w] => [*c, *h, *w] == [channels, height, width],
                    [h, w] => channels == 1 && [*h, *w] == [height, width],
                    _ => false,
                };
                if data.form() == Form::Sequence || !fits {
                    return Err(form_error());
                }
            }
            Shape::Sequence { steps, features } => {
                if data.form() == Form::Image || data.shape() != [steps, features] {
                    return Err(form_error());
                }
            }
        }
        if let Some(i) = data
            .labels()
            .iter()
            .position(|&l| l as usize >= self.outputs())
        {
            return Err(Error::Label {
                dataset: data.name().to_string(),
                index: data.first() + i,
                label: data.labels()[i],
                outputs: self.outputs(),
                layer: self.layers.last().expect("non-empty").name.clone(),
            });
        }
        Ok(())
    }

    /// Fraction of the weights (biases not counted) that are non-zero.
    pub fn density(&self) -> f64 {
        let (mut nz, mut n) = (0usize, 0usize);
        for l in &self.layers {
            nz += l.weight.iter().filter(|&&w| w != 0.0).count();
            n += l.weight.len();
        }
        nz as f64 / n as f64
    }

    /// The float forward pass on the host ([`crate::reference`]): the reference the burn
    /// model is tested against.
    pub fn forward(&self, x: &[f32]) -> Vec<f32> {
        crate::reference::forward(self, x)
    }

    /// Writes the network as an F32 safetensors file in PyTorch's layout (every weight in
    /// its stored shape, every bias `[out]`), with `metadata`. Writes `path` directly:
    /// callers that must not leave a partial file write to a temporary path and rename.
    pub fn write_safetensors(
        &self,
        path: &Path,
        metadata: &BTreeMap<String, String>,
    ) -> Result<()> {
        let mut specs = Vec::new();
        let mut data: Vec<&[f32]> = Vec::new();
        for l in &self.layers {
            specs.push((l.name.clone(), Dtype::F32, l.shape.clone()));
            data.push(&l.weight);
        }
        for l in &self.layers {
            if let (Some(b), Some(v)) = (&l.bias_name, &l.bias) {
                specs.push((b.clone(), Dtype::F32, vec![l.outputs]));
                data.push(v);
            }
        }
        // PyTorch's order: each module's weights then its biases; for an MLP, weight and
        // bias of each layer in turn (the order `train` has always written).
        let order = self.tensor_order();
        let mut w = Writer::create(
            path,
            metadata,
            &order.iter().map(|&i| specs[i].clone()).collect::<Vec<_>>(),
        )?;
        for &i in &order {
            w.write_tensor(&f32_bytes(data[i]))?;
        }
        w.finish()?;
        Ok(())
    }

    /// The order tensors are written in, as indices into weights-then-biases.
    fn tensor_order(&self) -> Vec<usize> {
        let n = self.layers.len();
        let mut bias_index = Vec::with_capacity(n);
        let mut k = n;
        for l in &self.layers {
            if l.bias_name.is_some() && l.bias.is_some() {
                bias_index.push(Some(k));
                k += 1;
            } else {
                bias_index.push(None);
            }
        }
        let mut order = Vec::new();
        let mut i = 0;
        while i < n {
            // An LSTM layer's two matrices: both weights, then both biases.
            let pair = self
                .ops
                .iter()
                .any(|op| matches!(op, Op::Lstm { ih, .. } if *ih == i));
            let group: Vec<usize> = if pair { vec![i, i + 1] } else { vec![i] };
            order.extend(&group);
            order.extend(group.iter().filter_map(|&g| bias_index[g]));
            i += group.len();
        }
        order
    }
}

/// Gives the last weight read its bias; an LSTM lists both weights (ih, hh) before both
/// biases, so its `bias_ih` goes to the one before.
fn attach_bias(layers: &mut [Dense], spec: &TensorSpec, values: Vec<f32>) {
    let k = layers.len();
    let target = if spec.name.contains(".bias_ih_l") {
        &mut layers[k - 2]
    } else {
        &mut layers[k - 1]
    };
    target.bias_name = Some(spec.name.clone());
    target.bias = Some(values);
}

/// A layer's bias read from the checkpoint: a float tensor `[rows]`, finite.
fn read_bias(ck: &Checkpoint, name: &str, b: &str, rows: usize) -> Result<Vec<f32>> {
    let info = ck.info(b).expect("checked by the caller");
    if info.shape != [rows] || !info.is_float() {
        return Err(Error::Layer {
            layer: name.to_string(),
            reason: format!(
                "its bias \"{b}\" is {:?} {:?}, expected a float tensor of shape [{rows}]",
                info.dtype, info.shape
            ),
        });
    }
    let v = ck.read_f32(b)?;
    eie_checkpoint::check_finite(b, &v, 1)?;
    Ok(v)
}

/// What a mismatched shape looks like, when that says something.
fn shape_hint(name: &str, shape: &[usize]) -> String {
    let lstm =
        name.contains(".weight_ih_l") || name.contains(".weight_hh_l") || name.contains(".bias_");
    match shape.len() {
        _ if lstm && shape.first().is_some_and(|r| r % 4 != 0) => format!(
            ": {} rows are not an LSTM's four gate blocks (i, f, g, o) of equal height",
            shape[0]
        ),
        2 if name.ends_with(".weight") && !lstm => " (2-D: a Linear's [out, in])".into(),
        4 => " (4-D: a convolution's [out, in, kh, kw])".into(),
        _ => String::new(),
    }
}

/// A layer's values, open to change.
pub struct LayerValues<'a> {
    /// The weight tensor's name.
    pub name: &'a str,
    /// Rows of W.
    pub outputs: usize,
    /// Columns of W.
    pub inputs: usize,
    /// W, `[out, in]` row-major.
    pub weight: &'a mut Vec<f32>,
    /// b.
    pub bias: Option<&'a mut Vec<f32>>,
}
