//! Every hostile input: a clear one-line error naming the file, tensor or field, exit 1, no
//! panic, and no output left behind.

use eie_checkpoint::Dtype;

use crate::util::{TestDir, fixture};

/// Header JSON + data, verbatim.
fn raw_safetensors(header: &str, data: &[u8]) -> Vec<u8> {
    let mut b = (header.len() as u64).to_le_bytes().to_vec();
    b.extend_from_slice(header.as_bytes());
    b.extend_from_slice(data);
    b
}

/// Runs `pack` on `model` and checks the failure and that no output appeared.
fn pack_fails(t: &TestDir, model: &str, extra: &[&str], needles: &[&str]) {
    let mut args = vec!["pack", model, "-o", "out"];
    args.extend_from_slice(extra);
    t.run(&args).fails_with(needles);
    assert!(!t.exists("out"), "a failed pack left an output folder");
}

#[test]
fn missing_file() {
    let t = TestDir::new();
    pack_fails(
        &t,
        "nope.safetensors",
        &[],
        &["nope.safetensors", "No such file"],
    );
}

#[test]
fn unreadable_file() {
    let t = TestDir::new();
    std::fs::create_dir(t.path("dir.safetensors")).unwrap();
    pack_fails(
        &t,
        "dir.safetensors",
        &[],
        &["dir.safetensors", "not a regular file"],
    );
    // A file without read permission; root reads it anyway, so only check where the test
    // itself cannot open it.
    let locked = t.write("locked.safetensors", b"x");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
    if std::fs::File::open(&locked).is_err() {
        pack_fails(
            &t,
            "locked.safetensors",
            &[],
            &["locked.safetensors", "ermission denied"],
        );
    } else {
        eprintln!("unreadable_file: running as root, the permission case is not testable here");
    }
}

#[test]
fn not_safetensors() {
    let t = TestDir::new();
    t.write(
        "model.safetensors",
        b"PK\x03\x04 this is a zip, not a safetensors file",
    );
    pack_fails(
        &t,
        "model.safetensors",
        &[],
        &["model.safetensors", "not a valid safetensors file"],
    );
    t.write("empty.safetensors", b"");
    pack_fails(
        &t,
        "empty.safetensors",
        &[],
        &["empty.safetensors", "too short"],
    );
}

#[test]
fn truncated_file() {
    let t = TestDir::new();
    let good = t.checkpoint(
        "good.safetensors",
        &[("a.weight", vec![4, 4], vec![0.5; 16])],
    );
    let bytes = std::fs::read(good).unwrap();
    t.write("cut.safetensors", &bytes[..bytes.len() - 10]);
    pack_fails(
        &t,
        "cut.safetensors",
        &[],
        &["cut.safetensors", "truncated"],
    );
    t.write("cut-header.safetensors", &bytes[..20]);
    pack_fails(
        &t,
        "cut-header.safetensors",
        &[],
        &["cut-header.safetensors", "past the end of the file"],
    );
}

