//! Selection straight from a tensor's storage, to a sparse list of survivors: two passes in
//! fixed-size blocks (a histogram of |w|'s high bits, then the candidates at or above the
//! threshold's bin), so a layer never needs an f32 copy of itself and everything after
//! pruning works on the survivors only.

use rayon::prelude::*;

use crate::select::{abs_bits, threshold_bin};
use crate::{Error, PruneReport, Result, Rule};

/// Elements read and processed at a time (one block per parallel task).
const BLOCK: usize = 1 << 16;

/// Reads elements `start..start + out.len()` of a weight tensor, as f32, into `out`.
pub type Read<'a> = dyn Fn(usize, &mut [f32]) + Sync + 'a;

/// The survivors of a selection, in storage (row-major) order.
#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    /// Flat positions of the kept weights, ascending.
    pub positions: Vec<u64>,
    /// Their values.
    pub values: Vec<f32>,
    /// What the selection did.
    pub report: PruneReport,
}

fn blocks(len: usize) -> Vec<(usize, usize)> {
    (0..len.div_ceil(BLOCK))
        .map(|b| (b * BLOCK, ((b + 1) * BLOCK).min(len)))
        .collect()
}

/// `f` of every block of the tensor, the blocks read in parallel through `read` into one
/// buffer per worker: the one pass every whole-tensor figure makes.
pub(crate) fn map_blocks<'a, T: Send>(
    len: usize,
    read: &'a Read,
    f: impl Fn(&[f32]) -> T + Sync + Send + 'a,
) -> impl IndexedParallelIterator<Item = T> + 'a {
    blocks(len).into_par_iter().map_init(
        || vec![0f32; BLOCK],
        move |buf, (a, b)| {
            let block = &mut buf[..b - a];
            read(a, block);
            f(block)
        },
    )
}

/// Two count vectors added (integer counts: any merge order gives the same).
pub(crate) fn add_counts(mut x: Vec<u64>, y: Vec<u64>) -> Vec<u64> {
    x.iter_mut().zip(&y).for_each(|(a, b)| *a += b);
    x
}

/// Sum of `f(w)` over the tensor in f64, block by block, the blocks added in order: the same
/// bits however the blocks are scheduled.
fn ordered_sum(len: usize, read: &Read, f: impl Fn(f32) -> f64 + Sync + Send) -> f64 {
    let partials: Vec<f64> =
        map_blocks(len, read, |block| block.iter().map(|&w| f(w)).sum::<f64>()).collect();
    partials.iter().sum()
}

/// Population standard deviation of `len` weights: the mean first, then the squared
/// deviations from it (two passes: the one-pass `E[w^2] - mean^2` loses the digits that
/// matter when |mean| is large against the spread).
pub(crate) fn std_dev(len: usize, read: &Read) -> f64 {
    let n = len.max(1) as f64;
    let mean = ordered_sum(len, read, |w| w as f64) / n;
    (ordered_sum(len, read, |w| (w as f64 - mean).powi(2)) / n).sqrt()
}

/// What one pass over a tensor learns: the count of finite non-zeros, the first non-finite
/// weight, and the (position, value) of every weight a predicate accepts, in order.
struct Scan {
    nonzero: u64,
    first_bad: Option<(usize, f32)>,
    positions: Vec<u64>,
    values: Vec<f32>,
    /// High-bits histogram of the accepted weights' |w| (what [`histogram`] of `values` is).
    high: Vec<u64>,
}

#[cfg(test)]
mod scan_tests {
    use super::*;

    #[test]
    fn the_integer_threshold_keeps_what_the_float_rule_keeps() {
        for t in [
            0.0,
            1e-45,
            1e-30,
            0.1,
            0.3,
            1.0 / 3.0,
            2.5,
            1e30,
            3.5e38,
            f64::MAX,
        ] {
            let lo = bits_at_least(t);
            for w in [
                0.0f32,
                1e-45,
                1e-30,
                0.1,
                0.099_999_99,
                0.3,
                1.0 / 3.0,
                2.5,
                1e30,
                f32::MAX,
            ] {
                for w in [
                    w,
                    -w,
                    f32::from_bits(w.to_bits() + 1),
                    f32::from_bits(w.to_bits().saturating_sub(1)),
                ] {
                    let float_rule = w != 0.0 && (w.abs() as f64) >= t;
                    assert_eq!(abs_bits(w) >= lo.max(1), float_rule, "t {t}, w {w}");
                }
            }
        }
    }

