//! `inspect`: what a packed model holds: per layer its shape, entries, padding, bytes and
//! balance, and on request its codebook and every PE's arrays.

use std::collections::BTreeMap;
use std::path::PathBuf;

use eie_format::{Bundle, PackedLayer, hex};
use eie_images::{EntryBalance, LayerBytes, pct, spmat_bytes};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::packed::PackedModel;
use crate::report::Schema;

/// What to inspect.
#[derive(Debug, Clone)]
pub struct Request {
    /// An output folder of `pack` or `compress`, or a `model.eie`.
    pub dir: PathBuf,
    /// Only this layer (every part of it, when stored in column batches).
    pub layer: Option<String>,
    /// Whose arrays to list.
    pub pes: Pes,
}

/// Which PEs' arrays a report lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pes {
    /// Every PE's.
    All,
    /// PE k's.
    One(usize),
    /// None (a summary).
    None,
}

impl Pes {
    fn lists(self, k: usize) -> bool {
        match self {
            Pes::All => true,
            Pes::One(p) => p == k,
            Pes::None => false,
        }
    }
}

/// A packed model: how it was made, and every layer (part) selected.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The report's schema.
    pub schema: Schema,
    /// The tool that packed it.
    pub tool_version: String,
    /// The checkpoint it was made from.
    pub source: Source,
    /// Width of a column pointer.
    pub pointer_bits: u8,
    /// How it was made (model.eie's recorded settings).
    pub settings: BTreeMap<String, String>,
    /// Every layer, or every part of one stored in column batches.
    pub layers: Vec<LayerReport>,
}

/// The checkpoint a model was made from.
#[derive(Debug, Clone, Serialize)]
pub struct Source {
    /// Its file name.
    pub name: String,
    /// Its SHA-256, lowercase hex.
    pub sha256: Option<String>,
}

/// Bytes of a layer's images.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Bytes {
    /// Spmat images, over all PEs.
    pub spmat: u64,
    /// Pointer images, over all PEs.
    pub pointers: u64,
    /// The codebook image.
    pub codebook: u64,
    /// All of them.
    pub total: u64,
}

/// Entries per PE.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Balance {
    /// Fewest.
    pub min: usize,
    /// Mean.
    pub mean: f64,
    /// Most.
    pub max: usize,
}

/// One layer, or one part of a layer stored in column batches.
#[derive(Debug, Clone, Serialize)]
pub struct LayerReport {
    /// The weight tensor's name.
    pub name: String,
    /// The folded bias's name.
    pub bias: Option<String>,
    /// The columns of a column batch.
    pub part: Option<Part>,
    /// Rows.
    pub rows: usize,
    /// Columns (of this part; the bias column included).
    pub cols: usize,
    /// PEs.
    pub pes: usize,
    /// Code width.
    pub code_bits: u8,
    /// Relative-index width.
    pub index_bits: u8,
    /// The shared values, code 1 first.
    pub codebook: Vec<f32>,
    /// Codebook entries, code 0 (zero) included.
    pub codebook_len: usize,
    /// Fractional bits of the 16-bit fixed-point codebook.
    pub codebook_frac_bits: u8,
    /// The fixed-point codebook.
    pub codebook_fixed: Vec<i16>,
    /// The largest error of a fixed-point value.
    pub codebook_max_fixed_error: f64,
    /// Stored weights.
    pub nonzeros: usize,
    /// Entries, padding included.
    pub entries: usize,
    /// Padding entries.
    pub padding: usize,
    /// Padding, % of entries.
    pub padding_pct: f64,
    /// Bytes of its images.
    pub bytes: Bytes,
    /// Entries per PE.
    pub entries_per_pe: Balance,
    /// The PEs' arrays asked for.
    pub pe: Vec<PeReport>,
}

/// A part of a layer stored in column batches.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Part {
    /// Its first column in the layer.
    pub first_col: usize,
    /// The layer's columns.
    pub total_cols: usize,
}

/// One PE's arrays.
#[derive(Debug, Clone, Serialize)]
pub struct PeReport {
    /// The PE.
    pub index: usize,
    /// Rows it holds.
    pub rows: usize,
    /// Its codes, in storage order.
    pub codes: Vec<u8>,
    /// Its relative row indices.
    pub z: Vec<u8>,
    /// Its column pointers.
    pub ptr: Vec<u32>,
    /// Entries.
    pub entries: usize,
    /// Padding entries.
    pub padding: usize,
    /// Bytes of its Spmat image.
    pub spmat_bytes: u64,
}

