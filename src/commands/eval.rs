//! `eval`: top-1 accuracy of a checkpoint, and of what `compress` made from it: the pruned
//! and the pruned-and-shared checkpoints (float), and the bit-exact fixed-point EIE model run
//! through the functional simulator on the images.

use std::path::PathBuf;

use anyhow::{Result, bail};
use eie_checkpoint::Checkpoint;
use eie_dataset::{SampleRange, Spec};
use eie_evaluate::Network;
use eie_format::hex;
use serde::Serialize;

use crate::accuracy::{
    ScaleOptions, StageAccuracy, StageReport, check_whole_network, checkpoint_stages, eie_stage,
    load, render_stages, stage_reports,
};
use crate::output::load_bundle;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The original checkpoint (.safetensors, or a sharded checkpoint's index).
    pub model: PathBuf,
    /// An output folder of `compress` (or `pack`) made from MODEL: its pruned and quantized
    /// checkpoints and its images are evaluated too.
    pub dir: Option<PathBuf>,
    /// The dataset: mnist:DIR[:train|t10k], idx:IMAGES,LABELS, safetensors:FILE, or
    /// synthetic (or synthetic:SEED).
    #[arg(long, value_name = "SPEC")]
    pub dataset: Spec,
    /// Samples to evaluate (A..B; default all).
    #[arg(long, value_name = "A..B")]
    pub range: Option<SampleRange>,
    #[command(flatten)]
    pub scale: ScaleOptions,
    /// The network's layers, in order (glob, repeatable; default: every 2-D float tensor
    /// named *.weight, in natural order).
    #[arg(long = "layers", value_name = "PATTERN")]
    pub layers: Vec<String>,
    /// Activation fractional bits of the EIE model, one per layer boundary; default:
    /// calibrated on the evaluated samples.
    #[arg(long, value_name = "F,F,...", value_delimiter = ',', requires = "dir")]
    pub act_frac: Vec<u8>,
    /// Accumulator width of the EIE model in bits.
    #[arg(long, default_value_t = 32, requires = "dir")]
    pub acc_bits: u8,
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
}

pub fn run(args: Args) -> Result<()> {
    let ck = Checkpoint::open(&args.model)?;
    let names = ck.select_layers(&args.layers)?;
    check_whole_network(&ck, &names)?;
    let net = Network::from_checkpoint(&ck, &names)?;
    let scaling = args.scale.resolve(&ck.metadata())?;
    let data = load(&args.dataset, args.range, &scaling)?;
    net.check_dataset(&data)?;

    let mut stages = vec![StageAccuracy::float("original (float)", &net, &data)?];
    let mut act_frac = None;
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
        stages.extend(checkpoint_stages(dir, &names, &data)?);
        // The images on disk, checked against model.eie, are what the EIE model runs.
        let images = eie_images::load(dir)?;
        if images.layers != bundle.layers() {
            bail!(
                "the images in {} differ from model.eie (run `eie-compress verify {}`)",
                dir.display(),
                dir.display()
            );
        }
        let arith = eie_simulate::Arith {
            acc_bits: args.acc_bits,
            relu_last: false,
        };
        arith.validate()?;
        let (stage, fracs) = eie_stage(&ck, &bundle, &data, &args.act_frac, arith)?;
        stages.push(stage);
        act_frac = Some(fracs);
    }

    let report = EvalReport {
        model: args.model.display().to_string(),
        dir: args.dir.as_ref().map(|d| d.display().to_string()),
        dataset: data.name().to_string(),
        samples: data.len(),
        scaling: scaling.to_string(),
        act_frac,
        stages: stage_reports(&stages),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!(
        "{} on {} ({} samples, inputs {})",
        report.model, report.dataset, report.samples, report.scaling
    );
    print!("{}", render_stages(&report.stages));
    if let Some(f) = &report.act_frac {
        println!(
            "EIE activation fractions: {}{}",
            f.iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join(","),
            if args.act_frac.is_empty() {
                " (calibrated on these samples)"
            } else {
                ""
            }
        );
    }
    Ok(())
}
