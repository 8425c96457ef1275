//! A chain of layers (or layers side by side) through the functional and timing models.

use eie_baseline::BATCH;
use eie_energy::Key;
use eie_energy::{Counts, Energy, EnergyReport, Runs};
use eie_images::Residency;
use eie_pipeline::{recorded_capacity, recorded_language};
use eie_simulate::LayerView;
use eie_simulate::fixed::from_q16;
use eie_simulate::run::{LayerStep, Mode, fractions, run_chain, run_independent};
use eie_simulate::timing::{gops, load_efficiency};
use serde::Serialize;

use super::Request;
use crate::error::Result;
use crate::packed::{PackedModel, check_pes};
use crate::report::Schema;
use crate::report::cpu::CpuReport;
use crate::report::energy::CostReport;
use crate::report::timing::{LayerRun, TimingReport, layer_run};

/// Every vector through every layer.
#[derive(Debug, Clone, Serialize)]
pub struct ChainReport {
    /// The report's schema.
    pub schema: Schema,
    /// "chained" or "independent".
    pub mode: &'static str,
    /// PEs.
    pub pes: usize,
    /// The clock.
    pub clock_mhz: f64,
    /// Activation queue depth.
    pub fifo: usize,
    /// Accumulator width.
    pub acc_bits: u8,
    /// Activation fractional bits at every layer boundary (chained mode), or per layer its
    /// input's and output's (independent mode).
    pub fractions: Vec<Vec<u8>>,
    /// Every vector's run.
    pub vectors: Vec<VectorRun>,
    /// What the runs cost (docs/energy.md): per layer and for the model, the mean energy per
    /// inference and the savings breakdown over every vector.
    pub energy: CostReport,
    /// The same layers on this machine's CPU, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<CpuReport>,
    /// The whole model against the PEs' SRAMs, when every layer ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub residency: Option<Box<ResidencyReport>>,
    /// The `model_type` of a language model: every layer runs once per token, and an
    /// inference is a token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
}

/// Whether the whole model stays in the PEs' SRAMs from one inference (one token) to the
/// next, and what an inference costs when it does not: the per-layer figures count only
/// what each layer alone does not fit; a model that does not fit as a whole is fetched from
/// DRAM, beyond its SRAMs, on every inference.
#[derive(Debug, Clone, Serialize)]
pub struct ResidencyReport {
    /// Every PE holds its whole share of every layer.
    pub resident: bool,
    /// The most Spmat bytes one PE holds of the whole model.
    pub spmat_bytes_per_pe: u64,
    /// The pointer bytes every PE holds of the whole model.
    pub pointer_bytes_per_pe: u64,
    /// The Spmat SRAM per PE.
    pub spmat_capacity: u64,
    /// The pointer SRAM per PE.
    pub pointer_capacity: u64,
    /// Bytes fetched from DRAM per inference, the whole model considered.
    pub dram_bytes_per_inference: u64,
    /// About how many PEs' Spmat SRAMs would hold the model, its entries spread as now
    /// (`None`: its pointers alone overflow every PE's pointer SRAM, whatever the count).
    pub pes_to_hold: Option<u64>,
    /// The DRAM energy per inference the per-layer figures leave out, nJ.
    pub extra_dram_nj: f64,
    /// Energy per inference, the whole model's DRAM traffic included, nJ.
    pub energy_per_inference_nj: f64,
    /// Inferences (tokens) a second: one over the time of every layer's run.
    pub inferences_per_second: f64,
}

/// One vector's run through every layer.
#[derive(Debug, Clone, Serialize)]
pub struct VectorRun {
    /// Every layer.
    pub layers: Vec<LayerRun>,
    /// Their cycles.
    pub total_cycles: u64,
    /// Their time, us.
    pub total_time_us: f64,
    /// Their energy.
    pub energy: EnergyReport,
}

/// A layer's figures over every vector (or every layer's: the total).
#[derive(Debug, Clone, PartialEq)]
pub struct LayerTotals {
    /// The layer ("total" for all of them).
    pub name: String,
    /// Cycles.
    pub cycles: u64,
    /// Time, us.
    pub time_us: f64,
    /// Non-zero activations broadcast.
    pub broadcasts: u64,
    /// Busy PE cycles over all PE cycles.
    pub load_efficiency: f64,
    /// Cycles with perfect balance.
    pub theoretical_cycles: u64,
    /// Broadcast stalls.
    pub stall_cycles: u64,
    /// Spmat lines read.
    pub spmat_reads: u64,
    /// Pointer reads.
    pub pointer_reads: u64,
    /// Effective GOP/s.
    pub gops: f64,
    /// Multiply-accumulates.
    pub macs: u64,
    /// Busy PE cycles.
    pub busy: u64,
    /// Products not yet accumulated when the count stopped (the authors' rules).
    pub unfinished: u64,
}

