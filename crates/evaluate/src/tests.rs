use eie_dataset::{Dataset, Form, SampleRange, Scaling, Spec, load};
use eie_rng::Rng;
use eie_simulate::{Arith, LayerView};
use proptest::prelude::*;

use crate::testkit::{pack, share_evenly};
use crate::*;

fn synthetic(range: SampleRange) -> Dataset {
    load(
        &Spec::Synthetic {
            seed: 0,
            form: Form::Plain,
        },
        range,
        &Scaling::default(),
    )
    .unwrap()
}

/// Deep Compression's worked example (the reference doc, section 4): grouped gradients and
/// one step at learning rate 1.
#[test]
fn deep_compression_worked_example() {
    let indices: [u8; 16] = [3, 0, 2, 1, 1, 1, 0, 3, 0, 3, 1, 0, 3, 1, 2, 2];
    let grads: [f32; 16] = [
        -0.03, -0.01, 0.03, 0.02, -0.01, 0.01, -0.02, 0.12, -0.01, 0.02, 0.04, 0.01, -0.07, -0.02,
        0.01, -0.02,
    ];
    let sums = grouped_gradients(&indices, &grads, 4);
    let expected_sums = [-0.03, 0.04, 0.02, 0.04]; // codes 0, 1, 2, 3
    for (s, e) in sums.iter().zip(expected_sums) {
        assert!((s - e).abs() < 1e-6, "{sums:?}");
    }
    let mut centroids = [-1.00f32, 0.00, 1.50, 2.00];
    centroid_step(&mut centroids, &sums, 1.0, 0);
    for (c, e) in centroids.iter().zip([-0.97f32, -0.04, 1.48, 1.96]) {
        assert!((c - e).abs() < 1e-6, "{centroids:?}");
    }
    // Holding code 0 (the pruned weight) at zero.
    let mut held = [0.0f32, 0.00, 1.50, 2.00];
    centroid_step(&mut held, &sums, 1.0, 1);
    assert_eq!(held[0], 0.0);
}

fn random_net(widths: &[usize], seed: u64, density: f64) -> Network {
    let mut net = Network::init(widths, seed).unwrap();
    let mut rng = Rng::new(seed ^ 99);
    for l in net.layers_mut() {
        for w in l.weight.iter_mut() {
            if rng.uniform() >= density {
                *w = 0.0;
            }
        }
    }
    net
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]
    /// burn's forward pass agrees with the host reference (f64 accumulation), and so do the
    /// predictions where the top two logits are not within rounding of each other.
    #[test]
    fn burn_forward_matches_the_host_reference(
        widths in prop::collection::vec(1usize..12, 2..5), seed: u64, n in 1usize..20,
    ) {
        let net = random_net(&widths, seed, 0.7);
        let mut rng = Rng::new(seed);
        let x: Vec<f32> = (0..n * widths[0]).map(|_| rng.uniform() as f32 * 2.0 - 0.5).collect();
        let classes = *widths.last().unwrap();
        let labels = (0..n).map(|i| (i % classes) as u32).collect();
        let data = Dataset::from_parts("t", 0, widths[0], None, x, labels);
        let predicted = predict(&net, &data).unwrap();
        for (i, &p) in predicted.iter().enumerate() {
            let logits = net.forward(data.input(i));
            let best = logits.iter().cloned().fold(f32::MIN, f32::max);
            prop_assert!((logits[p] - best).abs() <= 1e-5 * (1.0 + best.abs()),
                "sample {}: burn picks {} ({}), host max {}", i, p, logits[p], best);
        }
    }
}

