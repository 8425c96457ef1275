//! `report`: the HTML report of a compressed model (crates/html), rendered again with a
//! simulation's cycles and energy and, given the checkpoint and a dataset, eval's accuracy.
//! `compress` writes the first one itself (report.html, from what it measured); this one
//! never writes inside the folder it reads: its page goes beside it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use eie_pipeline::output::{Inputs, OutputKind, REPORT_FILE, check_file, write_file};
use serde::Serialize;
use serde_json::{Value, json};

use crate::error::{Error, Result, io};
use crate::inputs::{InputRequest, Source};
use crate::packed::{PackedModel, add_model_inputs, model_file};
use crate::report::Schema;
use crate::simulate::{self, Report as Simulated};
use crate::{EnergyTable, NoCharts, eval};

/// How a report page starts, by which `--force` knows one eie-compress wrote.
pub const PAGE: OutputKind = OutputKind::Text(eie_html::MARK);

/// The largest report.json read (a model of thousands of layers stays far below it).
const MAX_REPORT_JSON: u64 = 1 << 30;

/// The page's document: compress's report, the settings `model.eie` records and, when
/// known, a simulation's summary and eval's report. Every number the page shows is read
/// from it, at the JSON pointer the page tags it with.
pub fn document(
    compress: Value,
    settings: &BTreeMap<String, String>,
    simulation: Option<Value>,
    eval: Option<Value>,
) -> Value {
    let mut doc = json!({ "compress": compress, "settings": settings });
    if let Some(s) = simulation {
        doc["simulation"] = s;
    }
    if let Some(e) = eval {
        doc["eval"] = e;
    }
    doc
}

/// The page of `doc` ([`document`]).
pub fn render(doc: &Value) -> Result<String> {
    Ok(eie_html::render(doc)?)
}

/// A report page to render.
#[derive(Debug, Clone)]
pub struct Request {
    /// An output folder of `compress` (its model.eie and report.json).
    pub dir: PathBuf,
    /// The page (default: `NAME-report.html` beside the folder `NAME`).
    pub output: Option<PathBuf>,
    /// Replace a page eie-compress wrote there before.
    pub force: bool,
    /// The simulation's inputs: a dataset's samples, a file's vectors or a generated vector.
    pub input: InputRequest,
    /// The checkpoint the folder was made from: with a dataset, eval measures every stage.
    pub checkpoint: Option<PathBuf>,
    /// The timing model's hardware.
    pub timing: eie_simulate::TimingParams,
    /// The EIE model's arithmetic.
    pub arith: eie_simulate::Arith,
    /// The energy model's constants.
    pub energy: EnergyTable,
    /// The most memory the simulation may take.
    pub max_memory: u64,
}

impl Request {
    /// The page of `dir`, simulated on one generated vector.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            output: None,
            force: false,
            input: InputRequest::default(),
            checkpoint: None,
            timing: Default::default(),
            arith: Default::default(),
            energy: EnergyTable::default(),
            max_memory: crate::DEFAULT_MAX_MEMORY,
        }
    }

    /// Where the page goes: `--output`, else `NAME-report.html` beside the folder.
    pub fn output_path(&self) -> Result<PathBuf> {
        if let Some(o) = &self.output {
            return Ok(o.clone());
        }
        let dir = std::path::absolute(&self.dir).map_err(io("cannot resolve", &self.dir))?;
        let dir = if dir.is_dir() {
            dir
        } else {
            dir.parent().map(Path::to_path_buf).unwrap_or(dir)
        };
        match (dir.parent(), dir.file_name()) {
            (Some(parent), Some(name)) => {
                Ok(parent.join(format!("{}-report.html", name.to_string_lossy())))
            }
            _ => Err(Error::Option {
                option: "--output".into(),
                reason: format!(
                    "{} has no folder beside which to write the page; give --output",
                    self.dir.display()
                ),
            }),
        }
    }

    fn simulation(&self) -> simulate::Request {
        simulate::Request {
            dir: self.dir.clone(),
            pes: None,
            layer: None,
            input: self.input.clone(),
            timing: self.timing,
            arith: self.arith,
            energy: self.energy.clone(),
            chart: Default::default(),
            cpu: false,
            max_memory: self.max_memory,
        }
    }

    fn eval(&self) -> Result<Option<eval::Request>> {
        let Some(model) = &self.checkpoint else {
            return Ok(None);
        };
        let Source::Dataset(data) = &self.input.source else {
            return Err(Error::NotApplicable {
                option: "--checkpoint",
                applies_to: "a report measured on a dataset; give --dataset".into(),
            });
        };
        Ok(Some(eval::Request {
            model: model.clone(),
            dir: Some(self.dir.clone()),
            data: data.clone(),
            arch: None,
            layers: Vec::new(),
            act_frac: self.input.act_frac.clone(),
            arith: self.arith,
            timing: self.timing,
            energy: self.energy.clone(),
            context: None,
            stride: None,
        }))
    }

    /// Simulates, evaluates when asked, renders and writes the page (all or nothing).
    pub fn run(&self) -> Result<Report> {
        let sim = self.simulation();
        sim.check()?;
        let eval = self.eval()?;
        if let Some(e) = &eval {
            e.check()?;
        }
        let output = self.output_path()?;
        let file = model_file(&self.dir);
        let report_file = file
            .parent()
            .map_or_else(|| PathBuf::from(REPORT_FILE), |p| p.join(REPORT_FILE));
        let mut inputs = Inputs::new();
        add_model_inputs(&self.dir, &file, &mut inputs);
        inputs
            .add(&report_file)
            .extend(self.input.inputs()?)
            .extend(&self.energy.file)
            .extend(&self.checkpoint);
        check_file(&output, self.force, PAGE, &inputs)?;

        let compress = read_report(&report_file)?;
        let model =
            PackedModel::load_estimated(&self.dir, self.input.estimate()?, self.max_memory)?;
        check_same_model(&compress, &model, &report_file)?;
        let simulated = sim.run_on(&model, &NoCharts)?;
        let evaluated = match eval {
            Some(e) => Some(serde_json::to_value(e.run()?)?),
            None => None,
        };
        let doc = document(
            compress,
            model.settings(),
            Some(summary(&simulated, &describe(&self.input.source))?),
            evaluated,
        );
        let html = render(&doc)?;
        write_file(&output, self.force, PAGE, &inputs, |tmp| -> Result<()> {
            std::fs::write(tmp, &html).map_err(io("cannot write", &output))
        })?;
        Ok(Report {
            schema: Schema("report"),
            output: output.display().to_string(),
            bytes: html.len() as u64,
            document: doc,
        })
    }
}

