# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""
Benchmark: CAVI Dirichlet-process mixture (``pyro_expfam``) against
``sklearn.mixture.BayesianGaussianMixture(weight_concentration_prior_type="dirichlet_process")``.

Same data (5 well-separated blobs, 80% train / 20% held out), same machine,
same thread count, one run each, truncation 20, both with default settings
otherwise: each library stops on its own default criterion (ours: change of
the ELBO per point < 1e-4; scikit-learn: change of its total bound < 1e-3),
scikit-learn's ``max_iter`` raised from 100 to ``--sklearn-max-iter`` (200).
When scikit-learn stops at ``max_iter`` without converging its iteration count
is starred and the speed-up is a lower bound (``>=``).
Measured: wall time of ``fit``, iterations, ARI on the training data,
held-out mean log-likelihood (``score``: both libraries use the same
definition, ``logsumexp_k(E[log pi_k] + E[log p(x | theta_k)])``), and the
number of clusters used (distinct predicted labels).

Usage::

    python benchmarks/bench_dpmm.py --quick                  # N = 10^4, D = 2, 10 (a minute)
    python benchmarks/bench_dpmm.py                          # N = 10^4, 10^5; D = 2, 10, 50
    python benchmarks/bench_dpmm.py --device cuda            # ours on the GPU (sklearn on CPU)
    python benchmarks/bench_dpmm.py --sizes 10000 --dims 2 10 --covariance-types tied full --out PATH  # a cell

``tied`` is the exact shared Normal-Wishart posterior here and scikit-learn's approximation there (degrees of
freedom nu0 + N/K), so their held-out log-likelihoods differ slightly by construction.

Writes ``benchmarks/results/dpmm_<device>.json`` and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pyro_expfam.datasets.blobs import make_blobs  # noqa: E402
from pyro_expfam.mixture.dpmm import DirichletProcessMixture  # noqa: E402

TRUNCATION = 20
N_CLUSTERS = 5


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def run_ours(X, Xt, y, cov, device, dtype):
    from sklearn.metrics import adjusted_rand_score

    Xd, Xtd = X.to(device=device, dtype=dtype), Xt.to(device=device, dtype=dtype)
    est = DirichletProcessMixture(TRUNCATION, covariance_type=cov, random_state=0)
    _sync(device)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        labels = est.fit_predict(Xd)
    _sync(device)
    elapsed = time.perf_counter() - t0
    labels = labels.cpu().numpy()
    return {"time_s": elapsed, "n_iter": est.n_iter_, "converged": bool(est.converged_),
            "ari": adjusted_rand_score(y, labels), "heldout_loglik": est.score(Xtd),
            "n_clusters_used": int(np.unique(labels).size)}


def run_sklearn(X, Xt, y, cov, max_iter):
    from sklearn.metrics import adjusted_rand_score
    from sklearn.mixture import BayesianGaussianMixture

    Xn, Xtn = X.double().numpy(), Xt.double().numpy()
    est = BayesianGaussianMixture(n_components=TRUNCATION, covariance_type=cov,
                                  weight_concentration_prior_type="dirichlet_process", max_iter=max_iter,
                                  random_state=0)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(Xn)
    elapsed = time.perf_counter() - t0
    labels = est.predict(Xn)
    return {"time_s": elapsed, "n_iter": int(est.n_iter_), "converged": bool(est.converged_),
            "ari": adjusted_rand_score(y, labels), "heldout_loglik": float(est.score(Xtn)),
            "n_clusters_used": int(np.unique(labels).size)}


def _fmt(x, spec):
    return "—" if x is None else format(x, spec)


def _iters(res):
    if res is None:
        return "—"
    return f"{res['n_iter']}" + ("" if res["converged"] else "*")


