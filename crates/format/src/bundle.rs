//! `model.eie`: the whole packed model in one file. The only module that knows bincode.
//!
//! Layout (normative in `docs/format.md`), all integers little-endian:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | magic `EIEBNDL\0` |
//! | 8 | 4 | format version (u32) |
//! | 12 | 4 | flags (u32), 0 |
//! | 16 | 8 | payload length in bytes (u64) |
//! | 24 | 32 | SHA-256 of the payload |
//! | 56 | payload length | bincode 2.0.1 payload: little-endian, fixed-width integers |
//!
//! Loading checks, in order: magic, version, flags, length (truncation or trailing bytes),
//! checksum, the payload's decoding, then every layer's structure ([`PackedLayer::from_parts`])
//! and the bundle's own rules; nothing is returned before all of it passed.
//!
//! Writing has two forms with the same bytes: [`Bundle::to_bytes`] for a bundle in memory, and
//! [`BundleWriter`], which takes the layers one at a time (so a model larger than memory
//! streams through) and checks the same rules as it goes.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use bincode::{Decode, Encode};
use sha2::{Digest, Sha256};

use crate::codebook::Codebook;
use crate::error::{Error, Result};
use crate::layer::{PackedLayer, Span};
use crate::streams::PeStreams;

/// File name of the bundle in an output folder.
pub const BUNDLE_FILE: &str = "model.eie";
/// Magic bytes at the start of every bundle.
pub const MAGIC: [u8; 8] = *b"EIEBNDL\0";
/// The bundle format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 2;
/// Bytes before the payload.
pub const HEADER_LEN: usize = 56;
/// Pointer widths the images support.
pub const POINTER_BITS: [u8; 2] = [16, 32];
/// Largest payload the decoder will allocate for, in bytes of decoded data (4 GiB): a
/// crafted length field fails cleanly instead of exhausting memory.
const DECODE_LIMIT: usize = 1 << 32;

/// Where a bundle's weights came from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SourceInfo {
    /// File name of the source checkpoint (no directories), or a description of generated
    /// weights.
    pub name: String,
    /// SHA-256 of the source checkpoint's bytes, when it came from a file.
    pub sha256: Option<[u8; 32]>,
}

/// Bundle-wide metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleMeta {
    /// Version of the tool that wrote the bundle.
    pub tool_version: String,
    /// The source checkpoint.
    pub source: SourceInfo,
    /// Width of the column pointers in the memory images (16 or 32).
    pub pointer_bits: u8,
    /// The settings the bundle was made with (name to value), for provenance.
    pub settings: BTreeMap<String, String>,
}

/// A packed model: ordered layers plus metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct Bundle {
    meta: BundleMeta,
    layers: Vec<PackedLayer>,
}

fn check_pointer_bits(pointer_bits: u8) -> Result<()> {
    if POINTER_BITS.contains(&pointer_bits) {
        Ok(())
    } else {
        Err(Error::InvalidBundle {
            reason: format!("pointer width {pointer_bits} bits, expected one of {POINTER_BITS:?}"),
        })
    }
}

/// The layer in progress while its column batches arrive.
struct OpenLayer {
    name: String,
    /// Parts seen.
    parts: usize,
    /// The next column a part must start at.
    next: usize,
    total: usize,
    rows: usize,
    pes: usize,
    index_bits: u8,
    codebook: Codebook,
    bias: Option<String>,
}

/// The bundle's rules on its layers, checked one layer at a time (by [`Bundle::new`] and by
/// [`BundleWriter`], so both accept exactly the same layers): names non-empty and unique,
/// except that the column batches of one layer are consecutive parts with its name covering
/// its columns in order, with the same rows, PEs, bit widths, codebook and bias; every
/// layer's pointers fitting the pointer width; a folded bias's name new.
struct Rules {
    pointer_bits: u8,
    names: BTreeSet<String>,
    /// (layer, bias) of every logical layer with a folded bias.
    biases: Vec<(String, String)>,
    open: Option<OpenLayer>,
}

impl Rules {
    fn new(pointer_bits: u8) -> Result<Self> {
        check_pointer_bits(pointer_bits)?;
        Ok(Self {
            pointer_bits,
            names: BTreeSet::new(),
            biases: Vec::new(),
            open: None,
        })
    }

    fn bad<T>(reason: String) -> Result<T> {
        Err(Error::InvalidBundle { reason })
    }

