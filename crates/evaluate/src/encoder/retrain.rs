//! `compress --retrain --distill` of a sentence encoder (crate::retrain::student's loop): the
//! student's pooled sentence embeddings trained toward the original encoder's, on the
//! training text's sentences, with no label.

use burn::module::{Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Int, Tensor, TensorData};
use eie_pipeline::{Calibration, LayerPlan, Observer, Retrained};

use super::model::{Encoder, EncoderShape};
use crate::decoder::NamedTensor;
use crate::error::{Error, Result};
use crate::halves::{Streamed, split_gradients};
use crate::model::{Tape, to_vec};
use crate::retrain::RetrainSettings;
use crate::retrain::student::{Job, Measure, Student, retrain_student};

/// Sentences the teacher embeds at once.
const TEACHER_BATCH: usize = 64;

/// What an encoder's retraining reads, and where it reports.
#[derive(Clone, Copy)]
pub struct EncoderRetraining<'a> {
    /// The encoder's shape and held values.
    pub shape: &'a EncoderShape,
    /// The planned layers, by their Hugging Face names.
    pub plans: &'a [LayerPlan],
    /// PEs, for pruning balanced across them.
    pub pes: usize,
    /// The training sentences, each as the encoder runs it (`[CLS] ... [SEP]`).
    pub sentences: &'a [Vec<u32>],
    /// How to retrain (`distill` must be set: an encoder has no labels to train on).
    pub settings: &'a RetrainSettings,
    /// Distillation's teacher when it is not the original (another encoder of the same
    /// width over the same tokens): its shape and values.
    pub teacher: Option<(&'a EncoderShape, &'a [NamedTensor])>,
    /// Told each epoch's progress.
    pub observer: &'a dyn Observer,
    /// Calibration statistics of the layers whose settings use them (their pruning's
    /// score, group and update, their codebook's weights).
    pub calibration: Option<&'a Calibration>,
}

impl Streamed for Encoder {
    fn fork(&self) -> Self {
        Encoder::fork(self)
    }

    fn ids(&self) -> Vec<(ParamId, bool)> {
        Encoder::ids(self)
    }

    fn matrices_mut(&mut self) -> Vec<&mut Param<Tensor<2>>> {
        Encoder::matrices_mut(self)
    }
}

/// The encoder as retraining's student: its sentences and the teacher's embedding of each.
struct Sentences<'a> {
    shape: &'a EncoderShape,
    sentences: &'a [Vec<u32>],
    /// `[sentences, width]`.
    teacher: Vec<f32>,
}

/// Sentences `which` padded to the longest of them: ids `[n, t]` (padding id 0) and `[n, t]`
/// 1 at tokens, 0 at padding.
fn padded(sentences: &[Vec<u32>], which: &[usize], device: &Device) -> (Tensor<2, Int>, Tensor<2>) {
    let t = which.iter().map(|&i| sentences[i].len()).max().unwrap_or(1);
    let (mut ids, mut real) = (Vec::with_capacity(which.len() * t), Vec::new());
    for &i in which {
        let s = &sentences[i];
        ids.extend(
            s.iter()
                .map(|&x| x as i64)
                .chain(std::iter::repeat_n(0, t - s.len())),
        );
        real.extend((0..t).map(|p| (p < s.len()) as u8 as f32));
    }
    let n = which.len();
    (
        Tensor::<2, Int>::from_data(TensorData::new(ids, [n, t]), device),
        Tensor::<2>::from_data(TensorData::new(real, [n, t]), device),
    )
}

impl Student for Sentences<'_> {
    type Model = Encoder;

    fn module(&self, values: &[NamedTensor], device: &Device) -> Encoder {
        Encoder::new(self.shape, values, device)
    }

    fn values(&self, model: &Encoder) -> Result<Vec<NamedTensor>> {
        model.values(self.shape)
    }

    fn params(&self, model: &Encoder) -> Vec<(String, ParamId, bool)> {
        model.params(self.shape)
    }

    fn examples(&self) -> usize {
        self.sentences.len()
    }

    fn step(
        &self,
        model: &Encoder,
        batch: &[usize],
        device: &Device,
    ) -> Result<(f32, GradientsParams)> {
        let d = self.shape.width();
        split_gradients(model, batch.len(), &|m: &Encoder, r| {
            let which = &batch[r];
            let (ids, real) = padded(self.sentences, which, device);
            let got = m.pooled(self.shape, ids, real);
            let want: Vec<f32> = which
                .iter()
                .flat_map(|&i| self.teacher[i * d..(i + 1) * d].iter().copied())
                .collect();
            let want = Tensor::<2>::from_data(TensorData::new(want, [which.len(), d]), device);
            // Each sentence's squared error relative to the teacher's squared norm.
            let err = (got - want.clone()).powf_scalar(2.0).sum_dim(1);
            let norm = want.powf_scalar(2.0).sum_dim(1).add_scalar(1e-12);
            ((err / norm).mean(), Tape::default())
        })
    }

    fn unit(&self) -> &'static str {
        "relative squared error of the sentence embeddings"
    }
}

