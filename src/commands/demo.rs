//! `demo`: the whole pipeline on the shipped model and the built-in synthetic dataset, in
//! one command that needs nothing outside the binary. Each step runs as the printed
//! `eie-compress` command line, parsed like one, so a user can rerun any step by hand.

use std::path::PathBuf;

use anyhow::Result;
use eie_commands::demo::{Request, TRAIN};

use eie_progress::Progress;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Folder for the demo's files (the model, the recipe, and the compressed output in
    /// OUT/eie); the demo replaces its own files there on every run.
    #[arg(short, long, default_value = "out/demo")]
    pub out: PathBuf,
}

pub fn run(args: Args, progress: &Progress, quiet: bool) -> Result<()> {
    let demo = Request { out: args.out }.prepare()?;
    outln!(
        "eie-compress demo: the shipped 64-256-128-10 MLP (trained by `eie-compress train` on the built-in synthetic dataset, samples {TRAIN}) through the whole pipeline, in {}.\n",
        demo.out.display()
    );
    let n = demo.steps.len();
    for (i, step) in demo.steps.iter().enumerate() {
        outln!("== {}/{n} {}", i + 1, step.what);
        outln!("$ eie-compress {}", step.argv.join(" "));
        let mut full = vec!["eie-compress".to_string()];
        if quiet {
            full.push("--quiet".into());
        }
        full.extend(step.argv.iter().cloned());
        crate::run_argv(&full, progress)?;
        outln!();
    }
    outln!(
        "done: the images, model.eie, report.json and report.html are in {}; the report with the simulation and eval is {} (open it in a browser); rerun any step with the command above it.",
        demo.eie.display(),
        demo.out.join(eie_commands::demo::PAGE_FILE).display()
    );
    Ok(())
}