#[test]
fn header_length_larger_than_the_file() {
    let t = TestDir::new();
    let mut b = 1_000_000u64.to_le_bytes().to_vec();
    b.extend_from_slice(br#"{"a.weight":{"dtype":"F32","shape":[1,1],"data_offsets":[0,4]}}"#);
    t.write("long.safetensors", &b);
    pack_fails(
        &t,
        "long.safetensors",
        &[],
        &[
            "long.safetensors",
            "header length 1000000 runs past the end",
        ],
    );
}

#[test]
fn overlapping_offsets() {
    let t = TestDir::new();
    let h = r#"{"a.weight":{"dtype":"F32","shape":[1,2],"data_offsets":[0,8]},"b.weight":{"dtype":"F32","shape":[1,2],"data_offsets":[4,12]}}"#;
    t.write("overlap.safetensors", &raw_safetensors(h, &[0; 12]));
    pack_fails(
        &t,
        "overlap.safetensors",
        &[],
        &["overlap.safetensors", "overlap"],
    );
}

#[test]
fn out_of_range_offsets() {
    let t = TestDir::new();
    let h = r#"{"a.weight":{"dtype":"F32","shape":[1,2],"data_offsets":[0,8]}}"#;
    t.write("range.safetensors", &raw_safetensors(h, &[0; 4]));
    pack_fails(
        &t,
        "range.safetensors",
        &[],
        &["range.safetensors", "not a valid safetensors file"],
    );
    let h = r#"{"a.weight":{"dtype":"F32","shape":[1,2],"data_offsets":[8,16]}}"#;
    t.write("gap.safetensors", &raw_safetensors(h, &[0; 16]));
    pack_fails(
        &t,
        "gap.safetensors",
        &[],
        &["gap.safetensors", "\"a.weight\""],
    );
}

#[test]
fn integer_tensor_selected() {
    let t = TestDir::new();
    let specs = vec![("steps.weight".to_string(), Dtype::I32, vec![2, 2])];
    t.checkpoint_raw("int.safetensors", &specs, &[vec![0; 16]]);
    pack_fails(
        &t,
        "int.safetensors",
        &["--layers", "steps.weight"],
        &["\"steps.weight\"", "I32", "float"],
    );
    // Not selected by default either; then nothing is left to pack.
    pack_fails(
        &t,
        "int.safetensors",
        &[],
        &["int.safetensors", "no 2-D float tensor"],
    );
}

#[test]
fn nan_or_infinite_weights() {
    let t = TestDir::new();
    let mut w = vec![0.5f32; 12];
    w[5] = f32::NAN;
    t.checkpoint("nan.safetensors", &[("fc.weight", vec![3, 4], w.clone())]);
    pack_fails(
        &t,
        "nan.safetensors",
        &[],
        &["\"fc.weight\"", "NaN", "index 5", "row 1, column 1"],
    );
    w[5] = 0.5;
    w[11] = f32::NEG_INFINITY;
    t.checkpoint("inf.safetensors", &[("fc.weight", vec![3, 4], w)]);
    pack_fails(
        &t,
        "inf.safetensors",
        &[],
        &["\"fc.weight\"", "-inf", "index 11"],
    );
}

#[test]
fn pattern_that_selects_nothing() {
    let t = TestDir::new();
    let m = fixture("tiny-mlp.safetensors");
    pack_fails(
        &t,
        m.to_str().unwrap(),
        &["--layers", "conv*"],
        &["\"conv*\"", "selects no tensor", "fc1.weight"],
    );
}

#[test]
fn one_or_three_dimensional_tensor_selected() {
    let t = TestDir::new();
    let m = fixture("tiny-mlp.safetensors");
    pack_fails(
        &t,
        m.to_str().unwrap(),
        &["--layers", "fc1.bias"],
        &["\"fc1.bias\"", "[48]", "2-D"],
    );
    t.checkpoint(
        "conv.safetensors",
        &[("conv.weight", vec![2, 2, 2], vec![0.5; 8])],
    );
    pack_fails(
        &t,
        "conv.safetensors",
        &["--layers", "conv.weight"],
        &["\"conv.weight\"", "[2, 2, 2]", "2-D"],
    );
}

#[test]
fn tensor_names_with_path_characters_stay_inside_the_output() {
    let t = TestDir::new();
    let w = vec![0.5f32, 0.0, 0.0, -0.5];
    let model = t.checkpoint(
        "evil.safetensors",
        &[
            ("../../escape.weight", vec![2, 2], w.clone()),
            ("/abs/path.weight", vec![2, 2], w.clone()),
            ("a/b\\c:d.weight", vec![2, 2], w.clone()),
            ("..", vec![2, 2], w),
        ],
    );
    t.run(&[
        "pack",
        model.to_str().unwrap(),
        "-o",
        "out",
        "--layers",
        "*",
    ])
    .ok();
    // Only the checkpoint and the output folder exist beside each other. The layers keep
    // the order the checkpoint was written in.
    let mut top: Vec<String> = std::fs::read_dir(t.path(""))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    top.sort();
    assert_eq!(top, ["evil.safetensors", "out"]);
    let mut dirs: Vec<String> = std::fs::read_dir(t.path("out/images"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    dirs.sort();
    assert_eq!(
        dirs,
        [
            "000-.._.._escape.weight",
            "001-_abs_path.weight",
            "002-a_b_c_d.weight",
            "003-.."
        ]
    );
    t.run(&["verify", "out"]).ok();
    // Names survive intact inside the bundle and back out of unpack.
    t.run(&["unpack", "out", "-o", "dense.safetensors"]).ok();
    let ck = eie_checkpoint::Checkpoint::open(t.path("dense.safetensors")).unwrap();
    assert!(ck.info("../../escape.weight").is_some());
}

#[test]
fn output_folder_with_other_files() {
    let t = TestDir::new();
    std::fs::create_dir(t.path("out")).unwrap();
    t.write("out/notes.txt", b"mine");
    let m = fixture("figure2.safetensors");
    t.run(&["pack", m.to_str().unwrap(), "-o", "out"])
        .fails_with(&["out", "already holds 1 entries (notes.txt)", "--force"]);
    assert_eq!(t.snapshot("out").len(), 1);
    // With --force, our files are added and the user's file is left alone.
    t.run(&["pack", m.to_str().unwrap(), "-o", "out", "--force"])
        .ok();
    assert_eq!(std::fs::read(t.path("out/notes.txt")).unwrap(), b"mine");
    // An output path that is a file.
    t.write("file", b"x");
    t.run(&["pack", m.to_str().unwrap(), "-o", "file"])
        .fails_with(&["file", "not a folder"]);
}

#[test]
fn tensor_that_needs_weight_sharing() {
    let t = TestDir::new();
    let w: Vec<f32> = (0..64).map(|i| i as f32 * 0.01 + 0.01).collect();
    t.checkpoint("dense.safetensors", &[("fc.weight", vec![8, 8], w)]);
    pack_fails(
        &t,
        "dense.safetensors",
        &[],
        &[
            "\"fc.weight\"",
            "more than 15 distinct",
            "weight sharing",
            "compress",
        ],
    );
}

fn packed(t: &TestDir) -> Vec<u8> {
    t.run(&[
        "pack",
        fixture("figure2.safetensors").to_str().unwrap(),
        "-o",
        "out",
        "--pes",
        "4",
    ])
    .ok();
    std::fs::read(t.path("out/model.eie")).unwrap()
}

/// inspect, verify and unpack each refuse a damaged bundle with `needles` in the message.
fn bundle_refused(t: &TestDir, needles: &[&str]) {
    for cmd in [
        &["inspect", "out"][..],
        &["verify", "out"],
        &["unpack", "out", "-o", "d.safetensors"],
    ] {
        let mut n = vec!["model.eie"];
        n.extend_from_slice(needles);
        t.run(cmd).fails_with(&n);
    }
    assert!(!t.exists("d.safetensors"));
}

#[test]
fn corrupted_bundle() {
    let t = TestDir::new();
    let mut b = packed(&t);
    let at = b.len() - 5;
    b[at] ^= 0x40;
    t.write("out/model.eie", &b);
    bundle_refused(&t, &["checksum mismatch", "corrupted"]);
}

#[test]
fn truncated_bundle() {
    let t = TestDir::new();
    let b = packed(&t);
    t.write("out/model.eie", &b[..b.len() / 2]);
    bundle_refused(&t, &["truncated"]);
    t.write("out/model.eie", &b[..10]);
    bundle_refused(&t, &["truncated"]);
}

#[test]
fn wrong_version_bundle() {
    let t = TestDir::new();
    let mut b = packed(&t);
    b[8] = 9;
    t.write("out/model.eie", &b);
    bundle_refused(&t, &["version 9", "re-pack"]);
}

#[test]
fn not_a_bundle() {
    let t = TestDir::new();
    packed(&t);
    t.write("out/model.eie", b"GIF89a");
    bundle_refused(&t, &["not an EIE bundle"]);
    std::fs::remove_file(t.path("out/model.eie")).unwrap();
    bundle_refused(&t, &["cannot read"]);
}

#[test]
fn images_that_disagree_with_the_bundle() {
    let t = TestDir::new();
    packed(&t);
    let p = t.path("out/images/000-fig2.weight/pe02.spmat.bin");
    let mut b = std::fs::read(&p).unwrap();
    b[0] ^= 1;
    std::fs::write(&p, b).unwrap();
    t.run(&["verify", "out"])
        .fails_with(&["pe02.spmat.bin", "sha256"]);
}

#[test]
fn bad_options() {
    let t = TestDir::new();
    let m = fixture("figure2.safetensors");
    let m = m.to_str().unwrap();
    // Usage errors are clap's: exit 2, the flag named.
    for (args, needle) in [
        (vec!["--pes", "0"], "--pes"),
        (vec!["--code-bits", "9"], "--code-bits"),
        (vec!["--index-bits", "0"], "--index-bits"),
        (vec!["--pointer-bits", "24"], "--pointer-bits"),
    ] {
        let mut a = vec!["pack", m, "-o", "out"];
        a.extend(args);
        let r = t.run(&a);
        assert_eq!(r.status, 2, "{a:?}: {}", r.stderr);
        assert!(
            r.stderr.contains(needle) && !r.stderr.contains("panicked"),
            "{}",
            r.stderr
        );
    }
    assert!(!t.exists("out"));
    t.run(&["pack", m, "-o", "out", "--pes", "4"]).ok();
    t.run(&["inspect", "out", "--pe", "4"])
        .fails_with(&["--pe 4", "4 PEs"]);
    t.run(&["inspect", "out", "--layer", "fc9"])
        .fails_with(&["\"fc9\"", "fig2.weight"]);
}

// ---- compress ----------------------------------------------------------------------------

/// Runs `compress` on `model` and checks the failure and that no output appeared.
fn compress_fails(t: &TestDir, model: &str, extra: &[&str], needles: &[&str]) {
    let mut args = vec!["compress", model, "-o", "out"];
    args.extend_from_slice(extra);
    t.run(&args).fails_with(needles);
    assert!(!t.exists("out"), "a failed compress left an output folder");
}

#[test]
fn compress_nan_or_infinite_weights_mid_pipeline() {
    let t = TestDir::new();
    // The bad layer comes second: the first is already processed (and staged) when it fails.
    let mut bad = vec![0.5f32; 20];
    bad[13] = f32::INFINITY;
    t.checkpoint(
        "m.safetensors",
        &[
            ("a.weight", vec![4, 5], vec![0.25; 20]),
            ("b.weight", vec![4, 5], bad),
        ],
    );
    compress_fails(
        &t,
        "m.safetensors",
        &["--density", "0.5"],
        &["\"b.weight\"", "inf", "index 13"],
    );
    let mut bias = vec![0.0f32; 4];
    bias[2] = f32::NAN;
    t.checkpoint(
        "b.safetensors",
        &[
            ("a.weight", vec![4, 5], vec![0.25; 20]),
            ("a.bias", vec![4], bias),
        ],
    );
    compress_fails(&t, "b.safetensors", &[], &["\"a.bias\"", "NaN", "index 2"]);
}

#[test]
fn compress_density_outside_zero_one() {
    let t = TestDir::new();
    let m = fixture("mlp-gaussian.safetensors");
    let m = m.to_str().unwrap();
    for d in ["0", "1.5", "-0.1", "NaN"] {
        compress_fails(&t, m, &["--density", d], &["density", "outside (0, 1]"]);
    }
    compress_fails(
        &t,
        m,
        &["--global-density", "2"],
        &["global_density 2 is outside (0, 1]"],
    );
    compress_fails(&t, m, &["--threshold-std", "-1"], &["threshold_std -1"]);
    // Two pruning rules at once is a usage error.
    let r = t.run(&[
        "compress",
        m,
        "-o",
        "out",
        "--density",
        "0.1",
        "--threshold-std",
        "1",
    ]);
    assert_eq!(r.status, 2, "{}", r.stderr);
}

#[test]
fn compress_bit_widths_outside_one_to_eight() {
    let t = TestDir::new();
    let m = fixture("mlp-gaussian.safetensors");
    for args in [
        ["--code-bits", "0"],
        ["--code-bits", "9"],
        ["--index-bits", "9"],
    ] {
        let mut a = vec!["compress", m.to_str().unwrap(), "-o", "out"];
        a.extend(args);
        let r = t.run(&a);
        assert_eq!(r.status, 2, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains(args[0]) && !r.stderr.contains("panicked"));
    }
    assert!(!t.exists("out"));
}

#[test]
fn recipe_with_unknown_keys_or_a_pattern_that_matches_nothing() {
    let t = TestDir::new();
    let m = fixture("mlp-gaussian.safetensors");
    let m = m.to_str().unwrap();
    t.write("typo.toml", b"[defaults]\ndensty = 0.1\n");
    compress_fails(&t, m, &["--recipe", "typo.toml"], &["typo.toml", "densty"]);
    t.write(
        "rule.toml",
        b"[[layers]]\npattern = \"fc1.weight\"\ndensity = 0.1\ncolour = \"red\"\n",
    );
    compress_fails(&t, m, &["--recipe", "rule.toml"], &["rule.toml", "colour"]);
    t.write(
        "none.toml",
        b"[[layers]]\npattern = \"conv*\"\ndensity = 0.1\n",
    );
    compress_fails(
        &t,
        m,
        &["--recipe", "none.toml"],
        &["none.toml", "\"conv*\" matches no selected layer"],
    );
    t.write(
        "range.toml",
        b"[[layers]]\npattern = \"fc1.weight\"\ncode_bits = 12\n",
    );
    compress_fails(
        &t,
        m,
        &["--recipe", "range.toml"],
        &["range.toml", "[[layers]] 1", "code_bits 12"],
    );
    t.write("both.toml", b"[defaults]\ndensity = 0.1\n");
    compress_fails(
        &t,
        m,
        &["--recipe", "both.toml", "--density", "0.2"],
        &["both on the command line and in [defaults]"],
    );
    compress_fails(&t, m, &["--recipe", "missing.toml"], &["missing.toml"]);
}

fn two_shards(t: &TestDir, index: &str) {
    t.checkpoint(
        "s1.safetensors",
        &[("fc1.weight", vec![4, 4], vec![0.5; 16])],
    );
    t.checkpoint(
        "s2.safetensors",
        &[("fc2.weight", vec![2, 4], vec![0.25; 8])],
    );
    t.write("model.safetensors.index.json", index.as_bytes());
}

#[test]
fn index_naming_a_missing_shard() {
    let t = TestDir::new();
    two_shards(
        &t,
        r#"{"weight_map": {"fc1.weight": "s1.safetensors", "fc2.weight": "s3.safetensors"}}"#,
    );
    compress_fails(
        &t,
        "model.safetensors.index.json",
        &[],
        &[
            "model.safetensors.index.json",
            "shard s3.safetensors is missing",
        ],
    );
}

#[test]
fn shard_whose_tensor_disagrees_with_the_index() {
    let t = TestDir::new();
    two_shards(
        &t,
        r#"{"weight_map": {"fc1.weight": "s2.safetensors", "fc2.weight": "s2.safetensors"}}"#,
    );
    compress_fails(
        &t,
        "model.safetensors.index.json",
        &[],
        &["shard s2.safetensors", "\"fc1.weight\"", "does not hold it"],
    );
    // A shard holding a tensor its index does not list.
    two_shards(
        &t,
        r#"{"weight_map": {"fc1.weight": "s1.safetensors", "fc2.weight": "s2.safetensors"}}"#,
    );
    t.checkpoint(
        "s2.safetensors",
        &[
            ("fc2.weight", vec![2, 4], vec![0.25; 8]),
            ("extra.weight", vec![1, 1], vec![1.0]),
        ],
    );
    compress_fails(
        &t,
        "model.safetensors.index.json",
        &[],
        &[
            "shard s2.safetensors",
            "\"extra.weight\"",
            "does not list it",
        ],
    );
}

#[test]
fn bias_whose_length_does_not_match_the_rows() {
    let t = TestDir::new();
    t.checkpoint(
        "m.safetensors",
        &[
            ("fc.weight", vec![4, 3], vec![0.5; 12]),
            ("fc.bias", vec![3], vec![0.1; 3]),
        ],
    );
    compress_fails(
        &t,
        "m.safetensors",
        &[],
        &["\"fc.bias\"", "[3]", "expected [4]", "--no-bias-column"],
    );
    // Leaving biases out works.
    t.run(&["compress", "m.safetensors", "-o", "out", "--no-bias-column"])
        .ok();
}

/// Regression (review C1): `verify` read only the files it needed and ignored the manifest's
/// derived fields, so an edited manifest passed.
#[test]
fn manifest_edits_that_verify_used_to_miss() {
    let t = TestDir::new();
    packed(&t);
    let path = t.path("out/manifest.json");
    let original = std::fs::read_to_string(&path).unwrap();
    let edited = original.replacen("\"entries_per_word\": 8", "\"entries_per_word\": 7", 1);
    assert_ne!(edited, original);
    std::fs::write(&path, edited).unwrap();
    t.run(&["verify", "out"])
        .fails_with(&["manifest.json differs", "fig2.weight"]);
}

// ---- accuracy: train, eval, compress --dataset ---------------------------------------------

/// A trained-looking MLP: fc1 [8, 4] + bias, fc2 [3, 8] + bias.
fn mlp_4_8_3(t: &TestDir, rel: &str) -> String {
    let w = |n: usize, s: f32| {
        (0..n)
            .map(|i| ((i % 7) as f32 - 3.0) * s)
            .collect::<Vec<f32>>()
    };
    t.checkpoint(
        rel,
        &[
            ("fc1.weight", vec![8, 4], w(32, 0.1)),
            ("fc1.bias", vec![8], w(8, 0.01)),
            ("fc2.weight", vec![3, 8], w(24, 0.2)),
            ("fc2.bias", vec![3], w(3, 0.01)),
        ],
    );
    rel.to_string()
}

/// A dataset `idx:x.idx,y.idx` of two 2 x 2 images, labels 0 and 1.
fn two_samples(t: &TestDir) {
    t.write("x.idx", &idx(0x08, &[2, 2, 2], &[3; 8]));
    t.write("y.idx", &idx(0x08, &[2], &[0, 1]));
}

/// IDX bytes: magic 0 0 TYPE RANK, big-endian dimensions, data.
fn idx(code: u8, dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, code, dims.len() as u8];
    dims.iter()
        .for_each(|d| out.extend_from_slice(&d.to_be_bytes()));
    out.extend_from_slice(data);
    out
}

#[test]
fn dataset_whose_width_does_not_match_the_first_layer() {
    let t = TestDir::new();
    let m = mlp_4_8_3(&t, "m.safetensors");
    t.run(&["eval", &m, "--dataset", "synthetic", "--range", "0..10"])
        .fails_with(&["64 inputs per sample", "\"fc1.weight\" takes 4"]);
    t.run(&["compress", &m, "-o", "out", "--dataset", "synthetic"])
        .fails_with(&["64 inputs per sample", "\"fc1.weight\" takes 4"]);
    assert!(!t.exists("out"));
    t.run(&[
        "train",
        "--dataset",
        "synthetic",
        "--arch",
        "10-5-10",
        "--epochs",
        "1",
        "-o",
        "x.safetensors",
    ])
    .fails_with(&["64 inputs per sample", "takes 10"]);
    assert!(!t.exists("x.safetensors"));
}

#[test]
fn labels_outside_the_output_range() {
    let t = TestDir::new();
    // 4 samples of width 4, labels up to 5; the network has 3 outputs.
    t.write("x.idx", &idx(0x08, &[4, 2, 2], &[9; 16]));
    t.write("y.idx", &idx(0x08, &[4], &[0, 2, 5, 1]));
    let m = mlp_4_8_3(&t, "m.safetensors");
    t.run(&["eval", &m, "--dataset", "idx:x.idx,y.idx"])
        .fails_with(&[
            "sample 2 has label 5",
            "outside the 3 outputs",
            "fc2.weight",
        ]);
    t.run(&[
        "train",
        "--dataset",
        "idx:x.idx,y.idx",
        "--arch",
        "4-3",
        "--epochs",
        "1",
        "-o",
        "t.safetensors",
    ])
    .fails_with(&["label 5", "outside the 3 outputs"]);
}

#[test]
fn empty_range_or_one_past_the_end() {
    let t = TestDir::new();
    let m = fixture("demo-mlp.safetensors");
    let m = m.to_str().unwrap();
    t.run(&["eval", m, "--dataset", "synthetic", "--range", "5..5"])
        .fails_with(&["range 5..5", "holds no samples"]);
    t.run(&[
        "eval",
        m,
        "--dataset",
        "synthetic",
        "--range",
        "9000..10001",
    ])
    .fails_with(&["range 9000..10001", "past the end", "10000 samples"]);
    t.run(&[
        "compress",
        m,
        "-o",
        "out",
        "--dataset",
        "synthetic",
        "--eval-range",
        "10000..",
    ])
    .fails_with(&["range 10000..", "holds no samples"]);
    assert!(!t.exists("out"));
    let r = t.run(&["eval", m, "--dataset", "synthetic", "--range", "a..b"]);
    assert_eq!(r.status, 2, "{}", r.stderr);
    assert!(r.stderr.contains("--range"), "{}", r.stderr);
}

#[test]
fn corrupt_or_truncated_idx_files() {
    let t = TestDir::new();
    let m = mlp_4_8_3(&t, "m.safetensors");
    let images = idx(0x08, &[3, 2, 2], &[1; 12]);
    t.write("y.idx", &idx(0x08, &[3], &[0, 1, 2]));
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "magic.idx",
            [&[1u8, 2][..], &images[2..]].concat(),
            "expected 00 00 TYPE RANK",
        ),
        (
            "short.idx",
            images[..images.len() - 3].to_vec(),
            "short data",
        ),
        (
            "header.idx",
            images[..9].to_vec(),
            "shorter than the header",
        ),
        (
            "gzip.idx",
            vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 1, 2],
            "gzip",
        ),
    ];
    for (name, bytes, needle) in cases {
        t.write(name, &bytes);
        let spec = format!("idx:{name},y.idx");
        t.run(&["eval", &m, "--dataset", &spec]).fails_with(&[
            name,
            "not a valid IDX file",
            needle,
        ]);
    }
    // Images and labels of different counts.
    t.write("x.idx", &images);
    t.write("y2.idx", &idx(0x08, &[2], &[0, 1]));
    t.run(&["eval", &m, "--dataset", "idx:x.idx,y2.idx"])
        .fails_with(&["3 images but 2 labels"]);
    // A folder without MNIST files, and a spec that is not one.
    std::fs::create_dir(t.path("empty")).unwrap();
    t.run(&["eval", &m, "--dataset", "mnist:empty"])
        .fails_with(&["no MNIST-style IDX files"]);
    let r = t.run(&["eval", &m, "--dataset", "cifar:x"]);
    assert_eq!(r.status, 2, "{}", r.stderr);
    assert!(r.stderr.contains("expected mnist:DIR"), "{}", r.stderr);
}

