//! The compress report: per layer and in total, as a table and as JSON (stdout with
//! `--json`, and always `report.json`). Every figure is computed from the packed layers and
//! the pipeline's outcomes; the definitions are in docs/compress.md.

use eie_format::{Bundle, hex};
use eie_prune::Balance;
use eie_quantize::coded_bits;
use serde::Serialize;

use super::LayerOutcome;
use crate::accuracy::{StageReport, render_stages};
use crate::commands::inspect::{layer_bytes, pct, pe_balance};
use crate::commands::table::Table;

#[derive(Serialize)]
pub struct Report {
    pub tool_version: String,
    pub source: Source,
    pub pes: usize,
    pub pointer_bits: u8,
    pub layers: Vec<LayerReport>,
    pub totals: Totals,
    /// With `--dataset`: accuracy after every stage.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accuracy: Option<AccuracyReport>,
}

#[derive(Serialize)]
pub struct AccuracyReport {
    /// The dataset specification.
    pub dataset: String,
    /// The training samples (with retraining).
    pub train: Option<String>,
    /// The samples accuracy is measured on.
    pub held_out: String,
    /// True when no held-out range was given and accuracy is measured on the training samples.
    pub held_out_is_train: bool,
    pub retrain: Option<RetrainReport>,
    /// Activation fractions of the EIE model (calibrated on the held-out samples unless given).
    pub act_frac: Vec<u8>,
    pub stages: Vec<StageReport>,
}

#[derive(Serialize)]
pub struct RetrainReport {
    pub schedule: Vec<f64>,
    pub epochs: usize,
    pub lr: f64,
    pub weight_decay: f64,
    pub centroid_epochs: usize,
    pub centroid_lr: f64,
    pub batch_size: usize,
    pub seed: u64,
}

#[derive(Serialize)]
pub struct Source {
    pub name: String,
    pub sha256: Option<String>,
}

#[derive(Serialize)]
pub struct LayerReport {
    pub name: String,
    pub bias: Option<String>,
    pub rows: usize,
    /// Input columns (the bias column, if any, is not counted here).
    pub inputs: usize,
    pub pruning: Pruning,
    pub balance: Option<BalanceReport>,
    pub quantization: Quantization,
    pub index_bits: u8,
    /// Real entries: the surviving weights plus the non-zero biases.
    pub nonzeros: usize,
    pub entries: usize,
    pub padding: usize,
    pub padding_pct: f64,
    pub bytes: Bytes,
    pub compression: Compression,
    pub entries_per_pe: PeBalance,
}

#[derive(Serialize)]
pub struct Pruning {
    pub rule: String,
    /// rows x inputs.
    pub weights: u64,
    pub nonzeros_before: u64,
    pub kept: u64,
    /// kept / weights.
    pub density: f64,
    /// Smallest kept magnitude (plain pruning); null when nothing is kept.
    pub threshold: Option<f32>,
}

#[derive(Serialize)]
pub struct BalanceReport {
    pub kept_not_plain: u64,
    pub plain_not_kept: u64,
    /// Non-zeros per PE with plain magnitude pruning.
    pub plain: PeBalance,
    /// Non-zeros per PE with balanced pruning.
    pub balanced: PeBalance,
}

#[derive(Serialize)]
pub struct PeBalance {
    pub min: f64,
    pub mean: f64,
    pub max: f64,
    /// max / mean.
    pub imbalance: f64,
}

impl PeBalance {
    fn of(b: &Balance) -> Self {
        Self {
            min: b.min as f64,
            mean: b.mean,
            max: b.max as f64,
            imbalance: b.imbalance(),
        }
    }
}

#[derive(Serialize)]
pub struct Quantization {
    pub method: String,
    pub code_bits: u8,
    /// The shared values, ascending (code c holds value c - 1 of this list; code 0 is zero).
    pub centroids: Vec<f32>,
    /// Values clustered: surviving weights plus non-zero biases.
    pub clustered: u64,
    /// Sum of squared differences between each clustered value and its shared value.
    pub sse: f64,
    pub iterations: u32,
    pub converged: bool,
    /// For the optimal codebook of a very large layer: its estimated distance to the optimum.
    pub optimal_bound: Option<f64>,
    pub fixed_frac_bits: u8,
    /// Largest |centroid - its 16-bit fixed-point value|.
    pub fixed_max_error: f64,
}

#[derive(Serialize, Default, Clone, Copy)]
pub struct Bytes {
    pub spmat: u64,
    pub pointers: u64,
    pub codebook: u64,
    /// spmat + pointers + codebook: the EIE images.
    pub total: u64,
    /// The same weights (and bias) as dense f32.
    pub dense_f32: u64,
}

