//! A packed layer: geometry, codebook and the N validated per-PE streams.

use rayon::prelude::*;

use crate::codebook::Codebook;
use crate::error::{Error, Result};
use crate::matrix::CodeMatrix;
use crate::sparse::SparseCodes;
use crate::streams::{self, PeStreams, check_index_bits, slice_rows};

/// Where a column batch sits in its layer: this part holds columns `first..first + cols` of a
/// layer with `total` columns. Its pointers restart at 0, like any packed layer's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// First column of the layer held by this part.
    pub first: usize,
    /// Columns of the whole layer.
    pub total: usize,
}

/// Most rows, and most columns, of a layer (2^24): four thousand times the paper's largest
/// (VGG-16's fc6 has 25,088 columns), and small enough that a vector of them (64 MiB of f32)
/// is always allocatable. A bundle claiming more is refused whatever its checksum says.
pub const MAX_DIM: usize = 1 << 24;
/// Most weights (rows x columns) of a layer, 2^31: 8 GiB as the dense f32 tensor `unpack`
/// writes (VGG-16's fc6 has 2^26.6).
pub const MAX_WEIGHTS: usize = 1 << 31;
/// Most processing elements (4096, 64 times the paper's; a PE costs its own streams and
/// queue).
pub const MAX_PES: usize = 4096;

/// Longest layer (or bias) name, in bytes: a name is repeated in every image file's record
/// of the manifest and in the images' folder name, so a megabyte-long one would make
/// gigabytes of manifest.
pub const MAX_NAME: usize = 1024;

/// Why `name` cannot name a layer, if it cannot.
pub fn bad_name(name: &str) -> Option<String> {
    (name.len() > MAX_NAME).then(|| {
        format!(
            "a name of {} bytes; at most {MAX_NAME} are accepted",
            name.len()
        )
    })
}

/// Most column batches (parts) of a layer: a part costs its own streams and image files on
/// every PE (`--column-batch 1` on VGG-16's fc6 would make 25,088 parts of 256 files each).
pub const MAX_PARTS: usize = 4096;

/// Why splitting a layer of `cols` columns into batches of `batch` is over
/// [`MAX_PARTS`], if it is.
pub fn too_many_parts(cols: usize, batch: usize) -> Option<String> {
    let parts = if batch == 0 { 1 } else { cols.div_ceil(batch) };
    (parts > MAX_PARTS).then(|| {
        format!(
            "column batches of {batch} make {parts} parts of its {cols} columns; at most {MAX_PARTS} (use a larger --column-batch)"
        )
    })
}

/// Why a layer of `rows` x `cols` on `pes` PEs is over this format's limits, if it is.
pub fn over_limits(rows: usize, cols: usize, pes: usize) -> Option<String> {
    if rows > MAX_DIM || cols > MAX_DIM {
        return Some(format!(
            "{rows} x {cols}: at most {MAX_DIM} rows and {MAX_DIM} columns"
        ));
    }
    if rows.checked_mul(cols).is_none_or(|w| w > MAX_WEIGHTS) {
        return Some(format!(
            "{rows} x {cols}: at most {MAX_WEIGHTS} weights in a layer"
        ));
    }
    if pes == 0 || pes > MAX_PES {
        return Some(format!("{pes} PEs: 1..={MAX_PES}"));
    }
    None
}

/// Entries from which a layer's streams are checked on every core.
const PARALLEL_ENTRIES: usize = 1 << 16;

/// One fully connected layer in EIE's format.
///
/// Every constructor validates the whole layer (see [`PackedLayer::from_parts`]), so a value
/// of this type always decodes.
#[derive(Debug, Clone, PartialEq)]
pub struct PackedLayer {
    name: String,
    bias: Option<String>,
    span: Option<Span>,
    rows: usize,
    cols: usize,
    index_bits: u8,
    codebook: Codebook,
    streams: Vec<PeStreams>,
}

impl PackedLayer {
    /// Packs a code matrix over `pes` PEs with `index_bits`-wide relative indices.
    ///
    /// Every non-zero code must be defined by `codebook`.
    pub fn encode(
        name: impl Into<String>,
        matrix: &CodeMatrix,
        codebook: Codebook,
        pes: usize,
        index_bits: u8,
    ) -> Result<Self> {
        Self::encode_sparse(
            name,
            &SparseCodes::from_dense(matrix),
            codebook,
            pes,
            index_bits,
        )
    }