#[test]
fn checkpoint_whose_layers_do_not_chain() {
    let t = TestDir::new();
    t.checkpoint(
        "m.safetensors",
        &[
            ("fc1.weight", vec![8, 4], vec![0.1; 32]),
            ("fc2.weight", vec![3, 9], vec![0.1; 27]),
        ],
    );
    let needles = [
        "\"fc1.weight\" and \"fc2.weight\" do not chain",
        "8 outputs",
        "takes 9 inputs",
    ];
    t.run(&["eval", "m.safetensors", "--dataset", "synthetic"])
        .fails_with(&needles);
    t.run(&[
        "compress",
        "m.safetensors",
        "-o",
        "out",
        "--dataset",
        "synthetic",
    ])
    .fails_with(&needles);
    assert!(!t.exists("out"));
    // A bias of the wrong length is named too.
    t.checkpoint(
        "b.safetensors",
        &[
            ("fc1.weight", vec![8, 4], vec![0.1; 32]),
            ("fc1.bias", vec![7], vec![0.1; 7]),
        ],
    );
    t.run(&["eval", "b.safetensors", "--dataset", "synthetic"])
        .fails_with(&["\"fc1.weight\"", "fc1.bias", "[8]"]);
}

#[test]
fn output_folder_made_from_a_different_checkpoint() {
    let t = TestDir::new();
    let a = mlp_4_8_3(&t, "a.safetensors");
    t.checkpoint(
        "b.safetensors",
        &[
            ("fc1.weight", vec![8, 4], vec![0.2; 32]),
            ("fc2.weight", vec![3, 8], vec![0.3; 24]),
        ],
    );
    t.run(&[
        "compress",
        &a,
        "-o",
        "out",
        "--density",
        "0.5",
        "--pes",
        "2",
    ])
    .ok();
    two_samples(&t);
    t.run(&["eval", &a, "out", "--dataset", "idx:x.idx,y.idx"])
        .ok();
    t.run(&[
        "eval",
        "b.safetensors",
        "out",
        "--dataset",
        "idx:x.idx,y.idx",
    ])
    .fails_with(&[
        "was made from a.safetensors",
        "not from b.safetensors",
        "sha256",
    ]);
}

