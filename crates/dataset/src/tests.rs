use std::io::Write;
use std::path::{Path, PathBuf};

use proptest::prelude::*;

use crate::*;

/// An IDX file's bytes: magic, big-endian dimensions, then `data` (already big-endian).
fn idx_bytes(code: u8, dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, code, dims.len() as u8];
    for d in dims {
        out.extend_from_slice(&d.to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// A tiny MNIST-like pair: 5 images of 2 x 3 pixels, labels 0..5.
fn tiny_mnist(dir: &Path, gz: bool) {
    let pixels: Vec<u8> = (0..30).map(|i| (i * 8) as u8).collect();
    let images = idx_bytes(0x08, &[5, 2, 3], &pixels);
    let labels = idx_bytes(0x08, &[5], &[0, 1, 2, 3, 4]);
    let (images, labels, suffix) = if gz {
        (gzip(&images), gzip(&labels), ".gz")
    } else {
        (images, labels, "")
    };
    write(dir, &format!("t10k-images-idx3-ubyte{suffix}"), &images);
    write(dir, &format!("t10k-labels-idx1-ubyte{suffix}"), &labels);
}

#[test]
fn specs_parse_and_print() {
    for (text, spec) in [
        (
            "synthetic",
            Spec::Synthetic {
                seed: 0,
                form: crate::Form::Plain,
            },
        ),
        (
            "synthetic:7",
            Spec::Synthetic {
                seed: 7,
                form: crate::Form::Plain,
            },
        ),
        (
            "mnist:data/mnist",
            Spec::Mnist {
                dir: "data/mnist".into(),
                split: None,
            },
        ),
        (
            "mnist:d:train",
            Spec::Mnist {
                dir: "d".into(),
                split: Some("train".into()),
            },
        ),
        (
            "idx:a.gz,b.gz",
            Spec::Idx {
                images: "a.gz".into(),
                labels: "b.gz".into(),
            },
        ),
        (
            "safetensors:x.st",
            Spec::Safetensors {
                path: "x.st".into(),
            },
        ),
        (
            "data/x.safetensors",
            Spec::Safetensors {
                path: "data/x.safetensors".into(),
            },
        ),
        (
            "text:plays.md",
            Spec::Text {
                path: "plays.md".into(),
            },
        ),
        (
            "valid.txt",
            Spec::Text {
                path: "valid.txt".into(),
            },
        ),
    ] {
        let parsed: Spec = text.parse().unwrap();
        assert_eq!(parsed, spec, "{text}");
        assert_eq!(parsed.to_string().parse::<Spec>().unwrap(), spec);
    }
    // Text is a language model's, tokenized by its own tokenizer: no samples of numbers.
    let e = crate::peek(&"text:t.txt".parse().unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.contains("text:t.txt") && e.contains("tokenizer"), "{e}");
    for bad in [
        "text:",
        "",
        "mnist:",
        "idx:a",
        "synthetic:x",
        "cifar:foo",
        "safetensors:",
    ] {
        let e = bad.parse::<Spec>().unwrap_err().to_string();
        assert!(e.contains("expected") || e.contains("seed"), "{bad}: {e}");
    }
}

#[test]
fn ranges_parse_resolve_and_refuse_empty_or_past_the_end() {
    let r: SampleRange = "8000..10000".parse().unwrap();
    assert_eq!(r.resolve(10000, "d").unwrap(), 8000..10000);
    assert_eq!(
        "..5"
            .parse::<SampleRange>()
            .unwrap()
            .resolve(9, "d")
            .unwrap(),
        0..5
    );
    assert_eq!(
        "3.."
            .parse::<SampleRange>()
            .unwrap()
            .resolve(9, "d")
            .unwrap(),
        3..9
    );
    assert_eq!(SampleRange::ALL.resolve(9, "d").unwrap(), 0..9);
    assert_eq!(r.to_string(), "8000..10000");
    let empty = "5..5".parse::<SampleRange>().unwrap().resolve(9, "d");
    assert!(
        empty.unwrap_err().to_string().contains("holds no samples"),
        "empty range"
    );
    let past = "0..20000"
        .parse::<SampleRange>()
        .unwrap()
        .resolve(10000, "mnist");
    let e = past.unwrap_err().to_string();
    assert!(
        e.contains("mnist") && e.contains("past the end") && e.contains("10000"),
        "{e}"
    );
    assert!(
        "9..3"
            .parse::<SampleRange>()
            .unwrap()
            .resolve(10, "d")
            .is_err()
    );
    for bad in ["", "5", "a..b", "1...3", "-1..4"] {
        assert!(bad.parse::<SampleRange>().is_err(), "{bad}");
    }
}

#[test]
fn mnist_style_folders_load_raw_and_gzip_alike() {
    for gz in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        tiny_mnist(dir.path(), gz);
        let spec = Spec::Mnist {
            dir: dir.path().into(),
            split: None,
        };
        let ds = load(&spec, SampleRange::new(1, 4), &Scaling::default()).unwrap();
        assert_eq!((ds.len(), ds.width(), ds.first()), (3, 6, 1));
        assert_eq!(ds.labels(), &[1, 2, 3]);
        // Sample 1 holds pixels 6..12, i.e. 48, 56, ..., divided by 255.
        let expected: Vec<f32> = (6..12).map(|i| (i * 8) as f32 / 255.0).collect();
        assert_eq!(ds.input(0), expected.as_slice());
        let raw = Scaling {
            unit: false,
            mean: 8.0,
            std: 2.0,
        };
        let ds = load(&spec, SampleRange::new(0, 1), &raw).unwrap();
        assert_eq!(ds.input(0)[1], (8.0 - 8.0) / 2.0);
        assert_eq!(ds.input(0)[2], (16.0 - 8.0) / 2.0);
    }
}

#[test]
fn a_folder_with_both_splits_asks_which() {
    let dir = tempfile::tempdir().unwrap();
    tiny_mnist(dir.path(), false);
    for kind in ["images-idx3", "labels-idx1"] {
        std::fs::copy(
            dir.path().join(format!("t10k-{kind}-ubyte")),
            dir.path().join(format!("train-{kind}-ubyte")),
        )
        .unwrap();
    }
    let spec = Spec::Mnist {
        dir: dir.path().into(),
        split: None,
    };
    let e = load(&spec, SampleRange::ALL, &Scaling::default()).unwrap_err();
    assert!(e.to_string().contains("mnist:DIR:train"), "{e}");
    let spec = Spec::Mnist {
        dir: dir.path().into(),
        split: Some("train".into()),
    };
    assert_eq!(
        load(&spec, SampleRange::ALL, &Scaling::default())
            .unwrap()
            .len(),
        5
    );
    let empty = tempfile::tempdir().unwrap();
    let spec = Spec::Mnist {
        dir: empty.path().into(),
        split: None,
    };
    let e = load(&spec, SampleRange::ALL, &Scaling::default()).unwrap_err();
    assert!(e.to_string().contains("no MNIST-style IDX files"), "{e}");
}

#[test]
fn corrupt_idx_files_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let good = idx_bytes(0x08, &[2, 2], &[1, 2, 3, 4]);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "magic",
            vec![1, 0, 8, 1, 0, 0, 0, 0],
            "expected 00 00 TYPE RANK",
        ),
        ("type", idx_bytes(0x07, &[1], &[0]), "element type 0x07"),
        ("rank0", vec![0, 0, 8, 0], "rank 0"),
        ("tiny", vec![0, 0], "shorter than the 4-byte magic"),
        (
            "header",
            vec![0, 0, 8, 3, 0, 0, 0, 1],
            "shorter than the header",
        ),
        ("short", good[..good.len() - 1].to_vec(), "short data"),
        ("long", [good.as_slice(), &[9]].concat(), "past the end"),
        ("gzip", [&gzip(&good)[..20], &[0u8; 4][..]].concat(), "gzip"),
        ("gzip-short", gzip(&good[..good.len() - 2]), "short data"),
        (
            "overflow",
            idx_bytes(0x0E, &[u32::MAX, u32::MAX, u32::MAX], &[]),
            "overflow",
        ),
    ];
    for (name, bytes, expect) in cases {
        let p = write(d, name, &bytes);
        let e = read_idx(&p).unwrap_err().to_string();
        assert!(e.contains(expect) && e.contains(name), "{name}: {e}");
    }
    let e = read_idx(&d.join("missing")).unwrap_err().to_string();
    assert!(e.contains("missing"), "{e}");
}

