# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""
Held-out log-likelihood on real binary multi-label data: the overlapping mixture against an ordinary Bernoulli
mixture of equal K, with a floor and a ceiling.

Data: ``pyro_expfam.datasets.load_house_votes()`` -- 435 members of the 1984 U.S. House, each the set of the 16
key bills he or she voted yea on (shipped with the package).  Several random train/test splits (2/3 : 1/3,
fixed seeds); for each split and K:

- ``overlapping``: ``OverlappingMixture("bernoulli", K)`` with its defaults (finite prior; learned background,
  MAP-EM start, structure selection), ``random_state=0``;
- ``overlapping_ibp``: the same with ``prior="ibp"`` (K is the truncation);
- ``mixture``: ``ExpFamMixture("Bernoulli", K, n_init=5)`` (defaults: one pseudo-row at the data's mean,
  tol=1e-4), ``mixture_n1`` the same with ``n_init=1``, ``mixture_old`` with the settings before issue 14
  (``pseudo_count=0, tol=1e-3``, n_init=5);
- ``plain_em``: an independent numpy EM (MAP M-step with one pseudo-row at the mean row, run to a change below
  1e-10) from the start of ``mixture_n1``.

References (no K): ``independent`` -- independent features (the floor; K=1 with one pseudo-row);
``empirical`` -- the empirical distribution of the training rows with add-one smoothing over all 2^16 rows;
``kernel`` -- the Aitchison-Aitken kernel estimator on the training rows (each feature kept with probability
lambda, flipped with 1 - lambda; lambda by leave-one-out likelihood on the training rows), a nonparametric
estimate of how well any model can do from this many rows (the "ceiling" used here).

Writes benchmarks/results/overlapping_realdata.json.  Timings are not the point here (the machine is shared);
each fit's seconds are recorded anyway.

With ``--digits-only``: issue 14's baseline check on scikit-learn's binarised digits instead (K = 10, 20;
``ExpFamMixture("Bernoulli")`` against the plain EM from the same start, MAP and maximum likelihood, and against
the settings before issue 14), stored under ``digits_baseline`` in the same file.  With ``--forced-only``: the
overlapping model with ``structure="overlapping"`` on the same splits, written to
``overlapping_realdata_forced.json``.

Usage: ``python benchmarks/bench_overlapping_realdata.py [--splits 5] [--ks 2 3 4 6] [--digits-only | --forced-only]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from pyro_expfam.datasets import load_house_votes
from pyro_expfam.mixture.em import ExpFamMixture
from pyro_expfam.models.overlapping import OverlappingMixture

RESULTS = Path(__file__).resolve().parent / "results" / "overlapping_realdata.json"


class _RecordInit(ExpFamMixture):
    """ExpFamMixture that keeps its initial components (the start handed to the plain EM)."""

    def _initialize_parameters(self, X, generator):
        super()._initialize_parameters(X, generator)
        self.init_ = (self._weights_.numpy().copy(), torch.sigmoid(self._natural_params[0]).numpy().copy())


