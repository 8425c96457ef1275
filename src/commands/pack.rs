//! `pack`: tensors that are already pruned and weight-shared, packed as they are.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use eie_checkpoint::Checkpoint;
use eie_format::{BundleMeta, CodeMatrix, Codebook, PackedLayer};

use super::{ImageOptions, fit_bundle, inspect, source_info, tool_version, write_packed};
use crate::output::{check_out_dir, output_paths, refuse_input_as_output};
use crate::progress::Progress;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The checkpoint (.safetensors).
    pub model: PathBuf,
    /// Output folder: model.eie, manifest.json and images/ are written there.
    #[arg(short, long)]
    pub out: PathBuf,
    /// Bits of a weight code (1..=8); a tensor may hold at most 2^B - 1 distinct non-zero values.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u8).range(1..=8))]
    pub code_bits: u8,
    /// Tensors to pack (glob, repeatable; default: every 2-D float tensor named *.weight).
    #[arg(long = "layers", value_name = "PATTERN")]
    pub layers: Vec<String>,
    #[command(flatten)]
    pub image: ImageOptions,
}

pub fn run(args: Args, progress: &Progress) -> Result<()> {
    check_out_dir(&args.out, args.image.force)?;
    refuse_input_as_output(&args.model, &output_paths(&args.out))?;
    let ck = Checkpoint::open(&args.model)?;
    let names = ck.select_layers(&args.layers)?;
    let bar = progress.bar(names.len() as u64, "pack");
    let mut layers = Vec::with_capacity(names.len());
    for name in &names {
        bar.set_message(name.clone());
        layers.push(pack_tensor(&ck, name, args.code_bits, &args.image)?);
        bar.inc(1);
    }
    bar.finish_and_clear();

    let mut settings = args.image.settings();
    settings.insert("command".into(), "pack".into());
    settings.insert("code_bits".into(), args.code_bits.to_string());
    settings.insert("layers".into(), args.layers.join(" "));
    let meta = BundleMeta {
        tool_version: tool_version(),
        source: source_info(&args.model, ck.sha256()?),
        pointer_bits: args.image.pointer_bits,
        settings,
    };
    let bundle = fit_bundle(meta, layers, &args.image)?;
    let files = write_packed(&args.out, &bundle, args.image.force)?;
    print!("{}", inspect::summary(&bundle, None));
    println!(
        "wrote {} (model.eie, manifest.json, {files} image files)",
        args.out.display()
    );
    Ok(())
}

/// One tensor as it is: zeros are pruned positions, its distinct non-zero values are its
/// codebook (ascending), which must fit 2^code_bits - 1 entries.
fn pack_tensor(
    ck: &Checkpoint,
    name: &str,
    code_bits: u8,
    opts: &ImageOptions,
) -> Result<PackedLayer> {
    let m = ck.read_matrix(name)?;
    let codebook = match Codebook::from_distinct_values(code_bits, m.data.iter().copied()) {
        Ok(book) => book,
        Err(eie_format::Error::TooManyValues { max, .. }) => bail!(
            "tensor \"{name}\" has more than {max} distinct non-zero values, so it needs weight sharing: \
             use `eie-compress compress`, which prunes and clusters it (or raise --code-bits)"
        ),
        Err(e) => return Err(e).with_context(|| format!("tensor \"{name}\"")),
    };
    let codes = m
        .data
        .iter()
        .map(|&v| {
            codebook
                .code_of(v)
                .expect("every value is in its own codebook")
        })
        .collect();
    let matrix = CodeMatrix::new(m.rows, m.cols, codes)?;
    Ok(PackedLayer::encode(
        name,
        &matrix,
        codebook,
        opts.pes as usize,
        opts.index_bits(),
    )?)
}
