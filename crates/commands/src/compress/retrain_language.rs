//! `compress --retrain` of a LLaMA-family folder: Deep Compression's retraining on the
//! next-token loss of the training text (`--range`), every stage measured on the measured
//! text (`--eval-range`), by eie-evaluate's decoder in burn.

use std::collections::HashMap;

use eie_evaluate::RetrainSettings;
use eie_evaluate::decoder::{
    DecoderRetraining, DecoderShape, NamedTensor, retrain_decoder, tensor_names,
};
use eie_pipeline::{Observer, Plan, Retrained};
use eie_transformer::{Dense, Folder, Linear};

use super::language::Language;
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

/// A stage's model: the linear layers eie-evaluate holds take its values, the rest (the
/// embedding lookup, the norms) the folder's.
fn stage(language: &Language, name: &str, plan: &Plan, values: &[NamedTensor]) -> Result<Measured> {
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
                b: None,
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
    // A decoder's stages: scored by their perplexity, with no reference.
    measure(name, density, &model, corpus, setup, None)
}

/// Retrains the planned layers of `language`'s decoder; every stage is measured and noted.
pub(super) fn retrain(
    language: &Language,
    plan: &Plan,
    settings: &RetrainSettings,
    pes: usize,
    observer: &dyn Observer,
) -> Result<(Retrained, Vec<Measured>)> {
    let shape = language.decoder.as_ref().expect("checked when resolved");
    let tokens = &language.train.as_ref().expect("read when resolved").1;
    let job = DecoderRetraining {
        shape,
        plans: &plan.layers,
        pes,
        tokens,
        settings,
        observer,
    };
    let mut stages = Vec::new();
    // The measuring's own error, kept whole (eie-evaluate's callback carries only its own).
    let mut failed = None;
    let result = retrain_decoder(
        values(&language.folder, shape)?,
        &job,
        &mut |name, v| match stage(language, name, plan, v) {
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
        },
    );
    match (result, failed) {
        (_, Some(e)) => Err(e),
        (Err(e), None) => Err(e.into()),
        (Ok(r), None) => Ok((r, stages)),
    }
}
