//! `compress` of a Hugging Face language model folder: its linear layers planned by their
//! Hugging Face names (crate::language::plan), and with `--dataset text:FILE` every stage's
//! perplexity on the text.

use eie_dataset::Spec;
use eie_evaluate::RetrainSettings;
use eie_evaluate::decoder::DecoderShape;
use eie_format::Bundle;
use eie_pipeline::{Plan, RunSettings};
use eie_text::Text;
use eie_transformer::{Folder, Pooling};

use super::{AccuracyReport, Request, RetrainReport};
use crate::budget::Estimate;
use crate::error::{Error, Result};
use crate::language::{
    Corpus, Measured, Metric, TextReport, TextSetup, bytes_of, compressed, original, too_short,
};

/// A language model folder, resolved: the folder, and the text it is measured on.
#[derive(Debug)]
pub(super) struct Language {
    /// The folder (its config and checkpoint).
    pub folder: Folder,
    /// With a dataset: the text, and its tokens (read before the long work: a text nothing
    /// of which would be scored is refused first).
    pub text: Option<(TextSetup, Corpus)>,
    /// With retraining: the model eie-evaluate retrains.
    pub student: Option<Retrainee>,
    /// With retraining: the training text (`--range`) and what it trains on.
    pub train: Option<(String, Training)>,
    /// With retraining: the training text's bytes (ends on character boundaries).
    pub train_bytes: Option<[u64; 2]>,
    /// Distillation's teacher when it is not the original (`--teacher`), checked against
    /// the model: the same tokenizer, and what the student learns from of the same size.
    pub teacher: Option<Folder>,
    /// The original's stage on the text, measured once (an encoder's retraining compares
    /// its stages with it before the images are measured).
    pub original: std::cell::OnceCell<Measured>,
}

impl Language {
    /// The original model's stage on the text (measured on the first call).
    pub(super) fn original(&self) -> Result<&Measured> {
        if let Some(m) = self.original.get() {
            return Ok(m);
        }
        let (setup, corpus) = self.text.as_ref().expect("measured with a text");
        let m = original(&self.folder, corpus, setup)?;
        Ok(self.original.get_or_init(|| m))
    }
}

/// The model a language model's retraining trains in burn.
#[derive(Debug)]
pub(super) enum Retrainee {
    /// A LLaMA-family decoder, on next tokens or its teacher's distributions.
    Decoder(DecoderShape),
    /// A sentence encoder, toward its teacher's sentence embeddings.
    Encoder(Pooling),
}

/// What the training text gives retraining.
#[derive(Debug)]
pub(super) enum Training {
    /// A decoder's: the token ids.
    Tokens(Vec<u32>),
    /// An encoder's: the distinct lines' ids, each as the encoder runs it
    /// (`[CLS] ... [SEP]`).
    Sentences(Vec<Vec<u32>>),
}

