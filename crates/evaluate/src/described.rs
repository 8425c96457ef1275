//! Compressing a network given by a model description (a CNN, an LSTM): every matrix of it
//! planned as a layer (a convolution's `[out, in*kh*kw]`, an LSTM layer's packed
//! `[W_ih | W_hh]`), pruned and shared on the network in memory, and where each one runs.

use eie_checkpoint::Header;
use eie_model::{Network, Op};
use eie_pipeline::provenance::Described;
use eie_pipeline::{BiasPlan, LayerSettings, MatrixPlan};

use crate::error::{Error, Result};

/// Deep Compression's codebook for convolutions: 8 bits (256 shared values).
pub const CONV_CODE_BITS: u8 = 8;

/// The matrices of `net` as compress plans them, in order, each with its bias and its base
/// settings (a convolution's codebook of [`CONV_CODE_BITS`]); dtypes from `header`.
pub fn matrix_plans(header: &Header, net: &Network) -> Result<Vec<MatrixPlan>> {
    let dtype_of = |name: &str| {
        header
            .info(name)
            .map(|i| i.dtype)
            .ok_or_else(|| Error::Layer {
                layer: name.to_string(),
                reason: "is not in the checkpoint".into(),
            })
    };
    let mut out = Vec::with_capacity(net.layers().len());
    for l in net.layers() {
        let (weight, bias_tensor) = match &l.lstm {
            Some(t) => {
                // The packed matrix is written back in one dtype: its two tensors' own.
                let (ih, hh) = (dtype_of(&t.weight_ih)?, dtype_of(&t.weight_hh)?);
                if ih != hh {
                    return Err(Error::Layer {
                        layer: l.name.clone(),
                        reason: format!(
                            "packs {} ({ih:?}) and {} ({hh:?}): an LSTM's two weights must have one dtype",
                            t.weight_ih, t.weight_hh
                        ),
                    });
                }
                (t.weight_ih.clone(), Some(t.bias_ih.clone()))
            }
            None => (l.name.clone(), l.bias_name.clone()),
        };
        let bias = match (&l.bias, &l.bias_name, bias_tensor) {
            (Some(_), Some(name), Some(t)) => Some(BiasPlan {
                name: name.clone(),
                dtype: dtype_of(&t)?,
            }),
            _ => None,
        };
        let mut base = LayerSettings::default();
        if l.is_conv() {
            base.code_bits = CONV_CODE_BITS;
        }
        // Retraining decides a described layer's values (an LSTM's matrix packs two
        // tensors): the tensor named is the layer itself, an embedding's read transposed.
        out.push(MatrixPlan {
            name: l.name.clone(),
            tensor: l.name.clone(),
            transposed: l.table,
            rows: l.outputs,
            inputs: l.inputs,
            dtype: dtype_of(&weight)?,
            bias,
            base,
        });
    }
    Ok(out)
}

/// The layers of `net` that run on the host: its convolutions (the EIE paper runs the fully
/// connected and LSTM layers), none with `convs_on_eie` (im2col products on EIE).
pub fn host_layers(net: &Network, convs_on_eie: bool) -> Vec<String> {
    if convs_on_eie {
        return Vec::new();
    }
    net.ops()
        .iter()
        .filter_map(|op| match *op {
            Op::Conv { layer, .. } => Some(net.layers()[layer].name.clone()),
            _ => None,
        })
        .collect()
}

/// What a described model's bundle records: its description and its host layers (none
/// with `convs_on_eie`: the convolutions run on EIE as im2col products).
pub fn provenance(net: &Network, convs_on_eie: bool) -> Described {
    Described {
        arch: net.describe(),
        host_layers: host_layers(net, convs_on_eie),
    }
}
