//! The simulators against the authors' (RalphMao/EIE-simulator), whole process against whole
//! process on identical images and inputs, and our throughput (docs/performance.md
//! "Simulation").
//!
//! ```sh
//! cargo build --release
//! git clone https://github.com/RalphMao/EIE-simulator /tmp/eie-simulator
//! EIE_AUTHORS_SIMULATOR=/tmp/eie-simulator cargo bench -p eie-simulate --bench simulate -- --runs 10
//! ```
//!
//! The cases: their shipped AlexNet fc8 (its `data/`), and the EIE paper's nine layers
//! (`bench-paper`'s, seed 1, whole: no column batches, their simulator has none), with their
//! inputs' magnitudes (their detector skips values below 0). Each is written as a `model.eie`
//! and a safetensors input for `eie-compress simulate`, and as their files for their
//! simulator, built once per case with their Makefile (`make DEBUG=0 link`: -O3). A run is a
//! fresh process on each side: `eie-compress -q simulate model.eie --input x.safetensors
//! --fifo 8` (default rules, and `--timing-rules authors`) against `build/simulation`, in
//! turn, `--runs` times; the medians are printed with their ratio. Without
//! `EIE_AUTHORS_SIMULATOR` (or without `make` and a C++ compiler) their side is skipped,
//! saying so, and ours is still timed.
//!
//! Beside each case's whole processes: `eie-compress --version` (any process's start), and
//! in this process the load of `model.eie` and the models as `simulate` runs them.
//!
//! Then one token of two decoders: the shape `train` makes (4 blocks, width 128, MLP 384),
//! and a 1 B-weight one (TinyLlama's shapes: hidden 2048, 22 blocks of q, k, v, o, gate, up,
//! down with 4 key/value heads of 64, MLP 5632, a 32000-token head: 1.03 B weights in 155
//! linear layers). Both are generated at 10% density with 4-bit codes and indices and packed
//! for 64 PEs. Every layer runs through the functional and the timing model on a dense random
//! input (attention, norms and the rest are the host's), in this process, best of `--runs`
//! tokens (of 3 at most for the large one). `--skip-authors` or `--skip-decoder` leaves a
//! part out; `--keep DIR` keeps the cases' files there.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use eie_format::{Bundle, BundleMeta, PackedLayer, SourceInfo};
use eie_simulate::authors::files::AuthorsData;
use eie_simulate::authors::simulator::Built;
use eie_simulate::workload::{
    GENERATED_FRAC, PAPER_INDEX_BITS, PAPER_LAYERS, dequantize_generated, paper_layer,
    random_activations, random_layer,
};
use eie_simulate::{Arith, LayerView, TimingParams};

const PES: usize = 64;
const DEPTH: usize = 8;
const FC8_ROWS: usize = 1000;

struct Case {
    name: String,
    layer: PackedLayer,
    input: Vec<f32>,
}

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// A safetensors file of one F32 tensor `x` of shape `[len]`.
fn write_input(path: &Path, x: &[f32]) {
    let header = format!(
        "{{\"x\":{{\"dtype\":\"F32\",\"shape\":[{}],\"data_offsets\":[0,{}]}}}}",
        x.len(),
        4 * x.len()
    );
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend(x.iter().flat_map(|v| v.to_le_bytes()));
    std::fs::write(path, bytes).unwrap();
}

fn write_model(path: &Path, layer: &PackedLayer) {
    let meta = BundleMeta {
        tool_version: env!("CARGO_PKG_VERSION").into(),
        source: SourceInfo {
            name: "bench".into(),
            sha256: None,
        },
        pointer_bits: 32,
        settings: Default::default(),
    };
    let bundle = Bundle::new(meta, vec![layer.clone()]).unwrap();
    std::fs::write(path, bundle.to_bytes().unwrap()).unwrap();
}

fn cases(checkout: Option<&Path>) -> Vec<Case> {
    let mut out = Vec::new();
    match checkout.map(|c| (c, c.join("data/act.dat"))) {
        Some((c, act)) if act.is_file() => {
            let data = AuthorsData::read(c, true).unwrap();
            let (layer, input) = data.to_layer("fc8", "fc8.bias", FC8_ROWS).unwrap();
            out.push(Case {
                name: "fc8 (theirs)".into(),
                layer,
                input,
            });
        }
        _ => eprintln!("fc8: skipped (their checkout, with its data/, is needed)"),
    }
    for (i, spec) in PAPER_LAYERS.iter().enumerate() {
        let (codes, book, input) = paper_layer(i, 1);
        let layer =
            PackedLayer::encode_sparse(spec.name, &codes, book, PES, PAPER_INDEX_BITS).unwrap();
        let input = dequantize_generated(&input)
            .iter()
            .map(|v| v.abs())
            .collect();
        out.push(Case {
            name: spec.name.into(),
            layer,
            input,
        });
    }
    out
}

