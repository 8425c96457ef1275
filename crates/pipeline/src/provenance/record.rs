//! The writer of a bundle's recorded settings, and the readers of what it wrote.

use std::collections::BTreeMap;

use eie_images::{Capacity, Fit};

use super::keys;
use crate::settings::LayerSettings;

/// Which command made a bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MadeBy {
    /// `compress`: pruned and weight-shared here.
    Compress,
    /// `pack`: tensors packed as they were.
    Pack,
}

impl MadeBy {
    /// The command's name, as recorded.
    pub fn name(self) -> &'static str {
        match self {
            MadeBy::Compress => "compress",
            MadeBy::Pack => "pack",
        }
    }
}

/// A described model (a CNN, an LSTM), as its bundle records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Described {
    /// Its model description (docs/models.md).
    pub arch: String,
    /// Its layers that run on the host, in float.
    pub host_layers: Vec<String>,
}

/// What a bundle records about how it was made, besides each layer's own line
/// ([`layer_line`]). [`Provenance::settings`] is the only writer of these keys.
#[derive(Debug, Clone, PartialEq)]
pub struct Provenance {
    /// The command.
    pub command: MadeBy,
    /// PEs.
    pub pes: usize,
    /// The relative-index width given for every layer.
    pub index_bits: u8,
    /// How layers were fitted to the hardware.
    pub fit: Fit,
    /// Whether biases were folded in.
    pub bias_column: bool,
    /// pack: the code width of every layer.
    pub code_bits: Option<u8>,
    /// pack: the layer patterns given (empty: the default selection).
    pub layers: Option<Vec<String>>,
    /// compress: the recipe's file name.
    pub recipe: Option<String>,
    /// compress --retrain: how it retrained, in words.
    pub retrain: Option<String>,
    /// compress --calibration: the calibration samples, in words.
    pub calibration: Option<String>,
    /// A described model.
    pub described: Option<Described>,
    /// A Hugging Face language model folder's `model_type`.
    pub language: Option<String>,
    /// The input scaling the model was measured or trained with, as eie-dataset records it
    /// (`eie.scale`, `eie.mean`, `eie.std`), for `simulate --dataset` later.
    pub scaling: BTreeMap<String, String>,
}

impl Provenance {
    /// What `command` records of images for `pes` PEs with `index_bits`-bit indices, fitted
    /// by `fit`, biases folded; nothing else yet.
    pub fn new(command: MadeBy, pes: usize, index_bits: u8, fit: &Fit) -> Self {
        Self {
            command,
            pes,
            index_bits,
            fit: *fit,
            bias_column: true,
            code_bits: None,
            layers: None,
            recipe: None,
            retrain: None,
            calibration: None,
            described: None,
            language: None,
            scaling: BTreeMap::new(),
        }
    }

    /// The settings as the bundle stores them.
    pub fn settings(&self) -> BTreeMap<String, String> {
        let mut s = BTreeMap::from([
            (keys::COMMAND.to_string(), self.command.name().to_string()),
            (keys::PES.into(), self.pes.to_string()),
            (keys::INDEX_BITS.into(), self.index_bits.to_string()),
            (keys::POINTER_BITS.into(), self.fit.pointer_bits.to_string()),
            (
                keys::SPMAT_KIB.into(),
                (self.fit.capacity.spmat_bytes / 1024).to_string(),
            ),
            (
                keys::POINTER_KIB.into(),
                (self.fit.capacity.pointer_bytes / 1024).to_string(),
            ),
            (keys::COLUMN_BATCH.into(), self.fit.column_batch.to_string()),
            (keys::BIAS_COLUMN.into(), self.bias_column.to_string()),
        ]);
        let mut put = |key: &str, value: Option<String>| {
            if let Some(v) = value {
                s.insert(key.to_string(), v);
            }
        };
        put(keys::CODE_BITS, self.code_bits.map(|b| b.to_string()));
        put(keys::LAYERS, self.layers.as_ref().map(|l| l.join(" ")));
        put(keys::RECIPE, self.recipe.clone());
        put(keys::RETRAIN, self.retrain.clone());
        put(keys::CALIBRATION, self.calibration.clone());
        put(keys::LANGUAGE, self.language.clone());
        if let Some(d) = &self.described {
            put(keys::DESCRIPTION, Some(d.arch.clone()));
            put(keys::HOST_LAYERS, Some(d.host_layers.join(",")));
        }
        s.extend(self.scaling.clone());
        s
    }
}

