# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
r"""
Data-driven initialisation of an overlapping mixture.

Every strategy first guesses hard membership sets ``Z0`` (``N x K``, 0/1) and
then sets the global sites by one M-step of :mod:`~pyro_expfam.models.overlapping.em` on those sets
(:func:`params_from_memberships`), so the same code serves every family:

- ``"nmf"`` (binary and count-like data): a non-negative matrix factorisation
  :math:`X \approx WH` with ``K`` components; the components are the clusters'
  feature profiles and a point joins cluster ``k`` when its share
  :math:`W_{nk}\max_d H_{kd}` exceeds one half of the largest.  A union of
  feature sets is additive, which is what NMF models.
- ``"kmeans"`` (real data): k-means++ seeds followed by a few Lloyd
  iterations, one cluster per point (the EM that follows lets points join
  several).
- ``"random"``: the family's own initialisation (``init_params``).
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor

from .em import m_step

__all__ = ["guess_memberships", "initial_params", "params_from_memberships"]

STRATEGIES = ("nmf", "kmeans", "random")


def params_from_memberships(model, X: Tensor, Z: Tensor, generator: torch.Generator | None = None) -> dict:
    """
    Guide parameters that maximise the MAP objective given hard membership sets ``Z``.

    :param model: an :class:`~pyro_expfam.models.overlapping.model.OverlappingMixtureModel` (set up).
    :param X: data ``(N,) + point shape`` (checked).
    :param Z: 0/1 memberships ``(N, K)``.
    :param torch.Generator generator: for the starting point of the M-step.
    :returns: guide parameters (``"<site>.loc"``, ``"<site>.log_scale"`` for a mean-field guide).
    """
    params = model.init_params(X, generator)
    values = {s: params[f"{s}.loc"].clone() for s in model.global_sites()}
    Z = Z.to(dtype=X.dtype, device=X.device)
    sets, inverse = torch.unique(Z, dim=0, return_inverse=True)
    stats = model.family.layout.statistics(X)[:, : model.family.layout.dim]
    counts = torch.zeros(sets.shape[0], dtype=X.dtype, device=X.device).index_add_(0, inverse, torch.ones_like(X[:, 0]))
    sums = torch.zeros(sets.shape[0], stats.shape[1], dtype=X.dtype, device=X.device).index_add_(0, inverse, stats)
    # membership probabilities from the usage (the prior site is part of the M-step)
    m_step(model, values, counts, sums, sets, max_iter=100)
    out = {f"{s}.loc": v for s, v in values.items()}
    if model.guide_type == "mean_field":
        for s, v in values.items():
            out[f"{s}.log_scale"] = torch.full_like(v, -3.0)
    return out


def _nmf_memberships(X: Tensor, k: int, seed: int) -> Tensor:
    from sklearn.decomposition import NMF

    x = X.reshape(X.shape[0], -1).detach().cpu().double().numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning of NMF: a rough factorisation is enough here
        # NNDSVD needs k <= min(N, D); more clusters than features (or points) start from a random factorisation
        first = seed == 0 and k <= min(x.shape)
        nmf = NMF(n_components=k, init="nndsvda" if first else "random", random_state=seed, max_iter=300)
        w = torch.as_tensor(nmf.fit_transform(x))
        h = torch.as_tensor(nmf.components_)
    share = w * h.amax(1)[None, :]
    top = share.amax(0).clamp(min=1e-12)
    return (share > 0.5 * top[None, :]).to(X.dtype).to(X.device)


def _kmeans_memberships(X: Tensor, k: int, generator: torch.Generator, iters: int = 10) -> Tensor:
    from .families import _seeds

    x = X.reshape(X.shape[0], -1).to(torch.float64).cpu()
    x = (x - x.mean(0)) / x.std(0).clamp(min=1e-12)
    centres = x[_seeds(x, k, generator)]
    for _ in range(iters):
        assign = torch.cdist(x, centres).argmin(-1)
        for j in range(k):
            members = assign == j
            if bool(members.any()):
                centres[j] = x[members].mean(0)
    assign = torch.cdist(x, centres).argmin(-1)
    return torch.nn.functional.one_hot(assign, k).to(X.dtype).to(X.device)


def guess_memberships(model, X: Tensor, strategy: str, generator: torch.Generator) -> Tensor:
    """
    Hard membership sets ``(N, K)`` guessed from the data by ``strategy`` (module docstring).

    :param str strategy: ``"nmf"`` or ``"kmeans"``.
    """
    k = model.num_clusters
    if strategy == "nmf":
        if bool((X < 0).any()):
            raise ValueError("init='nmf' needs non-negative data")
        seed = int(torch.randint(2**31 - 1, (1,), generator=generator))
        return _nmf_memberships(X, k, seed)
    if strategy == "kmeans":
        return _kmeans_memberships(X, k, generator)
    raise ValueError(f"init must be one of {STRATEGIES}, got {strategy!r}")


def initial_params(model, X: Tensor, strategy: str, generator: torch.Generator, first: bool = True) -> dict:
    """
    Initial guide parameters by ``strategy``: ``"random"`` (the family's
    ``init_params``), ``"nmf"`` or ``"kmeans"`` (hard sets, then one M-step).

    :param bool first: the first of several initialisations (``"nmf"`` then uses
        its deterministic NNDSVD start, later ones random NMF starts).
    """
    if strategy == "random":
        return model.init_params(X, generator)
    if strategy == "nmf" and first:
        Z = _nmf_memberships(X, model.num_clusters, 0)
    else:
        Z = guess_memberships(model, X, strategy, generator)
    return params_from_memberships(model, X, Z, generator)
