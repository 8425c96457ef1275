#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

pub mod forge;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use sha2::{Digest, Sha256};

use eie_format::{Bundle, BundleMeta, CodeMatrix, Codebook, PackedLayer, SourceInfo};

/// A fuzz target: untrusted bytes in, accepted or refused out.
pub type Target = fn(&[u8]) -> Outcome;

/// Every target, by the name of its corpus folder (`fuzz/corpus/NAME`).
pub const TARGETS: [(&str, Target); 9] = [
    ("safetensors", safetensors),
    ("bundle", bundle),
    ("manifest", manifest),
    ("images", images),
    ("idx", idx),
    ("recipe", recipe),
    ("config", config),
    ("tokenizer", tokenizer),
    ("sentence", sentence),
];

/// What a target made of its input: accepted, or refused with this message. Either is fine;
/// a panic, a hang or an abort is the bug a fuzzer looks for.
pub type Outcome = Result<(), String>;

/// The seed bundle's images written into `name` under this thread's scratch folder.
fn seed_images(name: &str) -> PathBuf {
    let dir = scratch().join(name);
    std::fs::create_dir_all(&dir).expect("the image folder");
    eie_images::render(&seed_bundle())
        .and_then(|set| set.write_into(&dir))
        .expect("the seed images");
    dir
}

thread_local! {
    /// A private scratch folder of this thread (tests replay targets on several at once),
    /// for readers that take a path.
    static SCRATCH: PathBuf = {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "eie-fuzz-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).expect("a scratch folder");
        dir
    };
    /// The seed bundle's manifest, rendered once.
    static SEED_MANIFEST: eie_images::Manifest = eie_images::render(&seed_bundle())
        .expect("the seed images")
        .manifest;
    /// The seed bundle's image files (path, bytes).
    static SEED_FILES: Vec<(String, Vec<u8>)> = eie_images::render(&seed_bundle())
        .expect("the seed images")
        .files
        .into_iter()
        .map(|f| (f.path, f.bytes))
        .collect();
    /// A second copy of the seed's images, which the images target edits.
    static IMAGE_EDITS: PathBuf = seed_images("edits");
    /// The seed bundle's images in this thread's scratch folder, written once.
    static IMAGES: PathBuf = seed_images("model");
}

fn scratch() -> PathBuf {
    SCRATCH.with(|d| d.clone())
}

/// Removes this thread's scratch folder (the targets must not run on this thread after).
pub fn remove_scratch() {
    let _ = std::fs::remove_dir_all(scratch());
}

/// Writes `bytes` to the scratch file `name` and returns its path.
fn file(name: &str, bytes: &[u8]) -> PathBuf {
    let path = scratch().join(name);
    std::fs::write(&path, bytes).expect("a scratch file");
    path
}

/// A safetensors checkpoint: the header parsed and validated, then every float tensor read.
pub fn safetensors(bytes: &[u8]) -> Outcome {
    let path = file("input.safetensors", bytes);
    let ck = eie_checkpoint::Checkpoint::open(&path).map_err(|e| e.to_string())?;
    for t in ck.tensors() {
        if t.is_float() {
            ck.read_f32(&t.name).map_err(|e| e.to_string())?;
        }
    }
    ck.select(&[]).map_err(|e| e.to_string())?;
    Ok(())
}

/// A `model.eie`: decoded and validated; an accepted bundle must re-encode to the same
/// bytes (one encoding per bundle) and render to images. The header's length and checksum
/// are recomputed first, as a hostile user would, so that mutations reach the decoder
/// instead of dying at the checksum (whose own tests are the format crate's).
pub fn bundle(bytes: &[u8]) -> Outcome {
    let bytes = if bytes.len() >= eie_format::HEADER_LEN {
        forge::reseal(bytes.to_vec())
    } else {
        bytes.to_vec()
    };
    let bytes = bytes.as_slice();
    let b = Bundle::from_bytes(bytes).map_err(|e| e.to_string())?;
    let again = b.to_bytes().map_err(|e| e.to_string())?;
    assert!(
        again == bytes,
        "an accepted bundle re-encodes to other bytes"
    );
    eie_images::render(&b).map_err(|e| e.to_string())?;
    Ok(())
}

