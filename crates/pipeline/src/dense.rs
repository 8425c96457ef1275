//! The dense checkpoints compress writes on request: `pruned.safetensors` (every layer with
//! its pruned weights set to zero) and `quantized.safetensors` (every surviving weight
//! replaced by its shared value), each holding every tensor of the input under its name,
//! shape and dtype. Streamed: each layer is written as it is compressed (out of order where
//! the model's order differs from the file's), the other tensors are copied at the end.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use eie_checkpoint::{Checkpoint, Dtype, Writer, encode};

use crate::error::Result;
use crate::output::{PRUNED_FILE, QUANTIZED_FILE};
use crate::plan::{LayerPlan, Plan};
use crate::share::Shared;

pub(crate) struct DenseCheckpoints {
    pruned: Writer,
    quantized: Writer,
    /// Tensors the layers write (weights and folded biases).
    layers: HashSet<String>,
    /// Every tensor, in the files' order.
    order: Vec<String>,
}

impl DenseCheckpoints {
    /// Creates both files in `dir`, in the input's tensor order with each folded bias moved
    /// right after its weight.
    pub(crate) fn create(
        ck: &Checkpoint,
        plan: &Plan,
        dir: &Path,
        tool_version: &str,
    ) -> Result<Self> {
        let by_weight: HashMap<&str, &LayerPlan> =
            plan.layers.iter().map(|l| (l.name.as_str(), l)).collect();
        let biases: HashSet<&str> = plan
            .layers
            .iter()
            .filter_map(|l| l.bias.as_ref().map(|b| b.name.as_str()))
            .collect();
        let mut order = Vec::new();
        for t in ck.tensors() {
            if biases.contains(t.name.as_str()) {
                continue;
            }
            order.push(t.name.clone());
            if let Some(b) = by_weight.get(t.name.as_str()).and_then(|l| l.bias.as_ref()) {
                order.push(b.name.clone());
            }
        }
        let specs: Vec<(String, Dtype, Vec<usize>)> = order
            .iter()
            .map(|n| {
                let i = ck.info(n).expect("listed");
                (n.clone(), i.dtype, i.shape)
            })
            .collect();
        // The source's metadata, marked as written by this tool (so `--force` knows the file).
        let mut metadata = ck.metadata();
        metadata.insert("eie-compress".into(), tool_version.into());
        let mut layers: HashSet<String> = by_weight.keys().map(|n| n.to_string()).collect();
        layers.extend(biases.iter().map(|b| b.to_string()));
        Ok(Self {
            pruned: Writer::create(&dir.join(PRUNED_FILE), &metadata, &specs)?,
            quantized: Writer::create(&dir.join(QUANTIZED_FILE), &metadata, &specs)?,
            layers,
            order,
        })
    }

    /// A layer after pruning: its survivors, and its bias (`tuned` after retraining, else
    /// copied from the checkpoint).
    pub(crate) fn pruned(
        &mut self,
        ck: &Checkpoint,
        plan: &LayerPlan,
        positions: &[u64],
        values: &[f32],
        tuned_bias: Option<&[f32]>,
    ) -> Result<()> {
        let len = plan.rows * plan.inputs;
        self.pruned
            .write_sparse_named(&plan.name, plan.dtype, len, positions, |i| values[i])?;
        if let Some(b) = &plan.bias {
            match tuned_bias {
                Some(v) => self
                    .pruned
                    .write_named(&b.name, |sink| sink(&encode(b.dtype, v)))?,
                None => self
                    .pruned
                    .write_named(&b.name, |sink| ck.stream_raw(&b.name, sink))?,
            }
        }
        Ok(())
    }

    /// A layer after weight sharing: every survivor and bias value replaced by its shared
    /// value.
    pub(crate) fn quantized(
        &mut self,
        plan: &LayerPlan,
        positions: &[u64],
        shared: &Shared,
    ) -> Result<()> {
        let len = plan.rows * plan.inputs;
        self.quantized
            .write_sparse_named(&plan.name, plan.dtype, len, positions, |i| {
                shared.value(shared.codes[i])
            })?;
        if let Some(b) = &plan.bias {
            let v: Vec<f32> = shared.bias_codes.iter().map(|&c| shared.value(c)).collect();
            self.quantized
                .write_named(&b.name, |sink| sink(&encode(b.dtype, &v)))?;
        }
        Ok(())
    }

    /// Copies every other tensor into both files (`overrides`: values retraining changed,
    /// biases not folded into their layer) and closes them.
    pub(crate) fn finish(
        mut self,
        ck: &Checkpoint,
        overrides: &HashMap<String, Vec<f32>>,
    ) -> Result<()> {
        for name in &self.order {
            if self.layers.contains(name) {
                continue;
            }
            for w in [&mut self.pruned, &mut self.quantized] {
                match overrides.get(name) {
                    Some(v) => {
                        let dtype = ck.info(name).expect("listed").dtype;
                        w.write_named(name, |sink| sink(&encode(dtype, v)))?
                    }
                    None => w.write_named(name, |sink| ck.stream_raw(name, sink))?,
                }
            }
        }
        self.pruned.finish()?;
        self.quantized.finish()?;
        Ok(())
    }
}
