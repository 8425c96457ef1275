//! Co-simulation of the reference design (`rtl/`) through `rtl-check`: the cases of
//! docs/rtl.md, each PASS with the RTL's cycle counts equal to the timing model's. A test
//! whose simulator is not installed says so and passes (CI installs both).

use proptest::prelude::*;

use crate::util::{TestDir, fixture, json};

/// Whether `tool` runs here; prints why a test skips when it does not.
fn have(tool: &str) -> bool {
    let found = std::process::Command::new(tool)
        .arg(if tool == "iverilog" {
            "-V"
        } else {
            "--version"
        })
        .output()
        .is_ok();
    if !found {
        eprintln!("skipping: {tool} is not installed (apt-get install iverilog verilator yosys)");
    }
    found
}

/// Deterministic weights in [-1, 1): a 64-bit LCG.
fn weights(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// The paper's Figure 2 packed for 4 PEs into `f2`.
fn figure2(t: &TestDir) {
    let f2 = fixture("figure2.safetensors");
    t.run(&["pack", f2.to_str().unwrap(), "-o", "f2", "--pes", "4"])
        .ok();
}

/// Runs rtl-check and asserts PASS with every layer's RTL cycles equal to the model's.
#[track_caller]
fn passes(t: &TestDir, args: &[&str], layers: usize) -> String {
    let mut all = vec!["rtl-check"];
    all.extend_from_slice(args);
    let out = t.run(&all).ok().to_string();
    assert!(
        out.contains("PASS: every output and accumulator bit-exact"),
        "{out}"
    );
    let rows: Vec<&str> = out
        .lines()
        .skip_while(|l| !l.starts_with("layer "))
        .skip(1)
        .take(layers)
        .collect();
    assert_eq!(rows.len(), layers, "{out}");
    for row in rows {
        let w: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(w[w.len() - 1], w[w.len() - 2], "cycles differ: {row}");
    }
    out
}

#[test]
fn figure2_cosimulates_on_4_pes() {
    if !have("iverilog") {
        return;
    }
    let t = TestDir::new();
    figure2(&t);
    let out = passes(&t, &["f2"], 1);
    assert!(out.contains("4 PEs"), "{out}");
    // Loaded through the design's host write port instead: the same result.
    passes(&t, &["f2", "--host-load"], 1);
}

#[test]
fn the_demo_models_three_layers_cosimulate_on_8_pes() {
    if !have("iverilog") {
        return;
    }
    let t = TestDir::new();
    // The demo's recipe (without its retraining): fc1, fc2 at 10%, fc3 at 25%.
    t.write(
        "recipe.toml",
        b"[[layers]]\npattern = \"fc[12].weight\"\ndensity = 0.1\n\n\
          [[layers]]\npattern = \"fc3.weight\"\ndensity = 0.25\n",
    );
    let model = fixture("demo-mlp.safetensors");
    t.run(&[
        "compress",
        model.to_str().unwrap(),
        "-o",
        "demo",
        "--recipe",
        "recipe.toml",
        "--pes",
        "8",
    ])
    .ok();
    let m = json(&std::fs::read_to_string(t.path("demo/manifest.json")).unwrap());
    assert!(
        m["layers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| !l["bias"].is_null())
    );
    // A real input: one held-out sample of the demo's dataset, chained through all three.
    passes(
        &t,
        &["demo", "--dataset", "synthetic", "--range", "8000..8001"],
        3,
    );
    passes(
        &t,
        &[
            "demo",
            "--dataset",
            "synthetic",
            "--range",
            "8000..8001",
            "--host-load",
        ],
        3,
    );
}

#[test]
fn a_64_pe_layer_with_padding_a_bias_and_column_batches_cosimulates() {
    if !have("iverilog") {
        return;
    }
    let t = TestDir::new();
    let (rows, cols) = (150, 200);
    let ck = t.checkpoint(
        "m.safetensors",
        &[
            ("fc.weight", vec![rows, cols], weights(rows * cols, 1)),
            ("fc.bias", vec![rows], weights(rows, 2)),
        ],
    );
    t.run(&[
        "compress",
        ck.to_str().unwrap(),
        "-o",
        "m",
        "--pes",
        "64",
        "--density",
        "0.05",
        "--index-bits",
        "1",
        "--column-batch",
        "64",
    ])
    .ok();
    let m = json(&std::fs::read_to_string(t.path("m/manifest.json")).unwrap());
    let parts = m["layers"].as_array().unwrap();
    assert_eq!(parts.len(), 4, "201 columns in batches of 64");
    assert!(
        parts
            .iter()
            .map(|p| p["padding"].as_u64().unwrap())
            .sum::<u64>()
            > 0
    );
    assert!(!parts[3]["bias"].is_null());
    // A shallow queue, so that the broadcast stalls too.
    passes(&t, &["m", "--fifo", "2", "--act-density", "0.5"], 1);
}

#[test]
fn an_alex8_sized_layer_cosimulates_in_verilator() {
    if !have("verilator") {
        return;
    }
    // Table III's Alex-8: 4096 inputs, 1000 outputs, 25% weights, 37.5% activations, 64 PEs.
    let t = TestDir::new();
    let ck = t.checkpoint(
        "alex8.safetensors",
        &[("fc8.weight", vec![1000, 4096], weights(1000 * 4096, 8))],
    );
    t.run(&[
        "compress",
        ck.to_str().unwrap(),
        "-o",
        "a8",
        "--pes",
        "64",
        "--density",
        "0.25",
    ])
    .ok();
    passes(
        &t,
        &["a8", "--simulator", "verilator", "--act-density", "0.375"],
        1,
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, failure_persistence: None, ..ProptestConfig::default() })]

    /// Any small chained model, any widths, PE count, column batches, queue depth and
    /// accumulator width: bit-exact, and the same cycles as the timing model.
    #[test]
    fn random_models_cosimulate(
        seed in 0u64..1_000_000,
        sizes in proptest::collection::vec(1usize..40, 2..4),
        pes in prop::sample::select(vec![1usize, 2, 3, 5, 8, 17]),
        code_bits in 1u8..=8,
        index_bits in 1u8..=4,
        density in prop::sample::select(vec![0.03f64, 0.2, 1.0]),
        batch in prop::sample::select(vec!["0", "7", "auto"]),
        fifo in 1usize..=4,
        acc_bits in prop::sample::select(vec![20u8, 32, 40]),
        act_density in prop::sample::select(vec![0.0f64, 0.4, 1.0]),
    ) {
        if !have("iverilog") {
            return Ok(());
        }
        let t = TestDir::new();
        let mut tensors = Vec::new();
        let names: Vec<(String, String)> =
            (0..sizes.len() - 1).map(|i| (format!("l{i}.weight"), format!("l{i}.bias"))).collect();
        for (i, w) in sizes.windows(2).enumerate() {
            tensors.push((names[i].0.as_str(), vec![w[1], w[0]], weights(w[0] * w[1], seed + i as u64)));
            if (seed >> i) & 1 == 0 {
                tensors.push((names[i].1.as_str(), vec![w[1]], weights(w[1], seed + 100 + i as u64)));
            }
        }
        let ck = t.checkpoint("m.safetensors", &tensors);
        let (pes, cb, ib, d) = (pes.to_string(), code_bits.to_string(), index_bits.to_string(), density.to_string());
        t.run(&["compress", ck.to_str().unwrap(), "-o", "m", "--pes", &pes, "--code-bits", &cb,
            "--index-bits", &ib, "--density", &d, "--column-batch", batch]).ok();
        let (fifo, acc, ad, s) = (fifo.to_string(), acc_bits.to_string(), act_density.to_string(), seed.to_string());
        passes(&t, &["m", "--fifo", &fifo, "--acc-bits", &acc, "--act-density", &ad, "--seed", &s], sizes.len() - 1);
    }
}

