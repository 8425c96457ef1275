//! What a command reads besides its model: a dataset (and which of its samples, scaled how),
//! or input vectors from a file, or generated activations; and the runs they make.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::budget::Estimate;

use eie_dataset::{Dataset, SampleRange, Scaling, ScalingRequest, Spec};
use eie_evaluate::program::Program;
use eie_simulate::run::Mode;
use eie_simulate::vectors::LayerRun;
use eie_simulate::{Arith, LayerView, TimingParams};

use crate::error::{Error, Result};

/// A dataset and which of its samples, scaled.
#[derive(Debug, Clone, PartialEq)]
pub struct DatasetRequest {
    /// Where it comes from (`mnist:DIR`, `synthetic`, ...).
    pub spec: Spec,
    /// The samples (default: all).
    pub range: Option<SampleRange>,
    /// The input scaling asked for; what is not given comes from what the model records.
    pub scale: ScalingRequest,
    /// The most memory the command may take, its estimate made before any work: the samples
    /// it loads, and the network it runs or trains.
    pub max_memory: u64,
}

/// Calibration samples (`compress --calibration`): a dataset (text for a language model;
/// its labels are not read) and how many of its samples (windows of text) to take.
#[derive(Debug, Clone)]
pub struct CalibrationRequest {
    /// The dataset, its range and the memory its work may take (scaled as the model
    /// records).
    pub data: DatasetRequest,
    /// Samples (or windows of the model's context) taken from the start of the range.
    pub samples: usize,
}

/// Calibration samples taken by default (SparseGPT's and GPTQ's 128).
pub const DEFAULT_CALIBRATION_SAMPLES: usize = 128;

impl DatasetRequest {
    /// The dataset `spec`, every sample, scaled as the model records.
    pub fn new(spec: Spec) -> Self {
        Self {
            spec,
            range: None,
            scale: ScalingRequest::default(),
            max_memory: crate::DEFAULT_MAX_MEMORY,
        }
    }

    /// The files (and, for an MNIST folder, the folder) it is read from: inputs, which no
    /// output may replace or sit inside.
    pub fn inputs(&self) -> Result<Vec<PathBuf>> {
        let mut paths = self.spec.files()?;
        if let Spec::Mnist { dir, .. } = &self.spec {
            paths.push(dir.clone());
        }
        Ok(paths)
    }

    /// The scaling: as asked, else as `recorded` (a model's metadata) says, else the default.
    pub fn scaling(&self, recorded: &BTreeMap<String, String>) -> Result<Scaling> {
        Ok(Scaling::resolve(&self.scale, recorded)?)
    }

    /// The dataset's size from its headers, nothing loaded: what an estimate counts its
    /// samples by, read once however many ranges it counts.
    pub fn shape(&self) -> Result<Shape> {
        let (total, width) = eie_dataset::peek(&self.spec)?;
        Ok(Shape { total, width })
    }

    /// How many samples `range` (default: the request's) picks of a dataset of `shape`.
    pub fn count(&self, shape: Shape, range: Option<SampleRange>) -> Result<usize> {
        let r = self
            .range_or_default(range)
            .resolve(shape.total, &self.spec.to_string())?;
        Ok(r.len())
    }

    /// The samples of `range` (default: the request's), scaled by `scaling`; refused before
    /// any is read when they alone would take more than `max_memory`.
    pub fn load(&self, range: Option<SampleRange>, scaling: &Scaling) -> Result<Dataset> {
        let shape = self.shape()?;
        crate::budget::Estimate::part()
            .samples(self.count(shape, range)?, shape.width)
            .check(self.max_memory)?;
        self.load_estimated(range, scaling)
    }

    /// [`DatasetRequest::load`] for a command whose estimate, checked already, counted
    /// these samples.
    pub(crate) fn load_estimated(
        &self,
        range: Option<SampleRange>,
        scaling: &Scaling,
    ) -> Result<Dataset> {
        Ok(eie_dataset::load(
            &self.spec,
            self.range_or_default(range),
            scaling,
        )?)
    }

    fn range_or_default(&self, range: Option<SampleRange>) -> SampleRange {
        range.or(self.range).unwrap_or_default()
    }
}

/// How many samples a dataset holds and how many inputs each has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// Samples.
    pub total: usize,
    /// Inputs per sample.
    pub width: usize,
}