/// Sums over a report's layers.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Totals {
    /// Stored weights.
    pub nonzeros: usize,
    /// Entries.
    pub entries: usize,
    /// Padding entries.
    pub padding: usize,
    /// Padding, % of entries.
    pub padding_pct: f64,
    /// Bytes.
    pub spmat: u64,
    /// Bytes.
    pub pointers: u64,
    /// Bytes.
    pub codebook: u64,
}

impl Report {
    /// The report of `layers` (parts of `bundle`), listing the arrays of `pes`.
    pub fn of(bundle: &Bundle, layers: &[&PackedLayer], pes: Pes) -> Self {
        let meta = bundle.meta();
        Self {
            schema: Schema("inspect"),
            tool_version: meta.tool_version.clone(),
            source: Source {
                name: meta.source.name.clone(),
                sha256: meta.source.sha256.map(|h| hex(&h)),
            },
            pointer_bits: meta.pointer_bits,
            settings: meta.settings.clone(),
            layers: layers
                .iter()
                .map(|l| LayerReport::of(l, meta.pointer_bits, pes))
                .collect(),
        }
    }

    /// Every layer's figures added up.
    pub fn totals(&self) -> Totals {
        let mut t = Totals::default();
        for l in &self.layers {
            t.nonzeros += l.nonzeros;
            t.entries += l.entries;
            t.padding += l.padding;
            t.spmat += l.bytes.spmat;
            t.pointers += l.bytes.pointers;
            t.codebook += l.bytes.codebook;
        }
        t.padding_pct = pct(t.padding, t.entries);
        t
    }
}

impl LayerReport {
    fn of(l: &PackedLayer, pointer_bits: u8, pes: Pes) -> Self {
        let b = LayerBytes::of(l, pointer_bits);
        let e = EntryBalance::of(l);
        let book = l.codebook();
        Self {
            name: l.name().to_string(),
            bias: l.bias().map(str::to_string),
            part: l.span().map(|s| Part {
                first_col: s.first,
                total_cols: s.total,
            }),
            rows: l.rows(),
            cols: l.cols(),
            pes: l.pes(),
            code_bits: l.code_bits(),
            index_bits: l.index_bits(),
            codebook: book.values().to_vec(),
            codebook_len: book.len(),
            codebook_frac_bits: book.frac_bits(),
            codebook_fixed: book.fixed().to_vec(),
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
                .filter(|(k, _)| pes.lists(*k))
                .map(|(k, s)| PeReport {
                    index: k,
                    rows: l.slice_rows(k),
                    codes: s.codes().to_vec(),
                    z: s.z().to_vec(),
                    ptr: s.ptr().to_vec(),
                    entries: s.entries(),
                    padding: s.padding(),
                    spmat_bytes: spmat_bytes(l, k),
                })
                .collect(),
        }
    }
}

impl Request {
    /// Loads the model and checks the layer and the PE asked for.
    pub fn run(&self) -> Result<Report> {
        let model = PackedModel::load(&self.dir)?;
        let bundle = &model.bundle;
        let layers: Vec<&PackedLayer> = match &self.layer {
            None => bundle.layers().iter().collect(),
            // Every part of a layer stored in column batches.
            Some(name) => {
                let parts: Vec<&PackedLayer> = bundle
                    .layers()
                    .iter()
                    .filter(|l| l.name() == name)
                    .collect();
                if parts.is_empty() {
                    let mut names: Vec<&str> =
                        bundle.layers().iter().map(PackedLayer::name).collect();
                    names.dedup();
                    return Err(Error::NoLayer {
                        name: name.clone(),
                        known: names.join(", "),
                    });
                }
                parts
            }
        };
        if let Pes::One(k) = self.pes
            && let Some(l) = layers.iter().find(|l| k >= l.pes())
        {
            return Err(Error::Option {
                option: format!("--pe {k}"),
                reason: format!(
                    "layer \"{}\" has {} PEs (0..={})",
                    l.name(),
                    l.pes(),
                    l.pes() - 1
                ),
            });
        }
        Ok(Report::of(bundle, &layers, self.pes))
    }
}
