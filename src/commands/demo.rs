//! `demo`: the whole pipeline on the shipped model and the built-in synthetic dataset, in
//! one command that needs nothing outside the binary: compress with retraining, verify the
//! images, simulate held-out samples, evaluate every stage. Each step runs as the printed
//! `eie-compress` command line, parsed like one, so a user can rerun any step by hand.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::progress::Progress;
use eie_pipeline::output::{Inputs, Kind, check_file, write_file};

/// The shipped model: made by `train` (the command is in fixtures/make_demo_model.sh).
const MODEL: &[u8] = include_bytes!("../../fixtures/demo-mlp.safetensors");
const MODEL_FILE: &str = "demo-mlp.safetensors";
const RECIPE_FILE: &str = "recipe.toml";
/// Deep Compression's settings scaled to the demo's MLP: sparse hidden layers, a denser
/// classifier, 4-bit codes, iterative pruning in three rounds with retraining.
/// The demo's model and recipe, byte for byte: anything else under their names (a model
/// the user trained, an edited recipe) is not the demo's, and is not replaced.
const MODEL_KIND: Kind = Kind::Exact(MODEL);
const RECIPE_KIND: Kind = Kind::Exact(RECIPE.as_bytes());
const RECIPE: &str = r#"# The demo's compression recipe (docs/recipes.md).
[defaults]
code_bits = 4
index_bits = 4

[[layers]]
pattern = "fc[12].weight"
density = 0.1

[[layers]]
pattern = "fc3.weight"
density = 0.25

[retrain]
rounds = 3
epochs = 5
"#;
const PES: &str = "8";
const DATASET: &str = "synthetic";
const TRAIN: &str = "0..8000";
const HELD_OUT: &str = "8000..10000";
const SIMULATED: &str = "8000..8100";

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Folder for the demo's files (the model, the recipe, and the compressed output in
    /// OUT/eie); the demo replaces its own files there on every run.
    #[arg(short, long, default_value = "out/demo")]
    pub out: PathBuf,
}

fn show(path: &Path) -> String {
    path.display().to_string()
}

pub fn run(args: Args, progress: &Progress, quiet: bool) -> Result<()> {
    let out = &args.out;
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    // One demo at a time in a folder (compress locks OUT/eie on its own).
    let _lock = eie_pipeline::output::Lock::take(out)?;
    let model = out.join(MODEL_FILE);
    let recipe = out.join(RECIPE_FILE);
    let eie = out.join("eie");
    // The demo replaces its own two files on every run, and nothing else: a foreign file of
    // either name (an edited recipe included) is refused.
    let inputs = Inputs::new();
    for (path, kind) in [(&model, MODEL_KIND), (&recipe, RECIPE_KIND)] {
        check_file(path, true, kind, &inputs)?;
    }
    write_file(&model, true, MODEL_KIND, &inputs, |tmp| -> Result<()> {
        Ok(std::fs::write(tmp, MODEL)?)
    })?;
    write_file(&recipe, true, RECIPE_KIND, &inputs, |tmp| -> Result<()> {
        Ok(std::fs::write(tmp, RECIPE)?)
    })?;
    outln!(
        "eie-compress demo: the shipped 64-256-128-10 MLP (trained by `eie-compress train` on the built-in synthetic dataset, samples {TRAIN}) through the whole pipeline, in {}.\n",
        out.display()
    );
    let steps: [(&str, Vec<String>); 4] = [
        (
            "compress: prune in 3 rounds with masked fine-tuning, share weights (4-bit codes), fine-tune the shared values, pack for 8 PEs",
            vec![
                "compress".into(),
                show(&model),
                "-o".into(),
                show(&eie),
                "--recipe".into(),
                show(&recipe),
                "--pes".into(),
                PES.into(),
                "--dataset".into(),
                DATASET.into(),
                "--range".into(),
                TRAIN.into(),
                "--eval-range".into(),
                HELD_OUT.into(),
                "--retrain".into(),
                "--dense-checkpoints".into(),
                "--force".into(),
            ],
        ),
        (
            "verify: the images on disk say exactly what model.eie says",
            vec!["verify".into(), show(&eie)],
        ),
        (
            "simulate: 100 held-out samples through the bit-exact and the cycle-level models",
            vec![
                "simulate".into(),
                show(&eie),
                "--dataset".into(),
                DATASET.into(),
                "--range".into(),
                SIMULATED.into(),
            ],
        ),
        (
            "eval: every stage's accuracy on the held-out samples, from the files on disk",
            vec![
                "eval".into(),
                show(&model),
                show(&eie),
                "--dataset".into(),
                DATASET.into(),
                "--range".into(),
                HELD_OUT.into(),
            ],
        ),
    ];
    let n = steps.len();
    for (i, (what, argv)) in steps.into_iter().enumerate() {
        outln!("== {}/{n} {what}", i + 1);
        outln!("$ eie-compress {}", argv.join(" "));
        let mut full = vec!["eie-compress".to_string()];
        if quiet {
            full.push("--quiet".into());
        }
        full.extend(argv);
        crate::run_argv(&full, progress)?;
        outln!();
    }
    outln!(
        "done: the images, model.eie and report.json are in {}; rerun any step with the command above it.",
        eie.display()
    );
    Ok(())
}
