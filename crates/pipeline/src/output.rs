//! All-or-nothing output: an output folder is filled in a staging folder inside it and
//! moved into place only when everything is written; single files go through a temporary
//! file in the target folder and a rename. Inputs are never written to.

use std::path::{Path, PathBuf};

use eie_format::{BUNDLE_FILE, Bundle};

use crate::error::{Error, Result, io};

const STAGING_PREFIX: &str = ".eie-staging-";

/// File name of the checkpoint with every layer pruned (written on request).
pub const PRUNED_FILE: &str = "pruned.safetensors";
/// File name of the checkpoint with every layer pruned and weight-shared (on request).
pub const QUANTIZED_FILE: &str = "quantized.safetensors";
/// File name of compress's report.
pub const REPORT_FILE: &str = "report.json";

/// Every top-level name an eie-compress output folder may hold. Publishing a new output
/// replaces all of them, so no file of an earlier run survives beside a new model.eie.
pub const OUTPUT_NAMES: [&str; 6] = [
    eie_images::IMAGES_DIR,
    eie_images::MANIFEST_FILE,
    PRUNED_FILE,
    QUANTIZED_FILE,
    REPORT_FILE,
    BUNDLE_FILE,
];

fn bail<T>(reason: String) -> Result<T> {
    Err(Error::Output { reason })
}

/// Whether a folder entry is a staging folder (of this or an interrupted run).
fn is_staging(name: &str) -> bool {
    name.starts_with(STAGING_PREFIX)
}

/// Whether the process that made a staging folder is gone (Linux: no /proc/PID).
fn abandoned(name: &str) -> bool {
    let pid = &name[STAGING_PREFIX.len()..];
    pid.parse::<u32>().is_ok()
        && !Path::new("/proc").join(pid).exists()
        && Path::new("/proc/self").exists()
}

/// Refuses to write any of `outputs` that is also `input` (after resolving links and `..`),
/// so `--force` never replaces what a command reads.
pub fn refuse_input_as_output(input: &Path, outputs: &[PathBuf]) -> Result<()> {
    let Ok(input) = std::fs::canonicalize(input) else {
        return Ok(());
    };
    for output in outputs {
        if std::fs::canonicalize(output).is_ok_and(|o| o == input) {
            return bail(format!(
                "{} is both the input and an output; write elsewhere",
                output.display()
            ));
        }
    }
    Ok(())
}

/// The paths an output folder's files will have.
pub fn output_paths(dir: &Path) -> Vec<PathBuf> {
    OUTPUT_NAMES.iter().map(|n| dir.join(n)).collect()
}

/// Refuses an output folder that cannot take a new output: a file in its place, or a folder
/// that holds anything, unless `force`. Cheap: callers check before any long work.
pub fn check_out_dir(dir: &Path, force: bool) -> Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    if !dir.is_dir() {
        return bail(format!(
            "output {} exists and is not a folder",
            dir.display()
        ));
    }
    if force {
        return Ok(());
    }
    let mut entries: Vec<String> = std::fs::read_dir(dir)
        .map_err(io("cannot list output folder", dir))?
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|name| !is_staging(name))
        .collect();
    if !entries.is_empty() {
        entries.sort();
        return bail(format!(
            "output folder {} already holds {} entries ({}{}); use --force to replace eie-compress's files there",
            dir.display(),
            entries.len(),
            entries[..entries.len().min(3)].join(", "),
            if entries.len() > 3 { ", ..." } else { "" }
        ));
    }
    Ok(())
}

