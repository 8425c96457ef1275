//! `compress` of a token model (a description's `tokV`, the paper's LSTM language-model kind)
//! with `--dataset text:FILE`: its text resolved before any work (the `tokenizer.json`
//! beside the checkpoint, the windows, the memory), with `--retrain` Deep Compression's
//! retraining on the next-token loss of the `--range` text (the classifiers' run, on windows
//! of the recorded context), and after the pipeline every stage's perplexity on the bundle
//! written (crate::tokens).

use std::cell::RefCell;

use eie_evaluate::{Arch, Network, RetrainSettings, Retraining, Samples, retrain};
use eie_format::Bundle;
use eie_pipeline::{Observer, Retrained};
use eie_text::Text;

use super::{AccuracyReport, Request, Resolved, RetrainReport};
use crate::error::Result;
use crate::language::{Corpus, Measured, TextReport, TextSetup, bytes_of, too_short};

/// A token model's text, resolved.
#[derive(Debug)]
pub(super) struct TokenText {
    /// The held-out text's setup (tokenizer, windows).
    pub setup: TextSetup,
    /// Its tokens.
    pub corpus: Corpus,
    /// With retraining: the training text (`--range`), named, and its token ids.
    pub train: Option<(String, Vec<u32>)>,
    /// With retraining: the training text's bytes (ends on character boundaries).
    pub train_bytes: Option<[u64; 2]>,
}

impl Request {
    /// A token model's text (`--eval-range`, else `--range`, of `--dataset text:FILE`), read
    /// and tokenized, and with retraining the training text (`--range`): every check first.
    /// `None` without a dataset.
    pub(super) fn resolve_tokens(
        &self,
        ck: &eie_checkpoint::Checkpoint,
        arch: &Arch,
        retrain: Option<&RetrainSettings>,
    ) -> Result<Option<TokenText>> {
        let Some(d) = &self.data else {
            return Ok(None);
        };
        let path =
            crate::tokens::text_of(&self.model, arch, &d.spec, d.scale.is_set(), &self.act_frac)?;
        let setup = crate::tokens::setup(
            &self.model,
            arch,
            &ck.metadata(),
            path,
            self.eval_range.or(d.range),
            None,
            None,
        )?;
        let mut estimate = crate::tokens::estimate(arch, &setup, 3)?;
        let train_bytes = retrain.map(|_| bytes_of(path, d.range)).transpose()?;
        if let (Some(settings), Some((a, b))) = (retrain, train_bytes) {
            let fp = arch.footprint()?;
            // A batch holds at most the windows there are (tokens are at most bytes).
            let windows = ((b - a) / setup.context as u64 + 1) as usize;
            let batch = settings
                .fine_tune
                .batch_size
                .max(settings.centroids.batch_size)
                .min(windows);
            estimate
                .training(
                    fp.weights,
                    fp.values.saturating_mul(setup.context as u64),
                    batch,
                )
                // The network's copies retraining keeps (as it was, pruned, its masks and
                // codes), besides burn's.
                .add("the network's copies while retraining", fp.weights * 16)
                .add(
                    format!("{} bytes of training text, tokenized", b - a),
                    (b - a).saturating_mul(448),
                );
        }
        estimate.check(d.max_memory)?;
        // The training text first: too short a text is refused before the held-out one is
        // tokenized.
        let (train, read) = match train_bytes {
            None => (None, None),
            Some(bytes) => {
                let t = Text::load(path, Some(bytes))?;
                let ids = setup.tokenizer.encode(&t.text, false)?;
                if ids.len() <= setup.context {
                    return Err(too_short(
                        "retraining: ",
                        path,
                        &t,
                        ids.len(),
                        setup.context,
                    ));
                }
                let name = format!(
                    "{} [bytes {}..{}], windows of {} tokens",
                    d.spec, t.start, t.end, setup.context
                );
                (Some((name, ids)), Some([t.start, t.end]))
            }
        };
        let corpus = setup.load()?;
        Ok(Some(TokenText {
            setup,
            corpus,
            train,
            train_bytes: read,
        }))
    }
}

