//! `--recipe recipe.toml`: defaults plus per-layer overrides by glob. The schema is in
//! docs/recipes.md. Values resolve in this order, later winning: built-in defaults, the
//! command line, the recipe's `[defaults]`, then each `[[layers]]` rule that matches, in file
//! order. A key set both on the command line and in `[defaults]` is an error, so no setting
//! is silently ignored.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use eie_checkpoint::glob_match;
use eie_quantize::{Init, Method};
use serde::Deserialize;

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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum CodebookKind {
    /// Lloyd's k-means from the chosen initialisation.
    Kmeans,
    /// The exactly optimal 1-D k-means (dynamic programming).
    Optimal,
}

/// Where Lloyd's iterations start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
pub enum InitKind {
    /// Equally spaced over [min, max] (Deep Compression's default).
    #[serde(rename = "linear")]
    Linear,
    /// Equal steps of the CDF.
    #[serde(rename = "density")]
    Density,
    /// Random values of the layer (seeded).
    #[serde(rename = "random")]
    Random,
    /// k-means++ (seeded).
    #[serde(rename = "kmeans++")]
    #[value(name = "kmeans++")]
    KMeansPlusPlus,
}

/// Everything that is decided per layer.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerSettings {
    pub pruning: Pruning,
    pub code_bits: u8,
    pub index_bits: u8,
    pub codebook: CodebookKind,
    pub init: InitKind,
    pub seed: u64,
    pub max_iter: u32,
    pub balance: bool,
}

impl Default for LayerSettings {
    fn default() -> Self {
        Self {
            pruning: Pruning::None,
            code_bits: 4,
            index_bits: 4,
            codebook: CodebookKind::Kmeans,
            init: InitKind::Linear,
            seed: 0,
            max_iter: 300,
            balance: false,
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

/// Settings that may be given: on the command line, in `[defaults]`, or in a rule.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Partial {
    pub density: Option<f64>,
    pub threshold_std: Option<f64>,
    pub global_density: Option<f64>,
    pub code_bits: Option<u8>,
    pub index_bits: Option<u8>,
    pub codebook: Option<CodebookKind>,
    pub init: Option<InitKind>,
    pub seed: Option<u64>,
    pub max_iter: Option<u32>,
    pub balance: Option<bool>,
}

/// One `[[layers]]` rule. (Its fields repeat [`Partial`]'s because serde cannot combine
/// `flatten` with `deny_unknown_fields`.)
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleToml {
    pattern: String,
    skip: Option<bool>,
    density: Option<f64>,
    threshold_std: Option<f64>,
    code_bits: Option<u8>,
    index_bits: Option<u8>,
    codebook: Option<CodebookKind>,
    init: Option<InitKind>,
    seed: Option<u64>,
    max_iter: Option<u32>,
    balance: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecipeToml {
    #[serde(default)]
    select: Vec<String>,
    #[serde(default)]
    defaults: Partial,
    #[serde(default)]
    layers: Vec<RuleToml>,
    retrain: Option<RetrainPartial>,
}

/// The most pruning rounds a schedule may have.
pub const MAX_ROUNDS: usize = 1000;

/// Retraining settings (`compress --retrain`) that may be given on the command line or in
/// the recipe's `[retrain]` table; not per layer.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RetrainPartial {
    /// Masked fine-tuning epochs after each pruning round.
    pub epochs: Option<usize>,
    /// Centroid fine-tuning epochs.
    pub centroid_epochs: Option<usize>,
    /// Adam's learning rate for masked fine-tuning.
    pub lr: Option<f64>,
    /// SGD's learning rate for centroid fine-tuning.
    pub centroid_lr: Option<f64>,
    pub batch_size: Option<usize>,
    pub weight_decay: Option<f64>,
    /// Pruning rounds, evenly spaced toward the target (schedule r/R).
    pub rounds: Option<usize>,
    /// Progress of each pruning round toward the target, increasing, ending at 1.
    pub schedule: Option<Vec<f64>>,
}

impl RetrainPartial {
    /// The keys set in both.
    pub fn overlap(&self, other: &Self) -> Vec<&'static str> {
        let pairs = [
            ("epochs", self.epochs.is_some() && other.epochs.is_some()),
            (
                "centroid_epochs",
                self.centroid_epochs.is_some() && other.centroid_epochs.is_some(),
            ),
            ("lr", self.lr.is_some() && other.lr.is_some()),
            (
                "centroid_lr",
                self.centroid_lr.is_some() && other.centroid_lr.is_some(),
            ),
            (
                "batch_size",
                self.batch_size.is_some() && other.batch_size.is_some(),
            ),
            (
                "weight_decay",
                self.weight_decay.is_some() && other.weight_decay.is_some(),
            ),
            (
                "rounds / schedule",
                (self.rounds.is_some() || self.schedule.is_some())
                    && (other.rounds.is_some() || other.schedule.is_some()),
            ),
        ];
        pairs.iter().filter(|(_, b)| *b).map(|(k, _)| *k).collect()
    }

    /// `self` with the keys `other` sets.
    pub fn merged(&self, other: &Self) -> Self {
        Self {
            epochs: other.epochs.or(self.epochs),
            centroid_epochs: other.centroid_epochs.or(self.centroid_epochs),
            lr: other.lr.or(self.lr),
            centroid_lr: other.centroid_lr.or(self.centroid_lr),
            batch_size: other.batch_size.or(self.batch_size),
            weight_decay: other.weight_decay.or(self.weight_decay),
            rounds: other.rounds.or(self.rounds),
            schedule: other.schedule.clone().or_else(|| self.schedule.clone()),
        }
    }

    /// The pruning schedule: given, or `rounds` evenly spaced steps (default one).
    pub fn schedule(&self) -> Result<Vec<f64>> {
        if self.rounds.is_some() && self.schedule.is_some() {
            bail!("give rounds or schedule, not both");
        }
        let schedule = match (&self.schedule, self.rounds) {
            (Some(s), _) => s.clone(),
            (None, Some(0)) => bail!("rounds must be at least 1"),
            (None, Some(r)) if r > MAX_ROUNDS => bail!("rounds {r} is over {MAX_ROUNDS}"),
            (None, r) => {
                let r = r.unwrap_or(1);
                (1..=r).map(|i| i as f64 / r as f64).collect()
            }
        };
        if schedule.len() > MAX_ROUNDS {
            bail!(
                "a schedule of {} rounds is over {MAX_ROUNDS}",
                schedule.len()
            );
        }
        let increasing = schedule.windows(2).all(|w| w[0] < w[1]);
        if schedule.is_empty()
            || !increasing
            || schedule[0] <= 0.0
            || *schedule.last().expect("non-empty") != 1.0
        {
            bail!(
                "schedule {schedule:?}: expected increasing steps in (0, 1] ending at 1 (e.g. [0.5, 0.8, 1.0])"
            );
        }
        Ok(schedule)
    }
}

/// A rule: a pattern, and what it sets.
#[derive(Debug, Clone)]
pub struct Rule {
    pub pattern: String,
    pub skip: bool,
    pub set: Partial,
}

/// A parsed, checked recipe.
#[derive(Debug, Clone, Default)]
pub struct Recipe {
    pub path: PathBuf,
    pub select: Vec<String>,
    pub defaults: Partial,
    pub rules: Vec<Rule>,
    /// The `[retrain]` table, if any.
    pub retrain: Option<RetrainPartial>,
}

impl Recipe {
    /// Reads and checks `path` (unknown keys, value ranges).
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read recipe {}", path.display()))?;
        Self::parse(path, &text)
    }

