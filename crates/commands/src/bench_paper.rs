//! `bench-paper`: the EIE paper's nine benchmark layers (Table III), generated with uniform
//! random sparsity at their densities, packed with 4-bit codes and indices, simulated and
//! costed.

use std::time::{Duration, Instant};

use eie_energy::{Energy, EnergyReport, LayerEnergy, Savings, combine, layer_energy, savings};
use eie_images::{ColumnBatch, Fit};
use eie_pipeline::output::Inputs;
use eie_simulate::bench::{PaperResult, bench_layer};
use eie_simulate::workload::{PAPER_LAYERS, dequantize_generated};
use eie_simulate::{Arith, TimingParams};
use rayon::prelude::*;
use serde::Serialize;

use crate::budget::Estimate;
use crate::charts::{Draw, SavingsChart};
use crate::energy_table::EnergyTable;
use crate::error::Result;
use crate::report::Schema;
use crate::report::cpu::CpuReport;

/// On which hardware, with which seed.
#[derive(Debug, Clone)]
pub struct Request {
    /// PEs.
    pub pes: u32,
    /// Column batches (the paper's memories decide the automatic ones).
    pub column_batch: ColumnBatch,
    /// Seed of the generated weights and activations.
    pub seed: u64,
    /// The timing model's hardware.
    pub timing: TimingParams,
    /// The EIE model's arithmetic.
    pub arith: Arith,
    /// The energy model's constants.
    pub energy: EnergyTable,
    /// The savings breakdown's chart.
    pub chart: SavingsChart,
    /// Also run the layers on this machine's CPU.
    pub cpu: bool,
    /// The most memory the run may take, estimated before any layer is generated.
    pub max_memory: u64,
}

impl Request {
    /// Refuses, before any layer is generated, a run whose layers would take more than
    /// `max_memory`: each layer's generated weights (9 bytes a weight as sparse codes) and its
    /// packing, as many layers at once as there are threads (the largest ones), or with the
    /// CPU baseline all nine (kept for it) and the baseline's dense and sparse copies of the
    /// largest.
    fn estimate(&self, pes: usize) -> Result<()> {
        let mut layers: Vec<Estimate> = PAPER_LAYERS
            .iter()
            .map(|spec| {
                let nonzeros =
                    (spec.weight_density * (spec.outputs * spec.inputs) as f64).ceil() as u64;
                let mut e = Estimate::part();
                e.add(format!("{}'s weights", spec.name), nonzeros * 9)
                    .packing(
                        spec.name,
                        (spec.outputs, spec.inputs, nonzeros),
                        (pes, eie_simulate::workload::PAPER_INDEX_BITS),
                        self.timing.fifo_depth,
                        1,
                    );
                e
            })
            .collect();
        layers.sort_by_key(|e| std::cmp::Reverse(e.total()));
        let at_once = if self.cpu {
            PAPER_LAYERS.len()
        } else {
            rayon::current_num_threads().clamp(1, PAPER_LAYERS.len())
        };
        let mut estimate = Estimate::default();
        for e in layers.into_iter().take(at_once) {
            estimate.include(e);
        }
        if self.cpu {
            let dense = PAPER_LAYERS
                .iter()
                .map(|s| (s.outputs * s.inputs) as u64 * 8)
                .max()
                .unwrap_or(0);
            estimate.add("the CPU baseline's copies of the largest layer", dense);
        }
        estimate.check(self.max_memory)
    }
}

impl Default for Request {
    /// The paper's: 64 PEs, its hardware, seed 2016.
    fn default() -> Self {
        Self {
            pes: 64,
            column_batch: ColumnBatch::Auto,
            seed: 2016,
            timing: TimingParams::default(),
            arith: Arith::default(),
            energy: EnergyTable::default(),
            chart: SavingsChart::default(),
            cpu: false,
            max_memory: crate::DEFAULT_MAX_MEMORY,
        }
    }
}

/// Every layer's figures, energy and savings, and the nine layers' together.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The report's schema.
    pub schema: Schema,
    /// Every layer.
    pub layers: Vec<LayerReport>,
    /// The nine layers together.
    pub total: Total,
    /// The energy constants used (pJ per action, mW).
    pub energy_table: std::collections::BTreeMap<&'static str, f64>,
    /// Their file, if not the defaults.
    pub energy_table_file: Option<String>,
    /// The same layers on this machine's CPU, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<CpuReport>,
    /// PEs (not in the JSON: every layer has them).
    #[serde(skip)]
    pub pes: usize,
    /// The clock (not in the JSON).
    #[serde(skip)]
    pub clock_mhz: f64,
    /// Wall time of generating, packing and simulating the nine layers (not in the JSON:
    /// it differs run to run).
    #[serde(skip)]
    pub elapsed: Duration,
}

