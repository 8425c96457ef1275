//! Rendering: what the libraries return, as text tables and JSON.

pub mod cpu;
pub mod energy;
pub mod report;
pub mod stages;
pub mod summary;
pub mod table;
pub mod timing;