/// The pooled embeddings `[sentences, width]` of `sentences` by the encoder holding
/// `values` (each sentence within its positions and vocabulary, as [`retrain_encoder`]
/// checks).
pub(crate) fn embed(
    shape: &EncoderShape,
    values: &[NamedTensor],
    sentences: &[Vec<u32>],
) -> Result<Vec<f32>> {
    let device = Device::flex();
    let model = Encoder::new(shape, values, &device);
    let all: Vec<usize> = (0..sentences.len()).collect();
    let mut out = Vec::with_capacity(sentences.len() * shape.width());
    for chunk in all.chunks(TEACHER_BATCH) {
        let (ids, real) = padded(sentences, chunk, &device);
        out.extend(to_vec(model.pooled(shape, ids, real))?);
    }
    Ok(out)
}

/// Retrains the planned matrices of `values` (the encoder's linear layers, as
/// [`EncoderShape::of`] gives them) toward the original encoder's sentence embeddings, as
/// `job` says; `measure` sees every stage. Returns what the pipeline packs.
pub fn retrain_encoder(
    values: Vec<NamedTensor>,
    job: &EncoderRetraining,
    measure: &mut Measure,
) -> Result<Retrained> {
    if !job.settings.distill {
        return Err(Error::Config {
            what: "an encoder's retraining",
            reason: "an encoder has no labels to retrain on: retrain it by distillation from the original (--distill)".into(),
        });
    }
    let (vocab, positions) = (job.shape.vocab(), job.shape.positions());
    if job.sentences.is_empty() {
        return Err(Error::Config {
            what: "an encoder's retraining",
            reason: "no training sentence".into(),
        });
    }
    for (i, s) in job.sentences.iter().enumerate() {
        if s.is_empty() || s.len() > positions {
            return Err(Error::Config {
                what: "an encoder's retraining",
                reason: format!(
                    "training sentence {i} runs as {} tokens: expected 1 to {positions} (the encoder's positions)",
                    s.len()
                ),
            });
        }
        if let Some(&id) = s.iter().find(|&&id| id as usize >= vocab) {
            return Err(Error::Config {
                what: "an encoder's retraining",
                reason: format!(
                    "training sentence {i} holds token id {id}, beyond the vocabulary of {vocab}"
                ),
            });
        }
    }
    let student = Sentences {
        shape: job.shape,
        sentences: job.sentences,
        // Distillation's teacher: the one given, or the encoder as it came, before any
        // pruning.
        teacher: {
            let (shape, values) = job.teacher.unwrap_or((job.shape, &values));
            let longest = job.sentences.iter().map(Vec::len).max().unwrap_or(0);
            if shape.positions() < longest || shape.vocab() != vocab {
                return Err(Error::Config {
                    what: "an encoder's retraining",
                    reason: format!(
                        "the teacher takes {} positions of a vocabulary of {}; the training sentences run up to {longest} tokens of {vocab}",
                        shape.positions(),
                        shape.vocab()
                    ),
                });
            }
            if shape.width() != job.shape.width() {
                return Err(Error::Config {
                    what: "an encoder's retraining",
                    reason: format!(
                        "the teacher's sentence embeddings are {} wide, the encoder's {}",
                        shape.width(),
                        job.shape.width()
                    ),
                });
            }
            embed(shape, values, job.sentences)?
        },
    };
    let job = Job {
        plans: job.plans,
        pes: job.pes,
        settings: job.settings,
        observer: job.observer,
        calibration: job.calibration,
    };
    retrain_student(&student, values, &job, measure)
}
