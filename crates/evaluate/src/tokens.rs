//! A token model, given by a model description (`tok65-embed128-lstm256-65`: the paper's
//! language-model kind, an embedding, LSTM layers and a decoder at every token), trained on a
//! token stream by the decoder's loop (nanoGPT's: windows at seeded offsets, AdamW with decay
//! on the matrices, clipping, warm-up and cosine), and its loss on held-out tokens. Every
//! window starts from a zero state, in training and in measuring alike.

use burn::module::{Param, ParamId};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::{Device, Int, Tensor};
use eie_model::Network;

use crate::decoder::stream::{check_stream, ids_of, train_stream};
use crate::decoder::{DecoderTraining, StepStats};
use crate::error::{Error, Result};
use crate::halves::Streamed;
use crate::model::Model;

impl Streamed for Model {
    fn fork(&self) -> Self {
        Model::fork(self)
    }

    fn ids(&self) -> Vec<(ParamId, bool)> {
        let mut ids: Vec<(ParamId, bool)> = self.weights.iter().map(|p| (p.id, true)).collect();
        ids.extend(self.biases.iter().flatten().map(|p| (p.id, false)));
        ids
    }

    fn matrices_mut(&mut self) -> Vec<&mut Param<Tensor<2>>> {
        self.weights.iter_mut().collect()
    }
}

/// The token model's vocabulary; a network that is not one is refused.
fn vocab_of(net: &Network) -> Result<usize> {
    net.vocab().ok_or_else(|| Error::Config {
        what: "model description",
        reason: format!(
            "{} is not a token model (tokV-embedE-...): it does not read text",
            net.describe()
        ),
    })
}

/// Trains token model `net` (its values are where training starts) on `tokens` in windows
/// of `context` tokens; `on_step` sees each step. The trained values replace `net`'s.
pub fn train_tokens(
    net: &mut Network,
    tokens: &[u32],
    context: usize,
    cfg: &DecoderTraining,
    on_step: &mut dyn FnMut(&StepStats),
) -> Result<()> {
    cfg.validate()?;
    let vocab = vocab_of(net)?;
    check_stream(vocab, context, tokens, "training text")?;
    let device = Device::flex().autodiff();
    let model = Model::new(net, &device);
    let shape = &*net;
    let logits = |m: &Model, x: Tensor<2, Int>| m.forward_tokens_taped(shape, x);
    let model = train_stream(
        model,
        &logits,
        context,
        tokens,
        cfg,
        "token model training",
        on_step,
    )?;
    model.store(net)
}

