# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""The Beta–Geometric posterior predictive distribution."""
from __future__ import annotations

import math

import torch
from pyro.distributions import Beta, Geometric, TorchDistribution
from torch import Tensor
from torch.distributions import constraints
from torch.distributions.utils import broadcast_all

__all__ = ["BetaGeometric"]


def _lbeta(a: Tensor, b: Tensor) -> Tensor:
    return torch.lgamma(a) + torch.lgamma(b) - torch.lgamma(a + b)


class BetaGeometric(TorchDistribution):
    r"""
    Beta-geometric distribution: the number of failures before the first
    success when the success probability is drawn from
    ``Beta(concentration1, concentration0)``,

    .. math::

        P(k) = \int p (1-p)^k\,\mathrm{Beta}(p\mid\alpha,\beta)\,dp
             = \frac{B(\alpha + 1, \beta + k)}{B(\alpha, \beta)},\qquad k = 0, 1, \dots

    It is the posterior predictive of torch's ``Geometric`` likelihood under
    a Beta prior on ``probs``.  The mean is :math:`\beta/(\alpha-1)` for
    :math:`\alpha > 1` (infinite otherwise).

    :param concentration1: :math:`\alpha > 0` (pseudo-count of successes).
    :param concentration0: :math:`\beta > 0` (pseudo-count of failures).
    """

    arg_constraints = {"concentration1": constraints.positive, "concentration0": constraints.positive}
    support = constraints.nonnegative_integer

    def __init__(
        self, concentration1: Tensor | float, concentration0: Tensor | float, validate_args: bool | None = None
    ):
        self.concentration1, self.concentration0 = broadcast_all(concentration1, concentration0)
        super().__init__(self.concentration1.shape, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None) -> BetaGeometric:
        new = self._get_checked_instance(BetaGeometric, _instance)
        batch_shape = torch.Size(batch_shape)
        new.concentration1 = self.concentration1.expand(batch_shape)
        new.concentration0 = self.concentration0.expand(batch_shape)
        super(BetaGeometric, new).__init__(batch_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    def log_prob(self, value: Tensor) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        a, b = self.concentration1, self.concentration0
        return _lbeta(a + 1, b + value) - _lbeta(a, b)

    def sample(self, sample_shape: torch.Size = torch.Size()) -> Tensor:
        with torch.no_grad():
            p = Beta(self.concentration1, self.concentration0).sample(sample_shape)
            # p can round to exactly 0 in float32 for tiny concentration1; Geometric needs p > 0
            p = p.clamp(min=torch.finfo(p.dtype).tiny)
            return Geometric(probs=p).sample()

    @property
    def mean(self) -> Tensor:
        a, b = self.concentration1, self.concentration0
        return torch.where(a > 1, b / (a - 1).clamp(min=torch.finfo(a.dtype).tiny), math.inf)

    @property
    def variance(self) -> Tensor:
        # K = Y - 1 given p, with Y = 1/p: Var K = E[Var(K|p)] + Var(E[K|p]) = 2 E[Y^2] - E[Y] - E[Y]^2
        a, b = self.concentration1, self.concentration0
        tiny = torch.finfo(a.dtype).tiny
        ey = (a + b - 1) / (a - 1).clamp(min=tiny)
        ey2 = (a + b - 1) * (a + b - 2) / ((a - 1) * (a - 2)).clamp(min=tiny)
        return torch.where(a > 2, 2 * ey2 - ey - ey.square(), math.inf)