impl Resolved {
    /// Retrains token model `net` on the training text's windows (the classifiers' run:
    /// pruning rounds with masked fine-tuning, sharing, centroid fine-tuning), every stage's
    /// perplexity measured on the held-out text as it goes. Returns what the pipeline packs,
    /// and the stages.
    pub(super) fn retrain_tokens(
        &self,
        net: &Network,
        text: &TokenText,
        settings: &RetrainSettings,
        pes: usize,
        observer: &dyn Observer,
    ) -> Result<(Retrained, Vec<Measured>)> {
        let (header, plans) = (self.ck.header(), &self.plan.layers[..]);
        let (_, ids) = text.train.as_ref().expect("read when resolved");
        let measured = RefCell::new(Vec::new());
        // The measuring's own error, kept whole (eie-evaluate's callback carries only its own).
        let failed = RefCell::new(None);
        let measure = |name: &str, stage: &Network, last: Option<&eie_evaluate::EpochStats>| {
            match crate::tokens::stage(
                name,
                Some(stage.density()),
                stage,
                &text.corpus,
                &text.setup,
            ) {
                Ok(mut m) => {
                    m.train_loss = last.map(|e| e.loss);
                    observer.note(&format!("{name}: {}", m.summary()));
                    measured.borrow_mut().push(m);
                    Ok(())
                }
                Err(e) => {
                    let reason = e.to_string();
                    *failed.borrow_mut() = Some(e);
                    Err(eie_evaluate::Error::Config {
                        what: "measuring a retraining stage",
                        reason,
                    })
                }
            }
        };
        let job = Retraining {
            header,
            plans,
            pes,
            data: Some(Samples::Windows {
                tokens: ids,
                context: text.setup.context,
            }),
            held: None,
            measure: Some(&measure),
            settings,
            observer,
            calibration: None,
        };
        let result = retrain(net.clone(), &job, &mut Vec::new());
        match (result, failed.into_inner()) {
            (_, Some(e)) => Err(e),
            (Err(e), None) => Err(e.into()),
            (Ok(r), None) => Ok((r, measured.into_inner())),
        }
    }
}

impl Request {
    /// The original's perplexity, retraining's stages (`retrained`), and every compressed
    /// stage's on the bundle written (a retrained model's rebuilt pruned stage left out: its
    /// pruned weights are not the original ones).
    pub(super) fn measure_tokens(
        &self,
        net: &Network,
        text: &TokenText,
        bundle: &Bundle,
        retrained: Vec<Measured>,
        retrain: Option<&RetrainSettings>,
    ) -> Result<AccuracyReport> {
        let (setup, corpus) = (&text.setup, &text.corpus);
        let first = crate::tokens::original(net, corpus, setup)?;
        let retraining = retrain.is_some();
        let (mut stages, fracs) = crate::tokens::compressed(
            net,
            bundle,
            corpus,
            setup,
            &self.act_frac,
            self.arith,
            !retraining,
        )?;
        stages.splice(0..0, retrained);
        let mut text_report = TextReport::new(setup, corpus, &first, stages.last());
        let speed = text_report.speed.take();
        let d = self.data.as_ref().expect("a text");
        let mut reports = vec![first.report(&first)];
        reports.extend(stages.iter().map(|s| s.report(&first)));
        let notes = match retraining {
            true => vec![format!(
                "not measured: {}: the model was retrained (its retraining stages are above)",
                eie_evaluate::PRUNED_STAGE
            )],
            false => Vec::new(),
        };
        Ok(AccuracyReport {
            dataset: d.spec.to_string(),
            train: text.train.as_ref().map(|(name, _)| name.clone()),
            held_out: format!(
                "{} [bytes {}..{}]",
                d.spec, corpus.bytes[0], corpus.bytes[1]
            ),
            held_out_is_train: crate::language::overlaps(text.train_bytes, corpus.bytes),
            retrain: retrain.map(RetrainReport::from),
            act_frac: fracs,
            stages: reports,
            text: Some(text_report),
            speed,
            notes,
        })
    }
}