    /// Packs sparse codes over `pes` PEs with `index_bits`-wide relative indices (the same
    /// layer as [`PackedLayer::encode`] of the dense matrix, at a cost proportional to the
    /// non-zeros).
    pub fn encode_sparse(
        name: impl Into<String>,
        codes: &SparseCodes,
        codebook: Codebook,
        pes: usize,
        index_bits: u8,
    ) -> Result<Self> {
        let name = name.into();
        if pes == 0 {
            return Err(Error::ZeroPes);
        }
        if let Some(reason) = bad_name(&name) {
            return Err(Error::InvalidLayer {
                layer: crate::shown(&name),
                reason,
            });
        }
        if let Some(reason) = over_limits(codes.rows(), codes.cols(), pes) {
            return Err(Error::InvalidLayer {
                layer: name,
                reason,
            });
        }
        check_index_bits(index_bits)?;
        if let Some(i) = codes
            .codes()
            .iter()
            .position(|&c| c as usize >= codebook.len())
        {
            let p = codes.positions()[i] as usize;
            return Err(Error::CodeOutsideCodebook {
                layer: name,
                row: p / codes.cols(),
                col: p % codes.cols(),
                code: codes.codes()[i],
                len: codebook.len(),
            });
        }
        let streams = streams::encode(&name, codes, pes, index_bits)?;
        Ok(Self {
            name,
            bias: None,
            span: None,
            rows: codes.rows(),
            cols: codes.cols(),
            index_bits,
            codebook,
            streams,
        })
    }

    /// Rebuilds a layer from stored parts, validating everything: at least one PE, bit widths
    /// in range, one stream per PE, and each stream canonical for its slice (pointer count,
    /// monotonic pointers, last pointer = entry count, codes inside the codebook, relative
    /// indices inside their width, every entry inside the slice, padding canonical).
    pub fn from_parts(
        name: impl Into<String>,
        bias: Option<String>,
        rows: usize,
        cols: usize,
        index_bits: u8,
        codebook: Codebook,
        streams: Vec<PeStreams>,
    ) -> Result<Self> {
        let name = name.into();
        if let Some(reason) = bad_name(&name).or_else(|| bias.as_deref().and_then(bad_name)) {
            return Err(Error::InvalidLayer {
                layer: crate::shown(&name),
                reason,
            });
        }
        if streams.is_empty() {
            return Err(Error::InvalidLayer {
                layer: name,
                reason: "no PE streams (at least one PE is needed)".into(),
            });
        }
        check_index_bits(index_bits).map_err(|e| Error::InvalidLayer {
            layer: name.clone(),
            reason: e.to_string(),
        })?;
        let pes = streams.len();
        if bias.is_some() && cols == 0 {
            return Err(Error::InvalidLayer {
                layer: name,
                reason: "a folded bias needs a column, but the layer has none".into(),
            });
        }
        if let Some(reason) = over_limits(rows, cols, pes) {
            return Err(Error::InvalidLayer {
                layer: name,
                reason,
            });
        }
        // PE by PE, on every core for a large layer (a small one is not worth a thread's
        // wake-up); the first bad PE in order is the one named.
        let check = |(pe, s): (usize, &PeStreams)| {
            streams::validate_pe(
                s,
                &name,
                pe,
                slice_rows(rows, pes, pe),
                cols,
                codebook.len(),
                index_bits,
            )
        };
        let entries: usize = streams.iter().map(PeStreams::entries).sum();
        let results: Vec<Result<()>> = if entries >= PARALLEL_ENTRIES {
            streams.par_iter().enumerate().map(check).collect()
        } else {
            streams.iter().enumerate().map(check).collect()
        };
        results.into_iter().collect::<Result<()>>()?;
        Ok(Self {
            name,
            bias,
            span: None,
            rows,
            cols,
            index_bits,
            codebook,
            streams,
        })
    }

