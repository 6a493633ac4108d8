#!/usr/bin/env python3
"""Time NumPy leverage scores for k domain embeddings of dimension 256.

Two NumPy versions are timed: the straightforward formula of the reference
script (k x k kernel and np.linalg.solve) and the same d x d Gram-matrix
eigendecomposition that the Rust code uses when d < k. Each prints the median
of several runs in milliseconds.

Usage: python3 benches/leverage_numpy.py
"""

import time

import numpy as np

DIMENSION = 256
LAMBDA = 10.0


def centre(x):
    mean = x.mean(axis=0)
    mean = mean + (x - mean).mean(axis=0)
    return x - mean


def scores_solve(x):
    k = x.shape[0]
    z = centre(x)
    kernel = z @ z.T
    raw = np.diag(np.linalg.solve(kernel + LAMBDA * k * np.eye(k), kernel))
    return raw / raw.sum()


def scores_gram(x):
    k = x.shape[0]
    z = centre(x)
    mu, v = np.linalg.eigh(z.T @ z)
    mu = np.clip(mu, 0.0, None)
    raw = ((z @ v) ** 2) @ (1.0 / (mu + LAMBDA * k))
    return raw / raw.sum()


def median_ms(function, x, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function(x)
        times.append(time.perf_counter() - start)
    return 1000.0 * float(np.median(times))


def main():
    rng = np.random.default_rng(7)
    print(f"numpy {np.__version__}")
    print(f"{'k':>6} {'solve (ms)':>12} {'gram eigh (ms)':>15}")
    for k in [10, 100, 1000, 4000]:
        x = rng.random((k, DIMENSION)) - 0.5
        assert np.allclose(scores_solve(x), scores_gram(x), atol=1e-12)
        repeats = 5 if k >= 1000 else 50
        print(f"{k:>6} {median_ms(scores_solve, x, repeats):>12.3f} {median_ms(scores_gram, x, repeats):>15.3f}")


if __name__ == "__main__":
    main()
