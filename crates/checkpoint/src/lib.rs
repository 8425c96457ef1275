#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod error;
mod glob;
mod writer;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use memmap2::Mmap;
pub use safetensors::Dtype;
use safetensors::{SafeTensorError, SafeTensors, tensor::Metadata};
use sha2::{Digest, Sha256};

pub use error::{Error, Result};
pub use glob::{glob_match, natural_cmp};
pub use writer::{Writer, f32_bytes};

/// Name, element type and shape of one tensor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    /// Tensor name.
    pub name: String,
    /// Element type.
    pub dtype: Dtype,
    /// Shape.
    pub shape: Vec<usize>,
}

impl TensorInfo {
    /// Whether the element type is one this crate converts to f32 (F32, F16, BF16).
    pub fn is_float(&self) -> bool {
        matches!(self.dtype, Dtype::F32 | Dtype::F16 | Dtype::BF16)
    }
}

/// A 2-D float tensor converted to f32, row-major, PyTorch's [out, in] layout.
#[derive(Debug, Clone, PartialEq)]
pub struct Matrix {
    /// Rows (outputs).
    pub rows: usize,
    /// Columns (inputs).
    pub cols: usize,
    /// rows x cols values, row-major.
    pub data: Vec<f32>,
}

/// A safetensors file, memory-mapped and fully validated at open.
pub struct Checkpoint {
    path: PathBuf,
    map: Mmap,
    data_start: usize,
    metadata: Metadata,
    names: Vec<String>,
}

impl std::fmt::Debug for Checkpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpoint")
            .field("path", &self.path)
            .field("tensors", &self.names)
            .finish()
    }
}