/// Wall time of one run of `cmd`, which must succeed.
fn time(cmd: &mut Command) -> f64 {
    let start = Instant::now();
    let status = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    let t = start.elapsed().as_secs_f64();
    assert!(status.success(), "{cmd:?} failed");
    t
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// In this process, the medians of `runs`: reading and validating `model.eie` (the file,
/// its hash, every stream), and the models as `simulate` runs them (calibration by the
/// float model, then the functional and timing models in one walk).
fn in_process(dir: &Path, x: &[f32], runs: usize) -> (f64, f64) {
    let (mut load, mut models) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let t = Instant::now();
        let bundle = Bundle::from_bytes(&std::fs::read(dir.join("model.eie")).unwrap()).unwrap();
        load.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        let views = LayerView::all(&bundle);
        let fracs = eie_simulate::run::fractions(&views, &[x.to_vec()], &[], false).unwrap();
        let arith = Arith::default();
        let params = TimingParams {
            fifo_depth: DEPTH,
            ..Default::default()
        };
        eie_simulate::run::run_chain(&views, x, &fracs, arith, &params).unwrap();
        models.push(t.elapsed().as_secs_f64());
    }
    (median(load), median(models))
}

/// Our cycles and walked entries, from `simulate --json`.
fn ours_json(bin: &Path, dir: &Path, authors: bool) -> (u64, u64) {
    let mut cmd = ours(bin, dir, authors);
    let out = cmd.arg("--json").stderr(Stdio::inherit()).output().unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let layer = &v["vectors"][0]["layers"][0];
    let entries = layer["pe"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["entries"].as_u64().unwrap())
        .sum();
    (layer["cycles"].as_u64().unwrap(), entries)
}

fn ours(bin: &Path, dir: &Path, authors: bool) -> Command {
    let mut cmd = Command::new(bin);
    cmd.args(["-q", "simulate"])
        .arg(dir.join("model.eie"))
        .arg("--input")
        .arg(dir.join("x.safetensors"))
        .args(["--fifo", &DEPTH.to_string()]);
    if authors {
        cmd.args(["--timing-rules", "authors"]);
    }
    cmd
}

/// A Llama decoder's linear layers, (name, rows, inputs): `blocks` blocks of q, k, v, o,
/// gate, up and down, and the head when `vocab` is given.
fn decoder_layers(
    blocks: usize,
    hidden: usize,
    kv: usize,
    mlp: usize,
    vocab: Option<usize>,
) -> Vec<(String, usize, usize)> {
    let mut out = Vec::new();
    for b in 0..blocks {
        for (name, rows, inputs) in [
            ("q_proj", hidden, hidden),
            ("k_proj", kv, hidden),
            ("v_proj", kv, hidden),
            ("o_proj", hidden, hidden),
            ("gate_proj", mlp, hidden),
            ("up_proj", mlp, hidden),
            ("down_proj", hidden, mlp),
        ] {
            out.push((format!("layers.{b}.{name}"), rows, inputs));
        }
    }
    if let Some(vocab) = vocab {
        out.push(("lm_head".into(), vocab, hidden));
    }
    out
}

/// One token through every layer of `shapes`, generated at 10%: the best of `runs`.
fn token(label: &str, shapes: &[(String, usize, usize)], runs: usize) {
    let start = Instant::now();
    let weights: usize = shapes.iter().map(|(_, r, c)| r * c).sum();
    let layers: Vec<PackedLayer> = shapes
        .iter()
        .enumerate()
        .map(|(i, (name, rows, inputs))| {
            let (codes, book) = random_layer(*rows, *inputs, 0.1, 4, 7000 + i as u64);
            PackedLayer::encode_sparse(name.as_str(), &codes, book, PES, 4).unwrap()
        })
        .collect();
    let entries: usize = layers.iter().map(PackedLayer::entries).sum();
    let inputs: Vec<Vec<i16>> = layers
        .iter()
        .enumerate()
        .map(|(i, l)| random_activations(l.cols(), 1.0, 9000 + i as u64))
        .collect();
    println!(
        "\n{label}: {:.4} B weights, {} layers, {entries} entries at 10% on {PES} PEs (generated and packed in {:.1} s)",
        weights as f64 / 1e9,
        layers.len(),
        start.elapsed().as_secs_f64()
    );
    let params = TimingParams::default();
    let mut best = f64::INFINITY;
    let mut cycles = 0u64;
    for _ in 0..runs {
        let t = Instant::now();
        cycles = 0;
        for (l, x) in layers.iter().zip(&inputs) {
            let view = LayerView::new(std::slice::from_ref(l));
            let s = eie_simulate::run::step(
                view,
                x,
                GENERATED_FRAC,
                8,
                Arith::default(),
                false,
                &params,
            )
            .unwrap();
            cycles += s.timing.cycles;
        }
        best = best.min(t.elapsed().as_secs_f64());
    }
    println!(
        "one token (functional and timing model, every layer): {best:.4} s ({:.1} tokens/s), {:.1} M entries/s; {cycles} cycles ({:.1} us at 800 MHz)",
        1.0 / best,
        entries as f64 / best / 1e6,
        cycles as f64 / 800.0
    );
}

