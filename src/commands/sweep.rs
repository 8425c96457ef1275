//! `sweep`: the timing model over one parameter (PEs, queue depth, index bits, Spmat width),
//! on the paper's layers or a packed model: a CSV and SVG plots, like the EIE paper's
//! Figures 8 (queue depth), 11 (PEs) and 12 (padding against PEs).

use std::path::PathBuf;

use anyhow::Result;
use clap::builder::{PossibleValuesParser, TypedValueParser};
use eie_commands::sweep::Request;
use eie_simulate::sweep::Param;

use crate::options::{ColumnBatchArgs, EnergyArgs, ForceArgs, MemoryArgs, TimingArgs};
use eie_charts::Plotters;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Folder for the CSV and the plots.
    pub dir: PathBuf,
    /// The parameter to sweep: pes (layers re-packed for each), fifo (the activation queue's
    /// depth), index-bits (re-packed for each), spmat-width (the Spmat line, bits).
    #[arg(long, value_parser = PossibleValuesParser::new(Param::ALL.map(Param::name)).map(|s| Param::named(&s).expect("a listed name")))]
    pub param: Param,
    /// Its values (comma-separated).
    #[arg(long, value_delimiter = ',', required = true, value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub values: Vec<u32>,
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

pub fn run(args: Args) -> Result<()> {
    let request = Request {
        dir: args.dir,
        param: args.param,
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
    let r = request.run(&Plotters)?;
    if let Some(m) = &r.read_energy_minima {
        outln!("Spmat read energy per inference is lowest at:");
        for (layer, bits, nj) in &m.layers {
            outln!("  {}: {bits} bits ({nj:.1} nJ)", eie_format::shown(layer));
        }
        if let Some((bits, nj)) = m.all {
            outln!("  all layers together: {bits} bits ({nj:.1} nJ)");
        }
    }
    let plots: Vec<String> = r.files[2..]
        .iter()
        .map(|f| f.display().to_string())
        .collect();
    outln!(
        "swept {} over {:?} on {} layers: {} and {}",
        r.param,
        r.values,
        r.layers.len(),
        r.files[0].display(),
        plots.join(", ")
    );
    Ok(())
}