    /// The open layer, checked complete, is closed.
    fn close(&mut self) -> Result<()> {
        if let Some(open) = self.open.take()
            && open.next != open.total
        {
            return Self::bad(format!(
                "layer \"{}\": its parts cover {} of its {} columns",
                open.name, open.next, open.total
            ));
        }
        Ok(())
    }

    fn push(&mut self, layer: &PackedLayer) -> Result<()> {
        if let Some(open) = &mut self.open
            && open.name == layer.name()
        {
            let same = layer
                .span()
                .is_some_and(|s| s.first == open.next && s.total == open.total)
                && layer.rows() == open.rows
                && layer.pes() == open.pes
                && layer.index_bits() == open.index_bits
                && *layer.codebook() == open.codebook
                && layer.bias() == open.bias.as_deref();
            if !same {
                return Self::bad(format!(
                    "layer \"{}\": part {} does not continue the layer (columns from {} of {}, same rows, PEs, bits, codebook and bias)",
                    open.name, open.parts, open.next, open.total
                ));
            }
            open.next += layer.cols();
            open.parts += 1;
            return layer.check_pointer_width(self.pointer_bits);
        }
        self.close()?;
        if layer.name().is_empty() {
            return Self::bad("a layer has an empty name".into());
        }
        if !self.names.insert(layer.name().to_string()) {
            return Self::bad(format!("layer name \"{}\" appears twice", layer.name()));
        }
        if layer.rows().checked_mul(layer.total_cols()).is_none() {
            return Self::bad(format!(
                "layer \"{}\": {} x {} overflows",
                layer.name(),
                layer.rows(),
                layer.total_cols()
            ));
        }
        if let Some(span) = layer.span() {
            if span.first != 0 {
                return Self::bad(format!(
                    "layer \"{}\": its first part starts at column {}, expected 0",
                    layer.name(),
                    span.first
                ));
            }
            self.open = Some(OpenLayer {
                name: layer.name().to_string(),
                parts: 1,
                next: layer.cols(),
                total: span.total,
                rows: layer.rows(),
                pes: layer.pes(),
                index_bits: layer.index_bits(),
                codebook: layer.codebook().clone(),
                bias: layer.bias().map(str::to_string),
            });
        }
        if let Some(b) = layer.bias() {
            self.biases.push((layer.name().to_string(), b.to_string()));
        }
        layer.check_pointer_width(self.pointer_bits)
    }

    /// After the last layer: the last one complete, and every folded bias's name new (it is a
    /// tensor of its own when unpacked).
    fn finish(mut self) -> Result<()> {
        self.close()?;
        if self.names.is_empty() {
            return Self::bad("no layers: a model has at least one".into());
        }
        let mut seen = BTreeSet::new();
        for (layer, b) in &self.biases {
            if b.is_empty() || self.names.contains(b) || !seen.insert(b.as_str()) {
                return Self::bad(format!(
                    "layer \"{layer}\": bias name \"{b}\" is empty or names another tensor"
                ));
            }
        }
        Ok(())
    }
}

impl Bundle {
    /// Assembles a bundle, checking its rules: layer names non-empty and unique, except that
    /// the column batches of one layer are consecutive parts with its name, covering its
    /// columns in order, with the same rows, PEs, bit widths, codebook and bias; pointer width
    /// supported, and every layer's pointers fitting it.
    pub fn new(meta: BundleMeta, layers: Vec<PackedLayer>) -> Result<Self> {
        let mut rules = Rules::new(meta.pointer_bits)?;
        for layer in &layers {
            rules.push(layer)?;
        }
        rules.finish()?;
        Ok(Self { meta, layers })
    }

