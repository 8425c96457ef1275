//! CNNs and LSTMs end to end (issue 11): `train` with a model description on the synthetic
//! set's image and sequence forms, `eval` reading the description back (or given for a
//! checkpoint made elsewhere), and every mismatch named.

use eie_checkpoint::Checkpoint;

use crate::util::{TestDir, json};

/// A tensor as the tests write it: name, shape, values.
type Tensor = (String, Vec<usize>, Vec<f32>);

pub const CNN: &str = "1x8x8-conv6k3-relu-maxpool2-24-10";
pub const LSTM: &str = "8x8-lstm16-10";

/// Trains `arch` on the synthetic set in `form` (`image`, `sequence`), samples 0..2000.
pub fn trained(t: &TestDir, arch: &str, form: &str, rel: &str) {
    t.run(&[
        "train",
        "--dataset",
        &format!("synthetic-{form}"),
        "--range",
        "0..2000",
        "--eval-range",
        "8000..9000",
        "--arch",
        arch,
        "--epochs",
        "6",
        "--lr",
        "0.01",
        "-o",
        rel,
    ])
    .ok();
}

fn eval_top1(t: &TestDir, args: &[&str]) -> f64 {
    let mut a = vec!["eval"];
    a.extend(args);
    a.push("--json");
    let v = json(t.run(&a).ok());
    v["stages"][0]["top1"].as_f64().unwrap()
}

#[test]
fn a_cnn_and_an_lstm_train_and_evaluate_from_their_recorded_description() {
    let t = TestDir::new();
    for (arch, form, tensors) in [
        (
            CNN,
            "image",
            vec![
                ("conv1.weight", vec![6, 1, 3, 3]),
                ("conv1.bias", vec![6]),
                ("fc1.weight", vec![24, 54]),
                ("fc1.bias", vec![24]),
                ("fc2.weight", vec![10, 24]),
                ("fc2.bias", vec![10]),
            ],
        ),
        (
            LSTM,
            "sequence",
            vec![
                ("lstm.weight_ih_l0", vec![64, 8]),
                ("lstm.weight_hh_l0", vec![64, 16]),
                ("lstm.bias_ih_l0", vec![64]),
                ("lstm.bias_hh_l0", vec![64]),
                ("fc1.weight", vec![10, 16]),
                ("fc1.bias", vec![10]),
            ],
        ),
    ] {
        let (m, again) = (
            format!("{form}.safetensors"),
            format!("{form}-again.safetensors"),
        );
        trained(&t, arch, form, &m);
        trained(&t, arch, form, &again);
        let first = std::fs::read(t.path(&m)).unwrap();
        assert_eq!(first, std::fs::read(t.path(&again)).unwrap());
        let ck = Checkpoint::open(t.path(&m)).unwrap();
        let shapes: Vec<(String, Vec<usize>)> = ck
            .tensors()
            .into_iter()
            .map(|i| (i.name, i.shape))
            .collect();
        let expected: Vec<(String, Vec<usize>)> = tensors
            .into_iter()
            .map(|(n, s)| (n.to_string(), s))
            .collect();
        assert_eq!(shapes, expected, "{arch}: PyTorch's names and layouts");
        let meta = ck.metadata();
        assert_eq!(meta["eie.arch"], arch);
        let recorded: f64 = meta["eie.eval_top1"].parse().unwrap();
        assert!(recorded > 0.4, "{arch}: held-out top-1 {recorded}");
        // eval reads the description back and measures what train measured.
        let dataset = format!("synthetic-{form}");
        let top1 = eval_top1(&t, &[&m, "--dataset", &dataset, "--range", "8000..9000"]);
        assert!(
            (top1 - recorded).abs() < 1e-6,
            "{arch}: eval {top1}, train {recorded}"
        );
        // The plain synthetic grid is not 8x8: its samples are 64-vectors.
        t.run(&["eval", &m, "--dataset", "synthetic", "--range", "0..10"])
            .fails_with(&["holds samples of 64", "reads"]);
    }
}

#[test]
fn the_wrong_kind_of_dataset_is_refused_by_name() {
    let t = TestDir::new();
    trained(&t, CNN, "image", "cnn.safetensors");
    trained(&t, LSTM, "sequence", "lstm.safetensors");
    t.run(&[
        "eval",
        "lstm.safetensors",
        "--dataset",
        "synthetic-image",
        "--range",
        "0..10",
    ])
    .fails_with(&[
        "holds images of 1x8x8",
        "\"lstm (lstm16)\" reads a sequence of 8 steps of 8 features",
    ]);
    t.run(&[
        "eval",
        "cnn.safetensors",
        "--dataset",
        "synthetic-sequence",
        "--range",
        "0..10",
    ])
    .fails_with(&[
        "holds sequences of 8x8",
        "\"conv1 (conv6k3)\" reads an image of 1x8x8",
    ]);
    // A form that does not exist.
    t.run(&[
        "train",
        "--dataset",
        "synthetic-images",
        "--arch",
        CNN,
        "-o",
        "x.safetensors",
    ])
    .usage_error(&["synthetic[-image|-sequence]"]);
}

