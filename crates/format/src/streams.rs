//! One PE's streams and the encoder / decoder between a code matrix and N such streams.
//!
//! The rules, normative in `docs/format.md`:
//! - row i of the matrix belongs to PE `i mod N`, at local row `i div N`;
//! - each PE stores its slice column by column; an entry is (code, z) where z counts the
//!   zeros (in the PE's slice of the column) since the previous entry, or since local row 0;
//! - when that count exceeds `max_z = 2^index_bits - 1`, a padding entry (code 0, z = max_z)
//!   is stored first; it stands at the zero `max_z + 1` rows further on, and repeats while the
//!   remaining count still exceeds `max_z`;
//! - column pointers: `ptr[0] = 0`, `ptr[j+1] - ptr[j]` = entries of column j, padding included.

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::sparse::SparseCodes;

/// Smallest relative-index width the format supports.
pub const MIN_INDEX_BITS: u8 = 1;
/// Largest relative-index width the format supports.
pub const MAX_INDEX_BITS: u8 = 8;

/// One PE's share of a layer: parallel arrays of codes and relative row indices, in column
/// order, and the column pointers into them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PeStreams {
    pub(crate) codes: Vec<u8>,
    pub(crate) z: Vec<u8>,
    pub(crate) ptr: Vec<u32>,
}

impl PeStreams {
    /// Wraps raw arrays without checking them; a [`crate::PackedLayer`] built from them
    /// validates them against its geometry.
    pub fn from_raw(codes: Vec<u8>, z: Vec<u8>, ptr: Vec<u32>) -> Self {
        Self { codes, z, ptr }
    }

    /// Weight code of every entry (0 for padding).
    pub fn codes(&self) -> &[u8] {
        &self.codes
    }

    /// Relative row index of every entry.
    pub fn z(&self) -> &[u8] {
        &self.z
    }

    /// Column pointers, `cols + 1` of them.
    pub fn ptr(&self) -> &[u32] {
        &self.ptr
    }

    /// Number of entries, padding included.
    pub fn entries(&self) -> usize {
        self.codes.len()
    }

    /// Number of padding entries (code 0).
    pub fn padding(&self) -> usize {
        self.codes.iter().filter(|&&c| c == 0).count()
    }

    /// Entries of column `col` (padding included).
    ///
    /// # Panics
    /// If `col` is not below the number of columns.
    pub fn column_entries(&self, col: usize) -> usize {
        (self.ptr[col + 1] - self.ptr[col]) as usize
    }
}

/// Number of rows of the matrix that PE `pe` of `pes` holds: rows pe, pe+N, pe+2N, ...
pub fn slice_rows(rows: usize, pes: usize, pe: usize) -> usize {
    if pe < rows {
        (rows - 1 - pe) / pes + 1
    } else {
        0
    }
}

/// Largest relative index a `index_bits`-bit field holds.
pub fn max_z(index_bits: u8) -> u8 {
    ((1u16 << index_bits) - 1) as u8
}

pub(crate) fn check_index_bits(index_bits: u8) -> Result<()> {
    if !(MIN_INDEX_BITS..=MAX_INDEX_BITS).contains(&index_bits) {
        return Err(Error::BitWidth {
            what: "index bits",
            got: index_bits as u32,
            min: MIN_INDEX_BITS as u32,
            max: MAX_INDEX_BITS as u32,
        });
    }
    Ok(())
}

/// Encodes sparse codes into the streams of `pes` PEs (one per PE, in PE order).
///
/// `layer` only names the layer in errors. Codes are taken as they are; checking them
/// against a codebook is [`crate::PackedLayer::encode_sparse`]'s job. Work and memory are
/// proportional to the non-zeros (plus one counter per column for each PE being encoded).
pub fn encode(
    layer: &str,
    codes: &SparseCodes,
    pes: usize,
    index_bits: u8,
) -> Result<Vec<PeStreams>> {
    if pes == 0 {
        return Err(Error::ZeroPes);
    }
    check_index_bits(index_bits)?;
    if codes.rows() > (u32::MAX as usize) * pes || codes.cols() > u32::MAX as usize {
        return Err(Error::InvalidLayer {
            layer: layer.to_string(),
            reason: format!("{} x {} is too large to encode", codes.rows(), codes.cols()),
        });
    }
    let starts = codes.row_starts();
    (0..pes)
        .into_par_iter()
        .map(|pe| encode_pe(layer, codes, &starts, pes, pe, index_bits))
        .collect()
}

