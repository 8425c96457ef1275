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
pub struct SavingsStep {
    /// What changed.
    pub name: &'static str,
    /// Weight-fetch energy after this step, pJ per inference.
    pub energy_pj: f64,
    /// Energy before it over energy after it (1 for the first step; 0 when the step leaves
    /// nothing to fetch).
    pub factor: f64,
}

/// The breakdown of a layer or a model, per inference.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Savings {
    /// The steps, in order: dense f32 weights from DRAM, from SRAM, pruned, weight-shared (the
    /// paper's accounting), zero activations skipped.
    pub steps: Vec<SavingsStep>,
    /// The product of the factors (the first step's energy over the last's).
    pub product: f64,
    /// Weight sharing as it really stores (codes and relative indices, pointers, codebook,
    /// not bare codes): the weight-fetch energy of the images' bits, pJ per inference ...
    pub shared_real_pj: f64,
    /// ... and of those of the broadcast columns.
    pub skipped_real_pj: f64,
    /// The pruned step's energy over `shared_real_pj`: the real weight-sharing factor.
    pub shared_real_factor: f64,
    /// The first step's energy over `skipped_real_pj`: the product with the real factor.
    pub product_real: f64,
    /// The energy the access-count model computes for the run, pJ per inference.
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

/// The breakdown of `facts` (one layer's, of one run or of several), whose run cost `energy`,
/// at the energies of `table`; every energy divided by `runs`, the inferences the facts and
/// the energy cover.
pub fn savings(facts: &Facts, energy: &Energy, table: &Table, runs: u64) -> Savings {
    let sram = table.get(Key::Sram32);
    let dram = table.get(Key::Dram32);
    let per = 1.0 / runs.max(1) as f64;
    let dense = facts.dense_weights as f64 * per;
    let entries = facts.entries as f64 * per;
    let active = if facts.cols > 0 {
        facts.broadcast_cols as f64 / facts.cols as f64
    } else {
        1.0
    };
    let shared = entries * sram * facts.code_bits as f64 / 32.0;
    let shared_real = facts.image_bits as f64 * per / 32.0 * sram;
    from_energies(
        [
            dense * dram,
            dense * sram,
            entries * sram,
            shared,
            shared * active,
        ],
        [shared_real, shared_real * active],
        energy.total_pj() * per,
    )
}

/// The breakdown of several layers run one after the other: each step's energy the sum of
/// theirs, the factors those sums' ratios.
pub fn combine(layers: &[Savings]) -> Savings {
    let mut steps = [0.0; 5];
    let mut real = [0.0; 2];
    let mut model = 0.0;
    for s in layers {
        for (sum, step) in steps.iter_mut().zip(&s.steps) {
            *sum += step.energy_pj;
        }
        real[0] += s.shared_real_pj;
        real[1] += s.skipped_real_pj;
        model += s.model_pj;
    }
    from_energies(steps, real, model)
}

fn from_energies(energies: [f64; 5], real: [f64; 2], model_pj: f64) -> Savings {
    let steps: Vec<SavingsStep> = STEPS
        .iter()
        .zip(energies)
        .enumerate()
        .map(|(i, (&name, e))| SavingsStep {
            name,
            energy_pj: e,
            factor: if i == 0 {
                1.0
            } else {
                ratio(energies[i - 1], e)
            },
        })
        .collect();
    Savings {
        product: ratio(energies[0], energies[4]),
        shared_real_pj: real[0],
        skipped_real_pj: real[1],
        shared_real_factor: ratio(energies[2], real[0]),
        product_real: ratio(energies[0], real[1]),
        actual: ratio(energies[0], model_pj),
        model_pj,
        steps,
    }
}

/// `a / b`, 0 when there is nothing to divide by (a layer with nothing stored, a run with
/// nothing broadcast): reports print such a factor as "-".
fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 0.0 }
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

    fn energy(pj: f64) -> Energy {
        Energy {
            parts: [pj / 13.0; 13],
            cycles: 10.0,
            time_us: 1.0,
            macs: 100.0,
        }
    }

    #[test]
    fn the_factors_multiply_to_the_product() {
        let t = Table::paper();
        let s = savings(&facts(), &energy(13.0), &t, 1);
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
        assert!((s.product_real - s.product / 8.0 * s.shared_real_factor).abs() < 1e-6);
        assert!((s.actual - 1000.0 * 640.0 / 13.0).abs() < 1e-9);
    }

    /// Energies are per inference: the facts and energy of N runs give the breakdown of one.
    #[test]
    fn runs_are_divided_out() {
        let t = Table::paper();
        let one = savings(&facts(), &energy(13.0), &t, 1);
        let mut three = facts();
        for v in [
            &mut three.dense_weights,
            &mut three.entries,
            &mut three.image_bits,
            &mut three.cols,
            &mut three.broadcast_cols,
        ] {
            *v *= 3;
        }
        let s = savings(&three, &energy(39.0), &t, 3);
        for (a, b) in s.steps.iter().zip(&one.steps) {
            assert!((a.energy_pj - b.energy_pj).abs() < 1e-9 * b.energy_pj);
        }
        assert!((s.model_pj - 13.0).abs() < 1e-9 && (s.actual - one.actual).abs() < 1e-6);
    }

    /// A model's chain is the sum of its layers' energies, step by step; a layer with no
    /// weights adds nothing to the fetches, only to the modelled energy.
    #[test]
    fn a_model_sums_its_layers_energies() {
        let t = Table::paper();
        let a = savings(&facts(), &energy(13.0), &t, 1);
        let mut f = facts();
        f.code_bits = 2;
        f.entries = 330;
        f.broadcast_cols = 10;
        let b = savings(&f, &energy(26.0), &t, 1);
        let m = combine(&[a.clone(), b.clone()]);
        for k in 0..5 {
            let sum = a.steps[k].energy_pj + b.steps[k].energy_pj;
            assert!((m.steps[k].energy_pj - sum).abs() < 1e-9 * sum);
        }
        let product: f64 = m.steps.iter().map(|s| s.factor).product();
        assert!((product - m.product).abs() < 1e-9 * product);
        assert!((m.model_pj - 39.0).abs() < 1e-9);
        let empty = Facts {
            cols: 5,
            ..Facts::default()
        };
        let e = savings(&empty, &energy(5.0), &t, 1);
        assert_eq!(e.steps[2].factor, 0.0, "nothing stored: no factor");
        let with_empty = combine(&[a.clone(), e]);
        assert_eq!(with_empty.steps[4].energy_pj, a.steps[4].energy_pj);
        assert!((with_empty.model_pj - 18.0).abs() < 1e-9);
    }
}
