//! `report`: the HTML report of a compressed model (crates/html), rendered again with a
//! simulation's cycles and energy and, given the checkpoint and a dataset, eval's accuracy.
//! `compress` writes the first one itself (report.html, from what it measured); this one
//! never writes inside the folder it reads: its page goes beside it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use eie_pipeline::output::{Inputs, REPORT_FILE, REPORT_HTML as PAGE, check_file, write_file};
use serde::Serialize;
use serde_json::{Value, json};

use crate::error::{Error, Result, io};
use crate::inputs::{InputRequest, Source};
use crate::packed::{PackedModel, add_model_inputs, model_file};
use crate::report::Schema;
use crate::simulate::{self, Report as Simulated};
use crate::{EnergyTable, NoCharts, eval};

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

    /// The simulation's inputs: the request's, except that a text dataset (a language
    /// model's, which eval scores) leaves the simulation to one generated input.
    fn sim_input(&self) -> InputRequest {
        match &self.input.source {
            Source::Dataset(d) if matches!(d.spec, eie_dataset::Spec::Text { .. }) => {
                InputRequest::default()
            }
            _ => self.input.clone(),
        }
    }

    fn simulation(&self) -> simulate::Request {
        simulate::Request {
            dir: self.dir.clone(),
            pes: None,
            layer: None,
            input: self.sim_input(),
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
        let mut eval = self.eval()?;
        if let Some(e) = &eval {
            e.check()?;
        }
        if !self.dir.exists() {
            return Err(Error::Inputs {
                reason: format!(
                    "{}: no such folder (report renders an output folder of compress)",
                    self.dir.display()
                ),
            });
        }
        let output = self.output_path()?;
        let file = model_file(&self.dir);
        // The folder is read (report.json, the images) even when model.eie is named.
        let folder = match file.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let report_file = folder.join(REPORT_FILE);
        let mut inputs = Inputs::new();
        add_model_inputs(&self.dir, &file, &mut inputs);
        inputs
            .add(&folder)
            .add(&report_file)
            .extend(self.input.inputs()?)
            .extend(&self.energy.file)
            .extend(&self.checkpoint);
        check_file(&output, self.force, PAGE, &inputs)?;

        // Loading recovers an interrupted publish first: report.json is read after it.
        let model = PackedModel::load_estimated(&self.dir, sim.input.estimate()?, self.max_memory)?;
        let compress = read_report(&report_file)?;
        check_same_model(&compress, &model, &report_file)?;
        let simulated = sim.run_on(&model, &NoCharts)?;
        let evaluated = match eval.as_mut() {
            Some(e) => {
                made_as(e, &model)?;
                Some(serde_json::to_value(e.run()?)?)
            }
            None => None,
        };
        let doc = document(
            compress,
            model.settings(),
            Some(summary(&simulated, &describe(&sim.input.source))?),
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

/// Eval selects the network the folder was made from: its recorded description, else (a
/// checkpoint file's MLP) the layers it holds.
fn made_as(e: &mut eval::Request, model: &PackedModel) -> Result<()> {
    e.arch = model.settings().get("arch").cloned();
    if e.arch.is_none() && e.model.is_file() {
        e.layers = model
            .views(None)?
            .iter()
            .map(|v| v.name().to_string())
            .collect();
    }
    Ok(())
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

/// report.json must describe this model.eie: the same source, PEs and layers (names,
/// shapes, entries and code bits), or the page would show another run's figures.
fn check_same_model(report: &Value, model: &PackedModel, path: &Path) -> Result<()> {
    let meta = model.bundle.meta();
    let views = model.views(None)?;
    let mut expected: Vec<(String, Value)> = vec![
        ("/source/name".into(), json!(meta.source.name)),
        (
            "/source/sha256".into(),
            json!(meta.source.sha256.map(|h| eie_format::hex(&h))),
        ),
        ("/pes".into(), json!(views[0].pes())),
        ("/layers".into(), json!(views.len())),
    ];
    for (i, v) in views.iter().enumerate() {
        let entries: usize = v.parts().iter().map(|p| p.entries()).sum();
        let l = format!("/layers/{i}");
        expected.extend([
            (format!("{l}/name"), json!(v.name())),
            (format!("{l}/rows"), json!(v.rows())),
            (format!("{l}/inputs"), json!(v.inputs())),
            (format!("{l}/entries"), json!(entries)),
            (
                format!("{l}/quantization/code_bits"),
                json!(v.parts()[0].code_bits()),
            ),
        ]);
    }
    for (ptr, want) in expected {
        let got = match (ptr.as_str(), report.pointer(&ptr)) {
            ("/layers", Some(Value::Array(a))) => json!(a.len()),
            (_, got) => got.cloned().unwrap_or(Value::Null),
        };
        if got != want {
            return Err(Error::Inputs {
                reason: format!(
                    "{} does not describe {}: its {ptr} is {got}, the model's {want} (the folder was changed after compress wrote it)",
                    path.display(),
                    model.file.display()
                ),
            });
        }
    }
    Ok(())
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

/// The simulation as the page shows it: its inputs, the means per layer and its energy.
fn summary(r: &Simulated, input: &str) -> Result<Value> {
    let mut v = serde_json::to_value(r.means())?;
    v["input"] = json!(input);
    v["energy"] = serde_json::to_value(r.energy())?;
    Ok(v)
}