    #[test]
    fn sixty_four_flags_gather_into_their_bits() {
        let mut f = [0u8; 64];
        for j in [0, 1, 7, 8, 30, 63] {
            f[j] = 1;
        }
        assert_eq!(gather(&f), 1 | 2 | 1 << 7 | 1 << 8 | 1 << 30 | 1 << 63);
    }
}

#[cfg(test)]
thread_local! {
    /// Full passes made by this thread's selections (tests check the one-pass claim).
    pub(crate) static SCANS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// The accepted weights of a run of consecutive blocks.
struct Part {
    /// First element of the run.
    start: usize,
    /// One past its last element: where a block continuing the run starts.
    end: usize,
    positions: Vec<u64>,
    values: Vec<f32>,
}

/// Per-thread state of a scan: integer counts (merged in any order, same result) and the
/// accepted weights of each run of consecutive blocks the thread scanned (rayon folds a
/// contiguous range in order), concatenated in order at the end. One growing pair of vectors
/// per run, not per block: many small vectors freed by the worker threads would stay in their
/// allocator arenas, memory the process holds but cannot use again.
struct Acc {
    nonzero: u64,
    first_bad: Option<(usize, f32)>,
    parts: Vec<Part>,
    high: Vec<u64>,
}

impl Acc {
    fn new() -> Self {
        Self {
            nonzero: 0,
            first_bad: None,
            parts: Vec::new(),
            high: vec![0; 1 << 15],
        }
    }

    fn merge(mut self, other: Self) -> Self {
        self.nonzero += other.nonzero;
        self.first_bad = match (self.first_bad, other.first_bad) {
            (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
            (a, b) => a.or(b),
        };
        self.parts.extend(other.parts);
        self.high
            .iter_mut()
            .zip(&other.high)
            .for_each(|(a, b)| *a += b);
        self
    }
}

/// Bit patterns of |w| at or above this are not finite.
const INF: u32 = 0x7f80_0000;

/// 64 flags (0 or 1, one byte each) as the bits of a u64, flag j in bit j: eight bytes at a
/// time, gathered by one multiplication (each byte's bit lands in the top byte).
fn gather(flags: &[u8; 64]) -> u64 {
    let mut m = 0u64;
    for (g, eight) in flags.chunks_exact(8).enumerate() {
        let word = u64::from_le_bytes(eight.try_into().expect("8 bytes"));
        m |= (word.wrapping_mul(0x0102_0408_1020_4080) >> 56) << (8 * g);
    }
    m
}

/// The scan of 64 weights' |w| bit patterns `u`: the mask of those kept (finite, at least
/// `lo`, which is at least 1 so zeros are never kept), the count of finite non-zeros, and
/// whether any is not finite. Written as independent lanes so the compiler vectorizes it.
fn scan64(u: &[u32; 64], lo: u32) -> (u64, u32, bool) {
    let mut kept = [0u8; 64];
    let mut nonzero = 0u32;
    let mut bad = 0u32;
    for j in 0..64 {
        let x = u[j];
        kept[j] = ((x >= lo) & (x < INF)) as u8;
        nonzero += ((x != 0) & (x < INF)) as u32;
        bad |= (x >= INF) as u32;
    }
    (gather(&kept), nonzero, bad != 0)
}

/// One pass over the tensor (see [`Scan`]), keeping every finite weight whose |w| bit pattern
/// is at least `lo` (>= 1). Every 64 weights become a bit mask in a branch-free, vectorized
/// loop, so collecting costs per accepted weight, found by their set bits; a non-finite
/// weight only sets a flag, its block being searched afterwards.
fn scan(len: usize, read: &Read, lo: u32) -> Scan {
    #[cfg(test)]
    SCANS.with(|c| c.set(c.get() + 1));
    let lo = lo.max(1);
    let acc = blocks(len)
        .into_par_iter()
        .fold(
            || (Acc::new(), vec![0f32; BLOCK]),
            |(mut acc, mut buf), (a, b)| {
                let block = &mut buf[..b - a];
                read(a, block);
                let (mut nonzero, mut bad) = (0u64, false);
                if acc.parts.last().is_none_or(|p| p.end != a) {
                    acc.parts.push(Part {
                        start: a,
                        end: a,
                        positions: Vec::new(),
                        values: Vec::new(),
                    });
                }
                let part = acc.parts.last_mut().expect("pushed above");
                part.end = b;
                let (pos, val) = (&mut part.positions, &mut part.values);
                let mut u = [0u32; 64];
                for (c, chunk) in block.chunks(64).enumerate() {
                    for (x, &w) in u.iter_mut().zip(chunk) {
                        *x = abs_bits(w);
                    }
                    // A short last chunk: the lanes past it are zero, neither kept nor counted.
                    u[chunk.len()..].fill(0);
                    let (mut kept, nz, nf) = scan64(&u, lo);
                    nonzero += nz as u64;
                    bad |= nf;
                    while kept != 0 {
                        let i = c * 64 + kept.trailing_zeros() as usize;
                        pos.push((a + i) as u64);
                        val.push(block[i]);
                        acc.high[(u[i - c * 64] >> 16) as usize] += 1;
                        kept &= kept - 1;
                    }
                }
                acc.nonzero += nonzero;
                if bad
                    && let Some(i) = block.iter().position(|w| !w.is_finite())
                    && acc.first_bad.is_none_or(|(at, _)| a + i < at)
                {
                    acc.first_bad = Some((a + i, block[i]));
                }
                (acc, buf)
            },
        )
        .map(|(acc, _)| acc)
        .reduce(Acc::new, Acc::merge);
    let Acc {
        nonzero,
        first_bad,
        mut parts,
        high,
    } = acc;
    parts.sort_unstable_by_key(|p| p.start);
    let total: usize = parts.iter().map(|p| p.positions.len()).sum();
    let mut parts = parts.into_iter();
    // The first run's vectors become the result; the others are appended in order.
    let (mut positions, mut values) = match parts.next() {
        Some(p) => (p.positions, p.values),
        None => (Vec::new(), Vec::new()),
    };
    positions.reserve_exact(total - positions.len());
    values.reserve_exact(total - values.len());
    for p in parts {
        positions.extend_from_slice(&p.positions);
        values.extend_from_slice(&p.values);
    }
    Scan {
        nonzero,
        first_bad,
        positions,
        values,
        high,
    }
}

/// The smallest |w| bit pattern whose magnitude is at least `t` (as f64): what the rule
/// "keep |w| >= t" keeps, as an integer threshold.
fn bits_at_least(t: f64) -> u32 {
    if t.is_nan() || t <= 0.0 {
        return 1;
    }
    if t > f32::MAX as f64 {
        return INF;
    }
    let mut v = t as f32;
    if (v as f64) < t {
        v = f32::from_bits(v.to_bits() + 1);
    }
    // Rounding to f32 may have gone up past the smallest: step back while still >= t.
    while v.to_bits() > 1 && (f32::from_bits(v.to_bits() - 1) as f64) >= t {
        v = f32::from_bits(v.to_bits() - 1);
    }
    v.to_bits().max(1)
}

/// High-bits histogram of |w| over the finite non-zeros of `values`.
fn histogram(values: &[f32]) -> Vec<u64> {
    let mut high = vec![0u64; 1 << 15];
    for &w in values {
        let u = abs_bits(w);
        if u != 0 && u < 0x7f80_0000 {
            high[(u >> 16) as usize] += 1;
        }
    }
    high
}

/// The same histogram over a whole tensor, in blocks (integer counts: any merge order).
fn histogram_pass(len: usize, read: &Read) -> Vec<u64> {
    #[cfg(test)]
    SCANS.with(|c| c.set(c.get() + 1));
    map_blocks(len, read, histogram).reduce(|| vec![0u64; 1 << 15], add_counts)
}

/// Where the threshold estimate samples: up to `windows` evenly spaced runs of `width` weights
/// (all of them when `min_len` is 0, as tests set it), for tensors of at least `min_len`
/// weights.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sampling {
    pub(crate) windows: usize,
    pub(crate) width: usize,
    pub(crate) min_len: usize,
}

/// The sampling [`select`] uses: a sixteenth of the tensor in windows of 4096 weights, at
/// most 256 of them (1M weights), for tensors of 256K weights or more.
const SAMPLING: Sampling = Sampling {
    windows: 256,
    width: 4096,
    min_len: 1 << 18,
};

/// A bin safely at or below where the `k` largest of `len` weights start, estimated from
/// evenly spaced windows of the tensor (deterministic; as many as a sixteenth of it fills, up
/// to the sampling's count): a quarter more than the expected count, plus four standard
/// deviations, plus one bin. Only speed depends on it: a wrong guess costs one more pass,
/// never a different result.
fn estimated_bin(len: usize, read: &Read, k: u64, sampling: &Sampling) -> usize {
    let Sampling {
        windows,
        width,
        min_len,
    } = *sampling;
    let windows = if min_len == 0 {
        windows
    } else {
        windows.min(len / (16 * width.max(1)))
    };
    if len < min_len.max(windows * width) || windows < 2 {
        return 0; // small tensors: collect every non-zero in the one pass
    }
    let mut sample = vec![0f32; windows * width];
    for (i, window) in sample.chunks_mut(width).enumerate() {
        read(i * (len - width) / (windows - 1), window);
    }
    let high = histogram(&sample);
    let expected = k as f64 * (windows * width) as f64 / len as f64;
    let target = (1.25 * expected + 4.0 * expected.sqrt() + 16.0).ceil() as u64;
    threshold_bin(&high, target).0.saturating_sub(1)
}

/// Selects the weights `rule` keeps from `len` weights read through `read`, exactly as
/// [`crate::prune`] would (same count, same ties), without holding them all: one pass for
/// most rules (two for the std-dev rule, whose threshold needs the moments first).
pub fn select(len: usize, read: &Read, rule: Rule) -> Result<Selection> {
    select_with(len, read, rule, &SAMPLING)
}

/// [`select`] with another sampling (tests reach the sampled path with small tensors).
pub(crate) fn select_with(
    len: usize,
    read: &Read,
    rule: Rule,
    sampling: &Sampling,
) -> Result<Selection> {
    rule.validate()?;
    let (scan, positions, values) = match rule {
        Rule::KeepAll => {
            let mut sc = scan(len, read, 1);
            let (p, v) = (
                std::mem::take(&mut sc.positions),
                std::mem::take(&mut sc.values),
            );
            (sc, p, v)
        }
        Rule::ThresholdStd(s) => {
            let t = s * std_dev(len, read);
            let mut sc = scan(len, read, bits_at_least(t));
            let (p, v) = (
                std::mem::take(&mut sc.positions),
                std::mem::take(&mut sc.values),
            );
            (sc, p, v)
        }
        Rule::Density(_) | Rule::Count(_) => {
            let wanted = match rule {
                Rule::Density(d) => (d * len as f64).round() as u64,
                Rule::Count(k) => k,
                _ => unreachable!(),
            };
            let low = estimated_bin(len, read, wanted, sampling);
            let mut sc = scan(len, read, (low as u32) << 16);
            let k = wanted.min(sc.nonzero);
            let (p, v) = if k == 0 {
                (Vec::new(), Vec::new())
            } else if sc.values.len() as u64 >= k {
                // At least k candidates: the k largest are all among them.
                let (bin, above) = threshold_bin(&sc.high, k);
                top_k(
                    std::mem::take(&mut sc.positions),
                    std::mem::take(&mut sc.values),
                    bin,
                    k - above,
                )
            } else {
                // The sample guessed too high: the exact bin from a full histogram, then
                // collect again from it.
                let (bin, above) = threshold_bin(&histogram_pass(len, read), k);
                let again = scan(len, read, (bin as u32) << 16);
                top_k(again.positions, again.values, bin, k - above)
            };
            (sc, p, v)
        }
    };
    if let Some((index, value)) = scan.first_bad {
        return Err(Error::NonFinite { index, value });
    }
    let threshold = values.iter().map(|v| v.abs()).fold(f32::INFINITY, f32::min);
    Ok(Selection {
        report: PruneReport {
            before: scan.nonzero,
            kept: positions.len() as u64,
            threshold,
            balance: None,
        },
        positions,
        values,
    })
}

/// From candidates (every non-zero whose high bits reach `bin`, in order): all those above
/// the bin, and the `in_bin` largest inside it (magnitude descending, then earliest); one
/// pass keeps them in order, compacting the candidates in place.
fn top_k(
    mut positions: Vec<u64>,
    mut values: Vec<f32>,
    bin: usize,
    in_bin: u64,
) -> (Vec<u64>, Vec<f32>) {
    let high = |v: f32| (abs_bits(v) >> 16) as usize;
    let mut inside: Vec<usize> = (0..values.len())
        .filter(|&i| high(values[i]) == bin)
        .collect();
    let wanted = (in_bin as usize).min(inside.len());
    inside.sort_unstable_by(|&a, &b| {
        abs_bits(values[b])
            .cmp(&abs_bits(values[a]))
            .then(a.cmp(&b))
    });
    let mut kept_inside = inside[..wanted].to_vec();
    kept_inside.sort_unstable();
    let mut next_inside = kept_inside.iter().peekable();
    let mut n = 0;
    for i in 0..values.len() {
        let v = values[i];
        let keep = match high(v).cmp(&bin) {
            std::cmp::Ordering::Greater => true,
            std::cmp::Ordering::Less => false,
            std::cmp::Ordering::Equal => next_inside.next_if_eq(&&i).is_some(),
        };
        if keep {
            positions[n] = positions[i];
            values[n] = v;
            n += 1;
        }
    }
    positions.truncate(n);
    values.truncate(n);
    (positions, values)
}
