//! `config.json` read strictly: one shape of [`Config`] for every family, each field by its
//! Hugging Face name, and every setting that would change the computation in a way this crate
//! does not implement refused by name rather than ignored.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// The most bytes a `config.json` may hold: real ones are a few KiB.
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// The families this crate runs, as `model_type` names them.
pub const KNOWN_FAMILIES: &str = "bert, gpt2, llama, mistral, qwen2";

/// The most of any one size (width, layers, heads, vocabulary, positions) a config may ask
/// for: 2^24, past every published model, and small enough that products of two stay exact.
pub const MAX_DIM: usize = 1 << 24;

/// How the blocks are built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// BERT encoders: learned absolute positions and token types, post-LayerNorm blocks,
    /// bidirectional attention, a GELU MLP.
    Bert,
    /// GPT-2: learned positions, pre-LayerNorm blocks, causal attention, a GELU MLP,
    /// `Conv1D` weights stored `[in, out]`, the head tied to the token embeddings.
    Gpt2,
    /// The LLaMA family (Llama, Mistral, Qwen2): RMSNorm, rotary positions, causal
    /// grouped-query attention, a SwiGLU MLP.
    Llama,
}

/// The MLP's activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// GELU with the exact error function (`gelu`).
    Gelu,
    /// GELU's tanh approximation (`gelu_new`, `gelu_pytorch_tanh`).
    GeluTanh,
    /// SiLU gating a second projection (SwiGLU: `silu` in the LLaMA family).
    SwiGlu,
}

/// What the forward pass needs of a model's `config.json`.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The family.
    pub family: Family,
    /// `model_type` as written.
    pub model_type: String,
    /// Token vocabulary.
    pub vocab: usize,
    /// Width of the residual stream.
    pub hidden: usize,
    /// Blocks.
    pub layers: usize,
    /// Query heads.
    pub heads: usize,
    /// Key/value heads (fewer than `heads` for grouped-query attention).
    pub kv_heads: usize,
    /// Width of one head.
    pub head_dim: usize,
    /// Width of the MLP's hidden layer.
    pub intermediate: usize,
    /// Positions the model takes (its longest context).
    pub positions: usize,
    /// The norms' epsilon.
    pub norm_eps: f64,
    /// The MLP's activation.
    pub activation: Activation,
    /// Rotary base (LLaMA family).
    pub rope_theta: f64,
    /// Whether q, k and v have biases.
    pub qkv_bias: bool,
    /// Whether the attention's output projection has a bias.
    pub o_bias: bool,
    /// Whether the MLP's projections have biases.
    pub mlp_bias: bool,
    /// Whether the head is the token embeddings (`tie_word_embeddings`, as `transformers`
    /// ties them: a head tensor the checkpoint also holds is then not used).
    pub tie_head: bool,
    /// Mistral's sliding window: attention reaches at most this many tokens back, which is
    /// not implemented, so a window of more tokens is refused.
    pub sliding_window: Option<usize>,
    /// Token types (BERT).
    pub type_vocab: usize,
}

impl Config {
    /// Reads and checks `path` (a model folder's `config.json`).
    pub fn load(path: &Path) -> Result<Self> {
        let text = read_bounded(path)?;
        Self::parse(path, &text)
    }

    /// Parses `text`, the contents of `path` (named in errors).
    pub fn parse(path: &Path, text: &[u8]) -> Result<Self> {
        let f = Fields::parse(path, text)?;
        let model_type = f.string("model_type", None)?;
        let config = match model_type.as_str() {
            "bert" => bert(&f)?,
            "gpt2" => gpt2(&f)?,
            "llama" | "mistral" | "qwen2" => llama(&f, &model_type)?,
            _ => {
                return Err(Error::UnknownFamily {
                    path: f.path,
                    model_type,
                    known: KNOWN_FAMILIES,
                });
            }
        };
        config.check(&f)?;
        Ok(config)
    }

