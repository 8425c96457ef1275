//! `compress`: a trained checkpoint to pruned, weight-shared, packed EIE images and a report;
//! with a dataset, every stage's accuracy, and with `--retrain`, Deep Compression's
//! retraining.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use eie_checkpoint::Checkpoint;
use eie_dataset::{Dataset, Scaling, Spec};
use eie_evaluate::{
    Network, RETRAIN_KNOBS, RetrainChoices, RetrainSettings, StageAccuracy, check_whole_network,
    described, description_of, eie_stage, float_stages, retrain, stage_reports,
};
use eie_pipeline::output::{
    Inputs, Layout, PRUNED_FILE, QUANTIZED_FILE, REPORT_FILE, Staging, check_out_dir, load_bundle,
};
use eie_pipeline::{
    Assignments, Job, LayerSettings, Observer, Plan, Recipe, Request, RunSettings, image_provenance,
};
use eie_simulate::Arith;

use super::tool_version;
use crate::knobs::{LayerFlags, RetrainFlags, RunFlags};
use crate::options::{
    ActFracArgs, ArchArgs, ArithArgs, BiasArgs, DatasetArgs, EvalRangeArgs, FitArgs, ForceArgs,
    LayersArgs, PesArgs, ScaleArgs,
};
use crate::progress::Progress;
use crate::render::report::{AccuracyReport, CompressReport, ModelReport, RetrainReport, render};

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
}

/// The datasets of a run with `--dataset`: training samples and held-out samples.
struct Datasets {
    spec: Spec,
    scaling: Scaling,
    /// The training samples (`--range`), with `--retrain`.
    train: Option<Dataset>,
    /// The samples accuracy is measured on, when they are not the training samples.
    held: Option<Dataset>,
    /// The network of the planned layers.
    net: Network,
}

impl Datasets {
    fn held(&self) -> &Dataset {
        self.held
            .as_ref()
            .or(self.train.as_ref())
            .expect("one of them is loaded")
    }
}

/// Everything a run needs, checked.
struct Resolved {
    ck: Checkpoint,
    plan: Plan,
    /// A network given by a model description that is not an MLP (a CNN, an LSTM): read
    /// whole, every matrix decided in memory.
    described: Option<Network>,
    run: RunSettings,
    arith: Arith,
    retrain: Option<RetrainSettings>,
    data: Option<Datasets>,
    provenance: BTreeMap<String, String>,
    inputs: Inputs,
}

/// The retraining settings: the command line and the recipe's `[retrain]` (a key in both is
/// an error), then the defaults. The recipe's table is checked whether or not --retrain is
/// given.
fn retrain_choices(args: &Args, recipe: Option<&Recipe>) -> Result<RetrainChoices> {
    let cli = args.retraining.0.assignments()?;
    let table = match recipe.and_then(|r| r.tables.get("retrain").map(|t| (r, t))) {
        Some((r, t)) => {
            let from_recipe = Assignments::from_toml(RETRAIN_KNOBS, t, |_| true)
                .map_err(|e| anyhow::anyhow!("{}: {e}", r.place("[retrain]")))?;
            let both = cli.overlap(&from_recipe);
            if !both.is_empty() {
                bail!(
                    "{} set both on the command line and in [retrain] of recipe {}; keep one",
                    both.join(", "),
                    r.path.display()
                );
            }
            from_recipe
        }
        None => Assignments::new(),
    };
    let mut choices = RetrainChoices::default();
    cli.merged(&table).apply(&mut choices);
    Ok(choices)
}

