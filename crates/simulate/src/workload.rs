//! The paper's benchmark layers (Table III of the EIE paper, in shared/docs/eie-reference.md)
//! and seeded generators of random layers and activations.

use eie_format::{Codebook, SparseCodes};
use eie_rng::Rng;

/// One benchmark layer: shape and densities.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PaperLayer {
    /// Name in the paper.
    pub name: &'static str,
    /// Inputs (columns).
    pub inputs: usize,
    /// Outputs (rows).
    pub outputs: usize,
    /// Weight density after pruning.
    pub weight_density: f64,
    /// Density of the input activation vector.
    pub act_density: f64,
}

/// The paper's relative-index width, bits: what its layers are packed with.
pub const PAPER_INDEX_BITS: u8 = 4;

/// Table III: the nine layers, in the paper's order.
pub const PAPER_LAYERS: [PaperLayer; 9] = [
    PaperLayer {
        name: "Alex-6",
        inputs: 9216,
        outputs: 4096,
        weight_density: 0.09,
        act_density: 0.351,
    },
    PaperLayer {
        name: "Alex-7",
        inputs: 4096,
        outputs: 4096,
        weight_density: 0.09,
        act_density: 0.353,
    },
    PaperLayer {
        name: "Alex-8",
        inputs: 4096,
        outputs: 1000,
        weight_density: 0.25,
        act_density: 0.375,
    },
    PaperLayer {
        name: "VGG-6",
        inputs: 25088,
        outputs: 4096,
        weight_density: 0.04,
        act_density: 0.183,
    },
    PaperLayer {
        name: "VGG-7",
        inputs: 4096,
        outputs: 4096,
        weight_density: 0.04,
        act_density: 0.375,
    },
    PaperLayer {
        name: "VGG-8",
        inputs: 4096,
        outputs: 1000,
        weight_density: 0.23,
        act_density: 0.411,
    },
    PaperLayer {
        name: "NT-We",
        inputs: 4096,
        outputs: 600,
        weight_density: 0.10,
        act_density: 1.0,
    },
    PaperLayer {
        name: "NT-Wd",
        inputs: 600,
        outputs: 8791,
        weight_density: 0.11,
        act_density: 1.0,
    },
    PaperLayer {
        name: "NT-LSTM",
        inputs: 1201,
        outputs: 2400,
        weight_density: 0.10,
        act_density: 1.0,
    },
];

/// A random rows x cols layer with uniform random sparsity: every weight non-zero with
/// probability `density`, independently (positions drawn by geometric gaps, so the cost is
/// proportional to the non-zeros); codes uniform over 1..2^code_bits. The codebook's values
/// are equally spaced over [-1, 1] without zero.
pub fn random_layer(
    rows: usize,
    cols: usize,
    density: f64,
    code_bits: u8,
    seed: u64,
) -> (SparseCodes, Codebook) {
    let mut rng = Rng::new(seed);
    let n = (rows * cols) as u64;
    let max_code = (1u64 << code_bits) - 1;
    let (mut positions, mut codes) = (Vec::new(), Vec::new());
    if density > 0.0 {
        let log_q = (1.0 - density.min(1.0)).ln();
        let mut p = 0u64;
        loop {
            // Zeros before the next non-zero: geometric with success probability `density`.
            let gap = if density >= 1.0 {
                0
            } else {
                ((1.0 - rng.uniform()).ln() / log_q).floor() as u64
            };
            p = p.saturating_add(gap);
            if p >= n {
                break;
            }
            positions.push(p);
            codes.push((rng.below(max_code) + 1) as u8);
            p += 1;
        }
    }
    let values: Vec<f32> = (1..=max_code)
        .map(|c| -1.0 + 2.0 * c as f32 / (max_code + 1) as f32)
        .map(|v| {
            if v == 0.0 {
                1.0 / (max_code + 1) as f32
            } else {
                v
            }
        })
        .collect();
    let codes = SparseCodes::new(rows, cols, positions, codes)
        .expect("ascending positions inside the matrix");
    (
        codes,
        Codebook::new(code_bits, &values).expect("values in [-1, 1]"),
    )
}

/// An activation density must be a fraction in [0, 1].
pub fn check_act_density(density: f64) -> crate::Result<()> {
    if !(0.0..=1.0).contains(&density) {
        return Err(crate::Error::Parameter {
            what: "the activation density",
            expected: "in [0, 1]",
            got: density.to_string(),
        });
    }
    Ok(())
}

/// The fractional bits of generated activations: [`random_activations`] are values in
/// [-1, 1], so every 16-bit value with this many fractional bits is one of them.
pub const GENERATED_FRAC: u8 = 14;

/// Exactly round(density x len) non-zero activations at seeded random positions, each a
/// random non-zero 16-bit value in [-2^14, 2^14] (so [-1, 1] with [`GENERATED_FRAC`]
/// fractional bits).
pub fn random_activations(len: usize, density: f64, seed: u64) -> Vec<i16> {
    let mut rng = Rng::new(seed);
    let k = (density * len as f64).round() as usize;
    let mut a = vec![0i16; len];
    for j in rng.sample_indices(len, k) {
        let magnitude = rng.below(1 << GENERATED_FRAC) as i16 + 1;
        a[j] = if rng.below(2) == 0 {
            magnitude
        } else {
            -magnitude
        };
    }
    a
}

/// [`random_activations`] as the numbers they stand for: an input vector with no file or
/// dataset behind it.
pub fn random_vector(len: usize, density: f64, seed: u64) -> Vec<f32> {
    dequantize_generated(&random_activations(len, density, seed))
}

/// Generated activations ([`random_activations`]) as the numbers they stand for.
pub fn dequantize_generated(q: &[i16]) -> Vec<f32> {
    q.iter()
        .map(|&v| crate::fixed::from_q16(v, GENERATED_FRAC))
        .collect()
}

/// Seed offset of a paper layer's activations from its weights' seed.
const ACTIVATION_SEED: u64 = 1000;

/// Layer `index` of [`PAPER_LAYERS`] as every benchmark generates it from `seed`: its weights
/// with 4-bit codes (seeded `seed + index`) and its input activations at the paper's density
/// (seeded `seed + 1000 + index`). Each layer has seeds of its own, so layers can be made in
/// any order, or in parallel, with the same result.
pub fn paper_layer(index: usize, seed: u64) -> (SparseCodes, Codebook, Vec<i16>) {
    let spec = &PAPER_LAYERS[index];
    let (codes, codebook) = random_layer(
        spec.outputs,
        spec.inputs,
        spec.weight_density,
        4,
        seed + index as u64,
    );
    let input = random_activations(
        spec.inputs,
        spec.act_density,
        seed + ACTIVATION_SEED + index as u64,
    );
    (codes, codebook, input)
}