/// Makes sure `dir` can receive a new output ([`check_out_dir`]) and exists, without the
/// staging folders interrupted runs left (a running process's staging folder is kept).
pub fn prepare_out_dir(dir: &Path, force: bool) -> Result<()> {
    check_out_dir(dir, force)?;
    if dir.exists() {
        for entry in std::fs::read_dir(dir).map_err(io("cannot list", dir))? {
            let entry = entry.map_err(io("cannot list", dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if is_staging(&name) && abandoned(&name) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    } else {
        std::fs::create_dir_all(dir).map_err(io("cannot create output folder", dir))?;
    }
    Ok(())
}

/// A staging folder inside an output folder; removed on drop unless published (and the
/// output folder too, if this run created it).
pub struct Staging {
    out: PathBuf,
    dir: PathBuf,
    created_out: bool,
    published: bool,
}

impl Staging {
    /// Prepares `out` ([`prepare_out_dir`]) and a fresh staging folder inside it.
    pub fn create(out: &Path, force: bool) -> Result<Self> {
        let created_out = !out.exists();
        prepare_out_dir(out, force)?;
        let staging = Self {
            out: out.to_path_buf(),
            dir: out.join(format!("{STAGING_PREFIX}{}", std::process::id())),
            created_out,
            published: false,
        };
        let _ = std::fs::remove_dir_all(&staging.dir);
        std::fs::create_dir(&staging.dir)
            .map_err(io("cannot create staging folder", &staging.dir))?;
        Ok(staging)
    }

    /// The staging folder, where the output is written before it is published.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Moves the staged output into the output folder. First the old model.eie goes (a folder
    /// without it is visibly incomplete), then every other eie-compress output name (so no
    /// file of an earlier run stays beside the new model), then the staged entries move in,
    /// model.eie last: its presence marks a complete output.
    pub fn publish(self) -> Result<()> {
        self.remove(&self.out.join(BUNDLE_FILE))?;
        for name in OUTPUT_NAMES {
            self.remove(&self.out.join(name))?;
        }
        for name in OUTPUT_NAMES {
            let (from, to) = (self.dir.join(name), self.out.join(name));
            if from.exists() {
                std::fs::rename(&from, &to).map_err(io("cannot move into place", &to))?;
            }
        }
        self.finish()
    }

    /// Removes what is at `path` in the output folder, if anything.
    fn remove(&self, path: &Path) -> Result<()> {
        if path.is_dir() {
            // Renamed aside first: the name is free at once, the deletion may take a while.
            let aside = self.dir.join(".old");
            std::fs::rename(path, &aside).map_err(io("cannot replace", path))?;
            std::fs::remove_dir_all(&aside).map_err(io("cannot remove", &aside))
        } else if path.exists() {
            std::fs::remove_file(path).map_err(io("cannot replace", path))
        } else {
            Ok(())
        }
    }

    /// Removes the (emptied) staging folder and marks the output published.
    fn finish(mut self) -> Result<()> {
        std::fs::remove_dir_all(&self.dir).map_err(io("cannot remove", &self.dir))?;
        self.published = true;
        Ok(())
    }
    /// Moves every staged entry into the output folder, replacing entries of the same name
    /// (for outputs other than a packed model: test vectors).
    pub fn publish_all(self) -> Result<()> {
        let mut names: Vec<_> = std::fs::read_dir(&self.dir)
            .map_err(io("cannot list", &self.dir))?
            .filter_map(|e| e.ok().map(|e| e.file_name()))
            .collect();
        names.sort();
        for name in names {
            let (from, to) = (self.dir.join(&name), self.out.join(&name));
            self.remove(&to)?;
            std::fs::rename(&from, &to).map_err(io("cannot move into place", &to))?;
        }
        self.finish()
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.published {
            let _ = std::fs::remove_dir_all(&self.dir);
            if self.created_out {
                let _ = std::fs::remove_dir(&self.out);
            }
        }
    }
}

/// Writes one file all-or-nothing: `write` fills a temporary file beside `path`, which is
/// renamed over `path` only if it succeeds. Refuses an existing `path` unless `force`.
pub fn write_file<E: From<Error>>(
    path: &Path,
    force: bool,
    write: impl FnOnce(&Path) -> Result<(), E>,
) -> Result<(), E> {
    if path.exists() && !force {
        return Err(Error::Output {
            reason: format!(
                "{} already exists; use --force to replace it",
                path.display()
            ),
        }
        .into());
    }
    if path.is_dir() {
        return Err(Error::Output {
            reason: format!("{} is a folder, expected a file path", path.display()),
        }
        .into());
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let Some(name) = path.file_name() else {
        return Err(Error::Output {
            reason: format!("{} has no file name", path.display()),
        }
        .into());
    };
    let tmp = parent.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = write(&tmp).and_then(|()| {
        std::fs::rename(&tmp, path).map_err(|e| io("cannot move into place", path)(e).into())
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// The bundle of an output folder (or a bundle file given directly), fully validated.
pub fn load_bundle(path: &Path) -> Result<(PathBuf, Bundle)> {
    let file = if path.is_dir() {
        path.join(BUNDLE_FILE)
    } else {
        path.to_path_buf()
    };
    let bytes =
        eie_format::files::read_regular(&file, u64::MAX).map_err(io("cannot read", &file))?;
    let bundle = Bundle::from_bytes(&bytes).map_err(|error| Error::Bundle {
        path: file.clone(),
        error,
    })?;
    Ok((file, bundle))
}
