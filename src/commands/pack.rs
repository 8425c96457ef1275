//! `pack`: tensors that are already pruned and weight-shared, packed as they are.

use std::path::PathBuf;

use anyhow::Result;
use eie_commands::pack::Request;

use crate::knobs::PackFlags;
use crate::options::{BiasArgs, FitArgs, ForceArgs, LayersArgs, PesArgs};
use crate::render::report::skipped_line;
use crate::render::summary::summary;
use eie_progress::Progress;

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
    let request = Request {
        model: args.model,
        out: args.out,
        widths: args.widths.0,
        layers: args.layers.layers,
        fold_bias: args.bias.fold(),
        pes: args.pes.pes,
        fit: args.fit.fit(),
        force: args.force.force,
    };
    let r = request.run(progress)?;
    out!("{}", summary(&r.model));
    let skipped: Vec<(&str, String)> = r
        .skipped
        .iter()
        .map(|s| (s.name.as_str(), s.reason.clone()))
        .collect();
    out!("{}", skipped_line(&skipped, "--layers selects any of them"));
    if !r.folded_biases.is_empty() {
        outln!(
            "biases folded in as last columns: {}",
            eie_format::shown(&r.folded_biases.join(", "))
        );
    }
    if !r.loose_biases.is_empty() {
        outln!(
            "not folded (--no-bias-column): {} (the images hold the weights alone)",
            eie_format::shown(&r.loose_biases.join(", "))
        );
    }
    outln!(
        "wrote {} (model.eie, manifest.json, {} image files)",
        r.out.display(),
        r.files
    );
    Ok(())
}
