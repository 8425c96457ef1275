//! A model's tensors by their Hugging Face names, checked against its config, gathered into
//! blocks whose linear layers come from a caller's `make` (dense floats for the reference;
//! packed images for the EIE path).

use std::path::{Path, PathBuf};

use eie_checkpoint::Checkpoint;

use crate::config::{Config, Family};
use crate::error::{Error, Result};
use crate::linear::{Linear, LinearSpec};

/// A norm's parameters.
#[derive(Debug, Clone, PartialEq)]
pub enum Norm {
    /// LayerNorm: centred and scaled, then `w x + b`.
    Layer {
        /// Scale.
        w: Vec<f32>,
        /// Shift.
        b: Vec<f32>,
        /// Epsilon.
        eps: f32,
    },
    /// RMSNorm: scaled by the root mean square, then `w x`.
    Rms {
        /// Scale.
        w: Vec<f32>,
        /// Epsilon.
        eps: f32,
    },
}

/// The embeddings: token, and (BERT, GPT-2) learned positions and token types.
#[derive(Debug, Clone, PartialEq)]
pub struct Embeddings {
    /// `[vocab, hidden]`, row-major.
    pub tokens: Vec<f32>,
    /// `[positions, hidden]`, when learned.
    pub positions: Option<Vec<f32>>,
    /// Token type 0's row (BERT: every token is of type 0).
    pub type0: Option<Vec<f32>>,
    /// BERT's norm of their sum.
    pub norm: Option<Norm>,
}

/// One block: attention and an MLP.
#[derive(Debug)]
pub struct Block<L> {
    /// Linear layers whose outputs, concatenated, are q, k and v (three, or GPT-2's one
    /// fused `c_attn`).
    pub qkv: Vec<L>,
    /// The attention's output projection.
    pub o: L,
    /// The MLP's input projections: `[up]`, or `[gate, up]` for SwiGLU.
    pub mlp_in: Vec<L>,
    /// The MLP's output projection.
    pub down: L,
    /// The norm before attention (pre-norm), or after it (BERT).
    pub norm1: Norm,
    /// The norm before the MLP (pre-norm), or after it (BERT).
    pub norm2: Norm,
}

/// BERT's masked-language-model head: dense, activation, norm, then the (tied) decoder.
#[derive(Debug)]
pub struct MlmHead<L> {
    /// `cls.predictions.transform.dense`.
    pub transform: L,
    /// `cls.predictions.transform.LayerNorm`.
    pub norm: Norm,
    /// The decoder (the word embeddings when tied) with `cls.predictions.bias`.
    pub decoder: L,
}

/// A model of any family, its linear layers of type `L`.
#[derive(Debug)]
pub struct Model<L> {
    /// Its config.
    pub config: Config,
    /// Its embeddings.
    pub embeddings: Embeddings,
    /// Its blocks.
    pub blocks: Vec<Block<L>>,
    /// The norm after the last block (decoders).
    pub final_norm: Option<Norm>,
    /// The language-model head (decoders).
    pub lm_head: Option<L>,
    /// The masked-LM head (a BERT checkpoint that has one).
    pub mlm_head: Option<MlmHead<L>>,
}

/// A Hugging Face model folder: `config.json` and `model.safetensors` (or its sharded index
/// `model.safetensors.index.json`).
#[derive(Debug)]
pub struct Folder {
    /// The folder.
    pub dir: PathBuf,
    /// Its config.
    pub config: Config,
    /// Its weights.
    pub checkpoint: Checkpoint,
}

impl Folder {
    /// Opens `dir`: its config read and checked, its checkpoint's headers read.
    pub fn open(dir: &Path) -> Result<Self> {
        let config = Config::load(&dir.join("config.json"))?;
        let single = dir.join("model.safetensors");
        let index = dir.join("model.safetensors.index.json");
        let file = if single.exists() || !index.exists() {
            single
        } else {
            index
        };
        Ok(Self {
            dir: dir.to_path_buf(),
            config,
            checkpoint: Checkpoint::open(&file)?,
        })
    }

    /// Every linear layer of the model, in forward order, as the checkpoint stores it: what
    /// `compress` packs and the EIE path runs.
    pub fn linears(&self) -> Result<Vec<LinearSpec>> {
        let mut specs = Vec::new();
        let names = Names::of(&self.config, &self.checkpoint);
        self.build(&names, &mut |spec| {
            specs.push(spec);
            Ok(())
        })?;
        Ok(specs)
    }

