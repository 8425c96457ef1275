//! `--recipe recipe.toml`: layer selection, defaults and per-layer overrides by glob, and
//! run-wide settings; the schema is in docs/recipes.md. Every key is a setting of
//! [`crate::settings`] (the same definitions as the command-line flags), so the two cannot
//! drift apart. Tables this crate does not own (`[retrain]`) are kept as they are for their
//! owner to read with its own settings.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::settings::{
    Assignments, LAYER_KNOBS, LayerSettings, RUN_KNOBS, RunSettings, Scope, describe,
};

/// Tables a recipe may hold that other crates read: `[retrain]` (eie-evaluate's retraining).
pub const FOREIGN_TABLES: [&str; 1] = ["retrain"];

/// A `[[layers]]` rule: a pattern, and what it sets.
#[derive(Debug, Clone)]
pub struct Rule {
    /// A glob over layer names.
    pub pattern: String,
    /// Leave the matching layers out.
    pub skip: bool,
    /// What it sets.
    pub set: Assignments<LayerSettings>,
}

/// A parsed, checked recipe.
#[derive(Debug, Clone, Default)]
pub struct Recipe {
    /// The file, for messages.
    pub path: PathBuf,
    /// `select`: the layers, as globs (empty: the default selection).
    pub select: Vec<String>,
    /// `[defaults]`: settings of every layer.
    pub defaults: Assignments<LayerSettings>,
    /// `[[layers]]` rules, in file order.
    pub rules: Vec<Rule>,
    /// Top-level run-wide settings (`dense_checkpoints`).
    pub run: Assignments<RunSettings>,
    /// The tables of [`FOREIGN_TABLES`] present, as written.
    pub tables: BTreeMap<String, toml::Table>,
}

/// The largest recipe file read.
pub const MAX_RECIPE_BYTES: u64 = 1 << 20;

impl Recipe {
    /// Reads and checks `path` (unknown keys, value ranges).
    pub fn load(path: &Path) -> Result<Self> {
        let text =
            eie_format::files::read_text(path, MAX_RECIPE_BYTES).map_err(|e| Error::Recipe {
                path: path.to_path_buf(),
                reason: format!("cannot read it: {e}"),
            })?;
        Self::parse(path, &text)
    }

    /// Parses recipe text (`path` names it in errors).
    pub fn parse(path: &Path, text: &str) -> Result<Self> {
        let bad = |reason: String| Error::Recipe {
            path: path.to_path_buf(),
            reason,
        };
        let raw: toml::Table =
            toml::from_str(text).map_err(|e| bad(e.to_string().trim().replace('\n', " ")))?;
        let mut recipe = Self {
            path: path.to_path_buf(),
            ..Self::default()
        };
        let layer_keys = |k: &crate::settings::Knob<LayerSettings>| k.scope == Scope::Everywhere;
        for (key, value) in raw {
            match (key.as_str(), value) {
                ("select", toml::Value::Array(items)) => {
                    // An empty list would fall back to the default selection: every layer.
                    if items.is_empty() {
                        return Err(bad(
                            "select = []: expected at least one layer pattern (leave select out to take the default layers)".into(),
                        ));
                    }
                    for item in items {
                        match item {
                            toml::Value::String(s) => {
                                eie_checkpoint::check_pattern(&s)
                                    .map_err(|e| bad(format!("select: {e}")))?;
                                recipe.select.push(s);
                                if recipe.select.len() > eie_checkpoint::MAX_PATTERNS {
                                    return Err(bad(format!(
                                        "select: more than {} patterns",
                                        eie_checkpoint::MAX_PATTERNS
                                    )));
                                }
                            }
                            other => {
                                return Err(bad(format!(
                                    "select: expected layer patterns (strings), got {}",
                                    describe(&other)
                                )));
                            }
                        }
                    }
                }
                ("defaults", toml::Value::Table(t)) => {
                    recipe.defaults = Assignments::from_toml(LAYER_KNOBS, &t, |_| true)
                        .map_err(|e| bad(format!("[defaults]: {e}")))?;
                }
                ("layers", toml::Value::Array(rules)) => {
                    for (i, rule) in rules.into_iter().enumerate() {
                        let place = |p: &str| format!("[[layers]] {} (pattern \"{p}\")", i + 1);
                        let toml::Value::Table(mut t) = rule else {
                            return Err(bad(format!("[[layers]] {}: expected a table", i + 1)));
                        };
                        let pattern = match t.remove("pattern") {
                            Some(toml::Value::String(p)) => p,
                            _ => {
                                return Err(bad(format!(
                                    "[[layers]] {}: needs a pattern = \"glob\"",
                                    i + 1
                                )));
                            }
                        };
                        eie_checkpoint::check_pattern(&pattern)
                            .map_err(|e| bad(format!("[[layers]] {}: {e}", i + 1)))?;
                        let skip = match t.remove("skip") {
                            None => false,
                            Some(toml::Value::Boolean(b)) => b,
                            Some(other) => {
                                return Err(bad(format!(
                                    "{}: skip: expected true or false, got {}",
                                    place(&pattern),
                                    describe(&other)
                                )));
                            }
                        };
                        let set = Assignments::from_toml(LAYER_KNOBS, &t, layer_keys)
                            .map_err(|e| bad(format!("{}: {e}", place(&pattern))))?;
                        recipe.rules.push(Rule { pattern, skip, set });
                        if recipe.rules.len() > eie_checkpoint::MAX_PATTERNS {
                            return Err(bad(format!(
                                "more than {} [[layers]] rules",
                                eie_checkpoint::MAX_PATTERNS
                            )));
                        }
                    }
                }
                (name, toml::Value::Table(t)) if FOREIGN_TABLES.contains(&name) => {
                    recipe.tables.insert(name.to_string(), t);
                }
                (name, value) if RUN_KNOBS.iter().any(|k| k.key == name) => {
                    let mut one = toml::Table::new();
                    one.insert(name.to_string(), value);
                    let set = Assignments::from_toml(RUN_KNOBS, &one, |_| true).map_err(bad)?;
                    recipe.run = recipe.run.merged(&set);
                }
                (name, _) => {
                    let mut known = vec!["select", "defaults", "layers"];
                    known.extend(FOREIGN_TABLES);
                    known.extend(RUN_KNOBS.iter().map(|k| k.key));
                    return Err(bad(format!(
                        "unknown key \"{name}\" or a value of the wrong kind (expected one of {})",
                        known.join(", ")
                    )));
                }
            }
        }
        Ok(recipe)
    }

    /// The place of `table` in messages: `recipe r.toml, [defaults]`.
    pub fn place(&self, table: &str) -> String {
        format!("recipe {}, {table}", self.path.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            (
                "[[layers]]\npattern = \"a\"\nglobal_density = 0.1\n",
                "global_density",
            ),
            ("mystery = 1\n", "mystery"),
            ("[[layers]]\ndensity = 0.1\n", "needs a pattern"),
        ];
        for (text, needle) in bad {
            let err = Recipe::parse(Path::new("bad.toml"), text)
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("bad.toml") && err.contains(needle),
                "{needle}: {err}"
            );
        }
    }

    #[test]
    fn run_settings_and_foreign_tables_are_kept() {
        let r = Recipe::parse(
            Path::new("r.toml"),
            "dense_checkpoints = true\nselect = [\"fc*\"]\n[retrain]\nepochs = 2\n",
        )
        .unwrap();
        let mut run = RunSettings::default();
        r.run.apply(&mut run);
        assert!(run.dense_checkpoints);
        assert_eq!(r.select, ["fc*"]);
        assert!(r.tables["retrain"].contains_key("epochs"));
    }
}
