#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod error;
mod idx;
mod synthetic;
mod tensors;

#[cfg(test)]
mod tests;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

pub use error::{Error, Result};
pub use idx::{IdxArray, IdxType, MAX_DECOMPRESSED, read_idx};
pub use synthetic::{SYNTHETIC_CLASSES, SYNTHETIC_SAMPLES, SYNTHETIC_WIDTH, synthetic_sample};

/// Where a dataset comes from, as given to `--dataset`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Spec {
    /// `mnist:DIR[:SPLIT]`: the MNIST family's IDX files in `DIR`,
    /// `SPLIT-images-idx3-ubyte[.gz]` and `SPLIT-labels-idx1-ubyte[.gz]`, where `SPLIT` is
    /// `train` or `t10k` (optional when only one of them is there).
    Mnist {
        /// The folder.
        dir: PathBuf,
        /// `train` or `t10k`; `None`: whichever one the folder holds.
        split: Option<String>,
    },
    /// `idx:IMAGES,LABELS`: any pair of IDX files (gzip or raw).
    Idx {
        /// The inputs file (first dimension: samples).
        images: PathBuf,
        /// The labels file (one dimension: samples).
        labels: PathBuf,
    },
    /// `safetensors:FILE` (or a path ending in `.safetensors`): tensors `inputs`
    /// `[samples, ...]` (float or U8) and `labels` `[samples]` (integer).
    Safetensors {
        /// The file.
        path: PathBuf,
    },
    /// `synthetic[:SEED]`: the built-in deterministic dataset (see [`synthetic_sample`]);
    /// `synthetic-image[:SEED]` the same samples as 1 x 8 x 8 images, `synthetic-sequence[:SEED]`
    /// as sequences of 8 steps of 8 features.
    Synthetic {
        /// The seed of the generator (default 0).
        seed: u64,
        /// How the samples present themselves.
        form: Form,
    },
    /// `text:FILE` (or a path ending in `.txt`): UTF-8 text, for a language model, which
    /// tokenizes it with its own tokenizer; its range is a byte range (eie-text).
    Text {
        /// The file.
        path: PathBuf,
    },
}

/// How a dataset's samples present themselves to a network (checked against its input by
/// eie-model).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Form {
    /// As stored: a grid such as MNIST's 28 x 28 reads as a 1 x 28 x 28 image for a
    /// convolution and as 28 steps of 28 features for an LSTM; a vector as itself.
    Plain,
    /// Images, channels x height x width: an LSTM refuses them.
    Image,
    /// Sequences, steps x features: a convolution refuses them.
    Sequence,
}

impl fmt::Display for Form {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Form::Plain => "plain",
            Form::Image => "image",
            Form::Sequence => "sequence",
        })
    }
}