#[test]
fn images_and_labels_must_pair_up() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let images = write(d, "i", &idx_bytes(0x08, &[3, 2], &[0; 6]));
    let two = write(d, "l2", &idx_bytes(0x08, &[2], &[0, 1]));
    let spec = Spec::Idx {
        images: images.clone(),
        labels: two,
    };
    let e = load(&spec, SampleRange::ALL, &Scaling::default()).unwrap_err();
    assert!(e.to_string().contains("3 images but 2 labels"), "{e}");
    let float = write(d, "lf", &idx_bytes(0x0D, &[3], &[0; 12]));
    let spec = Spec::Idx {
        images: images.clone(),
        labels: float,
    };
    let e = load(&spec, SampleRange::ALL, &Scaling::default()).unwrap_err();
    assert!(e.to_string().contains("integer type"), "{e}");
    let negative = write(d, "ln", &idx_bytes(0x09, &[3], &[0, 0xff, 1]));
    let spec = Spec::Idx {
        images,
        labels: negative,
    };
    let e = load(&spec, SampleRange::ALL, &Scaling::default()).unwrap_err();
    assert!(e.to_string().contains("sample 1 has label -1"), "{e}");
}

proptest! {
    /// Encode -> decode is the identity for every element type, rank and size.
    #[test]
    fn idx_round_trip(code in prop::sample::select(vec![0x08u8, 0x09, 0x0B, 0x0C, 0x0D, 0x0E]),
                      dims in prop::collection::vec(0u32..5, 1..4),
                      seed: u64, gz: bool) {
        let n: usize = dims.iter().map(|&d| d as usize).product();
        let mut rng = eie_rng::Rng::new(seed);
        let values: Vec<f64> = (0..n).map(|_| (rng.below(200) as f64) - 100.0).collect();
        let mut data = Vec::new();
        for &v in &values {
            match code {
                0x08 => data.push(v.abs() as u8),
                0x09 => data.push(v as i8 as u8),
                0x0B => data.extend_from_slice(&(v as i16).to_be_bytes()),
                0x0C => data.extend_from_slice(&(v as i32 * 1000).to_be_bytes()),
                0x0D => data.extend_from_slice(&((v / 8.0) as f32).to_be_bytes()),
                _ => data.extend_from_slice(&(v / 3.0).to_be_bytes()),
            }
        }
        let bytes = idx_bytes(code, &dims, &data);
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "x", &if gz { gzip(&bytes) } else { bytes });
        let a = read_idx(&p).unwrap();
        prop_assert_eq!(a.dims.clone(), dims.iter().map(|&d| d as usize).collect::<Vec<_>>());
        prop_assert_eq!(a.len(), n);
        for (i, &v) in values.iter().enumerate() {
            let expected = match code {
                0x08 => v.abs(),
                0x09 | 0x0B => v,
                0x0C => v * 1000.0,
                0x0D => (v / 8.0) as f32 as f64,
                _ => v / 3.0,
            };
            prop_assert_eq!(a.get(i), expected);
        }
    }
}