    /// Parses recipe text (`path` names it in errors).
    pub fn parse(path: &Path, text: &str) -> Result<Self> {
        let raw: RecipeToml = toml::from_str(text).map_err(|e| {
            anyhow::anyhow!(
                "recipe {}: {}",
                path.display(),
                e.to_string().trim().replace('\n', " ")
            )
        })?;
        let recipe = Self {
            path: path.to_path_buf(),
            select: raw.select,
            defaults: raw.defaults,
            retrain: raw.retrain,
            rules: raw
                .layers
                .into_iter()
                .map(|r| Rule {
                    pattern: r.pattern,
                    skip: r.skip.unwrap_or(false),
                    set: Partial {
                        density: r.density,
                        threshold_std: r.threshold_std,
                        global_density: None,
                        code_bits: r.code_bits,
                        index_bits: r.index_bits,
                        codebook: r.codebook,
                        init: r.init,
                        seed: r.seed,
                        max_iter: r.max_iter,
                        balance: r.balance,
                    },
                })
                .collect(),
        };
        let here = |what: &str| format!("recipe {}, {what}", path.display());
        if let Some(r) = &recipe.retrain {
            r.schedule().with_context(|| here("[retrain]"))?;
        }
        check(&recipe.defaults).with_context(|| here("[defaults]"))?;
        for (i, r) in recipe.rules.iter().enumerate() {
            check(&r.set).with_context(|| {
                here(&format!("[[layers]] {} (pattern \"{}\")", i + 1, r.pattern))
            })?;
        }
        Ok(recipe)
    }
}

