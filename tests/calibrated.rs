//! `compress --calibration` (issue 22): activation-aware scores, the OBS update and weighted
//! codebooks, on a decoder trained by `train` and on an MLP; what they record, and what they
//! refuse.

use serde_json::Value;

use crate::util::{TestDir, json, shakespeare, synthetic_mlp};

/// Every layer's calibration figures: the update never raises the calibration outputs'
/// error over the same mask without it (rows it would are left without it), and sharing adds
/// to pruning's error.
fn check_calibration(r: &Value, samples: u64) {
    for l in r["layers"].as_array().unwrap() {
        let c = &l["calibration"];
        let name = l["name"].as_str().unwrap();
        assert_eq!(c["samples"].as_u64(), Some(samples), "{name}");
        let pruned = c["output_error_pruned"].as_f64().unwrap();
        let shared = c["output_error_shared"].as_f64().unwrap();
        let without = c["output_error_pruned_without_update"].as_f64().unwrap();
        assert!(pruned <= without, "{name}: {pruned} > {without}");
        assert!(pruned > 0.0 && shared > 0.0 && without < 1.0, "{name}: {c}");
        assert!(c["damp"].as_f64().unwrap() >= 0.01, "{name}");
    }
}

/// A decoder trained by `train`, compressed at 50% with Wanda's score, the OBS update and
/// an activation-weighted codebook: every layer's calibration recorded and checked, the
/// settings in model.eie, the same bytes twice, the images as the pipeline's checks want
/// them, and eval of the output equal to compress's EIE stage; the pruned stage (updated
/// weights) said not to be measured.
#[test]
fn a_decoder_compressed_with_calibration_records_it_and_is_deterministic() {
    let Some(data) = shakespeare() else { return };
    let t = TestDir::new();
    let train = format!("text:{}", data.join("train.txt").display());
    let valid = format!("text:{}", data.join("valid.txt").display());
    let dec = t.path("dec");
    let dec = dec.to_str().unwrap();
    t.run(&[
        "train",
        "--dataset",
        &train,
        "--range",
        "0..40000",
        "--arch",
        "llama:layers=1,heads=2,width=32,context=16",
        "--steps",
        "60",
        "--lr",
        "3e-3",
        "--out",
        dec,
    ])
    .ok();
    let compress = |out: &str, extra: &[&str]| {
        let out = t.path(out);
        let mut args = vec![
            "compress",
            dec,
            "--out",
            out.to_str().unwrap(),
            "--density",
            "0.5",
            "--pes",
            "8",
            "--dataset",
            &valid,
            "--range",
            "0..3000",
            "--json",
        ];
        args.extend_from_slice(extra);
        json(t.run(&args).ok())
    };
    let calibrated = [
        "--calibration",
        &train,
        "--calibration-range",
        "40000..60000",
        "--calibration-samples",
        "24",
        "--prune-score",
        "activation",
        "--per-row",
        "--update",
        "obs",
        "--codebook-weight",
        "activation",
    ];
    let r = compress("obs", &calibrated);
    check_calibration(&r, 24 * 16);
    let first = &r["layers"][0];
    assert_eq!(
        first["pruning"]["rule"],
        "density 0.5, by |w| x ||x||, per row, OBS update"
    );
    assert_eq!(
        first["quantization"]["method"],
        "k-means, linear init, weighted by ||x||^2"
    );
    // Per row: every row keeps half its weights.
    assert_eq!(first["pruning"]["density"], 0.5);
    let stages: Vec<&str> = r["accuracy"]["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["stage"].as_str().unwrap())
        .collect();
    assert_eq!(
        stages,
        [
            "original (float)",
            "pruned + shared (float)",
            "EIE bit-exact (images)"
        ]
    );
    let notes = r["accuracy"]["notes"].to_string();
    assert!(
        notes.contains("the OBS update changed the kept weights"),
        "{notes}"
    );
    let again = compress("again", &calibrated);
    assert_eq!(r, again);
    let read = |dir: &str| std::fs::read(t.path(dir).join("model.eie")).unwrap();
    assert_eq!(read("obs"), read("again"), "model.eie differs run to run");
    // model.eie records the samples and each layer's settings.
    let obs = t.path("obs");
    let obs = obs.to_str().unwrap();
    let settings = json(t.run(&["inspect", obs, "--json"]).ok())["settings"].clone();
    let source = settings["calibration"].as_str().unwrap();
    assert!(
        source.starts_with("the first 24 windows of 16 tokens of text:")
            && source.contains("train.txt [bytes 40000.."),
        "{source}"
    );
    let line = settings["layer.model.layers.0.self_attn.q_proj.weight"]
        .as_str()
        .unwrap();
    assert!(
        line.starts_with("pruning density 0.5, by |w| x ||x||, per row, OBS update; 4 bits, k-means, linear init, weighted by ||x||^2;"),
        "{line}"
    );
    t.run(&["verify", obs]).ok();
    let e = json(
        t.run(&[
            "eval",
            dec,
            obs,
            "--dataset",
            &valid,
            "--range",
            "0..3000",
            "--json",
        ])
        .ok(),
    );
    let eie = |v: &Value| {
        v["stages"]
            .as_array()
            .or(v["accuracy"]["stages"].as_array())
            .unwrap()
            .last()
            .unwrap()["perplexity"]
            .as_f64()
            .unwrap()
    };
    assert_eq!(eie(&e), eie(&r), "eval's EIE stage must equal compress's");
    // Magnitude pruning with the update alone, balanced across PEs: the balance reported.
    let b = compress(
        "balanced",
        &[
            "--calibration",
            &train,
            "--calibration-samples",
            "8",
            "--update",
            "obs",
            "--balance",
        ],
    );
    check_calibration(&b, 8 * 16);
    assert!(b["layers"][0]["balance"].is_object());
    assert_eq!(
        b["layers"][0]["pruning"]["rule"],
        "density 0.5, balanced across PEs, OBS update"
    );
}

/// An MLP calibrated on its own kind of inputs (the synthetic set): Wanda's score without a
/// Hessian (no output error, no update), then with the update, then as retraining's
/// pruning and sharing.
#[test]
fn an_mlp_is_calibrated_on_image_samples() {
    let t = TestDir::new();
    synthetic_mlp(&t, "m.safetensors", 2000, 4);
    let r = json(
        t.run(&[
            "compress",
            "m.safetensors",
            "-o",
            "wanda",
            "--density",
            "0.4",
            "--pes",
            "4",
            "--calibration",
            "synthetic",
            "--calibration-range",
            "8000..9000",
            "--prune-score",
            "activation",
            "--json",
        ])
        .ok(),
    );
    for l in r["layers"].as_array().unwrap() {
        let c = &l["calibration"];
        assert_eq!(c["samples"], 128, "{c}");
        assert!(
            c["output_error_pruned"].is_null() && c["damp"].is_null(),
            "{c}"
        );
    }
    let r = json(
        t.run(&[
            "compress",
            "m.safetensors",
            "-o",
            "obs",
            "--density",
            "0.4",
            "--pes",
            "4",
            "--calibration",
            "synthetic",
            "--calibration-samples",
            "300",
            "--update",
            "obs",
            "--dataset",
            "synthetic",
            "--range",
            "8000..10000",
            "--json",
        ])
        .ok(),
    );
    check_calibration(&r, 300);
    let stages = r["accuracy"]["stages"].as_array().unwrap();
    assert!(stages.len() >= 3, "{stages:?}");
    // Calibrated retraining: the pruning rounds score and update by the calibration, the
    // codebook is weighted, then fine-tuning retrains; against the same retraining by
    // magnitude, the first pruned stage differs and is no worse.
    let retrained = |out: &str, extra: &[&str]| {
        let mut args = vec![
            "compress",
            "m.safetensors",
            "-o",
            out,
            "--density",
            "0.2",
            "--pes",
            "4",
            "--dataset",
            "synthetic",
            "--range",
            "0..6000",
            "--eval-range",
            "8000..10000",
            "--retrain",
            "--epochs",
            "1",
            "--json",
        ];
        args.extend_from_slice(extra);
        json(t.run(&args).ok())
    };
    let plain = retrained("plain-retrained", &[]);
    let calibrated = retrained(
        "calibrated-retrained",
        &[
            "--calibration",
            "synthetic",
            "--calibration-range",
            "6000..8000",
            "--prune-score",
            "activation",
            "--update",
            "obs",
            "--codebook-weight",
            "activation",
        ],
    );
    let accuracy = |r: &Value, stage: &str| {
        let stages = r["accuracy"]["stages"].as_array().unwrap();
        let s = stages.iter().find(|s| s["stage"] == stage).unwrap();
        s["top1"].as_f64().unwrap()
    };
    for stage in ["pruned", "masked fine-tuning", "centroid fine-tuning"] {
        assert!(accuracy(&calibrated, stage) > 0.0, "{stage}: {calibrated}");
    }
    assert_ne!(
        accuracy(&calibrated, "pruned"),
        accuracy(&plain, "pruned"),
        "the calibration decided the pruning"
    );
    assert!(
        accuracy(&calibrated, "pruned") >= accuracy(&plain, "pruned"),
        "{} against {}",
        accuracy(&calibrated, "pruned"),
        accuracy(&plain, "pruned")
    );
    let inspect = json(t.run(&["inspect", "calibrated-retrained", "--json"]).ok());
    let settings = &inspect["settings"];
    assert!(
        settings["calibration"]
            .as_str()
            .unwrap()
            .contains("synthetic"),
        "{settings}"
    );
    let line = settings["layer.fc1.weight"].as_str().unwrap();
    assert!(line.contains("by |w| x ||x||, OBS update"), "{line}");
    t.run(&["verify", "calibrated-retrained"]).ok();
    // Codebooks weighted by retraining's squared gradients: the same survivors as the plain
    // retraining, other shared values; refused without masked fine-tuning.
    let weighted = retrained("gradient-weighted", &["--codebook-weight", "gradient"]);
    assert_eq!(
        accuracy(&weighted, "masked fine-tuning"),
        accuracy(&plain, "masked fine-tuning")
    );
    let books = |r: &Value| -> Vec<Value> {
        let layers = r["layers"].as_array().unwrap();
        layers
            .iter()
            .map(|l| l["quantization"]["centroids"].clone())
            .collect()
    };
    assert_ne!(books(&weighted), books(&plain));
    let inspect = json(t.run(&["inspect", "gradient-weighted", "--json"]).ok());
    let line = inspect["settings"]["layer.fc1.weight"].as_str().unwrap();
    assert!(line.contains("weighted by squared gradients"), "{line}");
    t.run(&[
        "compress",
        "m.safetensors",
        "-o",
        "no",
        "--codebook-weight",
        "gradient",
    ])
    .fails_with(&["--codebook-weight gradient", "--retrain"]);
}

/// What calibration refuses, by name, before any work.
#[test]
fn calibration_options_are_checked_by_name() {
    let t = TestDir::new();
    let m = crate::util::fixture("tiny-mlp.safetensors");
    let m = m.to_str().unwrap();
    let run = |extra: &[&str]| {
        let mut args = vec!["compress", m, "-o", "out", "--density", "0.5"];
        args.extend_from_slice(extra);
        t.run(&args)
    };
    run(&["--update", "obs"]).fails_with(&["--calibration", "give --calibration"]);
    run(&["--calibration", "synthetic"]).fails_with(&["--calibration", "no layer's settings"]);
    run(&[
        "--calibration",
        "synthetic",
        "--prune-score",
        "activation",
        "--per-row",
        "--balance",
    ])
    .fails_with(&["per_row and balance"]);
    run(&["--calibration-samples", "4"]).usage_error(&["--calibration"]);
    run(&[
        "--calibration",
        "synthetic",
        "--update",
        "obs",
        "--calibration-samples",
        "0",
    ])
    .usage_error(&["--calibration-samples"]);
    let text = t.write("a.txt", b"some text to calibrate on");
    run(&[
        "--calibration",
        &format!("text:{}", text.display()),
        "--update",
        "obs",
    ])
    .fails_with(&["not a language model folder"]);
    // Distillation is a language model's, for now.
    run(&["--dataset", "synthetic", "--retrain", "--distill"])
        .fails_with(&["--distill", "decoders"]);
    assert!(!t.exists("out"), "a refused run wrote its output");
    // Per row by magnitude needs no calibration: every row of a dense model keeps the same
    // count.
    synthetic_mlp(&t, "dense.safetensors", 500, 1);
    let r = json(
        t.run(&[
            "compress",
            "dense.safetensors",
            "-o",
            "out",
            "--density",
            "0.5",
            "--per-row",
            "--json",
        ])
        .ok(),
    );
    for l in r["layers"].as_array().unwrap() {
        assert_eq!(l["pruning"]["rule"], "density 0.5, per row", "{l}");
        assert!(l.get("calibration").is_none(), "{l}");
        let (rows, inputs) = (l["rows"].as_u64().unwrap(), l["inputs"].as_u64().unwrap());
        assert_eq!(
            l["pruning"]["kept"].as_u64().unwrap(),
            rows * (inputs / 2),
            "{l}"
        );
    }
    t.run(&["unpack", "out", "-o", "w.safetensors"]).ok();
    let ck = eie_checkpoint::Checkpoint::open(t.path("w.safetensors")).unwrap();
    let m = ck.read_matrix("fc1.weight").unwrap();
    for row in m.data.chunks(m.cols) {
        let kept = row.iter().filter(|&&v| v != 0.0).count();
        assert!(
            kept == m.cols / 2 || kept + 1 == m.cols / 2,
            "{kept} of {}",
            m.cols
        );
    }
}

/// `sweep --frontier`: an MLP at two densities, two code widths and two methods, each point
/// measured on held-out samples and priced in bits a weight, written as a CSV (one row a
/// point) and two plots; bad frontiers refused before any work; a second run replaces only
/// with --force.
#[test]
fn the_frontier_prices_every_point_in_real_bits() {
    let t = TestDir::new();
    synthetic_mlp(&t, "m.safetensors", 2000, 4);
    let sweep = |extra: &[&str]| {
        let mut args = vec![
            "sweep",
            "fr",
            "--frontier",
            "m.safetensors",
            "--dataset",
            "synthetic",
            "--range",
            "8000..9000",
            "--pes",
            "4",
        ];
        args.extend_from_slice(extra);
        t.run(&args)
    };
    let grid = [
        "--densities",
        "0.3,0.6",
        "--code-bits",
        "2,4",
        "--methods",
        "magnitude,obs",
        "--calibration",
        "synthetic",
        "--calibration-samples",
        "200",
    ];
    sweep(&["--methods", "obs"]).fails_with(&["--calibration", "obs"]);
    t.run(&["sweep", "fr", "--frontier", "m.safetensors"])
        .fails_with(&["--dataset"]);
    sweep(&["--densities", "0.3,0.3"]).fails_with(&["--densities", "0.3"]);
    sweep(&["--densities", "0"]).fails_with(&["--densities", "outside (0, 1]"]);
    sweep(&["--param", "pes"]).usage_error(&["--frontier"]);
    sweep(&["--fifo", "4"]).usage_error(&["--frontier"]);
    sweep(&["--calibration", "synthetic"]).fails_with(&["--calibration", "no method"]);
    assert!(!t.exists("fr"), "a refused frontier wrote its folder");
    sweep(&grid).ok();
    let csv = std::fs::read_to_string(t.path("fr/frontier.csv")).unwrap();
    let rows: Vec<Vec<&str>> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    assert_eq!(rows.len(), 8, "{csv}");
    assert!(csv.starts_with("method,density,code_bits,metric,value,original,bits_per_weight,dc_bits_per_weight,bytes,weights\n"));
    for r in &rows {
        assert_eq!(r[3], "top1", "{r:?}");
        let (bits, dc): (f64, f64) = (r[6].parse().unwrap(), r[7].parse().unwrap());
        // The images hold pointers and padding Deep Compression's accounting leaves out.
        assert!(bits > dc && dc > 0.0, "{r:?}");
        assert_eq!(r[9], "2368", "{r:?}");
    }
    // More density, more bits; more code bits, more bits.
    let bits = |m: &str, d: &str, b: &str| -> f64 {
        rows.iter()
            .find(|r| r[0] == m && r[1] == d && r[2] == b)
            .unwrap()[6]
            .parse()
            .unwrap()
    };
    assert!(bits("magnitude", "0.6", "4") > bits("magnitude", "0.3", "4"));
    assert!(bits("magnitude", "0.6", "4") > bits("magnitude", "0.6", "2"));
    for svg in ["fr/frontier.svg", "fr/frontier-dc.svg"] {
        let s = std::fs::read_to_string(t.path(svg)).unwrap();
        assert!(s.starts_with("<svg") && s.contains("obs"), "{svg}");
    }
    assert!(t.exists("fr/frontier/obs-d0.6-b4/model.eie"));
    sweep(&grid).fails_with(&["--force"]);
    sweep(&[&grid[..], &["--force"]].concat()).ok();
    assert_eq!(
        std::fs::read_to_string(t.path("fr/frontier.csv")).unwrap(),
        csv,
        "the same frontier twice"
    );
}