    /// The layers as the model sees them: each a run of consecutive parts (one part for a
    /// layer that is not split into column batches).
    pub fn logical_layers(&self) -> Vec<&[PackedLayer]> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < self.layers.len() {
            let mut end = i + 1;
            if self.layers[i].span().is_some() {
                while end < self.layers.len() && self.layers[end].name() == self.layers[i].name() {
                    end += 1;
                }
            }
            out.push(&self.layers[i..end]);
            i = end;
        }
        out
    }

    /// Bundle-wide metadata.
    pub fn meta(&self) -> &BundleMeta {
        &self.meta
    }

    /// The layers, in model order.
    pub fn layers(&self) -> &[PackedLayer] {
        &self.layers
    }

    /// The layer called `name` (its first part, for a layer split into column batches).
    pub fn layer(&self, name: &str) -> Option<&PackedLayer> {
        self.layers.iter().find(|l| l.name() == name)
    }

    /// Serialises the bundle: header, then the checksummed payload.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut payload = payload_head(&self.meta, self.layers.len() as u64)?;
        for layer in &self.layers {
            payload.extend(encode_to_vec(&LayerRef::from(layer))?);
        }
        check_payload_len(payload.len() as u64)?;
        let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
        out.extend_from_slice(&header(
            payload.len() as u64,
            Sha256::digest(&payload).into(),
        ));
        out.extend_from_slice(&payload);
        Ok(out)
    }

    /// The file size a `model.eie` declares in its header (the header plus the payload
    /// length), if `head` starts with a bundle's header: what a reader may read, and no more.
    pub fn declared_len(head: &[u8]) -> Option<u64> {
        if head.len() < HEADER_LEN || head[..MAGIC.len()] != MAGIC {
            return None;
        }
        let payload = u64::from_le_bytes(head[16..24].try_into().expect("8 bytes"));
        Some((HEADER_LEN as u64).saturating_add(payload))
    }

    /// Parses and validates a serialised bundle.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let got = bytes.len() as u64;
        let magic = &bytes[..bytes.len().min(MAGIC.len())];
        if magic != &MAGIC[..magic.len()] {
            return Err(Error::BadMagic {
                found: magic.to_vec(),
                expected: MAGIC.to_vec(),
            });
        }
        if bytes.len() < HEADER_LEN {
            return Err(Error::Truncated {
                expected: HEADER_LEN as u64,
                got,
            });
        }
        let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
        let version = u32_at(8);
        if version != FORMAT_VERSION {
            return Err(Error::UnsupportedVersion {
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        let flags = u32_at(12);
        if flags != 0 {
            return Err(Error::InvalidBundle {
                reason: format!("header flags are {flags:#x}, expected 0"),
            });
        }
        let payload_len = u64::from_le_bytes(bytes[16..24].try_into().expect("8 bytes"));
        let expected = payload_len
            .checked_add(HEADER_LEN as u64)
            .ok_or(Error::Truncated {
                expected: u64::MAX,
                got,
            })?;
        if got < expected {
            return Err(Error::Truncated { expected, got });
        }
        if got > expected {
            return Err(Error::TrailingBytes {
                extra: got - expected,
            });
        }
        let payload = &bytes[HEADER_LEN..];
        let digest = Sha256::digest(payload);
        if digest[..] != bytes[24..56] {
            return Err(Error::ChecksumMismatch {
                expected: hex(&bytes[24..56]),
                found: hex(&digest),
            });
        }
        check_lengths(payload)?;
        let (wire, read): (WireBundle, usize) = bincode::decode_from_slice(payload, config())
            .map_err(|e| Error::Decode {
                reason: e.to_string(),
            })?;
        if read != payload.len() {
            return Err(Error::Decode {
                reason: format!("payload has {} bytes, only {read} decode", payload.len()),
            });
        }
        wire.into_bundle()
    }
}

/// Lowercase hex of some bytes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks every length prefix of a payload against the bytes that remain after it, before
/// bincode allocates what the prefixes claim (it sizes a `Vec` by its prefix before reading
/// a byte of it). Walks the wire types' exact shape; a checksum proves integrity, not sanity.
fn check_lengths(payload: &[u8]) -> Result<()> {
    let mut w = Walk { rest: payload };
    w.vec(1, "the tool version")?;
    w.vec(1, "the source name")?;
    if w.tag("the source checksum")? {
        w.skip(32, "the source checksum")?;
    }
    w.skip(1, "the pointer width")?;
    for _ in 0..w.len(16, "the settings")? {
        w.vec(1, "a setting's key")?;
        w.vec(1, "a setting's value")?;
    }
    for _ in 0..w.len(1, "the layers")? {
        w.vec(1, "a layer's name")?;
        if w.tag("a layer's bias")? {
            w.vec(1, "a layer's bias")?;
        }
        if w.tag("a layer's span")? {
            w.skip(16, "a layer's span")?;
        }
        // rows, cols, code bits, index bits, codebook length, codebook fractional bits
        w.skip(8 + 8 + 1 + 1 + 4 + 1, "a layer's geometry")?;
        w.vec(4, "a codebook's values")?;
        w.vec(2, "a codebook's fixed-point values")?;
        for _ in 0..w.len(24, "a layer's PE streams")? {
            w.vec(1, "a PE's codes")?;
            w.vec(1, "a PE's relative indices")?;
            w.vec(4, "a PE's pointers")?;
        }
    }
    Ok(())
}

/// A cursor over a payload for [`check_lengths`].
struct Walk<'a> {
    rest: &'a [u8],
}

