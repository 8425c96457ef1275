//! `energy-table`: the energy model's constants as a TOML file to edit and pass back with
//! `--energy-table` (docs/energy.md).

use anyhow::Result;

use crate::options::EnergyArgs;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Print this table's values instead of the defaults (the defaults, overridden).
    #[command(flatten)]
    pub energy: EnergyArgs,
}

pub fn run(args: Args) -> Result<()> {
    out!("{}", args.energy.table().run()?);
    Ok(())
}
