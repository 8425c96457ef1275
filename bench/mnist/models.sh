#!/usr/bin/env bash
# Reproduces docs/results.md's CNN and LSTM sections: LeNet-5 and an LSTM of 128
# units on MNIST (the 10k test set in ../shared/data/mnist, images 0..7999 to train,
# 8000..9999 held out), trained by eie-compress, compressed with retraining on 64 PEs, then
# evaluated and simulated; and the training speed benchmark. Outputs go to out/mnist/.
# Takes about 7 minutes on two cores after the build.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release --quiet
bin=target/release/eie-compress
data=mnist:../shared/data/mnist
split=(--dataset "$data" --range 0..8000 --eval-range 8000..10000)
held=(--dataset "$data" --range 8000..10000)
out=out/mnist
mkdir -p "$out"

echo "== LeNet-5: train"
$bin -q train "${split[@]}" --arch 1x28x28-conv20k5-maxpool2-conv50k5-maxpool2-500-10 \
    --epochs 15 --seed 1 -o "$out/lenet5.safetensors" --force
echo "== LeNet-5: compress --retrain (docs/recipes/lenet-5.toml), 64 PEs"
$bin -q compress "$out/lenet5.safetensors" -o "$out/lenet5-64" --recipe docs/recipes/lenet-5.toml \
    --pes 64 --retrain "${split[@]}" --force
echo "== LeNet-5: compress --retrain, 4 PEs (the bytes with fewer pointers)"
$bin -q compress "$out/lenet5.safetensors" -o "$out/lenet5-4" --recipe docs/recipes/lenet-5.toml \
    --pes 4 --retrain "${split[@]}" --force | sed -n '/^layer/,/^total/p'
echo "== LeNet-5: eval"
$bin eval "$out/lenet5.safetensors" "$out/lenet5-64" "${held[@]}" | sed -n '1,/^EIE activation/p'
echo "== LeNet-5: simulate, 64 PEs"
$bin simulate "$out/lenet5-64" "${held[@]}" | sed -n '1,/^per inference/p'

echo "== LeNet-5: compress --retrain --conv-on-eie (convolutions as im2col products), 64 PEs"
$bin -q compress "$out/lenet5.safetensors" -o "$out/lenet5-im2col-64" --recipe docs/recipes/lenet-5.toml \
    --pes 64 --retrain --conv-on-eie "${split[@]}" --force | sed -n '/^stage/,/^EIE activation/p' | tail -3
echo "== LeNet-5: simulate with the convolutions on EIE, 64 PEs"
$bin simulate "$out/lenet5-im2col-64" "${held[@]}" | sed -n '1,/^per inference/p'

echo "== LSTM: train"
$bin -q train "${split[@]}" --arch 28x28-lstm128-10 --epochs 20 --seed 1 \
    -o "$out/lstm128.safetensors" --force
echo "== LSTM: compress --retrain (docs/recipes/lstm-128.toml), 64 PEs"
$bin -q compress "$out/lstm128.safetensors" -o "$out/lstm128-64" --recipe docs/recipes/lstm-128.toml \
    --pes 64 --retrain "${split[@]}" --force
echo "== LSTM: eval"
$bin eval "$out/lstm128.safetensors" "$out/lstm128-64" "${held[@]}" | sed -n '1,/^EIE activation/p'
echo "== LSTM: simulate, 64 PEs"
$bin simulate "$out/lstm128-64" "${held[@]}" | sed -n '1,/^per inference/p'

echo "== training speed (cargo bench -p eie-evaluate --bench train)"
cargo bench -q -p eie-evaluate --bench train
