//! `--timing-rules authors` against the authors' simulator (RalphMao/EIE-simulator) itself.
//!
//! `recorded_cycles` runs everywhere: 60 random layers (`case`), whose cycle counts their
//! simulator gave are recorded in `tests/authors/cycles.json`, must take as many cycles under
//! these rules. With `EIE_AUTHORS_SIMULATOR` naming a checkout of their repository (`git
//! clone https://github.com/RalphMao/EIE-simulator`), `their_simulator` builds theirs for
//! every case and for their shipped AlexNet fc8 at every queue depth from 2 to 32, runs it,
//! and compares; `EIE_AUTHORS_RECORD=1` then writes `cycles.json` from its runs (this test
//! is the script that made that fixture).

use std::path::{Path, PathBuf};
use std::time::Duration;

use eie_format::{CodeMatrix, Codebook, PackedLayer};
use eie_simulate::authors::files::AuthorsData;
use eie_simulate::authors::simulator::Built;
use eie_simulate::{LayerView, Rules, TimingParams, timing};

/// Random layers in the fixture.
const CASES: u64 = 60;
/// fc8's outputs (their files do not record them).
const FC8_ROWS: usize = 1000;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/authors/cycles.json")
}

/// Random case `seed`: a layer (1-64 PEs, 1-80 rows and inputs, 5-100% density, with or
/// without a bias, 2- to 4-bit relative indices so that some columns pad), an input (10-100%
/// non-zero, the rest positive: their detector takes a value for non-zero when it is above
/// 0), and a queue depth (2-16, or 32).
fn case(seed: u64) -> (PackedLayer, Vec<f32>, usize) {
    let mut rng = eie_rng::Rng::new(0xa07_0000 + seed);
    let pes = 1 + rng.below(64) as usize;
    let rows = 1 + rng.below(80) as usize;
    let inputs = 1 + rng.below(80) as usize;
    let bias = rng.below(2) == 1;
    let density = 0.05 + 0.95 * rng.uniform();
    let active = 0.1 + 0.9 * rng.uniform();
    let depth = if rng.below(8) == 0 {
        32
    } else {
        2 + rng.below(15) as usize
    };
    let index_bits = 2 + rng.below(3) as u8;
    let cols = inputs + usize::from(bias);
    let codes = (0..rows * cols)
        .map(|_| {
            if rng.uniform() < density {
                1 + rng.below(15) as u8
            } else {
                0
            }
        })
        .collect();
    let book: Vec<f32> = (1..16).map(|c| c as f32 * 0.125 - 1.0625).collect();
    let m = CodeMatrix::new(rows, cols, codes).unwrap();
    let layer =
        PackedLayer::encode("fc", &m, Codebook::new(4, &book).unwrap(), pes, index_bits).unwrap();
    let layer = if bias {
        layer.with_bias("fc.bias").unwrap()
    } else {
        layer
    };
    let x = (0..inputs)
        .map(|_| {
            if rng.uniform() < active {
                0.25 + rng.uniform() as f32
            } else {
                0.0
            }
        })
        .collect();
    (layer, x, depth)
}