/// Encodes PE `pe`'s non-zeros (its rows pe, pe + N, ...; `starts` from
/// [`SparseCodes::row_starts`]): a stable counting sort by column, straight from the codes,
/// keeps rows ascending within each column, then one pass per column places the padding.
fn encode_pe(
    layer: &str,
    sparse: &SparseCodes,
    starts: &[usize],
    pes: usize,
    pe: usize,
    index_bits: u8,
) -> Result<PeStreams> {
    let cols = sparse.cols();
    let (positions, all_codes) = (sparse.positions(), sparse.codes());
    let rows = (pe..sparse.rows()).step_by(pes);
    let mut start = vec![0usize; cols + 1];
    let mut n = 0;
    for r in rows.clone() {
        let base = (r * cols) as u64;
        for &p in &positions[starts[r]..starts[r + 1]] {
            start[(p - base) as usize + 1] += 1;
        }
        n += starts[r + 1] - starts[r];
    }
    for j in 0..cols {
        start[j + 1] += start[j];
    }
    // Scatter with start[col] as column col's cursor: afterwards start[col] is where column
    // col + 1 begins, so column j spans start[j - 1]..start[j] (0.. for the first).
    let mut slots = vec![(0u32, 0u8); n];
    for (local, r) in rows.enumerate() {
        let base = (r * cols) as u64;
        for i in starts[r]..starts[r + 1] {
            let col = (positions[i] - base) as usize;
            slots[start[col]] = (local as u32, all_codes[i]);
            start[col] += 1;
        }
    }

    let max = max_z(index_bits) as usize;
    let mut codes = Vec::with_capacity(n + n / 8);
    let mut z = Vec::with_capacity(n + n / 8);
    let mut ptr = Vec::with_capacity(cols + 1);
    ptr.push(0u32);
    let mut begin = 0;
    for &end in &start[..cols] {
        let mut next = 0usize; // first local row not yet covered in this column
        for &(local, code) in &slots[begin..end] {
            let mut gap = local as usize - next;
            while gap > max {
                codes.push(0);
                z.push(max as u8);
                gap -= max + 1;
            }
            codes.push(code);
            z.push(gap as u8);
            next = local as usize + 1;
        }
        begin = end;
        let stored = u32::try_from(codes.len()).map_err(|_| Error::TooManyEntries {
            layer: layer.to_string(),
            pe,
            entries: codes.len() as u64,
        })?;
        ptr.push(stored);
    }
    Ok(PeStreams { codes, z, ptr })
}

/// Entries (padding included) each of `pes` PEs would hold for `codes`, without building
/// the streams: what capacity planning needs to try many PE counts cheaply.
pub fn entry_counts(codes: &SparseCodes, pes: usize, index_bits: u8) -> Result<Vec<u64>> {
    if pes == 0 {
        return Err(Error::ZeroPes);
    }
    check_index_bits(index_bits)?;
    let period = max_z(index_bits) as u64 + 1;
    // next[j]: first local row of column j not yet covered in the current PE.
    let mut next = vec![0u64; codes.cols()];
    let starts = codes.row_starts();
    Ok((0..pes)
        .map(|pe| codes.pe_entries(&starts, pes, pe))
        .map(|entries| {
            next.fill(0);
            entries
                .iter()
                .map(|&(local, col, _)| {
                    let (local, j) = (local as u64, col as usize);
                    let n = 1 + (local - next[j]) / period;
                    next[j] = local + 1;
                    n
                })
                .sum()
        })
        .collect())
}

