//! An encoder's sentence embeddings, and how closely a compressed model's follow the float
//! model's: the measure of an encoder without a masked-LM head.
//!
//! The sentences are a text's distinct lines (one sentence a line, as sentence-embedding
//! datasets store them; [`sentences`]), each run alone as `[CLS] tokens [SEP]` and pooled as
//! the folder's sentence-transformers files say ([`SentenceConfig`]: the mean of every
//! token's last hidden state by default, or `[CLS]`'s). Against the reference model's
//! embeddings of the same sentences ([`Fidelity`]): the mean cosine of each sentence's two
//! embeddings, Spearman's rank correlation of all pairwise cosines, and top-1 retrieval (a
//! stage's embedding of a sentence, as a query, finds the reference's embedding of the same
//! sentence first among all of them).

use std::collections::HashSet;
use std::path::{Component, Path, PathBuf};

use faer::MatRef;
use serde_json::Value;

use crate::config::{Fields, read_bounded};
use crate::error::{Error, Result};
use crate::linear::{Linear, product};
use crate::model::Model;

/// The most sentences compared: their pairwise cosines are held (a Gram matrix, the
/// pairs' cosines and their ranks), about 270 MB at this many.
pub const MAX_SENTENCES: usize = 4096;

/// The fewest sentences a rank correlation of pairwise cosines takes (three pairs).
pub const MIN_SENTENCES: usize = 3;

/// How a sentence's token states become one vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pooling {
    /// The mean of every token's last hidden state, `[CLS]` and `[SEP]` included
    /// (sentence-transformers' `pooling_mode_mean_tokens`).
    Mean,
    /// The `[CLS]` token's (`pooling_mode_cls_token`).
    Cls,
}

impl Pooling {
    /// In words.
    pub fn name(&self) -> &'static str {
        match self {
            Pooling::Mean => "mean",
            Pooling::Cls => "cls",
        }
    }
}

/// What a folder's sentence-transformers files say about its embeddings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentenceConfig {
    /// The pooling.
    pub pooling: Pooling,
    /// The most tokens a sentence is embedded with (`sentence_bert_config.json`'s
    /// `max_seq_length`), when said.
    pub max_seq_length: Option<usize>,
    /// The file the pooling was read from (`None`: no `modules.json`, mean pooling).
    pub source: Option<PathBuf>,
}

const TRANSFORMER: &str = "sentence_transformers.models.Transformer";
const POOLING: &str = "sentence_transformers.models.Pooling";
const NORMALIZE: &str = "sentence_transformers.models.Normalize";

/// The pooling modes of a sentence-transformers `Pooling` config; only the first two are
/// implemented.
const MODES: [&str; 6] = [
    "pooling_mode_mean_tokens",
    "pooling_mode_cls_token",
    "pooling_mode_max_tokens",
    "pooling_mode_mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens",
    "pooling_mode_lasttoken",
];

