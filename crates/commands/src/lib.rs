#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod budget;
pub mod charts;
mod checks;
mod error;
pub mod inputs;
pub mod packed;
pub mod report;
mod settings;

pub mod bench_paper;
pub mod compress;
pub mod demo;
pub mod energy_table;
pub mod eval;
pub mod frontier;
pub mod inspect;
pub mod language;
pub mod pack;
pub mod page;
pub mod rtl_check;
pub mod simulate;
pub mod sweep;
pub mod tokens;
pub mod train;
pub mod unpack;
pub mod vectors;
pub mod verify;

#[cfg(test)]
mod tests;

pub use budget::{DEFAULT_MAX_MEMORY, human, parse_size};
pub use charts::{Draw, LinePlot, NoCharts, SavingsChart, Series};
pub use eie_pipeline::settings::Value;
pub use eie_pipeline::{Observer, Quiet};
pub use energy_table::EnergyTable;
pub use error::{Error, Result, one_line};
pub use inputs::{
    CalibrationRequest, DEFAULT_CALIBRATION_SAMPLES, DatasetRequest, InputRequest, Shape, Source,
};
pub use packed::PackedModel;
pub use report::{SCHEMA_VERSION, Schema};
pub use settings::Given;

/// The tool's version string, recorded in every bundle and manifest.
pub fn tool_version() -> String {
    format!("eie-compress {}", env!("CARGO_PKG_VERSION"))
}
