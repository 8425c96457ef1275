//! `train --dataset text:FILE --arch tok-embed128-lstm256`: a token model (the paper's LSTM
//! language-model kind: an embedding, LSTM layers and a decoder at every token) trained on a
//! text's characters by the decoder's recipe, written as a folder of `model.safetensors` (in
//! PyTorch's layout, its description recorded) and the `tokenizer.json` that `eval`,
//! `compress` and `simulate` read beside it.

use std::collections::BTreeMap;
use std::time::Instant;

use eie_checkpoint::Checkpoint;
use eie_dataset::Spec;
use eie_evaluate::tokens::{tokens_loss, train_tokens};
use eie_evaluate::{Arch, Network};
use eie_pipeline::Observer;
use eie_pipeline::output::{file_sha256, language_hash_key};
use eie_text::UNKNOWN_TOKEN;

use super::language::{HeldOut, LanguageReport, Staged, StepLog};
use super::{Request, meta};
use crate::error::{Error, Result};
use crate::language::too_short;
use crate::report::Schema;
use crate::tokens::{CONTEXT_KEY, DEFAULT_TOKEN_CONTEXT, MAX_TOKEN_CONTEXT};

/// The description `given` with the tokenizer's vocabulary: `tok-REST` completed as
/// `tokV-REST-V` (the last Linear gives the next token's logits), or a whole description
/// whose vocabulary must be `vocab`.
fn complete(given: &str, vocab: usize) -> Result<Arch> {
    let text = match given.strip_prefix("tok-") {
        Some(rest) => {
            // The last item a Linear: the vocabulary's Linear written out, or a layer that
            // completion would bury under another Linear and a ReLU.
            let last = rest.rsplit('-').next().unwrap_or(rest);
            let body = last.split_once('=').map_or(last, |(_, b)| b);
            if body.starts_with(|c: char| c.is_ascii_digit()) {
                return Err(Error::Unfit {
                    reason: format!(
                        "{given}: a description written tok-... leaves out the vocabulary and the Linear that gives the next token's logits (train adds tokV and -V); leave out the last Linear, or write the whole description"
                    ),
                });
            }
            format!("tok{vocab}-{rest}-{vocab}")
        }
        None => given.to_string(),
    };
    let arch: Arch = text.parse().map_err(Error::Model)?;
    if arch.vocab() != Some(vocab) {
        return Err(Error::Unfit {
            reason: format!(
                "{given}: the text's tokenizer has {vocab} tokens (its characters and {UNKNOWN_TOKEN}); describe the model as tok-embedE-lstmH (train fills in the vocabulary) or as tok{vocab}-...-{vocab}"
            ),
        });
    }
    Ok(arch)
}