/// Checks one PE's streams against the format's rules for a slice of `local_rows` rows and
/// `cols` columns, codes below `codebook_len`, `index_bits`-wide relative indices.
///
/// Only canonical streams pass: the ones [`encode`] produces. A padding entry must carry
/// z = max and be followed by another entry in its column; so decode then encode gives back
/// exactly the same streams.
pub(crate) fn validate_pe(
    streams: &PeStreams,
    layer: &str,
    pe: usize,
    local_rows: usize,
    cols: usize,
    codebook_len: usize,
    index_bits: u8,
) -> Result<()> {
    let bad = |reason: String| invalid(layer, pe, reason);
    let PeStreams { codes, z, ptr } = streams;
    if ptr.len() != cols + 1 {
        return bad(format!(
            "{} column pointers, expected cols + 1 = {}",
            ptr.len(),
            cols + 1
        ));
    }
    if codes.len() != z.len() {
        return bad(format!(
            "{} codes but {} relative indices",
            codes.len(),
            z.len()
        ));
    }
    if ptr[0] != 0 {
        return bad(format!("first column pointer is {}, expected 0", ptr[0]));
    }
    if let Some(j) = (0..cols).find(|&j| ptr[j + 1] < ptr[j]) {
        return bad(format!(
            "column pointers decrease at column {j} ({} then {})",
            ptr[j],
            ptr[j + 1]
        ));
    }
    if ptr[cols] as usize != codes.len() {
        return bad(format!(
            "last column pointer is {}, but the PE holds {} entries",
            ptr[cols],
            codes.len()
        ));
    }
    let max = max_z(index_bits);
    // Every check below holds for every valid stream and runs over whole arrays (which the
    // compiler vectorises) or once a column: a layer loads at the speed of its bytes. Only a
    // stream that fails one is walked entry by entry, for its first bad entry's message.
    let top_code = codes.iter().fold(0u8, |m, &c| m.max(c));
    let top_z = z.iter().fold(0u8, |m, &v| m.max(v));
    let padding_full = codes
        .iter()
        .zip(z)
        .fold(true, |ok, (&c, &v)| ok & ((c != 0) | (v == max)));
    // A column's rows rise entry by entry: its last entry's (the relative indices plus one
    // each, less one) is its highest; and padding is never a column's last entry.
    let columns_fit = (0..cols).all(|j| {
        let (lo, hi) = (ptr[j] as usize, ptr[j + 1] as usize);
        lo == hi
            || (codes[hi - 1] != 0
                && z[lo..hi].iter().map(|&v| v as usize).sum::<usize>() + (hi - lo) - 1
                    < local_rows)
    });
    if (top_code as usize) < codebook_len && top_z <= max && padding_full && columns_fit {
        return Ok(());
    }
    validate_entries(
        streams,
        layer,
        pe,
        local_rows,
        cols,
        codebook_len,
        index_bits,
    )
}

/// PE `pe` of `layer` breaks the format's rules: `reason`.
fn invalid(layer: &str, pe: usize, reason: String) -> Result<()> {
    Err(Error::InvalidStream {
        layer: layer.to_string(),
        pe,
        reason,
    })
}

