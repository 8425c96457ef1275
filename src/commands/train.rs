//! `train`: trains a classifier (an MLP, a CNN, an LSTM: any model description) from scratch
//! (Adam, seeded) and writes it as a PyTorch-layout safetensors checkpoint (`fc1.weight`
//! `[out, in]`, `conv1.weight` `[out, in, kh, kw]`, `lstm.weight_ih_l0`, ...) that records its
//! description and how it was trained, including its input scaling.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use eie_dataset::Scaling;
use eie_evaluate::{Arch, Mode, Network, TrainConfig, float_accuracy, train};
use eie_pipeline::Observer;
use eie_pipeline::output::{Inputs, Kind, check_file, write_file};

use super::tool_version;
use crate::options::{DatasetArgs, EvalRangeArgs, ForceArgs, ScaleArgs};
use crate::progress::Progress;

/// Metadata keys `train` writes into a model, besides its input scaling.
mod meta {
    pub const ARCH: &str = eie_model::ARCH_KEY;
    pub const DATASET: &str = "eie.dataset";
    pub const RANGE: &str = "eie.range";
}

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub data: DatasetArgs,
    #[command(flatten)]
    pub eval_range: EvalRangeArgs,
    /// The model description (docs/models.md): 784-300-100-10 is LeNet-300-100,
    /// 1x28x28-conv20k5-maxpool2-conv50k5-maxpool2-500-10 LeNet-5, 28x28-lstm128-10 an LSTM.
    #[arg(long, value_name = "DESCRIPTION")]
    pub arch: String,
    /// Passes over the training samples.
    #[arg(long, default_value_t = TrainConfig::default().epochs)]
    pub epochs: usize,
    /// Seed of the initial weights and of the sample order.
    #[arg(long, default_value_t = TrainConfig::default().seed)]
    pub seed: u64,
    /// Adam's learning rate.
    #[arg(long, default_value_t = TrainConfig::default().lr)]
    pub lr: f64,
    /// Samples per step.
    #[arg(long, default_value_t = TrainConfig::default().batch_size)]
    pub batch_size: usize,
    /// L2 penalty.
    #[arg(long, default_value_t = TrainConfig::default().weight_decay)]
    pub weight_decay: f64,
    #[command(flatten)]
    pub scale: ScaleArgs,
    /// The checkpoint to write.
    #[arg(short, long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub force: ForceArgs,
}

pub fn run(args: Args, progress: &Progress) -> Result<()> {
    let start = Instant::now();
    let Some(dataset) = &args.data.dataset else {
        anyhow::bail!("train needs --dataset");
    };
    let (range, eval_range, force) = (
        args.data.range,
        args.eval_range.eval_range,
        args.force.force,
    );
    let arch: Arch = args.arch.parse()?;
    let cfg = TrainConfig {
        epochs: args.epochs,
        batch_size: args.batch_size,
        lr: args.lr,
        weight_decay: args.weight_decay,
        seed: args.seed,
    };
    cfg.validate()?;
    let mut inputs = Inputs::new();
    inputs.extend(crate::options::dataset_inputs(dataset)?);
    check_file(&args.out, force, Kind::Safetensors, &inputs)?;
    let scaling = Scaling::resolve(&args.scale.request(), &BTreeMap::new())?;
    let data = eie_dataset::load(dataset, range.unwrap_or_default(), &scaling)?;
    let held = eval_range
        .map(|r| eie_dataset::load(dataset, r, &scaling))
        .transpose()?;
    let mut net = Network::init_arch(&arch, args.seed)?;
    net.check_dataset(&data)?;
    if let Some(h) = &held {
        net.check_dataset(h)?;
    }
    progress.note(&format!(
        "training {arch} on {} ({} samples), {} epochs",
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

    let range = range.unwrap_or_default().to_string();
    let mut metadata = BTreeMap::from([
        ("format".to_string(), "pt".to_string()),
        ("eie.tool_version".into(), tool_version()),
        (meta::ARCH.into(), arch.to_string()),
        (meta::DATASET.into(), dataset.to_string()),
        (meta::RANGE.into(), range),
        ("eie.epochs".into(), args.epochs.to_string()),
        ("eie.seed".into(), args.seed.to_string()),
        ("eie.lr".into(), args.lr.to_string()),
        ("eie.batch_size".into(), args.batch_size.to_string()),
        ("eie.weight_decay".into(), args.weight_decay.to_string()),
    ]);
    metadata.extend(scaling.to_metadata());
    if let Some(last) = history.last() {
        metadata.insert("eie.final_loss".into(), format!("{:.6}", last.loss));
    }
    let train_acc = float_accuracy(&net, &data)?;
    outln!(
        "trained {arch} in {:.1} s: training top-1 {:.2}% ({}/{})",
        start.elapsed().as_secs_f64(),
        100.0 * train_acc.top1(),
        train_acc.correct,
        train_acc.total
    );
    if let Some(h) = &held {
        let acc = float_accuracy(&net, h)?;
        metadata.insert(
            "eie.eval_range".into(),
            eval_range.unwrap_or_default().to_string(),
        );
        metadata.insert("eie.eval_top1".into(), format!("{:.6}", acc.top1()));
        outln!(
            "held-out {}: top-1 {:.2}% ({}/{})",
            h.name(),
            100.0 * acc.top1(),
            acc.correct,
            acc.total
        );
    }
    write_file(
        &args.out,
        force,
        Kind::Safetensors,
        &inputs,
        |tmp| -> Result<()> {
            net.write_safetensors(tmp, &metadata)?;
            Ok(())
        },
    )?;
    outln!("wrote {}", args.out.display());
    Ok(())
}
