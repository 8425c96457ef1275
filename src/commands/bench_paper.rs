//! `bench-paper`: the EIE paper's nine benchmark layers (Table III), generated with uniform
//! random sparsity, packed with 4-bit codes and indices, and simulated.

use std::time::Instant;

use anyhow::Result;
use eie_baseline::{Budget, Machine, Operands, measure_layer};
use eie_energy::{Energy, EnergyReport, LayerEnergy, Savings, combine, layer_energy, savings};
use eie_images::Fit;
use eie_simulate::bench::{PaperResult, bench_layer};
use eie_simulate::fixed::from_q16;
use eie_simulate::workload::PAPER_LAYERS;
use rayon::prelude::*;
use serde::Serialize;

use crate::options::{
    ArithArgs, ChartArgs, ColumnBatchArgs, CpuArgs, EnergyArgs, PesArgs, TimingArgs,
};
use crate::render::cpu::{CpuReport, CpuRow};
use crate::render::energy::{SAVINGS_HEADING, energy_table, heading, savings_table, waterfall};
use crate::render::table::Table;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub pes: PesArgs,
    #[command(flatten)]
    pub column_batch: ColumnBatchArgs,
    /// Seed of the generated weights and activations.
    #[arg(long, default_value_t = 2016)]
    pub seed: u64,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Print the wall time and the entries simulated per second to stderr.
    #[arg(long)]
    pub timings: bool,
    #[command(flatten)]
    pub timing: TimingArgs,
    #[command(flatten)]
    pub arith: ArithArgs,
    #[command(flatten)]
    pub energy: EnergyArgs,
    #[command(flatten)]
    pub chart: ChartArgs,
    #[command(flatten)]
    pub cpu: CpuArgs,
}

/// `--json`: every layer's figures, energy and savings, and the nine layers' together.
#[derive(Serialize)]
struct Report<'a> {
    layers: Vec<LayerReport<'a>>,
    total: Total,
    /// The energy constants used (pJ per action, mW), and their file if not the defaults.
    energy_table: std::collections::BTreeMap<&'static str, f64>,
    energy_table_file: Option<String>,
    /// With --cpu: the same layers on this machine's CPU.
    #[serde(skip_serializing_if = "Option::is_none")]
    cpu: Option<CpuReport>,
}

#[derive(Serialize)]
struct LayerReport<'a> {
    #[serde(flatten)]
    result: &'a PaperResult,
    energy: EnergyReport,
    savings: Savings,
}

#[derive(Serialize)]
struct Total {
    time_us: f64,
    energy: EnergyReport,
    savings: Savings,
}

/// The printed table.
fn render(results: &[PaperResult], pes: usize, clock: f64) -> String {
    let mut t = Table::new(&[
        "layer",
        "size (in x out)",
        "weight %",
        "act %",
        "entries",
        "padding %",
        "batches",
        "theoretical us",
        "simulated us",
        "load eff.",
        "GOP/s",
    ]);
    for r in results {
        t.row(vec![
            r.name.to_string(),
            format!("{}x{}", r.inputs, r.outputs),
            format!("{:.0}", 100.0 * r.weight_density),
            format!("{:.1}", 100.0 * r.act_density),
            r.entries.to_string(),
            format!("{:.1}", r.padding_pct),
            r.batches.to_string(),
            format!("{:.2}", r.theoretical_time_us),
            format!("{:.2}", r.time_us),
            format!("{:.3}", r.load_efficiency),
            format!("{:.1}", r.gops),
        ]);
    }
    format!(
        "EIE paper layers (Table III), {pes} PEs at {clock} MHz, 4-bit codes and indices\n{}",
        t.render()
    )
}

pub fn run(args: Args) -> Result<()> {
    let start = Instant::now();
    let params = args.timing.params()?;
    let arith = args.arith.arith()?;
    let table = args.energy.table()?;
    let mut inputs = eie_pipeline::output::Inputs::new();
    inputs.extend(&args.energy.energy_table);
    args.chart.check(&inputs)?;
    // The paper's memories decide the automatic column batches.
    let fit = Fit {
        column_batch: args.column_batch.column_batch,
        ..Fit::default()
    };
    let pes = args.pes.pes as usize;
    // Layers are independent (each seeded on its own): in parallel, same results.
    let results = (0..PAPER_LAYERS.len())
        .into_par_iter()
        .map(|i| bench_layer(i, pes, &fit, args.seed, arith, &params))
        .collect::<eie_simulate::Result<Vec<_>>>()?;
    let elapsed = start.elapsed().as_secs_f64();
    let energies: Vec<LayerEnergy> = results
        .iter()
        .map(|r| {
            layer_energy(
                r.view(),
                &r.timing,
                params.spmat_width,
                fit.pointer_bits,
                &fit.capacity,
                &table,
            )
        })
        .collect();
    let total = energies
        .iter()
        .fold(Energy::default(), |a, e| a.plus(&e.energy));
    let layer_savings: Vec<Savings> = energies
        .iter()
        .map(|e| savings(&e.facts, &e.energy, &table, 1))
        .collect();
    let total_savings = combine(&layer_savings);
    // The CPU baseline, layer after layer (nothing else running), after the simulation.
    let cpu = if args.cpu.cpu {
        let machine = Machine::this();
        let rows = results
            .iter()
            .map(|r| -> Result<CpuRow> {
                let x: Vec<f32> = r.input.iter().map(|&q| from_q16(q, 14)).collect();
                let ops = Operands::of(r.view(), &[x])?;
                let counter = machine.counter.as_ref();
                Ok(CpuRow::new(
                    measure_layer(&ops, &Budget::default(), counter),
                    r.time_us,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        Some(CpuReport::new(machine, rows))
    } else {
        None
    };
    if args.json {
        let report = Report {
            layers: results
                .iter()
                .zip(&energies)
                .zip(&layer_savings)
                .map(|((result, e), s)| LayerReport {
                    result,
                    energy: e.energy.report(),
                    savings: s.clone(),
                })
                .collect(),
            total: Total {
                time_us: total.time_us,
                energy: total.report(),
                savings: total_savings.clone(),
            },
            energy_table: table.entries(),
            energy_table_file: table.source.clone(),
            cpu,
        };
        outln!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        out!("{}", render(&results, pes, params.clock_mhz));
        let names = results.iter().map(|r| r.name.to_string());
        let rows: Vec<(String, Energy)> = names
            .clone()
            .zip(energies.iter().map(|e| e.energy))
            .collect();
        outln!("\n{}", heading(table.source.as_deref()));
        out!("{}", energy_table(&rows, Some(&total)));
        let mut rows: Vec<(String, Savings)> = names.zip(layer_savings).collect();
        rows.push(("nine layers".into(), total_savings.clone()));
        outln!("\n{SAVINGS_HEADING}");
        out!("{}", savings_table(&rows));
        if let Some(c) = &cpu {
            out!("{}", c.render());
        }
    }
    args.chart.write(&inputs, || {
        waterfall(
            "Where EIE's energy saving comes from: the paper's nine layers",
            &total_savings,
        )
    })?;
    if args.timings {
        let simulated: u64 = results.iter().map(|r| r.entries_simulated).sum();
        errln!(
            "bench-paper: {elapsed:.3} s for the nine layers (generate, pack, functional and timing models); {simulated} entries simulated, {:.1} M entries/s",
            simulated as f64 / elapsed / 1e6
        );
    }
    Ok(())
}