/// A checkpoint made elsewhere, PyTorch's names, no metadata: given its description it
/// evaluates as the same network; every mismatch names the description's layer and the
/// tensor.
#[test]
fn a_description_given_for_a_foreign_checkpoint_and_its_mismatches() {
    let t = TestDir::new();
    trained(&t, CNN, "image", "cnn.safetensors");
    let ck = Checkpoint::open(t.path("cnn.safetensors")).unwrap();
    let tensors: Vec<Tensor> = ck
        .tensors()
        .into_iter()
        .map(|i| {
            (
                i.name.clone(),
                i.shape.clone(),
                ck.read_f32(&i.name).unwrap(),
            )
        })
        .collect();
    let write = |rel: &str, edit: &dyn Fn(&mut Vec<Tensor>)| {
        let mut ts = tensors.clone();
        edit(&mut ts);
        let refs: Vec<(&str, Vec<usize>, Vec<f32>)> = ts
            .iter()
            .map(|(n, s, v)| (n.as_str(), s.clone(), v.clone()))
            .collect();
        t.checkpoint(rel, &refs);
    };
    write("foreign.safetensors", &|_| {});
    let range = ["--dataset", "synthetic-image", "--range", "8000..9000"];
    let ours = eval_top1(&t, &[&["cnn.safetensors"][..], &range].concat());
    let theirs = eval_top1(
        &t,
        &[&["foreign.safetensors", "--arch", CNN][..], &range].concat(),
    );
    assert_eq!(ours, theirs);
    // Without a description it is not an MLP.
    t.run(&[&["eval", "foreign.safetensors"][..], &range].concat())
        .fails_with(&["fc1.weight"]);

    let fails = |rel: &str, arch: &str, needles: &[&str]| {
        t.run(&[&["eval", rel, "--arch", arch][..], &range].concat())
            .fails_with(needles);
    };
    // Another shape.
    fails(
        "foreign.safetensors",
        "1x8x8-conv6k5-relu-maxpool2-24-10",
        &[
            "conv1 (conv6k5)",
            "\"conv1.weight\" [6, 1, 5, 5]",
            "holds [6, 1, 3, 3]",
        ],
    );
    // A missing tensor.
    write("nofc2.safetensors", &|ts| {
        ts.retain(|(n, _, _)| n != "fc2.weight")
    });
    fails(
        "nofc2.safetensors",
        CNN,
        &["fc2 (10)", "\"fc2.weight\"", "has no such tensor"],
    );
    // The wrong kind of layer: a Linear's 2-D weight where the description has a conv.
    write("flat.safetensors", &|ts| {
        ts[0].1 = vec![6, 9];
    });
    fails(
        "flat.safetensors",
        CNN,
        &["conv1.weight", "holds [6, 9]", "a Linear's"],
    );
    // A layer that does not chain: fc1 described with other inputs.
    fails(
        "foreign.safetensors",
        "1x8x8-conv6k3-relu-maxpool3s1-24-10",
        &["fc1 (24)", "\"fc1.weight\" [24, 96]", "holds [24, 54]"],
    );
    // A tensor the description leaves out.
    write("extra.safetensors", &|ts| {
        ts.push(("fc3.weight".into(), vec![3, 3], vec![0.0; 9]))
    });
    fails("extra.safetensors", CNN, &["does not use", "fc3.weight"]);
    // NaN.
    write("nan.safetensors", &|ts| ts[0].2[4] = f32::NAN);
    fails("nan.safetensors", CNN, &["conv1.weight", "NaN"]);
    // A kernel that leaves no output.
    fails(
        "foreign.safetensors",
        "1x8x8-conv6k9-10",
        &["conv1 (conv6k9)", "leaves no output"],
    );
    // --layers and a description together.
    t.run(
        &[
            &[
                "eval",
                "foreign.safetensors",
                "--arch",
                CNN,
                "--layers",
                "fc*",
            ][..],
            &range,
        ]
        .concat(),
    )
    .fails_with(&["give one of them"]);
}

#[test]
fn lstm_gate_blocks_must_divide_the_rows_by_four() {
    let t = TestDir::new();
    let z = |n: usize| vec![0.0f32; n];
    t.checkpoint(
        "l.safetensors",
        &[
            ("lstm.weight_ih_l0", vec![62, 8], z(62 * 8)),
            ("lstm.weight_hh_l0", vec![62, 16], z(62 * 16)),
            ("fc1.weight", vec![10, 16], z(160)),
        ],
    );
    t.run(&[
        "eval",
        "l.safetensors",
        "--arch",
        LSTM,
        "--dataset",
        "synthetic-sequence",
        "--range",
        "0..10",
    ])
    .fails_with(&[
        "lstm (lstm16)",
        "lstm.weight_ih_l0",
        "62 rows are not an LSTM's four gate blocks",
    ]);
}
