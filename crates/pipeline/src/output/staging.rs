//! Exclusive, crash-safe output folders.
//!
//! A writer holds an exclusive lock on the output folder from its first check to its last
//! rename (a second writer fails at once). It fills a staging folder inside the output
//! folder, then publishes with renames only: it writes a journal naming the old entries and
//! the new ones, moves the old entries aside into the staging folder, moves the new ones in
//! (`model.eie` last), and removes the staging folder. A run that dies at any point leaves
//! the journal behind; the next run that opens the folder, to read or to write, finishes the
//! publication if every new entry is in place and otherwise puts the old output back, so the
//! folder holds either the old output or the new one, as SQLite's readers roll back a hot
//! journal.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use eie_format::BUNDLE_FILE;

use super::inputs::Inputs;
use super::{LANGUAGE_NAMES, OUTPUT_NAMES, owned};
use crate::error::{Error, Result, io};

const STAGING_PREFIX: &str = ".eie-staging-";
/// Inside a staging folder: where the replaced entries wait until the publication ends.
const OLD_DIR: &str = ".old";
/// Inside a staging folder: the journal of a publication in progress.
const JOURNAL: &str = ".journal";

/// The environment variable of the crash tests: with `EIE_COMPRESS_CRASH_AT=K`, the process
/// aborts (no clean-up runs, as under `kill -9`) just before the K-th step of publishing an
/// output (from 0). Unset, it does nothing.
pub const CRASH_AT_ENV: &str = "EIE_COMPRESS_CRASH_AT";

fn bail<T>(reason: String) -> Result<T> {
    Err(Error::Output { reason })
}

/// What an output folder holds, which decides which entries a run replaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// A packed model: every name of [`OUTPUT_NAMES`] is replaced, so no file of an earlier
    /// run stays beside a new `model.eie`.
    Model,
    /// Test vectors: the staged entries (`manifest.json` and one folder per layer) replace
    /// entries of the same names.
    Vectors,
    /// A Hugging Face language model folder: every name of [`LANGUAGE_NAMES`] is replaced.
    Language,
}

impl Layout {
    /// The names a publication replaces whole, the one that marks a complete output first.
    fn names(self) -> &'static [&'static str] {
        match self {
            Layout::Model => &OUTPUT_NAMES,
            Layout::Language => &LANGUAGE_NAMES,
            Layout::Vectors => &[],
        }
    }
}

/// An exclusive lock on an output folder (`flock` on the folder itself, released by the
/// kernel when the process ends, however it ends).
#[derive(Debug)]
pub struct Lock {
    _file: File,
}

impl Lock {
    /// Takes the lock on the existing folder `dir`, or fails at once if another process
    /// holds it.
    pub fn take(dir: &Path) -> Result<Self> {
        let file = File::open(dir).map_err(io("cannot open output folder", dir))?;
        match file.try_lock() {
            Ok(()) => Ok(Self { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => bail(format!(
                "another eie-compress run is writing {}; wait for it to finish, or write elsewhere",
                dir.display()
            )),
            Err(std::fs::TryLockError::Error(e)) => Err(io("cannot lock output folder", dir)(e)),
        }
    }

    /// Takes the lock if no other process holds it.
    fn try_take(dir: &Path) -> Result<Option<Self>> {
        let file = File::open(dir).map_err(io("cannot open output folder", dir))?;
        match file.try_lock() {
            Ok(()) => Ok(Some(Self { _file: file })),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(io("cannot lock output folder", dir)(e)),
        }
    }
}

/// Whether a folder entry is named like this tool's staging folders (`.eie-staging-PID`);
/// anything else, `.eie-staging-notes` included, is the user's.
pub(crate) fn is_staging(name: &str) -> bool {
    name.strip_prefix(STAGING_PREFIX)
        .is_some_and(|pid| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()))
}

/// Finishes or rolls back what an interrupted run left in `dir` (see the module's docs), if
/// no other run holds the folder. Cheap when there is nothing to do.
pub fn recover(dir: &Path) -> Result<()> {
    if !has_staging(dir) {
        return Ok(());
    }
    match Lock::try_take(dir)? {
        Some(_lock) => recover_locked(dir),
        // A writer is at work; what it stages is its own.
        None => Ok(()),
    }
}

fn has_staging(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| is_staging(&e.file_name().to_string_lossy()))
    })
}