    /// The model, each linear layer made by `make` from its spec (after the spec's tensors'
    /// shapes were checked).
    pub fn model<L>(&self, make: &mut dyn FnMut(&LinearSpec) -> Result<L>) -> Result<Model<L>> {
        let names = Names::of(&self.config, &self.checkpoint);
        let mut linears = Vec::new();
        self.build(&names, &mut |spec| {
            linears.push(make(&spec)?);
            Ok(())
        })?;
        let mut linears = linears.into_iter();
        let mut next = || linears.next().expect("one linear per spec");
        let c = &self.config;
        let mut blocks = Vec::with_capacity(c.layers);
        for i in 0..c.layers {
            let qkv = if c.family == Family::Gpt2 {
                vec![next()]
            } else {
                vec![next(), next(), next()]
            };
            let o = next();
            let mlp_in = if c.family == Family::Llama {
                vec![next(), next()]
            } else {
                vec![next()]
            };
            let down = next();
            blocks.push(Block {
                qkv,
                o,
                mlp_in,
                down,
                norm1: self.norm(&names.block_norm(i, 1))?,
                norm2: self.norm(&names.block_norm(i, 2))?,
            });
        }
        let (lm_head, mlm_head) = match c.family {
            Family::Bert if names.has_mlm => {
                let transform = next();
                let decoder = next();
                let norm = self.norm(&format!("{}transform.LayerNorm", names.mlm))?;
                (
                    None,
                    Some(MlmHead {
                        transform,
                        norm,
                        decoder,
                    }),
                )
            }
            Family::Bert => (None, None),
            _ => (Some(next()), None),
        };
        Ok(Model {
            config: self.config.clone(),
            embeddings: self.embeddings(&names)?,
            blocks,
            final_norm: match c.family {
                Family::Bert => None,
                _ => Some(self.norm(&names.final_norm())?),
            },
            lm_head,
            mlm_head,
        })
    }

    /// Calls `each` with every linear layer's spec in forward order, its tensors checked.
    fn build(&self, names: &Names, each: &mut dyn FnMut(LinearSpec) -> Result<()>) -> Result<()> {
        let c = &self.config;
        let (h, q, kv, i) = (c.hidden, c.q_width(), c.kv_width(), c.intermediate);
        let mut add = |weight: String, bias: bool, rows: usize, cols: usize| -> Result<()> {
            let spec = LinearSpec {
                name: weight.clone(),
                bias: bias.then(|| weight.replace(".weight", ".bias")),
                weight,
                rows,
                cols,
                transposed: c.family == Family::Gpt2,
            };
            self.check_linear(&spec)?;
            each(spec)
        };
        for l in 0..c.layers {
            let b = names.block(l);
            match c.family {
                Family::Bert => {
                    for t in ["query", "key", "value"] {
                        let rows = if t == "query" { q } else { kv };
                        add(format!("{b}attention.self.{t}.weight"), true, rows, h)?;
                    }
                    add(format!("{b}attention.output.dense.weight"), true, h, q)?;
                    add(format!("{b}intermediate.dense.weight"), true, i, h)?;
                    add(format!("{b}output.dense.weight"), true, h, i)?;
                }
                Family::Gpt2 => {
                    add(format!("{b}attn.c_attn.weight"), true, q + 2 * kv, h)?;
                    add(format!("{b}attn.c_proj.weight"), true, h, q)?;
                    add(format!("{b}mlp.c_fc.weight"), true, i, h)?;
                    add(format!("{b}mlp.c_proj.weight"), true, h, i)?;
                }
                Family::Llama => {
                    add(format!("{b}self_attn.q_proj.weight"), c.qkv_bias, q, h)?;
                    add(format!("{b}self_attn.k_proj.weight"), c.qkv_bias, kv, h)?;
                    add(format!("{b}self_attn.v_proj.weight"), c.qkv_bias, kv, h)?;
                    add(format!("{b}self_attn.o_proj.weight"), c.o_bias, h, q)?;
                    add(format!("{b}mlp.gate_proj.weight"), c.mlp_bias, i, h)?;
                    add(format!("{b}mlp.up_proj.weight"), c.mlp_bias, i, h)?;
                    add(format!("{b}mlp.down_proj.weight"), c.mlp_bias, h, i)?;
                }
            }
        }
        match c.family {
            Family::Bert if names.has_mlm => {
                add(format!("{}transform.dense.weight", names.mlm), true, h, h)?;
                // Tied (BERT's default), the decoder is the word embeddings whatever else the
                // checkpoint holds, as transformers ties them.
                let name = format!("{}decoder.weight", names.mlm);
                let weight = if c.tie_head {
                    names.token_embeddings()
                } else {
                    name.clone()
                };
                let spec = LinearSpec {
                    name,
                    weight,
                    bias: Some(format!("{}bias", names.mlm)),
                    rows: c.vocab,
                    cols: h,
                    transposed: false,
                };
                self.check_linear(&spec)?;
                each(spec)?;
            }
            Family::Bert => {}
            _ => {
                // Tied, the head is the token embeddings whatever else the checkpoint holds,
                // as transformers ties them; untied, lm_head.weight must be there.
                let head = names.lm_head();
                let weight = if c.tie_head {
                    names.token_embeddings()
                } else if self.checkpoint.info(&head).is_some() {
                    head
                } else {
                    return Err(Error::Missing {
                        tensor: head,
                        reason: "the head is not tied to the token embeddings (tie_word_embeddings is false)".into(),
                    });
                };
                let spec = LinearSpec {
                    name: names.lm_head(),
                    weight,
                    bias: None,
                    rows: c.vocab,
                    cols: h,
                    transposed: false,
                };
                self.check_linear(&spec)?;
                each(spec)?;
            }
        }
        Ok(())
    }

