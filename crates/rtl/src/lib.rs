//! The reference EIE design in Verilog (`rtl/`), and its co-simulation: from a packed
//! model's images and the functional model's vectors to a testbench that loads the images
//! with `$readmemh`, runs in Icarus Verilog or Verilator, compares every output and
//! accumulator, and reports every layer's cycle count for comparison with the timing model.
//! docs/rtl.md describes the design, its memory map and how it maps each timing rule.
#![deny(missing_docs)]

pub mod design;
pub mod error;
pub mod sim;
pub mod sources;

pub use design::{Descriptor, Design, Params, Rendered, check_timing, plan};
pub use error::{Error, Result};
pub use sim::{Loading, SimRun, Simulator, run};
