#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

pub mod authors;
pub mod bench;
mod error;
pub mod fixed;
pub mod float;
pub mod functional;
mod layer;
pub mod reference;
pub mod run;
pub mod sweep;
pub mod timing;
pub mod vectors;
mod walk;
pub mod workload;

#[cfg(test)]
mod tests;

pub use error::{Error, Result};
pub use fixed::Arith;
pub use layer::{LayerView, Stored, check_chain};
pub use timing::{LayerTiming, PeCounters, Rules, TimingParams};
