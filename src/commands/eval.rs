//! `eval`: top-1 accuracy of a checkpoint, and of what `compress` made from it: pruned and
//! pruned-and-shared (float, from the output's dense checkpoints or rebuilt from the
//! checkpoint and the packed codes), and the bit-exact fixed-point EIE model run through the
//! functional simulator on the images.

use std::path::PathBuf;

use anyhow::Result;
use eie_commands::eval::Request;
use eie_commands::report::to_json;

use crate::options::{
    ActFracArgs, ArchArgs, ArithArgs, ContextArgs, DatasetArgs, EnergyArgs, LayersArgs, MemoryArgs,
    ScaleArgs, TimingArgs,
};
use crate::render::energy::costed_tables;
use crate::render::report::{fractions, render_stages, text_line};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The original checkpoint (.safetensors, or a sharded checkpoint's index), or a Hugging
    /// Face language model's folder (config.json, model.safetensors, tokenizer.json) to
    /// evaluate on --dataset text:FILE (its --range in bytes) by perplexity.
    pub model: PathBuf,
    /// An output folder of `compress` (or `pack`) made from MODEL: its pruned and
    /// pruned-and-shared stages and its images are evaluated too.
    pub dir: Option<PathBuf>,
    #[command(flatten)]
    pub data: DatasetArgs,
    #[command(flatten)]
    pub memory: MemoryArgs,
    #[command(flatten)]
    pub scale: ScaleArgs,
    #[command(flatten)]
    pub arch: ArchArgs,
    #[command(flatten)]
    pub layers: LayersArgs,
    #[command(flatten)]
    pub act_frac: ActFracArgs,
    #[command(flatten)]
    pub arith: ArithArgs,
    /// The bit-exact stage's runs also go through the timing model, for their energy.
    #[command(flatten)]
    pub timing: TimingArgs,
    #[command(flatten)]
    pub energy: EnergyArgs,
    #[command(flatten)]
    pub context: ContextArgs,
    /// Tokens between a language model's windows (default: half the context).
    #[arg(long, value_name = "TOKENS", value_parser = clap::value_parser!(u32).range(1..=1 << 24))]
    pub stride: Option<u32>,
    /// Print JSON (with per-class accuracy) instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> Result<()> {
    let Some(data) = args.data.request(&args.scale, &args.memory) else {
        anyhow::bail!("eval needs --dataset");
    };
    let request = Request {
        model: args.model,
        dir: args.dir,
        data,
        arch: args.arch.arch,
        layers: args.layers.layers,
        act_frac: args.act_frac.act_frac,
        arith: args.arith.arith(),
        timing: args.timing.params(),
        energy: args.energy.table(),
        context: args.context.tokens(),
        stride: args.stride.map(|s| s as usize),
    };
    let report = request.run()?;
    if args.json {
        out!("{}", to_json(&report)?);
        return Ok(());
    }
    match &report.text {
        Some(t) => outln!(
            "{} on {}: {}",
            report.model,
            report.dataset,
            text_line(t, t.speed.as_ref())
        ),
        None => outln!(
            "{} on {} ({} samples, inputs {})",
            report.model,
            report.dataset,
            report.samples,
            report.scaling
        ),
    }
    out!("{}", render_stages(&report.stages));
    if let Some(f) = &report.act_frac {
        outln!(
            "EIE activation fractions: {}{}",
            fractions(f),
            if report.act_frac_calibrated {
                " (calibrated on these samples)"
            } else {
                ""
            }
        );
    }
    for n in &report.notes {
        outln!("{n}");
    }
    if let Some(c) = &report.energy {
        out!("{}", costed_tables(c));
    }
    Ok(())
}
