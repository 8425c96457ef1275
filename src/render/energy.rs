//! Energy as the commands print it: the per-layer table and the savings breakdown
//! (docs/energy.md).

use eie_commands::report::energy::CostReport;
use eie_energy::{Energy, GROUPS, Savings};

use crate::render::table::Table;

/// The energy and savings tables of a chain's runs, as `simulate` and `eval` print them.
pub fn costed_tables(report: &CostReport) -> String {
    let c = &report.costed;
    let mut out = format!(
        "\n{}{}\n",
        heading(report.table_file.as_deref()),
        if c.runs > 1 {
            format!(", the mean of {} runs", c.runs)
        } else {
            String::new()
        }
    );
    let rows: Vec<(String, Energy)> = c
        .layers
        .iter()
        .map(|l| (l.name.clone(), l.energy))
        .collect();
    let several = c.layers.len() > 1;
    out.push_str(&energy_table(&rows, several.then_some(&c.energy)));
    let mut rows: Vec<(String, Savings)> = c
        .layers
        .iter()
        .map(|l| (l.name.clone(), l.savings.clone()))
        .collect();
    if several {
        rows.push(("model".into(), c.savings.clone()));
    }
    out.push_str(&format!("\n{SAVINGS_HEADING}\n"));
    out.push_str(&savings_table(&rows));
    out
}

/// The line above every savings table.
pub const SAVINGS_HEADING: &str = "savings: the energy of fetching the weights, step by step, and the actual saving (docs/energy.md section 5)";

/// A number in scientific notation, 3 significant digits.
fn sci(v: f64) -> String {
    format!("{v:.2e}")
}

/// Per layer (and a total row): energy per inference, power, energy per MAC, inferences per
/// joule and each component group's share.
pub fn energy_table(rows: &[(String, Energy)], total: Option<&Energy>) -> String {
    let mut header = vec!["layer", "energy nJ", "power mW", "pJ/MAC", "inferences/J"];
    let group_names: Vec<String> = GROUPS.iter().map(|(n, _)| format!("{n} %")).collect();
    header.extend(group_names.iter().map(String::as_str));
    let mut t = Table::new(&header);
    let mut push = |name: &str, e: &Energy| {
        let mut cells = vec![
            name.to_string(),
            format!("{:.1}", e.total_pj() / 1e3),
            format!("{:.1}", e.power_mw()),
            format!("{:.2}", e.pj_per_mac()),
            sci(e.per_joule()),
        ];
        cells.extend(
            GROUPS
                .iter()
                .map(|(_, parts)| format!("{:.1}", e.share(parts))),
        );
        t.row(cells);
    };
    for (name, e) in rows {
        push(name, e);
    }
    if let Some(e) = total {
        push("total", e);
    }
    t.render()
}

/// The savings breakdown, per layer (and for the model): each step's factor, their product,
/// weight sharing as really stored, and the actual saving of the modelled run.
pub fn savings_table(rows: &[(String, Savings)]) -> String {
    let mut t = Table::columns(
        "layer | DRAM->SRAM | pruned | shared | zero acts | product | shared, real | product, real | actual",
    );
    // A factor of nothing over nothing (a layer with no entries, a run with no broadcast).
    let x = |v: f64| {
        if v > 0.0 && v.is_finite() {
            format!("{v:.1}x")
        } else {
            "-".into()
        }
    };
    for (name, s) in rows {
        t.row(vec![
            name.clone(),
            x(s.steps[1].factor),
            x(s.steps[2].factor),
            x(s.steps[3].factor),
            x(s.steps[4].factor),
            x(s.product),
            x(s.shared_real_factor),
            x(s.product_real),
            x(s.actual),
        ]);
    }
    t.render()
}

/// The heading printed above the tables: what the figures are and whose constants.
pub fn heading(table_source: Option<&str>) -> String {
    format!(
        "energy per inference (docs/energy.md; constants {})",
        table_source.map_or("from the paper's Tables I and II, 45 nm".to_string(), |s| {
            format!("from {s}")
        })
    )
}