/// [`validate_pe`]'s entry checks, entry by entry, naming the first bad one (the pointers
/// checked before).
fn validate_entries(
    streams: &PeStreams,
    layer: &str,
    pe: usize,
    local_rows: usize,
    cols: usize,
    codebook_len: usize,
    index_bits: u8,
) -> Result<()> {
    let bad = |reason: String| invalid(layer, pe, reason);
    let PeStreams { codes, z, ptr } = streams;
    let max = max_z(index_bits);
    for j in 0..cols {
        let (lo, hi) = (ptr[j] as usize, ptr[j + 1] as usize);
        let mut next = 0usize;
        for e in lo..hi {
            let (code, rel) = (codes[e], z[e]);
            if code as usize >= codebook_len {
                return bad(format!(
                    "entry {e} (column {j}) has code {code}, outside the codebook's {codebook_len} entries"
                ));
            }
            if rel > max {
                return bad(format!(
                    "entry {e} (column {j}) has relative index {rel}, above the {index_bits}-bit maximum {max}"
                ));
            }
            if code == 0 && (rel != max || e + 1 == hi) {
                return bad(format!(
                    "entry {e} (column {j}) is a zero-code entry that is not canonical padding \
                     (padding has z = {max} and is followed by another entry of its column)"
                ));
            }
            let local = next + rel as usize;
            if local >= local_rows {
                return bad(format!(
                    "entry {e} (column {j}) lands on local row {local}, but the PE's slice has {local_rows} rows"
                ));
            }
            next = local + 1;
        }
    }
    Ok(())
}

