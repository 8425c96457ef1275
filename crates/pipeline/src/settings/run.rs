//! The run-wide settings: what a compress run writes besides the images.

use super::knob::{Knob, Scope, ValueKind, any};

/// Settings of a whole run that a recipe may also give (its top-level keys).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RunSettings {
    /// Also write `pruned.safetensors` and `quantized.safetensors`: every input tensor, dense,
    /// after pruning and after weight sharing.
    pub dense_checkpoints: bool,
}

/// Every run-wide setting.
pub static RUN_KNOBS: &[Knob<RunSettings>] = &[Knob {
    key: "dense_checkpoints",
    value_name: "",
    doc: "Also write pruned.safetensors and quantized.safetensors: every tensor of the checkpoint, dense, after pruning and after weight sharing (eval rebuilds them without).",
    kind: ValueKind::Switch,
    group: None,
    scope: Scope::Everywhere,
    check: any,
    apply: |s, v| s.dense_checkpoints = v.switch(),
    show: |s| s.dense_checkpoints.then(|| "true".into()),
}];