    /// The spec's tensors exist with the config's shapes.
    fn check_linear(&self, spec: &LinearSpec) -> Result<()> {
        let shape = if spec.transposed {
            vec![spec.cols, spec.rows]
        } else {
            vec![spec.rows, spec.cols]
        };
        self.expect(&spec.weight, &shape, "is a linear layer of the config")?;
        if let Some(b) = &spec.bias {
            self.expect(
                b,
                &[spec.rows],
                "is the bias of a linear layer of the config",
            )?;
        }
        Ok(())
    }

    fn expect(&self, tensor: &str, shape: &[usize], reason: &str) -> Result<()> {
        let info = self.checkpoint.info(tensor).ok_or_else(|| Error::Missing {
            tensor: tensor.into(),
            reason: reason.into(),
        })?;
        if info.shape != shape {
            return Err(Error::Shape {
                tensor: tensor.into(),
                expected: shape.to_vec(),
                got: info.shape,
            });
        }
        Ok(())
    }

    /// A vector tensor of the width, checked.
    fn vector(&self, tensor: &str, len: usize) -> Result<Vec<f32>> {
        self.expect(tensor, &[len], "is a norm's parameter")?;
        Ok(self.checkpoint.read_f32(tensor)?)
    }

    /// The norm whose tensors are `prefix.weight` (and `prefix.bias` for a LayerNorm).
    fn norm(&self, prefix: &str) -> Result<Norm> {
        let c = &self.config;
        let w = self.vector(&format!("{prefix}.weight"), c.hidden)?;
        let eps = c.norm_eps as f32;
        Ok(match c.family {
            Family::Llama => Norm::Rms { w, eps },
            _ => Norm::Layer {
                w,
                b: self.vector(&format!("{prefix}.bias"), c.hidden)?,
                eps,
            },
        })
    }

    fn embeddings(&self, names: &Names) -> Result<Embeddings> {
        let c = &self.config;
        let table = |name: String, rows: usize| -> Result<Vec<f32>> {
            self.expect(
                &name,
                &[rows, c.hidden],
                "is an embedding table of the config",
            )?;
            Ok(self.checkpoint.read_f32(&name)?)
        };
        let tokens = table(names.token_embeddings(), c.vocab)?;
        let positions = match c.family {
            Family::Llama => None,
            _ => Some(table(names.position_embeddings(), c.positions)?),
        };
        let (type0, norm) = match c.family {
            Family::Bert => {
                let types = table(names.type_embeddings(), c.type_vocab)?;
                (
                    Some(types[..c.hidden].to_vec()),
                    Some(self.norm(&format!("{}embeddings.LayerNorm", names.base))?),
                )
            }
            _ => (None, None),
        };
        Ok(Embeddings {
            tokens,
            positions,
            type0,
            norm,
        })
    }
}

/// The Hugging Face names of a family's tensors, with the prefix the checkpoint uses (a
/// `...ForCausalLM` or `...ForMaskedLM` saves its base model under `model.`, `transformer.` or
/// `bert.`; the base model saved alone has none).
struct Names {
    family: Family,
    base: String,
    mlm: String,
    has_mlm: bool,
}

impl Names {
    fn of(c: &Config, ck: &Checkpoint) -> Self {
        let (prefix, probe) = match c.family {
            Family::Bert => ("bert.", "embeddings.word_embeddings.weight"),
            Family::Gpt2 => ("transformer.", "wte.weight"),
            Family::Llama => ("model.", "embed_tokens.weight"),
        };
        let base = if ck.info(&format!("{prefix}{probe}")).is_some() {
            prefix
        } else {
            ""
        };
        let mlm = "cls.predictions.".to_string();
        Self {
            family: c.family,
            base: base.into(),
            has_mlm: c.family == Family::Bert
                && ck.info(&format!("{mlm}transform.dense.weight")).is_some(),
            mlm,
        }
    }