impl SentenceConfig {
    /// Reads `dir`'s `modules.json` (a Transformer module at the folder itself, one
    /// `Pooling` module, optionally `Normalize`, which leaves cosines as they are), the
    /// pooling's `config.json` (one mode, mean or cls, over `hidden` values) and
    /// `sentence_bert_config.json`. Without `modules.json`: mean pooling, as
    /// sentence-transformers builds for a plain Hugging Face model.
    pub fn of_folder(dir: &Path, hidden: usize) -> Result<Self> {
        let max_seq_length = max_seq_length(dir)?;
        let modules = dir.join("modules.json");
        if !modules.exists() {
            return Ok(Self {
                pooling: Pooling::Mean,
                max_seq_length,
                source: None,
            });
        }
        let text = read_bounded(&modules)?;
        let json = |reason: String| Error::Json {
            path: modules.clone(),
            reason,
        };
        let value: Value =
            serde_json::from_slice(&text).map_err(|e| json(format!("not JSON: {e}")))?;
        let Value::Array(list) = value else {
            return Err(json("expected a JSON array of modules".into()));
        };
        let mut pooling = None;
        for (i, m) in list.iter().enumerate() {
            let field = |name: &str, reason: String| Error::Field {
                path: modules.clone(),
                field: format!("[{i}].{name}"),
                reason,
            };
            let text = |name: &str| match m.get(name) {
                Some(Value::String(s)) => Ok(s.as_str()),
                None if name == "path" => Ok(""),
                Some(v) => Err(field(name, format!("expected a string, got {v}"))),
                None => Err(field(name, "missing; expected a string".into())),
            };
            let (kind, path) = (text("type")?, text("path")?);
            // sentence-transformers runs its modules in order: the transformer first.
            if (i == 0) != (kind == TRANSFORMER) {
                return Err(field(
                    "type",
                    format!("\"{kind}\": the first module, and only it, must be the {TRANSFORMER}"),
                ));
            }
            match kind {
                TRANSFORMER if path.is_empty() => {}
                TRANSFORMER => {
                    return Err(field(
                        "path",
                        format!(
                            "\"{path}\": only a Transformer module that is the folder itself is implemented"
                        ),
                    ));
                }
                POOLING if path.is_empty() => {
                    return Err(field(
                        "path",
                        "missing or empty; a Pooling module's config.json lies in a folder of its own".into(),
                    ));
                }
                POOLING if pooling.is_none() => pooling = Some(path.to_string()),
                POOLING => return Err(field("type", "a second Pooling module".into())),
                NORMALIZE => {}
                _ => {
                    return Err(Error::Unsupported {
                        path: modules.clone(),
                        field: format!("[{i}].type"),
                        value: format!("\"{kind}\""),
                        reason: "only Transformer, Pooling and Normalize modules are implemented"
                            .into(),
                    });
                }
            }
        }
        let Some(sub) = pooling else {
            return Err(json(format!("no {POOLING} module")));
        };
        if !Path::new(&sub)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
        {
            return Err(Error::Field {
                path: modules.clone(),
                field: "path".into(),
                reason: format!(
                    "\"{sub}\": a Pooling module's folder must lie inside the model folder"
                ),
            });
        }
        let source = dir.join(&sub).join("config.json");
        let f = Fields::parse(&source, &read_bounded(&source)?)?;
        let width = f.size("word_embedding_dimension", Some(hidden))?;
        if width != hidden {
            return Err(f.field(
                "word_embedding_dimension",
                format!("{width}, but the model's width (config.json hidden_size) is {hidden}"),
            ));
        }
        let mut on = Vec::new();
        for mode in MODES {
            if f.boolean(mode, false)? {
                on.push(mode);
            }
        }
        let pooling = match on.as_slice() {
            ["pooling_mode_mean_tokens"] => Pooling::Mean,
            ["pooling_mode_cls_token"] => Pooling::Cls,
            [] => return Err(f.field(MODES[0], "no pooling mode is true".into())),
            [one] => {
                return Err(f.unsupported(
                    one,
                    &Value::Bool(true),
                    "only mean and cls pooling are implemented",
                ));
            }
            [_, two, ..] => {
                return Err(f.unsupported(
                    two,
                    &Value::Bool(true),
                    "one pooling mode at a time is implemented (several are concatenated)",
                ));
            }
        };
        Ok(Self {
            pooling,
            max_seq_length,
            source: Some(source),
        })
    }
}

/// `sentence_bert_config.json`'s `max_seq_length`, when the file is there; a lower-casing it
/// asks for is refused (the tokenizer is run as `tokenizer.json` says).
fn max_seq_length(dir: &Path) -> Result<Option<usize>> {
    let path = dir.join("sentence_bert_config.json");
    if !path.exists() {
        return Ok(None);
    }
    let f = Fields::parse(&path, &read_bounded(&path)?)?;
    if f.boolean("do_lower_case", false)? {
        return Err(f.unsupported(
            "do_lower_case",
            &Value::Bool(true),
            "only false is implemented (tokenizer.json's own normalizer is applied)",
        ));
    }
    match f.get("max_seq_length") {
        None => Ok(None),
        Some(_) => Ok(Some(f.size("max_seq_length", None)?)),
    }
}

