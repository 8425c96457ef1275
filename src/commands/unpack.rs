//! `unpack`: packed layers back to dense f32 tensors.

use std::path::PathBuf;

use anyhow::Result;
use eie_commands::unpack::Request;

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

pub fn run(args: Args) -> Result<()> {
    let request = Request {
        dir: args.dir,
        out: args.out,
        force: args.force.force,
    };
    let r = request.run()?;
    outln!("wrote {} ({} tensors)", r.out.display(), r.tensors);
    Ok(())
}
