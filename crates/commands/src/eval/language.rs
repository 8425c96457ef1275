//! `eval` of a Hugging Face language model folder on text: its tokenizer's ids of the text's
//! byte range, perplexity and next-token top-1 by `transformers`' sliding window (an encoder:
//! masked tokens, or sentence embeddings against the original's), reported in
//! the same stage table as a classifier's accuracy; with an output folder of `compress`, every
//! compressed stage too (crate::language).

use eie_dataset::Spec;
use eie_transformer::Folder;

use super::{Report, Request};
use crate::error::{Error, Result};
use crate::language::{TextReport, TextSetup, compressed, original};
use crate::packed::PackedModel;
use crate::report::Schema;

impl Request {
    /// Evaluates a language model folder on the text of `--dataset text:FILE`, and the
    /// compressed stages of `DIR` when given.
    pub(super) fn language(&self) -> Result<Report> {
        let not_here = |option: &'static str| Error::NotApplicable {
            option,
            applies_to:
                "classifier checkpoints (a language model folder is read by its config.json)".into(),
        };
        if self.arch.is_some() {
            return Err(not_here("--arch"));
        }
        self.no_energy_table()?;
        if !self.layers.is_empty() {
            return Err(not_here("--layers"));
        }
        if self.data.scale.is_set() {
            return Err(not_here("--scale, --mean and --std"));
        }
        let Spec::Text { path } = &self.data.spec else {
            return Err(Error::Unfit {
                reason: format!(
                    "{} is a language model: evaluate it on text (--dataset text:FILE), not on {}",
                    self.model.display(),
                    self.data.spec
                ),
            });
        };
        let folder = Folder::open(&self.model)?;
        // Every check that needs no weights and no text, before the estimate.
        let setup = TextSetup::resolve(&folder, path, self.data.range, self.context, self.stride)?;
        let estimate = setup.estimate(&folder, 1 + u64::from(self.dir.is_some()));
        let packed = match &self.dir {
            Some(dir) => {
                let p = PackedModel::load_estimated(dir, estimate, self.data.max_memory)?;
                self.check_made_from_folder(&folder, &p)?;
                Some(p)
            }
            None => {
                estimate.check(self.data.max_memory)?;
                None
            }
        };
        let corpus = setup.load()?;
        let first = original(&folder, &corpus, &setup)?;
        let mut measured = vec![first];
        let mut report = self.text_report(&corpus, &measured[0]);
        if let Some(p) = &packed {
            let (stages, fracs, notes) = compressed(
                &folder,
                &p.bundle,
                &corpus,
                &setup,
                &measured[0],
                &self.act_frac,
                self.arith,
            )?;
            measured.extend(stages);
            report.act_frac = Some(fracs);
            report.notes = notes;
        }
        report.stages = measured.iter().map(|m| m.report(&measured[0])).collect();
        let eie = (measured.len() > 1).then(|| &measured[measured.len() - 1]);
        report.text = Some(TextReport::new(&setup, &corpus, &measured[0], eie));
        Ok(report)
    }

    /// A language model's report so far: the text measured and the original's stage's
    /// samples (its stages and text report are filled in after).
    pub(super) fn text_report(
        &self,
        corpus: &crate::language::Corpus,
        original: &crate::language::Measured,
    ) -> Report {
        Report {
            schema: Schema("eval"),
            model: self.model.display().to_string(),
            dir: self.dir.as_ref().map(|d| d.display().to_string()),
            dataset: format!(
                "{} [bytes {}..{}]",
                self.data.spec, corpus.bytes[0], corpus.bytes[1]
            ),
            samples: original.scored(),
            scaling: "token ids".into(),
            act_frac: None,
            act_frac_calibrated: self.act_frac.is_empty(),
            stages: Vec::new(),
            notes: Vec::new(),
            energy: None,
            text: None,
        }
    }

    /// The output must come from this folder's checkpoint, hold its linear layers read its
    /// way, take the fractions given, and its images on disk must be what `model.eie` says.
    fn check_made_from_folder(&self, folder: &Folder, p: &PackedModel) -> Result<()> {
        self.check_source(&folder.checkpoint, p)?;
        let views = eie_simulate::LayerView::all(&p.bundle);
        crate::language::check_layers(folder, &folder.linears()?, &p.bundle, &views)?;
        crate::language::check_fractions(&self.act_frac, &views)?;
        let dir = self.dir.as_ref().expect("given");
        super::check_images(dir, &p.bundle)
    }
}
