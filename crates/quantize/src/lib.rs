#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod huffman;
mod lloyd;
mod optimal;
mod sorted;

pub use huffman::{code_lengths, coded_bits};
pub use lloyd::{Init, LloydRun, lloyd};
pub use optimal::{EXACT_LIMIT, Optimal, exact_limit, optimal};
pub use sorted::{Sorted, sort};

/// What can go wrong clustering.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No clusters asked for.
    #[error("the number of clusters must be at least 1")]
    ZeroClusters,
    /// A weight that is not finite and positive, or a weight count that is not the value
    /// count.
    #[error(
        "weight {index} is {value}: weights must be finite and > 0, one per value ({count} values)"
    )]
    Weight {
        /// Index of the first bad weight (the weight count, when the counts differ).
        index: usize,
        /// Its value (NaN when missing).
        value: f64,
        /// Values given.
        count: usize,
    },
    /// A NaN or infinite value among the data.
    #[error("value {value} at index {index} is not finite")]
    NonFinite {
        /// Index in the data.
        index: usize,
        /// The value.
        value: f32,
    },
}

/// The crate's result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How to find the shared values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Lloyd's iterations from `init`, until no assignment changes or `max_iter` rounds.
    Lloyd {
        /// Starting centers.
        init: Init,
        /// Iteration cap.
        max_iter: u32,
    },
    /// The minimum-SSE clustering ([`optimal`]).
    Optimal,
}

/// Shared values for a set of weights.
#[derive(Debug, Clone, PartialEq)]
pub struct Clustering {
    /// The shared values (f32, as stored), ascending; at most k of them, fewer when the data
    /// has fewer distinct values (then they are exactly those values).
    pub centroids: Vec<f32>,
    /// Sum of squared differences between each value and its nearest centroid.
    pub sse: f64,
    /// Lloyd iterations run (0 for the optimal method and for exact small data).
    pub iterations: u32,
    /// False only when Lloyd stopped at its iteration cap.
    pub converged: bool,
    /// For the optimal method above [`EXACT_LIMIT`] values: the estimated bound of
    /// [`Optimal::bound`]. None when the result is exact (or from Lloyd).
    pub optimal_bound: Option<f64>,
}

/// Clusters `values` (finite; zeros are data like any other value, callers pass the
/// surviving weights) into at most `k` shared values.
pub fn cluster(values: &[f32], k: usize, method: Method) -> Result<Clustering> {
    check(values, k)?;
    cluster_sorted(Sorted::new(values), k, method)
}

/// [`cluster`] minimising the weighted error: sum over values of `weight x (value -
/// centroid)^2` (SqueezeLLM's sensitivity-weighted k-means; with [`Method::Optimal`] its exact
/// minimum). Every weight must be finite and > 0. `sse` is then the weighted error.
pub fn cluster_weighted(
    values: &[f32],
    weights: &[f64],
    k: usize,
    method: Method,
) -> Result<Clustering> {
    check(values, k)?;
    if weights.len() != values.len() {
        return Err(Error::Weight {
            index: weights.len(),
            value: f64::NAN,
            count: values.len(),
        });
    }
    if let Some(index) = weights.iter().position(|w| !(w.is_finite() && *w > 0.0)) {
        return Err(Error::Weight {
            index,
            value: weights[index],
            count: values.len(),
        });
    }
    cluster_sorted(Sorted::weighted(values, weights), k, method)
}

fn check(values: &[f32], k: usize) -> Result<()> {
    if k == 0 {
        return Err(Error::ZeroClusters);
    }
    if let Some(index) = values.iter().position(|v| !v.is_finite()) {
        return Err(Error::NonFinite {
            index,
            value: values[index],
        });
    }
    Ok(())
}

fn cluster_sorted(data: Sorted, k: usize, method: Method) -> Result<Clustering> {
    if data.distinct_up_to(k) <= k {
        let centroids: Vec<f32> = data
            .distinct_values()
            .into_iter()
            .map(|v| v as f32)
            .collect();
        return Ok(Clustering {
            centroids,
            sse: 0.0,
            iterations: 0,
            converged: true,
            optimal_bound: None,
        });
    }
    let (centers, iterations, converged, optimal_bound) = match method {
        Method::Lloyd { init, max_iter } => {
            let run = lloyd(&data, init.centers(&data, k), max_iter);
            (run.centers, run.iterations, run.converged, None)
        }
        Method::Optimal => {
            let o = optimal(&data, k);
            (o.centers, 0, true, o.bound)
        }
    };
    let centroids = to_f32(&centers);
    let sse = data.sse(&centroids.iter().map(|&c| c as f64).collect::<Vec<_>>());
    Ok(Clustering {
        centroids,
        sse,
        iterations,
        converged,
        optimal_bound,
    })
}

/// Rounds centers to f32, ascending, without duplicates (two centers that round to the same
/// f32 would leave one of them unused).
fn to_f32(centers: &[f64]) -> Vec<f32> {
    let mut c: Vec<f32> = centers.iter().map(|&v| v as f32).collect();
    c.sort_by(f32::total_cmp);
    c.dedup();
    c
}

/// Maps values to the index of their nearest centroid (ascending centroids; a value exactly
/// between two goes to the lower), by binary search over the midpoints: the same rule the
/// clustering's SSE uses.
#[derive(Debug, Clone)]
pub struct Assigner {
    mids: Vec<f64>,
}

impl Assigner {
    /// For ascending `centroids`.
    pub fn new(centroids: &[f32]) -> Self {
        Self {
            mids: centroids
                .windows(2)
                .map(|w| (w[0] as f64 + w[1] as f64) / 2.0)
                .collect(),
        }
    }

    /// Index (0-based) of the centroid nearest to `v`.
    pub fn index(&self, v: f32) -> usize {
        let v = v as f64;
        self.mids.partition_point(|&m| m < v)
    }
}

#[cfg(test)]
mod tests;
