//! `compress --calibration`: the samples calibration statistics are gathered on, checked
//! before any work, and the float model's one pass over them that gathers every layer's.

use std::collections::BTreeMap;
use std::time::Instant;

use eie_checkpoint::Checkpoint;
use eie_dataset::{Dataset, Spec};
use eie_evaluate::Network;
use eie_pipeline::{Calibration, Observer, Plan};
use eie_text::Text;
use eie_transformer::Folder;

use super::Request;
use crate::budget::Estimate;
use crate::error::{Error, Result};
use crate::inputs::CalibrationRequest;
use crate::language::{Metric, TextSetup};

/// Bytes of text read per calibration token at most (a character tokenizer takes one, BPE
/// about four): the text read is bounded by the tokens asked for, not by the file.
const BYTES_PER_TOKEN: u64 = 16;

/// Calibration samples, read and checked: what the one float pass runs on.
pub(super) enum Calibrating {
    /// A language model's windows of token ids.
    Text {
        /// The windows, each the model's context (an encoder's with `[CLS]` and `[SEP]`).
        windows: Vec<Vec<u32>>,
        /// In words.
        source: String,
    },
    /// An MLP's input vectors.
    Samples {
        /// The network of the planned layers.
        net: Box<Network>,
        /// The samples.
        data: Dataset,
        /// In words.
        source: String,
    },
}

impl Calibrating {
    /// The samples, in words (model.eie's `calibration`).
    pub fn source(&self) -> &str {
        match self {
            Calibrating::Text { source, .. } | Calibrating::Samples { source, .. } => source,
        }
    }

    /// Runs the float model once over the samples, gathering the statistics every planned
    /// layer's settings need.
    pub fn run(
        &self,
        plan: &Plan,
        folder: Option<&Folder>,
        observer: &dyn Observer,
    ) -> Result<Calibration> {
        let start = Instant::now();
        let wanted: BTreeMap<String, bool> = plan
            .layers
            .iter()
            .filter(|l| l.settings.needs_calibration())
            .map(|l| (l.name.clone(), l.settings.needs_hessian()))
            .collect();
        let layers = match self {
            Calibrating::Text { windows, .. } => {
                let folder = folder.expect("text calibration is of a language model folder");
                let refs: Vec<&[u32]> = windows.iter().map(Vec::as_slice).collect();
                eie_transformer::calibrate::calibrate(folder, &refs, &wanted)?
            }
            Calibrating::Samples { net, data, .. } => {
                let names: Vec<String> = net.layers().iter().map(|l| l.name.clone()).collect();
                let mut stats: Vec<Option<eie_calibrate::Stats>> = names
                    .iter()
                    .zip(net.layers())
                    .map(|(n, l)| {
                        wanted
                            .get(n)
                            .map(|&h| eie_calibrate::Stats::new(l.inputs, h))
                    })
                    .collect();
                let mut failed = None;
                for i in 0..data.len() {
                    net.inputs_of(data.input(i), &mut |layer, x| {
                        if let Some(Some(s)) = stats.get_mut(layer)
                            && let Err(e) = s.add(x, 1)
                        {
                            failed.get_or_insert((layer, e));
                        }
                    });
                }
                if let Some((layer, e)) = failed {
                    return Err(Error::Unfit {
                        reason: format!("calibrating {}: {e}", names[layer]),
                    });
                }
                names
                    .into_iter()
                    .zip(stats)
                    .filter_map(|(n, s)| s.map(|s| (n, s)))
                    .collect()
            }
        };
        observer.note(&format!(
            "calibration: {} layers' statistics from {} in {:.2} s",
            layers.len(),
            self.source(),
            start.elapsed().as_secs_f64()
        ));
        Ok(Calibration {
            layers,
            source: self.source().to_string(),
        })
    }
}

impl Request {
    /// The calibration a plan needs, its samples read and checked: none when no layer's
    /// settings need statistics, and an error when they do but no samples were given (or
    /// the reverse), or when the model is one calibration does not yet run on.
    pub(super) fn resolve_calibration(
        &self,
        ck: &Checkpoint,
        plan: &Plan,
        folder: Option<&Folder>,
        described: bool,
        chosen: bool,
    ) -> Result<Option<Calibrating>> {
        let needs = plan.needs_calibration();
        if !needs && self.calibration.is_none() {
            return Ok(None);
        }
        // What calibration does not run on yet, said before asking for samples.
        if described {
            return Err(Error::NotApplicable {
                option: "--calibration",
                applies_to: format!(
                    "Hugging Face language model folders and MLPs (prune_score activation, update obs and codebook_weight activation too); {} is a described model (a CNN, an LSTM or a token model), whose calibration is not implemented yet",
                    self.model.display()
                ),
            });
        }
        let Some(calibration) = &self.calibration else {
            return Err(Error::Option {
                option: "--calibration".into(),
                reason: "prune_score activation, update obs and codebook_weight activation gather statistics on calibration samples: give --calibration".into(),
            });
        };
        if !needs {
            return Err(Error::Option {
                option: "--calibration".into(),
                reason: "no layer's settings use calibration statistics (give --prune-score activation, --update obs or --codebook-weight activation)".into(),
            });
        }
        let mut estimate = Estimate::default();
        estimate
            .add(
                "the calibration statistics (column norms; Hessians with update obs)",
                plan.calibration_bytes(),
            )
            .add(
                "the largest calibrated layer's working set (its copies, the update's factor)",
                plan.calibrated_working_bytes(),
            );
        match folder {
            Some(f) => self.calibration_text(f, calibration, estimate).map(Some),
            None => self
                .calibration_samples(ck, plan, chosen, calibration, estimate)
                .map(Some),
        }
    }

