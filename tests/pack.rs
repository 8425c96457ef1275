//! `pack`, `inspect` and `verify` on good input.

use crate::util::{TestDir, fixture, json, sparse};

#[test]
fn figure3_arrays_come_out_of_inspect_json() {
    let t = TestDir::new();
    let model = fixture("figure2.safetensors");
    t.run(&["pack", model.to_str().unwrap(), "-o", "out", "--pes", "4"])
        .ok();
    let report = json(t.run(&["inspect", "out", "--json"]).ok());
    let layer = &report["layers"][0];
    assert_eq!(layer["name"], "fig2.weight");
    assert_eq!(
        (
            layer["rows"].as_u64(),
            layer["cols"].as_u64(),
            layer["pes"].as_u64()
        ),
        (Some(16), Some(8), Some(4))
    );
    assert_eq!(
        (layer["code_bits"].as_u64(), layer["index_bits"].as_u64()),
        (Some(4), Some(4))
    );
    let pe0 = &layer["pe"][0];
    assert_eq!(pe0["index"], 0);
    assert_eq!(
        pe0["z"],
        serde_json::json!([0, 1, 0, 1, 0, 2, 0, 0, 0, 2, 0, 2, 0])
    );
    assert_eq!(
        pe0["ptr"],
        serde_json::json!([0, 3, 4, 6, 6, 8, 10, 11, 13])
    );
    // Codes of W0,0 W8,0 W12,0 W4,1 W0,2 W12,2 W0,4 W4,4 W0,5 W12,5 W0,6 W8,7 W12,7, with the
    // fixture's value ((r + c) % 15 + 1) / 16 getting code (r + c) % 15 + 1.
    let order = [
        (0, 0),
        (8, 0),
        (12, 0),
        (4, 1),
        (0, 2),
        (12, 2),
        (0, 4),
        (4, 4),
        (0, 5),
        (12, 5),
        (0, 6),
        (8, 7),
        (12, 7),
    ];
    let codes: Vec<u64> = order
        .iter()
        .map(|(r, c)| ((r + c) % 15 + 1) as u64)
        .collect();
    assert_eq!(pe0["codes"], serde_json::json!(codes));
    // The codebook is the 15 values k/16 in code order, code 0 = 0.
    let book: Vec<f64> = (0..16).map(|k| k as f64 / 16.0).collect();
    assert_eq!(layer["codebook"], serde_json::json!(book));
    assert_eq!(layer["pe"].as_array().unwrap().len(), 4);
    let total: u64 = layer["pe"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["entries"].as_u64().unwrap())
        .sum();
    assert_eq!(total, 43);

    // --pe narrows the JSON to one PE; --layer to one layer.
    let one = json(
        t.run(&[
            "inspect",
            "out",
            "--json",
            "--pe",
            "2",
            "--layer",
            "fig2.weight",
        ])
        .ok(),
    );
    assert_eq!(one["layers"][0]["pe"].as_array().unwrap().len(), 1);
    assert_eq!(one["layers"][0]["pe"][0]["index"], 2);
    // The table view prints the PE's arrays too.
    let text = t.run(&["inspect", "out", "--pe", "0"]).ok().to_string();
    assert!(text.contains("z:     0 1 0 1 0 2 0 0 0 2 0 2 0"), "{text}");
    assert!(text.contains("ptr:   0 3 4 6 6 8 10 11 13"), "{text}");
}

