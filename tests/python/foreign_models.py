"""Checkpoints made elsewhere, in PyTorch's naming and layouts, with a forward pass written
from PyTorch's documented semantics alone (numpy, float64): nn.Conv2d (NCHW, weight
[out, in, kh, kw]), nn.MaxPool2d, nn.ReLU, nn.Flatten, nn.Linear (weight [out, in]), and
nn.LSTM (batch_first, gates i, f, g, o, both biases, zero initial state; the classifier on
the last step).

    python3 tests/python/foreign_models.py OUT_DIR

Writes into OUT_DIR, for each of a CNN (cnn: 1x8x8-conv6k3-relu-maxpool2-24-10), a strided,
padded CNN with average pooling and module names of its own (strided:
1x8x8-net.0=conv4k3s2p1-relu-avgpool2-head=10), an LSTM (lstm: 8x8-lstm16-10) and a
two-layer LSTM (lstm2: 8x8-lstm12x2-10): KIND.safetensors (the tensors, no metadata: this framework knows nothing of
eie-compress) and KIND-data.safetensors (400 inputs drawn here, `inputs` [N, 1, 8, 8] or
[N, 8, 8] with metadata eie.form, `labels` [N] = this forward pass's predictions, keeping only
samples whose two largest logits are more than 1e-3 apart, so that float rounding cannot
decide them). An eval of KIND.safetensors on KIND-data.safetensors that agrees with this
framework image for image scores exactly 100%. Prints {"cnn": N, ...} (samples kept).
The integration test `foreign_pytorch_layout_checkpoints` runs it.
"""

import json
import os
import sys

import numpy as np
from safetensors.numpy import save_file

rng = np.random.default_rng(20261201)


def uniform(shape, bound):
    return rng.uniform(-bound, bound, size=shape).astype(np.float32)


def conv2d(x, w, b, stride=1, padding=0):
    """x [C, H, W], w [O, C, K, K], zero padding on every side."""
    o, c, k, _ = w.shape
    x = np.pad(x.astype(np.float64), ((0, 0), (padding, padding), (padding, padding)))
    h, wd = (x.shape[1] - k) // stride + 1, (x.shape[2] - k) // stride + 1
    y = np.zeros((o, h, wd))
    for i in range(h):
        for j in range(wd):
            patch = x[:, i * stride : i * stride + k, j * stride : j * stride + k]
            y[:, i, j] = np.tensordot(w.astype(np.float64), patch, axes=([1, 2, 3], [0, 1, 2]))
    return y + b.astype(np.float64)[:, None, None]