/// [`recover`] with the lock held: every staging folder is a dead run's.
fn recover_locked(dir: &Path) -> Result<()> {
    let mut staged: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io("cannot list", dir))?
        .flatten()
        .filter(|e| is_staging(&e.file_name().to_string_lossy()))
        // Only folders: a file of that name is not a staging folder of this tool's.
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect();
    staged.sort();
    for s in staged {
        if let Some(journal) = Journal::read(&s)? {
            // The old entries wait in a real folder inside the staging folder: a link there
            // would move files in from elsewhere.
            let aside = s.join(OLD_DIR);
            if std::fs::symlink_metadata(&aside).is_ok_and(|m| !m.is_dir()) {
                return bail(format!(
                    "{} is not a folder this tool made; move {} away by hand",
                    aside.display(),
                    s.display()
                ));
            }
            let complete = journal.new.iter().all(|n| !exists(&s.join(n)));
            if !complete {
                // Take the new entries that made it in back out, then put the old ones back.
                for n in &journal.new {
                    let (inside, staged) = (dir.join(n), s.join(n));
                    if !exists(&staged) && exists(&inside) {
                        rename(&inside, &staged)?;
                    }
                }
                for o in &journal.old {
                    let (aside, home) = (s.join(OLD_DIR).join(o), dir.join(o));
                    if exists(&aside) {
                        rename(&aside, &home)?;
                    }
                }
            }
        }
        std::fs::remove_dir_all(&s).map_err(io("cannot remove", &s))?;
    }
    Ok(())
}

/// Whether anything (a link included) is at `path`.
fn exists(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok()
}

fn rename(from: &Path, to: &Path) -> Result<()> {
    std::fs::rename(from, to).map_err(io("cannot move into place", to))
}

/// A publication's plan: the entries of the output folder moved aside, and the new ones.
#[derive(Debug, PartialEq)]
struct Journal {
    old: Vec<String>,
    new: Vec<String>,
}

impl Journal {
    fn write(&self, staging: &Path) -> Result<()> {
        let text = format!("old {}\nnew {}\n", self.old.join("/"), self.new.join("/"));
        let (tmp, path) = (staging.join(".journal.tmp"), staging.join(JOURNAL));
        std::fs::write(&tmp, text).map_err(io("cannot write", &tmp))?;
        rename(&tmp, &path)
    }

    /// The journal of the staging folder `staging`, if publishing had begun.
    fn read(staging: &Path) -> Result<Option<Self>> {
        let path = staging.join(JOURNAL);
        let text = match eie_format::files::read_text(&path, 1 << 20) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io("cannot read", &path)(e)),
        };
        let field = |key: &str| -> Option<Vec<String>> {
            let line = text.lines().find_map(|l| l.strip_prefix(key))?;
            let names: Vec<String> = line
                .split('/')
                .filter(|n| !n.is_empty())
                .map(str::to_string)
                .collect();
            // Only names this tool publishes: recovery moves and deletes what the journal
            // names, so a stray journal must not reach a user's file.
            names.iter().all(|n| publishable(n)).then_some(names)
        };
        match (field("old "), field("new ")) {
            (Some(old), Some(new)) => Ok(Some(Self { old, new })),
            _ => bail(format!(
                "{} is not a journal this tool wrote; move {} away by hand",
                path.display(),
                staging.display()
            )),
        }
    }
}

/// Whether `name` is an entry this tool publishes: an output name, or a vectors layer folder
/// (`NNN-layer`).
fn publishable(name: &str) -> bool {
    if OUTPUT_NAMES.contains(&name) || LANGUAGE_NAMES.contains(&name) {
        return true;
    }
    let digits = name.bytes().take_while(u8::is_ascii_digit).count();
    digits >= 3
        && name.as_bytes().get(digits) == Some(&b'-')
        && !name.contains(['/', '\\'])
        && name != ".."
}

