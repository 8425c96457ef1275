//! The authors' simulator's input files, which their `script/layer_dump.py` writes: a layer
//! and an input as `data/act.dat`, `data/ptr/ptrK.dat`, `data/spm/spmK.dat`,
//! `data/arithm.dat` and the header `src/params.h`; written from a packed layer, and read
//! back (their shipped AlexNet fc8, for one) into one.
//!
//! Their layout (`nzfetch.cpp`, `ptrvec.cpp`, `spmat.cpp`): activation j of the input is in
//! group j / N, slot j mod N; after the last input group comes the bias's group, whose
//! slot 0 is column `ceil(L / N) x N` of the pointers (L inputs). So every PE stores
//! `ceil(L / N) x N + 2` pointers (u32): one per input column, the columns up to the bias's
//! (empty), the bias's, and the end. Its entries are pairs of u32, code then relative index,
//! read in lines of 16 entries; `arithm.dat` holds the 16 codebook values (f32); `act.dat`
//! the L inputs (f32). Every number is little-endian.

use std::path::{Path, PathBuf};

use eie_format::{Codebook, PackedLayer, PeStreams};

use crate::error::{Error, Result};

/// Entries in one of their Spmat lines (`SPMAT_unit_line`).
pub const SPMAT_UNIT_LINE: usize = 16;
/// Values in their codebook (`ARITHM_codebooksize`): codes of at most 4 bits.
pub const CODEBOOK_SIZE: usize = 16;
/// Bits of their relative indices (`SPMAT_index_bits`).
pub const INDEX_BITS: u8 = 4;

/// A layer and an input as their simulator reads them.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthorsData {
    /// The input activations (`act.dat`).
    pub act: Vec<f32>,
    /// Per PE, the column pointers of their layout (`ptrK.dat`).
    pub ptr: Vec<Vec<u32>>,
    /// Per PE, every entry's code and relative index (`spmK.dat`).
    pub spm: Vec<Vec<(u32, u32)>>,
    /// The codebook (`arithm.dat`); code 0 is 0.
    pub codebook: [f32; CODEBOOK_SIZE],
    /// Whether the layer has a bias column: their control then presents the bias's group
    /// (`set_state`'s last argument, 1 in their `main`).
    pub bias: bool,
}

/// One file's problem.
fn bad(file: impl Into<PathBuf>, reason: impl Into<String>) -> Error {
    Error::AuthorsFile {
        file: file.into(),
        reason: reason.into(),
    }
}

impl AuthorsData {
    /// PEs.
    pub fn pes(&self) -> usize {
        self.ptr.len()
    }

    /// Pointers every PE stores: `ceil(L / N) x N + 2` (N taken as at least 1).
    pub fn pointer_count(inputs: usize, pes: usize) -> usize {
        let pes = pes.max(1);
        inputs.div_ceil(pes) * pes + 2
    }

    /// One pointer file and one entry file a PE, and at least one PE.
    fn check_pes(&self) -> Result<()> {
        if self.ptr.is_empty() || self.spm.len() != self.ptr.len() {
            return Err(bad(
                "data/spm",
                format!(
                    "{} PEs' pointers and {} PEs' entries: one of each a PE, at least one PE",
                    self.ptr.len(),
                    self.spm.len()
                ),
            ));
        }
        Ok(())
    }

    /// A whole packed layer (not a column batch) and its input (`inputs` values, the bias
    /// column's constant 1 left out). Their codebook holds 16 values: codes of more than 4
    /// bits are refused.
    pub fn from_layer(layer: &PackedLayer, input: &[f32]) -> Result<Self> {
        let refuse = |reason: String| Error::AuthorsLayer {
            layer: layer.name().to_string(),
            reason,
        };
        if layer.span().is_some() {
            return Err(refuse(
                "a column batch: their simulator runs whole layers".into(),
            ));
        }
        if layer.code_bits() > 4 {
            return Err(refuse(format!(
                "{}-bit codes: their codebook holds {CODEBOOK_SIZE} values (4-bit codes)",
                layer.code_bits()
            )));
        }
        if layer.index_bits() > INDEX_BITS {
            return Err(refuse(format!(
                "{}-bit relative indices: theirs are {INDEX_BITS}-bit",
                layer.index_bits()
            )));
        }
        let bias = layer.bias().is_some();
        let inputs = layer.cols() - usize::from(bias);
        if input.len() != inputs {
            return Err(Error::InputLength {
                layer: layer.name().to_string(),
                expected: inputs,
                got: input.len(),
            });
        }
        let n = layer.pes();
        let count = Self::pointer_count(inputs, n);
        let mut ptr = Vec::with_capacity(n);
        let mut spm = Vec::with_capacity(n);
        for s in layer.streams() {
            let p = s.ptr();
            let mut theirs = Vec::with_capacity(count);
            theirs.extend_from_slice(&p[..=inputs]);
            // the empty columns up to the bias's, the bias's, the end
            theirs.resize(count - 1, p[inputs]);
            theirs.push(p[layer.cols()]);
            ptr.push(theirs);
            spm.push(
                s.codes()
                    .iter()
                    .zip(s.z())
                    .map(|(&c, &z)| (u32::from(c), u32::from(z)))
                    .collect(),
            );
        }
        let mut codebook = [0f32; CODEBOOK_SIZE];
        for (c, v) in codebook.iter_mut().zip(layer.codebook().values()) {
            *c = *v;
        }
        Ok(Self {
            act: input.to_vec(),
            ptr,
            spm,
            codebook,
            bias,
        })
    }

