# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""The Dirichlet family as a Pyro distribution with natural-parameter algebra."""
from __future__ import annotations

import warnings

import pyro.distributions as dist
import torch
from torch import Tensor
from torch.distributions import constraints

from .exp_family import ExponentialFamily
from .gamma import _MAX_ITER, _converged, _float_tensors, _inv_digamma

__all__ = ["Dirichlet"]


def _check_dirichlet_mean_parameters(mean_log: Tensor, name: str) -> None:
    if mean_log.dim() == 0 or mean_log.shape[-1] < 2:
        raise ValueError(f"from_mean_parameters: {name} must have a last dimension of size >= 2")
    if not bool(torch.isfinite(mean_log).all()):
        raise ValueError(f"from_mean_parameters: {name} must be finite")
    if not bool((torch.logsumexp(mean_log, -1) < 0).all()):
        raise ValueError(
            f"from_mean_parameters: {name} must satisfy sum_k exp({name}_k) < 1 (Jensen's inequality: "
            "E[log x_k] < log E[x_k] and sum_k E[x_k] = 1); these mean parameters lie outside the "
            "mean-parameter space"
        )


def _dirichlet_residual(alpha: Tensor, mean_log: Tensor) -> Tensor:
    return torch.digamma(alpha) - torch.digamma(alpha.sum(-1, keepdim=True)) - mean_log


def _dirichlet_newton_step(alpha: Tensor, mean_log: Tensor) -> Tensor:
    r"""
    Newton step for :math:`\psi(\alpha_k) - \psi(\alpha_0) = m_k`: the Jacobian
    :math:`\mathrm{diag}(\psi'(\alpha_k)) - \psi'(\alpha_0) 1 1^\top` is inverted in
    :math:`O(K)` by the Sherman-Morrison formula (Minka 2000).
    """
    g = _dirichlet_residual(alpha, mean_log)
    q = torch.polygamma(1, alpha)
    c = torch.polygamma(1, alpha.sum(-1, keepdim=True))
    gq = g / q
    b = gq.sum(-1, keepdim=True) / (1.0 / c - (1.0 / q).sum(-1, keepdim=True))
    return gq + b / q


def _dirichlet_from_mean_log(mean_log: Tensor) -> Tensor:
    r"""
    Solve :math:`\psi(\alpha_k) - \psi(\alpha_0) = m_k` (with
    :math:`\alpha_0 = \sum_k\alpha_k`) for the Dirichlet concentration
    :math:`\alpha`, batched over leading dimensions.

    Given the precision :math:`s = \alpha_0`, the equations give
    :math:`\alpha_k(s) = \psi^{-1}(\psi(s) + m_k)` (Minka's fixed point), so
    the problem reduces to the scalar equation
    :math:`h(s) = \sum_k\alpha_k(s) - s = 0`, which has exactly one root:
    :math:`h > 0` below it and :math:`h < 0` above it (:math:`h(s)\approx(K-1)s`
    as :math:`s\to 0` and :math:`h(s)\approx -(1 - \sum_k e^{m_k})s` as
    :math:`s\to\infty`).  It is solved by Newton's method on :math:`s`,
    safeguarded by bisection in :math:`\log s` within the bracket found so far,
    which is robust from tiny (:math:`10^{-3}`) to huge (:math:`10^{4}`)
    concentrations.  A final Newton step on the full system (Minka's
    :math:`O(K)` Hessian inverse) polishes the result and, taken with autograd
    enabled, gives implicit-function gradients with respect to ``mean_log``.

    :param Tensor mean_log: :math:`E[\log x]`, shape ``batch + (K,)``, inside
        the mean-parameter space (checked by the caller).
    """
    with torch.no_grad():
        m = mean_log.detach()
        k = m.shape[-1]
        s = (k - 1) / (-2.0 * torch.logsumexp(m, -1, keepdim=True))  # large-alpha approximation
        lo = torch.zeros_like(s)
        hi = torch.full_like(s, float("inf"))
        polish = 0
        for _ in range(_MAX_ITER):
            alpha = _inv_digamma(torch.digamma(s) + m)
            h = alpha.sum(-1, keepdim=True) - s
            dh = torch.polygamma(1, s) * (1.0 / torch.polygamma(1, alpha)).sum(-1, keepdim=True) - 1.0
            lo = torch.where(h > 0, torch.maximum(lo, s), lo)
            hi = torch.where(h < 0, torch.minimum(hi, s), hi)
            new = s - h / dh
            inside = (new > lo) & (new < hi) & torch.isfinite(new)
            fallback = torch.where(
                torch.isfinite(hi), torch.where(lo > 0, (lo * hi).sqrt(), 0.1 * hi), 10.0 * lo
            )
            new = torch.where(inside, new, fallback)
            step, s = new - s, torch.where(h == 0, s, new)
            if _converged(step, s):
                polish += 1
                if polish == 2:
                    break
        else:
            warnings.warn("Dirichlet concentration solver did not converge", RuntimeWarning, stacklevel=3)
        alpha = _inv_digamma(torch.digamma(s) + m)
    if mean_log.requires_grad:
        alpha = alpha - _dirichlet_newton_step(alpha, mean_log)
    return alpha


