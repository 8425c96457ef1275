#!/usr/bin/env bash
# The retraining schedules docs/results.md compares for the LSTM of bench/mnist/models.sh
# (run that first: it trains out/mnist/lstm128.safetensors). Each compresses it to the
# densities of docs/recipes/lstm-128.toml with one schedule and prints the accuracy stages
# after pruning: Deep Compression's (weights shared at once) with the flags below, then
# the recipe's own (incremental sharing, a recipe-only key) and its sample order seeded 2.
# About 13 minutes on two cores.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release --quiet
bin=target/release/eie-compress
split=(--dataset mnist:../shared/data/mnist --range 0..8000 --eval-range 8000..10000)
out=out/mnist
sed '/^\[retrain\]/,$d' docs/recipes/lstm-128.toml | sed '/^# Five prune/,$d' > "$out/lstm-densities.toml"
schedule() { # name, then retraining flags
    local name=$1
    shift
    echo "== $name: $*"
    $bin -q compress "$out/lstm128.safetensors" -o "$out/lstm-$name" --recipe "$out/lstm-densities.toml" \
        --pes 64 --retrain "${split[@]}" --force "$@" \
        | grep -E '^(masked fine-tuning, (round [35]/|sharing step)|shared [0-9]|weight-shared|centroid fine-tuning|EIE bit)'
}
schedule a --rounds 3 --epochs 4
schedule b --rounds 5 --epochs 6 --centroid-epochs 10
schedule d --rounds 5 --epochs 6 --centroid-epochs 20 --centroid-lr 0.003
schedule e --rounds 5 --epochs 10 --centroid-epochs 20 --centroid-lr 0.003
schedule g --rounds 5 --epochs 15 --centroid-epochs 30 --centroid-lr 0.003
# The recipe's schedule with the codebook's other initialisations (linear is the default).
schedule e-density --rounds 5 --epochs 10 --centroid-epochs 20 --centroid-lr 0.003 --init density
schedule e-kmeanspp --rounds 5 --epochs 10 --centroid-epochs 20 --centroid-lr 0.003 --init kmeans++
# Incremental weight sharing: the recipe itself, and with another sample order.
recipe() { # name, then flags
    local name=$1
    shift
    echo "== $name: the recipe's own schedule $*"
    $bin -q compress "$out/lstm128.safetensors" -o "$out/lstm-$name" --recipe docs/recipes/lstm-128.toml \
        --pes 64 --retrain "${split[@]}" --force "$@" \
        | grep -E '^(masked fine-tuning, (round 5/|sharing step)|shared [0-9]|weight-shared|centroid fine-tuning|EIE bit)'
}
recipe inq
recipe inq-seed2 --seed 2
# One change each to the 10-epoch schedule (docs/results.md, "Also measured").
schedule e-optimal --rounds 5 --epochs 10 --centroid-epochs 20 --centroid-lr 0.003 --codebook optimal
schedule e-centroid40 --rounds 5 --epochs 10 --centroid-epochs 40 --centroid-lr 0.003
cp "$out/lstm-densities.toml" "$out/lstm-six-rounds.toml"
printf '\n[retrain]\nschedule = [0.2, 0.4, 0.6, 0.8, 0.9, 1.0]\n' >> "$out/lstm-six-rounds.toml"
echo "== six-rounds: schedule [0.2, 0.4, 0.6, 0.8, 0.9, 1.0], 10 epochs, centroid 20 at 3e-3"
$bin -q compress "$out/lstm128.safetensors" -o "$out/lstm-six-rounds" --recipe "$out/lstm-six-rounds.toml" \
    --pes 64 --retrain "${split[@]}" --force --epochs 10 --centroid-epochs 20 --centroid-lr 0.003 \
    | grep -E '^(masked fine-tuning, round 6/|weight-shared|centroid fine-tuning|EIE bit)'
