//! `verify`: the images on disk say exactly what model.eie says.

use std::path::PathBuf;

use anyhow::{Result, bail};
use eie_format::hex;
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
    eie_pipeline::check_provenance(&bundle)?;
    let images = eie_images::load(&args.dir)?;
    let m = &images.manifest;
    let meta = bundle.meta();
    if m.pointer_bits != meta.pointer_bits as u32 {
        bail!(
            "manifest says {}-bit pointers, model.eie {}-bit",
            m.pointer_bits,
            meta.pointer_bits
        );
    }
    if m.source.sha256 != meta.source.sha256.map(|h| hex(&h)) || m.source.name != meta.source.name {
        bail!("manifest and model.eie name different source checkpoints");
    }
    if images.layers.len() != bundle.layers().len() {
        bail!(
            "manifest has {} layers, model.eie {}",
            images.layers.len(),
            bundle.layers().len()
        );
    }
    for (from_images, from_bundle) in images.layers.iter().zip(bundle.layers()) {
        if from_images != from_bundle {
            bail!(
                "layer \"{}\": the images decode to different streams than model.eie holds",
                from_bundle.name()
            );
        }
    }
    // Every field and the exact file list: the manifest must be the one model.eie renders to.
    let expected = eie_images::render(&bundle)?.manifest;
    if expected != *m {
        let at = expected
            .layers
            .iter()
            .zip(&m.layers)
            .position(|(a, b)| a != b)
            .map(|i| format!(" (layer {i}, \"{}\")", expected.layers[i].name))
            .unwrap_or_default();
        bail!("manifest.json differs from what model.eie renders to{at}");
    }
    // Nothing under images/ but what the manifest lists, and no link at all.
    let listed: std::collections::BTreeSet<&str> = m
        .layers
        .iter()
        .flat_map(|l| l.files.iter().map(|f| f.path.as_str()))
        .collect();
    let extra = eie_pipeline::output::owned::unlisted(
        &args.dir.join(eie_images::IMAGES_DIR),
        eie_images::IMAGES_DIR,
        &|rel| listed.contains(rel),
    );
    if let Some((first, why)) = extra.first() {
        bail!(
            "{} holds {} entr{} the manifest does not list, first {first} ({why})",
            args.dir.display(),
            extra.len(),
            if extra.len() == 1 { "y" } else { "ies" }
        );
    }
    let files: usize = m.layers.iter().map(|l| l.files.len()).sum();
    println!(
        "ok: {} layer{}; model.eie, manifest.json and {files} image files agree (every checksum, every PE's streams)",
        bundle.layers().len(),
        if bundle.layers().len() == 1 { "" } else { "s" }
    );
    Ok(())
}
