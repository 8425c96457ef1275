//! `unpack`: packed layers back to dense f32 tensors, under their original names, each in
//! the layout its tensor is stored in: a layer read transposed (GPT-2's `Conv1D` `[in, out]`,
//! a token model's embedding table `[V, E]`) is written back transposed.

use std::collections::BTreeMap;
use std::path::PathBuf;

use eie_checkpoint::{Dtype, Writer};
use eie_format::{PackedLayer, hex};
use eie_pipeline::output::{Inputs, OutputKind, check_file, write_file};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::packed::PackedModel;
use crate::report::Schema;

/// What to unpack, and where to.
#[derive(Debug, Clone)]
pub struct Request {
    /// An output folder of `pack` or `compress`, or a `model.eie`.
    pub dir: PathBuf,
    /// The safetensors file to write.
    pub out: PathBuf,
    /// Replace a safetensors file this tool wrote there.
    pub force: bool,
}

/// What was written.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The report's schema.
    pub schema: Schema,
    /// The file.
    pub out: PathBuf,
    /// Tensors written (weights and biases).
    pub tensors: usize,
}

/// One layer's non-zero weights in its own row-major order (the bias column apart), with
/// their float values.
struct Layer {
    rows: usize,
    inputs: usize,
    positions: Vec<u64>,
    values: Vec<f32>,
    bias: Option<Vec<f32>>,
}

fn gather(parts: &[PackedLayer]) -> Result<Layer> {
    let first = &parts[0];
    let (rows, cols) = (first.rows(), first.total_cols());
    let inputs = cols - usize::from(first.bias().is_some());
    if rows
        .checked_mul(inputs)
        .is_none_or(|n| n > isize::MAX as usize / 4)
    {
        return Err(Error::Unfit {
            reason: format!(
                "layer \"{}\": {rows} x {inputs} is too large to write dense",
                first.name()
            ),
        });
    }
    let stored = eie_simulate::LayerView::new(parts).stored()?;
    Ok(Layer {
        rows,
        inputs,
        positions: stored.positions,
        values: stored.values,
        bias: stored.bias,
    })
}

impl Request {
    /// Writes every layer dense, layer by layer (never all in memory at once), all or
    /// nothing.
    pub fn run(&self) -> Result<Report> {
        let model = PackedModel::load(&self.dir)?;
        let mut inputs = Inputs::new();
        model.add_inputs(&mut inputs);
        check_file(&self.out, self.force, OutputKind::Safetensors, &inputs)?;
        let bundle = &model.bundle;
        let layers = bundle.logical_layers();
        let settings = &bundle.meta().settings;
        let transposed: Vec<bool> = layers
            .iter()
            .map(|parts| eie_pipeline::recorded_weights(settings, parts[0].name()).1)
            .collect();
        let mut specs = Vec::new();
        for (parts, &t) in layers.iter().zip(&transposed) {
            let first = &parts[0];
            let inputs = first.total_cols() - usize::from(first.bias().is_some());
            let shape = match t {
                true => vec![inputs, first.rows()],
                false => vec![first.rows(), inputs],
            };
            specs.push((first.name().to_string(), Dtype::F32, shape));
            if let Some(b) = first.bias() {
                specs.push((b.to_string(), Dtype::F32, vec![first.rows()]));
            }
        }
        let meta = bundle.meta();
        let mut metadata = BTreeMap::from([
            ("eie-compress".to_string(), meta.tool_version.clone()),
            ("source".to_string(), meta.source.name.clone()),
        ]);
        if let Some(h) = meta.source.sha256 {
            metadata.insert("source_sha256".into(), hex(&h));
        }
        write_file(
            &self.out,
            self.force,
            OutputKind::Safetensors,
            &inputs,
            |tmp| -> Result<()> {
                let mut w = Writer::create(tmp, &metadata, &specs)?;
                for (parts, &t) in layers.iter().zip(&transposed) {
                    let mut l = gather(parts)?;
                    if t {
                        // Row r, column c of the layer is element c * rows + r stored.
                        let mut moved: Vec<(u64, f32)> = l
                            .positions
                            .iter()
                            .zip(&l.values)
                            .map(|(&p, &v)| {
                                let (r, c) = (p / l.inputs as u64, p % l.inputs as u64);
                                (c * l.rows as u64 + r, v)
                            })
                            .collect();
                        moved.sort_unstable_by_key(|&(p, _)| p);
                        (l.positions, l.values) = moved.into_iter().unzip();
                    }
                    w.write_sparse(Dtype::F32, l.rows * l.inputs, &l.positions, |i| l.values[i])?;
                    if let Some(b) = &l.bias {
                        w.write_tensor(&eie_checkpoint::f32_bytes(b))?;
                    }
                }
                Ok(w.finish()?)
            },
        )?;
        Ok(Report {
            schema: Schema("unpack"),
            out: self.out.clone(),
            tensors: specs.len(),
        })
    }
}