    /// Sizes that must agree with one another.
    fn check(&self, f: &Fields) -> Result<()> {
        if !self.heads.is_multiple_of(self.kv_heads) {
            return Err(f.field(
                "num_key_value_heads",
                format!(
                    "{} key/value heads do not divide {} query heads",
                    self.kv_heads, self.heads
                ),
            ));
        }
        if self.family != Family::Llama && self.heads * self.head_dim != self.hidden {
            return Err(f.field(
                "num_attention_heads",
                format!(
                    "{} heads do not divide the width {}",
                    self.heads, self.hidden
                ),
            ));
        }
        if self.family == Family::Llama && !self.head_dim.is_multiple_of(2) {
            return Err(f.field(
                "head_dim",
                format!(
                    "{}: rotary positions need an even head width",
                    self.head_dim
                ),
            ));
        }
        Ok(())
    }

    /// Width of the queries (all heads).
    pub fn q_width(&self) -> usize {
        self.heads * self.head_dim
    }

    /// Width of the keys and of the values (all key/value heads).
    pub fn kv_width(&self) -> usize {
        self.kv_heads * self.head_dim
    }

    /// Whether attention looks only backwards (decoders).
    pub fn causal(&self) -> bool {
        self.family != Family::Bert
    }
}

fn bert(f: &Fields) -> Result<Config> {
    f.expect_str("position_embedding_type", "absolute")?;
    f.expect_bool("is_decoder", false)?;
    f.expect_bool("add_cross_attention", false)?;
    let hidden = f.size("hidden_size", None)?;
    let heads = f.size("num_attention_heads", None)?;
    Ok(Config {
        family: Family::Bert,
        model_type: "bert".into(),
        vocab: f.size("vocab_size", None)?,
        hidden,
        layers: f.size("num_hidden_layers", None)?,
        heads,
        kv_heads: heads,
        head_dim: f.head_dim("num_attention_heads", hidden, heads)?,
        intermediate: f.size("intermediate_size", None)?,
        positions: f.size("max_position_embeddings", None)?,
        norm_eps: f.eps("layer_norm_eps", 1e-12)?,
        activation: f.gelu("hidden_act", "gelu")?,
        rope_theta: 0.0,
        qkv_bias: true,
        o_bias: true,
        mlp_bias: true,
        tie_head: f.boolean("tie_word_embeddings", true)?,
        sliding_window: None,
        type_vocab: f.size("type_vocab_size", Some(2))?,
    })
}

fn gpt2(f: &Fields) -> Result<Config> {
    f.expect_bool("scale_attn_weights", true)?;
    f.expect_bool("scale_attn_by_inverse_layer_idx", false)?;
    f.expect_bool("add_cross_attention", false)?;
    let hidden = f.size("n_embd", None)?;
    let heads = f.size("n_head", None)?;
    let inner = match f.map.get("n_inner") {
        None | Some(Value::Null) => hidden.checked_mul(4).filter(|&n| n <= MAX_DIM),
        Some(_) => Some(f.size("n_inner", None)?),
    }
    .ok_or_else(|| f.field("n_embd", format!("4 x {hidden} is over {MAX_DIM}")))?;
    Ok(Config {
        family: Family::Gpt2,
        model_type: "gpt2".into(),
        vocab: f.size("vocab_size", None)?,
        hidden,
        layers: f.size("n_layer", None)?,
        heads,
        kv_heads: heads,
        head_dim: f.head_dim("n_head", hidden, heads)?,
        intermediate: inner,
        positions: f.size("n_positions", None)?,
        norm_eps: f.eps("layer_norm_epsilon", 1e-5)?,
        activation: f.gelu("activation_function", "gelu_new")?,
        rope_theta: 0.0,
        qkv_bias: true,
        o_bias: true,
        mlp_bias: true,
        tie_head: f.boolean("tie_word_embeddings", true)?,
        sliding_window: None,
        type_vocab: 0,
    })
}