impl Checkpoint {
    /// Maps `path` and validates it: header length inside the file, header valid JSON,
    /// every tensor's offsets in range, contiguous and consistent with its shape and dtype,
    /// and the data section exactly covered. Nothing is exposed before all of that passed.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let io = |source| Error::Io {
            path: path.clone(),
            source,
        };
        let file = std::fs::File::open(&path).map_err(io)?;
        let meta = file.metadata().map_err(io)?;
        if !meta.is_file() {
            return Err(io(std::io::Error::other("not a regular file")));
        }
        let invalid = |reason: String| Error::Invalid {
            path: path.clone(),
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
            path,
            map,
            data_start: 8 + header_len,
            metadata,
            names,
        })
    }

    /// The file this checkpoint was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every tensor, in file (offset) order.
    pub fn tensors(&self) -> Vec<TensorInfo> {
        self.names.iter().filter_map(|n| self.info(n)).collect()
    }

    /// The tensor called `name`, if present.
    pub fn info(&self, name: &str) -> Option<TensorInfo> {
        self.metadata.info(name).map(|i| TensorInfo {
            name: name.to_string(),
            dtype: i.dtype,
            shape: i.shape.clone(),
        })
    }

    /// The `__metadata__` map (empty when absent).
    pub fn metadata(&self) -> BTreeMap<String, String> {
        self.metadata
            .metadata()
            .as_ref()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default()
    }

    fn bytes(&self) -> &[u8] {
        &self.map
    }

    /// SHA-256 of the whole file.
    pub fn sha256(&self) -> [u8; 32] {
        Sha256::digest(self.bytes()).into()
    }

    /// The raw little-endian bytes of tensor `name`.
    pub fn raw(&self, name: &str) -> Result<(&RawInfo, &[u8])> {
        let info = self
            .metadata
            .info(name)
            .ok_or_else(|| Error::TensorNotFound {
                path: self.path.clone(),
                tensor: name.to_string(),
            })?;
        let (s, e) = info.data_offsets;
        // Offsets were validated against the file length at open.
        Ok((
            info,
            &self.bytes()[self.data_start + s..self.data_start + e],
        ))
    }

    /// Tensor `name` converted exactly to f32 (F32, F16 or BF16), in row-major order.
    pub fn read_f32(&self, name: &str) -> Result<Vec<f32>> {
        let (info, bytes) = self.raw(name)?;
        let le2 = |c: &[u8]| u16::from_le_bytes([c[0], c[1]]);
        Ok(match info.dtype {
            Dtype::F32 => bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            Dtype::F16 => bytes
                .chunks_exact(2)
                .map(|c| half::f16::from_bits(le2(c)).to_f32())
                .collect(),
            Dtype::BF16 => bytes
                .chunks_exact(2)
                .map(|c| half::bf16::from_bits(le2(c)).to_f32())
                .collect(),
            other => {
                return Err(Error::UnsupportedDtype {
                    tensor: name.to_string(),
                    dtype: format!("{other:?}"),
                });
            }
        })
    }

    /// Tensor `name` as a 2-D f32 matrix; every value must be finite.
    pub fn read_matrix(&self, name: &str) -> Result<Matrix> {
        let info = self.info(name).ok_or_else(|| Error::TensorNotFound {
            path: self.path.clone(),
            tensor: name.to_string(),
        })?;
        let [rows, cols] = info.shape[..] else {
            return Err(Error::NotMatrix {
                tensor: name.to_string(),
                shape: info.shape,
            });
        };
        let data = self.read_f32(name)?;
        check_finite(name, &data, cols)?;
        Ok(Matrix { rows, cols, data })
    }

    /// Names of the layers to pack, in order. With no patterns: every 2-D float tensor whose
    /// name ends in `.weight`. With patterns (globs, see [`glob_match`]): the tensors each
    /// pattern matches, pattern by pattern; every pattern must match something, and every
    /// tensor matched must be a 2-D float tensor. Within a pattern, names are in natural
    /// order (`fc2` before `fc10`); a name matched twice is kept once.
    pub fn select_layers(&self, patterns: &[String]) -> Result<Vec<String>> {
        let mut sorted = self.names.clone();
        sorted.sort_by(|a, b| natural_cmp(a, b));
        if patterns.is_empty() {
            let picked: Vec<String> = sorted
                .into_iter()
                .filter(|n| {
                    let info = self.info(n).expect("listed");
                    n.ends_with(".weight") && info.shape.len() == 2 && info.is_float()
                })
                .collect();
            if picked.is_empty() {
                return Err(Error::NothingSelected {
                    path: self.path.clone(),
                    reason: "no 2-D float tensor whose name ends in \".weight\" (name the layers with --layers)".into(),
                });
            }
            return Ok(picked);
        }
        let mut picked: Vec<String> = Vec::new();
        for pattern in patterns {
            let matched: Vec<&String> = sorted.iter().filter(|n| glob_match(pattern, n)).collect();
            if matched.is_empty() {
                return Err(Error::NoMatch {
                    pattern: pattern.clone(),
                    available: self.available(),
                });
            }
            for name in matched {
                let info = self.info(name).expect("listed");
                if !info.is_float() {
                    return Err(Error::UnsupportedDtype {
                        tensor: name.clone(),
                        dtype: format!("{:?}", info.dtype),
                    });
                }
                if info.shape.len() != 2 {
                    return Err(Error::NotMatrix {
                        tensor: name.clone(),
                        shape: info.shape,
                    });
                }
                if !picked.contains(name) {
                    picked.push(name.clone());
                }
            }
        }
        Ok(picked)
    }

    fn available(&self) -> String {
        let mut names = self.names.clone();
        names.sort_by(|a, b| natural_cmp(a, b));
        match names.len() {
            0 => "the checkpoint holds no tensors".into(),
            n if n <= 8 => format!("tensors: {}", names.join(", ")),
            n => format!("tensors: {}, ... ({n} in all)", names[..8].join(", ")),
        }
    }
}

/// The per-tensor record of the safetensors header (dtype, shape, offsets).
pub type RawInfo = safetensors::tensor::TensorInfo;

/// Fails on the first NaN or infinite value, naming its flat index, row and column.
pub fn check_finite(tensor: &str, data: &[f32], cols: usize) -> Result<()> {
    match data.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(index) => Err(Error::NonFinite {
            tensor: tensor.to_string(),
            index,
            row: index / cols.max(1),
            col: index % cols.max(1),
            value: data[index],
        }),
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
        SafeTensorError::InvalidHeaderLength => format!(
            "header length {header_len} runs past the end of the file ({} bytes)",
            bytes.len()
        ),
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
mod tests;