    /// A language model's calibration windows: the first ones of the text's range, each the
    /// model's context (an encoder's wrapped in `[CLS]` and `[SEP]`).
    fn calibration_text(
        &self,
        f: &Folder,
        calibration: &CalibrationRequest,
        parts: Estimate,
    ) -> Result<Calibrating> {
        let (c, samples) = (&calibration.data, calibration.samples);
        let Spec::Text { path } = &c.spec else {
            return Err(Error::Unfit {
                reason: format!(
                    "--calibration {}: {} is a language model; calibrate it on text (text:FILE)",
                    c.spec,
                    self.model.display()
                ),
            });
        };
        let setup = TextSetup::resolve(f, path, c.range, None, None)?;
        // The float model and a window's activations, as eval counts them.
        let mut estimate = setup.estimate(f, 1);
        estimate.extend(parts);
        let tokens = match setup.metric {
            Metric::NextToken => setup.context,
            _ => setup.context - 2,
        };
        let want = (samples * tokens) as u64;
        let (a, b) = setup.bytes;
        let end = b.min(a.saturating_add(want.saturating_mul(BYTES_PER_TOKEN)));
        estimate.add(
            "the calibration text, tokenized",
            (end - a).saturating_mul(448),
        );
        estimate.check(c.max_memory)?;
        let text = Text::load(path, Some((a, end)))?;
        let ids = setup.tokenizer.encode(&text.text, false)?;
        let vocab = f.config.vocab;
        if let Some(p) = ids.iter().position(|&id| id as usize >= vocab) {
            return Err(Error::Unfit {
                reason: format!(
                    "{} [bytes {}..{}]: token id {} at position {p} is beyond the vocabulary of {vocab} (config.json vocab_size)",
                    path.display(),
                    text.start,
                    text.end,
                    ids[p]
                ),
            });
        }
        let windows: Vec<Vec<u32>> = ids
            .chunks_exact(tokens)
            .take(samples)
            .map(|w| match setup.metric {
                Metric::NextToken => w.to_vec(),
                Metric::Masked(s) => [&[s.cls][..], w, &[s.sep]].concat(),
                Metric::Sentences { cls, sep, .. } => [&[cls][..], w, &[sep]].concat(),
            })
            .collect();
        if windows.is_empty() {
            return Err(Error::Unfit {
                reason: format!(
                    "--calibration {}: [bytes {}..{}] holds {} tokens, fewer than one window of {tokens}; give more text",
                    c.spec,
                    text.start,
                    text.end,
                    ids.len()
                ),
            });
        }
        let source = format!(
            "the first {} windows of {} tokens of {} [bytes {}..{}]",
            windows.len(),
            windows[0].len(),
            c.spec,
            text.start,
            text.end
        );
        Ok(Calibrating::Text { windows, source })
    }

    /// An MLP's calibration samples: the first ones of the dataset's range, scaled as the
    /// model records, checked against the network of the planned layers.
    fn calibration_samples(
        &self,
        ck: &Checkpoint,
        plan: &Plan,
        chosen: bool,
        calibration: &CalibrationRequest,
        mut estimate: Estimate,
    ) -> Result<Calibrating> {
        let (c, samples) = (&calibration.data, calibration.samples);
        if matches!(c.spec, Spec::Text { .. }) {
            return Err(Error::Unfit {
                reason: format!(
                    "--calibration {}: {} is not a language model folder; calibrate it on its own inputs (an image dataset)",
                    c.spec,
                    self.model.display()
                ),
            });
        }
        let names = plan.names();
        eie_evaluate::check_whole_network(ck, &names, chosen)?;
        let net = Network::from_checkpoint(ck, &names).map_err(|e| Error::Context {
            context: "the compressed layers, as a network (calibration runs an MLP)",
            source: Box::new(e.into()),
        })?;
        let scaling = c.scaling(&ck.metadata())?;
        let shape = c.shape()?;
        let take = c.count(shape, None)?.min(samples);
        let first = c.range.and_then(|r| r.start).unwrap_or(0);
        let range = eie_dataset::SampleRange {
            start: Some(first),
            end: Some(first + take),
        };
        let (weights, values) =
            crate::budget::mlp_footprint(plan.layers.iter().map(|l| (l.rows, l.inputs)));
        estimate
            .inference(weights, values, take)
            .samples(take, shape.width);
        estimate.check(c.max_memory)?;
        let data = c.load_estimated(Some(range), &scaling)?;
        net.check_dataset(&data)?;
        let source = format!("{} [samples {}..{}]", c.spec, first, first + take);
        Ok(Calibrating::Samples {
            net: Box::new(net),
            data,
            source,
        })
    }
}
