//! `train`: trains an MLP classifier from scratch (Adam, seeded) and writes it as a
//! PyTorch-layout safetensors checkpoint (`fc1.weight` `[out, in]`, `fc1.bias`, ...) that
//! records how it was trained, including its input scaling.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use eie_dataset::{SampleRange, Spec};
use eie_evaluate::{Mode, Network, TrainConfig, float_accuracy, format_arch, parse_arch, train};

use super::tool_version;
use crate::accuracy::{ScaleOptions, load, meta, scaling_meta};
use crate::output::{refuse_input_as_output, write_file};
use crate::progress::Progress;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The dataset: mnist:DIR[:train|t10k], idx:IMAGES,LABELS, safetensors:FILE, or
    /// synthetic (or synthetic:SEED).
    #[arg(long, value_name = "SPEC")]
    pub dataset: Spec,
    /// Samples to train on (A..B, indices from 0; default all).
    #[arg(long, value_name = "A..B")]
    pub range: Option<SampleRange>,
    /// Held-out samples to report the trained model's accuracy on.
    #[arg(long, value_name = "A..B")]
    pub eval_range: Option<SampleRange>,
    /// Layer widths, inputs to outputs: 784-300-100-10 is LeNet-300-100.
    #[arg(long, value_name = "IN-H1-...-OUT")]
    pub arch: String,
    /// Passes over the training samples.
    #[arg(long, default_value_t = 10)]
    pub epochs: usize,
    /// Seed of the initial weights and of the sample order.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Adam's learning rate.
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f64,
    /// Samples per step.
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
    /// L2 penalty.
    #[arg(long, default_value_t = 0.0)]
    pub weight_decay: f64,
    #[command(flatten)]
    pub scale: ScaleOptions,
    /// The checkpoint to write.
    #[arg(short, long)]
    pub out: PathBuf,
    /// Replace an existing file.
    #[arg(long)]
    pub force: bool,
}

pub fn run(args: Args, progress: &Progress) -> Result<()> {
    let start = Instant::now();
    let widths = parse_arch(&args.arch)?;
    let cfg = TrainConfig {
        epochs: args.epochs,
        batch_size: args.batch_size,
        lr: args.lr,
        weight_decay: args.weight_decay,
        seed: args.seed,
    };
    cfg.validate()?;
    if args.out.exists() && !args.force {
        anyhow::bail!(
            "{} already exists; use --force to replace it",
            args.out.display()
        );
    }
    for i in &args.dataset.files()? {
        refuse_input_as_output(i, std::slice::from_ref(&args.out))?;
    }
    let scaling = args.scale.resolve(&BTreeMap::new())?;
    let data = load(&args.dataset, args.range, &scaling)?;
    let held = args
        .eval_range
        .map(|r| load(&args.dataset, Some(r), &scaling))
        .transpose()?;
    let mut net = Network::init(&widths, args.seed)?;
    net.check_dataset(&data)?;
    if let Some(h) = &held {
        net.check_dataset(h)?;
    }
    progress.note(&format!(
        "training {} on {} ({} samples), {} epochs",
        format_arch(&widths),
        data.name(),
        data.len(),
        args.epochs
    ));
    let history = train(&mut net, &data, &cfg, Mode::Dense, &mut |s| {
        progress.note(&format!(
            "  epoch {}/{}: loss {:.4}, running top-1 {:.2}%",
            s.epoch,
            args.epochs,
            s.loss,
            100.0 * s.accuracy
        ))
    })?;

    let range = args.range.unwrap_or_default().to_string();
    let mut metadata = BTreeMap::from([
        ("format".to_string(), "pt".to_string()),
        ("eie.tool_version".into(), tool_version()),
        (meta::ARCH.into(), format_arch(&widths)),
        (meta::DATASET.into(), args.dataset.to_string()),
        (meta::RANGE.into(), range),
        ("eie.epochs".into(), args.epochs.to_string()),
        ("eie.seed".into(), args.seed.to_string()),
        ("eie.lr".into(), args.lr.to_string()),
        ("eie.batch_size".into(), args.batch_size.to_string()),
        ("eie.weight_decay".into(), args.weight_decay.to_string()),
    ]);
    metadata.extend(scaling_meta(&scaling));
    if let Some(last) = history.last() {
        metadata.insert("eie.final_loss".into(), format!("{:.6}", last.loss));
    }
    let train_acc = float_accuracy(&net, &data)?;
    println!(
        "trained {} in {:.1} s: training top-1 {:.2}% ({}/{})",
        format_arch(&widths),
        start.elapsed().as_secs_f64(),
        100.0 * train_acc.top1(),
        train_acc.correct,
        train_acc.total
    );
    if let Some(h) = &held {
        let acc = float_accuracy(&net, h)?;
        metadata.insert(
            "eie.eval_range".into(),
            args.eval_range.unwrap_or_default().to_string(),
        );
        metadata.insert("eie.eval_top1".into(), format!("{:.6}", acc.top1()));
        println!(
            "held-out {}: top-1 {:.2}% ({}/{})",
            h.name(),
            100.0 * acc.top1(),
            acc.correct,
            acc.total
        );
    }
    write_file(&args.out, args.force, |tmp| {
        net.write_safetensors(tmp, &metadata)?;
        Ok(())
    })?;
    println!("wrote {}", args.out.display());
    Ok(())
}
