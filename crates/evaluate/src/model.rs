//! The network as a burn module (the only place burn's types appear). burn's `Linear`
//! stores W as `[in, out]`, the transpose of PyTorch's layout, so weights are transposed on
//! the way in and out.

use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::tensor::activation::relu;
use burn::tensor::{Device, Int, Tensor, TensorData};
use eie_dataset::Dataset;

use crate::error::{Error, Result};
use crate::network::Network;

/// The MLP: ReLU after every layer but the last.
#[derive(Module, Debug)]
pub(crate) struct Mlp {
    pub layers: Vec<Linear>,
}

/// `rows x cols` row-major to `cols x rows` row-major.
pub(crate) fn transpose<T: Copy + Default>(m: &[T], rows: usize, cols: usize) -> Vec<T> {
    let mut t = vec![T::default(); m.len()];
    for r in 0..rows {
        for c in 0..cols {
            t[c * rows + r] = m[r * cols + c];
        }
    }
    t
}

impl Mlp {
    /// The module holding `net`'s values on `device` (an autodiff device to train).
    pub fn new(net: &Network, device: &Device) -> Self {
        let layers = net
            .layers()
            .iter()
            .map(|l| {
                let w = transpose(&l.weight, l.outputs, l.inputs);
                let weight =
                    Tensor::<2>::from_data(TensorData::new(w, [l.inputs, l.outputs]), device);
                let bias = l.bias.as_ref().map(|b| {
                    Param::from_tensor(Tensor::<1>::from_data(
                        TensorData::new(b.clone(), [l.outputs]),
                        device,
                    ))
                });
                Linear {
                    weight: Param::from_tensor(weight),
                    bias,
                }
            })
            .collect();
        Self { layers }
    }

    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let last = self.layers.len() - 1;
        let mut h = x;
        for (i, l) in self.layers.iter().enumerate() {
            h = l.forward(h);
            if i < last {
                h = relu(h);
            }
        }
        h
    }

    /// Copies the module's values back into `net` (PyTorch layout).
    pub fn store(&self, net: &mut Network) -> Result<()> {
        for (m, l) in self.layers.iter().zip(net.layers_mut()) {
            let w = to_vec(m.weight.val())?;
            *l.weight = transpose(&w, l.inputs, l.outputs);
            if let (Some(b), Some(mb)) = (l.bias, &m.bias) {
                *b = to_vec(mb.val())?;
            }
        }
        Ok(())
    }
}

/// A tensor's values as f32.
pub(crate) fn to_vec<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>> {
    t.into_data()
        .try_into_vec_as::<f32>()
        .map_err(|e| Error::Tensor {
            reason: format!("{e:?}"),
        })
}

/// Samples `idx` of `data` as an input batch and its targets.
pub(crate) fn batch(data: &Dataset, idx: &[usize], device: &Device) -> (Tensor<2>, Tensor<1, Int>) {
    let w = data.width();
    let mut x = Vec::with_capacity(idx.len() * w);
    let mut y = Vec::with_capacity(idx.len());
    for &i in idx {
        x.extend_from_slice(data.input(i));
        y.push(data.labels()[i] as i64);
    }
    (
        Tensor::<2>::from_data(TensorData::new(x, [idx.len(), w]), device),
        Tensor::<1, Int>::from_data(TensorData::new(y, [idx.len()]), device),
    )
}

/// The predicted class (first largest logit) of each row.
pub(crate) fn argmax_rows(logits: Tensor<2>) -> Result<Vec<usize>> {
    let [rows, cols] = logits.dims();
    let v = to_vec(logits)?;
    Ok((0..rows)
        .map(|r| first_max(&v[r * cols..(r + 1) * cols]))
        .collect())
}

/// Index of the first largest value.
pub(crate) fn first_max<T: PartialOrd + Copy>(v: &[T]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}
