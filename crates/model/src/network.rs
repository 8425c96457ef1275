//! The network as plain data: its matrices in PyTorch's layout (a Linear's `[out, in]`, a
//! convolution's `[out, in, kh, kw]` read as `[out, in*kh*kw]`, an LSTM layer's
//! `[weight_ih | weight_hh]` with bias `bias_ih + bias_hh`, an embedding table `[V, E]`
//! transposed to `[E, V]`: the matrix EIE runs), and the
//! forward pass as a list of operations over them. Building one checks every shape; burn only
//! sees it inside training and evaluation.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use eie_checkpoint::{Checkpoint, Dtype, Writer, f32_bytes};
use eie_dataset::{Dataset, Form};
use eie_rng::Rng;

use crate::arch::{Arch, ArchOp, LayerKind, MAX_WEIGHTS, Shape};
use crate::error::{Error, Result};

/// The PyTorch tensors an LSTM layer's packed matrix is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LstmTensors {
    /// `NAME.weight_ih_lK`, `[4H, inputs]`: the matrix's first `inputs` columns.
    pub weight_ih: String,
    /// `NAME.weight_hh_lK`, `[4H, H]`: its last `H` columns.
    pub weight_hh: String,
    /// `NAME.bias_ih_lK`: the bias is its sum with `bias_hh`.
    pub bias_ih: String,
    /// `NAME.bias_hh_lK` (written as zeros: the sum lives in `bias_ih`).
    pub bias_hh: String,
    /// Columns from the layer's input (the rest are `h_{t-1}`).
    pub inputs: usize,
}

