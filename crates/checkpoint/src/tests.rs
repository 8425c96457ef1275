use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use proptest::prelude::*;

use super::*;

/// Writes a safetensors file by hand (header JSON given verbatim), so tests control every
/// byte the reader sees.
fn raw_file(dir: &Path, name: &str, header: &str, data: &[u8]) -> PathBuf {
    let path = dir.join(name);
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(data);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn write(
    path: &Path,
    meta: &BTreeMap<String, String>,
    tensors: Vec<(&str, Dtype, Vec<usize>, Vec<u8>)>,
) {
    let specs: Vec<_> = tensors
        .iter()
        .map(|(n, d, s, _)| (n.to_string(), *d, s.clone()))
        .collect();
    let mut w = Writer::create(path, meta, &specs).unwrap();
    for (_, _, _, bytes) in &tensors {
        w.write_tensor(bytes).unwrap();
    }
    w.finish().unwrap();
}

fn err_text(path: &Path) -> String {
    Checkpoint::open(path).unwrap_err().to_string()
}

#[test]
fn reads_f32_f16_bf16_exactly_and_keeps_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    let values = [0.5f32, -1.25, 3.0, 0.0, 65504.0, -2.0f32.powi(-14)];
    let f16: Vec<u8> = values
        .iter()
        .flat_map(|&v| half::f16::from_f32(v).to_bits().to_le_bytes())
        .collect();
    let bf16: Vec<u8> = values
        .iter()
        .flat_map(|&v| half::bf16::from_f32(v).to_bits().to_le_bytes())
        .collect();
    let meta = BTreeMap::from([("format".to_string(), "pt".to_string())]);
    write(
        &path,
        &meta,
        vec![
            ("a.weight", Dtype::F32, vec![2, 3], f32_bytes(&values)),
            ("b.weight", Dtype::F16, vec![3, 2], f16),
            ("c.weight", Dtype::BF16, vec![6, 1], bf16),
        ],
    );
    let ck = Checkpoint::open(&path).unwrap();
    assert_eq!(ck.metadata(), meta);
    assert_eq!(ck.shards(), 1);
    assert_eq!(ck.read_f32("a.weight").unwrap(), values);
    assert_eq!(ck.read_f32("b.weight").unwrap(), values); // all exactly representable in f16
    let bf: Vec<f32> = values
        .iter()
        .map(|&v| half::bf16::from_f32(v).to_f32())
        .collect();
    assert_eq!(ck.read_f32("c.weight").unwrap(), bf);
    let m = ck.read_matrix("b.weight").unwrap();
    assert_eq!((m.rows, m.cols), (3, 2));
    assert_eq!(
        ck.tensors()
            .iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>(),
        ["a.weight", "b.weight", "c.weight"]
    );
}

#[test]
fn writer_output_is_read_by_the_reference_crate_and_deterministic() {
    let dir = tempfile::tempdir().unwrap();
    let meta = BTreeMap::from([
        ("z".to_string(), "1".to_string()),
        ("a".to_string(), "2".to_string()),
    ]);
    let tensors = || {
        vec![
            (
                "w",
                Dtype::F32,
                vec![2, 2],
                f32_bytes(&[1.0, 2.0, 3.0, 4.0]),
            ),
            (
                "i",
                Dtype::I64,
                vec![3],
                [1i64, 2, 3].iter().flat_map(|v| v.to_le_bytes()).collect(),
            ),
        ]
    };
    let (p1, p2) = (dir.path().join("1.st"), dir.path().join("2.st"));
    write(&p1, &meta, tensors());
    write(&p2, &meta, tensors());
    let bytes = std::fs::read(&p1).unwrap();
    assert_eq!(bytes, std::fs::read(&p2).unwrap());
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    assert_eq!(header_len % 8, 0);
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    assert_eq!(
        st.tensor("w").unwrap().data(),
        &f32_bytes(&[1.0, 2.0, 3.0, 4.0])[..]
    );
    assert_eq!(st.tensor("i").unwrap().shape(), &[3]);
    let (_, md) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    assert_eq!(
        md.metadata().as_ref().unwrap().get("a").map(String::as_str),
        Some("2")
    );
}