impl FromStr for Spec {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let bad = |reason: &str| Error::Spec {
            spec: s.to_string(),
            reason: reason.to_string(),
        };
        for (prefix, form) in [
            ("synthetic", Form::Plain),
            ("synthetic-image", Form::Image),
            ("synthetic-sequence", Form::Sequence),
        ] {
            if s == prefix {
                return Ok(Spec::Synthetic { seed: 0, form });
            }
            if let Some(seed) = s.strip_prefix(prefix).and_then(|r| r.strip_prefix(':')) {
                let seed = seed.parse().map_err(|_| {
                    bad(&format!(
                        "the seed after \"{prefix}:\" must be an unsigned integer"
                    ))
                })?;
                return Ok(Spec::Synthetic { seed, form });
            }
        }
        if let Some(rest) = s.strip_prefix("mnist:") {
            let (dir, split) = match rest.rsplit_once(':') {
                Some((dir, split @ ("train" | "t10k"))) => (dir, Some(split.to_string())),
                _ => (rest, None),
            };
            if dir.is_empty() {
                return Err(bad("expected mnist:DIR or mnist:DIR:train|t10k"));
            }
            return Ok(Spec::Mnist {
                dir: dir.into(),
                split,
            });
        }
        if let Some(rest) = s.strip_prefix("idx:") {
            let Some((images, labels)) = rest.split_once(',') else {
                return Err(bad("expected idx:IMAGES,LABELS"));
            };
            if images.is_empty() || labels.is_empty() {
                return Err(bad("expected idx:IMAGES,LABELS"));
            }
            return Ok(Spec::Idx {
                images: images.into(),
                labels: labels.into(),
            });
        }
        if let Some(path) = s.strip_prefix("safetensors:") {
            if path.is_empty() {
                return Err(bad("expected safetensors:FILE"));
            }
            return Ok(Spec::Safetensors { path: path.into() });
        }
        if s.ends_with(".safetensors") {
            return Ok(Spec::Safetensors { path: s.into() });
        }
        if let Some(path) = s.strip_prefix("text:") {
            if path.is_empty() {
                return Err(bad("expected text:FILE"));
            }
            return Ok(Spec::Text { path: path.into() });
        }
        if s.ends_with(".txt") {
            return Ok(Spec::Text { path: s.into() });
        }
        Err(bad(
            "expected mnist:DIR[:train|t10k], idx:IMAGES,LABELS, safetensors:FILE (or FILE.safetensors), synthetic[-image|-sequence][:SEED], or text:FILE (or FILE.txt)",
        ))
    }
}

impl fmt::Display for Spec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Spec::Mnist { dir, split: None } => write!(f, "mnist:{}", dir.display()),
            Spec::Mnist {
                dir,
                split: Some(s),
            } => write!(f, "mnist:{}:{s}", dir.display()),
            Spec::Idx { images, labels } => {
                write!(f, "idx:{},{}", images.display(), labels.display())
            }
            Spec::Safetensors { path } => write!(f, "safetensors:{}", path.display()),
            Spec::Synthetic { seed, form } => match form {
                Form::Plain => write!(f, "synthetic:{seed}"),
                _ => write!(f, "synthetic-{form}:{seed}"),
            },
            Spec::Text { path } => write!(f, "text:{}", path.display()),
        }
    }
}

/// A range of sample indices, `A..B` (`A..` and `..B` leave an end open), as given to
/// `--range`. Indices count from 0 in the dataset's own order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SampleRange {
    /// First sample; `None`: 0.
    pub start: Option<usize>,
    /// One past the last sample; `None`: the end of the dataset.
    pub end: Option<usize>,
}

impl SampleRange {
    /// The whole dataset.
    pub const ALL: SampleRange = SampleRange {
        start: None,
        end: None,
    };

    /// `start..end`.
    pub fn new(start: usize, end: usize) -> Self {
        Self {
            start: Some(start),
            end: Some(end),
        }
    }

    /// The concrete indices in a dataset of `total` samples: an empty range, or one that
    /// reaches past the end, is an error naming `dataset`.
    pub fn resolve(&self, total: usize, dataset: &str) -> Result<std::ops::Range<usize>> {
        let start = self.start.unwrap_or(0);
        let end = self.end.unwrap_or(total);
        let bad = |reason: String| Error::Range {
            dataset: dataset.to_string(),
            range: self.to_string(),
            reason,
        };
        if end > total {
            return Err(bad(format!(
                "it reaches past the end of the dataset's {total} samples (indices 0..{total})"
            )));
        }
        if start >= end {
            return Err(bad(format!(
                "it holds no samples (the dataset has {total}, indices 0..{total})"
            )));
        }
        Ok(start..end)
    }
}

impl FromStr for SampleRange {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let bad = || Error::Range {
            dataset: "(any)".into(),
            range: s.to_string(),
            reason: "expected START..END, START.. or ..END with unsigned integers".into(),
        };
        let (a, b) = s.split_once("..").ok_or_else(bad)?;
        let part = |p: &str| -> Result<Option<usize>> {
            let p = p.trim();
            if p.is_empty() {
                Ok(None)
            } else {
                p.parse().map(Some).map_err(|_| bad())
            }
        };
        Ok(Self {
            start: part(a)?,
            end: part(b)?,
        })
    }
}

