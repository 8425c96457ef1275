//! Retraining's settings and its sharing steps.

use eie_checkpoint::Dtype;
use eie_pipeline::{Assignments, codebook};

use super::run::hold_largest;
use super::*;

#[test]
fn choices_resolve_to_a_schedule() {
    let mut a = Assignments::<RetrainChoices>::new();
    a.set_text(RETRAIN_KNOBS, "rounds", "4").unwrap();
    a.set_text(RETRAIN_KNOBS, "epochs", "2").unwrap();
    let mut c = RetrainChoices::default();
    a.apply(&mut c);
    let s = c.resolve(7).unwrap();
    assert_eq!(s.schedule, [0.25, 0.5, 0.75, 1.0]);
    assert_eq!((s.fine_tune.epochs, s.centroids.epochs), (2, 2));
    assert_eq!((s.fine_tune.seed, s.centroids.seed), (7, 7));
    let e = a.set_text(RETRAIN_KNOBS, "rounds", "100000").unwrap_err();
    assert_eq!(e, "rounds 100000 is over 1000");
    let t: toml::Table = toml::from_str("schedule = [0.5, 0.4]\n").unwrap();
    let e = Assignments::from_toml(RETRAIN_KNOBS, &t, |_| true).unwrap_err();
    assert!(e.contains("increasing"), "{e}");
    let t: toml::Table = toml::from_str("schedule = [0.5, 1.0]\nrounds = 2\n").unwrap();
    let e = Assignments::from_toml(RETRAIN_KNOBS, &t, |_| true).unwrap_err();
    assert!(e.contains("give one of rounds and schedule"), "{e}");
}

#[test]
fn share_schedules_are_increasing_fractions_below_one() {
    for bad in [
        "[0.5, 0.4]",
        "[0.5, 1.0]",
        "[0.0, 0.5]",
        "[-0.1]",
        "[0.5, 0.5]",
    ] {
        let t: toml::Table = toml::from_str(&format!("share_schedule = {bad}\n")).unwrap();
        let e = Assignments::from_toml(RETRAIN_KNOBS, &t, |_| true).unwrap_err();
        assert!(e.contains("increasing fractions in (0, 1)"), "{bad}: {e}");
    }
    let t: toml::Table = toml::from_str("share_schedule = [0.5, 0.75, 0.9]\n").unwrap();
    let a = Assignments::from_toml(RETRAIN_KNOBS, &t, |_| true).unwrap();
    let mut c = RetrainChoices::default();
    a.apply(&mut c);
    assert_eq!(c.resolve(1).unwrap().share_schedule, [0.5, 0.75, 0.9]);
    assert!(
        RetrainChoices::default()
            .resolve(1)
            .unwrap()
            .share_schedule
            .is_empty()
    );
}

/// Each step holds the largest survivors not yet held, up to its fraction of the
/// survivors the sharing started with, at their nearest shared value; held weights stay
/// held, pruned ones stay zero.
#[test]
fn hold_largest_shares_the_largest_first() {
    let settings = eie_pipeline::LayerSettings {
        code_bits: 2,
        ..Default::default()
    };
    let values = [-2.0, -2.0, 0.5, 0.5, 3.0, 3.0];
    let book = codebook("fc", &values, &[], &settings, Dtype::F32, None).unwrap();
    assert_eq!(book.centroids, [-2.0, 0.5, 3.0]);
    let mut w = [0.4f32, 0.0, -2.5, 2.9, 0.6, -0.3];
    let mut held = [false; 6];
    // 5 survivors: half is 3 (2.5 rounded): -2.5, 2.9 and 0.6.
    hold_largest(&mut w, &book, &mut held, 5, 0.5);
    assert_eq!(w, [0.4, 0.0, -2.0, 3.0, 0.5, -0.3]);
    assert_eq!(held, [false, false, true, true, true, false]);
    // One more (4 of 5): 0.4, larger than -0.3; the held ones are not chosen again.
    hold_largest(&mut w, &book, &mut held, 5, 0.8);
    assert_eq!(w, [0.5, 0.0, -2.0, 3.0, 0.5, -0.3]);
    assert_eq!(held, [true, false, true, true, true, false]);
}

/// The schema in docs/recipes.md is a recipe every key of which is read as documented.
#[test]
fn the_documented_schema_parses() {
    use eie_pipeline::{Recipe, RunSettings};
    let doc = include_str!("../../../../docs/recipes.md");
    let block = doc
        .split("```toml\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("a toml block");
    let recipe = Recipe::parse(std::path::Path::new("docs/recipes.md"), block).unwrap();
    assert_eq!(recipe.select, ["classifier.*.weight"]);
    assert_eq!(recipe.rules.len(), 1);
    let mut run = RunSettings::default();
    recipe.run.apply(&mut run);
    assert!(!run.dense_checkpoints);
    let t = &recipe.tables["retrain"];
    let a = Assignments::from_toml(RETRAIN_KNOBS, t, |_| true).unwrap();
    let mut c = RetrainChoices::default();
    a.apply(&mut c);
    assert_eq!((c.rounds, c.epochs, c.batch_size), (Some(3), 4, 64));
    // Uncommented, each documented alternative is a key the parser knows.
    for alt in block.lines().filter_map(|l| l.strip_prefix("# ")) {
        let Some((key, _)) = alt.split_once(" = ") else {
            continue;
        };
        let read = if eie_pipeline::LAYER_KNOBS.iter().any(|k| k.key == key) {
            let text = format!("[defaults]\n{alt}\n");
            Recipe::parse(std::path::Path::new("alt.toml"), &text)
                .map(|_| ())
                .map_err(|e| e.to_string())
        } else {
            let t: toml::Table = toml::from_str(alt).map_err(|e| e.to_string()).unwrap();
            Assignments::from_toml(RETRAIN_KNOBS, &t, |_| true).map(|_| ())
        };
        assert!(read.is_ok(), "documented alternative {alt:?}: {read:?}");
    }
}
