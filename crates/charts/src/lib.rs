#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

use eie_commands::{Draw, Error, LinePlot, Result, Series};
use eie_energy::Savings;
use eie_energy::savings::STEPS;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Draws with plotters' SVG backend.
#[derive(Debug, Clone, Copy, Default)]
pub struct Plotters;

impl Draw for Plotters {
    fn waterfall(&self, title: &str, savings: &Savings) -> Result<String> {
        waterfall(title, savings)
    }

    fn lines(&self, plot: &LinePlot) -> Result<String> {
        lines(plot)
    }
}

/// A waterfall's bar: the step, its energy (pJ) and the label above it.
type Bar = (String, f64, String);

/// The waterfall's bars: the weight-fetch energy after each step, then the whole run as the
/// model computes it; and the log axis's range.
fn bars(s: &Savings) -> (Vec<Bar>, f64, f64) {
    let mut bars: Vec<Bar> = STEPS
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
    (bars, lo, hi)
}

/// The breakdown as an SVG waterfall: the weight-fetch energy after each step (log scale),
/// each step's factor above its bar, and the energy the model computes for the whole run.
pub fn waterfall(title: &str, s: &Savings) -> Result<String> {
    let (bars, lo, hi) = bars(s);
    let n = bars.len() as i32;
    let err = |e: &dyn std::fmt::Display| Error::Draw {
        chart: "savings chart".into(),
        reason: e.to_string(),
    };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (1000, 620)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 22))
            .margin(16)
            .x_label_area_size(70)
            .y_label_area_size(90)
            // A segmented 0..k has k + 1 segments.
            .build_cartesian_2d((0..n - 1).into_segmented(), (lo..hi).log_scale())
            .map_err(|e| err(&e))?;
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
            .map_err(|e| err(&e))?;
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
            .map_err(|e| err(&e))?;
        chart
            .draw_series(bars.iter().enumerate().map(|(i, b)| {
                Text::new(
                    format!("{:.2e} {}", b.1, b.2),
                    (SegmentValue::CenterOf(i as i32), (b.1 * 1.15).max(lo)),
                    ("sans-serif", 13)
                        .into_font()
                        .color(&BLACK)
                        .pos(Pos::new(HPos::Center, VPos::Bottom)),
                )
            }))
            .map_err(|e| err(&e))?;
        root.present().map_err(|e| err(&e))?;
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

/// An SVG line plot, one line per layer; `log_x` for parameters swept in powers of two.
pub fn lines(p: &LinePlot) -> Result<String> {
    let (param, y_label, log_x) = (p.param.as_str(), p.y_label.as_str(), p.log_x);
    let err = |e: &dyn std::fmt::Display| Error::Draw {
        chart: "plot".into(),
        reason: e.to_string(),
    };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 560)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let xs = p
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|&(x, _)| x));
        let (x_min, x_max) = xs.fold((f64::MAX, f64::MIN), |(a, b), x| (a.min(x), b.max(x)));
        let y_max = p
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|&(_, y)| y))
            .fold(0.0, f64::max);
        let tx = |x: f64| if log_x { x.log2() } else { x };
        let (lo, hi) = (tx(x_min), tx(x_max).max(tx(x_min) + 1e-9));
        let mut chart = ChartBuilder::on(&root)
            .caption(format!("{y_label} against {param}"), ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(lo..hi, 0.0..(y_max * 1.08).max(1e-9))
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .x_desc(if log_x {
                format!("{param} (log2)")
            } else {
                param.to_string()
            })
            .y_desc(y_label)
            .x_label_formatter(&|v| {
                if log_x {
                    format!("{}", v.exp2().round())
                } else {
                    format!("{v}")
                }
            })
            .draw()
            .map_err(|e| err(&e))?;
        for (i, Series { name, points }) in p.series.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            chart
                .draw_series(LineSeries::new(
                    points.iter().map(|&(x, y)| (tx(x), y)),
                    color.stroke_width(2),
                ))
                .map_err(|e| err(&e))?
                .label(name.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| err(&e))?;
        root.present().map_err(|e| err(&e))?;
    }
    Ok(svg)
}
