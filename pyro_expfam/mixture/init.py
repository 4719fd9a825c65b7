# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""
Initialisation of mixture models: k-means++ seeding (Arthur & Vassilvitskii
2007, with scikit-learn's greedy local trials), Lloyd's k-means and initial
responsibilities.  Everything runs on the data's device and dtype; random
draws come from a CPU :class:`torch.Generator` so that results do not depend
on the device.
"""

from __future__ import annotations

import math
import numbers

import torch
from torch import Tensor

__all__ = ["INIT_METHODS", "kmeans_plusplus", "kmeans", "initial_responsibilities"]

#: the initialisation methods of :func:`initial_responsibilities` (scikit-learn's names)
INIT_METHODS = ("kmeans", "k-means++", "random", "random_from_data")


def _sq_dist(X: Tensor, C: Tensor, x_sq: Tensor | None = None, c_sq: Tensor | None = None) -> Tensor:
    """Squared Euclidean distances ``(N, M)`` between rows of ``X`` and ``C`` (as a GEMM)."""
    if x_sq is None:
        x_sq = _row_sq_norms(X)
    if c_sq is None:
        c_sq = C.square().sum(1)
    return torch.addmm(c_sq.unsqueeze(0), X, C.T, alpha=-2.0).add_(x_sq.unsqueeze(1)).clamp_min_(0.0)


def _check(X: Tensor, n_clusters: int) -> int:
    if not isinstance(X, Tensor) or X.dim() != 2 or not X.is_floating_point():
        raise ValueError(f"X must be a 2-D floating tensor, got {getattr(X, 'shape', type(X))}")
    if isinstance(n_clusters, bool) or not isinstance(n_clusters, numbers.Integral) or n_clusters < 1:
        raise ValueError(f"n_clusters must be a positive int, got {n_clusters!r}")
    if X.shape[0] < n_clusters:
        raise ValueError(f"X has {X.shape[0]} samples, fewer than n_clusters={n_clusters}")
    return int(n_clusters)


def kmeans_plusplus(
    X: Tensor,
    n_clusters: int,
    generator: torch.Generator | None = None,
    n_local_trials: int | None = None,
    _x_sq: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """
    Greedy k-means++ seeding: each new centre is the best (lowest potential) of
    ``n_local_trials`` candidates drawn with probability proportional to the
    squared distance to the nearest chosen centre.

    :param Tensor X: data ``(N, D)``.
    :param int n_clusters: number of centres ``K <= N``.
    :param torch.Generator generator: CPU generator for the random draws.
    :param int n_local_trials: candidates per centre (default ``2 + floor(log K)``).
    :returns: ``(centers (K, D), indices (K,))`` with ``centers == X[indices]``.
    """
    n_clusters = _check(X, n_clusters)
    N = X.shape[0]
    if n_local_trials is None:
        n_local_trials = 2 + int(math.log(n_clusters))
    x_sq = _row_sq_norms(X) if _x_sq is None else _x_sq
    first = torch.randint(0, N, (1,), generator=generator).to(X.device)
    indices = [first]
    closest = _sq_dist(X, X[first], x_sq, x_sq[first]).squeeze(1)
    for _ in range(1, n_clusters):
        cum = closest.cumsum(0)
        u = torch.rand(n_local_trials, generator=generator, dtype=torch.float64).to(device=X.device, dtype=X.dtype)
        cand = torch.searchsorted(cum, u * cum[-1]).clamp_(max=N - 1)
        if X.shape[1] <= 16:  # few features: the (T, N) layout reduces along contiguous rows
            dist = _sq_dist(X[cand], X, x_sq[cand], x_sq)  # (T, N)
            torch.minimum(dist, closest.unsqueeze(0), out=dist)
            best = dist.sum(1).argmin()
            closest = dist[best]
        else:  # many features: the (N, T) GEMM reads X once (a (T, D) @ (D, N) GEMM is ~3x slower on CPU)
            dist = _sq_dist(X, X[cand], x_sq, x_sq[cand])  # (N, T)
            torch.minimum(dist, closest.unsqueeze(1), out=dist)
            best = (closest.new_ones(N) @ dist).argmin()
            closest = dist[:, best].contiguous()
        indices.append(cand[best].reshape(1))
    idx = torch.cat(indices)
    return X[idx], idx


def kmeans(
    X: Tensor,
    n_clusters: int,
    generator: torch.Generator | None = None,
    max_iter: int = 20,
    tol: float = 1e-4,
) -> tuple[Tensor, Tensor]:
    """
    Lloyd's k-means from a k-means++ seeding.

    :param Tensor X: data ``(N, D)``.
    :param int n_clusters: number of clusters.
    :param torch.Generator generator: CPU generator for the seeding.
    :param int max_iter: maximum Lloyd iterations.
    :param float tol: stop when the total squared centre shift is below ``tol``
        times the mean per-feature variance of ``X``.
    :returns: ``(centers (K, D), labels (N,))``.
    """
    n_clusters = _check(X, n_clusters)
    N, D = X.shape
    x_sq = _row_sq_norms(X)
    centers, _ = kmeans_plusplus(X, n_clusters, generator, _x_sq=x_sq)
    if N > 1:  # mean per-feature variance from the row norms and the mean (no pass over X squared)
        mean = X.new_ones(N) @ X / N
        threshold = tol * max(float(x_sq.sum()) / N - float(mean.square().sum()), 0.0) / D
    else:
        threshold = 0.0
    # per iteration: one GEMM for the distances (||c||^2 - 2 c.x: argmin does not need ||x||^2), counts by
    # bincount, per-cluster sums by a weighted bincount per feature on the transposed data (few features)
    # or index_add_ (no N x K one-hot, no N x K float copies)
    XT = X.T.contiguous() if D <= 16 else None
    labels = _nearest(X, centers)
    for _ in range(max_iter):
        counts = torch.bincount(labels, minlength=n_clusters).to(X.dtype)
        if XT is not None:
            sums = torch.stack([torch.bincount(labels, weights=row, minlength=n_clusters) for row in XT], 1)
        else:
            sums = X.new_zeros(n_clusters, D).index_add_(0, labels, X)
        new = sums / counts.clamp_min(1.0).unsqueeze(1)
        new = torch.where(counts.unsqueeze(1) > 0, new, centers)  # empty clusters keep their centre
        shift = float((new - centers).square().sum())
        centers = new
        labels = _nearest(X, centers)
        if shift <= threshold:
            break
    return centers, labels


def _row_sq_norms(X: Tensor) -> Tensor:
    """``||x_n||^2`` for every row (``vector_norm`` reads ``X`` once: no ``N x D`` temporary)."""
    return torch.linalg.vector_norm(X, dim=1).square_()


def _nearest(X: Tensor, C: Tensor) -> Tensor:
    """Index of the nearest row of ``C`` for each row of ``X`` (``argmin ||c||^2 - 2 x.c``, one GEMM)."""
    c_sq = C.square().sum(1)
    if X.shape[1] <= 16:
        # few features: the (K, N) layout makes the reduction over K run along contiguous rows (~3x faster
        # on CPU than a min over the short last dimension of an (N, K) matrix)
        return torch.addmm(c_sq.unsqueeze(1), C, X.T, alpha=-2.0).min(0).indices
    return torch.addmm(c_sq.unsqueeze(0), X, C.T, alpha=-2.0).min(1).indices


def initial_responsibilities(
    X: Tensor, n_components: int, method: str = "kmeans", generator: torch.Generator | None = None
) -> Tensor:
    """
    Initial responsibilities ``(N, K)`` for a mixture fit.

    :param Tensor X: data ``(N, D)``.
    :param int n_components: number of components ``K``.
    :param str method: ``"kmeans"`` (hard labels after at most 10 Lloyd iterations), ``"k-means++"``
        (nearest k-means++ seed), ``"random"`` (uniform random soft
        responsibilities) or ``"random_from_data"`` (``n_components`` distinct
        random points, each the only member of its component, as in scikit-learn).
    :param torch.Generator generator: CPU generator.

    >>> X = torch.tensor([[0.0], [0.1], [5.0], [5.1]])
    >>> initial_responsibilities(X, 2, "kmeans", torch.Generator().manual_seed(0)).sum(0)
    tensor([2., 2.])
    """
    n_components = _check(X, n_components)
    if method == "kmeans":
        labels = kmeans(X, n_components, generator, max_iter=10)[1]
    elif method == "k-means++":
        centers, _ = kmeans_plusplus(X, n_components, generator)
        labels = _nearest(X, centers)
    elif method == "random_from_data":
        idx = torch.randperm(X.shape[0], generator=generator)[:n_components].to(X.device)
        resp = X.new_zeros(X.shape[0], n_components)
        resp[idx, torch.arange(n_components, device=X.device)] = 1.0
        return resp
    elif method == "random":
        r = torch.rand(X.shape[0], n_components, generator=generator, dtype=torch.float64)
        return (r / r.sum(1, keepdim=True)).to(device=X.device, dtype=X.dtype)
    else:
        raise ValueError(f"init method must be one of {INIT_METHODS}, got {method!r}")
    return X.new_zeros(X.shape[0], n_components).scatter_(1, labels.unsqueeze(1), 1.0)
