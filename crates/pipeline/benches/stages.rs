//! The compress stages alone, on one layer of a checkpoint: prune (reading the weights as
//! they are scanned), share (k-means and codes) and pack (the per-PE streams), in memory,
//! without hashing the input or writing anything: what `bench/compress/run.py` sets beside
//! the Python pipeline's same stages (its `baseline.py`). Best of N runs.
//!
//!     cargo bench -p eie-pipeline --bench stages -- FILE DENSITY [PES] [RUNS]
//!
//! Prints one JSON line: the layer, and per stage the best time in seconds.

use std::time::Duration;

use eie_checkpoint::Checkpoint;
use eie_pipeline::settings::LAYER_KNOBS;
use eie_pipeline::{Assignments, Plan, Request, Timings, compress_one};

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let [file, density, rest @ ..] = args.as_slice() else {
        eprintln!("usage: stages FILE DENSITY [PES] [RUNS]");
        std::process::exit(2);
    };
    let pes: usize = rest.first().map_or(64, |p| p.parse().expect("PES"));
    let runs: usize = rest.get(1).map_or(5, |r| r.parse().expect("RUNS"));
    let ck = Checkpoint::open(file).expect("a checkpoint");
    let mut cli = Assignments::new();
    cli.set_text(LAYER_KNOBS, "density", density)
        .expect("a density");
    let plan = Plan::resolve(
        ck.header(),
        &Request {
            patterns: &[],
            cli: &cli,
            recipe: None,
            fold_bias: false,
        },
    )
    .expect("a plan");
    let layer = &plan.layers[0];
    let mut best: Option<Timings> = None;
    let total = |t: &Timings| t.prune + t.cluster + t.assign + t.encode;
    let mut entries = 0;
    for _ in 0..runs {
        let mut t = Timings::default();
        let (packed, _) = compress_one(&ck, layer, pes, &mut t).expect("compressed");
        entries = packed.entries();
        if best.as_ref().is_none_or(|b| total(&t) < total(b)) {
            best = Some(t);
        }
    }
    let b = best.expect("at least one run");
    let s = |d: Duration| d.as_secs_f64();
    println!(
        "{{\"layer\": \"{}\", \"entries\": {entries}, \"prune\": {:.6}, \"cluster\": {:.6}, \"assign\": {:.6}, \"encode\": {:.6}, \"total\": {:.6}}}",
        layer.name,
        s(b.prune),
        s(b.cluster),
        s(b.assign),
        s(b.encode),
        s(total(&b))
    );
}