fn resolve(args: &Args, progress: &Progress) -> Result<Resolved> {
    let mut inputs = Inputs::new();
    inputs.add(&args.model).extend(&args.recipe);
    if let Some(spec) = &args.data.dataset {
        inputs.extend(crate::options::dataset_inputs(spec)?);
    }
    // Opening reads headers only; a sharded checkpoint's shards are inputs too.
    let ck = Checkpoint::open(&args.model)?;
    inputs.extend(ck.hashed_files());
    check_out_dir(&args.out, args.force.force, &inputs, Layout::Model)?;
    let recipe = args.recipe.as_deref().map(Recipe::load).transpose()?;
    let cli = args.settings.0.assignments()?;
    let request = Request {
        patterns: &args.layers.layers,
        cli: &cli,
        recipe: recipe.as_ref(),
        fold_bias: args.bias.fold(),
    };
    let arch = description_of(&ck, args.arch.arch()?.as_ref(), &args.layers.layers)?;
    // A described MLP is streamed by the pipeline, its layers checked against the description
    // here; the description names them, in order: they are the selection.
    let (described, named): (Option<Network>, Vec<String>) = match &arch {
        Some(a) if a.mlp_widths().is_none() => {
            (Some(Network::from_arch_checkpoint(&ck, a)?), Vec::new())
        }
        Some(a) => {
            let present = eie_model::check_against(&ck, a)?;
            let weights = present.into_iter().filter(|t| !t.bias).map(|t| t.name);
            (None, weights.collect())
        }
        None => (None, Vec::new()),
    };
    let plan = match &described {
        Some(net) => Plan::from_matrices(described::matrix_plans(ck.header(), net)?, &request)?,
        None if !named.is_empty() => Plan::resolve(
            ck.header(),
            &Request {
                patterns: &named,
                ..request
            },
        )?,
        None => Plan::resolve(ck.header(), &request)?,
    };
    let fit = args.fit.fit();
    plan.check_fits(&fit)?;
    let mut run = RunSettings::default();
    if let Some(r) = &recipe {
        let both = args.run.0.assignments()?.overlap(&r.run);
        if !both.is_empty() {
            bail!(
                "{} set both on the command line and in recipe {}; keep one",
                both.join(", "),
                r.path.display()
            );
        }
        r.run.apply(&mut run);
    }
    args.run.0.assignments()?.apply(&mut run);
    if let Some(net) = &described {
        // A described model's biases ride in the bias column: the host convolutions take
        // theirs from it, and the float and bit-exact stages must hold the same ones.
        if !args.bias.fold() && net.layers().iter().any(|l| l.bias.is_some()) {
            bail!(
                "--no-bias-column: {} is a described model ({}), whose biases are in its matrices' bias columns; leave the option out",
                args.model.display(),
                net.describe()
            );
        }
        if let Some(r) = recipe.as_ref().filter(|r| !r.select.is_empty()) {
            bail!(
                "recipe {}: `select` picks an MLP's layers; {} is a described model ({}), every matrix of which is compressed",
                r.path.display(),
                args.model.display(),
                net.describe()
            );
        }
    }
    if run.dense_checkpoints
        && let Some(net) = &described
        && let Some(l) = net.layers().iter().find(|l| l.lstm.is_some())
    {
        bail!(
            "--dense-checkpoints: the LSTM's packed matrix {} is not a tensor of {}; dense checkpoints of LSTM models are not written yet",
            l.name,
            args.model.display()
        );
    }
    let arith = args.arith.arith()?;

    // The command line's settings; with the recipe's [defaults], the seed of the layers
    // also orders retraining's samples.
    let mut given = LayerSettings::default();
    cli.apply(&mut given);
    let mut base = given.clone();
    if let Some(r) = &recipe {
        r.defaults.apply(&mut base);
    }
    let choices = retrain_choices(args, recipe.as_ref())?;
    let retrain = if args.retrain {
        Some(choices.resolve(base.seed)?)
    } else {
        if recipe
            .as_ref()
            .is_some_and(|r| r.tables.contains_key("retrain"))
        {
            progress.warn("the recipe's [retrain] settings apply only with --retrain");
        }
        None
    };

    // Accuracy: the datasets and the network, checked before the long work.
    let names = plan.names();
    let data = match &args.data.dataset {
        Some(spec) => {
            let act_frac = &args.act_frac.act_frac;
            if !act_frac.is_empty() {
                match &described {
                    // Two per matrix; the chained pairs are checked on the bundle written.
                    Some(_) => eie_evaluate::program::check_fraction_count(act_frac, names.len())?,
                    None => eie_simulate::fixed::check_fractions(act_frac, names.len())?,
                }
            }
            if described.is_none() {
                check_whole_network(&ck, &names)?;
            }
            let scaling = Scaling::resolve(&args.scale.request(), &ck.metadata())?;
            // Without retraining nothing trains: --range alone names the samples measured.
            let (train, held) = match (args.retrain, args.eval_range.eval_range) {
                (true, e) => (Some(args.data.range), e),
                (false, Some(e)) => (None, Some(e)),
                (false, None) => (None, Some(args.data.range.unwrap_or_default())),
            };
            let load = |r: Option<eie_dataset::SampleRange>| {
                eie_dataset::load(spec, r.unwrap_or_default(), &scaling)
            };
            let train = train.map(load).transpose()?;
            let held = held.map(|r| load(Some(r))).transpose()?;
            let net = match &described {
                Some(n) => n.clone(),
                None => Network::from_checkpoint(&ck, &names)
                    .context("the compressed layers, as a network (accuracy needs an MLP or a model description, --arch)")?,
            };
            if let Some(t) = &train {
                net.check_dataset(t)?;
            }
            let d = Datasets {
                spec: spec.clone(),
                scaling,
                train,
                held,
                net,
            };
            d.net.check_dataset(d.held())?;
            Some(d)
        }
        None => {
            if !args.act_frac.act_frac.is_empty() {
                bail!("--act-frac applies to a dataset; give --dataset");
            }
            None
        }
    };

    // What the bundle records about how it was made.
    let mut provenance = image_provenance(args.pes.pes as usize, given.index_bits, &fit);
    provenance.insert("command".into(), "compress".into());
    provenance.insert("bias_column".into(), args.bias.fold().to_string());
    match &described {
        Some(net) => {
            if args.conv_on_eie && !net.layers().iter().any(|l| l.is_conv()) {
                bail!(
                    "--conv-on-eie: {} ({}) has no convolution",
                    args.model.display(),
                    net.describe()
                );
            }
            provenance.extend(described::provenance(net, args.conv_on_eie));
        }
        None if args.conv_on_eie => bail!(
            "--conv-on-eie applies to a model described with convolutions (--arch, docs/models.md); {} is read as an MLP",
            args.model.display()
        ),
        None => {}
    }
    // The input scaling travels on, for `simulate --dataset`: the one measured with, or the
    // one the model was trained with.
    match &data {
        Some(d) => provenance.extend(d.scaling.to_metadata()),
        None => {
            let recorded = ck.metadata();
            for key in eie_dataset::meta::ALL {
                if let Some(v) = recorded.get(key) {
                    provenance.insert(key.into(), v.clone());
                }
            }
        }
    }
    if let (Some(s), Some(d)) = (&retrain, &data) {
        provenance.insert(
            "retrain".into(),
            format!(
                "on {}: schedule {:?}, masked fine-tuning {} epochs at lr {} (weight decay {}), share schedule {:?}, centroid fine-tuning {} epochs at lr {}, batch {}, seed {}",
                d.train.as_ref().map_or("", |t| t.name()),
                s.schedule,
                s.fine_tune.epochs,
                s.fine_tune.lr,
                s.fine_tune.weight_decay,
                s.share_schedule,
                s.centroids.epochs,
                s.centroids.lr,
                s.fine_tune.batch_size,
                s.fine_tune.seed
            ),
        );
    }
    if let Some(r) = &args.recipe {
        provenance.insert(
            "recipe".into(),
            r.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        );
    }
    Ok(Resolved {
        ck,
        plan,
        described,
        run,
        arith,
        retrain,
        data,
        provenance,
        inputs,
    })
}

