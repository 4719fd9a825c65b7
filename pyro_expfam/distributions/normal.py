# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""The Normal family as a Pyro distribution with natural-parameter algebra."""
from __future__ import annotations

import pyro.distributions as dist
import torch
from torch import Tensor
from torch.distributions import constraints

from .exp_family import ExponentialFamily

__all__ = ["Normal"]


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
