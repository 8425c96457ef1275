//! Exactly optimal 1-D k-means: minimum within-cluster sum of squares by dynamic programming
//! over the sorted values (clusters of an optimal solution are contiguous runs).
//!
//! D[m][t] = min over s of D[m-1][s-1] + cost(s..=t). The best s is non-decreasing in t (the
//! cost is a Monge array), so each row is filled by divide and conquer in O(n log n): the
//! whole table in O(k n log n) time, with k rows of split points (u32) kept to trace the
//! clusters back.
//!
//! Above [`EXACT_LIMIT`] values, the DP runs over groups of consecutive sorted values
//! instead (clusters may then only split between groups), and the result is polished by
//! Lloyd's iterations; see [`Optimal::bound`].

use crate::lloyd::{Init, lloyd};
use crate::sorted::Sorted;

/// Largest number of values solved exactly (for up to 16 clusters); beyond, values are
/// grouped into this many runs.
pub const EXACT_LIMIT: usize = 1 << 20;

/// Memory the DP's split points may take: (k - 1) rows of u32 per value.
const SPLIT_BYTES: usize = 64 << 20;

/// The exact limit for `k` clusters: [`EXACT_LIMIT`], lowered so the split points stay within
/// 64 MiB (2^20 values up to k = 16; 66 k values at k = 255).
pub fn exact_limit(k: usize) -> usize {
    EXACT_LIMIT.min(SPLIT_BYTES / 4 / k.saturating_sub(1).max(1))
}

/// An optimal (or, above [`EXACT_LIMIT`], near-optimal) clustering.
#[derive(Debug, Clone, PartialEq)]
pub struct Optimal {
    /// Centers, ascending.
    pub centers: Vec<f64>,
    /// None when exact. Otherwise an estimate of how far the grouped DP can be above the
    /// optimum: sum over cluster boundaries of 2 x (values per group) x (value range of the
    /// group holding the boundary) x (gap between the two centers). Moving a boundary to the
    /// nearest group edge moves at most one group's values, each by at most that much; the
    /// centers used are the result's, hence an estimate. Lloyd's polish only lowers the SSE.
    pub bound: Option<f64>,
}

/// Optimal clustering of `data` into `k` clusters (`k` at most the number of distinct
/// values, `data` not empty).
pub fn optimal(data: &Sorted, k: usize) -> Optimal {
    optimal_with_limit(data, k, exact_limit(k))
}

/// [`optimal`] with another exact limit (tests reach the grouped path with small data).
pub(crate) fn optimal_with_limit(data: &Sorted, k: usize, limit: usize) -> Optimal {
    let n = data.len();
    let edges: Vec<usize> = if n <= limit {
        (0..=n).collect()
    } else {
        (0..=limit)
            .map(|g| (g as u128 * n as u128 / limit as u128) as usize)
            .collect()
    };
    let clusters = solve(data, &edges, k);
    let mut centers: Vec<f64> = clusters.iter().map(|&(i, j)| data.mean(i, j)).collect();
    if n <= limit {
        return Optimal {
            centers,
            bound: None,
        };
    }
    let group = n.div_ceil(limit);
    let x = data.values();
    let mut bound = 0.0;
    // Weighted values move their weight's worth each: the heaviest one bounds them.
    let heaviest = (0..n).map(|i| data.weight(i)).fold(1.0f64, f64::max);
    for w in centers.windows(2) {
        let p = x
            .partition_point(|&v| v as f64 <= (w[0] + w[1]) / 2.0)
            .min(n - 1);
        let g = edges.partition_point(|&e| e <= p) - 1;
        let width = x[edges[g + 1] - 1] as f64 - x[edges[g]] as f64;
        bound += 2.0 * group as f64 * heaviest * width * (w[1] - w[0]);
    }
    // Polish, and never do worse than the default Lloyd run.
    let polished = lloyd(data, centers.clone(), 300).centers;
    if data.sse(&polished) < data.sse(&centers) {
        centers = polished;
    }
    let linear = lloyd(data, Init::Linear.centers(data, k), 300).centers;
    if data.sse(&linear) < data.sse(&centers) {
        centers = linear;
    }
    Optimal {
        centers,
        bound: Some(bound),
    }
}

/// The k clusters, as sorted-index ranges, minimising the SSE over partitions whose cuts
/// fall on `edges` (item t = values `edges[t]..edges[t+1]`).
fn solve(data: &Sorted, edges: &[usize], k: usize) -> Vec<(usize, usize)> {
    let items = edges.len() - 1;
    let cost = |s: usize, t: usize| data.cost(edges[s], edges[t + 1]); // items s..=t
    let mut prev: Vec<f64> = (0..items).map(|t| cost(0, t)).collect();
    let mut split: Vec<Vec<u32>> = Vec::with_capacity(k.saturating_sub(1));
    for m in 1..k {
        let mut cur = vec![f64::INFINITY; items];
        let mut arg = vec![0u32; items];
        if m < items {
            fill(
                &prev,
                &cost,
                &mut cur[m..],
                &mut arg[m..],
                m,
                items - 1,
                m,
                items - 1,
            );
        }
        prev = cur;
        split.push(arg);
    }
    // Trace back from the last item.
    let mut out = Vec::with_capacity(k);
    let mut t = items - 1;
    for m in (1..k).rev() {
        let s = split[m - 1][t] as usize;
        out.push((edges[s], edges[t + 1]));
        t = s - 1;
    }
    out.push((edges[0], edges[t + 1]));
    out.reverse();
    out
}

/// Fills `cur[t - lo]` and `arg[t - lo]` (the best cost and split of item t) for t in
/// `lo..=hi`, knowing each best split lies in `opt_lo..=opt_hi`. Both halves of the range are
/// independent, so large ranges split across threads.
#[allow(clippy::too_many_arguments)]
fn fill(
    prev: &[f64],
    cost: &(impl Fn(usize, usize) -> f64 + Sync),
    cur: &mut [f64],
    arg: &mut [u32],
    opt_lo: usize,
    opt_hi: usize,
    lo: usize,
    hi: usize,
) {
    if lo > hi {
        return;
    }
    let mid = lo + (hi - lo) / 2;
    let (mut best, mut best_s) = (f64::INFINITY, opt_lo);
    for s in opt_lo..=opt_hi.min(mid) {
        let v = prev[s - 1] + cost(s, mid);
        if v < best {
            best = v;
            best_s = s;
        }
    }
    let (left_cur, rest_cur) = cur.split_at_mut(mid - lo);
    let (left_arg, rest_arg) = arg.split_at_mut(mid - lo);
    rest_cur[0] = best;
    rest_arg[0] = best_s as u32;
    let (right_cur, right_arg) = (&mut rest_cur[1..], &mut rest_arg[1..]);
    let left = |c: &mut [f64], a: &mut [u32]| {
        if mid > lo {
            fill(prev, cost, c, a, opt_lo, best_s, lo, mid - 1);
        }
    };
    let right = |c: &mut [f64], a: &mut [u32]| fill(prev, cost, c, a, best_s, opt_hi, mid + 1, hi);
    if hi - lo > 1 << 14 {
        rayon::join(|| left(left_cur, left_arg), || right(right_cur, right_arg));
    } else {
        left(left_cur, left_arg);
        right(right_cur, right_arg);
    }
}