def markdown(rows) -> str:
    head = ("| N | D | cov | ours s | sklearn s | speed-up | ours it | sk it | ours ARI | sk ARI "
            "| ours LL | sk LL | ours K | sk K |")
    lines = [head, "|" + "---|" * 14]
    for r in rows:
        o, s = r["ours"], r.get("sklearn")
        lines.append(
            f"| {r['N']} | {r['D']} | {r['covariance_type']} | {o['time_s']:.3f} | {_fmt(s and s['time_s'], '.3f')} "
            f"| {'' if s is None or s['converged'] else '>='}{_fmt(r.get('speedup'), '.1f')} "
            f"| {_iters(o)} | {_iters(s)} "
            f"| {o['ari']:.4f} | {_fmt(s and s['ari'], '.4f')} | {o['heldout_loglik']:.3f} "
            f"| {_fmt(s and s['heldout_loglik'], '.3f')} | {o['n_clusters_used']} "
            f"| {_fmt(s and s['n_clusters_used'], 'd')} |"
        )
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="N = 10^4 and D = 2, 10 only")
    parser.add_argument("--device", default="cpu", help="device for pyro_expfam (sklearn runs on CPU)")
    parser.add_argument("--dtype", default="float64", choices=["float32", "float64"])
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for both libraries")
    parser.add_argument("--sizes", type=int, nargs="*", default=None, help="override the N grid")
    parser.add_argument("--dims", type=int, nargs="*", default=None, help="override the D grid")
    parser.add_argument("--covariance-types", nargs="*", default=["spherical", "diag", "full", "tied", "unit"])
    parser.add_argument("--no-sklearn", action="store_true", help="skip scikit-learn")
    parser.add_argument("--sklearn-max-iter", type=int, default=200, help="max_iter of BayesianGaussianMixture")
    parser.add_argument("--out", default=None, help="JSON output (default benchmarks/results/dpmm_<device>.json)")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(args.threads)
    except ImportError:  # pragma: no cover
        pass
    dtype = getattr(torch, args.dtype)
    sizes = args.sizes or ([10_000] if args.quick else [10_000, 100_000])
    dims = args.dims or ([2, 10] if args.quick else [2, 10, 50])
    rows = []
    for N in sizes:
        for D in dims:
            n_test = max(N // 4, 1000)
            Xall, yall = make_blobs(N + n_test, D, N_CLUSTERS, random_state=1000 * D + N % 997,
                                    dtype=torch.float64)
            X, y, Xt = Xall[:N], yall[:N].numpy(), Xall[N:]
            for cov in args.covariance_types:
                row = {"N": N, "D": D, "covariance_type": cov}
                row["ours"] = run_ours(X, Xt, y, cov, args.device, dtype)
                if cov != "unit" and not args.no_sklearn:
                    row["sklearn"] = run_sklearn(X, Xt, y, cov, args.sklearn_max_iter)
                    row["speedup"] = row["sklearn"]["time_s"] / row["ours"]["time_s"]
                rows.append(row)
                print(markdown([row]).splitlines()[-1], flush=True)
    meta = {"machine": platform.platform(), "processor": platform.processor(), "python": platform.python_version(),
            "torch": torch.__version__, "device": args.device, "dtype": args.dtype, "threads": args.threads,
            "truncation": TRUNCATION, "n_clusters": N_CLUSTERS, "date": time.strftime("%Y-%m-%d %H:%M:%S"),
            "runs": "one run per configuration", "sklearn_max_iter": args.sklearn_max_iter}
    try:
        import sklearn

        meta["sklearn"] = sklearn.__version__
    except ImportError:  # pragma: no cover
        pass
    if args.device.startswith("cuda") and torch.cuda.is_available():
        meta["gpu"] = torch.cuda.get_device_name()
    default_out = Path(__file__).resolve().parent / "results" / f"dpmm_{args.device.split(':')[0]}.json"
    out = Path(args.out) if args.out else default_out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"meta": meta, "results": rows}, indent=2))
    print()
    print(markdown(rows))
    speedups = [r["speedup"] for r in rows if "speedup" in r]
    if speedups:
        print(f"\nspeed-up over sklearn: median {np.median(speedups):.1f}x, min {min(speedups):.1f}x "
              f"({len(speedups)} configurations); results in {out}")


if __name__ == "__main__":
    main()
