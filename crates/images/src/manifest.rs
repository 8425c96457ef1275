//! `manifest.json` and the image files it names: rendering a bundle to files, and reading
//! files back into validated layers.

use std::path::{Component, Path};

use eie_format::{Bundle, Codebook, PackedLayer, PeStreams, SourceInfo, Span, hex};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::words::{
    CODEBOOK_WORD_BITS, SPMAT_WORD_BITS, codebook_words, entries_per_word, from_hex, from_le_bytes,
    image_err, pack_spmat, to_hex, to_le_bytes, unpack_spmat,
};

/// Name of the manifest file, at the root of an output folder.
pub const MANIFEST_FILE: &str = "manifest.json";
/// Folder, beside the manifest, holding one sub-folder of images per layer.
pub const IMAGES_DIR: &str = "images";
/// Value of [`Manifest::format`].
pub const MANIFEST_FORMAT: &str = "eie-images";
/// Version of the manifest and image layout.
pub const MANIFEST_VERSION: u32 = 2;

/// What a manifest says about the whole image set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Always [`MANIFEST_FORMAT`].
    pub format: String,
    /// Layout version, [`MANIFEST_VERSION`].
    pub format_version: u32,
    /// Version of the tool that wrote the images.
    pub tool_version: String,
    /// The source checkpoint.
    pub source: ManifestSource,
    /// Byte order of every binary image: "little-endian".
    pub byte_order: String,
    /// Width of a Spmat word in bits (64).
    pub spmat_word_bits: u32,
    /// Width of a column pointer in bits (16 or 32).
    pub pointer_bits: u32,
    /// Width of a codebook word in bits (16).
    pub codebook_word_bits: u32,
    /// The Spmat entry layout, in words.
    pub entry_layout: String,
    /// Every layer, in model order.
    pub layers: Vec<LayerManifest>,
}

/// The source checkpoint, as the manifest records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestSource {
    /// File name or description.
    pub name: String,
    /// Lowercase hex SHA-256 of the source file, if it came from one.
    pub sha256: Option<String>,
}

/// One layer's geometry, codebook, per-PE counts and files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerManifest {
    /// Position in the model, from 0.
    pub index: usize,
    /// Layer (tensor) name.
    pub name: String,
    /// Bias tensor folded in as the layer's last column, if any.
    pub bias: Option<String>,
    /// For a column batch: which columns of the layer this part holds (pointers restart at
    /// 0 in every part). Null for a layer stored whole.
    pub part: Option<PartManifest>,
    /// Folder of this layer's images, relative to the manifest.
    pub dir: String,
    /// Rows (outputs).
    pub rows: usize,
    /// Columns (inputs, plus the bias column if any).
    pub cols: usize,
    /// PEs; row i lives in PE i mod pes.
    pub pes: usize,
    /// Bits of a weight code.
    pub code_bits: u8,
    /// Bits of a relative row index.
    pub index_bits: u8,
    /// code_bits + index_bits.
    pub entry_bits: u32,
    /// Entries per Spmat word: floor(64 / entry_bits).
    pub entries_per_word: usize,
    /// Defined codebook entries, code 0 included.
    pub codebook_len: usize,
    /// Fractional bits of the codebook's fixed-point values.
    pub codebook_frac_bits: u8,
    /// Float value of every code, in code order (2^code_bits of them).
    pub codebook: Vec<f32>,
    /// 16-bit fixed-point value of every code, in code order.
    pub codebook_fixed: Vec<i16>,
    /// Entries over all PEs, padding included.
    pub entries: usize,
    /// Padding entries over all PEs.
    pub padding: usize,
    /// Per-PE counts.
    pub pe: Vec<PeManifest>,
    /// Every file of this layer.
    pub files: Vec<FileEntry>,
}

/// Where a column batch sits in its layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartManifest {
    /// First column of the layer held by this part.
    pub first_col: usize,
    /// Columns of the whole layer.
    pub total_cols: usize,
}

/// One PE's counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeManifest {
    /// PE index.
    pub index: usize,
    /// Rows of the layer this PE holds.
    pub rows: usize,
    /// Entries, padding included (also the last column pointer).
    pub entries: usize,
    /// Padding entries.
    pub padding: usize,
    /// Spmat words.
    pub spmat_words: usize,
}

/// Which memory a file images.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileKind {
    /// Sparse-matrix entries.
    Spmat,
    /// Column pointers.
    Pointers,
    /// Codebook (shared by the layer's PEs).
    Codebook,
}

