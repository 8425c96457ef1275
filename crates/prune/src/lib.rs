#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod histogram;
mod select;
mod sparse;

pub use histogram::{HISTOGRAM_BINS, histogram, histogram_of, max_abs, max_abs_of};
use select::threshold_bin;
pub use select::{Cut, abs_bits, apply, count_nonzero, cut_for_count, keep_mask};
pub use sparse::{Read, Selection, select};
#[cfg(test)]
use sparse::{SCANS, Sampling, select_with};

/// What can go wrong choosing how much to prune.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A density outside (0, 1].
    #[error("density must be in (0, 1], got {got}")]
    Density {
        /// The value given.
        got: f64,
    },
    /// A negative or non-finite std-dev multiplier.
    #[error("the std-dev threshold multiplier must be finite and >= 0, got {got}")]
    ThresholdStd {
        /// The value given.
        got: f64,
    },
    /// A weight buffer whose length is not rows x cols.
    #[error("{got} weights for a {rows} x {cols} layer")]
    Shape {
        /// Rows.
        rows: usize,
        /// Columns.
        cols: usize,
        /// Buffer length.
        got: usize,
    },
    /// A NaN or infinite weight.
    #[error("weight {index} is {value}: weights must be finite")]
    NonFinite {
        /// Flat index of the first such weight.
        index: usize,
        /// Its value.
        value: f32,
    },
    /// A pruning score that is negative, NaN or infinite.
    #[error("score {index} is {value}: scores must be finite and >= 0")]
    Score {
        /// Flat index of the first such score.
        index: usize,
        /// Its value.
        value: f32,
    },
    /// Zero PEs for balanced pruning.
    #[error("balanced pruning needs at least one PE")]
    ZeroPes,
}

/// The crate's result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How many weights of a layer to keep. Weights that are already zero are never kept, so a
/// pre-pruned layer keeps its mask and can only lose more.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rule {
    /// No pruning: every non-zero stays.
    KeepAll,
    /// Keep exactly round(D x rows x cols) weights (or every non-zero, if fewer).
    Density(f64),
    /// Han's rule: prune |w| < S x std of the layer's weights (population std over all
    /// rows x cols weights, zeros included).
    ThresholdStd(f64),
    /// Keep exactly this many weights (or every non-zero, if fewer); what a global density
    /// gives each layer.
    Count(u64),
}

impl Rule {
    /// Checks the rule's parameter.
    pub fn validate(&self) -> Result<()> {
        match *self {
            Rule::Density(d) if !(d > 0.0 && d <= 1.0) => Err(Error::Density { got: d }),
            Rule::ThresholdStd(s) if !(s.is_finite() && s >= 0.0) => {
                Err(Error::ThresholdStd { got: s })
            }
            _ => Ok(()),
        }
    }
}

/// Per-PE balance of the non-zeros: min, mean, max, and imbalance = max / mean (1 is perfect).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Balance {
    /// Fewest non-zeros in a PE.
    pub min: u64,
    /// Mean non-zeros per PE.
    pub mean: f64,
    /// Most non-zeros in a PE.
    pub max: u64,
}

impl Balance {
    /// Of per-PE counts.
    pub fn of(counts: &[u64]) -> Self {
        let n = counts.len().max(1) as f64;
        Self {
            min: counts.iter().copied().min().unwrap_or(0),
            mean: counts.iter().sum::<u64>() as f64 / n,
            max: counts.iter().copied().max().unwrap_or(0),
        }
    }

    /// max / mean (1.0 for an empty layer).
    pub fn imbalance(&self) -> f64 {
        if self.mean == 0.0 {
            1.0
        } else {
            self.max as f64 / self.mean
        }
    }
}

/// What balanced pruning cost and bought, against plain pruning to the same count.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BalanceReport {
    /// Weights balanced pruning keeps that plain magnitude pruning would drop.
    pub kept_not_plain: u64,
    /// Weights plain pruning keeps that balanced pruning drops.
    pub plain_not_kept: u64,
    /// Non-zeros per PE with plain pruning.
    pub plain: Balance,
    /// Non-zeros per PE with balanced pruning.
    pub balanced: Balance,
}

