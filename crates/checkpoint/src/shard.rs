//! One safetensors file: validated at open (through a memory map of it, which is dropped at
//! once), then read with positioned reads into the caller's buffers. Reads go through the page
//! cache without mapping it: a scan touches no page of this process's memory but its own
//! buffers, and never pays page faults or the TLB shootdowns of releasing mapped pages.

use std::collections::BTreeMap;
use std::path::Path;

use memmap2::Mmap;
use safetensors::{SafeTensorError, SafeTensors, tensor::Metadata};

use crate::error::{Error, Result};

/// Bytes converted or copied between two page releases.
pub(crate) const CHUNK: usize = 8 << 20;

pub(crate) struct Shard {
    /// The file.
    pub(crate) path: std::path::PathBuf,
    file: std::fs::File,
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
        // Checked before opening: opening a FIFO blocks until something writes to it.
        if !std::fs::metadata(path).map_err(io)?.is_file() {
            return Err(io(std::io::Error::other("not a regular file")));
        }
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
        // SAFETY: the map is read-only and lives only while the header is validated. Like
        // every reader of memory-mapped checkpoints, we rely on the file not being truncated
        // meanwhile; later reads are positioned reads, which see a truncation as an error.
        let map = unsafe { Mmap::map(&file) }.map_err(io)?;
        let (header_len, metadata) =
            SafeTensors::read_metadata(&map).map_err(|e| invalid(explain(&e, &map)))?;
        drop(map);
        let names = metadata.offset_keys();
        Ok(Self {
            path: path.to_path_buf(),
            file,
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

    /// Feeds `range` of the file to `sink` in chunks read into one buffer.
    pub(crate) fn stream(
        &self,
        (start, end): (usize, usize),
        sink: &mut dyn FnMut(&[u8]) -> Result<()>,
    ) -> Result<()> {
        let mut buf = vec![0u8; CHUNK.min(end - start)];
        let mut at = start;
        while at < end {
            let stop = (at + CHUNK).min(end);
            let chunk = &mut buf[..stop - at];
            self.read_at(at, chunk)?;
            sink(chunk)?;
            at = stop;
        }
        Ok(())
    }

    /// Fills `buf` with the file's bytes from `offset`.
    pub(crate) fn read_at(&self, offset: usize, buf: &mut [u8]) -> Result<()> {
        read_exact_at(&self.file, buf, offset as u64).map_err(|source| Error::Io {
            path: self.path.clone(),
            source,
        })
    }
}

#[cfg(unix)]
fn read_exact_at(file: &std::fs::File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(windows)]
fn read_exact_at(file: &std::fs::File, mut buf: &mut [u8], mut offset: u64) -> std::io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        match file.seek_read(buf, offset)? {
            0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            n => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
        }
    }
    Ok(())
}

/// A readable reason for a safetensors validation error.
fn explain(e: &SafeTensorError, bytes: &[u8]) -> String {
    let header_len = bytes
        .get(..8)
        .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
        .unwrap_or(0);
    match e {
        SafeTensorError::HeaderTooSmall => "too short for the 8-byte header length".into(),
        SafeTensorError::HeaderTooLarge => format!(
            "header length {header_len} is over the {} MB limit",
            crate::MAX_HEADER_BYTES / 1_000_000
        ),
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
