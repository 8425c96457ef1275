#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod convert;
mod error;
mod glob;
mod shard;
mod writer;

use std::collections::{BTreeMap, HashMap};
use std::path::{Component, Path, PathBuf};

pub use safetensors::Dtype;
use sha2::{Digest, Sha256};

pub use convert::{encode, encode_into, f32_bytes, float_width, round_to};
pub use error::{Error, Result};
pub use glob::{glob_match, natural_cmp};
use shard::Shard;
pub use writer::Writer;

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
        float_width(self.dtype).is_some()
    }

    /// Number of elements.
    pub fn elements(&self) -> usize {
        self.shape.iter().product()
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

/// A checkpoint: one safetensors file, or a sharded one given by its
/// `*.safetensors.index.json`. Every file is memory-mapped and fully validated at open.
pub struct Checkpoint {
    path: PathBuf,
    shards: Vec<Shard>,
    /// Tensor name to shard.
    home: HashMap<String, usize>,
    /// Every tensor, shard by shard, in offset order within a shard.
    order: Vec<String>,
    metadata: BTreeMap<String, String>,
}

impl std::fmt::Debug for Checkpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpoint")
            .field("path", &self.path)
            .field("shards", &self.shards.len())
            .field("tensors", &self.order.len())
            .finish()
    }
}

