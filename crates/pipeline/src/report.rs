//! What compress reports: per layer and in total, the pruning, the weight sharing, the real
//! bytes of the images and Deep Compression's own storage accounting. Every figure is
//! computed from the packed layers and the pipeline's outcomes; docs/compress.md defines
//! each one. The field names are `report.json`'s.

use eie_checkpoint::Skipped;
use eie_format::{BundleMeta, PackedLayer, hex};
use eie_images::{EntryBalance, LayerBytes};
use eie_prune::{Balance, PruneReport};
use eie_quantize::{Clustering, coded_bits};
use serde::Serialize;

use crate::calibrated::CalibrationReport;
use crate::plan::LayerPlan;

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The tool that made the images.
    pub tool_version: String,
    /// The checkpoint they were made from.
    pub source: Source,
    /// Processing elements.
    pub pes: usize,
    /// Width of a column pointer.
    pub pointer_bits: u8,
    /// Every layer, in order.
    pub layers: Vec<LayerReport>,
    /// Sums over the layers.
    pub totals: Totals,
    /// `*.weight` tensors the default selection left out, and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<SkippedReport>,
}

/// The source checkpoint.
#[derive(Debug, Clone, Serialize)]
pub struct Source {
    /// Its file name.
    pub name: String,
    /// Lowercase hex SHA-256 of its bytes.
    pub sha256: Option<String>,
}

/// A weight tensor not compressed.
#[derive(Debug, Clone, Serialize)]
pub struct SkippedReport {
    /// Tensor name.
    pub name: String,
    /// Why it was left out.
    pub reason: String,
}

/// One layer's figures.
#[derive(Debug, Clone, Serialize)]
pub struct LayerReport {
    /// Weight tensor.
    pub name: String,
    /// Folded bias tensor.
    pub bias: Option<String>,
    /// Rows (outputs).
    pub rows: usize,
    /// Input columns (the bias column, if any, is not counted here).
    pub inputs: usize,
    /// What pruning did.
    pub pruning: PruningReport,
    /// With balanced pruning: what balancing changed.
    pub balance: Option<BalanceReport>,
    /// What weight sharing did.
    pub quantization: Quantization,
    /// Bits of a relative row index.
    pub index_bits: u8,
    /// Real entries: the surviving weights plus the non-zero biases.
    pub nonzeros: usize,
    /// Entries over all PEs, padding included.
    pub entries: usize,
    /// Padding entries.
    pub padding: usize,
    /// padding / entries, in percent.
    pub padding_pct: f64,
    /// Bytes of the images.
    pub bytes: Bytes,
    /// Compression ratios.
    pub compression: Compression,
    /// Entries per PE.
    pub entries_per_pe: PeBalance,
    /// Entries every PE stores, over the column batches, PE by PE (the largest is the
    /// bottleneck).
    pub entries_by_pe: Vec<u64>,
    /// The distribution of the weights before pruning and of the survivors.
    pub histogram: WeightHistogram,
    /// What calibration did (a layer compressed with calibration statistics).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub calibration: Option<CalibrationReport>,
}

/// A layer's weights in [`eie_prune::HISTOGRAM_BINS`] equal bins over `[-limit, limit]`:
/// the checkpoint's weights before pruning (zeros included) and the survivors before
/// sharing (for retraining, the retrained survivors), binned alike; values past the limit
/// count in the end bins. With the threshold and the centroids these are Deep Compression's
/// figures of the weight distribution.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WeightHistogram {
    /// Half the range: the largest |w| of either (of the weights before pruning, when
    /// calibration updated the survivors).
    pub limit: f32,
    /// Weights per bin before pruning; none for a retrained matrix that is no one tensor
    /// of the checkpoint (an LSTM layer's packed `[W_ih | W_hh]`).
    pub before: Option<Vec<u64>>,
    /// Survivors per bin.
    pub kept: Vec<u64>,
    /// Whether the survivors' values are not those before pruning (retrained, or updated by
    /// calibration): then `kept` is no subset of `before`.
    pub updated: bool,
}

impl WeightHistogram {
    /// `before` (counted by the caller over `limit`) and the survivors `kept`.
    pub fn new(limit: f32, before: Option<Vec<u64>>, kept: &[f32]) -> Self {
        Self {
            limit,
            before,
            kept: eie_prune::histogram_of(kept, limit, eie_prune::HISTOGRAM_BINS),
            updated: false,
        }
    }

