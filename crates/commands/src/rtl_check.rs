//! `rtl-check`: co-simulates the reference design in `rtl/` on a packed model. Writes the
//! functional model's vectors, generates the testbench from the two manifests, runs it in
//! Icarus Verilog or Verilator, and compares the RTL's outputs and accumulators (in the
//! testbench) and its cycle counts (here) with the functional and timing models.

use std::path::{Path, PathBuf};

use eie_pipeline::output::Inputs;
use eie_rtl::{Loading, Simulator};
use eie_simulate::run::Mode;
use eie_simulate::vectors::{LayerRun, render};
use eie_simulate::{Arith, TimingParams};
use serde::Serialize;

use crate::error::{Error, Result, io};
use crate::inputs::InputRequest;
use crate::packed::PackedModel;
use crate::report::Schema;

/// What to co-simulate, and how.
#[derive(Debug, Clone)]
pub struct Request {
    /// An output folder of `pack` or `compress` (its manifest and images are loaded).
    pub dir: PathBuf,
    /// The HDL simulator.
    pub simulator: Simulator,
    /// Keep the testbench, the vectors and the simulator's log in this new folder (by
    /// default a temporary folder, removed afterwards).
    pub work: Option<PathBuf>,
    /// Load the memories through the design's host write port, one word a cycle.
    pub host_load: bool,
    /// The input vectors.
    pub input: InputRequest,
    /// The timing model's hardware (the design implements this project's rules).
    pub timing: TimingParams,
    /// The EIE model's arithmetic.
    pub arith: Arith,
}

/// What the RTL did against the models. [`Report::verdict`] says whether they agree.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The report's schema.
    pub schema: Schema,
    /// The model folder.
    pub dir: PathBuf,
    /// The design's PEs.
    pub pes: usize,
    /// Its queue depth.
    pub fifo: usize,
    /// The simulator.
    pub simulator: &'static str,
    /// Every layer's run, in order.
    pub layers: Vec<RtlLayer>,
    /// Where the testbench, vectors and log were kept, when asked for.
    pub kept: Option<PathBuf>,
    /// Every line the testbench printed about a mismatch or a file it could not load.
    pub failures: Vec<String>,
    /// Whether the testbench passed (every output and accumulator bit-exact).
    pub pass: bool,
}

/// One layer's cycles.
#[derive(Debug, Clone, Serialize)]
pub struct RtlLayer {
    /// The layer.
    pub name: String,
    /// The RTL's (none when it did not get that far).
    pub rtl_cycles: Option<u64>,
    /// The timing model's.
    pub model_cycles: u64,
}

impl Report {
    /// Ok when every output and accumulator is bit-exact and every cycle count equal;
    /// otherwise the error that says what differs.
    pub fn verdict(&self) -> Result<()> {
        if !self.pass {
            return Err(Error::Testbench {
                failures: self.failures.clone(),
            });
        }
        let differ: Vec<String> = self
            .layers
            .iter()
            .filter(|l| l.rtl_cycles.is_some_and(|c| c != l.model_cycles))
            .map(|l| l.name.clone())
            .collect();
        if !differ.is_empty() {
            return Err(Error::Cycles { layers: differ });
        }
        Ok(())
    }
}

/// A folder created for this run alone, removed on drop unless it was asked for.
struct Work {
    path: PathBuf,
    keep: bool,
}

impl Drop for Work {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// The work folder: the one asked for, or a new one in the system's temporary folder. Neither
/// may lie inside an input (a model packed straight into /tmp is one).
fn work_folder(asked: Option<&Path>, inputs: &Inputs) -> Result<Work> {
    let (path, keep) = match asked {
        Some(path) => (path.to_path_buf(), true),
        None => {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos());
            let name = format!("eie-rtl-check-{}-{nanos}", std::process::id());
            (std::env::temp_dir().join(name), false)
        }
    };
    inputs.check_folder(&path, &[]).map_err(|e| {
        if keep {
            Error::from(e)
        } else {
            Error::Unfit {
                reason: format!(
                    "the temporary folder ({}, from TMPDIR) holds an input of this run: set TMPDIR \
                     elsewhere or give --work DIR",
                    std::env::temp_dir().display()
                ),
            }
        }
    })?;
    std::fs::create_dir(&path).map_err(|source| Error::WorkFolder {
        path: path.clone(),
        source,
    })?;
    Ok(Work { path, keep })
}