#[derive(Serialize, Default, Clone, Copy)]
pub struct Compression {
    /// dense_f32 / EIE image bytes.
    pub vs_dense: f64,
    /// Deep Compression's P+Q storage: its relative-index stream (code + index bits per entry,
    /// padding included, no pointers) plus an f32 codebook.
    pub deep_compression_pq_bytes: u64,
    /// dense_f32 / deep_compression_pq_bytes.
    pub deep_compression_pq: f64,
    /// The EIE entries' codes and relative indices Huffman-coded (two codes, their length
    /// tables included), plus pointers and codebook: storage only, EIE runs fixed-width.
    pub huffman_bytes: u64,
    /// dense_f32 / huffman_bytes.
    pub vs_dense_huffman: f64,
}

#[derive(Serialize)]
pub struct Totals {
    pub weights: u64,
    pub kept: u64,
    pub density: f64,
    pub nonzeros: usize,
    pub entries: usize,
    pub padding: usize,
    pub padding_pct: f64,
    pub bytes: Bytes,
    pub compression: Compression,
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

pub fn build(bundle: &Bundle, outcomes: &[LayerOutcome]) -> Report {
    let meta = bundle.meta();
    let mut layers = Vec::new();
    let mut totals = Totals {
        weights: 0,
        kept: 0,
        density: 0.0,
        nonzeros: 0,
        entries: 0,
        padding: 0,
        padding_pct: 0.0,
        bytes: Bytes::default(),
        compression: Compression::default(),
    };
    for o in outcomes {
        let l = &o.layer;
        // The bytes of what was written: a layer split into column batches has a pointer
        // array and a Spmat image per part (one codebook).
        let stored: Vec<_> = bundle
            .layers()
            .iter()
            .filter(|p| p.name() == l.name())
            .collect();
        let (mut spmat, mut pointers, mut codebook) = (0, 0, 0);
        for part in &stored {
            let (s, p, c) = layer_bytes(part, meta.pointer_bits);
            spmat += s;
            pointers += p;
            codebook = c;
        }
        let weights = (o.rows * o.inputs) as u64;
        let dense_f32 = 4 * (weights + if l.bias().is_some() { o.rows as u64 } else { 0 });
        let bytes = Bytes {
            spmat,
            pointers,
            codebook,
            total: spmat + pointers + codebook,
            dense_f32,
        };
        let book = l.codebook();
        let dc_bytes =
            (o.dc_entries * l.entry_bits() as u64).div_ceil(8) + 4 * book.capacity() as u64;
        let (mut code_freq, mut z_freq) = (
            vec![0u64; 1 << l.code_bits()],
            vec![0u64; 1 << l.index_bits()],
        );
        for s in l.streams() {
            s.codes().iter().for_each(|&c| code_freq[c as usize] += 1);
            s.z().iter().for_each(|&z| z_freq[z as usize] += 1);
        }
        // Payload, plus one length byte per symbol for each code table.
        let huffman_bytes = (coded_bits(&code_freq) + coded_bits(&z_freq)).div_ceil(8)
            + (code_freq.len() + z_freq.len()) as u64
            + pointers
            + codebook;
        let compression = Compression {
            vs_dense: ratio(dense_f32, bytes.total),
            deep_compression_pq_bytes: dc_bytes,
            deep_compression_pq: ratio(dense_f32, dc_bytes),
            huffman_bytes,
            vs_dense_huffman: ratio(dense_f32, huffman_bytes),
        };
        let (min, mean, max) = pe_balance(l);
        layers.push(LayerReport {
            name: l.name().to_string(),
            bias: l.bias().map(str::to_string),
            rows: o.rows,
            inputs: o.inputs,
            pruning: Pruning {
                rule: o.settings.pruning.to_string(),
                weights,
                nonzeros_before: o.prune.before,
                kept: o.prune.kept,
                density: ratio(o.prune.kept, weights),
                threshold: o.prune.threshold.is_finite().then_some(o.prune.threshold),
            },
            balance: o.prune.balance.map(|b| BalanceReport {
                kept_not_plain: b.kept_not_plain,
                plain_not_kept: b.plain_not_kept,
                plain: PeBalance::of(&b.plain),
                balanced: PeBalance::of(&b.balanced),
            }),
            quantization: Quantization {
                method: o.settings.method_name(),
                code_bits: l.code_bits(),
                centroids: o.centroids.clone(),
                clustered: o.clustered,
                sse: o.sse,
                iterations: o.clustering.iterations,
                converged: o.clustering.converged,
                optimal_bound: o.clustering.optimal_bound,
                fixed_frac_bits: book.frac_bits(),
                fixed_max_error: book.max_fixed_error(),
            },
            index_bits: l.index_bits(),
            nonzeros: l.nonzeros(),
            entries: l.entries(),
            padding: l.padding(),
            padding_pct: pct(l.padding(), l.entries()),
            bytes,
            compression,
            entries_per_pe: PeBalance {
                min: min as f64,
                mean,
                max: max as f64,
                imbalance: if mean > 0.0 { max as f64 / mean } else { 1.0 },
            },
        });
        totals.weights += weights;
        totals.kept += o.prune.kept;
        totals.nonzeros += l.nonzeros();
        totals.entries += l.entries();
        totals.padding += l.padding();
        let b = &mut totals.bytes;
        b.spmat += spmat;
        b.pointers += pointers;
        b.codebook += codebook;
        b.total += bytes.total;
        b.dense_f32 += dense_f32;
        totals.compression.deep_compression_pq_bytes += dc_bytes;
        totals.compression.huffman_bytes += huffman_bytes;
    }
    totals.density = ratio(totals.kept, totals.weights);
    totals.padding_pct = pct(totals.padding, totals.entries);
    let c = &mut totals.compression;
    c.vs_dense = ratio(totals.bytes.dense_f32, totals.bytes.total);
    c.deep_compression_pq = ratio(totals.bytes.dense_f32, c.deep_compression_pq_bytes);
    c.vs_dense_huffman = ratio(totals.bytes.dense_f32, c.huffman_bytes);
    Report {
        tool_version: meta.tool_version.clone(),
        source: Source {
            name: meta.source.name.clone(),
            sha256: meta.source.sha256.map(|h| hex(&h)),
        },
        pes: bundle.layers().first().map(|l| l.pes()).unwrap_or(0),
        pointer_bits: meta.pointer_bits,
        layers,
        totals,
        accuracy: None,
    }
}

/// The printed report.
pub fn render(r: &Report) -> String {
    let mut out = format!(
        "{} from {}, {} PEs, {}-bit pointers\n",
        r.tool_version, r.source.name, r.pes, r.pointer_bits
    );
    let mut t = Table::new(&[
        "layer",
        "shape",
        "density",
        "kept",
        "bits c/i",
        "SSE",
        "entries",
        "padding",
        "EIE bytes",
        "x dense",
        "x DC P+Q",
        "Huffman B",
        "entries/PE min/mean/max",
        "imbalance",
    ]);
    for l in &r.layers {
        t.row(vec![
            format!("{}{}", l.name, if l.bias.is_some() { " +bias" } else { "" }),
            format!("{}x{}", l.rows, l.inputs),
            format!("{:.2}%", 100.0 * l.pruning.density),
            l.pruning.kept.to_string(),
            format!("{}/{}", l.quantization.code_bits, l.index_bits),
            format!("{:.4e}", l.quantization.sse),
            l.entries.to_string(),
            format!("{:.1}%", l.padding_pct),
            l.bytes.total.to_string(),
            format!("{:.1}", l.compression.vs_dense),
            format!("{:.1}", l.compression.deep_compression_pq),
            l.compression.huffman_bytes.to_string(),
            format!(
                "{}/{:.1}/{}",
                l.entries_per_pe.min, l.entries_per_pe.mean, l.entries_per_pe.max
            ),
            format!("{:.2}", l.entries_per_pe.imbalance),
        ]);
    }
    let tt = &r.totals;
    if r.layers.len() > 1 {
        t.row(vec![
            "total".into(),
            String::new(),
            format!("{:.2}%", 100.0 * tt.density),
            tt.kept.to_string(),
            String::new(),
            String::new(),
            tt.entries.to_string(),
            format!("{:.1}%", tt.padding_pct),
            tt.bytes.total.to_string(),
            format!("{:.1}", tt.compression.vs_dense),
            format!("{:.1}", tt.compression.deep_compression_pq),
            tt.compression.huffman_bytes.to_string(),
            String::new(),
            String::new(),
        ]);
    }
    out.push_str(&t.render());
    let balanced: Vec<&LayerReport> = r.layers.iter().filter(|l| l.balance.is_some()).collect();
    if !balanced.is_empty() {
        let mut t = Table::new(&[
            "balanced layer",
            "non-zeros/PE plain min/max",
            "imbalance plain",
            "balanced min/max",
            "imbalance balanced",
            "kept, not by plain",
            "plain, not kept",
        ]);
        for l in balanced {
            let b = l.balance.as_ref().expect("filtered");
            t.row(vec![
                l.name.clone(),
                format!("{}/{}", b.plain.min, b.plain.max),
                format!("{:.3}", b.plain.imbalance),
                format!("{}/{}", b.balanced.min, b.balanced.max),
                format!("{:.3}", b.balanced.imbalance),
                b.kept_not_plain.to_string(),
                b.plain_not_kept.to_string(),
            ]);
        }
        out.push('\n');
        out.push_str(&t.render());
    }
    if let Some(a) = &r.accuracy {
        out.push_str(&format!(
            "\naccuracy on {}{}\n",
            a.held_out,
            if a.held_out_is_train {
                " (the training samples: give --eval-range for held-out ones)"
            } else {
                ""
            }
        ));
        out.push_str(&render_stages(&a.stages));
        let fracs: Vec<String> = a.act_frac.iter().map(|f| f.to_string()).collect();
        out.push_str(&format!("EIE activation fractions: {}\n", fracs.join(",")));
    }
    out
}