    /// The same, marked as updated when `updated`.
    pub fn updated(self, updated: bool) -> Self {
        Self { updated, ..self }
    }
}

/// What pruning did to a layer.
#[derive(Debug, Clone, Serialize)]
pub struct PruningReport {
    /// The rule.
    pub rule: String,
    /// rows x inputs.
    pub weights: u64,
    /// Non-zeros before pruning.
    pub nonzeros_before: u64,
    /// Weights kept.
    pub kept: u64,
    /// kept / weights.
    pub density: f64,
    /// Smallest kept magnitude (plain pruning); null when nothing is kept.
    pub threshold: Option<f32>,
}

/// What balanced pruning changed.
#[derive(Debug, Clone, Serialize)]
pub struct BalanceReport {
    /// Weights kept that plain pruning would have pruned.
    pub kept_not_plain: u64,
    /// Weights plain pruning would have kept that were pruned.
    pub plain_not_kept: u64,
    /// Non-zeros per PE with plain magnitude pruning.
    pub plain: PeBalance,
    /// Non-zeros per PE with balanced pruning.
    pub balanced: PeBalance,
}

/// A per-PE distribution.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct PeBalance {
    /// Fewest in a PE.
    pub min: f64,
    /// Mean per PE.
    pub mean: f64,
    /// Most in a PE.
    pub max: f64,
    /// max / mean.
    pub imbalance: f64,
    /// mean / max (1 for an empty layer): the load-balance efficiency, the share of the
    /// busiest PE's time the average PE works.
    pub efficiency: f64,
}

impl PeBalance {
    fn of(b: &Balance) -> Self {
        Self {
            min: b.min as f64,
            mean: b.mean,
            max: b.max as f64,
            imbalance: b.imbalance(),
            efficiency: 1.0 / b.imbalance(),
        }
    }

    fn of_entries(b: &EntryBalance) -> Self {
        Self {
            min: b.min as f64,
            mean: b.mean,
            max: b.max as f64,
            imbalance: b.imbalance(),
            efficiency: 1.0 / b.imbalance(),
        }
    }
}

/// What weight sharing did to a layer.
#[derive(Debug, Clone, Serialize)]
pub struct Quantization {
    /// The codebook method.
    pub method: String,
    /// Bits of a code.
    pub code_bits: u8,
    /// The shared values, ascending (code c holds value c - 1 of this list; code 0 is zero).
    pub centroids: Vec<f32>,
    /// Values clustered: surviving weights plus non-zero biases.
    pub clustered: u64,
    /// Sum of squared differences between each clustered value and its shared value.
    pub sse: f64,
    /// Lloyd iterations run.
    pub iterations: u32,
    /// False when Lloyd stopped at its cap.
    pub converged: bool,
    /// For the optimal codebook of a very large layer: its estimated distance to the optimum.
    pub optimal_bound: Option<f64>,
    /// Fractional bits of the 16-bit fixed-point codebook.
    pub fixed_frac_bits: u8,
    /// Largest |centroid - its 16-bit fixed-point value|.
    pub fixed_max_error: f64,
    /// Entries holding each code, over all PEs: code 0 counts the padding, code c the
    /// weights (and biases) sharing centroid c - 1.
    pub code_counts: Vec<u64>,
}

/// Bytes of a layer.
#[derive(Debug, Clone, Copy, Serialize, Default)]
pub struct Bytes {
    /// Spmat images, over all PEs: codes + indices + word_fill.
    pub spmat: u64,
    /// Of spmat, the entries' codes: entries x code bits / 8, rounded down.
    pub codes: u64,
    /// Of spmat, the entries' relative row indices: entries x index bits / 8, rounded down.
    pub indices: u64,
    /// Of spmat, the rest: the unused bits of each PE's last 64-bit word and of words
    /// whose width is not a whole number of entries.
    pub word_fill: u64,
    /// Pointer images, over all PEs.
    pub pointers: u64,
    /// The codebook image.
    pub codebook: u64,
    /// spmat + pointers + codebook: the EIE images.
    pub total: u64,
    /// The same weights (and bias) as dense f32.
    pub dense_f32: u64,
}

