//! The tensors a description asks a checkpoint for, in PyTorch's names and layouts.

use super::{Arch, ArchOp, LayerKind, Shape, TensorSpec};
use crate::error::Result;

impl Arch {
    /// Every tensor the description asks for, in order (each layer's weight, then its bias).
    pub fn tensors(&self) -> Result<Vec<TensorSpec>> {
        let steps = self.steps()?;
        let mut out = Vec::new();
        for s in &steps {
            let ArchOp::Layer(kind) = s.op else { continue };
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
                LayerKind::Linear { outputs } => {
                    push("weight", vec![outputs, s.input.size()], false);
                    push("bias", vec![outputs], true);
                }
                LayerKind::Conv {
                    outputs, kernel, ..
                } => {
                    let Shape::Image { channels, .. } = s.input else {
                        unreachable!("checked by steps")
                    };
                    push("weight", vec![outputs, channels, kernel, kernel], false);
                    push("bias", vec![outputs], true);
                }
                LayerKind::Embed { dims } => {
                    push("weight", vec![s.input.size(), dims], false);
                }
                LayerKind::Lstm { hidden, layers } => {
                    let features = match s.input {
                        Shape::Sequence { features, .. } => features,
                        // A token model's LSTM reads one vector a token.
                        Shape::Vector(features) => features,
                        Shape::Image { .. } => unreachable!("checked by steps"),
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
}