/// What pruning a layer did.
#[derive(Debug, Clone, PartialEq)]
pub struct PruneReport {
    /// Non-zeros before.
    pub before: u64,
    /// Non-zeros kept.
    pub kept: u64,
    /// The smallest kept magnitude (infinite when nothing is kept).
    pub threshold: f32,
    /// Present when balanced pruning was asked for.
    pub balance: Option<BalanceReport>,
}

/// The number of weights `rule` keeps in `weights` (row-major rows x cols).
pub fn budget(weights: &[f32], rule: Rule) -> Result<u64> {
    rule.validate()?;
    let nonzero = count_nonzero(&[weights]);
    Ok(match rule {
        Rule::KeepAll => nonzero,
        Rule::Density(d) => ((d * weights.len() as f64).round() as u64).min(nonzero),
        Rule::Count(k) => k.min(nonzero),
        Rule::ThresholdStd(s) => {
            let t = s * std(weights);
            weights
                .iter()
                .filter(|&&w| w != 0.0 && (w.abs() as f64) >= t)
                .count() as u64
        }
    })
}

/// Population standard deviation, in f64: two passes over fixed blocks added in order, the
/// same function [`select`] uses, so both paths keep the same weights.
pub fn std(weights: &[f32]) -> f64 {
    let read =
        |start: usize, out: &mut [f32]| out.copy_from_slice(&weights[start..start + out.len()]);
    sparse::std_dev(weights.len(), &read)
}

/// Prunes `weights` (row-major rows x cols) in place by `rule`. With `balance_pes`, the kept
/// count is shared across the PE slices (rows p, p+N, ... for PE p) as evenly as the slices'
/// non-zeros allow (within one), each slice keeping its largest magnitudes.
pub fn prune(
    weights: &mut [f32],
    rows: usize,
    cols: usize,
    rule: Rule,
    balance_pes: Option<usize>,
) -> Result<PruneReport> {
    if rows.checked_mul(cols) != Some(weights.len()) {
        return Err(Error::Shape {
            rows,
            cols,
            got: weights.len(),
        });
    }
    let before = count_nonzero(&[weights]);
    let k = budget(weights, rule)?;
    let plain = cut_for_count(&[weights], k);
    let Some(pes) = balance_pes else {
        let kept = apply(vec![&mut weights[..]], plain);
        return Ok(PruneReport {
            before,
            kept,
            threshold: smallest_magnitude(weights),
            balance: None,
        });
    };
    if pes == 0 {
        return Err(Error::ZeroPes);
    }
    let plain_mask = keep_mask(&[weights], plain);
    let plain_counts = per_pe(&plain_mask, cols, pes);

    // Per-PE budgets: water-filling up to each slice's non-zeros, remainder to the first PEs.
    let slice_nonzero: Vec<u64> = (0..pes)
        .map(|p| count_nonzero(&rows_of(weights, cols, pes, p)))
        .collect();
    let budgets = share(k, &slice_nonzero);

    // Each PE's own cut over its rows, then applied to its rows only.
    let cuts: Vec<Cut> = (0..pes)
        .map(|p| cut_for_count(&rows_of(weights, cols, pes, p), budgets[p]))
        .collect();
    let mut by_pe: Vec<Vec<&mut [f32]>> = (0..pes).map(|_| Vec::new()).collect();
    if cols > 0 {
        for (r, row) in weights.chunks_mut(cols).enumerate() {
            by_pe[r % pes].push(row);
        }
    }
    let kept: u64 = by_pe
        .into_iter()
        .zip(&cuts)
        .map(|(rows, &cut)| apply(rows, cut))
        .sum();

    let balanced_mask: Vec<bool> = weights.iter().map(|&w| w != 0.0).collect();
    let kept_not_plain = balanced_mask
        .iter()
        .zip(&plain_mask)
        .filter(|&(&b, &p)| b && !p)
        .count() as u64;
    let plain_not_kept = balanced_mask
        .iter()
        .zip(&plain_mask)
        .filter(|&(&b, &p)| !b && p)
        .count() as u64;
    Ok(PruneReport {
        before,
        kept,
        threshold: smallest_magnitude(weights),
        balance: Some(BalanceReport {
            kept_not_plain,
            plain_not_kept,
            plain: Balance::of(&plain_counts),
            balanced: Balance::of(&per_pe(&balanced_mask, cols, pes)),
        }),
    })
}