/// The hand-made cases of `src/tests.rs`: 4 PEs, a 4 x 64 layer of ones and a bias column
/// of ones, with every input non-zero (queue 8 and 2), only slot 3 of each group of 4, only
/// slot 0; and 2 PEs, a 2 x 4 layer (PE 0's row has columns 0, 1, 3, PE 1's columns 1, 2),
/// inputs 1, 1, 0, 1, queue 2.
fn named() -> Vec<(&'static str, PackedLayer, Vec<f32>, usize)> {
    let book = || Codebook::new(4, &[1.0]).unwrap();
    let ones = PackedLayer::encode(
        "fc",
        &CodeMatrix::new(4, 65, vec![1; 4 * 65]).unwrap(),
        book(),
        4,
        4,
    )
    .unwrap()
    .with_bias("fc.bias")
    .unwrap();
    let input = |f: &dyn Fn(usize) -> bool| {
        (0..64)
            .map(|j| if f(j) { 1.0 } else { 0.0 })
            .collect::<Vec<f32>>()
    };
    let traced = PackedLayer::encode(
        "t",
        &CodeMatrix::new(2, 4, vec![1, 1, 0, 1, 0, 1, 1, 0]).unwrap(),
        book(),
        2,
        4,
    )
    .unwrap();
    vec![
        (
            "ones, every input, queue 8",
            ones.clone(),
            input(&|_| true),
            8,
        ),
        (
            "ones, slot 3, queue 8",
            ones.clone(),
            input(&|j| j % 4 == 3),
            8,
        ),
        (
            "ones, slot 0, queue 8",
            ones.clone(),
            input(&|j| j % 4 == 0),
            8,
        ),
        ("ones, every input, queue 2", ones, input(&|_| true), 2),
        ("traced, queue 2", traced, vec![1.0, 1.0, 0.0, 1.0], 2),
    ]
}

/// Our cycles under the authors' rules for a layer, its input and a queue depth.
fn ours(layer: &PackedLayer, x: &[f32], depth: usize) -> (u64, u64) {
    let mut active: Vec<bool> = x.iter().map(|&v| v > 0.0).collect();
    if layer.bias().is_some() {
        active.push(true);
    }
    let p = TimingParams {
        fifo_depth: depth,
        rules: Rules::Authors,
        ..Default::default()
    };
    let t = timing::layer(LayerView::new(std::slice::from_ref(layer)), &active, &p).unwrap();
    (t.cycles, t.unfinished)
}

fn recorded() -> serde_json::Value {
    let text = std::fs::read_to_string(fixture()).expect("tests/authors/cycles.json");
    serde_json::from_str(&text).expect("cycles.json is JSON")
}

#[test]
fn recorded_cycles() {
    let rec = recorded();
    let hand = rec["named"].as_object().unwrap();
    for (name, layer, x, depth) in named() {
        assert_eq!(
            ours(&layer, &x, depth).0,
            hand[name].as_u64().unwrap(),
            "{name}"
        );
    }
    let random = rec["random"].as_array().unwrap();
    assert_eq!(random.len() as u64, CASES);
    for r in random {
        let seed = r["seed"].as_u64().unwrap();
        let (layer, x, depth) = case(seed);
        assert_eq!(r["depth"].as_u64().unwrap() as usize, depth, "case {seed}");
        let (cycles, _) = ours(&layer, &x, depth);
        assert_eq!(
            cycles,
            r["cycles"].as_u64().unwrap(),
            "case {seed}: {} PEs, {} x {}, queue {depth}",
            layer.pes(),
            layer.rows(),
            layer.cols()
        );
    }
}

/// Their shipped fc8 at every recorded depth, when `EIE_AUTHORS_SIMULATOR` names a checkout
/// with their data: no build needed.
#[test]
fn recorded_fc8_cycles() {
    let Some(checkout) = std::env::var_os("EIE_AUTHORS_SIMULATOR").map(PathBuf::from) else {
        eprintln!(
            "skipped: set EIE_AUTHORS_SIMULATOR to a checkout of RalphMao/EIE-simulator (its data/ holds fc8)"
        );
        return;
    };
    let Some((layer, x)) = fc8(&checkout) else {
        return;
    };
    let rec = recorded();
    let depths = rec["fc8"].as_object().unwrap();
    assert_eq!(depths.len(), 31, "depths 2 to 32");
    for (depth, cycles) in depths {
        let depth: usize = depth.parse().unwrap();
        assert_eq!(
            ours(&layer, &x, depth).0,
            cycles.as_u64().unwrap(),
            "fc8, queue {depth}"
        );
    }
}