/// Counts publishing steps for [`CRASH_AT_ENV`].
static STEP: AtomicUsize = AtomicUsize::new(0);

fn step() {
    let k = STEP.fetch_add(1, Ordering::SeqCst);
    if std::env::var(CRASH_AT_ENV).is_ok_and(|v| v.parse() == Ok(k)) {
        eprintln!("{CRASH_AT_ENV}={k}: aborting before publishing step {k}");
        std::process::abort();
    }
}

/// Checks, before any long work, that `out` can take a new output of `layout`: not an input,
/// not holding one under a name a run replaces, a folder (or nothing yet), and empty unless
/// `force`, in which case the entries a run would replace must be eie-compress's own.
pub fn check_out_dir(out: &Path, force: bool, inputs: &Inputs, layout: Layout) -> Result<()> {
    // An interrupted publication is finished or rolled back first: what the folder holds
    // afterwards is what counts.
    if std::fs::symlink_metadata(out).is_ok_and(|m| m.is_dir()) {
        recover(out)?;
    }
    inputs.check_folder(out, layout.names())?;
    let meta = match std::fs::symlink_metadata(out) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io("cannot inspect", out)(e)),
        Ok(m) => m,
    };
    if !std::fs::metadata(out).is_ok_and(|m| m.is_dir()) {
        return bail(format!(
            "output {} exists and is not a folder{}",
            out.display(),
            if meta.file_type().is_symlink() {
                " (a link to something else)"
            } else {
                ""
            }
        ));
    }
    let mut entries: Vec<String> = std::fs::read_dir(out)
        .map_err(io("cannot list output folder", out))?
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|name| !is_staging(name))
        .collect();
    if entries.is_empty() {
        return Ok(());
    }
    if !force {
        entries.sort();
        return bail(format!(
            "output folder {} already holds {} entries ({}{}); use --force to replace eie-compress's files there",
            out.display(),
            entries.len(),
            entries[..entries.len().min(3)].join(", "),
            if entries.len() > 3 { ", ..." } else { "" }
        ));
    }
    if layout != Layout::Vectors {
        let foreign = if layout == Layout::Model {
            owned::foreign_entries(out)
        } else {
            owned::foreign_language_entries(out)
        };
        if !foreign.is_empty() {
            return bail(format!(
                "output folder {} holds what eie-compress did not write under its own names: {}{}; --force replaces only eie-compress's files: move them away or write elsewhere",
                out.display(),
                foreign[..foreign.len().min(3)].join(", "),
                if foreign.len() > 3 {
                    format!(" and {} more", foreign.len() - 3)
                } else {
                    String::new()
                }
            ));
        }
    }
    Ok(())
}

/// A staging folder inside a locked output folder; removed on drop unless published (and the
/// output folder too, if this run created it and it is empty).
#[derive(Debug)]
pub struct Staging {
    out: PathBuf,
    dir: PathBuf,
    created_out: bool,
    published: bool,
    layout: Layout,
    force: bool,
    /// Checked again against the entries publishing actually replaces.
    inputs: Inputs,
    _lock: Lock,
}

impl Staging {
    /// Checks `out` ([`check_out_dir`]), creates it if need be, locks it, recovers what an
    /// interrupted run left there, and makes a fresh staging folder inside it.
    pub fn create(out: &Path, force: bool, inputs: &Inputs, layout: Layout) -> Result<Self> {
        check_out_dir(out, force, inputs, layout)?;
        let created_out = !out.exists();
        std::fs::create_dir_all(out).map_err(io("cannot create output folder", out))?;
        let lock = Lock::take(out)?;
        recover_locked(out)?;
        // Checked again under the lock: another run may have written meanwhile.
        check_out_dir(out, force, inputs, layout)?;
        let dir = out.join(format!("{STAGING_PREFIX}{}", std::process::id()));
        std::fs::create_dir(&dir).map_err(io("cannot create staging folder", &dir))?;
        Ok(Self {
            out: out.to_path_buf(),
            dir,
            created_out,
            published: false,
            layout,
            force,
            inputs: inputs.clone(),
            _lock: lock,
        })
    }

