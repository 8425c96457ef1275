//! The shape of a decoder `train` makes, from its description
//! (`llama:layers=4,heads=4,width=128,context=64`), and the Hugging Face `config.json` that
//! describes it to `transformers` and to this project's own reader.

use std::fmt;
use std::str::FromStr;

use serde_json::{Value, json};

use crate::error::{Error, Result};

/// The description's prefix: the family `transformers` loads the folder as.
pub const FAMILY: &str = "llama";

/// RMSNorm's default epsilon (Llama 2's).
pub const NORM_EPS: f64 = 1e-5;

/// A LLaMA-style decoder's sizes: RMSNorm, rotary positions, SwiGLU, grouped-query attention,
/// no biases; the vocabulary comes from the tokenizer.
#[derive(Debug, Clone, PartialEq)]
pub struct DecoderShape {
    /// Decoder blocks.
    pub layers: usize,
    /// Query heads.
    pub heads: usize,
    /// Key/value heads (dividing `heads`; fewer is grouped-query attention).
    pub kv_heads: usize,
    /// Model width.
    pub width: usize,
    /// The MLP's inner width.
    pub mlp: usize,
    /// Positions: the longest window trained on and evaluated.
    pub context: usize,
    /// Whether the head shares the token embedding's values.
    pub tied: bool,
    /// Rotary positions' base.
    pub theta: f64,
    /// RMSNorm's epsilon.
    pub eps: f64,
}

impl Default for DecoderShape {
    /// nanoGPT's CPU setting for Shakespeare (4 layers, 4 heads, width 128, context 64),
    /// with SwiGLU's usual 8/3 inner width rounded up to a multiple of 64.
    fn default() -> Self {
        Self {
            layers: 4,
            heads: 4,
            kv_heads: 4,
            width: 128,
            mlp: 384,
            context: 64,
            tied: true,
            theta: 10000.0,
            eps: NORM_EPS,
        }
    }
}

/// The most of each size a description may ask for (a model far past what CPU training
/// can do is refused before any memory is taken).
const LIMITS: [(&str, usize); 5] = [
    ("layers", 256),
    ("heads", 256),
    ("width", 16384),
    ("mlp", 65536),
    ("context", 8192),
];

fn bad(reason: String) -> Error {
    Error::Config {
        what: "decoder description",
        reason,
    }
}

impl DecoderShape {
    /// Width of one head.
    pub fn head_dim(&self) -> usize {
        self.width / self.heads
    }

    /// Width of the keys (and of the values).
    pub fn kv_width(&self) -> usize {
        self.kv_heads * self.head_dim()
    }

    /// Trainable values with a vocabulary of `vocab` tokens.
    pub fn parameters(&self, vocab: usize) -> usize {
        let d = self.width;
        let block = 2 * d + d * d * 2 + 2 * d * self.kv_width() + 3 * d * self.mlp;
        vocab * d * if self.tied { 1 } else { 2 } + self.layers * block + d
    }

    /// Values a window's forward pass produces (what training keeps for the backward pass):
    /// per block the norms, q, k, v and their rotated copies, the attention's scores and
    /// weights per head, its output and the MLP's products; then the logits and their
    /// softmax.
    pub fn window_values(&self, vocab: usize) -> usize {
        let (d, t) = (self.width, self.context);
        t * (self.layers * (10 * d + 3 * self.heads * t + 4 * self.mlp) + 3 * vocab)
    }

    fn check(&self) -> Result<()> {
        let sizes = [self.layers, self.heads, self.width, self.mlp, self.context];
        for ((name, limit), v) in LIMITS.iter().zip(sizes) {
            if v == 0 || v > *limit {
                return Err(bad(format!("{name}={v}: expected 1..={limit}")));
            }
        }
        if self.context < 2 {
            return Err(bad(format!(
                "context={}: a window needs at least 2 tokens",
                self.context
            )));
        }
        if !self.width.is_multiple_of(self.heads) || !self.head_dim().is_multiple_of(2) {
            return Err(bad(format!(
                "{} heads must divide the width {} into even head widths (rotary positions rotate pairs)",
                self.heads, self.width
            )));
        }
        if self.kv_heads == 0 || !self.heads.is_multiple_of(self.kv_heads) {
            return Err(bad(format!(
                "kv-heads={} must divide heads={}",
                self.kv_heads, self.heads
            )));
        }
        if !(self.eps.is_finite() && self.eps > 0.0 && self.eps < 1.0) {
            return Err(bad(format!(
                "eps={}: expected a number in (0, 1)",
                self.eps
            )));
        }
        if !(self.theta.is_finite() && self.theta > 1.0) {
            return Err(bad(format!(
                "theta={}: expected a number above 1",
                self.theta
            )));
        }
        Ok(())
    }

