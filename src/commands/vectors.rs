//! `vectors`: RTL test vectors from the functional model: per layer the input activations,
//! the expected outputs and every PE's expected accumulators, as `$readmemh` text and
//! little-endian binary, with a manifest.

use std::path::PathBuf;

use anyhow::{Context, Result};
use eie_pipeline::output::{Inputs, Layout, Staging, load_bundle};
use eie_simulate::vectors::render;

use crate::options::{ArithArgs, ForceArgs, InputArgs, TimingArgs, select_views};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Output folder of `pack` or `compress` (or a model.eie file).
    pub dir: PathBuf,
    /// Folder for the vectors.
    #[arg(short, long)]
    pub out: PathBuf,
    /// Only this layer.
    #[arg(long, value_name = "NAME")]
    pub layer: Option<String>,
    #[command(flatten)]
    pub force: ForceArgs,
    #[command(flatten)]
    pub input: InputArgs,
    #[command(flatten)]
    pub timing: TimingArgs,
    #[command(flatten)]
    pub arith: ArithArgs,
}

pub fn run(args: Args) -> Result<()> {
    let (bundle_path, bundle) = load_bundle(&args.dir)?;
    // The vectors' manifest.json would replace the images' own: never into the model's folder.
    let model_dir = match bundle_path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => std::path::Path::new("."),
    };
    if let Ok(out) = std::fs::canonicalize(&args.out)
        && std::fs::canonicalize(model_dir).is_ok_and(|m| m == out)
    {
        anyhow::bail!(
            "{} holds the packed model the vectors are made from; write them elsewhere",
            args.out.display()
        );
    }
    let mut inputs = Inputs::new();
    crate::options::model_inputs(&mut inputs, &args.dir, &bundle_path);
    inputs.extend(&args.input.input);
    if let Some(spec) = &args.input.data.dataset {
        inputs.extend(crate::options::dataset_inputs(spec)?);
    }
    // Locked from here: a second run into the same folder fails at once.
    let staging = Staging::create(&args.out, args.force.force, &inputs, Layout::Vectors)?;
    let params = args.timing.params()?;
    let arith = args.arith.arith()?;
    let program = eie_evaluate::program::Program::of(&bundle)?;
    let (mode, runs) = match &program {
        // A described model: every EIE run of one sample, an LSTM's every step.
        Some(p) => {
            if args.layer.is_some() {
                anyhow::bail!(
                    "--layer: {} is a described model ({}); its vectors are one sample's every EIE run",
                    args.dir.display(),
                    p.network().describe()
                );
            }
            args.input
                .described_runs(p, &bundle.meta().settings, &params, arith)?
        }
        None => {
            let views = select_views(&bundle, args.layer.as_deref())?;
            args.input
                .runs(&views, &bundle.meta().settings, &params, arith)?
        }
    };
    let meta = bundle.meta();
    let set = render(&meta.tool_version, &meta.source.name, mode, &runs, arith);
    set.write_into(staging.path())
        .context("cannot write the vectors")?;
    staging.publish()?;
    let files: usize = set.manifest.layers.iter().map(|l| l.files.len()).sum();
    outln!(
        "wrote {} ({} layers, {files} vector files, manifest.json)",
        args.out.display(),
        set.manifest.layers.len()
    );
    Ok(())
}