    /// Marks the last column as the folded bias `bias_name` (its input activation is the
    /// constant 1).
    pub fn with_bias(mut self, bias_name: impl Into<String>) -> Result<Self> {
        if self.cols == 0 {
            return Err(Error::InvalidLayer {
                layer: self.name,
                reason: "a folded bias needs a column, but the layer has none".into(),
            });
        }
        self.bias = Some(bias_name.into());
        Ok(self)
    }

    /// Marks this layer as the column batch `span.first..span.first + cols` of a layer of
    /// `span.total` columns.
    pub fn with_span(mut self, span: Span) -> Result<Self> {
        if let Some(reason) = over_limits(self.rows, span.total, self.pes()) {
            return Err(Error::InvalidLayer {
                layer: self.name,
                reason,
            });
        }
        if self.cols == 0
            || span
                .first
                .checked_add(self.cols)
                .is_none_or(|end| end > span.total)
        {
            return Err(Error::InvalidLayer {
                layer: self.name,
                reason: format!(
                    "a part of {} columns cannot start at column {} of {}",
                    self.cols, span.first, span.total
                ),
            });
        }
        self.span = Some(span);
        Ok(self)
    }

    /// Splits the layer into column batches of at most `batch` columns (parts whose pointers
    /// restart at 0, each with its own images); a layer that fits stays whole.
    pub fn split_columns(self, batch: usize) -> Result<Vec<PackedLayer>> {
        if batch == 0 || self.cols <= batch || self.span.is_some() {
            return Ok(vec![self]);
        }
        if let Some(reason) = too_many_parts(self.cols, batch) {
            return Err(Error::InvalidLayer {
                layer: self.name,
                reason,
            });
        }
        // Columns are independent in the format (the relative row index restarts at every
        // column), so a part's streams are each PE's entries of its columns, pointers rebased.
        // PE by PE, each PE's whole streams dropped once cut: memory holds about one copy of
        // the layer, not the whole and its parts.
        let starts: Vec<usize> = (0..self.cols).step_by(batch).collect();
        let mut cut: Vec<Vec<PeStreams>> = starts
            .iter()
            .map(|_| Vec::with_capacity(self.streams.len()))
            .collect();
        for s in self.streams {
            for (part, &first) in cut.iter_mut().zip(&starts) {
                let end = (first + batch).min(self.cols);
                let (lo, hi) = (s.ptr[first] as usize, s.ptr[end] as usize);
                part.push(PeStreams {
                    codes: s.codes[lo..hi].to_vec(),
                    z: s.z[lo..hi].to_vec(),
                    ptr: s.ptr[first..=end].iter().map(|&p| p - lo as u32).collect(),
                });
            }
        }
        let parts = starts
            .into_iter()
            .zip(cut)
            .map(|(first, streams)| Self {
                name: self.name.clone(),
                bias: self.bias.clone(),
                span: Some(Span {
                    first,
                    total: self.cols,
                }),
                rows: self.rows,
                cols: (first + batch).min(self.cols) - first,
                index_bits: self.index_bits,
                codebook: self.codebook.clone(),
                streams,
            })
            .collect();
        Ok(parts)
    }

    /// The codes of a whole layer back from its parts, side by side: the inverse of
    /// [`PackedLayer::split_columns`] (a layer stored whole is its own one part). Positions are
    /// row-major over all of the layer's columns, the bias column included.
    pub fn join_columns(parts: &[PackedLayer]) -> Result<SparseCodes> {
        let Some(first) = parts.first() else {
            return Err(Error::InvalidLayer {
                layer: String::new(),
                reason: "no parts to join".into(),
            });
        };
        let total = first.total_cols();
        let mut next = 0;
        for part in parts {
            if part.name != first.name
                || part.rows != first.rows
                || part.first_col() != next
                || part.total_cols() != total
            {
                return Err(Error::InvalidLayer {
                    layer: first.name.clone(),
                    reason: format!(
                        "a part of columns {}..{} does not continue the layer at column {next}",
                        part.first_col(),
                        part.first_col() + part.cols
                    ),
                });
            }
            next += part.cols;
        }
        if next != total {
            return Err(Error::InvalidLayer {
                layer: first.name.clone(),
                reason: format!("its parts cover {next} of its {total} columns"),
            });
        }
        if let [whole] = parts {
            return Ok(whole.decode_sparse());
        }
        let mut entries = Vec::with_capacity(parts.iter().map(PackedLayer::nonzeros).sum());
        for part in parts {
            let codes = part.decode_sparse();
            let (pc, at) = (part.cols as u64, part.first_col() as u64);
            entries.extend(
                codes
                    .positions()
                    .iter()
                    .zip(codes.codes())
                    .map(|(&p, &c)| ((p / pc) * total as u64 + at + p % pc, c)),
            );
        }
        entries.sort_unstable_by_key(|e| e.0);
        let (positions, codes) = entries.into_iter().unzip();
        SparseCodes::new(first.rows, total, positions, codes)
    }

