//! The tester: runs one code matrix through every code path of the format, for every PE
//! count in [`PE_COUNTS`] and several index widths, and checks each against an independent
//! count of what the streams must hold.

use crate::{Bundle, BundleMeta, CodeMatrix, Codebook, PackedLayer, SourceInfo, max_z, slice_rows};

/// The PE counts every case runs through.
pub const PE_COUNTS: [usize; 6] = [1, 2, 3, 4, 8, 64];

/// A codebook defining every code 1..=max_code (values are irrelevant to the format).
pub fn codebook_for(code_bits: u8, max_code: u8) -> Codebook {
    let values: Vec<f32> = (1..=max_code)
        .map(|c| c as f32 * 0.125 - 1.0)
        .map(|v| if v == 0.0 { 0.0625 } else { v })
        .collect();
    Codebook::new(code_bits, &values).unwrap()
}

/// Encodes `matrix` with `pes` PEs and checks: the streams validate, decode gives the matrix
/// back, every column's entry count matches an independent count of non-zeros plus
/// padding (floor(gap / (max_z + 1)) per gap), and the bundle round trip is exact.
pub fn check(matrix: &CodeMatrix, code_bits: u8, pes: usize, index_bits: u8) -> PackedLayer {
    let max_code = matrix.as_slice().iter().copied().max().unwrap_or(0);
    let book = codebook_for(code_bits, max_code);
    let ctx = format!(
        "{}x{} N={pes} index_bits={index_bits}",
        matrix.rows(),
        matrix.cols()
    );
    let layer = PackedLayer::encode("t", matrix, book.clone(), pes, index_bits).unwrap();
    assert_eq!(layer.pes(), pes, "{ctx}");
    assert_eq!(&layer.decode(), matrix, "{ctx}: decode is not the inverse");
    let sparse = crate::SparseCodes::from_dense(matrix);
    assert_eq!(
        layer.decode_sparse(),
        sparse,
        "{ctx}: sparse decode is not the inverse"
    );
    let from_sparse =
        PackedLayer::encode_sparse("t", &sparse, book.clone(), pes, index_bits).unwrap();
    assert_eq!(
        from_sparse, layer,
        "{ctx}: sparse and dense encodings differ"
    );
    let counts: Vec<u64> = layer.streams().iter().map(|s| s.entries() as u64).collect();
    assert_eq!(
        crate::entry_counts(&sparse, pes, index_bits).unwrap(),
        counts,
        "{ctx}: entry counts"
    );

    // Independent count of what every column of every PE must hold.
    let period = max_z(index_bits) as usize + 1;
    for pe in 0..pes {
        let s = &layer.streams()[pe];
        assert_eq!(s.ptr().len(), matrix.cols() + 1, "{ctx}");
        for j in 0..matrix.cols() {
            let rows: Vec<usize> = (0..slice_rows(matrix.rows(), pes, pe))
                .filter(|&local| matrix.get(pe + local * pes, j) != 0)
                .collect();
            let mut expected = rows.len();
            let mut prev: Option<usize> = None;
            for &r in &rows {
                let gap = match prev {
                    None => r,
                    Some(p) => r - p - 1,
                };
                expected += gap / period;
                prev = Some(r);
            }
            assert_eq!(s.column_entries(j), expected, "{ctx}: PE {pe} column {j}");
        }
    }
    assert_eq!(layer.nonzeros(), matrix.nonzeros(), "{ctx}");

    // Rebuilding from the raw parts passes validation and gives the same layer.
    let rebuilt = PackedLayer::from_parts(
        "t",
        None,
        matrix.rows(),
        matrix.cols(),
        index_bits,
        book,
        layer.streams().to_vec(),
    )
    .unwrap_or_else(|e| panic!("{ctx}: encoder output fails validation: {e}"));
    assert_eq!(rebuilt, layer, "{ctx}");

    // Column batches: the parts put side by side are the layer, and survive a bundle.
    for batch in [1usize, 3, 7] {
        let parts = layer.clone().split_columns(batch).unwrap();
        let mut joined = CodeMatrix::zeros(matrix.rows(), matrix.cols()).unwrap();
        for part in &parts {
            let m = part.decode();
            for r in 0..m.rows() {
                for c in 0..m.cols() {
                    joined.set(r, part.first_col() + c, m.get(r, c));
                }
            }
            assert_eq!(part.total_cols(), matrix.cols(), "{ctx}");
        }
        assert_eq!(&joined, matrix, "{ctx}: batch {batch}");
        if matrix.cols() > batch {
            assert_eq!(parts.len(), matrix.cols().div_ceil(batch), "{ctx}");
        }
        let meta = BundleMeta {
            tool_version: "tester".into(),
            source: SourceInfo::default(),
            pointer_bits: 32,
            settings: Default::default(),
        };
        let bundle = Bundle::new(meta, parts).unwrap();
        assert_eq!(bundle.logical_layers().len(), 1, "{ctx}");
        assert_eq!(
            Bundle::from_bytes(&bundle.to_bytes().unwrap()).unwrap(),
            bundle,
            "{ctx}"
        );
    }

    // Through the bundle and back.
    let meta = BundleMeta {
        tool_version: "tester".into(),
        source: SourceInfo::default(),
        pointer_bits: 32,
        settings: Default::default(),
    };
    let bundle = Bundle::new(meta, vec![layer.clone()]).unwrap();
    let back = Bundle::from_bytes(&bundle.to_bytes().unwrap()).unwrap();
    assert_eq!(back, bundle, "{ctx}: bundle round trip");
    layer
}