/// How a file is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// Raw little-endian words.
    Binary,
    /// `$readmemh` text, one word per line.
    Readmemh,
}

/// One image file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// Path relative to the manifest, `/`-separated.
    pub path: String,
    /// Layer name.
    pub layer: String,
    /// PE index; None for the codebook, which every PE of the layer loads.
    pub pe: Option<usize>,
    /// Memory imaged.
    pub kind: FileKind,
    /// Encoding.
    pub encoding: Encoding,
    /// Bits per word.
    pub word_bits: u32,
    /// Number of words.
    pub words: usize,
    /// Byte order of the binary encoding ("little-endian"; hex text is written most
    /// significant digit first, as `$readmemh` expects).
    pub byte_order: String,
    /// Size of the file in bytes.
    pub bytes: usize,
    /// Lowercase hex SHA-256 of the file.
    pub sha256: String,
}

/// A rendered file: its path relative to the output folder, and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageFile {
    /// Path relative to the output folder, `/`-separated.
    pub path: String,
    /// Contents.
    pub bytes: Vec<u8>,
}

/// Every image of a bundle plus the manifest that describes them.
#[derive(Debug, Clone)]
pub struct ImageSet {
    /// The manifest (serialise with [`Manifest::to_json`]).
    pub manifest: Manifest,
    /// The image files, in manifest order.
    pub files: Vec<ImageFile>,
}

const LITTLE_ENDIAN: &str = "little-endian";
const ENTRY_LAYOUT: &str = "entry k of a Spmat word occupies bits [k*entry_bits, (k+1)*entry_bits); \
within an entry the weight code is in the low code_bits bits and the relative row index z above it; \
entries never straddle words; unused high bits and slots after a PE's last entry are zero";

impl Manifest {
    /// Pretty-printed JSON with a trailing newline (deterministic: fields in declaration order).
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("manifest serialises");
        s.push('\n');
        s
    }
}

/// A file-system-safe folder name for layer `index` called `name`: every character other
/// than ASCII letters, digits, `.`, `_` and `-` becomes `_`, the result is cut to 96 bytes,
/// and the index is prefixed, so names stay unique and can never be `.`, `..`, absolute or
/// contain a separator.
pub fn layer_dir_name(index: usize, name: &str) -> String {
    let mut safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    safe.truncate(96);
    format!("{index:03}-{safe}")
}

fn pe_file_stem(pe: usize, pes: usize) -> String {
    let width = (pes.saturating_sub(1)).to_string().len().max(2);
    format!("pe{pe:0width$}")
}

/// One layer's (or column batch's) images and its manifest record.
#[derive(Debug, Clone)]
pub struct LayerImages {
    /// The layer's manifest record.
    pub manifest: LayerManifest,
    /// Its files, in manifest order.
    pub files: Vec<ImageFile>,
}

/// Which memory of which PE a pair of files images.
struct Memory<'a> {
    layer: &'a str,
    pe: Option<usize>,
    kind: FileKind,
    word_bits: u32,
}

/// A memory's words as its two files, binary then `$readmemh`, with their manifest entries.
fn both(stem: &str, m: &Memory, words: &[u64]) -> [(FileEntry, ImageFile); 2] {
    let file = |encoding: Encoding, ext: &str, bytes: Vec<u8>| {
        let path = format!("{stem}.{ext}");
        let entry = FileEntry {
            path: path.clone(),
            layer: m.layer.to_string(),
            pe: m.pe,
            kind: m.kind,
            encoding,
            word_bits: m.word_bits,
            words: words.len(),
            byte_order: LITTLE_ENDIAN.to_string(),
            bytes: bytes.len(),
            sha256: hex(&Sha256::digest(&bytes)),
        };
        (entry, ImageFile { path, bytes })
    };
    [
        file(Encoding::Binary, "bin", to_le_bytes(words, m.word_bits)),
        file(
            Encoding::Readmemh,
            "hex",
            to_hex(words, m.word_bits).into_bytes(),
        ),
    ]
}

/// Renders the images of `layer`, the `index`-th of its model, with `pointer_bits`-bit
/// pointers; checks every pointer fits them (an error names the layer and PE). The PEs are
/// rendered in parallel; the result does not depend on how.
pub fn render_layer(index: usize, layer: &PackedLayer, pointer_bits: u8) -> Result<LayerImages> {
    render_layer_with(index, layer, pointer_bits, None)
}

