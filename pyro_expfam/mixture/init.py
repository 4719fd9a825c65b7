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
    _xt2: Tensor | None = None,
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
        if X.shape[1] <= 16 and X.device.type == "cpu":
            # few features: one GEMM of [-2 x_c, ||x_c||^2, 1] with [X.T; 1; ||x||^2] gives the (T, block)
            # squared distances directly, block by block in a buffer that stays in cache
            if _xt2 is None:
                _xt2 = _augmented_t(X, x_sq)
            best, closest = _best_candidate_t(_xt2, X[cand], x_sq[cand], closest)
        elif N * n_local_trials > _CHUNK_ELEMENTS and X.device.type == "cpu":
            # large N: the potential of each candidate accumulated over row blocks held in cache, then the
            # closest distances updated by the chosen one (no (N, T) matrix)
            best = _best_candidate(X, x_sq, cand, closest)
            c = X[cand[best]]
            d = torch.addmv(x_sq, X, c, alpha=-2.0).add_(x_sq[cand[best]]).clamp_min_(0.0)
            torch.minimum(closest, d, out=closest)
        elif X.shape[1] <= 16:  # few features: the (T, N) layout reduces along contiguous rows
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


def _best_candidate_t(XT2: Tensor, xc: Tensor, xc_sq: Tensor, closest: Tensor) -> tuple[Tensor, Tensor]:
    """
    Index of the candidate centre (rows ``xc``) whose addition gives the lowest k-means potential, and the
    closest squared distances after adding it; ``XT2`` is :func:`_augmented_t` of the data.
    """
    N, T = XT2.shape[1], xc.shape[0]
    C2 = torch.cat([xc * -2.0, xc_sq.unsqueeze(1), xc.new_ones(T, 1)], 1)
    chunk = min(_block(T), N)
    pot = xc.new_zeros(T)
    buf = xc.new_empty(T, chunk)
    for s in range(0, N, chunk):
        e = min(N, s + chunk)
        b = torch.mm(C2, XT2[:, s:e], out=buf[:, : e - s]).clamp_min_(0.0)
        torch.minimum(b, closest[s:e].unsqueeze(0), out=b)
        pot += b.sum(1)
    best = pot.argmin()
    d = (C2[best].unsqueeze(0) @ XT2).squeeze(0).clamp_min_(0.0)
    return best, torch.minimum(closest, d)


def _best_candidate(X: Tensor, x_sq: Tensor, cand: Tensor, closest: Tensor) -> Tensor:
    """Index into ``cand`` of the candidate centre whose addition gives the lowest k-means potential."""
    N, T = X.shape[0], cand.shape[0]
    chunk = _block(T)
    pot = X.new_zeros(T)
    buf = X.new_empty(chunk, T)
    xc, xc_sq = X[cand].T, x_sq[cand].unsqueeze(0)
    for s in range(0, N, chunk):
        e = min(N, s + chunk)
        b = torch.addmm(xc_sq, X[s:e], xc, alpha=-2.0, out=buf[: e - s])
        b.add_(x_sq[s:e].unsqueeze(1)).clamp_min_(0.0)
        torch.minimum(b, closest[s:e].unsqueeze(1), out=b)
        pot += b.sum(0)
    return pot.argmin()


def kmeans(
    X: Tensor,
    n_clusters: int,
    generator: torch.Generator | None = None,
    max_iter: int = 20,
    tol: float = 1e-4,
    _return_n_iter: bool = False,
) -> tuple[Tensor, Tensor]:
    """
    Lloyd's k-means from a k-means++ seeding.

    :param Tensor X: data ``(N, D)``.
    :param int n_clusters: number of clusters.
    :param torch.Generator generator: CPU generator for the seeding.
    :param int max_iter: maximum Lloyd iterations.
    :param float tol: stop when the total squared centre shift is below ``tol``
        times the mean per-feature variance of ``X`` (scikit-learn's definition), or when the labels no
        longer change (then the centres are a fixed point).
    :returns: ``(centers (K, D), labels (N,))`` (and the number of Lloyd iterations run if ``_return_n_iter``).
    """
    n_clusters = _check(X, n_clusters)
    N, D = X.shape
    x_sq = _row_sq_norms(X)
    XT2 = _augmented_t(X, x_sq) if D <= 16 else None
    centers, _ = kmeans_plusplus(X, n_clusters, generator, _x_sq=x_sq, _xt2=XT2)
    if N > 1:  # mean per-feature variance from the row norms and the mean (no pass over X squared)
        mean = X.new_ones(N) @ X / N
        threshold = tol * max(float(x_sq.sum()) / N - float(mean.square().sum()), 0.0) / D
    else:
        threshold = 0.0
    # per iteration: the nearest centres by blocked GEMMs (see _nearest), counts by bincount, per-cluster sums by
    # a weighted bincount per feature on the transposed data (few features) or index_add_ (no N x K one-hot,
    # no N x K float copies)
    labels = _nearest(X, centers, XT2)
    n_iter = 0
    for it in range(1, max_iter + 1):
        n_iter = it
        counts = torch.bincount(labels, minlength=n_clusters).to(X.dtype)
        if XT2 is not None:
            sums = torch.stack([torch.bincount(labels, weights=XT2[j], minlength=n_clusters) for j in range(D)], 1)
        else:
            sums = X.new_zeros(n_clusters, D).index_add_(0, labels, X)
        new = sums / counts.clamp_min(1.0).unsqueeze(1)
        new = torch.where(counts.unsqueeze(1) > 0, new, centers)  # empty clusters keep their centre
        shift = float((new - centers).square().sum())
        centers = new
        new_labels = _nearest(X, centers, XT2)
        if shift <= threshold or torch.equal(new_labels, labels):  # unchanged labels: the next centres are these
            labels = new_labels
            break
        labels = new_labels
    if _return_n_iter:
        return centers, labels, n_iter  # type: ignore[return-value]
    return centers, labels


