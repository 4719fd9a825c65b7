# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
r"""
Inference whose cost per point is linear in ``K``: Gibbs sampling of the
memberships (as in Heller & Ghahramani 2007) inside a stochastic EM.

For one point with membership vector :math:`z` and natural parameter
:math:`\eta(z) = \eta_0 + \sum_k z_k\eta_k`, the conditional of :math:`z_k`
given the rest has log-odds

.. math::

    \log\frac{\pi_k}{1-\pi_k} + \langle t(x), \eta_k\rangle
    - A(\eta(z^{k\to 1})) + A(\eta(z^{k\to 0})),

a rank-one change of :math:`\eta(z)`: a sweep over the ``K`` clusters costs
:math:`O(K\,T)` per point, whatever the size of the sets (no enumeration).
:func:`gibbs_em` alternates sweeps over all points (vectorised over points)
with the M-step of :mod:`~pyro_expfam.models.overlapping.em` on the sampled sets (their distinct rows, counts
and summed statistics): a stochastic EM.  :func:`gibbs_map_sets` finds
membership sets for new points by sweeps at fixed parameters followed by
greedy coordinate ascent (iterated conditional modes).

Unlike capped enumeration (``max_set_size=m``), which cannot represent sets
larger than ``m``, the sampler reaches sets of any size; it is not exact (it
samples instead of summing) and reports no marginal likelihood.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .em import EMResult, _globals, m_step

__all__ = ["gibbs_em", "gibbs_map_sets", "gibbs_sweep"]


@torch.no_grad()
def gibbs_sweep(
    model, values: dict, stats: Tensor, Z: Tensor, generator: torch.Generator | None = None, greedy: bool = False
) -> Tensor:
    """
    One systematic-scan Gibbs sweep over the ``K`` memberships of every point (in place).

    :param model: an :class:`~pyro_expfam.models.overlapping.model.OverlappingMixtureModel`.
    :param dict values: global site values.
    :param Tensor stats: sufficient statistics ``t(x)`` of the points, ``(N, T)``.
    :param Tensor Z: current 0/1 memberships ``(N, K)``, updated in place.
    :param bool greedy: set each membership to its most probable value instead of sampling (ICM).
    :returns: ``Z``.
    """
    log_pi, log1m_pi, eta_k, eta0 = _globals(model, values)
    layout = model.family.layout
    eta = eta0 + Z @ eta_k  # (N, T)
    data_term = stats @ eta_k.T  # (N, K): <t(x), eta_k>
    for k in range(Z.shape[1]):
        zk = Z[:, k : k + 1]
        eta_off = eta - zk * eta_k[k]
        eta_on = eta_off + eta_k[k]
        logit = (
            (log_pi[k] - log1m_pi[k]) + data_term[:, k] - layout.log_normalizer(eta_on) + layout.log_normalizer(eta_off)
        )
        if greedy:
            new = (logit > 0).to(Z.dtype)
        else:
            u = torch.rand(logit.shape, generator=generator, dtype=logit.dtype).to(logit.device)
            new = (u < torch.sigmoid(logit)).to(Z.dtype)
        Z[:, k] = new
        eta = eta_off + new[:, None] * eta_k[k]
    return Z


def _hard_m_step(model, values, stats, Z, max_iter):
    sets, inverse = torch.unique(Z, dim=0, return_inverse=True)
    counts = torch.zeros(sets.shape[0], dtype=stats.dtype, device=stats.device).index_add_(
        0, inverse, torch.ones_like(stats[:, 0])
    )
    sums = torch.zeros(sets.shape[0], stats.shape[1], dtype=stats.dtype, device=stats.device).index_add_(
        0, inverse, stats
    )
    m_step(model, values, counts, sums, sets, max_iter=max_iter)


def gibbs_em(
    model,
    X,
    Z0: Tensor,
    params: dict | None = None,
    num_iters: int = 30,
    sweeps: int = 1,
    m_iter: int = 10,
    generator: torch.Generator | None = None,
) -> tuple[EMResult, Tensor]:
    """
    Stochastic EM with Gibbs sweeps over the memberships (module docstring).

    :param model: an :class:`~pyro_expfam.models.overlapping.model.OverlappingMixtureModel`
        (any ``K``; its enumerated sets are not used).
    :param X: data.
    :param Tensor Z0: initial 0/1 memberships ``(N, K)`` (e.g. from
        :func:`~pyro_expfam.models.overlapping.init.guess_memberships`).
    :param dict params: initial guide parameters (default: one M-step on ``Z0``).
    :param int num_iters: number of (sweeps, M-step) iterations.
    :param int sweeps: Gibbs sweeps per iteration.
    :param int m_iter: L-BFGS iterations per M-step.
    :param torch.Generator generator: random generator.
    :returns: ``(EMResult, Z)`` with the last sampled memberships.
    """
    if isinstance(num_iters, bool) or not isinstance(num_iters, int) or num_iters < 1:
        raise ValueError(f"num_iters must be a positive int, got {num_iters!r}")
    X = model.setup(X)
    stats = model.family.layout.statistics(X)[:, : model.family.layout.dim]
    Z = Z0.to(dtype=X.dtype, device=X.device).clone()
    if params is None:
        params = model.init_params(X, generator)
        values = {s: params[f"{s}.loc"].clone() for s in model.global_sites()}
        _hard_m_step(model, values, stats, Z, 100)
    else:
        values = {s: params[f"{s}.loc"].clone() for s in model.global_sites()}
    for _ in range(num_iters):
        for _ in range(sweeps):
            gibbs_sweep(model, values, stats, Z, generator)
        _hard_m_step(model, values, stats, Z, m_iter)
    result = EMResult(params={f"{s}.loc": v for s, v in values.items()}, n_iter=num_iters)
    return result, Z


@torch.no_grad()
def gibbs_map_sets(
    model, X, Z0: Tensor | None = None, sweeps: int = 5, generator: torch.Generator | None = None
) -> Tensor:
    """
    Membership sets of (new) points at the model's fitted parameters: ``sweeps``
    Gibbs sweeps from ``Z0`` (default: empty sets), then greedy sweeps (ICM)
    until no membership changes.  Cost ``O(K T)`` per point and sweep.

    :returns: 0/1 tensor ``(N, K)``.
    """
    X = model._check_X(X)
    values = model._site_values()
    stats = model.family.layout.statistics(X)[:, : model.family.layout.dim]
    Z = X.new_zeros(X.shape[0], model.num_clusters) if Z0 is None else Z0.to(X).clone()
    for _ in range(sweeps):
        gibbs_sweep(model, values, stats, Z, generator)
    for _ in range(50):
        before = Z.clone()
        gibbs_sweep(model, values, stats, Z, greedy=True)
        if torch.equal(before, Z):
            break
    return Z
