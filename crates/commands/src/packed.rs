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
