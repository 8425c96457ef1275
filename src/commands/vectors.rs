//! `vectors`: RTL test vectors from the functional model: per layer the input activations,
//! the expected outputs and every PE's expected accumulators, as `$readmemh` text and
//! little-endian binary, with a manifest.

use std::path::PathBuf;

use anyhow::Result;
use eie_commands::vectors::Request;

use crate::options::{ArithArgs, ForceArgs, InputArgs, TimingArgs};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Output folder of `pack` or `compress` (or a model.eie file).
    pub dir: PathBuf,
    /// Folder for the vectors.
    #[arg(short, long)]
    pub out: PathBuf,
    /// Only this layer.
    #[arg(long, value_name = "NAME")]
    pub layer: Option<String>,
    #[command(flatten)]
    pub force: ForceArgs,
    #[command(flatten)]
    pub input: InputArgs,
    #[command(flatten)]
    pub timing: TimingArgs,
    #[command(flatten)]
    pub arith: ArithArgs,
}

pub fn run(args: Args) -> Result<()> {
    let request = Request {
        dir: args.dir,
        out: args.out,
        layer: args.layer,
        force: args.force.force,
        input: args.input.request(),
        max_memory: args.input.memory.max_memory,
        timing: args.timing.params(),
        arith: args.arith.arith(),
    };
    let r = request.run()?;
    outln!(
        "wrote {} ({} layers, {} vector files, manifest.json)",
        r.out.display(),
        r.layers,
        r.files
    );
    Ok(())
}
