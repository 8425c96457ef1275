//! Rendering: what the commands library returns, as text tables (eie-charts draws the SVG
//! charts).

pub mod cpu;
pub mod energy;
pub mod simulate;
pub mod summary;
pub use eie_commands::report::{table, text as report};
