//! Token ids against `transformers`' own: tokenizers of the hub's three kinds (GPT-2's
//! byte-level BPE, BERT's WordPiece, LLaMA's SentencePiece-style BPE) trained by
//! `make_tokenizers.py` in this test on train.txt, then valid.txt encoded by eie-text and by
//! `PreTrainedTokenizerFast`: the same ids. Skips, saying so, without the shared corpus or a
//! Python that imports transformers (`EIE_TORCH_PYTHON`, as .ci/run sets it).

use std::path::Path;
use std::process::Command;

use eie_text::{Text, Tokenizer};

#[test]
fn ids_equal_transformers_on_the_validation_text() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/shakespeare");
    if !data.join("valid.txt").is_file() {
        eprintln!(
            "SKIPPED the tokenizer comparison: {} is absent",
            data.display()
        );
        return;
    }
    let python = std::env::var("EIE_TORCH_PYTHON").unwrap_or_else(|_| "python3".into());
    if !Command::new(&python)
        .args(["-c", "import transformers, tokenizers"])
        .output()
        .is_ok_and(|o| o.status.success())
    {
        eprintln!(
            "SKIPPED the tokenizer comparison: {python} cannot import transformers and tokenizers (set EIE_TORCH_PYTHON to a Python that can)"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(&python)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/make_tokenizers.py"))
        .arg(data.join("train.txt"))
        .arg(data.join("valid.txt"))
        .arg(dir.path())
        .env("TRANSFORMERS_VERBOSITY", "error")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = Text::load(&data.join("valid.txt"), None).unwrap();
    for kind in ["byte-level-bpe", "wordpiece", "sentencepiece-bpe"] {
        let folder = dir.path().join(kind);
        let tokenizer = Tokenizer::load(&folder.join("tokenizer.json")).unwrap();
        let ours = tokenizer.encode(&text.text, false).unwrap();
        let theirs: Vec<u32> =
            serde_json::from_str(&std::fs::read_to_string(folder.join("ids.json")).unwrap())
                .unwrap();
        assert_eq!(ours.len(), theirs.len(), "{kind}");
        if let Some(i) = ours.iter().zip(&theirs).position(|(a, b)| a != b) {
            panic!(
                "{kind}: token {i} is {} here, {} in transformers",
                ours[i], theirs[i]
            );
        }
        eprintln!("{kind}: {} tokens of valid.txt, the same ids", ours.len());
    }
}