#[test]
fn bad_training_settings() {
    let t = TestDir::new();
    for (args, needle) in [
        (vec!["--arch", "64"], "an input and at least one layer"),
        (vec!["--arch", "64-x-10"], "expected a layer"),
        (vec!["--arch", "64-10", "--lr", "0"], "learning rate"),
        (vec!["--arch", "64-10", "--batch-size", "0"], "batch size"),
        (vec!["--arch", "64-10", "--std", "0"], "standard deviation"),
    ] {
        let mut a = vec![
            "train",
            "--dataset",
            "synthetic",
            "--epochs",
            "1",
            "-o",
            "m.safetensors",
        ];
        a.extend(args);
        t.run(&a).fails_with(&[needle]);
        assert!(!t.exists("m.safetensors"));
    }
}

#[test]
fn a_selection_that_is_not_the_whole_network() {
    let t = TestDir::new();
    let m = mlp_4_8_3(&t, "m.safetensors");
    two_samples(&t);
    let needles = [
        "end at \"fc1.weight\"",
        "\"fc2.weight\" (not selected)",
        "whole network",
    ];
    t.run(&[
        "eval",
        &m,
        "--dataset",
        "idx:x.idx,y.idx",
        "--layers",
        "fc1.weight",
    ])
    .fails_with(&needles);
    t.run(&[
        "compress",
        &m,
        "-o",
        "out",
        "--layers",
        "fc1.weight",
        "--dataset",
        "idx:x.idx,y.idx",
        "--retrain",
    ])
    .fails_with(&needles);
    assert!(!t.exists("out"));
}