/// A text's sentences, as token ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sentences {
    /// The sentences compared, in the text's order.
    pub ids: Vec<Vec<u32>>,
    /// Lines that held a token.
    pub lines: usize,
    /// Of them, distinct (after cutting).
    pub distinct: usize,
    /// Sentences compared that were cut to the window.
    pub cut: usize,
}

/// The sentences of a text's lines (each line's token ids): a line cut to its first
/// `most` tokens, an empty line dropped, a line whose (cut) tokens equal an earlier one's
/// dropped (two equal sentences would make retrieval a coin toss), the first
/// [`MAX_SENTENCES`] kept.
pub fn sentences(lines: impl IntoIterator<Item = Vec<u32>>, most: usize) -> Sentences {
    let mut seen = HashSet::new();
    let mut out = Sentences {
        ids: Vec::new(),
        lines: 0,
        distinct: 0,
        cut: 0,
    };
    for mut line in lines {
        if line.is_empty() {
            continue;
        }
        out.lines += 1;
        let long = line.len() > most;
        line.truncate(most);
        if !seen.insert(line.clone()) {
            continue;
        }
        out.distinct += 1;
        if out.ids.len() < MAX_SENTENCES {
            out.cut += usize::from(long);
            out.ids.push(line);
        }
    }
    out
}

/// Sentences' embeddings, `[sentences, dim]` row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Pooled {
    /// Values a sentence.
    pub dim: usize,
    /// The embeddings.
    pub values: Vec<f32>,
    /// Tokens run through the model, the specials included.
    pub run: usize,
}

impl Pooled {
    /// Sentences embedded.
    pub fn len(&self) -> usize {
        self.values.len() / self.dim.max(1)
    }

    /// None embedded.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

impl<L: Linear> Model<L> {
    /// Each sentence run alone as `[cls] sentence [sep]` and pooled.
    pub fn pooled(
        &self,
        sentences: &[Vec<u32>],
        cls: u32,
        sep: u32,
        pooling: Pooling,
    ) -> Result<Pooled> {
        if self.config.causal() {
            return Err(Error::Input {
                reason: format!(
                    "pooled sentence embeddings are measured on encoders; {} is a causal language model (measure its perplexity)",
                    self.config.model_type
                ),
            });
        }
        let h = self.config.hidden;
        let mut values = Vec::with_capacity(sentences.len() * h);
        let mut run = 0;
        for (i, s) in sentences.iter().enumerate() {
            crate::perplexity::check_ids(s, self.config.vocab).map_err(|e| Error::Input {
                reason: format!("sentence {i}: {e}"),
            })?;
            let mut input = Vec::with_capacity(s.len() + 2);
            input.push(cls);
            input.extend_from_slice(s);
            input.push(sep);
            let out = self.forward(&input)?;
            let t = input.len();
            let v: Vec<f32> = match pooling {
                Pooling::Cls => out.hidden[..h].to_vec(),
                Pooling::Mean => (0..h)
                    .map(|j| {
                        let sum: f64 = (0..t).map(|p| out.hidden[p * h + j] as f64).sum();
                        (sum / t as f64) as f32
                    })
                    .collect(),
            };
            if v.iter().any(|x| !x.is_finite()) {
                return Err(Error::Input {
                    reason: format!(
                        "the model's embedding of sentence {i} is not finite (its activations overflow f32)"
                    ),
                });
            }
            values.extend(v);
            run += t;
        }
        Ok(Pooled {
            dim: h,
            values,
            run,
        })
    }
}

/// How closely a stage's sentence embeddings follow the reference's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fidelity {
    /// Sentences compared.
    pub sentences: usize,
    /// Tokens the stage ran, the specials included.
    pub run: usize,
    /// The mean over sentences of the cosine between a sentence's two embeddings.
    pub mean_cosine: f64,
    /// Spearman's rank correlation between the pairwise cosines of the reference's
    /// embeddings and the stage's (every pair of sentences; ties ranked by their mean rank;
    /// 0 when either side's cosines are all equal).
    pub rank_correlation: f64,
    /// Sentences whose stage embedding finds the reference's embedding of the same sentence
    /// first, by cosine, among all the reference's (the first largest on a tie).
    pub top1: usize,
}

