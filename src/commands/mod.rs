//! One module per subcommand, plus what several of them share: the image options, fitting
//! a bundle to the memories, and writing a packed output folder.

pub mod bench_paper;
pub mod compress;
pub mod demo;
pub mod eval;
pub mod inspect;
pub mod pack;
pub mod simulate;
pub mod sweep;
pub mod table;
pub mod train;
pub mod unpack;
pub mod vectors;
pub mod verify;

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, bail};
use eie_format::{BUNDLE_FILE, Bundle, BundleMeta, PackedLayer, SourceInfo};
use eie_images::{Capacity, fitting_batch, fitting_pes};

use crate::output::Staging;

/// The tool's version string, recorded in every bundle and manifest.
pub fn tool_version() -> String {
    format!("eie-compress {}", env!("CARGO_PKG_VERSION"))
}

fn parse_pointer_bits(s: &str) -> Result<u8, String> {
    match s {
        "16" => Ok(16),
        "32" => Ok(32),
        _ => Err(format!("expected 16 or 32, got {s}")),
    }
}

/// How layers are laid out in the PEs' memories, and where they are written.
#[derive(clap::Args, Debug, Clone)]
pub struct ImageOptions {
    /// Processing elements; row i of a layer goes to PE i mod N.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub pes: u32,
    /// Bits of a relative row index z (1..=8, default 4); longer zero runs cost padding entries.
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=8))]
    pub index_bits: Option<u8>,
    /// Width of a column pointer in the images: 16 (the paper) or 32.
    #[arg(long, default_value_t = 16, value_parser = parse_pointer_bits)]
    pub pointer_bits: u8,
    /// Sparse-matrix SRAM per PE, in KiB (the paper: 128).
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u64).range(1..=1 << 30))]
    pub spmat_kib: u64,
    /// Column-pointer SRAM per PE, in KiB (the paper: 32).
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..=1 << 30))]
    pub pointer_kib: u64,
    /// Split layers wider than C columns into column batches of C (pointers restart at 0 in
    /// every batch, each has its own images); 0 keeps every layer whole.
    #[arg(long, value_name = "C", default_value_t = 0)]
    pub column_batch: usize,
    /// Write layers that overflow the SRAMs anyway, with a warning, instead of failing.
    #[arg(long)]
    pub allow_overflow: bool,
    /// Write into an output folder that is not empty, replacing eie-compress's files there.
    #[arg(long)]
    pub force: bool,
}

impl ImageOptions {
    /// The relative-index width (default 4).
    pub fn index_bits(&self) -> u8 {
        self.index_bits.unwrap_or(4)
    }

    pub fn capacity(&self) -> Capacity {
        Capacity {
            spmat_bytes: self.spmat_kib * 1024,
            pointer_bytes: self.pointer_kib * 1024,
        }
    }

    /// The options as bundle settings (provenance).
    pub fn settings(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("pes".to_string(), self.pes.to_string()),
            ("index_bits".to_string(), self.index_bits().to_string()),
            ("pointer_bits".to_string(), self.pointer_bits.to_string()),
            ("spmat_kib".to_string(), self.spmat_kib.to_string()),
            ("pointer_kib".to_string(), self.pointer_kib.to_string()),
            ("column_batch".to_string(), self.column_batch.to_string()),
        ])
    }
}

/// The source record of a checkpoint file: its name (no folders) and SHA-256.
pub fn source_info(path: &Path, sha256: [u8; 32]) -> SourceInfo {
    SourceInfo {
        name: path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        sha256: Some(sha256),
    }
}

/// Assembles the bundle and checks it fits: every pointer inside its width (an error naming
/// the layer and PE, and a PE count that would fit), every PE inside its SRAMs (an error, or
/// warnings with `--allow-overflow`).
pub fn fit_bundle(
    meta: BundleMeta,
    layers: Vec<PackedLayer>,
    opts: &ImageOptions,
) -> Result<Bundle> {
    let mut split = Vec::with_capacity(layers.len());
    for layer in layers {
        split.extend(layer.split_columns(opts.column_batch)?);
    }
    let layers = split;
    for layer in &layers {
        if let Err(e) = layer.check_pointer_width(opts.pointer_bits) {
            let unlimited = Capacity {
                spmat_bytes: u64::MAX / 2,
                pointer_bytes: u64::MAX / 2,
            };
            // Every remedy that fits, each verified by counting entries.
            let mut fixes = Vec::new();
            match fitting_pes(&layer.decode_sparse(), layer, opts.pointer_bits, &unlimited) {
                Some(n) if n <= 65536 => fixes.push(format!("--pes {n}")),
                _ => {}
            }
            if opts.pointer_bits < 32 {
                fixes.push("--pointer-bits 32".to_string());
            }
            if let Some(b) = fitting_batch(layer, eie_format::max_pointer(opts.pointer_bits)) {
                fixes.push(format!("column batches (--column-batch {b})"));
            }
            let hint = if fixes.is_empty() {
                "no PE count, pointer width or column batch fits it".to_string()
            } else {
                format!("{} would fit it", fixes.join(", or "))
            };
            bail!("{e}: {hint}");
        }
    }
    let capacity = opts.capacity();
    let overflows: Vec<String> = layers
        .iter()
        .flat_map(|l| eie_images::check_capacity(l, opts.pointer_bits, &capacity))
        .map(|o| o.to_string())
        .collect();
    if !overflows.is_empty() {
        if !opts.allow_overflow {
            bail!(
                "the model does not fit the per-PE SRAMs ({} KiB Spmat, {} KiB pointers; --allow-overflow writes it anyway): {}",
                opts.spmat_kib,
                opts.pointer_kib,
                overflows.join("; ")
            );
        }
        for o in &overflows {
            eprintln!("warning: {o}");
        }
    }
    Ok(Bundle::new(meta, layers)?)
}

/// Writes the images, manifest.json and model.eie of `bundle` into a staging folder;
/// returns the number of image files. The caller publishes the staging folder.
pub fn stage_bundle(staging: &Staging, bundle: &Bundle) -> Result<usize> {
    let images = eie_images::render(bundle)?;
    images
        .write_into(staging.path())
        .context("cannot write the images")?;
    std::fs::write(staging.path().join(BUNDLE_FILE), bundle.to_bytes()?)
        .context("cannot write model.eie")?;
    Ok(images.files.len())
}

/// Writes a packed output folder all-or-nothing: images, manifest.json, and model.eie last.
pub fn write_packed(out: &Path, bundle: &Bundle, force: bool) -> Result<usize> {
    let staging = Staging::create(out, force)?;
    let files = stage_bundle(&staging, bundle)?;
    staging.publish()?;
    Ok(files)
}