/// A `manifest.json` beside the images of a small model ([`seed_bundle`]): parsed, every
/// file it names read within its declared size and checked, the layers rebuilt.
pub fn manifest(bytes: &[u8]) -> Outcome {
    let dir = IMAGES.with(|d| d.clone());
    std::fs::write(dir.join(eie_images::MANIFEST_FILE), bytes).expect("the manifest");
    eie_images::load(&dir).map_err(|e| e.to_string())?;
    Ok(())
}

/// One image file of the seed bundle ([`seed_bundle`]) replaced: the first byte picks which
/// binary image, the rest is its new content. The manifest is updated to agree (size, words,
/// checksum) and the `$readmemh` twin is rewritten from the same words, so that mutations
/// reach the decoding of the words into streams, and the layers' validation behind it.
pub fn images(bytes: &[u8]) -> Outcome {
    let Some((&pick, data)) = bytes.split_first() else {
        return Err("empty input".into());
    };
    let dir = IMAGE_EDITS.with(|d| d.clone());
    let mut manifest = SEED_MANIFEST.with(|m| m.clone());
    let binaries: Vec<(usize, usize)> = manifest
        .layers
        .iter()
        .enumerate()
        .flat_map(|(l, lm)| {
            lm.files
                .iter()
                .enumerate()
                .filter(|(_, f)| f.encoding == eie_images::Encoding::Binary)
                .map(move |(f, _)| (l, f))
        })
        .collect();
    let (l, f) = binaries[pick as usize % binaries.len()];
    let entry = manifest.layers[l].files[f].clone();
    let set = |e: &mut eie_images::FileEntry, content: &[u8], words: usize| {
        e.bytes = content.len();
        e.words = words;
        e.sha256 = eie_format::hex(&Sha256::digest(content));
    };
    let words = eie_images::from_le_bytes(data, entry.word_bits).unwrap_or_default();
    let hex = eie_images::to_hex(&words, entry.word_bits);
    std::fs::write(dir.join(&entry.path), data).expect("the image");
    set(&mut manifest.layers[l].files[f], data, words.len());
    let twin = manifest.layers[l]
        .files
        .iter()
        .position(|t| {
            t.kind == entry.kind && t.pe == entry.pe && t.encoding == eie_images::Encoding::Readmemh
        })
        .expect("a hex twin");
    let twin_path = manifest.layers[l].files[twin].path.clone();
    std::fs::write(dir.join(&twin_path), hex.as_bytes()).expect("the hex twin");
    set(
        &mut manifest.layers[l].files[twin],
        hex.as_bytes(),
        words.len(),
    );
    std::fs::write(dir.join(eie_images::MANIFEST_FILE), manifest.to_json()).expect("the manifest");
    let result = eie_images::load(&dir)
        .map(|_| ())
        .map_err(|e| e.to_string());
    // The next input starts from the seed's files again.
    SEED_FILES.with(|seed| {
        for (path, original) in seed {
            if *path == entry.path || *path == twin_path {
                std::fs::write(dir.join(path), original).expect("a seed image");
            }
        }
    });
    result
}

/// An IDX file, raw or gzip.
pub fn idx(bytes: &[u8]) -> Outcome {
    let path = file("input.idx", bytes);
    eie_dataset::read_idx(&path).map_err(|e| e.to_string())?;
    Ok(())
}

/// A recipe (TOML): parsed and checked.
pub fn recipe(bytes: &[u8]) -> Outcome {
    let text = std::str::from_utf8(bytes).map_err(|e| e.to_string())?;
    eie_pipeline::Recipe::parse(Path::new("recipe.toml"), text).map_err(|e| e.to_string())?;
    Ok(())
}

/// A Hugging Face `config.json`: read and checked as a model family's config.
pub fn config(bytes: &[u8]) -> Outcome {
    eie_transformer::Config::parse(Path::new("config.json"), bytes).map_err(|e| e.to_string())?;
    Ok(())
}