/// Range checks of a set of settings; at most one pruning key.
pub fn check(p: &Partial) -> Result<()> {
    let pruning = [
        p.density.is_some(),
        p.threshold_std.is_some(),
        p.global_density.is_some(),
    ];
    if pruning.iter().filter(|&&b| b).count() > 1 {
        bail!("give one of density, threshold_std and global_density");
    }
    for (key, v) in [("density", p.density), ("global_density", p.global_density)] {
        if let Some(d) = v
            && !(d > 0.0 && d <= 1.0)
        {
            bail!("{key} {d} is outside (0, 1]");
        }
    }
    if let Some(s) = p.threshold_std
        && !(s.is_finite() && s >= 0.0)
    {
        bail!("threshold_std {s} must be finite and >= 0");
    }
    for (key, v) in [("code_bits", p.code_bits), ("index_bits", p.index_bits)] {
        if let Some(b) = v
            && !(1..=8).contains(&b)
        {
            bail!("{key} {b} is outside 1..=8");
        }
    }
    if p.max_iter == Some(0) {
        bail!("max_iter must be at least 1");
    }
    Ok(())
}

fn apply(s: &mut LayerSettings, p: &Partial) {
    if let Some(d) = p.density {
        s.pruning = Pruning::Density(d);
    }
    if let Some(t) = p.threshold_std {
        s.pruning = Pruning::ThresholdStd(t);
    }
    if let Some(d) = p.global_density {
        s.pruning = Pruning::Global(d);
    }
    s.code_bits = p.code_bits.unwrap_or(s.code_bits);
    s.index_bits = p.index_bits.unwrap_or(s.index_bits);
    s.codebook = p.codebook.unwrap_or(s.codebook);
    s.init = p.init.unwrap_or(s.init);
    s.seed = p.seed.unwrap_or(s.seed);
    s.max_iter = p.max_iter.unwrap_or(s.max_iter);
    s.balance = p.balance.unwrap_or(s.balance);
}

/// Keys set in both.
fn overlap(a: &Partial, b: &Partial) -> Vec<&'static str> {
    let mut out = Vec::new();
    let pruning = |p: &Partial| {
        p.density.is_some() || p.threshold_std.is_some() || p.global_density.is_some()
    };
    if pruning(a) && pruning(b) {
        out.push("pruning (density / threshold_std / global_density)");
    }
    let pairs = [
        ("code_bits", a.code_bits.is_some() && b.code_bits.is_some()),
        (
            "index_bits",
            a.index_bits.is_some() && b.index_bits.is_some(),
        ),
        ("codebook", a.codebook.is_some() && b.codebook.is_some()),
        ("init", a.init.is_some() && b.init.is_some()),
        ("seed", a.seed.is_some() && b.seed.is_some()),
        ("max_iter", a.max_iter.is_some() && b.max_iter.is_some()),
        ("balance", a.balance.is_some() && b.balance.is_some()),
    ];
    out.extend(pairs.iter().filter(|(_, both)| *both).map(|(k, _)| *k));
    out
}

