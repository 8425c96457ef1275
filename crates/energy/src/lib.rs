#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

pub mod counts;
mod error;
pub mod model;
pub mod runs;
pub mod savings;
pub mod table;

pub use counts::{Counts, Facts};
pub use error::{Error, Result};
pub use model::{Component, Energy, EnergyReport, GROUPS};
pub use runs::{Costed, LayerCost, Runs};
pub use savings::{Savings, combine, savings};
pub use table::{Key, Table};

use eie_images::Capacity;
use eie_simulate::{LayerTiming, LayerView};

/// One run of one layer, counted and costed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LayerEnergy {
    /// What the run did.
    pub counts: Counts,
    /// What it cost.
    pub energy: Energy,
    /// What the savings breakdown needs.
    pub facts: Facts,
}

/// The energy of `timing`, a run of `view` with `spmat_width`-bit Spmat lines, its images
/// with `pointer_bits`-bit pointers in SRAMs of `capacity`, at the energies of `table`.
pub fn layer_energy(
    view: LayerView,
    timing: &LayerTiming,
    spmat_width: u32,
    pointer_bits: u8,
    capacity: &Capacity,
    table: &Table,
) -> LayerEnergy {
    let counts = Counts::of(view, timing, spmat_width, pointer_bits, capacity);
    LayerEnergy {
        counts,
        energy: Energy::of(&counts, table),
        facts: Facts::of(view, timing, pointer_bits),
    }
}
