//! `train`, `eval`, `compress --dataset/--retrain`, `simulate --dataset` and `demo` end to
//! end, on the built-in synthetic dataset (and on MNIST when ../shared/data/mnist is there).

use std::path::{Path, PathBuf};

use eie_checkpoint::Checkpoint;
use serde_json::Value;

use crate::util::{TestDir, fixture, json, python_with_safetensors};

/// Trains a small MLP on synthetic samples 0..2000 into `rel`.
fn small_model(t: &TestDir, rel: &str) -> String {
    t.run(&[
        "train",
        "--dataset",
        "synthetic",
        "--range",
        "0..2000",
        "--arch",
        "64-32-10",
        "--epochs",
        "8",
        "--seed",
        "3",
        "-o",
        rel,
    ])
    .ok();
    rel.to_string()
}

fn stage_names(stages: &Value) -> Vec<String> {
    stages
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["stage"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn training_is_reproducible_and_writes_pytorch_layout() {
    let t = TestDir::new();
    small_model(&t, "a.safetensors");
    small_model(&t, "b.safetensors");
    let (a, b) = (
        std::fs::read(t.path("a.safetensors")).unwrap(),
        std::fs::read(t.path("b.safetensors")).unwrap(),
    );
    assert_eq!(a, b, "the same command wrote different bytes");
    let ck = Checkpoint::open(t.path("a.safetensors")).unwrap();
    let shapes: Vec<(String, Vec<usize>)> = ck
        .tensors()
        .into_iter()
        .map(|i| (i.name, i.shape))
        .collect();
    assert_eq!(
        shapes,
        [
            ("fc1.weight".to_string(), vec![32, 64]),
            ("fc1.bias".to_string(), vec![32]),
            ("fc2.weight".to_string(), vec![10, 32]),
            ("fc2.bias".to_string(), vec![10]),
        ]
    );
    let meta = ck.metadata();
    assert_eq!(meta["eie.arch"], "64-32-10");
    assert_eq!(meta["eie.dataset"], "synthetic:0");
    assert_eq!(meta["eie.range"], "0..2000");
    assert_eq!(meta["eie.scale"], "unit");
    assert_eq!(meta["format"], "pt");
    // A different seed, a different model.
    t.run(&[
        "train",
        "--dataset",
        "synthetic",
        "--range",
        "0..2000",
        "--arch",
        "64-32-10",
        "--epochs",
        "8",
        "--seed",
        "4",
        "-o",
        "c.safetensors",
    ])
    .ok();
    assert_ne!(std::fs::read(t.path("c.safetensors")).unwrap(), a);
    // An existing output needs --force, and is left alone without it.
    t.run(&[
        "train",
        "--dataset",
        "synthetic",
        "--arch",
        "64-32-10",
        "--epochs",
        "1",
        "-o",
        "a.safetensors",
    ])
    .fails_with(&["a.safetensors", "--force"]);
    assert_eq!(std::fs::read(t.path("a.safetensors")).unwrap(), a);
}

/// The whole round: train, compress with retraining and a held-out range, then eval from
/// the files; the two reports agree.
#[test]
fn train_compress_retrain_eval_round() {
    let t = TestDir::new();
    let m = small_model(&t, "m.safetensors");
    let compress = |out: &str| {
        t.run(&[
            "compress",
            &m,
            "-o",
            out,
            "--density",
            "0.3",
            "--pes",
            "4",
            "--dataset",
            "synthetic",
            "--range",
            "0..2000",
            "--eval-range",
            "8000..9000",
            "--retrain",
            "--dense-checkpoints",
            "--epochs",
            "2",
            "--rounds",
            "2",
            "--json",
            "-q",
        ])
        .ok()
        .to_string()
    };
    let out = compress("out");
    let report = json(&out);
    let acc = &report["accuracy"];
    assert_eq!(
        stage_names(&acc["stages"]),
        [
            "original (float)",
            "pruned, round 1/2",
            "masked fine-tuning, round 1/2",
            "pruned, round 2/2",
            "masked fine-tuning, round 2/2",
            "weight-shared",
            "centroid fine-tuning",
            "EIE bit-exact (images)",
        ]
    );
    assert_eq!(acc["held_out"], "synthetic:0 [8000..9000]");
    assert_eq!(acc["retrain"]["schedule"], serde_json::json!([0.5, 1.0]));
    let stages = acc["stages"].as_array().unwrap();
    let top1 = |i: usize| stages[i]["top1"].as_f64().unwrap();
    // Retraining wins back what pruning lost.
    assert!(top1(4) > top1(3), "masked fine-tuning did not help: {out}");
    assert!(top1(0) > 0.8 && top1(7) > 0.75, "{out}");
    let density = |i: usize| stages[i]["density"].as_f64().unwrap();
    assert!((density(4) - 0.3).abs() < 1e-3 && density(1) > density(3));
    assert_eq!(stages[0]["per_class"].as_array().unwrap().len(), 10);

    // The written report is the printed one.
    let written = std::fs::read_to_string(t.path("out/report.json")).unwrap();
    assert_eq!(json(&written), report);

    // The pruned checkpoint holds retrained survivors: the target count, most of them moved
    // from their trained values; the report counts against the trained (dense) weights.
    let original = Checkpoint::open(t.path(&m)).unwrap();
    let pruned = Checkpoint::open(t.path("out/pruned.safetensors")).unwrap();
    let quantized = Checkpoint::open(t.path("out/quantized.safetensors")).unwrap();
    for (k, name) in ["fc1.weight", "fc2.weight"].iter().enumerate() {
        let o = original.read_f32(name).unwrap();
        let p = pruned.read_f32(name).unwrap();
        let q = quantized.read_f32(name).unwrap();
        let kept = p.iter().filter(|&&v| v != 0.0).count();
        assert_eq!(kept, (0.3 * p.len() as f64).round() as usize, "{name}");
        let moved = o
            .iter()
            .zip(&p)
            .filter(|(a, b)| **b != 0.0 && a != b)
            .count();
        assert!(
            moved > kept * 9 / 10,
            "{name}: only {moved} of {kept} survivors retrained"
        );
        let pr = &report["layers"][k]["pruning"];
        assert_eq!(
            pr["nonzeros_before"].as_u64().unwrap() as usize,
            o.len(),
            "{name}"
        );
        assert_eq!(pr["kept"].as_u64().unwrap() as usize, kept, "{name}");
        let smallest = p
            .iter()
            .filter(|&&v| v != 0.0)
            .fold(f32::MAX, |m, v| m.min(v.abs()));
        assert_eq!(pr["threshold"].as_f64().unwrap() as f32, smallest, "{name}");
        let mut distinct: Vec<u32> = q
            .iter()
            .filter(|&&v| v != 0.0)
            .map(|v| v.to_bits())
            .collect();
        distinct.sort();
        distinct.dedup();
        assert!(
            distinct.len() <= 15,
            "{name}: {} shared values",
            distinct.len()
        );
    }

    // eval reads the same stages back from disk; the bit-exact figure is the same.
    let e = json(
        t.run(&[
            "eval",
            &m,
            "out",
            "--dataset",
            "synthetic",
            "--range",
            "8000..9000",
            "--json",
        ])
        .ok(),
    );
    assert_eq!(
        stage_names(&e["stages"]),
        [
            "original (float)",
            "pruned (float)",
            "pruned + shared (float)",
            "EIE bit-exact (images)",
        ]
    );
    let es = e["stages"].as_array().unwrap();
    assert_eq!(es[0]["correct"], stages[0]["correct"]);
    assert_eq!(
        es[1]["correct"], stages[4]["correct"],
        "pruned = after masked fine-tuning"
    );
    assert_eq!(
        es[2]["correct"], stages[6]["correct"],
        "shared = after centroid fine-tuning"
    );
    assert_eq!(es[3]["correct"], stages[7]["correct"]);
    assert_eq!(e["act_frac"], acc["act_frac"]);
    let delta = es[3]["delta_pct"].as_f64().unwrap();
    let expected = 100.0 * (es[3]["top1"].as_f64().unwrap() - es[0]["top1"].as_f64().unwrap());
    assert!((delta - expected).abs() < 1e-9);
    let per_class: u64 = es[3]["per_class"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["correct"].as_u64().unwrap())
        .sum();
    assert_eq!(per_class, es[3]["correct"].as_u64().unwrap());

    // The same compress again gives the same bytes.
    compress("again");
    assert_eq!(t.snapshot("out"), t.snapshot("again"));
}

#[test]
fn compress_with_a_dataset_reports_accuracy_without_retraining() {
    let t = TestDir::new();
    let m = small_model(&t, "m.safetensors");
    let out = t
        .run(&[
            "compress",
            &m,
            "-o",
            "out",
            "--density",
            "0.5",
            "--pes",
            "2",
            "--dataset",
            "synthetic",
            "--range",
            "8000..8500",
        ])
        .ok()
        .to_string();
    assert!(
        out.contains("accuracy on synthetic:0 [8000..8500]\n"),
        "{out}"
    );
    for stage in [
        "original (float)",
        "pruned (float)",
        "pruned + shared (float)",
        "EIE bit-exact",
    ] {
        assert!(out.contains(stage), "{stage}: {out}");
    }
    let r = json(&std::fs::read_to_string(t.path("out/report.json")).unwrap());
    let acc = &r["accuracy"];
    assert!(acc["train"].is_null() && acc["retrain"].is_null(), "{acc}");
    let stages = acc["stages"].as_array().unwrap();
    assert_eq!(stages.len(), 4);
    assert!(stages[0]["top1"].as_f64().unwrap() > 0.8, "{acc}");
    assert!(stages[3]["top1"].as_f64().unwrap() > 0.5, "{acc}");
    // Without --dataset, no accuracy section.
    let plain = t
        .run(&[
            "compress",
            &m,
            "-o",
            "plain",
            "--density",
            "0.5",
            "--pes",
            "2",
            "--json",
        ])
        .ok()
        .to_string();
    assert!(json(&plain).get("accuracy").is_none());
}

#[test]
fn recipes_set_retraining_and_iterative_schedules() {
    let t = TestDir::new();
    let m = small_model(&t, "m.safetensors");
    t.write(
        "r.toml",
        b"[defaults]\ndensity = 0.4\n[retrain]\nschedule = [0.3, 0.7, 1.0]\nepochs = 1\ncentroid_epochs = 0\n",
    );
    let r = json(
        t.run(&[
            "compress",
            &m,
            "-o",
            "out",
            "--recipe",
            "r.toml",
            "--pes",
            "2",
            "--dataset",
            "synthetic",
            "--range",
            "0..1000",
            "--retrain",
            "--json",
            "-q",
        ])
        .ok(),
    );
    let names = stage_names(&r["accuracy"]["stages"]);
    assert!(
        names.contains(&"masked fine-tuning, round 3/3".to_string()),
        "{names:?}"
    );
    assert!(
        !names.contains(&"centroid fine-tuning".to_string()),
        "{names:?}"
    );
    // A setting in both places is refused; so is a bad schedule.
    t.run(&[
        "compress",
        &m,
        "-o",
        "out2",
        "--recipe",
        "r.toml",
        "--dataset",
        "synthetic",
        "--retrain",
        "--epochs",
        "2",
    ])
    .fails_with(&["epochs set both", "r.toml"]);
    t.write("bad.toml", b"[retrain]\nschedule = [0.5, 0.4]\n");
    t.run(&["compress", &m, "-o", "out3", "--recipe", "bad.toml"])
        .fails_with(&["bad.toml", "[retrain]", "increasing"]);
    // Retraining options need --retrain, and --retrain needs a dataset (clap: exit 2).
    let r = t.run(&["compress", &m, "-o", "out4", "--retrain"]);
    assert_eq!(r.status, 2, "{}", r.stderr);
    assert!(r.stderr.contains("--dataset"), "{}", r.stderr);
    let r = t.run(&[
        "compress",
        &m,
        "-o",
        "out4",
        "--dataset",
        "synthetic",
        "--epochs",
        "2",
    ]);
    assert_eq!(r.status, 2, "{}", r.stderr);
    assert!(!t.exists("out2") && !t.exists("out3") && !t.exists("out4"));
}

#[test]
fn simulate_takes_dataset_samples_as_inputs() {
    let t = TestDir::new();
    let m = small_model(&t, "m.safetensors");
    t.run(&[
        "compress",
        &m,
        "-o",
        "out",
        "--density",
        "0.5",
        "--pes",
        "4",
    ])
    .ok();
    let r = json(
        t.run(&[
            "simulate",
            "out",
            "--dataset",
            "synthetic",
            "--range",
            "8000..8005",
            "--json",
        ])
        .ok(),
    );
    assert_eq!(r["vectors"].as_array().unwrap().len(), 5);
    assert_eq!(r["mode"], "chained");
    // The same samples given as an input file run the same.
    let data = eie_dataset::load(
        &eie_dataset::Spec::Synthetic {
            seed: 0,
            form: eie_dataset::Form::Plain,
        },
        eie_dataset::SampleRange::new(8000, 8005),
        &eie_dataset::Scaling::default(),
    )
    .unwrap();
    t.checkpoint(
        "x.safetensors",
        &[("x", vec![5, 64], data.inputs().to_vec())],
    );
    let f = json(
        t.run(&["simulate", "out", "--input", "x.safetensors", "--json"])
            .ok(),
    );
    assert_eq!(f["vectors"], r["vectors"]);
    assert_eq!(f["fractions"], r["fractions"]);
    // Scaling options need a dataset; generated-activation options conflict with one.
    t.run(&["simulate", "out", "--mean", "0.5"])
        .usage_error(&["--mean", "--dataset"]);
    let c = t.run(&[
        "simulate",
        "out",
        "--dataset",
        "synthetic",
        "--act-density",
        "0.5",
    ]);
    assert_eq!(c.status, 2, "{}", c.stderr);
}

/// The input scaling `train` used travels with the model: eval and compress use it, and
/// compress hands it to simulate through model.eie.
#[test]
fn input_scaling_travels_with_the_model() {
    let t = TestDir::new();
    t.run(&[
        "train",
        "--dataset",
        "synthetic",
        "--range",
        "0..2000",
        "--arch",
        "64-32-10",
        "--epochs",
        "6",
        "--seed",
        "3",
        "--mean",
        "0.25",
        "--std",
        "0.5",
        "-o",
        "m.safetensors",
    ])
    .ok();
    let ck = Checkpoint::open(t.path("m.safetensors")).unwrap();
    let meta = ck.metadata();
    assert_eq!(
        (meta["eie.mean"].as_str(), meta["eie.std"].as_str()),
        ("0.25", "0.5")
    );
    let top1 = |extra: &[&str]| {
        let mut a = vec![
            "eval",
            "m.safetensors",
            "--dataset",
            "synthetic",
            "--range",
            "8000..9000",
            "--json",
        ];
        a.extend_from_slice(extra);
        json(t.run(&a).ok())["stages"][0]["top1"].as_f64().unwrap()
    };
    let recorded = top1(&[]);
    assert_eq!(recorded, top1(&["--mean", "0.25", "--std", "0.5"]));
    assert!(recorded > 0.75, "{recorded}");
    assert!(
        top1(&["--mean", "0", "--std", "1"]) < recorded - 0.05,
        "scaling had no effect"
    );
    t.run(&[
        "compress",
        "m.safetensors",
        "-o",
        "out",
        "--density",
        "0.5",
        "--pes",
        "2",
    ])
    .ok();
    let sim = |extra: &[&str]| {
        let mut a = vec![
            "simulate",
            "out",
            "--dataset",
            "synthetic",
            "--range",
            "8000..8003",
            "--json",
        ];
        a.extend_from_slice(extra);
        json(t.run(&a).ok())["vectors"].clone()
    };
    assert_eq!(sim(&[]), sim(&["--mean", "0.25", "--std", "0.5"]));
    assert_ne!(sim(&[]), sim(&["--mean", "0", "--std", "1"]));
}

/// `--no-bias-column`: the images hold no bias, the bit-exact stage says so; the biases are
/// retrained (not shared) and written as such; `pack`'s images never hold biases either.
#[test]
fn retraining_without_bias_columns_and_evaluating_packed_images() {
    let t = TestDir::new();
    let m = small_model(&t, "m.safetensors");
    let r = json(
        t.run(&[
            "compress",
            &m,
            "-o",
            "out",
            "--density",
            "0.5",
            "--pes",
            "2",
            "--dataset",
            "synthetic",
            "--range",
            "0..2000",
            "--eval-range",
            "8000..9000",
            "--retrain",
            "--dense-checkpoints",
            "--epochs",
            "1",
            "--no-bias-column",
            "--json",
            "-q",
        ])
        .ok(),
    );
    let stages = r["accuracy"]["stages"].as_array().unwrap();
    assert_eq!(
        stages.last().unwrap()["stage"],
        "EIE bit-exact (images, without biases)"
    );
    let o = Checkpoint::open(t.path(&m)).unwrap();
    let p = Checkpoint::open(t.path("out/pruned.safetensors")).unwrap();
    let q = Checkpoint::open(t.path("out/quantized.safetensors")).unwrap();
    for b in ["fc1.bias", "fc2.bias"] {
        let retrained = p.read_f32(b).unwrap();
        assert_ne!(retrained, o.read_f32(b).unwrap(), "{b} was not retrained");
        assert_eq!(
            retrained,
            q.read_f32(b).unwrap(),
            "{b} is not shared without its column"
        );
    }
    // Packing that output's quantized checkpoint as it is: no biases in the images either.
    t.run(&[
        "pack",
        "out/quantized.safetensors",
        "-o",
        "packed",
        "--pes",
        "2",
        "--no-bias-column",
    ])
    .ok();
    let e = json(
        t.run(&[
            "eval",
            "out/quantized.safetensors",
            "packed",
            "--dataset",
            "synthetic",
            "--range",
            "8000..8100",
            "--json",
        ])
        .ok(),
    );
    let names = stage_names(&e["stages"]);
    assert_eq!(
        names,
        ["original (float)", "EIE bit-exact (images, without biases)"]
    );
}

/// The command recorded beside the demo's model makes exactly that model.
#[test]
fn the_demo_fixture_is_what_its_command_makes() {
    let script = std::fs::read_to_string(fixture("make_demo_model.sh")).unwrap();
    let command = script
        .split("cargo run --release -- ")
        .nth(1)
        .expect("the script runs eie-compress")
        .replace("\\\n", " ");
    let mut args: Vec<String> = command.split_whitespace().map(str::to_string).collect();
    let o = args.iter().position(|a| a == "-o").expect("-o");
    assert_eq!(args[o + 1], "fixtures/demo-mlp.safetensors");
    args[o + 1] = "remade.safetensors".into();
    let t = TestDir::new();
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    t.run(&argv).ok();
    let remade = std::fs::read(t.path("remade.safetensors")).unwrap();
    let shipped = std::fs::read(fixture("demo-mlp.safetensors")).unwrap();
    assert!(
        remade == shipped,
        "fixtures/demo-mlp.safetensors is not what fixtures/make_demo_model.sh makes; rerun the script (and check why it changed)"
    );
}

#[test]
fn demo_runs_the_whole_pipeline_twice() {
    let t = TestDir::new();
    for _ in 0..2 {
        let out = t.run(&["demo", "-o", "d", "-q"]).ok().to_string();
        for step in [
            "1/5 compress",
            "2/5 verify",
            "3/5 simulate",
            "4/5 eval",
            "5/5 report",
            "done:",
        ] {
            assert!(out.contains(step), "{step}: {out}");
        }
        assert!(out.contains("EIE bit-exact (images)"), "{out}");
    }
    for f in [
        "demo-mlp.safetensors",
        "recipe.toml",
        "eie/model.eie",
        "eie/report.json",
        "eie/report.html",
        "report.html",
    ] {
        assert!(t.exists(&format!("d/{f}")), "{f}");
    }
    let report = json(&std::fs::read_to_string(t.path("d/eie/report.json")).unwrap());
    let stages = report["accuracy"]["stages"].as_array().unwrap();
    let last = stages.last().unwrap();
    assert_eq!(last["stage"], "EIE bit-exact (images)");
    // The demo retrains: the final model is within a few points of the original.
    assert!(last["delta_pct"].as_f64().unwrap() > -3.0, "{last}");
}

/// The MNIST test set in ../shared/data/mnist, or a message that the test skips.
fn mnist() -> Option<PathBuf> {
    let dir = crate::util::mnist_dir();
    if dir.is_none() {
        eprintln!(
            "skipped: the MNIST test set is not at ../shared/data/mnist (this test needs it)"
        );
    }
    dir
}

/// MNIST through the IDX reader, a short LeNet-300-100 training, and eval on the held-out
/// split; the full targets are in `mnist_lenet_meets_the_targets`.
#[test]
fn mnist_trains_and_evaluates() {
    let Some(dir) = mnist() else { return };
    let spec = format!("mnist:{}", dir.display());
    let t = TestDir::new();
    let out = t
        .run(&[
            "train",
            "--dataset",
            &spec,
            "--range",
            "0..4000",
            "--eval-range",
            "8000..10000",
            "--arch",
            "784-100-10",
            "--epochs",
            "4",
            "--seed",
            "1",
            "-o",
            "m.safetensors",
        ])
        .ok()
        .to_string();
    assert!(out.contains("held-out"), "{out}");
    let e = json(
        t.run(&[
            "eval",
            "m.safetensors",
            "--dataset",
            &spec,
            "--range",
            "8000..10000",
            "--json",
        ])
        .ok(),
    );
    let top1 = e["stages"][0]["top1"].as_f64().unwrap();
    assert!(top1 > 0.88, "{top1}");
}

/// docs/results.md's targets, by its own commands: LeNet-300-100 trained on MNIST 0..7999,
/// compressed with docs/recipes/lenet-300-100.toml and retrained, at most 8% density, at
/// most 0.2 points lost on 8000..9999 through the bit-exact path (64 PEs), images for 4 PEs
/// at least 25x smaller than dense f32.
#[test]
fn mnist_lenet_meets_the_targets() {
    let Some(dir) = mnist() else { return };
    let spec = format!("mnist:{}", dir.display());
    let recipe = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/recipes/lenet-300-100.toml");
    let recipe = recipe.to_str().unwrap();
    let t = TestDir::new();
    t.run(&[
        "train",
        "--dataset",
        &spec,
        "--range",
        "0..8000",
        "--eval-range",
        "8000..10000",
        "--arch",
        "784-300-100-10",
        "--epochs",
        "20",
        "--seed",
        "1",
        "-o",
        "lenet.safetensors",
        "-q",
    ])
    .ok();
    let compress = |pes: &str, out: &str| {
        json(
            t.run(&[
                "compress",
                "lenet.safetensors",
                "-o",
                out,
                "--recipe",
                recipe,
                "--pes",
                pes,
                "--retrain",
                "--dense-checkpoints",
                "--dataset",
                &spec,
                "--range",
                "0..8000",
                "--eval-range",
                "8000..10000",
                "--json",
                "-q",
            ])
            .ok(),
        )
    };
    let r64 = compress("64", "out64");
    let density = r64["totals"]["density"].as_f64().unwrap();
    assert!(density <= 0.08, "density {density}");
    for l in r64["layers"].as_array().unwrap() {
        assert_eq!(
            (
                l["quantization"]["code_bits"].as_u64(),
                l["index_bits"].as_u64()
            ),
            (Some(4), Some(4))
        );
    }
    assert_eq!(r64["pes"], 64);
    let stages = r64["accuracy"]["stages"].as_array().unwrap();
    let last = stages.last().unwrap();
    assert_eq!(last["stage"], "EIE bit-exact (images)");
    let loss = -last["delta_pct"].as_f64().unwrap();
    assert!(
        loss <= 0.2,
        "bit-exact top-1 lost {loss} points: {}",
        r64["accuracy"]
    );
    let r4 = compress("4", "out4");
    let ratio = r4["totals"]["compression"]["vs_dense"].as_f64().unwrap();
    assert!(
        ratio >= 25.0,
        "4-PE images only {ratio}x smaller than dense f32"
    );
    // Retraining is PE-independent: the same weights either way.
    assert_eq!(
        std::fs::read(t.path("out64/quantized.safetensors")).unwrap(),
        std::fs::read(t.path("out4/quantized.safetensors")).unwrap()
    );
}

/// Retraining works in f32, but what it writes is in the checkpoint's own dtype, and the
/// quantized checkpoint holds exactly the images' shared values.
#[test]
fn retraining_an_f16_checkpoint_writes_f16_values_the_images_hold() {
    use eie_checkpoint::{Dtype, encode};
    let t = TestDir::new();
    let src = Checkpoint::open(fixture("demo-mlp.safetensors")).unwrap();
    let specs: Vec<(String, Dtype, Vec<usize>)> = src
        .tensors()
        .into_iter()
        .map(|i| (i.name, Dtype::F16, i.shape))
        .collect();
    let data: Vec<Vec<u8>> = specs
        .iter()
        .map(|(n, _, _)| encode(Dtype::F16, &src.read_f32(n).unwrap()))
        .collect();
    t.checkpoint_raw("h.safetensors", &specs, &data);
    let r = json(
        t.run(&[
            "compress",
            "h.safetensors",
            "-o",
            "out",
            "--density",
            "0.2",
            "--pes",
            "4",
            "--dataset",
            "synthetic",
            "--range",
            "0..2000",
            "--eval-range",
            "8000..9000",
            "--retrain",
            "--dense-checkpoints",
            "--epochs",
            "1",
            "--json",
            "-q",
        ])
        .ok(),
    );
    let last = r["accuracy"]["stages"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert!(last["top1"].as_f64().unwrap() > 0.85, "{last}");
    // The stages are measured on the values as written (in F16): eval reads the same back.
    let e = json(
        t.run(&[
            "eval",
            "h.safetensors",
            "out",
            "--dataset",
            "synthetic",
            "--range",
            "8000..9000",
            "--json",
        ])
        .ok(),
    );
    let stages = r["accuracy"]["stages"].as_array().unwrap();
    let by_name = |name: &str| {
        stages
            .iter()
            .find(|s| s["stage"] == name)
            .unwrap_or_else(|| panic!("no stage {name}"))["correct"]
            .clone()
    };
    assert_eq!(e["stages"][1]["correct"], by_name("masked fine-tuning"));
    assert_eq!(e["stages"][2]["correct"], by_name("centroid fine-tuning"));
    assert_eq!(e["stages"][3]["correct"], by_name("EIE bit-exact (images)"));
    let inspect = json(t.run(&["inspect", "out", "--json"]).ok());
    for (k, name) in ["fc1.weight", "fc2.weight", "fc3.weight"]
        .iter()
        .enumerate()
    {
        let q = Checkpoint::open(t.path("out/quantized.safetensors")).unwrap();
        let p = Checkpoint::open(t.path("out/pruned.safetensors")).unwrap();
        assert_eq!(q.info(name).unwrap().dtype, Dtype::F16);
        assert_eq!(p.info(name).unwrap().dtype, Dtype::F16);
        let book: Vec<f32> = inspect["layers"][k]["codebook"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        for v in q.read_f32(name).unwrap() {
            assert!(
                book.contains(&v),
                "{name}: {v} is not in the codebook {book:?}"
            );
        }
        let bias = name.replace("weight", "bias");
        for v in q.read_f32(&bias).unwrap() {
            assert!(book.contains(&v), "{bias}: {v} is not in the codebook");
        }
    }
}

/// The model `train` writes means in PyTorch what it means here: Python's safetensors loads
/// it, numpy computes `relu(W x + b)` layer by layer in the `[out, in]` layout, and gets
/// eval's count of correct predictions. Skips, saying so, without python3, numpy and
/// safetensors.
#[test]
fn python_reads_the_trained_model_as_pytorch_layout() {
    if !python_with_safetensors("python_reads_the_trained_model_as_pytorch_layout") {
        return;
    }
    let t = TestDir::new();
    let data = eie_dataset::load(
        &eie_dataset::Spec::Synthetic {
            seed: 0,
            form: eie_dataset::Form::Plain,
        },
        eie_dataset::SampleRange::new(8000, 9000),
        &eie_dataset::Scaling::default(),
    )
    .unwrap();
    let labels: Vec<f32> = data.labels().iter().map(|&l| l as f32).collect();
    t.checkpoint(
        "d.safetensors",
        &[
            ("x", vec![1000, 64], data.inputs().to_vec()),
            ("y", vec![1000], labels),
        ],
    );
    let model = fixture("demo-mlp.safetensors");
    let e = json(
        t.run(&[
            "eval",
            model.to_str().unwrap(),
            "--dataset",
            "synthetic",
            "--range",
            "8000..9000",
            "--json",
        ])
        .ok(),
    );
    let script = format!(
        "import numpy as np\n\
         from safetensors.numpy import load_file\n\
         m = load_file({:?}); d = load_file({:?})\n\
         a = d['x'].astype(np.float64)\n\
         for k in (1, 2, 3):\n\
         \x20   w, b = m[f'fc{{k}}.weight'].astype(np.float64), m[f'fc{{k}}.bias'].astype(np.float64)\n\
         \x20   a = a @ w.T + b\n\
         \x20   a = np.maximum(a, 0) if k < 3 else a\n\
         print(int((a.argmax(1) == d['y']).sum()))\n",
        model.to_str().unwrap(),
        t.path("d.safetensors").to_str().unwrap()
    );
    let python: u64 = crate::util::python_stdout("python3", &["-c", &script])
        .trim()
        .parse()
        .unwrap();
    let ours = e["stages"][0]["correct"].as_u64().unwrap();
    // burn computes in f32, numpy here in f64: a near-tie may flip, nothing more.
    assert!(python.abs_diff(ours) <= 2, "python {python}, eval {ours}");
}

/// Without dense checkpoints, eval rebuilds the float stages from the checkpoint and
/// model.eie: the same numbers as from the checkpoints themselves, and as compress measured.
#[test]
fn eval_rebuilds_the_float_stages_without_dense_checkpoints() {
    let t = TestDir::new();
    let m = small_model(&t, "m.safetensors");
    let compress = |out: &str, extra: &[&str]| {
        let mut a = vec![
            "compress",
            &m,
            "-o",
            out,
            "--density",
            "0.3",
            "--pes",
            "4",
            "--dataset",
            "synthetic",
            "--range",
            "8000..8500",
            "--json",
        ];
        a.extend_from_slice(extra);
        json(t.run(&a).ok())
    };
    let lean = compress("lean", &[]);
    let dense = compress("dense", &["--dense-checkpoints"]);
    assert!(!t.exists("lean/pruned.safetensors") && t.exists("dense/pruned.safetensors"));
    assert_eq!(lean["accuracy"], dense["accuracy"]);
    let eval = |dir: &str| {
        json(
            t.run(&[
                "eval",
                &m,
                dir,
                "--dataset",
                "synthetic",
                "--range",
                "8000..8500",
                "--json",
            ])
            .ok(),
        )
    };
    let (a, b) = (eval("lean"), eval("dense"));
    assert_eq!(a["stages"], b["stages"]);
    assert_eq!(
        stage_names(&a["stages"]),
        [
            "original (float)",
            "pruned (float)",
            "pruned + shared (float)",
            "EIE bit-exact (images)"
        ]
    );
    assert_eq!(a["stages"], lean["accuracy"]["stages"]);
    assert!(a.get("notes").is_none());
}

/// A retrained model's pruned weights are its fine-tuned ones: without its pruned
/// checkpoint, eval leaves that stage out and says why.
#[test]
fn eval_says_what_it_cannot_rebuild_for_a_retrained_model() {
    let t = TestDir::new();
    let m = small_model(&t, "m.safetensors");
    t.run(&[
        "compress",
        &m,
        "-o",
        "out",
        "--density",
        "0.3",
        "--pes",
        "4",
        "--dataset",
        "synthetic",
        "--range",
        "0..1000",
        "--eval-range",
        "8000..8300",
        "--retrain",
        "--epochs",
        "1",
        "-q",
    ])
    .ok();
    let e = json(
        t.run(&[
            "eval",
            &m,
            "out",
            "--dataset",
            "synthetic",
            "--range",
            "8000..8300",
            "--json",
        ])
        .ok(),
    );
    assert_eq!(
        stage_names(&e["stages"]),
        [
            "original (float)",
            "pruned + shared (float)",
            "EIE bit-exact (images)"
        ]
    );
    let note = e["notes"][0].as_str().unwrap();
    assert!(
        note.contains("pruned (float)") && note.contains("--dense-checkpoints"),
        "{note}"
    );
    let text = t
        .run(&[
            "eval",
            &m,
            "out",
            "--dataset",
            "synthetic",
            "--range",
            "8000..8300",
        ])
        .ok()
        .to_string();
    assert!(text.contains("not measured: pruned (float)"), "{text}");
}

/// With incremental sharing the dense checkpoints hold states the report measured: eval's
/// pruned stage is the last sharing step's masked fine-tuning (weights and biases of the
/// same moment), its shared stage the centroid fine-tuning's, with biases kept out of the
/// images (they retrain through the sharing steps; they were once written as they stood
/// before them) and folded in.
#[test]
fn incremental_sharing_writes_what_it_measured() {
    let t = TestDir::new();
    let m = small_model(&t, "m.safetensors");
    t.write(
        "inq.toml",
        b"[retrain]\nepochs = 2\nshare_schedule = [0.5, 0.9]\ncentroid_epochs = 1\n",
    );
    for (out, extra) in [("apart", &["--no-bias-column"][..]), ("folded", &[][..])] {
        let mut args = vec![
            "compress",
            &m,
            "-o",
            out,
            "--recipe",
            "inq.toml",
            "--density",
            "0.3",
            "--code-bits",
            "3",
            "--pes",
            "2",
            "--dataset",
            "synthetic",
            "--range",
            "0..2000",
            "--eval-range",
            "8000..9000",
            "--retrain",
            "--dense-checkpoints",
            "--json",
            "-q",
        ];
        args.extend(extra);
        let r = json(t.run(&args).ok());
        let top1 = |stages: &Value, name: &str| {
            let s = stages
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["stage"] == name)
                .unwrap_or_else(|| panic!("{out}: no stage {name} in {stages}"));
            s["correct"].as_u64().unwrap()
        };
        let reported = &r["accuracy"]["stages"];
        let e = json(
            t.run(&[
                "eval",
                &m,
                out,
                "--dataset",
                "synthetic",
                "--range",
                "8000..9000",
                "--json",
            ])
            .ok(),
        );
        let measured = &e["stages"];
        assert_eq!(
            top1(measured, "pruned (float)"),
            top1(reported, "masked fine-tuning, sharing step 2/2"),
            "{out}"
        );
        assert_eq!(
            top1(measured, "pruned + shared (float)"),
            top1(reported, "centroid fine-tuning"),
            "{out}"
        );
        // The settings say how it was shared.
        assert_eq!(
            r["accuracy"]["retrain"]["share_schedule"],
            serde_json::json!([0.5, 0.9]),
            "{out}"
        );
    }
}
