//! `compress --retrain` of a language model folder: Deep Compression's retraining of a
//! LLaMA-family decoder on the next-token loss of the training text (`--range`) or its
//! teacher's distributions, or of a sentence encoder toward its teacher's sentence
//! embeddings of the training text's lines; every stage measured on the measured text
//! (`--eval-range`), by eie-evaluate's models in burn.

use std::collections::HashMap;

use eie_evaluate::RetrainSettings;
use eie_evaluate::decoder::{
    DecoderRetraining, DecoderShape, Measure, NamedTensor, retrain_decoder, tensor_names,
};
use eie_evaluate::encoder::{EncoderRetraining, EncoderShape, retrain_encoder};
use eie_pipeline::{Calibration, Observer, Plan, Retrained};
use eie_transformer::{Dense, Folder, Linear, SentenceConfig};

use super::language::{Language, Retrainee, Training};
use crate::error::{Error, Result};
use crate::language::{Measured, measure};

/// The decoder's values read from the folder in eie-evaluate's order, the head untied (a
/// tied head starts as the embedding's values).
fn values(folder: &Folder, shape: &DecoderShape) -> Result<Vec<NamedTensor>> {
    let vocab = folder.config.vocab;
    tensor_names(shape, vocab)
        .into_iter()
        .map(|(name, shape)| {
            let stored = crate::language::stored(folder, &name);
            let values = folder.checkpoint.read_f32(stored)?;
            let n: usize = shape.iter().product();
            if values.len() != n {
                return Err(Error::Unfit {
                    reason: format!(
                        "{}: tensor {stored} holds {} values, the config's shape {shape:?} needs {n}",
                        folder.dir.display(),
                        values.len()
                    ),
                });
            }
            Ok(NamedTensor {
                name,
                shape,
                values,
            })
        })
        .collect()
}

/// A stage's model: the linear layers eie-evaluate holds take its values (weights, and
/// biases by their names), the rest (the embedding lookup, the norms) the folder's; an
/// encoder's sentence embeddings compared with the original's (`reference`).
fn stage(
    language: &Language,
    name: &str,
    plan: &Plan,
    values: &[NamedTensor],
    reference: Option<&Measured>,
) -> Result<Measured> {
    let (setup, corpus) = language.text.as_ref().expect("retraining has a text");
    let by_name: HashMap<&str, &NamedTensor> =
        values.iter().map(|t| (t.name.as_str(), t)).collect();
    let folder = &language.folder;
    let model = folder.model(&mut |spec| {
        let d = match by_name.get(spec.name.as_str()) {
            Some(t) => Dense {
                name: spec.name.clone(),
                rows: t.shape[0],
                cols: t.shape[1],
                w: t.values.clone(),
                b: match &spec.bias {
                    None => None,
                    Some(b) => Some(match by_name.get(b.as_str()) {
                        Some(t) => t.values.clone(),
                        None => folder.checkpoint.read_f32(b)?,
                    }),
                },
            },
            None => Dense::read(&folder.checkpoint, spec)?,
        };
        Ok(Box::new(d) as Box<dyn Linear>)
    })?;
    let (kept, total) = plan
        .layers
        .iter()
        .filter_map(|p| by_name.get(p.name.as_str()))
        .fold((0u64, 0u64), |(k, n), t| {
            let nz = t.values.iter().filter(|&&w| w != 0.0).count() as u64;
            (k + nz, n + t.values.len() as u64)
        });
    let density = Some(kept as f64 / total.max(1) as f64);
    measure(name, density, &model, corpus, setup, reference)
}

/// Retrains the planned layers of `language`'s model; every stage is measured and noted.
pub(super) fn retrain(
    language: &Language,
    plan: &Plan,
    settings: &RetrainSettings,
    pes: usize,
    calibration: Option<&Calibration>,
    observer: &dyn Observer,
) -> Result<(Retrained, Vec<Measured>)> {
    let student = language.student.as_ref().expect("checked when resolved");
    let training = &language.train.as_ref().expect("read when resolved").1;
    let mut stages = Vec::new();
    // The measuring's own error, kept whole (eie-evaluate's callback carries only its own).
    let mut failed = None;
    let result = {
        let reference = match student {
            // An encoder's stages are compared with the original's sentence embeddings.
            Retrainee::Encoder(_) => Some(language.original()?),
            Retrainee::Decoder(_) => None,
        };
        let mut measure =
            |name: &str, v: &[NamedTensor]| match stage(language, name, plan, v, reference) {
                Ok(m) => {
                    observer.note(&format!("{name}: {}", m.summary()));
                    stages.push(m);
                    Ok(())
                }
                Err(e) => {
                    let reason = e.to_string();
                    failed = Some(e);
                    Err(eie_evaluate::Error::Config {
                        what: "measuring a retraining stage",
                        reason,
                    })
                }
            };
        let measure: &mut Measure = &mut measure;
        match (student, training) {
            (Retrainee::Decoder(shape), Training::Tokens(tokens)) => {
                let teacher = match &language.teacher {
                    Some(t) => {
                        let ts = crate::language::decoder_shape(t, shape.context)?;
                        let tv = values(t, &ts)?;
                        Some((ts, tv))
                    }
                    None => None,
                };
                let job = DecoderRetraining {
                    shape,
                    plans: &plan.layers,
                    pes,
                    tokens,
                    settings,
                    observer,
                    teacher: teacher.as_ref().map(|(s, v)| (s, &v[..])),
                    calibration,
                };
                retrain_decoder(values(&language.folder, shape)?, &job, measure)
            }
            (Retrainee::Encoder(pooling), Training::Sentences(sentences)) => {
                let read = |folder: &eie_transformer::Folder, pooling| -> Result<_> {
                    let model = eie_transformer::dense(folder)?;
                    Ok(EncoderShape::of(&model, &folder.linears()?, pooling)?)
                };
                let (shape, values) = read(&language.folder, *pooling)?;
                // A teacher pools as its own sentence-transformers files say.
                let teacher = match &language.teacher {
                    Some(t) => {
                        let pooling = SentenceConfig::of_folder(&t.dir, t.config.hidden)?.pooling;
                        Some(read(t, pooling)?)
                    }
                    None => None,
                };
                let job = EncoderRetraining {
                    shape: &shape,
                    plans: &plan.layers,
                    pes,
                    sentences,
                    settings,
                    observer,
                    teacher: teacher.as_ref().map(|(s, v)| (s, &v[..])),
                    calibration,
                };
                retrain_encoder(values, &job, measure)
            }
            _ => unreachable!("a decoder trains on tokens, an encoder on sentences"),
        }
    };
    match (result, failed) {
        (_, Some(e)) => Err(e),
        (Err(e), None) => Err(e.into()),
        (Ok(r), None) => Ok((r, stages)),
    }
}