#[test]
fn the_synthetic_set_is_a_pure_function_of_seed_and_index() {
    let all = load(
        &Spec::Synthetic {
            seed: 3,
            form: crate::Form::Plain,
        },
        SampleRange::new(0, 200),
        &Scaling::default(),
    )
    .unwrap();
    let part = load(
        &Spec::Synthetic {
            seed: 3,
            form: crate::Form::Plain,
        },
        SampleRange::new(150, 160),
        &Scaling::default(),
    )
    .unwrap();
    assert_eq!(part.inputs(), &all.inputs()[150 * 64..160 * 64]);
    assert_eq!(part.labels(), &all.labels()[150..160]);
    let (x, y) = synthetic_sample(3, 151);
    assert_eq!((x.as_slice(), y), (all.input(151), all.labels()[151]));
    let other = load(
        &Spec::Synthetic {
            seed: 4,
            form: crate::Form::Plain,
        },
        SampleRange::new(0, 200),
        &Scaling::default(),
    )
    .unwrap();
    assert_ne!(other.inputs(), all.inputs());
    assert!(all.inputs().iter().all(|&v| (0.0..=1.0).contains(&v)));
    // Inputs are sparse (as EIE likes them), and every class occurs.
    let zeros = all.inputs().iter().filter(|&&v| v == 0.0).count();
    assert!(zeros > all.inputs().len() / 3, "{zeros} zeros");
    let mut counts = [0; 10];
    all.labels().iter().for_each(|&l| counts[l as usize] += 1);
    assert!(counts.iter().all(|&c| c > 5), "{counts:?}");
    assert_eq!(all.classes(), 10);
    // Pinned: the first sample's label and a checksum of the first 200 samples, so that any
    // change to the generator (which would silently change the demo) fails here.
    let sum: f64 = all.inputs().iter().map(|&v| v as f64).sum();
    assert_eq!(
        (all.labels()[0], format!("{sum:.4}")),
        (PINNED_LABEL, PINNED_SUM.to_string())
    );
}

const PINNED_LABEL: u32 = 0;
const PINNED_SUM: &str = "3852.2774";