/// A co-simulation planned: the models' runs, the design that runs them, and the work folder
/// holding the vectors (removed when dropped, unless it was asked for).
pub struct Planned<'m> {
    /// Chained or independent layers.
    pub mode: Mode,
    /// Every layer's run on the functional and timing models: what the RTL must match.
    pub runs: Vec<LayerRun<'m>>,
    /// The design: its parameters and one descriptor per part.
    pub design: eie_rtl::Design,
    work: Work,
}

impl Request {
    /// Co-simulates. The report holds the verdict: an `Ok` report may still be a failure
    /// ([`Report::verdict`]).
    pub fn run(&self) -> Result<Report> {
        // `plan` checks the inputs; checked here first too, before the model is read.
        crate::checks::inputs(&self.input)?;
        let model = PackedModel::load(&self.dir)?;
        let planned = self.plan(&model)?;
        let (runs, design, work) = (&planned.runs, &planned.design, &planned.work);
        let rendered = design.render();
        let loading = if self.host_load {
            Loading::HostPort
        } else {
            Loading::Direct
        };
        let sim = eie_rtl::run(&work.path, &rendered, self.simulator, loading)?;
        Ok(Report {
            schema: Schema("rtl-check"),
            dir: self.dir.clone(),
            pes: design.params.n_pe,
            fifo: self.timing.fifo_depth,
            simulator: self.simulator.name(),
            layers: runs
                .iter()
                .enumerate()
                .map(|(i, r)| RtlLayer {
                    name: r.view.name().to_string(),
                    rtl_cycles: sim.cycles.get(i).copied(),
                    model_cycles: r.step.timing.cycles,
                })
                .collect(),
            kept: work.keep.then(|| work.path.clone()),
            failures: sim.failures.clone(),
            pass: sim.pass,
        })
    }

    /// Everything before the simulator runs, on `model` (loaded from a folder, whose images
    /// are verified against it): the models' runs on the request's input, their vectors
    /// written into the work folder, and the design planned from the two manifests. What a
    /// testbench of one's own (rtl/cocotb) starts from.
    pub fn plan<'m>(&self, model: &'m PackedModel) -> Result<Planned<'m>> {
        crate::checks::inputs(&self.input)?;
        if !model.is_folder() {
            return Err(Error::Unfit {
                reason: format!(
                    "{} is not a model folder: rtl-check loads the images, so give the folder `pack` \
                     or `compress` wrote",
                    model.given.display()
                ),
            });
        }
        let bundle = &model.bundle;
        // The design's memory sizes and the testbench's word counts come from the manifest,
        // and the testbench reads the image files: all must be what model.eie says (verify's
        // check).
        let manifest = eie_pipeline::verify(&model.given, bundle)?;
        let params = self.timing;
        params.validate()?;
        eie_rtl::check_timing(&params)?;
        self.arith.validate()?;
        let mut inputs = Inputs::new();
        model.add_inputs(&mut inputs);
        inputs.extend(self.input.inputs()?);
        if let Some(p) = eie_evaluate::program::Program::of(bundle)? {
            return Err(Error::Unfit {
                reason: format!(
                    "{} is a described model ({}): the reference design co-simulates chains of layers, one run each; the runs of a CNN's or an LSTM's program are not co-simulated yet (simulate and vectors cover them)",
                    model.given.display(),
                    p.network().describe()
                ),
            });
        }
        let views = model.views(None)?;
        let (mode, runs) = self
            .input
            .runs(&views, model.settings(), &params, self.arith)?;
        let worst = runs.iter().map(|r| r.step.timing.cycles).max().unwrap_or(0);

        let work = work_folder(self.work.as_deref(), &inputs)?;
        let meta = bundle.meta();
        let set = render(
            &meta.tool_version,
            &meta.source.name,
            mode,
            &runs,
            self.arith,
        );
        let vectors_dir = work.path.join("vectors");
        std::fs::create_dir(&vectors_dir)
            .and_then(|()| set.write_into(&vectors_dir))
            .map_err(io("cannot write the vectors into", &vectors_dir))?;
        let design = eie_rtl::plan(
            &manifest,
            &model.given,
            &set.manifest,
            &vectors_dir,
            params.fifo_depth,
            worst.saturating_mul(2).saturating_add(10_000),
        )?;
        Ok(Planned {
            mode,
            runs,
            design,
            work,
        })
    }
}