/// What `report` did.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The report's schema.
    pub schema: Schema,
    /// The page written.
    pub output: String,
    /// Its size.
    pub bytes: u64,
    /// What it shows: every number on the page is read from here.
    pub document: Value,
}

/// compress's report.json, parsed.
fn read_report(path: &Path) -> Result<Value> {
    let text = eie_format::files::read_text(path, MAX_REPORT_JSON).map_err(|e| Error::Io {
        what: "cannot read compress's report (report renders an output folder of compress)",
        path: path.to_path_buf(),
        source: e,
    })?;
    serde_json::from_str(&text).map_err(|e| Error::Inputs {
        reason: format!("{}: not a report compress wrote: {e}", path.display()),
    })
}

/// report.json must describe this model.eie: the same source and the same layers.
fn check_same_model(report: &Value, model: &PackedModel, path: &Path) -> Result<()> {
    let meta = model.bundle.meta();
    let hex = meta
        .source
        .sha256
        .map(|h| h.iter().map(|b| format!("{b:02x}")).collect::<String>());
    let names: Vec<&str> = report
        .pointer("/layers")
        .and_then(Value::as_array)
        .map(|ls| ls.iter().filter_map(|l| l["name"].as_str()).collect())
        .unwrap_or_default();
    let mut in_model: Vec<String> = Vec::new();
    for v in model.views(None)? {
        if in_model.last().map(String::as_str) != Some(v.name()) {
            in_model.push(v.name().to_string());
        }
    }
    let same = report.pointer("/source/name").and_then(Value::as_str)
        == Some(meta.source.name.as_str())
        && report.pointer("/source/sha256").and_then(Value::as_str) == hex.as_deref()
        && names == in_model.iter().map(String::as_str).collect::<Vec<_>>();
    if same {
        Ok(())
    } else {
        Err(Error::Inputs {
            reason: format!(
                "{} does not describe {} (another source or other layers): the folder was changed after compress wrote it",
                path.display(),
                model.file.display()
            ),
        })
    }
}

/// The simulation's inputs in words.
fn describe(source: &Source) -> String {
    match source {
        Source::File { path, .. } => format!("the vectors of {}", path.display()),
        Source::Dataset(d) => match &d.range {
            Some(r) => format!("{} [{r}]", d.spec),
            None => d.spec.to_string(),
        },
        Source::Vectors(v) => format!("{} given vectors", v.len()),
        Source::Generated { density, seed } => {
            format!("a generated input (activation density {density}, seed {seed})")
        }
    }
}

/// The simulation as the page shows it: per layer, the means over the vectors.
fn summary(r: &Simulated, input: &str) -> Result<Value> {
    #[derive(Serialize)]
    struct Layer {
        name: String,
        cycles: f64,
        #[serde(skip_serializing_if = "Option::is_none")]
        cycles_max: Option<u64>,
        time_us: f64,
        load_efficiency: f64,
        #[serde(skip_serializing_if = "Option::is_none")]
        macs: Option<f64>,
    }
    let (vectors, clock_mhz, pes, time_us, layers) = match r {
        Simulated::Chain(c) => {
            let n = c.vectors.len().max(1) as f64;
            let first = c.vectors.first().map_or(&[][..], |v| &v.layers[..]);
            let layers = (0..first.len())
                .map(|l| {
                    let runs = || c.vectors.iter().map(move |v| &v.layers[l].timing);
                    Layer {
                        name: first[l].name.clone(),
                        cycles: runs().map(|t| t.cycles as f64).sum::<f64>() / n,
                        cycles_max: runs().map(|t| t.cycles).max(),
                        time_us: runs().map(|t| t.time_us).sum::<f64>() / n,
                        load_efficiency: runs().map(|t| t.load_efficiency).sum::<f64>() / n,
                        macs: Some(runs().map(|t| t.macs as f64).sum::<f64>() / n),
                    }
                })
                .collect::<Vec<_>>();
            let time = c.vectors.iter().map(|v| v.total_time_us).sum::<f64>() / n;
            (c.vectors.len(), c.clock_mhz, c.pes, time, layers)
        }
        Simulated::Described(d) => {
            let layers = d
                .layers
                .iter()
                .map(|l| Layer {
                    name: l.name.clone(),
                    cycles: l.cycles_per_inference,
                    cycles_max: None,
                    time_us: l.time_per_inference_us,
                    load_efficiency: l.load_efficiency,
                    macs: None,
                })
                .collect();
            (
                d.inferences,
                d.clock_mhz,
                d.pes,
                d.time_per_inference_us,
                layers,
            )
        }
    };
    Ok(json!({
        "input": input,
        "vectors": vectors,
        "clock_mhz": clock_mhz,
        "pes": pes,
        "cycles": r.cycles_per_inference(),
        "time_us": time_us,
        "layers": serde_json::to_value(layers)?,
        "energy": serde_json::to_value(r.energy())?,
    }))
}