/// The layers to compress (after `skip` rules) with their settings, in `selected` order.
pub fn resolve(
    selected: &[String],
    cli: &Partial,
    recipe: Option<&Recipe>,
) -> Result<Vec<(String, LayerSettings)>> {
    check(cli).context("command line")?;
    let mut base = LayerSettings::default();
    apply(&mut base, cli);
    let Some(recipe) = recipe else {
        return Ok(selected.iter().map(|n| (n.clone(), base.clone())).collect());
    };
    let both = overlap(cli, &recipe.defaults);
    if !both.is_empty() {
        bail!(
            "{} set both on the command line and in [defaults] of recipe {}; keep one",
            both.join(", "),
            recipe.path.display()
        );
    }
    let global = recipe.defaults.global_density.is_some() || cli.global_density.is_some();
    if global
        && let Some(r) = recipe
            .rules
            .iter()
            .find(|r| r.set.density.is_some() || r.set.threshold_std.is_some())
    {
        bail!(
            "recipe {}: [[layers]] pattern \"{}\" sets its own pruning, which a global density cannot combine with",
            recipe.path.display(),
            r.pattern
        );
    }
    apply(&mut base, &recipe.defaults);
    for r in &recipe.rules {
        if !selected.iter().any(|n| glob_match(&r.pattern, n)) {
            bail!(
                "recipe {}: [[layers]] pattern \"{}\" matches no selected layer (selected: {})",
                recipe.path.display(),
                r.pattern,
                selected.join(", ")
            );
        }
    }
    let mut out = Vec::new();
    for name in selected {
        let mut s = base.clone();
        let mut skip = false;
        for r in recipe.rules.iter().filter(|r| glob_match(&r.pattern, name)) {
            apply(&mut s, &r.set);
            skip |= r.skip;
        }
        if !skip {
            out.push((name.clone(), s));
        }
    }
    if out.is_empty() {
        bail!(
            "recipe {}: every selected layer is skipped",
            recipe.path.display()
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_alexnet_recipe_resolves_to_the_paper_settings() {
        let path = Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/docs/recipes/alexnet.toml"
        ));
        let recipe = Recipe::load(path).unwrap();
        let layers = names(&[
            "classifier.1.weight",
            "classifier.4.weight",
            "classifier.6.weight",
        ]);
        let got = resolve(&layers, &Partial::default(), Some(&recipe)).unwrap();
        let d: Vec<(String, Pruning, u8)> = got
            .into_iter()
            .map(|(n, s)| (n, s.pruning, s.code_bits))
            .collect();
        assert_eq!(
            d,
            [
                ("classifier.1.weight".to_string(), Pruning::Density(0.09), 4),
                ("classifier.4.weight".to_string(), Pruning::Density(0.09), 4),
                ("classifier.6.weight".to_string(), Pruning::Density(0.25), 4),
            ]
        );
    }

    #[test]
    fn later_rules_win_and_skip_removes() {
        let text = r#"
            [defaults]
            density = 0.1
            code_bits = 5
            [[layers]]
            pattern = "fc*"
            threshold_std = 0.5
            [[layers]]
            pattern = "fc2.weight"
            code_bits = 3
            init = "kmeans++"
            seed = 9
            [[layers]]
            pattern = "head.weight"
            skip = true
        "#;
        let r = Recipe::parse(Path::new("r.toml"), text).unwrap();
        let got = resolve(
            &names(&["fc1.weight", "fc2.weight", "head.weight"]),
            &Partial::default(),
            Some(&r),
        )
        .unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(
            (got[0].1.pruning, got[0].1.code_bits),
            (Pruning::ThresholdStd(0.5), 5)
        );
        assert_eq!(
            (got[1].1.code_bits, got[1].1.init, got[1].1.seed),
            (3, InitKind::KMeansPlusPlus, 9)
        );
    }

    #[test]
    fn bad_recipes_are_named() {
        let bad = [
            ("[defaults]\ndensty = 0.1\n", "densty"),
            ("[[layers]]\npattern = \"a\"\nmystery = 1\n", "mystery"),
            (
                "[defaults]\ndensity = 1.5\n",
                "density 1.5 is outside (0, 1]",
            ),
            (
                "[[layers]]\npattern = \"a\"\ncode_bits = 9\n",
                "[[layers]] 1 (pattern \"a\")",
            ),
            (
                "[defaults]\ndensity = 0.1\nthreshold_std = 1.0\n",
                "one of density",
            ),
            ("[defaults]\ninit = \"forgy\"\n", "forgy"),
            ("[defaults]\nmax_iter = 0\n", "max_iter"),
        ];
        for (text, needle) in bad {
            let err = format!(
                "{:#}",
                Recipe::parse(Path::new("bad.toml"), text).unwrap_err()
            );
            assert!(
                err.contains("bad.toml") && err.contains(needle),
                "{needle}: {err}"
            );
        }
        let r = Recipe::parse(
            Path::new("r.toml"),
            "[[layers]]\npattern = \"conv*\"\ndensity = 0.5\n",
        )
        .unwrap();
        let err = resolve(&names(&["fc1.weight"]), &Partial::default(), Some(&r))
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"conv*\" matches no selected layer"), "{err}");
        let r = Recipe::parse(
            Path::new("r.toml"),
            "[defaults]\nglobal_density = 0.1\n[[layers]]\npattern = \"fc*\"\ndensity = 0.2\n",
        )
        .unwrap();
        let err = resolve(&names(&["fc1.weight"]), &Partial::default(), Some(&r))
            .unwrap_err()
            .to_string();
        assert!(err.contains("global density cannot combine"), "{err}");
        let r = Recipe::parse(Path::new("r.toml"), "[defaults]\ncode_bits = 3\n").unwrap();
        let cli = Partial {
            code_bits: Some(5),
            ..Default::default()
        };
        let err = resolve(&names(&["fc1.weight"]), &cli, Some(&r))
            .unwrap_err()
            .to_string();
        assert!(err.contains("code_bits set both"), "{err}");
    }
}
