//! Recognising the files eie-compress wrote: `--force` replaces those, and never a foreign
//! file, a link, a folder given as a file, or a special file (device, FIFO, socket).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::Path;

use eie_format::BUNDLE_FILE;
use eie_images::{IMAGES_DIR, MANIFEST_FILE};

use super::{PRUNED_FILE, QUANTIZED_FILE, REPORT_FILE, REPORT_HTML_FILE};
use crate::error::{Error, Result, io};

/// The kind of a single output file, by which an existing one is recognised as written by
/// eie-compress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputKind {
    /// A safetensors checkpoint whose `__metadata__` has the key `eie-compress` or a key
    /// starting with `eie.` (what `train`, `unpack` and the dense checkpoints write).
    Safetensors,
    /// A text file that starts with these bytes (a CSV's header row, `<svg`, a comment).
    Text(&'static str),
    /// A file with exactly these bytes (the demo's shipped model and recipe).
    Exact(&'static [u8]),
}

/// Largest manifest, report or safetensors header read to recognise a file.
pub(crate) const MAX_SNIFF: u64 = 256 << 20;

fn refuse<T>(reason: String) -> Result<T> {
    Err(Error::Output { reason })
}

/// Checks that the file output `path` may be written: nothing there, or (with `force`) a
/// regular file of `kind` that eie-compress wrote.
pub fn check_replaceable(path: &Path, force: bool, kind: OutputKind) -> Result<()> {
    let meta = match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io("cannot inspect", path)(e)),
        Ok(m) => m,
    };
    let t = meta.file_type();
    if t.is_dir() {
        return refuse(format!(
            "{} is a folder, expected a file path",
            path.display()
        ));
    }
    if t.is_symlink() {
        return refuse(format!(
            "{} is a symbolic link; eie-compress replaces only files it wrote, so remove the link or write elsewhere",
            path.display()
        ));
    }
    if !t.is_file() {
        return refuse(format!(
            "{} is a special file (a device, FIFO or socket); eie-compress never replaces one",
            path.display()
        ));
    }
    if !force {
        return refuse(format!(
            "{} already exists; use --force to replace it",
            path.display()
        ));
    }
    if !recognised(path, kind) {
        return refuse(format!(
            "{} exists and was not written by eie-compress ({}); it is not replaced, even with --force",
            path.display(),
            match kind {
                OutputKind::Safetensors =>
                    "not a safetensors file with eie-compress's metadata".into(),
                OutputKind::Text(start) => format!("it does not start with {start:?}"),
                OutputKind::Exact(_) => "it is not the file eie-compress writes there".into(),
            }
        ));
    }
    Ok(())
}

/// Whether the regular file `path` is a file of `kind` that eie-compress wrote.
pub(crate) fn recognised(path: &Path, kind: OutputKind) -> bool {
    match kind {
        OutputKind::Text(start) => {
            let mut head = vec![0u8; start.len()];
            std::fs::File::open(path)
                .and_then(|mut f| f.read_exact(&mut head))
                .is_ok_and(|()| head == start.as_bytes())
        }
        OutputKind::Exact(bytes) => {
            std::fs::metadata(path).is_ok_and(|m| m.len() == bytes.len() as u64)
                && std::fs::read(path).is_ok_and(|b| b == bytes)
        }
        OutputKind::Safetensors => safetensors_metadata(path).is_some_and(|meta| {
            meta.keys()
                .any(|k| k == "eie-compress" || k.starts_with("eie."))
        }),
    }
}

/// The `__metadata__` of a safetensors file, if it is one (header read, bounded).
fn safetensors_metadata(path: &Path) -> Option<BTreeMap<String, String>> {
    let mut f = std::fs::File::open(path).ok()?;
    let mut len = [0u8; 8];
    f.read_exact(&mut len).ok()?;
    let len = u64::from_le_bytes(len);
    if len > MAX_SNIFF {
        return None;
    }
    let mut header = Vec::new();
    f.take(len).read_to_end(&mut header).ok()?;
    let json: serde_json::Value = serde_json::from_slice(&header).ok()?;
    let meta = json.get("__metadata__")?.as_object()?;
    Some(
        meta.iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
            .collect(),
    )
}

/// The entries of an output folder's eie-compress names that `--force` may not replace,
/// each with the reason: links, special files, files that are not what this tool writes
/// under that name, and anything under `images/` that `manifest.json` does not list.
pub(crate) fn foreign_entries(out: &Path) -> Vec<String> {
    let mut foreign = Vec::new();
    let listed = listed_images(out);
    for name in super::OUTPUT_NAMES {
        let path = out.join(name);
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        let t = meta.file_type();
        let why = if t.is_symlink() {
            Some("a symbolic link".to_string())
        } else if name == IMAGES_DIR {
            if t.is_dir() {
                let ours = |rel: &str| listed.as_ref().is_some_and(|l| l.contains(rel));
                foreign.extend(
                    unlisted(&path, IMAGES_DIR, &ours)
                        .into_iter()
                        .map(|(f, why)| format!("{f} ({why})")),
                );
                None
            } else {
                Some("not a folder".into())
            }
        } else if !t.is_file() {
            Some(if t.is_dir() {
                "a folder".into()
            } else {
                "a special file".into()
            })
        } else {
            let ours = match name {
                BUNDLE_FILE => starts_with(&path, &eie_format::MAGIC),
                MANIFEST_FILE => listed.is_some(),
                REPORT_FILE => report_is_ours(&path),
                REPORT_HTML_FILE => recognised(&path, super::REPORT_HTML),
                PRUNED_FILE | QUANTIZED_FILE => recognised(&path, OutputKind::Safetensors),
                _ => false,
            };
            (!ours).then(|| "not a file eie-compress writes under this name".into())
        };
        if let Some(why) = why {
            foreign.push(format!("{name} ({why})"));
        }
    }
    foreign
}