/// The mean next-token cross-entropy (nats per token) of token model `net` on `tokens`:
/// windows of `context + 1` tokens at a stride of `context`, each from a zero state, each
/// position scored once (the last `(len - 1) mod context` tokens, which fill no window, are
/// not).
pub fn tokens_loss(net: &Network, tokens: &[u32], context: usize) -> Result<f64> {
    let vocab = vocab_of(net)?;
    check_stream(vocab, context, tokens, "held-out text")?;
    let device = Device::flex();
    let model = Model::new(net, &device);
    let loss_fn = CrossEntropyLossConfig::new().init(&device);
    let t = context;
    let starts: Vec<usize> = (0..(tokens.len() - 1) / t).map(|w| w * t).collect();
    let (mut sum, mut count) = (0f64, 0usize);
    for chunk in starts.chunks(32) {
        let x = ids_of(tokens, chunk, t, 0, &device);
        let y = ids_of(tokens, chunk, t, 1, &device).reshape([chunk.len() * t]);
        let loss: f32 = loss_fn
            .forward(model.forward_tokens(net, x), y)
            .into_scalar();
        sum += loss as f64 * (chunk.len() * t) as f64;
        count += chunk.len() * t;
    }
    Ok(sum / count as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use eie_model::Arch;

    fn net(text: &str, seed: u64) -> Network {
        Network::init_arch(&text.parse::<Arch>().unwrap(), seed).unwrap()
    }

    /// burn's batched windows give the host reference's logits (the one loop every token
    /// model runs through), to f32 rounding.
    #[test]
    fn burns_windows_are_the_references_tokens() {
        let n = net("tok9-embed6-lstm8x2-5-9", 4);
        let ids: Vec<u32> = (0..14).map(|i| (i * 7 % 9) as u32).collect();
        let device = Device::flex();
        let model = Model::new(&n, &device);
        let x = ids_of(&ids, &[0, 7], 7, 0, &device);
        let got = crate::model::to_vec(model.forward_tokens(&n, x)).unwrap();
        let want: Vec<f32> = [&ids[0..7], &ids[7..14]]
            .iter()
            .flat_map(|w| n.forward_tokens(w))
            .collect();
        assert_eq!(got.len(), want.len());
        for (a, b) in got.iter().zip(&want) {
            assert!((a - b).abs() < 1e-5, "{a} against {b}");
        }
    }

    #[test]
    fn training_lowers_the_loss_and_is_deterministic() {
        let text: Vec<u32> = (0..3000).map(|i| [0, 1, 2, 3, 2, 1][i % 6]).collect();
        let cfg = DecoderTraining {
            steps: 60,
            batch_size: 4,
            lr: 1e-2,
            warmup: 5,
            ..Default::default()
        };
        let start = net("tok4-embed8-lstm16-4", 0);
        let before = tokens_loss(&start, &text, 12).unwrap();
        let pool = |n| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .build()
                .unwrap()
        };
        let mut a = start.clone();
        let mut losses = Vec::new();
        pool(2)
            .install(|| train_tokens(&mut a, &text, 12, &cfg, &mut |s| losses.push(s.loss)))
            .unwrap();
        let after = tokens_loss(&a, &text, 12).unwrap();
        assert!(after < 0.5 * before, "{before} -> {after}");
        let mut b = start.clone();
        pool(1)
            .install(|| train_tokens(&mut b, &text, 12, &cfg, &mut |_| {}))
            .unwrap();
        assert_eq!(a, b);
        assert_eq!(losses.len(), 60);
    }

    /// The classifiers' retraining over a token stream's windows: every stage measured
    /// through the callback in order, pruned weights held at zero through fine-tuning, the
    /// loss lower after masked fine-tuning than after pruning, and the same result twice.
    #[test]
    fn retraining_a_token_model_runs_on_windows_of_text() {
        use eie_pipeline::{Assignments, LAYER_KNOBS, Plan, Quiet, Request};

        let text: Vec<u32> = (0..4000).map(|i| [0, 1, 2, 3, 2, 1][i % 6]).collect();
        let mut net = net("tok4-embed8-lstm16-4", 1);
        let cfg = DecoderTraining {
            steps: 40,
            batch_size: 8,
            lr: 1e-2,
            warmup: 5,
            ..Default::default()
        };
        train_tokens(&mut net, &text, 12, &cfg, &mut |_| {}).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lm.safetensors");
        net.write_safetensors(&path, &Default::default()).unwrap();
        let ck = eie_checkpoint::Checkpoint::open(&path).unwrap();
        let mut cli = Assignments::new();
        cli.set_text(LAYER_KNOBS, "density", "0.4").unwrap();
        let request = Request {
            patterns: &[],
            cli: &cli,
            recipe: None,
            fold_bias: true,
        };
        let plan = Plan::from_matrices(
            crate::described::matrix_plans(ck.header(), &net).unwrap(),
            &request,
        )
        .unwrap();
        let mut settings = crate::RetrainSettings::prune_and_share_only(0);
        settings.fine_tune.epochs = 2;
        settings.fine_tune.lr = 5e-3;
        settings.centroids.epochs = 1;
        let run = || {
            let seen = std::cell::RefCell::new(Vec::new());
            let measure = |name: &str, stage: &Network, _: Option<&crate::EpochStats>| {
                let loss = tokens_loss(stage, &text[..1201], 12)?;
                seen.borrow_mut()
                    .push((name.to_string(), loss, stage.density()));
                Ok(())
            };
            let job = crate::Retraining {
                header: ck.header(),
                plans: &plan.layers,
                pes: 2,
                data: Some(crate::Samples::Windows {
                    tokens: &text,
                    context: 12,
                }),
                held: None,
                measure: Some(&measure),
                settings: &settings,
                observer: &Quiet,
                calibration: None,
            };
            let retrained = crate::retrain(net.clone(), &job, &mut Vec::new()).unwrap();
            (retrained, seen.into_inner())
        };
        let (a, seen) = run();
        let names: Vec<&str> = seen.iter().map(|s| s.0.as_str()).collect();
        assert_eq!(
            names,
            [
                "pruned",
                "masked fine-tuning",
                "weight-shared",
                "centroid fine-tuning"
            ]
        );
        // Pruned weights stay pruned; fine-tuning wins back some of what pruning cost.
        assert!(seen.iter().all(|s| (s.2 - 0.4).abs() < 0.02), "{seen:?}");
        assert!(seen[1].1 < seen[0].1, "{seen:?}");
        assert_eq!(a.decided.len(), 3);
        let (b, again) = run();
        assert_eq!(seen, again);
        assert_eq!(format!("{:?}", a.decided), format!("{:?}", b.decided));
    }

    #[test]
    fn bad_streams_and_other_networks_are_refused() {
        let n = net("tok4-embed8-lstm16-4", 0);
        let e = tokens_loss(&n, &[0; 8], 8).unwrap_err().to_string();
        assert!(e.contains("needs at least 9"), "{e}");
        let e = tokens_loss(&n, &[7; 20], 8).unwrap_err().to_string();
        assert!(e.contains("token id 7"), "{e}");
        let e = tokens_loss(&net("4-3", 0), &[0; 20], 8)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a token model"), "{e}");
    }
}