/// What is done with each file as soon as it is rendered (written, by [`ImageWriter`]).
type Sink<'a> = &'a (dyn Fn(&ImageFile) -> Result<()> + Sync);

/// [`render_layer`]; with a sink, every file goes to it as it is rendered and is not kept
/// (the layer's files are then never all in memory at once).
fn render_layer_with(
    index: usize,
    layer: &PackedLayer,
    pointer_bits: u8,
    sink: Option<Sink>,
) -> Result<LayerImages> {
    layer.check_pointer_width(pointer_bits)?;
    let word_bits = pointer_bits as u32;
    let name = layer.name();
    let dir = format!("{IMAGES_DIR}/{}", layer_dir_name(index, name));
    let book = layer.codebook();
    let pairs: Vec<(FileEntry, ImageFile)> = both(
        &format!("{dir}/codebook"),
        &Memory {
            layer: name,
            pe: None,
            kind: FileKind::Codebook,
            word_bits: CODEBOOK_WORD_BITS,
        },
        &codebook_words(book.fixed()),
    )
    .into();
    let pass = |files: Vec<(FileEntry, ImageFile)>| -> Result<Vec<(FileEntry, ImageFile)>> {
        let Some(sink) = sink else {
            return Ok(files);
        };
        files
            .into_iter()
            .map(|(entry, file)| {
                sink(&file)?;
                Ok((
                    entry,
                    ImageFile {
                        path: file.path,
                        bytes: Vec::new(),
                    },
                ))
            })
            .collect()
    };
    let mut pairs = pass(pairs)?;
    let per_pe: Vec<(Vec<(FileEntry, ImageFile)>, PeManifest)> = layer
        .streams()
        .par_iter()
        .enumerate()
        .map(|(pe, s)| {
            let stem = format!("{dir}/{}", pe_file_stem(pe, layer.pes()));
            let spmat = pack_spmat(s.codes(), s.z(), layer.code_bits(), layer.index_bits());
            let ptr: Vec<u64> = s.ptr().iter().map(|&p| p as u64).collect();
            let mut files: Vec<(FileEntry, ImageFile)> = Vec::with_capacity(4);
            let memory = |kind, word_bits| Memory {
                layer: name,
                pe: Some(pe),
                kind,
                word_bits,
            };
            files.extend(both(
                &format!("{stem}.spmat"),
                &memory(FileKind::Spmat, SPMAT_WORD_BITS),
                &spmat,
            ));
            files.extend(both(
                &format!("{stem}.ptr"),
                &memory(FileKind::Pointers, word_bits),
                &ptr,
            ));
            let record = PeManifest {
                index: pe,
                rows: layer.slice_rows(pe),
                entries: s.entries(),
                padding: s.padding(),
                spmat_words: spmat.len(),
            };
            Ok((pass(files)?, record))
        })
        .collect::<Result<_>>()?;
    let mut pe_manifest = Vec::with_capacity(per_pe.len());
    for (files, record) in per_pe {
        pairs.extend(files);
        pe_manifest.push(record);
    }
    let (entries, files): (Vec<FileEntry>, Vec<ImageFile>) = pairs.into_iter().unzip();
    Ok(LayerImages {
        manifest: LayerManifest {
            index,
            name: name.to_string(),
            bias: layer.bias().map(str::to_string),
            part: layer.span().map(|s| PartManifest {
                first_col: s.first,
                total_cols: s.total,
            }),
            dir,
            rows: layer.rows(),
            cols: layer.cols(),
            pes: layer.pes(),
            code_bits: layer.code_bits(),
            index_bits: layer.index_bits(),
            entry_bits: layer.entry_bits(),
            entries_per_word: entries_per_word(layer.entry_bits()),
            codebook_len: book.len(),
            codebook_frac_bits: book.frac_bits(),
            codebook: book.values().to_vec(),
            codebook_fixed: book.fixed().to_vec(),
            entries: layer.entries(),
            padding: layer.padding(),
            pe: pe_manifest,
            files: entries,
        },
        files,
    })
}