    /// Their `src/params.h` for this layer and a queue of `fifo_depth` slots (their ring
    /// holds one less). The activation memory is sized for the inputs and the outputs alike.
    pub fn params_h(&self, rows: usize, fifo_depth: usize) -> String {
        let n = self.pes();
        let most = self.spm.iter().map(Vec::len).max().unwrap_or(0);
        let lines = most.div_ceil(SPMAT_UNIT_LINE).max(1);
        let capacity = self.act.len().max(rows).max(1);
        format!(
            "// Written by eie-compress (eie_simulate::authors::files) for this layer, as\n\
             // their script/layer_dump.py writes it.\n\
             #ifndef PARAMS\n#define PARAMS\n\
             const int NUM_PE = {n};\n\
             const int ACTRW_maxcapacity = {capacity};\n\
             const int NZFETCH_buffersize = {fifo_depth};\n\
             const int PTRVEC_num_lines = {};\n\
             const int SPMAT_unit_line = {SPMAT_UNIT_LINE};\n\
             const int SPMAT_num_lines = {lines};\n\
             const int SPMAT_index_bits = 4;\n\
             const int SPMAT_weights_bits = 4;\n\
             const int ARITHM_codebooksize = {CODEBOOK_SIZE};\n\
             const int ACT_length = {};\n\
             #endif\n",
            Self::pointer_count(self.act.len(), n),
            self.act.len(),
        )
    }

