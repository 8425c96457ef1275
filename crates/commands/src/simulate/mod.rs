//! `simulate`: a packed model through the bit-exact functional model and the cycle-level
//! timing model, from the bundle's streams: cycles, time, load balance, SRAM reads, energy
//! and the outputs; a described model (a CNN, an LSTM) one whole sample at a time.

mod chain;
mod described;
mod means;

use std::path::{Path, PathBuf};

use eie_evaluate::program::Program;
use eie_pipeline::output::Inputs;
use eie_simulate::{Arith, TimingParams};
use serde::Serialize;

pub use chain::{ChainReport, LayerTotals, ResidencyReport, VectorRun};
pub use described::{DescribedLayer, DescribedReport};
pub use means::{LayerMeans, Means};

use crate::charts::{Draw, SavingsChart, savings_title};
use crate::energy_table::EnergyTable;
use crate::error::Result;
use crate::inputs::InputRequest;
use crate::packed::{PackedModel, add_model_inputs, model_file};
use crate::report::energy::CostReport;

/// What to simulate, on which inputs, on which hardware.
#[derive(Debug, Clone)]
pub struct Request {
    /// An output folder of `pack` or `compress`, or a `model.eie`.
    pub dir: PathBuf,
    /// The PE count, as a check: it is fixed when a model is packed.
    pub pes: Option<u32>,
    /// Only this layer.
    pub layer: Option<String>,
    /// The input vectors.
    pub input: InputRequest,
    /// The timing model's hardware.
    pub timing: TimingParams,
    /// The EIE model's arithmetic.
    pub arith: Arith,
    /// The energy model's constants.
    pub energy: EnergyTable,
    /// The savings breakdown's chart.
    pub chart: SavingsChart,
    /// Also run the layers on this machine's CPU (dense and CSR, batch 1 and 64).
    pub cpu: bool,
    /// The most memory the run may take, estimated before the model is read: the model read
    /// and decoded, a dataset's samples.
    pub max_memory: u64,
}

impl Request {
    /// Simulate the model in `dir` on one generated input, on the paper's hardware.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            pes: None,
            layer: None,
            input: InputRequest::default(),
            timing: TimingParams::default(),
            arith: Arith::default(),
            energy: EnergyTable::default(),
            chart: SavingsChart::default(),
            cpu: false,
            max_memory: crate::DEFAULT_MAX_MEMORY,
        }
    }
}

/// What the runs did and cost.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Report {
    /// A chain of layers (or layers side by side), every vector through every layer.
    Chain(ChainReport),
    /// A described model, every sample through its program.
    Described(DescribedReport),
}

impl Request {
    /// The checks that need no file: the hardware's and the arithmetic's values, the
    /// generated inputs' density.
    pub fn check(&self) -> Result<()> {
        if let Some(n) = self.pes {
            crate::checks::pes(n)?;
        }
        self.timing.validate()?;
        self.arith.validate()?;
        crate::checks::inputs(&self.input)
    }
}

impl Report {
    /// EIE's mean cycles per inference: a chain's every layer for one vector, a described
    /// model's every EIE run for one sample.
    pub fn cycles_per_inference(&self) -> f64 {
        match self {
            Report::Chain(r) => {
                let total: u64 = r.vectors.iter().map(|v| v.total_cycles).sum();
                total as f64 / r.vectors.len().max(1) as f64
            }
            Report::Described(r) => r.cycles_per_inference,
        }
    }

    /// What the runs cost, per inference (docs/energy.md).
    pub fn energy(&self) -> &CostReport {
        match self {
            Report::Chain(r) => &r.energy,
            Report::Described(r) => &r.energy,
        }
    }
}

impl Request {
    /// Runs the simulation; a savings chart asked for is drawn by `draw`.
    pub fn run(&self, draw: &dyn Draw) -> Result<Report> {
        let (table, inputs) = self.prepare(&self.dir, &model_file(&self.dir))?;
        let model =
            PackedModel::load_estimated(&self.dir, self.input.estimate()?, self.max_memory)?;
        self.simulate(&model, &table, draw, &inputs)
    }

    /// Runs the simulation on `model`, loaded already (the request's `dir` is not read): what
    /// a caller that simulates one model many times (a Python session) calls.
    pub fn run_on(&self, model: &PackedModel, draw: &dyn Draw) -> Result<Report> {
        let (table, inputs) = self.prepare(&model.given, &model.file)?;
        self.simulate(model, &table, draw, &inputs)
    }

    /// The checks before any model is read, the energy table, and the inputs no chart may go
    /// over: the model (`given`, its `model.eie` `file`), its folder, the input vectors, the
    /// dataset's files, the energy table.
    fn prepare(&self, given: &Path, file: &Path) -> Result<(eie_energy::Table, Inputs)> {
        self.check()?;
        let table = self.energy.table()?;
        let mut inputs = Inputs::new();
        add_model_inputs(given, file, &mut inputs);
        inputs
            .extend(self.input.inputs()?)
            .extend(&self.energy.file);
        self.chart.check(&inputs)?;
        Ok((table, inputs))
    }

    fn simulate(
        &self,
        model: &PackedModel,
        table: &eie_energy::Table,
        draw: &dyn Draw,
        inputs: &Inputs,
    ) -> Result<Report> {
        if self.cpu {
            // The CPU baseline's dense and sparse copies of one layer at a time, known once
            // the layers are.
            let largest = model
                .views(self.layer.as_deref())?
                .iter()
                .map(|v| (v.rows() * v.cols()) as u64 * 8)
                .max()
                .unwrap_or(0);
            let decoded = std::fs::metadata(&model.file).map_or(0, |f| f.len());
            let mut estimate = self.input.estimate()?;
            estimate
                .add("model.eie decoded", decoded)
                .add("the CPU baseline's copies of the largest layer", largest);
            estimate.check(self.max_memory)?;
        }
        let report = match Program::of(&model.bundle)? {
            Some(program) => Report::Described(self.described(model, &program, table)?),
            None => Report::Chain(self.chain(model, table)?),
        };
        let savings = &report.energy().costed.savings;
        let title = savings_title(&model.bundle.meta().source.name);
        self.chart.write(inputs, draw, &title, savings)?;
        Ok(report)
    }
}
