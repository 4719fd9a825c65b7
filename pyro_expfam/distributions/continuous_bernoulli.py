# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""The ContinuousBernoulli family as a Pyro distribution with natural-parameter algebra."""
from __future__ import annotations

import pyro.distributions as dist
import torch
from torch import Tensor
from torch.distributions import constraints

from .exp_family import ExponentialFamily
from .geometric import _log1mexp

__all__ = ["ContinuousBernoulli"]

#: Below this |eta| the log normaliser and its derivatives use Taylor series: truncation error
#: < 2e-15 there, while the closed forms lose at most ~eps/|eta| to cancellation above it.
_TAYLOR = 0.5

# Taylor coefficients of the mean map A'(eta) = 1/2 + sum_k c_k eta^(2k-1),
# c_k = B_2k / (2k)! with the Bernoulli numbers B_2k.
_MEAN_COEFS = (1 / 12, -1 / 720, 1 / 30240, -1 / 1209600, 1 / 47900160, -691 / 1307674368000)


def _poly(e2: Tensor, coefs: tuple[float, ...]) -> Tensor:
    """Horner evaluation of ``sum_k coefs[k] * e2**k``."""
    result = torch.full_like(e2, coefs[-1])
    for c in reversed(coefs[:-1]):
        result = result * e2 + c
    return result


def _cb_log_normalizer_reduced(eta: Tensor) -> Tensor:
    r"""
    :math:`A(\eta) - \max(\eta, 0) = \log(1 - e^{-|\eta|}) - \log|\eta|`
    (a Taylor series near 0): of order :math:`\log|\eta|` even where
    :math:`A` itself is huge, so that ``log_prob`` can subtract the
    :math:`\max(\eta, 0)` part exactly.
    """
    small = eta.abs() < _TAYLOR
    a = torch.where(small, torch.full_like(eta, _TAYLOR), eta.abs())
    direct = _log1mexp(-a) - torch.log(a)
    t = torch.where(small, eta, torch.zeros_like(eta))  # no inf * 0 in the unused branch's gradient
    e2 = t.square()
    coefs = tuple(c / (2 * k) for k, c in enumerate(_MEAN_COEFS, 1))
    taylor = 0.5 * t + e2 * _poly(e2, coefs) - torch.relu(t)  # relu: zero gradient at 0, like log_prob's where
    return torch.where(small, taylor, direct)


def _cb_log_normalizer(eta: Tensor) -> Tensor:
    r"""
    :math:`A(\eta) = \log\int_0^1 e^{\eta x}dx = \log((e^\eta - 1)/\eta)`,
    stable for every real :math:`\eta`:
    :math:`A(\eta) = \max(\eta, 0) + \log(1 - e^{-|\eta|}) - \log|\eta|`,
    and a Taylor series near 0.
    """
    return torch.relu(eta) + _cb_log_normalizer_reduced(eta)


def _cb_mean(eta: Tensor) -> Tensor:
    r""":math:`A'(\eta) = 1/(1 - e^{-\eta}) - 1/\eta`, stable, with a Taylor series near 0."""
    small = eta.abs() < _TAYLOR
    e = torch.where(small, torch.full_like(eta, _TAYLOR), eta)
    direct = -1 / torch.expm1(-e) - 1 / e
    t = torch.where(small, eta, torch.zeros_like(eta))
    taylor = 0.5 + t * _poly(t.square(), _MEAN_COEFS)
    return torch.where(small, taylor, direct)


def _cb_variance(eta: Tensor) -> Tensor:
    r""":math:`A''(\eta) = 1/\eta^2 - 1/(4\sinh^2(\eta/2))`, with a Taylor series near 0."""
    small = eta.abs() < _TAYLOR
    e = torch.where(small, torch.full_like(eta, _TAYLOR), eta)
    direct = 1 / e.square() - 0.25 / torch.sinh(0.5 * e).square()
    coefs = tuple((2 * k - 1) * c for k, c in enumerate(_MEAN_COEFS, 1))
    taylor = _poly(torch.where(small, eta, torch.zeros_like(eta)).square(), coefs)
    return torch.where(small, taylor, direct)