impl fmt::Display for SampleRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(s) = self.start {
            write!(f, "{s}")?;
        }
        f.write_str("..")?;
        if let Some(e) = self.end {
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// How raw inputs become the network's inputs: `x' = (u(x) - mean) / std`, where `u`
/// divides integer data by its type's largest value (`unit`: U8 pixels to [0, 1]) and
/// leaves float data as stored.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scaling {
    /// Divide integer data by its type's largest value (255 for U8).
    pub unit: bool,
    /// Subtracted after `unit`.
    pub mean: f32,
    /// Divided by after subtracting the mean; positive.
    pub std: f32,
}

impl Default for Scaling {
    fn default() -> Self {
        Self {
            unit: true,
            mean: 0.0,
            std: 1.0,
        }
    }
}

impl Scaling {
    /// Checks that the parameters can be applied.
    pub fn validate(&self) -> Result<()> {
        if !self.mean.is_finite() {
            return Err(Error::Scaling {
                reason: format!("the mean {} is not finite", self.mean),
            });
        }
        if !self.std.is_finite() {
            return Err(Error::Scaling {
                reason: format!("the standard deviation {} is not finite", self.std),
            });
        }
        if self.std <= 0.0 {
            return Err(Error::Scaling {
                reason: format!("the standard deviation {} must be positive", self.std),
            });
        }
        Ok(())
    }
}

/// A number given as text, as the 32-bit float inputs are scaled with: finite, within f32's
/// range, and not rounding to 0 unless it is 0. Errors show the text as typed.
pub fn parse_f32(text: &str) -> std::result::Result<f32, String> {
    let v: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("expected a number, got \"{text}\""))?;
    if !v.is_finite() {
        return Err(format!("{text} is not a finite number"));
    }
    let f = v as f32;
    if f.is_infinite() {
        return Err(format!(
            "{text} is beyond a 32-bit float's range (about 3.4e38)"
        ));
    }
    if f == 0.0 && v != 0.0 {
        return Err(format!("{text} rounds to 0 as a 32-bit float"));
    }
    Ok(f)
}

/// Metadata keys under which a model records the input scaling it was trained with (`train`
/// writes them; every later command reads them back, and compress carries them into
/// `model.eie`).
pub mod meta {
    /// `unit` or `raw`.
    pub const SCALE: &str = "eie.scale";
    /// The mean subtracted.
    pub const MEAN: &str = "eie.mean";
    /// The standard deviation divided by.
    pub const STD: &str = "eie.std";
    /// All three.
    pub const ALL: [&str; 3] = [SCALE, MEAN, STD];
}

/// Scaling parameters given explicitly (on the command line); each one not given comes from
/// what the model records, else the default.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ScalingRequest {
    /// `unit` (true) or `raw` (false).
    pub unit: Option<bool>,
    /// The mean.
    pub mean: Option<f32>,
    /// The standard deviation.
    pub std: Option<f32>,
}

impl ScalingRequest {
    /// Whether anything is given.
    pub fn is_set(&self) -> bool {
        self.unit.is_some() || self.mean.is_some() || self.std.is_some()
    }
}

