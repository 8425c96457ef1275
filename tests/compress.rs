//! `compress` end to end. The report's figures are recomputed here from the written files,
//! independently of the code that produced them.

use std::collections::BTreeMap;

use eie_checkpoint::{Checkpoint, Dtype};
use serde_json::Value;

use crate::util::{TestDir, fixture, json};

const LAYERS: [&str; 3] = ["fc1.weight", "fc2.weight", "fc3.weight"];

fn model() -> String {
    fixture("mlp-gaussian.safetensors")
        .to_str()
        .unwrap()
        .to_string()
}

fn f32s(ck: &Checkpoint, name: &str) -> Vec<f32> {
    ck.read_f32(name).unwrap()
}

/// Indices of the k largest |w|, ties to the lower index (the reference selection).
fn top_k(w: &[f32], k: usize) -> Vec<bool> {
    let mut idx: Vec<usize> = (0..w.len()).filter(|&i| w[i] != 0.0).collect();
    idx.sort_by(|&a, &b| w[b].abs().total_cmp(&w[a].abs()).then(a.cmp(&b)));
    let mut keep = vec![false; w.len()];
    idx.iter().take(k).for_each(|&i| keep[i] = true);
    keep
}

/// Huffman code length total, by the textbook method on a sorted list (independent of the
/// tool's heap-based implementation).
fn huffman_bits(freqs: &[u64]) -> u64 {
    let mut w: Vec<u64> = freqs.iter().copied().filter(|&f| f > 0).collect();
    if w.len() == 1 {
        return w[0];
    }
    let mut bits = 0;
    while w.len() > 1 {
        w.sort_unstable();
        let merged = w[0] + w[1];
        bits += merged; // every symbol under the new node gets one more bit
        w.drain(..2);
        w.push(merged);
    }
    bits
}

fn report_layer<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["layers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == name)
        .unwrap()
}

