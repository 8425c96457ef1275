//! Hugging Face transformer families for eie-compress: a model folder's `config.json` read
//! strictly ([`Config`]), every tensor by its Hugging Face name and checked against the config
//! ([`Folder`]), and a forward pass over a window of tokens ([`Model::forward`]) whose linear
//! layers are whatever implements [`Linear`]: [`Dense`] floats for the reference path, the
//! packed images for the EIE path. A causal model is measured by its perplexity
//! ([`perplexity`]), an encoder by its masked-token accuracy ([`masked`]) or, without a
//! masked-LM head, by how closely its sentence embeddings follow the float model's
//! ([`pooled`]).
//!
//! Families: BERT encoders (with or without a masked-LM head), GPT-2, and the LLaMA family
//! (Llama, Mistral, Qwen2: RMSNorm, rotary positions, grouped-query attention, SwiGLU, tied or
//! untied head, q/k/v biases). Settings that would change the computation in a way not
//! implemented (rope scaling, sliding windows, other activations) are refused by name.

#![deny(missing_docs)]

pub mod calibrate;
pub mod config;
pub mod eie;
mod error;
pub mod forward;
pub mod linear;
pub mod masked;
pub mod model;
pub mod perplexity;
pub mod pooled;

pub use config::{Activation, Config, Family};
pub use error::{Error, Result};
pub use forward::Output;
pub use linear::{Dense, Linear, LinearSpec};
pub use model::{Folder, Model, dense};
pub use perplexity::Perplexity;
pub use pooled::{Fidelity, Pooled, Pooling, SentenceConfig};
