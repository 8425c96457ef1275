//! A checkpoint's header: what it holds (tensor names, dtypes, shapes, shard by shard, and
//! its metadata) without the data. Model order and layer selection are decided here, from
//! the header alone, so they can be tested without files.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::glob::{glob_match, natural_cmp};
use crate::{Dtype, Selection, SkipReason, Skipped, TensorInfo, is_embedding, skeleton};

/// What a checkpoint holds, without its data.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    path: PathBuf,
    /// Every shard's tensors, in offset order.
    shards: Vec<Vec<TensorInfo>>,
    /// Every tensor's (shard, position), sorted by name, one per name: the lookup, without a
    /// second copy of the names.
    by_name: Vec<(u32, u32)>,
    metadata: BTreeMap<String, String>,
}

impl Header {
    /// The header of a checkpoint at `path` (named in errors) whose shards hold `shards`
    /// (each in offset order), with `metadata`. Names are unique (a checkpoint that opened
    /// guarantees it; a later duplicate is ignored).
    pub fn new(
        path: &Path,
        shards: Vec<Vec<TensorInfo>>,
        metadata: BTreeMap<String, String>,
    ) -> Self {
        let mut by_name: Vec<(u32, u32)> = shards
            .iter()
            .enumerate()
            .flat_map(|(s, tensors)| (0..tensors.len()).map(move |i| (s as u32, i as u32)))
            .collect();
        let name = |&(s, i): &(u32, u32)| shards[s as usize][i as usize].name.as_str();
        // Stable: of a name given twice, the first stays.
        by_name.sort_by(|a, b| name(a).cmp(name(b)));
        by_name.dedup_by(|b, a| name(a) == name(b));
        Self {
            path: path.to_path_buf(),
            shards,
            by_name,
            metadata,
        }
    }

    /// Number of tensors.
    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    /// Whether it holds no tensor.
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    /// The shard and the position in it (offset order) of the tensor called `name`.
    pub(crate) fn position(&self, name: &str) -> Option<(usize, usize)> {
        let found = self
            .by_name
            .binary_search_by(|&(s, i)| self.shards[s as usize][i as usize].name.as_str().cmp(name))
            .ok()?;
        let (s, i) = self.by_name[found];
        Some((s as usize, i as usize))
    }

    /// Every tensor's name: shard by shard, in offset order within a shard.
    fn names(&self) -> Vec<String> {
        self.tensors().into_iter().map(|t| t.name).collect()
    }

    /// Every tensor: shard by shard, in file (offset) order within a shard.
    pub fn tensors(&self) -> Vec<TensorInfo> {
        self.shards.iter().flatten().cloned().collect()
    }

    /// The tensor called `name`, if present.
    pub fn info(&self, name: &str) -> Option<TensorInfo> {
        self.get(name).cloned()
    }

    /// The tensor called `name`, if present, borrowed.
    pub fn get(&self, name: &str) -> Option<&TensorInfo> {
        let (s, i) = self.position(name)?;
        Some(&self.shards[s][i])
    }

    /// The metadata.
    pub fn metadata(&self) -> &BTreeMap<String, String> {
        &self.metadata
    }