#[test]
fn density_run_on_a_python_written_checkpoint_and_its_report_recomputed() {
    let t = TestDir::new();
    let report = json(
        t.run(&[
            "compress",
            &model(),
            "-o",
            "out",
            "--density",
            "0.09",
            "--pes",
            "4",
            "--layers",
            "fc*.weight",
            "--json",
            "--dense-checkpoints",
        ])
        .ok(),
    );
    assert_eq!(
        report,
        json(&std::fs::read_to_string(t.path("out/report.json")).unwrap())
    );
    let original = Checkpoint::open(model()).unwrap();
    let pruned = Checkpoint::open(t.path("out/pruned.safetensors")).unwrap();
    let quantized = Checkpoint::open(t.path("out/quantized.safetensors")).unwrap();
    let inspect = json(t.run(&["inspect", "out", "--json"]).ok());

    // Same tensors, shapes, dtypes and metadata; untouched tensors byte for byte.
    for ck in [&pruned, &quantized] {
        let names = |c: &Checkpoint| {
            let mut v: Vec<(String, Dtype, Vec<usize>)> = c
                .tensors()
                .into_iter()
                .map(|i| (i.name, i.dtype, i.shape))
                .collect();
            v.sort_by(|a, b| a.0.cmp(&b.0));
            v
        };
        assert_eq!(names(ck), names(&original));
        // The source's metadata, marked as eie-compress's (so --force knows the file).
        let mut expected = original.metadata();
        expected.insert("eie-compress".into(), ck.metadata()["eie-compress"].clone());
        assert_eq!(ck.metadata(), expected);
        assert!(ck.metadata()["eie-compress"].starts_with("eie-compress "));
        for untouched in ["embed.weight", "steps"] {
            let (mut a, mut b) = (Vec::new(), Vec::new());
            ck.stream_raw(untouched, &mut |c| {
                a.extend_from_slice(c);
                Ok(())
            })
            .unwrap();
            original
                .stream_raw(untouched, &mut |c| {
                    b.extend_from_slice(c);
                    Ok(())
                })
                .unwrap();
            assert_eq!(a, b, "{untouched}");
        }
    }

    let mut total_dense = 0u64;
    let mut total_eie = 0u64;
    for name in LAYERS {
        let bias = name.replace(".weight", ".bias");
        let w = f32s(&original, name);
        let p = f32s(&pruned, name);
        let q = f32s(&quantized, name);
        let (b, qb) = (f32s(&original, &bias), f32s(&quantized, &bias));
        let r = report_layer(&report, name);
        let k = (0.09 * w.len() as f64).round() as usize;

        // Pruning: exactly the k largest magnitudes survive, unchanged.
        let keep = top_k(&w, k);
        for i in 0..w.len() {
            assert_eq!(p[i], if keep[i] { w[i] } else { 0.0 }, "{name}[{i}]");
        }
        assert_eq!(
            f32s(&pruned, &bias),
            b,
            "the pruned checkpoint keeps biases as they were"
        );
        assert_eq!(r["pruning"]["kept"].as_u64().unwrap() as usize, k);
        assert_eq!(
            r["pruning"]["density"].as_f64().unwrap(),
            k as f64 / w.len() as f64
        );

        // Weight sharing: every value maps to its nearest centroid, zero stays zero.
        let centroids: Vec<f32> = r["quantization"]["centroids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        assert!(centroids.len() <= 15 && centroids.windows(2).all(|c| c[0] < c[1]));
        let nearest = |v: f32| {
            *centroids
                .iter()
                .min_by(|a, b| (v - **a).abs().total_cmp(&(v - **b).abs()))
                .unwrap()
        };
        let mut sse = 0.0f64;
        for (orig, shared) in p.iter().zip(&q).chain(b.iter().zip(&qb)) {
            if *orig == 0.0 {
                assert_eq!(*shared, 0.0);
            } else {
                assert_eq!(
                    (orig - shared).abs(),
                    (orig - nearest(*orig)).abs(),
                    "{name}: {orig} -> {shared}"
                );
                sse += (*orig as f64 - *shared as f64).powi(2);
            }
        }
        let reported = r["quantization"]["sse"].as_f64().unwrap();
        assert!(
            (sse - reported).abs() <= 1e-9 * sse,
            "{name}: SSE {sse} vs reported {reported}"
        );

        // The images: entries, padding and bytes from inspect's arrays.
        let l = inspect["layers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["name"] == name)
            .unwrap();
        assert_eq!(l["bias"], bias.as_str());
        assert_eq!(
            l["cols"].as_u64().unwrap() as usize,
            b.len().min(1) + w.len() / b.len(),
            "bias folded as one more column"
        );
        let pes = l["pe"].as_array().unwrap();
        let entries: Vec<usize> = pes
            .iter()
            .map(|pe| pe["codes"].as_array().unwrap().len())
            .collect();
        let padding: usize = pes
            .iter()
            .map(|pe| {
                pe["codes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|c| c.as_u64() == Some(0))
                    .count()
            })
            .sum();
        assert_eq!(
            r["entries"].as_u64().unwrap() as usize,
            entries.iter().sum::<usize>()
        );
        assert_eq!(r["padding"].as_u64().unwrap() as usize, padding);
        let nonzero_bias = b.iter().filter(|&&v| v != 0.0).count();
        assert_eq!(r["nonzeros"].as_u64().unwrap() as usize, k + nonzero_bias);
        let cols = l["cols"].as_u64().unwrap();
        let spmat: u64 = entries.iter().map(|&e| (e as u64).div_ceil(8) * 8).sum();
        let pointers = 4 * (cols + 1) * 2;
        let eie = spmat + pointers + 32;
        assert_eq!(r["bytes"]["spmat"].as_u64().unwrap(), spmat);
        assert_eq!(r["bytes"]["pointers"].as_u64().unwrap(), pointers);
        assert_eq!(r["bytes"]["total"].as_u64().unwrap(), eie);
        let dense = 4 * (w.len() + b.len()) as u64;
        assert_eq!(r["bytes"]["dense_f32"].as_u64().unwrap(), dense);
        assert_eq!(
            r["compression"]["vs_dense"].as_f64().unwrap(),
            dense as f64 / eie as f64
        );
        let counts = |v: &serde_json::Value| -> Vec<usize> {
            let list = v.as_array().unwrap().iter();
            list.map(|e| e.as_u64().unwrap() as usize).collect()
        };
        assert_eq!(
            counts(&r["entries_by_pe"]),
            entries,
            "{name}: entries PE by PE"
        );
        let mut code_counts = vec![0usize; 16];
        for pe in pes {
            for c in pe["codes"].as_array().unwrap() {
                code_counts[c.as_u64().unwrap() as usize] += 1;
            }
        }
        assert_eq!(
            counts(&r["quantization"]["code_counts"]),
            code_counts,
            "{name}: entries per code"
        );
        assert_eq!(code_counts[0], padding, "{name}: code 0 is padding");
        let max = *entries.iter().max().unwrap() as f64;
        let mean = entries.iter().sum::<usize>() as f64 / 4.0;
        assert_eq!(
            r["entries_per_pe"]["imbalance"].as_f64().unwrap(),
            max / mean
        );

        // Deep Compression's P+Q: one relative-index stream over the row-major codes.
        let rows = b.len();
        let inputs = w.len() / rows;
        let mut dc_entries = 0u64;
        let mut gap = 0u64;
        for row in 0..rows {
            for col in 0..=inputs {
                let v = if col < inputs {
                    q[row * inputs + col]
                } else {
                    qb[row]
                };
                if v == 0.0 {
                    gap += 1;
                } else {
                    dc_entries += 1 + gap / 16;
                    gap = 0;
                }
            }
        }
        let dc_bytes = dc_entries.div_ceil(1) + 16 * 4; // 8-bit entries: one byte each
        assert_eq!(
            r["compression"]["deep_compression_pq_bytes"]
                .as_u64()
                .unwrap(),
            dc_bytes
        );

        // Huffman: codes and z of every entry, each Huffman-coded, plus tables, pointers, codebook.
        let mut code_freq = [0u64; 16];
        let mut z_freq = [0u64; 16];
        for pe in pes {
            pe["codes"]
                .as_array()
                .unwrap()
                .iter()
                .for_each(|c| code_freq[c.as_u64().unwrap() as usize] += 1);
            pe["z"]
                .as_array()
                .unwrap()
                .iter()
                .for_each(|z| z_freq[z.as_u64().unwrap() as usize] += 1);
        }
        let huffman =
            (huffman_bits(&code_freq) + huffman_bits(&z_freq)).div_ceil(8) + 32 + pointers + 32;
        assert_eq!(
            r["compression"]["huffman_bytes"].as_u64().unwrap(),
            huffman,
            "{name}"
        );
        total_dense += dense;
        total_eie += eie;
    }
    assert_eq!(
        report["totals"]["bytes"]["total"].as_u64().unwrap(),
        total_eie
    );
    assert_eq!(
        report["totals"]["compression"]["vs_dense"]
            .as_f64()
            .unwrap(),
        total_dense as f64 / total_eie as f64
    );

    // unpack reads the result back: weight and bias, equal to the quantized checkpoint.
    t.run(&["unpack", "out", "-o", "dense.safetensors"]).ok();
    let dense = Checkpoint::open(t.path("dense.safetensors")).unwrap();
    for name in LAYERS {
        assert_eq!(f32s(&dense, name), f32s(&quantized, name));
        let bias = name.replace(".weight", ".bias");
        assert_eq!(f32s(&dense, &bias), f32s(&quantized, &bias));
    }
    t.run(&["verify", "out"]).ok();
}

#[test]
fn compress_output_is_deterministic() {
    let t = TestDir::new();
    for out in ["a", "b"] {
        t.run(&[
            "compress",
            &model(),
            "-o",
            out,
            "--density",
            "0.2",
            "--init",
            "kmeans++",
            "--seed",
            "5",
            "--balance",
            "--pes",
            "3",
        ])
        .ok();
    }
    assert_eq!(t.snapshot("a"), t.snapshot("b"));
}

#[test]
fn the_default_selection_skips_the_embedding_and_a_named_one_keeps_its_f16_dtype() {
    let t = TestDir::new();
    let report = json(
        t.run(&[
            "compress",
            &model(),
            "-o",
            "out",
            "--density",
            "0.5",
            "--json",
        ])
        .ok(),
    );
    let names: Vec<&str> = report["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["fc1.weight", "fc2.weight", "fc3.weight"]);
    assert_eq!(report["skipped"][0]["name"], "embed.weight");
    assert!(
        report["skipped"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("embedding table")
    );
    assert!(
        !t.exists("out/quantized.safetensors"),
        "dense checkpoints are opt-in"
    );
    let text = t
        .run(&["compress", &model(), "-o", "out2", "--density", "0.5"])
        .ok()
        .to_string();
    assert!(
        text.contains("skipped 1 weight tensor (--layers selects any of them; report.json lists every one): embed.weight (embedding table"),
        "{text}"
    );

    // Named, the embedding is a layer; an f16 one keeps its dtype.
    let report = json(
        t.run(&[
            "compress",
            &model(),
            "-o",
            "out3",
            "--density",
            "0.5",
            "--json",
            "--dense-checkpoints",
            "--layers",
            "embed.weight",
            "--layers",
            "fc*.weight",
        ])
        .ok(),
    );
    let quantized = Checkpoint::open(t.path("out3/quantized.safetensors")).unwrap();
    assert_eq!(quantized.info("embed.weight").unwrap().dtype, Dtype::F16);
    // The f16 values are exactly the codebook's (centroids are rounded to f16 first).
    let centroids: Vec<f32> = report_layer(&report, "embed.weight")["quantization"]["centroids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .collect();
    for v in f32s(&quantized, "embed.weight") {
        assert!(v == 0.0 || centroids.contains(&v), "{v}");
    }
    t.run(&["unpack", "out3", "-o", "d.safetensors"]).ok();
    let d = Checkpoint::open(t.path("d.safetensors")).unwrap();
    assert_eq!(f32s(&d, "embed.weight"), f32s(&quantized, "embed.weight"));
}

#[test]
fn pruning_rules_and_codebooks() {
    let t = TestDir::new();
    let run = |args: &[&str]| {
        let mut a = vec![
            "compress",
            "MODEL",
            "-o",
            "out",
            "--force",
            "--layers",
            "fc*.weight",
            "--pes",
            "4",
            "--json",
            "--dense-checkpoints",
        ];
        a.extend_from_slice(args);
        let m = model();
        a[1] = &m;
        json(t.run(&a).ok())
    };
    // Global density: 10% of all weights, one threshold.
    let g = run(&["--global-density", "0.1"]);
    let total: u64 = LAYERS
        .iter()
        .map(|n| report_layer(&g, n)["pruning"]["weights"].as_u64().unwrap())
        .sum();
    assert_eq!(
        g["totals"]["kept"].as_u64().unwrap(),
        (0.1 * total as f64).round() as u64
    );
    let thresholds: Vec<f64> = LAYERS
        .iter()
        .map(|n| {
            report_layer(&g, n)["pruning"]["threshold"]
                .as_f64()
                .unwrap()
        })
        .collect();
    let densities: Vec<f64> = LAYERS
        .iter()
        .map(|n| report_layer(&g, n)["pruning"]["density"].as_f64().unwrap())
        .collect();
    assert!(
        densities.windows(2).any(|d| (d[0] - d[1]).abs() > 0.01),
        "layers differ: {densities:?}"
    );
    assert!(
        thresholds
            .windows(2)
            .all(|t| (t[0] - t[1]).abs() <= 0.02 * t[0]),
        "one threshold: {thresholds:?}"
    );

    // Han's std rule: about 48% of a Gaussian is within 0.7 std.
    let s = run(&["--threshold-std", "0.7"]);
    let d = report_layer(&s, "fc1.weight")["pruning"]["density"]
        .as_f64()
        .unwrap();
    assert!((0.44..0.56).contains(&d), "{d}");

    // The optimal codebook never has a larger SSE than k-means.
    let km = run(&["--density", "0.3"]);
    let opt = run(&["--density", "0.3", "--codebook", "optimal"]);
    for n in LAYERS {
        let (a, b) = (
            report_layer(&km, n)["quantization"]["sse"]
                .as_f64()
                .unwrap(),
            report_layer(&opt, n)["quantization"]["sse"]
                .as_f64()
                .unwrap(),
        );
        assert!(b <= a * (1.0 + 1e-9), "{n}: optimal {b} > k-means {a}");
    }

    // Balanced pruning: every PE keeps the same count, within one; cost and gain reported.
    let bal = run(&["--density", "0.1", "--balance"]);
    for n in LAYERS {
        let b = &report_layer(&bal, n)["balance"];
        assert!(
            b["balanced"]["max"].as_f64().unwrap() - b["balanced"]["min"].as_f64().unwrap() <= 1.0,
            "{n}: {b}"
        );
        assert!(
            b["balanced"]["imbalance"].as_f64().unwrap()
                <= b["plain"]["imbalance"].as_f64().unwrap()
        );
        assert_eq!(b["kept_not_plain"], b["plain_not_kept"]);
    }
    let text = t
        .run(&[
            "compress",
            &model(),
            "-o",
            "out",
            "--force",
            "--density",
            "0.1",
            "--balance",
            "--pes",
            "4",
        ])
        .ok()
        .to_string();
    assert!(text.contains("imbalance plain"), "{text}");

    // No bias column: biases stay out of the images and are copied unchanged.
    let nb = run(&["--density", "0.5", "--no-bias-column"]);
    assert!(report_layer(&nb, "fc1.weight")["bias"].is_null());
    let q = Checkpoint::open(t.path("out/quantized.safetensors")).unwrap();
    assert_eq!(
        f32s(&q, "fc1.bias"),
        f32s(&Checkpoint::open(model()).unwrap(), "fc1.bias")
    );
    // Two-bit codes: at most three shared values.
    let two = run(&["--density", "0.5", "--code-bits", "2", "--index-bits", "2"]);
    assert_eq!(
        report_layer(&two, "fc2.weight")["quantization"]["centroids"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
}

#[test]
fn recipe_reproduces_the_alexnet_settings() {
    let t = TestDir::new();
    // AlexNet's classifier names and layer order, at a small size.
    let shapes = [
        ("classifier.1.weight", 48, 72),
        ("classifier.4.weight", 48, 48),
        ("classifier.6.weight", 10, 48),
    ];
    let mut tensors = Vec::new();
    for (i, (name, rows, cols)) in shapes.iter().enumerate() {
        let w: Vec<f32> = (0..rows * cols)
            .map(|j| ((j * 7919 + i * 104729) % 1000) as f32 / 1000.0 - 0.5)
            .collect();
        tensors.push((*name, vec![*rows, *cols], w));
    }
    let m = t.checkpoint("alexnet.safetensors", &tensors);
    let recipe = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/recipes/alexnet.toml");
    let r = json(
        t.run(&[
            "compress",
            m.to_str().unwrap(),
            "-o",
            "out",
            "--recipe",
            recipe.to_str().unwrap(),
            "--json",
        ])
        .ok(),
    );
    let got: BTreeMap<String, (f64, u64)> = r["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["name"].as_str().unwrap().to_string(),
                (
                    l["pruning"]["density"].as_f64().unwrap(),
                    l["quantization"]["code_bits"].as_u64().unwrap(),
                ),
            )
        })
        .collect();
    let close = |a: f64, b: f64| (a - b).abs() < 0.002;
    assert!(
        close(got["classifier.1.weight"].0, 0.09)
            && close(got["classifier.4.weight"].0, 0.09)
            && close(got["classifier.6.weight"].0, 0.25),
        "{got:?}"
    );
    assert!(got.values().all(|&(_, bits)| bits == 4));
}

#[test]
fn sharded_checkpoint_through_its_index() {
    let t = TestDir::new();
    let w1: Vec<f32> = (0..40 * 30)
        .map(|i| ((i * 37) % 101) as f32 / 50.0 - 1.0)
        .collect();
    let w2: Vec<f32> = (0..10 * 40)
        .map(|i| ((i * 53) % 97) as f32 / 40.0 - 1.2)
        .collect();
    t.checkpoint(
        "model-00001-of-00002.safetensors",
        &[("fc1.weight", vec![40, 30], w1.clone())],
    );
    t.checkpoint(
        "model-00002-of-00002.safetensors",
        &[("fc2.weight", vec![10, 40], w2.clone())],
    );
    t.write(
        "model.safetensors.index.json",
        br#"{"metadata": {"total_size": 6400}, "weight_map": {"fc1.weight": "model-00001-of-00002.safetensors", "fc2.weight": "model-00002-of-00002.safetensors"}}"#,
    );
    let single = t.checkpoint(
        "single.safetensors",
        &[
            ("fc1.weight", vec![40, 30], w1),
            ("fc2.weight", vec![10, 40], w2),
        ],
    );
    t.run(&[
        "compress",
        "model.safetensors.index.json",
        "-o",
        "sharded",
        "--density",
        "0.25",
        "--pes",
        "4",
        "--dense-checkpoints",
    ])
    .ok();
    t.run(&[
        "compress",
        single.to_str().unwrap(),
        "-o",
        "one",
        "--density",
        "0.25",
        "--pes",
        "4",
    ])
    .ok();
    let (a, b) = (
        json(t.run(&["inspect", "sharded", "--json"]).ok()),
        json(t.run(&["inspect", "one", "--json"]).ok()),
    );
    assert_eq!(
        a["layers"], b["layers"],
        "same layers whether sharded or not"
    );
    let q = Checkpoint::open(t.path("sharded/quantized.safetensors")).unwrap();
    assert_eq!(q.shards(), 1);
    assert_eq!(
        q.metadata().get("total_size").map(String::as_str),
        Some("6400")
    );
}

#[test]
fn small_and_empty_layers_work() {
    let t = TestDir::new();
    // 5 non-zeros for 15 codebook entries: 5 shared values, exactly the weights (SSE 0).
    let mut few = vec![0.0f32; 64];
    for (i, v) in [(3, 0.5), (10, -0.25), (20, 0.125), (40, 1.0), (63, -2.0)] {
        few[i] = v;
    }
    let m = t.checkpoint(
        "m.safetensors",
        &[
            ("few.weight", vec![8, 8], few.clone()),
            ("zero.weight", vec![4, 6], vec![0.0; 24]),
        ],
    );
    let r = json(
        t.run(&[
            "compress",
            m.to_str().unwrap(),
            "-o",
            "out",
            "--pes",
            "4",
            "--json",
        ])
        .ok(),
    );
    let few_r = report_layer(&r, "few.weight");
    assert_eq!(
        few_r["quantization"]["centroids"],
        serde_json::json!([-2.0, -0.25, 0.125, 0.5, 1.0])
    );
    assert_eq!(few_r["quantization"]["sse"], 0.0);
    let zero = report_layer(&r, "zero.weight");
    assert_eq!(
        (zero["entries"].as_u64(), zero["pruning"]["kept"].as_u64()),
        (Some(0), Some(0))
    );
    assert!(
        zero["quantization"]["centroids"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    t.run(&["verify", "out"]).ok();
    t.run(&["unpack", "out", "-o", "d.safetensors"]).ok();
    let d = Checkpoint::open(t.path("d.safetensors")).unwrap();
    assert_eq!(f32s(&d, "few.weight"), few);
    assert_eq!(f32s(&d, "zero.weight"), vec![0.0; 24]);
}

/// A checkpoint written the way Python's safetensors writes one (tensors sorted by name):
/// the layers come in the model's order, numbered blocks by their numbers and the head last,
/// and the embedding and the norms are listed as skipped.
#[test]
fn a_name_sorted_transformer_is_compressed_in_model_order() {
    let t = TestDir::new();
    let mut tensors: Vec<(String, Vec<usize>)> = vec![
        ("lm_head.weight".into(), vec![16, 8]),
        ("model.embed_tokens.weight".into(), vec![16, 8]),
        ("model.norm.weight".into(), vec![8]),
    ];
    for i in 0..11 {
        tensors.push((
            format!("model.layers.{i}.self_attn.q_proj.weight"),
            vec![8, 8],
        ));
        tensors.push((format!("model.layers.{i}.mlp.down_proj.weight"), vec![8, 8]));
        tensors.push((format!("model.layers.{i}.input_layernorm.weight"), vec![8]));
    }
    tensors.sort();
    let data: Vec<(&str, Vec<usize>, Vec<f32>)> = tensors
        .iter()
        .map(|(n, s)| {
            let len: usize = s.iter().product();
            let v = (0..len)
                .map(|i| ((i * 13 % 17) as f32 - 8.0) / 8.0)
                .collect();
            (n.as_str(), s.clone(), v)
        })
        .collect();
    t.checkpoint("lm.safetensors", &data);
    let r = json(
        t.run(&[
            "compress",
            "lm.safetensors",
            "-o",
            "out",
            "--density",
            "0.5",
            "--pes",
            "2",
            "--json",
        ])
        .ok(),
    );
    let names: Vec<&str> = r["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    let mut expected: Vec<String> = (0..11)
        .flat_map(|i| {
            [
                format!("model.layers.{i}.mlp.down_proj.weight"),
                format!("model.layers.{i}.self_attn.q_proj.weight"),
            ]
        })
        .collect();
    expected.push("lm_head.weight".into());
    assert_eq!(names, expected);
    let skipped: Vec<&str> = r["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(skipped.len(), 13);
    assert_eq!(skipped[0], "model.embed_tokens.weight");
    assert_eq!(skipped[1], "model.layers.0.input_layernorm.weight");
    // The images are in the same order.
    let manifest = json(&std::fs::read_to_string(t.path("out/manifest.json")).unwrap());
    assert_eq!(
        manifest["layers"][2]["name"],
        "model.layers.1.mlp.down_proj.weight"
    );
    assert_eq!(manifest["layers"][22]["dir"], "images/022-lm_head.weight");
}

/// The dense checkpoints are one flag or one recipe key; both at once is an error.
#[test]
fn dense_checkpoints_are_opt_in_by_flag_or_recipe() {
    let t = TestDir::new();
    let m = model();
    t.write(
        "r.toml",
        b"dense_checkpoints = true\n[defaults]\ndensity = 0.5\n",
    );
    t.run(&["compress", &m, "-o", "a", "--recipe", "r.toml"])
        .ok();
    assert!(t.exists("a/pruned.safetensors") && t.exists("a/quantized.safetensors"));
    t.run(&["compress", &m, "-o", "b", "--density", "0.5"]).ok();
    assert!(!t.exists("b/pruned.safetensors") && !t.exists("b/quantized.safetensors"));
    t.run(&[
        "compress",
        &m,
        "-o",
        "c",
        "--recipe",
        "r.toml",
        "--dense-checkpoints",
    ])
    .fails_with(&["dense_checkpoints set both", "r.toml"]);
    assert!(!t.exists("c"));
    // No spool or staging file is left behind.
    let names: Vec<String> = std::fs::read_dir(t.path("b"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.starts_with('.')), "{names:?}");
}