class Dirichlet(ExponentialFamily, dist.Dirichlet):
    r"""
    ``Dirichlet(concentration)``, a drop-in replacement for
    :class:`pyro.distributions.Dirichlet` with natural-parameter algebra.

    Natural parameter (torch's convention): :math:`\eta = \alpha` (event
    shape ``(K,)``); sufficient statistics :math:`t(x) = \log x`; log
    normaliser :math:`A(\alpha) = \sum_k\log\Gamma(\alpha_k) - \log\Gamma(\sum_k\alpha_k)`;
    carrier measure :math:`k(x) = -\sum_k\log x_k = \langle -1, t(x)\rangle`.

    **Products** are exact after the carrier shift :math:`c = -1`:
    :math:`\prod_{i=1}^n \mathrm{Dir}(\alpha_i) \propto \mathrm{Dir}(\sum_i\alpha_i - (n - 1))`
    (summing the raw concentrations would be wrong).  ``ValueError`` if a
    resulting concentration is not positive.

    **Mean parameters** :math:`E[\log x_k] = \psi(\alpha_k) - \psi(\alpha_0)`;
    the inverse map (maximum likelihood from average log-proportions) uses
    Newton's method with Minka's :math:`O(K)` Hessian inverse.

    :param concentration: :math:`\alpha`, positive, shape ``batch + (K,)``.

    Example::

        >>> import torch
        >>> from pyro_expfam.distributions import Dirichlet, product
        >>> p = product(Dirichlet(torch.tensor([2.0, 3.0, 1.0])), Dirichlet(torch.tensor([1.0, 1.5, 4.0])))
        >>> p.concentration
        tensor([2.0000, 3.5000, 4.0000])
    """

    _natural_param_event_dims = (1,)
    _natural_param_constraints = (constraints.independent(constraints.positive, 1),)

    @property
    def _mean_carrier_measure(self) -> Tensor:
        return -self.mean_parameters()[0].sum(-1)

    @property
    def _carrier_shift(self) -> tuple[float]:
        return (-1.0,)

    @classmethod
    def _from_natural_params(cls, concentration: Tensor, **fixed) -> Dirichlet:
        return cls(concentration, **fixed)

    def sufficient_statistics(self, value: Tensor) -> tuple[Tensor]:
        value, _ = torch.broadcast_tensors(value, self.concentration)
        return (torch.log(value),)

    def log_carrier_measure(self, value: Tensor) -> Tensor:
        value, _ = torch.broadcast_tensors(value, self.concentration)
        return -torch.log(value).sum(-1)

    def mean_parameters(self) -> tuple[Tensor]:
        alpha = self.concentration
        return (torch.digamma(alpha) - torch.digamma(alpha.sum(-1, keepdim=True)),)

    @classmethod
    def from_mean_parameters(cls, mean_log_x: Tensor, **fixed) -> Dirichlet:
        r"""
        The Dirichlet with :math:`E[\log x] =` ``mean_log_x``.

        :param Tensor mean_log_x: shape ``batch + (K,)``, ``K >= 2``.
        :raises ValueError: unless :math:`\sum_k \exp(m_k) < 1`, the
            mean-parameter space.
        """
        (mean_log_x,) = _float_tensors(mean_log_x)
        _check_dirichlet_mean_parameters(mean_log_x, "mean_log_x")
        return cls(_dirichlet_from_mean_log(mean_log_x), **fixed)
