//! Sorted values with prefix sums: the one representation every 1-D k-means step works on.
//! Clusters of 1-D k-means are contiguous runs of the sorted values, so a cluster's count,
//! sum and sum of squares are two prefix-sum lookups, and an assignment is k - 1 binary
//! searches.

/// Values sorted ascending (as f64), with prefix sums of the values and of their squares.
#[derive(Debug, Clone)]
pub struct Sorted {
    x: Vec<f64>,
    s1: Vec<f64>,
    s2: Vec<f64>,
}

impl Sorted {
    /// Sorts `values` once (they must be finite).
    pub fn new(values: &[f32]) -> Self {
        let mut v = values.to_vec();
        v.sort_unstable_by(f32::total_cmp);
        let x: Vec<f64> = v.into_iter().map(f64::from).collect();
        let mut s1 = Vec::with_capacity(x.len() + 1);
        let mut s2 = Vec::with_capacity(x.len() + 1);
        let (mut a, mut b) = (0.0f64, 0.0f64);
        s1.push(0.0);
        s2.push(0.0);
        for &v in &x {
            a += v;
            b += v * v;
            s1.push(a);
            s2.push(b);
        }
        Self { x, s1, s2 }
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
    pub fn values(&self) -> &[f64] {
        &self.x
    }

    /// Sum of values `i..j`.
    pub fn sum(&self, i: usize, j: usize) -> f64 {
        self.s1[j] - self.s1[i]
    }

    /// Sum of squared deviations of values `i..j` from their mean.
    pub fn cost(&self, i: usize, j: usize) -> f64 {
        if j <= i {
            return 0.0;
        }
        let s = self.s1[j] - self.s1[i];
        let q = self.s2[j] - self.s2[i];
        (q - s * s / (j - i) as f64).max(0.0)
    }

    /// Sum of squared distances of values `i..j` to `c`.
    pub fn cost_to(&self, i: usize, j: usize, c: f64) -> f64 {
        let s = self.s1[j] - self.s1[i];
        let q = self.s2[j] - self.s2[i];
        (q - 2.0 * c * s + (j - i) as f64 * c * c).max(0.0)
    }

    /// Cluster boundaries for ascending `centers`: `b[0] = 0`, `b[k] = n`, and cluster j holds
    /// values `b[j]..b[j+1]`, those nearer to `c[j]` than to its neighbours (a value exactly
    /// between two centers goes to the lower one).
    pub fn bounds(&self, centers: &[f64]) -> Vec<usize> {
        let mut b = Vec::with_capacity(centers.len() + 1);
        b.push(0);
        for w in centers.windows(2) {
            let mid = (w[0] + w[1]) / 2.0;
            b.push(self.x.partition_point(|&v| v <= mid));
        }
        b.push(self.x.len());
        b
    }

    /// Number of distinct values.
    pub fn distinct(&self) -> usize {
        if self.x.is_empty() {
            return 0;
        }
        1 + self.x.windows(2).filter(|w| w[0] != w[1]).count()
    }

    /// The distinct values, ascending.
    pub fn distinct_values(&self) -> Vec<f64> {
        let mut d = self.x.clone();
        d.dedup();
        d
    }

    /// SSE of assigning every value to its nearest center (`centers` ascending).
    pub fn sse(&self, centers: &[f64]) -> f64 {
        let b = self.bounds(centers);
        centers
            .iter()
            .enumerate()
            .map(|(j, &c)| self.cost_to(b[j], b[j + 1], c))
            .sum()
    }
}
