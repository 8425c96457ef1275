//! The paper's savings breakdown (Section VI-B) on the user's own layers: what fetching each
//! weight costs, step by step from dense f32 weights in DRAM to EIE's compressed, activation-
//! skipping format, each step's factor computed from the layer's own figures; beside it the
//! energy the access-count model gives for the whole run.

use serde::Serialize;

use crate::counts::Facts;
use crate::model::Energy;
use crate::table::{Key, Table};

/// One step of the breakdown.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    /// What changed.
    pub name: &'static str,
    /// Weight-fetch energy after this step, pJ per inference.
    pub energy_pj: f64,
    /// Energy before it over energy after it (1 for the first step).
    pub factor: f64,
}

/// The breakdown of a layer or a model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Savings {
    /// The steps, in order: dense f32 weights from DRAM, from SRAM, pruned, weight-shared (the
    /// paper's accounting), zero activations skipped.
    pub steps: Vec<Step>,
    /// The product of the factors (the first step's energy over the last's).
    pub product: f64,
    /// The same chain with weight sharing as it really stores (relative indices, pointers
    /// and codebook, not bare codes): its factor, and the product with it in place of the
    /// paper's.
    pub shared_real_factor: f64,
    /// The product with the real weight-sharing factor.
    pub product_real: f64,
    /// The energy the access-count model computes for the run, pJ.
    pub model_pj: f64,
    /// Dense f32 weights from DRAM over the model's energy: the saving the run actually has.
    pub actual: f64,
}

/// Names of the steps, in order.
pub const STEPS: [&str; 5] = [
    "dense f32 weights from DRAM",
    "from SRAM instead",
    "pruned (entries stored, padding included)",
    "weight-shared (32-bit weights to B-bit codes)",
    "zero activations skipped",
];

/// The breakdown of `facts` (summed over a model's layers, or one layer's), whose run cost
/// `energy`, at the energies of `table`.
pub fn savings(facts: &Facts, energy: &Energy, table: &Table) -> Savings {
    let sram = table.get(Key::Sram32);
    let dram = table.get(Key::Dram32);
    let dense = facts.dense_weights as f64;
    let entries = facts.entries as f64;
    let active = if facts.cols > 0 {
        facts.broadcast_cols as f64 / facts.cols as f64
    } else {
        1.0
    };
    let shared = entries * sram * facts.code_bits as f64 / 32.0;
    let energies = [
        dense * dram,
        dense * sram,
        entries * sram,
        shared,
        shared * active,
    ];
    let steps: Vec<Step> = STEPS
        .iter()
        .zip(energies)
        .enumerate()
        .map(|(i, (&name, e))| Step {
            name,
            energy_pj: e,
            factor: if i == 0 {
                1.0
            } else {
                ratio(energies[i - 1], e)
            },
        })
        .collect();
    let product: f64 = steps.iter().map(|s| s.factor).product();
    let shared_real_factor = ratio(entries * 32.0, facts.image_bits as f64);
    let paper_shared = steps[3].factor;
    let model_pj = energy.total_pj();
    Savings {
        product,
        shared_real_factor,
        product_real: ratio(product * shared_real_factor, paper_shared),
        actual: ratio(energies[0], model_pj),
        model_pj,
        steps,
    }
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 0.0 }
}

/// The facts of several layers as one model.
pub fn sum_facts(layers: &[Facts]) -> Facts {
    let mut out = Facts::default();
    for f in layers {
        out.dense_weights += f.dense_weights;
        out.entries += f.entries;
        out.image_bits += f.image_bits;
        out.cols += f.cols;
        out.broadcast_cols += f.broadcast_cols;
    }
    // The code width of the model: its layers' entries weigh it.
    let weighted: f64 = layers
        .iter()
        .map(|f| f.code_bits as f64 * f.entries as f64)
        .sum();
    out.code_bits = if out.entries > 0 {
        (weighted / out.entries as f64).round() as u8
    } else {
        layers.first().map_or(4, |f| f.code_bits)
    };
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> Facts {
        Facts {
            dense_weights: 1000,
            entries: 110,
            code_bits: 4,
            image_bits: 110 * 8 + 9 * 16 * 4 + 16 * 16,
            cols: 10,
            broadcast_cols: 4,
        }
    }

    #[test]
    fn the_factors_multiply_to_the_product() {
        let t = Table::paper();
        let e = Energy {
            parts: [1.0; 13],
            cycles: 10.0,
            time_us: 1.0,
            macs: 100.0,
        };
        let s = savings(&facts(), &e, &t);
        let product: f64 = s.steps.iter().map(|s| s.factor).product();
        assert!((product - s.product).abs() < 1e-9 * product);
        assert!((s.product - s.steps[0].energy_pj / s.steps[4].energy_pj).abs() < 1e-6);
        assert!(
            (s.steps[1].factor - 128.0).abs() < 1e-12,
            "DRAM over SRAM, Table I"
        );
        assert!((s.steps[2].factor - 1000.0 / 110.0).abs() < 1e-12);
        assert!((s.steps[3].factor - 8.0).abs() < 1e-12);
        assert!((s.steps[4].factor - 2.5).abs() < 1e-12);
        assert!((s.shared_real_factor - 110.0 * 32.0 / facts().image_bits as f64).abs() < 1e-12);
        assert!((s.product_real - s.product / 8.0 * s.shared_real_factor).abs() < 1e-9);
        assert!((s.actual - 1000.0 * 640.0 / 13.0).abs() < 1e-9);
    }

    #[test]
    fn a_model_sums_its_layers() {
        let mut b = facts();
        b.code_bits = 2;
        b.entries = 330;
        let m = sum_facts(&[facts(), b]);
        assert_eq!((m.dense_weights, m.entries, m.cols), (2000, 440, 20));
        // (4 x 110 + 2 x 330) / 440 = 2.5, rounded to 3.
        assert_eq!(m.code_bits, 3);
    }
}
