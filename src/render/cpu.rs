//! The CPU baseline beside EIE's simulated time, as `bench-paper --cpu` and `simulate --cpu`
//! print it.

use eie_baseline::BATCH;
use eie_commands::report::cpu::CpuReport;

use super::table::Table;

/// The printed table: times per inference and EIE's speed-up over each.
pub fn cpu(report: &CpuReport) -> String {
    // Energy columns only where the machine measured some.
    let measured = report.layers.iter().any(|l| l.cpu.dense.energy_j.is_some());
    let mut header = "layer | EIE us | dense us | CSR us | dense/64 us | CSR/64 us | x dense | x CSR | x dense/64 | x CSR/64".to_string();
    if measured {
        header.push_str(" | CPU dense uJ | CPU CSR uJ");
    }
    let mut t = Table::columns(&header);
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
    for l in &report.layers {
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
    let g = &report.geomean;
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
    let m = &report.machine;
    format!(
        "\nCPU baseline: {}, {} threads; faer's products use them all for layers of a million weights or more (its CSR matrix-vector product one; its CSR-times-matrix product passes over the matrix once per batch column); the median of repeated runs; /64: per inference of a batch of {BATCH}\n{}energy on the CPU: {}\nGPU: {}\n",
        m.cpu,
        m.threads,
        t.render(),
        m.energy,
        m.gpu
    )
}
