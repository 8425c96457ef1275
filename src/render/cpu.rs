//! The CPU baseline beside EIE's simulated time, as `bench-paper --cpu` and `simulate --cpu`
//! print it.

use eie_baseline::{BATCH, LayerCpu, Machine, geomean};
use serde::Serialize;

use crate::render::table::Table;

/// One layer: EIE's simulated time per inference and the CPU's four products.
#[derive(Serialize)]
pub struct CpuRow {
    #[serde(flatten)]
    pub cpu: LayerCpu,
    /// EIE's simulated time per inference, us.
    pub eie_us: f64,
    /// CPU time per inference over EIE's: dense and CSR, batch 1 and batch 64.
    pub speedup: Speedups,
}

#[derive(Serialize, Clone, Copy)]
pub struct Speedups {
    pub dense: f64,
    pub sparse: f64,
    pub dense_batch: f64,
    pub sparse_batch: f64,
}

/// `--json`: the machine, every layer, and the geometric means of the speed-ups.
#[derive(Serialize)]
pub struct CpuReport {
    pub machine: Machine,
    pub layers: Vec<CpuRow>,
    pub geomean: Speedups,
}

impl CpuRow {
    pub fn new(cpu: LayerCpu, eie_us: f64) -> Self {
        // CPU time per inference over EIE's (not finite for a run of no time).
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

    /// The printed table: times per inference and EIE's speed-up over each.
    pub fn render(&self) -> String {
        // Energy columns only where the machine measured some.
        let measured = self.layers.iter().any(|l| l.cpu.dense.energy_j.is_some());
        let mut header = vec![
            "layer",
            "EIE us",
            "dense us",
            "CSR us",
            "dense/64 us",
            "CSR/64 us",
            "x dense",
            "x CSR",
            "x dense/64",
            "x CSR/64",
        ];
        if measured {
            header.extend(["CPU dense uJ", "CPU CSR uJ"]);
        }
        let mut t = Table::new(&header);
        let uj = |e: Option<f64>| e.map_or("-".into(), |j| format!("{:.2}", j * 1e6));
        let us = |s: f64, batch: usize| format!("{:.2}", s * 1e6 / batch as f64);
        // A run of no time (nothing broadcast) has no speed-up to speak of.
        let x = |v: f64| {
            if v.is_finite() {
                format!("{v:.1}")
            } else {
                "-".into()
            }
        };
        for l in &self.layers {
            let mut row = vec![
                l.cpu.name.clone(),
                format!("{:.2}", l.eie_us),
                us(l.cpu.dense.median_s, 1),
                us(l.cpu.sparse.median_s, 1),
                us(l.cpu.dense_batch.median_s, BATCH),
                us(l.cpu.sparse_batch.median_s, BATCH),
                x(l.speedup.dense),
                x(l.speedup.sparse),
                x(l.speedup.dense_batch),
                x(l.speedup.sparse_batch),
            ];
            if measured {
                row.extend([uj(l.cpu.dense.energy_j), uj(l.cpu.sparse.energy_j)]);
            }
            t.row(row);
        }
        let g = &self.geomean;
        t.row(vec![
            "geometric mean".into(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            x(g.dense),
            x(g.sparse),
            x(g.dense_batch),
            x(g.sparse_batch),
        ]);
        let m = &self.machine;
        format!(
            "\nCPU baseline: {}, {} threads; faer's products use them all for layers of a million weights or more (its CSR matrix-vector product one; its CSR-times-matrix product passes over the matrix once per batch column); the median of repeated runs; /64: per inference of a batch of {BATCH}\n{}energy on the CPU: {}\nGPU: {}\n",
            m.cpu,
            m.threads,
            t.render(),
            m.energy,
            m.gpu
        )
    }
}
