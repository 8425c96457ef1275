"""The compress pipeline the way the public Python scripts do it, timed stage by stage.

    python3 bench/compress/baseline.py LAYER.safetensors TENSOR DENSITY PES

numpy magnitude pruning (percentile threshold), scikit-learn KMeans with Deep Compression's
linear initialisation and n_init=1 (its default tolerance), codes from the labels, then per
PE a scipy CSC matrix of the PE's rows turned into relative indices with padding (vectorised
numpy). Prints one JSON object: seconds per stage, entries, padding, and the k-means SSE.
"""

import json
import sys
import time

import numpy as np
import scipy.sparse
from safetensors.numpy import load_file
from sklearn.cluster import KMeans


def main(path, tensor, density, pes, code_bits=4, index_bits=4):
    t = {}
    start = time.perf_counter()
    w = load_file(path)[tensor]
    t["load"] = time.perf_counter() - start

    s = time.perf_counter()
    threshold = np.percentile(np.abs(w), (1 - density) * 100)
    mask = np.abs(w) > threshold
    pruned = w * mask
    t["prune"] = time.perf_counter() - s

    s = time.perf_counter()
    survivors = pruned[mask].reshape(-1, 1).astype(np.float64)
    k = 2 ** code_bits - 1
    init = np.linspace(survivors.min(), survivors.max(), k).reshape(-1, 1)
    km = KMeans(n_clusters=k, init=init, n_init=1, algorithm="lloyd").fit(survivors)
    t["kmeans"] = time.perf_counter() - s

    s = time.perf_counter()
    codes = np.zeros(w.shape, dtype=np.uint8)
    codes[mask] = km.labels_.astype(np.uint8) + 1
    t["assign"] = time.perf_counter() - s

    s = time.perf_counter()
    period = 2 ** index_bits
    entries = padding = 0
    streams = []
    cols = w.shape[1]
    for p in range(pes):
        sub = scipy.sparse.csc_matrix(codes[p::pes, :])
        indptr, rows, data = sub.indptr, sub.indices, sub.data
        counts = np.diff(indptr)
        prev = np.empty_like(rows)
        prev[1:] = rows[:-1]
        prev[indptr[:-1][counts > 0]] = -1
        gap = rows - prev - 1
        pad = gap // period
        rep = pad + 1
        total = int(rep.sum())
        last = np.cumsum(rep) - 1
        v = np.zeros(total, dtype=np.uint8)
        z = np.full(total, period - 1, dtype=np.uint8)
        v[last] = data
        z[last] = gap - period * pad
        col_of = np.repeat(np.arange(cols), counts)
        ptr = np.concatenate([[0], np.cumsum(np.bincount(col_of, weights=rep, minlength=cols))]).astype(np.int64)
        streams.append((v, z, ptr))
        entries += total
        padding += int(pad.sum())
    t["pack"] = time.perf_counter() - s
    t["total"] = time.perf_counter() - start
    print(json.dumps({"seconds": t, "entries": entries, "padding": padding, "sse": float(km.inertia_),
                      "kmeans_iterations": int(km.n_iter_)}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4]))