#[test]
fn writer_refuses_wrong_lengths_and_missing_tensors() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.st");
    let specs = vec![("w".to_string(), Dtype::F32, vec![2])];
    let mut w = Writer::create(&p, &BTreeMap::new(), &specs).unwrap();
    assert!(matches!(
        w.write_tensor(&[0; 4]),
        Err(Error::BadTensor { .. })
    ));
    let w = Writer::create(&p, &BTreeMap::new(), &specs).unwrap();
    assert!(matches!(w.finish(), Err(Error::Write { .. })));
    let dup = vec![
        ("w".to_string(), Dtype::F32, vec![1]),
        ("w".to_string(), Dtype::F32, vec![1]),
    ];
    assert!(matches!(
        Writer::create(&p, &BTreeMap::new(), &dup),
        Err(Error::BadTensor { .. })
    ));
}

#[test]
fn hostile_files_are_refused_with_the_file_named() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let w = r#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#;

    let missing = d.join("missing.safetensors");
    assert!(matches!(Checkpoint::open(&missing), Err(Error::Io { .. })));
    assert!(err_text(&missing).contains("missing.safetensors"));
    assert!(
        matches!(Checkpoint::open(d), Err(Error::Io { .. })),
        "a directory"
    );

    let text = d.join("text.safetensors");
    std::fs::write(&text, "this is not a safetensors file at all").unwrap();
    let e = err_text(&text);
    assert!(
        e.contains("text.safetensors") && e.contains("not a valid safetensors"),
        "{e}"
    );

    let short = d.join("short.safetensors");
    std::fs::write(&short, [1, 2, 3]).unwrap();
    assert!(err_text(&short).contains("too short"));

    let past_end = d.join("past.safetensors");
    let mut bytes = 1000u64.to_le_bytes().to_vec();
    bytes.extend_from_slice(b"{}");
    std::fs::write(&past_end, bytes).unwrap();
    assert!(
        err_text(&past_end).contains("runs past the end"),
        "{}",
        err_text(&past_end)
    );

    let good = raw_file(d, "good.safetensors", w, &[0; 8]);
    assert!(Checkpoint::open(&good).is_ok());
    let full = std::fs::read(&good).unwrap();
    let truncated = d.join("truncated.safetensors");
    std::fs::write(&truncated, &full[..full.len() - 3]).unwrap();
    assert!(
        err_text(&truncated).contains("truncated"),
        "{}",
        err_text(&truncated)
    );

    let overlap = raw_file(
        d,
        "overlap.safetensors",
        r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#,
        &[0; 12],
    );
    assert!(
        err_text(&overlap).contains("overlap"),
        "{}",
        err_text(&overlap)
    );

    let out_of_range = raw_file(
        d,
        "range.safetensors",
        r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#,
        &[0; 4],
    );
    assert!(err_text(&out_of_range).contains("not a valid safetensors"));

    let mismatch = raw_file(
        d,
        "mismatch.safetensors",
        r#"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#,
        &[0; 8],
    );
    assert!(err_text(&mismatch).contains("shape and dtype"));

    let bad_json = raw_file(d, "json.safetensors", r#"{"a": nope}"#, &[]);
    assert!(err_text(&bad_json).contains("JSON"));
}

/// Writes a two-shard checkpoint and its index; returns the index path.
fn sharded(dir: &Path, index_json: Option<&str>) -> PathBuf {
    write(
        &dir.join("model-00001-of-00002.safetensors"),
        &BTreeMap::from([("format".to_string(), "pt".to_string())]),
        vec![
            (
                "a.weight",
                Dtype::F32,
                vec![2, 2],
                f32_bytes(&[1.0, 2.0, 3.0, 4.0]),
            ),
            ("a.bias", Dtype::F32, vec![2], f32_bytes(&[0.5, -0.5])),
        ],
    );
    write(
        &dir.join("model-00002-of-00002.safetensors"),
        &BTreeMap::new(),
        vec![(
            "b.weight",
            Dtype::F16,
            vec![1, 2],
            [1.0f32, -2.0]
                .iter()
                .flat_map(|&v| half::f16::from_f32(v).to_le_bytes())
                .collect(),
        )],
    );
    let index = dir.join("model.safetensors.index.json");
    let default = r#"{"metadata": {"total_size": 28}, "weight_map": {
        "a.weight": "model-00001-of-00002.safetensors",
        "a.bias": "model-00001-of-00002.safetensors",
        "b.weight": "model-00002-of-00002.safetensors"}}"#;
    std::fs::write(&index, index_json.unwrap_or(default)).unwrap();
    index
}

