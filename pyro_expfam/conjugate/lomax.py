# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""The Lomax (Pareto type II) distribution: the Gamma–Exponential posterior predictive."""
from __future__ import annotations

import math

import torch
from pyro.distributions import TorchDistribution
from torch import Tensor
from torch.distributions import constraints
from torch.distributions.utils import broadcast_all

__all__ = ["Lomax"]


class Lomax(TorchDistribution):
    r"""
    Lomax (Pareto type II) distribution with shape ``concentration`` :math:`\alpha`
    and ``scale`` :math:`\beta`:

    .. math::

        p(x) = \frac{\alpha}{\beta}\Big(1 + \frac{x}{\beta}\Big)^{-(\alpha + 1)},\qquad x \ge 0.

    It is the posterior predictive of an Exponential likelihood under a
    ``Gamma(alpha, beta)`` prior on the rate:
    :math:`\int \lambda e^{-\lambda x}\,\mathrm{Gamma}(\lambda\mid\alpha,\beta)\,d\lambda`.
    Equivalently ``Pareto(scale=beta, alpha=alpha)`` shifted left by ``beta``.

    :param concentration: shape :math:`\alpha > 0`.
    :param scale: scale :math:`\beta > 0`.
    """

    arg_constraints = {"concentration": constraints.positive, "scale": constraints.positive}
    support = constraints.nonnegative
    has_rsample = True

    def __init__(self, concentration: Tensor | float, scale: Tensor | float, validate_args: bool | None = None):
        self.concentration, self.scale = broadcast_all(concentration, scale)
        super().__init__(self.concentration.shape, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None) -> Lomax:
        new = self._get_checked_instance(Lomax, _instance)
        batch_shape = torch.Size(batch_shape)
        new.concentration = self.concentration.expand(batch_shape)
        new.scale = self.scale.expand(batch_shape)
        super(Lomax, new).__init__(batch_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    def log_prob(self, value: Tensor) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        a, b = self.concentration, self.scale
        return a.log() - b.log() - (a + 1) * torch.log1p(value / b)

    def cdf(self, value: Tensor) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        return -torch.expm1(-self.concentration * torch.log1p(value / self.scale))

    def icdf(self, value: Tensor) -> Tensor:
        return self.scale * torch.expm1(-torch.log1p(-value) / self.concentration)

    def rsample(self, sample_shape: torch.Size = torch.Size()) -> Tensor:
        shape = self._extended_shape(sample_shape)
        u = torch.rand(shape, dtype=self.scale.dtype, device=self.scale.device)
        # 1 - u is in (0, 1]; -log(1 - u) ~ Exponential(1) and x = scale * expm1(E / concentration)
        e = -torch.log1p(-u)
        return self.scale * torch.expm1(e / self.concentration)

    @property
    def mean(self) -> Tensor:
        a, b = self.concentration, self.scale
        return torch.where(a > 1, b / (a - 1).clamp(min=torch.finfo(a.dtype).tiny), math.inf)

    @property
    def mode(self) -> Tensor:
        return torch.zeros_like(self.scale)

    @property
    def variance(self) -> Tensor:
        a, b = self.concentration, self.scale
        var = b.square() * a / ((a - 1).square() * (a - 2)).clamp(min=torch.finfo(a.dtype).tiny)
        return torch.where(a > 2, var, math.inf)

    def entropy(self) -> Tensor:
        a = self.concentration
        return self.scale.log() - a.log() + 1 / a + 1
