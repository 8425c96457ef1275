use std::collections::BTreeMap;

use eie_checkpoint::{Checkpoint, Dtype, Writer, f32_bytes};
use eie_dataset::{Dataset, Form};
use proptest::prelude::*;

use crate::reference;
use crate::*;

const LENET5: &str = "1x28x28-conv20k5-maxpool2-conv50k5-maxpool2-500-10";

#[test]
fn lenet5_resolves_to_caffes_shapes() {
    let arch: Arch = LENET5.parse().unwrap();
    assert_eq!(arch.to_string(), LENET5);
    let tensors = arch.tensors().unwrap();
    let names: Vec<(&str, &[usize])> = tensors
        .iter()
        .map(|t| (t.name.as_str(), t.shape.as_slice()))
        .collect();
    assert_eq!(
        names,
        [
            ("conv1.weight", &[20, 1, 5, 5][..]),
            ("conv1.bias", &[20][..]),
            ("conv2.weight", &[50, 20, 5, 5][..]),
            ("conv2.bias", &[50][..]),
            ("fc1.weight", &[500, 800][..]),
            ("fc1.bias", &[500][..]),
            ("fc2.weight", &[10, 500][..]),
            ("fc2.bias", &[10][..]),
        ]
    );
    let net = Network::init_arch(&arch, 0).unwrap();
    // conv, pool, conv, pool, flatten, fc1, relu, fc2
    assert_eq!(net.ops().len(), 8);
    assert_eq!(net.ops()[4], Op::Flatten);
    assert_eq!(net.ops()[6], Op::Relu);
    let weights: usize = net.layers().iter().map(|l| l.weight.len()).sum();
    assert_eq!(weights, 500 + 25_000 + 400_000 + 5_000);
}

#[test]
fn an_lstm_resolves_to_pytorch_tensors() {
    let arch: Arch = "28x28-lstm128x2-10".parse().unwrap();
    let t = arch.tensors().unwrap();
    let names: Vec<&str> = t.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "lstm.weight_ih_l0",
            "lstm.weight_hh_l0",
            "lstm.bias_ih_l0",
            "lstm.bias_hh_l0",
            "lstm.weight_ih_l1",
            "lstm.weight_hh_l1",
            "lstm.bias_ih_l1",
            "lstm.bias_hh_l1",
            "fc1.weight",
            "fc1.bias"
        ]
    );
    assert_eq!(t[0].shape, [512, 28]);
    assert_eq!(t[4].shape, [512, 128]);
    let net = Network::init_arch(&arch, 1).unwrap();
    // Two packed matrices [W_ih | W_hh], biases summed, then the classifier.
    assert_eq!(net.ops()[2], Op::LastStep);
    let names: Vec<&str> = net.layers().iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["lstm.packed_l0", "lstm.packed_l1", "fc1.weight"]);
    assert_eq!(net.layers()[0].shape, [512, 28 + 128]);
    assert_eq!(net.layers()[1].shape, [512, 128 + 128]);

    // Written in PyTorch's layout, read back as the same matrices.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lstm.safetensors");
    net.write_safetensors(&path, &BTreeMap::new()).unwrap();
    let ck = Checkpoint::open(&path).unwrap();
    let written: Vec<String> = ck.tensors().into_iter().map(|t| t.name).collect();
    assert_eq!(written, names_of(&t));
    assert_eq!(Network::from_arch_checkpoint(&ck, &arch).unwrap(), net);
    // The packed matrix is W_ih's columns then W_hh's, row by row; the bias their sum.
    let ih = ck.read_f32("lstm.weight_ih_l0").unwrap();
    let hh = ck.read_f32("lstm.weight_hh_l0").unwrap();
    let l0 = &net.layers()[0];
    assert_eq!(l0.weight[156 + 27], ih[28 + 27]);
    assert_eq!(l0.weight[156 + 28], hh[128]);
    let b = ck.read_f32("lstm.bias_ih_l0").unwrap();
    assert_eq!(l0.bias.as_deref(), Some(&b[..]));
    assert!(
        ck.read_f32("lstm.bias_hh_l0")
            .unwrap()
            .iter()
            .all(|&v| v == 0.0)
    );
}

fn names_of(t: &[TensorSpec]) -> Vec<String> {
    t.iter().map(|t| t.name.clone()).collect()
}

