//! One module per subcommand: its flags, its resolve step (every check before any work),
//! the library calls, and the rendering of what they return.

pub mod bench_paper;
pub mod compress;
pub mod demo;
pub mod energy_table;
pub mod eval;
pub mod inspect;
pub mod pack;
pub mod rtl_check;
pub mod simulate;
pub mod sweep;
pub mod train;
pub mod unpack;
pub mod vectors;
pub mod verify;

/// The tool's version string, recorded in every bundle and manifest.
pub fn tool_version() -> String {
    format!("eie-compress {}", env!("CARGO_PKG_VERSION"))
}
