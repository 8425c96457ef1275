//! Energy as the commands print it: the per-layer table, the savings breakdown and its
//! waterfall chart (docs/energy.md).

use anyhow::Result;
use eie_energy::savings::STEPS;
use eie_energy::{Component, Costed, Energy, EnergyReport, Savings, Table as EnergyTable};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use serde::Serialize;

use crate::render::table::Table;

/// The report's component groups, for the printed table (JSON has every component).
const GROUPS: [(&str, &[Component]); 7] = [
    ("Spmat", &[Component::SpmatRead]),
    ("ptrs", &[Component::PointerRead]),
    (
        "arith",
        &[Component::Decode, Component::Multiply, Component::Add],
    ),
    (
        "reg files",
        &[Component::Accumulator, Component::SourceRead],
    ),
    ("bcast", &[Component::Queue, Component::Lnzd]),
    ("SRAM/DRAM", &[Component::ActivationSram, Component::Dram]),
    ("static", &[Component::Clock, Component::Leakage]),
];

/// `--json`: a chain's runs costed, per layer and for the model, and the constants used.
#[derive(Serialize)]
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
}

/// A value with the layer it is of.
#[derive(Serialize)]
pub struct Named<T> {
    pub name: String,
    #[serde(flatten)]
    pub value: T,
}

impl CostReport {
    pub fn new(c: &Costed, table: &EnergyTable) -> Self {
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
        }
    }
}

/// The energy and savings tables of a chain's runs, as `simulate` and `eval` print them.
pub fn costed_tables(c: &Costed, table: &EnergyTable) -> String {
    let mut out = format!(
        "\n{}{}\n",
        heading(table.source.as_deref()),
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

fn share(e: &Energy, parts: &[Component]) -> String {
    let total = e.total_pj();
    let part: f64 = parts.iter().map(|&c| e.get(c)).sum();
    if total > 0.0 {
        format!("{:.1}", 100.0 * part / total)
    } else {
        "0.0".into()
    }
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
        cells.extend(GROUPS.iter().map(|(_, parts)| share(e, parts)));
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
    let mut t = Table::new(&[
        "layer",
        "DRAM->SRAM",
        "pruned",
        "shared",
        "zero acts",
        "product",
        "shared, real",
        "product, real",
        "actual",
    ]);
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

/// The breakdown as an SVG waterfall: the weight-fetch energy after each step (log scale),
/// each step's factor above its bar, and the energy the model computes for the whole run.
pub fn waterfall(title: &str, s: &Savings) -> Result<String> {
    let mut bars: Vec<(String, f64, String)> = STEPS
        .iter()
        .zip(&s.steps)
        .enumerate()
        .map(|(i, (name, step))| {
            let label = if i == 0 {
                String::new()
            } else {
                format!("/{:.1}", step.factor)
            };
            (name.to_string(), step.energy_pj, label)
        })
        .collect();
    bars.push((
        "EIE, the whole run modelled".into(),
        s.model_pj,
        format!("/{:.0} in all", s.actual),
    ));
    let lo = bars
        .iter()
        .map(|b| b.1)
        .filter(|&v| v > 0.0)
        .fold(f64::MAX, f64::min)
        / 4.0;
    let hi = bars.iter().map(|b| b.1).fold(0.0, f64::max) * 4.0;
    let (lo, hi) = if lo.is_finite() && hi > lo {
        (lo, hi)
    } else {
        (1.0, 10.0)
    };
    let n = bars.len() as i32;
    let mut svg = String::new();
    {
        let err = |e| anyhow::anyhow!("savings chart: {e}");
        let root = SVGBackend::with_string(&mut svg, (1000, 620)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 22))
            .margin(16)
            .x_label_area_size(70)
            .y_label_area_size(90)
            // A segmented 0..k has k + 1 segments.
            .build_cartesian_2d((0..n - 1).into_segmented(), (lo..hi).log_scale())
            .map_err(|e| err(e.to_string()))?;
        let names: Vec<String> = bars.iter().map(|b| short(&b.0)).collect();
        chart
            .configure_mesh()
            .disable_x_mesh()
            .y_desc("pJ per inference (log scale)")
            .y_label_formatter(&|v| format!("{v:.0e}"))
            .x_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) => names.get(*i as usize).cloned().unwrap_or_default(),
                _ => String::new(),
            })
            .draw()
            .map_err(|e| err(e.to_string()))?;
        chart
            .draw_series(bars.iter().enumerate().map(|(i, b)| {
                let color = if i + 1 == bars.len() {
                    RGBColor(200, 80, 40)
                } else {
                    RGBColor(60, 110, 180)
                };
                let mut bar = Rectangle::new(
                    [
                        (SegmentValue::Exact(i as i32), lo),
                        (SegmentValue::Exact(i as i32 + 1), b.1.max(lo)),
                    ],
                    color.filled(),
                );
                bar.set_margin(0, 0, 12, 12);
                bar
            }))
            .map_err(|e| err(e.to_string()))?;
        chart
            .draw_series(bars.iter().enumerate().map(|(i, b)| {
                Text::new(
                    format!("{} {}", sci(b.1), b.2),
                    (SegmentValue::CenterOf(i as i32), (b.1 * 1.15).max(lo)),
                    ("sans-serif", 13)
                        .into_font()
                        .color(&BLACK)
                        .pos(Pos::new(HPos::Center, VPos::Bottom)),
                )
            }))
            .map_err(|e| err(e.to_string()))?;
        root.present().map_err(|e| err(e.to_string()))?;
    }
    Ok(svg)
}

/// A step's name short enough for an axis label.
fn short(name: &str) -> String {
    match name {
        n if n.starts_with("dense f32") => "dense f32, DRAM".into(),
        n if n.starts_with("from SRAM") => "in SRAM".into(),
        n if n.starts_with("pruned") => "pruned".into(),
        n if n.starts_with("weight-shared") => "weight-shared".into(),
        n if n.starts_with("zero") => "zero acts skipped".into(),
        _ => "EIE modelled".into(),
    }
}
