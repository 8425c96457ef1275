//! Many runs of a chain of layers (a dataset's samples, a simulation's vectors): their counts
//! added up layer by layer, then costed as the mean energy per inference and the savings
//! breakdown over all of them.

use eie_simulate::LayerView;

use crate::counts::{Counts, Facts};
use crate::model::Energy;
use crate::savings::{Savings, combine, savings};
use crate::table::Table;

/// Runs of a chain of layers, counted: per layer the counts of every run added.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Runs {
    /// Per layer, the counts of every run.
    pub counts: Vec<Counts>,
    /// Runs added (inferences).
    pub runs: u64,
    /// Per layer, its runs: as many as the inferences, or more for a layer that runs several
    /// times in one (an LSTM's packed matrix, once per time step).
    pub layer_runs: Vec<u64>,
}

impl Runs {
    /// No run yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one run: its counts, one per layer, in the chain's order.
    pub fn add(&mut self, run: &[Counts]) {
        self.add_repeated(run, &vec![1; run.len()]);
    }

    /// Adds one inference in which layer i ran `repeats[i]` times, `run[i]` the counts of
    /// all of them.
    pub fn add_repeated(&mut self, run: &[Counts], repeats: &[u64]) {
        assert_eq!(run.len(), repeats.len(), "one repeat count per layer");
        if self.layer_runs.is_empty() {
            self.layer_runs = repeats.to_vec();
        } else {
            for (n, r) in self.layer_runs.iter_mut().zip(repeats) {
                *n += r;
            }
        }
        if self.counts.is_empty() {
            self.counts = run.to_vec();
        } else {
            assert_eq!(self.counts.len(), run.len(), "one count per layer");
            for (sum, c) in self.counts.iter_mut().zip(run) {
                *sum = sum.plus(c);
            }
        }
        self.runs += 1;
    }

    /// These runs and `other`'s together.
    pub fn merge(mut self, other: &Runs) -> Runs {
        if self.counts.is_empty() {
            return other.clone();
        }
        if !other.counts.is_empty() {
            for (sum, c) in self.counts.iter_mut().zip(&other.counts) {
                *sum = sum.plus(c);
            }
            for (n, r) in self.layer_runs.iter_mut().zip(&other.layer_runs) {
                *n += r;
            }
            self.runs += other.runs;
        }
        self
    }

    /// The runs costed at `table`: per layer (of `views`, the layers counted, with
    /// `pointer_bits`-bit pointers) and for the chain, the mean energy per inference and the
    /// savings breakdown over every run.
    pub fn costed(&self, views: &[LayerView], pointer_bits: u8, table: &Table) -> Costed {
        let n = self.runs.max(1) as f64;
        let mut layers = Vec::with_capacity(views.len());
        let mut total = Energy::default();
        for (i, (view, counts)) in views.iter().zip(&self.counts).enumerate() {
            let sum = Energy::of(counts, table);
            // The layer's facts over all its runs (an LSTM's every step), its savings per
            // inference, as every other layer's.
            let runs = self.layer_runs.get(i).copied().unwrap_or(self.runs);
            let f = Facts::of_runs(*view, pointer_bits, runs, counts.broadcasts);
            layers.push(LayerCost {
                name: view.name().to_string(),
                energy: sum.scaled(1.0 / n),
                savings: savings(&f, &sum, table, self.runs),
            });
            total = total.plus(&sum);
        }
        let per_layer: Vec<Savings> = layers.iter().map(|l| l.savings.clone()).collect();
        Costed {
            savings: combine(&per_layer),
            energy: total.scaled(1.0 / n),
            layers,
            runs: self.runs,
        }
    }
}

/// One layer's runs costed.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerCost {
    /// The layer.
    pub name: String,
    /// Mean energy per inference.
    pub energy: Energy,
    /// The savings breakdown over every run.
    pub savings: Savings,
}

/// A chain's runs costed.
#[derive(Debug, Clone, PartialEq)]
pub struct Costed {
    /// Per layer.
    pub layers: Vec<LayerCost>,
    /// Mean energy per inference of the chain.
    pub energy: Energy,
    /// The chain's savings breakdown over every run.
    pub savings: Savings,
    /// Runs costed.
    pub runs: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(cycles: u64, macs: u64) -> Counts {
        Counts {
            cycles,
            pes: 2,
            clock_mhz: 800.0,
            spmat_width: 64,
            macs,
            broadcasts: macs / 2,
            ..Counts::default()
        }
    }

    #[test]
    fn runs_add_and_merge_in_any_grouping() {
        let mut a = Runs::new();
        a.add(&[c(10, 4), c(5, 2)]);
        a.add(&[c(20, 8), c(7, 4)]);
        let mut b = Runs::new();
        b.add(&[c(30, 6), c(9, 2)]);
        let merged = a.clone().merge(&b);
        let mut all = Runs::new();
        for run in [
            [c(10, 4), c(5, 2)],
            [c(20, 8), c(7, 4)],
            [c(30, 6), c(9, 2)],
        ] {
            all.add(&run);
        }
        assert_eq!(merged, all);
        assert_eq!(Runs::new().merge(&all), all);
        assert_eq!(all.runs, 3);
        assert_eq!(all.counts[0].cycles, 60);
        assert_eq!(all.counts[1].macs, 8);
        // The mean energy of the runs is their summed energy over their number.
        let t = Table::paper();
        let sum = Energy::of(&all.counts[0], &t);
        let mean = sum.scaled(1.0 / 3.0);
        assert!((mean.total_pj() * 3.0 - sum.total_pj()).abs() < 1e-9);
    }
}
