//! Evaluation speed: 2000 images of 784 inputs through the bit-exact EIE model of a
//! LeNet-300-100 pruned to 8% and weight-shared (4-bit), packed for 64 PEs, against the
//! baseline of the same network's float forward pass in burn (dense), measured in the same
//! run. The target (docs/results.md): the bit-exact evaluation of 2000 images under 2 s.
//!
//! Inputs are the MNIST held-out split (8000..10000) when ../shared/data/mnist is there,
//! otherwise random images with MNIST's sparsity (19% non-zero pixels). Best of 5 runs.

use std::path::Path;
use std::time::Duration;

use eie_dataset::{Dataset, SampleRange, Scaling, Spec, load};
use eie_evaluate::{Network, SharedLayer, apply_shared, eie_accuracy, float_accuracy};
use eie_simulate::{Arith, LayerView, float};

const RUNS: usize = 5;

fn images() -> Dataset {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/mnist");
    if dir.join("t10k-images-idx3-ubyte.gz").is_file() {
        let spec = Spec::Mnist { dir, split: None };
        return load(&spec, SampleRange::new(8000, 10000), &Scaling::default()).unwrap();
    }
    eprintln!("../shared/data/mnist not found: random images with MNIST's sparsity instead");
    common::sparse_images(2000)
}

mod common;

#[path = "../src/testkit.rs"]
mod testkit;

/// LeNet-300-100 with random weights, each layer's 8% largest kept, shared on 15 values.
fn lenet() -> (Network, Vec<SharedLayer>) {
    let mut net = Network::init(&[784, 300, 100, 10], 3).unwrap();
    let shared = testkit::share_evenly(&net, 0.08);
    apply_shared(&mut net, &shared).unwrap();
    (net, shared)
}

fn best(f: impl FnMut()) -> Duration {
    common::best(RUNS, f)
}

fn main() {
    let data = images();
    let (net, shared) = lenet();
    let layers = testkit::pack(&net, &shared, 64);
    let views: Vec<LayerView> = layers
        .iter()
        .map(std::slice::from_ref)
        .map(LayerView::new)
        .collect();
    let inputs: Vec<Vec<f32>> = (0..data.len()).map(|i| data.input(i).to_vec()).collect();
    let fracs = float::calibrate(&views, &inputs, false);
    let arith = Arith::default();
    let threads = rayon::current_num_threads();

    let eie = best(|| {
        eie_accuracy(&views, &data, &fracs, arith).unwrap();
    });
    let eie_one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap()
        .install(|| {
            best(|| {
                eie_accuracy(&views, &data, &fracs, arith).unwrap();
            })
        });
    let burn = best(|| {
        float_accuracy(&net, &data).unwrap();
    });
    let s = |d: Duration| d.as_secs_f64();
    println!(
        "eval of {} images ({}), LeNet-300-100 at 8% on 64 PEs, best of {RUNS}:",
        data.len(),
        data.name()
    );
    println!(
        "  bit-exact EIE model, {threads} threads: {:.3} s ({:.0} images/s) target < 2 s: {}",
        s(eie),
        data.len() as f64 / s(eie),
        if s(eie) < 2.0 { "met" } else { "NOT met" }
    );
    println!("  bit-exact EIE model, 1 thread:  {:.3} s", s(eie_one));
    println!("  baseline, float dense in burn:  {:.3} s", s(burn));
    println!(
        "  ratio bit-exact / float baseline: {:.2} ({threads} threads), {:.2} (1 thread)",
        s(eie) / s(burn),
        s(eie_one) / s(burn)
    );
}