impl Walk<'_> {
    fn short(&self, what: &str, needs: String) -> Error {
        Error::Decode {
            reason: format!(
                "{what} claims {needs}, but only {} bytes of the payload remain",
                self.rest.len()
            ),
        }
    }

    fn skip(&mut self, n: usize, what: &str) -> Result<()> {
        if n > self.rest.len() {
            return Err(self.short(what, format!("{n} bytes")));
        }
        self.rest = &self.rest[n..];
        Ok(())
    }

    fn tag(&mut self, what: &str) -> Result<bool> {
        let t = *self
            .rest
            .first()
            .ok_or_else(|| self.short(what, "1 byte".into()))?;
        self.skip(1, what)?;
        match t {
            0 => Ok(false),
            1 => Ok(true),
            t => Err(Error::Decode {
                reason: format!("{what}: option tag {t}, expected 0 or 1"),
            }),
        }
    }

    /// A length prefix of elements of at least `min` bytes each, checked against the rest.
    fn len(&mut self, min: u64, what: &str) -> Result<u64> {
        let prefix = self
            .rest
            .get(..8)
            .ok_or_else(|| self.short(what, "an 8-byte length".into()))?;
        let n = u64::from_le_bytes(prefix.try_into().expect("8 bytes"));
        self.rest = &self.rest[8..];
        if n.checked_mul(min)
            .is_none_or(|b| b > self.rest.len() as u64)
        {
            return Err(self.short(what, format!("{n} elements of {min} bytes or more")));
        }
        Ok(n)
    }

    /// A vector of `size`-byte elements, skipped.
    fn vec(&mut self, size: u64, what: &str) -> Result<()> {
        let n = self.len(size, what)?;
        self.skip((n * size) as usize, what)
    }
}

fn config() -> impl bincode::config::Config {
    bincode::config::standard()
        .with_little_endian()
        .with_fixed_int_encoding()
        .with_limit::<DECODE_LIMIT>()
}

fn encode_to_vec(value: &impl Encode) -> Result<Vec<u8>> {
    bincode::encode_to_vec(value, config()).map_err(|e| Error::Encode {
        reason: e.to_string(),
    })
}

/// Never write what the loader would refuse.
fn check_payload_len(len: u64) -> Result<()> {
    if len > DECODE_LIMIT as u64 {
        return Err(Error::Encode {
            reason: format!(
                "the payload is {len} bytes, over the {DECODE_LIMIT} a bundle may hold"
            ),
        });
    }
    Ok(())
}

/// The 56-byte header of a payload of `len` bytes with SHA-256 `digest`.
/// The payload's start, before its layers: the metadata and the layer count.
fn payload_head(meta: &BundleMeta, layers: u64) -> Result<Vec<u8>> {
    let mut head = encode_to_vec(&MetaRef::from(meta))?;
    head.extend(encode_to_vec(&layers)?);
    Ok(head)
}

fn header(len: u64, digest: [u8; 32]) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(&MAGIC);
    h[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    h[12..16].copy_from_slice(&0u32.to_le_bytes());
    h[16..24].copy_from_slice(&len.to_le_bytes());
    h[24..56].copy_from_slice(&digest);
    h
}

/// Writes a bundle one layer at a time, with the bytes [`Bundle::to_bytes`] gives for the same
/// metadata and layers, and the same rules as [`Bundle::new`], checked as each layer arrives.
/// The metadata comes last (a source checksum can finish while the layers are packed), so the
/// encoded layers wait in a spool file until [`BundleWriter::finish`]; memory holds one layer
/// at a time.
pub struct BundleWriter {
    rules: Rules,
    /// The encoded layers: in memory up to [`SPOOL_IN_MEMORY`] bytes, then in the spool file.
    memory: Vec<u8>,
    memory_limit: usize,
    spool: Option<std::io::BufWriter<std::fs::File>>,
    spool_path: PathBuf,
    layers: u64,
    bytes: u64,
}

/// Encoded layers kept in memory before they go to the spool file: a constant bound on the
/// writer's memory, which spares small and mid-sized models a round trip through the disk.
const SPOOL_IN_MEMORY: usize = 64 << 20;

impl BundleWriter {
    /// A bundle of `pointer_bits`-bit pointers whose layers, past a bound on memory, are
    /// spooled in a new file at `spool` (removed by [`BundleWriter::finish`], or when the writer
    /// is dropped).
    pub fn create(spool: &Path, pointer_bits: u8) -> Result<Self> {
        Ok(Self {
            rules: Rules::new(pointer_bits)?,
            memory: Vec::new(),
            memory_limit: SPOOL_IN_MEMORY,
            spool: None,
            spool_path: spool.to_path_buf(),
            layers: 0,
            bytes: 0,
        })
    }

