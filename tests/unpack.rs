//! `unpack`: packed layers back to dense tensors.

use eie_checkpoint::{Checkpoint, Dtype};

use crate::util::{TestDir, fixture, python_with_safetensors, sparse};

#[test]
fn unpack_equals_the_input_bit_for_bit() {
    let t = TestDir::new();
    let a = sparse(33, 17, 4, 15);
    let b: Vec<f32> = sparse(7, 50, 3, 6)
        .iter()
        .map(|&v| if v == 0.0 { 0.0 } else { -v * 1e-3 })
        .collect();
    let model = t.checkpoint(
        "m.safetensors",
        &[
            ("a.weight", vec![33, 17], a.clone()),
            ("b.weight", vec![7, 50], b.clone()),
        ],
    );
    for pes in ["1", "2", "3", "4", "8", "64"] {
        let out = format!("out{pes}");
        t.run(&["pack", model.to_str().unwrap(), "-o", &out, "--pes", pes])
            .ok();
        let dense = format!("dense{pes}.safetensors");
        t.run(&["unpack", &out, "-o", &dense]).ok();
        let ck = Checkpoint::open(t.path(&dense)).unwrap();
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(
            bits(&ck.read_f32("a.weight").unwrap()),
            bits(&a),
            "N = {pes}"
        );
        assert_eq!(
            bits(&ck.read_f32("b.weight").unwrap()),
            bits(&b),
            "N = {pes}"
        );
        assert_eq!(ck.info("a.weight").unwrap().shape, [33, 17]);
        assert_eq!(ck.info("a.weight").unwrap().dtype, Dtype::F32);
    }
}

/// The format has no sign for a pruned zero: -0.0 (what PyTorch's `w * mask` leaves where a
/// negative weight was masked) is pruned like 0.0 and comes back as +0.0.
#[test]
fn negative_zero_is_a_pruned_zero_and_comes_back_positive() {
    let t = TestDir::new();
    let model = t.checkpoint(
        "m.safetensors",
        &[("a.weight", vec![2, 2], vec![-0.0, 0.5, 0.0, -0.5])],
    );
    t.run(&["pack", model.to_str().unwrap(), "-o", "out"]).ok();
    let report = crate::util::json(t.run(&["inspect", "out", "--json"]).ok());
    assert_eq!(report["layers"][0]["nonzeros"], 2);
    t.run(&["unpack", "out", "-o", "d.safetensors"]).ok();
    let back = Checkpoint::open(t.path("d.safetensors"))
        .unwrap()
        .read_f32("a.weight")
        .unwrap();
    assert_eq!(
        back.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        [0, 0.5f32.to_bits(), 0, (-0.5f32).to_bits()]
    );
}

#[test]
fn unpack_of_the_figure2_fixture_and_an_f16_layer() {
    let t = TestDir::new();
    for (fixture_name, layer) in [
        ("figure2.safetensors", "fig2.weight"),
        ("tiny-mlp.safetensors", "fc2.weight"),
    ] {
        let model = fixture(fixture_name);
        t.run(&[
            "pack",
            model.to_str().unwrap(),
            "-o",
            "out",
            "--pes",
            "4",
            "--force",
            "--no-bias-column",
        ])
        .ok();
        t.run(&["unpack", "out", "-o", "dense.safetensors", "--force"])
            .ok();
        let original = Checkpoint::open(&model).unwrap().read_f32(layer).unwrap();
        let back = Checkpoint::open(t.path("dense.safetensors"))
            .unwrap()
            .read_f32(layer)
            .unwrap();
        assert_eq!(back, original, "{fixture_name}");
    }
}

