//! The network as plain data: a chain of linear layers in PyTorch's `[out, in]` layout, ReLU
//! between them, logits out. Building one checks that the shapes chain; burn only sees it
//! inside training and evaluation.

use std::collections::BTreeMap;
use std::path::Path;

use eie_checkpoint::{Checkpoint, Dtype, Writer, f32_bytes};
use eie_dataset::Dataset;
use eie_rng::Rng;

use crate::error::{Error, Result};

/// The most weights [`Network::init`] makes (4 GiB of f32).
pub const MAX_WEIGHTS: usize = 1 << 30;

/// One linear layer: `y = W x + b`.
#[derive(Debug, Clone, PartialEq)]
pub struct Dense {
    /// The weight tensor's name (`fc1.weight`).
    pub name: String,
    /// The bias tensor's name, when the layer has a bias.
    pub bias_name: Option<String>,
    /// Rows of W.
    pub outputs: usize,
    /// Columns of W.
    pub inputs: usize,
    /// W, `outputs x inputs`, row-major (PyTorch's layout).
    pub weight: Vec<f32>,
    /// b, `outputs` values.
    pub bias: Option<Vec<f32>>,
}

/// A multilayer perceptron: layers in order, ReLU after every layer but the last.
#[derive(Debug, Clone, PartialEq)]
pub struct Network {
    layers: Vec<Dense>,
}

impl Network {
    /// A network of `layers`, which must chain (each takes as many inputs as the previous
    /// has outputs) and have consistent sizes.
    pub fn new(layers: Vec<Dense>) -> Result<Self> {
        if layers.is_empty() {
            return Err(Error::NoLayers);
        }
        for l in &layers {
            let bad = |reason: String| {
                Err(Error::Layer {
                    layer: l.name.clone(),
                    reason,
                })
            };
            if l.outputs.checked_mul(l.inputs) != Some(l.weight.len())
                || l.outputs == 0
                || l.inputs == 0
            {
                return bad(format!(
                    "{} weights for {} x {}",
                    l.weight.len(),
                    l.outputs,
                    l.inputs
                ));
            }
            if let Some(b) = &l.bias
                && b.len() != l.outputs
            {
                return bad(format!("{} biases for {} outputs", b.len(), l.outputs));
            }
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
        Ok(Self { layers })
    }

    /// The network made of the checkpoint's 2-D tensors `names`, in that order, each with
    /// its `NAME.bias` when the checkpoint has one.
    pub fn from_checkpoint(ck: &Checkpoint, names: &[String]) -> Result<Self> {
        let mut layers = Vec::with_capacity(names.len());
        for name in names {
            let m = ck.read_matrix(name)?;
            eie_checkpoint::check_finite(name, &m.data, m.cols)?;
            let bias_name = eie_checkpoint::bias_name(name).filter(|b| ck.info(b).is_some());
            let bias = match &bias_name {
                Some(b) => {
                    let info = ck.info(b).expect("checked");
                    if info.shape != [m.rows] || !info.is_float() {
                        return Err(Error::Layer {
                            layer: name.clone(),
                            reason: format!(
                                "its bias \"{b}\" is {:?} {:?}, expected a float tensor of shape [{}]",
                                info.dtype, info.shape, m.rows
                            ),
                        });
                    }
                    let v = ck.read_f32(b)?;
                    eie_checkpoint::check_finite(b, &v, 1)?;
                    Some(v)
                }
                None => None,
            };
            layers.push(Dense {
                name: name.clone(),
                bias_name,
                outputs: m.rows,
                inputs: m.cols,
                weight: m.data,
                bias,
            });
        }
        Self::new(layers)
    }

    /// A freshly initialised network of the given widths (`[784, 300, 100, 10]`), layers
    /// `fc1`, `fc2`, ... with biases, weights and biases uniform in
    /// `[-1/sqrt(inputs), 1/sqrt(inputs)]` (PyTorch's default for `nn.Linear`), drawn from
    /// eie-rng with `seed`.
    pub fn init(widths: &[usize], seed: u64) -> Result<Self> {
        if widths.len() < 2 || widths.contains(&0) {
            return Err(Error::Arch {
                arch: format_arch(widths),
                reason: "expected at least two positive widths (inputs and outputs)".into(),
            });
        }
        let weights = widths
            .windows(2)
            .try_fold(0usize, |n, w| n.checked_add(w[0].checked_mul(w[1])?));
        if weights.is_none_or(|n| n > MAX_WEIGHTS) {
            return Err(Error::Arch {
                arch: format_arch(widths),
                reason: format!("more than {MAX_WEIGHTS} weights"),
            });
        }
        let mut rng = Rng::new(seed);
        let mut layers = Vec::new();
        for (i, w) in widths.windows(2).enumerate() {
            let (inputs, outputs) = (w[0], w[1]);
            let bound = 1.0 / (inputs as f64).sqrt();
            let mut draw = |n: usize| -> Vec<f32> {
                (0..n)
                    .map(|_| ((2.0 * rng.uniform() - 1.0) * bound) as f32)
                    .collect()
            };
            let weight = draw(outputs * inputs);
            let bias = draw(outputs);
            layers.push(Dense {
                name: format!("fc{}.weight", i + 1),
                bias_name: Some(format!("fc{}.bias", i + 1)),
                outputs,
                inputs,
                weight,
                bias: Some(bias),
            });
        }
        Self::new(layers)
    }

    /// The layers, in order.
    pub fn layers(&self) -> &[Dense] {
        &self.layers
    }

    /// The layers, to change their values (not their shapes).
    pub fn layers_mut(&mut self) -> impl Iterator<Item = LayerValues<'_>> {
        self.layers.iter_mut().map(|l| LayerValues {
            name: &l.name,
            outputs: l.outputs,
            inputs: l.inputs,
            weight: &mut l.weight,
            bias: l.bias.as_mut(),
        })
    }

