//! `compress` of a token model (a description's `tokV`, the paper's LSTM language-model kind)
//! with `--dataset text:FILE`: its text resolved before any work (the `tokenizer.json`
//! beside the checkpoint, the windows, the memory), and after the pipeline every stage's
//! perplexity on the bundle written (crate::tokens).

use eie_dataset::Spec;
use eie_evaluate::{Arch, Network};
use eie_format::Bundle;

use super::{AccuracyReport, Request};
use crate::error::{Error, Result};
use crate::language::{Corpus, TextReport, TextSetup};

impl Request {
    /// A token model's text (`--eval-range`, else `--range`, of `--dataset text:FILE`), read
    /// and tokenized: every check first. `None` without a dataset.
    pub(super) fn resolve_tokens(
        &self,
        ck: &eie_checkpoint::Checkpoint,
        arch: &Arch,
    ) -> Result<Option<(TextSetup, Corpus)>> {
        let Some(d) = &self.data else {
            return Ok(None);
        };
        let Spec::Text { path } = &d.spec else {
            return Err(Error::Unfit {
                reason: format!(
                    "{} is a token model ({arch}): measure it on text (--dataset text:FILE), not on {}",
                    self.model.display(),
                    d.spec
                ),
            });
        };
        if self.retrain {
            return Err(Error::NotApplicable {
                option: "--retrain",
                applies_to: format!(
                    "classifiers and LLaMA-family folders (retraining a token model, {arch}, is not implemented)"
                ),
            });
        }
        if d.scale.is_set() {
            return Err(Error::NotApplicable {
                option: "--scale, --mean and --std",
                applies_to: "image datasets (a token model reads token ids)".into(),
            });
        }
        if !self.act_frac.is_empty() {
            eie_evaluate::program::check_fraction_count(
                &self.act_frac,
                eie_model::matrix_specs(arch)?.len(),
            )?;
        }
        let setup = crate::tokens::setup(
            &self.model,
            arch,
            &ck.metadata(),
            path,
            self.eval_range.or(d.range),
            None,
            None,
        )?;
        crate::tokens::estimate(arch, &setup, 3)?.check(d.max_memory)?;
        let corpus = setup.load()?;
        Ok(Some((setup, corpus)))
    }

    /// The original's perplexity and every compressed stage's on the bundle written.
    pub(super) fn measure_tokens(
        &self,
        net: &Network,
        (setup, corpus): &(TextSetup, Corpus),
        bundle: &Bundle,
    ) -> Result<AccuracyReport> {
        let first = crate::tokens::original(net, corpus, setup)?;
        let (stages, fracs) =
            crate::tokens::compressed(net, bundle, corpus, setup, &self.act_frac, self.arith)?;
        let mut text = TextReport::new(setup, corpus, &first, stages.last());
        let speed = text.speed.take();
        let d = self.data.as_ref().expect("a text");
        let mut reports = vec![first.report(&first)];
        reports.extend(stages.iter().map(|s| s.report(&first)));
        Ok(AccuracyReport {
            dataset: d.spec.to_string(),
            train: None,
            held_out: format!(
                "{} [bytes {}..{}]",
                d.spec, corpus.bytes[0], corpus.bytes[1]
            ),
            held_out_is_train: false,
            retrain: None,
            act_frac: fracs,
            stages: reports,
            text: Some(text),
            speed,
            notes: Vec::new(),
        })
    }
}
