#!/usr/bin/env bash
# Makes the fuzz seeds (fuzz/corpus/) and the hostile corpus (fuzz/hostile/, each file with
# the error it must get in a .error note). Deterministic; the eie-fuzz tests replay both and
# check that the seeds made in code are still what this script makes.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --quiet -p eie-fuzz --example make_corpus -- fuzz
# Seeds from the fixtures: checkpoints as they are, and what the binary packs from them.
mkdir -p fuzz/corpus/safetensors fuzz/corpus/bundle fuzz/corpus/recipe
for f in figure2 tiny-mlp; do cp "fixtures/$f.safetensors" "fuzz/corpus/safetensors/seed-$f.safetensors"; done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cargo run --quiet --release -- -q pack fixtures/figure2.safetensors -o "$tmp/fig" --pes 4 >/dev/null
cargo run --quiet --release -- -q compress fixtures/tiny-mlp.safetensors -o "$tmp/tiny" --pes 8 --density 0.3 --column-batch 16 >/dev/null
cp "$tmp/fig/model.eie" fuzz/corpus/bundle/seed-figure2.eie
cp "$tmp/tiny/model.eie" fuzz/corpus/bundle/seed-tiny.eie
# Recipes: the schema of docs/recipes.md, and the demo's.
awk '/^```toml$/{on=1; next} /^```$/{if (on) exit} on' docs/recipes.md > fuzz/corpus/recipe/seed-schema.toml
cargo run --quiet --release -- demo --help >/dev/null
sed -n '/^const RECIPE: &str = r#"/,/^"#;/p' src/commands/demo.rs | sed '1s/^const RECIPE: &str = r#"//; $d' > fuzz/corpus/recipe/seed-demo.toml
