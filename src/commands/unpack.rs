//! `unpack`: packed layers back to dense f32 tensors.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Result, bail};
use eie_checkpoint::{Dtype, Writer};
use eie_format::{PackedLayer, hex};
use eie_pipeline::output::{Inputs, Kind, check_file, load_bundle, write_file};

use crate::options::ForceArgs;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Output folder of `pack` or `compress` (or a model.eie file).
    pub dir: PathBuf,
    /// The safetensors file to write.
    #[arg(short, long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub force: ForceArgs,
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
        bail!(
            "layer \"{}\": {rows} x {inputs} is too large to write dense",
            first.name()
        );
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

pub fn run(args: Args) -> Result<()> {
    let (bundle_path, bundle) = load_bundle(&args.dir)?;
    let mut inputs = Inputs::new();
    crate::options::model_inputs(&mut inputs, &args.dir, &bundle_path);
    check_file(&args.out, args.force.force, Kind::Safetensors, &inputs)?;
    let layers = bundle.logical_layers();
    let mut specs = Vec::new();
    for parts in &layers {
        let first = &parts[0];
        let inputs = first.total_cols() - usize::from(first.bias().is_some());
        specs.push((
            first.name().to_string(),
            Dtype::F32,
            vec![first.rows(), inputs],
        ));
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
    // Layer by layer: each written dense from its non-zeros, never all in memory at once.
    write_file(
        &args.out,
        args.force.force,
        Kind::Safetensors,
        &inputs,
        |tmp| -> Result<()> {
            let mut w = Writer::create(tmp, &metadata, &specs)?;
            for parts in &layers {
                let l = gather(parts)?;
                w.write_sparse(Dtype::F32, l.rows * l.inputs, &l.positions, |i| l.values[i])?;
                if let Some(b) = &l.bias {
                    w.write_tensor(&eie_checkpoint::f32_bytes(b))?;
                }
            }
            Ok(w.finish()?)
        },
    )?;
    outln!("wrote {} ({} tensors)", args.out.display(), specs.len());
    Ok(())
}