/// A `tokenizer.json`: loaded, then run both ways on a line of text.
pub fn tokenizer(bytes: &[u8]) -> Outcome {
    let path = file("tokenizer.json", bytes);
    let t = eie_text::Tokenizer::load(&path).map_err(|e| e.to_string())?;
    let ids = t
        .encode("To be, or not to be: that is the question.", false)
        .map_err(|e| e.to_string())?;
    t.decode(&ids).map_err(|e| e.to_string())?;
    Ok(())
}

/// The files of a sentence-transformers folder the `sentence` target reads, as a model of
/// width 48 holds them: `modules.json`, `1_Pooling/config.json`, `sentence_bert_config.json`.
pub const SENTENCE_FILES: [(&str, &str); 3] = [
    (
        "modules.json",
        r#"[{"idx":0,"name":"0","path":"","type":"sentence_transformers.models.Transformer"},{"idx":1,"name":"1","path":"1_Pooling","type":"sentence_transformers.models.Pooling"},{"idx":2,"name":"2","path":"2_Normalize","type":"sentence_transformers.models.Normalize"}]"#,
    ),
    (
        "1_Pooling/config.json",
        r#"{"word_embedding_dimension":48,"pooling_mode_cls_token":false,"pooling_mode_mean_tokens":true,"pooling_mode_max_tokens":false,"pooling_mode_mean_sqrt_len_tokens":false,"pooling_mode_weightedmean_tokens":false,"pooling_mode_lasttoken":false,"include_prompt":true}"#,
    ),
    (
        "sentence_bert_config.json",
        r#"{"max_seq_length":256,"do_lower_case":false}"#,
    ),
];

/// A sentence-transformers folder's files: the first byte picks which of
/// [`SENTENCE_FILES`] the rest replaces (the others as they are there), then the folder is
/// read as an encoder of width 48 reads it (`SentenceConfig::of_folder`).
pub fn sentence(bytes: &[u8]) -> Outcome {
    let Some((&pick, rest)) = bytes.split_first() else {
        return Err("no byte to pick a file".into());
    };
    let dir = scratch().join("sentence");
    std::fs::create_dir_all(dir.join("1_Pooling")).expect("a scratch folder");
    let pick = pick as usize % SENTENCE_FILES.len();
    for (i, (name, text)) in SENTENCE_FILES.iter().enumerate() {
        let bytes = if i == pick { rest } else { text.as_bytes() };
        std::fs::write(dir.join(name), bytes).expect("a scratch file");
    }
    eie_transformer::SentenceConfig::of_folder(&dir, 48).map_err(|e| e.to_string())?;
    Ok(())
}

/// The model behind the manifest target: two small layers, 3 PEs, a folded bias and a
/// column batch, so the manifest names every kind of file.
pub fn seed_bundle() -> Bundle {
    let codes = |rows: usize, cols: usize, seed: usize| {
        let c: Vec<u8> = (0..rows * cols)
            .map(|i| {
                if (i * 7 + seed) % 5 < 2 {
                    ((i + seed) % 3 + 1) as u8
                } else {
                    0
                }
            })
            .collect();
        CodeMatrix::new(rows, cols, c).expect("codes")
    };
    let book = Codebook::new(4, &[-0.5, 0.25, 1.0]).expect("a codebook");
    let fc1 = PackedLayer::encode("fc1.weight", &codes(7, 9, 1), book.clone(), 3, 4)
        .and_then(|l| l.with_bias("fc1.bias"))
        .expect("fc1");
    let fc2 = PackedLayer::encode("fc2.weight", &codes(4, 7, 2), book, 3, 2)
        .and_then(|l| l.split_columns(4))
        .expect("fc2");
    let meta = BundleMeta {
        tool_version: "eie-fuzz".into(),
        source: SourceInfo {
            name: "seed".into(),
            sha256: None,
        },
        pointer_bits: 16,
        settings: Default::default(),
    };
    let mut layers = vec![fc1];
    layers.extend(fc2);
    Bundle::new(meta, layers).expect("the seed bundle")
}

#[cfg(test)]
mod tests;
