//! The flags derived from the libraries' setting definitions, read from `compress --help`:
//! every per-layer flag is a recipe key and every recipe key a flag (both come from one
//! table; this checks the derivation on both sides), and likewise the retraining and
//! run-wide settings.

use std::path::Path;

use eie_pipeline::settings::{Knob, Scope, ValueKind};
use eie_pipeline::{Assignments, LAYER_KNOBS, RUN_KNOBS, Recipe};

use crate::util::TestDir;

/// A value a setting's kind accepts, as TOML.
fn toml_value<S: Default>(k: &Knob<S>) -> String {
    match k.kind {
        ValueKind::Switch => "true".into(),
        ValueKind::Int { min, .. } => min.max(1).to_string(),
        ValueKind::Float => "0.5".into(),
        // A pruning schedule ends at 1; a share schedule stays below it.
        ValueKind::Floats if k.key == "share_schedule" => "[0.5]".into(),
        ValueKind::Floats => "[0.5, 1.0]".into(),
        ValueKind::Choice(words) => format!("\"{}\"", words[0]),
    }
}

/// `compress --help`'s long flags, each with the heading it is listed under.
fn compress_flags() -> Vec<(String, String)> {
    let help = TestDir::new().run(&["compress", "--help"]).ok().to_string();
    let mut heading = String::new();
    let mut flags = Vec::new();
    for line in help.lines() {
        if !line.starts_with(' ') && line.ends_with(':') {
            heading = line.trim_end_matches(':').to_string();
        }
        let item = line.trim_start().trim_start_matches("-o, ");
        if let Some(flag) = item.strip_prefix("--") {
            let name: String = flag
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            flags.push((name, heading.clone()));
        }
    }
    flags
}

fn has(flags: &[(String, String)], flag: &str) -> bool {
    flags.iter().any(|(f, _)| f == flag)
}

#[test]
fn every_per_layer_flag_is_a_recipe_key_and_back() {
    let flags = compress_flags();
    for k in LAYER_KNOBS {
        assert!(has(&flags, &k.flag()), "--{} missing", k.flag());
        let text = format!("[defaults]\n{} = {}\n", k.key, toml_value(k));
        Recipe::parse(Path::new("r.toml"), &text)
            .unwrap_or_else(|e| panic!("[defaults] {}: {e}", k.key));
        if k.scope == Scope::Everywhere {
            let text = format!(
                "[[layers]]\npattern = \"*\"\n{} = {}\n",
                k.key,
                toml_value(k)
            );
            Recipe::parse(Path::new("r.toml"), &text)
                .unwrap_or_else(|e| panic!("[[layers]] {}: {e}", k.key));
        }
    }
    let per_layer: Vec<&String> = flags
        .iter()
        .filter(|(_, h)| h.starts_with("Per-layer settings"))
        .map(|(f, _)| f)
        .collect();
    assert_eq!(per_layer.len(), LAYER_KNOBS.len(), "{per_layer:?}");
    for f in per_layer {
        let key = f.replace('-', "_");
        let knob = LAYER_KNOBS.iter().find(|k| k.key == key).expect("a knob");
        let text = format!("[defaults]\n{key} = {}\n", toml_value(knob));
        assert!(Recipe::parse(Path::new("r.toml"), &text).is_ok(), "--{f}");
    }
}

#[test]
fn every_retraining_flag_is_a_retrain_key_and_back() {
    let flags = compress_flags();
    for k in eie_evaluate::RETRAIN_KNOBS {
        let t: toml::Table = toml::from_str(&format!("{} = {}\n", k.key, toml_value(k))).unwrap();
        Assignments::from_toml(eie_evaluate::RETRAIN_KNOBS, &t, |_| true)
            .unwrap_or_else(|e| panic!("[retrain] {}: {e}", k.key));
        assert_eq!(
            has(&flags, &k.flag()),
            k.scope != Scope::RecipeOnly,
            "--{}",
            k.flag()
        );
    }
    for k in RUN_KNOBS {
        assert!(has(&flags, &k.flag()), "--{}", k.flag());
        let text = format!("{} = {}\n", k.key, toml_value(k));
        Recipe::parse(Path::new("r.toml"), &text).unwrap();
    }
}
