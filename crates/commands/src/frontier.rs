//! `sweep DIR --frontier MODEL`: compression's frontier. The model compressed at every
//! density, code width and method asked for, each point measured by its bit-exact EIE stage
//! on a dataset (perplexity, accuracy or an encoder's embedding fidelity) and priced in real
//! bits per weight: everything the images store (codes, indices, padding, pointers,
//! codebooks) over the layers' weights, and Deep Compression's accounting of the same codes.
//! A CSV of every point and an SVG per accounting, one curve per method.

use std::path::{Path, PathBuf};

use eie_pipeline::output::{Inputs, OutputKind, write_file};
use eie_pipeline::settings::Value;
use eie_pipeline::{Observer, Quiet};
use serde::Serialize;

use crate::charts::{Draw, LinePlot, Series, write_svg};
use crate::compress;
use crate::error::{Error, Result, io};
use crate::inputs::{CalibrationRequest, DatasetRequest};
use crate::report::Schema;

/// A compression method of the frontier: its settings besides density and code width.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Deep Compression: magnitude pruning per layer, plain k-means.
    Magnitude,
    /// Magnitude pruning balanced across PEs.
    Balanced,
    /// Wanda: |w| x ||x|| compared per output row (calibrated).
    Activation,
    /// Magnitude pruning with the OBS update after pruning and sharing (calibrated).
    Obs,
    /// Wanda's score per row, the OBS update and an activation-weighted codebook.
    ActivationObs,
    /// The same balanced across PEs instead of per row.
    ActivationObsBalanced,
}

impl Method {
    /// Every method, in this order.
    pub const ALL: [Method; 6] = [
        Method::Magnitude,
        Method::Balanced,
        Method::Activation,
        Method::Obs,
        Method::ActivationObs,
        Method::ActivationObsBalanced,
    ];

    /// The method's name on the command line and in the CSV.
    pub fn name(self) -> &'static str {
        match self {
            Method::Magnitude => "magnitude",
            Method::Balanced => "balanced",
            Method::Activation => "activation",
            Method::Obs => "obs",
            Method::ActivationObs => "activation-obs",
            Method::ActivationObsBalanced => "activation-obs-balanced",
        }
    }

    /// The method named `name`.
    pub fn named(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }

    /// Whether it needs calibration samples.
    pub fn calibrated(self) -> bool {
        !matches!(self, Method::Magnitude | Method::Balanced)
    }

    /// Its per-layer settings, as `compress` takes them.
    fn settings(self) -> Vec<(String, Value)> {
        let choice = |k: &str, v: &'static str| (k.to_string(), Value::Choice(v));
        let on = |k: &str| (k.to_string(), Value::Switch(true));
        match self {
            Method::Magnitude => vec![],
            Method::Balanced => vec![on("balance")],
            Method::Activation => vec![choice("prune_score", "activation"), on("per_row")],
            Method::Obs => vec![choice("update", "obs")],
            Method::ActivationObs => vec![
                choice("prune_score", "activation"),
                on("per_row"),
                choice("update", "obs"),
                choice("codebook_weight", "activation"),
            ],
            Method::ActivationObsBalanced => vec![
                choice("prune_score", "activation"),
                on("balance"),
                choice("update", "obs"),
                choice("codebook_weight", "activation"),
            ],
        }
    }
}

/// The frontier to sweep and where its files go.
#[derive(Debug, Clone)]
pub struct Request {
    /// The folder for the CSV and the plots (it may hold other sweeps).
    pub dir: PathBuf,
    /// The checkpoint or language model folder.
    pub model: PathBuf,
    /// What each point is measured on (required: a frontier is of a metric).
    pub data: Option<DatasetRequest>,
    /// Calibration samples, for the calibrated methods.
    pub calibration: Option<CalibrationRequest>,
    /// Densities (each in (0, 1]).
    pub densities: Vec<f64>,
    /// Code widths (1..=8).
    pub code_bits: Vec<u8>,
    /// Methods.
    pub methods: Vec<Method>,
    /// PEs.
    pub pes: u32,
    /// Replace this tool's own frontier files.
    pub force: bool,
}

/// One compressed point of the frontier.
#[derive(Debug, Clone, Serialize)]
pub struct FrontierPoint {
    /// The method.
    pub method: &'static str,
    /// The density asked for.
    pub density: f64,
    /// Bits of a code.
    pub code_bits: u8,
    /// What the metric is (`perplexity`, `top1`, `cosine`).
    pub metric: &'static str,
    /// The bit-exact EIE stage's metric.
    pub value: f64,
    /// The original model's.
    pub original: f64,
    /// Every byte a PE stores (codes, indices, padding, pointers, codebooks), in bits, over
    /// the compressed layers' weights.
    pub bits_per_weight: f64,
    /// Deep Compression's accounting of the same codes (its own sparse layout and one
    /// codebook a layer, no PEs), in bits a weight.
    pub dc_bits_per_weight: f64,
    /// The images' bytes.
    pub bytes: u64,
    /// The compressed layers' weights.
    pub weights: u64,
}

