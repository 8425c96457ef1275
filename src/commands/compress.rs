//! `compress`: a trained checkpoint to pruned, weight-shared, packed EIE images, with the
//! pruned and quantized checkpoints and a report.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use eie_checkpoint::Checkpoint;
use eie_dataset::{Dataset, SampleRange, Scaling, Spec};
use eie_evaluate::{CentroidConfig, Network, TrainConfig};
use eie_format::BundleMeta;

use super::{ImageOptions, fit_bundle, source_info, tool_version};
use crate::accuracy::{
    ScaleOptions, StageAccuracy, check_whole_network, checkpoint_stages, eie_stage, load, meta,
    scaling_meta, stage_reports,
};
use crate::compress::recipe::{CodebookKind, InitKind, Partial, Recipe, RetrainPartial, resolve};
use crate::compress::retrain::{RetrainSettings, retrain};
use crate::compress::{
    PRUNED_FILE, QUANTIZED_FILE, Timings, plan, report, run as pipeline, settings_map,
};
use crate::output::{Staging, check_out_dir, output_paths, refuse_input_as_output};
use crate::progress::Progress;

/// Name of the report file.
pub const REPORT_FILE: &str = "report.json";

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The checkpoint: a .safetensors file, or a sharded checkpoint's .safetensors.index.json.
    pub model: PathBuf,
    /// Output folder: model.eie, manifest.json, images/, pruned.safetensors,
    /// quantized.safetensors and report.json are written there.
    #[arg(short, long)]
    pub out: PathBuf,
    /// Keep this fraction of each layer's weights, the largest |w| (0 < D <= 1).
    #[arg(
        long,
        value_name = "D",
        group = "pruning",
        allow_negative_numbers = true
    )]
    pub density: Option<f64>,
    /// Prune |w| < S x the layer's standard deviation (Han et al.'s rule).
    #[arg(
        long,
        value_name = "S",
        group = "pruning",
        allow_negative_numbers = true
    )]
    pub threshold_std: Option<f64>,
    /// Keep this fraction of all selected weights, with one threshold across layers.
    #[arg(
        long,
        value_name = "D",
        group = "pruning",
        allow_negative_numbers = true
    )]
    pub global_density: Option<f64>,
    /// Balance the kept weights across PEs (every PE keeps the same count, within one).
    #[arg(long)]
    pub balance: bool,
    /// Bits of a weight code: 2^B - 1 shared values plus zero (1..=8, default 4).
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=8))]
    pub code_bits: Option<u8>,
    /// Where k-means starts (default linear).
    #[arg(long, value_enum)]
    pub init: Option<InitKind>,
    /// Seed of the random and k-means++ initialisations, and of retraining's sample order
    /// (default 0).
    #[arg(long)]
    pub seed: Option<u64>,
    /// kmeans (Lloyd's iterations, default) or optimal (exact minimum SSE).
    #[arg(long, value_enum)]
    pub codebook: Option<CodebookKind>,
    /// Cap on Lloyd's iterations (default 300).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_iter: Option<u32>,
    /// Layers to compress (glob, repeatable; default: every 2-D float tensor named *.weight).
    #[arg(long = "layers", value_name = "PATTERN")]
    pub layers: Vec<String>,
    /// Per-layer settings (see docs/recipes.md).
    #[arg(long, value_name = "FILE")]
    pub recipe: Option<PathBuf>,
    /// Leave biases out (by default NAME.bias is folded in as one extra column whose input is 1).
    #[arg(long)]
    pub no_bias_column: bool,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Print the time each stage took to stderr.
    #[arg(long)]
    pub timings: bool,
    #[command(flatten)]
    pub image: ImageOptions,
    #[command(flatten)]
    pub accuracy: AccuracyOptions,
}

