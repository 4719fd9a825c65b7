# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
r"""
Synthetic data with planted *overlapping* cluster structure, drawn from the
overlapping mixture model itself (Heller & Ghahramani 2007): a point in the
set of clusters :math:`z` follows the normalised product of those clusters'
densities.

- :func:`make_overlapping_bars`: binary images (the "bars" problem): cluster
  ``k`` switches on one horizontal or vertical bar; a point in two clusters
  shows both bars (its logits are the sums of the clusters' logits).
- :func:`make_overlapping_gaussians`: real vectors; a point in several
  Gaussian clusters has the summed precision and precision-weighted mean.

Each point's set is drawn by first drawing its size from ``set_size_probs``
(default: 1 or 2 clusters with probability 1/2 each) and then a uniformly
random set of that size.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from ..util import check_device

__all__ = ["OverlappingData", "make_overlapping_bars", "make_overlapping_gaussians", "sample_membership_sets"]


@dataclass
class OverlappingData:
    """
    A planted data set.

    :ivar Tensor X: data, ``(N, D)``.
    :ivar Tensor Z: true memberships, a 0/1 tensor ``(N, K)``.
    :ivar dict params: the true cluster parameters (per generator).
    """

    X: Tensor
    Z: Tensor
    params: dict = field(default_factory=dict)

    @property
    def num_clusters(self) -> int:
        """Number of planted clusters ``K``."""
        return self.Z.shape[1]


def _generator(seed: int | None, generator: torch.Generator | None) -> torch.Generator:
    if generator is not None:
        if seed is not None:
            raise ValueError("pass either seed or generator, not both")
        if not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
        return generator
    g = torch.Generator()
    g.manual_seed(int(torch.randint(2**62, (1,))) if seed is None else seed)
    return g


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def sample_membership_sets(
    num_points: int,
    num_clusters: int,
    set_size_probs: Sequence[float] | Tensor = (0.0, 0.5, 0.5),
    generator: torch.Generator | None = None,
) -> Tensor:
    """
    Random membership sets: for each point a size ``j`` with probability
    ``set_size_probs[j]``, then a uniformly random set of ``j`` clusters.

    :param int num_points: ``N``.
    :param int num_clusters: ``K``.
    :param set_size_probs: probabilities of the set sizes ``0, 1, ...`` (at most ``K + 1`` entries).
    :param torch.Generator generator: CPU random generator.
    :returns: float64 0/1 tensor ``(N, K)``.
    """
    _positive_int("num_points", num_points)
    _positive_int("num_clusters", num_clusters)
    probs = torch.as_tensor(set_size_probs, dtype=torch.float64)
    if probs.dim() != 1 or probs.numel() > num_clusters + 1 or bool((probs < 0).any()) or float(probs.sum()) <= 0:
        raise ValueError(
            f"set_size_probs must be non-negative weights of set sizes 0..{num_clusters}, got {set_size_probs!r}"
        )
    sizes = torch.multinomial(probs / probs.sum(), num_points, replacement=True, generator=generator)
    keys = torch.rand(num_points, num_clusters, generator=generator, dtype=torch.float64)
    ranks = keys.argsort(-1).argsort(-1)  # a uniformly random permutation of the clusters per point
    return (ranks < sizes.unsqueeze(-1)).to(torch.float64)


def _spread_directions(num: int, dim: int, g: torch.Generator) -> Tensor:
    """``num`` unit vectors in ``R^dim``, spread out: orthonormal when ``num <= dim``, evenly spaced
    angles (randomly rotated) in the plane, otherwise a farthest-point selection of random directions."""
    if dim == 1:
        return torch.tensor([[1.0], [-1.0]], dtype=torch.float64).repeat(num, 1)[:num] * torch.linspace(
            1.0, 1.0 / num, num, dtype=torch.float64
        ).unsqueeze(-1)
    if num <= dim:
        q, _ = torch.linalg.qr(torch.randn(dim, dim, generator=g, dtype=torch.float64))
        return q[:num]
    if dim == 2:
        angle = 2 * math.pi * (torch.arange(num, dtype=torch.float64) / num + torch.rand((), generator=g))
        return torch.stack([angle.cos(), angle.sin()], -1)
    cand = torch.randn(64 * num, dim, generator=g, dtype=torch.float64)
    cand = cand / cand.norm(dim=-1, keepdim=True)
    chosen = [0]
    dist = (cand - cand[0]).norm(dim=-1)
    for _ in range(1, num):
        j = int(dist.argmax())
        chosen.append(j)
        dist = torch.minimum(dist, (cand - cand[j]).norm(dim=-1))
    return cand[chosen]


def make_overlapping_bars(
    num_points: int = 500,
    num_clusters: int = 4,
    side: int = 6,
    on_logit: float = 3.0,
    off_logit: float = -1.0,
    set_size_probs: Sequence[float] | Tensor = (0.0, 0.5, 0.5),
    seed: int | None = None,
    generator: torch.Generator | None = None,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> OverlappingData:
    r"""
    Binary ``side x side`` images (``D = side^2`` features) with planted
    overlapping "bars" clusters.

    Cluster ``k`` is a horizontal (even ``k``) or vertical (odd ``k``) bar at an
    evenly spaced position, with logit ``on_logit`` on its bar and
    ``off_logit`` elsewhere.  A point in the set ``z`` has pixel logits
    :math:`\sum_k z_k \text{logit}_k` (the overlapping-mixture product with a
    uniform background); with the defaults a pixel on one bar of a two-bar
    point has logit 2, on both bars 6, elsewhere -2.

    :param int num_points: ``N``.
    :param int num_clusters: ``K <= 2 * side``.
    :param int side: image side.
    :param float on_logit: logit of a cluster's bar pixels.
    :param float off_logit: logit of its other pixels.
    :param set_size_probs: probabilities of set sizes 0, 1, 2, ... (default 1 or 2 clusters).
    :param int seed: random seed.
    :param torch.Generator generator: CPU generator (instead of ``seed``).
    :param torch.dtype dtype: dtype of ``X`` (default: the default dtype).
    :param device: device of the results.
    :returns: :class:`OverlappingData` with ``params["logits"]`` (``K x D``).
    """
    _positive_int("side", side)
    _positive_int("num_clusters", num_clusters)
    if num_clusters > 2 * side:
        raise ValueError(f"num_clusters must be <= 2 * side = {2 * side}, got {num_clusters}")
    g = _generator(seed, generator)
    n_rows, n_cols = (num_clusters + 1) // 2, num_clusters // 2
    rows = [round((i + 0.5) * side / n_rows - 0.5) for i in range(n_rows)]
    cols = [round((i + 0.5) * side / n_cols - 0.5) for i in range(n_cols)]
    logits = torch.full((num_clusters, side, side), float(off_logit), dtype=torch.float64)
    for k in range(num_clusters):
        if k % 2 == 0:
            logits[k, rows[k // 2], :] = on_logit
        else:
            logits[k, :, cols[k // 2]] = on_logit
    logits = logits.reshape(num_clusters, side * side)
    Z = sample_membership_sets(num_points, num_clusters, set_size_probs, g)
    X = torch.bernoulli(torch.sigmoid(Z @ logits), generator=g)
    dtype = dtype or torch.get_default_dtype()
    device = check_device(device) if device is not None else None
    return OverlappingData(
        X.to(dtype=dtype, device=device),
        Z.to(dtype=dtype, device=device),
        {"logits": logits.to(dtype=dtype, device=device)},
    )


def make_overlapping_gaussians(
    num_points: int = 500,
    num_clusters: int = 3,
    dim: int = 2,
    separation: float = 6.0,
    cluster_scale: float = 1.0,
    covariance: str = "diag",
    set_size_probs: Sequence[float] | Tensor = (0.0, 0.5, 0.5),
    seed: int | None = None,
    generator: torch.Generator | None = None,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> OverlappingData:
    r"""
    Real vectors with planted overlapping Gaussian clusters.

    Cluster means are spread-out points on a sphere of radius ``separation``
    (orthogonal directions when ``K <= D``, evenly spaced angles in the plane);
    cluster precisions are :math:`\lambda_k/\text{cluster\_scale}^2` per
    feature with :math:`\lambda_k \in [0.5, 2]` random (``covariance="diag"``)
    or random well-conditioned matrices (``"full"``).  A point in the set
    ``z`` is drawn from the product: precision :math:`\sum_k z_k\Lambda_k`,
    precision-weighted mean :math:`\sum_k z_k\Lambda_k\mu_k` (so it lies
    between its clusters' means).  Empty sets are not allowed here (no
    background): ``set_size_probs[0]`` must be 0.

    :param int num_points: ``N``.
    :param int num_clusters: ``K``.
    :param int dim: ``D``.
    :param float separation: radius of the sphere of cluster means.
    :param float cluster_scale: typical cluster standard deviation.
    :param str covariance: ``"diag"`` or ``"full"``.
    :param set_size_probs: probabilities of set sizes 0, 1, 2, ...
    :param int seed: random seed.
    :param torch.Generator generator: CPU generator (instead of ``seed``).
    :param torch.dtype dtype: dtype of ``X``.
    :param device: device of the results.
    :returns: :class:`OverlappingData` with ``params["loc"]`` (``K x D``) and
        ``params["precision"]`` (``K x D`` for diagonal, ``K x D x D`` for full).
    """
    _positive_int("num_clusters", num_clusters)
    _positive_int("dim", dim)
    if covariance not in ("diag", "full"):
        raise ValueError(f"covariance must be 'diag' or 'full', got {covariance!r}")
    for name, v in (("separation", separation), ("cluster_scale", cluster_scale)):
        if not (isinstance(v, int | float) and math.isfinite(v) and v > 0):
            raise ValueError(f"{name} must be a positive number, got {v!r}")
    probs = torch.as_tensor(set_size_probs, dtype=torch.float64)
    if probs.numel() and float(probs[0]) != 0:
        raise ValueError("set_size_probs[0] must be 0: a Gaussian point needs at least one cluster")
    g = _generator(seed, generator)
    loc = separation * _spread_directions(num_clusters, dim, g)
    lam = 0.5 + 1.5 * torch.rand(num_clusters, dim, generator=g, dtype=torch.float64)
    if covariance == "diag":
        precision = lam / cluster_scale**2
        prec_full = torch.diag_embed(precision)
    else:
        q, _ = torch.linalg.qr(torch.randn(num_clusters, dim, dim, generator=g, dtype=torch.float64))
        prec_full = q @ torch.diag_embed(lam) @ q.mT / cluster_scale**2
        precision = prec_full
    Z = sample_membership_sets(num_points, num_clusters, probs, g)
    prec_z = torch.einsum("nk,kij->nij", Z, prec_full)
    eta_z = torch.einsum("nk,kij,kj->ni", Z, prec_full, loc)
    chol = torch.linalg.cholesky(prec_z)
    mean = torch.cholesky_solve(eta_z.unsqueeze(-1), chol).squeeze(-1)
    eps = torch.randn(num_points, dim, generator=g, dtype=torch.float64)
    # x = mean + L^{-T} eps has covariance (L L^T)^{-1}
    X = mean + torch.linalg.solve_triangular(chol.mT, eps.unsqueeze(-1), upper=True).squeeze(-1)
    dtype = dtype or torch.get_default_dtype()
    conv = {"dtype": dtype, "device": check_device(device) if device is not None else None}
    return OverlappingData(X.to(**conv), Z.to(**conv), {"loc": loc.to(**conv), "precision": precision.to(**conv)})