impl Request {
    /// What a language model folder refuses, its plan and its text, every check before any
    /// work.
    pub(super) fn resolve_language(
        &self,
        folder: Folder,
        teacher: Option<Folder>,
        request: &eie_pipeline::Request,
        run: &RunSettings,
        retrain: Option<&RetrainSettings>,
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
                let mut estimate = setup.estimate(&folder, 2);
                let student = match retrain {
                    Some(settings) => Some(self.retrainee(
                        &folder,
                        teacher.as_ref(),
                        &setup,
                        path,
                        settings,
                        &mut estimate,
                    )?),
                    None => None,
                };
                if student.is_some() && self.calibration.is_some() {
                    // Calibrated retraining holds the statistics through the training.
                    estimate.add(
                        "the calibration statistics, held through retraining",
                        plan.calibration_bytes(),
                    );
                }
                estimate.check(d.max_memory)?;
                let corpus = setup.load()?;
                Some((setup, corpus, student))
            }
        };
        let (text, student) = match text {
            Some((setup, corpus, student)) => (Some((setup, corpus)), student),
            None => (None, None),
        };
        let (train, train_bytes) = match (&text, &student) {
            (Some((setup, _)), Some(student)) => {
                let (name, training, bytes) = self.training_text(&folder, setup, student)?;
                (Some((name, training)), Some(bytes))
            }
            _ => (None, None),
        };
        Ok((
            plan,
            Language {
                folder,
                text,
                student,
                train,
                train_bytes,
                teacher,
                original: std::cell::OnceCell::new(),
            },
        ))
    }

    /// What retraining trains (a decoder, or a sentence encoder by distillation), every
    /// check on the folder, its teacher and the settings done, its memory added to
    /// `estimate`; a masked-LM encoder refused.
    fn retrainee(
        &self,
        folder: &Folder,
        teacher: Option<&Folder>,
        setup: &TextSetup,
        path: &std::path::Path,
        settings: &RetrainSettings,
        estimate: &mut Estimate,
    ) -> Result<Retrainee> {
        let d = self.data.as_ref().expect("a text");
        if !settings.share_schedule.is_empty() {
            return Err(Error::NotApplicable {
                option: "the recipe's [retrain] share_schedule",
                applies_to: "classifiers (incremental weight sharing is not implemented for language models)".into(),
            });
        }
        let (a, b) = bytes_of(path, d.range)?;
        let batch = settings
            .fine_tune
            .batch_size
            .max(settings.centroids.batch_size);
        match setup.metric {
            Metric::NextToken => {
                let shape = crate::language::decoder_shape(folder, setup.context)?;
                crate::language::check_tensors(folder, &shape)?;
                let vocab = folder.config.vocab;
                // The decoder in burn (a step's second half on a fork of its
                // values) and the training text, tokenized.
                estimate
                    .training(
                        2 * shape.parameters(vocab) as u64,
                        shape.window_values(vocab) as u64,
                        batch,
                    )
                    .add(
                        format!("{} bytes of training text, tokenized", b - a),
                        (b - a).saturating_mul(448),
                    );
                if settings.distill {
                    estimate.add(
                        "distillation's teacher (the original decoder) and a step's next-token distributions",
                        4 * shape.parameters(vocab) as u64
                            + 8 * batch as u64 * (shape.context * vocab) as u64,
                    );
                }
                if let Some(t) = teacher {
                    let ts = crate::language::check_teacher(folder, t, settings, &shape)?;
                    estimate.add(
                        format!("the teacher {}", t.dir.display()),
                        4 * ts.parameters(vocab) as u64,
                    );
                }
                Ok(Retrainee::Decoder(shape))
            }
            Metric::Sentences { pooling, .. } => {
                crate::language::check_encoder(folder, settings)?;
                let (params, window) = eie_evaluate::encoder::sizes(&folder.config, setup.context);
                // The encoder in burn (its float model read first, then a
                // fork), the training sentences, and the teacher's embeddings.
                estimate
                    .training(2 * params, window, batch)
                    .add(
                        format!("{} bytes of training text, tokenized", b - a),
                        (b - a).saturating_mul(448),
                    )
                    .add(
                        "the original encoder, read once, and the teacher's sentence embeddings",
                        4 * params
                            + 4 * (eie_transformer::pooled::MAX_SENTENCES * folder.config.hidden)
                                as u64,
                    );
                if let Some(t) = teacher {
                    crate::language::check_encoder_teacher(folder, t, settings, setup.context)?;
                    let (params, _) = eie_evaluate::encoder::sizes(&t.config, setup.context);
                    estimate.add(format!("the teacher {}", t.dir.display()), 4 * params);
                }
                Ok(Retrainee::Encoder(pooling))
            }
            Metric::Masked(_) => Err(Error::NotApplicable {
                option: "--retrain",
                applies_to: format!(
                    "LLaMA-family decoders, and encoders without a head measured by their sentence embeddings (by distillation); {} has a masked-LM head",
                    folder.dir.display()
                ),
            }),
        }
    }

    /// Retraining's text (`--range` of the dataset), read and checked: a decoder's token
    /// ids (more than one window of them), or an encoder's distinct lines, each as it runs
    /// (`[CLS] ... [SEP]`). Returns its description, what it trains on, and its bytes.
    fn training_text(
        &self,
        folder: &Folder,
        setup: &TextSetup,
        student: &Retrainee,
    ) -> Result<(String, Training, [u64; 2])> {
        let d = self.data.as_ref().expect("a text");
        let Spec::Text { path } = &d.spec else {
            unreachable!("checked when the text was resolved")
        };
        let t = Text::load(path, Some(bytes_of(path, d.range)?))?;
        let (start, end) = (t.start, t.end);
        let name = format!("{} [bytes {start}..{end}]", d.spec);
        let shape = match student {
            Retrainee::Encoder(_) => {
                let (cls, sep) = setup.specials();
                let corpus = setup.load_sentences(t)?;
                let sentences = corpus.sentences.expect("loaded as sentences").ids;
                let wrapped = sentences
                    .iter()
                    .map(|s| [&[cls][..], s, &[sep]].concat())
                    .collect();
                return Ok((name, Training::Sentences(wrapped), [start, end]));
            }
            Retrainee::Decoder(shape) => shape,
        };
        let ids = setup.tokenizer.encode(&t.text, false)?;
        if let Some(p) = ids
            .iter()
            .position(|&id| id as usize >= folder.config.vocab)
        {
            return Err(Error::Unfit {
                reason: format!(
                    "{} [bytes {start}..{end}]: token id {} at position {p} (by {}) is beyond the vocabulary of {} (config.json vocab_size)",
                    path.display(),
                    ids[p],
                    setup.tokenizer.path().display(),
                    folder.config.vocab
                ),
            });
        }
        if ids.len() <= shape.context {
            return Err(too_short(
                "retraining: ",
                path,
                &t,
                ids.len(),
                shape.context,
            ));
        }
        Ok((name, Training::Tokens(ids), [start, end]))
    }

    /// With a text: the original's perplexity and every compressed stage's on the bundle
    /// written.
    /// With retraining, its stages (`retrained`) stand between the original and the stages
    /// rebuilt from the images, whose pruned stage (the original values at the retrained
    /// positions) is left out.
    pub(super) fn measure_language(
        &self,
        language: &Language,
        bundle: &Bundle,
        retrained: Vec<Measured>,
        retrain: Option<&RetrainSettings>,
    ) -> Result<Option<AccuracyReport>> {
        let Some((setup, corpus)) = &language.text else {
            return Ok(None);
        };
        let folder = &language.folder;
        let first = language.original()?.clone();
        let (mut stages, fracs, notes) = compressed(
            folder,
            bundle,
            corpus,
            setup,
            &first,
            &self.act_frac,
            self.arith,
        )?;
        // The bundle records the retraining, so the images' own pruned stage is left out.
        stages.splice(0..0, retrained);
        let mut text = TextReport::new(setup, corpus, &first, stages.last());
        let speed = text.speed.take();
        let held = format!(
            "{} [bytes {}..{}]",
            self.data.as_ref().expect("a text").spec,
            corpus.bytes[0],
            corpus.bytes[1]
        );
        let mut reports = vec![first.report(&first)];
        reports.extend(stages.iter().map(|s| s.report(&first)));
        Ok(Some(AccuracyReport {
            dataset: self.data.as_ref().expect("a text").spec.to_string(),
            train: language.train.as_ref().map(|(name, _)| name.clone()),
            held_out: held,
            held_out_is_train: crate::language::overlaps(language.train_bytes, corpus.bytes),
            retrain: retrain.map(RetrainReport::from),
            act_frac: fracs,
            stages: reports,
            text: Some(text),
            speed,
            notes,
        }))
    }
}
