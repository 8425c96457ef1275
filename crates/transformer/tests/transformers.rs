//! The float path against PyTorch `transformers` itself: random tiny models of every family
//! (BERT with and without its masked-LM head, GPT-2, Llama with grouped-query attention and
//! a tied head, Qwen2 with q/k/v biases and an untied head, Mistral), built offline by
//! `make_reference.py` in this test; hidden states and logits within 1e-4 of their largest
//! magnitude. Skips, saying so, without a Python that imports torch and transformers
//! (`EIE_TORCH_PYTHON`, as .ci/run sets it).

use std::path::Path;
use std::process::Command;

use eie_checkpoint::Checkpoint;
use eie_transformer::{Folder, dense};

fn python() -> Option<String> {
    let python = std::env::var("EIE_TORCH_PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = Command::new(&python)
        .args(["-c", "import torch, transformers, safetensors"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!(
            "SKIPPED the transformers comparison: {python} cannot import torch, transformers and safetensors (set EIE_TORCH_PYTHON to a Python that can)"
        );
    }
    ok.then_some(python)
}

/// The largest difference relative to the reference's largest magnitude.
fn relative_error(ours: &[f32], reference: &[f32]) -> f32 {
    assert_eq!(ours.len(), reference.len());
    let scale = reference.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let diff = ours
        .iter()
        .zip(reference)
        .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
    diff / scale
}

fn check(folder: &Path) {
    let name = folder.file_name().unwrap().to_string_lossy().to_string();
    let tokens: Vec<u32> = serde_json::from_str::<serde_json::Value>(
        &std::fs::read_to_string(folder.join("reference.json")).unwrap(),
    )
    .unwrap()["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_u64().unwrap() as u32)
        .collect();
    let reference = Checkpoint::open(folder.join("reference.safetensors")).unwrap();
    let f = Folder::open(folder).unwrap_or_else(|e| panic!("{name}: {e}"));
    let model = dense(&f).unwrap_or_else(|e| panic!("{name}: {e}"));
    let out = model.forward(&tokens).unwrap();
    let hidden = reference.read_f32("hidden").unwrap();
    let err = relative_error(&out.hidden, &hidden);
    assert!(
        err < 1e-4,
        "{name}: hidden states differ by {err:e} of their largest"
    );
    let mut worst = err;
    match (out.logits, reference.info("logits")) {
        (Some(ours), Some(_)) => {
            let err = relative_error(&ours, &reference.read_f32("logits").unwrap());
            assert!(
                err < 1e-4,
                "{name}: logits differ by {err:e} of their largest"
            );
            worst = worst.max(err);
        }
        (None, None) => {}
        (ours, theirs) => panic!(
            "{name}: logits ours {} theirs {}",
            ours.is_some(),
            theirs.is_some()
        ),
    }
    eprintln!(
        "{name}: {} tokens, within {worst:.1e} of the largest",
        tokens.len()
    );
    let reference: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(folder.join("reference.json")).unwrap())
            .unwrap();
    for p in reference["perplexity"].as_array().into_iter().flatten() {
        let ids: Vec<u32> = p["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_u64().unwrap() as u32)
            .collect();
        let (context, stride) = (
            p["context"].as_u64().unwrap(),
            p["stride"].as_u64().unwrap(),
        );
        let ours = model
            .perplexity(&ids, context as usize, stride as usize)
            .unwrap();
        assert_eq!(ours.scored as u64, p["scored"].as_u64().unwrap(), "{name}");
        let theirs = p["nll"].as_f64().unwrap();
        let rel = (ours.nll - theirs).abs() / theirs;
        assert!(
            rel < 1e-5,
            "{name}: NLL {} against transformers' {theirs}",
            ours.nll
        );
        eprintln!(
            "{name}: perplexity {:.4} over {} tokens (stride {stride}), transformers' within {rel:.1e}",
            ours.perplexity(),
            ours.scored
        );
    }
}

#[test]
fn every_family_matches_transformers() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/make_reference.py");
    let out = Command::new(&python)
        .arg(&script)
        .arg(dir.path())
        .env("TRANSFORMERS_VERBOSITY", "error")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut folders: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    folders.sort();
    assert_eq!(folders.len(), 6, "{folders:?}");
    for folder in &folders {
        check(folder);
    }
}
