//! The SVG charts some commands write. This crate decides what goes in a chart and where it
//! is written (all or nothing, never over an input); a [`Draw`] given by the caller turns
//! the data into SVG (the command-line tool draws with plotters).

use std::path::{Path, PathBuf};

use eie_energy::Savings;
use eie_pipeline::output::{Inputs, OutputKind, check_file, write_file};

use crate::error::{Result, io};

/// Draws charts as SVG text.
pub trait Draw {
    /// The savings breakdown as a waterfall: the weight-fetch energy after each step, and
    /// the energy the model computes for the whole run (docs/energy.md).
    fn waterfall(&self, title: &str, savings: &Savings) -> Result<String>;
    /// Lines, one per series.
    fn lines(&self, plot: &LinePlot) -> Result<String>;
}

/// For callers that ask for no chart: drawing one is an error saying so. `simulate` and
/// `bench-paper` draw only when a savings chart is asked for; `sweep` always draws its plots.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoCharts;

impl Draw for NoCharts {
    fn waterfall(&self, title: &str, _: &Savings) -> Result<String> {
        Err(no_charts(title))
    }

    fn lines(&self, plot: &LinePlot) -> Result<String> {
        Err(no_charts(&plot.y_label))
    }
}

fn no_charts(chart: &str) -> crate::Error {
    crate::Error::Draw {
        chart: chart.to_string(),
        reason: "no chart drawer was given (eie-charts draws them)".into(),
    }
}

/// A line plot of a metric against a swept parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct LinePlot {
    /// The parameter (the x axis).
    pub param: String,
    /// The metric (the y axis).
    pub y_label: String,
    /// One line per layer.
    pub series: Vec<Series>,
    /// The parameter was swept in powers of two: a log2 axis.
    pub log_x: bool,
}

/// One line of a plot: a layer and its (parameter, metric) points.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The layer.
    pub name: String,
    /// Its points.
    pub points: Vec<(f64, f64)>,
}

/// How an SVG this tool drew starts (plotters' SVG backend), by which `--force` knows one.
pub const SVG: OutputKind = OutputKind::Text("<svg");

/// The savings breakdown's chart, when one is asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SavingsChart {
    /// The SVG file to write.
    pub path: Option<PathBuf>,
    /// Replace a chart this tool drew there before.
    pub force: bool,
}

impl SavingsChart {
    /// Checks the chart's path before any work: never one of `inputs` nor inside an input
    /// folder, in a folder that exists, and not an existing file unless `force` and a chart
    /// eie-compress drew.
    pub fn check(&self, inputs: &Inputs) -> Result<()> {
        if let Some(chart) = &self.path {
            check_file(chart, self.force, SVG, inputs)?;
        }
        Ok(())
    }

    /// Writes the chart `draw` draws of `savings`, all or nothing (nothing is drawn when no
    /// chart is asked for).
    pub fn write(
        &self,
        inputs: &Inputs,
        draw: &dyn Draw,
        title: &str,
        savings: &Savings,
    ) -> Result<()> {
        if let Some(chart) = &self.path {
            let svg = draw.waterfall(title, savings)?;
            write_svg(chart, self.force, inputs, &svg)?;
        }
        Ok(())
    }
}

/// Writes `svg` to `path` all or nothing, never over an input.
pub(crate) fn write_svg(path: &Path, force: bool, inputs: &Inputs, svg: &str) -> Result<()> {
    write_file(path, force, SVG, inputs, |tmp| -> Result<()> {
        std::fs::write(tmp, svg).map_err(io("cannot write", path))
    })
}

/// The title of a model's savings chart.
pub fn savings_title(model: &str) -> String {
    format!("Where EIE's energy saving comes from: {model}")
}
