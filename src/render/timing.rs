//! A layer's run as `simulate --json` reports it.

use eie_energy::{Energy, EnergyReport};
use eie_simulate::fixed::from_q16;
use eie_simulate::run::Step;
use eie_simulate::{LayerTiming, LayerView};
use serde::Serialize;

/// One layer of one vector's run.
#[derive(Serialize)]
pub struct LayerRun {
    pub name: String,
    #[serde(flatten)]
    pub timing: TimingReport,
    /// What the run cost (docs/energy.md).
    pub energy: EnergyReport,
    pub outputs: Outputs,
}

/// A layer's timing.
#[derive(Serialize)]
pub struct TimingReport {
    pub cycles: u64,
    pub time_us: f64,
    pub load_efficiency: f64,
    pub theoretical_cycles: u64,
    pub lower_bound: u64,
    pub broadcasts: u64,
    pub stall_cycles: u64,
    pub batches: usize,
    pub macs: u64,
    pub padding: u64,
    pub spmat_reads: u64,
    pub pointer_reads: u64,
    pub bypasses: u64,
    pub gops: f64,
    pub pe: Vec<PeReport>,
}

#[derive(Serialize)]
pub struct PeReport {
    pub index: usize,
    pub busy: u64,
    pub starved: u64,
    pub blocking: u64,
    pub entries: u64,
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
#[derive(Serialize)]
pub struct Outputs {
    pub frac_bits: u8,
    pub fixed: Vec<i16>,
    pub float: Vec<f32>,
}

/// The report of one layer's step, which cost `energy`.
pub fn layer_run(view: LayerView, s: &Step, f_out: u8, energy: &Energy) -> LayerRun {
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