/// Accuracy after every stage on a dataset, and retraining.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct AccuracyOptions {
    /// A dataset to measure accuracy on after every stage (and to retrain on, with
    /// --retrain): mnist:DIR[:train|t10k], idx:IMAGES,LABELS, safetensors:FILE, synthetic (or synthetic:SEED).
    #[arg(long, value_name = "SPEC")]
    pub dataset: Option<Spec>,
    /// Training samples with --retrain; without it, the samples accuracy is measured on
    /// (A..B; default all).
    #[arg(long, value_name = "A..B", requires = "dataset")]
    pub range: Option<SampleRange>,
    /// Held-out samples the report's accuracy is measured on (default: --range).
    #[arg(long, value_name = "A..B", requires = "dataset")]
    pub eval_range: Option<SampleRange>,
    #[command(flatten)]
    pub scale: ScaleOptions,
    /// Retrain as Deep Compression does: masked fine-tuning after pruning, centroid
    /// fine-tuning after weight sharing.
    #[arg(long, requires = "dataset")]
    pub retrain: bool,
    /// Masked fine-tuning epochs after each pruning round (default 3).
    #[arg(long, requires = "retrain")]
    pub epochs: Option<usize>,
    /// Centroid fine-tuning epochs (default: --epochs).
    #[arg(long, requires = "retrain")]
    pub centroid_epochs: Option<usize>,
    /// Adam's learning rate for masked fine-tuning (default 1e-3; docs/decisions.md says why).
    #[arg(long, requires = "retrain")]
    pub lr: Option<f64>,
    /// SGD's learning rate for centroid fine-tuning (default 1e-3).
    #[arg(long, requires = "retrain")]
    pub centroid_lr: Option<f64>,
    /// Samples per step (default 64).
    #[arg(long, requires = "retrain")]
    pub batch_size: Option<usize>,
    /// L2 penalty of masked fine-tuning (default 0).
    #[arg(long, requires = "retrain")]
    pub weight_decay: Option<f64>,
    /// Iterative pruning: prune and retrain in R rounds toward the target (default 1).
    #[arg(long, value_name = "R", requires = "retrain")]
    pub rounds: Option<usize>,
    /// Activation fractional bits of the EIE model, one per layer boundary; default:
    /// calibrated on the held-out samples.
    #[arg(
        long,
        value_name = "F,F,...",
        value_delimiter = ',',
        requires = "dataset"
    )]
    pub act_frac: Vec<u8>,
}

/// Defaults of retraining.
const FINE_TUNE_EPOCHS: usize = 3;
const FINE_TUNE_LR: f64 = 1e-3;
const CENTROID_LR: f64 = 1e-3;
const BATCH_SIZE: usize = 64;

impl AccuracyOptions {
    /// The retraining settings: command line and the recipe's `[retrain]` (a key in both is
    /// an error), then the defaults.
    fn retrain_settings(&self, recipe: Option<&Recipe>, seed: u64) -> Result<RetrainSettings> {
        let cli = RetrainPartial {
            epochs: self.epochs,
            centroid_epochs: self.centroid_epochs,
            lr: self.lr,
            centroid_lr: self.centroid_lr,
            batch_size: self.batch_size,
            weight_decay: self.weight_decay,
            rounds: self.rounds,
            schedule: None,
        };
        let merged = match recipe.and_then(|r| r.retrain.as_ref().map(|t| (r, t))) {
            Some((r, table)) => {
                let both = cli.overlap(table);
                if !both.is_empty() {
                    bail!(
                        "{} set both on the command line and in [retrain] of recipe {}; keep one",
                        both.join(", "),
                        r.path.display()
                    );
                }
                cli.merged(table)
            }
            None => cli,
        };
        let epochs = merged.epochs.unwrap_or(FINE_TUNE_EPOCHS);
        let batch_size = merged.batch_size.unwrap_or(BATCH_SIZE);
        let settings = RetrainSettings {
            schedule: merged.schedule()?,
            fine_tune: TrainConfig {
                epochs,
                batch_size,
                lr: merged.lr.unwrap_or(FINE_TUNE_LR),
                weight_decay: merged.weight_decay.unwrap_or(0.0),
                seed,
            },
            centroids: CentroidConfig {
                epochs: merged.centroid_epochs.unwrap_or(epochs),
                batch_size,
                lr: merged.centroid_lr.unwrap_or(CENTROID_LR),
                seed,
            },
        };
        settings.fine_tune.validate()?;
        settings.centroids.validate()?;
        Ok(settings)
    }
}

/// The datasets of a run with `--dataset`: training samples and held-out samples.
struct Datasets {
    scaling: Scaling,
    /// The training samples (`--range`), with `--retrain`.
    train: Option<Dataset>,
    /// The samples accuracy is measured on, when they are not the training samples.
    held: Option<Dataset>,
}

impl Datasets {
    fn held(&self) -> &Dataset {
        self.held
            .as_ref()
            .or(self.train.as_ref())
            .expect("one of them is loaded")
    }
}

