//! The simulation, when there is one: cycles and time per layer, energy per component and
//! the savings waterfall (docs/energy.md), for the model and for each layer.

use crate::doc::{Doc, Fmt, esc, token};
use crate::{Result, figure, svg};

/// The component classes, in the order the document lists them.
fn components(d: &Doc, ptr: &str) -> Vec<String> {
    d.get(ptr)
        .and_then(|v| v.as_object())
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

const COLOURS: [&str; 13] = [
    "k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7", "k8", "k9", "k10", "k11", "k12",
];

/// The model's simulation section (nothing without a simulation).
pub fn section(d: &Doc) -> Result<String> {
    if d.get("/simulation").is_none() {
        return Ok(String::new());
    }
    let mut s = format!(
        "<section id=\"simulation\"><h2>Simulation</h2><p>Vectors: {}, of {}; through the bit-exact functional model and the cycle-level timing model at {} MHz; cycles and energy are the means over the vectors.</p><dl class=\"kv\">",
        d.num("/simulation/vectors", Fmt::Int)?,
        d.text("/simulation/input")?,
        d.num("/simulation/clock_mhz", Fmt::Fixed(0))?,
    );
    for (label, ptr, fmt) in [
        ("cycles per inference", "/simulation/cycles", Fmt::Fixed(1)),
        ("time per inference, us", "/simulation/time_us", Fmt::Sig),
    ] {
        s += &format!("<dt>{label}</dt><dd>{}</dd>", d.num(ptr, fmt)?);
    }
    let e = "/simulation/energy/model";
    if d.get(e).is_some() {
        for (label, k, fmt) in [
            ("energy per inference, nJ", "total_nj", Fmt::Sig),
            ("power, mW", "power_mw", Fmt::Sig),
            ("pJ per MAC", "pj_per_mac", Fmt::Sig),
            ("inferences per joule", "inferences_per_joule", Fmt::Sig),
        ] {
            s += &format!(
                "<dt>{label}</dt><dd>{}</dd>",
                d.num(&format!("{e}/{k}"), fmt)?
            );
        }
    }
    s += "</dl>";

    // Cycles per layer.
    let layers = d.arr("/simulation/layers")?;
    let mut rows = Vec::new();
    for j in 0..layers.len() {
        let p = format!("/simulation/layers/{j}");
        rows.push((
            d.str(&format!("{p}/name"))?.to_string(),
            vec![(d.f64(&format!("{p}/cycles"))?, "s0")],
            d.tspan(&format!("{p}/cycles"), Fmt::Fixed(1))?,
        ));
    }
    s += &long(
        rows.len(),
        "Cycles per layer",
        figure(
            "Cycles per layer",
            &svg::bars("cycles per layer", &rows, "cycles", false),
            &[],
        ),
    );

    if d.get(e).is_some() {
        s += &energy_figure(d)?;
        s += &waterfall(d)?;
    }
    if d.get(e).is_some() {
        s += &components_table(d)?;
    }
    Ok(s + "</section>\n")
}

/// Energy per component, the model and each layer.
fn energy_figure(d: &Doc) -> Result<String> {
    let names = components(d, "/simulation/energy/model/components_pj");
    let stack = |base: &str| -> Result<Vec<svg::Segment>> {
        names
            .iter()
            .zip(COLOURS.iter().cycle())
            .map(|(c, &class)| Ok((d.f64(&format!("{base}/components_pj/{}", token(c)))?, class)))
            .collect()
    };
    let mut rows = vec![(
        "model".to_string(),
        stack("/simulation/energy/model")?,
        d.tspan("/simulation/energy/model/total_nj", Fmt::Sig)?,
    )];
    let n = d
        .get("/simulation/energy/layers")
        .and_then(|v| v.as_array())
        .map_or(0, Vec::len);
    for j in 0..n {
        let p = format!("/simulation/energy/layers/{j}");
        rows.push((
            d.str(&format!("{p}/name"))?.to_string(),
            stack(&p)?,
            d.tspan(&format!("{p}/total_nj"), Fmt::Sig)?,
        ));
    }
    // pJ in the bars, nJ at their ends.
    // The colours repeat past 13 components, as the bars' do.
    let legend: Vec<(&str, &str)> = COLOURS
        .iter()
        .copied()
        .cycle()
        .zip(names.iter().map(String::as_str))
        .collect();
    Ok(long(
        rows.len(),
        "Energy per inference by component",
        figure(
            "Energy per inference by component (nJ at each bar's end)",
            &svg::bars("energy per component", &rows, "pJ per inference", false),
            &legend,
        ),
    ))
}

/// A figure of one bar per layer, collapsed under `what` when there are many layers.
fn long(rows: usize, what: &str, fig: String) -> String {
    if rows <= LONG {
        fig
    } else {
        format!("<details><summary>{what}: {rows} bars</summary>{fig}</details>")
    }
}

/// Bars per figure past which it is collapsed.
const LONG: usize = 24;

/// The savings waterfall of the model: the weight-fetch energy after each step, log scale.
fn waterfall(d: &Doc) -> Result<String> {
    let base = "/simulation/energy/model_savings";
    let Some(steps) = d.get(&format!("{base}/steps")).and_then(|v| v.as_array()) else {
        return Ok(String::new());
    };
    let mut rows = Vec::new();
    for j in 0..steps.len() {
        let p = format!("{base}/steps/{j}");
        rows.push((
            d.str(&format!("{p}/name"))?.to_string(),
            vec![(d.f64(&format!("{p}/energy_pj"))?, "s0")],
            if j == 0 {
                d.tspan(&format!("{p}/energy_pj"), Fmt::Sig)?
            } else {
                format!("/{}", d.tspan(&format!("{p}/factor"), Fmt::Fixed(1))?)
            },
        ));
    }
    rows.push((
        "EIE, the whole run modelled".into(),
        vec![(d.f64(&format!("{base}/model_pj"))?, "hot")],
        format!(
            "/{} in all",
            d.tspan(&format!("{base}/actual"), Fmt::Fixed(0))?
        ),
    ));
    Ok(figure(
        "Savings: the energy of fetching the weights after each step, pJ (log scale)",
        &svg::bars("savings waterfall", &rows, "pJ per inference", true),
        &[
            ("s0", "weight fetch after the step"),
            ("hot", "everything EIE spends, modelled"),
        ],
    ))
}

/// The components in pJ, the model and each layer.
fn components_table(d: &Doc) -> Result<String> {
    let names = components(d, "/simulation/energy/model/components_pj");
    let mut s = String::from(
        "<div class=\"scroll\"><table class=\"num\"><tr><th class=\"l\">pJ per inference</th>",
    );
    for c in &names {
        s += &format!("<th>{}</th>", esc(c));
    }
    s += "</tr>";
    let mut row = |label: String, base: &str| -> Result<()> {
        s += &format!("<tr><td class=\"l\">{label}</td>");
        for c in &names {
            s += &d.td(&format!("{base}/components_pj/{}", token(c)), Fmt::Sig)?;
        }
        s += "</tr>";
        Ok(())
    };
    row("model".into(), "/simulation/energy/model")?;
    let n = d
        .get("/simulation/energy/layers")
        .and_then(|v| v.as_array())
        .map_or(0, Vec::len);
    for j in 0..n {
        let p = format!("/simulation/energy/layers/{j}");
        row(d.text(&format!("{p}/name"))?, &p)?;
    }
    Ok(s + "</table></div>")
}

/// A layer's simulated figures (nothing when it was not simulated).
pub fn layer(d: &Doc, name: &str) -> Result<String> {
    let Some(j) = d.index_of("/simulation/layers", name) else {
        return Ok(String::new());
    };
    let p = format!("/simulation/layers/{j}");
    let mut s = String::from("<dl class=\"kv\">");
    for (label, k, fmt) in [
        ("cycles", "cycles", Fmt::Fixed(1)),
        ("most cycles", "cycles_max", Fmt::Int),
        ("time, us", "time_us", Fmt::Sig),
        ("load efficiency", "load_efficiency", Fmt::Pct(1)),
        ("multiply-accumulates", "macs", Fmt::Fixed(1)),
    ] {
        // A described model's layers have no per-vector maximum or MAC count.
        let ptr = format!("{p}/{k}");
        if d.get(&ptr).is_some() {
            s += &format!("<dt>{label}</dt><dd>{}</dd>", d.num(&ptr, fmt)?);
        }
    }
    if let Some(k) = d.index_of("/simulation/energy/layers", name) {
        let e = format!("/simulation/energy/layers/{k}");
        s += &format!(
            "<dt>energy, nJ</dt><dd>{}</dd>",
            d.num(&format!("{e}/total_nj"), Fmt::Sig)?
        );
        s += &format!(
            "<dt>pJ per MAC</dt><dd>{}</dd>",
            d.num(&format!("{e}/pj_per_mac"), Fmt::Sig)?
        );
    }
    Ok(s + "</dl>")
}
