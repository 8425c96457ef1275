//! Outputs that never destroy an input: every output is checked against what the command
//! reads ([`Inputs`]); `--force` replaces only eie-compress's own files ([`owned`]); an
//! output folder is locked, filled in a staging folder and published by renames with a
//! journal ([`staging`]); a single file goes through a temporary file beside it and a
//! rename ([`write_file`]). docs/reliability.md states the promises.

use std::path::{Path, PathBuf};

use eie_format::{BUNDLE_FILE, Bundle};

use crate::error::{Error, Result, io};

mod inputs;
pub mod owned;
pub mod staging;

pub use inputs::Inputs;
pub use owned::{OutputKind, check_replaceable, file_sha256, language_hash_key};
pub use staging::{CRASH_AT_ENV, Layout, Lock, Staging, check_out_dir, recover};

/// File name of the checkpoint with every layer pruned (written on request).
pub const PRUNED_FILE: &str = "pruned.safetensors";
/// File name of the checkpoint with every layer pruned and weight-shared (on request).
pub const QUANTIZED_FILE: &str = "quantized.safetensors";
/// File name of compress's report.
pub const REPORT_FILE: &str = "report.json";
/// File name of compress's report as a page (crates/html).
pub const REPORT_HTML_FILE: &str = "report.html";
/// How a report page starts (compress's `report.html`, and the `report` command's), by
/// which `--force` knows one.
pub const REPORT_HTML: OutputKind = OutputKind::Text(eie_html::MARK);

/// Every top-level name an eie-compress output folder may hold. Publishing a new output
/// replaces all of them, so no file of an earlier run survives beside a new model.eie.
pub const OUTPUT_NAMES: [&str; 7] = [
    eie_images::IMAGES_DIR,
    eie_images::MANIFEST_FILE,
    PRUNED_FILE,
    QUANTIZED_FILE,
    REPORT_FILE,
    REPORT_HTML_FILE,
    BUNDLE_FILE,
];

/// The files of a Hugging Face language model folder `train` writes; publishing one replaces
/// all of them, `config.json` (what `transformers` opens first) moved out first and in last.
pub const LANGUAGE_NAMES: [&str; 4] = [
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
];

/// Checks, before any work, that the file `path` may be written: not an input nor inside
/// one, in a folder that exists, and nothing there or (with `force`) a regular file of
/// `kind` that eie-compress wrote ([`check_replaceable`]).
pub fn check_file(path: &Path, force: bool, kind: OutputKind, inputs: &Inputs) -> Result<()> {
    inputs.check_file(path)?;
    let parent = parent_of(path);
    if !parent.is_dir() {
        return Err(Error::Output {
            reason: format!(
                "{}: its folder {} does not exist",
                path.display(),
                parent.display()
            ),
        });
    }
    if path.file_name().is_none() {
        return Err(Error::Output {
            reason: format!("{} has no file name", path.display()),
        });
    }
    check_replaceable(path, force, kind)
}

fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Writes one file all-or-nothing: `write` fills a temporary file beside `path`, which is
/// renamed over `path` only if it succeeds; [`check_file`] runs first (again, if the caller
/// checked before its work: the folder may have changed meanwhile).
pub fn write_file<E: From<Error>>(
    path: &Path,
    force: bool,
    kind: OutputKind,
    inputs: &Inputs,
    write: impl FnOnce(&Path) -> Result<(), E>,
) -> Result<(), E> {
    check_file(path, force, kind, inputs)?;
    let tmp = new_temp_file(path)?;
    let result = write(&tmp).and_then(|()| {
        // The last look before the rename: a special file or a foreign one may have appeared.
        check_replaceable(path, force, kind)?;
        std::fs::rename(&tmp, path).map_err(|e| io("cannot move into place", path)(e).into())
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Creates, exclusively, a new empty temporary file beside `path` (`.NAME.tmp-PID-N`):
/// never opened through a link or over a file planted under that name, which the write
/// would otherwise follow into another file.
fn new_temp_file(path: &Path) -> Result<PathBuf> {
    let name = path.file_name().expect("checked").to_string_lossy();
    let parent = parent_of(path);
    let salt = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    for attempt in 0..64u32 {
        let tmp = parent.join(format!(
            ".{name}.tmp-{}-{}",
            std::process::id(),
            salt.wrapping_add(attempt)
        ));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
        {
            Ok(_) => return Ok(tmp),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(io("cannot create a temporary file beside", path)(e));
            }
        }
    }
    Err(Error::Output {
        reason: format!(
            "cannot create a temporary file beside {}: every name tried exists",
            path.display()
        ),
    })
}

/// The bundle of an output folder (or a bundle file given directly), fully validated.
pub fn load_bundle(path: &Path) -> Result<(PathBuf, Bundle)> {
    let (file, len) = open_bundle(path)?;
    let bundle = read_bundle(&file, len)?;
    Ok((file, bundle))
}

/// The `model.eie` of an output folder (or a bundle file given directly) and the length its
/// header declares, nothing else read: what an estimate of a command's memory starts from.
/// An interrupted publication there is finished or undone first.
pub fn open_bundle(path: &Path) -> Result<(PathBuf, u64)> {
    let file = if path.is_dir() {
        recover(path)?;
        path.join(BUNDLE_FILE)
    } else {
        // A model.eie given as a file: its folder may hold an interrupted publication.
        if let Some(parent) = path.parent() {
            let parent = if parent.as_os_str().is_empty() {
                Path::new(".")
            } else {
                parent
            };
            recover(parent)?;
        }
        path.to_path_buf()
    };
    // A file without a bundle's header is refused on its first 56 bytes.
    let head = read_head(&file).map_err(io("cannot read", &file))?;
    match Bundle::declared_len(&head) {
        // A header that declares more than the file holds is refused before anything is
        // read or estimated from it.
        Some(len) => match std::fs::metadata(&file) {
            Ok(m) if m.len() < len => Err(Error::Bundle {
                path: file,
                error: eie_format::Error::Truncated {
                    expected: len,
                    got: m.len(),
                },
            }),
            _ => Ok((file, len)),
        },
        None => {
            let error = Bundle::from_bytes(&head).expect_err("not a bundle's header");
            Err(Error::Bundle { path: file, error })
        }
    }
}

/// The bundle in `file` of the declared length `len` ([`open_bundle`]), fully validated;
/// never more than `len` bytes read (a sparse or growing file is refused, not read).
pub fn read_bundle(file: &Path, len: u64) -> Result<Bundle> {
    let bytes = eie_format::files::read_regular(file, len).map_err(io("cannot read", file))?;
    Bundle::from_bytes(&bytes).map_err(|error| Error::Bundle {
        path: file.to_path_buf(),
        error,
    })
}

/// The first bytes of `file` (at most a header's), if it is a regular file.
fn read_head(file: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut head = Vec::with_capacity(eie_format::HEADER_LEN);
    if !std::fs::metadata(file)?.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    std::fs::File::open(file)?
        .take(eie_format::HEADER_LEN as u64)
        .read_to_end(&mut head)?;
    Ok(head)
}
