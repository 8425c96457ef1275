//! `train`: trains a classifier (an MLP, a CNN, an LSTM: any model description) from scratch
//! (Adam, seeded) and writes it as a PyTorch-layout safetensors checkpoint (`fc1.weight`
//! `[out, in]`, `conv1.weight` `[out, in, kh, kw]`, `lstm.weight_ih_l0`, ...) that records its
//! description and how it was trained, including its input scaling.

use std::path::PathBuf;

use anyhow::Result;
use eie_commands::train::{Accuracy, Request};
use eie_evaluate::TrainConfig;

use crate::options::{DatasetArgs, EvalRangeArgs, ForceArgs, MemoryArgs, ScaleArgs};
use crate::progress::Progress;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub data: DatasetArgs,
    #[command(flatten)]
    pub memory: MemoryArgs,
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
    let Some(data) = args.data.request(&args.scale, &args.memory) else {
        anyhow::bail!("train needs --dataset");
    };
    let request = Request {
        data,
        eval_range: args.eval_range.eval_range,
        arch: args.arch,
        config: TrainConfig {
            epochs: args.epochs,
            batch_size: args.batch_size,
            lr: args.lr,
            weight_decay: args.weight_decay,
            seed: args.seed,
        },
        out: args.out,
        force: args.force.force,
    };
    let r = request.run(progress)?;
    let line = |a: &Accuracy| format!("top-1 {:.2}% ({}/{})", 100.0 * a.top1, a.correct, a.total);
    outln!(
        "trained {} in {:.1} s: training {}",
        r.arch,
        r.elapsed.as_secs_f64(),
        line(&r.train_top1)
    );
    if let Some(h) = &r.held_out {
        outln!("held-out {}: {}", h.samples, line(&h.accuracy));
    }
    outln!("wrote {}", r.out.display());
    Ok(())
}
