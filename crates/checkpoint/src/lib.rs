#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod convert;
mod error;
mod glob;
mod header;
mod shard;
mod writer;

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

pub use safetensors::Dtype;
use sha2::{Digest, Sha256};

pub use convert::{encode, encode_into, f32_bytes, float_width, round_to};
pub use error::{Error, Result};
pub use glob::{MAX_PATTERN, MAX_PATTERNS, check_pattern, glob_match, natural_cmp};
pub use header::Header;
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
    /// Whether the element type is one this crate converts to f32 (F64, F32, F16, BF16).
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

/// `data`, a `[rows, cols]` row-major matrix, as `[cols, rows]` row-major (GPT-2's `Conv1D`
/// weights are stored `[in, out]`).
pub fn transpose(data: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut t = vec![0.0; data.len()];
    for (i, row) in data.chunks_exact(cols).enumerate().take(rows) {
        for (j, &v) in row.iter().enumerate() {
            t[j * rows + i] = v;
        }
    }
    t
}

/// Names for a message: the first eight, then how many in all.
pub fn name_list(names: &[&str]) -> String {
    match names.len() {
        n if n <= 8 => names.join(", "),
        n => format!("{}, ... ({n} in all)", names[..8].join(", ")),
    }
}

/// A checkpoint: one safetensors file, or a sharded one given by its
/// `*.safetensors.index.json`. Every file is fully validated at open (its header through a
/// short-lived memory map); tensors are then read with positioned reads.
pub struct Checkpoint {
    path: PathBuf,
    shards: Vec<Shard>,
    header: Header,
}