impl Fidelity {
    /// Compares `stage` with `reference` (the same sentences, the same width). An embedding
    /// of norm 0 has cosine 0 with everything (as `torch.nn.functional.normalize` makes it).
    pub fn between(reference: &Pooled, stage: &Pooled) -> Result<Self> {
        let (n, d) = (reference.len(), reference.dim);
        if stage.dim != d || stage.len() != n {
            return Err(Error::Input {
                reason: format!(
                    "{} embeddings of {} values to compare with {n} of {d}",
                    stage.len(),
                    stage.dim
                ),
            });
        }
        if n < MIN_SENTENCES {
            return Err(Error::Input {
                reason: format!(
                    "{n} sentences: comparing pairwise similarities takes at least {MIN_SENTENCES}"
                ),
            });
        }
        let r = normalized(&reference.values, d);
        let s = normalized(&stage.values, d);
        let mean_cosine = (0..n)
            .map(|i| dot(&r[i * d..(i + 1) * d], &s[i * d..(i + 1) * d]))
            .sum::<f64>()
            / n as f64;
        let rm = MatRef::from_row_major_slice(&r, n, d);
        let sm = MatRef::from_row_major_slice(&s, n, d);
        let cross = product(sm, rm.transpose(), 1.0);
        let top1 = (0..n)
            .filter(|&i| {
                let row = &cross[i * n..(i + 1) * n];
                let first = row
                    .iter()
                    .enumerate()
                    .fold(
                        (0, f32::NEG_INFINITY),
                        |m, (j, &v)| {
                            if v > m.1 { (j, v) } else { m }
                        },
                    );
                first.0 == i
            })
            .count();
        drop(cross);
        let upper = |g: Vec<f32>| -> Vec<f32> {
            (0..n)
                .flat_map(|i| g[i * n + i + 1..(i + 1) * n].to_vec())
                .collect()
        };
        let pr = upper(product(rm, rm.transpose(), 1.0));
        let ps = upper(product(sm, sm.transpose(), 1.0));
        Ok(Self {
            sentences: n,
            run: stage.run,
            mean_cosine,
            rank_correlation: spearman(&pr, &ps),
            top1,
        })
    }

    /// The fraction of sentences retrieved first.
    pub fn top1_accuracy(&self) -> f64 {
        self.top1 as f64 / self.sentences.max(1) as f64
    }
}

/// Rows of `v` scaled to norm 1 (a row of norm 0 stays 0).
fn normalized(v: &[f32], d: usize) -> Vec<f32> {
    v.chunks(d)
        .flat_map(|row| {
            let norm = dot(row, row).sqrt();
            row.iter().map(move |&x| {
                if norm > 0.0 {
                    (x as f64 / norm) as f32
                } else {
                    0.0
                }
            })
        })
        .collect()
}

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum()
}

/// 1-based ranks of `x`, tied values at their mean rank.
fn ranks(x: &[f32]) -> Vec<f64> {
    let mut order: Vec<u32> = (0..x.len() as u32).collect();
    order.sort_unstable_by(|&a, &b| x[a as usize].total_cmp(&x[b as usize]));
    let mut rank = vec![0.0; x.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i + 1;
        while j < order.len() && x[order[j] as usize] == x[order[i] as usize] {
            j += 1;
        }
        // Positions i..j (0-based) share the mean of ranks i+1..=j.
        let mean = (i + j + 1) as f64 / 2.0;
        for &k in &order[i..j] {
            rank[k as usize] = mean;
        }
        i = j;
    }
    rank
}

