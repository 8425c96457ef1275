//! Settings, each defined once: its key, its doc, the value it takes, where it may be given,
//! and how it changes the settings it belongs to. The command line's flag (`--key` with `-`
//! for `_`), its help and its default, and the recipe key (the key itself), are all derived
//! from that one definition (a [`Knob`]); a recipe is just more settings.
//!
//! Values given in one place form an [`Assignments`]; resolution applies, later winning:
//! the defaults, the command line, the recipe's `[defaults]`, then each matching `[[layers]]`
//! rule (see [`crate::plan`]). Adding a per-layer setting takes a field of
//! [`LayerSettings`], its default, and an entry of [`LAYER_KNOBS`].

use eie_quantize::{Init, Method};

/// What a setting takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A switch: a flag without a value on the command line, `true` or `false` in a recipe.
    Switch,
    /// A whole number in `min..=max`.
    Int {
        /// Smallest value.
        min: u64,
        /// Largest value.
        max: u64,
    },
    /// A number (the setting checks its range).
    Float,
    /// A list of numbers (recipes only).
    Floats,
    /// One word of a fixed set.
    Choice(&'static [&'static str]),
}

/// A value given to a setting.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Of a [`Kind::Switch`].
    Switch(bool),
    /// Of a [`Kind::Int`].
    Int(u64),
    /// Of a [`Kind::Float`].
    Float(f64),
    /// Of a [`Kind::Floats`].
    Floats(Vec<f64>),
    /// Of a [`Kind::Choice`].
    Choice(&'static str),
}

impl Value {
    // The accessors are only called by a knob on its own kind's values, which
    // `Assignments::set` checked, so a mismatch is a bug in a knob table.

    /// The integer of a [`Value::Int`].
    pub fn int(&self) -> u64 {
        match self {
            Value::Int(v) => *v,
            other => unreachable!("an integer setting got {other:?}"),
        }
    }

    /// The number of a [`Value::Float`].
    pub fn float(&self) -> f64 {
        match self {
            Value::Float(v) => *v,
            other => unreachable!("a number setting got {other:?}"),
        }
    }

    /// The state of a [`Value::Switch`].
    pub fn switch(&self) -> bool {
        match self {
            Value::Switch(v) => *v,
            other => unreachable!("a switch setting got {other:?}"),
        }
    }

    /// The word of a [`Value::Choice`].
    pub fn choice(&self) -> &'static str {
        match self {
            Value::Choice(v) => v,
            other => unreachable!("a choice setting got {other:?}"),
        }
    }

    /// The numbers of a [`Value::Floats`].
    pub fn floats(&self) -> &[f64] {
        match self {
            Value::Floats(v) => v,
            other => unreachable!("a list setting got {other:?}"),
        }
    }

    fn kind_ok(&self, kind: Kind) -> bool {
        matches!(
            (self, kind),
            (Value::Switch(_), Kind::Switch)
                | (Value::Int(_), Kind::Int { .. })
                | (Value::Float(_), Kind::Float)
                | (Value::Floats(_), Kind::Floats)
                | (Value::Choice(_), Kind::Choice(_))
        )
    }
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Switch(v) => write!(f, "{v}"),
            Value::Int(v) => write!(f, "{v}"),
            Value::Float(v) => write!(f, "{v}"),
            Value::Floats(v) => write!(f, "{v:?}"),
            Value::Choice(v) => f.write_str(v),
        }
    }
}

/// Where a setting may be given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// On the command line, in a recipe's table and in its `[[layers]]` rules.
    Everywhere,
    /// On the command line and in a recipe's table, not per layer.
    NotPerLayer,
    /// In a recipe only.
    RecipeOnly,
}

/// One setting of the settings type `S`, defined once.
pub struct Knob<S: 'static> {
    /// The recipe key; the command-line flag is `--` and the key with `-` for `_`.
    pub key: &'static str,
    /// The value's name in help text (empty for a switch).
    pub value_name: &'static str,
    /// What it does (the flag's help; the default is added from `S::default()`).
    pub doc: &'static str,
    /// What it takes.
    pub kind: Kind,
    /// Settings of one group set the same thing: one replaces another, and a source may give
    /// at most one of them. The group's description, for messages.
    pub group: Option<&'static str>,
    /// Where it may be given.
    pub scope: Scope,
    /// A range check beyond the kind's, naming the key.
    pub check: fn(&Value) -> Result<(), String>,
    /// Sets it.
    pub apply: fn(&mut S, &Value),
    /// Its value in `s`, as text (None when `s` does not set it), for help and provenance.
    pub show: fn(&S) -> Option<String>,
}