pub fn run(args: Args, progress: &Progress) -> Result<()> {
    let start = Instant::now();
    check_out_dir(&args.out, args.image.force)?;
    refuse_input_as_output(&args.model, &output_paths(&args.out))?;
    let recipe = args.recipe.as_deref().map(Recipe::load).transpose()?;
    let ck = Checkpoint::open(&args.model)?;
    let patterns = match (&args.layers, &recipe) {
        (l, _) if !l.is_empty() => l.clone(),
        (_, Some(r)) => r.select.clone(),
        _ => Vec::new(),
    };
    let selected = ck.select_layers(&patterns)?;
    let cli = Partial {
        density: args.density,
        threshold_std: args.threshold_std,
        global_density: args.global_density,
        code_bits: args.code_bits,
        index_bits: args.image.index_bits,
        codebook: args.codebook,
        init: args.init,
        seed: args.seed,
        max_iter: args.max_iter,
        balance: args.balance.then_some(true),
    };
    let layers = resolve(&selected, &cli, recipe.as_ref())?;
    let plans = plan(&ck, layers, !args.no_bias_column)?;
    let pes = args.image.pes as usize;
    // The pointer SRAM depends only on the columns: check it before the long work.
    if !args.image.allow_overflow {
        let capacity = args.image.capacity().pointer_bytes;
        for p in &plans {
            let cols = ck.info(&p.name).expect("planned").shape[1] + usize::from(p.bias.is_some());
            let part = if args.image.column_batch > 0 {
                cols.min(args.image.column_batch)
            } else {
                cols
            };
            let needed = (part as u64 + 1) * args.image.pointer_bits as u64 / 8;
            if needed > capacity {
                anyhow::bail!(
                    "layer \"{}\": every PE stores {} pointers ({needed} B), over its {capacity} B pointer SRAM, at any PE count; use column batches (--column-batch), a larger --pointer-kib, or --allow-overflow",
                    p.name,
                    part + 1
                );
            }
        }
    }

    // Accuracy: the datasets and the network, checked before the long work.
    let acc = &args.accuracy;
    let retrain_settings = if acc.retrain {
        let seed = args.seed.unwrap_or(0);
        Some(acc.retrain_settings(recipe.as_ref(), seed)?)
    } else {
        if recipe.as_ref().is_some_and(|r| r.retrain.is_some()) {
            eprintln!("warning: the recipe's [retrain] settings apply only with --retrain");
        }
        None
    };
    let names: Vec<String> = plans.iter().map(|p| p.name.clone()).collect();
    let (datasets, net) = match &acc.dataset {
        Some(spec) => {
            if !acc.act_frac.is_empty() {
                eie_simulate::fixed::check_fractions(&acc.act_frac, plans.len())?;
            }
            check_whole_network(&ck, &names)?;
            let scaling = acc.scale.resolve(&ck.metadata())?;
            // Without retraining nothing trains: --range alone names the samples measured.
            let (train, held) = match (acc.retrain, acc.eval_range) {
                (true, e) => (Some(acc.range), e),
                (false, Some(e)) => (None, Some(e)),
                (false, None) => (None, Some(acc.range.unwrap_or_default())),
            };
            let d = Datasets {
                scaling,
                train: train.map(|r| load(spec, r, &scaling)).transpose()?,
                held: held.map(|r| load(spec, Some(r), &scaling)).transpose()?,
            };
            let net = Network::from_checkpoint(&ck, &names)
                .context("the compressed layers, as a network (accuracy needs an MLP)")?;
            if let Some(t) = &d.train {
                net.check_dataset(t)?;
            }
            net.check_dataset(d.held())?;
            (Some(d), Some(net))
        }
        None => {
            if acc.scale.is_set() {
                bail!("--scale, --mean and --std apply to a dataset; give --dataset");
            }
            (None, None)
        }
    };

    let t = Instant::now();
    let sha256 = ck.sha256()?;
    let hash_time = t.elapsed();
    let staging = Staging::create(&args.out, args.image.force)?;
    let mut timings = Timings::default();
    let mut stages: Vec<StageAccuracy> = Vec::new();
    let retrained = match (&datasets, net) {
        (Some(d), Some(net)) => {
            let original = StageAccuracy::float("original (float)", &net, d.held())?;
            progress.note(&original.line());
            stages.push(original);
            match &retrain_settings {
                Some(settings) => Some(retrain(
                    &ck,
                    &plans,
                    pes,
                    net,
                    d.train.as_ref().expect("loaded with --retrain"),
                    d.held(),
                    settings,
                    progress,
                    &mut stages,
                )?),
                None => None,
            }
        }
        _ => None,
    };
    let outcomes = pipeline(
        &ck,
        &plans,
        pes,
        staging.path(),
        progress,
        &mut timings,
        retrained,
    )?;
    if let (Some(d), None) = (&datasets, &retrain_settings) {
        // Without retraining, the two checkpoints just written are the float stages.
        stages.extend(checkpoint_stages(staging.path(), &names, d.held())?);
    }

    let mut settings = args.image.settings();
    settings.insert("command".into(), "compress".into());
    settings.insert("bias_column".into(), (!args.no_bias_column).to_string());
    // The input scaling travels on, for `simulate --dataset`: the one measured with, or the
    // one the model was trained with.
    match &datasets {
        Some(d) => settings.extend(scaling_meta(&d.scaling)),
        None => {
            let ck_meta = ck.metadata();
            for key in [meta::SCALE, meta::MEAN, meta::STD] {
                if let Some(v) = ck_meta.get(key) {
                    settings.insert(key.into(), v.clone());
                }
            }
        }
    }
    if let (Some(s), Some(d)) = (&retrain_settings, &datasets) {
        settings.insert(
            "retrain".into(),
            format!(
                "on {}: schedule {:?}, masked fine-tuning {} epochs at lr {} (weight decay {}), centroid fine-tuning {} epochs at lr {}, batch {}, seed {}",
                d.train.as_ref().map_or("", |t| t.name()),
                s.schedule,
                s.fine_tune.epochs,
                s.fine_tune.lr,
                s.fine_tune.weight_decay,
                s.centroids.epochs,
                s.centroids.lr,
                s.fine_tune.batch_size,
                s.fine_tune.seed
            ),
        );
    }
    if let Some(r) = &args.recipe {
        settings.insert(
            "recipe".into(),
            r.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        );
    }
    settings.extend(settings_map(&plans));
    let meta = BundleMeta {
        tool_version: tool_version(),
        source: source_info(&args.model, sha256),
        pointer_bits: args.image.pointer_bits,
        settings,
    };
    let layers: Vec<_> = outcomes.iter().map(|o| o.layer.clone()).collect();
    let bundle = fit_bundle(meta, layers, &args.image)?;
    let mut report = report::build(&bundle, &outcomes);
    if let Some(d) = &datasets {
        let arith = eie_simulate::Arith::default();
        let (stage, fracs) = eie_stage(&ck, &bundle, d.held(), &acc.act_frac, arith)?;
        stages.push(stage);
        report.accuracy = Some(report::AccuracyReport {
            dataset: acc.dataset.as_ref().expect("datasets").to_string(),
            train: d.train.as_ref().map(|t| t.name().to_string()),
            held_out: d.held().name().to_string(),
            held_out_is_train: d.held.is_none(),
            retrain: retrain_settings.as_ref().map(|s| report::RetrainReport {
                schedule: s.schedule.clone(),
                epochs: s.fine_tune.epochs,
                lr: s.fine_tune.lr,
                weight_decay: s.fine_tune.weight_decay,
                centroid_epochs: s.centroids.epochs,
                centroid_lr: s.centroids.lr,
                batch_size: s.fine_tune.batch_size,
                seed: s.fine_tune.seed,
            }),
            act_frac: fracs,
            stages: stage_reports(&stages),
        });
    }
    let json = serde_json::to_string_pretty(&report)? + "\n";

    let t = Instant::now();
    let files = super::stage_bundle(&staging, &bundle)?;
    std::fs::write(staging.path().join(REPORT_FILE), &json).context("cannot write report.json")?;
    staging.publish()?;
    timings.write += t.elapsed();

    if args.json {
        print!("{json}");
    } else {
        print!("{}", report::render(&report));
        println!(
            "wrote {} (model.eie, manifest.json, {files} image files, {PRUNED_FILE}, {QUANTIZED_FILE}, {REPORT_FILE})",
            args.out.display()
        );
    }
    if args.timings {
        let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
        eprintln!(
            "timings (ms): hash {:.1}  read {:.1}  prune {:.1}  cluster {:.1}  assign {:.1}  encode {:.1}  write {:.1}  total {:.1}",
            ms(hash_time),
            ms(timings.read),
            ms(timings.prune),
            ms(timings.cluster),
            ms(timings.assign),
            ms(timings.encode),
            ms(timings.write),
            ms(start.elapsed())
        );
    }
    Ok(())
}
