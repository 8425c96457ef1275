//! `inspect`: what a packed model holds, as a table or JSON.

use std::path::PathBuf;

use anyhow::{Result, bail};
use eie_format::{Bundle, PackedLayer, hex};
use eie_images::{codebook_words, pointer_bytes, spmat_bytes};
use serde::Serialize;

use super::table::Table;
use crate::output::load_bundle;

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
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", summary(&bundle, args.layer.as_deref()));
        if let Some(k) = args.pe {
            for l in &layers {
                print!("{}", pe_arrays(l, k));
            }
        }
    }
    Ok(())
}

/// Bytes of each image kind for a layer: (Spmat over all PEs, pointers over all PEs, one
/// codebook).
pub fn layer_bytes(l: &PackedLayer, pointer_bits: u8) -> (u64, u64, u64) {
    let spmat = (0..l.pes()).map(|pe| spmat_bytes(l, pe)).sum();
    let ptr = pointer_bytes(l, pointer_bits) * l.pes() as u64;
    let book = codebook_words(l.codebook().fixed()).len() as u64 * 2;
    (spmat, ptr, book)
}

/// min, mean, max of the entries per PE.
pub fn pe_balance(l: &PackedLayer) -> (usize, f64, usize) {
    let e: Vec<usize> = l.streams().iter().map(|s| s.entries()).collect();
    let min = e.iter().copied().min().unwrap_or(0);
    let max = e.iter().copied().max().unwrap_or(0);
    (
        min,
        e.iter().sum::<usize>() as f64 / e.len().max(1) as f64,
        max,
    )
}

/// `part` as a percentage of `whole` (0 for an empty whole).
pub fn pct(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        100.0 * part as f64 / whole as f64
    }
}

/// The summary table (one layer, or all of them with a total row).
pub fn summary(bundle: &Bundle, only: Option<&str>) -> String {
    let meta = bundle.meta();
    let mut out = format!(
        "{} from {}{} ({}-bit pointers)\n",
        meta.tool_version,
        meta.source.name,
        meta.source
            .sha256
            .map(|h| format!(" sha256 {}", &hex(&h)[..16]))
            .unwrap_or_default(),
        meta.pointer_bits
    );
    let mut t = Table::new(&[
        "layer",
        "shape",
        "PEs",
        "bits c/i",
        "non-zeros",
        "entries",
        "padding",
        "Spmat B",
        "ptr B",
        "codebook B",
        "entries/PE min/mean/max",
    ]);
    let mut total = (0usize, 0usize, 0usize, 0u64, 0u64, 0u64);
    let layers: Vec<&PackedLayer> = bundle
        .layers()
        .iter()
        .filter(|l| only.is_none_or(|n| l.name() == n))
        .collect();
    for l in &layers {
        let (spmat, ptr, book) = layer_bytes(l, meta.pointer_bits);
        let (min, mean, max) = pe_balance(l);
        t.row(vec![
            match l.span() {
                None => l.name().to_string(),
                Some(s) => format!(
                    "{} [cols {}..{} of {}]",
                    l.name(),
                    s.first,
                    s.first + l.cols(),
                    s.total
                ),
            },
            format!("{}x{}", l.rows(), l.cols()),
            l.pes().to_string(),
            format!("{}/{}", l.code_bits(), l.index_bits()),
            l.nonzeros().to_string(),
            l.entries().to_string(),
            format!("{} ({:.1}%)", l.padding(), pct(l.padding(), l.entries())),
            spmat.to_string(),
            ptr.to_string(),
            book.to_string(),
            format!("{min}/{mean:.1}/{max}"),
        ]);
        total = (
            total.0 + l.nonzeros(),
            total.1 + l.entries(),
            total.2 + l.padding(),
            total.3 + spmat,
            total.4 + ptr,
            total.5 + book,
        );
    }
    if layers.len() > 1 {
        t.row(vec![
            "total".into(),
            String::new(),
            String::new(),
            String::new(),
            total.0.to_string(),
            total.1.to_string(),
            format!("{} ({:.1}%)", total.2, pct(total.2, total.1)),
            total.3.to_string(),
            total.4.to_string(),
            total.5.to_string(),
            String::new(),
        ]);
    }
    out.push_str(&t.render());
    out
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
                    let (spmat, pointers, codebook) = layer_bytes(l, meta.pointer_bits);
                    let (min, mean, max) = pe_balance(l);
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
                            spmat,
                            pointers,
                            codebook,
                            total: spmat + pointers + codebook,
                        },
                        entries_per_pe: Balance { min, mean, max },
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