#[test]
fn descriptions_round_trip_and_name_layers() {
    for text in [
        "784-300-100-10",
        "3x32x32-conv16k3p1-relu-maxpool2-conv32k3s2-avgpool3s1-flatten-64-relu-10",
        "28x28-rnn=lstm64-head.0=10",
        "8x8-lstm16-lstm8-relu-4",
    ] {
        let a: Arch = text.parse().unwrap();
        assert_eq!(a.to_string(), text);
        assert_eq!(a.to_string().parse::<Arch>().unwrap(), a);
    }
    let a: Arch = "8x8-lstm16-lstm8-4".parse().unwrap();
    assert_eq!(a.layers[0].name, "lstm1");
    assert_eq!(a.layers[1].name, "lstm2");
    assert_eq!(Arch::mlp(&[4, 3]).unwrap().mlp_widths(), Some(vec![4, 3]));
    assert_eq!(a.mlp_widths(), None);
}

#[test]
fn bad_descriptions_say_what_is_wrong() {
    for (text, says) in [
        ("784", "at least one layer"),
        ("784-0-10", "expected 1..="),
        ("1x4x4-conv2k5-10", "leaves no output"),
        ("1x4x4-conv2k3s1p0-maxpool3-10", "leaves no output"),
        ("1x28x28-lstm10-10", "an LSTM reads sequences"),
        ("28x28-conv4k3-10", "a convolution needs an image"),
        ("784-maxpool2-10", "pooling needs an image"),
        ("28x28-10", "flatten it first"),
        (
            "1x8x8-conv4k3",
            "the last layer must be the Linear classifier",
        ),
        ("1x8x8-conv4-10", "needs its kernel"),
        ("1x8x8-conv4k3q2-10", "unknown option \"q\""),
        ("1x8x8-conv4k3k3-10", "given twice"),
        ("784-dense10", "expected a layer"),
        ("784-a=10-a=10", "used twice"),
        ("784-a b=10", "not a module path"),
        ("1x2x3x4-10", "CxHxW"),
        ("65536x65536-flatten-10", "more than"),
        ("16777216x16777216x16777216-10", "values per sample"),
        ("1x16384x16384-conv16777216k1-10", "per sample"),
        ("8x8-lstm8388609-10", "gate rows"),
        ("1x1-lstm1x16777216-10", "more than 256 matrices"),
        ("1x1-lstm1x300-10", "more than 256 matrices"),
        ("65537x1-lstm1-10", "more than 65536 matrix runs"),
        (
            "1x32768x32768-conv1k32-maxpool32737-10",
            "multiply-accumulates per sample",
        ),
        (
            "1x16384x16384-maxpool8192s1-10",
            "multiply-accumulates per sample",
        ),
    ] {
        let e = text.parse::<Arch>().unwrap_err().to_string();
        assert!(e.contains(says), "{text}: {e}");
        assert!(
            e.contains(text),
            "{text}: the message names the description: {e}"
        );
    }
}

fn write(path: &std::path::Path, tensors: &[(&str, Vec<usize>, Vec<f32>)]) {
    let specs: Vec<_> = tensors
        .iter()
        .map(|(n, s, _)| (n.to_string(), Dtype::F32, s.clone()))
        .collect();
    let mut w = Writer::create(path, &BTreeMap::new(), &specs).unwrap();
    for (_, _, v) in tensors {
        w.write_tensor(&f32_bytes(v)).unwrap();
    }
    w.finish().unwrap();
}

#[test]
fn a_checkpoint_is_read_against_its_description() {
    let dir = tempfile::tempdir().unwrap();
    let arch: Arch = "1x6x6-conv2k3-maxpool2-3".parse().unwrap();
    let net = Network::init_arch(&arch, 4).unwrap();
    let path = dir.path().join("m.safetensors");
    net.write_safetensors(&path, &BTreeMap::new()).unwrap();
    let ck = Checkpoint::open(&path).unwrap();
    let back = Network::from_arch_checkpoint(&ck, &arch).unwrap();
    assert_eq!(back, net);

    let z = |n: usize| vec![0.0f32; n];
    let check = |tensors: &[(&str, Vec<usize>, Vec<f32>)], says: &[&str]| {
        let p = dir.path().join("bad.safetensors");
        write(&p, tensors);
        let ck = Checkpoint::open(&p).unwrap();
        let e = Network::from_arch_checkpoint(&ck, &arch)
            .unwrap_err()
            .to_string();
        for s in says {
            assert!(e.contains(s), "{e} should say {s}");
        }
    };
    // Wrong shape; names the description's layer and the tensor.
    check(
        &[
            ("conv1.weight", vec![2, 1, 5, 5], z(50)),
            ("fc1.weight", vec![3, 8], z(24)),
        ],
        &[
            "conv1 (conv2k3)",
            "conv1.weight",
            "[2, 1, 3, 3]",
            "[2, 1, 5, 5]",
        ],
    );
    // Missing tensor.
    check(
        &[("conv1.weight", vec![2, 1, 3, 3], z(18))],
        &["fc1 (3)", "fc1.weight", "has no such tensor"],
    );
    // Wrong layer kind: a Linear where the description has a convolution.
    check(
        &[
            ("conv1.weight", vec![2, 9], z(18)),
            ("fc1.weight", vec![3, 8], z(24)),
        ],
        &["conv1.weight", "a Linear's"],
    );
    // A tensor the description does not use.
    check(
        &[
            ("conv1.weight", vec![2, 1, 3, 3], z(18)),
            ("fc1.weight", vec![3, 8], z(24)),
            ("fc2.weight", vec![3, 3], z(9)),
        ],
        &["does not use: fc2.weight"],
    );
    // NaN.
    let mut nan = z(24);
    nan[5] = f32::NAN;
    check(
        &[
            ("conv1.weight", vec![2, 1, 3, 3], z(18)),
            ("fc1.weight", vec![3, 8], nan),
        ],
        &["fc1.weight", "NaN"],
    );
}