#[test]
fn training_learns_and_is_reproducible() {
    let train_set = synthetic(SampleRange::new(0, 2000));
    let held = synthetic(SampleRange::new(8000, 9000));
    let cfg = TrainConfig {
        epochs: 6,
        ..Default::default()
    };
    let run = || {
        let mut net = Network::init(&[64, 32, 10], 5).unwrap();
        let mut seen = Vec::new();
        train(&mut net, &train_set, &cfg, Mode::Dense, &mut |s| {
            seen.push(s.epoch)
        })
        .unwrap();
        assert_eq!(seen, [1, 2, 3, 4, 5, 6]);
        net
    };
    let (a, b) = (run(), run());
    assert_eq!(a, b, "same seed, same data: the same bits");
    let acc = float_accuracy(&a, &held).unwrap();
    assert!(acc.top1() > 0.8, "held-out accuracy {}", acc.top1());
    assert_eq!(acc.total, 1000);
    assert_eq!(acc.per_class.iter().map(|c| c.total).sum::<u64>(), 1000);
    assert_eq!(
        acc.per_class.iter().map(|c| c.correct).sum::<u64>(),
        acc.correct
    );
}

#[test]
fn masked_fine_tuning_keeps_pruned_weights_exactly_zero() {
    let data = synthetic(SampleRange::new(0, 500));
    let mut net = random_net(&[64, 24, 10], 3, 0.3);
    let before = net.clone();
    let cfg = TrainConfig {
        epochs: 2,
        weight_decay: 1e-3,
        ..Default::default()
    };
    train(&mut net, &data, &cfg, Mode::Masked, &mut |_| {}).unwrap();
    let mut changed = 0;
    for (a, b) in before.layers().iter().zip(net.layers()) {
        for (&w0, &w1) in a.weight.iter().zip(&b.weight) {
            if w0 == 0.0 {
                assert_eq!(w1.to_bits(), 0.0f32.to_bits(), "a pruned weight moved");
            } else if w0 != w1 {
                changed += 1;
            }
        }
    }
    assert!(changed > 100, "only {changed} surviving weights trained");
    // Dense training, by contrast, moves the zeros.
    let mut dense = before.clone();
    train(&mut dense, &data, &cfg, Mode::Dense, &mut |_| {}).unwrap();
    assert!(dense.density() > 0.99);
}

/// Held mode (incremental weight sharing): held weights and held biases keep their bits,
/// pruned weights stay zero, the other weights train.
#[test]
fn held_weights_and_biases_keep_their_values() {
    let data = synthetic(SampleRange::new(0, 500));
    let mut net = random_net(&[64, 24, 10], 3, 0.3);
    let before = net.clone();
    let held: Vec<Held> = net
        .layers()
        .iter()
        .enumerate()
        .map(|(i, l)| Held {
            weights: (0..l.weight.len()).map(|j| j % 3 == 0).collect(),
            bias: i == 0,
        })
        .collect();
    let cfg = TrainConfig {
        epochs: 2,
        weight_decay: 1e-3,
        ..Default::default()
    };
    train(&mut net, &data, &cfg, Mode::Held(&held), &mut |_| {}).unwrap();
    let mut changed = 0;
    for ((a, b), h) in before.layers().iter().zip(net.layers()).zip(&held) {
        for (j, (&w0, &w1)) in a.weight.iter().zip(&b.weight).enumerate() {
            if w0 == 0.0 || h.weights[j] {
                assert_eq!(w1.to_bits(), w0.to_bits(), "{} weight {j} moved", a.name);
            } else if w0 != w1 {
                changed += 1;
            }
        }
        let (b0, b1) = (a.bias.as_ref().unwrap(), b.bias.as_ref().unwrap());
        if h.bias {
            assert_eq!(b0, b1, "{}: a held bias moved", a.name);
        } else {
            assert_ne!(b0, b1, "{}: a free bias did not train", a.name);
        }
    }
    assert!(changed > 100, "only {changed} free weights trained");
    // One flag per weight, one entry per layer.
    let short = vec![Held {
        weights: vec![false; 3],
        bias: false,
    }];
    let e = train(&mut net, &data, &cfg, Mode::Held(&short), &mut |_| {}).unwrap_err();
    assert!(e.to_string().contains("held layers"), "{e}");
}

/// Host cross-entropy (mean over samples) of `net` on `data`, in f64.
fn host_loss(net: &Network, data: &Dataset) -> f64 {
    let mut total = 0.0;
    for i in 0..data.len() {
        let z: Vec<f64> = net
            .forward(data.input(i))
            .iter()
            .map(|&v| v as f64)
            .collect();
        let m = z.iter().cloned().fold(f64::MIN, f64::max);
        let lse = m + z.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
        total += lse - z[data.labels()[i] as usize];
    }
    total / data.len() as f64
}

