#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod capacity;
mod error;
mod fit;
mod manifest;
mod words;

pub use capacity::{
    Capacity, EntryBalance, LayerBytes, MAX_SRAM_BYTES, Residency, check as check_capacity,
    fitting_batch, fitting_pes, pct, pointer_bytes, pointer_image_bytes, spmat_bytes,
};
pub use error::{Error, Memory, Overflow, Remedy, Result};
pub use fit::{AUTO_BATCH, ColumnBatch, Fit, Placed};
pub use manifest::{
    Encoding, FileEntry, FileKind, IMAGES_DIR, ImageFile, ImageSet, ImageWriter, LayerImages,
    LayerManifest, LoadedImages, MANIFEST_FILE, MANIFEST_FORMAT, MANIFEST_VERSION,
    MAX_MANIFEST_BYTES, Manifest, ManifestSource, PartManifest, PeManifest, layer_dir_name, load,
    read_manifest, render, render_layer,
};
pub use words::{
    CODEBOOK_WORD_BITS, SPMAT_WORD_BITS, codebook_words, entries_per_word, from_hex, from_le_bytes,
    pack_spmat, to_hex, to_le_bytes, unpack_spmat,
};

impl ImageSet {
    /// Writes every image and `manifest.json` under `dir` (creating folders). Plain writes:
    /// callers that need all-or-nothing output write into a staging folder and rename it.
    pub fn write_into(&self, dir: &std::path::Path) -> Result<()> {
        manifest::write_files(dir, &self.files)?;
        let path = dir.join(MANIFEST_FILE);
        std::fs::write(&path, self.manifest.to_json())
            .map_err(|source| Error::Write { path, source })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use eie_format::{Bundle, BundleMeta, CodeMatrix, Codebook, PackedLayer, SourceInfo};
    use proptest::prelude::*;

    use super::*;

    fn bundle(layers: Vec<PackedLayer>, pointer_bits: u8) -> Bundle {
        let meta = BundleMeta {
            tool_version: "test".into(),
            source: SourceInfo {
                name: "m.safetensors".into(),
                sha256: Some([1; 32]),
            },
            pointer_bits,
            settings: BTreeMap::new(),
        };
        Bundle::new(meta, layers).unwrap()
    }

    fn layer(
        name: &str,
        rows: usize,
        cols: usize,
        pes: usize,
        code_bits: u8,
        index_bits: u8,
        seed: u64,
    ) -> PackedLayer {
        let mut state = seed | 1;
        let max = (1u64 << code_bits) - 1;
        let codes = (0..rows * cols)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                if state.is_multiple_of(3) {
                    (state / 3 % max + 1) as u8
                } else {
                    0
                }
            })
            .collect();
        let values: Vec<f32> = (1..=max)
            .map(|v| v as f32 / 64.0 - 1.0)
            .map(|v| if v == 0.0 { 1.0 / 128.0 } else { v })
            .collect();
        let m = CodeMatrix::new(rows, cols, codes).unwrap();
        PackedLayer::encode(
            name,
            &m,
            Codebook::new(code_bits, &values).unwrap(),
            pes,
            index_bits,
        )
        .unwrap()
    }

    fn written(b: &Bundle) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        render(b).unwrap().write_into(dir.path()).unwrap();
        dir
    }

    #[test]
    fn render_then_load_gives_the_bundle_layers() {
        let b = bundle(
            vec![
                layer("fc1.weight", 40, 30, 4, 4, 4, 1),
                layer("fc2.weight", 10, 40, 3, 3, 2, 2),
            ],
            16,
        );
        let dir = written(&b);
        let loaded = load(dir.path()).unwrap();
        assert_eq!(loaded.layers, b.layers());
        let m = &loaded.manifest;
        assert_eq!(
            (m.pointer_bits, m.spmat_word_bits, m.codebook_word_bits),
            (16, 64, 16)
        );
        assert_eq!(m.source.sha256.as_deref(), Some(&"01".repeat(32)[..]));
        let l0 = &m.layers[0];
        assert_eq!(l0.dir, "images/000-fc1.weight");
        // codebook + 4 PEs x (spmat + pointers), each as .bin and .hex
        assert_eq!(l0.files.len(), 2 * (1 + 4 * 2));
        let ptr = l0
            .files
            .iter()
            .find(|f| {
                f.kind == FileKind::Pointers && f.pe == Some(3) && f.encoding == Encoding::Binary
            })
            .unwrap();
        assert_eq!(
            (ptr.path.as_str(), ptr.words, ptr.bytes),
            ("images/000-fc1.weight/pe03.ptr.bin", 31, 62)
        );
    }

    #[test]
    fn the_streaming_writer_writes_what_render_gives() {
        let b = bundle(
            vec![
                layer("fc1.weight", 40, 30, 4, 4, 4, 1),
                layer("fc2.weight", 10, 40, 3, 3, 2, 2),
            ],
            16,
        );
        let whole = written(&b);
        let streamed = tempfile::tempdir().unwrap();
        let mut w = ImageWriter::new(streamed.path(), 16);
        for l in b.layers() {
            w.push(l).unwrap();
        }
        let m = w.finish(&b.meta().tool_version, &b.meta().source).unwrap();
        assert_eq!(m, render(&b).unwrap().manifest);
        for f in &render(&b).unwrap().files {
            assert_eq!(
                std::fs::read(streamed.path().join(&f.path)).unwrap(),
                std::fs::read(whole.path().join(&f.path)).unwrap(),
                "{}",
                f.path
            );
        }
        assert_eq!(
            std::fs::read(streamed.path().join(MANIFEST_FILE)).unwrap(),
            std::fs::read(whole.path().join(MANIFEST_FILE)).unwrap()
        );
    }

    #[test]
    fn thirty_two_bit_pointers() {
        let b = bundle(vec![layer("w", 9, 5, 2, 4, 4, 3)], 32);
        let dir = written(&b);
        let loaded = load(dir.path()).unwrap();
        assert_eq!(loaded.layers, b.layers());
        let files = &loaded.manifest.layers[0].files;
        for f in files.iter().filter(|f| f.kind == FileKind::Pointers) {
            assert_eq!((f.word_bits, f.words), (32, 6));
            let line = if f.encoding == Encoding::Binary { 4 } else { 9 };
            assert_eq!(f.bytes, 6 * line, "{}", f.path);
        }
    }

    #[test]
    fn tampering_is_caught() {
        let b = bundle(vec![layer("fc", 20, 10, 2, 4, 4, 4)], 16);
        // A flipped byte in an image: checksum.
        let dir = written(&b);
        let p = dir.path().join("images/000-fc/pe01.spmat.bin");
        let mut bytes = std::fs::read(&p).unwrap();
        bytes[0] ^= 1;
        std::fs::write(&p, bytes).unwrap();
        assert!(matches!(load(dir.path()), Err(Error::Checksum { .. })));

        // A hex twin that disagrees with its binary (checksum updated to match).
        let dir = written(&b);
        let mut set = render(&b).unwrap();
        let hex_at = set
            .files
            .iter()
            .position(|f| f.path.ends_with("pe00.ptr.hex"))
            .unwrap();
        let text = String::from_utf8(set.files[hex_at].bytes.clone())
            .unwrap()
            .replacen("0000", "0001", 1);
        set.files[hex_at].bytes = text.into_bytes();
        let digest = eie_format::hex(&<sha2::Sha256 as sha2::Digest>::digest(
            &set.files[hex_at].bytes,
        ));
        for f in set.manifest.layers[0]
            .files
            .iter_mut()
            .filter(|f| f.path.ends_with("pe00.ptr.hex"))
        {
            f.sha256 = digest.clone();
        }
        set.write_into(dir.path()).unwrap();
        let err = load(dir.path()).unwrap_err();
        assert!(err.to_string().contains("binary twin"), "{err}");

        // A manifest path that escapes the folder.
        let dir = written(&b);
        let mut set = render(&b).unwrap();
        set.manifest.layers[0].files[0].path = "../outside.bin".into();
        std::fs::write(dir.path().join(MANIFEST_FILE), set.manifest.to_json()).unwrap();
        let err = load(dir.path()).unwrap_err();
        assert!(
            err.to_string().contains("leaves the images folder"),
            "{err}"
        );

        // A missing file.
        let dir = written(&b);
        std::fs::remove_file(dir.path().join("images/000-fc/codebook.hex")).unwrap();
        assert!(matches!(load(dir.path()), Err(Error::Io { .. })));

        // Regression (review A1): bit widths the loader divides by, edited in the manifest.
        for (code_bits, index_bits) in [(4, 200), (200, 4), (0, 4)] {
            let dir = written(&b);
            let mut set = render(&b).unwrap();
            set.manifest.layers[0].code_bits = code_bits;
            set.manifest.layers[0].index_bits = index_bits;
            std::fs::write(dir.path().join(MANIFEST_FILE), set.manifest.to_json()).unwrap();
            let err = load(dir.path()).unwrap_err();
            assert!(
                matches!(err, Error::Manifest { .. }),
                "{code_bits}/{index_bits}: {err}"
            );
        }

        // Not a manifest.
        let dir = written(&b);
        std::fs::write(dir.path().join(MANIFEST_FILE), "{}").unwrap();
        assert!(matches!(load(dir.path()), Err(Error::Manifest { .. })));
    }

    #[test]
    fn pointer_overflow_is_an_error_naming_layer_and_pe() {
        // 1 row x 70000 dense columns, 1 PE: 70000 entries do not fit a 16-bit pointer.
        let m = CodeMatrix::new(1, 70_000, vec![1; 70_000]).unwrap();
        let l = PackedLayer::encode("wide", &m, Codebook::new(4, &[1.0]).unwrap(), 1, 4).unwrap();
        let meta = BundleMeta {
            tool_version: "t".into(),
            source: SourceInfo::default(),
            pointer_bits: 16,
            settings: BTreeMap::new(),
        };
        let err = Bundle::new(meta, vec![l]).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("\"wide\" PE 0") && text.contains("70000") && text.contains("65535"),
            "{text}"
        );
    }

    #[test]
    fn layer_dir_names_are_sanitised() {
        assert_eq!(layer_dir_name(0, "fc1.weight"), "000-fc1.weight");
        assert_eq!(
            layer_dir_name(3, "../../etc/passwd"),
            "003-.._.._etc_passwd"
        );
        assert_eq!(layer_dir_name(1, "/abs"), "001-_abs");
        assert_eq!(layer_dir_name(2, ".."), "002-..");
        assert_eq!(layer_dir_name(4, "a\\b:c*d é"), "004-a_b_c_d__");
        assert_eq!(layer_dir_name(5, ""), "005-");
        assert_eq!(layer_dir_name(6, &"x".repeat(500)).len(), 100);
        for name in ["../../etc/passwd", "/abs", "..", "a/b"] {
            let d = layer_dir_name(0, name);
            assert!(!d.contains('/') && d != "." && d != "..");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn images_round_trip(
            rows in 0usize..50, cols in 0usize..20, pes in prop_oneof![Just(1usize), Just(2), Just(3), Just(4), Just(8), Just(64), 1usize..70],
            code_bits in 1u8..=8, index_bits in 1u8..=8, seed in any::<u64>(), wide in any::<bool>(),
        ) {
            let b = bundle(vec![layer("p", rows, cols, pes, code_bits, index_bits, seed)], if wide { 32 } else { 16 });
            let dir = written(&b);
            prop_assert_eq!(load(dir.path()).unwrap().layers, b.layers());
        }
    }
}
