# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""The Poisson family as a Pyro distribution with natural-parameter algebra."""
from __future__ import annotations

import math

import pyro.distributions as dist
import torch
from torch import Tensor
from torch.distributions import constraints

from .exp_family import ExponentialFamily

__all__ = ["Poisson"]

#: Above this rate the entropy uses its asymptotic series (absolute error < 2e-9 there).
_ASYMPTOTIC_RATE = 100.0


class Poisson(ExponentialFamily, dist.Poisson):
    r"""
    ``Poisson(rate, *, is_sparse=False)``, a drop-in replacement for
    :class:`pyro.distributions.Poisson` with natural-parameter algebra.

    Natural parameter (torch's): :math:`\eta = \log\lambda`; :math:`t(x) = x`;
    :math:`A(\eta) = e^\eta`; carrier measure :math:`k(x) = -\log x!`.
    Mean parameter :math:`E[x] = \lambda`.

    **Products are refused** (:class:`NotImplementedError`): :math:`-\log x!`
    is not in the span of :math:`t(x) = x`, so
    :math:`\prod_{i=1}^m p_i(x) \propto (\prod_i\lambda_i)^x / (x!)^m` is a
    Conway–Maxwell–Poisson distribution with :math:`\nu = m`, not a Poisson
    (e.g. Poisson(3) * Poisson(10) * Poisson(2) is CMP(60, nu=3), not Poisson(60)).

    :param rate: rate :math:`\lambda \ge 0`.
    :param bool is_sparse: Pyro's sparse ``log_prob`` evaluation.

    Example::

        >>> import torch
        >>> from pyro_expfam.distributions import Poisson
        >>> d = Poisson(torch.tensor(4.0))
        >>> Poisson.from_mean_parameters(*d.mean_parameters()).rate
        tensor(4.)
        >>> Poisson(torch.tensor([3.0, 10.0])).product_along_axis(0)
        Traceback (most recent call last):
            ...
        NotImplementedError: ...Conway-Maxwell-Poisson...
    """

    _natural_param_event_dims = (0,)
    _natural_param_constraints = (constraints.real,)
    _product_refusal = (
        "its log carrier measure k(x) = -log x! is not in the span of the sufficient statistic "
        "t(x) = x, so the normalised product of m >= 2 Poisson densities, proportional to "
        "(prod_i rate_i)^x / (x!)^m, is a Conway-Maxwell-Poisson distribution with nu = m, not a Poisson"
    )

    @classmethod
    def _from_natural_params(cls, eta: Tensor, **fixed) -> Poisson:
        return cls(torch.exp(eta), **fixed)

    def sufficient_statistics(self, value: Tensor) -> tuple[Tensor]:
        value = torch.as_tensor(value, dtype=self.rate.dtype, device=self.rate.device)
        return (torch.broadcast_tensors(value, self.rate)[0],)

    def log_carrier_measure(self, value: Tensor) -> Tensor:
        value = torch.as_tensor(value, dtype=self.rate.dtype, device=self.rate.device)
        return -torch.lgamma(torch.broadcast_tensors(value, self.rate)[0] + 1)

    def entropy(self) -> Tensor:
        r"""
        Entropy :math:`-\sum_x p(x)\log p(x)`: an exact sum over a window of
        the support for ``rate <= 100``, the asymptotic series
        :math:`\tfrac12\log(2\pi e\lambda) - \tfrac1{12\lambda} - \tfrac1{24\lambda^2}
        - \tfrac{19}{360\lambda^3}` above (absolute error < 2e-9).
        """
        rate = self.rate
        big = rate > _ASYMPTOTIC_RATE
        r_big = torch.where(big, rate, torch.full_like(rate, _ASYMPTOTIC_RATE))
        h_big = (
            0.5 * torch.log(2 * math.pi * math.e * r_big)
            - 1 / (12 * r_big)
            - 1 / (24 * r_big**2)
            - 19 / (360 * r_big**3)
        )
        r_small = torch.where(big, torch.zeros_like(rate), rate)
        top = float(r_small.detach().max()) if r_small.numel() else 0.0
        num = int(math.ceil(top + 12 * math.sqrt(top) + 30))  # tail mass beyond is < 1e-20
        x = torch.arange(num + 1, dtype=rate.dtype, device=rate.device).reshape((-1,) + (1,) * rate.dim())
        log_p = torch.xlogy(x, r_small) - r_small - torch.lgamma(x + 1)
        h_small = torch.special.entr(log_p.exp()).sum(0)
        return torch.where(big, h_big, h_small)

    @property
    def _mean_carrier_measure(self) -> Tensor:
        # E[k(x)] = E[-log x!] = rate - rate * log(rate) - H, from H = -E[x eta - A + k]
        rate = self.rate
        return rate - torch.xlogy(rate, rate) - self.entropy()

    def mean_parameters(self) -> tuple[Tensor]:
        return (self.rate,)

    @classmethod
    def from_mean_parameters(cls, mean: Tensor, **fixed) -> Poisson:
        """
        The Poisson with mean ``mean``.

        :param Tensor mean: expected count, finite and ``>= 0``.
        :raises ValueError: if ``mean`` is negative or not finite.
        """
        mean = torch.as_tensor(mean)
        if not torch.is_floating_point(mean):
            mean = mean.to(torch.get_default_dtype())
        if not bool(((mean >= 0) & torch.isfinite(mean)).all()):
            raise ValueError("from_mean_parameters: the mean of a Poisson must be finite and >= 0")
        return cls(mean, **fixed)