#[test]
fn spmat_image_holds_the_figure3_entries_in_the_documented_bytes() {
    let t = TestDir::new();
    t.run(&[
        "pack",
        fixture("figure2.safetensors").to_str().unwrap(),
        "-o",
        "out",
        "--pes",
        "4",
    ])
    .ok();
    let bin = std::fs::read(t.path("out/images/000-fig2.weight/pe00.spmat.bin")).unwrap();
    // 13 entries of 8 bits = 2 words; byte k = z << 4 | code of entry k; then zero fill.
    let z = [0u8, 1, 0, 1, 0, 2, 0, 0, 0, 2, 0, 2, 0];
    let order = [
        (0, 0),
        (8, 0),
        (12, 0),
        (4, 1),
        (0, 2),
        (12, 2),
        (0, 4),
        (4, 4),
        (0, 5),
        (12, 5),
        (0, 6),
        (8, 7),
        (12, 7),
    ];
    let mut expected: Vec<u8> = order
        .iter()
        .zip(z)
        .map(|(&(r, c), z)| z << 4 | ((r + c) % 15 + 1) as u8)
        .collect();
    expected.resize(16, 0);
    assert_eq!(bin, expected);
    let hex = std::fs::read_to_string(t.path("out/images/000-fig2.weight/pe00.spmat.hex")).unwrap();
    let words: Vec<String> = expected
        .chunks(8)
        .map(|c| format!("{:016x}", u64::from_le_bytes(c.try_into().unwrap())))
        .collect();
    assert_eq!(hex, words.join("\n") + "\n");
    let ptr = std::fs::read(t.path("out/images/000-fig2.weight/pe00.ptr.bin")).unwrap();
    let ptrs: Vec<u16> = ptr
        .chunks(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    assert_eq!(ptrs, [0, 3, 4, 6, 6, 8, 10, 11, 13]);
    let book = std::fs::read(t.path("out/images/000-fig2.weight/codebook.bin")).unwrap();
    // 15/16 is the largest value: 15 fractional bits (15/16 * 2^15 = 30720 fits, 2^16 would not).
    let fixed: Vec<i16> = book
        .chunks(2)
        .map(|c| i16::from_le_bytes([c[0], c[1]]))
        .collect();
    assert_eq!(fixed, (0..16).map(|k| k * 2048).collect::<Vec<i16>>());
}

#[test]
fn manifest_names_every_file_with_its_checksum() {
    let t = TestDir::new();
    t.run(&[
        "pack",
        fixture("tiny-mlp.safetensors").to_str().unwrap(),
        "-o",
        "out",
        "--pes",
        "8",
        "--no-bias-column",
    ])
    .ok();
    let manifest = json(&std::fs::read_to_string(t.path("out/manifest.json")).unwrap());
    assert_eq!(manifest["byte_order"], "little-endian");
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(
        layers
            .iter()
            .map(|l| l["name"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["fc1.weight", "fc2.weight"]
    );
    let mut listed = 0;
    for l in layers {
        for f in l["files"].as_array().unwrap() {
            let path = f["path"].as_str().unwrap();
            let bytes = std::fs::read(t.path("out").join(path)).unwrap();
            assert_eq!(f["bytes"].as_u64().unwrap() as usize, bytes.len(), "{path}");
            use sha2::Digest;
            let digest: String = sha2::Sha256::digest(&bytes)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            assert_eq!(f["sha256"], digest, "{path}");
            assert_eq!(f["layer"], l["name"]);
            listed += 1;
        }
    }
    // Nothing on disk that the manifest does not list (besides manifest and bundle).
    let on_disk = t.snapshot("out").len();
    assert_eq!(on_disk, listed + 2);
    t.run(&["verify", "out"]).ok();
}

#[test]
fn output_is_deterministic() {
    let t = TestDir::new();
    let model = fixture("tiny-mlp.safetensors");
    t.run(&[
        "pack",
        model.to_str().unwrap(),
        "-o",
        "a",
        "--pes",
        "3",
        "--no-bias-column",
    ])
    .ok();
    t.run(&[
        "pack",
        model.to_str().unwrap(),
        "-o",
        "b",
        "--pes",
        "3",
        "--no-bias-column",
    ])
    .ok();
    assert_eq!(t.snapshot("a"), t.snapshot("b"));
}

#[test]
fn progress_stays_off_a_non_terminal_stderr() {
    let t = TestDir::new();
    let r = t.run(&[
        "pack",
        fixture("tiny-mlp.safetensors").to_str().unwrap(),
        "-o",
        "out",
        "--no-bias-column",
    ]);
    r.ok();
    assert_eq!(r.stderr, "");
}

#[test]
fn layers_are_selected_by_pattern_in_order() {
    let t = TestDir::new();
    let model = fixture("tiny-mlp.safetensors");
    t.run(&[
        "pack",
        model.to_str().unwrap(),
        "-o",
        "out",
        "--layers",
        "fc2.w*",
        "--layers",
        "fc1.weight",
        "--no-bias-column",
    ])
    .ok();
    let report = json(t.run(&["inspect", "out", "--json"]).ok());
    let names: Vec<&str> = report["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["fc2.weight", "fc1.weight"]);
}

/// pack selects as compress does: an embedding table and a 1-D scale are left out and said.
#[test]
fn the_default_selection_skips_an_embedding_table_and_says_so() {
    let t = TestDir::new();
    let model = t.checkpoint(
        "m.safetensors",
        &[
            ("embed.weight", vec![8, 4], sparse(8, 4, 2, 3)),
            ("fc.weight", vec![4, 8], sparse(4, 8, 2, 3)),
            ("norm.weight", vec![4], vec![1.0; 4]),
        ],
    );
    let out = t
        .run(&["pack", model.to_str().unwrap(), "-o", "out"])
        .ok()
        .to_string();
    assert!(
        out.contains(
            "skipped 2 weight tensors (--layers selects any of them): embed.weight (embedding table"
        ),
        "{out}"
    );
    assert!(out.contains("norm.weight (shape [4], not 2-D)"), "{out}");
    let report = json(t.run(&["inspect", "out", "--json"]).ok());
    assert_eq!(report["layers"].as_array().unwrap().len(), 1);
    assert_eq!(report["layers"][0]["name"], "fc.weight");
}

#[test]
fn force_replaces_an_earlier_output() {
    let t = TestDir::new();
    let model = fixture("tiny-mlp.safetensors");
    t.run(&[
        "pack",
        model.to_str().unwrap(),
        "-o",
        "out",
        "--pes",
        "2",
        "--no-bias-column",
    ])
    .ok();
    let before = t.snapshot("out");
    t.run(&["pack", model.to_str().unwrap(), "-o", "out", "--pes", "4"])
        .fails_with(&["out", "already holds", "--force"]);
    assert_eq!(
        t.snapshot("out"),
        before,
        "a refused run must not touch the folder"
    );
    t.run(&[
        "pack",
        model.to_str().unwrap(),
        "-o",
        "out",
        "--pes",
        "4",
        "--layers",
        "fc2.weight",
        "--force",
        "--no-bias-column",
    ])
    .ok();
    let report = json(t.run(&["inspect", "out", "--json"]).ok());
    assert_eq!(report["layers"].as_array().unwrap().len(), 1);
    assert_eq!(report["layers"][0]["pes"], 4);
    // The old fc1 images are gone, and no staging folder is left.
    assert!(!t.exists("out/images/000-fc1.weight"));
    let entries: Vec<String> = std::fs::read_dir(t.path("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(entries.iter().all(|e| !e.starts_with('.')), "{entries:?}");
    t.run(&["verify", "out"]).ok();
}

#[test]
fn capacity_overflow_says_by_how_much_and_what_fits() {
    let t = TestDir::new();
    // 64 x 512 dense with 3 values, 2 PEs: 16384 one-byte entries per PE, 16 KiB > 8 KiB.
    let w: Vec<f32> = (0..64 * 512).map(|i| [0.5, -0.5, 0.25][i % 3]).collect();
    let model = t.checkpoint("big.safetensors", &[("big.weight", vec![64, 512], w)]);
    let m = model.to_str().unwrap();
    let line = t
        .run(&["pack", m, "-o", "out", "--pes", "2", "--spmat-kib", "8"])
        .fails_with(&[
            "\"big.weight\"",
            "16384 B of Spmat SRAM",
            "8192 B (100.0%) over its 8192 B",
            "2 of 2 PEs",
            "4 PEs would fit it",
        ])
        .to_string();
    assert!(!t.exists("out"), "failed run left output: {line}");
    assert!(!t.exists("out"), "failed run left output: {line}");
    // With --allow-overflow: a warning, and the images.
    let r = t.run(&[
        "pack",
        m,
        "-o",
        "out",
        "--pes",
        "2",
        "--spmat-kib",
        "8",
        "--allow-overflow",
    ]);
    r.ok();
    assert!(
        r.stderr.starts_with("warning: layer \"big.weight\""),
        "{}",
        r.stderr
    );
    // The pointer SRAM: 513 16-bit pointers = 1026 B, over 1 KiB, whatever the PE count.
    t.run(&[
        "pack",
        m,
        "-o",
        "out2",
        "--pointer-kib",
        "1",
        "--column-batch",
        "0",
    ])
    .fails_with(&["pointer SRAM", "no PE count fits"]);
    // Automatic column batches (4096 columns) cannot split 512 columns: the same error.
    t.run(&["pack", m, "-o", "out2", "--pointer-kib", "1"])
        .fails_with(&["pointer SRAM", "no PE count fits"]);
}

#[test]
fn pointer_overflow_names_the_layer_and_pe_and_suggests_a_fix() {
    let t = TestDir::new();
    // 2 x 40000 dense: with 1 PE, 80000 entries pass 65535; 2 PEs hold 40000 each.
    let w: Vec<f32> = (0..80_000)
        .map(|i| if i % 2 == 0 { 0.5 } else { -0.5 })
        .collect();
    let model = t.checkpoint("wide.safetensors", &[("wide.weight", vec![2, 40_000], w)]);
    let m = model.to_str().unwrap();
    t.run(&[
        "pack",
        m,
        "-o",
        "out",
        "--pes",
        "1",
        "--allow-overflow",
        "--column-batch",
        "0",
    ])
    .fails_with(&[
        "\"wide.weight\" PE 0",
        "80000",
        "16-bit pointers",
        "--pes 2, or --pointer-bits 32, or column batches (--column-batch 16384) would fit it",
        "--pointer-bits 32",
    ]);
    assert!(!t.exists("out"));
    t.run(&[
        "pack",
        m,
        "-o",
        "out",
        "--pes",
        "1",
        "--pointer-bits",
        "32",
        "--allow-overflow",
    ])
    .ok();
    t.run(&["verify", "out"]).ok();
}

#[test]
fn index_and_code_widths_reach_the_images() {
    let t = TestDir::new();
    let model = t.checkpoint(
        "m.safetensors",
        &[("a.weight", vec![40, 30], sparse(40, 30, 5, 3))],
    );
    t.run(&[
        "pack",
        model.to_str().unwrap(),
        "-o",
        "out",
        "--pes",
        "3",
        "--code-bits",
        "2",
        "--index-bits",
        "2",
    ])
    .ok();
    let manifest = json(&std::fs::read_to_string(t.path("out/manifest.json")).unwrap());
    let l = &manifest["layers"][0];
    assert_eq!(
        (
            l["code_bits"].as_u64(),
            l["index_bits"].as_u64(),
            l["entries_per_word"].as_u64()
        ),
        (Some(2), Some(2), Some(16))
    );
    assert_eq!(l["codebook"].as_array().unwrap().len(), 4);
    t.run(&["verify", "out"]).ok();
}

#[test]
fn column_batches_fit_a_layer_too_wide_for_its_pointers() {
    let t = TestDir::new();
    // 2 x 40000 dense on 1 PE: 80000 entries overflow 16-bit pointers; batches of 16384
    // columns hold at most 32768 entries each.
    let w: Vec<f32> = (0..80_000).map(|i| [0.5, -0.5, 0.25][i % 3]).collect();
    let model = t.checkpoint(
        "wide.safetensors",
        &[("wide.weight", vec![2, 40_000], w.clone())],
    );
    let m = model.to_str().unwrap();
    t.run(&["pack", m, "-o", "out", "--pes", "1", "--column-batch", "0"])
        .fails_with(&["\"wide.weight\" PE 0", "--column-batch 16384"]);
    // By default the layer is split as it needs: batches of 4096 columns.
    t.run(&["pack", m, "-o", "auto", "--pes", "1"]).ok();
    let parts = json(t.run(&["inspect", "auto", "--json"]).ok())["layers"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(parts, 10);
    t.run(&[
        "pack",
        m,
        "-o",
        "out",
        "--pes",
        "1",
        "--column-batch",
        "16384",
        "--allow-overflow",
    ])
    .ok();
    let report = json(t.run(&["inspect", "out", "--json"]).ok());
    let parts: Vec<(u64, u64)> = report["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["part"]["first_col"].as_u64().unwrap(),
                l["cols"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(parts, [(0, 16384), (16384, 16384), (32768, 7232)]);
    t.run(&["verify", "out"]).ok();
    t.run(&["unpack", "out", "-o", "d.safetensors"]).ok();
    let back = eie_checkpoint::Checkpoint::open(t.path("d.safetensors")).unwrap();
    assert_eq!(back.read_f32("wide.weight").unwrap(), w);
    let text = t.run(&["inspect", "out"]).ok().to_string();
    assert!(
        text.contains("wide.weight [cols 16384..32768 of 40000]"),
        "{text}"
    );
}

#[test]
fn pack_folds_a_bias_it_can_and_refuses_to_drop_one_it_cannot() {
    // Issue 10: pack dropped NAME.bias without a word.
    let t = TestDir::new();
    // A bias whose values are among the weight's shared values folds in, as compress folds.
    let ck = t.checkpoint(
        "m.safetensors",
        &[
            ("fc.weight", vec![2, 3], vec![0.5, 0.0, 0.25, 0.0, 0.5, 0.0]),
            ("fc.bias", vec![2], vec![0.25, 0.0]),
        ],
    );
    let out = t
        .run(&["pack", ck.to_str().unwrap(), "-o", "m", "--pes", "2"])
        .ok()
        .to_string();
    assert!(
        out.contains("biases folded in as last columns: fc.bias"),
        "{out}"
    );
    let m = json(&std::fs::read_to_string(t.path("m/manifest.json")).unwrap());
    assert_eq!(m["layers"][0]["bias"], "fc.bias");
    assert_eq!(m["layers"][0]["cols"], 4);
    // tiny-mlp's biases are not its weights' values: refused, naming both ways out.
    let tiny = fixture("tiny-mlp.safetensors");
    t.run(&["pack", tiny.to_str().unwrap(), "-o", "out"])
        .fails_with(&[
            "\"fc1.weight\" and its bias \"fc1.bias\"",
            "eie-compress compress",
            "--no-bias-column",
        ]);
    assert!(!t.exists("out"));
    let out = t
        .run(&[
            "pack",
            tiny.to_str().unwrap(),
            "-o",
            "out",
            "--no-bias-column",
        ])
        .ok()
        .to_string();
    assert!(
        out.contains("not folded (--no-bias-column): fc1.bias, fc2.bias"),
        "{out}"
    );
    let f2 = t
        .run(&[
            "pack",
            fixture("figure2.safetensors").to_str().unwrap(),
            "-o",
            "f2",
        ])
        .ok()
        .to_string();
    assert!(!f2.contains("folded"), "{f2}");
}
