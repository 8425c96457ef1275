//! `bench-paper`: the EIE paper's nine benchmark layers (Table III), generated with uniform
//! random sparsity, packed for 64 PEs with 4-bit codes and indices, and simulated.

use std::time::Instant;

use anyhow::{Result, bail};
use eie_format::{PackedLayer, max_pointer};
use eie_simulate::fixed::fraction_for;
use eie_simulate::workload::{PAPER_LAYERS, PaperLayer, random_activations, random_layer};
use eie_simulate::{LayerView, float};
use rayon::prelude::*;
use serde::Serialize;

use super::table::Table;
use crate::sim::{SimOptions, step};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Processing elements.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub pes: u32,
    /// Column batches: "auto" splits, into batches of 4096 columns (the paper's activation
    /// batch), the layers whose pointers pass 16 bits or 32 KB per PE; a number splits every
    /// layer wider than it; 0 keeps every layer whole (as if pointers were unbounded).
    #[arg(long, value_name = "auto|C", default_value = "auto")]
    pub column_batch: String,
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
    pub sim: SimOptions,
}

/// One layer's figures.
#[derive(Serialize)]
pub struct LayerResult {
    pub name: &'static str,
    pub inputs: usize,
    pub outputs: usize,
    pub weight_density: f64,
    pub act_density: f64,
    pub entries: usize,
    pub padding: usize,
    pub padding_pct: f64,
    pub batches: usize,
    pub broadcasts: u64,
    pub theoretical_cycles: u64,
    pub cycles: u64,
    pub theoretical_time_us: f64,
    pub time_us: f64,
    pub load_efficiency: f64,
    pub gops: f64,
    pub spmat_reads: u64,
    pub pointer_reads: u64,
    /// Entries the timing model walked (those of broadcast columns, padding included).
    pub entries_simulated: u64,
}

/// How a layer is split into column batches.
pub fn batch_for(layer: &PackedLayer, setting: &str) -> Result<usize> {
    match setting {
        "auto" => {
            let too_many = layer.max_pointer() > max_pointer(16);
            let too_wide = (layer.cols() as u64 + 1) * 2 > 32 * 1024;
            Ok(if too_many || too_wide { 4096 } else { 0 })
        }
        n => match n.parse::<usize>() {
            Ok(c) => Ok(c),
            Err(_) => bail!("--column-batch must be \"auto\" or a number of columns, got \"{n}\""),
        },
    }
}

/// Generates, packs and simulates one paper layer.
pub fn bench_layer(
    spec: &PaperLayer,
    index: usize,
    pes: usize,
    column_batch: &str,
    seed: u64,
    sim: &SimOptions,
) -> Result<LayerResult> {
    let (codes, book) = random_layer(
        spec.outputs,
        spec.inputs,
        spec.weight_density,
        4,
        seed + index as u64,
    );
    let whole = PackedLayer::encode_sparse(spec.name, &codes, book, pes, 4)?;
    let (entries, padding) = (whole.entries(), whole.padding());
    let batch = batch_for(&whole, column_batch)?;
    let parts = whole.split_columns(batch)?;
    let view = LayerView::new(&parts);
    let input = random_activations(spec.inputs, spec.act_density, seed + 1000 + index as u64);
    let x: Vec<f32> = input
        .iter()
        .map(|&q| eie_simulate::fixed::from_q16(q, 14))
        .collect();
    let y = float::layer(view, &x, true);
    let f_out = fraction_for(y.iter().fold(0.0, |m: f64, v| m.max(v.abs())));
    let s = step(view, &input, 14, f_out, sim.arith()?, true, &sim.timing()?)?;
    let t = &s.timing;
    let clock = sim.clock_mhz;
    Ok(LayerResult {
        name: spec.name,
        inputs: spec.inputs,
        outputs: spec.outputs,
        weight_density: spec.weight_density,
        act_density: spec.act_density,
        entries,
        padding,
        padding_pct: 100.0 * padding as f64 / entries.max(1) as f64,
        batches: t.batches,
        broadcasts: t.broadcasts,
        theoretical_cycles: t.theoretical_cycles(),
        cycles: t.cycles,
        theoretical_time_us: t.theoretical_cycles() as f64 / clock,
        time_us: t.time_us(),
        load_efficiency: t.load_efficiency(),
        gops: t.gops(),
        spmat_reads: t.spmat_reads(),
        pointer_reads: t.pointer_reads,
        entries_simulated: t.pes.iter().map(|p| p.entries).sum(),
    })
}

/// The printed table.
pub fn render(results: &[LayerResult], pes: usize, clock: f64) -> String {
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
    // Layers are independent (each seeded on its own): in parallel, same results.
    let results = PAPER_LAYERS
        .par_iter()
        .enumerate()
        .map(|(i, spec)| {
            bench_layer(
                spec,
                i,
                args.pes as usize,
                &args.column_batch,
                args.seed,
                &args.sim,
            )
        })
        .collect::<Result<Vec<_>>>()?;
    let elapsed = start.elapsed().as_secs_f64();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&results)?);
    } else {
        print!(
            "{}",
            render(&results, args.pes as usize, args.sim.clock_mhz)
        );
    }
    if args.timings {
        let simulated: u64 = results.iter().map(|r| r.entries_simulated).sum();
        eprintln!(
            "bench-paper: {elapsed:.3} s for the nine layers (generate, pack, functional and timing models); {simulated} entries simulated, {:.1} M entries/s",
            simulated as f64 / elapsed / 1e6
        );
    }
    Ok(())
}
