//! A layer's run as reports carry it: its timing, per-PE counters, energy and outputs.

use eie_energy::{Energy, EnergyReport};
use eie_simulate::fixed::from_q16;
use eie_simulate::run::LayerStep;
use eie_simulate::{LayerTiming, LayerView};
use serde::Serialize;

/// One layer of one vector's run.
#[derive(Debug, Clone, Serialize)]
pub struct LayerRun {
    /// The layer.
    pub name: String,
    /// What the timing model counted.
    #[serde(flatten)]
    pub timing: TimingReport,
    /// What the run cost (docs/energy.md).
    pub energy: EnergyReport,
    /// The layer's outputs.
    pub outputs: Outputs,
}

/// A layer's timing (docs/timing-model.md).
#[derive(Debug, Clone, Serialize)]
pub struct TimingReport {
    /// Cycles.
    pub cycles: u64,
    /// Time at the clock, us.
    pub time_us: f64,
    /// Busy PE cycles over all PE cycles.
    pub load_efficiency: f64,
    /// Cycles a perfectly balanced machine would take.
    pub theoretical_cycles: u64,
    /// The fewest cycles any schedule could take.
    pub lower_bound: u64,
    /// Products (real entries) not yet accumulated when the count stopped: 0 but under
    /// `--timing-rules authors`, whose simulator can stop early (docs/timing-model.md).
    pub unfinished: u64,
    /// Non-zero activations broadcast.
    pub broadcasts: u64,
    /// Cycles the broadcast stalled on a full queue.
    pub stall_cycles: u64,
    /// Column batches run.
    pub batches: usize,
    /// Multiply-accumulates done (padding included).
    pub macs: u64,
    /// Padding entries walked.
    pub padding: u64,
    /// Spmat lines read.
    pub spmat_reads: u64,
    /// Pointer reads.
    pub pointer_reads: u64,
    /// Bypass events (a write-back read straight from the adder).
    pub bypasses: u64,
    /// Effective GOP/s.
    pub gops: f64,
    /// Every PE's counters.
    pub pe: Vec<PeReport>,
}

/// One PE's counters.
#[derive(Debug, Clone, Serialize)]
pub struct PeReport {
    /// The PE.
    pub index: usize,
    /// Cycles it did a multiply-accumulate.
    pub busy: u64,
    /// Cycles it waited for an activation.
    pub starved: u64,
    /// Cycles its full queue held the broadcast.
    pub blocking: u64,
    /// Entries it walked.
    pub entries: u64,
    /// Spmat lines it read.
    pub spmat_reads: u64,
}

impl From<&LayerTiming> for TimingReport {
    fn from(t: &LayerTiming) -> Self {
        Self {
            cycles: t.cycles,
            time_us: t.time_us(),
            load_efficiency: t.load_efficiency(),
            theoretical_cycles: t.theoretical_cycles(),
            lower_bound: t.lower_bound,
            unfinished: t.unfinished,
            broadcasts: t.broadcasts,
            stall_cycles: t.stall_cycles,
            batches: t.batches,
            macs: t.macs,
            padding: t.padding,
            spmat_reads: t.spmat_reads(),
            pointer_reads: t.pointer_reads,
            bypasses: t.bypasses(),
            gops: t.gops(),
            pe: t
                .pes
                .iter()
                .enumerate()
                .map(|(index, p)| PeReport {
                    index,
                    busy: p.busy,
                    starved: p.starved,
                    blocking: p.blocking,
                    entries: p.entries,
                    spmat_reads: p.spmat_reads,
                })
                .collect(),
        }
    }
}

/// A layer's outputs, as 16-bit values and as numbers.
#[derive(Debug, Clone, Serialize)]
pub struct Outputs {
    /// Their fractional bits.
    pub frac_bits: u8,
    /// The 16-bit values.
    pub fixed: Vec<i16>,
    /// The numbers they stand for.
    pub float: Vec<f32>,
}

/// The report of one layer's step, which cost `energy`.
pub fn layer_run(view: LayerView, s: &LayerStep, f_out: u8, energy: &Energy) -> LayerRun {
    LayerRun {
        name: view.name().to_string(),
        timing: TimingReport::from(&s.timing),
        energy: energy.report(),
        outputs: Outputs {
            frac_bits: f_out,
            fixed: s.output.outputs.clone(),
            float: s
                .output
                .outputs
                .iter()
                .map(|&q| from_q16(q, f_out))
                .collect(),
        },
    }
}