/// The grouped gradient that one fine-tuning step applies equals the derivative of the loss
/// with respect to each shared value, by central differences, folded bias included.
#[test]
fn centroid_gradients_match_finite_differences() {
    let data = synthetic(SampleRange::new(0, 32));
    let mut net = random_net(&[64, 16, 10], 11, 0.5);
    let mut rng = Rng::new(4);
    let mut shared: Vec<SharedLayer> = net
        .layers()
        .iter()
        .map(|l| {
            let values: Vec<f32> = std::iter::once(0.0)
                .chain((1..8).map(|c| (c as f32 - 4.5) * 0.12))
                .collect();
            let codes = l
                .weight
                .iter()
                .map(|&w| if w == 0.0 { 0 } else { 1 + rng.below(7) as u8 })
                .collect();
            let bias_codes = Some((0..l.outputs).map(|_| rng.below(8) as u8).collect());
            SharedLayer {
                codes,
                bias_codes,
                values,
            }
        })
        .collect();
    apply_shared(&mut net, &shared).unwrap();
    let before = shared.clone();
    // Large enough that one step is many f32 steps of each value, small enough to be linear.
    let lr = 1e-2;
    let cfg = CentroidConfig {
        epochs: 1,
        batch_size: 32, // one step over the whole set
        lr,
        seed: 0,
    };
    let mut probe = net.clone();
    fine_tune_centroids(&mut net, &mut shared, &data, &cfg, &mut |_| {}).unwrap();
    for (k, (b, a)) in before.iter().zip(&shared).enumerate() {
        assert_eq!(a.values[0], 0.0);
        for c in 1..b.values.len() {
            let step = (b.values[c] - a.values[c]) as f64 / lr;
            let h = 1e-3f32;
            let mut at = |v: f32| {
                let mut s = before.clone();
                s[k].values[c] = v;
                apply_shared(&mut probe, &s).unwrap();
                host_loss(&probe, &data)
            };
            let fd = (at(b.values[c] + h) - at(b.values[c] - h)) / (2.0 * h as f64);
            assert!(
                (step - fd).abs() < 2e-2 * fd.abs().max(0.05),
                "layer {k} code {c}: step/lr {step}, finite difference {fd}"
            );
        }
    }
    // The network now holds the fine-tuned values.
    let mut expected = net.clone();
    apply_shared(&mut expected, &shared).unwrap();
    assert_eq!(expected, net);
}

#[test]
fn bad_datasets_and_networks_are_named() {
    let net = Network::init(&[64, 8, 3], 0).unwrap();
    let wide = Dataset::from_parts("wide", 0, 65, None, vec![0.0; 65], vec![0]);
    let e = float_accuracy(&net, &wide).unwrap_err().to_string();
    assert!(
        e.contains("65 inputs") && e.contains("\"fc1.weight\" takes 64"),
        "{e}"
    );
    let data = synthetic(SampleRange::new(0, 50)); // labels up to 9, the network has 3 outputs
    let e = float_accuracy(&net, &data).unwrap_err().to_string();
    assert!(
        e.contains("outside the 3 outputs") && e.contains("fc2.weight"),
        "{e}"
    );

    let mut layers = Network::init(&[4, 5, 3], 0).unwrap().layers().to_vec();
    layers[1].inputs = 6;
    layers[1].weight = vec![0.0; 18];
    layers[1].shape = vec![3, 6];
    let e = Network::new(layers).unwrap_err().to_string();
    assert!(
        e.contains("\"fc1.weight\" and \"fc2.weight\" do not chain") && e.contains("takes 6"),
        "{e}"
    );
    for bad in ["784", "784-x-10", "784-0-10", ""] {
        assert!(bad.parse::<Arch>().is_err(), "{bad}");
    }
    let mlp: Arch = "784-300-100-10".parse().unwrap();
    assert_eq!(mlp.mlp_widths().unwrap(), [784, 300, 100, 10]);
    let cfg = TrainConfig {
        lr: 0.0,
        ..Default::default()
    };
    let mut n = net.clone();
    let e = train(&mut n, &data, &cfg, Mode::Dense, &mut |_| {}).unwrap_err();
    assert!(e.to_string().contains("learning rate"), "{e}");
}