class ContinuousBernoulli(ExponentialFamily, dist.ContinuousBernoulli):
    r"""
    ``ContinuousBernoulli(probs=None, logits=None, lims=(0.499, 0.501))`` on
    ``[0, 1]``, a drop-in replacement for
    :class:`pyro.distributions.ContinuousBernoulli` with natural-parameter
    algebra.

    Natural parameter (torch's): the logit :math:`\eta`, taken from
    ``logits``; :math:`t(x) = x`;
    :math:`A(\eta) = \log((e^\eta - 1)/\eta)`, evaluated stably for every
    real :math:`\eta` (torch's version overflows for :math:`\eta \gtrsim 88`
    in float32); carrier measure :math:`k(x) = 0`.  Mean parameter
    :math:`E[x] = 1/(1 - e^{-\eta}) - 1/\eta`.  ``log_prob``, ``mean`` and
    ``entropy`` are computed from the logits with these stable formulas
    (torch computes them from clamped ``probs``, which loses accuracy for
    :math:`|\eta| \gtrsim 15` in float32).

    The carrier measure is constant, so products are exact: logits add.

    :param probs: parameter in ``(0, 1)``.
    :param logits: real logit of ``probs``.
    :param lims: torch's unstable-region limits (used by sampling and ``cdf``).

    Example::

        >>> import torch
        >>> from pyro_expfam.distributions import ContinuousBernoulli
        >>> d = ContinuousBernoulli(logits=torch.tensor([1.0, -3.0]))
        >>> d.product_along_axis(0).logits
        tensor([-2.])
        >>> ContinuousBernoulli.from_mean_parameters(torch.tensor(0.9)).logits
        tensor(9.9954)
    """

    _natural_param_event_dims = (0,)
    _natural_param_constraints = (constraints.real,)

    @property
    def _natural_params(self) -> tuple[Tensor]:
        return (self.logits,)

    def _log_normalizer(self, eta: Tensor) -> Tensor:
        return _cb_log_normalizer(eta)

    @classmethod
    def _from_natural_params(cls, eta: Tensor, **fixed) -> ContinuousBernoulli:
        return cls(logits=eta, **fixed)

    def log_prob(self, value: Tensor) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        logits = self.logits
        value = torch.as_tensor(value, dtype=logits.dtype, device=logits.device)
        # x eta - A(eta) with the max(eta, 0) part of A subtracted exactly: (x - 1) eta for eta > 0
        # (float32 logits = 1e38 at x = 1 give log(1e38) = 87.5, not 1e38 - 1e38)
        shifted = torch.where(logits > 0, (value - 1) * logits, value * logits)
        return shifted - _cb_log_normalizer_reduced(logits)

    @property
    def mean(self) -> Tensor:
        return _cb_mean(self.logits)

    @property
    def variance(self) -> Tensor:
        return _cb_variance(self.logits)

    def entropy(self) -> Tensor:
        eta = self.logits
        return _cb_log_normalizer(eta) - eta * _cb_mean(eta)

    def cdf(self, value: Tensor) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        eta = self.logits
        value = torch.as_tensor(value, dtype=eta.dtype, device=eta.device)
        eta, value = torch.broadcast_tensors(eta, value)
        zero = eta == 0
        e = torch.where(zero, torch.ones_like(eta), eta)
        x = value.clamp(0, 1)
        # (e^{eta x} - 1) / (e^eta - 1), written without overflow for either sign of eta; each branch
        # gets a safe eta of its own sign so that the unused one has no 0/0 (a NaN gradient through where)
        e_neg = torch.where(e < 0, e, -torch.ones_like(e))
        e_pos = torch.where(e > 0, e, torch.ones_like(e))
        neg = torch.expm1(e_neg * x) / torch.expm1(e_neg)
        pos = torch.exp(e_pos * (x - 1)) * torch.expm1(-e_pos * x) / torch.expm1(-e_pos)
        result = torch.where(zero, x, torch.where(e < 0, neg, pos))
        return torch.where(
            value <= 0, torch.zeros_like(result), torch.where(value >= 1, torch.ones_like(result), result)
        )

    def icdf(self, value: Tensor) -> Tensor:
        eta = self.logits
        value = torch.as_tensor(value, dtype=eta.dtype, device=eta.device)
        eta, u = torch.broadcast_tensors(eta, value)
        zero = eta == 0
        e = torch.where(zero, torch.ones_like(eta), eta)
        # eta < 0: log1p(u (e^eta - 1)) / eta;  eta > 0: 1 + log1p((1 - u)(e^-eta - 1)) / eta
        neg = torch.log1p(u * torch.expm1(e.clamp(max=0))) / e
        pos = 1 + torch.log1p((1 - u) * torch.expm1(-e.clamp(min=0))) / e
        return torch.where(zero, u, torch.where(e < 0, neg, pos)).clamp(0, 1)

    def sufficient_statistics(self, value: Tensor) -> tuple[Tensor]:
        value = torch.as_tensor(value, dtype=self.logits.dtype, device=self.logits.device)
        return (torch.broadcast_tensors(value, self.logits)[0],)

    def log_carrier_measure(self, value: Tensor) -> Tensor:
        value = torch.as_tensor(value, dtype=self.logits.dtype, device=self.logits.device)
        return torch.zeros_like(torch.broadcast_tensors(value, self.logits)[0])

    def mean_parameters(self) -> tuple[Tensor]:
        return (_cb_mean(self.logits),)

    @classmethod
    def from_mean_parameters(cls, mean: Tensor, max_iter: int = 100, **fixed) -> ContinuousBernoulli:
        r"""
        The ContinuousBernoulli with mean ``mean``, by safeguarded Newton
        iterations on :math:`A'(\eta) = \mu` inside the bracket
        :math:`[-1/\mu, 1/(1-\mu)]` (no closed form exists).  Gradients with
        respect to ``mean`` flow through one final implicit Newton step.

        :param Tensor mean: expected value, in the open interval ``(0, 1)``.
        :param int max_iter: maximum number of Newton/bisection iterations.
        :raises ValueError: if ``mean`` lies outside ``(0, 1)``.
        """
        mean = torch.as_tensor(mean)
        if not torch.is_floating_point(mean):
            mean = mean.to(torch.get_default_dtype())
        if not bool(((mean > 0) & (mean < 1)).all()):
            raise ValueError("from_mean_parameters: the mean of a ContinuousBernoulli must lie in (0, 1)")
        eps = torch.finfo(mean.dtype).eps
        with torch.no_grad():
            m = mean.detach()
            lo, hi = -1 / m, 1 / (1 - m)
            eta = hi + lo  # = 1/(1-m) - 1/m, right asymptotics at both ends, inside [lo, hi]
            for _ in range(max_iter):
                f = _cb_mean(eta) - m
                lo = torch.where(f < 0, eta, lo)
                hi = torch.where(f > 0, eta, hi)
                step = f / _cb_variance(eta)
                new = eta - step
                bad = ~((new > lo) & (new < hi)) | ~torch.isfinite(new)
                new = torch.where(bad, 0.5 * (lo + hi), new)
                done = (new - eta).abs() <= 4 * eps * (1 + eta.abs())
                eta = new
                if bool(done.all()):
                    break
        if mean.requires_grad:
            eta = eta - (_cb_mean(eta) - mean) / _cb_variance(eta)
        return cls(logits=eta, **fixed)