impl std::fmt::Debug for Checkpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpoint")
            .field("path", &self.path)
            .field("shards", &self.shards.len())
            .field("tensors", &self.header.len())
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
        if is_index(path) {
            return Self::open_index(path);
        }
        let (shard, infos) = Shard::open(path)?;
        let metadata = shard.metadata_map();
        let header = Header::new(path, vec![infos], metadata);
        Ok(Self {
            path: path.to_path_buf(),
            shards: vec![shard],
            header,
        })
    }

    fn open_index(path: &Path) -> Result<Self> {
        let bad = |reason: String| Error::Index {
            path: path.to_path_buf(),
            reason,
        };
        let text = read_index(path).map_err(|source| Error::Io {
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
        let mut infos = Vec::new();
        let mut count = 0usize;
        for (file, tensors) in &wanted {
            let shard_path = dir.join(file);
            if !shard_path.exists() {
                return Err(bad(format!(
                    "shard {file} is missing ({})",
                    shard_path.display()
                )));
            }
            let (shard, held) = Shard::open(&shard_path)?;
            count += held.len();
            if count > MAX_TENSORS {
                return Err(Error::TooManyTensors {
                    path: path.to_path_buf(),
                    count,
                    max: MAX_TENSORS,
                });
            }
            let mismatch = |tensor: &str, reason: String| Error::ShardMismatch {
                index: path.to_path_buf(),
                shard: file.clone(),
                tensor: tensor.to_string(),
                reason,
            };
            let names: std::collections::HashSet<&str> =
                held.iter().map(|t| t.name.as_str()).collect();
            for t in tensors {
                if !names.contains(t.as_str()) {
                    return Err(mismatch(
                        t,
                        "the index maps it to this shard, which does not hold it".into(),
                    ));
                }
            }
            for t in held.iter().map(|t| &t.name) {
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
            shards.push(shard);
            infos.push(held);
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
        let header = Header::new(path, infos, metadata);
        Ok(Self {
            path: path.to_path_buf(),
            shards,
            header,
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

    /// What the checkpoint holds: its tensors' names, dtypes and shapes, and its metadata
    /// (everything selection needs, without the data).
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Every tensor: shard by shard, in file (offset) order within a shard.
    pub fn tensors(&self) -> Vec<TensorInfo> {
        self.header.tensors()
    }

    /// The tensor called `name`, if present.
    pub fn info(&self, name: &str) -> Option<TensorInfo> {
        self.header.info(name)
    }

    /// The `__metadata__` map (of the first shard, plus the index's `metadata`, stringified).
    pub fn metadata(&self) -> BTreeMap<String, String> {
        self.header.metadata().clone()
    }

    /// See [`Header::model_order`].
    pub fn model_order(&self) -> Vec<String> {
        self.header.model_order()
    }

    /// See [`Header::select`].
    pub fn select(&self, patterns: &[String]) -> Result<Selection> {
        self.header.select(patterns)
    }

    /// See [`Header::default_selection`].
    pub fn default_selection(&self) -> Selection {
        self.header.default_selection()
    }

    /// See [`Header::select_layers`].
    pub fn select_layers(&self, patterns: &[String]) -> Result<Vec<String>> {
        self.header.select_layers(patterns)
    }

    /// See [`Header::available`].
    pub fn available(&self) -> String {
        self.header.available()
    }

    /// The files a checkpoint's SHA-256 covers, in order: the file, or for a sharded
    /// checkpoint the index followed by every shard file in name order.
    pub fn hashed_files(&self) -> Vec<PathBuf> {
        let mut files = Vec::with_capacity(self.shards.len() + 1);
        if self.shards.len() > 1 || is_index(&self.path) {
            files.push(self.path.clone());
        }
        files.extend(self.shards.iter().map(|s| s.path.clone()));
        files
    }

    /// SHA-256 of the checkpoint: of [`Checkpoint::hashed_files`], one after the other. Read
    /// with plain reads into one buffer, so hashing never adds the file to this process's
    /// resident memory.
    pub fn sha256(&self) -> Result<[u8; 32]> {
        sha256_files(&self.hashed_files(), &AtomicBool::new(false))
    }

    /// [`Checkpoint::sha256`] on a thread of its own, so the hash is taken while the tensors
    /// are read for other work (the data read on two cores at once).
    pub fn spawn_sha256(&self) -> HashJob {
        let files = self.hashed_files();
        let cancel = Arc::new(AtomicBool::new(false));
        let stop = Arc::clone(&cancel);
        HashJob {
            handle: Some(std::thread::spawn(move || sha256_files(&files, &stop))),
            cancel,
        }
    }

    fn locate(&self, name: &str) -> Result<(&Shard, (usize, usize))> {
        let not_found = || Error::TensorNotFound {
            path: self.path.clone(),
            tensor: name.to_string(),
        };
        let (s, i) = self.header.position(name).ok_or_else(not_found)?;
        let shard = &self.shards[s];
        Ok((shard, shard.range(i)))
    }

    /// Streams the raw little-endian bytes of tensor `name` to `sink`, in chunks.
    pub fn stream_raw(&self, name: &str, sink: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()> {
        let (shard, range) = self.locate(name)?;
        shard.stream(range, sink)
    }

    /// Streams bytes `part` (counted from the tensor's first byte) of tensor `name`'s raw
    /// data to `sink`, in chunks: what a reader of some rows of a large tensor reads, and no
    /// more.
    ///
    /// # Panics
    /// If `part` runs past the tensor's data.
    pub fn stream_raw_part(
        &self,
        name: &str,
        part: std::ops::Range<usize>,
        sink: &mut dyn FnMut(&[u8]) -> Result<()>,
    ) -> Result<()> {
        let (shard, (start, end)) = self.locate(name)?;
        assert!(
            part.start <= part.end && part.end <= end - start,
            "bytes {part:?} of a tensor of {}",
            end - start
        );
        if part.is_empty() {
            return Ok(());
        }
        shard.stream((start + part.start, start + part.end), sink)
    }

    /// Random access to float tensor `name`'s elements as f32, straight from the file: the
    /// way to scan a large tensor without an f32 copy of it.
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

    /// Tensor `name` converted to f32 (F32, F16 and BF16 exactly, F64 rounded to nearest),
    /// row-major; memory holds the f32 copy and one chunk of the file.
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
}

/// Elements of one float tensor, decoded to f32 on demand with positioned reads of the file.
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

    /// Decodes elements `first..first + out.len()` into `out` (exactly), read from the file
    /// into a buffer of the calling thread's: a scan holds one block per thread in memory.
    ///
    /// # Panics
    /// If the range is past the end of the tensor.
    pub fn read(&self, first: usize, out: &mut [f32]) -> Result<()> {
        assert!(
            first + out.len() <= self.len,
            "elements {first}..{} of {}",
            first + out.len(),
            self.len
        );
        thread_local! {
            static BYTES: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        BYTES.with_borrow_mut(|bytes| {
            bytes.resize(out.len() * self.width, 0);
            self.shard.read_at(self.start + first * self.width, bytes)?;
            convert::decode_to(self.dtype, bytes, out);
            Ok(())
        })
    }
}

/// What [`Checkpoint::select`] chose: the layers, and the weights it left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    /// Tensor names of the layers, in order.
    pub layers: Vec<String>,
    /// `*.weight` tensors not selected by default, in model order.
    pub skipped: Vec<Skipped>,
}

/// A weight tensor the default selection leaves out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// Tensor name.
    pub name: String,
    /// Why.
    pub reason: SkipReason,
}

/// Why a `*.weight` tensor is not a layer to compress by default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// An embedding table: a lookup, not a matrix-vector product.
    Embedding,
    /// Not 2-D (a norm's scale, a convolution); the shape.
    NotMatrix(Vec<usize>),
    /// Not a float tensor; the dtype.
    NotFloat(Dtype),
    /// A matrix the model's forward pass, as this tool runs it, does not use (BERT's
    /// pooler under a masked-LM head).
    Unused,
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SkipReason::Embedding => {
                f.write_str("embedding table: a lookup, not a matrix-vector layer")
            }
            SkipReason::NotMatrix(shape) => write!(f, "shape {shape:?}, not 2-D"),
            SkipReason::NotFloat(dtype) => write!(f, "dtype {dtype:?}, not a float type"),
            SkipReason::Unused => f.write_str("not used by the model's forward pass"),
        }
    }
}

/// Whether a checkpoint path is a sharded checkpoint's index: it ends in `.json`, in any case
/// (`model.safetensors.index.JSON` is one).
fn is_index(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
}

/// Whether a tensor name is an embedding table's: a component (between dots) that contains
/// `embed` (`embed_tokens`, `word_embeddings`, `pos_embed`) or is GPT-2's `wte` or `wpe`.
/// Names only: a tied output head (`lm_head`) shares an embedding's values but is a layer.
pub fn is_embedding(name: &str) -> bool {
    name.split('.').any(|c| {
        let c = c.to_ascii_lowercase();
        c.contains("embed") || c == "wte" || c == "wpe"
    })
}

/// The bias tensor's name of a weight named `NAME.weight` (PyTorch's naming): `NAME.bias`.
pub fn bias_name(weight: &str) -> Option<String> {
    weight.strip_suffix(".weight").map(|s| format!("{s}.bias"))
}

/// A name with every run of digits replaced by `#`: names with the same skeleton differ only
/// in their numbers.
pub(crate) fn skeleton(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut in_digits = false;
    for c in name.chars() {
        if c.is_ascii_digit() {
            if !in_digits {
                out.push('#');
            }
            in_digits = true;
        } else {
            out.push(c);
            in_digits = false;
        }
    }
    out
}

/// The largest index file read (Hugging Face's indexes are tens of kilobytes).
pub const MAX_INDEX_BYTES: u64 = 64 << 20;

/// The largest safetensors header read: the `safetensors` crate's own limit, which it
/// enforces (100 MB).
pub const MAX_HEADER_BYTES: u64 = 100_000_000;

/// The most tensors a checkpoint may hold, every shard together: parsing a header costs
/// about 1 KB a tensor, so this bounds opening one at about half a gigabyte. (The largest
/// published checkpoints hold under 100,000.)
pub const MAX_TENSORS: usize = 1 << 19;

/// The most layers one command selects: every layer is a plan, a report line and image
/// files. (A mixture of experts' every expert matrix is a layer: DeepSeek-V3 has about
/// 45,000.)
pub const MAX_LAYERS: usize = 1 << 16;

/// An index's text: a regular file (a FIFO or device would block or never end), of at most
/// [`MAX_INDEX_BYTES`].
fn read_index(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    if meta.len() > MAX_INDEX_BYTES {
        return Err(std::io::Error::other(format!(
            "{} bytes, over the {MAX_INDEX_BYTES} an index may have",
            meta.len()
        )));
    }
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(MAX_INDEX_BYTES + 1)
        .read_to_string(&mut text)?;
    Ok(text)
}

/// A checkpoint's SHA-256 being taken on its own thread ([`Checkpoint::spawn_sha256`]).
///
/// Dropped without [`HashJob::wait`] (a run that failed early), it stops the thread after the
/// chunk in hand and waits for it, so no read of the input outlives the run.
pub struct HashJob {
    handle: Option<std::thread::JoinHandle<Result<[u8; 32]>>>,
    cancel: Arc<AtomicBool>,
}

impl HashJob {
    /// Waits for the hash.
    pub fn wait(mut self) -> Result<[u8; 32]> {
        let handle = self.handle.take().expect("waited once");
        handle.join().unwrap_or_else(|_| {
            Err(Error::Write {
                path: PathBuf::new(),
                reason: "the hashing thread panicked".into(),
            })
        })
    }
}

impl Drop for HashJob {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            self.cancel.store(true, Ordering::Relaxed);
            let _ = handle.join();
        }
    }
}

/// SHA-256 of `files`, one after the other, read 8 MiB at a time. Plain reads, not a memory
/// map: a file truncated meanwhile ends the read early (and the pipeline's own reads of it
/// fail, naming it) instead of crashing the process.
/// Stops early, with an error, once `cancel` is set.
fn sha256_files(files: &[PathBuf], cancel: &AtomicBool) -> Result<[u8; 32]> {
    use std::io::Read;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; shard::CHUNK];
    for path in files {
        let io = |source| Error::Io {
            path: path.clone(),
            source,
        };
        let mut f = std::fs::File::open(path).map_err(io)?;
        loop {
            if cancel.load(Ordering::Relaxed) {
                return Err(Error::Write {
                    path: path.clone(),
                    reason: "hashing cancelled".into(),
                });
            }
            let n = f.read(&mut buf).map_err(io)?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
    }
    Ok(h.finalize().into())
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
