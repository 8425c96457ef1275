//! `eie-compress`: safetensors checkpoints to verified memory images of the EIE accelerator.

mod commands;
mod compress;
mod output;
mod progress;
mod sim;

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
    /// Pack already-sparse, already-shared 2-D tensors into EIE images (no pruning or weight
    /// sharing: zeros are pruned positions, each tensor's distinct values are its codebook).
    Pack(commands::pack::Args),
    /// Prune, weight-share and pack a trained checkpoint: images, pruned and quantized
    /// checkpoints, and a report.
    Compress(commands::compress::Args),
    /// Run a packed model through the bit-exact fixed-point model and the cycle-level timing
    /// model of EIE: cycles, time, load balance, SRAM reads, and the outputs.
    Simulate(commands::simulate::Args),
    /// The EIE paper's nine benchmark layers (Table III): generate, pack for 64 PEs, simulate.
    BenchPaper(commands::bench_paper::Args),
    /// The timing model over one parameter (PEs, queue depth, index bits, Spmat width): a CSV
    /// and SVG plots, like the paper's Figures 8, 11 and 12.
    Sweep(commands::sweep::Args),
    /// RTL test vectors: per layer the input activations, the expected outputs and every PE's
    /// expected accumulators, as $readmemh and binary, with a manifest.
    Vectors(commands::vectors::Args),
    /// Summarise a packed model: per layer shape, PEs, entries, padding, bytes, balance.
    Inspect(commands::inspect::Args),
    /// Re-read the images from disk, check every checksum, and compare them with model.eie.
    Verify(commands::verify::Args),
    /// Write each packed layer back as a dense f32 tensor under its original name.
    Unpack(commands::unpack::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let progress = progress::Progress::new(cli.quiet);
    let result = match cli.command {
        Command::Pack(args) => commands::pack::run(args, &progress),
        Command::Compress(args) => commands::compress::run(args, &progress),
        Command::Inspect(args) => commands::inspect::run(args),
        Command::Simulate(args) => commands::simulate::run(args),
        Command::BenchPaper(args) => commands::bench_paper::run(args),
        Command::Sweep(args) => commands::sweep::run(args),
        Command::Vectors(args) => commands::vectors::run(args),
        Command::Verify(args) => commands::verify::run(args),
        Command::Unpack(args) => commands::unpack::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line: the cause chain joined by ": ".
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
