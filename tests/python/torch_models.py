"""Checkpoints made by PyTorch itself: nn.Module networks trained (when MNIST is given) and
saved the way PyTorch users save them (safetensors.torch.save_file of the state_dict), for
`eval --arch` and `compress --arch --retrain` to read.

    python3 tests/python/torch_models.py OUT_DIR [MNIST_DIR]

Networks (KIND: the model description that reads its state_dict):
  lenet5   a LeNet-5 class (conv1, conv2, fc1, fc2; Caffe's: no ReLU after the convolutions)
           1x28x28-conv20k5-maxpool2-conv50k5-maxpool2-500-10
  seqcnn   an nn.Sequential (its modules named 0 to 6): Conv2d stride 2 padding 1, ReLU,
           AvgPool2d, Flatten, Linear, ReLU, Linear
           1x28x28-0=conv8k3s2p1-relu-avgpool2-4=64-6=10
  lstm     nn.LSTM(28, 128, batch_first=True) and a Linear on the last step (sequential MNIST)
           28x28-lstm128-10
  lstm2    a two-layer nn.LSTM(28, 32, num_layers=2, batch_first=True) and a Linear
           28x28-lstm32x2-10

With MNIST_DIR (the IDX test set, ../shared/data/mnist), each network is trained by PyTorch
(Adam, seeded) for two epochs on images 0..7999, pixels / 255 as eie-compress reads them, and
scored on 8000..9999; without it they train the same way on 1000 noisy copies of ten
random patterns (the pattern is the class; ten epochs at 3e-3) and are run on 400 more. Writes, per KIND:
  KIND.safetensors       the state_dict (no metadata: PyTorch knows nothing of eie-compress)
  KIND-data.safetensors  the held-out inputs ([N, 1, 28, 28] images or [N, 28, 28] sequences,
                         metadata eie.form) labelled with PyTorch's own predictions, keeping
                         only samples whose two largest logits are more than 1e-3 apart (float
                         rounding cannot decide those)
Prints {"KIND": {"kept": N, "correct": C, "total": T}, ...}: C of T held-out MNIST images
PyTorch classifies correctly (without MNIST, C = T = 0).
The integration test `torch_checkpoints` runs it when PyTorch is importable.
"""

import gzip
import json
import os
import sys

import numpy as np
import torch
from torch import nn
from safetensors.numpy import save_file as save_numpy
from safetensors.torch import save_file

torch.manual_seed(20261201)
torch.use_deterministic_algorithms(True)
torch.set_num_threads(1)


class LeNet5(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 20, 5)
        self.conv2 = nn.Conv2d(20, 50, 5)
        self.fc1 = nn.Linear(800, 500)
        self.fc2 = nn.Linear(500, 10)

    def forward(self, x):
        x = nn.functional.max_pool2d(self.conv1(x), 2)
        x = nn.functional.max_pool2d(self.conv2(x), 2)
        return self.fc2(torch.relu(self.fc1(torch.flatten(x, 1))))


class SequenceClassifier(nn.Module):
    def __init__(self, hidden, layers):
        super().__init__()
        self.lstm = nn.LSTM(28, hidden, num_layers=layers, batch_first=True)
        self.fc1 = nn.Linear(hidden, 10)

    def forward(self, x):
        out, _ = self.lstm(x)  # zero initial state
        return self.fc1(out[:, -1])


def seqcnn():
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.AvgPool2d(2),
        nn.Flatten(),
        nn.Linear(8 * 7 * 7, 64),
        nn.ReLU(),
        nn.Linear(64, 10),
    )


NETWORKS = [
    ("lenet5", LeNet5, "image"),
    ("seqcnn", seqcnn, "image"),
    ("lstm", lambda: SequenceClassifier(128, 1), "sequence"),
    ("lstm2", lambda: SequenceClassifier(32, 2), "sequence"),
]


def idx(path):
    """A gzipped IDX file of unsigned bytes: its array."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def mnist(directory):
    images = idx(os.path.join(directory, "t10k-images-idx3-ubyte.gz")).astype(np.float32) / 255.0
    labels = idx(os.path.join(directory, "t10k-labels-idx1-ubyte.gz")).astype(np.int64)
    return images, labels


def shaped(images, form):
    x = torch.from_numpy(images)
    return x.unsqueeze(1) if form == "image" else x


def train(model, x, y, epochs=2, batch=64, lr=1e-3):
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    g = torch.Generator().manual_seed(1)
    for _ in range(epochs):
        order = torch.randperm(len(y), generator=g)
        for s in range(0, len(y), batch):
            i = order[s : s + batch]
            opt.zero_grad()
            nn.functional.cross_entropy(model(x[i]), y[i]).backward()
            opt.step()


def main(out, mnist_dir=None):
    data = mnist(mnist_dir) if mnist_dir else None
    result = {}
    for kind, make, form in NETWORKS:
        model = make()
        if data is not None:
            images, labels = data
            train(model, shaped(images[:8000], form), torch.from_numpy(labels[:8000]))
            held, truth = images[8000:], labels[8000:]
        else:
            # Ten random patterns under noise, each its class: a task the networks learn, so
            # their predictions spread over the classes.
            rng = np.random.default_rng(7)
            y = rng.integers(0, 10, 1400)
            patterns = rng.uniform(0, 1, (10, 28, 28))
            x = (0.5 * patterns[y] + 0.5 * rng.uniform(0, 1, (1400, 28, 28))).astype(np.float32)
            train(model, shaped(x[:1000], form), torch.from_numpy(y[:1000]), epochs=10, lr=3e-3)
            held, truth = x[1000:], None
        model.eval()
        with torch.no_grad():
            logits = model(shaped(held, form)).double().numpy()
        top = np.sort(logits, axis=1)[:, -2:]
        keep = top[:, 1] - top[:, 0] > 1e-3
        predicted = logits.argmax(axis=1)
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, os.path.join(out, f"{kind}.safetensors"))
        inputs = shaped(held[keep], form).numpy()
        save_numpy(
            {"inputs": np.ascontiguousarray(inputs), "labels": predicted[keep].astype(np.int64)},
            os.path.join(out, f"{kind}-data.safetensors"),
            metadata={"eie.form": form},
        )
        correct = int((predicted == truth).sum()) if truth is not None else 0
        total = len(truth) if truth is not None else 0
        result[kind] = {"kept": int(keep.sum()), "correct": correct, "total": total}
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None)
