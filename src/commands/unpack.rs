//! `unpack`: packed layers back to dense f32 tensors.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Result;
use eie_checkpoint::{Dtype, Writer, f32_bytes};
use eie_format::hex;

use crate::output::{load_bundle, write_file};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Output folder of `pack` or `compress` (or a model.eie file).
    pub dir: PathBuf,
    /// The safetensors file to write.
    #[arg(short, long)]
    pub out: PathBuf,
    /// Replace the output file if it exists.
    #[arg(long)]
    pub force: bool,
}

pub fn run(args: Args) -> Result<()> {
    let (_, bundle) = load_bundle(&args.dir)?;
    // Each layer's dense weights (codebook values, zeros where pruned); a folded bias column
    // goes back to its own 1-D tensor.
    let mut tensors: Vec<(String, Vec<usize>, Vec<f32>)> = Vec::new();
    for parts in bundle.logical_layers() {
        let first = &parts[0];
        let (rows, cols) = (first.rows(), first.total_cols());
        // Column batches side by side.
        let mut dense = vec![0f32; rows * cols];
        for part in parts {
            for (r, row) in part.dense().chunks(part.cols().max(1)).enumerate() {
                let at = r * cols + part.first_col();
                dense[at..at + row.len()].copy_from_slice(row);
            }
        }
        match first.bias() {
            None => tensors.push((first.name().to_string(), vec![rows, cols], dense)),
            Some(bias) => {
                let inputs = cols - 1;
                let mut w = Vec::with_capacity(rows * inputs);
                let mut b = Vec::with_capacity(rows);
                for row in dense.chunks(cols.max(1)) {
                    w.extend_from_slice(&row[..inputs]);
                    b.push(row[inputs]);
                }
                tensors.push((first.name().to_string(), vec![rows, inputs], w));
                tensors.push((bias.to_string(), vec![rows], b));
            }
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
    let specs: Vec<_> = tensors
        .iter()
        .map(|(n, s, _)| (n.clone(), Dtype::F32, s.clone()))
        .collect();
    write_file(&args.out, args.force, |tmp| {
        let mut w = Writer::create(tmp, &metadata, &specs)?;
        for (_, _, data) in &tensors {
            w.write_tensor(&f32_bytes(data))?;
        }
        Ok(w.finish()?)
    })?;
    println!("wrote {} ({} tensors)", args.out.display(), tensors.len());
    Ok(())
}
