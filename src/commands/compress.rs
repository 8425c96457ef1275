//! `compress`: a trained checkpoint to pruned, weight-shared, packed EIE images and a report;
//! with a dataset, every stage's accuracy, and with `--retrain`, Deep Compression's
//! retraining.

use std::path::PathBuf;

use anyhow::Result;
use eie_commands::compress::Request;
use eie_pipeline::output::{PRUNED_FILE, QUANTIZED_FILE, REPORT_FILE, REPORT_HTML_FILE};

use crate::knobs::{LayerFlags, RetrainFlags, RunFlags};
use crate::options::{
    ActFracArgs, ArchArgs, ArithArgs, BiasArgs, CalibrationArgs, DatasetArgs, EvalRangeArgs,
    FitArgs, ForceArgs, LayersArgs, MemoryArgs, PesArgs, ScaleArgs,
};
use crate::render::report::render;
use eie_progress::Progress;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The checkpoint: a .safetensors file, or a sharded checkpoint's .safetensors.index.json.
    pub model: PathBuf,
    /// Output folder: model.eie, manifest.json, images/ and report.json are written there
    /// (and the dense checkpoints with --dense-checkpoints).
    #[arg(short, long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub arch: ArchArgs,
    #[command(flatten)]
    pub layers: LayersArgs,
    /// Per-layer settings, layer selection and retraining in a file (see docs/recipes.md).
    #[arg(long, value_name = "FILE")]
    pub recipe: Option<PathBuf>,
    #[command(flatten)]
    pub bias: BiasArgs,
    /// Run a described model's convolutions on EIE as im2col matrix-vector products (every
    /// output position one input vector) instead of on the host (docs/accuracy.md).
    #[arg(long)]
    pub conv_on_eie: bool,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Print the time each stage took to stderr.
    #[arg(long)]
    pub timings: bool,
    #[command(flatten)]
    pub settings: LayerFlags,
    #[command(flatten)]
    pub run: RunFlags,
    #[command(flatten)]
    pub pes: PesArgs,
    #[command(flatten)]
    pub fit: FitArgs,
    #[command(flatten)]
    pub force: ForceArgs,
    #[command(flatten)]
    pub data: DatasetArgs,
    #[command(flatten)]
    pub memory: MemoryArgs,
    #[command(flatten)]
    pub eval_range: EvalRangeArgs,
    #[command(flatten)]
    pub scale: ScaleArgs,
    #[command(flatten)]
    pub act_frac: ActFracArgs,
    #[command(flatten)]
    pub arith: ArithArgs,
    /// Retrain as Deep Compression does: masked fine-tuning after pruning, centroid
    /// fine-tuning after weight sharing (needs --dataset; --range names the training samples).
    #[arg(long, requires = "dataset")]
    pub retrain: bool,
    #[command(flatten)]
    pub retraining: RetrainFlags,
    /// Distillation's teacher (with --retrain --distill): a model folder over the same
    /// tokenizer, a decoder of any shape or an encoder of the same width (default: the
    /// model itself, before compression).
    #[arg(long, value_name = "DIR", requires = "retrain")]
    pub teacher: Option<PathBuf>,
    #[command(flatten)]
    pub calibration: CalibrationArgs,
}

impl Args {
    /// The request this command line makes.
    fn request(self) -> Request {
        Request {
            model: self.model,
            out: self.out,
            arch: self.arch.arch,
            layers: self.layers.layers,
            recipe: self.recipe,
            fold_bias: self.bias.fold(),
            conv_on_eie: self.conv_on_eie,
            settings: self.settings.0,
            run: self.run.0,
            pes: self.pes.pes,
            fit: self.fit.fit(),
            force: self.force.force,
            data: self.data.request(&self.scale, &self.memory),
            eval_range: self.eval_range.eval_range,
            act_frac: self.act_frac.act_frac,
            arith: self.arith.arith(),
            retrain: self.retrain,
            retraining: self.retraining.0,
            calibration: self.calibration.request(self.scale.request(), &self.memory),
            teacher: self.teacher,
        }
    }
}

pub fn run(args: Args, progress: &Progress) -> Result<()> {
    let (json, timings) = (args.json, args.timings);
    let report = args.request().resolve()?.run(progress)?;
    let w = &report.written;
    if json {
        out!("{}", w.json);
    } else {
        out!("{}", render(&report));
        let dense = if w.dense_checkpoints {
            format!(", {PRUNED_FILE}, {QUANTIZED_FILE}")
        } else {
            String::new()
        };
        outln!(
            "wrote {} (model.eie, manifest.json, {} image files{dense}, {REPORT_FILE}, {REPORT_HTML_FILE})",
            w.out.display(),
            w.files
        );
    }
    if timings {
        let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
        let t = &w.timings;
        errln!(
            "timings (ms): read {:.1}  prune {:.1}  cluster {:.1}  assign {:.1}  encode {:.1}  write {:.1}  hash-wait {:.1}  total {:.1}",
            ms(t.read),
            ms(t.prune),
            ms(t.cluster),
            ms(t.assign),
            ms(t.encode),
            ms(t.write + w.publish),
            ms(t.hash_wait),
            ms(w.total)
        );
    }
    Ok(())
}