    /// The staging folder, where the output is written before it is published.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Moves the staged output into the output folder and removes the staging folder. For a
    /// packed model, every eie-compress name of the folder is replaced, model.eie moved out
    /// first and in last: its presence marks a complete output.
    pub fn publish(mut self) -> Result<()> {
        let staged = |n: &str| exists(&self.dir.join(n));
        let (old, new): (Vec<String>, Vec<String>) = match self.layout {
            Layout::Model | Layout::Language => {
                let order = layout_order(self.layout);
                let old = order
                    .iter()
                    .filter(|n| exists(&self.out.join(n)))
                    .map(|n| n.to_string())
                    .collect();
                let new: Vec<String> = order
                    .iter()
                    .rev()
                    .filter(|n| staged(n))
                    .map(|n| n.to_string())
                    .collect();
                (old, new)
            }
            Layout::Vectors => {
                let mut new: Vec<String> = std::fs::read_dir(&self.dir)
                    .map_err(io("cannot list", &self.dir))?
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect();
                // The manifest moves out first and in last: its presence marks a complete
                // set of vectors, as model.eie does a packed model.
                new.sort_by_key(|n| (n == eie_images::MANIFEST_FILE, n.clone()));
                let mut old: Vec<String> = new
                    .iter()
                    .filter(|n| exists(&self.out.join(n)))
                    .cloned()
                    .collect();
                old.sort_by_key(|n| (n != eie_images::MANIFEST_FILE, n.clone()));
                (old, new)
            }
        };
        // The entries about to be replaced, named at last: none may hold an input (a vectors
        // folder's layer folders are known only now).
        let replaced: Vec<&str> = old.iter().map(String::as_str).collect();
        self.inputs.check_folder(&self.out, &replaced)?;
        if self.layout == Layout::Vectors && !old.is_empty() {
            check_vectors_owned(&self.out, &old, self.force)?;
        }
        step();
        Journal {
            old: old.clone(),
            new: new.clone(),
        }
        .write(&self.dir)?;
        let aside = self.dir.join(OLD_DIR);
        step();
        std::fs::create_dir(&aside).map_err(io("cannot create", &aside))?;
        for o in &old {
            step();
            rename(&self.out.join(o), &aside.join(o))?;
        }
        for n in &new {
            step();
            rename(&self.dir.join(n), &self.out.join(n))?;
        }
        step();
        // Published: from here a crash leaves the new output and a staging folder to remove.
        self.published = true;
        std::fs::remove_dir_all(&self.dir).map_err(io("cannot remove", &self.dir))
    }
}

/// A whole-output layout's names, the one marking a complete output (model.eie, config.json)
/// first.
fn layout_order(layout: Layout) -> Vec<&'static str> {
    let mut order = layout.names().to_vec();
    if layout == Layout::Model {
        order.retain(|n| *n != BUNDLE_FILE);
        order.insert(0, BUNDLE_FILE);
    }
    order
}

