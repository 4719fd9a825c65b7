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

Processes *other* than the model, to check that a fit finds structure in data
it did not generate (each returns the true parameters in ``params``, so that
:func:`~pyro_expfam.models.overlapping.oracle.bayes_oracle` can compute the
exact posterior over sets):

- :func:`make_noisy_or`: binary features switched on by the *union* of the
  sparse feature sets of a point's clusters (noisy-OR), with bit flips; with
  ``set_size_probs[0] > 0`` some points are in no cluster.
- :func:`make_sparse_product`: the product model itself on sparse random
  feature sets, with bit flips (``D`` arbitrary, unlike the bars).
- :func:`make_bernoulli_blocks`: no overlap at all: every point in exactly
  one cluster (an ordinary mixture of product-Bernoulli blocks).
- :func:`make_gaussian_stripes`: axis-aligned Gaussian "stripes" whose
  pairwise products form a grid of blobs (every point in one horizontal and
  one vertical stripe).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from ..util import check_device

__all__ = [
    "OverlappingData",
    "make_bernoulli_blocks",
    "make_gaussian_stripes",
    "make_noisy_or",
    "make_overlapping_bars",
    "make_overlapping_gaussians",
    "make_sparse_product",
    "sample_membership_sets",
]


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


def _positive_number(name: str, value) -> float:
    if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive number, got {value!r}")
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
        {
            "logits": logits.to(dtype=dtype, device=device),
            "kind": "bernoulli_product",
            "set_size_probs": torch.as_tensor(set_size_probs, dtype=torch.float64),
            "flip": 0.0,
        },
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
        _positive_number(name, v)
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
    params = {"loc": loc, "precision": precision, "kind": f"gaussian_{covariance}", "set_size_probs": probs}
    return _finish(X, Z, params, dtype, device)


def _flip_rate(flip) -> float:
    if not (isinstance(flip, int | float) and 0 <= flip < 0.5):
        raise ValueError(f"flip must be a number in [0, 0.5), got {flip!r}")
    return float(flip)


def _random_masks(num_clusters: int, num_features: int, features_per_cluster: int, g: torch.Generator) -> Tensor:
    _positive_int("features_per_cluster", features_per_cluster)
    if features_per_cluster > num_features:
        raise ValueError(f"features_per_cluster must be <= num_features = {num_features}, got {features_per_cluster}")
    keys = torch.rand(num_clusters, num_features, generator=g, dtype=torch.float64)
    ranks = keys.argsort(-1).argsort(-1)
    return (ranks < features_per_cluster).to(torch.float64)


def _sparse_sets(num_points, num_features, num_clusters, features_per_cluster, set_size_probs, flip, seed, generator):
    """Checked arguments, the generator, ``K x D`` random feature masks and ``N x K`` membership sets."""
    _positive_int("num_features", num_features)
    _positive_int("num_clusters", num_clusters)
    flip = _flip_rate(flip)
    g = _generator(seed, generator)
    masks = _random_masks(num_clusters, num_features, features_per_cluster, g)
    Z = sample_membership_sets(num_points, num_clusters, set_size_probs, g)
    return g, masks, Z, flip


def _flip_bits(prob_on: Tensor, flip: float, g: torch.Generator) -> Tensor:
    """Bernoulli draws with probability ``prob_on``, each bit then flipped with probability ``flip``."""
    return torch.bernoulli(prob_on * (1 - flip) + (1 - prob_on) * flip, generator=g)


def _noise_params(flip: float, set_size_probs, kind: str) -> dict:
    return {"flip": flip, "set_size_probs": torch.as_tensor(set_size_probs, dtype=torch.float64), "kind": kind}


def _finish(X, Z, params, dtype, device) -> OverlappingData:
    dtype = dtype or torch.get_default_dtype()
    conv = {"dtype": dtype, "device": check_device(device) if device is not None else None}
    out = {k: (v.to(**conv) if isinstance(v, Tensor) and k != "set_size_probs" else v) for k, v in params.items()}
    return OverlappingData(X.to(**conv), Z.to(**conv), out)