    /// Appends a layer (or the next column batch of one), checking the bundle's rules.
    pub fn push(&mut self, layer: &PackedLayer) -> Result<()> {
        self.rules.push(layer)?;
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| Error::Io { path, source }
        };
        if self.spool.is_none() {
            // Encoded straight into memory; spilled to the spool file once past the bound.
            let before = self.memory.len();
            bincode::encode_into_std_write(LayerRef::from(layer), &mut self.memory, config())
                .map_err(|e| Error::Encode {
                    reason: e.to_string(),
                })?;
            self.bytes += (self.memory.len() - before) as u64;
            self.layers += 1;
            if self.memory.len() <= self.memory_limit {
                return Ok(());
            }
            let file = std::fs::File::create(&self.spool_path).map_err(io(&self.spool_path))?;
            let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
            w.write_all(&self.memory).map_err(io(&self.spool_path))?;
            self.memory = Vec::new();
            self.spool = Some(w);
            return Ok(());
        }
        let bytes = encode_to_vec(&LayerRef::from(layer))?;
        self.bytes += bytes.len() as u64;
        self.layers += 1;
        let w = self.spool.as_mut().expect("spilled");
        w.write_all(&bytes).map_err(io(&self.spool_path))
    }

    /// Checks the last rules and writes the bundle to `out`: header, `meta`, then the layers.
    /// `meta.pointer_bits` must be the width the writer was created with. Returns the size of
    /// the file in bytes.
    pub fn finish(mut self, meta: &BundleMeta, out: &Path) -> Result<u64> {
        if meta.pointer_bits != self.rules.pointer_bits {
            return Err(Error::InvalidBundle {
                reason: format!(
                    "the metadata says {}-bit pointers, the layers were checked for {}",
                    meta.pointer_bits, self.rules.pointer_bits
                ),
            });
        }
        let rules = std::mem::replace(&mut self.rules, Rules::new(meta.pointer_bits)?);
        rules.finish()?;
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| Error::Io { path, source }
        };
        if let Some(w) = self.spool.as_mut() {
            w.flush().map_err(io(&self.spool_path))?;
        }
        let head = payload_head(meta, self.layers)?;
        let len = head.len() as u64 + self.bytes;
        check_payload_len(len)?;
        let mut file = std::fs::File::create(out).map_err(io(out))?;
        let mut w = std::io::BufWriter::with_capacity(1 << 20, &mut file);
        let mut hash = Sha256::new();
        w.write_all(&header(len, [0; 32])).map_err(io(out))?;
        w.write_all(&head).map_err(io(out))?;
        hash.update(&head);
        if self.spool.is_none() {
            hash.update(&self.memory);
            w.write_all(&self.memory).map_err(io(out))?;
        } else {
            let mut spool = std::fs::File::open(&self.spool_path).map_err(io(&self.spool_path))?;
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let n = spool.read(&mut buf).map_err(io(&self.spool_path))?;
                if n == 0 {
                    break;
                }
                hash.update(&buf[..n]);
                w.write_all(&buf[..n]).map_err(io(out))?;
            }
        }
        w.flush().map_err(io(out))?;
        drop(w);
        file.seek(SeekFrom::Start(24)).map_err(io(out))?;
        file.write_all(&hash.finalize()).map_err(io(out))?;
        Ok(HEADER_LEN as u64 + len)
    }
}

impl Drop for BundleWriter {
    fn drop(&mut self) {
        if self.spool.take().is_some() {
            let _ = std::fs::remove_file(&self.spool_path);
        }
    }
}

// ---- the wire types: the payload's exact shape, private to this module -------------------

// The owned types decode (and let tests forge payloads); the borrowed ones encode without
// copying a layer. Both describe the same bytes: bincode encodes a struct as its fields in
// order, a `&str` like a `String` and a slice like a `Vec`, and the payload is the metadata
// fields followed by the layers as a length-prefixed sequence (a test checks the two agree).

#[derive(Encode)]
struct MetaRef<'a> {
    tool_version: &'a str,
    source_name: &'a str,
    source_sha256: Option<[u8; 32]>,
    pointer_bits: u8,
    settings: Vec<(&'a str, &'a str)>,
}

