//! One safetensors file: memory-mapped, validated at open, its pages released as they are
//! consumed.

use std::collections::BTreeMap;
use std::path::Path;

use memmap2::{Mmap, UncheckedAdvice};
use safetensors::{SafeTensorError, SafeTensors, tensor::Metadata};

use crate::error::{Error, Result};

/// Bytes converted or copied between two page releases.
pub(crate) const CHUNK: usize = 8 << 20;

pub(crate) struct Shard {
    /// The file.
    pub(crate) path: std::path::PathBuf,
    map: Mmap,
    data_start: usize,
    pub(crate) metadata: Metadata,
    /// Tensor names in offset order.
    pub(crate) names: Vec<String>,
}

impl Shard {
    /// Maps `path` and validates it: header length inside the file, header valid JSON, every
    /// tensor's offsets in range, contiguous and consistent with its shape and dtype, the
    /// data section exactly covered.
    pub(crate) fn open(path: &Path) -> Result<Self> {
        let io = |source| Error::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        let meta = file.metadata().map_err(io)?;
        if !meta.is_file() {
            return Err(io(std::io::Error::other("not a regular file")));
        }
        let invalid = |reason: String| Error::Invalid {
            path: path.to_path_buf(),
            reason,
        };
        if meta.len() < 8 {
            return Err(invalid(format!(
                "{} bytes, too short for the 8-byte header length",
                meta.len()
            )));
        }
        // SAFETY: the map is read-only and private to this value. Like every reader of
        // memory-mapped checkpoints, we rely on the file not being truncated while mapped.
        let map = unsafe { Mmap::map(&file) }.map_err(io)?;
        let (header_len, metadata) =
            SafeTensors::read_metadata(&map).map_err(|e| invalid(explain(&e, &map)))?;
        let names = metadata.offset_keys();
        Ok(Self {
            path: path.to_path_buf(),
            map,
            data_start: 8 + header_len,
            metadata,
            names,
        })
    }

    /// The `__metadata__` map.
    pub(crate) fn metadata_map(&self) -> BTreeMap<String, String> {
        self.metadata
            .metadata()
            .as_ref()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default()
    }

    /// Every tensor's name, dtype and shape, in offset order.
    pub(crate) fn infos(&self) -> Vec<crate::TensorInfo> {
        self.names
            .iter()
            .filter_map(|n| {
                self.metadata.info(n).map(|i| crate::TensorInfo {
                    name: n.clone(),
                    dtype: i.dtype,
                    shape: i.shape.clone(),
                })
            })
            .collect()
    }

    /// Byte range of tensor `name` in the file (validated at open).
    pub(crate) fn range(&self, name: &str) -> Option<(usize, usize)> {
        self.metadata.info(name).map(|i| {
            (
                self.data_start + i.data_offsets.0,
                self.data_start + i.data_offsets.1,
            )
        })
    }

    /// Feeds `range` of the file to `sink` in chunks, releasing each chunk's pages after use
    /// so a large tensor never stays resident twice (once mapped, once converted).
    pub(crate) fn stream(
        &self,
        (start, end): (usize, usize),
        sink: &mut dyn FnMut(&[u8]) -> Result<()>,
    ) -> Result<()> {
        let mut at = start;
        while at < end {
            let stop = (at + CHUNK).min(end);
            sink(&self.map[at..stop])?;
            self.release(at, stop - at);
            at = stop;
        }
        Ok(())
    }

    /// The mapped bytes `start..end`.
    pub(crate) fn bytes(&self, start: usize, end: usize) -> &[u8] {
        &self.map[start..end]
    }

    /// Drops the pages of `len` bytes at `offset` from memory; they are read back from the
    /// file if touched again.
    pub(crate) fn release(&self, offset: usize, len: usize) {
        // SAFETY: the map is a read-only mapping of a file: MADV_DONTNEED only drops clean
        // pages, which read back identical from the file, so no borrowed slice changes.
        // Failure is harmless (the pages stay resident), hence ignored.
        let _ = unsafe {
            self.map
                .unchecked_advise_range(UncheckedAdvice::DontNeed, offset, len)
        };
    }
}

/// A readable reason for a safetensors validation error.
fn explain(e: &SafeTensorError, bytes: &[u8]) -> String {
    let header_len = bytes
        .get(..8)
        .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
        .unwrap_or(0);
    match e {
        SafeTensorError::HeaderTooSmall => "too short for the 8-byte header length".into(),
        SafeTensorError::HeaderTooLarge => format!("header length {header_len} is over the 100 MB limit"),
        SafeTensorError::InvalidHeaderLength => {
            format!("header length {header_len} runs past the end of the file ({} bytes)", bytes.len())
        }
        SafeTensorError::InvalidHeader(err) => format!("header is not UTF-8: {err}"),
        SafeTensorError::InvalidHeaderDeserialization(err) => format!("header is not valid safetensors JSON: {err}"),
        SafeTensorError::InvalidOffset(name) => {
            format!("tensor \"{name}\" has data offsets that overlap another tensor, leave a gap or run backwards")
        }
        SafeTensorError::TensorInvalidInfo => "a tensor's byte range does not match its shape and dtype".into(),
        SafeTensorError::MetadataIncompleteBuffer => {
            "the tensors' offsets do not cover the data section exactly (truncated file or stray bytes)".into()
        }
        SafeTensorError::ValidationOverflow => "a tensor's shape overflows when multiplied out".into(),
        other => other.to_string(),
    }
}
