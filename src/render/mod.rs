//! Rendering: what the commands library returns, as text tables and SVG charts.

pub mod cpu;
pub mod energy;
pub mod report;
pub mod simulate;
pub mod stages;
pub mod summary;
pub mod table;