impl<'a> From<&'a BundleMeta> for MetaRef<'a> {
    fn from(m: &'a BundleMeta) -> Self {
        Self {
            tool_version: &m.tool_version,
            source_name: &m.source.name,
            source_sha256: m.source.sha256,
            pointer_bits: m.pointer_bits,
            settings: m
                .settings
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect(),
        }
    }
}

#[derive(Encode)]
struct LayerRef<'a> {
    name: &'a str,
    bias: Option<&'a str>,
    span: Option<(u64, u64)>,
    rows: u64,
    cols: u64,
    code_bits: u8,
    index_bits: u8,
    codebook_len: u32,
    codebook_frac_bits: u8,
    codebook_values: &'a [f32],
    codebook_fixed: &'a [i16],
    pes: Vec<StreamsRef<'a>>,
}

#[derive(Encode)]
struct StreamsRef<'a> {
    codes: &'a [u8],
    z: &'a [u8],
    ptr: &'a [u32],
}

impl<'a> From<&'a PackedLayer> for LayerRef<'a> {
    fn from(l: &'a PackedLayer) -> Self {
        let book = l.codebook();
        Self {
            name: l.name(),
            bias: l.bias(),
            span: l.span().map(|s| (s.first as u64, s.total as u64)),
            rows: l.rows() as u64,
            cols: l.cols() as u64,
            code_bits: book.code_bits(),
            index_bits: l.index_bits(),
            codebook_len: book.len() as u32,
            codebook_frac_bits: book.frac_bits(),
            codebook_values: book.values(),
            codebook_fixed: book.fixed(),
            pes: l
                .streams()
                .iter()
                .map(|s| StreamsRef {
                    codes: s.codes(),
                    z: s.z(),
                    ptr: s.ptr(),
                })
                .collect(),
        }
    }
}

#[derive(Clone, Encode, Decode)]
struct WireBundle {
    tool_version: String,
    source_name: String,
    source_sha256: Option<[u8; 32]>,
    pointer_bits: u8,
    settings: Vec<(String, String)>,
    layers: Vec<WireLayer>,
}

#[derive(Clone, Encode, Decode)]
struct WireLayer {
    name: String,
    bias: Option<String>,
    span: Option<(u64, u64)>,
    rows: u64,
    cols: u64,
    code_bits: u8,
    index_bits: u8,
    codebook_len: u32,
    codebook_frac_bits: u8,
    codebook_values: Vec<f32>,
    codebook_fixed: Vec<i16>,
    pes: Vec<WireStreams>,
}

#[derive(Clone, Encode, Decode)]
struct WireStreams {
    codes: Vec<u8>,
    z: Vec<u8>,
    ptr: Vec<u32>,
}

#[cfg(test)]
impl From<&Bundle> for WireBundle {
    fn from(b: &Bundle) -> Self {
        Self {
            tool_version: b.meta.tool_version.clone(),
            source_name: b.meta.source.name.clone(),
            source_sha256: b.meta.source.sha256,
            pointer_bits: b.meta.pointer_bits,
            settings: b
                .meta
                .settings
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            layers: b.layers.iter().map(WireLayer::from).collect(),
        }
    }
}

#[cfg(test)]
impl From<&PackedLayer> for WireLayer {
    fn from(l: &PackedLayer) -> Self {
        let book = l.codebook();
        Self {
            name: l.name().to_string(),
            bias: l.bias().map(str::to_string),
            span: l.span().map(|s| (s.first as u64, s.total as u64)),
            rows: l.rows() as u64,
            cols: l.cols() as u64,
            code_bits: book.code_bits(),
            index_bits: l.index_bits(),
            codebook_len: book.len() as u32,
            codebook_frac_bits: book.frac_bits(),
            codebook_values: book.values().to_vec(),
            codebook_fixed: book.fixed().to_vec(),
            pes: l
                .streams()
                .iter()
                .map(|s| WireStreams {
                    codes: s.codes().to_vec(),
                    z: s.z().to_vec(),
                    ptr: s.ptr().to_vec(),
                })
                .collect(),
        }
    }
}

impl WireBundle {
    fn into_bundle(self) -> Result<Bundle> {
        let mut settings = BTreeMap::new();
        // Written sorted and unique (from a sorted map); anything else is not a bundle this
        // tool wrote, and would not re-save to the same bytes.
        if let Some(w) = self.settings.windows(2).find(|w| w[0].0 >= w[1].0) {
            return Err(Error::InvalidBundle {
                reason: format!("settings are not sorted and unique at \"{}\"", w[1].0),
            });
        }
        for (k, v) in self.settings {
            settings.insert(k, v);
        }
        let layers = self
            .layers
            .into_iter()
            .map(WireLayer::into_layer)
            .collect::<Result<Vec<_>>>()?;
        let meta = BundleMeta {
            tool_version: self.tool_version,
            source: SourceInfo {
                name: self.source_name,
                sha256: self.source_sha256,
            },
            pointer_bits: self.pointer_bits,
            settings,
        };
        Bundle::new(meta, layers)
    }
}

