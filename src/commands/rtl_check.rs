//! `rtl-check`: co-simulates the reference design in `rtl/` on a packed model. Writes the
//! functional model's vectors, generates the testbench from the two manifests, runs it in
//! Icarus Verilog or Verilator, and compares the RTL's outputs and accumulators (in the
//! testbench) and its cycle counts (here) with the functional and timing models.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use eie_pipeline::output::{Inputs, load_bundle};
use eie_rtl::Simulator;
use eie_simulate::vectors::render;

use crate::options::{ArithArgs, InputArgs, TimingArgs, select_views};

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SimulatorArg {
    /// Icarus Verilog 11 or later (`iverilog -g2012`, `vvp`).
    Iverilog,
    /// Verilator 5 (`verilator --binary`): compiled, for large models.
    Verilator,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Output folder of `pack` or `compress` (its manifest.json and images/ are loaded).
    pub dir: PathBuf,
    /// The HDL simulator.
    #[arg(long, value_enum, default_value_t = SimulatorArg::Iverilog)]
    pub simulator: SimulatorArg,
    /// Keep the testbench, the vectors and the simulator's log in this new folder (by
    /// default a temporary folder, removed afterwards).
    #[arg(long, value_name = "DIR")]
    pub work: Option<PathBuf>,
    /// Load the design's memories through its host write port, one word a cycle, as a chip
    /// is loaded (slow on large models), instead of writing them directly.
    #[arg(long)]
    pub host_load: bool,
    #[command(flatten)]
    pub input: InputArgs,
    #[command(flatten)]
    pub timing: TimingArgs,
    #[command(flatten)]
    pub arith: ArithArgs,
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
            anyhow::Error::from(e)
        } else {
            anyhow::anyhow!(
                "the temporary folder ({}, from TMPDIR) holds an input of this run: set TMPDIR \
                 elsewhere or give --work DIR",
                std::env::temp_dir().display()
            )
        }
    })?;
    std::fs::create_dir(&path).with_context(|| {
        format!(
            "cannot create the work folder {} (rtl-check writes a new folder; give one that \
             does not exist)",
            path.display()
        )
    })?;
    Ok(Work { path, keep })
}

pub fn run(args: Args) -> Result<()> {
    let (bundle_path, bundle) = load_bundle(&args.dir)?;
    if !args.dir.is_dir() {
        bail!(
            "{} is not a model folder: rtl-check loads the images, so give the folder `pack` \
             or `compress` wrote",
            args.dir.display()
        );
    }
    // The design's memory sizes and the testbench's word counts come from the manifest, and
    // the testbench reads the image files: all must be what model.eie says (verify's check).
    let manifest = eie_pipeline::verify(&args.dir, &bundle)?;
    let params = args.timing.params()?;
    eie_rtl::check_timing(&params)?;
    let arith = args.arith.arith()?;
    let simulator = match args.simulator {
        SimulatorArg::Iverilog => Simulator::Iverilog,
        SimulatorArg::Verilator => Simulator::Verilator,
    };
    let mut inputs = Inputs::new();
    crate::options::model_inputs(&mut inputs, &args.dir, &bundle_path);
    inputs.extend(&args.input.input);
    if let Some(spec) = &args.input.data.dataset {
        inputs.extend(crate::options::dataset_inputs(spec)?);
    }
    if let Some(p) = eie_evaluate::program::Program::of(&bundle)? {
        bail!(
            "{} is a described model ({}): the reference design co-simulates chains of layers, one run each; the runs of a CNN's or an LSTM's program are not co-simulated yet (simulate and vectors cover them)",
            args.dir.display(),
            p.network().describe()
        );
    }
    let views = select_views(&bundle, None)?;
    let (mode, runs) = args
        .input
        .runs(&views, &bundle.meta().settings, &params, arith)?;
    let model_cycles: Vec<u64> = runs.iter().map(|r| r.step.timing.cycles).collect();
    let worst = model_cycles.iter().copied().max().unwrap_or(0);

    let work = work_folder(args.work.as_deref(), &inputs)?;
    let meta = bundle.meta();
    let set = render(&meta.tool_version, &meta.source.name, mode, &runs, arith);
    let vectors_dir = work.path.join("vectors");
    std::fs::create_dir(&vectors_dir)
        .and_then(|()| set.write_into(&vectors_dir))
        .with_context(|| format!("cannot write the vectors into {}", vectors_dir.display()))?;
    let design = eie_rtl::plan(
        &manifest,
        &args.dir,
        &set.manifest,
        &vectors_dir,
        params.fifo_depth,
        worst.saturating_mul(2).saturating_add(10_000),
    )?;
    let rendered = design.render();
    let loading = if args.host_load {
        eie_rtl::Loading::HostPort
    } else {
        eie_rtl::Loading::Direct
    };
    let sim = eie_rtl::run(&work.path, &rendered, simulator, loading)?;

    outln!(
        "rtl-check {} ({} layers, {} PEs, queue depth {}, {})",
        args.dir.display(),
        runs.len(),
        design.params.n_pe,
        params.fifo_depth,
        simulator.name()
    );
    outln!("layer                          RTL cycles  model cycles");
    let mut differ = Vec::new();
    for (i, run) in runs.iter().enumerate() {
        let rtl = sim.cycles.get(i).copied();
        let shown = rtl.map_or("-".to_string(), |c| c.to_string());
        outln!(
            "{:<30} {:>10}  {:>12}",
            run.view.name(),
            shown,
            model_cycles[i]
        );
        if rtl.is_some_and(|c| c != model_cycles[i]) {
            differ.push(run.view.name().to_string());
        }
    }
    if args.work.is_some() {
        outln!("testbench, vectors and log kept in {}", work.path.display());
    }
    if !sim.pass {
        // One line per failure the testbench printed: a mismatch, or a file it could not load.
        bail!("the testbench failed: {}", sim.failures.join("; "));
    }
    if !differ.is_empty() {
        bail!(
            "FAIL: outputs agree, but the RTL's cycle counts differ from the timing model's \
             in {}",
            differ.join(", ")
        );
    }
    outln!("PASS: every output and accumulator bit-exact, every cycle count equal");
    Ok(())
}