fn fc8(checkout: &Path) -> Option<(PackedLayer, Vec<f32>)> {
    if !checkout.join("data/act.dat").is_file() {
        eprintln!(
            "skipped fc8: {} has no data/ (their data came in 40cd9e7)",
            checkout.display()
        );
        return None;
    }
    let data = AuthorsData::read(checkout, true).unwrap();
    Some(data.to_layer("fc8", "fc8.bias", FC8_ROWS).unwrap())
}

#[test]
fn their_simulator() {
    let Some(checkout) = std::env::var_os("EIE_AUTHORS_SIMULATOR").map(PathBuf::from) else {
        eprintln!(
            "skipped: set EIE_AUTHORS_SIMULATOR to a checkout of RalphMao/EIE-simulator to run their simulator against these rules"
        );
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    // EIE_AUTHORS_KEEP=1 keeps their builds, to look into one.
    let (work, _tmp) = match std::env::var_os("EIE_AUTHORS_KEEP") {
        Some(_) => (tmp.keep(), None),
        None => (tmp.path().to_path_buf(), Some(tmp)),
    };
    eprintln!("their builds in {}", work.display());
    let theirs = |name: String, layer: &PackedLayer, x: &[f32], depth: usize| -> u64 {
        let data = AuthorsData::from_layer(layer, x).unwrap();
        let built = Built::new(&checkout, &work.join(name), &data, layer.rows(), depth).unwrap();
        built.run(Duration::from_secs(60)).unwrap().cycles
    };
    let mut mismatches = Vec::new();
    let mut fc8_cycles = serde_json::Map::new();
    if let Some((layer, x)) = fc8(&checkout) {
        for depth in 2..=32 {
            let t = theirs(format!("fc8-{depth}"), &layer, &x, depth);
            let (o, unfinished) = ours(&layer, &x, depth);
            eprintln!("fc8, queue {depth}: theirs {t}, ours {o} ({unfinished} unfinished)");
            if t != o {
                mismatches.push(format!("fc8 queue {depth}: theirs {t}, ours {o}"));
            }
            fc8_cycles.insert(depth.to_string(), t.into());
        }
    }
    let mut random = Vec::new();
    for seed in 0..CASES {
        let (layer, x, depth) = case(seed);
        let t = theirs(format!("case-{seed}"), &layer, &x, depth);
        let (o, unfinished) = ours(&layer, &x, depth);
        eprintln!(
            "case {seed} ({} PEs, {} x {}, bias {}, queue {depth}): theirs {t}, ours {o} ({unfinished} unfinished)",
            layer.pes(),
            layer.rows(),
            layer.cols(),
            layer.bias().is_some()
        );
        if t != o {
            mismatches.push(format!("case {seed}: theirs {t}, ours {o}"));
        }
        random.push(serde_json::json!({"seed": seed, "depth": depth, "cycles": t}));
    }
    let mut hand = serde_json::Map::new();
    for (name, layer, x, depth) in named() {
        let t = theirs(name.replace([' ', ','], "-"), &layer, &x, depth);
        let (o, unfinished) = ours(&layer, &x, depth);
        eprintln!("{name}: theirs {t}, ours {o} ({unfinished} unfinished)");
        if t != o {
            mismatches.push(format!("{name}: theirs {t}, ours {o}"));
        }
        hand.insert(name.into(), t.into());
    }
    if std::env::var_os("EIE_AUTHORS_RECORD").is_some() {
        let doc = serde_json::json!({
            "made_by": "EIE_AUTHORS_SIMULATOR=CHECKOUT EIE_AUTHORS_RECORD=1 cargo test --release -p eie-simulate --test authors their_simulator",
            "their_revision": std::env::var("EIE_AUTHORS_REVISION").unwrap_or_default(),
            "fc8": fc8_cycles,
            "random": random,
            "named": hand,
        });
        std::fs::write(
            fixture(),
            serde_json::to_string_pretty(&doc).unwrap() + "\n",
        )
        .unwrap();
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}