/// [`check`] for every N in [`PE_COUNTS`] and index widths 1, 2, 4 and 8.
pub fn check_all(matrix: &CodeMatrix, code_bits: u8) {
    for pes in PE_COUNTS {
        for index_bits in [1, 2, 4, 8] {
            check(matrix, code_bits, pes, index_bits);
        }
    }
}

/// The 16 x 8 matrix of the paper's Figure 2 (non-zero pattern from the reference doc), with
/// code `(row + col) % 15 + 1` at each non-zero.
pub fn figure2() -> CodeMatrix {
    let pattern: [&[usize]; 16] = [
        &[0, 2, 4, 5, 6],
        &[1, 3, 6],
        &[2, 4, 7],
        &[1, 5],
        &[1, 4],
        &[4, 7],
        &[4, 6],
        &[0, 4, 7],
        &[0, 7],
        &[0, 6, 7],
        &[4],
        &[2, 7],
        &[0, 2, 5, 7],
        &[0, 6],
        &[2, 3, 4, 5],
        &[2, 3, 5],
    ];
    let mut m = CodeMatrix::zeros(16, 8).unwrap();
    for (row, cols) in pattern.iter().enumerate() {
        for &col in cols.iter() {
            m.set(row, col, ((row + col) % 15 + 1) as u8);
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn figure2_pe0_is_as_printed() {
        let layer = check(&figure2(), 4, 4, 4);
        let pe0 = &layer.streams()[0];
        assert_eq!(pe0.z(), &[0, 1, 0, 1, 0, 2, 0, 0, 0, 2, 0, 2, 0]);
        assert_eq!(pe0.ptr(), &[0, 3, 4, 6, 6, 8, 10, 11, 13]);
        // W0,0 W8,0 W12,0 W4,1 W0,2 W12,2 W0,4 W4,4 W0,5 W12,5 W0,6 W8,7 W12,7
        let m = figure2();
        let order = [
            (0, 0),
            (8, 0),
            (12, 0),
            (4, 1),
            (0, 2),
            (12, 2),
            (0, 4),
            (4, 4),
            (0, 5),
            (12, 5),
            (0, 6),
            (8, 7),
            (12, 7),
        ];
        let expected: Vec<u8> = order.iter().map(|&(r, c)| m.get(r, c)).collect();
        assert_eq!(pe0.codes(), &expected[..]);
        assert_eq!(layer.padding(), 0);
        // All four PEs decode back (checked by `check`), and hold every non-zero once.
        let per_pe: Vec<usize> = layer.streams().iter().map(|s| s.entries()).collect();
        assert_eq!(per_pe.iter().sum::<usize>(), m.nonzeros());
    }

    #[test]
    fn figure2_through_every_pe_count() {
        check_all(&figure2(), 4);
    }

    #[test]
    fn empty_columns() {
        let mut m = CodeMatrix::zeros(20, 6).unwrap();
        for r in 0..20 {
            m.set(r, 2, 1);
            m.set(r, 4, 2);
        }
        check_all(&m, 4);
        let layer = check(&m, 4, 4, 4);
        for s in layer.streams() {
            assert_eq!(s.column_entries(0), 0);
            assert_eq!(s.column_entries(5), 0);
        }
    }

    #[test]
    fn empty_pes() {
        // Only rows 0 and 4 are non-zero: with 4 PEs, PEs 1-3 hold nothing.
        let mut m = CodeMatrix::zeros(8, 5).unwrap();
        for c in 0..5 {
            m.set(0, c, 3);
            m.set(4, c, 1);
        }
        check_all(&m, 2);
        let layer = check(&m, 2, 4, 4);
        for s in &layer.streams()[1..] {
            assert_eq!(s.entries(), 0);
            assert_eq!(s.ptr(), &[0; 6]);
        }
    }

    #[test]
    fn more_pes_than_rows() {
        let m = CodeMatrix::new(3, 4, vec![1, 0, 2, 0, 0, 3, 0, 0, 1, 1, 1, 1]).unwrap();
        check_all(&m, 2);
        let layer = check(&m, 2, 64, 4);
        assert_eq!(layer.slice_rows(2), 1);
        assert_eq!(layer.slice_rows(3), 0);
        assert!(layer.streams()[3..].iter().all(|s| s.entries() == 0));
    }

    #[test]
    fn one_column_and_zero_run_lengths() {
        for run in [15usize, 16, 31, 32, 47, 48, 100] {
            let mut col = vec![0u8; run];
            col.push(2);
            check_all(&CodeMatrix::new(col.len(), 1, col).unwrap(), 4);
        }
    }

    #[test]
    fn all_zero_full_and_degenerate_shapes() {
        check_all(&CodeMatrix::zeros(37, 9).unwrap(), 4);
        check_all(&CodeMatrix::new(9, 7, vec![5; 63]).unwrap(), 4);
        check_all(&CodeMatrix::zeros(0, 3).unwrap(), 4);
        check_all(&CodeMatrix::zeros(3, 0).unwrap(), 4);
        check_all(&CodeMatrix::new(1, 1, vec![1]).unwrap(), 1);
        check_all(&CodeMatrix::new(2, 2, vec![255, 0, 0, 128]).unwrap(), 8);
    }

    fn matrix_strategy() -> impl Strategy<Value = (CodeMatrix, u8)> {
        (0usize..90, 0usize..12, 1u8..=8, 0.0f64..=1.0, any::<u64>()).prop_map(
            |(rows, cols, code_bits, density, seed)| {
                // A small deterministic generator: proptest shrinks the seed and the shape.
                let mut state = seed | 1;
                let mut next = move || {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state
                };
                let max_code = ((1u32 << code_bits) - 1) as u64;
                let codes = (0..rows * cols)
                    .map(|_| {
                        let keep = (next() % 10_000) as f64 / 10_000.0 < density;
                        if keep {
                            (next() % max_code + 1) as u8
                        } else {
                            0
                        }
                    })
                    .collect();
                (CodeMatrix::new(rows, cols, codes).unwrap(), code_bits)
            },
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn encode_decode_is_identity(
            (matrix, code_bits) in matrix_strategy(),
            pes in prop_oneof![prop::sample::select(&PE_COUNTS[..]), 1usize..100],
            index_bits in 1u8..=8,
        ) {
            check(&matrix, code_bits, pes, index_bits);
        }
    }
}