#[test]
fn safetensors_datasets_load_with_integer_labels() {
    use eie_checkpoint::{Dtype, Writer, f32_bytes};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.safetensors");
    let specs = vec![
        ("inputs".to_string(), Dtype::F32, vec![4, 3]),
        ("labels".to_string(), Dtype::I64, vec![4]),
    ];
    let mut w = Writer::create(&path, &Default::default(), &specs).unwrap();
    let x: Vec<f32> = (0..12).map(|i| i as f32).collect();
    w.write_tensor(&f32_bytes(&x)).unwrap();
    let labels: Vec<u8> = [2i64, 0, 1, 2]
        .iter()
        .flat_map(|l| l.to_le_bytes())
        .collect();
    w.write_tensor(&labels).unwrap();
    w.finish().unwrap();
    let spec: Spec = path.to_str().unwrap().parse().unwrap();
    let ds = load(&spec, SampleRange::new(1, 3), &Scaling::default()).unwrap();
    assert_eq!(ds.labels(), &[0, 1]);
    // Float inputs are taken as stored, even with `unit`.
    assert_eq!(ds.input(0), &[3.0, 4.0, 5.0]);
    assert_eq!(ds.classes(), 2);

    // Wrong shapes and types are named.
    let bad = dir.path().join("bad.safetensors");
    let specs = vec![
        ("inputs".to_string(), Dtype::F32, vec![4, 3]),
        ("labels".to_string(), Dtype::F32, vec![4]),
    ];
    let mut w = Writer::create(&bad, &Default::default(), &specs).unwrap();
    w.write_tensor(&f32_bytes(&x)).unwrap();
    w.write_tensor(&f32_bytes(&[0.0; 4])).unwrap();
    w.finish().unwrap();
    let e = load(
        &Spec::Safetensors { path: bad },
        SampleRange::ALL,
        &Scaling::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("\"labels\"") && e.contains("integer"), "{e}");
}

#[test]
fn scaling_must_be_usable() {
    let s = Scaling {
        unit: true,
        mean: 0.0,
        std: 0.0,
    };
    let e = load(
        &Spec::Synthetic {
            seed: 0,
            form: crate::Form::Plain,
        },
        SampleRange::ALL,
        &s,
    )
    .unwrap_err();
    assert!(e.to_string().contains("standard deviation"), "{e}");
}

/// The MNIST test set in ../shared/data/mnist, when it is there.
fn shared_mnist() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/mnist");
    if dir.join("t10k-images-idx3-ubyte.gz").is_file() {
        Some(dir)
    } else {
        eprintln!(
            "skipped: the MNIST test set is not at {} (this test needs ../shared/data/mnist)",
            dir.display()
        );
        None
    }
}

#[test]
fn the_shared_mnist_test_set_loads_and_splits() {
    let Some(dir) = shared_mnist() else { return };
    let spec = Spec::Mnist { dir, split: None };
    let train = load(&spec, SampleRange::new(0, 8000), &Scaling::default()).unwrap();
    let held = load(&spec, "8000..10000".parse().unwrap(), &Scaling::default()).unwrap();
    assert_eq!(
        (train.len(), train.width(), train.classes()),
        (8000, 784, 10)
    );
    assert_eq!((held.len(), held.first()), (2000, 8000));
    // The t10k set's first labels are 7, 2, 1, 0, 4.
    assert_eq!(&train.labels()[..5], &[7, 2, 1, 0, 4]);
    assert!(train.inputs().iter().all(|&v| (0.0..=1.0).contains(&v)));
    let e = load(&spec, "9000..10001".parse().unwrap(), &Scaling::default()).unwrap_err();
    assert!(e.to_string().contains("past the end"), "{e}");
}

#[test]
fn empty_idx_files_with_huge_dimensions_are_refused_not_overflowed() {
    let dir = tempfile::tempdir().unwrap();
    let images = write(
        dir.path(),
        "i",
        &idx_bytes(0x08, &[0, u32::MAX, u32::MAX, 16], &[]),
    );
    let labels = write(dir.path(), "l", &idx_bytes(0x08, &[0], &[]));
    let spec = Spec::Idx { images, labels };
    let e = load(&spec, SampleRange::ALL, &Scaling::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("overflow") || e.contains("holds no samples (the dataset has 0"),
        "{e}"
    );
    let images = write(dir.path(), "i0", &idx_bytes(0x08, &[0, 2], &[]));
    let spec = Spec::Idx {
        images,
        labels: dir.path().join("l"),
    };
    let e = load(&spec, SampleRange::ALL, &Scaling::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("holds no samples (the dataset has 0"), "{e}");
}

