# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
r"""
The Bayes oracle of a planted overlapping data set: the exact posterior over
all :math:`2^K` membership sets of every point, computed from the **true**
parameters and the true prior over sets of the generator that made the data
(:mod:`pyro_expfam.datasets.overlapping`).  Its MAP sets give the best
membership accuracy any method can expect on average; a fit is judged by how
close it comes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from .evaluation import membership_accuracy
from .likelihood import MAX_EXACT_CLUSTERS, membership_sets

__all__ = ["OracleResult", "bayes_oracle"]


@dataclass
class OracleResult:
    """
    :ivar Tensor map_sets: most probable set of each point, 0/1 ``(N, K)``.
    :ivar Tensor membership_probs: :math:`P(z_{ik}=1\\mid x_i)` under the true model, ``(N, K)``.
    :ivar Tensor log_lik: true log marginal likelihood of each point, ``(N,)``.
    :ivar float accuracy: membership accuracy of ``map_sets`` against the planted ``Z``.
    """

    map_sets: Tensor
    membership_probs: Tensor
    log_lik: Tensor
    accuracy: float


def _size_log_prior(sets: Tensor, size_probs: Tensor) -> Tensor:
    k = sets.shape[1]
    probs = torch.zeros(k + 1, dtype=torch.float64)
    probs[: min(k + 1, size_probs.numel())] = size_probs[: k + 1].to(torch.float64)
    probs = probs / probs.sum()
    sizes = sets.sum(-1).long()
    counts = torch.tensor([math.comb(k, j) for j in range(k + 1)], dtype=torch.float64)
    return (probs / counts).log()[sizes]


def _bernoulli_log_lik(X: Tensor, p1: Tensor) -> Tensor:
    p1 = p1.clamp(1e-12, 1 - 1e-12)
    return X @ p1.log().T + (1 - X) @ (-p1).log1p().T


def _gaussian_log_lik(X: Tensor, sets: Tensor, loc: Tensor, precision: Tensor) -> Tensor:
    d = X.shape[1]
    prec_k = torch.diag_embed(precision) if precision.dim() == 2 else precision
    prec = torch.einsum("sk,kij->sij", sets, prec_k)
    eta = torch.einsum("sk,kij,kj->si", sets, prec_k, loc)
    empty = sets.sum(-1) == 0
    prec = prec + empty[:, None, None] * torch.eye(d, dtype=prec.dtype)  # empty sets have zero prior anyway
    chol = torch.linalg.cholesky(prec)
    mean = torch.cholesky_solve(eta.unsqueeze(-1), chol).squeeze(-1)
    diff = X[:, None, :] - mean[None]  # (N, S, D)
    maha = (diff.unsqueeze(-2) @ prec[None] @ diff.unsqueeze(-1)).squeeze(-1).squeeze(-1)
    logdet = 2 * chol.diagonal(dim1=-2, dim2=-1).log().sum(-1)
    return -0.5 * maha + 0.5 * logdet - 0.5 * d * math.log(2 * math.pi)


def bayes_oracle(data, X=None) -> OracleResult:
    """
    Exact posterior over membership sets under the true parameters of a planted
    data set (all ``2^K`` sets; ``K <= 16``).

    :param data: an :class:`~pyro_expfam.datasets.overlapping.OverlappingData`
        made by one of the generators of :mod:`pyro_expfam.datasets.overlapping`.
    :param X: points to score (default ``data.X``; then ``accuracy`` is against ``data.Z``).
    :returns: :class:`OracleResult`.

    Example::

        >>> from pyro_expfam.datasets.overlapping import make_noisy_or
        >>> data = make_noisy_or(num_points=300, seed=0)
        >>> bayes_oracle(data).accuracy > 0.98
        True
    """
    params = data.params
    kind = params.get("kind")
    known = ("noisy_or", "bernoulli_product", "blocks", "gaussian_diag", "gaussian_full", "gaussian_stripes")
    if kind not in known:
        raise ValueError(f"bayes_oracle does not know data of kind {kind!r} (made by which generator?)")
    k = data.Z.shape[1]
    if k > MAX_EXACT_CLUSTERS:
        raise ValueError(f"the oracle enumerates all 2^K sets; K = {k} > {MAX_EXACT_CLUSTERS}")
    own = X is None
    X = torch.as_tensor(data.X if own else X).detach().cpu().to(torch.float64)
    sets = membership_sets(k, dtype=torch.float64)

    def p(name):
        return torch.as_tensor(params[name]).detach().cpu().to(torch.float64)

    if kind == "gaussian_stripes":
        grid = k // 2
        ok = (sets[:, :grid].sum(-1) == 1) & (sets[:, grid:].sum(-1) == 1)
        log_prior = torch.where(ok, -math.log(grid * grid), -math.inf)
    else:
        log_prior = _size_log_prior(sets, p("set_size_probs"))
    if kind == "noisy_or":
        f = float(params["flip"])
        on = (sets @ p("masks")).clamp(max=1.0)
        log_lik = _bernoulli_log_lik(X, on * (1 - f) + (1 - on) * f)
    elif kind == "bernoulli_product":
        f = float(params.get("flip", 0.0))
        q = torch.sigmoid(sets @ p("logits"))
        log_lik = _bernoulli_log_lik(X, q * (1 - f) + (1 - q) * f)
    elif kind == "blocks":
        log_lik = _bernoulli_log_lik(X, (sets @ p("probs")).clamp(1e-6, 1 - 1e-6))
    elif kind in ("gaussian_diag", "gaussian_full", "gaussian_stripes"):
        log_lik = _gaussian_log_lik(X, sets, p("loc"), p("precision"))
    else:
        raise ValueError(f"bayes_oracle does not know data of kind {kind!r} (made by which generator?)")
    joint = log_lik + log_prior
    lse = joint.logsumexp(-1)
    post = (joint - lse[:, None]).exp()
    map_sets = sets[joint.argmax(-1)]
    accuracy = membership_accuracy(data.Z, map_sets) if own else float("nan")
    return OracleResult(map_sets, post @ sets, lse, accuracy)
