//! Text for eie-compress's language models: a UTF-8 file read by byte range ([`Text`]), and
//! a model's `tokenizer.json` read and run by Hugging Face's own `tokenizers` crate
//! ([`Tokenizer`]), so the token ids are those `transformers` gives.

#![deny(missing_docs)]

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// The most bytes of text one command reads: 1 GiB.
pub const MAX_TEXT_BYTES: u64 = 1 << 30;

/// The most bytes a `tokenizer.json` may hold: 256 MiB (the largest vocabularies' are tens
/// of MB).
pub const MAX_TOKENIZER_BYTES: u64 = 256 << 20;

/// What can go wrong reading text or a tokenizer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file that cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file that is not what it should be (not a regular file, too large, not UTF-8, a
    /// range beyond its end).
    #[error("{}: {reason}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A `tokenizer.json` the tokenizers library refuses, or that fails on the text.
    #[error("{}: {reason}", path.display())]
    Tokenizer {
        /// The tokenizer.json.
        path: PathBuf,
        /// The library's reason.
        reason: String,
    },
}

/// The crate's result type.
pub type Result<T> = std::result::Result<T, Error>;

/// A byte range of a text file, its ends moved forward to character boundaries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text {
    /// The file.
    pub path: PathBuf,
    /// The first byte read.
    pub start: u64,
    /// The byte after the last.
    pub end: u64,
    /// The text.
    pub text: String,
}

impl Text {
    /// The byte range `start..end` (open ends: the file's) of the regular file `path`,
    /// checked against its size without reading it.
    pub fn range(path: &Path, range: Option<(Option<u64>, Option<u64>)>) -> Result<(u64, u64)> {
        let file_err = |reason: String| Error::File {
            path: path.to_path_buf(),
            reason,
        };
        let meta = std::fs::metadata(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        if !meta.is_file() {
            return Err(file_err("not a regular file".into()));
        }
        let len = meta.len();
        let (a, b) = range.map_or((0, len), |(a, b)| (a.unwrap_or(0), b.unwrap_or(len)));
        if a > b || b > len {
            return Err(file_err(format!(
                "bytes {a}..{b} asked for, but the file holds {len}"
            )));
        }
        Ok((a, b))
    }

    /// Reads bytes `range` (default: the whole file) of `path`, which must be UTF-8. Each end
    /// of the range that falls inside a character moves forward to the character's end, so
    /// two adjacent ranges split a file exactly. Only the range is read.
    pub fn load(path: &Path, range: Option<(u64, u64)>) -> Result<Self> {
        let file_err = |reason: String| Error::File {
            path: path.to_path_buf(),
            reason,
        };
        let io = |source| Error::Io {
            path: path.to_path_buf(),
            source,
        };
        let (a, b) = Self::range(path, range.map(|(a, b)| (Some(a), Some(b))))?;
        let len = std::fs::metadata(path).map_err(io)?.len();
        // Up to 3 bytes either side, to find the character boundaries.
        let (lo, hi) = (a.saturating_sub(3), (b + 3).min(len));
        if hi - lo > MAX_TEXT_BYTES {
            return Err(file_err(format!(
                "{} bytes asked for; at most {MAX_TEXT_BYTES} are read at once",
                b - a
            )));
        }
        let mut f = std::fs::File::open(path).map_err(io)?;
        f.seek(SeekFrom::Start(lo)).map_err(io)?;
        let mut bytes = Vec::with_capacity((hi - lo) as usize);
        f.take(hi - lo).read_to_end(&mut bytes).map_err(io)?;
        if (bytes.len() as u64) < hi - lo {
            return Err(file_err("shrank while it was read".into()));
        }
        // A continuation byte (10xxxxxx) is inside a character: move past it.
        let forward = |mut i: usize| {
            while i < bytes.len() && bytes[i] & 0xC0 == 0x80 {
                i += 1;
            }
            i
        };
        let at = (a - lo) as usize;
        let s = forward(at);
        // Bytes skipped at the start must end a character that begins before the range.
        if s > at
            && !(0..at)
                .rev()
                .any(|p| std::str::from_utf8(&bytes[p..s]).is_ok())
        {
            return Err(file_err(format!(
                "not UTF-8 text: byte {a} starts no character"
            )));
        }
        let e = if b == len {
            bytes.len()
        } else {
            forward((b - lo) as usize)
        };
        let e = e.max(s);
        let text = String::from_utf8(bytes[s..e].to_vec()).map_err(|err| {
            let at = lo + s as u64 + err.utf8_error().valid_up_to() as u64;
            file_err(format!("not UTF-8 text: byte {at} starts no character"))
        })?;
        Ok(Self {
            path: path.to_path_buf(),
            start: lo + s as u64,
            end: lo + e as u64,
            text,
        })
    }
}

/// A model's tokenizer, as `tokenizer.json` describes it.
pub struct Tokenizer {
    path: PathBuf,
    inner: tokenizers::Tokenizer,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("path", &self.path)
            .field("vocab", &self.vocab_size())
            .finish()
    }
}