impl LayerTotals {
    fn of<'a>(
        name: &str,
        runs: impl Iterator<Item = &'a TimingReport>,
        pes: usize,
        clock_mhz: f64,
    ) -> Self {
        let mut t = Self {
            name: name.to_string(),
            cycles: 0,
            time_us: 0.0,
            broadcasts: 0,
            load_efficiency: 0.0,
            theoretical_cycles: 0,
            stall_cycles: 0,
            spmat_reads: 0,
            pointer_reads: 0,
            gops: 0.0,
            macs: 0,
            busy: 0,
            unfinished: 0,
        };
        for r in runs {
            t.cycles += r.cycles;
            t.broadcasts += r.broadcasts;
            t.theoretical_cycles += r.theoretical_cycles;
            t.stall_cycles += r.stall_cycles;
            t.spmat_reads += r.spmat_reads;
            t.pointer_reads += r.pointer_reads;
            t.macs += r.macs;
            t.unfinished += r.unfinished;
            t.busy += r.pe.iter().map(|p| p.busy).sum::<u64>();
        }
        t.finish(pes, clock_mhz)
    }

    fn finish(mut self, pes: usize, clock_mhz: f64) -> Self {
        self.time_us = self.cycles as f64 / clock_mhz;
        self.load_efficiency = load_efficiency(self.busy, self.cycles, pes);
        self.gops = gops(self.macs, self.cycles, clock_mhz);
        self
    }
}

impl ChainReport {
    /// Per layer, its figures over every vector.
    pub fn layer_totals(&self) -> Vec<LayerTotals> {
        let Some(first) = self.vectors.first() else {
            return Vec::new();
        };
        first
            .layers
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let runs = self.vectors.iter().map(|v| &v.layers[i].timing);
                LayerTotals::of(&l.name, runs, self.pes, self.clock_mhz)
            })
            .collect()
    }

    /// Every layer's figures over every vector, added up (load efficiency and GOP/s of the
    /// sums).
    pub fn total(&self) -> LayerTotals {
        let runs = self
            .vectors
            .iter()
            .flat_map(|v| v.layers.iter().map(|l| &l.timing));
        LayerTotals::of("total", runs, self.pes, self.clock_mhz)
    }
}

/// The runs of every vector, their fractions, and each layer's output fraction.
struct Steps {
    steps: Vec<Vec<LayerStep>>,
    fractions: Vec<Vec<u8>>,
    f_out: Vec<u8>,
    /// Per layer, its float inputs for the CPU baseline (chained: the first layer's vectors,
    /// each later layer's inputs as EIE computed them; independent: each layer's own).
    cpu_inputs: Vec<Vec<Vec<f32>>>,
}

impl Request {
    pub(super) fn chain(
        &self,
        model: &PackedModel,
        table: &eie_energy::Table,
    ) -> Result<ChainReport> {
        let views = model.views(self.layer.as_deref())?;
        let pes = views[0].pes();
        check_pes(self.pes, pes)?;
        let params = self.timing;
        let mode = Mode::of(&views, self.input.external())?;
        let s = self.steps(model, &views, mode)?;
        // What each vector's run of each layer did, and what all of them cost.
        let capacity = recorded_capacity(model.settings());
        let pointer_bits = model.bundle.meta().pointer_bits;
        let counts: Vec<Vec<Counts>> = s
            .steps
            .iter()
            .map(|run| {
                run.iter()
                    .zip(&views)
                    .map(|(st, v)| {
                        Counts::of(*v, &st.timing, params.spmat_width, pointer_bits, &capacity)
                    })
                    .collect()
            })
            .collect();
        let mut runs = Runs::new();
        for c in &counts {
            runs.add(c);
        }
        let costed = runs.costed(&views, pointer_bits, table);
        let cpu = match self.cpu {
            true => Some(cpu_baseline(&views, &s)?),
            false => None,
        };
        let vectors: Vec<VectorRun> = s
            .steps
            .iter()
            .zip(&counts)
            .map(|(run, counts)| vector_run(run, counts, &views, &s.f_out, table, params.clock_mhz))
            .collect();
        let energy = CostReport::new(&costed, table);
        let residency = self.layer.is_none().then(|| {
            let r = Residency::of(model.bundle.layers(), pointer_bits, capacity);
            let vectors_run = counts.len().max(1) as f64;
            let counted =
                counts.iter().flatten().map(|c| c.dram_bytes).sum::<u64>() as f64 / vectors_run;
            let extra = (r.dram_bytes_per_pass as f64 - counted).max(0.0);
            let extra_dram_nj = extra / 4.0 * table.get(Key::Dram32) / 1000.0;
            let time_us =
                vectors.iter().map(|v| v.total_time_us).sum::<f64>() / vectors.len().max(1) as f64;
            Box::new(ResidencyReport {
                resident: r.resident(),
                spmat_bytes_per_pe: r.spmat_per_pe,
                pointer_bytes_per_pe: r.pointers_per_pe,
                spmat_capacity: capacity.spmat_bytes,
                pointer_capacity: capacity.pointer_bytes,
                dram_bytes_per_inference: r.dram_bytes_per_pass,
                pes_to_hold: r.pes_to_hold(),
                extra_dram_nj,
                energy_per_inference_nj: energy.model.total_nj + extra_dram_nj,
                inferences_per_second: 1e6 / time_us.max(1e-12),
            })
        });
        Ok(ChainReport {
            schema: Schema("simulate"),
            mode: mode.name(),
            pes,
            clock_mhz: params.clock_mhz,
            fifo: params.fifo_depth,
            acc_bits: self.arith.acc_bits,
            fractions: s.fractions,
            vectors,
            energy,
            cpu,
            residency,
            language: recorded_language(model.settings()).map(str::to_string),
        })
    }