def bernoulli_mixture_log_lik(X: np.ndarray, w: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """Per-row log density of a Bernoulli mixture."""
    mu = np.clip(mu, np.finfo(float).eps, 1 - np.finfo(float).eps)
    logp = X @ np.log(mu).T + (1 - X) @ np.log1p(-mu).T + np.log(w)
    top = logp.max(1, keepdims=True)
    return (top + np.log(np.exp(logp - top).sum(1, keepdims=True)))[:, 0]


def plain_em(X: np.ndarray, w: np.ndarray, mu: np.ndarray, pseudo_count: float = 1.0, tol: float = 1e-10,
             max_iter: int = 10000) -> tuple[np.ndarray, np.ndarray, int]:
    """Textbook EM for a Bernoulli mixture; M-step: MAP with ``pseudo_count`` pseudo-rows equal to the mean row."""
    pooled = X.mean(0)
    prev = -np.inf
    it = 0
    while it < max_iter:
        it += 1
        cur = bernoulli_mixture_log_lik(X, w, mu)
        mu_c = np.clip(mu, np.finfo(float).eps, 1 - np.finfo(float).eps)
        logp = X @ np.log(mu_c).T + (1 - X) @ np.log1p(-mu_c).T + np.log(w)
        resp = np.exp(logp - cur[:, None])
        nk = resp.sum(0)
        w = nk / nk.sum()
        mu = (resp.T @ X + pseudo_count * pooled) / (nk + pseudo_count)[:, None]
        if abs(cur.mean() - prev) < tol:
            break
        prev = cur.mean()
    return w, mu, it


def empirical_add_one(train: np.ndarray, test: np.ndarray) -> float:
    """Held-out log-likelihood per row of the add-one smoothed empirical distribution over all 2^D rows."""
    D = train.shape[1]
    codes = lambda A: A.astype(np.int64) @ (1 << np.arange(D))  # noqa: E731
    values, counts = np.unique(codes(train), return_counts=True)
    table = dict(zip(values.tolist(), counts.tolist(), strict=True))
    c = np.array([table.get(v, 0) for v in codes(test).tolist()], dtype=float)
    return float(np.mean(np.log(c + 1.0) - np.log(len(train) + 2.0**D)))


def kernel_estimate(train: np.ndarray, test: np.ndarray) -> tuple[float, float]:
    """Aitchison-Aitken kernel estimator: (held-out log-lik per row, lambda chosen by leave-one-out on train)."""
    D = train.shape[1]

    def hamming(A, B):
        return A @ (1 - B).T + (1 - A) @ B.T

    def log_density(H, lam, leave_one_out):
        logk = (D - H) * np.log(lam) + H * np.log1p(-lam)
        if leave_one_out:
            np.fill_diagonal(logk, -np.inf)
        n = H.shape[1] - (1 if leave_one_out else 0)
        top = logk.max(1, keepdims=True)
        return (top[:, 0] + np.log(np.exp(logk - top).sum(1))) - np.log(n)

    H_train = hamming(train, train)
    grid = np.linspace(0.55, 0.995, 90)
    loo = [log_density(H_train, lam, True).mean() for lam in grid]
    lam = float(grid[int(np.argmax(loo))])
    return float(log_density(hamming(test, train), lam, False).mean()), lam


def timed(row: dict, name: str, estimator, train: np.ndarray, test: np.ndarray):
    """Fit ``estimator`` on ``train``; record its train/test log-likelihood per row and seconds in ``row[name]``."""
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        estimator.fit(train)
    seconds = time.perf_counter() - start
    row[name] = {"test": float(estimator.score(test)), "train": float(estimator.score(train)), "seconds": seconds}
    return estimator


def run_split(X: np.ndarray, seed: int, ks: list[int]) -> dict:
    perm = np.random.default_rng(seed).permutation(len(X))
    n_train = (2 * len(X)) // 3
    train, test = X[perm[:n_train]], X[perm[n_train:]]
    out: dict = {"seed": seed, "n_train": len(train), "n_test": len(test)}
    kern, lam = kernel_estimate(train, test)
    indep = ExpFamMixture("Bernoulli", 1).fit(train)
    out["reference"] = {"independent": indep.score(test), "empirical": empirical_add_one(train, test),
                        "kernel": kern, "kernel_lambda": lam}
    out["by_k"] = {}
    for K in ks:
        row: dict = {}
        timed(row, "mixture", ExpFamMixture("Bernoulli", K, n_init=5, random_state=0), train, test)
        m1 = timed(row, "mixture_n1", _RecordInit("Bernoulli", K, random_state=0), train, test)
        timed(row, "mixture_old", ExpFamMixture("Bernoulli", K, pseudo_count=0, tol=1e-3, n_init=5, random_state=0),
              train, test)
        w, mu, n_iter = plain_em(train, *m1.init_)
        row["plain_em"] = {"test": float(bernoulli_mixture_log_lik(test, w, mu).mean()),
                           "train": float(bernoulli_mixture_log_lik(train, w, mu).mean()), "n_iter": n_iter}
        ov = timed(row, "overlapping", OverlappingMixture("bernoulli", K, random_state=0), train, test)
        row["overlapping"]["structure"] = ov.structure_
        ibp = timed(row, "overlapping_ibp", OverlappingMixture("bernoulli", K, prior="ibp", random_state=0),
                    train, test)
        pi = np.asarray(ibp.membership_prior_, dtype=float)
        row["overlapping_ibp"]["structure"] = ibp.structure_
        row["overlapping_ibp"]["pi"] = [round(float(p), 4) for p in pi]
        out["by_k"][str(K)] = row
        print(f"  seed {seed} K={K}: " + "  ".join(f"{k} {v['test']:.3f}" for k, v in row.items()), flush=True)
    return out


def summarise(splits: list[dict], ks: list[int]) -> dict:
    def stat(values):
        a = np.asarray(values, dtype=float)
        return {"mean": float(a.mean()), "sd": float(a.std(ddof=1)) if len(a) > 1 else 0.0}

    refs = {k: stat([s["reference"][k] for s in splits]) for k in ("independent", "empirical", "kernel")}
    table = {}
    for K in ks:
        rows = [s["by_k"][str(K)] for s in splits]
        entry = {name: stat([r[name]["test"] for r in rows]) for name in rows[0]}
        for name in ("overlapping", "overlapping_ibp"):
            diff = [r[name]["test"] - r["mixture"]["test"] for r in rows]
            entry[f"{name}_minus_mixture"] = {**stat(diff), "wins": int(sum(d >= 0 for d in diff)), "of": len(diff)}
            entry[f"{name}_structures"] = [r[name]["structure"] for r in rows]
        d = [r["mixture_n1"]["test"] - r["plain_em"]["test"] for r in rows]
        entry["mixture_n1_minus_plain_em"] = stat(d)
        table[str(K)] = entry
    return {"reference": refs, "by_k": table}


def run_forced(X: np.ndarray, seeds: range, ks: list[int]) -> dict:
    """
    The overlapping model with its structure forced (``structure="overlapping"``; otherwise the defaults), on the
    same splits: whether the overlapping likelihood itself, not the structure selection, beats the mixture.
    """
    out = []
    for seed in seeds:
        perm = np.random.default_rng(seed).permutation(len(X))
        n_train = (2 * len(X)) // 3
        train, test = X[perm[:n_train]], X[perm[n_train:]]
        for K in ks:
            row: dict = {"seed": seed, "K": K}
            timed(row, "overlapping_forced", OverlappingMixture("bernoulli", K, structure="overlapping",
                                                                random_state=0), train, test)
            out.append(row)
            print(f"  forced seed {seed} K={K}: {row['overlapping_forced']['test']:.3f}", flush=True)
    return {"splits": out}


def run_digits(seeds: range, ks: tuple[int, ...] = (10, 20)) -> dict:
    """
    Issue 14's baseline check: ``ExpFamMixture("Bernoulli")`` against the plain numpy EM from the same start on
    scikit-learn's binarised digits (pixel on above grey level 7; 1200 train / 597 test rows per split).
    """
    from sklearn.datasets import load_digits

    X_all = (load_digits().data > 7).astype(np.float64)
    out = []
    for seed in seeds:
        X = X_all[np.random.default_rng(seed).permutation(len(X_all))]
        train, test = X[:1200], X[1200:]
        for K in ks:
            row: dict = {"seed": seed, "K": K}
            m = timed(row, "mixture", _RecordInit("Bernoulli", K, random_state=0), train, test)
            timed(row, "mixture_old", ExpFamMixture("Bernoulli", K, pseudo_count=0, tol=1e-3, random_state=0),
                  train, test)
            for name, count in (("plain_em_map", 1.0), ("plain_em_ml", 0.0)):
                w, mu, n_iter = plain_em(train, *m.init_, pseudo_count=count)
                row[name] = {"test": float(bernoulli_mixture_log_lik(test, w, mu).mean()),
                             "train": float(bernoulli_mixture_log_lik(train, w, mu).mean()), "n_iter": n_iter}
            out.append(row)
            print(f"  digits seed {seed} K={K}: " + "  ".join(
                f"{k} {v['train']:.3f}/{v['test']:.3f}" for k, v in row.items() if isinstance(v, dict)), flush=True)
    summary = {}
    for K in ks:
        rows = [r for r in out if r["K"] == K]
        summary[str(K)] = {
            name: {part: {"mean": float(np.mean([r[name][part] for r in rows])),
                          "sd": float(np.std([r[name][part] for r in rows], ddof=1))} for part in ("train", "test")}
            for name in ("mixture", "mixture_old", "plain_em_map", "plain_em_ml")
        }
    return {"splits": out, "summary": summary}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--splits", type=int, default=5)
    parser.add_argument("--ks", type=int, nargs="+", default=[2, 3, 4, 6])
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--digits-only", action="store_true",
                        help="only (re)run the digits baseline check and store it in the existing results file")
    parser.add_argument("--forced-only", action="store_true",
                        help="only run the overlapping model with structure='overlapping' (writes *_forced.json)")
    args = parser.parse_args()
    torch.set_default_dtype(torch.float64)
    if args.forced_only:
        X, _, _ = load_house_votes()
        forced = run_forced(X, range(args.splits), args.ks)
        path = args.out.with_name(args.out.stem + "_forced.json")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"settings": {"splits": args.splits, "ks": args.ks}, **forced}, indent=1))
        return
    previous = json.loads(args.out.read_text()) if args.out.exists() else {}
    if args.digits_only:
        previous["digits_baseline"] = run_digits(range(args.splits))
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(previous, indent=1))
        return
    X, names, _ = load_house_votes()
    splits = []
    for seed in range(args.splits):
        splits.append(run_split(X, seed, args.ks))
        result = {
            "data": {"name": "house_votes_84 (yea)", "rows": int(X.shape[0]), "features": int(X.shape[1])},
            "settings": {"splits": args.splits, "ks": args.ks, "train_fraction": "2/3",
                         "threads": os.environ.get("OMP_NUM_THREADS"), "machine": platform.machine(),
                         "note": "shared machine; seconds are contaminated by other load"},
            "splits": splits,
            "summary": summarise(splits, args.ks),
        }
        if "digits_baseline" in previous:  # kept from an earlier --digits-only run
            result["digits_baseline"] = previous["digits_baseline"]
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1))
    summary = result["summary"]
    print("references:", {k: f"{v['mean']:.3f} +- {v['sd']:.3f}" for k, v in summary["reference"].items()})
    for K, entry in summary["by_k"].items():
        print(f"K={K}: " + "  ".join(f"{n} {v['mean']:.3f}+-{v['sd']:.3f}" for n, v in entry.items()
                                     if isinstance(v, dict) and "mean" in v))


if __name__ == "__main__":
    main()
