#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod obs;
mod stats;

#[cfg(test)]
use obs::compensate_in_blocks;
pub use obs::{BLOCK, Factor, compensate};
pub use stats::{Guarded, Stats};

/// What can go wrong gathering statistics or compensating.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A buffer whose length does not match the shape it is given with.
    #[error("{what}: {got} values, expected {expected}")]
    Shape {
        /// Which buffer.
        what: &'static str,
        /// Values expected.
        expected: usize,
        /// Values given.
        got: usize,
    },
    /// A NaN or infinite value.
    #[error("{what}: value {index} is {value}, not finite")]
    NonFinite {
        /// Which buffer.
        what: &'static str,
        /// Its flat index.
        index: usize,
        /// The value.
        value: f64,
    },
    /// A dampening fraction that is not finite and > 0.
    #[error("the dampening fraction must be finite and > 0, got {got}")]
    Damp {
        /// The value given.
        got: f64,
    },
    /// The Hessian is not positive definite even after dampening (its values are so far
    /// apart that f64 cannot factor it).
    #[error(
        "the inputs' Hessian ({cols} x {cols}) is not positive definite even damped by {damp} x its mean diagonal (column {column})"
    )]
    NotPositiveDefinite {
        /// Its order.
        cols: usize,
        /// The largest dampening tried.
        damp: f64,
        /// The column where the factorisation failed.
        column: usize,
    },
}

/// The crate's result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests;