    fn steps(&self, model: &PackedModel, views: &[LayerView], mode: Mode) -> Result<Steps> {
        let (arith, params) = (self.arith, &self.timing);
        let inputs = self.input.layer_inputs(views, mode, model.settings())?;
        Ok(match mode {
            Mode::Chained => {
                let fracs = fractions(views, &inputs, &self.input.act_frac, arith.relu_last)?;
                let steps = inputs
                    .iter()
                    .map(|x| Ok(run_chain(views, x, &fracs, arith, params)?.1))
                    .collect::<Result<Vec<_>>>()?;
                let f_out = fracs[1..].to_vec();
                // Layer i > 0 takes layer i - 1's outputs, as EIE computed them.
                let batch: Vec<Vec<f32>> = inputs.into_iter().take(BATCH).collect();
                let cpu_inputs = (0..views.len())
                    .map(|i| match i {
                        0 => batch.clone(),
                        _ => steps
                            .iter()
                            .take(BATCH)
                            .map(|run: &Vec<LayerStep>| {
                                run[i - 1]
                                    .output
                                    .outputs
                                    .iter()
                                    .map(|&q| from_q16(q, f_out[i - 1]))
                                    .collect()
                            })
                            .collect(),
                    })
                    .collect();
                Steps {
                    steps,
                    fractions: vec![fracs],
                    f_out,
                    cpu_inputs,
                }
            }
            Mode::Independent => {
                // Layers that do not chain run side by side, each on its own generated input.
                let runs = run_independent(views, &inputs, arith, params)?;
                Steps {
                    cpu_inputs: inputs.iter().map(|x| vec![x.clone()]).collect(),
                    f_out: runs.iter().map(|r| r.fracs[1]).collect(),
                    fractions: runs.iter().map(|r| r.fracs.to_vec()).collect(),
                    steps: vec![runs.into_iter().map(|r| r.step).collect()],
                }
            }
        })
    }
}

/// One vector's report.
fn vector_run(
    run: &[LayerStep],
    counts: &[Counts],
    views: &[LayerView],
    f_out: &[u8],
    table: &eie_energy::Table,
    clock_mhz: f64,
) -> VectorRun {
    let energies: Vec<Energy> = counts.iter().map(|c| Energy::of(c, table)).collect();
    let layers: Vec<LayerRun> = run
        .iter()
        .zip(views)
        .zip(&energies)
        .enumerate()
        .map(|(i, ((s, v), e))| layer_run(*v, s, f_out[i], e))
        .collect();
    let total_cycles = layers.iter().map(|l| l.timing.cycles).sum();
    let energy = energies.iter().fold(Energy::default(), |a, e| a.plus(e));
    VectorRun {
        layers,
        total_cycles,
        total_time_us: total_cycles as f64 / clock_mhz,
        energy: energy.report(),
    }
}

/// The CPU baseline, layer after layer, after the simulation: EIE's time per inference is
/// the mean over the vectors.
fn cpu_baseline(views: &[LayerView], s: &Steps) -> Result<CpuReport> {
    let runs = s.steps.len() as f64;
    let layers = views
        .iter()
        .zip(&s.cpu_inputs)
        .enumerate()
        .map(|(i, (v, inputs))| {
            let eie_us = s.steps.iter().map(|st| st[i].timing.time_us()).sum::<f64>() / runs;
            (*v, inputs.clone(), eie_us)
        });
    CpuReport::measure(layers.collect::<Vec<_>>())
}