impl Report {
    /// Entries the nine layers' simulations stepped through, all together.
    pub fn entries_simulated(&self) -> u64 {
        self.layers.iter().map(|l| l.result.entries_simulated).sum()
    }
}

/// One layer.
#[derive(Debug, Clone, Serialize)]
pub struct LayerReport {
    /// Its figures.
    #[serde(flatten)]
    pub result: PaperResult,
    /// Its energy.
    pub energy: EnergyReport,
    /// Its savings breakdown.
    pub savings: Savings,
    /// Its energy as the energy model computed it (not in the JSON, which has its figures).
    #[serde(skip)]
    pub computed: Energy,
}

/// The nine layers together.
#[derive(Debug, Clone, Serialize)]
pub struct Total {
    /// Time, us.
    pub time_us: f64,
    /// Energy.
    pub energy: EnergyReport,
    /// The savings breakdown.
    pub savings: Savings,
    /// The energy as computed (not in the JSON).
    #[serde(skip)]
    pub computed: Energy,
}

impl Request {
    /// Generates, packs and simulates the nine layers (in parallel: each is seeded on its
    /// own, so the results do not depend on the order); a savings chart asked for is drawn
    /// by `draw`.
    pub fn run(&self, draw: &dyn Draw) -> Result<Report> {
        let start = Instant::now();
        crate::checks::pes(self.pes)?;
        let params = self.timing;
        params.validate()?;
        self.arith.validate()?;
        let table = self.energy.table()?;
        let mut inputs = Inputs::new();
        inputs.extend(&self.energy.file);
        self.chart.check(&inputs)?;
        let fit = Fit {
            column_batch: self.column_batch,
            ..Fit::default()
        };
        let pes = self.pes as usize;
        self.estimate(pes)?;
        // Each layer costed as soon as it is run, its packed form then dropped unless the CPU
        // baseline runs it again: memory holds a layer per thread, not the nine.
        let (results, energies): (Vec<PaperResult>, Vec<LayerEnergy>) = (0..PAPER_LAYERS.len())
            .into_par_iter()
            .map(|i| {
                let mut r = bench_layer(i, pes, &fit, self.seed, self.arith, &params)?;
                let e = layer_energy(
                    r.view(),
                    &r.timing,
                    params.spmat_width,
                    fit.pointer_bits,
                    &fit.capacity,
                    &table,
                );
                if !self.cpu {
                    r.parts = Vec::new();
                }
                Ok((r, e))
            })
            .collect::<eie_simulate::Result<Vec<_>>>()?
            .into_iter()
            .unzip();
        let elapsed = start.elapsed();
        let total = energies
            .iter()
            .fold(Energy::default(), |a, e| a.plus(&e.energy));
        let layer_savings: Vec<Savings> = energies
            .iter()
            .map(|e| savings(&e.facts, &e.energy, &table, 1))
            .collect();
        let total_savings = combine(&layer_savings);
        // The CPU baseline, layer after layer (nothing else running), after the simulation.
        let cpu = match self.cpu {
            true => Some(CpuReport::measure(
                results
                    .iter()
                    .map(|r| (r.view(), vec![dequantize_generated(&r.input)], r.time_us))
                    .collect::<Vec<_>>(),
            )?),
            false => None,
        };
        self.chart.write(
            &inputs,
            draw,
            &crate::charts::savings_title("the paper's nine layers"),
            &total_savings,
        )?;
        Ok(Report {
            schema: Schema("bench-paper"),
            layers: results
                .into_iter()
                .zip(&energies)
                .zip(layer_savings)
                .map(|((result, e), savings)| LayerReport {
                    result,
                    energy: e.energy.report(),
                    savings,
                    computed: e.energy,
                })
                .collect(),
            total: Total {
                time_us: total.time_us,
                energy: total.report(),
                savings: total_savings,
                computed: total,
            },
            energy_table: table.entries(),
            energy_table_file: table.source.clone(),
            cpu,
            pes,
            clock_mhz: params.clock_mhz,
            elapsed,
        })
    }
}
