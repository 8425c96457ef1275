//! A streaming safetensors writer with a deterministic header.
//!
//! The `safetensors` crate's own serialiser keeps `__metadata__` in a `HashMap`, so its bytes
//! vary from run to run; this one writes the header from sorted maps, puts tensors in the
//! order given, and streams each tensor's data so a large model never needs to be in memory
//! at once. Tensors may be written in any order ([`Writer::write_named`]): every offset is
//! fixed by the header, so the bytes do not depend on the order of writing.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use safetensors::Dtype;

use crate::error::{Error, Result};

/// One declared tensor: where its data goes, and whether it was written.
struct Slot {
    name: String,
    /// Offset of its data in the file.
    at: u64,
    size: usize,
    written: bool,
}

/// Writes one safetensors file, tensor by tensor: in the order declared at creation
/// ([`Writer::write_tensor`]), or by name in any order.
pub struct Writer {
    path: PathBuf,
    out: BufWriter<File>,
    slots: Vec<Slot>,
    /// Where the file's write position is (to skip a seek when writing in order).
    position: u64,
}

impl Writer {
    /// Creates `path` (plain create: callers wanting all-or-nothing output give a temporary
    /// path and rename it) and writes the header for `tensors` (name, dtype, shape), which
    /// must then be written in that order with [`Writer::write_tensor`].
    pub fn create(
        path: &Path,
        metadata: &BTreeMap<String, String>,
        tensors: &[(String, Dtype, Vec<usize>)],
    ) -> Result<Self> {
        let mut header = serde_json::Map::new();
        if !metadata.is_empty() {
            header.insert(
                "__metadata__".into(),
                serde_json::to_value(metadata).expect("string map"),
            );
        }
        let mut offset = 0usize;
        let mut sizes: Vec<(String, usize, usize)> = Vec::with_capacity(tensors.len());
        for (name, dtype, shape) in tensors {
            let bad = |reason: String| Error::BadTensor {
                tensor: name.clone(),
                reason,
            };
            if name == "__metadata__" || header.contains_key(name) {
                return Err(bad("name used twice or reserved".into()));
            }
            let bits = shape
                .iter()
                .try_fold(1usize, |a, &d| a.checked_mul(d))
                .and_then(|n| n.checked_mul(dtype.bitsize()))
                .ok_or_else(|| bad(format!("shape {shape:?} overflows")))?;
            if bits % 8 != 0 {
                return Err(bad(format!("{bits} bits is not a whole number of bytes")));
            }
            let size = bits / 8;
            let end = offset + size;
            header.insert(
                name.clone(),
                serde_json::json!({"dtype": dtype, "shape": shape, "data_offsets": [offset, end]}),
            );
            sizes.push((name.clone(), offset, size));
            offset = end;
        }
        let mut json = serde_json::to_vec(&header).expect("header serialises");
        // Pad with spaces so the data starts 8-byte aligned, as the reference writer does.
        json.resize(json.len().next_multiple_of(8), b' ');
        let io = |source| Error::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut out = BufWriter::new(File::create(path).map_err(io)?);
        out.write_all(&(json.len() as u64).to_le_bytes())
            .map_err(io)?;
        out.write_all(&json).map_err(io)?;
        let data = 8 + json.len() as u64;
        Ok(Self {
            path: path.to_path_buf(),
            out,
            slots: sizes
                .into_iter()
                .map(|(name, offset, size)| Slot {
                    name,
                    at: data + offset as u64,
                    size,
                    written: false,
                })
                .collect(),
            position: data,
        })
    }

    /// Writes the next tensor's little-endian bytes; their length must match its declared
    /// shape and dtype.
    pub fn write_tensor(&mut self, bytes: &[u8]) -> Result<()> {
        self.write_tensor_with(|sink| sink(bytes))
    }

