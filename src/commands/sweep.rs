//! `sweep`: the timing model over one parameter (PEs, queue depth, index bits, Spmat width),
//! on the paper's layers or a packed model: a CSV and SVG plots, like the EIE paper's
//! Figures 8 (queue depth), 11 (PEs) and 12 (padding against PEs). With `--frontier MODEL`:
//! compression's frontier, the model's metric against real bits a weight over densities,
//! code widths and methods.

use std::path::PathBuf;

use anyhow::Result;
use clap::builder::{PossibleValuesParser, TypedValueParser};
use eie_commands::sweep::Request;
use eie_simulate::sweep::Param;

use crate::options::{
    CalibrationArgs, ColumnBatchArgs, EnergyArgs, ForceArgs, MemoryArgs, TimingArgs,
};
use eie_charts::Plotters;
use eie_commands::frontier::Method;
use eie_dataset::{SampleRange, Spec};
use eie_progress::Progress;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Folder for the CSV and the plots.
    pub dir: PathBuf,
    /// The parameter to sweep: pes (layers re-packed for each), fifo (the activation queue's
    /// depth), index-bits (re-packed for each), spmat-width (the Spmat line, bits).
    #[arg(long, required_unless_present = "frontier", value_parser = PossibleValuesParser::new(Param::ALL.map(Param::name)).map(|s| Param::named(&s).expect("a listed name")))]
    pub param: Option<Param>,
    /// Its values (comma-separated).
    #[arg(long, value_delimiter = ',', required_unless_present = "frontier", value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub values: Vec<u32>,
    #[command(flatten)]
    pub frontier: FrontierArgs,
    /// A packed model (an output folder or model.eie) as the workload; default: the paper's
    /// nine layers (Table III).
    #[arg(long, value_name = "DIR")]
    pub model: Option<PathBuf>,
    /// For --model: the density of the generated input activations of every layer.
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true, value_parser = crate::options::act_density)]
    pub act_density: f64,
    /// Seed of the generated layers and activations.
    #[arg(long, default_value_t = 2016)]
    pub seed: u64,
    #[command(flatten)]
    pub column_batch: ColumnBatchArgs,
    #[command(flatten)]
    pub force: ForceArgs,
    #[command(flatten)]
    pub timing: TimingArgs,
    #[command(flatten)]
    pub energy: EnergyArgs,
    #[command(flatten)]
    pub memory: MemoryArgs,
}

/// Compression's frontier (`--frontier`).
#[derive(clap::Args, Debug)]
#[command(next_help_heading = "Compression frontier (--frontier)")]
pub struct FrontierArgs {
    /// Sweep compression instead of the hardware: this checkpoint or language model folder
    /// compressed at every density, code width and method, its bit-exact EIE metric on
    /// --dataset against real bits a weight (frontier.csv, frontier.svg, frontier-dc.svg;
    /// each point's output under DIR/frontier/).
    #[arg(long, value_name = "MODEL", conflicts_with_all = [
        "param", "values", "model", "act_density", "seed", "column_batch", "energy_table",
        "fifo", "clock_mhz", "spmat_width", "pipeline_depth", "queue_ring", "no_group_advance",
        "timing_rules",
    ])]
    pub frontier: Option<PathBuf>,
    /// Densities (comma-separated, each in (0, 1]).
    #[arg(
        long,
        value_delimiter = ',',
        requires = "frontier",
        default_value = "0.1,0.25,0.5",
        allow_negative_numbers = true
    )]
    pub densities: Vec<f64>,
    /// Code widths, bits (comma-separated, 1..=8).
    #[arg(long, value_delimiter = ',', requires = "frontier", default_value = "3,4", value_parser = clap::value_parser!(u8).range(1..=8))]
    pub code_bits: Vec<u8>,
    /// Methods (comma-separated): magnitude (Deep Compression), balanced (across PEs),
    /// activation (Wanda, per row), obs (magnitude with the OBS update), activation-obs
    /// (Wanda's score, the update and an activation-weighted codebook),
    /// activation-obs-balanced. All but the first two need --calibration.
    #[arg(long, value_delimiter = ',', requires = "frontier", default_value = "magnitude", value_parser = PossibleValuesParser::new(Method::ALL.map(Method::name)).map(|s| Method::named(&s).expect("a listed name")))]
    pub methods: Vec<Method>,
    /// PEs of every point.
    #[arg(long, requires = "frontier", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub pes: u32,
    /// What each point is measured on: a dataset (text:FILE for a language model).
    #[arg(long, value_name = "SPEC", requires = "frontier")]
    pub dataset: Option<Spec>,
    /// Its samples (a text's bytes), A..B.
    #[arg(long, value_name = "A..B", requires = "dataset")]
    pub range: Option<SampleRange>,
    #[command(flatten)]
    pub calibration: CalibrationArgs,
}

pub fn run(args: Args, progress: &Progress) -> Result<()> {
    if let Some(model) = args.frontier.frontier.clone() {
        return frontier(args, model, progress);
    }
    let request = Request {
        dir: args.dir,
        param: args
            .param
            .expect("clap requires --param without --frontier"),
        values: args.values,
        model: args.model,
        act_density: args.act_density,
        seed: args.seed,
        column_batch: args.column_batch.column_batch,
        force: args.force.force,
        timing: args.timing.params(),
        energy: args.energy.table(),
        max_memory: args.memory.max_memory,
    };
    out!("{}", request.run(&Plotters)?.summary());
    Ok(())
}

/// `sweep DIR --frontier MODEL`.
fn frontier(args: Args, model: PathBuf, progress: &Progress) -> Result<()> {
    let f = args.frontier;
    let request = eie_commands::frontier::Request {
        dir: args.dir,
        model,
        data: f.dataset.map(|spec| eie_commands::DatasetRequest {
            spec,
            range: f.range,
            scale: Default::default(),
            max_memory: args.memory.max_memory,
        }),
        calibration: f.calibration.request(Default::default(), &args.memory),
        densities: f.densities,
        code_bits: f.code_bits,
        methods: f.methods,
        pes: f.pes,
        force: args.force.force,
    };
    out!("{}", request.run(&Plotters, progress)?.table());
    Ok(())
}
