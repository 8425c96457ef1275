//! Token models (a description's `tokV`: the paper's LSTM language-model kind, an embedding,
//! LSTM layers and a decoder at every token) end to end: `train` on text, `eval` against
//! PyTorch's own `nn.Embedding`/`nn.LSTM`/`nn.Linear` on the same checkpoint, `compress` with
//! a text, the bit-exact EIE stage against the shared float one, `simulate` per token, and
//! bad input refused by name.

use crate::util::{TestDir, json, python_with_torch, shakespeare};

/// `train --arch tok-embed16-lstm48` completes the vocabulary from the text, writes the same
/// bytes on every run, and a checkpoint PyTorch loads as its own modules: `eval`'s summed
/// loss over valid.txt's first 6,000 bytes equals PyTorch's by the same windows. `compress`
/// with the text reports every stage, the bit-exact model within 1% of the shared float
/// stage's perplexity; `eval` of the output says the same; `simulate` times a token.
#[test]
fn an_lstm_language_model_trains_evaluates_as_pytorch_and_runs_on_eie() {
    let test = "an_lstm_language_model_trains_evaluates_as_pytorch_and_runs_on_eie";
    let Some(data) = shakespeare() else { return };
    let t = TestDir::new();
    let text = format!("text:{}", data.join("train.txt").display());
    let valid = format!("text:{}", data.join("valid.txt").display());
    let train = |out: &str| {
        t.run(&[
            "train",
            "--dataset",
            &text,
            "--range",
            "0..60000",
            "--eval-range",
            "60000..70000",
            "--arch",
            "tok-embed16-lstm48",
            "--steps",
            "60",
            "--lr",
            "5e-3",
            "--context",
            "32",
            "--out",
            t.path(out).to_str().unwrap(),
        ])
        .ok()
        .to_string()
    };
    let printed = train("lm");
    assert!(printed.contains("held-out"), "{printed}");
    train("again");
    for f in ["model.safetensors", "tokenizer.json"] {
        let read = |d: &str| std::fs::read(t.path(d).join(f)).unwrap();
        assert!(read("lm") == read("again"), "{f} differs between two runs");
    }
    let model = t.path("lm/model.safetensors");
    let model = model.to_str().unwrap();
    let r = json(
        t.run(&[
            "eval",
            model,
            "--dataset",
            &valid,
            "--range",
            "0..6000",
            "--json",
        ])
        .ok(),
    );
    let stage = &r["stages"][0];
    let ppl = stage["perplexity"].as_f64().unwrap();
    // 60 steps learn the characters' frequencies at least: far below a uniform guess.
    assert!(ppl > 1.0 && ppl < 30.0, "{ppl}");
    // The recorded training window is the default context, half of it the stride.
    assert_eq!(r["text"]["context"], 32);
    assert_eq!(r["text"]["stride"], 16);
    if let Some(python) = python_with_torch(test) {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/lstm_lm.py");
        let dir = t.path("lm");
        let theirs = json(&crate::util::python_stdout(
            &python,
            &[
                script,
                dir.to_str().unwrap(),
                data.join("valid.txt").to_str().unwrap(),
                "6000",
                "32",
                "16",
            ],
        ));
        assert_eq!(r["text"]["tokens"], theirs["tokens"]);
        assert_eq!(stage["total"], theirs["scored"]);
        let ours = stage["loss"].as_f64().unwrap() * stage["total"].as_f64().unwrap();
        let want = theirs["nll"].as_f64().unwrap();
        assert!(
            ((ours - want) / want).abs() < 1e-5,
            "NLL {ours} against PyTorch's {want}"
        );
    }
    let c = t.path("c");
    let c = c.to_str().unwrap();
    let r = json(
        t.run(&[
            "compress",
            model,
            "--out",
            c,
            "--density",
            "0.3",
            "--pes",
            "8",
            "--dataset",
            &valid,
            "--range",
            "0..6000",
            "--json",
        ])
        .ok(),
    );
    let stages = r["accuracy"]["stages"].as_array().unwrap();
    let names: Vec<&str> = stages
        .iter()
        .map(|s| s["stage"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "original (float)",
            "pruned (float)",
            "pruned + shared (float)",
            "EIE bit-exact (images)"
        ]
    );
    let p = |i: usize| stages[i]["perplexity"].as_f64().unwrap();
    assert_eq!(p(0), ppl);
    assert!(
        (p(3) - p(2)).abs() / p(2) < 0.01,
        "EIE {} against shared {}",
        p(3),
        p(2)
    );
    // Every matrix packed: the embedding as its [E, V] transpose, the LSTM's packed matrix,
    // the decoder.
    let layers: Vec<&str> = r["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    assert_eq!(layers, ["embed.weight", "lstm.packed_l0", "fc1.weight"]);
    // PyTorch's own modules with the weights the images hold (unpack writes the embedding
    // back as its [V, E] table) give the shared stage's loss.
    if let Some(python) = python_with_torch(test) {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/lstm_lm.py");
        let unpacked = t.path("c.safetensors");
        t.run(&["unpack", c, "-o", unpacked.to_str().unwrap()]).ok();
        let dir = t.path("lm");
        let theirs = json(&crate::util::python_stdout(
            &python,
            &[
                script,
                dir.to_str().unwrap(),
                data.join("valid.txt").to_str().unwrap(),
                "6000",
                "32",
                "16",
                unpacked.to_str().unwrap(),
            ],
        ));
        let shared = &stages[2];
        let ours = shared["loss"].as_f64().unwrap() * shared["total"].as_f64().unwrap();
        let want = theirs["nll"].as_f64().unwrap();
        assert!(
            ((ours - want) / want).abs() < 1e-5,
            "shared stage NLL {ours} against PyTorch's {want}"
        );
    }
    let e = json(
        t.run(&[
            "eval",
            model,
            c,
            "--dataset",
            &valid,
            "--range",
            "0..6000",
            "--json",
        ])
        .ok(),
    );
    for (i, s) in e["stages"].as_array().unwrap().iter().enumerate() {
        assert_eq!(s["perplexity"], stages[i]["perplexity"], "stage {i}");
    }
    let s = json(t.run(&["simulate", c, "--json"]).ok());
    assert_eq!(s["inferences"], 64);
    assert!(s["tokens_per_second"].as_f64().unwrap() > 0.0, "{s}");
    let names: Vec<&str> = s["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["embed.weight", "lstm.packed_l0", "fc1.weight"]);
    // A token's one-hot vector: the embedding is one column's entries.
    let table = t.run(&["simulate", c]).ok().to_string();
    assert!(table.contains("per token:"), "{table}");
}

/// `compress --retrain` of a token model: pruning with masked fine-tuning, sharing and
/// centroid fine-tuning on the next-token loss of the `--range` text, every stage measured on
/// `--eval-range`; retraining wins back what pruning cost, the bit-exact stage equals the
/// retrained one, and eval of the output leaves out the rebuilt pruned stage.
#[test]
fn compress_retrains_a_token_model_on_the_next_token_loss() {
    let Some(data) = shakespeare() else { return };
    let t = TestDir::new();
    let text = format!("text:{}", data.join("train.txt").display());
    let lm = t.path("lm");
    t.run(&[
        "train",
        "--dataset",
        &text,
        "--range",
        "0..60000",
        "--arch",
        "tok-embed16-lstm48",
        "--steps",
        "80",
        "--lr",
        "5e-3",
        "--context",
        "32",
        "--out",
        lm.to_str().unwrap(),
    ])
    .ok();
    let model = t.path("lm/model.safetensors");
    let model = model.to_str().unwrap();
    let compress = |out: &str, retrain: bool| {
        let out = t.path(out);
        let mut args = vec![
            "compress",
            model,
            "-o",
            out.to_str().unwrap(),
            "--density",
            "0.2",
            "--pes",
            "8",
            "--dataset",
            &text,
            "--range",
            "0..40000",
            "--eval-range",
            "60000..66000",
            "--json",
        ];
        if retrain {
            args.extend([
                "--retrain",
                "--epochs",
                "2",
                "--centroid-epochs",
                "1",
                "--lr",
                "3e-3",
            ]);
        }
        json(t.run(&args).ok())
    };
    let plain = compress("plain", false);
    let r = compress("re", true);
    let stages = r["accuracy"]["stages"].as_array().unwrap();
    let names: Vec<&str> = stages
        .iter()
        .map(|s| s["stage"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "original (float)",
            "pruned",
            "masked fine-tuning",
            "weight-shared",
            "centroid fine-tuning",
            "pruned + shared (float)",
            "EIE bit-exact (images)"
        ]
    );
    let p = |r: &serde_json::Value, i: usize| {
        r["accuracy"]["stages"][i]["perplexity"].as_f64().unwrap()
    };
    // Pruning cost; fine-tuning won some of it back; the images hold the retrained values.
    assert!(p(&r, 2) < p(&r, 1), "{} -> {}", p(&r, 1), p(&r, 2));
    assert_eq!(p(&r, 5), p(&r, 4));
    assert!((p(&r, 6) - p(&r, 5)).abs() / p(&r, 5) < 0.01);
    // Better than the same density without retraining.
    assert!(
        p(&r, 5) < p(&plain, 2),
        "{} against {}",
        p(&r, 5),
        p(&plain, 2)
    );
    assert!(
        r["accuracy"]["train"]
            .as_str()
            .unwrap()
            .contains("0..40000")
    );
    assert_eq!(r["accuracy"]["held_out_is_train"], false);
    // Each retraining stage carries its last epoch's training loss.
    assert!(
        stages[2]["train_loss"].as_f64().unwrap() > 0.0,
        "{}",
        stages[2]
    );
    let e = json(
        t.run(&[
            "eval",
            model,
            t.path("re").to_str().unwrap(),
            "--dataset",
            &text,
            "--range",
            "60000..66000",
            "--json",
        ])
        .ok(),
    );
    let names: Vec<&str> = e["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["stage"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "original (float)",
            "pruned + shared (float)",
            "EIE bit-exact (images)"
        ]
    );
    assert_eq!(e["stages"][1]["perplexity"], stages[5]["perplexity"]);
    assert!(e["notes"].to_string().contains("retrained"), "{e}");
}

/// What a token model cannot be given, each refused by name before any work.
#[test]
fn token_models_refuse_bad_input_by_name() {
    let Some(data) = shakespeare() else { return };
    let t = TestDir::new();
    let text = format!("text:{}", data.join("train.txt").display());
    let lm = t.path("lm");
    t.run(&[
        "train",
        "--dataset",
        &text,
        "--range",
        "0..20000",
        "--arch",
        "tok-embed8-lstm16",
        "--steps",
        "2",
        "--out",
        lm.to_str().unwrap(),
    ])
    .ok();
    let model = t.path("lm/model.safetensors");
    let model = model.to_str().unwrap();
    let valid = format!("text:{}", data.join("valid.txt").display());
    // A description whose vocabulary is not the text's.
    t.run(&[
        "train",
        "--dataset",
        &text,
        "--range",
        "0..20000",
        "--arch",
        "tok65-embed8-lstm16-65",
        "--steps",
        "1",
        "--out",
        t.path("x").to_str().unwrap(),
    ])
    .fails_with(&["tokens", "tok-embedE-lstmH"]);
    // --context means nothing to a classifier.
    t.run(&[
        "train",
        "--dataset",
        "synthetic",
        "--arch",
        "784-10",
        "--context",
        "8",
        "--out",
        t.path("y").to_str().unwrap(),
    ])
    .fails_with(&["--context", "token models"]);
    // A description whose last item would be buried under the vocabulary's Linear; a
    // token model with a layer it cannot run once a token; a window of one token.
    t.run(&[
        "train",
        "--dataset",
        &text,
        "--range",
        "0..20000",
        "--arch",
        "tok-embed8-lstm16-32",
        "--steps",
        "1",
        "--out",
        t.path("z").to_str().unwrap(),
    ])
    .fails_with(&["leave out the last Linear"]);
    t.run(&[
        "train",
        "--dataset",
        &text,
        "--range",
        "0..20000",
        "--arch",
        "tok-embed8-flatten",
        "--steps",
        "1",
        "--out",
        t.path("z").to_str().unwrap(),
    ])
    .fails_with(&["embedding, LSTMs, Linears and ReLUs"]);
    t.run(&[
        "train",
        "--dataset",
        &text,
        "--range",
        "0..20000",
        "--arch",
        "tok-embed8-lstm16",
        "--context",
        "1",
        "--steps",
        "1",
        "--out",
        t.path("z").to_str().unwrap(),
    ])
    .fails_with(&["--context", "2.."]);
    // Fractions of the wrong count, before any stage runs; dense checkpoints of the
    // embedding's matrix.
    t.run(&[
        "compress",
        model,
        "-o",
        t.path("d").to_str().unwrap(),
        "--dense-checkpoints",
    ])
    .fails_with(&["--dense-checkpoints", "embedding"]);
    // A window the model cannot take; a dataset that is not text; retraining.
    t.run(&[
        "eval",
        model,
        "--dataset",
        &valid,
        "--range",
        "0..2000",
        "--context",
        "1",
    ])
    .fails_with(&["context of 1"]);
    t.run(&["eval", model, "--dataset", "synthetic"])
        .fails_with(&["token model", "text:FILE"]);
    // Retraining text too short for a window.
    t.run(&[
        "compress",
        model,
        "-o",
        t.path("c").to_str().unwrap(),
        "--dataset",
        &valid,
        "--range",
        "0..20",
        "--eval-range",
        "0..2000",
        "--retrain",
    ])
    .fails_with(&["retraining", "give more text"]);
    // Generated inputs only for simulate; vectors of a file refused.
    let c = t.path("c2");
    t.run(&[
        "compress",
        model,
        "-o",
        c.to_str().unwrap(),
        "--density",
        "0.5",
        "--pes",
        "4",
    ])
    .ok();
    // The energy of a token is simulate's: an energy table given to eval is refused.
    t.write("e.toml", b"");
    t.run(&[
        "eval",
        model,
        c.to_str().unwrap(),
        "--dataset",
        &valid,
        "--range",
        "0..2000",
        "--energy-table",
        "e.toml",
    ])
    .fails_with(&["--energy-table", "simulate DIR"]);
    t.run(&[
        "eval",
        model,
        c.to_str().unwrap(),
        "--dataset",
        &valid,
        "--range",
        "0..2000",
        "--act-frac",
        "14,14",
    ])
    .fails_with(&["activation fractions", "6 for its 3 layers"]);
    t.run(&["simulate", c.to_str().unwrap(), "--act-density", "0.5"])
        .fails_with(&["--act-density", "one-hot"]);
    t.write("x.safetensors", b"");
    t.run(&["simulate", c.to_str().unwrap(), "--input", "x.safetensors"])
        .fails_with(&["token model", "generated token ids"]);
    // A tokenizer that is not there, and one larger than the vocabulary.
    let tok = t.path("lm/tokenizer.json");
    let saved = std::fs::read(&tok).unwrap();
    std::fs::remove_file(&tok).unwrap();
    t.run(&["eval", model, "--dataset", &valid, "--range", "0..2000"])
        .fails_with(&["tokenizer.json", "does not exist"]);
    let big: serde_json::Value = {
        let mut v: serde_json::Value = serde_json::from_slice(&saved).unwrap();
        let vocab = v["model"]["vocab"].as_object_mut().unwrap();
        for i in 0..200 {
            vocab.insert(format!("extra{i}"), serde_json::json!(1000 + i));
        }
        v
    };
    std::fs::write(&tok, serde_json::to_vec(&big).unwrap()).unwrap();
    t.run(&["eval", model, "--dataset", &valid, "--range", "0..2000"])
        .fails_with(&["tokenizer.json", "vocabulary"]);
}
