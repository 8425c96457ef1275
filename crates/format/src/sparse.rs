//! Codes in sparse form: the non-zero codes of a rows x cols matrix with their row-major
//! positions. The encoder works on this form (a pruned layer is mostly zeros).

use crate::error::{Error, Result};
use crate::matrix::CodeMatrix;

/// The non-zero codes of a rows x cols matrix, in row-major order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SparseCodes {
    rows: usize,
    cols: usize,
    positions: Vec<u64>,
    codes: Vec<u8>,
}

impl SparseCodes {
    /// Wraps row-major `positions` (`row * cols + col`, strictly increasing, each below
    /// rows x cols) and their non-zero `codes`.
    pub fn new(rows: usize, cols: usize, positions: Vec<u64>, codes: Vec<u8>) -> Result<Self> {
        let size = (rows as u64).checked_mul(cols as u64);
        let bad = |reason: String| Err(Error::InvalidSparse { rows, cols, reason });
        let Some(size) = size else {
            return bad(format!("{rows} x {cols} overflows"));
        };
        if positions.len() != codes.len() {
            return bad(format!(
                "{} positions but {} codes",
                positions.len(),
                codes.len()
            ));
        }
        if let Some(i) = positions.windows(2).position(|w| w[0] >= w[1]) {
            return bad(format!("positions not strictly increasing at {}", i + 1));
        }
        if positions.last().is_some_and(|&p| p >= size) {
            return bad(format!(
                "position {} outside {rows} x {cols}",
                positions.last().unwrap()
            ));
        }
        if let Some(i) = codes.iter().position(|&c| c == 0) {
            return bad(format!(
                "code 0 at position {} (zeros are not stored)",
                positions[i]
            ));
        }
        Ok(Self {
            rows,
            cols,
            positions,
            codes,
        })
    }

    /// The non-zeros of a dense code matrix.
    pub fn from_dense(m: &CodeMatrix) -> Self {
        let (positions, codes) = m
            .as_slice()
            .iter()
            .enumerate()
            .filter(|&(_, &c)| c != 0)
            .map(|(i, &c)| (i as u64, c))
            .unzip();
        Self {
            rows: m.rows(),
            cols: m.cols(),
            positions,
            codes,
        }
    }

    /// The dense matrix back.
    pub fn to_dense(&self) -> CodeMatrix {
        let mut m = CodeMatrix::zeros(self.rows, self.cols).expect("size checked at construction");
        for (&p, &c) in self.positions.iter().zip(&self.codes) {
            m.set(p as usize / self.cols, p as usize % self.cols, c);
        }
        m
    }

    /// Rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Row-major positions of the non-zeros, ascending.
    pub fn positions(&self) -> &[u64] {
        &self.positions
    }

    /// The non-zero codes, in position order.
    pub fn codes(&self) -> &[u8] {
        &self.codes
    }

    /// Number of non-zeros.
    pub fn len(&self) -> usize {
        self.codes.len()
    }

    /// Whether there is no non-zero.
    pub fn is_empty(&self) -> bool {
        self.codes.is_empty()
    }

    /// The columns `first..end` alone, as codes of a rows x (end - first) matrix.
    ///
    /// # Panics
    /// If the range is not inside the matrix.
    pub fn columns(&self, first: usize, end: usize) -> SparseCodes {
        assert!(
            first <= end && end <= self.cols,
            "columns {first}..{end} of {}",
            self.cols
        );
        let starts = self.row_starts();
        let width = (end - first) as u64;
        let (mut positions, mut codes) = (Vec::new(), Vec::new());
        for r in 0..self.rows {
            let base = (r * self.cols) as u64;
            for i in starts[r]..starts[r + 1] {
                let col = self.positions[i] - base;
                if (first as u64..end as u64).contains(&col) {
                    positions.push(r as u64 * width + col - first as u64);
                    codes.push(self.codes[i]);
                }
            }
        }
        SparseCodes {
            rows: self.rows,
            cols: end - first,
            positions,
            codes,
        }
    }

    /// Where each row's non-zeros start in [`SparseCodes::positions`]: `rows + 1` offsets
    /// (positions are row-major, so one binary search per row, no division per entry).
    pub(crate) fn row_starts(&self) -> Vec<usize> {
        let cols = self.cols as u64;
        (0..=self.rows as u64)
            .map(|r| self.positions.partition_point(|&p| p < r * cols))
            .collect()
    }

    /// (local row, column, code) of every non-zero of PE `pe` of `pes`, local rows
    /// ascending; `starts` from [`SparseCodes::row_starts`].
    pub(crate) fn pe_entries(
        &self,
        starts: &[usize],
        pes: usize,
        pe: usize,
    ) -> Vec<(u32, u32, u8)> {
        let rows = (pe..self.rows).step_by(pes);
        let n = rows.clone().map(|r| starts[r + 1] - starts[r]).sum();
        let mut out = Vec::with_capacity(n);
        for (local, r) in rows.enumerate() {
            let base = (r * self.cols) as u64;
            for i in starts[r]..starts[r + 1] {
                out.push((
                    local as u32,
                    (self.positions[i] - base) as u32,
                    self.codes[i],
                ));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn construction_checks_every_rule() {
        assert!(SparseCodes::new(2, 3, vec![0, 4, 5], vec![1, 2, 3]).is_ok());
        for (positions, codes, what) in [
            (vec![0, 4], vec![1], "lengths"),
            (vec![4, 0], vec![1, 2], "order"),
            (vec![3, 3], vec![1, 2], "duplicate"),
            (vec![6], vec![1], "range"),
            (vec![1], vec![0], "zero code"),
        ] {
            assert!(SparseCodes::new(2, 3, positions, codes).is_err(), "{what}");
        }
        let m = CodeMatrix::new(2, 3, vec![0, 7, 0, 1, 0, 2]).unwrap();
        let s = SparseCodes::from_dense(&m);
        assert_eq!(
            (s.positions(), s.codes()),
            (&[1u64, 3, 5][..], &[7u8, 1, 2][..])
        );
        assert_eq!(s.to_dense(), m);
    }
}