fn llama(f: &Fields, model_type: &str) -> Result<Config> {
    f.expect_null("rope_scaling", "rotary positions are implemented unscaled")?;
    // Mistral's window changes nothing for windows of fewer tokens (the forward pass
    // refuses more); Qwen2's applies per layer (max_window_layers) and is refused.
    if model_type == "qwen2" {
        f.expect_bool("use_sliding_window", false)?;
    }
    if let Some(v) = f.map.get("partial_rotary_factor")
        && v.as_f64() != Some(1.0)
    {
        return Err(f.unsupported(
            "partial_rotary_factor",
            v,
            "rotary positions over the whole head only",
        ));
    }
    if let Some(v) = f.map.get("hidden_act")
        && v.as_str() != Some("silu")
    {
        return Err(f.unsupported("hidden_act", v, "the LLaMA family's MLP is SwiGLU (silu)"));
    }
    let hidden = f.size("hidden_size", None)?;
    let heads = f.size("num_attention_heads", None)?;
    let kv_heads = f.size("num_key_value_heads", Some(heads))?;
    let head_dim = match f.map.get("head_dim") {
        None | Some(Value::Null) => f.head_dim("num_attention_heads", hidden, heads)?,
        Some(_) => f.size("head_dim", None)?,
    };
    // Qwen2 always has q, k and v biases; Llama has them (and o's) with attention_bias.
    let attention_bias = f.boolean("attention_bias", false)?;
    let qwen = model_type == "qwen2";
    Ok(Config {
        family: Family::Llama,
        model_type: model_type.into(),
        vocab: f.size("vocab_size", None)?,
        hidden,
        layers: f.size("num_hidden_layers", None)?,
        heads,
        kv_heads,
        head_dim,
        intermediate: f.size("intermediate_size", None)?,
        positions: f.size("max_position_embeddings", None)?,
        norm_eps: f.eps("rms_norm_eps", 1e-6)?,
        activation: Activation::SwiGlu,
        rope_theta: f.positive("rope_theta", 10000.0)?,
        qkv_bias: qwen || attention_bias,
        o_bias: !qwen && attention_bias,
        mlp_bias: f.boolean("mlp_bias", false)?,
        tie_head: f.boolean("tie_word_embeddings", false)?,
        sliding_window: match (model_type, f.get("sliding_window")) {
            ("mistral", Some(_)) => Some(f.size("sliding_window", None)?),
            _ => None,
        },
        type_vocab: 0,
    })
}

/// The bytes of a small JSON file of a model folder (`config.json` and the like): a regular
/// file of at most [`MAX_CONFIG_BYTES`], whatever it grows to while it is read.
pub(crate) fn read_bounded(path: &Path) -> Result<Vec<u8>> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if !meta.is_file() {
        return Err(Error::Json {
            path: path.to_path_buf(),
            reason: "not a regular file".into(),
        });
    }
    if meta.len() > MAX_CONFIG_BYTES {
        return Err(Error::Json {
            path: path.to_path_buf(),
            reason: format!(
                "{} bytes; a model folder's JSON file may hold at most {MAX_CONFIG_BYTES}",
                meta.len()
            ),
        });
    }
    let mut text = Vec::new();
    std::io::Read::read_to_end(
        &mut std::io::Read::take(std::fs::File::open(path).map_err(io)?, MAX_CONFIG_BYTES + 1),
        &mut text,
    )
    .map_err(io)?;
    if text.len() as u64 > MAX_CONFIG_BYTES {
        return Err(Error::Json {
            path: path.to_path_buf(),
            reason: format!("grew past {MAX_CONFIG_BYTES} bytes while it was read"),
        });
    }
    Ok(text)
}

/// A JSON object's fields, each read with its name in the error.
pub(crate) struct Fields {
    pub(crate) path: PathBuf,
    pub(crate) map: Map<String, Value>,
}

impl Fields {
    /// `text`, the contents of `path`, as a JSON object.
    pub(crate) fn parse(path: &Path, text: &[u8]) -> Result<Self> {
        let value: Value = serde_json::from_slice(text).map_err(|e| Error::Json {
            path: path.to_path_buf(),
            reason: format!("not JSON: {e}"),
        })?;
        let Value::Object(map) = value else {
            return Err(Error::Json {
                path: path.to_path_buf(),
                reason: "not a JSON object".into(),
            });
        };
        Ok(Self {
            path: path.to_path_buf(),
            map,
        })
    }

    pub(crate) fn field(&self, field: &str, reason: String) -> Error {
        Error::Field {
            path: self.path.clone(),
            field: field.into(),
            reason,
        }
    }

    pub(crate) fn unsupported(&self, field: &str, value: &Value, reason: &str) -> Error {
        let mut value = value.to_string();
        if value.len() > 200 {
            let cut = (0..=200)
                .rev()
                .find(|&i| value.is_char_boundary(i))
                .unwrap_or(0);
            value.truncate(cut);
            value.push_str("...");
        }
        Error::Unsupported {
            path: self.path.clone(),
            field: field.into(),
            value,
            reason: reason.into(),
        }
    }

