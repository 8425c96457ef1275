//! What a command reads, resolved through links, and the rule that no output may replace,
//! delete or sit inside any of it, whatever `--force` says.

use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};

/// The files and folders a command reads, each resolved to its canonical path (links and
/// `..` followed), so that an output reached through another name is still recognised.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    /// (as given, canonical).
    paths: Vec<(PathBuf, PathBuf)>,
}

impl Inputs {
    /// No inputs yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an input. One that does not exist is skipped: reading it fails on its own, with
    /// its own message, and no output can be it.
    pub fn add(&mut self, path: impl AsRef<Path>) -> &mut Self {
        let path = path.as_ref();
        if let Ok(canonical) = std::fs::canonicalize(path) {
            self.paths.push((path.to_path_buf(), canonical));
        }
        self
    }

    /// Adds every input of `paths`.
    pub fn extend<P: AsRef<Path>>(&mut self, paths: impl IntoIterator<Item = P>) -> &mut Self {
        for p in paths {
            self.add(p);
        }
        self
    }

    /// Refuses the output file `out` if it is an input or lies inside an input folder.
    pub fn check_file(&self, out: &Path) -> Result<()> {
        let target = resolve(out);
        for (shown, input) in &self.paths {
            if target == *input {
                let also = if shown == out {
                    String::new()
                } else {
                    format!(" ({})", shown.display())
                };
                return refuse(format!(
                    "{} is an input of this command{also}; write the output elsewhere",
                    out.display(),
                ));
            }
            if target.starts_with(input) {
                return refuse(format!(
                    "{} lies inside {}, an input of this command; write the output elsewhere",
                    out.display(),
                    shown.display()
                ));
            }
        }
        Ok(())
    }

    /// Refuses the output folder `out`, whose entries `names` a run replaces, if it is or
    /// lies inside an input, or if replacing one of those entries would replace or delete an
    /// input.
    pub fn check_folder(&self, out: &Path, names: &[&str]) -> Result<()> {
        let target = resolve(out);
        for (shown, input) in &self.paths {
            if target.starts_with(input) {
                return refuse(format!(
                    "output folder {} {} {}, an input of this command; write the output elsewhere",
                    out.display(),
                    if target == *input {
                        "is"
                    } else {
                        "lies inside"
                    },
                    shown.display()
                ));
            }
            for name in names {
                let entry = resolve(&target.join(name));
                if input.starts_with(&entry) {
                    return refuse(format!(
                        "writing {} would replace {}, an input of this command; write the output elsewhere",
                        out.join(name).display(),
                        shown.display()
                    ));
                }
            }
        }
        Ok(())
    }
}

fn refuse(reason: String) -> Result<()> {
    Err(Error::Output { reason })
}

/// `path` made absolute with every link of its longest existing prefix resolved, and the
/// rest (which does not exist yet) appended with `.` and `..` applied by name.
pub(crate) fn resolve(path: &Path) -> PathBuf {
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(path)
    };
    let parts: Vec<Component> = absolute.components().collect();
    for k in (1..=parts.len()).rev() {
        let prefix: PathBuf = parts[..k].iter().collect();
        if let Ok(mut out) = std::fs::canonicalize(&prefix) {
            for part in &parts[k..] {
                match part {
                    Component::ParentDir => {
                        out.pop();
                    }
                    Component::Normal(n) => out.push(n),
                    _ => {}
                }
            }
            return out;
        }
    }
    absolute
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_that_reach_an_input_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("s/images")).unwrap();
        std::fs::write(d.join("s/images/in.safetensors"), b"x").unwrap();
        std::fs::create_dir_all(d.join("model")).unwrap();
        std::fs::write(d.join("model/model.eie"), b"x").unwrap();
        std::os::unix::fs::symlink(d.join("model"), d.join("alias")).unwrap();
        let mut inputs = Inputs::new();
        inputs
            .add(d.join("s/images/in.safetensors"))
            .add(d.join("model"));
        let names = ["images", "model.eie"];
        // Replacing images/ would delete the input inside it.
        let e = inputs.check_folder(&d.join("s"), &names).unwrap_err();
        assert!(e.to_string().contains("would replace"), "{e}");
        // A folder beside the input, or holding it outside the replaced names, is fine.
        inputs.check_folder(&d.join("t"), &names).unwrap();
        inputs.check_folder(d, &names).unwrap();
        // The input folder itself, a folder inside it, or either through a link.
        for out in ["model", "model/vectors", "alias", "alias/new/../x"] {
            let e = inputs.check_folder(&d.join(out), &names).unwrap_err();
            assert!(e.to_string().contains("an input"), "{out}: {e}");
        }
        for out in [
            "s/images/in.safetensors",
            "alias/model.eie",
            "model/x.safetensors",
        ] {
            assert!(inputs.check_file(&d.join(out)).is_err(), "{out}");
        }
        inputs.check_file(&d.join("s/out.safetensors")).unwrap();
    }

    #[test]
    fn resolve_applies_dots_past_the_existing_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let c = std::fs::canonicalize(dir.path()).unwrap();
        assert_eq!(resolve(&dir.path().join("a/b/../c")), c.join("a/c"));
        assert_eq!(resolve(&dir.path().join("a/./c")), c.join("a/c"));
    }
}