    /// Where this column batch sits in its layer; None for a whole layer.
    pub fn span(&self) -> Option<Span> {
        self.span
    }

    /// First column of the layer held here (0 for a whole layer).
    pub fn first_col(&self) -> usize {
        self.span.map_or(0, |s| s.first)
    }

    /// Columns of the whole layer (this layer's own count when it is not a part).
    pub fn total_cols(&self) -> usize {
        self.span.map_or(self.cols, |s| s.total)
    }

    /// Whether this layer (or part) holds the folded bias column: the layer's last column.
    pub fn holds_bias_column(&self) -> bool {
        self.bias.is_some() && self.first_col() + self.cols == self.total_cols()
    }

    /// The layer's name (the source tensor's name).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Name of the bias tensor folded in as the last column, if any.
    pub fn bias(&self) -> Option<&str> {
        self.bias.as_deref()
    }

    /// Rows (outputs).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Columns (inputs, plus the bias column when a bias is folded in).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Number of PEs the rows are interleaved over.
    pub fn pes(&self) -> usize {
        self.streams.len()
    }

    /// Width of a weight code.
    pub fn code_bits(&self) -> u8 {
        self.codebook.code_bits()
    }

    /// Width of a relative row index.
    pub fn index_bits(&self) -> u8 {
        self.index_bits
    }

    /// Bits of one stored entry (code + relative index).
    pub fn entry_bits(&self) -> u32 {
        self.code_bits() as u32 + self.index_bits as u32
    }

    /// The layer's codebook.
    pub fn codebook(&self) -> &Codebook {
        &self.codebook
    }

    /// Streams of every PE, in PE order.
    pub fn streams(&self) -> &[PeStreams] {
        &self.streams
    }

    /// Rows held by PE `pe`.
    pub fn slice_rows(&self, pe: usize) -> usize {
        slice_rows(self.rows, self.pes(), pe)
    }

    /// Entries over all PEs, padding included.
    pub fn entries(&self) -> usize {
        self.streams.iter().map(PeStreams::entries).sum()
    }

    /// Padding entries over all PEs.
    pub fn padding(&self) -> usize {
        self.streams.iter().map(PeStreams::padding).sum()
    }

    /// Real (non-padding) entries: the layer's non-zero weights.
    pub fn nonzeros(&self) -> usize {
        self.entries() - self.padding()
    }

    /// Largest column pointer of any PE (its entry count); what the pointer width must hold.
    pub fn max_pointer(&self) -> u64 {
        self.streams
            .iter()
            .map(|s| s.entries() as u64)
            .max()
            .unwrap_or(0)
    }

    /// Checks that every column pointer fits `pointer_bits` bits; names the first PE that
    /// does not.
    pub fn check_pointer_width(&self, pointer_bits: u8) -> Result<()> {
        let limit = crate::error::max_pointer(pointer_bits);
        for (pe, s) in self.streams.iter().enumerate() {
            let last = s.entries() as u64;
            if last > limit {
                return Err(Error::PointerOverflow {
                    layer: self.name.clone(),
                    pe,
                    value: last,
                    pointer_bits,
                });
            }
        }
        Ok(())
    }

    /// The code matrix back: the exact inverse of [`PackedLayer::encode`].
    pub fn decode(&self) -> CodeMatrix {
        let mut matrix =
            CodeMatrix::zeros(self.rows, self.cols).expect("size checked at construction");
        let mut entries = Vec::new();
        for (pe, s) in self.streams.iter().enumerate() {
            entries.clear();
            streams::decode_pe(s, self.cols, self.pes(), pe, &mut entries);
            for &(p, c) in &entries {
                matrix.set(p as usize / self.cols, p as usize % self.cols, c);
            }
        }
        matrix
    }