#[test]
fn sharded_checkpoints_read_shard_by_shard() {
    let dir = tempfile::tempdir().unwrap();
    let index = sharded(dir.path(), None);
    let ck = Checkpoint::open(&index).unwrap();
    assert_eq!(ck.shards(), 2);
    assert_eq!(
        ck.tensors()
            .iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>(),
        ["a.weight", "a.bias", "b.weight"]
    );
    assert_eq!(ck.read_f32("b.weight").unwrap(), [1.0, -2.0]);
    assert_eq!(ck.select_layers(&[]).unwrap(), ["a.weight", "b.weight"]);
    assert_eq!(
        ck.metadata().get("total_size").map(String::as_str),
        Some("28")
    );
    assert_eq!(ck.metadata().get("format").map(String::as_str), Some("pt"));
    // The hash covers the index and every shard.
    let before = ck.sha256().unwrap();
    let mut bytes = std::fs::read(dir.path().join("model-00002-of-00002.safetensors")).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(dir.path().join("model-00002-of-00002.safetensors"), bytes).unwrap();
    assert_ne!(Checkpoint::open(&index).unwrap().sha256().unwrap(), before);
}

#[test]
fn sharded_checkpoints_that_disagree_with_their_index() {
    let cases: [(&str, &str); 7] = [
        (
            r#"{"weight_map": {"a.weight": "gone.safetensors"}}"#,
            "shard gone.safetensors is missing",
        ),
        (
            r#"{"weight_map": {"a.weight": "model-00002-of-00002.safetensors", "a.bias": "model-00001-of-00002.safetensors", "b.weight": "model-00002-of-00002.safetensors"}}"#,
            "the shard holds it, but the index maps it to model-00002-of-00002.safetensors",
        ),
        (
            r#"{"weight_map": {"a.weight": "model-00001-of-00002.safetensors", "a.bias": "model-00001-of-00002.safetensors", "c.weight": "model-00001-of-00002.safetensors", "b.weight": "model-00002-of-00002.safetensors"}}"#,
            "\"c.weight\": the index maps it to this shard, which does not hold it",
        ),
        (
            r#"{"weight_map": {"a.weight": "model-00001-of-00002.safetensors", "b.weight": "model-00002-of-00002.safetensors"}}"#,
            "\"a.bias\": the shard holds it, but the index does not list it",
        ),
        (
            r#"{"weight_map": {"a.weight": "../elsewhere.safetensors"}}"#,
            "must be a file name beside the index",
        ),
        (r#"{"nothing": 1}"#, "no \"weight_map\""),
        ("not json", "not JSON"),
    ];
    for (json, needle) in cases {
        let dir = tempfile::tempdir().unwrap();
        let index = sharded(dir.path(), Some(json));
        let err = Checkpoint::open(&index).unwrap_err().to_string();
        assert!(
            err.contains(needle) && err.contains("model.safetensors.index.json"),
            "{needle}: {err}"
        );
    }
}

#[test]
fn large_tensors_convert_across_chunks_and_read_again_after_release() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.safetensors");
    // 5M f16 values = 10 MB: more than one 8 MB chunk.
    let n = 5_000_000usize;
    let values: Vec<f32> = (0..n)
        .map(|i| ((i % 2048) as f32 - 1024.0) / 64.0)
        .collect();
    let bytes: Vec<u8> = values
        .iter()
        .flat_map(|&v| half::f16::from_f32(v).to_le_bytes())
        .collect();
    write(
        &path,
        &BTreeMap::new(),
        vec![("w", Dtype::F16, vec![n], bytes)],
    );
    let ck = Checkpoint::open(&path).unwrap();
    assert_eq!(ck.read_f32("w").unwrap(), values);
    assert_eq!(
        ck.read_f32("w").unwrap(),
        values,
        "the same values every read"
    );
    assert_eq!(encode(Dtype::F16, &values).len(), 2 * n);
    let r = ck.reader("w").unwrap();
    let mut buf = vec![0f32; 1000];
    r.read(4_999_000, &mut buf).unwrap();
    assert_eq!(buf, values[4_999_000..]);
    r.read(17, &mut buf[..3]).unwrap();
    assert_eq!(buf[..3], values[17..20]);
    assert_eq!(round_to(Dtype::BF16, 1.0 + 1.0 / 512.0), 1.0);
}