impl Scaling {
    /// The scaling of a model: `given` first, then what `metadata` records ([`meta`]), then
    /// the defaults; checked.
    pub fn resolve(
        given: &ScalingRequest,
        metadata: &std::collections::BTreeMap<String, String>,
    ) -> Result<Self> {
        let recorded = |key: &str| -> Result<Option<f32>> {
            metadata
                .get(key)
                .map(|v| {
                    v.parse::<f32>().map_err(|_| Error::Scaling {
                        reason: format!("model metadata {key} = \"{v}\" is not a number"),
                    })
                })
                .transpose()
        };
        let s = Self {
            unit: match given.unit {
                Some(u) => u,
                None => metadata.get(meta::SCALE).is_none_or(|s| s != "raw"),
            },
            mean: match given.mean {
                Some(m) => m,
                None => recorded(meta::MEAN)?.unwrap_or(0.0),
            },
            std: match given.std {
                Some(s) => s,
                None => recorded(meta::STD)?.unwrap_or(1.0),
            },
        };
        s.validate()?;
        Ok(s)
    }

    /// The metadata that records this scaling.
    pub fn to_metadata(&self) -> [(String, String); 3] {
        [
            (
                meta::SCALE.into(),
                if self.unit { "unit" } else { "raw" }.into(),
            ),
            (meta::MEAN.into(), self.mean.to_string()),
            (meta::STD.into(), self.std.to_string()),
        ]
    }
}

/// Input vectors of `width` floats from a safetensors file holding one float tensor (or
/// `tensor`), shaped `[width]` or `[vectors, width]`; every value finite.
pub fn vectors_from_file(
    path: &std::path::Path,
    tensor: Option<&str>,
    width: usize,
) -> Result<Vec<Vec<f32>>> {
    let ck = eie_checkpoint::Checkpoint::open(path)?;
    let bad = |tensor: &str, reason: String| Error::Tensor {
        path: path.to_path_buf(),
        tensor: tensor.to_string(),
        reason,
    };
    let name = match tensor {
        Some(n) => n.to_string(),
        None => {
            let all = ck.tensors();
            match all.as_slice() {
                [one] => one.name.clone(),
                _ => {
                    return Err(Error::Input {
                        path: path.to_path_buf(),
                        reason: format!(
                            "holds {} tensors; say which with --input-tensor ({})",
                            all.len(),
                            ck.available()
                        ),
                    });
                }
            }
        }
    };
    let Some(info) = ck.info(&name) else {
        return Err(Error::Input {
            path: path.to_path_buf(),
            reason: format!("no tensor \"{name}\""),
        });
    };
    let data = ck.read_f32(&name).map_err(|e| Error::Input {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let vectors: Vec<Vec<f32>> = match info.shape[..] {
        [n] if n == width => vec![data],
        [_, n] if n == width => data.chunks(width.max(1)).map(<[f32]>::to_vec).collect(),
        _ => {
            return Err(bad(
                &name,
                format!(
                    "shape {:?}, expected [{width}] or [vectors, {width}] for the first layer's {width} inputs",
                    info.shape
                ),
            ));
        }
    };
    for (v, x) in vectors.iter().enumerate() {
        if let Some(i) = x.iter().position(|v| !v.is_finite()) {
            return Err(bad(&name, format!("vector {v}, value {i} is {}", x[i])));
        }
    }
    Ok(vectors)
}

impl fmt::Display for Scaling {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = if self.unit { "unit" } else { "raw" };
        if self.mean == 0.0 && self.std == 1.0 {
            write!(f, "{unit}")
        } else {
            write!(f, "{unit}, mean {}, std {}", self.mean, self.std)
        }
    }
}

/// Samples and their labels, already scaled: what a network is trained or evaluated on.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    name: String,
    first: usize,
    width: usize,
    shape: Vec<usize>,
    form: Form,
    classes: Option<usize>,
    inputs: Vec<f32>,
    labels: Vec<u32>,
}

impl Dataset {
    /// A dataset from its parts: `inputs` holds `labels.len()` rows of `width` values.
    ///
    /// # Panics
    /// If `inputs.len() != labels.len() * width`.
    pub fn from_parts(
        name: impl Into<String>,
        first: usize,
        width: usize,
        classes: Option<usize>,
        inputs: Vec<f32>,
        labels: Vec<u32>,
    ) -> Self {
        assert_eq!(
            inputs.len(),
            labels.len() * width,
            "inputs are samples x width"
        );
        Self {
            name: name.into(),
            first,
            width,
            shape: vec![width],
            form: Form::Plain,
            classes,
            inputs,
            labels,
        }
    }