def pool2(x, reduce):
    """nn.MaxPool2d(2) or nn.AvgPool2d(2): floor mode."""
    c, h, w = x.shape
    return reduce(x[:, : h // 2 * 2, : w // 2 * 2].reshape(c, h // 2, 2, w // 2, 2), axis=(2, 4))


def linear(x, w, b):
    return w.astype(np.float64) @ x + b.astype(np.float64)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def cnn_forward(t, x):
    a = conv2d(x, t["conv1.weight"], t["conv1.bias"])
    a = pool2(np.maximum(a, 0.0), np.max).reshape(-1)  # nn.Flatten: NCHW order
    a = np.maximum(linear(a, t["fc1.weight"], t["fc1.bias"]), 0.0)
    return linear(a, t["fc2.weight"], t["fc2.bias"])


def strided_forward(t, x):
    """1x8x8-net.0=conv4k3s2p1-relu-avgpool2-head=10: stride, padding, average pooling."""
    a = conv2d(x, t["net.0.weight"], t["net.0.bias"], stride=2, padding=1)
    a = pool2(np.maximum(a, 0.0), np.mean).reshape(-1)
    return linear(a, t["head.weight"], t["head.bias"])


def lstm_forward(t, x, layers=1):
    """nn.LSTM(batch_first=True, num_layers=layers), then the classifier on h_T."""
    seq = [xt.astype(np.float64) for xt in x]
    for k in range(layers):
        hidden = t[f"lstm.weight_hh_l{k}"].shape[1]
        h, c, out = np.zeros(hidden), np.zeros(hidden), []
        for xt in seq:
            g = linear(xt, t[f"lstm.weight_ih_l{k}"], t[f"lstm.bias_ih_l{k}"]) + linear(
                h, t[f"lstm.weight_hh_l{k}"], t[f"lstm.bias_hh_l{k}"]
            )
            i, f = sigmoid(g[:hidden]), sigmoid(g[hidden : 2 * hidden])
            gg, o = np.tanh(g[2 * hidden : 3 * hidden]), sigmoid(g[3 * hidden :])
            c = f * c + i * gg
            h = o * np.tanh(c)
            out.append(h)
        seq = out
    return linear(seq[-1], t["fc1.weight"], t["fc1.bias"])


def cnn():
    t = {
        "conv1.weight": uniform((6, 1, 3, 3), 1 / 3),
        "conv1.bias": uniform((6,), 1 / 3),
        "fc1.weight": uniform((24, 54), 1 / np.sqrt(54)),
        "fc1.bias": uniform((24,), 1 / np.sqrt(54)),
        "fc2.weight": uniform((10, 24), 1 / np.sqrt(24)),
        "fc2.bias": uniform((10,), 1 / np.sqrt(24)),
    }
    x = rng.uniform(0, 1, size=(400, 1, 8, 8)).astype(np.float32)
    return t, x, cnn_forward, "image"


def lstm():
    b = 1 / np.sqrt(16)
    t = {
        "lstm.weight_ih_l0": uniform((64, 8), b),
        "lstm.weight_hh_l0": uniform((64, 16), b),
        "lstm.bias_ih_l0": uniform((64,), b),
        "lstm.bias_hh_l0": uniform((64,), b),
        "fc1.weight": uniform((10, 16), b),
        "fc1.bias": uniform((10,), b),
    }
    x = rng.uniform(0, 1, size=(400, 8, 8)).astype(np.float32)
    return t, x, lstm_forward, "sequence"


def strided():
    t = {
        "net.0.weight": uniform((4, 1, 3, 3), 1 / 3),
        "net.0.bias": uniform((4,), 1 / 3),
        "head.weight": uniform((10, 16), 1 / 4),
        "head.bias": uniform((10,), 1 / 4),
    }
    x = rng.uniform(0, 1, size=(400, 1, 8, 8)).astype(np.float32)
    return t, x, strided_forward, "image"


def lstm2():
    b = 1 / np.sqrt(12)
    t = {}
    for k, inputs in [(0, 8), (1, 12)]:
        t[f"lstm.weight_ih_l{k}"] = uniform((48, inputs), b)
        t[f"lstm.weight_hh_l{k}"] = uniform((48, 12), b)
        t[f"lstm.bias_ih_l{k}"] = uniform((48,), b)
        t[f"lstm.bias_hh_l{k}"] = uniform((48,), b)
    t["fc1.weight"] = uniform((10, 12), b)
    t["fc1.bias"] = uniform((10,), b)
    x = rng.uniform(0, 1, size=(400, 8, 8)).astype(np.float32)
    return t, x, lambda t, s: lstm_forward(t, s, layers=2), "sequence"


def main(out):
    kept = {}
    for kind, make in [("cnn", cnn), ("lstm", lstm), ("strided", strided), ("lstm2", lstm2)]:
        t, x, forward, form = make()
        inputs, labels = [], []
        for sample in x:
            logits = forward(t, sample)
            top = np.sort(logits)[-2:]
            if top[1] - top[0] > 1e-3:
                inputs.append(sample)
                labels.append(int(np.argmax(logits)))
        save_file(t, os.path.join(out, f"{kind}.safetensors"))
        save_file(
            {"inputs": np.stack(inputs), "labels": np.array(labels, dtype=np.int64)},
            os.path.join(out, f"{kind}-data.safetensors"),
            metadata={"eie.form": form},
        )
        kept[kind] = len(labels)
    print(json.dumps(kept))


if __name__ == "__main__":
    main(sys.argv[1])
