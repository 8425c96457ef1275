//! Writing a bundle one layer at a time.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::wire::{LayerRef, check_payload_len, config, encode_to_vec, header, payload_head};
use super::{BundleMeta, HEADER_LEN, Rules};
use crate::error::{Error, Result};
use crate::layer::PackedLayer;

/// Writes a bundle one layer at a time, with the bytes [`Bundle::to_bytes`](super::Bundle::to_bytes) gives for the same
/// metadata and layers, and the same rules as [`Bundle::new`](super::Bundle::new), checked as each layer arrives.
/// The metadata comes last (a source checksum can finish while the layers are packed), so the
/// encoded layers wait in a spool file until [`BundleWriter::finish`]; memory holds one layer
/// at a time.
pub struct BundleWriter {
    rules: Rules,
    /// The encoded layers: in memory up to [`SPOOL_IN_MEMORY`] bytes, then in the spool file.
    memory: Vec<u8>,
    pub(super) memory_limit: usize,
    spool: Option<std::io::BufWriter<std::fs::File>>,
    spool_path: PathBuf,
    layers: u64,
    bytes: u64,
}

/// Encoded layers kept in memory before they go to the spool file: a constant bound on the
/// writer's memory, which spares small and mid-sized models a round trip through the disk.
pub(super) const SPOOL_IN_MEMORY: usize = 64 << 20;

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
