//! The per-layer settings: how a layer is pruned and shared, and their definitions.

use eie_quantize::{Init, Method};

use super::knob::{Knob, Scope, Value, ValueKind, any};

/// How a layer is pruned.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pruning {
    /// Keep every non-zero.
    None,
    /// Keep round(D x weights), per layer.
    Density(f64),
    /// Prune |w| < S x std.
    ThresholdStd(f64),
    /// One threshold across every layer keeping round(D x all weights).
    Global(f64),
}

impl std::fmt::Display for Pruning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Pruning::None => write!(f, "none"),
            Pruning::Density(d) => write!(f, "density {d}"),
            Pruning::ThresholdStd(s) => write!(f, "threshold {s} x std"),
            Pruning::Global(d) => write!(f, "global density {d}"),
        }
    }
}

/// How the shared values are found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodebookKind {
    /// Lloyd's k-means from the chosen initialisation.
    Kmeans,
    /// The exactly optimal 1-D k-means (dynamic programming).
    Optimal,
}

impl CodebookKind {
    /// The words a setting takes, in this enum's order.
    pub const NAMES: &'static [&'static str] = &["kmeans", "optimal"];

    fn of(word: &str) -> Self {
        match word {
            "optimal" => Self::Optimal,
            _ => Self::Kmeans,
        }
    }

    /// The setting's word.
    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

/// Where Lloyd's iterations start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitKind {
    /// Equally spaced over [min, max] (Deep Compression's default).
    Linear,
    /// Equal steps of the CDF.
    Density,
    /// Random values of the layer (seeded).
    Random,
    /// k-means++ (seeded).
    KMeansPlusPlus,
}

impl InitKind {
    /// The words a setting takes, in this enum's order.
    pub const NAMES: &'static [&'static str] = &["linear", "density", "random", "kmeans++"];

    fn of(word: &str) -> Self {
        match word {
            "density" => Self::Density,
            "random" => Self::Random,
            "kmeans++" => Self::KMeansPlusPlus,
            _ => Self::Linear,
        }
    }

    /// The setting's word.
    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

/// What a weight's pruning score is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PruneScore {
    /// |w| (Deep Compression's).
    Magnitude,
    /// |w| x the calibration inputs' norm of its column (Wanda's).
    Activation,
    /// The optimal brain surgeon's saliency, |w| / sqrt([H^-1]_jj) with the damped inverse
    /// Hessian of the calibration inputs (SparseGPT's, with the whole row as its block).
    Obs,
}

impl PruneScore {
    /// The words a setting takes, in this enum's order.
    pub const NAMES: &'static [&'static str] = &["magnitude", "activation", "obs"];

    fn of(word: &str) -> Self {
        match word {
            "activation" => Self::Activation,
            "obs" => Self::Obs,
            _ => Self::Magnitude,
        }
    }

    /// The setting's word.
    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

/// What compensates the error of pruning and sharing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Update {
    /// Nothing: the kept weights keep their values, each rounds to its nearest shared value.
    None,
    /// The optimal brain surgeon's update from the calibration inputs' Hessian (SparseGPT's
    /// for pruning, GPTQ's for sharing).
    Obs,
}

impl Update {
    /// The words a setting takes, in this enum's order.
    pub const NAMES: &'static [&'static str] = &["none", "obs"];

    fn of(word: &str) -> Self {
        match word {
            "obs" => Self::Obs,
            _ => Self::None,
        }
    }

    /// The setting's word.
    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

/// What each value counts for when the codebook is found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodebookWeight {
    /// Every value alike (plain k-means).
    None,
    /// The calibration inputs' squared norm of the value's column (the diagonal of the
    /// Hessian: SqueezeLLM's sensitivity without gradients).
    Activation,
    /// The sum of the weight's squared gradients over retraining's last epoch of masked
    /// fine-tuning (the empirical Fisher information's diagonal, SqueezeLLM's sensitivity;
    /// with labels, or a teacher when distilling).
    Gradient,
}