/// With `--force`, a vectors folder's replaced entries must be what its vectors manifest
/// lists: a regular `manifest.json` of format `eie-vectors`, and layer folders holding only
/// the files it names (no link, no file of the user's).
fn check_vectors_owned(out: &Path, old: &[String], force: bool) -> Result<()> {
    if !force {
        return bail(format!(
            "{} already holds {}; use --force to replace it",
            out.display(),
            old.join(", ")
        ));
    }
    let manifest = out.join(eie_images::MANIFEST_FILE);
    let regular = std::fs::symlink_metadata(&manifest).is_ok_and(|m| m.is_file());
    let listed: Option<(Vec<String>, Vec<String>)> = regular
        .then(|| eie_format::files::read_regular(&manifest, owned::MAX_SNIFF).ok())
        .flatten()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .filter(|v| v.get("format").and_then(|f| f.as_str()) == Some("eie-vectors"))
        .and_then(|v| {
            let layers = v.get("layers")?.as_array()?;
            let dirs = layers
                .iter()
                .filter_map(|l| l.get("dir")?.as_str().map(str::to_string))
                .collect();
            let files = layers
                .iter()
                .filter_map(|l| l.get("files")?.as_array())
                .flatten()
                .filter_map(|f| f.get("path")?.as_str().map(str::to_string))
                .collect();
            Some((dirs, files))
        });
    let refuse = |what: &str, why: &str| {
        bail(format!(
            "{} holds {what} ({why}); --force replaces only eie-compress's files: move it away or write elsewhere",
            out.display()
        ))
    };
    let Some((dirs, files)) = listed else {
        return refuse(
            eie_images::MANIFEST_FILE,
            "not a regular vectors manifest of eie-compress's",
        );
    };
    for o in old.iter().filter(|o| *o != eie_images::MANIFEST_FILE) {
        if !dirs.contains(o) {
            return refuse(o, "not a layer folder its vectors manifest lists");
        }
        let listed = |rel: &str| files.iter().any(|f| f == rel);
        if let Some((first, _)) = owned::unlisted(&out.join(o), o, &listed).first() {
            return refuse(first, "not a file its vectors manifest lists");
        }
    }
    Ok(())
}

impl Drop for Staging {
    fn drop(&mut self) {
        if self.published {
            let _ = std::fs::remove_dir_all(&self.dir);
        } else {
            // An error part-way through publishing: the journal puts the old output back.
            let _ = recover_locked(&self.out);
            if self.created_out {
                let _ = std::fs::remove_dir(&self.out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_writer_fails_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let _first = Lock::take(dir.path()).unwrap();
        let e = Lock::take(dir.path()).unwrap_err().to_string();
        assert!(e.contains("another eie-compress run"), "{e}");
    }

    #[test]
    fn a_journal_reads_back_and_a_foreign_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal {
            old: vec!["model.eie".into(), "images".into()],
            new: vec!["images".into(), "model.eie".into()],
        };
        j.write(dir.path()).unwrap();
        assert_eq!(Journal::read(dir.path()).unwrap(), Some(j));
        for foreign in ["old ../x\nnew y\n", "old model.eie\nnew notes.txt\n"] {
            std::fs::write(dir.path().join(JOURNAL), foreign).unwrap();
            assert!(Journal::read(dir.path()).is_err(), "{foreign}");
        }
        std::fs::write(
            dir.path().join(JOURNAL),
            "old \nnew 000-fc1.weight/manifest.json\n",
        )
        .unwrap();
        assert!(Journal::read(dir.path()).unwrap().is_some());
    }

    #[test]
    fn an_interrupted_publication_rolls_back_or_completes() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path();
        let s = out.join(".eie-staging-1");
        std::fs::create_dir_all(s.join(OLD_DIR)).unwrap();
        // Old model.eie moved aside, new images moved in, new model.eie still staged.
        std::fs::write(s.join(OLD_DIR).join("model.eie"), "old").unwrap();
        std::fs::write(s.join(OLD_DIR).join("images"), "old images").unwrap();
        std::fs::write(out.join("images"), "new images").unwrap();
        std::fs::write(s.join("model.eie"), "new").unwrap();
        Journal {
            old: vec!["model.eie".into(), "images".into()],
            new: vec!["images".into(), "model.eie".into()],
        }
        .write(&s)
        .unwrap();
        recover(out).unwrap();
        assert_eq!(
            std::fs::read_to_string(out.join("model.eie")).unwrap(),
            "old"
        );
        assert_eq!(
            std::fs::read_to_string(out.join("images")).unwrap(),
            "old images"
        );
        assert!(!s.exists());
        // Every new entry in place: the publication is complete, only the folder goes.
        std::fs::create_dir_all(s.join(OLD_DIR)).unwrap();
        Journal {
            old: vec!["model.eie".into()],
            new: vec!["model.eie".into()],
        }
        .write(&s)
        .unwrap();
        recover(out).unwrap();
        assert_eq!(
            std::fs::read_to_string(out.join("model.eie")).unwrap(),
            "old"
        );
        assert!(!s.exists());
    }
}
