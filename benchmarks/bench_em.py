# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""
Benchmark EM for Gaussian mixtures: :class:`pyro_expfam.mixture.GaussianMixture`
against :class:`sklearn.mixture.GaussianMixture` on the same data, the same
machine, from the same initial parameters, in one run.

For every ``N`` in (10^4, 10^5), ``D`` in (2, 10, 50) and covariance type
(full, tied, diag, spherical) a mixture of ``K`` Gaussians is planted; both
estimators start from the same weights/means/precisions (from labels by the
nearest k-means++ seed) with the same ``tol`` and ``max_iter``, and we record
wall time per iteration (the whole ``fit``, set-up and final E-step included,
divided by ``n_iter_``), the number of iterations, the final mean log-likelihood
(``score``) and the adjusted Rand index against the planted labels.  Both
libraries get the same number of CPU threads.  On CPU in float64 ours is
given the same numpy array as scikit-learn (a drop-in: validation, conversion
and numpy outputs are inside the timed fit).  The headline number is the
whole-fit ratio ``time ours / time scikit-learn`` (<= 1 means ours is not
slower); each fit is timed ``--repeats`` times, alternating the two
libraries, and the fastest of each is kept (the machine may be shared).

A second table times the k-means start each estimator runs when no initial
parameters are given: scikit-learn's ``KMeans(n_init=1)`` (what its
``GaussianMixture`` runs) against our :func:`~pyro_expfam.mixture.init.initial_responsibilities`
with ``"kmeans"``.

Usage::

    python benchmarks/bench_em.py                # writes benchmarks/results/em_cpu.json
    python benchmarks/bench_em.py --quick        # small grid, a smoke test
    python benchmarks/bench_em.py --device cuda  # writes benchmarks/results/em_cuda.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import warnings

import numpy as np
import torch
from sklearn.metrics import adjusted_rand_score
from sklearn.mixture import GaussianMixture as SkGaussianMixture

from pyro_expfam.mixture.gaussian import (
    GaussianMixture,
    estimate_gaussian_parameters,
    precision_cholesky_from_covariances,
)
from pyro_expfam.mixture.init import initial_responsibilities

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")


