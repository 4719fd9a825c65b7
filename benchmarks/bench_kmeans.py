# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""
Benchmark the k-means start of the mixtures: :func:`pyro_expfam.mixture.init.kmeans`
(greedy k-means++ seeding, then Lloyd) against scikit-learn's
``KMeans(n_init=1, init="k-means++", algorithm="lloyd")`` on the same float64
data, one CPU thread each, in one run.

Both get the same ``max_iter`` (default 10, what the mixtures' ``"kmeans"``
start runs) and the same ``tol`` with the same meaning (stop when the total
squared centre shift is at most ``tol`` times the mean per-feature variance of
``X``; both also stop when the labels no longer change).  For each cell
(N in 1e5, 1e6; D in 2, 10; K in 5, 20) the two are timed ``--repeats`` times,
alternating, and the fastest of each is kept (the machine may be shared: the
ratio ``ours / scikit-learn`` is the number to read).  Also recorded: the
number of Lloyd iterations each ran and the inertia (sum of squared distances
to the nearest centre) each reached, computed the same way for both.

Usage::

    python benchmarks/bench_kmeans.py            # writes benchmarks/results/kmeans_cpu.json
    python benchmarks/bench_kmeans.py --quick    # N=1e4 only, a smoke test
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np
import torch
from sklearn.cluster import KMeans
from threadpoolctl import threadpool_limits

from pyro_expfam.mixture.init import kmeans


def planted(n: int, d: int, k: int, seed: int) -> np.ndarray:
    """``n`` points from ``k`` isotropic Gaussian blobs (scale 1) with means of scale 4 in ``d`` dimensions."""
    rng = np.random.default_rng(seed)
    means = rng.normal(scale=4.0, size=(k, d))
    labels = rng.integers(k, size=n)
    return means[labels] + rng.normal(size=(n, d))


def inertia(X: np.ndarray, centers: np.ndarray) -> float:
    """Sum over points of the squared distance to the nearest centre (chunked, float64)."""
    total = 0.0
    for s in range(0, X.shape[0], 65536):
        x = X[s : s + 65536]
        d = (x * x).sum(1)[:, None] - 2.0 * x @ centers.T + (centers * centers).sum(1)[None, :]
        total += float(np.maximum(d.min(1), 0.0).sum())
    return total


def run_cell(n: int, d: int, k: int, seed: int, max_iter: int, tol: float, repeats: int) -> dict:
    X = planted(n, d, k, seed)
    t_ours, t_sk = [], []
    ours = sk = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        Xt = torch.from_numpy(X)
        c, _ = kmeans(Xt, k, torch.Generator().manual_seed(seed), max_iter=max_iter, tol=tol)
        t_ours.append(time.perf_counter() - t0)
        ours = c
        t0 = time.perf_counter()
        sk = KMeans(k, init="k-means++", n_init=1, max_iter=max_iter, tol=tol, random_state=seed).fit(X)
        t_sk.append(time.perf_counter() - t0)
    # our iteration count: rerun once with an iteration counter (not timed)
    n_iter_ours = kmeans(Xt, k, torch.Generator().manual_seed(seed), max_iter=max_iter, tol=tol, _return_n_iter=True)[2]
    row = {
        "N": n,
        "D": d,
        "K": k,
        "seconds_ours": min(t_ours),
        "seconds_sklearn": min(t_sk),
        "ratio": min(t_ours) / min(t_sk),
        "n_iter_ours": int(n_iter_ours),
        "n_iter_sklearn": int(sk.n_iter_),
        "inertia_ours": inertia(X, ours.numpy()),
        "inertia_sklearn": inertia(X, sk.cluster_centers_),
        "all_seconds_ours": t_ours,
        "all_seconds_sklearn": t_sk,
    }
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--max-iter", type=int, default=10)
    parser.add_argument("--tol", type=float, default=1e-4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "kmeans_cpu.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    ns = (10_000,) if args.quick else (100_000, 1_000_000)
    rows = []
    with threadpool_limits(1):
        for n in ns:
            for d in (2, 10):
                for k in (5, 20):
                    row = run_cell(n, d, k, args.seed, args.max_iter, args.tol, args.repeats)
                    rows.append(row)
                    print(
                        f"N={n:>8} D={d:>2} K={k:>2}  ours {row['seconds_ours']:.4f}s ({row['n_iter_ours']} it)  "
                        f"sklearn {row['seconds_sklearn']:.4f}s ({row['n_iter_sklearn']} it)  "
                        f"ratio {row['ratio']:.2f}  inertia ratio {row['inertia_ours'] / row['inertia_sklearn']:.4f}",
                        flush=True,
                    )
    result = {
        "benchmark": "kmeans start: pyro_expfam.mixture.init.kmeans vs sklearn.cluster.KMeans(n_init=1)",
        "threads": 1,
        "dtype": "float64",
        "max_iter": args.max_iter,
        "tol": args.tol,
        "repeats": args.repeats,
        "seed": args.seed,
        "torch": torch.__version__,
        "sklearn": __import__("sklearn").__version__,
        "machine": platform.processor() or platform.machine(),
        "note": "fastest of the repeats, alternating; machine shared with other jobs, read the ratio",
        "rows": rows,
    }
    if not args.quick:
        os.makedirs(os.path.dirname(args.out), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)
        print("wrote", args.out)


if __name__ == "__main__":
    main()