    /// The same samples with each one's `shape` (its product must be the width) and `form`.
    ///
    /// # Panics
    /// If the shape's product is not the width.
    pub fn with_shape(mut self, shape: Vec<usize>, form: Form) -> Self {
        assert_eq!(
            shape.iter().product::<usize>(),
            self.width,
            "a sample's shape holds its width"
        );
        self.shape = shape;
        self.form = form;
        self
    }

    /// Each sample's dimensions as stored (`[28, 28]` for MNIST, `[64]` for the synthetic
    /// set, `[1, 8, 8]` for its image form); their product is [`Dataset::width`].
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// How the samples present themselves.
    pub fn form(&self) -> Form {
        self.form
    }

    /// A readable name: the specification and the range.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Samples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no samples (never, for a loaded dataset).
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Inputs per sample.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Index in the source of the first sample.
    pub fn first(&self) -> usize {
        self.first
    }

    /// Classes: as the source declares them (10 for the synthetic set), otherwise the
    /// largest label plus one.
    pub fn classes(&self) -> usize {
        self.classes
            .unwrap_or_else(|| self.labels.iter().max().map_or(0, |&m| m as usize + 1))
    }

    /// Every sample's inputs, row after row.
    pub fn inputs(&self) -> &[f32] {
        &self.inputs
    }

    /// Sample `i`'s inputs.
    pub fn input(&self, i: usize) -> &[f32] {
        &self.inputs[i * self.width..(i + 1) * self.width]
    }

    /// Every label.
    pub fn labels(&self) -> &[u32] {
        &self.labels
    }
}

/// What a loader hands back: the selected samples before scaling.
struct Raw {
    total: usize,
    width: usize,
    /// A sample's dimensions (product: `width`).
    shape: Vec<usize>,
    form: Form,
    /// For integer inputs: the type's largest value (what `unit` divides by).
    integer_max: Option<f32>,
    classes: Option<usize>,
    inputs: Vec<f32>,
    labels: Vec<u32>,
}

/// Loads samples `range` of the dataset `spec`, scaled by `scaling`.
pub fn load(spec: &Spec, range: SampleRange, scaling: &Scaling) -> Result<Dataset> {
    scaling.validate()?;
    let label = spec.to_string();
    let raw = match spec {
        Spec::Mnist { dir, split } => {
            let (images, labels) = mnist_files(spec, dir, split.as_deref())?;
            idx::load_pair(&images, &labels, range, &label)?
        }
        Spec::Idx { images, labels } => idx::load_pair(images, labels, range, &label)?,
        Spec::Safetensors { path } => tensors::load(path, range, &label)?,
        Spec::Synthetic { seed, form } => synthetic::load(*seed, *form, range, &label)?,
        Spec::Text { .. } => return Err(text_needs_a_model(spec)),
    };
    let first = range.resolve(raw.total, &label)?.start;
    let Raw {
        width,
        shape,
        form,
        integer_max,
        classes,
        mut inputs,
        labels,
        ..
    } = raw;
    let divide = match integer_max {
        Some(m) if scaling.unit => m,
        _ => 1.0,
    };
    for (i, x) in inputs.iter_mut().enumerate() {
        if !x.is_finite() {
            return Err(Error::NonFinite {
                dataset: label,
                index: first + i / width.max(1),
                feature: i % width.max(1),
                value: *x,
            });
        }
        let raw = *x;
        *x = (raw / divide - scaling.mean) / scaling.std;
        if !x.is_finite() {
            return Err(Error::Scaling {
                reason: format!(
                    "dataset {label}: sample {}, input {} is {raw}, which scales ({scaling}) to {}; give a larger --std",
                    first + i / width.max(1),
                    i % width.max(1),
                    *x
                ),
            });
        }
    }
    Ok(Dataset {
        name: format!("{label} [{}..{}]", first, first + labels.len()),
        first,
        width,
        shape,
        form,
        classes,
        inputs,
        labels,
    })
}