/// Runs the testbench kept in `work` again (`vvp`, no rebuild: it reads the images at run
/// time), as a user runs it on their own.
fn rerun_testbench(t: &TestDir, work: &str) -> crate::util::Run {
    let out = std::process::Command::new("vvp")
        .args(["-n", "eie_tb.vvp"])
        .current_dir(t.path(work))
        .output()
        .unwrap();
    crate::util::Run {
        status: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn a_mangled_or_missing_image_fails_naming_the_file() {
    if !have("iverilog") {
        return;
    }
    let t = TestDir::new();
    figure2(&t);
    passes(&t, &["f2", "--work", "tb"], 1);
    let dir = "f2/images/000-fig2.weight";
    let spmat = t.path(&format!("{dir}/pe00.spmat.hex"));
    let text = std::fs::read_to_string(&spmat).unwrap();
    let fails = |needles: &[&str]| {
        // The testbench on its own names the file ...
        let r = rerun_testbench(&t, "tb");
        assert_eq!(r.status, 1, "{}{}", r.stdout, r.stderr);
        let all = r.stdout + &r.stderr;
        for n in needles {
            assert!(all.contains(n), "{n:?} not in {all}");
        }
        // ... and rtl-check refuses the folder before simulating, naming it too.
        t.run(&["rtl-check", "f2"]).fails_with(&["pe0"]);
    };
    // One word too few.
    std::fs::write(&spmat, text.lines().next().unwrap().to_string() + "\n").unwrap();
    fails(&["pe00.spmat.hex holds 1 words, the manifest says 2"]);
    // A word of the wrong width.
    std::fs::write(
        &spmat,
        text.replacen("09052f03160d1901", "9052f03160d1901", 1),
    )
    .unwrap();
    fails(&["pe00.spmat.hex line 1: expected 16 hex digits (64-bit words)"]);
    // A folder where a file should be: a read error, not a hang.
    std::fs::remove_file(&spmat).unwrap();
    std::fs::create_dir(&spmat).unwrap();
    fails(&["cannot read", "pe00.spmat.hex"]);
    std::fs::remove_dir(&spmat).unwrap();
    std::fs::write(&spmat, &text).unwrap();
    // A missing file.
    std::fs::remove_file(t.path(&format!("{dir}/pe01.ptr.hex"))).unwrap();
    fails(&["cannot open", "pe01.ptr.hex"]);
    std::fs::write(t.path(&format!("{dir}/pe01.ptr.hex")), b"").unwrap();
    // An unused bit changed: the testbench cannot see it, the checksum can.
    std::fs::write(t.path(&format!("{dir}/pe01.ptr.hex")), b"").unwrap();
    let text2 = text.replacen("0000000521072306", "0000ff0521072306", 1);
    std::fs::write(&spmat, text2).unwrap();
    t.run(&["rtl-check", "f2"]).fails_with(&["pe00.spmat.hex"]);
}

#[test]
fn tall_layers_and_layers_without_columns_cosimulate() {
    if !have("iverilog") {
        return;
    }
    // Rows / PEs far above the columns: the group registers also address the register
    // files, which hold the rows (a regression: Icarus hung on 64 x 16 with 1 PE).
    let t = TestDir::new();
    for (name, rows, cols, pes) in [
        ("tall", 64, 16, "1"),
        ("wide", 600, 4, "2"),
        ("none", 8, 0, "4"),
    ] {
        let ck = t.checkpoint(
            &format!("{name}.safetensors"),
            &[("fc.weight", vec![rows, cols], weights(rows * cols, 3))],
        );
        t.run(&[
            "compress",
            ck.to_str().unwrap(),
            "-o",
            name,
            "--pes",
            pes,
            "--density",
            "0.5",
        ])
        .ok();
        passes(&t, &[name], 1);
    }
    // Verilator too: 300 accumulators a PE (a loop over them at reset did not build there).
    if have("verilator") {
        passes(&t, &["wide", "--simulator", "verilator"], 1);
    }
}

#[test]
fn the_design_lints_clean_across_its_parameters() {
    if !have("verilator") {
        return;
    }
    // Verilator's lint on the synthesizable design at corners of its parameters: no warning
    // but width mismatches and unused bits (out-of-range selects, multiple drivers, latches,
    // blocking/non-blocking mixes would all show).
    let rtl = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("rtl");
    for params in [
        vec!["-GN_PE=1"],
        vec!["-GN_PE=64"],
        vec![
            "-GN_PE=2",
            "-GACT_DEPTH=300",
            "-GACC_ROWS=300",
            "-GCOL_BITS=12",
        ],
        vec![
            "-GN_PE=17",
            "-GCODE_BITS=8",
            "-GINDEX_BITS=8",
            "-GPTR_BITS=32",
            "-GFIFO_DEPTH=1",
            "-GACC_BITS=62",
        ],
    ] {
        let out = std::process::Command::new("verilator")
            .args([
                "--lint-only",
                "-Wall",
                "-Wno-WIDTH",
                "-Wno-UNUSEDSIGNAL",
                "--top-module",
                "eie_top",
            ])
            .args(&params)
            .args(["eie_lnzd.v", "eie_pe.v", "eie_top.v"])
            .current_dir(&rtl)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && !text.contains("%Warning"),
            "{params:?}: {text}"
        );
    }
}

#[test]
fn a_path_the_testbench_cannot_carry_is_refused() {
    let t = TestDir::new();
    std::fs::create_dir(t.path("a\"b")).unwrap();
    let f2 = fixture("figure2.safetensors");
    t.run(&["pack", f2.to_str().unwrap(), "-o", "a\"b/m", "--pes", "4"])
        .ok();
    t.run(&["rtl-check", "a\"b/m"])
        .fails_with(&["a quote or a backslash"]);
}

#[test]
fn rtl_check_names_what_the_design_does_not_support() {
    let t = TestDir::new();
    figure2(&t);
    t.run(&["rtl-check", "f2", "--queue-ring"])
        .fails_with(&["the RTL does not support the ring-buffer queue"]);
    t.run(&["rtl-check", "f2", "--pipeline-depth", "5"])
        .fails_with(&["the pipeline depth = 5", "it supports 4 stages"]);
    t.run(&["rtl-check", "f2", "--spmat-width", "128"])
        .fails_with(&["the Spmat width = 128", "64-bit lines"]);
    t.run(&["rtl-check", "f2", "--no-group-advance"])
        .fails_with(&["--no-group-advance"]);
    t.run(&["rtl-check", "f2", "--timing-rules", "authors"])
        .fails_with(&["--timing-rules = authors", "this project's rules"]);
    // The work folder is new, and never inside the model.
    t.run(&["rtl-check", "f2", "--work", "f2/work"])
        .fails_with(&["lies inside"]);
    assert!(!t.exists("f2/work"));
    t.run(&["rtl-check", "f2", "--work", "f2"])
        .fails_with(&["is f2, an input of this command"]);
    // Nor the temporary one: a model in the temporary folder itself.
    let tmp = t.path("f2");
    t.run_env(&["rtl-check", "f2"], &[("TMPDIR", tmp.to_str().unwrap())])
        .fails_with(&["from TMPDIR) holds an input of this run", "--work DIR"]);
    assert_eq!(
        std::fs::read_dir(t.path("f2")).unwrap().count(),
        3,
        "nothing written in f2"
    );
    // A manifest whose word counts are not model.eie's is refused before anything is sized
    // from it.
    let path = t.path("f2/manifest.json");
    let original = std::fs::read_to_string(&path).unwrap();
    let mut m = json(&original);
    for f in m["layers"][0]["files"].as_array_mut().unwrap() {
        if f["path"].as_str().unwrap().ends_with("pe00.spmat.hex") {
            f["words"] = serde_json::json!(2_000_000_000u64);
        }
    }
    std::fs::write(&path, serde_json::to_string_pretty(&m).unwrap()).unwrap();
    t.run(&["rtl-check", "f2"])
        .fails_with(&["pe00.spmat.hex: 2 words, the manifest says 2000000000"]);
    std::fs::write(&path, original).unwrap();
    // A model.eie alone has no images to load.
    t.run(&["rtl-check", "f2/model.eie"])
        .fails_with(&["not a model folder"]);
}

#[test]
fn yosys_synthesises_the_pe_and_the_top() {
    if !have("yosys") {
        return;
    }
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("rtl/synth.sh");
    let out = std::process::Command::new("bash")
        .arg(&script)
        .arg("8")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pe = text
        .lines()
        .find(|l| l.starts_with("eie_pe:"))
        .expect("the PE's counts");
    let top = text
        .lines()
        .find(|l| l.starts_with("eie_top"))
        .expect("the top's counts");
    assert!(top.contains("with 8 PEs as black boxes"), "{top}");
    for line in [pe, top] {
        assert!(line.ends_with(" 0 latches"), "{line}");
        let cells: u64 = line
            .split(": ")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(cells > 1000, "{line}");
    }
}
