//! The CPU baseline beside EIE's simulated time (`bench-paper --cpu`, `simulate --cpu`).

use eie_baseline::{BATCH, Budget, LayerCpu, Machine, Operands, geomean, measure_layer};
use eie_simulate::LayerView;
use serde::Serialize;

use crate::error::Result;

/// One layer: EIE's simulated time per inference and the CPU's four products.
#[derive(Debug, Clone, Serialize)]
pub struct CpuRow {
    /// The CPU's times.
    #[serde(flatten)]
    pub cpu: LayerCpu,
    /// EIE's simulated time per inference, us.
    pub eie_us: f64,
    /// CPU time per inference over EIE's: dense and CSR, batch 1 and batch 64.
    pub speedup: Speedups,
}

/// CPU time per inference over EIE's, for each of the four products (not finite for a run
/// of no time).
#[derive(Debug, Serialize, Clone, Copy)]
pub struct Speedups {
    /// Dense f32, batch 1.
    pub dense: f64,
    /// CSR, batch 1.
    pub sparse: f64,
    /// Dense f32, per inference of a batch of [`BATCH`].
    pub dense_batch: f64,
    /// CSR, per inference of a batch of [`BATCH`].
    pub sparse_batch: f64,
}

/// The machine, every layer, and the geometric means of the speed-ups.
#[derive(Debug, Clone, Serialize)]
pub struct CpuReport {
    /// This machine's CPU, threads and energy counter.
    pub machine: Machine,
    /// Every layer.
    pub layers: Vec<CpuRow>,
    /// The geometric means of the layers' speed-ups.
    pub geomean: Speedups,
}

impl CpuRow {
    /// The row of a layer the CPU ran in `cpu` and EIE in `eie_us`.
    pub fn new(cpu: LayerCpu, eie_us: f64) -> Self {
        let per = |s: f64, batch: usize| s * 1e6 / batch as f64 / eie_us;
        let speedup = Speedups {
            dense: per(cpu.dense.median_s, 1),
            sparse: per(cpu.sparse.median_s, 1),
            dense_batch: per(cpu.dense_batch.median_s, BATCH),
            sparse_batch: per(cpu.sparse_batch.median_s, BATCH),
        };
        Self {
            cpu,
            eie_us,
            speedup,
        }
    }
}

impl CpuReport {
    /// The report of `layers`, measured on `machine`.
    pub fn new(machine: Machine, layers: Vec<CpuRow>) -> Self {
        let g = |f: fn(&Speedups) -> f64| {
            geomean(&layers.iter().map(|l| f(&l.speedup)).collect::<Vec<_>>())
        };
        let geomean = Speedups {
            dense: g(|s| s.dense),
            sparse: g(|s| s.sparse),
            dense_batch: g(|s| s.dense_batch),
            sparse_batch: g(|s| s.sparse_batch),
        };
        Self {
            machine,
            layers,
            geomean,
        }
    }

    /// Times each of `layers` (a layer, its float inputs, EIE's time per inference in us) on
    /// this machine's CPU, one after the other, nothing else running.
    pub fn measure<'a>(
        layers: impl IntoIterator<Item = (LayerView<'a>, Vec<Vec<f32>>, f64)>,
    ) -> Result<Self> {
        let machine = Machine::this();
        let rows = layers
            .into_iter()
            .map(|(view, inputs, eie_us)| -> Result<CpuRow> {
                let ops = Operands::of(view, &inputs)?;
                let cpu = measure_layer(&ops, &Budget::default(), machine.counter.as_ref());
                Ok(CpuRow::new(cpu, eie_us))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self::new(machine, rows))
    }
}