impl<S> std::fmt::Debug for Knob<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Knob").field("key", &self.key).finish()
    }
}

/// No check beyond the kind's.
pub fn any(_: &Value) -> Result<(), String> {
    Ok(())
}

impl<S: Default> Knob<S> {
    /// The command-line flag's long name, without the dashes.
    pub fn flag(&self) -> String {
        self.key.replace('_', "-")
    }

    /// The default, as text (None: no default, or a switch that is off).
    pub fn default_text(&self) -> Option<String> {
        (self.show)(&S::default())
    }

    /// The value of command-line text: a number, an integer in range, or one of the words.
    pub fn parse(&self, text: &str) -> Result<Value, String> {
        match self.kind {
            Kind::Switch => match text {
                "true" => Ok(Value::Switch(true)),
                "false" => Ok(Value::Switch(false)),
                _ => Err(format!("expected true or false, got \"{text}\"")),
            },
            Kind::Int { min, max } => match text.parse::<u64>() {
                Ok(v) if (min..=max).contains(&v) => Ok(Value::Int(v)),
                _ => Err(format!(
                    "expected an integer in {min}..={max}, got \"{text}\""
                )),
            },
            Kind::Float => text
                .parse::<f64>()
                .map(Value::Float)
                .map_err(|_| format!("expected a number, got \"{text}\"")),
            Kind::Floats => text
                .split(',')
                .map(|t| t.trim().parse::<f64>())
                .collect::<Result<Vec<f64>, _>>()
                .map(Value::Floats)
                .map_err(|_| format!("expected numbers separated by commas, got \"{text}\"")),
            Kind::Choice(words) => words
                .iter()
                .find(|&&w| w == text)
                .map(|&w| Value::Choice(w))
                .ok_or_else(|| format!("expected one of {}, got \"{text}\"", words.join(", "))),
        }
    }

    /// The value of a recipe's TOML value.
    pub fn from_toml(&self, value: &toml::Value) -> Result<Value, String> {
        let wrong = || {
            let what = match self.kind {
                Kind::Switch => "true or false".to_string(),
                Kind::Int { .. } => "an integer".to_string(),
                Kind::Float => "a number".to_string(),
                Kind::Floats => "a list of numbers".to_string(),
                Kind::Choice(words) => format!("one of {}", words.join(", ")),
            };
            format!("{}: expected {what}, got {}", self.key, describe(value))
        };
        match (self.kind, value) {
            (Kind::Switch, toml::Value::Boolean(b)) => Ok(Value::Switch(*b)),
            (Kind::Int { min, max }, toml::Value::Integer(i)) => match u64::try_from(*i) {
                Ok(v) if (min..=max).contains(&v) => Ok(Value::Int(v)),
                _ => Err(format!("{} {i} is outside {min}..={max}", self.key)),
            },
            (Kind::Float, toml::Value::Float(f)) => Ok(Value::Float(*f)),
            (Kind::Float, toml::Value::Integer(i)) => Ok(Value::Float(*i as f64)),
            (Kind::Floats, toml::Value::Array(items)) => items
                .iter()
                .map(|v| match v {
                    toml::Value::Float(f) => Some(*f),
                    toml::Value::Integer(i) => Some(*i as f64),
                    _ => None,
                })
                .collect::<Option<Vec<f64>>>()
                .map(Value::Floats)
                .ok_or_else(wrong),
            (Kind::Choice(_), toml::Value::String(s)) => {
                self.parse(s).map_err(|e| format!("{}: {e}", self.key))
            }
            _ => Err(wrong()),
        }
    }
}

/// A TOML value as a message shows it.
pub(crate) fn describe(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => format!("\"{s}\""),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => f.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        other => format!("a {}", other.type_str()),
    }
}

/// Values given to settings of type `S` in one place (the command line, a recipe table, a
/// rule), each checked when given.
pub struct Assignments<S: 'static> {
    items: Vec<(&'static Knob<S>, Value)>,
}

impl<S> Clone for Assignments<S> {
    fn clone(&self) -> Self {
        Self {
            items: self.items.clone(),
        }
    }
}

impl<S> Default for Assignments<S> {
    fn default() -> Self {
        Self { items: Vec::new() }
    }
}

impl<S> std::fmt::Debug for Assignments<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.items.iter().map(|(k, v)| (k.key, v)))
            .finish()
    }
}

