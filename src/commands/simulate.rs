//! `simulate`: a packed model through the bit-exact functional model and the cycle-level
//! timing model, from the bundle's streams.

use std::path::PathBuf;

use anyhow::Result;
use eie_commands::report::to_json;
use eie_commands::simulate::{Report, Request};

use crate::options::{ArithArgs, ChartArgs, CpuArgs, EnergyArgs, InputArgs, TimingArgs};
use crate::render::simulate as render;
use eie_charts::Plotters;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Output folder of `pack` or `compress` (or a model.eie file).
    pub dir: PathBuf,
    /// The PE count, as a check: it is fixed when a model is packed.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=eie_format::MAX_PES as i64))]
    pub pes: Option<u32>,
    /// Simulate only this layer.
    #[arg(long, value_name = "NAME")]
    pub layer: Option<String>,
    /// Print JSON: per vector and layer the cycles, time, load efficiency, per-PE counters and
    /// the output activations (16-bit values and numbers).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub input: InputArgs,
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

pub fn run(args: Args) -> Result<()> {
    let request = Request {
        dir: args.dir,
        pes: args.pes,
        layer: args.layer,
        input: args.input.request(),
        max_memory: args.input.memory.max_memory,
        timing: args.timing.params(),
        arith: args.arith.arith(),
        energy: args.energy.table(),
        chart: args.chart.chart(),
        cpu: args.cpu.cpu,
    };
    let report = request.run(&Plotters)?;
    if args.json {
        out!("{}", to_json(&report)?);
        return Ok(());
    }
    match &report {
        Report::Chain(r) => out!("{}", render::chain(r)),
        Report::Described(r) => out!("{}", render::described(r)),
    }
    Ok(())
}
