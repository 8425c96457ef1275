//! One test per fixed bug, named after it.

use crate::util::TestDir;

/// An unclosed `[` in a --layers pattern used to be neither a class nor a literal, so a
/// tensor literally named with `[` could not be selected.
#[test]
fn unclosed_bracket_in_a_pattern_matches_itself() {
    let t = TestDir::new();
    let model = t.checkpoint(
        "m.safetensors",
        &[("w[.weight", vec![2, 2], vec![0.5, 0.0, 0.0, 0.5])],
    );
    t.run(&[
        "pack",
        model.to_str().unwrap(),
        "-o",
        "out",
        "--layers",
        "w[.weight",
    ])
    .ok();
}

use eie_checkpoint::{Checkpoint, Dtype};

use crate::util::{fixture, json};

/// Review A2: with --column-batch the report counted the bytes of the unsplit layer, not of
/// the parts written (each has its own pointer array).
#[test]
fn report_bytes_with_column_batches_are_those_written() {
    let t = TestDir::new();
    let m = fixture("mlp-gaussian.safetensors");
    let report = json(
        t.run(&[
            "compress",
            m.to_str().unwrap(),
            "-o",
            "out",
            "--density",
            "0.09",
            "--pes",
            "4",
            "--layers",
            "fc*.weight",
            "--column-batch",
            "64",
            "--json",
        ])
        .ok(),
    );
    let inspect = json(t.run(&["inspect", "out", "--json"]).ok());
    for l in report["layers"].as_array().unwrap() {
        let parts: Vec<&serde_json::Value> = inspect["layers"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["name"] == l["name"])
            .collect();
        let spmat: u64 = parts
            .iter()
            .map(|p| p["bytes"]["spmat"].as_u64().unwrap())
            .sum();
        let pointers: u64 = parts
            .iter()
            .map(|p| p["bytes"]["pointers"].as_u64().unwrap())
            .sum();
        assert_eq!(
            (
                l["bytes"]["spmat"].as_u64().unwrap(),
                l["bytes"]["pointers"].as_u64().unwrap()
            ),
            (spmat, pointers),
            "{}",
            l["name"]
        );
    }
    assert!(
        inspect["layers"].as_array().unwrap().len() > 3,
        "fc1 (129 columns) is split"
    );
}

/// Review A3: `pack --force` into a folder `compress` wrote left that run's report and
/// checkpoints beside the new model.eie.
#[test]
fn force_leaves_no_file_of_an_earlier_run() {
    let t = TestDir::new();
    let m = fixture("tiny-mlp.safetensors");
    t.run(&[
        "compress",
        m.to_str().unwrap(),
        "-o",
        "out",
        "--density",
        "0.5",
    ])
    .ok();
    assert!(t.exists("out/report.json"));
    t.run(&["pack", m.to_str().unwrap(), "-o", "out", "--force"])
        .ok();
    for stale in ["report.json", "pruned.safetensors", "quantized.safetensors"] {
        assert!(!t.exists(&format!("out/{stale}")), "{stale} survived");
    }
    t.run(&["verify", "out"]).ok();
}

/// Review A6: an F32 weight with a BF16 bias: the quantized checkpoint's bias held values
/// the images did not.
#[test]
fn a_bias_of_another_dtype_holds_the_images_values() {
    let t = TestDir::new();
    let w: Vec<f32> = (0..64).map(|i| (i as f32 - 31.5) / 17.0).collect();
    let b: Vec<u8> = (0..8)
        .flat_map(|i| half::bf16::from_f32(0.3 + i as f32 / 7.0).to_le_bytes())
        .collect();
    let specs = vec![
        ("fc.weight".to_string(), Dtype::F32, vec![8, 8]),
        ("fc.bias".to_string(), Dtype::BF16, vec![8]),
    ];
    t.checkpoint_raw("m.safetensors", &specs, &[eie_checkpoint::f32_bytes(&w), b]);
    t.run(&[
        "compress",
        "m.safetensors",
        "-o",
        "out",
        "--pes",
        "2",
        "--code-bits",
        "3",
        "--dense-checkpoints",
    ])
    .ok();
    t.run(&["unpack", "out", "-o", "d.safetensors"]).ok();
    let q = Checkpoint::open(t.path("out/quantized.safetensors")).unwrap();
    let d = Checkpoint::open(t.path("d.safetensors")).unwrap();
    assert_eq!(
        q.read_f32("fc.bias").unwrap(),
        d.read_f32("fc.bias").unwrap()
    );
    assert_eq!(
        q.read_f32("fc.weight").unwrap(),
        d.read_f32("fc.weight").unwrap()
    );
}

