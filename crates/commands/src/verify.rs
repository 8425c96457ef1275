//! `verify`: the images on disk say exactly what `model.eie` says.

use std::path::PathBuf;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::packed::PackedModel;
use crate::report::Schema;

/// The output folder to verify.
#[derive(Debug, Clone)]
pub struct Request {
    /// An output folder of `pack` or `compress`.
    pub dir: PathBuf,
}

/// What agreed.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The report's schema.
    pub schema: Schema,
    /// Layers (parts of layers stored in column batches count one each).
    pub layers: usize,
    /// Image files checked.
    pub files: usize,
}

impl Request {
    /// Re-reads every image, checks every checksum, rebuilds every layer from the image
    /// bytes alone and compares it with `model.eie`; an error says where they differ.
    pub fn run(&self) -> Result<Report> {
        let model = PackedModel::load(&self.dir)?;
        if !model.is_folder() {
            return Err(Error::Unfit {
                reason: format!(
                    "{} is not an output folder: verify compares a folder's images with its model.eie",
                    self.dir.display()
                ),
            });
        }
        let m = eie_pipeline::verify(&self.dir, &model.bundle)?;
        Ok(Report {
            schema: Schema("verify"),
            layers: model.bundle.layers().len(),
            files: m.layers.iter().map(|l| l.files.len()).sum(),
        })
    }
}