/// Tokens a token model is simulated on: one inference each.
pub const TOKENS_SIMULATED: usize = 64;

/// Where input vectors come from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// A safetensors file with one float tensor, `[inputs]` or `[vectors, inputs]`.
    File {
        /// The file.
        path: PathBuf,
        /// The tensor to read when it holds several.
        tensor: Option<String>,
    },
    /// A dataset's samples.
    Dataset(DatasetRequest),
    /// Vectors given in memory (a Python caller's array), each of the first layer's width.
    Vectors(Vec<Vec<f32>>),
    /// One generated vector: exactly round(density x inputs) non-zero activations at random
    /// positions, values in [-1, 1].
    Generated {
        /// The fraction of non-zero activations, in [0, 1].
        density: f64,
        /// The seed.
        seed: u64,
    },
}

impl Default for Source {
    fn default() -> Self {
        Source::Generated {
            density: 1.0,
            seed: 0,
        }
    }
}

/// A simulation's inputs: their source and the activation fractions of the EIE model.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InputRequest {
    /// Where the vectors come from.
    pub source: Source,
    /// Activation fractional bits at every layer boundary (a described model: two per
    /// matrix); empty: calibrated on the inputs the command runs.
    pub act_frac: Vec<u8>,
}

impl InputRequest {
    /// Whether the inputs come from the user (a file or a dataset) or fractions are given,
    /// which only a network can take.
    pub fn external(&self) -> bool {
        !matches!(self.source, Source::Generated { .. }) || !self.act_frac.is_empty()
    }

    /// The memory its samples take, counted from a dataset's headers (nothing loaded): the
    /// start of a simulating command's estimate, its model added by
    /// [`crate::PackedModel::load_estimated`].
    pub(crate) fn estimate(&self) -> Result<Estimate> {
        let mut estimate = Estimate::default();
        if let Source::Dataset(d) = &self.source {
            let shape = d.shape()?;
            estimate.samples(d.count(shape, None)?, shape.width);
        }
        Ok(estimate)
    }

    /// The files the inputs are read from: inputs of the command, never written over.
    pub fn inputs(&self) -> Result<Vec<PathBuf>> {
        match &self.source {
            Source::File { path, .. } => Ok(vec![path.clone()]),
            Source::Dataset(d) => d.inputs(),
            Source::Vectors(_) | Source::Generated { .. } => Ok(Vec::new()),
        }
    }

    /// Input vectors of `width` floats: a dataset's samples (scaled as asked, else as
    /// `recorded`, the model's metadata, says), the vectors of the input file, or one
    /// generated vector; never none.
    pub fn vectors(
        &self,
        width: usize,
        recorded: &BTreeMap<String, String>,
    ) -> Result<Vec<Vec<f32>>> {
        let vectors = match &self.source {
            Source::Dataset(d) => {
                let data = d.load(None, &d.scaling(recorded)?)?;
                if data.width() != width {
                    return Err(Error::Inputs {
                        reason: format!(
                            "dataset {} has {} inputs per sample, but the first layer takes {width}",
                            data.name(),
                            data.width()
                        ),
                    });
                }
                samples_of(&data)
            }
            Source::File { path, tensor } => {
                eie_dataset::vectors_from_file(path, tensor.as_deref(), width)?
            }
            Source::Vectors(given) => {
                if let Some((i, v)) = given.iter().enumerate().find(|(_, v)| v.len() != width) {
                    return Err(Error::Inputs {
                        reason: format!(
                            "input vector {i} has {} values, but the first layer takes {width}",
                            v.len()
                        ),
                    });
                }
                given.clone()
            }
            Source::Generated { density, seed } => {
                vec![eie_simulate::workload::random_vector(
                    width, *density, *seed,
                )]
            }
        };
        if vectors.is_empty() {
            return Err(Error::Inputs {
                reason: match &self.source {
                    Source::File { path, .. } => {
                        format!("{} holds no input vector", path.display())
                    }
                    _ => "the input holds no vector".into(),
                },
            });
        }
        Ok(vectors)
    }

