//! `bench-paper`: the EIE paper's nine benchmark layers (Table III), generated with uniform
//! random sparsity, packed with 4-bit codes and indices, and simulated.

use anyhow::Result;
use eie_commands::bench_paper::Request;
use eie_commands::report::to_json;

use crate::options::{
    ArithArgs, ChartArgs, ColumnBatchArgs, CpuArgs, EnergyArgs, MemoryArgs, PesArgs, TimingArgs,
};
use crate::render::simulate::bench_paper;
use eie_charts::Plotters;

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
    #[command(flatten)]
    pub memory: MemoryArgs,
}

pub fn run(args: Args) -> Result<()> {
    let request = Request {
        pes: args.pes.pes,
        column_batch: args.column_batch.column_batch,
        seed: args.seed,
        timing: args.timing.params(),
        arith: args.arith.arith(),
        energy: args.energy.table(),
        chart: args.chart.chart(),
        cpu: args.cpu.cpu,
        max_memory: args.memory.max_memory,
    };
    let r = request.run(&Plotters)?;
    if args.json {
        out!("{}", to_json(&r)?);
    } else {
        out!("{}", bench_paper(&r));
    }
    if args.timings {
        let (elapsed, simulated) = (r.elapsed.as_secs_f64(), r.entries_simulated());
        errln!(
            "bench-paper: {elapsed:.3} s for the nine layers (generate, pack, functional and timing models); {simulated} entries simulated, {:.1} M entries/s",
            simulated as f64 / elapsed / 1e6
        );
    }
    Ok(())
}
