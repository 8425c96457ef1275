//! Settings, each defined once: its key, its doc, the value it takes, where it may be given,
//! and how it changes the settings it belongs to. The command line's flag (`--key` with `-`
//! for `_`), its help and its default, and the recipe key (the key itself), are all derived
//! from that one definition (a [`Knob`]); a recipe is just more settings.
//!
//! Values given in one place form an [`Assignments`]; resolution applies, later winning:
//! the defaults, the command line, the recipe's `[defaults]`, then each matching `[[layers]]`
//! rule (see [`crate::plan`]). Adding a per-layer setting takes a field of
//! [`LayerSettings`], its default, and an entry of [`LAYER_KNOBS`].

mod knob;
mod layer;
mod run;
#[cfg(test)]
mod tests;

pub(crate) use knob::describe;
pub use knob::{Assignments, Knob, Scope, Value, ValueKind, any, find};
pub(crate) use layer::UPDATE_WORDS;
pub use layer::{
    CodebookKind, CodebookWeight, InitKind, LAYER_KNOBS, LayerSettings, PRUNING, PruneScore,
    Pruning, Update,
};
pub use run::{RUN_KNOBS, RunSettings};
