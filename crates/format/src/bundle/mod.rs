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

#[cfg(test)]
mod tests;
mod wire;
mod writer;

use std::collections::{BTreeMap, BTreeSet};

use sha2::{Digest, Sha256};

use wire::{
    LayerRef, WireBundle, check_lengths, check_payload_len, config, encode_to_vec, header,
    payload_head,
};
pub use writer::BundleWriter;

use crate::codebook::Codebook;
use crate::error::{Error, Result};
use crate::layer::PackedLayer;

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
/// Payloads from which the hash runs beside the decoding (a thread costs about 0.1 ms).
const PARALLEL_HASH: usize = 1 << 20;

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
        let check = |digest: &[u8]| {
            if digest != &bytes[24..56] {
                return Err(Error::ChecksumMismatch {
                    expected: hex(&bytes[24..56]),
                    found: hex(digest),
                });
            }
            Ok(())
        };
        if payload.len() < PARALLEL_HASH {
            check(&Sha256::digest(payload))?;
            return Self::decode(payload);
        }
        // A large payload is hashed on a thread of its own while it is decoded and validated;
        // the checksum's verdict still comes first.
        let (digest, bundle) = std::thread::scope(|s| {
            // Without a thread to be had, the hash runs here, first.
            match std::thread::Builder::new().spawn_scoped(s, || Sha256::digest(payload)) {
                Ok(hash) => {
                    let bundle = Self::decode(payload);
                    (hash.join().expect("hashing does not panic"), bundle)
                }
                Err(_) => (Sha256::digest(payload), Self::decode(payload)),
            }
        });
        check(&digest)?;
        bundle
    }

    /// The bundle a payload holds, validated.
    fn decode(payload: &[u8]) -> Result<Self> {
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