    /// A token model's input (`tokV`): [`TOKENS_SIMULATED`] token ids drawn uniformly from
    /// the vocabulary with the generated input's seed (a token's one-hot vector is what
    /// the embedding takes, whatever the text). Files and datasets are refused: `eval DIR
    /// --dataset text:FILE` measures a token model on text.
    pub fn token_ids(&self, vocab: usize) -> Result<Vec<u32>> {
        let Source::Generated { seed, density } = self.source else {
            return Err(Error::Inputs {
                reason: format!(
                    "a token model (tok{vocab}) is simulated on {TOKENS_SIMULATED} generated token ids (--seed); `eval MODEL DIR --dataset text:FILE` runs it on text"
                ),
            });
        };
        if density != 1.0 {
            return Err(Error::Inputs {
                reason: format!(
                    "--act-density {density}: a token model's input is a token's one-hot vector, one non-zero activation whatever the density"
                ),
            });
        }
        let mut rng = eie_rng::Rng::new(seed);
        Ok((0..TOKENS_SIMULATED)
            .map(|_| rng.below(vocab as u64) as u32)
            .collect())
    }

    /// A described model's input samples: as [`InputRequest::vectors`], a dataset also
    /// checked against the network's input (images to an LSTM, sequences to a convolution
    /// refused).
    pub fn samples(
        &self,
        net: &eie_model::Network,
        recorded: &BTreeMap<String, String>,
    ) -> Result<Vec<Vec<f32>>> {
        if let Source::Dataset(d) = &self.source {
            let data = d.load(None, &d.scaling(recorded)?)?;
            net.check_dataset(&data)?;
            return Ok(samples_of(&data));
        }
        self.vectors(net.inputs(), recorded)
    }

    /// The runs `vectors` records and `rtl-check` compares with: chained on the first input
    /// vector when `views` chain, else each layer on a generated input of its own.
    pub fn runs<'a>(
        &self,
        views: &[LayerView<'a>],
        recorded: &BTreeMap<String, String>,
        params: &TimingParams,
        arith: Arith,
    ) -> Result<(Mode, Vec<LayerRun<'a>>)> {
        let mode = Mode::of(views, self.external())?;
        let inputs = self.layer_inputs(views, mode, recorded)?;
        let runs =
            eie_simulate::vectors::layer_runs(views, mode, &inputs, &self.act_frac, arith, params)?;
        Ok((mode, runs))
    }

    /// The inputs of a run in `mode`: chained, the vectors of the first layer; independent,
    /// one vector per layer, each of its own width.
    pub fn layer_inputs(
        &self,
        views: &[LayerView],
        mode: Mode,
        recorded: &BTreeMap<String, String>,
    ) -> Result<Vec<Vec<f32>>> {
        if views.is_empty() {
            return Err(Error::Unfit {
                reason: "the packed model holds no layer".into(),
            });
        }
        match mode {
            Mode::Chained => self.vectors(views[0].inputs(), recorded),
            Mode::Independent => views
                .iter()
                .map(|v| Ok(self.vectors(v.inputs(), recorded)?.swap_remove(0)))
                .collect(),
        }
    }

    /// The runs of a described model's program (a CNN, an LSTM) on the first input (a whole
    /// sample): every EIE run in order, each on its own recorded input (an LSTM's every time
    /// step), so the vectors are independent runs; fractions given, else calibrated on it.
    pub fn described_runs<'a>(
        &self,
        program: &Program<'a>,
        recorded: &BTreeMap<String, String>,
        params: &TimingParams,
        arith: Arith,
    ) -> Result<(Mode, Vec<LayerRun<'a>>)> {
        if let Some(vocab) = program.network().vocab() {
            // A token model: every EIE run of the generated tokens, token after token.
            let ids = self.token_ids(vocab)?;
            let fracs = program.token_fractions(&self.act_frac, std::iter::once(&ids[..]))?;
            let (_, runs) = program.token_run(&ids, &fracs, arith, Some(params))?;
            return Ok((
                Mode::Independent,
                runs.into_iter().map(|r| r.record).collect(),
            ));
        }
        let sample = self.samples(program.network(), recorded)?.swap_remove(0);
        let fracs = program.fractions(&self.act_frac, std::iter::once(sample.as_slice()))?;
        let (_, runs) = program.run(&sample, &fracs, arith, Some(params))?;
        Ok((
            Mode::Independent,
            runs.into_iter().map(|r| r.record).collect(),
        ))
    }
}

/// Every sample of `data`, one vector each.
fn samples_of(data: &Dataset) -> Vec<Vec<f32>> {
    (0..data.len()).map(|i| data.input(i).to_vec()).collect()
}