fn main() {
    let runs: usize = arg("--runs").map_or(10, |r| r.parse().expect("--runs N"));
    let flag = |f: &str| std::env::args().any(|a| a == f);
    if !flag("--skip-authors") {
        authors(runs);
    }
    if !flag("--skip-decoder") {
        // The decoder `train` makes (its default shape: 4 blocks, width 128, 4 heads, MLP
        // 384; its head is tied to the embedding, which stays on the host).
        token(
            "the decoder `train` makes",
            &decoder_layers(4, 128, 128, 384, None),
            runs.max(1),
        );
        // TinyLlama's shapes: 1.03 B weights.
        token(
            "a 1 B-weight decoder",
            &decoder_layers(22, 2048, 256, 5632, Some(32000)),
            runs.clamp(1, 3),
        );
    }
}

fn authors(runs: usize) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let bin = std::env::var_os("EIE_COMPRESS_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target/release/eie-compress"));
    assert!(
        bin.is_file(),
        "{} is missing: cargo build --release first",
        bin.display()
    );
    let checkout = std::env::var_os("EIE_AUTHORS_SIMULATOR").map(PathBuf::from);
    if checkout.is_none() {
        eprintln!(
            "their simulator: skipped (set EIE_AUTHORS_SIMULATOR to a checkout of RalphMao/EIE-simulator)"
        );
    }
    // --keep DIR: the cases' files stay in DIR, a new folder, to profile one.
    let tmp = tempfile::tempdir().unwrap();
    let work = arg("--keep").map_or_else(|| tmp.path().to_path_buf(), PathBuf::from);
    if work != tmp.path() {
        std::fs::create_dir(&work)
            .unwrap_or_else(|e| panic!("--keep {}: a new folder is needed: {e}", work.display()));
    }
    // The floor of any process of ours: starting the binary.
    let start = median(
        (0..runs)
            .map(|_| time(Command::new(&bin).arg("--version")))
            .collect(),
    );
    println!("eie-compress --version (a process's start): {start:.4} s");
    println!(
        "case | entries walked | cycles ours / authors' rules / theirs | ours s | authors' rules s | theirs s | theirs / ours | theirs / authors' rules | in ours: load s, models s | entries/s (ours)"
    );
    for (i, case) in cases(checkout.as_deref()).iter().enumerate() {
        let dir = work.join(format!("case{i}"));
        std::fs::create_dir(&dir).unwrap();
        write_model(&dir.join("model.eie"), &case.layer);
        write_input(&dir.join("x.safetensors"), &case.input);
        let theirs = checkout.as_deref().and_then(|c| {
            let data = AuthorsData::from_layer(&case.layer, &case.input).unwrap();
            Built::new(c, &dir.join("theirs"), &data, case.layer.rows(), DEPTH)
                .map_err(|e| eprintln!("{}: their simulator skipped: {e}", case.name))
                .ok()
        });
        let (cycles, entries) = ours_json(&bin, &dir, false);
        let (authors_cycles, _) = ours_json(&bin, &dir, true);
        let their_cycles = theirs
            .as_ref()
            .map(|b| b.run(Duration::from_secs(600)).unwrap().cycles);
        let (mut t_ours, mut t_authors, mut t_theirs) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..runs {
            if let Some(b) = &theirs {
                t_theirs.push(b.run(Duration::from_secs(600)).unwrap().seconds);
            }
            t_ours.push(time(&mut ours(&bin, &dir, false)));
            t_authors.push(time(&mut ours(&bin, &dir, true)));
        }
        let (o, a) = (median(t_ours), median(t_authors));
        let (load, models) = in_process(&dir, &case.input, runs);
        let show = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.4}"));
        let theirs_s = (!t_theirs.is_empty()).then(|| median(t_theirs));
        println!(
            "{} | {entries} | {cycles} / {authors_cycles} / {} | {o:.4} | {a:.4} | {} | {} | {} | {load:.4}, {models:.4} | {:.1} M",
            case.name,
            their_cycles.map_or("-".into(), |c| c.to_string()),
            show(theirs_s),
            theirs_s.map_or("-".into(), |t| format!("{:.1}x", t / o)),
            theirs_s.map_or("-".into(), |t| format!("{:.1}x", t / a)),
            entries as f64 / o / 1e6,
        );
        if let Some(t) = their_cycles {
            assert_eq!(
                t, authors_cycles,
                "{}: the authors' rules differ from their simulator",
                case.name
            );
        }
    }
}
