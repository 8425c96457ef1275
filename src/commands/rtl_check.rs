//! `rtl-check`: co-simulates the reference design in `rtl/` on a packed model. Writes the
//! functional model's vectors, generates the testbench from the two manifests, runs it in
//! Icarus Verilog or Verilator, and compares the RTL's outputs and accumulators (in the
//! testbench) and its cycle counts (here) with the functional and timing models.

use std::path::PathBuf;

use anyhow::Result;
use clap::builder::{PossibleValuesParser, TypedValueParser};
use eie_commands::rtl_check::Request;
use eie_rtl::Simulator;

use crate::options::{ArithArgs, InputArgs, TimingArgs};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Output folder of `pack` or `compress` (its manifest.json and images/ are loaded).
    pub dir: PathBuf,
    /// The HDL simulator: iverilog (Icarus Verilog 11 or later: `iverilog -g2012`, `vvp`) or
    /// verilator (Verilator 5, `verilator --binary`: compiled, for large models).
    #[arg(long, default_value = "iverilog", value_parser = PossibleValuesParser::new(Simulator::ALL.map(Simulator::name)).map(|s| Simulator::named(&s).expect("a listed name")))]
    pub simulator: Simulator,
    /// Keep the testbench, the vectors and the simulator's log in this new folder (by
    /// default a temporary folder, removed afterwards).
    #[arg(long, value_name = "DIR")]
    pub work: Option<PathBuf>,
    /// Load the design's memories through its host write port, one word a cycle, as a chip
    /// is loaded (slow on large models), instead of writing them directly.
    #[arg(long)]
    pub host_load: bool,
    #[command(flatten)]
    pub input: InputArgs,
    #[command(flatten)]
    pub timing: TimingArgs,
    #[command(flatten)]
    pub arith: ArithArgs,
}

pub fn run(args: Args) -> Result<()> {
    let request = Request {
        dir: args.dir,
        simulator: args.simulator,
        work: args.work,
        host_load: args.host_load,
        input: args.input.request(),
        timing: args.timing.params(),
        arith: args.arith.arith(),
    };
    let r = request.run()?;
    outln!(
        "rtl-check {} ({} layers, {} PEs, queue depth {}, {})",
        r.dir.display(),
        r.layers.len(),
        r.pes,
        r.fifo,
        r.simulator
    );
    outln!("layer                          RTL cycles  model cycles");
    for l in &r.layers {
        let rtl = l.rtl_cycles.map_or("-".to_string(), |c| c.to_string());
        outln!(
            "{:<30} {rtl:>10}  {:>12}",
            eie_format::shown(&l.name),
            l.model_cycles
        );
    }
    if let Some(kept) = &r.kept {
        outln!("testbench, vectors and log kept in {}", kept.display());
    }
    r.verdict()?;
    outln!("PASS: every output and accumulator bit-exact, every cycle count equal");
    Ok(())
}
