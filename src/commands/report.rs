//! `report`: the HTML report of a compress output folder, with a simulation's cycles and
//! energy and, given the checkpoint and a dataset, every stage's accuracy.

use std::path::PathBuf;

use anyhow::Result;
use eie_commands::page::Request;
use eie_commands::report::to_json;

use crate::options::{ArithArgs, EnergyArgs, ForceArgs, InputArgs, TimingArgs};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Output folder of `compress` (its model.eie and report.json are read, never written).
    pub dir: PathBuf,
    /// The page to write [default: NAME-report.html beside the folder NAME].
    #[arg(short, long, value_name = "FILE.html")]
    pub output: Option<PathBuf>,
    /// The checkpoint DIR was made from: with --dataset, eval measures every stage's
    /// accuracy (or perplexity) and the page shows it.
    #[arg(long, value_name = "CHECKPOINT", requires = "dataset")]
    pub checkpoint: Option<PathBuf>,
    /// Print JSON: the page written and the document it shows (every number on the page is
    /// read from it).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub force: ForceArgs,
    #[command(flatten)]
    pub input: InputArgs,
    #[command(flatten)]
    pub timing: TimingArgs,
    #[command(flatten)]
    pub arith: ArithArgs,
    #[command(flatten)]
    pub energy: EnergyArgs,
}

pub fn run(args: Args) -> Result<()> {
    let request = Request {
        dir: args.dir,
        output: args.output,
        force: args.force.force,
        input: args.input.request(),
        checkpoint: args.checkpoint,
        timing: args.timing.params(),
        arith: args.arith.arith(),
        energy: args.energy.table(),
        max_memory: args.input.memory.max_memory,
    };
    let report = request.run()?;
    if args.json {
        out!("{}", to_json(&report)?);
    } else {
        outln!("wrote {} ({} bytes)", report.output, report.bytes);
    }
    Ok(())
}