/// Compression ratios.
#[derive(Debug, Clone, Copy, Serialize, Default)]
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

/// Sums over the layers.
#[derive(Debug, Clone, Serialize)]
pub struct Totals {
    /// Weights.
    pub weights: u64,
    /// Weights kept.
    pub kept: u64,
    /// kept / weights.
    pub density: f64,
    /// Real entries.
    pub nonzeros: usize,
    /// Entries, padding included.
    pub entries: usize,
    /// Padding entries.
    pub padding: usize,
    /// padding / entries, in percent.
    pub padding_pct: f64,
    /// Bytes.
    pub bytes: Bytes,
    /// Ratios of the sums.
    pub compression: Compression,
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

use eie_images::pct;

/// What compressing one layer produced, besides its packed streams.
#[derive(Debug, Clone)]
pub struct LayerOutcome {
    /// What pruning did.
    pub prune: PruneReport,
    /// What the clustering did.
    pub clustering: Clustering,
    /// The centroids actually stored (rounded to the weight's dtype when it is narrower
    /// than f32), ascending.
    pub centroids: Vec<f32>,
    /// SSE of the stored centroids over the surviving weights and the bias values.
    pub sse: f64,
    /// Values clustered (surviving weights plus non-zero biases).
    pub clustered: u64,
    /// Entries of Deep Compression's own sparse layout of the same codes: one stream over
    /// the row-major matrix, relative indices of the layer's width, padding where a gap
    /// exceeds them (no per-PE interleaving, no pointers).
    pub dc_entries: u64,
    /// What calibration did, for a layer compressed with calibration statistics.
    pub calibration: Option<CalibrationReport>,
    /// The weights' distribution before pruning and after.
    pub histogram: WeightHistogram,
}

impl LayerReport {
    /// The figures of a layer planned as `plan` and stored as `parts` (its column batches in
    /// order, or the whole layer) with `pointer_bits`-bit pointers. Splitting a layer slices
    /// its streams, so every figure of the whole layer is a sum over its parts.
    pub fn new(
        plan: &LayerPlan,
        outcome: &LayerOutcome,
        parts: &[PackedLayer],
        pointer_bits: u8,
    ) -> Self {
        let o = outcome;
        let first = &parts[0];
        let stored = LayerBytes::of_parts(parts, pointer_bits);
        let (rows, inputs) = (plan.rows, plan.inputs);
        let weights = (rows * inputs) as u64;
        let dense_f32 = 4
            * (weights
                + if first.bias().is_some() {
                    rows as u64
                } else {
                    0
                });
        let entries = parts.iter().map(PackedLayer::entries).sum::<usize>() as u64;
        let codes = entries * first.code_bits() as u64 / 8;
        let indices = entries * first.index_bits() as u64 / 8;
        let bytes = Bytes {
            spmat: stored.spmat,
            codes,
            indices,
            word_fill: stored.spmat - codes - indices,
            pointers: stored.pointers,
            codebook: stored.codebook,
            total: stored.total(),
            dense_f32,
        };
        let book = first.codebook();
        let dc_bytes =
            (o.dc_entries * first.entry_bits() as u64).div_ceil(8) + 4 * book.capacity() as u64;
        let (mut code_freq, mut z_freq) = (
            vec![0u64; 1 << first.code_bits()],
            vec![0u64; 1 << first.index_bits()],
        );
        for s in parts.iter().flat_map(|p| p.streams()) {
            s.codes().iter().for_each(|&c| code_freq[c as usize] += 1);
            s.z().iter().for_each(|&z| z_freq[z as usize] += 1);
        }
        // Payload, plus one length byte per symbol for each code table.
        let huffman_bytes = (coded_bits(&code_freq) + coded_bits(&z_freq)).div_ceil(8)
            + (code_freq.len() + z_freq.len()) as u64
            + stored.pointers
            + stored.codebook;
        let compression = Compression {
            vs_dense: ratio(dense_f32, bytes.total),
            deep_compression_pq_bytes: dc_bytes,
            deep_compression_pq: ratio(dense_f32, dc_bytes),
            huffman_bytes,
            vs_dense_huffman: ratio(dense_f32, huffman_bytes),
        };
        let mut entries_by_pe = vec![0u64; first.pes()];
        for part in parts {
            for (k, s) in part.streams().iter().enumerate() {
                entries_by_pe[k] += s.entries() as u64;
            }
        }
        let sum = |f: fn(&PackedLayer) -> usize| parts.iter().map(f).sum::<usize>();
        let (nonzeros, entries, padding) = (
            sum(PackedLayer::nonzeros),
            sum(PackedLayer::entries),
            sum(PackedLayer::padding),
        );
        Self {
            name: first.name().to_string(),
            bias: first.bias().map(str::to_string),
            rows,
            inputs,
            pruning: PruningReport {
                rule: plan.settings.pruning_description(),
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
                method: plan.settings.method_name(),
                code_bits: first.code_bits(),
                centroids: o.centroids.clone(),
                clustered: o.clustered,
                sse: o.sse,
                iterations: o.clustering.iterations,
                converged: o.clustering.converged,
                optimal_bound: o.clustering.optimal_bound,
                fixed_frac_bits: book.frac_bits(),
                fixed_max_error: book.max_fixed_error(),
                code_counts: code_freq.clone(),
            },
            index_bits: first.index_bits(),
            nonzeros,
            entries,
            padding,
            padding_pct: pct(padding, entries),
            bytes,
            compression,
            entries_per_pe: PeBalance::of_entries(&EntryBalance::of_parts(parts)),
            entries_by_pe,
            histogram: o.histogram.clone(),
            calibration: o.calibration.clone(),
        }
    }
}

impl Report {
    /// The report of a model whose bundle has `meta`, packed for `pes` PEs, from its layers'
    /// figures and the weights left out.
    pub fn new(
        meta: &BundleMeta,
        pes: usize,
        layers: Vec<LayerReport>,
        skipped: &[Skipped],
    ) -> Self {
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
        for l in &layers {
            totals.weights += l.pruning.weights;
            totals.kept += l.pruning.kept;
            totals.nonzeros += l.nonzeros;
            totals.entries += l.entries;
            totals.padding += l.padding;
            let b = &mut totals.bytes;
            b.spmat += l.bytes.spmat;
            b.codes += l.bytes.codes;
            b.indices += l.bytes.indices;
            b.word_fill += l.bytes.word_fill;
            b.pointers += l.bytes.pointers;
            b.codebook += l.bytes.codebook;
            b.total += l.bytes.total;
            b.dense_f32 += l.bytes.dense_f32;
            totals.compression.deep_compression_pq_bytes += l.compression.deep_compression_pq_bytes;
            totals.compression.huffman_bytes += l.compression.huffman_bytes;
        }
        totals.density = ratio(totals.kept, totals.weights);
        totals.padding_pct = pct(totals.padding, totals.entries);
        let c = &mut totals.compression;
        c.vs_dense = ratio(totals.bytes.dense_f32, totals.bytes.total);
        c.deep_compression_pq = ratio(totals.bytes.dense_f32, c.deep_compression_pq_bytes);
        c.vs_dense_huffman = ratio(totals.bytes.dense_f32, c.huffman_bytes);
        Self {
            tool_version: meta.tool_version.clone(),
            source: Source {
                name: meta.source.name.clone(),
                sha256: meta.source.sha256.map(|h| hex(&h)),
            },
            pes,
            pointer_bits: meta.pointer_bits,
            layers,
            totals,
            skipped: skipped
                .iter()
                .map(|s| SkippedReport {
                    name: s.name.clone(),
                    reason: s.reason.to_string(),
                })
                .collect(),
        }
    }
}

/// Entries of Deep Compression's relative-index stream over row-major sparse positions:
/// each non-zero, plus a padding entry per 2^index_bits zeros of the gap before it.
pub fn deep_compression_entries(positions: &[u64], index_bits: u8) -> u64 {
    let period = 1u64 << index_bits;
    let mut next = 0u64;
    positions
        .iter()
        .map(|&p| {
            let n = 1 + (p - next) / period;
            next = p + 1;
            n
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_compression_pads_each_gap_longer_than_its_indices() {
        // 4-bit indices: a gap of 16 zeros costs one padding entry, of 15 none.
        assert_eq!(deep_compression_entries(&[0, 16, 33], 4), 4);
        assert_eq!(deep_compression_entries(&[15], 4), 1);
        assert_eq!(deep_compression_entries(&[], 4), 0);
    }
}