#[test]
fn unpack_refuses_to_overwrite_without_force() {
    let t = TestDir::new();
    t.run(&[
        "pack",
        fixture("figure2.safetensors").to_str().unwrap(),
        "-o",
        "out",
    ])
    .ok();
    t.write("dense.safetensors", b"keep me");
    t.run(&["unpack", "out", "-o", "dense.safetensors"])
        .fails_with(&["dense.safetensors", "already exists", "--force"]);
    assert_eq!(
        std::fs::read(t.path("dense.safetensors")).unwrap(),
        b"keep me"
    );
    // --force replaces only a file eie-compress wrote: "keep me" is not one.
    t.run(&["unpack", "out", "-o", "dense.safetensors", "--force"])
        .fails_with(&["dense.safetensors", "not written by eie-compress"]);
    assert_eq!(
        std::fs::read(t.path("dense.safetensors")).unwrap(),
        b"keep me"
    );
    t.run(&["unpack", "out", "-o", "ours.safetensors"]).ok();
    t.run(&["unpack", "out", "-o", "ours.safetensors", "--force"])
        .ok();
    assert!(Checkpoint::open(t.path("ours.safetensors")).is_ok());
}

/// The written file must load in Python's safetensors (the reference implementation).
/// Skips, saying so, when python3 with numpy and safetensors is not installed.
#[test]
fn python_safetensors_reads_unpack_output() {
    if !python_with_safetensors("python_safetensors_reads_unpack_output") {
        return;
    }
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
    t.run(&["unpack", "out", "-o", "dense.safetensors"]).ok();
    let script = format!(
        "from safetensors.numpy import load_file\n\
         a = load_file({:?})['fig2.weight']\n\
         b = load_file({:?})['fig2.weight']\n\
         assert a.dtype.name == 'float32' and a.shape == (16, 8), (a.dtype, a.shape)\n\
         assert (a.view('u4') == b.view('u4')).all()\n\
         print('ok', int((a != 0).sum()))\n",
        t.path("dense.safetensors").to_str().unwrap(),
        fixture("figure2.safetensors").to_str().unwrap()
    );
    let out = crate::util::python_stdout("python3", &["-c", &script]);
    assert_eq!(out.trim(), "ok 43");
}

/// A reader written from docs/format.md alone (tests/python/eie_reader.py, standard library
/// only) parses model.eie and every image, and must agree with the tool: same streams as
/// `inspect --json`, same dense matrix as the input. Skips, saying so, without python3.
#[test]
fn python_reader_written_from_the_spec_agrees_with_the_tool() {
    if std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!(
            "SKIPPED python_reader_written_from_the_spec_agrees_with_the_tool: python3 not found"
        );
        return;
    }
    let reader =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/eie_reader.py");
    let t = TestDir::new();
    // 70 rows so that 1-bit and 2-bit indices need padding; 3 distinct values fit 2-bit codes.
    let w = sparse(70, 23, 9, 3);
    let model = t.checkpoint("m.safetensors", &[("w.weight", vec![70, 23], w.clone())]);
    for (pes, code_bits, index_bits, pointer_bits) in [
        ("1", "2", "1", "16"),
        ("3", "3", "2", "32"),
        ("4", "4", "4", "16"),
        ("64", "8", "3", "16"),
    ] {
        let out = format!("out-{pes}-{code_bits}-{index_bits}");
        t.run(&[
            "pack",
            model.to_str().unwrap(),
            "-o",
            &out,
            "--pes",
            pes,
            "--code-bits",
            code_bits,
            "--index-bits",
            index_bits,
            "--pointer-bits",
            pointer_bits,
        ])
        .ok();
        let py = std::process::Command::new("python3")
            .arg(&reader)
            .arg(t.path(&out))
            .output()
            .unwrap();
        assert!(
            py.status.success(),
            "{out}: {}",
            String::from_utf8_lossy(&py.stderr)
        );
        let from_py = crate::util::json(&String::from_utf8_lossy(&py.stdout));
        let from_tool = crate::util::json(t.run(&["inspect", &out, "--json"]).ok());
        let (a, b) = (&from_py["layers"][0], &from_tool["layers"][0]);
        for (k, pe) in b["pe"].as_array().unwrap().iter().enumerate() {
            for key in ["codes", "z", "ptr"] {
                assert_eq!(a["pe"][k][key], pe[key], "{out} PE {k} {key}");
            }
        }
        let dense: Vec<f32> = a["dense"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|r| {
                r.as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_f64().unwrap() as f32)
            })
            .collect();
        assert_eq!(dense, w, "{out}");
        if index_bits == "1" {
            assert!(
                b["padding"].as_u64().unwrap() > 0,
                "the 1-bit case must exercise padding"
            );
        }
    }
}
