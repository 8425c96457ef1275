//! One test per fixed bug, named after it.

use crate::util::TestDir;

/// An unclosed `[` in a --layers pattern used to be neither a class nor a literal, so a
/// tensor literally named with `[` could not be selected.
#[test]
fn unclosed_bracket_in_a_pattern_matches_itself() {
    let t = TestDir::new();
    let model = t.checkpoint(
        "m.safetensors",
        &[("w[.weight", vec![2, 2], vec![0.5, 0.0, 0.0, 0.5])],
    );
    t.run(&[
        "pack",
        model.to_str().unwrap(),
        "-o",
        "out",
        "--layers",
        "w[.weight",
    ])
    .ok();
}