def planted(n: int, d: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` points from ``k`` random full-covariance Gaussians in ``d`` dimensions, and their labels."""
    rng = np.random.default_rng(seed)
    means = rng.normal(scale=4.0, size=(k, d))
    weights = rng.dirichlet(np.full(k, 5.0))
    labels = rng.choice(k, size=n, p=weights)
    X = np.empty((n, d))
    for j in range(k):
        a = rng.normal(size=(d, d)) / np.sqrt(d)
        chol = np.linalg.cholesky(a @ a.T + 0.5 * np.eye(d))
        idx = labels == j
        X[idx] = means[j] + rng.normal(size=(idx.sum(), d)) @ chol.T
    return X, labels


def initial_parameters(X: torch.Tensor, k: int, covariance_type: str, seed: int) -> dict[str, np.ndarray]:
    """Weights, means and precisions from the nearest k-means++ seeds (shared by both estimators)."""
    g = torch.Generator().manual_seed(seed)
    resp = initial_responsibilities(X, k, "k-means++", g)
    nk, means, cov = estimate_gaussian_parameters(X, resp, 1e-6, covariance_type)
    U = precision_cholesky_from_covariances(cov, covariance_type)
    prec = U @ U.mT if covariance_type in ("full", "tied") else U.square()
    return {
        "weights_init": (nk / nk.sum()).cpu().numpy(),
        "means_init": means.cpu().numpy(),
        "precisions_init": prec.cpu().numpy(),
    }


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def run_one(X_np, y, k, covariance_type, device, dtype, tol, max_iter, seed, repeats=3) -> dict:
    X = torch.as_tensor(X_np, dtype=dtype, device=device)
    X_ours = X_np if device == "cpu" and dtype == torch.float64 else X  # numpy in, as a drop-in
    init = initial_parameters(X.double(), k, covariance_type, seed)
    kw = dict(covariance_type=covariance_type, tol=tol, max_iter=max_iter, **init)
    # each fit is timed `repeats` times, alternating the two libraries, and the fastest is kept:
    # fits converge in a few iterations, so one stall of a shared machine would otherwise dominate
    t_sk = t_ours = float("inf")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = GaussianMixture(k, init_params="random", random_state=seed, **kw)
        ours.fit(X[:100])  # warm-up (CUDA context, kernels); not timed
        for _ in range(repeats):
            sk = SkGaussianMixture(k, **kw)
            t0 = time.perf_counter()
            sk.fit(X_np)
            t_sk = min(t_sk, time.perf_counter() - t0)
            ours = GaussianMixture(k, init_params="random", random_state=seed, **kw)
            _sync(device)
            t0 = time.perf_counter()
            ours.fit(X_ours)
            _sync(device)
            t_ours = min(t_ours, time.perf_counter() - t0)
    return {
        "ours": {
            "time_s": t_ours,
            "n_iter": ours.n_iter_,
            "per_iter_ms": 1e3 * t_ours / max(ours.n_iter_, 1),
            "score": ours.score(X),
            "ari": adjusted_rand_score(y, np.asarray(torch.as_tensor(ours.predict(X)).cpu())),
        },
        "fit_ratio": t_ours / t_sk,
        "sklearn": {
            "time_s": t_sk,
            "n_iter": int(sk.n_iter_),
            "per_iter_ms": 1e3 * t_sk / max(sk.n_iter_, 1),
            "score": float(sk.score(X_np)),
            "ari": adjusted_rand_score(y, sk.predict(X_np)),
        },
    }


def time_kmeans(X_np, k, seed, repeats) -> dict:
    """The k-means start of each library's GaussianMixture, timed alternately (fastest of ``repeats``)."""
    from sklearn.cluster import KMeans

    X = torch.as_tensor(X_np)
    t_sk = t_ours = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        KMeans(n_clusters=k, n_init=1, random_state=seed).fit(X_np)
        t_sk = min(t_sk, time.perf_counter() - t0)
        t0 = time.perf_counter()
        initial_responsibilities(X, k, "kmeans", torch.Generator().manual_seed(seed))
        t_ours = min(t_ours, time.perf_counter() - t0)
    return {"ours_s": t_ours, "sklearn_s": t_sk, "ratio": t_ours / t_sk}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", help="torch device for pyro_expfam (sklearn always runs on CPU)")
    parser.add_argument("--dtype", default="float64", choices=["float32", "float64"])
    parser.add_argument("--quick", action="store_true", help="small grid (N=10^4, D in 2, 10) for a smoke test")
    parser.add_argument("--n-components", type=int, default=5)
    parser.add_argument("--tol", type=float, default=1e-3)
    parser.add_argument("--max-iter", type=int, default=100)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for both (default: torch's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3, help="time each fit this many times, keep the fastest")
    parser.add_argument("--out", default=None, help="JSON output (default benchmarks/results/em_<device>.json)")
    args = parser.parse_args()

    threads = args.threads or torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(threads)
    except ImportError:  # pragma: no cover
        pass
    dtype = getattr(torch, args.dtype)
    sizes = (10**4,) if args.quick else (10**4, 10**5)
    dims = (2, 10) if args.quick else (2, 10, 50)
    rows, kmeans_rows = [], []
    for n in sizes:
        for d in dims:
            X, y = planted(n, d, args.n_components, args.seed)
            for ct in COVARIANCE_TYPES:
                r = run_one(
                    X, y, args.n_components, ct, args.device, dtype, args.tol, args.max_iter, args.seed, args.repeats
                )
                r.update(N=n, D=d, covariance_type=ct)
                rows.append(r)
                print(f"N={n} D={d} {ct}: fit ours {r['ours']['time_s']:.4f} s, sklearn "
                      f"{r['sklearn']['time_s']:.4f} s, ratio {r['fit_ratio']:.2f}", flush=True)
            if args.device == "cpu":
                km = time_kmeans(X, args.n_components, args.seed, args.repeats)
                km.update(N=n, D=d)
                kmeans_rows.append(km)
                print(f"N={n} D={d} k-means start: ours {km['ours_s']:.4f} s, sklearn {km['sklearn_s']:.4f} s",
                      flush=True)
    device_name = torch.cuda.get_device_name() if args.device.startswith("cuda") else platform.processor()
    result = {
        "benchmark": "EM per iteration, pyro_expfam.mixture.GaussianMixture vs sklearn.mixture.GaussianMixture",
        "device": args.device,
        "repeats": args.repeats,
        "device_name": device_name or platform.machine(),
        "dtype": args.dtype,
        "threads": threads,
        "n_components": args.n_components,
        "tol": args.tol,
        "max_iter": args.max_iter,
        "torch": torch.__version__,
        "sklearn": __import__("sklearn").__version__,
        "cpu_count": os.cpu_count(),
        "rows": rows,
        "kmeans_start": kmeans_rows,
        "note": "timed on a machine shared with other jobs: compare the ratios (both measured alternately in one run)",
    }
    results_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
    out = args.out or os.path.join(results_dir, f"em_{args.device.split(':')[0]}.json")
    if not args.quick or args.out:
        os.makedirs(os.path.dirname(out), exist_ok=True)
        with open(out, "w") as f:
            json.dump(result, f, indent=2)
    print()
    print(f"{result['device_name']}, {threads} thread(s), {args.dtype}, K={args.n_components}, tol={args.tol}")
    print("| N | D | cov | fit s ours | fit s sklearn | fit ratio | ms/it ours | ms/it sklearn | iters ours/sk "
          "| loglik ours | loglik sk | ARI ours | ARI sk |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        o, s = r["ours"], r["sklearn"]
        print(f"| {r['N']} | {r['D']} | {r['covariance_type']} | {o['time_s']:.4f} | {s['time_s']:.4f} | "
              f"{r['fit_ratio']:.2f} | {o['per_iter_ms']:.2f} | {s['per_iter_ms']:.2f} | {o['n_iter']}/{s['n_iter']} "
              f"| {o['score']:.6f} | {s['score']:.6f} | {o['ari']:.3f} | {s['ari']:.3f} |")
    if kmeans_rows:
        print()
        print("| N | D | k-means start s ours | s sklearn KMeans(n_init=1) | ratio |")
        print("|---|---|---|---|---|")
        for km in kmeans_rows:
            print(f"| {km['N']} | {km['D']} | {km['ours_s']:.4f} | {km['sklearn_s']:.4f} | {km['ratio']:.2f} |")


if __name__ == "__main__":
    main()
