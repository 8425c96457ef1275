#!/usr/bin/env bash
# Reproduces every figure of docs/results.md: LeNet-300-100 on MNIST (the 10k test set in
# ../shared/data/mnist, images 0..7999 to train, 8000..9999 held out), trained by
# eie-compress, compressed to under 8% with 4-bit codes and indices, with and without
# retraining, plain and PE-balanced, on 64 and 4 PEs; then eval and simulate.
# Outputs go to out/mnist/. Takes about 40 s on two cores after the build.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release --quiet
bin=target/release/eie-compress
data=mnist:../shared/data/mnist
split=(--dataset "$data" --range 0..8000 --eval-range 8000..10000)
out=out/mnist
mkdir -p "$out"

for seed in 1 2 3; do
    echo "== train, seed $seed"
    $bin -q train "${split[@]}" --arch 784-300-100-10 --epochs 20 --seed "$seed" \
        -o "$out/lenet-s$seed.safetensors" --force
done

run() { # name, then compress options
    local name=$1
    shift
    echo "== compress $name"
    $bin -q compress "$out/lenet-s1.safetensors" -o "$out/$name" \
        --recipe docs/recipes/lenet-300-100.toml "${split[@]}" --force "$@"
}
run retrain-64 --pes 64 --retrain --dense-checkpoints
run retrain-4 --pes 4 --retrain
run oneshot-64 --pes 64
run balance-retrain-64 --pes 64 --balance --retrain
run balance-oneshot-64 --pes 64 --balance
for seed in 2 3; do
    echo "== compress retrain-64, seed $seed"
    $bin -q compress "$out/lenet-s$seed.safetensors" -o "$out/retrain-64-s$seed" \
        --recipe docs/recipes/lenet-300-100.toml "${split[@]}" --force --pes 64 --retrain \
        | sed -n '/^stage/,/^EIE bit/p'
done

# The fine-tuning learning rate (docs/decisions.md): pruning in one round, 3 epochs of masked
# fine-tuning at 1e-4 (a tenth of training's, as Deep Compression does with SGD) and 1e-3.
sed '/^\[retrain\]/,$d' docs/recipes/lenet-300-100.toml > "$out/no-retrain.toml"
for lr in 1e-4 1e-3; do
    echo "== compress lr-$lr"
    $bin -q compress "$out/lenet-s1.safetensors" -o "$out/lr-$lr" --recipe "$out/no-retrain.toml" \
        "${split[@]}" --force --pes 64 --retrain --rounds 1 --epochs 3 --lr "$lr" \
        | grep -E '^(masked|EIE bit)'
done

echo "== eval"
time $bin eval "$out/lenet-s1.safetensors" "$out/retrain-64" --dataset "$data" --range 8000..10000
echo "== simulate, 200 held-out images"
$bin simulate "$out/retrain-64" --dataset "$data" --range 8000..8200
$bin simulate "$out/balance-retrain-64" --dataset "$data" --range 8000..8200
