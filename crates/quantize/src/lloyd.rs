//! Lloyd's k-means in 1-D, with scikit-learn's semantics so the two can be cross-checked:
//! assign, move every center to its cluster's mean, give each empty cluster the point
//! farthest from its center, stop when no assignment changes (or at the iteration cap).

use eie_rng::Rng;

use crate::sorted::Sorted;

/// How Lloyd's iterations start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Init {
    /// k centers equally spaced over [min, max] (Deep Compression's choice: it keeps
    /// centers on the rare large weights).
    Linear,
    /// Equal steps of the empirical CDF: center i at the ((i + 0.5) / k)-quantile.
    Density,
    /// Forgy: k distinct values drawn at random (seeded).
    Random(u64),
    /// k-means++ (Arthur and Vassilvitskii): each new center drawn with probability
    /// proportional to the squared distance to the nearest chosen one (seeded).
    KMeansPlusPlus(u64),
}

impl Init {
    /// The initial centers for `data`, ascending. `data` must not be empty, `k >= 1`.
    pub fn centers(&self, data: &Sorted, k: usize) -> Vec<f64> {
        let n = data.len();
        let x = |i: usize| data.at(i);
        let mut c: Vec<f64> = match *self {
            Init::Linear => {
                let (lo, hi) = (x(0), x(n - 1));
                if k == 1 {
                    vec![lo]
                } else {
                    (0..k)
                        .map(|i| lo + (hi - lo) * i as f64 / (k - 1) as f64)
                        .collect()
                }
            }
            Init::Density => (0..k)
                .map(|i| {
                    x((((i as f64 + 0.5) / k as f64) * n as f64)
                        .floor()
                        .min((n - 1) as f64) as usize)
                })
                .collect(),
            Init::Random(seed) => Rng::new(seed)
                .sample_indices(n, k)
                .into_iter()
                .map(x)
                .collect(),
            Init::KMeansPlusPlus(seed) => plus_plus(data, k, seed),
        };
        c.sort_by(f64::total_cmp);
        c
    }
}

fn plus_plus(data: &Sorted, k: usize, seed: u64) -> Vec<f64> {
    let x: Vec<f64> = data.values().iter().map(|&v| v as f64).collect();
    let mut rng = Rng::new(seed);
    let mut centers = vec![x[rng.below(x.len() as u64) as usize]];
    let mut d2: Vec<f64> = x.iter().map(|&v| (v - centers[0]).powi(2)).collect();
    while centers.len() < k {
        let total: f64 = d2.iter().sum();
        let next = if total <= 0.0 {
            // Every value sits on a center: take any value (duplicates are fine).
            x[rng.below(x.len() as u64) as usize]
        } else {
            let mut target = rng.uniform() * total;
            let mut pick = x.len() - 1;
            for (i, &d) in d2.iter().enumerate() {
                if target < d {
                    pick = i;
                    break;
                }
                target -= d;
            }
            x[pick]
        };
        for (d, &v) in d2.iter_mut().zip(&x) {
            *d = d.min((v - next).powi(2));
        }
        centers.push(next);
    }
    centers
}

/// The result of a Lloyd run.
#[derive(Debug, Clone, PartialEq)]
pub struct LloydRun {
    /// Final centers, ascending.
    pub centers: Vec<f64>,
    /// Iterations performed.
    pub iterations: u32,
    /// Whether it stopped because no assignment changed (rather than at the cap).
    pub converged: bool,
}

/// Runs Lloyd's iterations from `init` (ascending centers) for at most `max_iter` rounds.
pub fn lloyd(data: &Sorted, init: Vec<f64>, max_iter: u32) -> LloydRun {
    let mut centers = init;
    let mut previous: Option<Vec<usize>> = None;
    let mut iterations = 0;
    let mut converged = false;
    while iterations < max_iter {
        iterations += 1;
        let bounds = data.bounds(&centers);
        let new = update(data, &centers, &bounds);
        let same = previous.as_ref() == Some(&bounds);
        centers = new;
        centers.sort_by(f64::total_cmp);
        if same {
            converged = true;
            break;
        }
        previous = Some(bounds);
    }
    LloydRun {
        centers,
        iterations,
        converged,
    }
}

/// One update: cluster means, then scikit-learn's relocation of empty clusters: the points
/// farthest from their (old) centers, in decreasing distance, each become one empty
/// cluster's only point. In 1-D a cluster's farthest points are at its ends, so the
/// candidates are two per cluster.
fn update(data: &Sorted, old: &[f64], b: &[usize]) -> Vec<f64> {
    let k = old.len();
    let x = |i: usize| data.at(i);
    let mut sums: Vec<f64> = (0..k).map(|j| data.sum(b[j], b[j + 1])).collect();
    let mut counts: Vec<usize> = (0..k).map(|j| b[j + 1] - b[j]).collect();
    let mut masses: Vec<f64> = (0..k).map(|j| data.mass(b[j], b[j + 1])).collect();
    let empty: Vec<usize> = (0..k).filter(|&j| counts[j] == 0).collect();
    if !empty.is_empty() {
        // Per cluster, the unused ends [lo, hi).
        let mut ends: Vec<(usize, usize)> = (0..k).map(|j| (b[j], b[j + 1])).collect();
        for &e in &empty {
            let mut best: Option<(f64, usize, bool)> = None; // (distance, cluster, from the left end)
            for j in 0..k {
                let (lo, hi) = ends[j];
                if lo >= hi {
                    continue;
                }
                for (at, left) in [(lo, true), (hi - 1, false)] {
                    let d = (x(at) - old[j]).powi(2);
                    if best.is_none_or(|(bd, _, _)| d > bd) {
                        best = Some((d, j, left));
                    }
                }
            }
            let Some((_, j, left)) = best else { break };
            let at = if left { ends[j].0 } else { ends[j].1 - 1 };
            if left {
                ends[j].0 += 1;
            } else {
                ends[j].1 -= 1;
            }
            let w = data.weight(at);
            sums[j] -= w * x(at);
            counts[j] -= 1;
            masses[j] -= w;
            sums[e] = w * x(at);
            counts[e] = 1;
            masses[e] = w;
        }
    }
    (0..k)
        .map(|j| {
            if counts[j] > 0 {
                sums[j] / masses[j]
            } else {
                old[j]
            }
        })
        .collect()
}