/// What the frontier measured and wrote.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The report's schema.
    pub schema: Schema,
    /// Every point, method-major, then density, then code width.
    pub points: Vec<FrontierPoint>,
    /// The files written: the CSV, then the plots.
    pub files: Vec<PathBuf>,
}

impl Report {
    /// The points as a text table, then the files written.
    pub fn table(&self) -> String {
        let mut s = String::from(
            "method                     density  bits  metric      value  bits/weight  DC bits/weight\n",
        );
        for p in &self.points {
            s.push_str(&format!(
                "{:<26} {:>7} {:>5}  {:<10} {:>7.4}  {:>11.3}  {:>14.3}\n",
                p.method,
                p.density,
                p.code_bits,
                p.metric,
                p.value,
                p.bits_per_weight,
                p.dc_bits_per_weight
            ));
        }
        let files: Vec<String> = self.files.iter().map(|f| f.display().to_string()).collect();
        s.push_str(&format!("wrote {}\n", files.join(", ")));
        s
    }
}

const CSV: OutputKind = OutputKind::Text("method,density,code_bits,");
const FILES: [&str; 3] = ["frontier.csv", "frontier.svg", "frontier-dc.svg"];

impl Request {
    /// Checks what needs no work, then compresses and measures every point (each a staged
    /// output of `compress` under `DIR/frontier/`, kept for a look), then writes the CSV
    /// and plots; a second frontier into the same folder fails at once.
    pub fn run(&self, draw: &dyn Draw, observer: &dyn Observer) -> Result<Report> {
        self.check()?;
        let mut inputs = Inputs::new();
        inputs.add(&self.model);
        if let Some(d) = &self.data {
            inputs.extend(d.inputs()?);
        }
        if let Some(c) = &self.calibration {
            inputs.extend(c.data.inputs()?);
        }
        let files: Vec<(String, OutputKind)> = FILES
            .iter()
            .map(|f| {
                let kind = if f.ends_with(".csv") {
                    CSV
                } else {
                    crate::charts::SVG
                };
                (f.to_string(), kind)
            })
            .collect();
        crate::sweep::check_folder(&self.dir, &inputs, &files, self.force)?;
        crate::sweep::in_folder(&self.dir, || self.sweep(draw, observer, &inputs))
    }

