//! `bench-paper`: one of the EIE paper's benchmark layers (Table III) generated, packed, and
//! run through the functional and the timing model.

use eie_format::PackedLayer;
use eie_images::Fit;
use serde::Serialize;

use crate::error::Result;
use crate::fixed::{Arith, fraction_for};
use crate::float;
use crate::layer::LayerView;
use crate::run::step;
use crate::timing::TimingParams;
use crate::workload::{
    GENERATED_FRAC, PAPER_INDEX_BITS, PAPER_LAYERS, dequantize_generated, paper_layer,
};

/// One paper layer's figures.
#[derive(Debug, Clone, Serialize)]
pub struct PaperResult {
    /// Name in the paper.
    pub name: &'static str,
    /// Inputs.
    pub inputs: usize,
    /// Outputs.
    pub outputs: usize,
    /// Weight density.
    pub weight_density: f64,
    /// Activation density.
    pub act_density: f64,
    /// Entries, padding included.
    pub entries: usize,
    /// Padding entries.
    pub padding: usize,
    /// padding / entries, in percent.
    pub padding_pct: f64,
    /// Column batches the layer ran in.
    pub batches: usize,
    /// Non-zero activations broadcast.
    pub broadcasts: u64,
    /// Cycles with perfect load balance.
    pub theoretical_cycles: u64,
    /// Cycles simulated.
    pub cycles: u64,
    /// Theoretical time.
    pub theoretical_time_us: f64,
    /// Simulated time.
    pub time_us: f64,
    /// Busy PE cycles over all PE cycles.
    pub load_efficiency: f64,
    /// Effective throughput.
    pub gops: f64,
    /// Spmat lines read.
    pub spmat_reads: u64,
    /// Pointer reads.
    pub pointer_reads: u64,
    /// Entries the timing model walked (those of broadcast columns, padding included).
    pub entries_simulated: u64,
    /// The layer as packed (its column batches), for figures computed from the run.
    #[serde(skip)]
    pub parts: Vec<PackedLayer>,
    /// The run.
    #[serde(skip)]
    pub timing: crate::timing::LayerTiming,
    /// Its input activations (14 fractional bits).
    #[serde(skip)]
    pub input: Vec<i16>,
}

impl PaperResult {
    /// The layer as packed.
    pub fn view(&self) -> LayerView<'_> {
        LayerView::new(&self.parts)
    }
}

/// Generates paper layer `index` from `seed` (see [`paper_layer`]), packs it for `pes` PEs
/// with 4-bit codes and indices, splits it into column batches as `fit` says (pointers are
/// not checked: a timing study runs whatever the layout), and simulates it on its
/// activations, its output fraction calibrated on them.
pub fn bench_layer(
    index: usize,
    pes: usize,
    fit: &Fit,
    seed: u64,
    arith: Arith,
    params: &TimingParams,
) -> Result<PaperResult> {
    let spec = &PAPER_LAYERS[index];
    let (codes, book, input) = paper_layer(index, seed);
    let whole = PackedLayer::encode_sparse(spec.name, &codes, book, pes, PAPER_INDEX_BITS)?;
    let (entries, padding) = (whole.entries(), whole.padding());
    let batch = fit.batch_for(&whole);
    let parts = whole.split_columns(batch)?;
    let view = LayerView::new(&parts);
    let x = dequantize_generated(&input);
    let y = float::layer(view, &x, true);
    let f_out = fraction_for(y.iter().fold(0.0, |m: f64, v| m.max(v.abs())));
    let s = step(view, &input, GENERATED_FRAC, f_out, arith, true, params)?;
    let t = &s.timing;
    let entries_simulated = t.pes.iter().map(|p| p.entries).sum();
    Ok(PaperResult {
        name: spec.name,
        inputs: spec.inputs,
        outputs: spec.outputs,
        weight_density: spec.weight_density,
        act_density: spec.act_density,
        entries,
        padding,
        padding_pct: eie_images::pct(padding, entries),
        batches: t.batches,
        broadcasts: t.broadcasts,
        theoretical_cycles: t.theoretical_cycles(),
        cycles: t.cycles,
        theoretical_time_us: t.theoretical_cycles() as f64 / params.clock_mhz,
        time_us: t.time_us(),
        load_efficiency: t.load_efficiency(),
        gops: t.gops(),
        spmat_reads: t.spmat_reads(),
        pointer_reads: t.pointer_reads,
        entries_simulated,
        timing: s.timing,
        parts,
        input,
    })
}
