//! `demo`: the whole pipeline on the shipped model and the built-in synthetic dataset, in
//! one command that needs nothing outside the binary: compress with retraining, verify the
//! images, simulate held-out samples, evaluate every stage. Each step is an `eie-compress`
//! command line, which the tool prints and runs as typed, so a user can rerun any step by
//! hand.

use std::path::{Path, PathBuf};

use eie_pipeline::output::{Inputs, Lock, OutputKind, check_file, write_file};

use crate::error::{Result, io};

/// The shipped model: made by `train` (the command is in fixtures/make_demo_model.sh).
pub const MODEL: &[u8] = include_bytes!("../../../fixtures/demo-mlp.safetensors");
const MODEL_FILE: &str = "demo-mlp.safetensors";
const RECIPE_FILE: &str = "recipe.toml";
/// The demo's full report page, beside its compressed output.
pub const PAGE_FILE: &str = "report.html";
/// The demo's model and recipe, byte for byte: anything else under their names (a model
/// the user trained, an edited recipe) is not the demo's, and is not replaced.
const MODEL_KIND: OutputKind = OutputKind::Exact(MODEL);
const RECIPE_KIND: OutputKind = OutputKind::Exact(RECIPE.as_bytes());
/// Deep Compression's settings scaled to the demo's MLP: sparse hidden layers, a denser
/// classifier, 4-bit codes, iterative pruning in three rounds with retraining.
pub const RECIPE: &str = r#"# The demo's compression recipe (docs/recipes.md).
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
/// The samples the shipped model was trained on, and the compressed one retrained on.
pub const TRAIN: &str = "0..8000";
const HELD_OUT: &str = "8000..10000";
const SIMULATED: &str = "8000..8100";

/// Where the demo runs.
#[derive(Debug, Clone)]
pub struct Request {
    /// Its folder: the model, the recipe, and the compressed output in `OUT/eie`; the demo
    /// replaces its own files there on every run.
    pub out: PathBuf,
}

/// The demo's folder, prepared and locked (one demo at a time in a folder), and its steps.
#[derive(Debug)]
pub struct Demo {
    /// The folder.
    pub out: PathBuf,
    /// The compressed output's folder.
    pub eie: PathBuf,
    /// The steps, in order.
    pub steps: Vec<DemoStep>,
    _lock: Lock,
}

/// One step: what it does, and its command line (after `eie-compress`).
#[derive(Debug, Clone)]
pub struct DemoStep {
    /// What it does.
    pub what: &'static str,
    /// Its arguments.
    pub argv: Vec<String>,
}

fn show(path: &Path) -> String {
    path.display().to_string()
}

impl Request {
    /// Writes the model and the recipe (replacing the demo's own files there, and nothing
    /// else: a foreign file of either name, an edited recipe included, is refused) and
    /// returns the steps.
    pub fn prepare(&self) -> Result<Demo> {
        let out = &self.out;
        std::fs::create_dir_all(out).map_err(io("cannot create", out))?;
        // One demo at a time in a folder (compress locks OUT/eie on its own).
        let lock = Lock::take(out)?;
        let model = out.join(MODEL_FILE);
        let recipe = out.join(RECIPE_FILE);
        let eie = out.join("eie");
        let inputs = Inputs::new();
        // The report page of the last step too: a file of the user's under its name stops
        // the demo before its work, not after.
        let page = out.join(PAGE_FILE);
        for (path, kind) in [
            (&model, MODEL_KIND),
            (&recipe, RECIPE_KIND),
            (&page, eie_pipeline::output::REPORT_HTML),
        ] {
            check_file(path, true, kind, &inputs)?;
        }
        for (path, kind, bytes) in [
            (&model, MODEL_KIND, MODEL),
            (&recipe, RECIPE_KIND, RECIPE.as_bytes()),
        ] {
            write_file(path, true, kind, &inputs, |tmp| -> Result<()> {
                std::fs::write(tmp, bytes).map_err(io("cannot write", path))
            })?;
        }
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let (m, r, e) = (show(&model), show(&recipe), show(&eie));
        let steps = vec![
            DemoStep {
                what: "compress: prune in 3 rounds with masked fine-tuning, share weights (4-bit codes), fine-tune the shared values, pack for 8 PEs",
                argv: args(&[
                    "compress",
                    &m,
                    "-o",
                    &e,
                    "--recipe",
                    &r,
                    "--pes",
                    PES,
                    "--dataset",
                    DATASET,
                    "--range",
                    TRAIN,
                    "--eval-range",
                    HELD_OUT,
                    "--retrain",
                    "--dense-checkpoints",
                    "--force",
                ]),
            },
            DemoStep {
                what: "verify: the images on disk say exactly what model.eie says",
                argv: args(&["verify", &e]),
            },
            DemoStep {
                what: "simulate: 100 held-out samples through the bit-exact and the cycle-level models",
                argv: args(&["simulate", &e, "--dataset", DATASET, "--range", SIMULATED]),
            },
            DemoStep {
                what: "eval: every stage's accuracy on the held-out samples, from the files on disk",
                argv: args(&["eval", &m, &e, "--dataset", DATASET, "--range", HELD_OUT]),
            },
            DemoStep {
                what: "report: the HTML report (compress wrote report.html; this one adds the simulation's cycles and energy and eval's accuracy)",
                argv: args(&[
                    "report",
                    &e,
                    "-o",
                    &show(&page),
                    "--dataset",
                    DATASET,
                    "--range",
                    HELD_OUT,
                    "--checkpoint",
                    &m,
                    "--force",
                ]),
            },
        ];
        Ok(Demo {
            out: out.clone(),
            eie,
            steps,
            _lock: lock,
        })
    }
}
