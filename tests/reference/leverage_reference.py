#!/usr/bin/env python3
"""Generate reference leverage scores and Chameleon weights with float64 NumPy.

The embeddings come from SplitMix64, a generator that this script and
tests/mixture_reference.rs implement identically, so only the parameters and
the results are stored. Each value is built in plain Python floats (IEEE-754
binary64, one rounding per operation, in the same order as the Rust test).

Usage: python3 tests/reference/leverage_reference.py > tests/reference/leverage_reference.json
"""

import json
import sys

import numpy as np

MASK = (1 << 64) - 1
PRETRAIN_TEMPERATURE = 5.0
FINETUNE_TEMPERATURE = 0.2


class SplitMix64:
    def __init__(self, seed):
        self.state = seed & MASK

    def next_u64(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)

    def uniform(self):
        """A float in [0, 1) from the top 53 bits."""
        return (self.next_u64() >> 11) * (1.0 / 9007199254740992.0)


def embeddings(case):
    """Build the k x d embedding rows of a case, exactly as the Rust test does."""
    rng = SplitMix64(case["seed"])
    k, d = case["k"], case["d"]
    offset, scale = case["offset"], case["scale"]
    kind = case["kind"]
    rows = []
    if kind == "uniform":
        for _ in range(k):
            rows.append([offset + scale * (rng.uniform() - 0.5) for _ in range(d)])
    elif kind == "near_duplicates":
        half = k // 2
        for _ in range(half):
            rows.append([offset + scale * (rng.uniform() - 0.5) for _ in range(d)])
        for i in range(k - half):
            source = rows[i % half]
            rows.append([source[j] + 1e-9 * (rng.uniform() - 0.5) for j in range(d)])
    elif kind == "clusters":
        centres = [[scale * (rng.uniform() - 0.5) for _ in range(d)] for _ in range(3)]
        for i in range(k):
            if i < k // 2:
                cluster = 0
            elif i < k - 1:
                cluster = 1
            else:
                cluster = 2
            rows.append([offset + centres[cluster][j] + 0.1 * scale * (rng.uniform() - 0.5) for j in range(d)])
    else:
        raise ValueError(f"unknown kind {kind}")
    return np.array(rows, dtype=np.float64)


def softmax(logits, temperature):
    scaled = np.asarray(logits, dtype=np.float64) / temperature
    scaled = scaled - scaled.max()
    e = np.exp(scaled)
    return e / e.sum()


def reference(x, lam):
    """Return (normalised scores, effective dimension, pretrain weights, finetune weights)."""
    k = x.shape[0]
    if k == 1:
        return np.array([1.0]), 0.0, np.array([1.0]), np.array([1.0])
    # Two-pass mean: the mean, then the mean of the residuals added back.
    mean = x.mean(axis=0)
    mean = mean + (x - mean).mean(axis=0)
    z = x - mean
    kernel = z @ z.T
    ridge = kernel + lam * k * np.eye(k)
    raw = np.diag(np.linalg.solve(ridge, kernel)).copy()

    # Cross-check with the eigendecomposition K = U diag(mu) U^T.
    mu, u = np.linalg.eigh(kernel)
    mu = np.clip(mu, 0.0, None)
    raw_eigh = (u ** 2) @ (mu / (mu + lam * k))
    assert np.allclose(raw, raw_eigh, rtol=0, atol=1e-12), (raw, raw_eigh)

    effective_dimension = float(raw.sum())
    scores = raw / effective_dimension
    pretrain = softmax(1.0 / scores, PRETRAIN_TEMPERATURE)
    finetune = softmax(scores, FINETUNE_TEMPERATURE)
    return scores, effective_dimension, pretrain, finetune


CASES = [
    dict(name="single_domain", k=1, d=2, kind="uniform", offset=0.0, scale=1.0, lam=10.0),
    dict(name="two_domains", k=2, d=4, kind="uniform", offset=0.0, scale=1.0, lam=10.0),
    dict(name="three_domains_d2", k=3, d=2, kind="uniform", offset=0.0, scale=10.0, lam=10.0),
    dict(name="small_lambda", k=5, d=16, kind="uniform", offset=0.0, scale=1.0, lam=0.01),
    dict(name="k10_d256", k=10, d=256, kind="uniform", offset=0.0, scale=1.0, lam=10.0),
    dict(name="k50_d8_gram_route", k=50, d=8, kind="uniform", offset=0.0, scale=20.0, lam=1.0),
    dict(name="k200_d64", k=200, d=64, kind="uniform", offset=0.0, scale=10.0, lam=10.0),
    dict(name="k200_d2048", k=200, d=2048, kind="uniform", offset=0.0, scale=1.0, lam=10.0),
    dict(name="k8_d2048", k=8, d=2048, kind="uniform", offset=0.0, scale=1.0, lam=0.1),
    dict(name="large_offset", k=20, d=32, kind="uniform", offset=1e6, scale=1.0, lam=0.1),
    dict(name="large_offset_gram_route", k=64, d=16, kind="uniform", offset=1e6, scale=2.0, lam=0.1),
    dict(name="near_duplicates", k=12, d=16, kind="near_duplicates", offset=0.0, scale=5.0, lam=1.0),
    dict(name="clusters", k=40, d=24, kind="clusters", offset=0.0, scale=10.0, lam=1.0),
    dict(name="clusters_offset", k=9, d=300, kind="clusters", offset=1e3, scale=1.0, lam=0.5),
]


def main():
    out = []
    for index, case in enumerate(CASES):
        case = dict(case, seed=1000 + index)
        x = embeddings(case)
        scores, effective_dimension, pretrain, finetune = reference(x, case["lam"])
        out.append(
            {
                "name": case["name"],
                "seed": case["seed"],
                "k": case["k"],
                "d": case["d"],
                "kind": case["kind"],
                "offset": case["offset"],
                "scale": case["scale"],
                "lambda": case["lam"],
                # The wrapping sum of the values' bit patterns, so that the Rust test can check
                # that it rebuilt the embeddings bit for bit.
                "checksum": int(x.ravel().view(np.uint64).sum(dtype=np.uint64)),
                "first_bits": int(x[:1, :1].ravel().view(np.uint64)[0]),
                "effective_dimension": effective_dimension,
                "scores": scores.tolist(),
                "pretrain_weights": pretrain.tolist(),
                "finetune_weights": finetune.tolist(),
            }
        )
    json.dump(
        {
            "generator": "tests/reference/leverage_reference.py",
            "numpy": np.__version__,
            "pretrain_temperature": PRETRAIN_TEMPERATURE,
            "finetune_temperature": FINETUNE_TEMPERATURE,
            "cases": out,
        },
        sys.stdout,
        indent=1,
    )
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
