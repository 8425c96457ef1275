//! `simulate`, `bench-paper`, `sweep` and `vectors` end to end.

use eie_checkpoint::Dtype;
use serde_json::Value;

use crate::util::{TestDir, fixture, json, tiny_model};

fn model(t: &TestDir) {
    tiny_model(t, "m");
}

fn words(bytes: &[u8], width: usize) -> Vec<u64> {
    bytes
        .chunks(width)
        .map(|c| c.iter().rev().fold(0u64, |a, &b| (a << 8) | b as u64))
        .collect()
}

#[test]
fn simulate_reports_timing_and_outputs() {
    let t = TestDir::new();
    model(&t);
    let r = json(
        t.run(&[
            "simulate",
            "m",
            "--act-density",
            "0.5",
            "--seed",
            "3",
            "--json",
        ])
        .ok(),
    );
    assert_eq!(r["mode"], "chained");
    assert_eq!(r["pes"], 8);
    let layers = r["vectors"][0]["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 2);
    let fracs: Vec<u64> = r["fractions"][0]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    for (i, l) in layers.iter().enumerate() {
        let cycles = l["cycles"].as_u64().unwrap();
        assert!(
            cycles >= l["lower_bound"].as_u64().unwrap()
                && cycles >= l["theoretical_cycles"].as_u64().unwrap()
        );
        assert_eq!(l["time_us"].as_f64().unwrap(), cycles as f64 / 800.0);
        let pes = l["pe"].as_array().unwrap();
        assert_eq!(pes.len(), 8);
        let busy: u64 = pes.iter().map(|p| p["busy"].as_u64().unwrap()).sum();
        assert!(
            (l["load_efficiency"].as_f64().unwrap() - busy as f64 / (8 * cycles) as f64).abs()
                < 1e-12
        );
        for p in pes {
            assert_eq!(
                p["busy"].as_u64().unwrap() + p["starved"].as_u64().unwrap(),
                cycles
            );
        }
        // Outputs: 16-bit values and the numbers they stand for.
        let f = l["outputs"]["frac_bits"].as_u64().unwrap();
        assert_eq!(f, fracs[i + 1]);
        let fixed = l["outputs"]["fixed"].as_array().unwrap();
        let float = l["outputs"]["float"].as_array().unwrap();
        for (q, x) in fixed.iter().zip(float) {
            assert_eq!(
                (q.as_i64().unwrap() as f64 / (1u64 << f) as f64) as f32,
                x.as_f64().unwrap() as f32
            );
        }
        if i == 0 {
            assert!(
                fixed.iter().all(|q| q.as_i64().unwrap() >= 0),
                "ReLU on a hidden layer"
            );
        }
    }
    // Layer 2 broadcasts layer 1's non-zero outputs plus its bias column.
    let nonzero = layers[0]["outputs"]["fixed"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|q| q.as_i64() != Some(0))
        .count();
    assert_eq!(
        layers[1]["broadcasts"].as_u64().unwrap() as usize,
        nonzero + 1
    );
    // Deterministic; and a table without --json.
    assert_eq!(
        json(
            t.run(&[
                "simulate",
                "m",
                "--act-density",
                "0.5",
                "--seed",
                "3",
                "--json"
            ])
            .ok()
        ),
        r
    );
    let text = t.run(&["simulate", "m", "--fifo", "2"]).ok().to_string();
    assert!(
        text.contains("fc1.weight") && text.contains("load eff."),
        "{text}"
    );
}

#[test]
fn simulate_reads_input_vectors_from_safetensors() {
    let t = TestDir::new();
    model(&t);
    let batch: Vec<f32> = (0..3 * 64)
        .map(|i| ((i * 37 % 11) as f32 - 5.0) / 7.0)
        .collect();
    t.checkpoint("in.safetensors", &[("x", vec![3, 64], batch)]);
    let r = json(
        t.run(&["simulate", "m", "--input", "in.safetensors", "--json"])
            .ok(),
    );
    assert_eq!(r["vectors"].as_array().unwrap().len(), 3);
    // One vector of zeros: only the bias column is broadcast in layer 1.
    t.checkpoint("zeros.safetensors", &[("x", vec![64], vec![0.0; 64])]);
    let r = json(
        t.run(&["simulate", "m", "--input", "zeros.safetensors", "--json"])
            .ok(),
    );
    assert_eq!(r["vectors"][0]["layers"][0]["broadcasts"], 1);
}

#[test]
fn vectors_hold_what_the_write_back_makes_of_the_accumulators() {
    let t = TestDir::new();
    model(&t);
    t.run(&[
        "vectors",
        "m",
        "-o",
        "v",
        "--act-density",
        "0.7",
        "--seed",
        "5",
    ])
    .ok();
    let manifest = json(&std::fs::read_to_string(t.path("v/manifest.json")).unwrap());
    let layers = manifest["layers"].as_array().unwrap();
    let read = |l: &Value, kind: &str, pe: Option<u64>| -> Vec<u64> {
        let f = l["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["kind"] == kind && f["pe"].as_u64() == pe && f["encoding"] == "binary")
            .unwrap();
        let bytes = std::fs::read(t.path("v").join(f["path"].as_str().unwrap())).unwrap();
        use sha2::Digest;
        let digest: String = sha2::Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(f["sha256"], digest);
        words(&bytes, f["word_bits"].as_u64().unwrap() as usize / 8)
    };
    for (i, l) in layers.iter().enumerate() {
        let (rows, pes) = (
            l["rows"].as_u64().unwrap() as usize,
            l["pes"].as_u64().unwrap() as usize,
        );
        let guard = (l["frac_acc"].as_u64().unwrap() - l["frac_out"].as_u64().unwrap()) as u32;
        let outputs: Vec<i16> = read(l, "output", None)
            .iter()
            .map(|&w| w as u16 as i16)
            .collect();
        assert_eq!(outputs.len(), rows);
        // Every output = ReLU(sat16(round(acc / 2^guard))), acc from its PE's file.
        for pe in 0..pes {
            let acc: Vec<i64> = read(l, "accumulators", Some(pe as u64))
                .iter()
                .map(|&w| w as u32 as i32 as i64)
                .collect();
            for (local, &a) in acc.iter().enumerate() {
                let row = pe + local * pes;
                let b = ((a + (1 << (guard - 1))) >> guard).clamp(-32768, 32767);
                let b = if l["relu"] == true { b.max(0) } else { b };
                assert_eq!(outputs[row] as i64, b, "layer {i} row {row}");
            }
        }
        // Chained: a layer's outputs are the next layer's inputs.
        if i + 1 < layers.len() {
            assert_eq!(read(&layers[i + 1], "input", None), read(l, "output", None));
        }
    }
    // The hex twin says the same words.
    let hex = std::fs::read_to_string(t.path("v/000-fc1.weight/output.hex")).unwrap();
    let from_hex: Vec<u64> = hex
        .lines()
        .map(|l| u64::from_str_radix(l, 16).unwrap())
        .collect();
    assert_eq!(from_hex, read(&layers[0], "output", None));
}

#[test]
fn bench_paper_runs_the_nine_layers() {
    let t = TestDir::new();
    let r = json(t.run(&["bench-paper", "--json"]).ok());
    let layers = r["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 9);
    // Energy: every layer's, adding up to the nine layers' total; powers of the order of
    // Table II's 64 x 9.157 mW; each savings chain multiplying to its product.
    let mut sum_nj = 0.0;
    for l in layers {
        let e = &l["energy"];
        let nj = e["total_nj"].as_f64().unwrap();
        let parts: f64 = e["components_pj"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_f64().unwrap())
            .sum();
        assert!((parts / 1e3 - nj).abs() < 1e-6 * nj, "{}", l["name"]);
        // VGG-6's seven column batches need 50 KB of pointers per PE, over the 32 KB SRAM:
        // it alone fetches from DRAM. The others draw about Table II's power.
        let dram = e["components_pj"]["dram"].as_f64().unwrap();
        assert_eq!(
            dram > 0.0,
            l["name"] == "VGG-6",
            "{}: {dram} pJ of DRAM",
            l["name"]
        );
        let mw = e["power_mw"].as_f64().unwrap();
        if dram == 0.0 {
            assert!((300.0..1500.0).contains(&mw), "{}: {mw} mW", l["name"]);
        }
        let s = &l["savings"];
        let product: f64 = s["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|st| st["factor"].as_f64().unwrap())
            .product();
        assert!((product / s["product"].as_f64().unwrap() - 1.0).abs() < 1e-9);
        assert!(
            s["actual"].as_f64().unwrap() < product,
            "the real saving is below the product"
        );
        sum_nj += nj;
    }
    let total = r["total"]["energy"]["total_nj"].as_f64().unwrap();
    assert!((total - sum_nj).abs() < 1e-6 * total);
    let dram = r["energy_table"]["dram_32b_pj"].as_f64().unwrap();
    assert_eq!(dram, 640.0);
    for l in layers {
        let name = l["name"].as_str().unwrap();
        assert!(
            l["cycles"].as_u64().unwrap() >= l["theoretical_cycles"].as_u64().unwrap(),
            "{name}"
        );
        let e = l["load_efficiency"].as_f64().unwrap();
        assert!(e > 0.5 && e <= 1.0, "{name}: {e}");
        let expected_batches = if name == "VGG-6" { 7 } else { 1 };
        assert_eq!(
            l["batches"], expected_batches,
            "{name}: too wide for 16-bit pointers on 64 PEs"
        );
    }
    // Keeping VGG-6 whole (unbounded pointers) is faster: the batches cost barriers.
    let whole = json(
        t.run(&["bench-paper", "--json", "--column-batch", "0"])
            .ok(),
    );
    let (a, b) = (
        layers[3]["cycles"].as_u64().unwrap(),
        whole["layers"][3]["cycles"].as_u64().unwrap(),
    );
    assert!(a > b, "batched {a} vs whole {b}");
    let text = t.run(&["bench-paper"]).ok().to_string();
    assert!(
        text.contains("VGG-6") && text.contains("simulated us"),
        "{text}"
    );
}

#[test]
fn sweeps_write_a_csv_and_plots() {
    let t = TestDir::new();
    t.run(&["sweep", "s", "--param", "pes", "--values", "4,16,64"])
        .ok();
    let csv = std::fs::read_to_string(t.path("s/sweep-pes.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 9 * 3);
    for svg in ["s/sweep-pes.svg", "s/sweep-pes-padding.svg"] {
        assert!(
            std::fs::read_to_string(t.path(svg))
                .unwrap()
                .starts_with("<svg"),
            "{svg}"
        );
    }
    // More PEs: fewer rows per PE slice, so less padding (the paper's Figure 12).
    let padding = |layer: &str, pes: &str| -> f64 {
        csv.lines()
            .find(|l| l.starts_with(&format!("{layer},pes,{pes},")))
            .unwrap()
            .split(',')
            .nth(9)
            .unwrap()
            .parse()
            .unwrap()
    };
    assert!(padding("VGG-7", "64") < padding("VGG-7", "4"));
    // Queue depth: load efficiency grows with it (Figure 8).
    t.run(&[
        "sweep", "s", "--param", "fifo", "--values", "1,8", "--force",
    ])
    .ok();
    let csv = std::fs::read_to_string(t.path("s/sweep-fifo.csv")).unwrap();
    let eff = |v: &str| -> f64 {
        csv.lines()
            .find(|l| l.starts_with(&format!("Alex-7,fifo,{v},")))
            .unwrap()
            .split(',')
            .nth(5)
            .unwrap()
            .parse()
            .unwrap()
    };
    assert!(
        eff("1") < 0.7 && eff("8") > 0.9,
        "{} {}",
        eff("1"),
        eff("8")
    );
    // A packed model as the workload; other parameters.
    model(&t);
    t.run(&[
        "sweep",
        "s2",
        "--param",
        "index-bits",
        "--values",
        "1,2,4",
        "--model",
        "m",
    ])
    .ok();
    t.run(&[
        "sweep",
        "s2",
        "--param",
        "spmat-width",
        "--values",
        "16,64",
        "--model",
        "m",
        "--force",
    ])
    .ok();
    assert!(t.exists("s2/sweep-index-bits-time.svg") && t.exists("s2/sweep-spmat-width.svg"));
}

// ---- bad input ------------------------------------------------------------------------------

#[test]
fn simulate_bad_inputs() {
    let t = TestDir::new();
    model(&t);
    t.checkpoint("short.safetensors", &[("x", vec![10], vec![0.5; 10])]);
    t.run(&["simulate", "m", "--input", "short.safetensors"])
        .fails_with(&["\"x\"", "[10]", "expected [64]"]);
    t.checkpoint_raw(
        "int.safetensors",
        &[("x".to_string(), Dtype::I32, vec![64])],
        &[vec![0; 256]],
    );
    t.run(&["simulate", "m", "--input", "int.safetensors"])
        .fails_with(&["int.safetensors", "\"x\"", "I32"]);
    let mut v = vec![0.5f32; 64];
    v[7] = f32::NAN;
    t.checkpoint("nan.safetensors", &[("x", vec![64], v.clone())]);
    t.run(&["simulate", "m", "--input", "nan.safetensors"])
        .fails_with(&["nan.safetensors", "value 7", "NaN"]);
    v[7] = f32::INFINITY;
    t.checkpoint("inf.safetensors", &[("x", vec![64], v)]);
    t.run(&["simulate", "m", "--input", "inf.safetensors"])
        .fails_with(&["value 7", "inf"]);
    t.checkpoint(
        "two.safetensors",
        &[
            ("a", vec![64], vec![0.0; 64]),
            ("b", vec![64], vec![0.0; 64]),
        ],
    );
    t.run(&["simulate", "m", "--input", "two.safetensors"])
        .fails_with(&["holds 2 tensors", "--input-tensor"]);
    t.run(&[
        "simulate",
        "m",
        "--input",
        "two.safetensors",
        "--input-tensor",
        "b",
    ])
    .ok();
    for d in ["1.5", "-0.1"] {
        t.run(&["simulate", "m", "--act-density", d])
            .usage_error(&["--act-density", "[0, 1]"]);
    }
    t.run(&["simulate", "m", "--fifo", "0"])
        .fails_with(&["queue depth", "at least 1"]);
    t.run(&["simulate", "m", "--pes", "4"])
        .fails_with(&["packed for 8 PEs", "re-pack with --pes 4"]);
    let r = t.run(&["simulate", "m", "--pes", "0"]);
    assert_eq!(r.status, 2, "{}", r.stderr);
    t.run(&["simulate", "m", "--acc-bits", "33"])
        .fails_with(&["accumulator width", "even"]);
    t.run(&["simulate", "m", "--act-frac", "14,15,14"])
        .fails_with(&["activation fraction", "0..=14"]);
    t.run(&["simulate", "m", "--act-frac", "14,14"])
        .fails_with(&["2 activation fractions", "3 layer boundaries"]);
    // A bundle that fails validation.
    let p = t.path("m/model.eie");
    let mut b = std::fs::read(&p).unwrap();
    let at = b.len() - 3;
    b[at] ^= 1;
    std::fs::write(&p, b).unwrap();
    t.run(&["simulate", "m"])
        .fails_with(&["model.eie", "checksum mismatch"]);
    t.run(&["vectors", "m", "-o", "v"])
        .fails_with(&["model.eie", "checksum mismatch"]);
    assert!(!t.exists("v"));
}

#[test]
fn layers_that_do_not_chain_run_independently() {
    let t = TestDir::new();
    t.run(&[
        "pack",
        fixture("figure2.safetensors").to_str().unwrap(),
        "-o",
        "f",
        "--pes",
        "4",
    ])
    .ok();
    // figure2 and tiny-mlp's layers do not chain: a two-model bundle is made by packing both
    // tensors of one file that do not chain.
    let t2 = t.checkpoint(
        "nc.safetensors",
        &[
            ("a.weight", vec![4, 6], vec![0.5; 24]),
            ("b.weight", vec![3, 5], vec![0.25; 15]),
        ],
    );
    t.run(&["pack", t2.to_str().unwrap(), "-o", "nc", "--pes", "2"])
        .ok();
    let r = json(t.run(&["simulate", "nc", "--json"]).ok());
    assert_eq!(r["mode"], "independent");
    t.checkpoint("in.safetensors", &[("x", vec![6], vec![1.0; 6])]);
    t.run(&["simulate", "nc", "--input", "in.safetensors"])
        .fails_with(&["\"b.weight\"", "--layer"]);
    let one = json(
        t.run(&[
            "simulate",
            "nc",
            "--input",
            "in.safetensors",
            "--layer",
            "a.weight",
            "--json",
        ])
        .ok(),
    );
    assert_eq!(one["vectors"][0]["layers"][0]["broadcasts"], 6);
    t.run(&["simulate", "f", "--layer", "nope"])
        .fails_with(&["\"nope\"", "fig2.weight"]);
}

/// docs/timing-model.md shows bench-paper's timing table as the tool prints it, and
/// docs/energy.md its energy and savings tables: a change to a model that moves a figure
/// must update its document.
#[test]
fn the_documents_show_bench_papers_tables() {
    let t = TestDir::new();
    let printed = t.run(&["bench-paper"]).ok().to_string();
    let (timing, energy) = printed
        .split_once("\n\n")
        .expect("the timing table, then energy");
    let doc = |name: &str| {
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(name))
            .unwrap()
    };
    assert!(
        doc("docs/timing-model.md").contains(&format!("{timing}\n")),
        "docs/timing-model.md is out of date; bench-paper now prints:\n{timing}"
    );
    assert!(
        doc("docs/energy.md").contains(energy),
        "docs/energy.md is out of date; bench-paper now prints:\n{energy}"
    );
}

#[test]
fn the_authors_timing_rules_run_and_refuse_what_they_fix() {
    let t = TestDir::new();
    let f2 = fixture("figure2.safetensors");
    t.run(&["pack", f2.to_str().unwrap(), "-o", "f2", "--pes", "4"])
        .ok();
    let cycles = |extra: &[&str]| -> u64 {
        let mut args = vec!["simulate", "f2", "--json"];
        args.extend_from_slice(extra);
        json(t.run(&args).ok())["vectors"][0]["layers"][0]["cycles"]
            .as_u64()
            .unwrap()
    };
    let rtl = cycles(&[]);
    let authors = cycles(&["--timing-rules", "authors"]);
    assert_eq!(rtl, 19);
    assert!(authors >= 9 && authors != rtl, "{authors}");
    t.run(&["simulate", "f2", "--timing-rules", "authors", "--fifo", "1"])
        .fails_with(&["at least 2 with the authors' rules"]);
    t.run(&[
        "simulate",
        "f2",
        "--timing-rules",
        "authors",
        "--queue-ring",
    ])
    .fails_with(&["--queue-ring must be off with --timing-rules authors"]);
    // A queue-depth sweep under their rules (the paper's Figure 8, their way).
    t.run(&[
        "sweep",
        "sw",
        "--model",
        "f2",
        "--param",
        "fifo",
        "--values",
        "2,3,5,9",
        "--timing-rules",
        "authors",
    ])
    .ok();
    assert!(t.exists("sw/sweep-fifo.csv"));
}

/// Under `--timing-rules authors` their simulator's stop rule can fire with products in
/// flight: the JSON says how many (`unfinished`), the text says so in a note; under this
/// project's rules there are none.
#[test]
fn the_authors_stop_rule_is_reported_when_it_leaves_products() {
    let t = TestDir::new();
    model(&t);
    let run = |rules: &str, json_out: bool| {
        let mut args = vec![
            "simulate",
            "m",
            "--act-density",
            "0.1",
            "--seed",
            "3",
            "--fifo",
            "2",
            "--timing-rules",
            rules,
        ];
        if json_out {
            args.push("--json");
        }
        t.run(&args).ok().to_string()
    };
    let unfinished = |rules: &str| -> Vec<u64> {
        json(&run(rules, true))["vectors"][0]["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["unfinished"].as_u64().unwrap())
            .collect()
    };
    assert!(unfinished("rtl").iter().all(|&u| u == 0));
    let theirs = unfinished("authors");
    eprintln!("authors' unfinished: {theirs:?}");
    assert!(theirs.iter().any(|&u| u > 0), "{theirs:?}");
    let text = run("authors", false);
    assert!(text.contains("products not yet accumulated"), "{text}");
    assert!(!run("rtl", false).contains("not yet accumulated"));
}
