# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
r"""
MAP estimation of an overlapping mixture by expectation-maximisation over the
enumerated membership sets.

The MAP objective of :class:`~pyro_expfam.models.overlapping.model.OverlappingMixtureModel`
(the negative of the ``guide="map"`` loss) is

.. math::

    J(\theta) = \log p(\theta) + \sum_n \log \sum_s p(s\mid\pi)\,p(x_n\mid\eta(s)).

**E-step.** With the globals fixed, the posterior over the enumerated sets
:math:`r_{ns}` is exact (a blocked GEMM + softmax).  Only two summaries of it
are kept: the expected number of points in each set :math:`c_s = \sum_n r_{ns}`
and their summed sufficient statistics :math:`T_s = \sum_n r_{ns}\,t(x_n)`
(``S x T`` numbers, independent of ``N``).

**M-step.** The expected complete-data log joint is

.. math::

    Q(\theta) = \log p(\theta) + \sum_s \big(\langle T_s, \eta(s)\rangle
    - c_s A(\eta(s)) + c_s \log p(s\mid\pi)\big),

concave in the natural parameters (``eta(s)`` is linear in them); it is
maximised by a few L-BFGS iterations on the model's real-valued global sites
(the same sites the MAP guide optimises), at a cost ``O(S T)`` per evaluation
whatever ``N``.  Each iteration cannot decrease :math:`J` when the M-step
increases :math:`Q` (generalised EM), and :math:`J` is computed exactly at
every iteration, so restarts can be compared by the value of the objective.

The same M-step works for any list of "sets" with their counts and
statistics, so the stochastic-EM inference of :mod:`.gibbs` (sets sampled per
point instead of enumerated) reuses it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pyro
import torch
from pyro.poutine.messenger import Messenger
from torch import Tensor

from .likelihood import set_log_prior

__all__ = ["EMResult", "log_prior", "map_em", "m_step", "set_summaries"]

#: entries of one (points x sets) block of the E-step
_BLOCK = 2**20


@dataclass
class EMResult:
    """
    Result of :func:`map_em`.

    :ivar dict params: fitted guide parameters (``"<site>.loc"``).
    :ivar list objective: the MAP objective :math:`J` after each iteration.
    :ivar bool converged: whether the relative change fell below ``tol``.
    :ivar int n_iter: number of EM iterations.
    """

    params: dict
    objective: list = field(default_factory=list)
    converged: bool = False
    n_iter: int = 0

    @property
    def final(self) -> float:
        """The last value of the objective (``-inf`` if none)."""
        return self.objective[-1] if self.objective else -math.inf


def log_prior(model, values: dict[str, Tensor]) -> Tensor:
    """
    Log prior density of the global sites of ``model`` at ``values`` (the
    membership prior, the clusters' and, if learned, the background's
    conjugate priors), read off a Pyro trace of the model's own prior statements.

    :param model: an :class:`~pyro_expfam.models.overlapping.model.OverlappingMixtureModel` (set up).
    :param dict values: site name -> value (real-valued sites).
    """
    k = model.num_clusters
    handler = _LogPrior(values)
    with pyro.validation_enabled(False), handler:
        model.prior.sample(k, model.membership_sets)
        model.family.sample(k)
        model.family.sample_background()
    return handler.total


class _LogPrior(Messenger):
    """Condition the sample sites on ``values`` and sum their log densities (a lean condition + trace)."""

    def __init__(self, values: dict[str, Tensor]):
        super().__init__()
        self.values = values
        self.total = 0.0

    def _pyro_sample(self, msg) -> None:
        if msg["name"] in self.values:
            msg["value"] = self.values[msg["name"]]
            msg["is_observed"] = True
        elif not msg["is_observed"]:
            raise KeyError(f"log_prior: no value for the site {msg['name']!r}")

    def _pyro_post_sample(self, msg) -> None:
        self.total = self.total + msg["fn"].log_prob(msg["value"]).sum()


def _globals(model, values):
    log_pi, log1m_pi = model.prior.log_probs(values[model.prior.site])
    eta_k = model.family.flat_clusters(values)
    eta0 = model.family.flat_background(values)
    return log_pi, log1m_pi, eta_k, eta0


def _set_terms(model, values, sets: Tensor) -> tuple[Tensor, Tensor]:
    """``eta(s)`` (``S x T``) and ``c(s) = log p(s | pi) - A(eta(s))`` (``S``) for the rows of ``sets``."""
    log_pi, log1m_pi, eta_k, eta0 = _globals(model, values)
    eta_s = eta0 + sets @ eta_k
    c = set_log_prior(log_pi, log1m_pi, sets, model.renormalize_sets) - model.family.layout.log_normalizer(eta_s)
    return eta_s, c


@torch.no_grad()
def set_summaries(model, values, stats: Tensor, sets: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    r"""
    E-step over the enumerated ``sets``: the expected counts :math:`c_s`, the
    summed statistics :math:`T_s` and the per-point log marginal likelihoods.

    :param stats: augmented statistics ``[t(x), k(x), 1]`` of the data, ``(N, T + 2)``.
    :param sets: 0/1 ``(S, K)``.
    :returns: ``(counts (S,), sums (S, T), log_lik (N,))``.
    """
    t = model.family.layout.dim
    eta_s, c = _set_terms(model, values, sets)
    aug = torch.cat([eta_s, torch.ones_like(c)[:, None], c[:, None]], -1)
    counts = stats.new_zeros(sets.shape[0])
    sums = stats.new_zeros(sets.shape[0], t)
    log_lik = stats.new_empty(stats.shape[0])
    rows = max(1, _BLOCK // sets.shape[0])
    for start in range(0, stats.shape[0], rows):
        block = stats[start : start + rows]
        joint = block @ aug.T
        lse = joint.logsumexp(-1)
        log_lik[start : start + rows] = lse
        r = (joint - lse[:, None]).exp_()
        counts += r.sum(0)
        sums += r.T @ block[:, :t]
    return counts, sums, log_lik


def m_step(model, values: dict[str, Tensor], counts: Tensor, sums: Tensor, sets: Tensor, max_iter: int = 10) -> None:
    """
    Increase :math:`Q(\\theta)` (module docstring) over the real-valued global
    sites ``values`` (updated in place) by L-BFGS.

    :param counts: expected number of points per set ``(S,)``.
    :param sums: summed sufficient statistics per set ``(S, T)``.
    :param sets: 0/1 ``(S, K)``.
    :param int max_iter: L-BFGS iterations.
    """
    leaves = [v.detach().requires_grad_() for v in values.values()]
    names = list(values)
    opt = torch.optim.LBFGS(leaves, max_iter=max_iter, line_search_fn="strong_wolfe", tolerance_change=1e-12)

    def closure():
        opt.zero_grad()
        vals = dict(zip(names, leaves, strict=True))
        eta_s, c = _set_terms(model, vals, sets)
        q = (sums * eta_s).sum() + counts @ c + log_prior(model, vals)
        loss = -q
        loss.backward()
        return loss

    opt.step(closure)
    for name, leaf in zip(names, leaves, strict=True):
        values[name] = leaf.detach()


def map_em(
    model,
    X,
    params: dict | None = None,
    max_iter: int = 200,
    tol: float = 1e-6,
    m_iter: int = 10,
    generator: torch.Generator | None = None,
) -> EMResult:
    """
    MAP fit of ``model`` by EM over its enumerated membership sets (module
    docstring); ``model.params_`` is left untouched (the caller decides).

    :param model: an :class:`~pyro_expfam.models.overlapping.model.OverlappingMixtureModel`.
    :param X: data.
    :param dict params: initial guide parameters (default: ``model.init_params(X, generator)``).
    :param int max_iter: maximum number of EM iterations.
    :param float tol: stop when the objective per point improves by less than ``tol``.
    :param int m_iter: L-BFGS iterations per M-step.
    :param torch.Generator generator: random generator for the default initialisation.
    :returns: :class:`EMResult`.

    Example::

        >>> from pyro_expfam.datasets.overlapping import make_overlapping_bars
        >>> from pyro_expfam.models.overlapping import OverlappingMixtureModel
        >>> data = make_overlapping_bars(num_points=200, seed=0, dtype=torch.float64)
        >>> m = OverlappingMixtureModel("bernoulli", 4)
        >>> res = map_em(m, data.X, generator=torch.Generator().manual_seed(0))
        >>> all(b >= a - 1e-6 * abs(a) for a, b in zip(res.objective, res.objective[1:]))  # monotone
        True
    """
    if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1:
        raise ValueError(f"max_iter must be a positive int, got {max_iter!r}")
    if not (isinstance(tol, int | float) and tol >= 0):
        raise ValueError(f"tol must be a non-negative number, got {tol!r}")
    X = model.setup(X)
    if params is None:
        params = model.init_params(X, generator)
    sites = list(model.global_sites())
    values = {s: params[f"{s}.loc"].detach().clone() for s in sites}
    stats = model.family.layout.statistics(X)
    sets = model.membership_sets.to(stats.dtype)
    n = X.shape[0]
    result = EMResult(params={})
    prev = -math.inf
    for it in range(max_iter):
        counts, sums, log_lik = set_summaries(model, values, stats, sets)
        with torch.no_grad():
            objective = float(log_lik.sum() + log_prior(model, values))
        result.objective.append(objective)
        result.n_iter = it + 1
        if not math.isfinite(objective):
            raise RuntimeError("map_em: the objective became non-finite; check the data and the priors")
        if objective - prev < tol * n:
            result.converged = True
            break
        prev = objective
        m_step(model, values, counts, sums, sets, m_iter)
    result.params = {f"{s}.loc": v for s, v in values.items()}
    if model.guide_type == "mean_field":
        for s, v in values.items():
            result.params[f"{s}.log_scale"] = torch.full_like(v, -3.0)
    return result
