//! The settings' definitions, parsing and checks.

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

/// A value given as it is (by a library caller, not parsed from text or TOML) is checked as
/// the parsers check it: an integer in its range, a word of its choice.
#[test]
fn values_given_directly_are_checked_as_parsed_ones_are() {
    let knob = |key| LAYER_KNOBS.iter().find(|k| k.key == key).unwrap();
    let mut a = Assignments::<LayerSettings>::new();
    let e = a
        .set(LAYER_KNOBS, knob("code_bits"), Value::Int(260))
        .unwrap_err();
    assert!(e.contains("code_bits") && e.contains("260"), "{e}");
    let e = a
        .set(LAYER_KNOBS, knob("code_bits"), Value::Int(0))
        .unwrap_err();
    assert!(e.contains("outside"), "{e}");
    let e = a
        .set(LAYER_KNOBS, knob("codebook"), Value::Choice("Optimal"))
        .unwrap_err();
    assert!(e.contains("expected one of kmeans, optimal"), "{e}");
    let e = a
        .set(LAYER_KNOBS, knob("density"), Value::Int(1))
        .unwrap_err();
    assert!(e.contains("wrong kind"), "{e}");
    a.set(LAYER_KNOBS, knob("code_bits"), Value::Int(8))
        .unwrap();
    a.set(LAYER_KNOBS, knob("codebook"), Value::Choice("optimal"))
        .unwrap();
}