#[test]
fn lstm_gate_rows_must_divide_by_four() {
    let dir = tempfile::tempdir().unwrap();
    let arch: Arch = "4x3-lstm2-2".parse().unwrap();
    let p = dir.path().join("l.safetensors");
    let z = |n: usize| vec![0.0f32; n];
    write(
        &p,
        &[
            ("lstm.weight_ih_l0", vec![7, 3], z(21)),
            ("lstm.weight_hh_l0", vec![8, 2], z(16)),
            ("fc1.weight", vec![2, 2], z(4)),
        ],
    );
    let e = Network::from_arch_checkpoint(&Checkpoint::open(&p).unwrap(), &arch)
        .unwrap_err()
        .to_string();
    assert!(e.contains("four gate blocks"), "{e}");
    // One LSTM bias without the other.
    write(
        &p,
        &[
            ("lstm.weight_ih_l0", vec![8, 3], z(24)),
            ("lstm.weight_hh_l0", vec![8, 2], z(16)),
            ("lstm.bias_ih_l0", vec![8], z(8)),
            ("fc1.weight", vec![2, 2], z(4)),
        ],
    );
    let e = Network::from_arch_checkpoint(&Checkpoint::open(&p).unwrap(), &arch)
        .unwrap_err()
        .to_string();
    assert!(e.contains("both LSTM biases or neither"), "{e}");
}

#[test]
fn datasets_must_be_the_networks_input() {
    let cnn = Network::init_arch(&"1x8x8-conv2k3-3".parse().unwrap(), 0).unwrap();
    let lstm = Network::init_arch(&"8x8-lstm4-3".parse().unwrap(), 0).unwrap();
    let mlp = Network::init(&[64, 3], 0).unwrap();
    let data = |shape: Vec<usize>, form| {
        Dataset::from_parts("d", 0, 64, None, vec![0.0; 64], vec![0]).with_shape(shape, form)
    };
    let grid = data(vec![8, 8], Form::Plain);
    for net in [&cnn, &lstm, &mlp] {
        net.check_dataset(&grid).unwrap();
    }
    let image = data(vec![1, 8, 8], Form::Image);
    cnn.check_dataset(&image).unwrap();
    mlp.check_dataset(&image).unwrap();
    let e = lstm.check_dataset(&image).unwrap_err().to_string();
    assert!(
        e.contains("holds images of 1x8x8") && e.contains("reads a sequence"),
        "{e}"
    );
    let seq = data(vec![8, 8], Form::Sequence);
    lstm.check_dataset(&seq).unwrap();
    let e = cnn.check_dataset(&seq).unwrap_err().to_string();
    assert!(
        e.contains("holds sequences of 8x8") && e.contains("reads an image"),
        "{e}"
    );
    let e = cnn
        .check_dataset(&data(vec![64], Form::Plain))
        .unwrap_err()
        .to_string();
    assert!(e.contains("samples of 64"), "{e}");
}

