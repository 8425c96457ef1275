//! `eie-compress`: safetensors checkpoints to verified memory images of the EIE accelerator.
//!
//! The binary parses, resolves (every check before any work), calls the library crates, and
//! renders what they return; nothing else.

#[macro_use]
mod out;

mod commands;
mod knobs;
mod options;
mod render;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Safetensors checkpoints to verified memory images of the EIE sparse accelerator.
#[derive(Parser)]
#[command(name = "eie-compress", version, about, long_about = None, propagate_version = true)]
struct Cli {
    /// Hide progress bars (they are also hidden when stderr is not a terminal).
    #[arg(long, short, global = true)]
    quiet: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The whole pipeline in one command, offline: the shipped model and the built-in
    /// synthetic dataset through compress (with retraining), verify, simulate and eval.
    Demo(commands::demo::Args),
    /// Pack already-sparse, already-shared 2-D tensors into EIE images (no pruning or weight
    /// sharing: zeros are pruned positions, each tensor's distinct values are its codebook).
    Pack(commands::pack::Args),
    /// Prune, weight-share and pack a trained checkpoint: images, model.eie and a report.
    #[command(mut_arg("max_memory", |a| a.requires("dataset")))]
    Compress(commands::compress::Args),
    /// Run a packed model through the bit-exact fixed-point model and the cycle-level timing
    /// model of EIE: cycles, time, load balance, SRAM reads, energy, and the outputs.
    #[command(mut_arg("force", |a| a.requires("savings_chart")))]
    Simulate(commands::simulate::Args),
    /// The EIE paper's nine benchmark layers (Table III): generate, pack for 64 PEs, simulate.
    #[command(mut_arg("force", |a| a.requires("savings_chart")))]
    BenchPaper(commands::bench_paper::Args),
    /// The energy model's constants (pJ per action, mW), each with its derivation from the
    /// paper, as a TOML file that --energy-table reads back.
    EnergyTable(commands::energy_table::Args),
    /// The timing model over one parameter (PEs, queue depth, index bits, Spmat width): a CSV
    /// and SVG plots, like the paper's Figures 8, 11 and 12.
    Sweep(commands::sweep::Args),
    /// RTL test vectors: per layer the input activations, the expected outputs and every PE's
    /// expected accumulators, as $readmemh and binary, with a manifest.
    Vectors(commands::vectors::Args),
    /// Co-simulate the reference Verilog design (rtl/) on a packed model in Icarus Verilog or
    /// Verilator: outputs and accumulators against the functional model, cycles against the
    /// timing model.
    #[command(mut_arg("max_memory", |a| a.requires("dataset")))]
    RtlCheck(commands::rtl_check::Args),
    /// Train a classifier of any model description (an MLP, a CNN, an LSTM; Adam, seeded,
    /// reproducible) and write it as a PyTorch-layout safetensors checkpoint.
    #[command(mut_arg("dataset", |a| a.required(true)))]
    Train(commands::train::Args),
    /// Top-1 accuracy of a checkpoint and of what compress made from it: pruned, pruned and
    /// weight-shared, and the bit-exact EIE model on the images.
    #[command(mut_arg("dataset", |a| a.required(true)))]
    #[command(mut_arg("act_frac", |a| a.requires("dir")))]
    #[command(mut_arg("acc_bits", |a| a.requires("dir")))]
    #[command(mut_arg("relu_last", |a| a.requires("dir")))]
    #[command(mut_arg("energy_table", |a| a.requires("dir")))]
    #[command(mut_arg("fifo", |a| a.requires("dir")))]
    #[command(mut_arg("clock_mhz", |a| a.requires("dir")))]
    #[command(mut_arg("spmat_width", |a| a.requires("dir")))]
    #[command(mut_arg("pipeline_depth", |a| a.requires("dir")))]
    #[command(mut_arg("queue_ring", |a| a.requires("dir")))]
    #[command(mut_arg("no_group_advance", |a| a.requires("dir")))]
    Eval(commands::eval::Args),
    /// The HTML report of a compress output folder (what compress writes as report.html),
    /// with a simulation's cycles and energy and, given the checkpoint, every stage's accuracy.
    Report(commands::report::Args),
    /// Summarise a packed model: per layer shape, PEs, entries, padding, bytes, balance.
    Inspect(commands::inspect::Args),
    /// Re-read the images from disk, check every checksum, and compare them with model.eie.
    Verify(commands::verify::Args),
    /// Write each packed layer back as a dense f32 tensor under its original name.
    Unpack(commands::unpack::Args),
}

fn dispatch(
    command: Command,
    progress: &eie_progress::Progress,
    quiet: bool,
) -> anyhow::Result<()> {
    match command {
        Command::Demo(args) => commands::demo::run(args, progress, quiet),
        Command::Pack(args) => commands::pack::run(args, progress),
        Command::Compress(args) => commands::compress::run(args, progress),
        Command::Inspect(args) => commands::inspect::run(args),
        Command::Report(args) => commands::report::run(args),
        Command::Train(args) => commands::train::run(args, progress),
        Command::Eval(args) => commands::eval::run(args),
        Command::Simulate(args) => commands::simulate::run(args),
        Command::BenchPaper(args) => commands::bench_paper::run(args),
        Command::Sweep(args) => commands::sweep::run(args, progress),
        Command::EnergyTable(args) => commands::energy_table::run(args),
        Command::Vectors(args) => commands::vectors::run(args),
        Command::RtlCheck(args) => commands::rtl_check::run(args),
        Command::Verify(args) => commands::verify::run(args),
        Command::Unpack(args) => commands::unpack::run(args),
    }
}

/// Runs a command line as if it had been typed (the demo's steps).
pub fn run_argv(argv: &[String], progress: &eie_progress::Progress) -> anyhow::Result<()> {
    let cli = Cli::try_parse_from(argv)?;
    dispatch(cli.command, progress, cli.quiet)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let progress = eie_progress::Progress::new(cli.quiet);
    match dispatch(cli.command, &progress, cli.quiet) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            errln!("error: {}", eie_commands::one_line(e.as_ref()));
            ExitCode::FAILURE
        }
    }
}
