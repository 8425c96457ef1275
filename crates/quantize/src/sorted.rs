//! Sorted values with prefix sums: the one representation every 1-D k-means step works on.
//! Clusters of 1-D k-means are contiguous runs of the sorted values, so a cluster's count,
//! sum and sum of squares are two prefix-sum lookups, and an assignment is k - 1 binary
//! searches.

/// Values sorted ascending, with prefix sums (f64) of the values and of their squares; with
/// a weight per value ([`Sorted::weighted`]), of the weights, the weighted values and the
/// weighted squares, so every cost below is the weighted one.
#[derive(Debug, Clone)]
pub struct Sorted {
    x: Vec<f32>,
    /// Prefix sums of the weights (None: every weight is 1, the mass of a run its length).
    s0: Option<Vec<f64>>,
    /// The weights in sorted order (None: all 1).
    w: Option<Vec<f64>>,
    s1: Vec<f64>,
    s2: Vec<f64>,
}

impl Sorted {
    /// Sorts `values` once (they must be finite).
    pub fn new(values: &[f32]) -> Self {
        let x = sort(values);
        let mut s1 = Vec::with_capacity(x.len() + 1);
        let mut s2 = Vec::with_capacity(x.len() + 1);
        let (mut a, mut b) = (0.0f64, 0.0f64);
        s1.push(0.0);
        s2.push(0.0);
        for &v in &x {
            let v = v as f64;
            a += v;
            b += v * v;
            s1.push(a);
            s2.push(b);
        }
        Self {
            x,
            s0: None,
            w: None,
            s1,
            s2,
        }
    }

    /// Sorts `values` (finite) with their `weights` (finite and > 0, one per value; the
    /// caller checks both): each value then counts as much as its weight in every sum, cost
    /// and mean. Equal values keep their weights summed whatever their order.
    pub fn weighted(values: &[f32], weights: &[f64]) -> Self {
        assert_eq!(values.len(), weights.len(), "one weight per value");
        let mut order: Vec<usize> = (0..values.len()).collect();
        order.sort_unstable_by(|&a, &b| values[a].total_cmp(&values[b]).then(a.cmp(&b)));
        let x: Vec<f32> = order.iter().map(|&i| values[i]).collect();
        let w: Vec<f64> = order.iter().map(|&i| weights[i]).collect();
        let n = x.len() + 1;
        let (mut s0, mut s1, mut s2) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let (mut m, mut a, mut b) = (0.0f64, 0.0f64, 0.0f64);
        s0.push(0.0);
        s1.push(0.0);
        s2.push(0.0);
        for (&v, &wt) in x.iter().zip(&w) {
            let v = v as f64;
            m += wt;
            a += wt * v;
            b += wt * v * v;
            s0.push(m);
            s1.push(a);
            s2.push(b);
        }
        Self {
            x,
            s0: Some(s0),
            w: Some(w),
            s1,
            s2,
        }
    }

    /// Whether the values carry weights.
    pub fn is_weighted(&self) -> bool {
        self.s0.is_some()
    }

    /// The weight of sorted value `i` (1 without weights).
    pub fn weight(&self, i: usize) -> f64 {
        self.w.as_ref().map_or(1.0, |w| w[i])
    }

    /// The mass of values `i..j`: their count, or the sum of their weights.
    pub fn mass(&self, i: usize, j: usize) -> f64 {
        match &self.s0 {
            Some(s0) => s0[j] - s0[i],
            None => j.saturating_sub(i) as f64,
        }
    }

    /// The (weighted) mean of values `i..j` (`i < j`).
    pub fn mean(&self, i: usize, j: usize) -> f64 {
        self.sum(i, j) / self.mass(i, j)
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        self.x.len()
    }

    /// Whether there are no values.
    pub fn is_empty(&self) -> bool {
        self.x.is_empty()
    }

    /// The sorted values.
    pub fn values(&self) -> &[f32] {
        &self.x
    }

    /// Sorted value `i`, as f64.
    pub fn at(&self, i: usize) -> f64 {
        self.x[i] as f64
    }

    /// (Weighted) sum of values `i..j`.
    pub fn sum(&self, i: usize, j: usize) -> f64 {
        self.s1[j] - self.s1[i]
    }

    /// (Weighted) sum of squared deviations of values `i..j` from their mean.
    pub fn cost(&self, i: usize, j: usize) -> f64 {
        if j <= i {
            return 0.0;
        }
        let s = self.s1[j] - self.s1[i];
        let q = self.s2[j] - self.s2[i];
        (q - s * s / self.mass(i, j)).max(0.0)
    }