/// Review A12: a shared value that is exactly zero made pruned weights stored entries.
#[test]
fn a_zero_centroid_prunes_its_weights_instead_of_storing_them() {
    let t = TestDir::new();
    // 16 distinct values for 15 codes: the optimal codebook merges -0.01 and 0.01 (mean 0).
    let mut w: Vec<f32> = vec![-0.01, 0.01];
    w.extend((1..=14).map(|v| v as f32));
    t.checkpoint("m.safetensors", &[("fc.weight", vec![4, 4], w)]);
    let r = json(
        t.run(&[
            "compress",
            "m.safetensors",
            "-o",
            "out",
            "--pes",
            "1",
            "--codebook",
            "optimal",
            "--json",
            "--dense-checkpoints",
        ])
        .ok(),
    );
    let l = &r["layers"][0];
    let centroids: Vec<f64> = l["quantization"]["centroids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert!(!centroids.contains(&0.0), "{centroids:?}");
    assert_eq!(l["nonzeros"], 14);
    let q = Checkpoint::open(t.path("out/quantized.safetensors"))
        .unwrap()
        .read_f32("fc.weight")
        .unwrap();
    assert_eq!(&q[..2], &[0.0, 0.0]);
    t.run(&["verify", "out"]).ok();
}

/// Issue 8 review: an error that shows its source and also exposes it printed the cause
/// twice ("No such file or directory (os error 2): No such file or directory (os error 2)").
#[test]
fn an_errors_cause_is_printed_once() {
    let t = TestDir::new();
    for args in [
        &["compress", "nope.safetensors", "-o", "out"][..],
        &["simulate", "nope"],
        &["inspect", "nope"],
    ] {
        let line = t.run(args).fails_with(&["nope"]).to_string();
        assert_eq!(line.matches("No such file").count(), 1, "{line}");
    }
}

/// Issue 8 review: streaming layer by layer, a run stopped at the first layer that overflowed
/// its SRAMs; every layer's overflow is listed, and nothing is written.
#[test]
fn every_layers_sram_overflow_is_listed() {
    let t = TestDir::new();
    let w: Vec<f32> = (0..64 * 512).map(|i| [0.5, -0.5, 0.25][i % 3]).collect();
    let two = t.checkpoint(
        "two.safetensors",
        &[
            ("a.weight", vec![64, 512], w.clone()),
            ("b.weight", vec![64, 512], w),
        ],
    );
    let m = two.to_str().unwrap();
    t.run(&["pack", m, "-o", "out", "--pes", "2", "--spmat-kib", "8"])
        .fails_with(&["\"a.weight\"", "\"b.weight\""]);
    assert!(!t.exists("out"));
}

/// Issue 8 review: an input of no vector made `vectors` index the first one (a panic) and
/// `simulate` report a run of none.
#[test]
fn an_input_of_no_vector_is_an_error() {
    let t = TestDir::new();
    let tiny = fixture("tiny-mlp.safetensors");
    t.run(&[
        "compress",
        tiny.to_str().unwrap(),
        "-o",
        "m",
        "--density",
        "0.3",
    ])
    .ok();
    t.checkpoint("empty.safetensors", &[("x", vec![0, 64], Vec::new())]);
    t.run(&["simulate", "m", "--input", "empty.safetensors"])
        .fails_with(&["empty.safetensors", "holds no input vector"]);
    t.run(&["vectors", "m", "-o", "v", "--input", "empty.safetensors"])
        .fails_with(&["empty.safetensors", "holds no input vector"]);
    assert!(!t.exists("v"));
}

/// Issue 9 review: a device or FIFO given as an input was read until memory ran out (or
/// blocked forever): a recipe, an energy table, an index, an IDX file, a model.eie, a
/// manifest. Each is refused as "not a regular file" before it is opened.
#[test]
fn special_files_are_refused_not_read() {
    use std::os::unix::fs::symlink;
    let t = TestDir::new();
    let tiny = crate::util::fixture("tiny-mlp.safetensors");
    let m = tiny.to_str().unwrap();
    t.run(&["compress", m, "-o", "good", "--density", "0.3"])
        .ok();
    symlink("/dev/zero", t.path("zero.toml")).unwrap();
    symlink("/dev/zero", t.path("z.safetensors.index.json")).unwrap();
    symlink("/dev/zero", t.path("z.idx")).unwrap();
    std::fs::create_dir(t.path("m")).unwrap();
    symlink("/dev/zero", t.path("m/model.eie")).unwrap();
    let cases: [&[&str]; 5] = [
        &["compress", m, "-o", "o1", "--recipe", "zero.toml"],
        &["simulate", "good", "--energy-table", "zero.toml"],
        &["compress", "z.safetensors.index.json", "-o", "o2"],
        &["simulate", "good", "--dataset", "idx:z.idx,z.idx"],
        &["simulate", "m"],
    ];
    for args in cases {
        t.run(args).fails_with(&["not a regular file"]);
    }
    // A manifest that is a device.
    std::fs::remove_file(t.path("good/manifest.json")).unwrap();
    symlink("/dev/zero", t.path("good/manifest.json")).unwrap();
    t.run(&["verify", "good"])
        .fails_with(&["manifest.json", "not a regular file"]);
}