impl Checkpoint {
    /// Opens a `.safetensors` file, or a sharded checkpoint through its index (a path ending
    /// in `.json`: `{"weight_map": {tensor: shard file}}`, shard files beside the index).
    /// Validates every file, that every shard the index names exists, that each shard holds
    /// exactly the tensors the index maps to it, and that no tensor appears twice.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        if path.extension().is_some_and(|e| e == "json") {
            return Self::open_index(path);
        }
        let shard = Shard::open(path)?;
        let metadata = shard.metadata_map();
        let order = shard.names.clone();
        let home = order.iter().map(|n| (n.clone(), 0)).collect();
        Ok(Self {
            path: path.to_path_buf(),
            shards: vec![shard],
            home,
            order,
            metadata,
        })
    }

    fn open_index(path: &Path) -> Result<Self> {
        let bad = |reason: String| Error::Index {
            path: path.to_path_buf(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let json: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| bad(format!("not JSON: {e}")))?;
        let map = json
            .get("weight_map")
            .and_then(|m| m.as_object())
            .ok_or_else(|| bad("no \"weight_map\" object".into()))?;
        let mut wanted: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (tensor, file) in map {
            let file = file.as_str().ok_or_else(|| {
                bad(format!(
                    "tensor \"{tensor}\" maps to {file}, expected a file name"
                ))
            })?;
            let plain = Path::new(file).components().count() == 1
                && matches!(
                    Path::new(file).components().next(),
                    Some(Component::Normal(_))
                );
            if !plain {
                return Err(bad(format!(
                    "shard name {file:?} must be a file name beside the index"
                )));
            }
            wanted
                .entry(file.to_string())
                .or_default()
                .push(tensor.clone());
        }
        if wanted.is_empty() {
            return Err(bad("the weight map is empty".into()));
        }
        let dir = path.parent().unwrap_or(Path::new("."));
        let mut shards = Vec::new();
        let mut home = HashMap::new();
        let mut order = Vec::new();
        for (file, tensors) in &wanted {
            let shard_path = dir.join(file);
            if !shard_path.exists() {
                return Err(bad(format!(
                    "shard {file} is missing ({})",
                    shard_path.display()
                )));
            }
            let shard = Shard::open(&shard_path)?;
            let mismatch = |tensor: &str, reason: String| Error::ShardMismatch {
                index: path.to_path_buf(),
                shard: file.clone(),
                tensor: tensor.to_string(),
                reason,
            };
            for t in tensors {
                if shard.metadata.info(t).is_none() {
                    return Err(mismatch(
                        t,
                        "the index maps it to this shard, which does not hold it".into(),
                    ));
                }
            }
            for t in &shard.names {
                match map.get(t).and_then(|f| f.as_str()) {
                    Some(f) if f == file => {}
                    Some(f) => {
                        return Err(mismatch(
                            t,
                            format!("the shard holds it, but the index maps it to {f}"),
                        ));
                    }
                    None => {
                        return Err(mismatch(
                            t,
                            "the shard holds it, but the index does not list it".into(),
                        ));
                    }
                }
            }
            for t in &shard.names {
                home.insert(t.clone(), shards.len());
                order.push(t.clone());
            }
            shards.push(shard);
        }
        let mut metadata = shards[0].metadata_map();
        if let Some(m) = json.get("metadata").and_then(|m| m.as_object()) {
            for (k, v) in m {
                metadata.insert(
                    k.clone(),
                    v.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| v.to_string()),
                );
            }
        }
        Ok(Self {
            path: path.to_path_buf(),
            shards,
            home,
            order,
            metadata,
        })
    }

    /// The file this checkpoint was opened from (the index, for a sharded one).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Number of files (1, or the number of shards).
    pub fn shards(&self) -> usize {
        self.shards.len()
    }

    /// Every tensor: shard by shard, in file (offset) order within a shard.
    pub fn tensors(&self) -> Vec<TensorInfo> {
        self.order.iter().filter_map(|n| self.info(n)).collect()
    }

    /// The tensor called `name`, if present.
    pub fn info(&self, name: &str) -> Option<TensorInfo> {
        let shard = &self.shards[*self.home.get(name)?];
        shard.metadata.info(name).map(|i| TensorInfo {
            name: name.to_string(),
            dtype: i.dtype,
            shape: i.shape.clone(),
        })
    }

    /// The `__metadata__` map (of the first shard, plus the index's `metadata`, stringified).
    pub fn metadata(&self) -> BTreeMap<String, String> {
        self.metadata.clone()
    }

    /// SHA-256 of the checkpoint: of the file, or for a sharded checkpoint of the index file
    /// followed by every shard file in name order.
    pub fn sha256(&self) -> Result<[u8; 32]> {
        let mut h = Sha256::new();
        if self.shards.len() > 1 || self.path.extension().is_some_and(|e| e == "json") {
            let index = std::fs::read(&self.path).map_err(|source| Error::Io {
                path: self.path.clone(),
                source,
            })?;
            h.update(&index);
        }
        for shard in &self.shards {
            shard.stream_all(&mut |chunk| {
                h.update(chunk);
                Ok(())
            })?;
        }
        Ok(h.finalize().into())
    }

    fn locate(&self, name: &str) -> Result<(&Shard, (usize, usize))> {
        let not_found = || Error::TensorNotFound {
            path: self.path.clone(),
            tensor: name.to_string(),
        };
        let shard = &self.shards[*self.home.get(name).ok_or_else(not_found)?];
        Ok((shard, shard.range(name).ok_or_else(not_found)?))
    }

    /// Streams the raw little-endian bytes of tensor `name` to `sink`, in chunks, releasing
    /// the mapped pages behind them.
    pub fn stream_raw(&self, name: &str, sink: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()> {
        let (shard, range) = self.locate(name)?;
        shard.stream(range, sink)
    }

    /// Random access to float tensor `name`'s elements as f32, straight from the mapped
    /// file: the way to scan a large tensor without an f32 copy of it.
    pub fn reader(&self, name: &str) -> Result<TensorReader<'_>> {
        let info = self.info(name).ok_or_else(|| Error::TensorNotFound {
            path: self.path.clone(),
            tensor: name.to_string(),
        })?;
        let Some(width) = float_width(info.dtype) else {
            return Err(Error::UnsupportedDtype {
                tensor: name.to_string(),
                dtype: format!("{:?}", info.dtype),
            });
        };
        let (shard, (start, _)) = self.locate(name)?;
        Ok(TensorReader {
            shard,
            start,
            width,
            dtype: info.dtype,
            len: info.elements(),
        })
    }

    /// Tensor `name` converted exactly to f32 (F32, F16 or BF16), row-major. The mapped
    /// pages are released as they are converted, so memory holds the f32 copy only.
    pub fn read_f32(&self, name: &str) -> Result<Vec<f32>> {
        let info = self.info(name).ok_or_else(|| Error::TensorNotFound {
            path: self.path.clone(),
            tensor: name.to_string(),
        })?;
        if !info.is_float() {
            return Err(Error::UnsupportedDtype {
                tensor: name.to_string(),
                dtype: format!("{:?}", info.dtype),
            });
        }
        let mut out = Vec::with_capacity(info.elements());
        self.stream_raw(name, &mut |chunk| {
            convert::decode_into(info.dtype, chunk, &mut out);
            Ok(())
        })?;
        Ok(out)
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

    /// Names of the layers to compress, in order. With no patterns: every 2-D float tensor
    /// whose name ends in `.weight`. With patterns (globs, see [`glob_match`]): the tensors
    /// each pattern matches, pattern by pattern; every pattern must match something, and
    /// every tensor matched must be a 2-D float tensor. Within a pattern, names are in natural
    /// order (`fc2` before `fc10`); a name matched twice is kept once.
    pub fn select_layers(&self, patterns: &[String]) -> Result<Vec<String>> {
        let mut sorted = self.order.clone();
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

    /// A short list of the tensor names, for error messages.
    pub fn available(&self) -> String {
        let mut names = self.order.clone();
        names.sort_by(|a, b| natural_cmp(a, b));
        match names.len() {
            0 => "the checkpoint holds no tensors".into(),
            n if n <= 8 => format!("tensors: {}", names.join(", ")),
            n => format!("tensors: {}, ... ({n} in all)", names[..8].join(", ")),
        }
    }
}

/// Elements of one float tensor, decoded to f32 on demand from the mapped file.
pub struct TensorReader<'a> {
    shard: &'a Shard,
    start: usize,
    width: usize,
    dtype: Dtype,
    len: usize,
}

impl TensorReader<'_> {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the tensor has no elements.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Decodes elements `first..first + out.len()` into `out` (exactly), then releases the
    /// mapped pages behind them: a scan keeps about one block of the tensor resident, and a
    /// second pass reads the pages back from the page cache.
    ///
    /// # Panics
    /// If the range is past the end of the tensor.
    pub fn read(&self, first: usize, out: &mut [f32]) {
        assert!(
            first + out.len() <= self.len,
            "elements {first}..{} of {}",
            first + out.len(),
            self.len
        );
        let (a, b) = (
            self.start + first * self.width,
            self.start + (first + out.len()) * self.width,
        );
        convert::decode_to(self.dtype, self.shard.bytes(a, b), out);
        self.shard.release(a, b - a);
    }
}

impl Drop for TensorReader<'_> {
    /// Releases the tensor's mapped pages: a scan (several passes) keeps the tensor resident
    /// at most once, and only while it is being scanned.
    fn drop(&mut self) {
        self.shard.release(self.start, self.len * self.width);
    }
}

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

#[cfg(test)]
mod tests;