    pub(crate) fn get(&self, field: &str) -> Option<&Value> {
        self.map.get(field).filter(|v| !v.is_null())
    }

    pub(crate) fn string(&self, field: &str, default: Option<&str>) -> Result<String> {
        match (self.get(field), default) {
            (Some(Value::String(s)), _) => Ok(s.clone()),
            (None, Some(d)) => Ok(d.into()),
            (None, None) => Err(self.field(field, "missing; expected a string".into())),
            (Some(v), _) => Err(self.field(field, format!("expected a string, got {v}"))),
        }
    }

    /// A size in 1..=MAX_DIM.
    pub(crate) fn size(&self, field: &str, default: Option<usize>) -> Result<usize> {
        let n = match (self.get(field), default) {
            (Some(v), _) => v
                .as_u64()
                .ok_or_else(|| self.field(field, format!("expected a whole number, got {v}")))?,
            (None, Some(d)) => d as u64,
            (None, None) => {
                return Err(self.field(field, "missing; expected a whole number".into()));
            }
        };
        if n == 0 || n > MAX_DIM as u64 {
            return Err(self.field(field, format!("{n}; expected 1 to {MAX_DIM}")));
        }
        Ok(n as usize)
    }

    fn number(&self, field: &str, default: f64) -> Result<f64> {
        match self.get(field) {
            None => Ok(default),
            Some(v) => v
                .as_f64()
                .filter(|x| x.is_finite())
                .ok_or_else(|| self.field(field, format!("expected a finite number, got {v}"))),
        }
    }

    fn positive(&self, field: &str, default: f64) -> Result<f64> {
        let x = self.number(field, default)?;
        if x <= 0.0 {
            return Err(self.field(field, format!("{x}; expected a positive number")));
        }
        Ok(x)
    }

    /// A norm's epsilon: positive and small enough to be one.
    fn eps(&self, field: &str, default: f64) -> Result<f64> {
        let x = self.positive(field, default)?;
        if x >= 1.0 {
            return Err(self.field(field, format!("{x}; expected below 1")));
        }
        Ok(x)
    }