    /// Writes the data files under `root` (a copy of their repository): `data/act.dat`,
    /// `data/arithm.dat`, `data/ptr/ptrK.dat` and `data/spm/spmK.dat`; and `src/params.h`
    /// for `rows` outputs and a queue of `fifo_depth` slots.
    pub fn write(&self, root: &Path, rows: usize, fifo_depth: usize) -> Result<()> {
        self.check_pes()?;
        let put = |rel: String, bytes: Vec<u8>| -> Result<()> {
            let path = root.join(rel);
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| bad(dir, e.to_string()))?;
            }
            std::fs::write(&path, bytes).map_err(|e| bad(&path, e.to_string()))
        };
        let le32 = |words: &mut dyn Iterator<Item = u32>| -> Vec<u8> {
            words.flat_map(u32::to_le_bytes).collect()
        };
        put(
            "data/act.dat".into(),
            le32(&mut self.act.iter().map(|v| v.to_bits())),
        )?;
        put(
            "data/arithm.dat".into(),
            le32(&mut self.codebook.iter().map(|v| v.to_bits())),
        )?;
        for (k, (p, s)) in self.ptr.iter().zip(&self.spm).enumerate() {
            put(format!("data/ptr/ptr{k}.dat"), le32(&mut p.iter().copied()))?;
            // Their Spmat stage loads its first line before any column reaches it, and its
            // code goes to the codebook every cycle: from an empty file, an uninitialised
            // word indexes it (their simulator crashed on such a PE). A PE with no entries
            // gets one (0, 0) after its last pointer, which nothing addresses.
            let unused = [(0u32, 0u32)];
            let entries = if s.is_empty() { &unused[..] } else { &s[..] };
            put(
                format!("data/spm/spm{k}.dat"),
                le32(&mut entries.iter().flat_map(|&(c, z)| [c, z])),
            )?;
        }
        put(
            "src/params.h".into(),
            self.params_h(rows, fifo_depth).into_bytes(),
        )
    }

    /// Reads the data files under `root` (`data/act.dat`, `data/arithm.dat`, and
    /// `data/ptr/ptrK.dat` and `data/spm/spmK.dat` for K = 0, 1, ... while both exist), with
    /// a bias column (`bias`: their `main` always presents one).
    pub fn read(root: &Path, bias: bool) -> Result<Self> {
        let words = |rel: &str| -> Result<Vec<u32>> {
            let path = root.join(rel);
            let bytes = std::fs::read(&path).map_err(|e| bad(&path, e.to_string()))?;
            if bytes.len() % 4 != 0 {
                return Err(bad(
                    &path,
                    format!("{} bytes, not a whole number of 4-byte words", bytes.len()),
                ));
            }
            Ok(bytes
                .chunks_exact(4)
                .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
                .collect())
        };
        let act: Vec<f32> = words("data/act.dat")?
            .into_iter()
            .map(f32::from_bits)
            .collect();
        let book = words("data/arithm.dat")?;
        if book.len() != CODEBOOK_SIZE {
            return Err(bad(
                root.join("data/arithm.dat"),
                format!("{} values, expected {CODEBOOK_SIZE}", book.len()),
            ));
        }
        let mut codebook = [0f32; CODEBOOK_SIZE];
        for (c, w) in codebook.iter_mut().zip(book) {
            *c = f32::from_bits(w);
        }
        let (mut ptr, mut spm) = (Vec::new(), Vec::new());
        while root
            .join(format!("data/ptr/ptr{}.dat", ptr.len()))
            .is_file()
        {
            let k = ptr.len();
            ptr.push(words(&format!("data/ptr/ptr{k}.dat"))?);
            let pairs = words(&format!("data/spm/spm{k}.dat"))?;
            if pairs.len() % 2 != 0 {
                return Err(bad(
                    root.join(format!("data/spm/spm{k}.dat")),
                    "an odd number of words: entries are (code, index) pairs",
                ));
            }
            spm.push(pairs.chunks_exact(2).map(|p| (p[0], p[1])).collect());
        }
        if ptr.is_empty() {
            return Err(bad(
                root.join("data/ptr/ptr0.dat"),
                "missing: no PE's pointers",
            ));
        }
        Ok(Self {
            act,
            ptr,
            spm,
            codebook,
            bias,
        })
    }

    /// The packed layer these files hold, named `name`, of `rows` outputs (their files do not
    /// record it), with `bias_name` for the bias column when there is one; and the input.
    /// Every file is checked: pointer counts, pointers in order and inside the entries,
    /// nothing in the columns between the last input and the bias, codes and indices in
    /// range, the codebook, and every entry inside the PE's rows.
    pub fn to_layer(
        &self,
        name: &str,
        bias_name: &str,
        rows: usize,
    ) -> Result<(PackedLayer, Vec<f32>)> {
        self.check_pes()?;
        let n = self.pes();
        let inputs = self.act.len();
        let count = Self::pointer_count(inputs, n);
        let bias_col = count - 2;
        let file = |what: &str, k: usize| PathBuf::from(format!("data/{what}/{what}{k}.dat"));
        let mut streams = Vec::with_capacity(n);
        for (k, (p, s)) in self.ptr.iter().zip(&self.spm).enumerate() {
            if p.len() != count {
                return Err(bad(
                    file("ptr", k),
                    format!(
                        "{} pointers; {inputs} inputs on {n} PEs need {count}",
                        p.len()
                    ),
                ));
            }
            if p[0] != 0 || p.windows(2).any(|w| w[0] > w[1]) || p[count - 1] as usize > s.len() {
                return Err(bad(
                    file("ptr", k),
                    format!(
                        "pointers must start at 0, never decrease and end inside the {} entries of {}",
                        s.len(),
                        file("spm", k).display()
                    ),
                ));
            }
            // Entries after the last pointer are never read (`write` puts one in an
            // otherwise empty file).
            let s = &s[..p[count - 1] as usize];
            if p[inputs] != p[bias_col] {
                return Err(bad(
                    file("ptr", k),
                    format!(
                        "columns {inputs}..{bias_col}, between the inputs and the bias, hold entries"
                    ),
                ));
            }
            if !self.bias && p[bias_col] != p[bias_col + 1] {
                return Err(bad(
                    file("ptr", k),
                    "the bias column holds entries, but the layer has no bias",
                ));
            }
            if let Some((e, (c, z))) = s
                .iter()
                .enumerate()
                .find(|(_, (c, z))| *c as usize >= CODEBOOK_SIZE || *z >= 1 << INDEX_BITS)
            {
                return Err(bad(
                    file("spm", k),
                    format!("entry {e} is (code {c}, index {z}): codes are 0..16, indices 0..16"),
                ));
            }
            let mut ours: Vec<u32> = p[..=inputs].to_vec();
            if self.bias {
                ours.push(p[inputs] + (p[bias_col + 1] - p[bias_col]));
            }
            // The columns between hold nothing: the entries are ours in order.
            let (codes, z) = s.iter().map(|&(c, z)| (c as u8, z as u8)).unzip();
            streams.push(PeStreams::from_raw(codes, z, ours));
        }
        let used = self
            .codebook
            .iter()
            .rposition(|v| v.to_bits() != 0)
            .map_or(0, |last| last + 1);
        if self.codebook[0].to_bits() != 0 {
            return Err(bad("data/arithm.dat", "code 0 must be 0.0"));
        }
        let book = Codebook::new(4, &self.codebook[1..used.max(1)])
            .map_err(|e| bad("data/arithm.dat", e.to_string()))?;
        let cols = inputs + usize::from(self.bias);
        // A stream the format refuses is named by its file.
        let layer = PackedLayer::from_parts(name, None, rows, cols, INDEX_BITS, book, streams)
            .map_err(|e| match e {
                eie_format::Error::InvalidStream { pe, reason, .. } => {
                    bad(file("spm", pe), format!("{reason} (with {rows} rows)"))
                }
                e => e.into(),
            })?;
        let layer = if self.bias {
            layer.with_bias(bias_name)?
        } else {
            layer
        };
        Ok((layer, self.act.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(bias: bool) -> PackedLayer {
        let book = Codebook::new(4, &[0.5, -1.0, 2.0]).unwrap();
        // 5 rows, 6 columns (the last the bias when `bias`), on 2 PEs.
        let codes: Vec<u8> = (0..30).map(|i| [0, 1, 0, 2, 3, 0, 0][i % 7]).collect();
        let m = eie_format::CodeMatrix::new(5, 6, codes).unwrap();
        let l = PackedLayer::encode("fc", &m, book, 2, 2).unwrap();
        if bias {
            l.with_bias("fc.bias").unwrap()
        } else {
            l
        }
    }

    #[test]
    fn a_layer_round_trips_through_their_files() {
        for bias in [false, true] {
            let l = layer(bias);
            let inputs = 6 - usize::from(bias);
            let x: Vec<f32> = (0..inputs).map(|i| i as f32 * 0.5).collect();
            let d = AuthorsData::from_layer(&l, &x).unwrap();
            // 2 PEs: inputs rounded up to whole groups, the bias's column, the end.
            assert_eq!(d.ptr[0].len(), inputs.div_ceil(2) * 2 + 2);
            let dir = std::env::temp_dir()
                .join(format!("eie-authors-files-{}-{bias}", std::process::id()));
            d.write(&dir, 5, 4).unwrap();
            let back = AuthorsData::read(&dir, bias).unwrap();
            assert_eq!(back, d);
            let h = std::fs::read_to_string(dir.join("src/params.h")).unwrap();
            assert!(h.contains("NZFETCH_buffersize = 4;"), "{h}");
            std::fs::remove_dir_all(&dir).unwrap();
            let (again, input) = back.to_layer("fc", "fc.bias", 5).unwrap();
            assert_eq!(input, x);
            assert_eq!(again.streams(), l.streams());
            assert_eq!(again.decode(), l.decode());
        }
    }

    #[test]
    fn bad_files_are_named() {
        let l = layer(true);
        let mut d = AuthorsData::from_layer(&l, &[1.0; 5]).unwrap();
        d.ptr[1].pop();
        let e = d.to_layer("fc", "b", 5).unwrap_err().to_string();
        assert!(e.contains("ptr1.dat") && e.contains("pointers"), "{e}");
        let mut d = AuthorsData::from_layer(&l, &[1.0; 5]).unwrap();
        d.spm[0][0].0 = 16;
        let e = d.to_layer("fc", "b", 5).unwrap_err().to_string();
        assert!(e.contains("spm0.dat") && e.contains("code 16"), "{e}");
        // Their indices are 4-bit.
        let mut d = AuthorsData::from_layer(&l, &[1.0; 5]).unwrap();
        d.spm[1][0].1 = 16;
        let e = d.to_layer("fc", "b", 5).unwrap_err().to_string();
        assert!(e.contains("spm1.dat") && e.contains("index 16"), "{e}");
        // Entries past the rows given: named by the PE's file, with the rows.
        let d = AuthorsData::from_layer(&l, &[1.0; 5]).unwrap();
        let e = d.to_layer("fc", "b", 1).unwrap_err().to_string();
        assert!(e.contains("spm0.dat") && e.contains("with 1 rows"), "{e}");
        // A hand-made value without PEs is refused, not divided by.
        let none = AuthorsData {
            ptr: Vec::new(),
            spm: Vec::new(),
            ..d.clone()
        };
        assert!(none.to_layer("fc", "b", 5).is_err());
        let dir = std::env::temp_dir().join(format!("eie-authors-none-{}", std::process::id()));
        assert!(none.write(&dir, 5, 4).is_err());
        assert!(!dir.exists(), "nothing written for a refused value");
        let wide = PackedLayer::encode(
            "w",
            &eie_format::CodeMatrix::new(1, 1, vec![1]).unwrap(),
            Codebook::new(5, &[1.0]).unwrap(),
            1,
            4,
        )
        .unwrap();
        let e = AuthorsData::from_layer(&wide, &[1.0])
            .unwrap_err()
            .to_string();
        assert!(e.contains("5-bit codes"), "{e}");
    }
}