    /// (Weighted) sum of squared distances of values `i..j` to `c`.
    pub fn cost_to(&self, i: usize, j: usize, c: f64) -> f64 {
        let s = self.s1[j] - self.s1[i];
        let q = self.s2[j] - self.s2[i];
        (q - 2.0 * c * s + self.mass(i, j) * c * c).max(0.0)
    }

    /// Cluster boundaries for ascending `centers`: `b[0] = 0`, `b[k] = n`, and cluster j holds
    /// values `b[j]..b[j+1]`, those nearer to `c[j]` than to its neighbours (a value exactly
    /// between two centers goes to the lower one).
    pub fn bounds(&self, centers: &[f64]) -> Vec<usize> {
        let mut b = Vec::with_capacity(centers.len() + 1);
        b.push(0);
        for w in centers.windows(2) {
            let mid = (w[0] + w[1]) / 2.0;
            b.push(self.x.partition_point(|&v| v as f64 <= mid));
        }
        b.push(self.x.len());
        b
    }

    /// Number of distinct values.
    pub fn distinct(&self) -> usize {
        self.distinct_up_to(usize::MAX)
    }

    /// The number of distinct values, counting stops past `limit` (so checking "at most k"
    /// costs a pass only over the values it takes to find k + 1 of them).
    pub fn distinct_up_to(&self, limit: usize) -> usize {
        if self.x.is_empty() {
            return 0;
        }
        let mut n = 1;
        for w in self.x.windows(2) {
            if w[0] != w[1] {
                n += 1;
                if n > limit {
                    break;
                }
            }
        }
        n
    }

    /// The distinct values, ascending.
    pub fn distinct_values(&self) -> Vec<f64> {
        let mut d: Vec<f64> = self.x.iter().map(|&v| v as f64).collect();
        d.dedup();
        d
    }

    /// (Weighted) SSE of assigning every value to its nearest center (`centers` ascending).
    pub fn sse(&self, centers: &[f64]) -> f64 {
        let b = self.bounds(centers);
        centers
            .iter()
            .enumerate()
            .map(|(j, &c)| self.cost_to(b[j], b[j + 1], c))
            .sum()
    }
}

/// `values` in ascending (total) order. Large inputs take an LSD radix sort (three passes of
/// 11 bits) on order-preserving integer keys: several times faster than comparing; two
/// halves are sorted side by side and merged.
pub fn sort(values: &[f32]) -> Vec<f32> {
    if values.len() < 1 << 16 {
        let mut v = values.to_vec();
        v.sort_unstable_by(f32::total_cmp);
        return v;
    }
    let (lo, hi) = values.split_at(values.len() / 2);
    let (a, b) = rayon::join(|| radix_keys(lo), || radix_keys(hi));
    // Merge the two sorted key runs; keys compare like the values' total order.
    let mut out = Vec::with_capacity(values.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        let (x, y) = (a[i], b[j]);
        let take_a = x <= y;
        out.push(unkey(if take_a { x } else { y }));
        i += take_a as usize;
        j += !take_a as usize;
    }
    out.extend(a[i..].iter().map(|&k| unkey(k)));
    out.extend(b[j..].iter().map(|&k| unkey(k)));
    out
}

/// The order-preserving key of a float: flip the sign bit of positives and every bit of
/// negatives, and unsigned order is the total order.
fn key(x: f32) -> u32 {
    let b = x.to_bits();
    if b >> 31 == 1 { !b } else { b | 0x8000_0000 }
}

fn unkey(k: u32) -> f32 {
    f32::from_bits(if k >> 31 == 1 { k & 0x7fff_ffff } else { !k })
}

/// The keys of `values`, sorted by an LSD radix sort; a pass whose digit is the same for
/// every key (the high bits of weights of one layer often are) is skipped.
fn radix_keys(values: &[f32]) -> Vec<u32> {
    let mut a: Vec<u32> = values.iter().map(|&x| key(x)).collect();
    let mut b = vec![0u32; a.len()];
    for shift in [0u32, 11, 22] {
        let mut count = [0usize; 2048];
        for &k in &a {
            count[((k >> shift) & 0x7ff) as usize] += 1;
        }
        if count.contains(&a.len()) {
            continue;
        }
        let mut at = 0;
        for c in count.iter_mut() {
            let n = *c;
            *c = at;
            at += n;
        }
        for &k in &a {
            let d = ((k >> shift) & 0x7ff) as usize;
            b[count[d]] = k;
            count[d] += 1;
        }
        std::mem::swap(&mut a, &mut b);
    }
    a
}
