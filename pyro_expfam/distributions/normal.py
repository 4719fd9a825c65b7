# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""The Normal family as a Pyro distribution with natural-parameter algebra."""
from __future__ import annotations

import math

import pyro.distributions as dist
import torch
from torch import Tensor
from torch.distributions import constraints

from .exp_family import ExponentialFamily

__all__ = ["Normal"]

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


class Normal(ExponentialFamily, dist.Normal):
    r"""
    Univariate Normal ``Normal(loc, scale)``, a drop-in replacement for
    :class:`pyro.distributions.Normal` with natural-parameter algebra.

    Natural parameters (torch's): :math:`\eta = (\mu/\sigma^2, -1/(2\sigma^2))`;
    sufficient statistics :math:`t(x) = (x, x^2)`; constant carrier measure,
    so products are exact: precisions add and precision-weighted means add.

    :param loc: mean.
    :param scale: standard deviation (> 0).

    Example::

        >>> import torch
        >>> from pyro_expfam.distributions import Normal
        >>> d = Normal(torch.zeros(3), torch.ones(3))
        >>> d.product_along_axis(-1).scale   # 1 / sqrt(3)
        tensor([0.5774])
    """

    _natural_param_event_dims = (0, 0)
    _natural_param_constraints = (constraints.real, constraints.less_than(0.0))

    @classmethod
    def _from_natural_params(cls, eta1: Tensor, eta2: Tensor, **fixed) -> Normal:
        precision = -2.0 * eta2
        return cls(eta1 / precision, precision.rsqrt(), **fixed)

    def _product_with_log_normalizer(
        self, dim: int = -1, keepdim: bool = True, weights: Tensor | None = None, log_normalizer: bool = True
    ) -> tuple[Normal, Tensor | None]:
        result, _ = super()._product_with_log_normalizer(dim, keepdim, weights, log_normalizer=False)
        if not log_normalizer:
            return result, None
        # log Z = A(eta_prod) - sum_i w_i A(eta_i) from the ordinary parameters, in float64: the
        # mu^2 / (2 sigma^2) terms of A cancel into -1/2 sum_i lambda_i (mu_i - mu)^2 with
        # lambda_i = w_i / sigma_i^2 (from natural parameters, scales of 1e-20 would leave log Z = 0)
        bdim = self._product_dim(dim)
        loc = self.loc.expand(self.batch_shape).to(torch.float64)
        scale = self.scale.expand(self.batch_shape).to(torch.float64)
        w = self._product_weights(weights, loc)
        lam = w / scale.square()
        total = lam.sum(bdim, keepdim=True)
        mu = (lam * loc).sum(bdim, keepdim=True) / total
        log_norm = (
            -0.5 * (lam * (loc - mu).square()).sum(bdim, keepdim=True)
            - 0.5 * total.log()
            - (w * scale.log()).sum(bdim, keepdim=True)
            + (1 - w.sum(bdim, keepdim=True)) * _HALF_LOG_2PI
        )
        if not keepdim:
            log_norm = log_norm.squeeze(bdim)
        return result, log_norm.to(self.loc.dtype)

    def sufficient_statistics(self, value: Tensor) -> tuple[Tensor, Tensor]:
        value, _ = torch.broadcast_tensors(value, self.loc)
        return value, value.square()

    def log_carrier_measure(self, value: Tensor) -> Tensor:
        return torch.zeros_like(torch.broadcast_tensors(value, self.loc)[0])

    def mean_parameters(self) -> tuple[Tensor, Tensor]:
        return self.loc, self.loc.square() + self.scale.square()

    @classmethod
    def from_mean_parameters(cls, mean_x: Tensor, mean_x2: Tensor, **fixed) -> Normal:
        mean_x, mean_x2 = torch.broadcast_tensors(torch.as_tensor(mean_x), torch.as_tensor(mean_x2))
        var = mean_x2 - mean_x.square()
        if not bool((var > 0).all()):
            raise ValueError("from_mean_parameters: E[x^2] - E[x]^2 must be positive")
        return cls(mean_x, var.sqrt(), **fixed)