impl Tokenizer {
    /// Reads `path` (a `tokenizer.json`).
    pub fn load(path: &Path) -> Result<Self> {
        let meta = std::fs::metadata(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        if !meta.is_file() || meta.len() > MAX_TOKENIZER_BYTES {
            return Err(Error::File {
                path: path.to_path_buf(),
                reason: format!(
                    "expected a regular file of at most {MAX_TOKENIZER_BYTES} bytes, found {}",
                    if meta.is_file() {
                        format!("{} bytes", meta.len())
                    } else {
                        "something else".into()
                    }
                ),
            });
        }
        // No more than the limit, whatever the file has become since its size was read.
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_TOKENIZER_BYTES + 1).read_to_end(&mut bytes))
            .map_err(|source| Error::Io {
                path: path.to_path_buf(),
                source,
            })?;
        if bytes.len() as u64 > MAX_TOKENIZER_BYTES {
            return Err(Error::File {
                path: path.to_path_buf(),
                reason: format!("grew past {MAX_TOKENIZER_BYTES} bytes while it was read"),
            });
        }
        let inner = tokenizers::Tokenizer::from_bytes(&bytes).map_err(|e| Error::Tokenizer {
            path: path.to_path_buf(),
            reason: format!("not a tokenizer the tokenizers library reads: {e}"),
        })?;
        Ok(Self {
            path: path.to_path_buf(),
            inner,
        })
    }

    /// The file it was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Ids it can produce: the vocabulary with its added tokens.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// One past the largest id it can produce (ids need not be consecutive: a model's
    /// vocabulary must hold this many rows, not just [`Tokenizer::vocab_size`]).
    pub fn id_bound(&self) -> usize {
        self.inner
            .get_vocab(true)
            .values()
            .max()
            .map_or(0, |&m| m as usize + 1)
    }

    /// The id of `token` (a special token such as `[MASK]`), if the vocabulary has it.
    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// The ids of `text`, with the special tokens the tokenizer adds when `special` (a
    /// leading `<s>`, BERT's `[CLS]` and `[SEP]`).
    pub fn encode(&self, text: &str, special: bool) -> Result<Vec<u32>> {
        let e = self
            .inner
            .encode(text, special)
            .map_err(|e| Error::Tokenizer {
                path: self.path.clone(),
                reason: format!("cannot encode the text: {e}"),
            })?;
        Ok(e.get_ids().to_vec())
    }

    /// The text of `ids`.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.inner.decode(ids, false).map_err(|e| Error::Tokenizer {
            path: self.path.clone(),
            reason: format!("cannot decode: {e}"),
        })
    }
}

/// The unknown token of [`character_tokenizer`]'s vocabulary (id 0): what a character the
/// training text never had becomes.
pub const UNKNOWN_TOKEN: &str = "<unk>";