#[test]
fn accuracy_options_that_cannot_apply() {
    let t = TestDir::new();
    let m = mlp_4_8_3(&t, "m.safetensors");
    two_samples(&t);
    // Activation fractions for 2 layers are 3 numbers: refused before any work.
    t.run(&[
        "compress",
        &m,
        "-o",
        "out",
        "--dataset",
        "idx:x.idx,y.idx",
        "--act-frac",
        "8,8",
    ])
    .fails_with(&["3"]);
    // Scaling without a dataset.
    t.run(&["compress", &m, "-o", "out", "--std", "2"])
        .usage_error(&["--std", "--dataset"]);
    assert!(!t.exists("out"));
    // EIE options without an output folder to evaluate (clap: exit 2).
    let r = t.run(&[
        "eval",
        &m,
        "--dataset",
        "idx:x.idx,y.idx",
        "--act-frac",
        "8,8,8",
    ]);
    assert_eq!(r.status, 2, "{}", r.stderr);
    // Sizes and counts past any sensible limit are errors, not crashes.
    t.run(&[
        "train",
        "--dataset",
        "synthetic",
        "--arch",
        "64-100000-100000-10",
        "--epochs",
        "1",
        "-o",
        "big.safetensors",
    ])
    .fails_with(&["more than", "weights"]);
    t.run(&[
        "compress",
        &m,
        "-o",
        "out",
        "--dataset",
        "idx:x.idx,y.idx",
        "--retrain",
        "--rounds",
        "100000",
    ])
    .fails_with(&["rounds 100000", "over 1000"]);
    assert!(!t.exists("out"));
}

