//! `vectors`: RTL test vectors from the functional model: per layer the input activations,
//! the expected outputs and every PE's expected accumulators, as `$readmemh` text and
//! little-endian binary, with a manifest.

use std::path::PathBuf;

use anyhow::{Context, Result};
use eie_pipeline::output::{Inputs, Layout, Staging, load_bundle};
use eie_simulate::LayerView;
use eie_simulate::fixed::Arith;
use eie_simulate::float::relu_at;
use eie_simulate::run::{Mode, fractions, run_chain, run_independent};
use eie_simulate::timing::TimingParams;
use eie_simulate::vectors::{LayerRun, render};

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
    let views = select_views(&bundle, args.layer.as_deref())?;
    let params = args.timing.params()?;
    let arith = args.arith.arith()?;
    let (mode, runs) = layer_runs(&views, &args.input, &bundle.meta().settings, &params, arith)?;
    let meta = bundle.meta();
    let set = render(&meta.tool_version, &meta.source.name, mode, &runs, arith);
    set.write_into(staging.path())
        .context("cannot write the vectors")?;
    staging.publish()?;
    let files: usize = set.manifest.layers.iter().map(|l| l.files.len()).sum();
    println!(
        "wrote {} ({} layers, {files} vector files, manifest.json)",
        args.out.display(),
        set.manifest.layers.len()
    );
    Ok(())
}

/// Runs the functional and timing models on `views` as `vectors` records them: chained
/// (one input, each layer's outputs the next one's inputs) when the layers chain, else each
/// layer on an input of its own. What `vectors` writes and `rtl-check` compares with.
pub fn layer_runs<'a>(
    views: &[LayerView<'a>],
    source: &InputArgs,
    settings: &std::collections::BTreeMap<String, String>,
    params: &TimingParams,
    arith: Arith,
) -> Result<(Mode, Vec<LayerRun<'a>>)> {
    let mode = Mode::of(views, source.external())?;
    let mut runs = Vec::new();
    match mode {
        Mode::Chained => {
            let vectors = source.vectors(views[0].inputs(), settings)?;
            let fracs = fractions(
                views,
                &vectors[..1],
                &source.act_frac.act_frac,
                arith.relu_last,
            )?;
            let (input, steps) = run_chain(views, &vectors[0], &fracs, arith, params)?;
            let mut a = input;
            for (i, (view, step)) in views.iter().zip(steps).enumerate() {
                let next = step.output.outputs.clone();
                runs.push(LayerRun {
                    view: *view,
                    input: a,
                    f_in: fracs[i],
                    f_out: fracs[i + 1],
                    relu: relu_at(i, views.len(), arith.relu_last),
                    step,
                });
                a = next;
            }
        }
        Mode::Independent => {
            let inputs = views
                .iter()
                .map(|v| Ok(source.vectors(v.inputs(), settings)?.swap_remove(0)))
                .collect::<Result<Vec<_>>>()?;
            for (i, (view, r)) in views
                .iter()
                .zip(run_independent(views, &inputs, arith, params)?)
                .enumerate()
            {
                runs.push(LayerRun {
                    view: *view,
                    input: r.input,
                    f_in: r.fracs[0],
                    f_out: r.fracs[1],
                    relu: relu_at(i, views.len(), arith.relu_last),
                    step: r.step,
                });
            }
        }
    }
    Ok((mode, runs))
}