    /// What needs no file: values in range, none twice, samples for calibrated methods.
    pub fn check(&self) -> Result<()> {
        crate::checks::pes(self.pes)?;
        if self.data.is_none() {
            return Err(Error::Option {
                option: "--dataset".into(),
                reason: "a frontier measures every point: give the samples (text:FILE for a language model)".into(),
            });
        }
        let empty = |option: &str| Error::Option {
            option: option.into(),
            reason: "give at least one value".into(),
        };
        if self.densities.is_empty() {
            return Err(empty("--densities"));
        }
        if self.code_bits.is_empty() {
            return Err(empty("--code-bits"));
        }
        if self.methods.is_empty() {
            return Err(empty("--methods"));
        }
        if let Some(d) = self.densities.iter().find(|d| !(**d > 0.0 && **d <= 1.0)) {
            return Err(Error::Option {
                option: "--densities".into(),
                reason: format!("{d} is outside (0, 1]"),
            });
        }
        if let Some(b) = self.code_bits.iter().find(|b| !(1..=8).contains(*b)) {
            return Err(Error::Option {
                option: "--code-bits".into(),
                reason: format!("{b} is outside 1..=8"),
            });
        }
        let twice = |option: &'static str, values: Vec<String>| -> Result<()> {
            match (0..values.len()).find(|&i| values[..i].contains(&values[i])) {
                Some(i) => Err(Error::Repeated {
                    option,
                    value: values[i].clone(),
                }),
                None => Ok(()),
            }
        };
        twice(
            "--densities",
            self.densities.iter().map(f64::to_string).collect(),
        )?;
        twice(
            "--code-bits",
            self.code_bits.iter().map(u8::to_string).collect(),
        )?;
        twice(
            "--methods",
            self.methods.iter().map(|m| m.name().to_string()).collect(),
        )?;
        let calibrated = self.methods.iter().find(|m| m.calibrated());
        match (&self.calibration, calibrated) {
            (None, Some(m)) => {
                return Err(Error::Option {
                    option: "--calibration".into(),
                    reason: format!("method {} needs calibration samples", m.name()),
                });
            }
            (Some(_), None) => {
                return Err(Error::Option {
                    option: "--calibration".into(),
                    reason: "no method given uses calibration samples (magnitude and balanced need none)".into(),
                });
            }
            _ => {}
        }
        Ok(())
    }

    fn sweep(&self, draw: &dyn Draw, observer: &dyn Observer, inputs: &Inputs) -> Result<Report> {
        let points_dir = self.dir.join("frontier");
        let mut points = Vec::new();
        let total = self.methods.len() * self.densities.len() * self.code_bits.len();
        observer.start("frontier", total as u64);
        for &m in &self.methods {
            for &d in &self.densities {
                for &b in &self.code_bits {
                    let name = format!("{}-d{d}-b{b}", m.name());
                    observer.step(&name);
                    points.push(self.point(m, d, b, &points_dir.join(&name))?);
                    observer.advance();
                }
            }
        }
        observer.finish();
        let csv_path = self.dir.join(FILES[0]);
        let csv = points_csv(&points);
        let plots = [(FILES[1], false), (FILES[2], true)]
            .into_iter()
            .map(|(file, dc)| Ok((self.dir.join(file), draw.lines(&plot(&points, dc))?)))
            .collect::<Result<Vec<_>>>()?;
        write_file(&csv_path, self.force, CSV, inputs, |tmp| -> Result<()> {
            std::fs::write(tmp, &csv).map_err(io("cannot write", &csv_path))
        })?;
        let mut files = vec![csv_path];
        for (path, svg) in plots {
            write_svg(&path, self.force, inputs, &svg)?;
            files.push(path);
        }
        Ok(Report {
            schema: Schema("frontier"),
            points,
            files,
        })
    }

    /// One point: compress into `out` (replacing an earlier frontier's point there only
    /// with `force`) and read its report.
    fn point(&self, m: Method, density: f64, bits: u8, out: &Path) -> Result<FrontierPoint> {
        let mut settings = m.settings();
        settings.push(("density".into(), Value::Float(density)));
        settings.push(("code_bits".into(), Value::Int(bits as u64)));
        let mut request = compress::Request::new(&self.model, out);
        request.settings = settings;
        request.pes = self.pes;
        request.force = self.force;
        request.data = self.data.clone();
        request.calibration = self.calibration.clone().filter(|_| m.calibrated());
        let r = request.resolve()?.run(&Quiet)?;
        let acc = r.accuracy.as_ref().ok_or_else(|| Error::Unfit {
            reason: format!("{}: compress measured no stage", out.display()),
        })?;
        let (first, last) = match (acc.stages.first(), acc.stages.last()) {
            (Some(f), Some(l)) => (f, l),
            _ => {
                return Err(Error::Unfit {
                    reason: format!("{}: compress measured no stage", out.display()),
                });
            }
        };
        let (metric, value, original) = match (last.perplexity, last.cosine) {
            (Some(p), _) => ("perplexity", p, first.perplexity.unwrap_or(f64::NAN)),
            (None, Some(c)) => ("cosine", c, first.cosine.unwrap_or(1.0)),
            (None, None) => ("top1", last.top1, first.top1),
        };
        let t = &r.report.totals;
        let weights = t.weights.max(1);
        let dc: u64 = r
            .report
            .layers
            .iter()
            .map(|l| l.compression.deep_compression_pq_bytes)
            .sum();
        Ok(FrontierPoint {
            method: m.name(),
            density,
            code_bits: bits,
            metric,
            value,
            original,
            bits_per_weight: 8.0 * t.bytes.total as f64 / weights as f64,
            dc_bits_per_weight: 8.0 * dc as f64 / weights as f64,
            bytes: t.bytes.total,
            weights: t.weights,
        })
    }
}

fn points_csv(points: &[FrontierPoint]) -> String {
    let mut s = String::from(
        "method,density,code_bits,metric,value,original,bits_per_weight,dc_bits_per_weight,bytes,weights\n",
    );
    for p in points {
        s.push_str(&format!(
            "{},{},{},{},{},{},{:.6},{:.6},{},{}\n",
            p.method,
            p.density,
            p.code_bits,
            p.metric,
            p.value,
            p.original,
            p.bits_per_weight,
            p.dc_bits_per_weight,
            p.bytes,
            p.weights
        ));
    }
    s
}

/// The metric against bits a weight (the images' or Deep Compression's), a curve a method,
/// its points in order of bits.
fn plot(points: &[FrontierPoint], dc: bool) -> LinePlot {
    let mut series: Vec<Series> = Vec::new();
    for p in points {
        let x = if dc {
            p.dc_bits_per_weight
        } else {
            p.bits_per_weight
        };
        match series.iter_mut().find(|s| s.name == p.method) {
            Some(s) => s.points.push((x, p.value)),
            None => series.push(Series {
                name: p.method.to_string(),
                points: vec![(x, p.value)],
            }),
        }
    }
    for s in &mut series {
        s.points.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    let metric = points.first().map_or("metric", |p| p.metric);
    LinePlot {
        param: if dc {
            "bits per weight, Deep Compression's accounting".into()
        } else {
            "bits per weight of the EIE images (padding and pointers included)".into()
        },
        y_label: format!("{metric} (EIE bit-exact)"),
        series,
        log_x: false,
    }
}