#[test]
fn selection_rules() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    let z = |n: usize| vec![0u8; n * 4];
    write(
        &path,
        &BTreeMap::new(),
        vec![
            ("fc10.weight", Dtype::F32, vec![2, 2], z(4)),
            ("fc2.weight", Dtype::F32, vec![2, 2], z(4)),
            ("fc2.bias", Dtype::F32, vec![2], z(2)),
            ("conv.weight", Dtype::F32, vec![1, 1, 2, 2], z(4)),
            ("steps.weight", Dtype::I32, vec![2, 2], z(4)),
            ("emb", Dtype::F32, vec![2, 2], z(4)),
        ],
    );
    let ck = Checkpoint::open(&path).unwrap();
    // Default: 2-D float .weight tensors, natural order; conv (4-D) and int skipped.
    assert_eq!(
        ck.select_layers(&[]).unwrap(),
        ["fc2.weight", "fc10.weight"]
    );
    let sel = |p: &[&str]| ck.select_layers(&p.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    assert_eq!(
        sel(&["emb", "fc*.weight", "fc2.weight"]).unwrap(),
        ["emb", "fc2.weight", "fc10.weight"]
    );
    assert!(matches!(sel(&["nothing*"]), Err(Error::NoMatch { .. })));
    assert!(
        sel(&["nothing*"])
            .unwrap_err()
            .to_string()
            .contains("fc2.bias")
    );
    assert!(matches!(sel(&["fc2.bias"]), Err(Error::NotMatrix { .. })));
    assert!(matches!(
        sel(&["conv.weight"]),
        Err(Error::NotMatrix { .. })
    ));
    assert!(matches!(
        sel(&["steps.weight"]),
        Err(Error::UnsupportedDtype { .. })
    ));
    assert!(matches!(
        ck.read_f32("steps.weight"),
        Err(Error::UnsupportedDtype { .. })
    ));
    assert!(matches!(
        ck.read_matrix("nope"),
        Err(Error::TensorNotFound { .. })
    ));

    let empty = dir.path().join("e.safetensors");
    write(
        &empty,
        &BTreeMap::new(),
        vec![("x", Dtype::F32, vec![3], z(3))],
    );
    assert!(matches!(
        Checkpoint::open(&empty).unwrap().select_layers(&[]),
        Err(Error::NothingSelected { .. })
    ));
}

#[test]
fn non_finite_weights_name_the_first_bad_index() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nan.safetensors");
    let mut v = vec![0.5f32; 12];
    v[7] = f32::NAN;
    v[9] = f32::INFINITY;
    write(
        &path,
        &BTreeMap::new(),
        vec![("fc.weight", Dtype::F32, vec![3, 4], f32_bytes(&v))],
    );
    let err = Checkpoint::open(&path)
        .unwrap()
        .read_matrix("fc.weight")
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::NonFinite {
                index: 7,
                row: 1,
                col: 3,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("\"fc.weight\""));
}

proptest! {
    #[test]
    fn write_then_read_round_trips(
        tensors in prop::collection::vec((0usize..5, 0usize..5, prop::collection::vec(any::<f32>(), 25)), 1..4),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.safetensors");
        let data: Vec<(String, Vec<usize>, Vec<f32>)> = tensors
            .iter()
            .enumerate()
            .map(|(i, (r, c, v))| (format!("t{i}"), vec![*r, *c], v[..r * c].to_vec()))
            .collect();
        let specs: Vec<_> = data.iter().map(|(n, s, _)| (n.clone(), Dtype::F32, s.clone())).collect();
        let mut w = Writer::create(&path, &BTreeMap::new(), &specs).unwrap();
        for (_, _, v) in &data {
            w.write_tensor(&f32_bytes(v)).unwrap();
        }
        w.finish().unwrap();
        let ck = Checkpoint::open(&path).unwrap();
        for (name, shape, v) in &data {
            let back = ck.read_f32(name).unwrap();
            prop_assert_eq!(back.iter().map(|x| x.to_bits()).collect::<Vec<_>>(), v.iter().map(|x| x.to_bits()).collect::<Vec<_>>());
            prop_assert_eq!(&ck.info(name).unwrap().shape, shape);
        }
    }
}

