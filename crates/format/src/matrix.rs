//! A dense matrix of codes: the encoder's input and the decoder's output.

use crate::error::{Error, Result};

/// A rows x cols matrix of codes, row-major, in PyTorch's [out, in] layout: row i is output
/// i, column j is input j. Code 0 marks a pruned (zero) weight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeMatrix {
    rows: usize,
    cols: usize,
    codes: Vec<u8>,
}

impl CodeMatrix {
    /// Wraps a row-major buffer of `rows * cols` codes.
    pub fn new(rows: usize, cols: usize, codes: Vec<u8>) -> Result<Self> {
        let expected = rows.checked_mul(cols);
        if expected != Some(codes.len()) {
            return Err(Error::MatrixSize {
                rows,
                cols,
                expected: expected.unwrap_or(usize::MAX),
                got: codes.len(),
            });
        }
        Ok(Self { rows, cols, codes })
    }

    /// An all-zero (fully pruned) matrix.
    pub fn zeros(rows: usize, cols: usize) -> Result<Self> {
        let n = rows.checked_mul(cols).ok_or(Error::MatrixSize {
            rows,
            cols,
            expected: usize::MAX,
            got: 0,
        })?;
        Ok(Self {
            rows,
            cols,
            codes: vec![0; n],
        })
    }

    /// Number of rows (outputs).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns (inputs).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Code at (`row`, `col`).
    ///
    /// # Panics
    /// If the position is outside the matrix.
    pub fn get(&self, row: usize, col: usize) -> u8 {
        assert!(
            row < self.rows && col < self.cols,
            "({row}, {col}) outside {}x{}",
            self.rows,
            self.cols
        );
        self.codes[row * self.cols + col]
    }

    /// Sets the code at (`row`, `col`).
    ///
    /// # Panics
    /// If the position is outside the matrix.
    pub fn set(&mut self, row: usize, col: usize, code: u8) {
        assert!(
            row < self.rows && col < self.cols,
            "({row}, {col}) outside {}x{}",
            self.rows,
            self.cols
        );
        self.codes[row * self.cols + col] = code;
    }

    /// One row of codes.
    ///
    /// # Panics
    /// If `row` is outside the matrix.
    pub fn row(&self, row: usize) -> &[u8] {
        &self.codes[row * self.cols..(row + 1) * self.cols]
    }

    /// The row-major buffer.
    pub fn as_slice(&self) -> &[u8] {
        &self.codes
    }

    /// Number of non-zero codes.
    pub fn nonzeros(&self) -> usize {
        self.codes.iter().filter(|&&c| c != 0).count()
    }
}
