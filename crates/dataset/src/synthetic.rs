//! The built-in synthetic dataset: so that the demo and the tests need nothing outside the
//! repository. Ten classes of 8 x 8 "images" in [0, 1]; each class has three prototypes
//! (sparse patterns of bright pixels), and a sample is one of its class's prototypes at a
//! random gain, with noise, clipped to [0, 1]. Classes overlap enough that a small MLP
//! scores in the 90s, not 100%, so compression's cost is visible.
//!
//! Every sample is a pure function of (seed, index): any range of it is the same samples in
//! any run, on any machine (only IEEE additions and multiplications, no libm calls).

use eie_rng::Rng;

use crate::error::Result;
use crate::{Form, Raw, SampleRange};

/// Samples in the synthetic dataset (indices 0..10000, like the MNIST test set, so the same
/// split applies: 0..8000 to train, 8000..10000 held out).
pub const SYNTHETIC_SAMPLES: usize = 10_000;
/// Inputs per sample (8 x 8).
pub const SYNTHETIC_WIDTH: usize = 64;
/// Classes.
pub const SYNTHETIC_CLASSES: usize = 10;
const PROTOTYPES: usize = 3;
/// Fraction of a prototype's pixels that are lit.
const LIT: f64 = 0.3;
/// Standard deviation of the additive noise.
const NOISE: f64 = 0.4;

/// Stream constants that separate the prototypes' generator from the samples'.
const PROTOTYPE_STREAM: u64 = 0x7072_6f74_6f74_7970;
const SAMPLE_STREAM: u64 = 0x9e37_79b9_7f4a_7c15;

fn prototypes(seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed ^ PROTOTYPE_STREAM);
    (0..SYNTHETIC_CLASSES * PROTOTYPES * SYNTHETIC_WIDTH)
        .map(|_| {
            if rng.uniform() < LIT {
                (0.5 + 0.5 * rng.uniform()) as f32
            } else {
                0.0
            }
        })
        .collect()
}

/// Approximately normal noise: a centred sum of four uniforms, scaled to unit variance.
fn noise(rng: &mut Rng) -> f64 {
    let s: f64 = (0..4).map(|_| rng.uniform()).sum();
    (s - 2.0) * 3f64.sqrt()
}

fn sample_with(protos: &[f32], seed: u64, index: usize, out: &mut Vec<f32>) -> u32 {
    let mut rng = Rng::new(seed.wrapping_mul(SAMPLE_STREAM) ^ (index as u64).wrapping_add(1));
    let label = rng.below(SYNTHETIC_CLASSES as u64) as usize;
    let proto = label * PROTOTYPES + rng.below(PROTOTYPES as u64) as usize;
    let gain = 0.6 + 0.6 * rng.uniform();
    let p = &protos[proto * SYNTHETIC_WIDTH..(proto + 1) * SYNTHETIC_WIDTH];
    for &v in p {
        let x = v as f64 * gain + NOISE * noise(&mut rng);
        out.push(x.clamp(0.0, 1.0) as f32);
    }
    label as u32
}

/// Sample `index` of the synthetic dataset with `seed`: its 64 inputs and its label.
pub fn synthetic_sample(seed: u64, index: usize) -> (Vec<f32>, u32) {
    let mut x = Vec::with_capacity(SYNTHETIC_WIDTH);
    let label = sample_with(&prototypes(seed), seed, index, &mut x);
    (x, label)
}

/// Height and width of a sample as an image (and steps and features as a sequence).
const SIDE: usize = 8;

pub(crate) fn load(seed: u64, form: Form, range: SampleRange, name: &str) -> Result<Raw> {
    let r = range.resolve(SYNTHETIC_SAMPLES, name)?;
    let protos = prototypes(seed);
    let mut inputs = Vec::with_capacity(r.len() * SYNTHETIC_WIDTH);
    let labels = r
        .clone()
        .map(|i| sample_with(&protos, seed, i, &mut inputs))
        .collect();
    Ok(Raw {
        total: SYNTHETIC_SAMPLES,
        width: SYNTHETIC_WIDTH,
        shape: match form {
            Form::Plain => vec![SYNTHETIC_WIDTH],
            Form::Image => vec![1, SIDE, SIDE],
            Form::Sequence => vec![SIDE, SIDE],
        },
        form,
        integer_max: None,
        classes: Some(SYNTHETIC_CLASSES),
        inputs,
        labels,
    })
}