#[test]
fn forms_come_from_the_spec_or_the_files_metadata() {
    use crate::Form;
    for (spec, shape, form) in [
        ("synthetic", vec![64], Form::Plain),
        ("synthetic-image:2", vec![1, 8, 8], Form::Image),
        ("synthetic-sequence", vec![8, 8], Form::Sequence),
    ] {
        let s: Spec = spec.parse().unwrap();
        let d = load(&s, SampleRange::new(0, 3), &Scaling::default()).unwrap();
        assert_eq!((d.shape(), d.form()), (&shape[..], form), "{spec}");
        assert_eq!(s.to_string().parse::<Spec>().unwrap(), s);
    }
    // The forms are the same samples.
    let plain = load(
        &"synthetic".parse().unwrap(),
        SampleRange::new(0, 5),
        &Scaling::default(),
    );
    let image = load(
        &"synthetic-image".parse().unwrap(),
        SampleRange::new(0, 5),
        &Scaling::default(),
    );
    assert_eq!(plain.unwrap().inputs(), image.unwrap().inputs());
    assert!("synthetic-image:x".parse::<Spec>().is_err());

    let dir = tempfile::tempdir().unwrap();
    let write = |form: &str| {
        let p = dir.path().join(format!("{form}.safetensors"));
        let meta = std::collections::BTreeMap::from([("eie.form".to_string(), form.to_string())]);
        let specs = [
            (
                "inputs".to_string(),
                eie_checkpoint::Dtype::F32,
                vec![2, 3, 4],
            ),
            ("labels".to_string(), eie_checkpoint::Dtype::I64, vec![2]),
        ];
        let mut w = eie_checkpoint::Writer::create(&p, &meta, &specs).unwrap();
        w.write_tensor(&eie_checkpoint::f32_bytes(&[0.5; 24]))
            .unwrap();
        w.write_tensor(&[0u8; 16]).unwrap();
        w.finish().unwrap();
        p
    };
    let d = load(
        &Spec::Safetensors {
            path: write("sequence"),
        },
        SampleRange::ALL,
        &Scaling::default(),
    )
    .unwrap();
    assert_eq!((d.shape(), d.form()), (&[3, 4][..], Form::Sequence));
    let e = load(
        &Spec::Safetensors {
            path: write("video"),
        },
        SampleRange::ALL,
        &Scaling::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("eie.form = \"video\"") && e.contains("image, sequence or plain"),
        "{e}"
    );
}

/// A range of a safetensors dataset is read alone, in blocks: its values (F64 rounded to f32,
/// U8 as stored) and labels are those of the range, across a block boundary.
#[test]
fn a_safetensors_range_is_read_alone_and_right() {
    use eie_checkpoint::{Dtype, Writer};
    let dir = tempfile::tempdir().unwrap();
    let (n, w) = (3000usize, 400usize);
    for dtype in [Dtype::F64, Dtype::U8] {
        let path = dir.path().join(format!("{dtype:?}.safetensors"));
        let specs = vec![
            ("inputs".to_string(), dtype, vec![n, w]),
            ("labels".to_string(), Dtype::I32, vec![n]),
        ];
        let value = |i: usize| (i % 251) as f64;
        let mut writer = Writer::create(&path, &Default::default(), &specs).unwrap();
        let bytes: Vec<u8> = match dtype {
            Dtype::F64 => (0..n * w).flat_map(|i| value(i).to_le_bytes()).collect(),
            _ => (0..n * w).map(|i| value(i) as u8).collect(),
        };
        writer.write_tensor(&bytes).unwrap();
        let labels: Vec<u8> = (0..n as i32).flat_map(|l| (l % 7).to_le_bytes()).collect();
        writer.write_tensor(&labels).unwrap();
        writer.finish().unwrap();
        let raw = Scaling {
            unit: false,
            mean: 0.0,
            std: 1.0,
        };
        let spec = Spec::Safetensors { path };
        let ds = load(&spec, SampleRange::new(100, 2900), &raw).unwrap();
        assert_eq!((ds.len(), ds.first()), (2800, 100));
        for (k, s) in [0usize, 1, 2620, 2799].into_iter().enumerate() {
            let i = 100 + s;
            assert_eq!(ds.labels()[s], (i % 7) as u32, "{dtype:?} {k}");
            let expected: Vec<f32> = (i * w..(i + 1) * w).map(|j| value(j) as f32).collect();
            assert_eq!(ds.input(s), expected.as_slice(), "{dtype:?} sample {i}");
        }
    }
}
