//! `pack`: tensors that are already pruned and weight-shared, packed as they are.

use std::path::PathBuf;

use eie_checkpoint::Checkpoint;
use eie_images::Fit;
use eie_pipeline::output::{Inputs, Layout, Staging, load_bundle};
use eie_pipeline::{LayerSettings, MadeBy, Observer, PackJob, Provenance};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::inspect::{self, Pes};
use crate::report::Schema;
use crate::settings::{Given, assignments};

/// The settings `pack` takes: the widths of the packed entries.
const WIDTHS: [&str; 2] = ["code_bits", "index_bits"];

/// What to pack, how, and where to.
#[derive(Debug, Clone)]
pub struct Request {
    /// The checkpoint (`.safetensors`, or a sharded checkpoint's index).
    pub model: PathBuf,
    /// The output folder: `model.eie`, `manifest.json` and `images/`.
    pub out: PathBuf,
    /// The widths of the packed entries given (`code_bits`, `index_bits`).
    pub widths: Given,
    /// Layer patterns (globs, in the order given); empty: as `compress` takes them.
    pub layers: Vec<String>,
    /// Fold each weight's `NAME.bias` in as its last column.
    pub fold_bias: bool,
    /// Processing elements.
    pub pes: u32,
    /// How layers are fitted to the hardware's memories.
    pub fit: Fit,
    /// Replace an earlier output of this tool in the folder.
    pub force: bool,
}

impl Request {
    /// Pack `model` into `out` with the defaults: 64 PEs, 4-bit codes and indices, biases
    /// folded.
    pub fn new(model: impl Into<PathBuf>, out: impl Into<PathBuf>) -> Self {
        Self {
            model: model.into(),
            out: out.into(),
            widths: Given::new(),
            layers: Vec::new(),
            fold_bias: true,
            pes: 64,
            fit: Fit::default(),
            force: false,
        }
    }
}

/// What `pack` wrote.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The report's schema.
    pub schema: Schema,
    /// The packed model as `inspect` reports it (its own schema; a summary: no PE arrays).
    pub model: inspect::Report,
    /// `*.weight` tensors the default selection left out, and why.
    pub skipped: Vec<Skipped>,
    /// Biases folded in as last columns.
    pub folded_biases: Vec<String>,
    /// Biases of packed weights left out (the images hold the weights alone).
    pub loose_biases: Vec<String>,
    /// The output folder.
    pub out: PathBuf,
    /// Image files written.
    pub files: usize,
}

/// A weight tensor a default selection left out.
#[derive(Debug, Clone, Serialize)]
pub struct Skipped {
    /// Its name.
    pub name: String,
    /// Why.
    pub reason: String,
}

impl Request {
    /// Packs: checks everything, locks the output folder, packs layer by layer and publishes
    /// the folder all at once.
    pub fn run(&self, observer: &dyn Observer) -> Result<Report> {
        crate::checks::pes(self.pes)?;
        crate::checks::fit(&self.fit)?;
        if let Some((key, _)) = self
            .widths
            .iter()
            .find(|(k, _)| !WIDTHS.contains(&k.as_str()))
        {
            return Err(Error::Option {
                option: format!("--{}", key.replace('_', "-")),
                reason: "pack takes the tensors as they are: only code_bits and index_bits apply"
                    .into(),
            });
        }
        let mut widths = LayerSettings::default();
        assignments(eie_pipeline::LAYER_KNOBS, &self.widths)?.apply(&mut widths);
        let mut inputs = Inputs::new();
        inputs.add(&self.model);
        // Opening reads headers only; a sharded checkpoint's shards are inputs too.
        let ck = Checkpoint::open(&self.model)?;
        inputs.extend(ck.hashed_files());
        // Locked from here: a second run into the same folder fails at once.
        let staging = Staging::create(&self.out, self.force, &inputs, Layout::Model)?;
        let selection = ck.select(&self.layers)?;
        let names = selection.layers;
        let pes = self.pes as usize;
        let mut provenance = Provenance::new(MadeBy::Pack, pes, widths.index_bits, &self.fit);
        provenance.code_bits = Some(widths.code_bits);
        provenance.layers = Some(self.layers.clone());
        provenance.bias_column = self.fold_bias;
        let version = crate::tool_version();
        let job = PackJob {
            names: &names,
            code_bits: widths.code_bits,
            index_bits: widths.index_bits,
            pes,
            fold_bias: self.fold_bias,
            fit: self.fit,
            tool_version: &version,
            provenance,
        };
        let packed = eie_pipeline::pack(&ck, &job, staging.path(), observer)?;
        staging.publish()?;

        let (_, bundle) = load_bundle(&self.out)?;
        let layers: Vec<_> = bundle.layers().iter().collect();
        // Which biases are in the images and which are not, so that nobody takes images for
        // the layer with its bias when they hold the weight alone.
        let mut folded: Vec<String> = bundle
            .layers()
            .iter()
            .filter_map(|l| l.bias().map(str::to_string))
            .collect();
        folded.dedup(); // column batches repeat their layer's bias
        let loose = names
            .iter()
            .filter_map(|n| eie_checkpoint::bias_name(n))
            .filter(|b| ck.info(b).is_some() && !folded.contains(b))
            .collect();
        Ok(Report {
            schema: Schema("pack"),
            model: inspect::Report::of(&bundle, &layers, Pes::None),
            skipped: selection
                .skipped
                .iter()
                .map(|s| Skipped {
                    name: s.name.clone(),
                    reason: s.reason.to_string(),
                })
                .collect(),
            folded_biases: folded,
            loose_biases: loose,
            out: self.out.clone(),
            files: packed.files,
        })
    }
}