    /// Writes the next tensor in pieces: `fill` gets a sink and feeds it the tensor's bytes
    /// in order, chunk by chunk; the total must match the declared shape and dtype. "Next" is
    /// the first declared tensor not written yet.
    pub fn write_tensor_with(
        &mut self,
        fill: impl FnOnce(&mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()>,
    ) -> Result<()> {
        let Some(i) = self.slots.iter().position(|s| !s.written) else {
            return Err(Error::Write {
                path: self.path.clone(),
                reason: "more tensors written than declared".into(),
            });
        };
        self.write_slot(i, fill)
    }

    /// Writes the declared tensor `name` in pieces, as [`Writer::write_tensor_with`] does.
    pub fn write_named(
        &mut self,
        name: &str,
        fill: impl FnOnce(&mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()>,
    ) -> Result<()> {
        let i = self.slot(name)?;
        self.write_slot(i, fill)
    }

    fn slot(&self, name: &str) -> Result<usize> {
        self.slots
            .iter()
            .position(|s| s.name == name)
            .ok_or_else(|| Error::Write {
                path: self.path.clone(),
                reason: format!("tensor \"{name}\" was not declared"),
            })
    }

    fn write_slot(
        &mut self,
        i: usize,
        fill: impl FnOnce(&mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()>,
    ) -> Result<()> {
        let (at, size) = (self.slots[i].at, self.slots[i].size);
        let name = self.slots[i].name.clone();
        if self.slots[i].written {
            return Err(Error::BadTensor {
                tensor: name,
                reason: "written twice".into(),
            });
        }
        let io = |path: &PathBuf| {
            let path = path.clone();
            move |source| Error::Io { path, source }
        };
        if self.position != at {
            self.out.seek(SeekFrom::Start(at)).map_err(io(&self.path))?;
        }
        let mut written = 0usize;
        let (out, path) = (&mut self.out, &self.path);
        fill(&mut |chunk: &[u8]| {
            written += chunk.len();
            if written > size {
                return Err(Error::BadTensor {
                    tensor: name.clone(),
                    reason: format!("more than the {size} bytes its shape and dtype need"),
                });
            }
            out.write_all(chunk).map_err(|source| Error::Io {
                path: path.clone(),
                source,
            })
        })?;
        if written != size {
            return Err(Error::BadTensor {
                tensor: name,
                reason: format!("{written} bytes of data, its shape and dtype need {size}"),
            });
        }
        self.slots[i].written = true;
        self.position = at + size as u64;
        Ok(())
    }

    /// Writes the next tensor, `len` elements in `dtype`, all zero except element
    /// `positions[i]` (ascending), which is `value(i)`: streamed in chunks, so a large sparse
    /// tensor never exists dense in memory.
    pub fn write_sparse(
        &mut self,
        dtype: Dtype,
        len: usize,
        positions: &[u64],
        value: impl Fn(usize) -> f32,
    ) -> Result<()> {
        self.write_tensor_with(|sink| sparse_chunks(dtype, len, positions, value, sink))
    }

    /// [`Writer::write_sparse`] for the declared tensor `name`.
    pub fn write_sparse_named(
        &mut self,
        name: &str,
        dtype: Dtype,
        len: usize,
        positions: &[u64],
        value: impl Fn(usize) -> f32,
    ) -> Result<()> {
        self.write_named(name, |sink| {
            sparse_chunks(dtype, len, positions, value, sink)
        })
    }

    /// Flushes the file; every declared tensor must have been written. (No fsync: outputs
    /// are made all-or-nothing by renaming, which protects against a failed or killed run,
    /// not against power loss.)
    pub fn finish(mut self) -> Result<()> {
        if let Some(slot) = self.slots.iter().find(|s| !s.written) {
            return Err(Error::Write {
                path: self.path.clone(),
                reason: format!("tensor \"{}\" was declared but never written", slot.name),
            });
        }
        let io = |source| Error::Io {
            path: self.path.clone(),
            source,
        };
        self.out.flush().map_err(io)
    }
}

/// The bytes of a sparse tensor (see [`Writer::write_sparse`]), fed to `sink` in chunks.
fn sparse_chunks(
    dtype: Dtype,
    len: usize,
    positions: &[u64],
    value: impl Fn(usize) -> f32,
    sink: &mut dyn FnMut(&[u8]) -> Result<()>,
) -> Result<()> {
    const CHUNK: usize = 1 << 20;
    let mut buf = vec![0f32; CHUNK.min(len)];
    let mut bytes = Vec::new();
    let mut next = 0usize;
    for start in (0..len).step_by(CHUNK) {
        let end = (start + CHUNK).min(len);
        let chunk = &mut buf[..end - start];
        chunk.fill(0.0);
        while next < positions.len() && positions[next] < end as u64 {
            chunk[positions[next] as usize - start] = value(next);
            next += 1;
        }
        crate::convert::encode_into(dtype, chunk, &mut bytes);
        sink(&bytes)?;
    }
    Ok(())
}