/// Spearman's rank correlation: Pearson's of the ranks (0 when either is constant).
fn spearman(x: &[f32], y: &[f32]) -> f64 {
    let (rx, ry) = (ranks(x), ranks(y));
    let mean = (x.len() + 1) as f64 / 2.0;
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in rx.iter().zip(&ry) {
        let (a, b) = (a - mean, b - mean);
        sxy += a * b;
        sxx += a * a;
        syy += b * b;
    }
    if sxx == 0.0 || syy == 0.0 {
        0.0
    } else {
        sxy / (sxx * syy).sqrt()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pooled(rows: &[&[f32]]) -> Pooled {
        Pooled {
            dim: rows[0].len(),
            values: rows.concat(),
            run: 0,
        }
    }

    #[test]
    fn ranks_share_ties_and_spearman_is_pearson_of_ranks() {
        assert_eq!(ranks(&[3.0, 1.0, 3.0, 2.0]), vec![3.5, 1.0, 3.5, 2.0]);
        // scipy.stats.spearmanr([1, 2, 3, 4, 5], [5, 6, 7, 8, 7]) = 0.8207826816681233
        let r = spearman(&[1.0, 2.0, 3.0, 4.0, 5.0], &[5.0, 6.0, 7.0, 8.0, 7.0]);
        assert!((r - 0.820_782_681_668_123_3).abs() < 1e-12, "{r}");
        assert_eq!(spearman(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]), -1.0);
        assert_eq!(spearman(&[1.0, 2.0, 3.0], &[2.0, 2.0, 2.0]), 0.0);
    }

    #[test]
    fn a_stage_equal_to_the_reference_is_perfect_and_a_scaled_one_too() {
        let r = pooled(&[
            &[1.0, 0.0, 0.5],
            &[0.0, 1.0, 0.2],
            &[0.3, 0.3, 1.0],
            &[1.0, 1.0, 0.0],
        ]);
        let f = Fidelity::between(&r, &r).unwrap();
        assert_eq!((f.sentences, f.top1), (4, 4));
        assert!((f.mean_cosine - 1.0).abs() < 1e-6 && (f.rank_correlation - 1.0).abs() < 1e-9);
        // Cosines do not see a row's length.
        let mut s = r.clone();
        s.values.iter_mut().for_each(|v| *v *= 3.0);
        assert_eq!(Fidelity::between(&r, &s).unwrap().top1, 4);
    }

    #[test]
    fn swapped_and_zero_embeddings_are_counted_as_misses() {
        let r = pooled(&[&[1.0, 0.0], &[0.0, 1.0], &[1.0, 1.0]]);
        let s = pooled(&[&[0.0, 1.0], &[1.0, 0.0], &[0.0, 0.0]]);
        let f = Fidelity::between(&r, &s).unwrap();
        // Rows 0 and 1 find each other's reference; row 2 (norm 0) finds row 0 first.
        assert_eq!(f.top1, 0);
        assert!(f.mean_cosine.abs() < 1e-9, "{}", f.mean_cosine);
        let e = Fidelity::between(&r, &pooled(&[&[1.0, 0.0], &[0.0, 1.0]])).unwrap_err();
        assert!(e.to_string().contains("2 embeddings"), "{e}");
    }

    #[test]
    fn sentences_are_distinct_cut_lines_in_order() {
        let s = sentences(
            vec![
                vec![1, 2, 3],
                vec![],
                vec![1, 2, 4],
                vec![5],
                vec![1, 2],
                vec![5],
            ],
            2,
        );
        assert_eq!(s.ids, vec![vec![1, 2], vec![5]]);
        assert_eq!((s.lines, s.distinct, s.cut), (5, 2, 1));
        let many = sentences((0..MAX_SENTENCES as u32 + 10).map(|i| vec![i]), 4);
        assert_eq!(
            (many.ids.len(), many.distinct),
            (MAX_SENTENCES, MAX_SENTENCES + 10)
        );
    }

    #[test]
    fn sentence_transformers_files_are_read_strictly() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let got = SentenceConfig::of_folder(d, 8).unwrap();
        assert_eq!((got.pooling, got.max_seq_length), (Pooling::Mean, None));
        std::fs::write(
            d.join("modules.json"),
            r#"[{"idx":0,"name":"0","path":"","type":"sentence_transformers.models.Transformer"},
                {"idx":1,"name":"1","path":"1_Pooling","type":"sentence_transformers.models.Pooling"},
                {"idx":2,"name":"2","path":"2_Normalize","type":"sentence_transformers.models.Normalize"}]"#,
        )
        .unwrap();
        std::fs::create_dir(d.join("1_Pooling")).unwrap();
        let pool = |cls: bool, mean: bool, max: bool| {
            std::fs::write(
                d.join("1_Pooling/config.json"),
                format!(
                    r#"{{"word_embedding_dimension": 8, "pooling_mode_cls_token": {cls}, "pooling_mode_mean_tokens": {mean}, "pooling_mode_max_tokens": {max}}}"#
                ),
            )
            .unwrap();
            SentenceConfig::of_folder(d, 8)
        };
        assert_eq!(pool(true, false, false).unwrap().pooling, Pooling::Cls);
        assert_eq!(pool(false, true, false).unwrap().pooling, Pooling::Mean);
        let e = pool(false, false, true).unwrap_err().to_string();
        assert!(
            e.contains("pooling_mode_max_tokens") && e.contains("mean and cls"),
            "{e}"
        );
        let e = pool(true, true, false).unwrap_err().to_string();
        assert!(e.contains("one pooling mode at a time"), "{e}");
        let e = SentenceConfig::of_folder(d, 16).unwrap_err().to_string();
        assert!(
            e.contains("word_embedding_dimension") && e.contains("16"),
            "{e}"
        );
        std::fs::write(
            d.join("sentence_bert_config.json"),
            r#"{"max_seq_length": 128, "do_lower_case": false}"#,
        )
        .unwrap();
        pool(false, true, false).unwrap();
        assert_eq!(
            SentenceConfig::of_folder(d, 8).unwrap().max_seq_length,
            Some(128)
        );
        std::fs::write(
            d.join("modules.json"),
            r#"[{"path":"","type":"sentence_transformers.models.Transformer"},
                {"path":"../1_Pooling","type":"sentence_transformers.models.Pooling"}]"#,
        )
        .unwrap();
        let e = SentenceConfig::of_folder(d, 8).unwrap_err().to_string();
        assert!(e.contains("inside the model folder"), "{e}");
        std::fs::write(
            d.join("modules.json"),
            r#"[{"path":"","type":"sentence_transformers.models.Transformer"},
                {"path":"2_Dense","type":"sentence_transformers.models.Dense"}]"#,
        )
        .unwrap();
        let e = SentenceConfig::of_folder(d, 8).unwrap_err().to_string();
        assert!(e.contains("[1].type") && e.contains("Dense"), "{e}");
        for (modules, says) in [
            (
                r#"[{"path":"1_Pooling","type":"sentence_transformers.models.Pooling"}]"#,
                "first module",
            ),
            (
                r#"[{"path":"","type":"sentence_transformers.models.Transformer"},
                    {"type":"sentence_transformers.models.Pooling"}]"#,
                "missing or empty",
            ),
        ] {
            std::fs::write(d.join("modules.json"), modules).unwrap();
            let e = SentenceConfig::of_folder(d, 8).unwrap_err().to_string();
            assert!(e.contains(says), "{e}");
        }
    }
}
