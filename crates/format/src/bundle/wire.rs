//! The wire format: `model.eie`'s header and its bincode payload's exact shape, private to
//! the bundle module (the only place that knows bincode), and the length walk that checks
//! every prefix before bincode trusts it.

use std::collections::BTreeMap;

use bincode::{Decode, Encode};

use super::{Bundle, BundleMeta, DECODE_LIMIT, FORMAT_VERSION, HEADER_LEN, MAGIC, SourceInfo};
use crate::codebook::Codebook;
use crate::error::{Error, Result};
use crate::layer::{PackedLayer, Span};
use crate::streams::PeStreams;

/// Checks every length prefix of a payload against the bytes that remain after it, before
/// bincode allocates what the prefixes claim (it sizes a `Vec` by its prefix before reading
/// a byte of it). Walks the wire types' exact shape; a checksum proves integrity, not sanity.
pub(super) fn check_lengths(payload: &[u8]) -> Result<()> {
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
pub(super) struct Walk<'a> {
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

pub(super) fn config() -> impl bincode::config::Config {
    bincode::config::standard()
        .with_little_endian()
        .with_fixed_int_encoding()
        .with_limit::<DECODE_LIMIT>()
}

pub(super) fn encode_to_vec(value: &impl Encode) -> Result<Vec<u8>> {
    bincode::encode_to_vec(value, config()).map_err(|e| Error::Encode {
        reason: e.to_string(),
    })
}

/// Never write what the loader would refuse.
pub(super) fn check_payload_len(len: u64) -> Result<()> {
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
pub(super) fn payload_head(meta: &BundleMeta, layers: u64) -> Result<Vec<u8>> {
    let mut head = encode_to_vec(&MetaRef::from(meta))?;
    head.extend(encode_to_vec(&layers)?);
    Ok(head)
}

pub(super) fn header(len: u64, digest: [u8; 32]) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(&MAGIC);
    h[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    h[12..16].copy_from_slice(&0u32.to_le_bytes());
    h[16..24].copy_from_slice(&len.to_le_bytes());
    h[24..56].copy_from_slice(&digest);
    h
}

// ---- the wire types: the payload's exact shape, private to this module -------------------

// The owned types decode (and let tests forge payloads); the borrowed ones encode without
// copying a layer. Both describe the same bytes: bincode encodes a struct as its fields in
// order, a `&str` like a `String` and a slice like a `Vec`, and the payload is the metadata
// fields followed by the layers as a length-prefixed sequence (a test checks the two agree).

#[derive(Encode)]
pub(super) struct MetaRef<'a> {
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
pub(super) struct LayerRef<'a> {
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
pub(super) struct StreamsRef<'a> {
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
pub(super) struct WireBundle {
    pub(super) tool_version: String,
    pub(super) source_name: String,
    source_sha256: Option<[u8; 32]>,
    pub(super) pointer_bits: u8,
    pub(super) settings: Vec<(String, String)>,
    pub(super) layers: Vec<WireLayer>,
}

#[derive(Clone, Encode, Decode)]
pub(super) struct WireLayer {
    pub(super) name: String,
    pub(super) bias: Option<String>,
    pub(super) span: Option<(u64, u64)>,
    pub(super) rows: u64,
    pub(super) cols: u64,
    pub(super) code_bits: u8,
    pub(super) index_bits: u8,
    pub(super) codebook_len: u32,
    pub(super) codebook_frac_bits: u8,
    pub(super) codebook_values: Vec<f32>,
    pub(super) codebook_fixed: Vec<i16>,
    pub(super) pes: Vec<WireStreams>,
}

#[derive(Clone, Encode, Decode)]
pub(super) struct WireStreams {
    pub(super) codes: Vec<u8>,
    pub(super) z: Vec<u8>,
    pub(super) ptr: Vec<u32>,
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
    pub(super) fn into_bundle(self) -> Result<Bundle> {
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
    pub(super) fn into_layer(self) -> Result<PackedLayer> {
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