    fn block(&self, i: usize) -> String {
        match self.family {
            Family::Bert => format!("{}encoder.layer.{i}.", self.base),
            Family::Gpt2 => format!("{}h.{i}.", self.base),
            Family::Llama => format!("{}layers.{i}.", self.base),
        }
    }

    /// Block `i`'s first or second norm.
    fn block_norm(&self, i: usize, which: u8) -> String {
        let b = self.block(i);
        match (self.family, which) {
            (Family::Bert, 1) => format!("{b}attention.output.LayerNorm"),
            (Family::Bert, _) => format!("{b}output.LayerNorm"),
            (Family::Gpt2, 1) => format!("{b}ln_1"),
            (Family::Gpt2, _) => format!("{b}ln_2"),
            (Family::Llama, 1) => format!("{b}input_layernorm"),
            (Family::Llama, _) => format!("{b}post_attention_layernorm"),
        }
    }

    fn final_norm(&self) -> String {
        match self.family {
            Family::Gpt2 => format!("{}ln_f", self.base),
            _ => format!("{}norm", self.base),
        }
    }

    fn token_embeddings(&self) -> String {
        match self.family {
            Family::Bert => format!("{}embeddings.word_embeddings.weight", self.base),
            Family::Gpt2 => format!("{}wte.weight", self.base),
            Family::Llama => format!("{}embed_tokens.weight", self.base),
        }
    }

    fn position_embeddings(&self) -> String {
        match self.family {
            Family::Bert => format!("{}embeddings.position_embeddings.weight", self.base),
            _ => format!("{}wpe.weight", self.base),
        }
    }

    fn type_embeddings(&self) -> String {
        format!("{}embeddings.token_type_embeddings.weight", self.base)
    }

    fn lm_head(&self) -> String {
        "lm_head.weight".into()
    }
}

/// Builds every linear layer of a folder as a dense float layer: the reference path.
pub fn dense(folder: &Folder) -> Result<Model<crate::linear::Dense>> {
    folder.model(&mut |spec| crate::linear::Dense::read(&folder.checkpoint, spec))
}