#[test]
fn training_output_over_its_own_dataset() {
    let t = TestDir::new();
    std::fs::create_dir(t.path("mnist")).unwrap();
    let images = idx(0x08, &[2, 2, 2], &[3; 8]);
    t.write("mnist/t10k-images-idx3-ubyte", &images);
    t.write("mnist/t10k-labels-idx1-ubyte", &idx(0x08, &[2], &[0, 1]));
    t.run(&[
        "train",
        "--dataset",
        "mnist:mnist",
        "--arch",
        "4-2",
        "--epochs",
        "1",
        "--force",
        "-o",
        "mnist/t10k-images-idx3-ubyte",
    ])
    .fails_with(&["an input of this command"]);
    assert_eq!(
        std::fs::read(t.path("mnist/t10k-images-idx3-ubyte")).unwrap(),
        images
    );
}

/// Inputs are sacred: a shard of a sharded checkpoint in the output folder, named like an
/// output, is never replaced, whatever --force says.
#[test]
fn a_shard_named_like_an_output_is_never_written() {
    let t = TestDir::new();
    std::fs::create_dir(t.path("out")).unwrap();
    t.checkpoint(
        "out/quantized.safetensors",
        &[("fc1.weight", vec![4, 4], vec![0.5; 16])],
    );
    t.write(
        "out/model.safetensors.index.json",
        br#"{"weight_map": {"fc1.weight": "quantized.safetensors"}}"#,
    );
    let before = std::fs::read(t.path("out/quantized.safetensors")).unwrap();
    for cmd in ["compress", "pack"] {
        t.run(
            &[
                cmd,
                "out/model.safetensors.index.json",
                "-o",
                "out",
                "--force",
                "--dense-checkpoints",
            ][..if cmd == "pack" { 5 } else { 6 }],
        )
        .fails_with(&["quantized.safetensors", "an input of this command"]);
    }
    assert_eq!(
        std::fs::read(t.path("out/quantized.safetensors")).unwrap(),
        before
    );
}

/// The vectors' manifest would replace the images' manifest: refused in the model's folder.
#[test]
fn vectors_are_not_written_over_their_model() {
    let t = TestDir::new();
    let m = fixture("tiny-mlp.safetensors");
    t.run(&[
        "pack",
        m.to_str().unwrap(),
        "-o",
        "out",
        "--pes",
        "2",
        "--no-bias-column",
    ])
    .ok();
    let before = t.snapshot("out");
    t.run(&["vectors", "out", "-o", "out", "--force"])
        .fails_with(&["holds the packed model", "elsewhere"]);
    t.run(&["vectors", "out/model.eie", "-o", "out/", "--force"])
        .fails_with(&["holds the packed model"]);
    assert_eq!(t.snapshot("out"), before);
    t.run(&["verify", "out"]).ok();
}
