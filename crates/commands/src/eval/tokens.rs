//! `eval` of a token model (a description's `tokV`, the paper's LSTM language-model kind) on
//! text: the ids of the text's byte range by the `tokenizer.json` beside the checkpoint,
//! perplexity and next-token top-1 by the sliding window, in the same stage table as a
//! language model folder's; with an output folder of `compress`, every compressed stage too
//! (crate::tokens).

use eie_checkpoint::Checkpoint;
use eie_evaluate::{Arch, Network};

use super::{Report, Request};
use crate::error::{Error, Result};
use crate::language::TextReport;
use crate::packed::PackedModel;

impl Request {
    /// Evaluates token model `arch` of checkpoint `ck` on the text of `--dataset text:FILE`,
    /// and the compressed stages of `DIR` when given.
    pub(super) fn tokens(&self, ck: &Checkpoint, arch: &Arch) -> Result<Report> {
        let path = crate::tokens::text_of(
            &self.model,
            arch,
            &self.data.spec,
            self.data.scale.is_set(),
            &self.act_frac,
        )?;
        self.no_energy_table()?;
        if !self.layers.is_empty() {
            return Err(Error::NotApplicable {
                option: "--layers",
                applies_to: "MLP checkpoints (a token model's every layer is its description's)"
                    .into(),
            });
        }
        // Every check that needs no weights and no text, before the estimate.
        eie_model::check_against(ck, arch)?;
        let setup = crate::tokens::setup(
            &self.model,
            arch,
            &ck.metadata(),
            path,
            self.data.range,
            self.context,
            self.stride,
        )?;
        // The original, and with DIR the pruned and shared stages' networks.
        let models = 1 + 2 * u64::from(self.dir.is_some());
        let estimate = crate::tokens::estimate(arch, &setup, models)?;
        let packed = match &self.dir {
            Some(dir) => {
                let p = PackedModel::load_estimated(dir, estimate, self.data.max_memory)?;
                Some(p)
            }
            None => {
                estimate.check(self.data.max_memory)?;
                None
            }
        };
        let net = Network::from_arch_checkpoint(ck, arch)?;
        if let (Some(p), Some(dir)) = (&packed, &self.dir) {
            self.check_tokens_made_from(ck, &net, p, dir)?;
        }
        let corpus = setup.load()?;
        let first = crate::tokens::original(&net, &corpus, &setup)?;
        let mut measured = vec![first];
        let mut report = self.text_report(&corpus, &measured[0]);
        if let Some(p) = &packed {
            // A retrained or updated model's pruned weights are not the original ones.
            let changed = eie_evaluate::kept_values_changed(&p.bundle);
            let retrained = changed.is_some();
            let (stages, fracs) = crate::tokens::compressed(
                &net,
                &p.bundle,
                &corpus,
                &setup,
                &self.act_frac,
                self.arith,
                !retrained,
            )?;
            measured.extend(stages);
            report.act_frac = Some(fracs);
            if let Some(why) = changed {
                report.notes.push(format!(
                    "not measured: {}: {why}",
                    eie_evaluate::PRUNED_STAGE
                ));
            }
        }
        report.stages = measured.iter().map(|m| m.report(&measured[0])).collect();
        let eie = (measured.len() > 1).then(|| &measured[measured.len() - 1]);
        report.text = Some(TextReport::new(&setup, &corpus, &measured[0], eie));
        Ok(report)
    }

    /// The output must come from this checkpoint, compressed as this description, and its
    /// images on disk must be what `model.eie` says.
    fn check_tokens_made_from(
        &self,
        ck: &Checkpoint,
        net: &Network,
        p: &PackedModel,
        dir: &std::path::Path,
    ) -> Result<()> {
        self.check_source(ck, p)?;
        let recorded = eie_pipeline::provenance::recorded_description(&p.bundle.meta().settings);
        if recorded != Some(net.describe().as_str()) {
            return Err(Error::Unfit {
                reason: format!(
                    "{} was compressed as {}, but {} is the token model {}: evaluate it with the description it was compressed with",
                    p.file.display(),
                    recorded.unwrap_or("no description"),
                    self.model.display(),
                    net.describe()
                ),
            });
        }
        super::check_images(dir, &p.bundle)
    }
}