/// A file written the way Python's `safetensors` writes one: tensors sorted by name.
fn name_sorted(path: &Path, tensors: &[(&str, Vec<usize>)]) {
    let mut t: Vec<(&str, Dtype, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(n, s)| {
            let len: usize = s.iter().product();
            (*n, Dtype::F32, s.clone(), f32_bytes(&vec![0.5; len]))
        })
        .collect();
    t.sort_by(|a, b| a.0.cmp(b.0));
    write(path, &BTreeMap::new(), t);
}

#[test]
fn a_name_sorted_transformer_is_listed_in_model_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lm.safetensors");
    let mut tensors = vec![
        ("lm_head.weight", vec![8, 4]),
        ("model.embed_tokens.weight", vec![8, 4]),
        ("model.norm.weight", vec![4]),
    ];
    let names: Vec<String> = (0..12)
        .flat_map(|i| {
            [
                format!("model.layers.{i}.self_attn.q_proj.weight"),
                format!("model.layers.{i}.input_layernorm.weight"),
            ]
        })
        .collect();
    for n in &names {
        let shape = if n.contains("norm") {
            vec![4]
        } else {
            vec![4, 4]
        };
        tensors.push((n.as_str(), shape));
    }
    name_sorted(&path, &tensors);
    let ck = Checkpoint::open(&path).unwrap();
    let sel = ck.select(&[]).unwrap();
    let expected: Vec<String> = (0..12)
        .map(|i| format!("model.layers.{i}.self_attn.q_proj.weight"))
        .chain(["lm_head.weight".to_string()])
        .collect();
    assert_eq!(
        sel.layers, expected,
        "numbered layers in order, the head last"
    );
    let skipped: Vec<(&str, String)> = sel
        .skipped
        .iter()
        .map(|s| (s.name.as_str(), s.reason.to_string()))
        .collect();
    assert_eq!(skipped[0].0, "model.embed_tokens.weight");
    assert!(skipped[0].1.contains("embedding"), "{skipped:?}");
    assert!(skipped[1].0.contains("layers.0.input_layernorm"));
    assert!(skipped[1].1.contains("not 2-D"));
    assert_eq!(skipped.last().unwrap().0, "model.norm.weight");
    // Named, an embedding table is a layer like any other.
    assert_eq!(
        ck.select_layers(&["model.embed_tokens.weight".to_string()])
            .unwrap(),
        ["model.embed_tokens.weight"]
    );
}

#[test]
fn a_file_in_its_writers_order_keeps_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    let z = |n: usize| f32_bytes(&vec![0.5; n]);
    write(
        &path,
        &BTreeMap::new(),
        vec![
            ("encoder.weight", Dtype::F32, vec![2, 2], z(4)),
            ("encoder.bias", Dtype::F32, vec![2], z(2)),
            ("block10.weight", Dtype::F32, vec![2, 2], z(4)),
            ("decoder.weight", Dtype::F32, vec![2, 2], z(4)),
            ("block9.weight", Dtype::F32, vec![2, 2], z(4)),
        ],
    );
    let ck = Checkpoint::open(&path).unwrap();
    assert_eq!(
        ck.select_layers(&[]).unwrap(),
        [
            "encoder.weight",
            "block9.weight",
            "decoder.weight",
            "block10.weight"
        ]
    );
    assert!(is_embedding("transformer.wte.weight"));
    assert!(is_embedding("bert.embeddings.word_embeddings.weight"));
    assert!(!is_embedding("lm_head.weight"));
    assert_eq!(bias_name("fc1.weight").as_deref(), Some("fc1.bias"));
    assert_eq!(bias_name("fc1.w"), None);
}

