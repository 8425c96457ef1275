//! `verify`: a model folder's images, manifest and `model.eie` say exactly the same; what
//! `verify` and `rtl-check` check before they trust a folder.

use std::path::Path;

use eie_format::{Bundle, hex};

use crate::error::{Error, Result};

/// Checks the folder `dir` against its `bundle`: the recorded settings, every image file
/// (its size, checksum, and both encodings decoded) rebuilt into layers equal to the
/// bundle's, the manifest equal to the one the bundle renders, and nothing under `images/`
/// the manifest does not list. Returns the manifest.
pub fn verify(dir: &Path, bundle: &Bundle) -> Result<eie_images::Manifest> {
    let disagree = |reason: String| Error::Disagree {
        dir: dir.to_path_buf(),
        reason,
    };
    crate::check_provenance(bundle)?;
    let images = eie_images::load(dir)?;
    let m = images.manifest;
    let meta = bundle.meta();
    if m.pointer_bits != meta.pointer_bits as u32 {
        return Err(disagree(format!(
            "manifest says {}-bit pointers, model.eie {}-bit",
            m.pointer_bits, meta.pointer_bits
        )));
    }
    if m.source.sha256 != meta.source.sha256.map(|h| hex(&h)) || m.source.name != meta.source.name {
        return Err(disagree(
            "manifest and model.eie name different source checkpoints".into(),
        ));
    }
    if images.layers.len() != bundle.layers().len() {
        return Err(disagree(format!(
            "manifest has {} layers, model.eie {}",
            images.layers.len(),
            bundle.layers().len()
        )));
    }
    for (from_images, from_bundle) in images.layers.iter().zip(bundle.layers()) {
        if from_images != from_bundle {
            return Err(disagree(format!(
                "layer \"{}\": the images decode to different streams than model.eie holds",
                from_bundle.name()
            )));
        }
    }
    // Every field and the exact file list: the manifest must be the one model.eie renders to.
    let expected = eie_images::render(bundle)?.manifest;
    if expected != m {
        let at = expected
            .layers
            .iter()
            .zip(&m.layers)
            .position(|(a, b)| a != b)
            .map(|i| format!(" (layer {i}, \"{}\")", expected.layers[i].name))
            .unwrap_or_default();
        return Err(disagree(format!(
            "manifest.json differs from what model.eie renders to{at}"
        )));
    }
    // Nothing under images/ but what the manifest lists, and no link at all.
    let listed: std::collections::BTreeSet<&str> = m
        .layers
        .iter()
        .flat_map(|l| l.files.iter().map(|f| f.path.as_str()))
        .collect();
    let extra = crate::output::owned::unlisted(
        &dir.join(eie_images::IMAGES_DIR),
        eie_images::IMAGES_DIR,
        &|rel| listed.contains(rel),
    );
    if let Some((first, why)) = extra.first() {
        return Err(disagree(format!(
            "{} entr{} under images/ the manifest does not list, first {first} ({why})",
            extra.len(),
            if extra.len() == 1 { "y" } else { "ies" }
        )));
    }
    Ok(m)
}