impl CodebookWeight {
    /// The words a setting takes, in this enum's order.
    pub const NAMES: &'static [&'static str] = &["none", "activation", "gradient"];

    fn of(word: &str) -> Self {
        match word {
            "activation" => Self::Activation,
            "gradient" => Self::Gradient,
            _ => Self::None,
        }
    }

    /// The setting's word.
    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

/// How [`LayerSettings::pruning_description`] ends for a layer with the update (what
/// [`crate::provenance::updated`] reads back).
pub(crate) const UPDATE_WORDS: &str = ", OBS update";

/// Everything that is decided per layer.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerSettings {
    /// How the layer is pruned.
    pub pruning: Pruning,
    /// Prune so that every PE keeps the same count (within one).
    pub balance: bool,
    /// Bits of a weight code: 2^B - 1 shared values plus zero.
    pub code_bits: u8,
    /// Bits of a relative row index.
    pub index_bits: u8,
    /// How the shared values are found.
    pub codebook: CodebookKind,
    /// Where Lloyd's iterations start.
    pub init: InitKind,
    /// Seed of the random initialisations.
    pub seed: u64,
    /// Cap on Lloyd's iterations.
    pub max_iter: u32,
    /// What a weight's pruning score is.
    pub prune_score: PruneScore,
    /// Compare scores within each output row (Wanda's rule) rather than the whole layer.
    pub per_row: bool,
    /// What compensates the error of pruning and sharing.
    pub update: Update,
    /// What each value counts for in the codebook.
    pub codebook_weight: CodebookWeight,
}

impl Default for LayerSettings {
    fn default() -> Self {
        Self {
            pruning: Pruning::None,
            balance: false,
            code_bits: 4,
            index_bits: 4,
            codebook: CodebookKind::Kmeans,
            init: InitKind::Linear,
            seed: 0,
            max_iter: 300,
            prune_score: PruneScore::Magnitude,
            per_row: false,
            update: Update::None,
            codebook_weight: CodebookWeight::None,
        }
    }
}

impl LayerSettings {
    /// Whether the layer needs calibration statistics (`--calibration`).
    pub fn needs_calibration(&self) -> bool {
        self.prune_score != PruneScore::Magnitude
            || self.update == Update::Obs
            || self.codebook_weight == CodebookWeight::Activation
    }

    /// Whether its statistics must hold the inputs' Hessian.
    pub fn needs_hessian(&self) -> bool {
        self.update == Update::Obs || self.prune_score == PruneScore::Obs
    }

    /// How the layer is pruned, in words: the rule, and the score, the group and the update
    /// when they are not Deep Compression's.
    pub fn pruning_description(&self) -> String {
        let mut s = self.pruning.to_string();
        match self.prune_score {
            PruneScore::Magnitude => {}
            PruneScore::Activation => s.push_str(", by |w| x ||x||"),
            PruneScore::Obs => s.push_str(", by |w| / sqrt([H^-1]_jj)"),
        }
        if self.per_row {
            s.push_str(", per row");
        } else if self.balance {
            s.push_str(", balanced across PEs");
        }
        if self.update == Update::Obs {
            s.push_str(UPDATE_WORDS);
        }
        s
    }

    /// The quantizer's method.
    pub fn method(&self) -> Method {
        match self.codebook {
            CodebookKind::Optimal => Method::Optimal,
            CodebookKind::Kmeans => Method::Lloyd {
                init: match self.init {
                    InitKind::Linear => Init::Linear,
                    InitKind::Density => Init::Density,
                    InitKind::Random => Init::Random(self.seed),
                    InitKind::KMeansPlusPlus => Init::KMeansPlusPlus(self.seed),
                },
                max_iter: self.max_iter,
            },
        }
    }

    /// A short description of the codebook method (and its weighting, when there is one).
    pub fn method_name(&self) -> String {
        let weighted = match self.codebook_weight {
            CodebookWeight::None => "",
            CodebookWeight::Activation => ", weighted by ||x||^2",
            CodebookWeight::Gradient => ", weighted by squared gradients",
        };
        format!("{}{weighted}", self.plain_method_name())
    }

