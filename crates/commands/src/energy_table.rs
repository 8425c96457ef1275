//! `energy-table`: the energy model's constants, each with its derivation from the paper,
//! as the TOML file `--energy-table` reads back (docs/energy.md).

use std::path::PathBuf;

use crate::error::Result;

/// Which constants: the paper's, or a file's overrides of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnergyTable {
    /// A TOML file of energy constants replacing the defaults derived from the paper; any
    /// subset of the keys the table lists.
    pub file: Option<PathBuf>,
}

impl EnergyTable {
    /// The table: the paper's, with the file's overrides.
    pub fn table(&self) -> Result<eie_energy::Table> {
        Ok(match &self.file {
            Some(path) => eie_energy::Table::load(path)?,
            None => eie_energy::Table::paper(),
        })
    }

    /// The table as TOML, every constant with what it is and how it follows from the paper.
    pub fn run(&self) -> Result<String> {
        Ok(self.table()?.to_toml())
    }
}
