//! Training speed: one epoch of Adam on 2000 MNIST-sized samples (28 x 28) for each network
//! docs/results.md trains (LeNet-5, the LSTM), in images per second, against the baseline of
//! LeNet-300-100's epoch on the same samples measured in the same run. Masked fine-tuning
//! (the mask applied every step) and centroid fine-tuning (the grouped gradients) are timed
//! for LeNet-5 too.
//!
//! Inputs are random images with MNIST's sparsity (19% non-zero pixels): the speed does not
//! depend on the values. Best of 3 runs.

use std::time::Duration;

use eie_evaluate::{
    Arch, CentroidConfig, Mode, Network, SharedLayer, TrainConfig, fine_tune_centroids, train,
};

const RUNS: usize = 3;
const SAMPLES: usize = 2000;

mod common;

fn main() {
    let data = common::sparse_images(SAMPLES);
    let cfg = TrainConfig {
        epochs: 1,
        ..Default::default()
    };
    let epoch = |arch: &str, mode: Mode| {
        let net = Network::init_arch(&arch.parse::<Arch>().unwrap(), 1).unwrap();
        common::best(RUNS, || {
            let mut n = net.clone();
            if mode == Mode::Masked {
                for l in n.layers_mut() {
                    l.weight.iter_mut().step_by(2).for_each(|w| *w = 0.0);
                }
            }
            train(&mut n, &data, &cfg, mode, &mut |_| {}).unwrap();
        })
    };
    let rate = |d: Duration| SAMPLES as f64 / d.as_secs_f64();
    let base = epoch("784-300-100-10", Mode::Dense);
    println!(
        "training speed, one epoch of {SAMPLES} images (batch {}), best of {RUNS}; baseline LeNet-300-100",
        cfg.batch_size
    );
    println!(
        "{:<44} {:>10} {:>10} {:>12}",
        "network", "s/epoch", "images/s", "x baseline"
    );
    let row = |name: &str, d: Duration| {
        println!(
            "{name:<44} {:>10.3} {:>10.0} {:>12.3}",
            d.as_secs_f64(),
            rate(d),
            base.as_secs_f64() / d.as_secs_f64()
        )
    };
    row("LeNet-300-100 (784-300-100-10)", base);
    let lenet5 = "1x28x28-conv20k5-maxpool2-conv50k5-maxpool2-500-10";
    row("LeNet-5", epoch(lenet5, Mode::Dense));
    row("LeNet-5, masked fine-tuning", epoch(lenet5, Mode::Masked));
    row(
        "LSTM 128 (28x28-lstm128-10)",
        epoch("28x28-lstm128-10", Mode::Dense),
    );

    // Centroid fine-tuning of LeNet-5: every weight's code fixed (3 values by sign and size).
    let net = Network::init_arch(&lenet5.parse::<Arch>().unwrap(), 1).unwrap();
    let shared: Vec<SharedLayer> = net
        .layers()
        .iter()
        .map(|l| SharedLayer {
            codes: l
                .weight
                .iter()
                .map(|&w| if w < 0.0 { 1 } else { 2 })
                .collect(),
            bias_codes: None,
            values: vec![0.0, -0.05, 0.05],
        })
        .collect();
    let cc = CentroidConfig {
        epochs: 1,
        batch_size: cfg.batch_size,
        lr: 1e-3,
        seed: 0,
    };
    let centroid = common::best(RUNS, || {
        let (mut n, mut s) = (net.clone(), shared.clone());
        fine_tune_centroids(&mut n, &mut s, &data, &cc, &mut |_| {}).unwrap();
    });
    row("LeNet-5, centroid fine-tuning", centroid);
}