impl Manifest {
    /// The manifest of a model whose layers' records are `layers` (from [`render_layer`]).
    pub fn new(
        tool_version: &str,
        source: &SourceInfo,
        pointer_bits: u8,
        layers: Vec<LayerManifest>,
    ) -> Self {
        Self {
            format: MANIFEST_FORMAT.to_string(),
            format_version: MANIFEST_VERSION,
            tool_version: tool_version.to_string(),
            source: ManifestSource {
                name: source.name.clone(),
                sha256: source.sha256.map(|h| hex(&h)),
            },
            byte_order: LITTLE_ENDIAN.to_string(),
            spmat_word_bits: SPMAT_WORD_BITS,
            pointer_bits: pointer_bits as u32,
            codebook_word_bits: CODEBOOK_WORD_BITS,
            entry_layout: ENTRY_LAYOUT.to_string(),
            layers,
        }
    }
}

/// Renders every image of `bundle` with its manifest. Checks every pointer fits the bundle's
/// pointer width (an error names the layer and PE).
pub fn render(bundle: &Bundle) -> Result<ImageSet> {
    let meta = bundle.meta();
    let mut files = Vec::new();
    let mut layers = Vec::new();
    for (index, layer) in bundle.layers().iter().enumerate() {
        let rendered = render_layer(index, layer, meta.pointer_bits)?;
        files.extend(rendered.files);
        layers.push(rendered.manifest);
    }
    let manifest = Manifest::new(&meta.tool_version, &meta.source, meta.pointer_bits, layers);
    Ok(ImageSet { manifest, files })
}

/// Writes a model's images into a folder one layer at a time, as they are packed, so a large
/// model never has all its images in memory; [`ImageWriter::finish`] writes `manifest.json`.
/// The files are those [`render`] gives for the same layers. Plain writes: callers that need
/// all-or-nothing output write into a staging folder and rename it.
pub struct ImageWriter {
    dir: std::path::PathBuf,
    pointer_bits: u8,
    layers: Vec<LayerManifest>,
}

impl ImageWriter {
    /// Images of `pointer_bits`-bit pointers, under `dir`.
    pub fn new(dir: &Path, pointer_bits: u8) -> Self {
        Self {
            dir: dir.to_path_buf(),
            pointer_bits,
            layers: Vec::new(),
        }
    }

    /// Renders and writes the next layer (or column batch); returns the number of files.
    pub fn push(&mut self, layer: &PackedLayer) -> Result<usize> {
        let index = self.layers.len();
        let folder = self
            .dir
            .join(IMAGES_DIR)
            .join(layer_dir_name(index, layer.name()));
        std::fs::create_dir_all(&folder).map_err(|source| Error::Write {
            path: folder.clone(),
            source,
        })?;
        // Each PE's files are written as soon as they are rendered, the PEs side by side.
        let write = |file: &ImageFile| {
            let path = self.dir.join(&file.path);
            std::fs::write(&path, &file.bytes).map_err(|source| Error::Write { path, source })
        };
        let rendered = render_layer_with(index, layer, self.pointer_bits, Some(&write))?;
        self.layers.push(rendered.manifest);
        Ok(rendered.files.len())
    }

    /// Writes `manifest.json` and returns the manifest.
    pub fn finish(self, tool_version: &str, source: &SourceInfo) -> Result<Manifest> {
        let manifest = Manifest::new(tool_version, source, self.pointer_bits, self.layers);
        let path = self.dir.join(MANIFEST_FILE);
        std::fs::write(&path, manifest.to_json())
            .map_err(|source| Error::Write { path, source })?;
        Ok(manifest)
    }
}

/// Writes `files` under `dir`, creating folders.
pub(crate) fn write_files(dir: &Path, files: &[ImageFile]) -> Result<()> {
    let io = |path: std::path::PathBuf| move |source| Error::Write { path, source };
    let mut made: Option<std::path::PathBuf> = None;
    for file in files {
        let path = dir.join(&file.path);
        // A layer's files share one folder: made once.
        if let Some(parent) = path.parent()
            && made.as_deref() != Some(parent)
        {
            std::fs::create_dir_all(parent).map_err(io(parent.to_path_buf()))?;
            made = Some(parent.to_path_buf());
        }
        std::fs::write(&path, &file.bytes).map_err(io(path.clone()))?;
    }
    Ok(())
}

/// Images read back from disk: the manifest and every layer rebuilt from the image bytes
/// alone (validated like a bundle's layers).
#[derive(Debug, Clone)]
pub struct LoadedImages {
    /// The manifest as read.
    pub manifest: Manifest,
    /// One layer per manifest layer, in order.
    pub layers: Vec<PackedLayer>,
}

