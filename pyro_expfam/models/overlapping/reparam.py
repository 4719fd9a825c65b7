# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""
Real-valued reparametrisations of conjugate priors: :class:`LogGamma` (the log
of a Gamma variable) and :class:`LogitBeta` (the logit of a Beta variable).
Point estimates on these sites are MAP estimates that exist for every shape
parameter, and a mean-field guide is a Normal per site.
"""

from __future__ import annotations

import pyro.distributions as dist
import torch
import torch.nn.functional as F
from torch.distributions import constraints

__all__ = ["LogGamma", "LogitBeta"]


class LogGamma(dist.TorchDistribution):
    r"""
    Distribution of :math:`\log g` for :math:`g \sim \mathrm{Gamma}(a, b)`
    (shape ``concentration``, ``rate``): density
    :math:`b^a e^{a y - b e^y} / \Gamma(a)` on the real line.

    Used to put conjugate Gamma/Wishart/Dirichlet priors on real-valued sites, so
    point estimates are well defined for every shape (the mode is
    :math:`\log(a/b)`).

    :param concentration: shape ``a > 0``.
    :param rate: rate ``b > 0``.
    """

    arg_constraints = {"concentration": constraints.positive, "rate": constraints.positive}
    support = constraints.real
    has_rsample = True

    def __init__(self, concentration, rate, validate_args=None):
        self.concentration, self.rate = torch.distributions.utils.broadcast_all(concentration, rate)
        super().__init__(self.concentration.shape, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(LogGamma, _instance)
        batch_shape = torch.Size(batch_shape)
        new.concentration = self.concentration.expand(batch_shape)
        new.rate = self.rate.expand(batch_shape)
        super(LogGamma, new).__init__(batch_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    def rsample(self, sample_shape=torch.Size()):
        shape = self._extended_shape(sample_shape)
        g = torch._standard_gamma(self.concentration.expand(shape))
        tiny = torch.finfo(g.dtype).tiny
        return g.clamp(min=tiny).log() - self.rate.log()

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        a, b = self.concentration, self.rate
        return a * value - b * value.exp() + a * b.log() - torch.lgamma(a)

    @property
    def mean(self):
        return torch.digamma(self.concentration) - self.rate.log()

    @property
    def variance(self):
        return torch.polygamma(1, self.concentration)


class LogitBeta(dist.TorchDistribution):
    r"""
    Distribution of :math:`\operatorname{logit} v` for
    :math:`v \sim \mathrm{Beta}(a, b)`: density
    :math:`\sigma(y)^a\sigma(-y)^b / B(a, b)` on the real line (computed with
    ``logsigmoid``, so it never saturates).  The mode is :math:`\log(a/b)`,
    finite for every ``a, b > 0``.

    :param concentration1: ``a > 0``.
    :param concentration0: ``b > 0``.
    """

    arg_constraints = {"concentration1": constraints.positive, "concentration0": constraints.positive}
    support = constraints.real
    has_rsample = True

    def __init__(self, concentration1, concentration0, validate_args=None):
        self.concentration1, self.concentration0 = torch.distributions.utils.broadcast_all(
            concentration1, concentration0
        )
        super().__init__(self.concentration1.shape, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(LogitBeta, _instance)
        batch_shape = torch.Size(batch_shape)
        new.concentration1 = self.concentration1.expand(batch_shape)
        new.concentration0 = self.concentration0.expand(batch_shape)
        super(LogitBeta, new).__init__(batch_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    def rsample(self, sample_shape=torch.Size()):
        shape = self._extended_shape(sample_shape)
        one = torch.ones((), dtype=self.concentration1.dtype, device=self.concentration1.device)
        u1 = LogGamma(self.concentration1.expand(shape), one).rsample()
        u0 = LogGamma(self.concentration0.expand(shape), one).rsample()
        return u1 - u0

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        a, b = self.concentration1, self.concentration0
        log_beta = torch.lgamma(a) + torch.lgamma(b) - torch.lgamma(a + b)
        return a * F.logsigmoid(value) + b * F.logsigmoid(-value) - log_beta
