//! What runs cost, as reports carry it (docs/energy.md).

use eie_energy::{Costed, EnergyReport, Savings, Table};
use serde::Serialize;

use super::Named;

/// A chain's runs costed, per layer and for the model, and the constants used.
#[derive(Debug, Clone, Serialize)]
pub struct CostReport {
    /// Runs (inferences) costed.
    pub runs: u64,
    /// Mean energy per inference, per layer.
    pub layers: Vec<Named<EnergyReport>>,
    /// Mean energy per inference of the model.
    pub model: EnergyReport,
    /// The savings breakdown over every run, per layer.
    pub layer_savings: Vec<Named<Savings>>,
    /// The model's.
    pub model_savings: Savings,
    /// The energy constants used (pJ per action, mW).
    pub table: std::collections::BTreeMap<&'static str, f64>,
    /// Their file, if not the defaults.
    pub table_file: Option<String>,
    /// The runs costed, as the energy model computed them (not in the JSON, which has
    /// their figures above).
    #[serde(skip)]
    pub costed: Costed,
}

impl CostReport {
    /// The report of `c`, costed with `table`.
    pub fn new(c: &Costed, table: &Table) -> Self {
        Self {
            runs: c.runs,
            layers: c
                .layers
                .iter()
                .map(|l| Named {
                    name: l.name.clone(),
                    value: l.energy.report(),
                })
                .collect(),
            model: c.energy.report(),
            layer_savings: c
                .layers
                .iter()
                .map(|l| Named {
                    name: l.name.clone(),
                    value: l.savings.clone(),
                })
                .collect(),
            model_savings: c.savings.clone(),
            table: table.entries(),
            table_file: table.source.clone(),
            costed: c.clone(),
        }
    }
}