/// Largest `manifest.json` read (its size grows with layers x PEs: a 127-layer model on 64
/// PEs has about 10 MB).
pub const MAX_MANIFEST_BYTES: u64 = 256 << 20;

/// Reads and checks `dir/manifest.json` alone: a regular file of at most
/// [`MAX_MANIFEST_BYTES`], no field this version does not know, this format and version.
pub fn read_manifest(dir: &Path) -> Result<Manifest> {
    let manifest_path = dir.join(MANIFEST_FILE);
    let text =
        eie_format::files::read_text(&manifest_path, MAX_MANIFEST_BYTES).map_err(|source| {
            Error::Io {
                path: manifest_path.clone(),
                source,
            }
        })?;
    let bad = |reason: String| Error::Manifest {
        path: manifest_path.clone(),
        reason,
    };
    let manifest: Manifest = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
    if manifest.format != MANIFEST_FORMAT || manifest.format_version != MANIFEST_VERSION {
        return Err(bad(format!(
            "format {:?} version {}, expected {MANIFEST_FORMAT:?} version {MANIFEST_VERSION}",
            manifest.format, manifest.format_version
        )));
    }
    if ![16, 32].contains(&manifest.pointer_bits) || manifest.spmat_word_bits != SPMAT_WORD_BITS {
        return Err(bad(format!(
            "pointer_bits {} / spmat_word_bits {}, expected 16 or 32 / {SPMAT_WORD_BITS}",
            manifest.pointer_bits, manifest.spmat_word_bits
        )));
    }
    Ok(manifest)
}

/// Reads `dir/manifest.json` and every file it names; checks each file's size and SHA-256,
/// that each `.hex` says the same words as its `.bin`, and rebuilds every layer from the
/// binary images, validating it. A path in the manifest that would leave `dir` is refused.
pub fn load(dir: &Path) -> Result<LoadedImages> {
    let manifest_path = dir.join(MANIFEST_FILE);
    let manifest = read_manifest(dir)?;
    let layers = manifest
        .layers
        .iter()
        .map(|lm| load_layer(dir, &manifest, lm).map_err(|e| relabel(e, &manifest_path)))
        .collect::<Result<Vec<_>>>()?;
    Ok(LoadedImages { manifest, layers })
}

fn relabel(e: Error, manifest_path: &Path) -> Error {
    match e {
        Error::Manifest { reason, .. } => Error::Manifest {
            path: manifest_path.to_path_buf(),
            reason,
        },
        other => other,
    }
}