/// How many samples dataset `spec` holds and how many inputs each has, from its headers
/// (an IDX file validated as it is read, nothing kept): what a command sizes its memory
/// by before it loads anything.
pub fn peek(spec: &Spec) -> Result<(usize, usize)> {
    let idx = |path: &Path| -> Result<(usize, usize)> {
        let mut dims = Vec::new();
        idx::read_idx_samples(path, |d| {
            dims = d.to_vec();
            Ok(0..0)
        })?;
        let width = dims[1..].iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        Ok((dims[0], width.unwrap_or(usize::MAX)))
    };
    match spec {
        Spec::Mnist { dir, split } => idx(&mnist_files(spec, dir, split.as_deref())?.0),
        Spec::Idx { images, .. } => idx(images),
        Spec::Safetensors { path } => tensors::peek(path),
        Spec::Synthetic { .. } => Ok((SYNTHETIC_SAMPLES, SYNTHETIC_WIDTH)),
        Spec::Text { .. } => Err(text_needs_a_model(spec)),
    }
}

/// A text dataset given where samples of numbers are read.
fn text_needs_a_model(spec: &Spec) -> Error {
    Error::Spec {
        spec: spec.to_string(),
        reason: "text is tokenized by a language model's own tokenizer: evaluate a Hugging Face model folder with it (eval FOLDER --dataset text:FILE)".into(),
    }
}

impl Spec {
    /// The files the dataset is read from (an MNIST folder's two files once found), so that
    /// a command can refuse to write over them.
    pub fn files(&self) -> Result<Vec<PathBuf>> {
        Ok(match self {
            Spec::Mnist { dir, split } => {
                let (a, b) = mnist_files(self, dir, split.as_deref())?;
                vec![a, b]
            }
            Spec::Idx { images, labels } => vec![images.clone(), labels.clone()],
            Spec::Safetensors { path } => vec![path.clone()],
            Spec::Synthetic { .. } => Vec::new(),
            Spec::Text { path } => vec![path.clone()],
        })
    }
}

/// The images and labels files of an MNIST-family folder.
fn mnist_files(spec: &Spec, dir: &Path, split: Option<&str>) -> Result<(PathBuf, PathBuf)> {
    let find = |split: &str, kind: &str, rank: u8| -> Option<PathBuf> {
        let stem = format!("{split}-{kind}-idx{rank}-ubyte");
        [format!("{stem}.gz"), stem]
            .into_iter()
            .map(|n| dir.join(n))
            .find(|p| p.is_file())
    };
    let pair = |split: &str| Some((find(split, "images", 3)?, find(split, "labels", 1)?));
    let bad = |reason: String| Error::Spec {
        spec: spec.to_string(),
        reason,
    };
    if !dir.is_dir() {
        return Err(bad(format!("{} is not a folder", dir.display())));
    }
    match split {
        Some(s) => pair(s).ok_or_else(|| {
            bad(format!(
                "{} holds no {s}-images-idx3-ubyte[.gz] with {s}-labels-idx1-ubyte[.gz]",
                dir.display()
            ))
        }),
        None => match (pair("train"), pair("t10k")) {
            (Some(p), None) | (None, Some(p)) => Ok(p),
            (Some(_), Some(_)) => Err(bad(format!(
                "{} holds both the train and the t10k split; say which (mnist:DIR:train or mnist:DIR:t10k)",
                dir.display()
            ))),
            (None, None) => Err(bad(format!(
                "{} holds no MNIST-style IDX files (train-images-idx3-ubyte[.gz] and train-labels-idx1-ubyte[.gz], or t10k-...)",
                dir.display()
            ))),
        },
    }
}