/// "a, b and c".
fn and_list(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => one.to_string(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

impl<S: Default> Assignments<S> {
    /// Nothing given.
    pub fn new() -> Self {
        Self::default()
    }

    /// Gives `knob` the value `value`, checking its kind and range and that no other setting
    /// of its group is given here (`knobs`: the table, to name the group's members).
    pub fn set(
        &mut self,
        knobs: &'static [Knob<S>],
        knob: &'static Knob<S>,
        value: Value,
    ) -> Result<(), String> {
        if !value.kind_ok(knob.kind) {
            return Err(format!("{}: a value of the wrong kind ({value})", knob.key));
        }
        (knob.check)(&value)?;
        if let Some(group) = knob.group
            && self
                .items
                .iter()
                .any(|(k, _)| k.group == Some(group) && k.key != knob.key)
        {
            let members: Vec<&str> = knobs
                .iter()
                .filter(|k| k.group == Some(group))
                .map(|k| k.key)
                .collect();
            return Err(format!("give one of {}", and_list(&members)));
        }
        self.items.retain(|(k, _)| k.key != knob.key);
        self.items.push((knob, value));
        Ok(())
    }

    /// Gives `key` the value of command-line text `text` (see [`Knob::parse`]).
    pub fn set_text(
        &mut self,
        knobs: &'static [Knob<S>],
        key: &str,
        text: &str,
    ) -> Result<(), String> {
        let knob = find(knobs, key)?;
        let value = knob.parse(text).map_err(|e| format!("{key}: {e}"))?;
        self.set(knobs, knob, value)
    }

    /// The settings of a recipe table. `allowed` says which knobs may appear there; any other
    /// key is an error naming it and the keys that may.
    pub fn from_toml(
        knobs: &'static [Knob<S>],
        table: &toml::Table,
        allowed: impl Fn(&Knob<S>) -> bool,
    ) -> Result<Self, String> {
        let mut out = Self::new();
        for (key, value) in table {
            let Some(knob) = knobs.iter().find(|k| k.key == key && allowed(k)) else {
                let keys: Vec<&str> = knobs.iter().filter(|k| allowed(k)).map(|k| k.key).collect();
                return Err(format!(
                    "unknown key \"{key}\" (expected one of {})",
                    keys.join(", ")
                ));
            };
            let value = knob.from_toml(value)?;
            out.set(knobs, knob, value)?;
        }
        Ok(out)
    }

    /// Whether nothing is given.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The value given to `key`, if any.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.items
            .iter()
            .find(|(k, _)| k.key == key)
            .map(|(_, v)| v)
    }

    /// The keys given, in the order given.
    pub fn keys(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.items.iter().map(|(k, _)| k.key)
    }

    /// Whether any key of `group` is given.
    pub fn has_group(&self, group: &str) -> bool {
        self.items.iter().any(|(k, _)| k.group == Some(group))
    }

    /// What both give: a key, or a group (one setting of it in each).
    pub fn overlap(&self, other: &Self) -> Vec<&'static str> {
        let mut out: Vec<&'static str> = Vec::new();
        for (k, _) in &self.items {
            let both = match k.group {
                Some(g) => other.has_group(g),
                None => other.get(k.key).is_some(),
            };
            let what = k.group.unwrap_or(k.key);
            if both && !out.contains(&what) {
                out.push(what);
            }
        }
        out
    }

    /// Applies every given value to `s`, in the order given.
    pub fn apply(&self, s: &mut S) {
        for (k, v) in &self.items {
            (k.apply)(s, v);
        }
    }

    /// `self` with `later`'s values on top.
    pub fn merged(&self, later: &Self) -> Self {
        let mut out = self.clone();
        for (k, v) in &later.items {
            out.items
                .retain(|(o, _)| o.key != k.key && (k.group.is_none() || o.group != k.group));
            out.items.push((k, v.clone()));
        }
        out
    }
}

/// The knob called `key`.
pub fn find<S>(knobs: &'static [Knob<S>], key: &str) -> Result<&'static Knob<S>, String> {
    knobs
        .iter()
        .find(|k| k.key == key)
        .ok_or_else(|| format!("no setting \"{key}\""))
}

// ---- per-layer settings ------------------------------------------------------------------

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
        }
    }
}

impl LayerSettings {
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

