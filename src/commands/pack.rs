//! `pack`: tensors that are already pruned and weight-shared, packed as they are.

use std::path::PathBuf;

use anyhow::Result;
use eie_checkpoint::Checkpoint;
use eie_pipeline::output::{Inputs, Layout, Staging, load_bundle};
use eie_pipeline::{LayerSettings, PackJob, image_provenance};

use super::tool_version;
use crate::knobs::PackFlags;
use crate::options::{BiasArgs, FitArgs, ForceArgs, LayersArgs, PesArgs};
use crate::progress::Progress;
use crate::render::report::skipped_line;
use crate::render::summary::summary;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The checkpoint (.safetensors).
    pub model: PathBuf,
    /// Output folder: model.eie, manifest.json and images/ are written there.
    #[arg(short, long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub widths: PackFlags,
    #[command(flatten)]
    pub layers: LayersArgs,
    #[command(flatten)]
    pub bias: BiasArgs,
    #[command(flatten)]
    pub pes: PesArgs,
    #[command(flatten)]
    pub fit: FitArgs,
    #[command(flatten)]
    pub force: ForceArgs,
}

pub fn run(args: Args, progress: &Progress) -> Result<()> {
    // Resolve: every check before any work.
    let mut inputs = Inputs::new();
    inputs.add(&args.model);
    // Opening reads headers only; a sharded checkpoint's shards are inputs too.
    let ck = Checkpoint::open(&args.model)?;
    inputs.extend(ck.hashed_files());
    // Locked from here: a second run into the same folder fails at once.
    let staging = Staging::create(&args.out, args.force.force, &inputs, Layout::Model)?;
    let selection = ck.select(&args.layers.layers)?;
    let names = selection.layers;
    let mut widths = LayerSettings::default();
    args.widths.0.assignments()?.apply(&mut widths);
    let fit = args.fit.fit();
    let pes = args.pes.pes as usize;
    let mut provenance = image_provenance(pes, widths.index_bits, &fit);
    provenance.insert("command".into(), "pack".into());
    provenance.insert("code_bits".into(), widths.code_bits.to_string());
    provenance.insert("layers".into(), args.layers.layers.join(" "));
    provenance.insert("bias_column".into(), args.bias.fold().to_string());
    let version = tool_version();
    let job = PackJob {
        names: &names,
        code_bits: widths.code_bits,
        index_bits: widths.index_bits,
        pes,
        fold_bias: args.bias.fold(),
        fit,
        tool_version: &version,
        provenance,
    };

    let packed = eie_pipeline::pack(&ck, &job, staging.path(), progress)?;
    staging.publish()?;

    let (_, bundle) = load_bundle(&args.out)?;
    out!("{}", summary(&bundle, None));
    let skipped: Vec<(&str, String)> = selection
        .skipped
        .iter()
        .map(|s| (s.name.as_str(), s.reason.to_string()))
        .collect();
    out!("{}", skipped_line(&skipped, ""));
    // Say which biases are in the images and which are not, so that nobody takes images for
    // the layer with its bias when they hold the weight alone.
    let mut folded_names: Vec<&str> = bundle.layers().iter().filter_map(|l| l.bias()).collect();
    folded_names.dedup(); // column batches repeat their layer's bias
    if !folded_names.is_empty() {
        outln!(
            "biases folded in as last columns: {}",
            folded_names.join(", ")
        );
    }
    let left_out: Vec<String> = names
        .iter()
        .filter_map(|n| eie_checkpoint::bias_name(n))
        .filter(|b| ck.info(b).is_some() && !folded_names.contains(&b.as_str()))
        .collect();
    if !left_out.is_empty() {
        outln!(
            "not folded (--no-bias-column): {} (the images hold the weights alone)",
            left_out.join(", ")
        );
    }
    outln!(
        "wrote {} (model.eie, manifest.json, {} image files)",
        args.out.display(),
        packed.files
    );
    Ok(())
}
