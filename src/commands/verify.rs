//! `verify`: the images on disk say exactly what model.eie says.

use std::path::PathBuf;

use anyhow::Result;
use eie_commands::verify::Request;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Output folder of `pack` or `compress`.
    pub dir: PathBuf,
}

pub fn run(args: Args) -> Result<()> {
    let r = Request { dir: args.dir }.run()?;
    outln!(
        "ok: {} layer{}; model.eie, manifest.json and {} image files agree (every checksum, every PE's streams)",
        r.layers,
        if r.layers == 1 { "" } else { "s" },
        r.files
    );
    Ok(())
}