impl<L: Linear> Model<L> {
    /// Every linear layer, in forward order.
    pub fn linears(&self) -> Vec<&L> {
        let mut all: Vec<&L> = Vec::new();
        for b in &self.blocks {
            all.extend(b.qkv.iter());
            all.push(&b.o);
            all.extend(b.mlp_in.iter());
            all.push(&b.down);
        }
        if let Some(m) = &self.mlm_head {
            all.push(&m.transform);
            all.push(&m.decoder);
        }
        all.extend(self.lm_head.iter());
        all
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use eie_checkpoint::{Dtype, Writer};

    use super::*;

    /// A LLaMA folder (width 16, 2 heads over 1 key/value head, 2 blocks, vocabulary 11) with
    /// `config` patched by `edit` and the tensors `tensors` edits.
    fn llama(
        dir: &Path,
        edit: impl FnOnce(&mut serde_json::Value),
        tensors: impl FnOnce(&mut Vec<(String, Vec<usize>)>),
    ) {
        let mut config = serde_json::json!({"model_type": "llama", "vocab_size": 11,
            "hidden_size": 16, "intermediate_size": 24, "num_hidden_layers": 2,
            "num_attention_heads": 2, "num_key_value_heads": 1,
            "max_position_embeddings": 8, "tie_word_embeddings": false});
        edit(&mut config);
        std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
        let mut t: Vec<(String, Vec<usize>)> = vec![
            ("model.embed_tokens.weight".into(), vec![11, 16]),
            ("model.norm.weight".into(), vec![16]),
            ("lm_head.weight".into(), vec![11, 16]),
        ];
        for i in 0..2 {
            let b = format!("model.layers.{i}.");
            for (n, s) in [
                ("input_layernorm.weight", vec![16]),
                ("post_attention_layernorm.weight", vec![16]),
                ("self_attn.q_proj.weight", vec![16, 16]),
                ("self_attn.k_proj.weight", vec![8, 16]),
                ("self_attn.v_proj.weight", vec![8, 16]),
                ("self_attn.o_proj.weight", vec![16, 16]),
                ("mlp.gate_proj.weight", vec![24, 16]),
                ("mlp.up_proj.weight", vec![24, 16]),
                ("mlp.down_proj.weight", vec![16, 24]),
            ] {
                t.push((format!("{b}{n}"), s));
            }
        }
        tensors(&mut t);
        let specs: Vec<_> = t
            .iter()
            .map(|(n, s)| (n.clone(), Dtype::F32, s.clone()))
            .collect();
        let mut w =
            Writer::create(&dir.join("model.safetensors"), &BTreeMap::new(), &specs).unwrap();
        for (k, (_, s)) in t.iter().enumerate() {
            let n: usize = s.iter().product();
            let bytes: Vec<u8> = (0..n)
                .flat_map(|i| (((i * 7 + k) % 13) as f32 * 0.05 - 0.3).to_le_bytes())
                .collect();
            w.write_tensor(&bytes).unwrap();
        }
        w.finish().unwrap();
    }

    #[test]
    fn a_folder_runs_and_lists_its_linear_layers_in_forward_order() {
        let dir = tempfile::tempdir().unwrap();
        llama(dir.path(), |_| {}, |_| {});
        let f = Folder::open(dir.path()).unwrap();
        let specs = f.linears().unwrap();
        assert_eq!(specs.len(), 2 * 7 + 1);
        assert_eq!(specs[1].weight, "model.layers.0.self_attn.k_proj.weight");
        assert_eq!((specs[1].rows, specs[1].cols), (8, 16));
        assert_eq!(specs[14].weight, "lm_head.weight");
        let m = dense(&f).unwrap();
        assert_eq!(m.linears().len(), 15);
        let out = m.forward(&[1, 2, 3, 10]).unwrap();
        assert_eq!(
            (out.hidden.len(), out.logits.as_ref().unwrap().len()),
            (4 * 16, 4 * 11)
        );
        assert!(out.logits.unwrap().iter().all(|v| v.is_finite()));
        // A causal model: a token's outputs do not depend on what follows it.
        let short = m.forward(&[1, 2]).unwrap();
        assert_eq!(
            &short.hidden[..],
            &m.forward(&[1, 2, 3]).unwrap().hidden[..32]
        );
    }

    #[test]
    fn a_config_that_disagrees_with_the_tensors_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        llama(dir.path(), |c| c["intermediate_size"] = 32.into(), |_| {});
        let e = Folder::open(dir.path())
            .unwrap()
            .linears()
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("model.layers.0.mlp.gate_proj.weight") && e.contains("[32, 16]"),
            "{e}"
        );

        llama(
            dir.path(),
            |_| {},
            |t| t.retain(|(n, _)| n != "lm_head.weight"),
        );
        let e = Folder::open(dir.path())
            .unwrap()
            .linears()
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("lm_head.weight") && e.contains("tie_word_embeddings"),
            "{e}"
        );
        // Tied, the head is the token embeddings.
        llama(
            dir.path(),
            |c| c["tie_word_embeddings"] = true.into(),
            |t| t.retain(|(n, _)| n != "lm_head.weight"),
        );
        let f = Folder::open(dir.path()).unwrap();
        assert_eq!(f.linears().unwrap()[14].weight, "model.embed_tokens.weight");
        // Tied with lm_head.weight present too, transformers ties: the embeddings, not the
        // tensor (hostile review: a wrong perplexity and exit 0).
        llama(
            dir.path(),
            |c| c["tie_word_embeddings"] = true.into(),
            |_| {},
        );
        let f = Folder::open(dir.path()).unwrap();
        assert_eq!(f.linears().unwrap()[14].weight, "model.embed_tokens.weight");

        llama(dir.path(), |c| c["num_hidden_layers"] = 3.into(), |_| {});
        let e = Folder::open(dir.path())
            .unwrap()
            .linears()
            .unwrap_err()
            .to_string();
        assert!(e.contains("model.layers.2.self_attn.q_proj.weight"), "{e}");

        llama(dir.path(), |_| {}, |t| t[1].1 = vec![17]);
        let f = Folder::open(dir.path()).unwrap();
        let e = dense(&f).unwrap_err().to_string();
        assert!(e.contains("model.norm.weight"), "{e}");
    }

    #[test]
    fn tokens_the_model_cannot_take_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        llama(dir.path(), |_| {}, |_| {});
        let m = dense(&Folder::open(dir.path()).unwrap()).unwrap();
        let e = m.forward(&[1, 11]).unwrap_err().to_string();
        assert!(e.contains("token id 11 at position 1"), "{e}");
        let e = m.forward(&[1; 9]).unwrap_err().to_string();
        assert!(e.contains("9 tokens") && e.contains("8 positions"), "{e}");
        assert!(m.forward(&[]).is_err());
    }
}