impl Request {
    pub(super) fn tokens(&self, observer: &dyn Observer) -> Result<LanguageReport> {
        let start = Instant::now();
        let Spec::Text { path } = &self.data.spec else {
            unreachable!("only text comes here")
        };
        let cfg = self.settings.decoder()?;
        if self.data.scale.is_set() {
            return Err(Error::NotApplicable {
                option: "--scale, --mean and --std",
                applies_to: "datasets of numbers (text is read as characters)".into(),
            });
        }
        let context = self.context.unwrap_or(DEFAULT_TOKEN_CONTEXT);
        if !(2..=MAX_TOKEN_CONTEXT).contains(&context) {
            return Err(Error::Option {
                option: "--context".into(),
                reason: format!("{context} tokens: expected 2..={MAX_TOKEN_CONTEXT}"),
            });
        }
        // The description's grammar, before any work (its vocabulary comes from the text).
        let probe = self
            .arch
            .strip_prefix("tok-")
            .map_or_else(|| self.arch.clone(), |rest| format!("tok1-{rest}-1"));
        probe.parse::<Arch>().map_err(Error::Model)?;
        let Staged {
            held_bytes,
            mut estimate,
            text,
            staging,
            tokenizer_path,
            tokenizer,
        } = self.stage_text(path)?;
        let vocab = tokenizer.vocab_size();
        let arch = complete(&self.arch, vocab)?;
        let tokens = tokenizer.encode(&text.text, false)?;
        if tokens.len() <= context {
            return Err(too_short("", path, &text, tokens.len(), context));
        }
        let fp = arch.footprint()?;
        // The values twice (a step's second half runs on a fork of them); a window's every
        // token's values; the held-out loss runs 32 windows at a time.
        estimate.training(
            2 * fp.weights,
            fp.values.saturating_mul(context as u64),
            cfg.batch_size.max(32),
        );
        estimate.add(format!("{} tokens", tokens.len()), tokens.len() as u64 * 4);
        estimate.check(self.data.max_memory)?;
        let held = held_bytes
            .map(|b| self.held_out(path, b, &tokenizer, context))
            .transpose()?;
        observer.note(&format!(
            "training {arch} ({} values) on {} tokens of {} ({} characters and {UNKNOWN_TOKEN}), {} steps of {} windows of {context}",
            fp.weights,
            tokens.len(),
            self.data.spec,
            vocab - 1,
            cfg.steps,
            cfg.batch_size
        ));
        let mut net = Network::init_arch(&arch, cfg.seed)?;
        let mut log = StepLog::new(cfg.steps);
        train_tokens(&mut net, &tokens, context, &cfg, &mut |s| {
            log.see(s, observer)
        })?;
        let final_loss = log.final_loss();
        let held_out = HeldOut::measured(held, |ids| Ok(tokens_loss(&net, ids, context)?))?;
        let mut metadata = BTreeMap::from([
            ("format".to_string(), "pt".to_string()),
            ("eie.tool_version".into(), crate::tool_version()),
            (meta::ARCH.into(), arch.to_string()),
            (CONTEXT_KEY.into(), context.to_string()),
            (meta::DATASET.into(), self.data.spec.to_string()),
            (meta::RANGE.into(), format!("{}..{}", text.start, text.end)),
            ("eie.final_loss".into(), format!("{final_loss:.6}")),
            ("eie.steps".into(), cfg.steps.to_string()),
            ("eie.seed".into(), cfg.seed.to_string()),
            ("eie.lr".into(), cfg.lr.to_string()),
            ("eie.batch_size".into(), cfg.batch_size.to_string()),
            ("eie.weight_decay".into(), cfg.weight_decay.to_string()),
        ]);
        if let Some(h) = &held_out {
            metadata.insert("eie.eval_loss".into(), format!("{:.6}", h.loss));
        }
        // What --force later recognises as this tool's: the tokenizer's hash, recorded here.
        let hash = file_sha256(&tokenizer_path).ok_or_else(|| Error::Unfit {
            reason: format!("cannot read back {}", tokenizer_path.display()),
        })?;
        metadata.insert(language_hash_key("tokenizer.json"), hash);
        let model = staging.path().join("model.safetensors");
        net.write_safetensors(&model, &metadata)?;
        // The checkpoint must be one this tool's own reader takes, as every other command will.
        Network::from_arch_checkpoint(&Checkpoint::open(&model)?, &arch)?;
        staging.publish()?;
        Ok(LanguageReport {
            schema: Schema("train"),
            arch: arch.to_string(),
            data: format!("{} [bytes {}..{}]", self.data.spec, text.start, text.end),
            tokens: tokens.len(),
            vocab,
            parameters: fp.weights as usize,
            steps: cfg.steps,
            final_loss,
            held_out,
            out: self.out.clone(),
            elapsed: start.elapsed(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_description_without_its_vocabulary_is_completed_and_a_wrong_one_refused() {
        assert_eq!(
            complete("tok-embed8-lstm16", 66).unwrap().to_string(),
            "tok66-embed8-lstm16-66"
        );
        complete("tok66-embed8-lstm16-66", 66).unwrap();
        let e = complete("tok-embed8-lstm16-66", 66)
            .unwrap_err()
            .to_string();
        assert!(e.contains("leave out the last Linear"), "{e}");
        let e = complete("tok65-embed8-lstm16-65", 66)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("66 tokens") && e.contains("tok-embedE-lstmH"),
            "{e}"
        );
    }
}