/// One matrix of the network: `y = W x + b`.
#[derive(Debug, Clone, PartialEq)]
pub struct Dense {
    /// Its name: the weight tensor's (`fc1.weight`, `conv1.weight`), or for an LSTM layer
    /// `NAME.packed_lK`.
    pub name: String,
    /// The bias tensor's name, when the layer has a bias.
    pub bias_name: Option<String>,
    /// Rows of W.
    pub outputs: usize,
    /// Columns of W.
    pub inputs: usize,
    /// The tensor's shape as stored: `[outputs, inputs]`, or a convolution's
    /// `[outputs, channels, kh, kw]` (an LSTM's packed matrix: `[4H, inputs + H]`; an
    /// embedding's table: `[inputs, outputs]`).
    pub shape: Vec<usize>,
    /// For an LSTM layer, the tensors it is packed from.
    pub lstm: Option<LstmTensors>,
    /// An embedding: the tensor is the table `[inputs, outputs]` (`nn.Embedding`'s
    /// `[V, E]`), the matrix its transpose.
    pub table: bool,
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
    /// A token model's embedding: the column of its matrix (`[E, V]`) that the token's
    /// one-hot vector selects.
    Embed {
        /// Index into [`Network::layers`].
        layer: usize,
    },
    /// One LSTM layer over the whole sequence (a token model's: one step, its state carried
    /// to the next token): gates `W [x_t; h_{t-1}] + b` (the packed matrix) in PyTorch's
    /// order i, f, g, o; outputs every `h_t`.
    Lstm {
        /// Index of the packed matrix in [`Network::layers`].
        layer: usize,
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
    let leading = if l.table { l.inputs } else { l.outputs };
    if l.shape.iter().product::<usize>() != l.weight.len() || l.shape.first() != Some(&leading) {
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

    /// The network `arch` describes, with `layers` its matrices in order ([`matrix_specs`]).
    pub fn from_parts(arch: &Arch, layers: Vec<Dense>) -> Result<Self> {
        let specs = matrix_specs(arch)?;
        if specs.len() != layers.len() {
            return Err(Error::Arch {
                arch: arch.to_string(),
                reason: format!(
                    "{} matrices given for the {} it describes",
                    layers.len(),
                    specs.len()
                ),
            });
        }
        for (spec, l) in specs.iter().zip(&layers) {
            check_dense(l)?;
            if l.shape != spec.shape || l.name != spec.name {
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
                ArchOp::ImpliedRelu => ops.push(Op::Relu),
                ArchOp::ImpliedFlatten => ops.push(Op::Flatten),
                ArchOp::LastStep => ops.push(Op::LastStep),
                ArchOp::Layer(kind) => match kind {
                    LayerKind::Linear { .. } => {
                        ops.push(Op::Linear { layer: next });
                        next += 1;
                    }
                    LayerKind::Conv {
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
                    LayerKind::Lstm { hidden, layers: n } => {
                        for k in 0..n {
                            ops.push(Op::Lstm {
                                layer: next,
                                hidden,
                            });
                            next += 1;
                            if k + 1 < n {
                                shapes.push(match step.output {
                                    Shape::Sequence { steps, .. } => Shape::Sequence {
                                        steps,
                                        features: hidden,
                                    },
                                    // A token model's step.
                                    _ => Shape::Vector(hidden),
                                });
                            }
                        }
                    }
                    LayerKind::Embed { .. } => {
                        ops.push(Op::Embed { layer: next });
                        next += 1;
                    }
                    LayerKind::MaxPool { kernel, stride } => {
                        ops.push(Op::MaxPool { kernel, stride })
                    }
                    LayerKind::AvgPool { kernel, stride } => {
                        ops.push(Op::AvgPool { kernel, stride })
                    }
                    LayerKind::Relu => ops.push(Op::Relu),
                    LayerKind::Flatten => ops.push(Op::Flatten),
                },
            }
            shapes.push(step.output);
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
                lstm: None,
                table: false,
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
        let present = check_against(ck, arch)?;
        let mut read = HashMap::new();
        for spec in present {
            let values = ck.read_f32(&spec.name)?;
            // Row and column of the tensor's matrix (a kernel's row is its output channel).
            let cols = spec.shape[1..].iter().product::<usize>().max(1);
            eie_checkpoint::check_finite(&spec.name, &values, cols)?;
            read.insert(spec.name, values);
        }
        Self::from_parts(arch, assemble(arch, &mut read)?)
    }

    /// A freshly initialised network as `arch` describes, PyTorch's default initialisation
    /// (every Linear and convolution weight and bias uniform in `[-1/sqrt(fan_in),
    /// 1/sqrt(fan_in)]`, every LSTM tensor in `[-1/sqrt(H), 1/sqrt(H)]`, an embedding
    /// standard normal), tensors drawn in [`Arch::tensors`] order from eie-rng with `seed`.
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
        let mut drawn = HashMap::new();
        for spec in &specs {
            let fan_in = match arch.layers[spec.layer].kind {
                LayerKind::Lstm { hidden, .. } => hidden,
                // A bias's bound is its weight's.
                _ if spec.bias => specs
                    .iter()
                    .find(|w| w.layer == spec.layer && !w.bias)
                    .map_or(1, |w| w.shape[1..].iter().product()),
                _ => spec.shape[1..].iter().product(),
            };
            let bound = 1.0 / (fan_in as f64).sqrt();
            let n: usize = spec.shape.iter().product();
            let values: Vec<f32> = match arch.layers[spec.layer].kind {
                LayerKind::Embed { .. } => (0..n).map(|_| rng.normal() as f32).collect(),
                _ => (0..n)
                    .map(|_| ((2.0 * rng.uniform() - 1.0) * bound) as f32)
                    .collect(),
            };
            drawn.insert(spec.name.clone(), values);
        }
        Self::from_parts(arch, assemble(arch, &mut drawn)?)
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

    /// A token model's vocabulary (`None`: not a token model, [`Arch::vocab`]).
    pub fn vocab(&self) -> Option<usize> {
        self.arch.as_ref().and_then(Arch::vocab)
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
        // The description's first layer when there is one (`lstm (lstm128)`), else the
        // first weight.
        let first = match &self.arch {
            Some(a) => a.layers[0].label(),
            None => self.layers[0].name.clone(),
        };
        if let Some(v) = self.vocab() {
            return Err(Error::Arch {
                arch: self.describe(),
                reason: format!(
                    "a token model (tok{v}) reads text (--dataset text:FILE), not {}",
                    data.name()
                ),
            });
        }
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

    /// Writes the network as an F32 safetensors file in PyTorch's layout (every weight in
    /// its stored shape, every bias `[out]`), with `metadata`. Writes `path` directly:
    /// callers that must not leave a partial file write to a temporary path and rename.
    pub fn write_safetensors(
        &self,
        path: &Path,
        metadata: &BTreeMap<String, String>,
    ) -> Result<()> {
        let mut specs = Vec::new();
        let mut data: Vec<Vec<f32>> = Vec::new();
        for l in &self.layers {
            match &l.lstm {
                None if l.table => {
                    specs.push((l.name.clone(), Dtype::F32, l.shape.clone()));
                    data.push(eie_checkpoint::transpose(&l.weight, l.outputs, l.inputs));
                }
                None => {
                    specs.push((l.name.clone(), Dtype::F32, l.shape.clone()));
                    data.push(l.weight.clone());
                    if let (Some(b), Some(v)) = (&l.bias_name, &l.bias) {
                        specs.push((b.clone(), Dtype::F32, vec![l.outputs]));
                        data.push(v.clone());
                    }
                }
                Some(t) => {
                    // PyTorch's order: weight_ih, weight_hh, bias_ih, bias_hh.
                    let (ih, hh) = split_lstm(l, t.inputs);
                    let hidden = l.inputs - t.inputs;
                    specs.push((t.weight_ih.clone(), Dtype::F32, vec![l.outputs, t.inputs]));
                    data.push(ih);
                    specs.push((t.weight_hh.clone(), Dtype::F32, vec![l.outputs, hidden]));
                    data.push(hh);
                    if let Some(b) = &l.bias {
                        specs.push((t.bias_ih.clone(), Dtype::F32, vec![l.outputs]));
                        data.push(b.clone());
                        specs.push((t.bias_hh.clone(), Dtype::F32, vec![l.outputs]));
                        data.push(vec![0.0; l.outputs]);
                    }
                }
            }
        }
        let mut w = Writer::create(path, metadata, &specs)?;
        for d in &data {
            w.write_tensor(&f32_bytes(d))?;
        }
        w.finish()?;
        Ok(())
    }
}

/// Checks checkpoint `ck`'s header against `arch` (nothing is read): every weight there with
/// the described shape, float; a bias optional but of the described shape; no other tensor.
/// Returns the tensors present, in the description's order. Every mismatch names the
/// description's layer and the tensor.
pub fn check_against(ck: &Checkpoint, arch: &Arch) -> Result<Vec<crate::arch::TensorSpec>> {
    let specs = arch.tensors()?;
    let mut present = Vec::new();
    for spec in specs {
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
        present.push(spec);
    }
    let unused: Vec<String> = ck
        .tensors()
        .into_iter()
        .map(|t| t.name)
        .filter(|n| !present.iter().any(|p| &p.name == n))
        .collect();
    if !unused.is_empty() {
        return Err(Error::Unused {
            arch: arch.to_string(),
            tensors: unused.join(", "),
        });
    }
    Ok(present)
}

/// An LSTM's packed matrix split back into `weight_ih` (its first `inputs` columns) and
/// `weight_hh`.
pub fn split_lstm(l: &Dense, inputs: usize) -> (Vec<f32>, Vec<f32>) {
    let hidden = l.inputs - inputs;
    let mut ih = Vec::with_capacity(l.outputs * inputs);
    let mut hh = Vec::with_capacity(l.outputs * hidden);
    for row in l.weight.chunks(l.inputs) {
        ih.extend_from_slice(&row[..inputs]);
        hh.extend_from_slice(&row[inputs..]);
    }
    (ih, hh)
}

/// A matrix a description asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatrixSpec {
    /// The description's layer.
    pub layer: usize,
    /// The matrix's name ([`Dense::name`]).
    pub name: String,
    /// Its shape ([`Dense::shape`]).
    pub shape: Vec<usize>,
    /// An embedding: `shape` is the table's, `[inputs, rows]` ([`Dense::table`]).
    pub table: bool,
}

impl MatrixSpec {
    /// The matrix's rows.
    pub fn rows(&self) -> usize {
        if self.table {
            self.shape[1]
        } else {
            self.shape[0]
        }
    }

    /// The matrix's columns (a convolution's `in * kh * kw`).
    pub fn cols(&self) -> usize {
        if self.table {
            self.shape[0]
        } else {
            self.shape[1..].iter().product()
        }
    }
}

/// The matrices a description means, in order: one per Linear and convolution (its weight
/// tensor), one per LSTM layer (`NAME.packed_lK`, `[4H, inputs + H]`).
pub fn matrix_specs(arch: &Arch) -> Result<Vec<MatrixSpec>> {
    let mut out = Vec::new();
    let tensors = arch.tensors()?;
    for t in tensors.iter().filter(|t| !t.bias) {
        let layer = &arch.layers[t.layer];
        match layer.kind {
            LayerKind::Lstm { hidden, .. } => {
                if let Some(k) = t.name.strip_prefix(&format!("{}.weight_ih_l", layer.name)) {
                    out.push(MatrixSpec {
                        layer: t.layer,
                        name: format!("{}.packed_l{k}", layer.name),
                        shape: vec![t.shape[0], t.shape[1] + hidden],
                        table: false,
                    });
                }
            }
            _ => out.push(MatrixSpec {
                layer: t.layer,
                name: t.name.clone(),
                shape: t.shape.clone(),
                table: matches!(layer.kind, LayerKind::Embed { .. }),
            }),
        }
    }
    Ok(out)
}

/// The matrices of `arch` from its PyTorch tensors (`tensors`, by name; weights present,
/// biases optional): an LSTM layer's two weights side by side, its biases summed (both or
/// neither).
fn assemble(arch: &Arch, tensors: &mut HashMap<String, Vec<f32>>) -> Result<Vec<Dense>> {
    let mut layers = Vec::new();
    for spec in matrix_specs(arch)? {
        let layer = &arch.layers[spec.layer];
        let (rows, inputs) = (spec.rows(), spec.cols());
        match layer.kind {
            LayerKind::Lstm { hidden, .. } => {
                let k = spec
                    .name
                    .rsplit_once("_l")
                    .map(|(_, k)| k)
                    .expect("named NAME.packed_lK");
                let t = LstmTensors {
                    weight_ih: format!("{}.weight_ih_l{k}", layer.name),
                    weight_hh: format!("{}.weight_hh_l{k}", layer.name),
                    bias_ih: format!("{}.bias_ih_l{k}", layer.name),
                    bias_hh: format!("{}.bias_hh_l{k}", layer.name),
                    inputs: inputs - hidden,
                };
                let ih = tensors.remove(&t.weight_ih).expect("read or drawn");
                let hh = tensors.remove(&t.weight_hh).expect("read or drawn");
                let mut weight = Vec::with_capacity(rows * inputs);
                for r in 0..rows {
                    weight.extend_from_slice(&ih[r * t.inputs..(r + 1) * t.inputs]);
                    weight.extend_from_slice(&hh[r * hidden..(r + 1) * hidden]);
                }
                let bias = match (tensors.remove(&t.bias_ih), tensors.remove(&t.bias_hh)) {
                    (Some(a), Some(b)) => Some(a.iter().zip(&b).map(|(x, y)| x + y).collect()),
                    (None, None) => None,
                    _ => {
                        return Err(Error::Layer {
                            layer: t.weight_ih.clone(),
                            reason: format!(
                                "one of \"{}\" and \"{}\" is missing: give both LSTM biases or neither",
                                t.bias_ih, t.bias_hh
                            ),
                        });
                    }
                };
                layers.push(Dense {
                    name: spec.name.clone(),
                    bias_name: bias
                        .as_ref()
                        .map(|_| format!("{}.packed_bias_l{k}", layer.name)),
                    outputs: rows,
                    inputs,
                    shape: spec.shape.clone(),
                    lstm: Some(t),
                    table: false,
                    weight,
                    bias,
                });
            }
            LayerKind::Embed { .. } => {
                let table = tensors.remove(&spec.name).expect("read or drawn");
                layers.push(Dense {
                    name: spec.name.clone(),
                    bias_name: None,
                    outputs: rows,
                    inputs,
                    shape: spec.shape.clone(),
                    lstm: None,
                    table: true,
                    weight: eie_checkpoint::transpose(&table, inputs, rows),
                    bias: None,
                });
            }
            _ => {
                let bias_name = eie_checkpoint::bias_name(&spec.name).expect("NAME.weight");
                let bias = tensors.remove(&bias_name);
                layers.push(Dense {
                    name: spec.name.clone(),
                    bias_name: bias.as_ref().map(|_| bias_name),
                    outputs: rows,
                    inputs,
                    shape: spec.shape.clone(),
                    lstm: None,
                    table: false,
                    weight: tensors.remove(&spec.name).expect("read or drawn"),
                    bias,
                });
            }
        }
    }
    Ok(layers)
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