    /// The non-zero codes back, in sparse form: the inverse of
    /// [`PackedLayer::encode_sparse`].
    pub fn decode_sparse(&self) -> SparseCodes {
        let mut entries = Vec::with_capacity(self.nonzeros());
        for (pe, s) in self.streams.iter().enumerate() {
            streams::decode_pe(s, self.cols, self.pes(), pe, &mut entries);
        }
        entries.sort_unstable_by_key(|&(p, _)| p);
        let (positions, codes) = entries.into_iter().unzip();
        SparseCodes::new(self.rows, self.cols, positions, codes)
            .expect("a valid layer decodes to valid codes")
    }

    /// The dense weights (codebook float values, 0.0 where pruned), row-major rows x cols.
    pub fn dense(&self) -> Vec<f32> {
        let values = self.codebook.values();
        self.decode()
            .as_slice()
            .iter()
            .map(|&c| values[c as usize])
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn book(n: usize) -> Codebook {
        let values: Vec<f32> = (1..=n).map(|v| v as f32 * 0.25).collect();
        Codebook::new(4, &values).unwrap()
    }

    #[test]
    fn joining_column_batches_gives_the_whole_layer_back() {
        let m = CodeMatrix::new(
            7,
            10,
            (0..70)
                .map(|i| if i % 3 == 0 { (i % 2 + 1) as u8 } else { 0 })
                .collect(),
        )
        .unwrap();
        let whole = PackedLayer::encode("fc", &m, book(2), 3, 2).unwrap();
        for batch in [0, 1, 3, 4, 9, 10] {
            let parts = whole.clone().split_columns(batch).unwrap();
            assert_eq!(
                PackedLayer::join_columns(&parts).unwrap().to_dense(),
                m,
                "batch {batch}"
            );
        }
        let parts = whole.split_columns(4).unwrap();
        assert!(PackedLayer::join_columns(&parts[1..]).is_err());
        assert!(PackedLayer::join_columns(&parts[..2]).is_err());
    }

    #[test]
    fn codes_outside_the_codebook_are_rejected() {
        let m = CodeMatrix::new(2, 2, vec![1, 0, 0, 3]).unwrap();
        let err = PackedLayer::encode("fc", &m, book(2), 2, 4).unwrap_err();
        assert!(
            matches!(
                err,
                Error::CodeOutsideCodebook {
                    row: 1,
                    col: 1,
                    code: 3,
                    len: 3,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn validation_catches_every_broken_rule() {
        let m = CodeMatrix::new(
            40,
            2,
            (0..80).map(|i| if i % 7 == 0 { 1 } else { 0 }).collect(),
        )
        .unwrap();
        let layer = PackedLayer::encode("fc", &m, book(3), 2, 4).unwrap();
        let rebuild = |s: Vec<PeStreams>| PackedLayer::from_parts("fc", None, 40, 2, 4, book(3), s);
        assert!(rebuild(layer.streams().to_vec()).is_ok());

        type Breaker = fn(&mut PeStreams);
        let breakers: [(&str, Breaker); 9] = [
            ("pointer count", |s| {
                s.ptr.pop();
            }),
            ("first pointer", |s| s.ptr[0] = 1),
            ("decreasing pointers", |s| {
                s.ptr[1] = s.ptr[2] + 1;
            }),
            ("last pointer", |s| {
                s.codes.push(1);
                s.z.push(0);
            }),
            ("code length", |s| {
                s.z.pop();
            }),
            ("code outside codebook", |s| s.codes[0] = 9),
            ("index width", |s| s.z[0] = 16),
            ("row past the slice", |s| {
                let last = s.z.len() - 1;
                s.z[last] = 15;
            }),
            ("non-canonical zero code", |s| s.codes[0] = 0),
        ];
        for (what, break_it) in breakers {
            let mut streams = layer.streams().to_vec();
            break_it(&mut streams[0]);
            let err = rebuild(streams).expect_err(what);
            assert!(
                matches!(err, Error::InvalidStream { pe: 0, .. }),
                "{what}: {err}"
            );
        }
        // A trailing padding entry (nothing after it in its column) is not canonical.
        let s = PeStreams::from_raw(vec![0], vec![15], vec![0, 1]);
        let err = PackedLayer::from_parts("p", None, 32, 1, 4, book(1), vec![s]).unwrap_err();
        assert!(err.to_string().contains("not canonical"), "{err}");
        // No PEs.
        assert!(PackedLayer::from_parts("fc", None, 40, 2, 4, book(3), vec![]).is_err());
    }

    #[test]
    fn pointer_width_check_names_the_pe() {
        let m = CodeMatrix::new(3, 300, vec![1; 900]).unwrap();
        let layer = PackedLayer::encode("big", &m, book(1), 3, 4).unwrap();
        assert!(layer.check_pointer_width(16).is_ok());
        let err = layer.check_pointer_width(8).unwrap_err();
        assert!(
            matches!(
                err,
                Error::PointerOverflow {
                    pe: 0,
                    value: 300,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn parts_must_continue_their_layer() {
        use crate::{Bundle, BundleMeta, SourceInfo};
        let m = CodeMatrix::new(4, 10, (0..40).map(|i| (i % 3) as u8).collect()).unwrap();
        let whole = PackedLayer::encode("w", &m, book(2), 2, 4)
            .unwrap()
            .with_bias("b")
            .unwrap();
        let parts = whole.clone().split_columns(4).unwrap();
        assert_eq!(
            parts
                .iter()
                .map(|p| (p.first_col(), p.cols()))
                .collect::<Vec<_>>(),
            [(0, 4), (4, 4), (8, 2)]
        );
        assert_eq!(
            parts
                .iter()
                .map(|p| p.holds_bias_column())
                .collect::<Vec<_>>(),
            [false, false, true]
        );
        let meta = || BundleMeta {
            tool_version: "t".into(),
            source: SourceInfo::default(),
            pointer_bits: 16,
            settings: Default::default(),
        };
        assert!(Bundle::new(meta(), parts.clone()).is_ok());
        let mut swapped = parts.clone();
        swapped.swap(1, 2);
        let mut missing = parts.clone();
        missing.pop();
        let mut mixed = parts.clone();
        mixed[1] = PackedLayer::encode("w", &CodeMatrix::zeros(4, 4).unwrap(), book(1), 2, 4)
            .unwrap()
            .with_span(Span {
                first: 4,
                total: 10,
            })
            .unwrap();
        for (what, layers) in [
            ("order", swapped),
            ("coverage", missing),
            ("codebook", mixed),
            ("late start", parts[1..].to_vec()),
        ] {
            assert!(Bundle::new(meta(), layers).is_err(), "{what}");
        }
        assert!(
            whole
                .clone()
                .with_span(Span {
                    first: 5,
                    total: 10
                })
                .is_err()
        );
        assert_eq!(whole.clone().split_columns(10).unwrap(), vec![whole]);
    }

    #[test]
    fn dense_uses_codebook_values() {
        let m = CodeMatrix::new(2, 2, vec![1, 0, 0, 2]).unwrap();
        let layer = PackedLayer::encode("d", &m, book(2), 1, 4).unwrap();
        assert_eq!(layer.dense(), vec![0.25, 0.0, 0.0, 0.5]);
        assert_eq!(layer.nonzeros(), 2);
    }
}

#[cfg(test)]
mod limit_tests {
    use super::*;

    #[test]
    fn limits_bound_a_layer_and_its_batches() {
        assert!(over_limits(MAX_DIM, 1, 1).is_none());
        assert!(over_limits(MAX_DIM + 1, 1, 1).is_some());
        assert!(over_limits(1 << 16, 1 << 16, 64).is_some(), "2^32 weights");
        assert!(over_limits(4, 4, MAX_PES + 1).is_some());
        assert!(over_limits(4, 4, 0).is_some());
        // VGG-16's fc6: 25,088 columns (plus a bias) in batches of 4096 is fine, of 1 not.
        assert!(too_many_parts(25_089, 4096).is_none());
        let e = too_many_parts(25_089, 1).unwrap();
        assert!(e.contains("25089 parts"), "{e}");
        assert!(too_many_parts(25_089, 0).is_none());
    }
}