fn load_layer(dir: &Path, manifest: &Manifest, lm: &LayerManifest) -> Result<PackedLayer> {
    let bad = |reason: String| Error::Manifest {
        path: Default::default(),
        reason: format!("layer \"{}\": {reason}", lm.name),
    };
    if lm.pes == 0 || lm.pe.len() != lm.pes {
        return Err(bad(format!(
            "{} PE records for {} PEs",
            lm.pe.len(),
            lm.pes
        )));
    }
    // Read the binary image of (kind, pe), checking it and its hex twin.
    let read = |kind: FileKind, pe: Option<usize>| -> Result<Vec<u64>> {
        let mut words = None;
        for encoding in [Encoding::Binary, Encoding::Readmemh] {
            let entry = lm
                .files
                .iter()
                .find(|f| f.kind == kind && f.pe == pe && f.encoding == encoding)
                .ok_or_else(|| bad(format!("no {kind:?} {encoding:?} file for PE {pe:?}")))?;
            let bytes = read_checked(dir, entry)?;
            let decoded = match encoding {
                Encoding::Binary => from_le_bytes(&bytes, entry.word_bits),
                Encoding::Readmemh => std::str::from_utf8(&bytes)
                    .map_err(|e| e.to_string())
                    .and_then(|t| from_hex(t, entry.word_bits)),
            }
            .map_err(|r| image_err(&entry.path, r))?;
            if decoded.len() != entry.words {
                return Err(image_err(
                    &entry.path,
                    format!("{} words, the manifest says {}", decoded.len(), entry.words),
                ));
            }
            match &words {
                None => words = Some(decoded),
                Some(w) if *w != decoded => {
                    return Err(image_err(
                        &entry.path,
                        "says different words than its binary twin".into(),
                    ));
                }
                Some(_) => {}
            }
        }
        Ok(words.expect("binary read first"))
    };
    let expect_width = |kind: FileKind, bits: u32| -> Result<()> {
        match lm
            .files
            .iter()
            .find(|f| f.kind == kind && f.word_bits != bits)
        {
            Some(f) => Err(image_err(
                &f.path,
                format!("{}-bit words, expected {bits}", f.word_bits),
            )),
            None => Ok(()),
        }
    };
    expect_width(FileKind::Spmat, SPMAT_WORD_BITS)?;
    expect_width(FileKind::Pointers, manifest.pointer_bits)?;
    expect_width(FileKind::Codebook, CODEBOOK_WORD_BITS)?;

    // Widths first: everything below divides by them.
    if !(1..=8).contains(&lm.code_bits) || !(1..=8).contains(&lm.index_bits) {
        return Err(bad(format!(
            "{}-bit codes and {}-bit indices, expected 1..=8 each",
            lm.code_bits, lm.index_bits
        )));
    }
    let fixed: Vec<i16> = read(FileKind::Codebook, None)?
        .iter()
        .map(|&w| w as u16 as i16)
        .collect();
    let codebook = Codebook::from_parts(
        lm.code_bits,
        lm.codebook_len,
        &lm.codebook,
        lm.codebook_frac_bits,
        &fixed,
    )
    .map_err(|e| bad(e.to_string()))?;
    if fixed != lm.codebook_fixed {
        return Err(bad("codebook_fixed differs from the codebook image".into()));
    }
    let mut streams = Vec::with_capacity(lm.pes);
    for pe in 0..lm.pes {
        let ptr: Vec<u32> = read(FileKind::Pointers, Some(pe))?
            .iter()
            .map(|&p| p as u32)
            .collect();
        let count = ptr.last().copied().unwrap_or(0) as usize;
        let spmat = read(FileKind::Spmat, Some(pe))?;
        let (codes, z) = unpack_spmat(&spmat, count, lm.code_bits, lm.index_bits).map_err(|r| {
            let file = lm
                .files
                .iter()
                .find(|f| {
                    f.kind == FileKind::Spmat && f.pe == Some(pe) && f.encoding == Encoding::Binary
                })
                .map_or_else(|| format!("{} PE {pe} Spmat", lm.name), |f| f.path.clone());
            image_err(&file, r)
        })?;
        streams.push(PeStreams::from_raw(codes, z, ptr));
    }
    let mut layer = PackedLayer::from_parts(
        lm.name.clone(),
        lm.bias.clone(),
        lm.rows,
        lm.cols,
        lm.index_bits,
        codebook,
        streams,
    )?;
    if let Some(part) = &lm.part {
        layer = layer.with_span(Span {
            first: part.first_col,
            total: part.total_cols,
        })?;
    }
    if layer.entries() != lm.entries || layer.padding() != lm.padding {
        return Err(bad(format!(
            "images hold {} entries ({} padding), the manifest says {} ({})",
            layer.entries(),
            layer.padding(),
            lm.entries,
            lm.padding
        )));
    }
    Ok(layer)
}

fn read_checked(dir: &Path, entry: &FileEntry) -> Result<Vec<u8>> {
    let rel = Path::new(&entry.path);
    if entry.path.is_empty() || !rel.components().all(|c| matches!(c, Component::Normal(_))) {
        return Err(Error::Manifest {
            path: Default::default(),
            reason: format!("file path {:?} leaves the images folder", entry.path),
        });
    }
    let path = dir.join(rel);
    // A link may not lead out of the output folder.
    if let (Ok(real), Ok(root)) = (std::fs::canonicalize(&path), std::fs::canonicalize(dir))
        && !real.starts_with(&root)
    {
        return Err(image_err(
            &entry.path,
            format!("a link to {}, outside the output folder", real.display()),
        ));
    }
    // Never more than the manifest says: a sparse or growing file is refused, not read.
    let bytes = eie_format::files::read_regular(&path, entry.bytes as u64)
        .map_err(|source| Error::Io { path, source })?;
    let found = hex(&Sha256::digest(&bytes));
    if found != entry.sha256 {
        return Err(Error::Checksum {
            file: entry.path.clone(),
            expected: entry.sha256.clone(),
            found,
        });
    }
    if bytes.len() != entry.bytes {
        return Err(image_err(
            &entry.path,
            format!("{} bytes, the manifest says {}", bytes.len(), entry.bytes),
        ));
    }
    Ok(bytes)
}
