//! What the evaluate benchmarks share: random MNIST-sized images and the best of runs.

use std::time::{Duration, Instant};

use eie_dataset::{Dataset, Form};
use eie_rng::Rng;

/// `n` random 28 x 28 images with MNIST's sparsity (19% non-zero pixels), labels 0..9 in turn.
pub fn sparse_images(n: usize) -> Dataset {
    let mut rng = Rng::new(7);
    let x = (0..n * 784)
        .map(|_| {
            if rng.uniform() < 0.19 {
                rng.uniform() as f32
            } else {
                0.0
            }
        })
        .collect();
    let y = (0..n).map(|i| (i % 10) as u32).collect();
    Dataset::from_parts("random", 0, 784, Some(10), x, y).with_shape(vec![28, 28], Form::Plain)
}

/// The shortest of `runs` runs of `f`.
pub fn best(runs: usize, mut f: impl FnMut()) -> Duration {
    (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .unwrap()
}