/// (row-major position, code) of every real entry of one PE's (validated) streams.
pub(crate) fn decode_pe(
    streams: &PeStreams,
    cols: usize,
    pes: usize,
    pe: usize,
    out: &mut Vec<(u64, u8)>,
) {
    for j in 0..cols {
        let mut next = 0usize;
        for e in streams.ptr[j] as usize..streams.ptr[j + 1] as usize {
            let local = next + streams.z[e] as usize;
            if streams.codes[e] != 0 {
                out.push((((pe + local * pes) * cols + j) as u64, streams.codes[e]));
            }
            next = local + 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        // A changed index has to land just above the largest and still fit its slice to
        // tell the two apart: many cases (a few hundredths of a second).
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4096))]

        /// The whole-array checks pass only streams the entry-by-entry walk passes: on
        /// encoded streams with at most one entry changed, the fast path and the walk give the
        /// same verdict and the same message.
        #[test]
        fn the_fast_checks_agree_with_the_walk(
            rows in 1usize..40,
            cols in 1usize..8,
            pes in 1usize..4,
            index_bits in 1u8..4,
            cells in proptest::collection::vec(0u8..4, 320),
            change in proptest::option::of((0usize..1000, proptest::bool::ANY, -3i32..3)),
        ) {
            let m = crate::matrix::CodeMatrix::new(rows, cols, cells[..rows * cols].to_vec()).unwrap();
            let mut streams = encode("l", &SparseCodes::from_dense(&m), pes, index_bits).unwrap();
            let s = &mut streams[0];
            if let (Some((at, code, value)), false) = (change, s.codes.is_empty()) {
                let at = at % s.codes.len();
                // Near the limits: codes 0..=5 (the codebook holds 4), indices around the
                // largest.
                if code {
                    s.codes[at] = (value + 3) as u8
                } else {
                    s.z[at] = (max_z(index_bits) as i32 + value).max(0) as u8
                }
            }
            let local = slice_rows(rows, pes, 0);
            let fast = validate_pe(s, "l", 0, local, cols, 4, index_bits);
            let walk = validate_entries(s, "l", 0, local, cols, 4, index_bits);
            proptest::prop_assert_eq!(fast.map_err(|e| e.to_string()), walk.map_err(|e| e.to_string()));
        }
    }

    use crate::matrix::CodeMatrix;

    fn column(values: &[u8]) -> SparseCodes {
        SparseCodes::from_dense(&CodeMatrix::new(values.len(), 1, values.to_vec()).unwrap())
    }

    #[test]
    fn paper_column_example() {
        // [0,0,1,2, eighteen zeros, 3] -> v = [1,2,0,3], z = [2,0,15,2].
        let mut col = vec![0u8, 0, 1, 2];
        col.extend([0; 18]);
        col.push(3);
        let s = encode("col", &column(&col), 1, 4).unwrap();
        assert_eq!(s[0].codes(), &[1, 2, 0, 3]);
        assert_eq!(s[0].z(), &[2, 0, 15, 2]);
        assert_eq!(s[0].ptr(), &[0, 4]);
        assert_eq!(s[0].padding(), 1);
    }

    #[test]
    fn zero_runs_at_the_padding_boundaries() {
        // (run of zeros before the non-zero, expected codes, expected z) for 4-bit z.
        let cases: [(usize, &[u8], &[u8]); 6] = [
            (0, &[5], &[0]),
            (15, &[5], &[15]),
            (16, &[0, 5], &[15, 0]),
            (31, &[0, 5], &[15, 15]),
            (32, &[0, 0, 5], &[15, 15, 0]),
            (47, &[0, 0, 5], &[15, 15, 15]),
        ];
        for (run, codes, z) in cases {
            let mut col = vec![0u8; run];
            col.push(5);
            let s = encode("run", &column(&col), 1, 4).unwrap();
            assert_eq!((s[0].codes(), s[0].z()), (codes, z), "run of {run} zeros");
            // Same run between two non-zeros rather than from the column start.
            let mut col2 = vec![7u8];
            col2.extend(vec![0u8; run]);
            col2.push(5);
            let s2 = encode("run", &column(&col2), 1, 4).unwrap();
            assert_eq!(
                &s2[0].codes()[1..],
                codes,
                "run of {run} zeros after a non-zero"
            );
            assert_eq!(&s2[0].z()[1..], z, "run of {run} zeros after a non-zero");
        }
    }

    #[test]
    fn trailing_zeros_need_no_entries() {
        let s = encode("t", &column(&[3, 0, 0, 0, 0]), 1, 1).unwrap();
        assert_eq!((s[0].codes(), s[0].z()), (&[3u8][..], &[0u8][..]));
    }

    #[test]
    fn one_bit_indices_pad_every_second_zero() {
        // max z = 1: a run of 5 zeros -> two paddings (2 rows each) then z = 1.
        let s = encode("b", &column(&[0, 0, 0, 0, 0, 9]), 1, 1).unwrap();
        assert_eq!(s[0].codes(), &[0, 0, 9]);
        assert_eq!(s[0].z(), &[1, 1, 1]);
    }

    #[test]
    fn eight_bit_indices_reach_255() {
        let mut col = vec![0u8; 255];
        col.push(1);
        col.extend(vec![0u8; 256]);
        col.push(2);
        let s = encode("w", &column(&col), 1, 8).unwrap();
        assert_eq!(s[0].codes(), &[1, 0, 2]);
        assert_eq!(s[0].z(), &[255, 255, 0]);
    }

    #[test]
    fn slice_rows_cover_every_row_once() {
        for rows in 0..20 {
            for pes in 1..25 {
                let total: usize = (0..pes).map(|k| slice_rows(rows, pes, k)).sum();
                assert_eq!(total, rows, "rows {rows} pes {pes}");
            }
        }
    }

    #[test]
    fn entry_counts_match_the_encoder() {
        let codes: Vec<u8> = (0..70 * 9)
            .map(|i: usize| {
                if i.is_multiple_of(11) || i % 13 == 2 {
                    1
                } else {
                    0
                }
            })
            .collect();
        let m = SparseCodes::from_dense(&CodeMatrix::new(70, 9, codes).unwrap());
        for pes in [1, 2, 3, 7, 64, 100] {
            for bits in [1, 2, 4] {
                let counts = entry_counts(&m, pes, bits).unwrap();
                let streams = encode("c", &m, pes, bits).unwrap();
                let expected: Vec<u64> = streams.iter().map(|s| s.entries() as u64).collect();
                assert_eq!(counts, expected, "pes {pes} bits {bits}");
            }
        }
    }

    #[test]
    fn bad_parameters_are_errors() {
        let m = column(&[1]);
        assert!(matches!(encode("x", &m, 0, 4), Err(Error::ZeroPes)));
        assert!(matches!(encode("x", &m, 1, 0), Err(Error::BitWidth { .. })));
        assert!(matches!(encode("x", &m, 1, 9), Err(Error::BitWidth { .. })));
    }
}
