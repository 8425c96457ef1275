//! `eval`: top-1 accuracy of a checkpoint, and of what `compress` made from it: pruned and
//! pruned-and-shared (float, from the output's dense checkpoints or rebuilt from the
//! checkpoint and the packed codes), and the bit-exact fixed-point EIE model run through the
//! functional simulator on the images.

use std::path::PathBuf;

use anyhow::{Result, bail};
use eie_checkpoint::Checkpoint;
use eie_dataset::Scaling;
use eie_evaluate::{
    Counting, StageAccuracy, StageReport, eie_stage, float_stages, network_of, stage_reports,
};
use eie_format::hex;
use eie_pipeline::output::load_bundle;
use eie_pipeline::recorded_capacity;
use serde::Serialize;

use crate::options::{
    ActFracArgs, ArchArgs, ArithArgs, DatasetArgs, EnergyArgs, LayersArgs, ScaleArgs, TimingArgs,
};
use crate::render::energy::{CostReport, costed_tables};
use crate::render::stages::{fractions, render_stages};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The original checkpoint (.safetensors, or a sharded checkpoint's index).
    pub model: PathBuf,
    /// An output folder of `compress` (or `pack`) made from MODEL: its pruned and
    /// pruned-and-shared stages and its images are evaluated too.
    pub dir: Option<PathBuf>,
    #[command(flatten)]
    pub data: DatasetArgs,
    #[command(flatten)]
    pub scale: ScaleArgs,
    #[command(flatten)]
    pub arch: ArchArgs,
    #[command(flatten)]
    pub layers: LayersArgs,
    #[command(flatten)]
    pub act_frac: ActFracArgs,
    #[command(flatten)]
    pub arith: ArithArgs,
    /// The bit-exact stage's runs also go through the timing model, for their energy.
    #[command(flatten)]
    pub timing: TimingArgs,
    #[command(flatten)]
    pub energy: EnergyArgs,
    /// Print JSON (with per-class accuracy) instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct EvalReport {
    model: String,
    dir: Option<String>,
    dataset: String,
    samples: usize,
    scaling: String,
    /// Activation fractions of the EIE model, when it ran.
    act_frac: Option<Vec<u8>>,
    stages: Vec<StageReport>,
    /// Stages that could not be measured, and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    notes: Vec<String>,
    /// What the bit-exact stage's runs cost (docs/energy.md), when it ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    energy: Option<CostReport>,
}

pub fn run(args: Args) -> Result<()> {
    let Some(spec) = &args.data.dataset else {
        bail!("eval needs --dataset");
    };
    let ck = Checkpoint::open(&args.model)?;
    let net = network_of(&ck, args.arch.arch()?.as_ref(), &args.layers.layers)?;
    let names: Vec<String> = net.layers().iter().map(|l| l.name.clone()).collect();
    let scaling = Scaling::resolve(&args.scale.request(), &ck.metadata())?;
    let data = eie_dataset::load(spec, args.data.range.unwrap_or_default(), &scaling)?;
    net.check_dataset(&data)?;
    let arith = args.arith.arith()?;
    let params = args.timing.params()?;
    let table = args.energy.table()?;

    let mut stages = vec![StageAccuracy::float("original (float)", &net, &data)?];
    let mut act_frac = None;
    let mut notes = Vec::new();
    let mut costed = None;
    if let Some(dir) = &args.dir {
        let (file, bundle) = load_bundle(dir)?;
        // The output must come from this very checkpoint.
        let ours = ck.sha256()?;
        let source = &bundle.meta().source;
        if source.sha256 != Some(ours) {
            bail!(
                "{} was made from {} (sha256 {}), not from {} (sha256 {}): evaluate an output folder against the checkpoint it was compressed from",
                file.display(),
                source.name,
                source.sha256.map_or("unknown".into(), |h| hex(&h)),
                args.model.display(),
                hex(&ours)
            );
        }
        // The same network: a described model's description as compress recorded it.
        let recorded = bundle.meta().settings.get(eie_pipeline::DESCRIPTION_KEY);
        if let (Some(r), Some(a)) = (recorded, net.arch())
            && *r != a.to_string()
        {
            bail!(
                "{} was compressed as {r}, but the network of {} is described as {a}: evaluate it with the description it was compressed with",
                file.display(),
                args.model.display()
            );
        }
        let packed: Vec<&str> = eie_simulate::LayerView::all(&bundle)
            .iter()
            .map(|v| v.name())
            .collect();
        if packed != names {
            bail!(
                "{} holds layers {packed:?}, but the network of {} is {names:?}; select the same layers with --layers",
                file.display(),
                args.model.display()
            );
        }
        // The images on disk, checked against model.eie, are what the EIE model runs.
        let images = eie_images::load(dir)?;
        if images.layers != bundle.layers() {
            bail!(
                "the images in {} differ from model.eie (run `eie-compress verify {}`)",
                dir.display(),
                dir.display()
            );
        }
        let (float, why) = float_stages(&net, &names, &bundle, Some(dir), &data)?;
        stages.extend(float);
        notes = why;
        let counting = Counting {
            params,
            pointer_bits: bundle.meta().pointer_bits,
            capacity: recorded_capacity(&bundle.meta().settings),
        };
        let (stage, fracs, runs) = eie_stage(
            &ck,
            &bundle,
            &data,
            &args.act_frac.act_frac,
            arith,
            Some(&counting),
        )?;
        stages.push(stage);
        act_frac = Some(fracs);
        costed = runs.map(|c| c.runs.costed(&c.views, counting.pointer_bits, &table));
    }

    let report = EvalReport {
        model: args.model.display().to_string(),
        dir: args.dir.as_ref().map(|d| d.display().to_string()),
        dataset: data.name().to_string(),
        samples: data.len(),
        scaling: scaling.to_string(),
        act_frac,
        stages: stage_reports(&stages),
        notes,
        energy: costed.as_ref().map(|c| CostReport::new(c, &table)),
    };
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    outln!(
        "{} on {} ({} samples, inputs {})",
        report.model,
        report.dataset,
        report.samples,
        report.scaling
    );
    out!("{}", render_stages(&report.stages));
    if let Some(f) = &report.act_frac {
        outln!(
            "EIE activation fractions: {}{}",
            fractions(f),
            if args.act_frac.act_frac.is_empty() {
                " (calibrated on these samples)"
            } else {
                ""
            }
        );
    }
    for n in &report.notes {
        outln!("not measured: {n}");
    }
    if let Some(c) = &costed {
        out!("{}", costed_tables(c, &table));
    }
    Ok(())
}
