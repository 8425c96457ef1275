//! `train`: trains a classifier (an MLP, a CNN, an LSTM: any model description) from scratch
//! (Adam, seeded) and writes it as a PyTorch-layout safetensors checkpoint (`fc1.weight`
//! `[out, in]`, `conv1.weight` `[out, in, kh, kw]`, `lstm.weight_ih_l0`, ...) that records its
//! description and how it was trained, including its input scaling; on text, a LLaMA-style
//! decoder written as a Hugging Face folder.

use std::path::PathBuf;

use anyhow::Result;
use eie_commands::train::{Accuracy, Request, Settings, Trained};

use crate::options::{ContextArgs, DatasetArgs, EvalRangeArgs, ForceArgs, MemoryArgs, ScaleArgs};
use eie_progress::Progress;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub data: DatasetArgs,
    #[command(flatten)]
    pub memory: MemoryArgs,
    #[command(flatten)]
    pub eval_range: EvalRangeArgs,
    /// The model description (docs/models.md): 784-300-100-10 is LeNet-300-100,
    /// 1x28x28-conv20k5-maxpool2-conv50k5-maxpool2-500-10 LeNet-5, 28x28-lstm128-10 an LSTM;
    /// on text, llama:layers=4,heads=4,width=128,context=64 a decoder, tok-embed128-lstm256 an
    /// LSTM language model (train fills in the vocabulary).
    #[arg(long, value_name = "DESCRIPTION")]
    pub arch: String,
    /// Passes over the training samples (a classifier; default 10).
    #[arg(long, conflicts_with = "steps")]
    pub epochs: Option<usize>,
    /// Optimizer steps (a language model; default 2000).
    #[arg(long)]
    pub steps: Option<usize>,
    /// Seed of the initial weights and of the sample order.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Adam's (peak) learning rate (default 1e-3).
    #[arg(long)]
    pub lr: Option<f64>,
    /// Samples (windows of text) per step (default 64; a language model 12).
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// L2 penalty (default 0); a language model's decoupled weight decay (default 0.1).
    #[arg(long)]
    pub weight_decay: Option<f64>,
    #[command(flatten)]
    pub scale: ScaleArgs,
    #[command(flatten)]
    pub context: ContextArgs,
    /// The checkpoint to write (a folder for a language model).
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
        settings: Settings {
            epochs: args.epochs,
            steps: args.steps,
            batch_size: args.batch_size,
            lr: args.lr,
            weight_decay: args.weight_decay,
            seed: args.seed,
        },
        context: args.context.tokens(),
        out: args.out,
        force: args.force.force,
    };
    let (out, held) = match request.run(progress)? {
        Trained::Classifier(r) => {
            let line =
                |a: &Accuracy| format!("top-1 {:.2}% ({}/{})", 100.0 * a.top1, a.correct, a.total);
            let (s, top1) = (r.elapsed.as_secs_f64(), line(&r.train_top1));
            outln!("trained {} in {s:.1} s: training {top1}", r.arch);
            let held = r
                .held_out
                .map(|h| format!("{}: {}", h.samples, line(&h.accuracy)));
            (r.out, held)
        }
        Trained::Language(r) => {
            let (s, loss) = (r.elapsed.as_secs_f64(), r.final_loss);
            outln!(
                "trained {} ({} values) in {s:.1} s: loss {loss:.4} nats/token, last steps",
                r.arch,
                r.parameters
            );
            let held = r.held_out.map(|h| {
                let (l, p, n) = (h.loss, h.perplexity, h.tokens);
                format!("{}: loss {l:.4}, perplexity {p:.3} ({n} tokens)", h.text)
            });
            (r.out, held)
        }
    };
    if let Some(h) = held {
        outln!("held-out {h}");
    }
    outln!("wrote {}", out.display());
    Ok(())
}
