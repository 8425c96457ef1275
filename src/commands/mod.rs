//! One module per subcommand: its flags, the request they make of the commands library
//! (`eie-commands`), and the rendering of the report it returns.

pub mod bench_paper;
pub mod compress;
pub mod demo;
pub mod energy_table;
pub mod eval;
pub mod inspect;
pub mod pack;
pub mod report;
pub mod rtl_check;
pub mod simulate;
pub mod sweep;
pub mod train;
pub mod unpack;
pub mod vectors;
pub mod verify;