/// Hugging Face files `train` does not write: a language folder holding one is refused by
/// `--force`, since it would stay beside the new model and change how `transformers` reads
/// it (a `special_tokens_map.json` adding tokens, a shard index pointing elsewhere).
const OTHER_MODEL_FILES: [&str; 8] = [
    "special_tokens_map.json",
    "added_tokens.json",
    "generation_config.json",
    "model.safetensors.index.json",
    "vocab.json",
    "merges.txt",
    "tokenizer.model",
    "pytorch_model.bin",
];

/// The `model.safetensors` metadata key under which `train` records the SHA-256 of the
/// language folder's file `name`.
pub fn language_hash_key(name: &str) -> String {
    format!("eie.sha256.{name}")
}

/// The SHA-256 (hex) of `path`'s bytes, if it is a regular file of at most 256 MiB.
pub fn file_sha256(path: &Path) -> Option<String> {
    use sha2::Digest;
    let bytes = eie_format::files::read_regular(path, MAX_SNIFF).ok()?;
    Some(
        sha2::Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
    )
}

/// The entries of a language model folder that `--force` may not replace: any of its names
/// (`LANGUAGE_NAMES`) that is a link or not a regular file, a `model.safetensors` without
/// eie-compress's metadata, another of its files whose SHA-256 is not the one that
/// `model.safetensors` records for it (a file the user wrote or changed), and any Hugging
/// Face file `train` does not write.
pub(crate) fn foreign_language_entries(out: &Path) -> Vec<String> {
    let model = out.join("model.safetensors");
    let meta = safetensors_metadata(&model)
        .filter(|_| recognised(&model, OutputKind::Safetensors))
        .unwrap_or_default();
    let mut foreign = Vec::new();
    for name in super::LANGUAGE_NAMES {
        let path = out.join(name);
        let Ok(m) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        let why = if !m.file_type().is_file() {
            "not a regular file"
        } else if name == "model.safetensors" {
            if meta.is_empty() {
                "not a checkpoint eie-compress wrote"
            } else {
                continue;
            }
        } else if meta
            .get(&language_hash_key(name))
            .is_some_and(|h| Some(h) == file_sha256(&path).as_ref())
        {
            continue;
        } else {
            "not the file eie-compress wrote beside its model.safetensors"
        };
        foreign.push(format!("{name} ({why})"));
    }
    for name in OTHER_MODEL_FILES {
        if std::fs::symlink_metadata(out.join(name)).is_ok() {
            foreign.push(format!(
                "{name} (a file train does not write, which would stay beside the new model)"
            ));
        }
    }
    foreign
}

/// Every image path `out/manifest.json` lists, if it is an eie-compress manifest.
fn listed_images(out: &Path) -> Option<BTreeSet<String>> {
    let manifest = eie_images::read_manifest(out).ok()?;
    Some(
        manifest
            .layers
            .iter()
            .flat_map(|l| l.files.iter().map(|f| f.path.clone()))
            .collect(),
    )
}

/// Every entry under the folder `dir` (shown as `rel`, `/`-separated) that is not a regular
/// file `listed` accepts, with the reason, sorted: a link (which may lead anywhere), a special
/// file, an unlisted file, a folder that cannot be listed; `dir` itself when it is not a real
/// folder. What `--force` may not delete, and what `verify` refuses under `images/`.
pub fn unlisted(
    dir: &Path,
    rel: &str,
    listed: &dyn Fn(&str) -> bool,
) -> Vec<(String, &'static str)> {
    let mut extra = Vec::new();
    if !std::fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir()) {
        extra.push((rel.to_string(), "not a folder"));
    } else {
        walk(dir, rel, listed, &mut extra);
    }
    extra.sort();
    extra
}

fn walk(
    dir: &Path,
    rel: &str,
    listed: &dyn Fn(&str) -> bool,
    extra: &mut Vec<(String, &'static str)>,
) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        extra.push((rel.to_string(), "cannot be listed"));
        return;
    };
    for entry in entries.flatten() {
        let rel = format!("{rel}/{}", entry.file_name().to_string_lossy());
        match entry.file_type() {
            Ok(t) if t.is_dir() => walk(&entry.path(), &rel, listed, extra),
            Ok(t) if t.is_file() => {
                if !listed(&rel) {
                    extra.push((rel, "not listed in manifest.json"));
                }
            }
            Ok(t) if t.is_symlink() => extra.push((rel, "a symbolic link")),
            _ => extra.push((rel, "a special file")),
        }
    }
}

fn starts_with(path: &Path, magic: &[u8]) -> bool {
    let mut head = vec![0u8; magic.len()];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok_and(|()| head == magic)
}

fn report_is_ours(path: &Path) -> bool {
    eie_format::files::read_regular(path, MAX_SNIFF)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v.get("tool_version")?.as_str().map(str::to_string))
        .is_some_and(|v| v.starts_with("eie-compress"))
}