    pub(crate) fn boolean(&self, field: &str, default: bool) -> Result<bool> {
        match self.get(field) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(v) => Err(self.field(field, format!("expected true or false, got {v}"))),
        }
    }

    /// A flag the forward pass implements only at `want`.
    fn expect_bool(&self, field: &str, want: bool) -> Result<()> {
        if self.boolean(field, want)? != want {
            let v = self.map[field].clone();
            return Err(self.unsupported(field, &v, &format!("only {want} is implemented")));
        }
        Ok(())
    }

    /// A string setting the forward pass implements only as `want`.
    fn expect_str(&self, field: &str, want: &str) -> Result<()> {
        if self.string(field, Some(want))? != want {
            let v = self.map[field].clone();
            return Err(self.unsupported(field, &v, &format!("only \"{want}\" is implemented")));
        }
        Ok(())
    }

    /// A setting the forward pass implements only when absent or null.
    fn expect_null(&self, field: &str, reason: &str) -> Result<()> {
        match self.get(field) {
            None => Ok(()),
            Some(v) => Err(self.unsupported(field, v, reason)),
        }
    }

    fn gelu(&self, field: &str, default: &str) -> Result<Activation> {
        match self.string(field, Some(default))?.as_str() {
            "gelu" => Ok(Activation::Gelu),
            "gelu_new" | "gelu_pytorch_tanh" => Ok(Activation::GeluTanh),
            _ => Err(self.unsupported(
                field,
                &self.map[field],
                "gelu, gelu_new or gelu_pytorch_tanh",
            )),
        }
    }

    /// `hidden / heads` (heads given as `field`), which must be whole.
    fn head_dim(&self, field: &str, hidden: usize, heads: usize) -> Result<usize> {
        if !hidden.is_multiple_of(heads) {
            return Err(self.field(
                field,
                format!("{heads} heads do not divide the width {hidden}"),
            ));
        }
        Ok(hidden / heads)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Config> {
        Config::parse(Path::new("config.json"), json.as_bytes())
    }

    const LLAMA: &str = r#"{"model_type": "llama", "vocab_size": 100, "hidden_size": 64,
        "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 2, "max_position_embeddings": 128, "rms_norm_eps": 1e-5,
        "rope_theta": 500000.0, "tie_word_embeddings": true, "rope_scaling": null}"#;

    #[test]
    fn a_llama_config_reads_every_field_it_needs() {
        let c = parse(LLAMA).unwrap();
        assert_eq!(c.family, Family::Llama);
        assert_eq!((c.heads, c.kv_heads, c.head_dim), (4, 2, 16));
        assert_eq!((c.q_width(), c.kv_width()), (64, 32));
        assert!(c.tie_head && !c.qkv_bias && c.causal());
        assert_eq!(c.rope_theta, 500000.0);
        let q = parse(&LLAMA.replace("\"llama\"", "\"qwen2\"")).unwrap();
        assert!(q.qkv_bias && !q.o_bias);
    }

    #[test]
    fn what_would_change_the_computation_is_refused_by_name() {
        for (from, to, needle) in [
            (
                "\"rope_scaling\": null",
                "\"rope_scaling\": {\"type\": \"linear\", \"factor\": 2.0}",
                "rope_scaling",
            ),
            ("\"llama\"", "\"falcon\"", "model_type \"falcon\""),
            (
                "\"num_key_value_heads\": 2",
                "\"num_key_value_heads\": 3",
                "num_key_value_heads",
            ),
            (
                "\"hidden_size\": 64",
                "\"hidden_size\": 66",
                "num_attention_heads",
            ),
            ("\"vocab_size\": 100", "\"vocab_size\": -1", "vocab_size"),
            ("\"vocab_size\": 100", "\"vocab_size\": 1e300", "vocab_size"),
            (
                "\"rms_norm_eps\": 1e-5",
                "\"rms_norm_eps\": 0",
                "rms_norm_eps",
            ),
            (
                "\"rope_theta\": 500000.0",
                "\"rope_theta\": \"big\"",
                "rope_theta",
            ),
            (
                "\"num_hidden_layers\": 2",
                "\"num_hidden_layers\": 99999999999",
                "num_hidden_layers",
            ),
        ] {
            let json = LLAMA.replace(from, to);
            assert_ne!(json, LLAMA, "{from}");
            let e = parse(&json).unwrap_err().to_string();
            assert!(e.contains(needle) && e.contains("config.json"), "{to}: {e}");
        }
        let m = parse(
            &LLAMA
                .replace("\"llama\"", "\"mistral\"")
                .replace("\"rope_scaling\": null", "\"sliding_window\": 4096"),
        )
        .unwrap();
        assert_eq!(m.sliding_window, Some(4096));
        let e = parse(
            &LLAMA
                .replace("\"llama\"", "\"qwen2\"")
                .replace("\"rope_scaling\": null", "\"use_sliding_window\": true"),
        )
        .unwrap_err();
        assert!(e.to_string().contains("use_sliding_window"), "{e}");
        let e = parse(&LLAMA.replace("\"vocab_size\": 100,", "")).unwrap_err();
        assert!(e.to_string().contains("\"vocab_size\": missing"), "{e}");
        for bad in ["", "[]", "{", "{\"model_type\": 3}"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bert_and_gpt2_take_their_own_names_and_defaults() {
        let b = parse(
            r#"{"model_type": "bert", "vocab_size": 50, "hidden_size": 32,
            "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 37,
            "max_position_embeddings": 64, "hidden_act": "gelu"}"#,
        )
        .unwrap();
        assert_eq!(
            (b.type_vocab, b.norm_eps, b.activation),
            (2, 1e-12, Activation::Gelu)
        );
        assert!(!b.causal());
        let g = parse(
            r#"{"model_type": "gpt2", "vocab_size": 50, "n_embd": 32, "n_layer": 2,
            "n_head": 4, "n_positions": 64, "n_inner": null}"#,
        )
        .unwrap();
        assert_eq!((g.intermediate, g.activation), (128, Activation::GeluTanh));
        let e = parse(
            r#"{"model_type": "gpt2", "vocab_size": 50, "n_embd": 32, "n_layer": 2,
            "n_head": 4, "n_positions": 64, "activation_function": "relu"}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("activation_function"), "{e}");
    }
}