/// compress's line for one layer, under `layer.NAME`: how it was pruned and shared, its
/// widths, where its weights were read when not from its own tensor as stored (`weights`: a
/// tied head's embeddings, a transposed `Conv1D`), and its bias (last).
pub fn layer_line(s: &LayerSettings, weights: Option<&str>, bias: Option<&str>) -> String {
    format!(
        "pruning {}; {} bits, {}; index {} bits; balance {}; {}bias {}",
        s.pruning_description(),
        s.code_bits,
        s.method_name(),
        s.index_bits,
        s.balance,
        weights
            .map(|w| format!("weights {w}; "))
            .unwrap_or_default(),
        bias.unwrap_or("none")
    )
}

/// Whether some layer's kept weights were changed by an update (`update obs`), as its
/// [`layer_line`] records: its pruned values are then not the checkpoint's.
pub fn updated(settings: &BTreeMap<String, String>) -> bool {
    settings.iter().any(|(k, line)| {
        k.starts_with(keys::LAYER_PREFIX)
            && line
                .split("; ")
                .next()
                .is_some_and(|p| p.ends_with(crate::settings::UPDATE_WORDS))
    })
}

/// The command that made a bundle, as recorded (None for a bundle a library user made).
pub fn made_by(settings: &BTreeMap<String, String>) -> Option<MadeBy> {
    match settings.get(keys::COMMAND).map(String::as_str) {
        Some("compress") => Some(MadeBy::Compress),
        Some("pack") => Some(MadeBy::Pack),
        _ => None,
    }
}

/// The description of a described model's bundle.
pub fn recorded_description(settings: &BTreeMap<String, String>) -> Option<&str> {
    settings.get(keys::DESCRIPTION).map(String::as_str)
}

/// The `model_type` of the language model a bundle was compressed from, if it was one.
pub fn recorded_language(settings: &BTreeMap<String, String>) -> Option<&str> {
    settings.get(keys::LANGUAGE).map(String::as_str)
}

/// Where layer `name`'s weights were read, as its `layer.NAME` line records them: the tensor
/// and whether it was read transposed ([`layer_line`]'s `weights`); the layer's own tensor,
/// as stored, when the line says nothing or there is none (a bundle of `pack`).
pub fn recorded_weights(settings: &BTreeMap<String, String>, name: &str) -> (String, bool) {
    let line = settings.get(&format!("{}{name}", keys::LAYER_PREFIX));
    let weights = line.and_then(|l| {
        l.split("; ")
            .find_map(|part| part.strip_prefix("weights "))
            .map(str::to_string)
    });
    match weights {
        Some(w) => match w.strip_suffix(" transposed") {
            Some(t) => (t.to_string(), true),
            None => (w, false),
        },
        None => (name.to_string(), false),
    }
}

/// The layers a described model's bundle runs on the host.
pub fn recorded_host_layers(settings: &BTreeMap<String, String>) -> Vec<String> {
    settings
        .get(keys::HOST_LAYERS)
        .map(|h| {
            h.split(',')
                .filter(|n| !n.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// The SRAM sizes a bundle was packed for, as [`Provenance`] records them (the paper's when
/// the bundle records none, or records them unreadably).
pub fn recorded_capacity(settings: &BTreeMap<String, String>) -> Capacity {
    let kib = |key: &str, default: u64| {
        settings
            .get(key)
            .and_then(|v| v.parse::<u64>().ok())
            .and_then(|k| k.checked_mul(1024))
            .unwrap_or(default)
    };
    let paper = Capacity::default();
    Capacity {
        spmat_bytes: kib(keys::SPMAT_KIB, paper.spmat_bytes),
        pointer_bytes: kib(keys::POINTER_KIB, paper.pointer_bytes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_recorded_capacity_reads_back() {
        let fit = Fit {
            capacity: Capacity {
                spmat_bytes: 7 * 1024,
                pointer_bytes: 3 * 1024,
            },
            ..Fit::default()
        };
        let recorded = Provenance::new(MadeBy::Pack, 4, 4, &fit).settings();
        assert_eq!(recorded_capacity(&recorded), fit.capacity);
        assert_eq!(recorded_capacity(&BTreeMap::new()), Capacity::default());
    }

    #[test]
    fn what_is_written_reads_back() {
        let mut p = Provenance::new(MadeBy::Compress, 8, 4, &Fit::default());
        p.described = Some(Described {
            arch: "1x8x8-conv4k3-10".into(),
            host_layers: vec!["conv1".into()],
        });
        let s = p.settings();
        assert_eq!(made_by(&s), Some(MadeBy::Compress));
        assert_eq!(recorded_description(&s), Some("1x8x8-conv4k3-10"));
        assert_eq!(recorded_host_layers(&s), ["conv1"]);
        assert_eq!(s[keys::BIAS_COLUMN], "true");
    }
}