    fn plain_method_name(&self) -> String {
        match (self.codebook, self.init) {
            (CodebookKind::Optimal, _) => "optimal".into(),
            (_, InitKind::Linear) => "k-means, linear init".into(),
            (_, InitKind::Density) => "k-means, density init".into(),
            (_, InitKind::Random) => format!("k-means, random init (seed {})", self.seed),
            (_, InitKind::KMeansPlusPlus) => {
                format!("k-means, k-means++ init (seed {})", self.seed)
            }
        }
    }
}

/// The pruning rules' group.
pub const PRUNING: &str = "pruning (density / threshold_std / global_density)";

fn unit_interval(key: &'static str) -> impl Fn(&Value) -> Result<(), String> {
    move |v| {
        let d = v.float();
        if d > 0.0 && d <= 1.0 {
            Ok(())
        } else {
            Err(format!("{key} {d} is outside (0, 1]"))
        }
    }
}

/// Every per-layer setting: the command line's flags and a recipe's keys.
pub static LAYER_KNOBS: &[Knob<LayerSettings>] = &[
    Knob {
        key: "density",
        value_name: "D",
        doc: "Keep this fraction of each layer's weights, the largest |w| (0 < D <= 1).",
        kind: ValueKind::Float,
        group: Some(PRUNING),
        scope: Scope::Everywhere,
        check: |v| unit_interval("density")(v),
        apply: |s, v| s.pruning = Pruning::Density(v.float()),
        show: |s| match s.pruning {
            Pruning::Density(d) => Some(d.to_string()),
            _ => None,
        },
    },
    Knob {
        key: "threshold_std",
        value_name: "S",
        doc: "Prune |w| < S x the layer's standard deviation (Han et al.'s rule).",
        kind: ValueKind::Float,
        group: Some(PRUNING),
        scope: Scope::Everywhere,
        check: |v| {
            let s = v.float();
            if s.is_finite() && s >= 0.0 {
                Ok(())
            } else {
                Err(format!("threshold_std {s} must be finite and >= 0"))
            }
        },
        apply: |s, v| s.pruning = Pruning::ThresholdStd(v.float()),
        show: |s| match s.pruning {
            Pruning::ThresholdStd(t) => Some(t.to_string()),
            _ => None,
        },
    },
    Knob {
        key: "global_density",
        value_name: "D",
        doc: "Keep this fraction of all selected weights, with one threshold across layers.",
        kind: ValueKind::Float,
        group: Some(PRUNING),
        scope: Scope::NotPerLayer,
        check: |v| unit_interval("global_density")(v),
        apply: |s, v| s.pruning = Pruning::Global(v.float()),
        show: |s| match s.pruning {
            Pruning::Global(d) => Some(d.to_string()),
            _ => None,
        },
    },
    Knob {
        key: "balance",
        value_name: "",
        doc: "Balance the kept weights across PEs (every PE keeps the same count, within one).",
        kind: ValueKind::Switch,
        group: None,
        scope: Scope::Everywhere,
        check: any,
        apply: |s, v| s.balance = v.switch(),
        show: |s| s.balance.then(|| "true".into()),
    },
    Knob {
        key: "code_bits",
        value_name: "B",
        doc: "Bits of a weight code: 2^B - 1 shared values plus zero (1..=8).",
        kind: ValueKind::Int { min: 1, max: 8 },
        group: None,
        scope: Scope::Everywhere,
        check: any,
        apply: |s, v| s.code_bits = v.int() as u8,
        show: |s| Some(s.code_bits.to_string()),
    },
    Knob {
        key: "index_bits",
        value_name: "I",
        doc: "Bits of a relative row index z (1..=8); longer zero runs cost padding entries.",
        kind: ValueKind::Int { min: 1, max: 8 },
        group: None,
        scope: Scope::Everywhere,
        check: any,
        apply: |s, v| s.index_bits = v.int() as u8,
        show: |s| Some(s.index_bits.to_string()),
    },
    Knob {
        key: "codebook",
        value_name: "METHOD",
        doc: "How the shared values are found: kmeans (Lloyd's iterations) or optimal (the exact minimum SSE).",
        kind: ValueKind::Choice(CodebookKind::NAMES),
        group: None,
        scope: Scope::Everywhere,
        check: any,
        apply: |s, v| s.codebook = CodebookKind::of(v.choice()),
        show: |s| Some(s.codebook.name().into()),
    },
    Knob {
        key: "init",
        value_name: "INIT",
        doc: "Where k-means starts: linear (equally spaced, Deep Compression's), density (equal steps of the CDF), random or kmeans++ (seeded).",
        kind: ValueKind::Choice(InitKind::NAMES),
        group: None,
        scope: Scope::Everywhere,
        check: any,
        apply: |s, v| s.init = InitKind::of(v.choice()),
        show: |s| Some(s.init.name().into()),
    },
    Knob {
        key: "seed",
        value_name: "SEED",
        doc: "Seed of the random and k-means++ initialisations, and of retraining's sample order.",
        kind: ValueKind::Int {
            min: 0,
            max: u64::MAX,
        },
        group: None,
        scope: Scope::Everywhere,
        check: any,
        apply: |s, v| s.seed = v.int(),
        show: |s| Some(s.seed.to_string()),
    },
    Knob {
        key: "max_iter",
        value_name: "N",
        doc: "Cap on Lloyd's iterations.",
        kind: ValueKind::Int {
            min: 1,
            max: u32::MAX as u64,
        },
        group: None,
        scope: Scope::Everywhere,
        check: any,
        apply: |s, v| s.max_iter = v.int() as u32,
        show: |s| Some(s.max_iter.to_string()),
    },
    Knob {
        key: "prune_score",
        value_name: "SCORE",
        doc: "What pruning compares: magnitude (|w|, Deep Compression's), activation (|w| x the calibration inputs' column norm, Wanda's) or obs (|w| / sqrt([H^-1]_jj), the optimal brain surgeon's saliency, SparseGPT's); the last two need --calibration.",
        kind: ValueKind::Choice(PruneScore::NAMES),
        group: None,
        scope: Scope::Everywhere,
        check: any,
        apply: |s, v| s.prune_score = PruneScore::of(v.choice()),
        show: |s| (s.prune_score != PruneScore::Magnitude).then(|| s.prune_score.name().into()),
    },
    Knob {
        key: "per_row",
        value_name: "",
        doc: "Compare pruning scores within each output row (Wanda's rule): every row keeps the same count, within one.",
        kind: ValueKind::Switch,
        group: None,
        scope: Scope::Everywhere,
        check: any,
        apply: |s, v| s.per_row = v.switch(),
        show: |s| s.per_row.then(|| "true".into()),
    },
    Knob {
        key: "update",
        value_name: "UPDATE",
        doc: "What compensates pruning's and sharing's error: none, or obs (the optimal brain surgeon's update from the calibration inputs' Hessian, SparseGPT's and GPTQ's; needs --calibration).",
        kind: ValueKind::Choice(Update::NAMES),
        group: None,
        scope: Scope::Everywhere,
        check: any,
        apply: |s, v| s.update = Update::of(v.choice()),
        show: |s| (s.update != Update::None).then(|| s.update.name().into()),
    },
    Knob {
        key: "codebook_weight",
        value_name: "WEIGHT",
        doc: "What each value counts for in the codebook: none, activation (its column's squared calibration norm; needs --calibration), or gradient (its squared gradients summed over retraining's last epoch of masked fine-tuning; needs --retrain).",
        kind: ValueKind::Choice(CodebookWeight::NAMES),
        group: None,
        scope: Scope::Everywhere,
        check: any,
        apply: |s, v| s.codebook_weight = CodebookWeight::of(v.choice()),
        show: |s| {
            (s.codebook_weight != CodebookWeight::None).then(|| s.codebook_weight.name().into())
        },
    },
];