    /// The folder's `config.json` for a vocabulary of `vocab` tokens: a `LlamaForCausalLM`
    /// that `transformers` builds as it is, with this tool's version recorded.
    pub fn config_json(&self, vocab: usize, tool_version: &str) -> Value {
        json!({
            "architectures": ["LlamaForCausalLM"],
            "model_type": FAMILY,
            "vocab_size": vocab,
            "hidden_size": self.width,
            "intermediate_size": self.mlp,
            "num_hidden_layers": self.layers,
            "num_attention_heads": self.heads,
            "num_key_value_heads": self.kv_heads,
            "head_dim": self.head_dim(),
            "max_position_embeddings": self.context,
            "rms_norm_eps": self.eps,
            "rope_theta": self.theta,
            "rope_scaling": null,
            "hidden_act": "silu",
            "attention_bias": false,
            "mlp_bias": false,
            "tie_word_embeddings": self.tied,
            "initializer_range": 0.02,
            "torch_dtype": "float32",
            "bos_token_id": null,
            "eos_token_id": null,
            "eie_compress": {"tool_version": tool_version, "description": self.to_string()},
        })
    }
}

impl FromStr for DecoderShape {
    type Err = Error;

    /// `llama:KEY=VALUE,...` with keys layers, heads, kv-heads, width, mlp, context, tied,
    /// theta, eps; each one missing takes [`DecoderShape::default`]'s value (kv-heads: heads;
    /// mlp: 8/3 of the width rounded up to a multiple of 64).
    fn from_str(s: &str) -> Result<Self> {
        let Some(rest) = s
            .strip_prefix(FAMILY)
            .and_then(|r| r.strip_prefix(':').or(r.is_empty().then_some("")))
        else {
            return Err(bad(format!(
                "\"{s}\": expected {FAMILY}:KEY=VALUE,... (keys layers, heads, kv-heads, width, mlp, context, tied, theta, eps)"
            )));
        };
        let mut shape = Self::default();
        let (mut kv, mut mlp) = (None, None);
        let mut seen = Vec::new();
        for item in rest.split(',').filter(|i| !i.is_empty()) {
            let Some((key, value)) = item.split_once('=') else {
                return Err(bad(format!("\"{item}\": expected KEY=VALUE")));
            };
            if seen.contains(&key) {
                return Err(bad(format!("{key} given twice")));
            }
            seen.push(key);
            let size = || {
                value
                    .parse::<usize>()
                    .map_err(|_| bad(format!("{key}={value}: expected a whole number")))
            };
            match key {
                "layers" => shape.layers = size()?,
                "heads" => shape.heads = size()?,
                "kv-heads" => kv = Some(size()?),
                "width" => shape.width = size()?,
                "mlp" => mlp = Some(size()?),
                "context" => shape.context = size()?,
                "tied" => {
                    shape.tied = value
                        .parse()
                        .map_err(|_| bad(format!("tied={value}: expected true or false")))?
                }
                "theta" | "eps" => {
                    let v = value
                        .parse()
                        .map_err(|_| bad(format!("{key}={value}: expected a number")))?;
                    *if key == "theta" {
                        &mut shape.theta
                    } else {
                        &mut shape.eps
                    } = v;
                }
                _ => {
                    return Err(bad(format!(
                        "unknown key \"{key}\" (keys: layers, heads, kv-heads, width, mlp, context, tied, theta, eps)"
                    )));
                }
            }
        }
        shape.kv_heads = kv.unwrap_or(shape.heads);
        shape.mlp = match mlp {
            Some(m) => m,
            None => (shape.width.saturating_mul(8) / 3).next_multiple_of(64),
        };
        shape.check()?;
        Ok(shape)
    }
}

impl fmt::Display for DecoderShape {
    /// The canonical description, every key written.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{FAMILY}:layers={},heads={},kv-heads={},width={},mlp={},context={},tied={},theta={},eps={}",
            self.layers,
            self.heads,
            self.kv_heads,
            self.width,
            self.mlp,
            self.context,
            self.tied,
            self.theta,
            self.eps
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_parse_with_defaults_and_print_canonically() {
        let s: DecoderShape = "llama".parse().unwrap();
        assert_eq!(s, DecoderShape::default());
        let s: DecoderShape = "llama:layers=2,heads=4,kv-heads=2,width=64,context=32"
            .parse()
            .unwrap();
        assert_eq!((s.kv_heads, s.mlp, s.head_dim()), (2, 192, 16));
        assert_eq!(s.to_string().parse::<DecoderShape>().unwrap(), s);
        for bad in [
            "gpt2:layers=2",
            "llama:layers=0",
            "llama:heads=3",
            "llama:heads=4,kv-heads=3",
            "llama:width=135,heads=5",
            "llama:layers=2,layers=3",
            "llama:depth=2",
            "llama:context=1",
            "llama:theta=nan",
            "llama:width=99999999",
        ] {
            assert!(bad.parse::<DecoderShape>().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_parameter_count_is_the_tensors() {
        let s = DecoderShape::default();
        // 65 tokens: nanoGPT's Shakespeare vocabulary.
        let per_block = 2 * 128 + 4 * 128 * 128 + 3 * 128 * 384;
        assert_eq!(s.parameters(65), 65 * 128 + 4 * per_block + 128);
    }
}