    /// Every tensor, in model order: the order the checkpoint was written in, with two
    /// corrections.
    ///
    /// - A file whose tensors are sorted by name (as Python's `safetensors` writes them, by
    ///   dtype and then name) says nothing about the model's order: its tensors are ordered
    ///   embedding tables first, then names with numbers in natural order (`layers.2` before
    ///   `layers.10`), then the names without numbers (heads such as `lm_head` last), each
    ///   group in natural order.
    /// - In any other file, names that differ only in their numbers follow their numbers
    ///   (`fc2` before `fc10`) in the places those names hold.
    pub fn model_order(&self) -> Vec<String> {
        // Sorted as Python writes: each dtype one contiguous run, sorted by name within it.
        let sorted_by_name = self.shards.iter().all(|shard| {
            let mut finished: Vec<Dtype> = Vec::new();
            shard.windows(2).all(|w| {
                if w[0].dtype == w[1].dtype {
                    return w[0].name <= w[1].name;
                }
                finished.push(w[0].dtype);
                !finished.contains(&w[1].dtype)
            })
        });
        let mut names = self.names();
        if sorted_by_name {
            let rank = |n: &str| {
                if is_embedding(n) {
                    0
                } else if n.bytes().any(|b| b.is_ascii_digit()) {
                    1
                } else {
                    2
                }
            };
            names.sort_by(|a, b| rank(a).cmp(&rank(b)).then_with(|| natural_cmp(a, b)));
            return names;
        }
        let mut groups: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, n) in names.iter().enumerate() {
            groups.entry(skeleton(n)).or_default().push(i);
        }
        for places in groups.values().filter(|p| p.len() > 1) {
            let mut members: Vec<String> = places.iter().map(|&i| names[i].clone()).collect();
            members.sort_by(|a, b| natural_cmp(a, b));
            for (&i, n) in places.iter().zip(members) {
                names[i] = n;
            }
        }
        names
    }

    /// The layers to compress, in order, and the weights left out by default.
    ///
    /// With no patterns: every 2-D float tensor whose name ends in `.weight`, in
    /// [`Header::model_order`], except embedding tables (lookups, not matrix-vector
    /// layers; see [`is_embedding`]); every other `*.weight` is listed as skipped, with the
    /// reason. With patterns (globs, see [`glob_match`]): the tensors each pattern matches,
    /// pattern by pattern, each pattern's matches in model order; every pattern must match
    /// something, and every tensor matched must be a 2-D float tensor (an embedding table
    /// too); a name matched twice is kept once, and nothing is skipped.
    pub fn select(&self, patterns: &[String]) -> Result<Selection> {
        let selection = if patterns.is_empty() {
            let all = self.default_selection();
            if all.layers.is_empty() {
                return Err(Error::NothingSelected {
                    path: self.path.clone(),
                    reason: "no 2-D float tensor whose name ends in \".weight\" and is not an embedding table (name the layers with --layers)".into(),
                });
            }
            all
        } else {
            self.select_patterns(patterns)?
        };
        if selection.layers.len() > crate::MAX_LAYERS {
            return Err(Error::TooManyLayers {
                path: self.path.clone(),
                count: selection.layers.len(),
                max: crate::MAX_LAYERS,
            });
        }
        Ok(selection)
    }

    /// The default selection (no patterns), whatever its size: every 2-D float `*.weight`
    /// that is not an embedding table, in model order, and the weights it leaves out.
    pub fn default_selection(&self) -> Selection {
        let mut layers = Vec::new();
        let mut skipped = Vec::new();
        for n in self
            .model_order()
            .into_iter()
            .filter(|n| n.ends_with(".weight"))
        {
            let info = self.get(&n).expect("listed");
            let reason = if !info.is_float() {
                Some(SkipReason::NotFloat(info.dtype))
            } else if info.shape.len() != 2 {
                Some(SkipReason::NotMatrix(info.shape.clone()))
            } else if is_embedding(&n) {
                Some(SkipReason::Embedding)
            } else {
                None
            };
            match reason {
                None => layers.push(n),
                Some(reason) => skipped.push(Skipped { name: n, reason }),
            }
        }
        Selection { layers, skipped }
    }

    /// The tensors `patterns` select, pattern by pattern.
    fn select_patterns(&self, patterns: &[String]) -> Result<Selection> {
        let ordered = self.model_order();
        let mut picked: Vec<String> = Vec::new();
        let mut seen: std::collections::HashSet<&str> = std::collections::HashSet::new();
        if patterns.len() > crate::glob::MAX_PATTERNS {
            return Err(Error::BadPattern {
                pattern: patterns[crate::glob::MAX_PATTERNS].clone(),
                reason: format!(
                    "{} patterns given; at most {} are accepted",
                    patterns.len(),
                    crate::glob::MAX_PATTERNS
                ),
            });
        }
        for pattern in patterns {
            crate::glob::check_pattern(pattern).map_err(|reason| Error::BadPattern {
                pattern: pattern.clone(),
                reason,
            })?;
            let matched: Vec<&String> = ordered.iter().filter(|n| glob_match(pattern, n)).collect();
            if matched.is_empty() {
                return Err(Error::NoMatch {
                    pattern: pattern.clone(),
                    available: self.available(),
                });
            }
            for name in matched {
                let info = self.get(name).expect("listed");
                if !info.is_float() {
                    return Err(Error::UnsupportedDtype {
                        tensor: name.clone(),
                        dtype: format!("{:?}", info.dtype),
                    });
                }
                if info.shape.len() != 2 {
                    return Err(Error::NotMatrix {
                        tensor: name.clone(),
                        shape: info.shape.clone(),
                    });
                }
                if seen.insert(name) {
                    picked.push(name.clone());
                }
            }
        }
        Ok(Selection {
            layers: picked,
            skipped: Vec::new(),
        })
    }

    /// The names of [`Header::select`]'s layers.
    pub fn select_layers(&self, patterns: &[String]) -> Result<Vec<String>> {
        Ok(self.select(patterns)?.layers)
    }

    /// A short list of the tensor names, for error messages.
    pub fn available(&self) -> String {
        let mut names = self.names();
        names.sort_by(|a, b| natural_cmp(a, b));
        match names.len() {
            0 => "the checkpoint holds no tensors".into(),
            n if n <= 8 => format!("tensors: {}", names.join(", ")),
            n => format!("tensors: {}, ... ({n} in all)", names[..8].join(", ")),
        }
    }
}
