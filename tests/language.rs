//! `eval` of Hugging Face language model folders on text (issue 21): perplexity by
//! transformers' own recipe, the same tokens, bad folders and bad text refused by name.

use crate::util::{TestDir, json, python_with_torch};

fn shakespeare() -> Option<std::path::PathBuf> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/shakespeare");
    if dir.join("valid.txt").is_file() {
        Some(dir)
    } else {
        eprintln!("SKIPPED: {} is absent", dir.display());
        None
    }
}

/// A GPT-2 and a Llama (grouped-query attention, tied head) made by transformers with a
/// trained byte-level BPE tokenizer: eval's perplexity over valid.txt's first 20,000 bytes
/// equals transformers' sliding-window recipe on the same model and text.
#[test]
fn eval_perplexity_equals_transformers() {
    let Some(python) = python_with_torch("eval_perplexity_equals_transformers") else {
        return;
    };
    let Some(data) = shakespeare() else { return };
    let t = TestDir::new();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/python/language_model.py"
    );
    for kind in ["gpt2", "llama"] {
        let out = std::process::Command::new(&python)
            .arg(script)
            .arg(data.join("train.txt"))
            .arg(data.join("valid.txt"))
            .args(["20000", kind])
            .arg(t.path(kind))
            .args(["64", "24"])
            .env("TRANSFORMERS_VERBOSITY", "error")
            .output()
            .unwrap();
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            if err.contains("No module named 'transformers'") {
                eprintln!("SKIPPED eval_perplexity_equals_transformers: no transformers");
                return;
            }
            panic!("{err}");
        }
        let expected = json(&std::fs::read_to_string(t.path(kind).join("expected.json")).unwrap());
        let valid = data.join("valid.txt");
        let r = t.run(&[
            "eval",
            t.path(kind).to_str().unwrap(),
            "--dataset",
            &format!("text:{}", valid.display()),
            "--range",
            "0..20000",
            "--context",
            "64",
            "--stride",
            "24",
            "--json",
        ]);
        let report = json(r.ok());
        assert_eq!(report["text"]["tokens"], expected["tokens"], "{kind}");
        let stage = &report["stages"][0];
        assert_eq!(stage["total"], expected["scored"], "{kind}");
        let ours = stage["loss"].as_f64().unwrap() * stage["total"].as_f64().unwrap();
        let theirs = expected["nll"].as_f64().unwrap();
        assert!(
            ((ours - theirs) / theirs).abs() < 1e-5,
            "{kind}: NLL {ours} against transformers' {theirs}"
        );
        // The table says the same.
        let table = t
            .run(&[
                "eval",
                t.path(kind).to_str().unwrap(),
                "--dataset",
                &format!("text:{}", valid.display()),
                "--range",
                "0..20000",
                "--context",
                "64",
            ])
            .ok()
            .to_string();
        assert!(
            table.contains("perplexity") && table.contains("original (float)"),
            "{table}"
        );
    }
}

/// Language model folders and text that cannot be evaluated: each a one-line error naming
/// the file or the field.
#[test]
fn bad_language_model_input_is_refused_by_name() {
    let Some(python) = python_with_torch("bad_language_model_input_is_refused_by_name") else {
        return;
    };
    let Some(data) = shakespeare() else { return };
    let t = TestDir::new();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/python/language_model.py"
    );
    let out = std::process::Command::new(&python)
        .arg(script)
        .arg(data.join("train.txt"))
        .arg(data.join("valid.txt"))
        .args(["2000", "gpt2"])
        .arg(t.path("m"))
        .args(["64", "32"])
        .env("TRANSFORMERS_VERBOSITY", "error")
        .output()
        .unwrap();
    if !out.status.success() {
        eprintln!(
            "SKIPPED bad_language_model_input_is_refused_by_name: the model could not be made"
        );
        return;
    }
    let m = t.path("m");
    let m = m.to_str().unwrap();
    t.write("bad.txt", b"to be \xff or not");
    t.run(&["eval", m, "--dataset", "text:bad.txt"])
        .fails_with(&["bad.txt", "not UTF-8", "byte 6"]);
    t.write("short.txt", b"x");
    t.run(&["eval", m, "--dataset", "text:short.txt"])
        .fails_with(&["1 tokens", "at least 2"]);
    t.run(&["eval", m, "--dataset", "synthetic"])
        .fails_with(&["language model", "text:FILE"]);
    t.write("t.txt", b"To be, or not to be: that is the question.");
    t.run(&["eval", m, "--dataset", "text:t.txt", "--context", "129"])
        .fails_with(&["context of 129", "128"]);
    t.run(&["eval", m, "--dataset", "text:t.txt", "--range", "0..999"])
        .fails_with(&["t.txt", "0..999", "holds 42"]);
    // Review: a range past the end and a context past the positions are named before any
    // estimate; a folder without config.json says so.
    t.run(&[
        "eval",
        m,
        "--dataset",
        "text:t.txt",
        "--range",
        "0..99999999",
    ])
    .fails_with(&["t.txt", "0..99999999", "holds 42"]);
    t.run(&[
        "eval",
        m,
        "--dataset",
        "text:t.txt",
        "--context",
        "16777216",
    ])
    .fails_with(&["context of 16777216", "<= 128"]);
    std::fs::create_dir(t.path("empty")).unwrap();
    t.run(&[
        "eval",
        t.path("empty").to_str().unwrap(),
        "--dataset",
        "text:t.txt",
    ])
    .fails_with(&["folder without config.json"]);
    // Input scaling means nothing to token ids.
    t.run(&["eval", m, "--dataset", "text:t.txt", "--std", "2"])
        .fails_with(&["--scale, --mean and --std", "classifier"]);
    // A text dataset given to a classifier, and text flags to one.
    let mlp = crate::util::fixture("tiny-mlp.safetensors");
    let mlp = mlp.to_str().unwrap();
    t.run(&["eval", mlp, "--dataset", "text:t.txt"])
        .fails_with(&["text:t.txt", "language model's own tokenizer"]);
    t.run(&["eval", mlp, "--dataset", "synthetic", "--context", "8"])
        .fails_with(&["--context", "language model folder"]);
    // The config disagreeing with the tensors, and a tokenizer that does not parse.
    let config = std::fs::read_to_string(t.path("m/config.json")).unwrap();
    std::fs::write(
        t.path("m/config.json"),
        config.replace("\"n_layer\": 2", "\"n_layer\": 3"),
    )
    .unwrap();
    t.run(&["eval", m, "--dataset", "text:t.txt"])
        .fails_with(&["transformer.h.2.attn.c_attn.weight"]);
    std::fs::write(
        t.path("m/config.json"),
        config.replace("\"n_head\": 4", "\"n_head\": 5"),
    )
    .unwrap();
    t.run(&["eval", m, "--dataset", "text:t.txt"])
        .fails_with(&["config.json", "n_head"]);
    std::fs::write(t.path("m/config.json"), &config).unwrap();
    t.write("m/tokenizer.json", b"{}");
    t.run(&["eval", m, "--dataset", "text:t.txt"])
        .fails_with(&["tokenizer.json", "not a tokenizer"]);
}