    /// Inputs of the first layer.
    pub fn inputs(&self) -> usize {
        self.layers[0].inputs
    }

    /// Outputs of the last layer (classes).
    pub fn outputs(&self) -> usize {
        self.layers.last().expect("non-empty").outputs
    }

    /// Widths: inputs, then every layer's outputs.
    pub fn widths(&self) -> Vec<usize> {
        std::iter::once(self.inputs())
            .chain(self.layers.iter().map(|l| l.outputs))
            .collect()
    }

    /// Checks that `data` fits: as many inputs per sample as the first layer takes, every
    /// label one of the last layer's outputs.
    pub fn check_dataset(&self, data: &Dataset) -> Result<()> {
        if data.width() != self.inputs() {
            return Err(Error::Width {
                dataset: data.name().to_string(),
                width: data.width(),
                layer: self.layers[0].name.clone(),
                inputs: self.inputs(),
            });
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

    /// The float forward pass on the host, f64 accumulation: the reference the burn model
    /// is tested against.
    pub fn forward(&self, x: &[f32]) -> Vec<f32> {
        let mut a: Vec<f32> = x.to_vec();
        for (k, l) in self.layers.iter().enumerate() {
            let mut y = vec![0f32; l.outputs];
            for (i, yi) in y.iter_mut().enumerate() {
                let row = &l.weight[i * l.inputs..(i + 1) * l.inputs];
                let mut s: f64 = l.bias.as_ref().map_or(0.0, |b| b[i] as f64);
                for (w, v) in row.iter().zip(&a) {
                    s += *w as f64 * *v as f64;
                }
                *yi = if k + 1 < self.layers.len() {
                    s.max(0.0) as f32
                } else {
                    s as f32
                };
            }
            a = y;
        }
        a
    }

    /// Writes the network as an F32 safetensors file in PyTorch's layout (`NAME.weight`
    /// `[out, in]`, `NAME.bias` `[out]`), with `metadata`. Writes `path` directly: callers
    /// that must not leave a partial file write to a temporary path and rename.
    pub fn write_safetensors(
        &self,
        path: &Path,
        metadata: &BTreeMap<String, String>,
    ) -> Result<()> {
        let mut specs = Vec::new();
        for l in &self.layers {
            specs.push((l.name.clone(), Dtype::F32, vec![l.outputs, l.inputs]));
            if let (Some(b), Some(_)) = (&l.bias_name, &l.bias) {
                specs.push((b.clone(), Dtype::F32, vec![l.outputs]));
            }
        }
        let mut w = Writer::create(path, metadata, &specs)?;
        for l in &self.layers {
            w.write_tensor(&f32_bytes(&l.weight))?;
            if let (Some(_), Some(b)) = (&l.bias_name, &l.bias) {
                w.write_tensor(&f32_bytes(b))?;
            }
        }
        w.finish()?;
        Ok(())
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

/// `784-300-100-10` from widths.
pub fn format_arch(widths: &[usize]) -> String {
    widths
        .iter()
        .map(|w| w.to_string())
        .collect::<Vec<_>>()
        .join("-")
}

/// Most layers `train` builds.
pub const MAX_LAYERS: usize = 64;
/// Widths from `784-300-100-10`: at most [`MAX_LAYERS`] layers of at most
/// [`eie_format::MAX_DIM`] units ([`Network::init`] bounds the weights).
pub fn parse_arch(arch: &str) -> Result<Vec<usize>> {
    let bad = |reason: &str| Error::Arch {
        arch: arch.to_string(),
        reason: reason.to_string(),
    };
    let widths = arch
        .split('-')
        .map(|w| w.trim().parse::<usize>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| bad("expected widths joined by '-', e.g. 784-300-100-10"))?;
    if widths.len() < 2 || widths.contains(&0) {
        return Err(bad(
            "expected at least two positive widths (inputs and outputs)",
        ));
    }
    if widths.len() > MAX_LAYERS + 1 {
        return Err(bad("at most 64 layers"));
    }
    if widths.iter().any(|&w| w > eie_format::MAX_DIM) {
        return Err(bad("at most 16777216 units in a layer"));
    }
    Ok(widths)
}
