//! One safetensors file: validated at open (through a memory map of it, which is dropped at
//! once), then read with positioned reads into the caller's buffers. Reads go through the page
//! cache without mapping it: a scan touches no page of this process's memory but its own
//! buffers, and never pays page faults or the TLB shootdowns of releasing mapped pages.

use std::collections::BTreeMap;
use std::path::Path;

use memmap2::Mmap;
use safetensors::{SafeTensorError, SafeTensors};

use crate::error::{Error, Result};
use crate::{MAX_HEADER_BYTES, MAX_TENSORS, TensorInfo};

/// Bytes converted or copied between two page releases.
pub(crate) const CHUNK: usize = 8 << 20;

/// An open safetensors file: its tensors' byte ranges, in offset order (their names, dtypes
/// and shapes live once, in the checkpoint's [`crate::Header`], in the same order).
pub(crate) struct Shard {
    /// The file.
    pub(crate) path: std::path::PathBuf,
    file: std::fs::File,
    /// Every tensor's byte range in the file, in offset order.
    offsets: Vec<(usize, usize)>,
    /// The `__metadata__` map.
    metadata: BTreeMap<String, String>,
}

impl Shard {
    /// Maps `path` and validates it: header length inside the file, header valid JSON, every
    /// tensor's offsets in range, contiguous and consistent with its shape and dtype, the
    /// data section exactly covered, at most [`MAX_TENSORS`] tensors. Returns the shard and
    /// its tensors in offset order.
    pub(crate) fn open(path: &Path) -> Result<(Self, Vec<TensorInfo>)> {
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
        // Counted before the header is parsed: parsing costs about 1 KB a tensor.
        let tensors = count_tensors(&map);
        if tensors > MAX_TENSORS {
            return Err(Error::TooManyTensors {
                path: path.to_path_buf(),
                count: tensors,
                max: MAX_TENSORS,
            });
        }
        let (header_len, parsed) =
            SafeTensors::read_metadata(&map).map_err(|e| invalid(explain(&e, &map)))?;
        drop(map);
        let data_start = 8 + header_len;
        let names = parsed.offset_keys();
        let mut offsets = Vec::with_capacity(names.len());
        let mut infos = Vec::with_capacity(names.len());
        for name in names {
            let i = parsed.info(&name).expect("listed by the metadata itself");
            offsets.push((data_start + i.data_offsets.0, data_start + i.data_offsets.1));
            infos.push(TensorInfo {
                dtype: i.dtype,
                shape: i.shape.clone(),
                name,
            });
        }
        let metadata = parsed
            .metadata()
            .as_ref()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        let shard = Self {
            path: path.to_path_buf(),
            file,
            offsets,
            metadata,
        };
        Ok((shard, infos))
    }

    /// The `__metadata__` map.
    pub(crate) fn metadata_map(&self) -> BTreeMap<String, String> {
        self.metadata.clone()
    }

    /// Byte range of the tensor at `position` (offset order) in the file (validated at open).
    pub(crate) fn range(&self, position: usize) -> (usize, usize) {
        self.offsets[position]
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

/// The tensors a safetensors file's header holds at most, counted in its bytes without
/// parsing them: every tensor has one `"data_offsets"` key, and that text can stand nowhere
/// else unescaped (a quote inside a JSON string is `\"`). 0 when the header length is not
/// one the parser would read.
fn count_tensors(bytes: &[u8]) -> usize {
    let Some(len) = bytes
        .get(..8)
        .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
    else {
        return 0;
    };
    if len > MAX_HEADER_BYTES || len > bytes.len() as u64 - 8 {
        return 0;
    }
    let header = &bytes[8..8 + len as usize];
    const KEY: &[u8] = b"\"data_offsets\"";
    header
        .windows(KEY.len())
        .enumerate()
        .filter(|(i, w)| *w == KEY && (*i == 0 || header[i - 1] != b'\\'))
        .count()
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

#[cfg(test)]
mod tests {
    use super::count_tensors;

    fn file(header: &str) -> Vec<u8> {
        let mut b = (header.len() as u64).to_le_bytes().to_vec();
        b.extend_from_slice(header.as_bytes());
        b
    }

    #[test]
    fn tensors_are_counted_by_their_offsets_key_and_nothing_else() {
        let two = r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b\"data_offsets\"":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},"__metadata__":{"k":"\"data_offsets\""}}"#;
        assert_eq!(count_tensors(&file(two)), 2);
        // A header length the parser would refuse counts nothing (the parser says why).
        let mut lying = file(two);
        lying[..8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(count_tensors(&lying), 0);
        assert_eq!(count_tensors(b"short"), 0);
    }
}