/// Regression: a writer's order whose dtypes interleave is not Python's sort, even when each
/// dtype's names happen to ascend.
#[test]
fn interleaved_dtypes_keep_the_writers_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    let (w4, h4) = (f32_bytes(&[0.5; 4]), vec![0u8; 8]);
    write(
        &path,
        &BTreeMap::new(),
        vec![
            ("b.weight", Dtype::F32, vec![2, 2], w4.clone()),
            ("a.weight", Dtype::BF16, vec![2, 2], h4),
            ("c.weight", Dtype::F32, vec![2, 2], w4),
        ],
    );
    let ck = Checkpoint::open(&path).unwrap();
    assert_eq!(
        ck.select_layers(&[]).unwrap(),
        ["b.weight", "a.weight", "c.weight"]
    );
}

#[test]
fn tensors_written_out_of_order_give_the_same_file() {
    let dir = tempfile::tempdir().unwrap();
    let specs = vec![
        ("a".to_string(), Dtype::F32, vec![3]),
        ("b".to_string(), Dtype::BF16, vec![2, 2]),
        ("c".to_string(), Dtype::F32, vec![5]),
    ];
    let meta = BTreeMap::from([("k".to_string(), "v".to_string())]);
    let in_order = dir.path().join("1.safetensors");
    let mut w = Writer::create(&in_order, &meta, &specs).unwrap();
    w.write_tensor(&f32_bytes(&[1.0, 2.0, 3.0])).unwrap();
    w.write_sparse(Dtype::BF16, 4, &[1, 3], |i| i as f32 + 1.0)
        .unwrap();
    w.write_sparse(Dtype::F32, 5, &[4], |_| 7.0).unwrap();
    w.finish().unwrap();
    let shuffled = dir.path().join("2.safetensors");
    let mut w = Writer::create(&shuffled, &meta, &specs).unwrap();
    w.write_sparse_named("c", Dtype::F32, 5, &[4], |_| 7.0)
        .unwrap();
    w.write_named("a", |sink| sink(&f32_bytes(&[1.0, 2.0, 3.0])))
        .unwrap();
    assert!(w.write_named("a", |sink| sink(&[0; 12])).is_err());
    assert!(w.write_named("d", |sink| sink(&[])).is_err());
    w.write_sparse(Dtype::BF16, 4, &[1, 3], |i| i as f32 + 1.0)
        .unwrap();
    w.finish().unwrap();
    assert_eq!(
        std::fs::read(&in_order).unwrap(),
        std::fs::read(&shuffled).unwrap()
    );
    let mut w = Writer::create(&dir.path().join("3.safetensors"), &meta, &specs).unwrap();
    w.write_named("b", |sink| sink(&[0; 8])).unwrap();
    let err = w.finish().unwrap_err().to_string();
    assert!(
        err.contains("\"a\" was declared but never written"),
        "{err}"
    );
}

/// A file truncated after it was opened: reads fail with an error naming it, never a crash.
#[test]
fn a_file_truncated_under_a_reader_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    write(
        &path,
        &BTreeMap::new(),
        vec![("w", Dtype::F32, vec![1000], f32_bytes(&[0.5; 1000]))],
    );
    let ck = Checkpoint::open(&path).unwrap();
    let len = std::fs::metadata(&path).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len - 100)
        .unwrap();
    let mut buf = vec![0f32; 1000];
    let err = ck.reader("w").unwrap().read(0, &mut buf).unwrap_err();
    assert!(err.to_string().contains("m.safetensors"), "{err}");
    assert!(ck.read_f32("w").is_err());
}

/// The fast decoders agree with `half`'s value-by-value conversion on every 16-bit pattern.
#[test]
fn every_half_precision_pattern_decodes_exactly() {
    let bytes: Vec<u8> = (0..=u16::MAX).flat_map(|b| b.to_le_bytes()).collect();
    for (dtype, reference) in [
        (
            Dtype::F16,
            (|b: u16| half::f16::from_bits(b).to_f32()) as fn(u16) -> f32,
        ),
        (Dtype::BF16, |b: u16| half::bf16::from_bits(b).to_f32()),
    ] {
        let mut out = vec![0f32; 1 << 16];
        crate::convert::decode_to(dtype, &bytes, &mut out);
        for (b, v) in (0..=u16::MAX).zip(&out) {
            let r = reference(b);
            assert!(
                v.to_bits() == r.to_bits() || (v.is_nan() && r.is_nan()),
                "{dtype:?} {b:#06x}: {v} against {r}"
            );
        }
    }
}
