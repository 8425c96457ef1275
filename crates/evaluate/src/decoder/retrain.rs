//! `compress --retrain` of a decoder (crate::retrain::student's loop): on the next-token
//! loss, or with `distill` on the cross-entropy to the original decoder's next-token
//! distribution.

use burn::module::ParamId;
use burn::optim::GradientsParams;
use burn::tensor::Device;
use eie_pipeline::{Calibration, LayerPlan, Observer, Retrained};

use super::model::{Decoder, NamedTensor};
use super::shape::DecoderShape;
use super::train::{check_stream, step_gradients};
use crate::error::Result;
use crate::retrain::RetrainSettings;
use crate::retrain::student::{Job, Student, retrain_student};

pub use crate::retrain::student::Measure;

/// What a decoder's retraining reads, and where it reports.
#[derive(Clone, Copy)]
pub struct DecoderRetraining<'a> {
    /// The decoder's shape, untied (a tied head is retrained as a matrix of its own; the
    /// embedding lookup keeps the checkpoint's values).
    pub shape: &'a DecoderShape,
    /// The planned layers, by their Hugging Face names.
    pub plans: &'a [LayerPlan],
    /// PEs, for pruning balanced across them.
    pub pes: usize,
    /// The training text's token ids.
    pub tokens: &'a [u32],
    /// How to retrain.
    pub settings: &'a RetrainSettings,
    /// Distillation's teacher when it is not the original (another decoder over the same
    /// tokens, of any shape, windows of the same context): its shape and values.
    pub teacher: Option<(&'a DecoderShape, &'a [NamedTensor])>,
    /// Told each epoch's progress.
    pub observer: &'a dyn Observer,
    /// Calibration statistics of the layers whose settings use them (their pruning's
    /// score, group and update, their codebook's weights).
    pub calibration: Option<&'a Calibration>,
}

/// The decoder as retraining's student: windows of `context + 1` tokens at a stride of the
/// context, and with distillation the teacher.
struct Windows<'a> {
    shape: &'a DecoderShape,
    tokens: &'a [u32],
    starts: Vec<usize>,
    teacher: Option<(Decoder, DecoderShape)>,
}

impl Student for Windows<'_> {
    type Model = Decoder;

    fn module(&self, values: &[NamedTensor], device: &Device) -> Decoder {
        Decoder::new(self.shape, values, device)
    }

    fn values(&self, model: &Decoder) -> Result<Vec<NamedTensor>> {
        model.tensors(self.shape)
    }

    fn params(&self, model: &Decoder) -> Vec<(String, ParamId, bool)> {
        let names = model.matrices();
        model
            .ids()
            .into_iter()
            .map(|(id, matrix)| {
                let name = names.iter().find(|(_, p)| p.id == id);
                (
                    name.map_or_else(String::new, |(n, _)| n.clone()),
                    id,
                    matrix,
                )
            })
            .collect()
    }

    fn examples(&self) -> usize {
        self.starts.len()
    }

    fn step(
        &self,
        model: &Decoder,
        batch: &[usize],
        device: &Device,
    ) -> Result<(f32, GradientsParams)> {
        let s: Vec<usize> = batch.iter().map(|&w| self.starts[w]).collect();
        step_gradients(
            model,
            self.shape,
            self.tokens,
            &s,
            self.teacher.as_ref().map(|(d, s)| (d, s)),
            device,
        )
    }

    fn unit(&self) -> &'static str {
        "nats/token"
    }
}

/// Retrains the planned matrices of `values` (the decoder's tensors in [`DecoderShape`]'s
/// order, untied) as `job` says; `measure` sees every stage. Returns what the pipeline packs.
pub fn retrain_decoder(
    values: Vec<NamedTensor>,
    job: &DecoderRetraining,
    measure: &mut Measure,
) -> Result<Retrained> {
    let vocab = values.first().map_or(0, |e| e.shape[0]);
    let t = job.shape.context;
    check_stream(vocab, t, job.tokens, "training text")?;
    let student = Windows {
        shape: job.shape,
        tokens: job.tokens,
        starts: (0..(job.tokens.len() - 1) / t).map(|w| w * t).collect(),
        // Distillation's teacher: the one given, or the decoder as it came, before any
        // pruning.
        teacher: job.settings.distill.then(|| {
            let (shape, values) = job.teacher.unwrap_or((job.shape, &values));
            (Decoder::new(shape, values, &Device::flex()), shape.clone())
        }),
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
