//! `compress`: a trained checkpoint to pruned, weight-shared, packed EIE images, with the
//! pruned and quantized checkpoints and a report.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use eie_checkpoint::Checkpoint;
use eie_format::BundleMeta;

use super::{ImageOptions, fit_bundle, source_info, tool_version};
use crate::compress::recipe::{CodebookKind, InitKind, Partial, Recipe, resolve};
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
    /// Seed of the random and k-means++ initialisations (default 0).
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

    let t = Instant::now();
    let sha256 = ck.sha256()?;
    let hash_time = t.elapsed();
    let staging = Staging::create(&args.out, args.image.force)?;
    let mut timings = Timings::default();
    let outcomes = pipeline(&ck, &plans, pes, staging.path(), progress, &mut timings)?;

    let mut settings = args.image.settings();
    settings.insert("command".into(), "compress".into());
    settings.insert("bias_column".into(), (!args.no_bias_column).to_string());
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
    let report = report::build(&bundle, &outcomes);
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
