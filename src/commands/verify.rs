//! `verify`: the images on disk say exactly what model.eie says.

use std::path::PathBuf;

use anyhow::{Result, bail};
use eie_pipeline::output::load_bundle;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Output folder of `pack` or `compress`.
    pub dir: PathBuf,
}

pub fn run(args: Args) -> Result<()> {
    let (_, bundle) = load_bundle(&args.dir)?;
    if !args.dir.is_dir() {
        bail!(
            "{} is not an output folder: verify compares a folder's images with its model.eie",
            args.dir.display()
        );
    }
    let m = eie_pipeline::verify(&args.dir, &bundle)?;
    let files: usize = m.layers.iter().map(|l| l.files.len()).sum();
    outln!(
        "ok: {} layer{}; model.eie, manifest.json and {files} image files agree (every checksum, every PE's streams)",
        bundle.layers().len(),
        if bundle.layers().len() == 1 { "" } else { "s" }
    );
    Ok(())
}
