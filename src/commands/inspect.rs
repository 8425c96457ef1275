//! `inspect`: what a packed model holds, as a table or JSON.

use std::path::PathBuf;

use anyhow::{Result, bail};
use eie_format::{Bundle, PackedLayer, hex};
use eie_images::{EntryBalance, LayerBytes, spmat_bytes};
use eie_pipeline::output::load_bundle;
use eie_pipeline::report::pct;
use serde::Serialize;

use crate::render::summary::summary;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Output folder of `pack` or `compress` (or a model.eie file).
    pub dir: PathBuf,
    /// Print JSON: every layer with its codebook and every PE's codes, z and pointers.
    #[arg(long)]
    pub json: bool,
    /// Only this layer.
    #[arg(long, value_name = "NAME")]
    pub layer: Option<String>,
    /// Only this PE (its arrays are printed in the table view too).
    #[arg(long, value_name = "K")]
    pub pe: Option<usize>,
}

pub fn run(args: Args) -> Result<()> {
    let (_, bundle) = load_bundle(&args.dir)?;
    let layers: Vec<&PackedLayer> = match &args.layer {
        None => bundle.layers().iter().collect(),
        // Every part of a layer stored in column batches.
        Some(name) => {
            let parts: Vec<&PackedLayer> = bundle
                .layers()
                .iter()
                .filter(|l| l.name() == name)
                .collect();
            if parts.is_empty() {
                let mut names: Vec<&str> = bundle.layers().iter().map(PackedLayer::name).collect();
                names.dedup();
                bail!("no layer named \"{name}\" (layers: {})", names.join(", "));
            }
            parts
        }
    };
    if let Some(k) = args.pe
        && let Some(l) = layers.iter().find(|l| k >= l.pes())
    {
        bail!(
            "--pe {k}: layer \"{}\" has {} PEs (0..={})",
            l.name(),
            l.pes(),
            l.pes() - 1
        );
    }
    if args.json {
        let report = Report::new(&bundle, &layers, args.pe);
        outln!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        out!("{}", summary(&bundle, args.layer.as_deref()));
        if let Some(k) = args.pe {
            for l in &layers {
                out!("{}", pe_arrays(l, k));
            }
        }
    }
    Ok(())
}

fn pe_arrays(l: &PackedLayer, k: usize) -> String {
    let s = &l.streams()[k];
    let join = |v: &mut dyn Iterator<Item = String>| v.collect::<Vec<_>>().join(" ");
    format!(
        "\n{} PE {k}: {} rows, {} entries ({} padding)\ncodes: {}\nz:     {}\nptr:   {}\n",
        l.name(),
        l.slice_rows(k),
        s.entries(),
        s.padding(),
        join(&mut s.codes().iter().map(|c| c.to_string())),
        join(&mut s.z().iter().map(|c| c.to_string())),
        join(&mut s.ptr().iter().map(|c| c.to_string())),
    )
}

#[derive(Serialize)]
struct Report<'a> {
    tool_version: &'a str,
    source: Source<'a>,
    pointer_bits: u8,
    settings: &'a std::collections::BTreeMap<String, String>,
    layers: Vec<LayerReport<'a>>,
}

#[derive(Serialize)]
struct Source<'a> {
    name: &'a str,
    sha256: Option<String>,
}

#[derive(Serialize)]
struct Bytes {
    spmat: u64,
    pointers: u64,
    codebook: u64,
    total: u64,
}

#[derive(Serialize)]
struct Balance {
    min: usize,
    mean: f64,
    max: usize,
}

#[derive(Serialize)]
struct LayerReport<'a> {
    name: &'a str,
    bias: Option<&'a str>,
    part: Option<Part>,
    rows: usize,
    cols: usize,
    pes: usize,
    code_bits: u8,
    index_bits: u8,
    codebook: &'a [f32],
    codebook_len: usize,
    codebook_frac_bits: u8,
    codebook_fixed: &'a [i16],
    codebook_max_fixed_error: f64,
    nonzeros: usize,
    entries: usize,
    padding: usize,
    padding_pct: f64,
    bytes: Bytes,
    entries_per_pe: Balance,
    pe: Vec<PeReport<'a>>,
}

#[derive(Serialize)]
struct Part {
    first_col: usize,
    total_cols: usize,
}

#[derive(Serialize)]
struct PeReport<'a> {
    index: usize,
    rows: usize,
    codes: &'a [u8],
    z: &'a [u8],
    ptr: &'a [u32],
    entries: usize,
    padding: usize,
    spmat_bytes: u64,
}

impl<'a> Report<'a> {
    fn new(bundle: &'a Bundle, layers: &[&'a PackedLayer], pe: Option<usize>) -> Self {
        let meta = bundle.meta();
        Self {
            tool_version: &meta.tool_version,
            source: Source {
                name: &meta.source.name,
                sha256: meta.source.sha256.map(|h| hex(&h)),
            },
            pointer_bits: meta.pointer_bits,
            settings: &meta.settings,
            layers: layers
                .iter()
                .map(|l| {
                    let b = LayerBytes::of(l, meta.pointer_bits);
                    let e = EntryBalance::of(l);
                    let book = l.codebook();
                    LayerReport {
                        name: l.name(),
                        bias: l.bias(),
                        part: l.span().map(|s| Part {
                            first_col: s.first,
                            total_cols: s.total,
                        }),
                        rows: l.rows(),
                        cols: l.cols(),
                        pes: l.pes(),
                        code_bits: l.code_bits(),
                        index_bits: l.index_bits(),
                        codebook: book.values(),
                        codebook_len: book.len(),
                        codebook_frac_bits: book.frac_bits(),
                        codebook_fixed: book.fixed(),
                        codebook_max_fixed_error: book.max_fixed_error(),
                        nonzeros: l.nonzeros(),
                        entries: l.entries(),
                        padding: l.padding(),
                        padding_pct: pct(l.padding(), l.entries()),
                        bytes: Bytes {
                            spmat: b.spmat,
                            pointers: b.pointers,
                            codebook: b.codebook,
                            total: b.total(),
                        },
                        entries_per_pe: Balance {
                            min: e.min,
                            mean: e.mean,
                            max: e.max,
                        },
                        pe: l
                            .streams()
                            .iter()
                            .enumerate()
                            .filter(|(k, _)| pe.is_none_or(|p| p == *k))
                            .map(|(k, s)| PeReport {
                                index: k,
                                rows: l.slice_rows(k),
                                codes: s.codes(),
                                z: s.z(),
                                ptr: s.ptr(),
                                entries: s.entries(),
                                padding: s.padding(),
                                spmat_bytes: spmat_bytes(l, k),
                            })
                            .collect(),
                    }
                })
                .collect(),
        }
    }
}
