//! `bench-paper`: the EIE paper's nine benchmark layers (Table III), generated with uniform
//! random sparsity, packed with 4-bit codes and indices, and simulated.

use std::time::Instant;

use anyhow::Result;
use eie_images::Fit;
use eie_simulate::bench::{PaperResult, bench_layer};
use eie_simulate::workload::PAPER_LAYERS;
use rayon::prelude::*;

use crate::options::{ArithArgs, ColumnBatchArgs, PesArgs, TimingArgs};
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
    if args.json {
        println!("{}", serde_json::to_string_pretty(&results)?);
    } else {
        print!("{}", render(&results, pes, params.clock_mhz));
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