/// Among which weights a pruning score is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    /// The whole layer (Deep Compression's rule).
    Layer,
    /// Each output row keeps the same count, within one (Wanda's rule).
    Row,
    /// Each PE's rows (p, p + N, ...) keep the same count, within one.
    Pes(usize),
}

/// Prunes `weights` (`rows x cols`) keeping the weights with the largest `scores` (one per
/// weight, finite and >= 0; Wanda's `|w| x ||x_j||`, or `|w|` itself), as many as `rule`
/// keeps by magnitude, compared within `group`; ties go to the earliest weight. A weight that
/// is zero, or whose score is zero, is never kept. The report's threshold is the smallest
/// kept |w|; its balance is given for [`Group::Pes`].
pub fn prune_scored(
    weights: &mut [f32],
    scores: &[f32],
    rows: usize,
    cols: usize,
    rule: Rule,
    group: Group,
) -> Result<PruneReport> {
    if rows.checked_mul(cols) != Some(weights.len()) {
        return Err(Error::Shape {
            rows,
            cols,
            got: weights.len(),
        });
    }
    if scores.len() != weights.len() {
        return Err(Error::Shape {
            rows,
            cols,
            got: scores.len(),
        });
    }
    if let Some(index) = scores.iter().position(|s| !(s.is_finite() && *s >= 0.0)) {
        return Err(Error::Score {
            index,
            value: scores[index],
        });
    }
    let before = count_nonzero(&[weights]);
    let k = budget(weights, rule)?;
    let mut s: Vec<f32> = scores
        .iter()
        .zip(weights.iter())
        .map(|(&s, &w)| if w == 0.0 { 0.0 } else { s })
        .collect();
    let balance = match group {
        Group::Layer => {
            let cut = cut_for_count(&[&s], k);
            apply(vec![&mut s[..]], cut);
            None
        }
        // A row is a group of one row: balanced pruning with one "PE" per row.
        Group::Row if rows > 0 => {
            prune(&mut s, rows, cols, Rule::Count(k), Some(rows))?;
            None
        }
        Group::Row => None,
        Group::Pes(pes) => prune(&mut s, rows, cols, Rule::Count(k), Some(pes))?.balance,
    };
    let mut kept = 0;
    for (w, &v) in weights.iter_mut().zip(&s) {
        if v == 0.0 {
            *w = 0.0;
        } else {
            kept += 1;
        }
    }
    Ok(PruneReport {
        before,
        kept,
        threshold: smallest_magnitude(weights),
        balance,
    })
}

/// The smallest non-zero magnitude (infinite when every weight is zero).
fn smallest_magnitude(weights: &[f32]) -> f32 {
    weights
        .iter()
        .filter(|&&w| w != 0.0)
        .map(|w| w.abs())
        .fold(f32::INFINITY, f32::min)
}

fn rows_of(weights: &[f32], cols: usize, pes: usize, pe: usize) -> Vec<&[f32]> {
    if cols == 0 {
        return Vec::new();
    }
    weights.chunks(cols).skip(pe).step_by(pes).collect()
}

fn per_pe(mask: &[bool], cols: usize, pes: usize) -> Vec<u64> {
    let mut counts = vec![0u64; pes];
    if cols > 0 {
        for (r, row) in mask.chunks(cols).enumerate() {
            counts[r % pes] += row.iter().filter(|&&b| b).count() as u64;
        }
    }
    counts
}

/// Splits `k` over PEs as evenly as possible with PE p taking at most `cap[p]`: every PE
/// gets min(cap, L) for the largest level L that fits, and the rest goes one each to the
/// first PEs (in PE order) that still have room. `k` must not exceed the sum of `cap`.
pub fn share(k: u64, cap: &[u64]) -> Vec<u64> {
    let filled = |level: u64| cap.iter().map(|&c| c.min(level)).sum::<u64>();
    let (mut lo, mut hi) = (0u64, cap.iter().copied().max().unwrap_or(0));
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if filled(mid) <= k {
            lo = mid
        } else {
            hi = mid - 1
        }
    }
    let mut out: Vec<u64> = cap.iter().map(|&c| c.min(lo)).collect();
    let mut rest = k - filled(lo);
    for (o, &c) in out.iter_mut().zip(cap) {
        if rest == 0 {
            break;
        }
        if c > *o {
            *o += 1;
            rest -= 1;
        }
    }
    out
}