def make_noisy_or(
    num_points: int = 1000,
    num_features: int = 50,
    num_clusters: int = 5,
    features_per_cluster: int = 10,
    set_size_probs: Sequence[float] | Tensor = (0.0, 1 / 3, 1 / 3, 1 / 3),
    flip: float = 0.05,
    seed: int | None = None,
    generator: torch.Generator | None = None,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> OverlappingData:
    r"""
    Binary data made as a noisy union (OR) of sparse feature sets, a process
    that is *not* the product model: cluster ``k`` owns a random set of
    ``features_per_cluster`` features; a point's feature is on when at least
    one of its clusters owns it, then every bit is flipped with probability
    ``flip``.  With ``set_size_probs[0] > 0`` some points are in no cluster
    (all their features are off up to the flips).

    :param int num_points: ``N``.
    :param int num_features: ``D``.
    :param int num_clusters: ``K``.
    :param int features_per_cluster: size of each cluster's feature set.
    :param set_size_probs: probabilities of set sizes 0, 1, 2, ... (default 1-3 clusters, uniformly).
    :param float flip: bit-flip probability in ``[0, 0.5)``.
    :param int seed: random seed.
    :param torch.Generator generator: CPU generator (instead of ``seed``).
    :param torch.dtype dtype: dtype of ``X``.
    :param device: device of the results.
    :returns: :class:`OverlappingData` with ``params["masks"]`` (``K x D``),
        ``params["flip"]``, ``params["set_size_probs"]``, ``params["kind"] = "noisy_or"``.

    Example::

        >>> data = make_noisy_or(num_points=20, seed=0)
        >>> data.X.shape, data.Z.shape, int(data.params["masks"].sum())
        (torch.Size([20, 50]), torch.Size([20, 5]), 50)
    """
    g, masks, Z, flip = _sparse_sets(num_points, num_features, num_clusters, features_per_cluster,
                                     set_size_probs, flip, seed, generator)
    on = (Z @ masks).clamp(max=1.0)
    X = _flip_bits(on, flip, g)
    return _finish(X, Z, {"masks": masks, **_noise_params(flip, set_size_probs, "noisy_or")}, dtype, device)


def make_sparse_product(
    num_points: int = 1000,
    num_features: int = 50,
    num_clusters: int = 5,
    features_per_cluster: int = 10,
    on_logit: float = 3.0,
    off_logit: float = -1.0,
    set_size_probs: Sequence[float] | Tensor = (0.0, 1 / 3, 1 / 3, 1 / 3),
    flip: float = 0.05,
    seed: int | None = None,
    generator: torch.Generator | None = None,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> OverlappingData:
    r"""
    Binary data from the product model on sparse random feature sets: cluster
    ``k`` has logit ``on_logit`` on its ``features_per_cluster`` random
    features and ``off_logit`` elsewhere; a point in the set ``z`` has logits
    :math:`\sum_k z_k\,\text{logit}_k` (uniform background); every bit is
    then flipped with probability ``flip``.

    Arguments as for :func:`make_noisy_or`, plus ``on_logit`` and ``off_logit``.

    :returns: :class:`OverlappingData` with ``params["logits"]`` (``K x D``),
        ``params["flip"]``, ``params["set_size_probs"]``, ``params["kind"] = "bernoulli_product"``.

    Example::

        >>> data = make_sparse_product(num_points=20, seed=0)
        >>> data.params["logits"].shape
        torch.Size([5, 50])
    """
    g, masks, Z, flip = _sparse_sets(num_points, num_features, num_clusters, features_per_cluster,
                                     set_size_probs, flip, seed, generator)
    logits = masks * on_logit + (1 - masks) * off_logit
    X = _flip_bits(torch.sigmoid(Z @ logits), flip, g)
    params = {"logits": logits, **_noise_params(flip, set_size_probs, "bernoulli_product")}
    return _finish(X, Z, params, dtype, device)


def make_bernoulli_blocks(
    num_points: int = 100,
    num_features: int = 50,
    num_clusters: int = 5,
    on_prob: float = 0.8,
    off_prob: float = 0.2,
    seed: int | None = None,
    generator: torch.Generator | None = None,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> OverlappingData:
    r"""
    Clustered binary data with **no overlap**: the features are split into
    ``K`` contiguous blocks; every point belongs to exactly one cluster (uniformly
    at random) and has its cluster's block on with probability ``on_prob``,
    the other features with probability ``off_prob``.  An overlapping model
    should reduce to an ordinary mixture here (MAP sets of size one).

    :param int num_points: ``N``.
    :param int num_features: ``D >= K``.
    :param int num_clusters: ``K``.
    :param float on_prob: probability of a feature of the point's block.
    :param float off_prob: probability of any other feature.
    :returns: :class:`OverlappingData` with ``params["probs"]`` (``K x D``),
        ``params["set_size_probs"] = (0, 1)``, ``params["kind"] = "blocks"``.

    Example::

        >>> data = make_bernoulli_blocks(num_points=10, seed=0)
        >>> bool((data.Z.sum(-1) == 1).all())
        True
    """
    _positive_int("num_features", num_features)
    _positive_int("num_clusters", num_clusters)
    if num_features < num_clusters:
        raise ValueError(f"num_features must be >= num_clusters = {num_clusters}, got {num_features}")
    for name, v in (("on_prob", on_prob), ("off_prob", off_prob)):
        if not (isinstance(v, int | float) and 0 < v < 1):
            raise ValueError(f"{name} must be a probability in (0, 1), got {v!r}")
    g = _generator(seed, generator)
    block = torch.arange(num_features) * num_clusters // num_features
    probs = torch.where(block[None, :] == torch.arange(num_clusters)[:, None], float(on_prob), float(off_prob)).to(
        torch.float64
    )
    Z = sample_membership_sets(num_points, num_clusters, (0.0, 1.0), g)
    X = torch.bernoulli(Z @ probs, generator=g)
    params = {"probs": probs, "set_size_probs": torch.tensor([0.0, 1.0], dtype=torch.float64), "kind": "blocks"}
    return _finish(X, Z, params, dtype, device)


def make_gaussian_stripes(
    num_points: int = 500,
    grid: int = 3,
    spacing: float = 4.0,
    narrow: float = 0.5,
    wide: float = 20.0,
    seed: int | None = None,
    generator: torch.Generator | None = None,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> OverlappingData:
    r"""
    Points in the plane on a ``grid x grid`` lattice of blobs, explained by
    ``K = 2 * grid`` overlapping axis-aligned Gaussian **stripes**: stripe
    ``k < grid`` is narrow in ``x`` (standard deviation ``narrow``) at
    ``x = k * spacing`` and wide in ``y`` (``wide``); stripe ``grid + j`` the
    same with the axes swapped.  Every point belongs to one vertical and one
    horizontal stripe (uniformly at random) and is drawn from their product,
    a blob at the intersection.  An ordinary mixture needs ``grid^2`` blobs;
    the overlapping model needs ``2 * grid`` stripes.

    :param int num_points: ``N``.
    :param int grid: stripes per axis.
    :param float spacing: distance between neighbouring stripes.
    :param float narrow: standard deviation across a stripe.
    :param float wide: standard deviation along a stripe.
    :returns: :class:`OverlappingData` with ``params["loc"]``, ``params["precision"]``
        (diagonal, ``K x 2``), ``params["kind"] = "gaussian_stripes"``.

    Example::

        >>> data = make_gaussian_stripes(num_points=10, seed=0)
        >>> data.X.shape, data.Z.shape
        (torch.Size([10, 2]), torch.Size([10, 6]))
    """
    _positive_int("num_points", num_points)
    _positive_int("grid", grid)
    for name, v in (("spacing", spacing), ("narrow", narrow), ("wide", wide)):
        _positive_number(name, v)
    g = _generator(seed, generator)
    pos = spacing * torch.arange(grid, dtype=torch.float64)
    loc = torch.zeros(2 * grid, 2, dtype=torch.float64)
    loc[:grid, 0] = pos
    loc[grid:, 1] = pos
    precision = torch.empty(2 * grid, 2, dtype=torch.float64)
    precision[:grid] = torch.tensor([1 / narrow**2, 1 / wide**2])
    precision[grid:] = torch.tensor([1 / wide**2, 1 / narrow**2])
    a = torch.randint(grid, (num_points,), generator=g)
    b = torch.randint(grid, (num_points,), generator=g)
    Z = torch.zeros(num_points, 2 * grid, dtype=torch.float64)
    Z[torch.arange(num_points), a] = 1.0
    Z[torch.arange(num_points), grid + b] = 1.0
    prec = Z @ precision
    mean = (Z @ (precision * loc)) / prec
    X = mean + torch.randn(num_points, 2, generator=g, dtype=torch.float64) / prec.sqrt()
    params = {
        "loc": loc,
        "precision": precision,
        "kind": "gaussian_stripes",
        "set_size_probs": torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64),
    }
    return _finish(X, Z, params, dtype, device)