def _row_sq_norms(X: Tensor) -> Tensor:
    """``||x_n||^2`` for every row (``vector_norm`` reads ``X`` once: no ``N x D`` temporary)."""
    return torch.linalg.vector_norm(X, dim=1).square_()


#: above this many distances (N x K) :func:`_nearest` works in blocks of rows
_CHUNK_ELEMENTS = 1 << 22
#: elements of a block of distances (1 MB in float64: stays in cache)
_BLOCK_ELEMENTS = 1 << 17


def _block(width: int) -> int:
    """Rows (or columns) per block of a distance matrix ``width`` wide."""
    return max(_BLOCK_ELEMENTS // width, 1)


def _augmented_t(X: Tensor, x_sq: Tensor) -> Tensor:
    """``(D + 2, N)``: the rows ``X.T``, ones and ``||x_n||^2`` (contiguous)."""
    return torch.cat([X.T, X.new_ones(1, X.shape[0]), x_sq.unsqueeze(0)], 0)


def _nearest(X: Tensor, C: Tensor, XT2: Tensor | None = None) -> Tensor:
    """
    Index of the nearest row of ``C`` for each row of ``X``.

    Few features, at most 256 centres, float64 on CPU: in blocks of columns of ``XT2 = [X.T; 1; ||x||^2]``
    (:func:`_augmented_t`), one GEMM with ``[-2 C, ||c||^2, 1]`` gives the ``(K, block)`` squared distances
    in a buffer that stays in cache; the centre index is written into the lowest ``ceil(log2 K)`` mantissa
    bits of each (non-negative) distance, so that a plain vectorised ``amin`` over the centres returns
    the distance and its index together (about 6x faster than ``min`` with indices).  Distances that agree
    to a relative ``2^-44`` count as tied (far below the GEMM's rounding error) and ties go to the lowest
    index, as ``argmin`` does.  Otherwise ``argmin ||c||^2 - 2 x.c`` by one GEMM, in row blocks for large
    ``N x K``.
    """
    N, D = X.shape
    K = C.shape[0]
    c_sq = C.square().sum(1)
    if D <= 16 and K <= 256 and X.dtype == torch.float64 and X.device.type == "cpu":
        if XT2 is None:
            XT2 = _augmented_t(X, _row_sq_norms(X))
        C2 = torch.cat([C * -2.0, c_sq.unsqueeze(1), C.new_ones(K, 1)], 1)
        bits = max((K - 1).bit_length(), 1)
        keep = torch.tensor(~((1 << bits) - 1), dtype=torch.int64)
        index = torch.arange(K, dtype=torch.int64).unsqueeze(1)
        chunk = min(_block(K), N)
        buf = X.new_empty(K, chunk)
        packed = X.new_empty(N)
        for s in range(0, N, chunk):
            e = min(N, s + chunk)
            b = buf[:, : e - s]
            torch.mm(C2, XT2[:, s:e], out=b)
            b.clamp_min_(1e-300)  # positive: the bit patterns order as the values do
            b.view(torch.int64).bitwise_and_(keep).bitwise_or_(index)
            torch.amin(b, 0, out=packed[s:e])
        return packed.view(torch.int64).bitwise_and_((1 << bits) - 1)
    if N * K > _CHUNK_ELEMENTS and X.device.type == "cpu":
        # large N x K: blocks of rows into one reused (chunk, K) buffer of ~1 MB that stays in cache (no N x K
        # matrix, whose first touch alone costs more than the GEMM; ~2x faster at N=1e6)
        chunk = _block(K)
        labels = torch.empty(N, dtype=torch.long)
        values = X.new_empty(N)
        buf = X.new_empty(chunk, K)
        for s in range(0, N, chunk):
            e = min(N, s + chunk)
            torch.addmm(c_sq.unsqueeze(0), X[s:e], C.T, alpha=-2.0, out=buf[: e - s])
            torch.min(buf[: e - s], 1, out=(values[s:e], labels[s:e]))
        return labels
    if D <= 16:
        # few features (other dtypes or devices): the (K, N) layout makes the reduction over K run along contiguous rows
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
