//! `vectors`: RTL test vectors from the functional model: per layer the input activations,
//! the expected outputs and every PE's expected accumulators, as `$readmemh` text and
//! little-endian binary, with a manifest.

use std::path::{Path, PathBuf};

use eie_pipeline::output::{Inputs, Layout, Staging};
use eie_simulate::vectors::render;
use eie_simulate::{Arith, TimingParams};
use serde::Serialize;

use crate::error::{Error, Result, io};
use crate::inputs::InputRequest;
use crate::packed::PackedModel;
use crate::report::Schema;

/// What to make vectors of, and where to.
#[derive(Debug, Clone)]
pub struct Request {
    /// An output folder of `pack` or `compress`, or a `model.eie`.
    pub dir: PathBuf,
    /// The folder for the vectors.
    pub out: PathBuf,
    /// Only this layer.
    pub layer: Option<String>,
    /// Replace an earlier output of this tool in the folder.
    pub force: bool,
    /// The input vectors.
    pub input: InputRequest,
    /// The timing model's hardware.
    pub timing: TimingParams,
    /// The EIE model's arithmetic.
    pub arith: Arith,
    /// The most memory the run may take, estimated before the model is read: the model read
    /// and decoded, a dataset's samples.
    pub max_memory: u64,
}

/// What was written.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The report's schema.
    pub schema: Schema,
    /// The folder.
    pub out: PathBuf,
    /// Layers (runs) recorded.
    pub layers: usize,
    /// Vector files written.
    pub files: usize,
}

impl Request {
    /// Runs the functional model and writes what it computed, all or nothing.
    pub fn run(&self) -> Result<Report> {
        crate::checks::inputs(&self.input)?;
        let model =
            PackedModel::load_estimated(&self.dir, self.input.estimate()?, self.max_memory)?;
        // The vectors' manifest.json would replace the images' own: never into the model's
        // folder.
        let model_dir = match model.file.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        if let Ok(out) = std::fs::canonicalize(&self.out)
            && std::fs::canonicalize(model_dir).is_ok_and(|m| m == out)
        {
            return Err(Error::Unfit {
                reason: format!(
                    "{} holds the packed model the vectors are made from; write them elsewhere",
                    self.out.display()
                ),
            });
        }
        let mut inputs = Inputs::new();
        model.add_inputs(&mut inputs);
        inputs.extend(self.input.inputs()?);
        // Locked from here: a second run into the same folder fails at once.
        let staging = Staging::create(&self.out, self.force, &inputs, Layout::Vectors)?;
        self.timing.validate()?;
        self.arith.validate()?;
        let bundle = &model.bundle;
        let recorded = model.settings();
        let (mode, runs) = match eie_evaluate::program::Program::of(bundle)? {
            // A described model: every EIE run of one sample, an LSTM's every step.
            Some(p) => {
                if self.layer.is_some() {
                    return Err(Error::Option {
                        option: "--layer".into(),
                        reason: format!(
                            "{} is a described model ({}); its vectors are one sample's every EIE run",
                            self.dir.display(),
                            p.network().describe()
                        ),
                    });
                }
                self.input
                    .described_runs(&p, recorded, &self.timing, self.arith)?
            }
            None => {
                let views = model.views(self.layer.as_deref())?;
                self.input
                    .runs(&views, recorded, &self.timing, self.arith)?
            }
        };
        let meta = bundle.meta();
        let set = render(
            &meta.tool_version,
            &meta.source.name,
            mode,
            &runs,
            self.arith,
        );
        set.write_into(staging.path())
            .map_err(io("cannot write the vectors into", &self.out))?;
        staging.publish()?;
        Ok(Report {
            schema: Schema("vectors"),
            out: self.out.clone(),
            layers: set.manifest.layers.len(),
            files: set.manifest.layers.iter().map(|l| l.files.len()).sum(),
        })
    }
}