/// Global pruning: one magnitude threshold across several layers, without holding them all.
/// Feed every layer's weights to [`Global::first_pass`], then the same layers in the same
/// order to [`Global::second_pass`]; [`Global::counts`] then gives the number each layer
/// keeps. Pruning each layer with [`Rule::Count`] of its count keeps exactly what one cut over
/// all layers keeps (ties at the threshold go to the earliest layer, then the earliest weight).
#[derive(Debug, Clone)]
pub struct Global {
    k: u64,
    high: Vec<u64>,
    nonzero: u64,
    layers: usize,
    /// Per layer, from the second pass: weights above the threshold's bin, and the low bits
    /// present inside it with their counts (sparse: usually few).
    second: Vec<(u64, Vec<(u16, u64)>)>,
    bin: Option<usize>,
}

impl Global {
    /// Keep round(density x total weights) over all layers.
    pub fn new(density: f64, total_weights: u64) -> Result<Self> {
        Rule::Density(density).validate()?;
        Ok(Self {
            k: (density * total_weights as f64).round() as u64,
            high: vec![0; 1 << 15],
            nonzero: 0,
            layers: 0,
            second: Vec::new(),
            bin: None,
        })
    }

    fn target(&self) -> u64 {
        self.k.min(self.nonzero)
    }

    /// First pass over one layer (layers in model order).
    pub fn first_pass(&mut self, weights: &[f32]) {
        for &w in weights {
            let u = abs_bits(w);
            if u != 0 {
                self.high[(u >> 16) as usize] += 1;
                self.nonzero += 1;
            }
        }
        self.layers += 1;
    }

    /// Second pass over one layer (the same layers, in the same order).
    pub fn second_pass(&mut self, weights: &[f32]) {
        let target = self.target();
        let bin = *self
            .bin
            .get_or_insert_with(|| threshold_bin(&self.high, target.max(1)).0);
        let mut above = 0u64;
        let mut low = vec![0u64; 1 << 16];
        for &w in weights {
            let u = abs_bits(w);
            if u == 0 {
                continue;
            }
            match ((u >> 16) as usize).cmp(&bin) {
                std::cmp::Ordering::Greater => above += 1,
                std::cmp::Ordering::Equal => low[(u & 0xffff) as usize] += 1,
                std::cmp::Ordering::Less => {}
            }
        }
        let low = (0..low.len())
            .filter(|&l| low[l] > 0)
            .map(|l| (l as u16, low[l]))
            .collect();
        self.second.push((above, low));
    }

    /// Weights each layer keeps, in the order the layers were fed.
    ///
    /// # Panics
    /// If the two passes did not see the same number of layers.
    pub fn counts(&self) -> Vec<u64> {
        assert_eq!(
            self.second.len(),
            self.layers,
            "both passes must see every layer"
        );
        let target = self.target();
        if target == 0 {
            return vec![0; self.layers];
        }
        // The threshold's low bits, from the summed low histograms.
        let mut low = vec![0u64; 1 << 16];
        let mut above_bin = 0u64;
        for (above, h) in &self.second {
            above_bin += above;
            h.iter().for_each(|&(l, c)| low[l as usize] += c);
        }
        let (lo, above_lo) = threshold_bin(&low, target - above_bin);
        let mut ties = target - above_bin - above_lo;
        self.second
            .iter()
            .map(|(above, h)| {
                let strictly_above = above
                    + h.iter()
                        .filter(|&&(l, _)| l as usize > lo)
                        .map(|&(_, c)| c)
                        .sum::<u64>();
                let at = h
                    .iter()
                    .find(|&&(l, _)| l as usize == lo)
                    .map_or(0, |&(_, c)| c);
                let take = ties.min(at);
                ties -= take;
                strictly_above + take
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