/// The bit-exact model classifies like the float model of the same shared weights, up to
/// the few samples whose top logits fixed point rounds into a different order.
#[test]
fn the_bit_exact_model_tracks_the_float_model() {
    let train_set = synthetic(SampleRange::new(0, 2000));
    let held = synthetic(SampleRange::new(8000, 9000));
    let mut net = Network::init(&[64, 32, 10], 2).unwrap();
    let cfg = TrainConfig {
        epochs: 3,
        ..Default::default()
    };
    train(&mut net, &train_set, &cfg, Mode::Dense, &mut |_| {}).unwrap();
    // Share every layer's weights and bias on 15 evenly spaced values.
    let shared = share_evenly(&net, 1.0);
    let mut quantized = net.clone();
    apply_shared(&mut quantized, &shared).unwrap();
    let float = float_accuracy(&quantized, &held).unwrap();
    let layers = pack(&quantized, &shared, 4);
    let views: Vec<LayerView> = layers
        .iter()
        .map(std::slice::from_ref)
        .map(LayerView::new)
        .collect();
    let inputs: Vec<Vec<f32>> = (0..held.len()).map(|i| held.input(i).to_vec()).collect();
    let fracs = eie_simulate::float::calibrate(&views, &inputs, false);
    let eie = eie_accuracy(&views, &held, &fracs, Arith::default()).unwrap();
    assert!(float.top1() > 0.7, "{}", float.top1());
    let diff = (eie.correct as i64 - float.correct as i64).abs();
    assert!(
        diff <= 5,
        "float {} vs bit-exact {} correct",
        float.correct,
        eie.correct
    );
    // A dataset of the wrong width is refused by name.
    let wide = Dataset::from_parts("wide", 0, 65, None, vec![0.0; 65], vec![0]);
    let e = eie_accuracy(&views, &wide, &fracs, Arith::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("65 inputs") && e.contains("fc1.weight"), "{e}");
}

/// A random small CNN or LSTM description and a sample shape for it.
fn arch_strategy() -> impl Strategy<Value = String> {
    let cnn = (
        1usize..3,
        5usize..10,
        1usize..4,
        1usize..4,
        1usize..3,
        0usize..2,
        0usize..3,
    )
        .prop_map(|(c, side, o, k, s, p, pool)| {
            let pool = match pool {
                0 => String::new(),
                1 => "-relu-maxpool2s1".into(),
                _ => "-avgpool2".into(),
            };
            format!("{c}x{side}x{side}-conv{o}k{k}s{s}p{p}{pool}-6-3")
        });
    let lstm = (1usize..6, 1usize..5, 1usize..6, 1usize..3)
        .prop_map(|(t, f, h, l)| format!("{t}x{f}-lstm{h}x{l}-3"));
    prop_oneof![cnn, lstm]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    /// burn's batched model of any description computes the host reference's logits (f64
    /// sums, one sample at a time) to within f32 rounding.
    #[test]
    fn burn_matches_the_reference_on_cnns_and_lstms(text in arch_strategy(), seed: u64) {
        let arch: Arch = text.parse().unwrap();
        let net = Network::init_arch(&arch, seed).unwrap();
        let n = 5;
        let w = net.inputs();
        let mut rng = Rng::new(seed);
        let x: Vec<f32> = (0..n * w).map(|_| rng.uniform() as f32 * 2.0 - 1.0).collect();
        let data = Dataset::from_parts("t", 0, w, None, x, vec![0; n])
            .with_shape(net.input().dims(), Form::Plain);
        let got = logits(&net, &data).unwrap();
        for i in 0..n {
            let want = net.forward(data.input(i));
            for (g, e) in got[i * 3..(i + 1) * 3].iter().zip(&want) {
                prop_assert!((g - e).abs() <= 1e-5 * (1.0 + e.abs()), "{}: sample {}: {:?} vs {:?}", text, i, &got[i * 3..(i + 1) * 3], want);
            }
        }
    }
}