pub fn run(args: Args, progress: &Progress) -> Result<()> {
    let start = Instant::now();
    let r = resolve(&args, progress)?;
    let version = tool_version();
    let job = Job {
        plan: &r.plan,
        pes: args.pes.pes as usize,
        fit: args.fit.fit(),
        run: r.run.clone(),
        tool_version: &version,
        provenance: r.provenance.clone(),
    };
    let names = r.plan.names();

    let staging = Staging::create(&args.out, args.force.force, &r.inputs, Layout::Model)?;
    let mut stages: Vec<StageAccuracy> = Vec::new();
    let retrained = match &r.data {
        Some(d) => {
            let original = StageAccuracy::float("original (float)", &d.net, d.held())?;
            progress.note(&original.line());
            stages.push(original);
            match &r.retrain {
                Some(settings) => Some(retrain(
                    r.ck.header(),
                    &r.plan.layers,
                    job.pes,
                    d.net.clone(),
                    Some(d.train.as_ref().expect("loaded with --retrain")),
                    Some(d.held()),
                    settings,
                    progress,
                    &mut stages,
                )?),
                None => None,
            }
        }
        None => None,
    };
    // A described network is pruned and shared in memory even without retraining.
    let retrained = match (retrained, &r.described) {
        (None, Some(net)) => Some(retrain(
            r.ck.header(),
            &r.plan.layers,
            job.pes,
            net.clone(),
            None,
            None,
            &described::prune_and_share_only(r.plan.layers[0].settings.seed),
            progress,
            &mut Vec::new(),
        )?),
        (retrained, _) => retrained,
    };
    let done = eie_pipeline::compress(&r.ck, &job, retrained, staging.path(), progress)?;

    let mut accuracy = None;
    if let Some(d) = &r.data {
        // The EIE model runs on exactly the bundle written.
        let (_, bundle) = load_bundle(staging.path())?;
        if r.retrain.is_none() {
            let (float, _) = float_stages(&d.net, &names, &bundle, Some(staging.path()), d.held())?;
            stages.extend(float);
        }
        let (stage, fracs, _) = eie_stage(
            &r.ck,
            &bundle,
            d.held(),
            &args.act_frac.act_frac,
            r.arith,
            None,
        )?;
        stages.push(stage);
        accuracy = Some(AccuracyReport {
            dataset: d.spec.to_string(),
            train: d.train.as_ref().map(|t| t.name().to_string()),
            held_out: d.held().name().to_string(),
            held_out_is_train: d.held.is_none(),
            retrain: r.retrain.as_ref().map(|s| RetrainReport {
                schedule: s.schedule.clone(),
                share_schedule: s.share_schedule.clone(),
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
    let report = CompressReport {
        report: done.report,
        model: r.described.as_ref().map(|net| ModelReport {
            arch: net.describe(),
            host_layers: described::host_layers(net, args.conv_on_eie),
        }),
        accuracy,
    };
    let json = serde_json::to_string_pretty(&report)? + "\n";
    let t = Instant::now();
    std::fs::write(staging.path().join(REPORT_FILE), &json).context("cannot write report.json")?;
    staging.publish()?;
    let publish = t.elapsed();

    if args.json {
        out!("{json}");
    } else {
        out!("{}", render(&report));
        let dense = if done.dense_checkpoints {
            format!(", {PRUNED_FILE}, {QUANTIZED_FILE}")
        } else {
            String::new()
        };
        outln!(
            "wrote {} (model.eie, manifest.json, {} image files{dense}, {REPORT_FILE})",
            args.out.display(),
            done.files
        );
    }
    if args.timings {
        let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
        let t = &done.timings;
        errln!(
            "timings (ms): read {:.1}  prune {:.1}  cluster {:.1}  assign {:.1}  encode {:.1}  write {:.1}  hash-wait {:.1}  total {:.1}",
            ms(t.read),
            ms(t.prune),
            ms(t.cluster),
            ms(t.assign),
            ms(t.encode),
            ms(t.write + publish),
            ms(t.hash_wait),
            ms(start.elapsed())
        );
    }
    Ok(())
}