impl WireLayer {
    fn into_layer(self) -> Result<PackedLayer> {
        let too_big = |what: &str, v: u64| Error::InvalidLayer {
            layer: self.name.clone(),
            reason: format!("{what} {v} does not fit this machine's address space"),
        };
        let rows = usize::try_from(self.rows).map_err(|_| too_big("rows", self.rows))?;
        let cols = usize::try_from(self.cols).map_err(|_| too_big("cols", self.cols))?;
        let codebook = Codebook::from_parts(
            self.code_bits,
            self.codebook_len as usize,
            &self.codebook_values,
            self.codebook_frac_bits,
            &self.codebook_fixed,
        )
        .map_err(|e| Error::InvalidLayer {
            layer: self.name.clone(),
            reason: e.to_string(),
        })?;
        let streams = self
            .pes
            .into_iter()
            .map(|s| PeStreams::from_raw(s.codes, s.z, s.ptr))
            .collect();
        let layer = PackedLayer::from_parts(
            self.name.clone(),
            self.bias,
            rows,
            cols,
            self.index_bits,
            codebook,
            streams,
        )?;
        match self.span {
            None => Ok(layer),
            Some((first, total)) => layer.with_span(Span {
                first: usize::try_from(first).map_err(|_| too_big("span start", first))?,
                total: usize::try_from(total).map_err(|_| too_big("span total", total))?,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matrix::CodeMatrix;

    fn sample() -> Bundle {
        let m = CodeMatrix::new(5, 3, vec![1, 0, 2, 0, 0, 0, 3, 1, 0, 0, 0, 0, 0, 2, 1]).unwrap();
        let book = Codebook::new(4, &[-0.5, 0.25, 0.75]).unwrap();
        let layer = PackedLayer::encode("fc1.weight", &m, book, 2, 4).unwrap();
        let meta = BundleMeta {
            tool_version: "test".into(),
            source: SourceInfo {
                name: "m.safetensors".into(),
                sha256: Some([7; 32]),
            },
            pointer_bits: 16,
            settings: BTreeMap::from([("pes".to_string(), "2".to_string())]),
        };
        Bundle::new(meta, vec![layer]).unwrap()
    }

    /// Re-seals a payload with a correct header, so tests reach the structural checks.
    fn seal(wire: &WireBundle) -> Vec<u8> {
        let payload = bincode::encode_to_vec(wire, config()).unwrap();
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        out.extend_from_slice(&Sha256::digest(&payload));
        out.extend_from_slice(&payload);
        out
    }

    /// The borrowed encoding, the streaming writer and the owned wire types (the payload's
    /// documented shape) give the same bytes.
    #[test]
    fn every_writer_gives_the_documented_bytes() {
        let b = sample();
        let bytes = b.to_bytes().unwrap();
        assert_eq!(bytes, seal(&WireBundle::from(&b)));
        let dir = std::env::temp_dir().join(format!("eie-bundle-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // In memory, and through the spool file.
        for limit in [SPOOL_IN_MEMORY, 0] {
            let mut w = BundleWriter::create(&dir.join("spool"), 16).unwrap();
            w.memory_limit = limit;
            for l in b.layers() {
                w.push(l).unwrap();
            }
            assert_eq!(dir.join("spool").exists(), limit == 0, "limit {limit}");
            let n = w.finish(b.meta(), &dir.join("model.eie")).unwrap();
            let written = std::fs::read(dir.join("model.eie")).unwrap();
            assert!(!dir.join("spool").exists(), "the spool is removed");
            assert_eq!(n as usize, written.len());
            assert_eq!(written, bytes);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_writer_checks_the_bundle_rules() {
        let b = sample();
        let dir = std::env::temp_dir().join(format!("eie-bundle-rules-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut w = BundleWriter::create(&dir.join("spool"), 16).unwrap();
        w.push(&b.layers()[0]).unwrap();
        let err = w.push(&b.layers()[0]).unwrap_err();
        assert!(err.to_string().contains("appears twice"), "{err}");
        let mut meta = b.meta().clone();
        meta.pointer_bits = 32;
        let w = BundleWriter::create(&dir.join("spool2"), 16).unwrap();
        assert!(w.finish(&meta, &dir.join("x.eie")).is_err());
        // An unfinished column batch is caught at the end.
        let wide = b.layers()[0].clone().split_columns(2).unwrap();
        let mut w = BundleWriter::create(&dir.join("spool3"), 16).unwrap();
        w.push(&wide[0]).unwrap();
        let err = w.finish(b.meta(), &dir.join("y.eie")).unwrap_err();
        assert!(
            err.to_string().contains("cover 2 of its 3 columns"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn round_trip_is_exact_and_deterministic() {
        let b = sample();
        let bytes = b.to_bytes().unwrap();
        assert_eq!(&bytes[..8], b"EIEBNDL\0");
        assert_eq!(Bundle::from_bytes(&bytes).unwrap(), b);
        assert_eq!(b.to_bytes().unwrap(), bytes);
    }

    #[test]
    fn header_damage_is_named() {
        let bytes = sample().to_bytes().unwrap();
        let err = |b: &[u8]| Bundle::from_bytes(b).unwrap_err();

        assert!(matches!(
            err(b"PK\x03\x04 not a bundle"),
            Error::BadMagic { .. }
        ));
        assert!(matches!(err(b""), Error::Truncated { .. }));
        assert!(matches!(err(&bytes[..30]), Error::Truncated { .. }));
        assert!(matches!(
            err(&bytes[..bytes.len() - 1]),
            Error::Truncated { .. }
        ));
        let mut long = bytes.clone();
        long.push(0);
        assert!(matches!(err(&long), Error::TrailingBytes { extra: 1 }));
        let mut v2 = bytes.clone();
        v2[8] = 3;
        assert!(matches!(
            err(&v2),
            Error::UnsupportedVersion {
                found: 3,
                supported: 2
            }
        ));
        let mut flags = bytes.clone();
        flags[12] = 1;
        assert!(matches!(err(&flags), Error::InvalidBundle { .. }));
        let mut huge = bytes.clone();
        huge[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(err(&huge), Error::Truncated { .. }));
        // Every single-bit flip in the payload is caught by the checksum.
        for at in HEADER_LEN..bytes.len() {
            let mut flipped = bytes.clone();
            flipped[at] ^= 0x10;
            assert!(
                matches!(err(&flipped), Error::ChecksumMismatch { .. }),
                "byte {at}"
            );
        }
    }

    #[test]
    fn structural_damage_behind_a_valid_checksum_is_caught() {
        let good = WireBundle::from(&sample());
        type Breaker = fn(&mut WireBundle);
        let breakers: [(&str, Breaker); 12] = [
            ("pointer end", |w| w.layers[0].pes[0].ptr[3] += 1),
            ("monotonic pointers", |w| w.layers[0].pes[0].ptr[1] = 9),
            ("code outside codebook", |w| w.layers[0].pes[0].codes[0] = 7),
            ("row count", |w| w.layers[0].rows = 2),
            ("column count", |w| w.layers[0].cols = 4),
            ("codebook fixed point", |w| {
                w.layers[0].codebook_fixed[1] = 1
            }),
            ("pointer width", |w| w.pointer_bits = 12),
            ("duplicate layer", |w| w.layers.push(w.layers[0].clone())),
            ("bias named like a layer", |w| {
                w.layers[0].bias = Some(w.layers[0].name.clone())
            }),
            ("empty bias name", |w| {
                w.layers[0].bias = Some(String::new())
            }),
            ("unsorted settings", |w| {
                w.settings = vec![("z".into(), "1".into()), ("a".into(), "2".into())]
            }),
            ("zero shared value", |w| {
                w.layers[0].codebook_values[2] = 0.0
            }),
        ];
        for (what, break_it) in breakers {
            let mut wire = WireBundle::from(&sample());
            break_it(&mut wire);
            assert!(
                Bundle::from_bytes(&seal(&wire)).is_err(),
                "{what} passed validation"
            );
        }
        assert!(Bundle::from_bytes(&seal(&good)).is_ok());
        // A payload that is not bincode at all, behind a valid checksum.
        let mut junk = MAGIC.to_vec();
        junk.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        junk.extend_from_slice(&0u32.to_le_bytes());
        let payload = [0xffu8; 12];
        junk.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        junk.extend_from_slice(&Sha256::digest(payload));
        junk.extend_from_slice(&payload);
        assert!(matches!(
            Bundle::from_bytes(&junk),
            Err(Error::Decode { .. })
        ));
    }
}