fn shaped(form: Form, range: SampleRange) -> Dataset {
    load(
        &Spec::Synthetic { seed: 0, form },
        range,
        &Scaling::default(),
    )
    .unwrap()
}

/// A CNN and an LSTM learn the synthetic set in its image and sequence forms, the same bits
/// every run; masked fine-tuning keeps their pruned conv, LSTM and linear weights exactly
/// zero; centroid fine-tuning moves shared values and nothing else.
#[test]
fn cnns_and_lstms_train_mask_and_share() {
    for (text, form, floor) in [
        ("1x8x8-conv8k3-relu-maxpool2-10", Form::Image, 0.6),
        ("8x8-lstm24-10", Form::Sequence, 0.5),
    ] {
        let arch: Arch = text.parse().unwrap();
        let train_set = shaped(form, SampleRange::new(0, 2000));
        let held = shaped(form, SampleRange::new(8000, 9000));
        let cfg = TrainConfig {
            epochs: 8,
            lr: 1e-2,
            ..Default::default()
        };
        let run = || {
            let mut net = Network::init_arch(&arch, 3).unwrap();
            train(&mut net, &train_set, &cfg, Mode::Dense, &mut |_| {}).unwrap();
            net
        };
        let (a, b) = (run(), run());
        assert_eq!(a, b, "{text}: same seed, same data: the same bits");
        let top1 = float_accuracy(&a, &held).unwrap().top1();
        assert!(top1 > floor, "{text}: held-out top-1 {top1}");

        // Prune two in three of every matrix, then fine-tune with the mask.
        let mut net = a.clone();
        for l in net.layers_mut() {
            for (i, w) in l.weight.iter_mut().enumerate() {
                if i % 3 != 0 {
                    *w = 0.0;
                }
            }
        }
        let pruned = net.clone();
        let masked = TrainConfig {
            epochs: 1,
            ..cfg.clone()
        };
        train(&mut net, &train_set, &masked, Mode::Masked, &mut |_| {}).unwrap();
        let mut moved = 0;
        for (p, t) in pruned.layers().iter().zip(net.layers()) {
            for (&w0, &w1) in p.weight.iter().zip(&t.weight) {
                if w0 == 0.0 {
                    assert_eq!(w1.to_bits(), 0, "{text}: {}: a pruned weight moved", t.name);
                } else if w0 != w1 {
                    moved += 1;
                }
            }
        }
        assert!(moved > 0, "{text}: masked fine-tuning changed nothing");

        // Share: each layer's kept weights as 3 values by sign and size; fine-tune them.
        let mut shared: Vec<SharedLayer> = net
            .layers()
            .iter()
            .map(|l| {
                let codes = l
                    .weight
                    .iter()
                    .map(|&w| match w {
                        0.0 => 0,
                        w if w < 0.0 => 1,
                        w if w < 0.1 => 2,
                        _ => 3,
                    })
                    .collect();
                SharedLayer {
                    codes,
                    bias_codes: None,
                    values: vec![0.0, -0.1, 0.05, 0.2],
                }
            })
            .collect();
        let before = shared.clone();
        let cc = CentroidConfig {
            epochs: 1,
            batch_size: 64,
            lr: 1e-3,
            seed: 0,
        };
        fine_tune_centroids(&mut net, &mut shared, &train_set, &cc, &mut |_| {}).unwrap();
        for ((s, b), l) in shared.iter().zip(&before).zip(net.layers()) {
            assert_eq!(s.codes, b.codes);
            assert_eq!(s.values[0], 0.0);
            assert_ne!(s.values, b.values, "{text}: {}: no value moved", l.name);
            for (&w, &c) in l.weight.iter().zip(&s.codes) {
                assert_eq!(w, s.values[c as usize], "{text}: {}", l.name);
            }
        }
    }
}