/// A direct convolution, written independently of the reference's loop order.
fn naive_conv(x: &[f32], h: usize, w: usize, l: &Dense, s: usize, p: usize) -> Vec<f32> {
    let k = l.shape[2];
    let (oh, ow) = ((h + 2 * p - k) / s + 1, (w + 2 * p - k) / s + 1);
    let at = |ch: usize, y: isize, xx: isize| -> f64 {
        if y < 0 || xx < 0 || y >= h as isize || xx >= w as isize {
            0.0
        } else {
            x[(ch * h + y as usize) * w + xx as usize] as f64
        }
    };
    let mut out = Vec::new();
    for o in 0..l.outputs {
        for oy in 0..oh {
            for ox in 0..ow {
                let mut acc = l.bias.as_ref().map_or(0.0, |b| b[o] as f64);
                for (i, &wv) in l.weight[o * l.inputs..(o + 1) * l.inputs]
                    .iter()
                    .enumerate()
                {
                    let (ch, ky, kx) = (i / (k * k), i / k % k, i % k);
                    acc += wv as f64
                        * at(
                            ch,
                            (oy * s + ky) as isize - p as isize,
                            (ox * s + kx) as isize - p as isize,
                        );
                }
                out.push(acc as f32);
            }
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// The reference convolution is the textbook sum, for any kernel, stride and padding that
    /// leave an output.
    #[test]
    fn reference_conv_is_the_textbook_sum(
        c in 1usize..3, side in 3usize..9, o in 1usize..4, k in 1usize..4, s in 1usize..3,
        p in 0usize..2, seed in 0u64..1000,
    ) {
        let text = format!("{c}x{side}x{side}-conv{o}k{k}s{s}p{p}-2");
        let net = Network::init_arch(&text.parse().unwrap(), seed).unwrap();
        let mut rng = eie_rng::Rng::new(seed);
        let x: Vec<f32> = (0..c * side * side).map(|_| rng.uniform() as f32 - 0.5).collect();
        let l = &net.layers()[0];
        let got = reference::conv2d(l, &x, net.input(), s, p);
        prop_assert_eq!(got, naive_conv(&x, side, side, l, s, p));
    }
}

#[test]
fn pooling_and_the_lstm_cell_by_hand() {
    let img = Shape::Image {
        channels: 1,
        height: 2,
        width: 4,
    };
    let x = [1.0, 5.0, -1.0, 0.0, 3.0, 2.0, 4.0, -2.0];
    assert_eq!(reference::pool(&x, img, 2, 2, true), [5.0, 4.0]);
    assert_eq!(reference::pool(&x, img, 2, 2, false), [2.75, 0.25]);
    // Gates i, f, g, o of one unit, four different values (a swap of any two shows):
    // c = f c + i g, h = o tanh(c).
    let (mut c, mut h) = ([0.5f32], [0.0f32]);
    let (gi, gf, gg, go): (f64, f64, f64, f64) = (0.3, -0.7, 0.9, 1.6);
    reference::lstm_cell(
        &[gi as f32, gf as f32, gg as f32, go as f32],
        &mut c,
        &mut h,
    );
    let s = |x: f64| 1.0 / (1.0 + (-x).exp());
    let c_want = s(gf) * 0.5 + s(gi) * gg.tanh();
    assert!((c[0] as f64 - c_want).abs() < 1e-7, "{c:?} vs {c_want}");
    let h_want = s(go) * (c_want as f32 as f64).tanh();
    assert!((h[0] as f64 - h_want).abs() < 1e-7, "{h:?} vs {h_want}");
}

#[test]
fn an_mlp_is_the_same_network_either_way() {
    // Network::init draws as it always has (the MLP-only generator, written out here): per
    // layer its weights then its biases, uniform in +-1/sqrt(inputs), from one stream.
    let widths = [5usize, 4, 3];
    let mut rng = eie_rng::Rng::new(9);
    let mut expected = Vec::new();
    for w in widths.windows(2) {
        let bound = 1.0 / (w[0] as f64).sqrt();
        let mut draw = |n: usize| -> Vec<f32> {
            (0..n)
                .map(|_| ((2.0 * rng.uniform() - 1.0) * bound) as f32)
                .collect()
        };
        expected.push((draw(w[0] * w[1]), draw(w[1])));
    }
    let a = Network::init(&widths, 9).unwrap();
    for (l, (w, b)) in a.layers().iter().zip(&expected) {
        assert_eq!(&l.weight, w);
        assert_eq!(l.bias.as_ref(), Some(b));
    }
    let b = Network::init_arch(&Arch::mlp(&widths).unwrap(), 9).unwrap();
    assert_eq!(a.layers(), b.layers());
    assert!(a.is_mlp() && b.is_mlp());
    let x = [0.1, -0.2, 0.3, 0.4, -0.5];
    assert_eq!(a.forward(&x), b.forward(&x));
    assert_eq!(a.describe(), "5-4-3");
}

#[test]
fn a_token_model_resolves_to_pytorch_tensors_and_one_token_steps() {
    let text = "tok65-embed16-lstm32x2-65";
    let arch: Arch = text.parse().unwrap();
    assert_eq!(arch.to_string(), text);
    assert_eq!(arch.vocab(), Some(65));
    let t = arch.tensors().unwrap();
    let names: Vec<(&str, &[usize])> = t
        .iter()
        .map(|t| (t.name.as_str(), t.shape.as_slice()))
        .collect();
    assert_eq!(names[0], ("embed.weight", &[65, 16][..]));
    assert_eq!(names[1], ("lstm.weight_ih_l0", &[128, 16][..]));
    assert_eq!(names[5], ("lstm.weight_ih_l1", &[128, 32][..]));
    assert_eq!(names[9], ("fc1.weight", &[65, 32][..]));
    let specs = matrix_specs(&arch).unwrap();
    assert_eq!(
        (specs[0].rows(), specs[0].cols(), specs[0].table),
        (16, 65, true)
    );
    assert_eq!((specs[1].rows(), specs[1].cols()), (128, 48));
    let net = Network::init_arch(&arch, 3).unwrap();
    assert_eq!(net.vocab(), Some(65));
    assert_eq!(net.ops()[0], Op::Embed { layer: 0 });
    assert_eq!(net.layers()[0].shape, [65, 16]);
    assert_eq!((net.layers()[0].outputs, net.layers()[0].inputs), (16, 65));
    // Named modules, and a ReLU between two Linears.
    let named: Arch = "tok10-emb=embed8-rnn=lstm8-proj=8-dec=10".parse().unwrap();
    let t = named.tensors().unwrap();
    assert_eq!(t[0].name, "emb.weight");
    assert_eq!(t.last().unwrap().name, "dec.bias");
    let net = Network::init_arch(&named, 0).unwrap();
    assert!(net.ops().contains(&Op::Relu));
}

#[test]
fn token_models_that_cannot_be_are_refused_by_name() {
    for (text, says) in [
        ("tok65-lstm32-65", "starts with its embedding"),
        ("28x28-embed16-lstm32-10", "first layer of a token model"),
        ("tok65-embed16-lstm32-10", "next token's logits are 65"),
        (
            "tok65-embed16-conv4k3-65",
            "embedding, LSTMs, Linears and ReLUs",
        ),
        (
            "tok65-embed16-flatten-65",
            "embedding, LSTMs, Linears and ReLUs",
        ),
        (
            "tok65-embed16-lstm32-embed8-65",
            "first layer of a token model",
        ),
        ("tok0-embed16-65", "vocabulary 0"),
        ("tok65-embed16k2-65", "unknown option"),
        ("tok65-embed16-lstm32", "next token's logits"),
    ] {
        let e = text.parse::<Arch>().unwrap_err().to_string();
        assert!(e.contains(says), "{text}: {e}");
    }
}

/// A token model's run equals its pieces run by hand: the embedding's column, the LSTM over
/// the sequence of those columns (the classifier's own recurrence), the Linear at every step;
/// and its checkpoint round-trips in PyTorch's layout (the table as `[V, E]`).
#[test]
fn a_token_model_runs_as_its_pieces_and_round_trips() {
    let arch: Arch = "tok7-embed5-lstm6-7".parse().unwrap();
    let net = Network::init_arch(&arch, 11).unwrap();
    let ids = [3u32, 0, 6, 6, 2];
    let logits = net.forward_tokens(&ids);
    assert_eq!(logits.len(), ids.len() * 7);
    let (embed, lstm, head) = (&net.layers()[0], &net.layers()[1], &net.layers()[2]);
    let x: Vec<f32> = ids
        .iter()
        .flat_map(|&id| (0..5).map(move |r| embed.weight[r * 7 + id as usize]))
        .collect();
    let h = reference::lstm(lstm, &x, ids.len(), 6);
    let by_hand: Vec<f32> = h
        .chunks(6)
        .flat_map(|h| reference::linear(head, h))
        .collect();
    assert_eq!(logits, by_hand);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lm.safetensors");
    net.write_safetensors(&path, &BTreeMap::new()).unwrap();
    let ck = Checkpoint::open(&path).unwrap();
    assert_eq!(ck.info("embed.weight").unwrap().shape, [7, 5]);
    let table = ck.read_f32("embed.weight").unwrap();
    // Row `id` of the table is the token's embedding.
    assert_eq!(&table[3 * 5..4 * 5], &x[..5]);
    let back = Network::from_arch_checkpoint(&ck, &arch).unwrap();
    assert_eq!(back.forward_tokens(&ids), logits);
}
