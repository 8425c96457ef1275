//! `compress` of a Hugging Face language model folder: its linear layers planned by their
//! Hugging Face names (crate::language::plan), and with `--dataset text:FILE` every stage's
//! perplexity on the text.

use eie_dataset::Spec;
use eie_format::Bundle;
use eie_pipeline::{Plan, RunSettings};
use eie_transformer::Folder;

use super::{AccuracyReport, Request};
use crate::error::{Error, Result};
use crate::language::{Corpus, TextReport, TextSetup, compressed, original};

/// A language model folder, resolved: the folder, and the text it is measured on.
#[derive(Debug)]
pub(super) struct Language {
    /// The folder (its config and checkpoint).
    pub folder: Folder,
    /// With a dataset: the text, and its tokens (read before the long work: a text nothing
    /// of which would be scored is refused first).
    pub text: Option<(TextSetup, Corpus)>,
}

impl Request {
    /// What a language model folder refuses, its plan and its text, every check before any
    /// work.
    pub(super) fn resolve_language(
        &self,
        folder: Folder,
        request: &eie_pipeline::Request,
        run: &RunSettings,
    ) -> Result<(Plan, Language)> {
        let not_here = |option: &'static str, why: &str| Error::NotApplicable {
            option,
            applies_to: format!(
                "{why}; {} is a Hugging Face language model folder",
                self.model.display()
            ),
        };
        if self.arch.is_some() {
            return Err(not_here(
                "--arch",
                "checkpoints made elsewhere (a folder is read by its config.json)",
            ));
        }
        if self.conv_on_eie {
            return Err(not_here("--conv-on-eie", "models with convolutions"));
        }
        if self.retrain {
            return Err(not_here(
                "--retrain",
                "classifiers so far (retraining a language model on the next-token loss is not implemented yet)",
            ));
        }
        let plan = crate::language::plan(&folder, request)?;
        if run.dense_checkpoints {
            plan.check_dense_checkpoints()?;
        }
        let text = match &self.data {
            None => None,
            Some(d) => {
                let Spec::Text { path } = &d.spec else {
                    return Err(Error::Unfit {
                        reason: format!(
                            "{} is a language model: measure it on text (--dataset text:FILE), not on {}",
                            self.model.display(),
                            d.spec
                        ),
                    });
                };
                if d.scale.is_set() {
                    return Err(not_here(
                        "--scale, --mean and --std",
                        "image datasets (a language model reads token ids)",
                    ));
                }
                if !self.act_frac.is_empty() {
                    eie_evaluate::program::check_fraction_count(&self.act_frac, plan.layers.len())?;
                }
                let setup =
                    TextSetup::resolve(&folder, path, self.eval_range.or(d.range), None, None)?;
                // One stage's model at a time, and the images (smaller than the weights).
                setup.estimate(&folder, 2).check(d.max_memory)?;
                let corpus = setup.load()?;
                Some((setup, corpus))
            }
        };
        Ok((plan, Language { folder, text }))
    }

    /// With a text: the original's perplexity and every compressed stage's on the bundle
    /// written.
    pub(super) fn measure_language(
        &self,
        language: &Language,
        bundle: &Bundle,
    ) -> Result<Option<AccuracyReport>> {
        let Some((setup, corpus)) = &language.text else {
            return Ok(None);
        };
        let folder = &language.folder;
        let first = original(folder, corpus, setup)?;
        let (stages, fracs, notes) =
            compressed(folder, bundle, corpus, setup, &self.act_frac, self.arith)?;
        let mut text = TextReport::new(setup, corpus, &first, stages.last());
        let speed = text.speed.take();
        let held = format!(
            "{} [bytes {}..{}]",
            self.data.as_ref().expect("a text").spec,
            corpus.bytes[0],
            corpus.bytes[1]
        );
        let base = &first.perplexity;
        let mut reports = vec![first.report(base)];
        reports.extend(stages.iter().map(|s| s.report(base)));
        Ok(Some(AccuracyReport {
            dataset: self.data.as_ref().expect("a text").spec.to_string(),
            train: None,
            held_out: held,
            held_out_is_train: false,
            retrain: None,
            act_frac: fracs,
            stages: reports,
            text: Some(text),
            speed,
            notes,
        }))
    }
}
