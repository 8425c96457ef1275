//! A packed model as the commands that read one take it: its `model.eie` loaded and
//! validated, the paths no output may touch, and its layers.

use std::path::{Path, PathBuf};

use eie_format::Bundle;
use eie_pipeline::output::{Inputs, load_bundle, open_bundle, read_bundle};
use eie_simulate::LayerView;

use crate::budget::Estimate;
use crate::error::{Error, Result};

/// A packed model: an output folder of `pack` or `compress`, or a `model.eie` given directly.
#[derive(Debug)]
pub struct PackedModel {
    /// The path as given.
    pub given: PathBuf,
    /// Its `model.eie`.
    pub file: PathBuf,
    /// The bundle, validated.
    pub bundle: Bundle,
}

impl PackedModel {
    /// Loads the model at `given` (an interrupted publication there is finished or undone
    /// first).
    pub fn load(given: &Path) -> Result<Self> {
        let (file, bundle) = load_bundle(given)?;
        Ok(Self {
            given: given.to_path_buf(),
            file,
            bundle,
        })
    }

    /// [`PackedModel::load`], refused before the file is read when reading and decoding it
    /// would take more than `max_memory` (with the program itself).
    pub fn load_within(given: &Path, max_memory: u64) -> Result<Self> {
        Self::load_estimated(given, Estimate::default(), max_memory)
    }

    /// [`PackedModel::load`], refused before the file is read when `estimate` (the rest of
    /// the command's work) and reading and decoding the model take more than `max_memory`.
    pub(crate) fn load_estimated(
        given: &Path,
        mut estimate: Estimate,
        max_memory: u64,
    ) -> Result<Self> {
        let (file, declared) = open_bundle(given)?;
        // open_bundle refused a header that declares more than the file holds.
        estimate.packed_model(declared).check(max_memory)?;
        let bundle = read_bundle(&file, declared)?;
        Ok(Self {
            given: given.to_path_buf(),
            file,
            bundle,
        })
    }

    /// Whether it was given as a folder.
    pub fn is_folder(&self) -> bool {
        self.given.is_dir()
    }

    /// Adds its `model.eie`, and the folder when the model was given as one (nothing is
    /// written inside it), to `inputs`. A `model.eie` given directly brings its sibling
    /// images folder too: an output written there would break the folder's `verify`.
    pub fn add_inputs(&self, inputs: &mut Inputs) {
        add_model_inputs(&self.given, &self.file, inputs);
    }

    /// The recorded settings (how the model was made, its input scaling).
    pub fn settings(&self) -> &std::collections::BTreeMap<String, String> {
        &self.bundle.meta().settings
    }

    /// The model's layers, or only the one named `layer`; never none.
    pub fn views(&self, layer: Option<&str>) -> Result<Vec<LayerView<'_>>> {
        select_views(&self.bundle, layer)
    }
}

/// The `model.eie` of a packed model given as `given`: inside it when a folder, else itself.
pub fn model_file(given: &Path) -> PathBuf {
    if given.is_dir() {
        given.join(eie_format::BUNDLE_FILE)
    } else {
        given.to_path_buf()
    }
}

/// Adds the inputs of a packed model given as `given` whose `model.eie` is `file`: the file,
/// the folder when given as one, and otherwise the images folder beside the file (absent
/// paths are skipped by [`Inputs::add`]).
pub fn add_model_inputs(given: &Path, file: &Path, inputs: &mut Inputs) {
    inputs.add(file);
    if given.is_dir() {
        inputs.add(given);
    } else if let Some(parent) = file.parent() {
        inputs.add(parent.join(eie_images::IMAGES_DIR));
    }
}

/// The bundle's layers, or only the one named `layer` (an error listing the names when
/// there is none of that name); never none.
pub fn select_views<'a>(bundle: &'a Bundle, layer: Option<&str>) -> Result<Vec<LayerView<'a>>> {
    let mut views = LayerView::all(bundle);
    if views.is_empty() {
        return Err(Error::Unfit {
            reason: "the packed model holds no layer".into(),
        });
    }
    if let Some(name) = layer {
        views.retain(|v| v.name() == name);
        if views.is_empty() {
            let names: Vec<&str> = LayerView::all(bundle).iter().map(|v| v.name()).collect();
            return Err(Error::NoLayer {
                name: name.to_string(),
                known: names.join(", "),
            });
        }
    }
    Ok(views)
}

/// `--pes`, a check: the PE count is fixed by packing.
pub fn check_pes(given: Option<u32>, pes: usize) -> Result<()> {
    if let Some(n) = given
        && n as usize != pes
    {
        return Err(Error::PesFixed {
            packed: pes,
            given: n,
        });
    }
    Ok(())
}

/// Copies the output folder `model` was loaded from (of `compress` or `pack`: every name of
/// [`eie_pipeline::output::OUTPUT_NAMES`] it holds) into the output folder `to`, as a run
/// writes one: its images verified against the loaded bundle first, the destination checked
/// (never an input nor inside one, nothing but an earlier output of this tool replaced, and
/// that only with `force`), locked, staged and published at once. Returns the files copied.
/// What a Python `Compressed.save` calls.
pub fn copy_output(model: &PackedModel, to: &Path, force: bool) -> Result<usize> {
    use eie_pipeline::output::{Layout, OUTPUT_NAMES, Staging};
    let from = &model.given;
    if !model.is_folder() {
        return Err(Error::Unfit {
            reason: format!("{} is not an output folder", from.display()),
        });
    }
    // Every image as the bundle says, or the copy would carry a changed file along.
    eie_pipeline::verify(from, &model.bundle)?;
    let mut inputs = Inputs::new();
    model.add_inputs(&mut inputs);
    let staging = Staging::create(to, force, &inputs, Layout::Model)?;
    let mut files = 0;
    for name in OUTPUT_NAMES {
        let source = from.join(name);
        if source.exists() {
            files += copy_tree(&source, &staging.path().join(name))?;
        }
    }
    staging.publish()?;
    Ok(files)
}

/// Copies the file or folder `from` to `to` (which does not exist), returning the files
/// copied; anything but plain files and folders is refused.
fn copy_tree(from: &Path, to: &Path) -> Result<usize> {
    let meta = std::fs::symlink_metadata(from).map_err(crate::error::io("cannot read", from))?;
    if meta.is_file() {
        std::fs::copy(from, to).map_err(crate::error::io("cannot copy to", to))?;
        return Ok(1);
    }
    if !meta.is_dir() {
        return Err(Error::Unfit {
            reason: format!(
                "{} is neither a file nor a folder: an output folder holds only those",
                from.display()
            ),
        });
    }
    std::fs::create_dir(to).map_err(crate::error::io("cannot create", to))?;
    let entries = std::fs::read_dir(from).map_err(crate::error::io("cannot list", from))?;
    let mut names = Vec::new();
    for entry in entries {
        names.push(
            entry
                .map_err(crate::error::io("cannot list", from))?
                .file_name(),
        );
    }
    names.sort();
    let mut files = 0;
    for name in names {
        files += copy_tree(&from.join(&name), &to.join(&name))?;
    }
    Ok(files)
}