/// A character-level `tokenizer.json` for `text`: id 0 is [`UNKNOWN_TOKEN`], then every
/// distinct character of `text` in code-point order, one token each. It is a BPE model with
/// no merges and no pre-tokenizer (so every character is its own token, spaces and newlines
/// included) and a `Fuse` decoder, which `tokenizers` and `transformers` read as they are.
pub fn character_tokenizer(text: &str) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    chars.sort_unstable();
    chars.dedup();
    let mut vocab = serde_json::Map::new();
    vocab.insert(UNKNOWN_TOKEN.into(), 0.into());
    for (i, c) in chars.iter().enumerate() {
        vocab.insert(c.to_string(), (i + 1).into());
    }
    let json = serde_json::json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": [{
            "id": 0, "content": UNKNOWN_TOKEN, "single_word": false, "lstrip": false,
            "rstrip": false, "normalized": false, "special": true
        }],
        "normalizer": null,
        "pre_tokenizer": null,
        "post_processor": null,
        "decoder": {"type": "Fuse"},
        "model": {
            "type": "BPE", "dropout": null, "unk_token": UNKNOWN_TOKEN,
            "continuing_subword_prefix": null, "end_of_word_suffix": null, "fuse_unk": false,
            "byte_fallback": false, "ignore_merges": false, "vocab": vocab, "merges": []
        }
    });
    serde_json::to_string_pretty(&json).expect("a JSON value serialises")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_move_to_character_boundaries_and_split_a_file_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.txt");
        // "a—b": the em dash is bytes 1..4.
        std::fs::write(&p, "a\u{2014}b\ncd").unwrap();
        let whole = Text::load(&p, None).unwrap();
        assert_eq!(whole.text, "a\u{2014}b\ncd");
        for cut in 0..=8u64 {
            let a = Text::load(&p, Some((0, cut))).unwrap();
            let b = Text::load(&p, Some((cut, 8))).unwrap();
            assert_eq!(format!("{}{}", a.text, b.text), whole.text, "cut at {cut}");
            assert_eq!(a.end, b.start);
        }
        assert_eq!(Text::load(&p, Some((2, 3))).unwrap().text, "");
        let e = Text::load(&p, Some((0, 9))).unwrap_err().to_string();
        assert!(
            e.contains("t.txt") && e.contains("0..9") && e.contains("holds 8"),
            "{e}"
        );
        // Stray continuation bytes where a range starts are not a character's end.
        std::fs::write(&p, b"\x80\x80\x80abc").unwrap();
        let e = Text::load(&p, Some((1, 6))).unwrap_err().to_string();
        assert!(e.contains("byte 1 starts no character"), "{e}");
        std::fs::write(&p, b"ok\xff\xfe").unwrap();
        let e = Text::load(&p, None).unwrap_err().to_string();
        assert!(e.contains("not UTF-8") && e.contains("byte 2"), "{e}");
        assert!(Text::load(dir.path(), None).is_err());
    }

    #[test]
    fn a_tokenizer_that_does_not_parse_is_refused_by_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("tokenizer.json");
        std::fs::write(&p, "{\"model\": 3}").unwrap();
        let e = Tokenizer::load(&p).unwrap_err().to_string();
        assert!(
            e.contains("tokenizer.json") && e.contains("not a tokenizer"),
            "{e}"
        );
        assert!(Tokenizer::load(dir.path()).is_err());
    }

    #[test]
    fn a_character_tokenizer_round_trips_its_text_and_maps_strangers_to_unknown() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("tokenizer.json");
        let text = "To be, or not\n to be \u{2014} that";
        std::fs::write(&p, character_tokenizer(text)).unwrap();
        let t = Tokenizer::load(&p).unwrap();
        let ids = t.encode(text, true).unwrap();
        assert_eq!(ids.len(), text.chars().count());
        assert_eq!(t.decode(&ids).unwrap(), text);
        // 13 distinct characters and the unknown token.
        assert_eq!(t.vocab_size(), 14);
        assert_eq!(t.token_id(UNKNOWN_TOKEN), Some(0));
        assert_eq!(
            t.encode("tz", true).unwrap(),
            vec![t.token_id("t").unwrap(), 0]
        );
        // The same text gives the same bytes.
        assert_eq!(character_tokenizer(text), character_tokenizer(text));
    }
}
