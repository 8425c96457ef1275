//! Writes the fuzz seeds made in code and the hostile corpus: `fuzz/make_corpus.sh` runs it
//! (`cargo run -p eie-fuzz --example make_corpus -- FUZZ_DIR`). Every hostile file gets a
//! `.error` note: the words its refusal must contain (checked by the crate's tests).

use std::io::Write;
use std::path::{Path, PathBuf};

use eie_fuzz::forge::{self, layer_count_at, reseal, with_u64};

fn write(path: PathBuf, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// A hostile file and the error it must get.
fn hostile(dir: &Path, target: &str, name: &str, bytes: &[u8], error: &str) {
    let path = dir.join("hostile").join(target).join(name);
    write(path.clone(), bytes);
    write(
        PathBuf::from(format!("{}.error", path.display())),
        error.as_bytes(),
    );
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

/// A safetensors file from a header JSON and a data block.
fn safetensors(header: &str, data: &[u8]) -> Vec<u8> {
    let mut b = (header.len() as u64).to_le_bytes().to_vec();
    b.extend(header.as_bytes());
    b.extend(data);
    b
}

fn main() {
    let dir = PathBuf::from(std::env::args().nth(1).expect("the fuzz folder"));
    let seed = eie_fuzz::seed_bundle();
    let bundle = seed.to_bytes().unwrap();
    write(dir.join("corpus/bundle/seed-fuzz.eie"), &bundle);
    let manifest = eie_images::render(&seed).unwrap().manifest.to_json();
    write(dir.join("corpus/manifest/seed.json"), manifest.as_bytes());
    // The images target: the first byte picks a binary image, the rest is its content.
    let set = eie_images::render(&seed).unwrap();
    let binaries: Vec<&eie_images::FileEntry> = set
        .manifest
        .layers
        .iter()
        .flat_map(|l| l.files.iter())
        .filter(|f| f.encoding == eie_images::Encoding::Binary)
        .collect();
    let content = |path: &str| -> Vec<u8> {
        set.files
            .iter()
            .find(|f| f.path == path)
            .unwrap()
            .bytes
            .clone()
    };
    for (i, f) in binaries.iter().enumerate() {
        let mut b = vec![i as u8];
        b.extend(content(&f.path));
        write(dir.join(format!("corpus/images/seed-{i:02}.bin")), &b);
    }
    let pick = |kind: eie_images::FileKind| binaries.iter().position(|f| f.kind == kind).unwrap();
    let spmat = pick(eie_images::FileKind::Spmat);
    let ptr = pick(eie_images::FileKind::Pointers);
    let mut codes = vec![spmat as u8];
    codes.extend([0xff; 8]);
    codes.extend(&content(&binaries[spmat].path)[8..]);
    hostile(
        &dir,
        "images",
        "code-outside-the-codebook.bin",
        &codes,
        "has code 15, outside the codebook",
    );
    let mut ptrs = vec![ptr as u8];
    let mut p = content(&binaries[ptr].path);
    p[2] = 0xff;
    p[3] = 0xff;
    ptrs.extend(p);
    hostile(
        &dir,
        "images",
        "pointers-not-monotonic.bin",
        &ptrs,
        "column pointers decrease at column 1",
    );
    let mut odd = vec![spmat as u8];
    odd.extend([1, 2, 3]);
    hostile(
        &dir,
        "images",
        "not-whole-words.bin",
        &odd,
        "3 bytes is not a whole number of 64-bit words",
    );

    let labels = [0u8, 0, 8, 1, 0, 0, 0, 4, 3, 1, 4, 1];
    let images: Vec<u8> = [0u8, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 2]
        .into_iter()
        .chain(0..8)
        .collect();
    write(dir.join("corpus/idx/seed-labels.idx"), &labels);
    write(dir.join("corpus/idx/seed-images.idx.gz"), &gzip(&images));
    write(
        dir.join("corpus/safetensors/seed-f16.safetensors"),
        &safetensors(
            r#"{"__metadata__":{"format":"pt"},"fc.weight":{"dtype":"F16","shape":[2,2],"data_offsets":[0,8]},"fc.bias":{"dtype":"BF16","shape":[2],"data_offsets":[8,12]}}"#,
            &[0, 60, 0, 188, 0, 0, 0, 56, 128, 63, 0, 64],
        ),
    );

    // ---- hostile: safetensors -------------------------------------------------------------
    let h = "safetensors";
    let mut huge = u64::MAX.to_le_bytes().to_vec();
    huge.extend(b"{}");
    hostile(
        &dir,
        h,
        "header-length-lie.safetensors",
        &huge,
        "over the 100 MB limit",
    );
    hostile(
        &dir,
        h,
        "offsets-past-the-end.safetensors",
        &safetensors(
            r#"{"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}"#,
            &[0; 8],
        ),
        "do not cover the data section exactly",
    );
    hostile(
        &dir,
        h,
        "shape-disagrees-with-bytes.safetensors",
        &safetensors(
            r#"{"w":{"dtype":"F32","shape":[3,2],"data_offsets":[0,16]}}"#,
            &[0; 16],
        ),
        "does not match its shape and dtype",
    );
    hostile(
        &dir,
        h,
        "overlapping-tensors.safetensors",
        &safetensors(
            r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#,
            &[0; 12],
        ),
        "tensor \"b\" has data offsets that overlap",
    );
    hostile(
        &dir,
        h,
        "shape-overflow.safetensors",
        &safetensors(
            r#"{"w":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,4]}}"#,
            &[0; 4],
        ),
        "shape overflows",
    );
    hostile(
        &dir,
        h,
        "not-json.safetensors",
        &safetensors("{not json", &[]),
        "header is not valid safetensors JSON",
    );

    // ---- hostile: bundle ------------------------------------------------------------------
    let h = "bundle";
    let (count, rows) = (layer_count_at(&bundle), forge::first_rows_at(&bundle));
    hostile(
        &dir,
        h,
        "rows-2-to-the-32.eie",
        &with_u64(&bundle, rows, 1 << 32),
        "at most 16777216 rows",
    );
    hostile(
        &dir,
        h,
        "rows-2-to-the-60.eie",
        &with_u64(&bundle, rows, 1 << 60),
        "at most 16777216 rows",
    );
    hostile(
        &dir,
        h,
        "layer-count-lie.eie",
        &with_u64(&bundle, count, u64::MAX),
        "the layers claims",
    );
    let mut none = bundle[..count].to_vec();
    none.extend(0u64.to_le_bytes());
    hostile(&dir, h, "no-layers.eie", &reseal(none), "no layers");
    // (A checksum mismatch and a truncation are the format crate's tests: the bundle target
    // recomputes the header's length and checksum, as a hostile user would.)
    let mut magic = bundle.clone();
    magic[0] = b'X';
    hostile(
        &dir,
        h,
        "bad-magic.eie",
        &magic,
        "not an EIE bundle: magic bytes",
    );

    // ---- hostile: manifest ----------------------------------------------------------------
    let h = "manifest";
    hostile(
        &dir,
        h,
        "unknown-field.json",
        manifest.replacen('{', "{\n  \"extra\": 1,", 1).as_bytes(),
        "unknown field `extra`",
    );
    hostile(
        &dir,
        h,
        "path-leaves-the-folder.json",
        manifest
            .replacen("\"path\": \"images/", "\"path\": \"../images/", 1)
            .as_bytes(),
        "leaves the images folder",
    );
    let size = "\"bytes\": ";
    let at = manifest.find(size).unwrap() + size.len();
    let end = at + manifest[at..].find(',').unwrap();
    let smaller = format!("{}1{}", &manifest[..at], &manifest[end..]);
    hostile(
        &dir,
        h,
        "declared-size-smaller.json",
        smaller.as_bytes(),
        "over the 1 this input may have",
    );
    hostile(
        &dir,
        h,
        "wrong-version.json",
        manifest
            .replacen("\"format_version\": 2", "\"format_version\": 99", 1)
            .as_bytes(),
        "version 99",
    );

    // ---- hostile: idx ---------------------------------------------------------------------
    let h = "idx";
    let mut bomb = vec![0u8, 0, 8, 1, 0, 0, 0, 10];
    bomb.extend(vec![0u8; 1 << 20]);
    hostile(
        &dir,
        h,
        "gzip-bomb.idx.gz",
        &gzip(&bomb),
        "more data than the dimensions [10] describe",
    );
    let mut junk = gzip(&labels);
    junk.extend(b"junk");
    hostile(
        &dir,
        h,
        "gzip-trailing-junk.idx.gz",
        &junk,
        "4 bytes after the end of the gzip stream",
    );
    hostile(&dir, h, "rank-0.idx", &[0, 0, 8, 0], "rank 0");
    hostile(
        &dir,
        h,
        "dimensions-overflow.idx",
        &[
            0, 0, 8, 3, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
        ],
        "more than the 4 GiB",
    );
    hostile(
        &dir,
        h,
        "short-data.idx",
        &[0, 0, 8, 1, 0, 0, 0, 9, 1, 2],
        "short data",
    );

    // ---- hostile: recipe ------------------------------------------------------------------
    let h = "recipe";
    hostile(
        &dir,
        h,
        "empty-select.toml",
        b"select = []\n",
        "select = []",
    );
    hostile(
        &dir,
        h,
        "huge-pattern.toml",
        format!(
            "[[layers]]\npattern = \"{}\"\ndensity = 0.5\n",
            "*a".repeat(5000)
        )
        .as_bytes(),
        "at most 1024",
    );
    hostile(
        &dir,
        h,
        "unknown-key.toml",
        b"[defaults]\nmystery = 1\n",
        "unknown key \"mystery\"",
    );
    hostile(
        &dir,
        h,
        "code-bits-9.toml",
        b"[defaults]\ncode_bits = 9\n",
        "code_bits 9 is outside 1..=8",
    );

    // ---- config.json: one of each family, and lies -------------------------------------
    let configs = [
        (
            "gpt2",
            r#"{"model_type":"gpt2","architectures":["GPT2LMHeadModel"],"vocab_size":400,"n_embd":48,"n_head":4,"n_layer":2,"n_positions":128,"n_inner":null,"activation_function":"gelu_new","layer_norm_epsilon":1e-05,"scale_attn_weights":true,"tie_word_embeddings":true}"#,
        ),
        (
            "llama",
            r#"{"model_type":"llama","architectures":["LlamaForCausalLM"],"vocab_size":400,"hidden_size":48,"intermediate_size":96,"num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":2,"max_position_embeddings":128,"rms_norm_eps":1e-06,"rope_theta":10000.0,"hidden_act":"silu","tie_word_embeddings":true,"attention_bias":false,"mlp_bias":false,"rope_scaling":null}"#,
        ),
        (
            "qwen2",
            r#"{"model_type":"qwen2","architectures":["Qwen2ForCausalLM"],"vocab_size":400,"hidden_size":48,"intermediate_size":96,"num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":2,"max_position_embeddings":128,"rms_norm_eps":1e-06,"rope_theta":1000000.0,"hidden_act":"silu","tie_word_embeddings":false,"use_sliding_window":false}"#,
        ),
        (
            "bert",
            r#"{"model_type":"bert","architectures":["BertForMaskedLM"],"vocab_size":400,"hidden_size":48,"num_hidden_layers":2,"num_attention_heads":4,"intermediate_size":96,"max_position_embeddings":128,"type_vocab_size":2,"hidden_act":"gelu","layer_norm_eps":1e-12,"position_embedding_type":"absolute"}"#,
        ),
    ];
    for (name, text) in configs {
        write(
            dir.join(format!("corpus/config/seed-{name}.json")),
            text.as_bytes(),
        );
    }
    let h = "config";
    hostile(
        &dir,
        h,
        "t5.json",
        br#"{"model_type":"t5","d_model":8}"#,
        "model_type \"t5\"",
    );
    hostile(
        &dir,
        h,
        "heads-do-not-divide.json",
        configs[0]
            .1
            .replace("\"n_head\":4", "\"n_head\":5")
            .as_bytes(),
        "n_head",
    );
    hostile(
        &dir,
        h,
        "rope-scaling.json",
        configs[1]
            .1
            .replace(
                "\"rope_scaling\":null",
                "\"rope_scaling\":{\"type\":\"linear\",\"factor\":2.0}",
            )
            .as_bytes(),
        "rope_scaling",
    );
    hostile(
        &dir,
        h,
        "huge-width.json",
        configs[1]
            .1
            .replace("\"hidden_size\":48", "\"hidden_size\":18446744073709551615")
            .as_bytes(),
        "hidden_size",
    );
    hostile(&dir, h, "not-an-object.json", b"[1, 2, 3]", "config.json");

    // ---- tokenizer.json: a word-level and a BPE tokenizer, and lies ----------------------
    let word = r#"{"version":"1.0","truncation":null,"padding":null,"added_tokens":[{"id":0,"content":"[UNK]","single_word":false,"lstrip":false,"rstrip":false,"normalized":false,"special":true}],"normalizer":{"type":"Lowercase"},"pre_tokenizer":{"type":"Whitespace"},"post_processor":null,"decoder":null,"model":{"type":"WordLevel","vocab":{"[UNK]":0,"to":1,"be":2,",":3,"or":4,"not":5,":":6,"that":7,"is":8,"the":9,"question":10,".":11},"unk_token":"[UNK]"}}"#;
    let bpe = r#"{"version":"1.0","truncation":null,"padding":null,"added_tokens":[],"normalizer":null,"pre_tokenizer":{"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":true},"post_processor":null,"decoder":{"type":"ByteLevel","add_prefix_space":true,"trim_offsets":true,"use_regex":true},"model":{"type":"BPE","dropout":null,"unk_token":null,"continuing_subword_prefix":null,"end_of_word_suffix":null,"fuse_unk":false,"byte_fallback":false,"ignore_merges":false,"vocab":{"T":0,"o":1,"Ġ":2,"b":3,"e":4,",":5,"r":6,"n":7,"t":8,":":9,"h":10,"a":11,"i":12,"s":13,"q":14,"u":15,".":16,"Ġb":17,"Ġt":18,"Ġbe":19},"merges":["Ġ b","Ġ t","Ġb e"]}}"#;
    write(
        dir.join("corpus/tokenizer/seed-wordlevel.json"),
        word.as_bytes(),
    );
    write(dir.join("corpus/tokenizer/seed-bpe.json"), bpe.as_bytes());
    let h = "tokenizer";
    hostile(&dir, h, "empty-object.json", b"{}", "not a tokenizer");

    hostile(
        &dir,
        h,
        "merge-of-unknown-tokens.json",
        bpe.replace("\"Ġb e\"", "\"x y\"").as_bytes(),
        "not a tokenizer",
    );

    // ---- a sentence-transformers folder: each file as a seed, and lies --------------------
    let files = eie_fuzz::SENTENCE_FILES;
    let picked = |i: u8, text: &str| [&[i][..], text.as_bytes()].concat();
    for (i, (name, text)) in files.iter().enumerate() {
        let stem = name.replace('/', "-").replace(".json", "");
        write(
            dir.join(format!("corpus/sentence/seed-{stem}")),
            &picked(i as u8, text),
        );
    }
    let h = "sentence";
    hostile(
        &dir,
        h,
        "max-pooling",
        &picked(
            1,
            &files[1]
                .1
                .replace(
                    "\"pooling_mode_max_tokens\":false",
                    "\"pooling_mode_max_tokens\":true",
                )
                .replace(
                    "\"pooling_mode_mean_tokens\":true",
                    "\"pooling_mode_mean_tokens\":false",
                ),
        ),
        "pooling_mode_max_tokens",
    );
    hostile(
        &dir,
        h,
        "dense-module",
        &picked(
            0,
            r#"[{"path":"2_Dense","type":"sentence_transformers.models.Dense"}]"#,
        ),
        "[0].type",
    );
    hostile(
        &dir,
        h,
        "pooling-outside-the-folder",
        &picked(
            0,
            r#"[{"path":"","type":"sentence_transformers.models.Transformer"},{"path":"/etc","type":"sentence_transformers.models.Pooling"}]"#,
        ),
        "inside the model folder",
    );
    hostile(
        &dir,
        h,
        "lower-case",
        &picked(2, r#"{"max_seq_length":256,"do_lower_case":true}"#),
        "do_lower_case",
    );
    hostile(
        &dir,
        h,
        "other-width",
        &picked(1, &files[1].1.replace(":48,", ":384,")),
        "word_embedding_dimension",
    );
}