    /// A short description of the codebook method.
    pub fn method_name(&self) -> String {
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
        kind: Kind::Float,
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
        kind: Kind::Float,
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
        kind: Kind::Float,
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
        kind: Kind::Switch,
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
        kind: Kind::Int { min: 1, max: 8 },
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
        kind: Kind::Int { min: 1, max: 8 },
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
        kind: Kind::Choice(CodebookKind::NAMES),
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
        kind: Kind::Choice(InitKind::NAMES),
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
        kind: Kind::Int {
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
        kind: Kind::Int {
            min: 1,
            max: u32::MAX as u64,
        },
        group: None,
        scope: Scope::Everywhere,
        check: any,
        apply: |s, v| s.max_iter = v.int() as u32,
        show: |s| Some(s.max_iter.to_string()),
    },
];

/// Settings of a whole run that a recipe may also give (its top-level keys).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RunSettings {
    /// Also write `pruned.safetensors` and `quantized.safetensors`: every input tensor, dense,
    /// after pruning and after weight sharing.
    pub dense_checkpoints: bool,
}

/// Every run-wide setting.
pub static RUN_KNOBS: &[Knob<RunSettings>] = &[Knob {
    key: "dense_checkpoints",
    value_name: "",
    doc: "Also write pruned.safetensors and quantized.safetensors: every tensor of the checkpoint, dense, after pruning and after weight sharing (eval rebuilds them without).",
    kind: Kind::Switch,
    group: None,
    scope: Scope::Everywhere,
    check: any,
    apply: |s, v| s.dense_checkpoints = v.switch(),
    show: |s| s.dense_checkpoints.then(|| "true".into()),
}];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_and_defaults_come_from_the_definition() {
        let k = find(LAYER_KNOBS, "max_iter").unwrap();
        assert_eq!(k.flag(), "max-iter");
        assert_eq!(k.default_text().as_deref(), Some("300"));
        assert_eq!(find(LAYER_KNOBS, "density").unwrap().default_text(), None);
        assert_eq!(find(LAYER_KNOBS, "balance").unwrap().default_text(), None);
        assert_eq!(
            find(LAYER_KNOBS, "init").unwrap().default_text().as_deref(),
            Some("linear")
        );
    }

    #[test]
    fn values_are_checked_when_given() {
        let mut a = Assignments::<LayerSettings>::new();
        assert!(a.set_text(LAYER_KNOBS, "code_bits", "9").is_err());
        assert!(a.set_text(LAYER_KNOBS, "init", "forgy").is_err());
        let e = a.set_text(LAYER_KNOBS, "density", "1.5").unwrap_err();
        assert_eq!(e, "density 1.5 is outside (0, 1]");
        a.set_text(LAYER_KNOBS, "density", "0.5").unwrap();
        let e = a.set_text(LAYER_KNOBS, "threshold_std", "1").unwrap_err();
        assert_eq!(e, "give one of density, threshold_std and global_density");
        a.set_text(LAYER_KNOBS, "init", "kmeans++").unwrap();
        let mut s = LayerSettings::default();
        a.apply(&mut s);
        assert_eq!(
            (s.pruning, s.init),
            (Pruning::Density(0.5), InitKind::KMeansPlusPlus)
        );
    }

    #[test]
    fn later_values_replace_a_whole_group() {
        let mut a = Assignments::<LayerSettings>::new();
        a.set_text(LAYER_KNOBS, "density", "0.5").unwrap();
        let mut b = Assignments::<LayerSettings>::new();
        b.set_text(LAYER_KNOBS, "threshold_std", "0.7").unwrap();
        b.set_text(LAYER_KNOBS, "code_bits", "3").unwrap();
        assert_eq!(a.overlap(&b), [PRUNING]);
        let m = a.merged(&b);
        assert_eq!(m.keys().collect::<Vec<_>>(), ["threshold_std", "code_bits"]);
    }

    #[test]
    fn recipe_tables_name_unknown_keys() {
        let t: toml::Table = toml::from_str("densty = 0.1\n").unwrap();
        let e = Assignments::from_toml(LAYER_KNOBS, &t, |_| true).unwrap_err();
        assert!(
            e.contains("unknown key \"densty\"") && e.contains("density"),
            "{e}"
        );
        let t: toml::Table = toml::from_str("code_bits = 9\n").unwrap();
        let e = Assignments::from_toml(LAYER_KNOBS, &t, |_| true).unwrap_err();
        assert_eq!(e, "code_bits 9 is outside 1..=8");
        let t: toml::Table = toml::from_str("density = 1\ninit = \"density\"\n").unwrap();
        let a = Assignments::from_toml(LAYER_KNOBS, &t, |_| true).unwrap();
        assert_eq!(a.get("density"), Some(&Value::Float(1.0)));
        assert_eq!(a.get("init"), Some(&Value::Choice("density")));
    }
}
