# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""The Exponential family as a Pyro distribution with natural-parameter algebra."""
from __future__ import annotations

import pyro.distributions as dist
import torch
from torch import Tensor
from torch.distributions import constraints

from .exp_family import ExponentialFamily

__all__ = ["Exponential"]


class Exponential(ExponentialFamily, dist.Exponential):
    r"""
    ``Exponential(rate)``, a drop-in replacement for
    :class:`pyro.distributions.Exponential` with natural-parameter algebra.

    Natural parameter (torch's): :math:`\eta = -\lambda < 0`; :math:`t(x) = x`;
    :math:`A(\eta) = -\log(-\eta)`; carrier measure :math:`k(x) = 0`.
    Mean parameter :math:`E[x] = 1/\lambda`.

    The carrier measure is constant, so products are exact: rates add,
    :math:`\prod_i \lambda_i e^{-\lambda_i x} \propto \mathrm{Exponential}(\sum_i \lambda_i)`.

    :param rate: rate :math:`\lambda > 0`.

    Example::

        >>> import torch
        >>> from pyro_expfam.distributions import Exponential
        >>> d = Exponential(torch.tensor([1.0, 2.0]))
        >>> d.product_along_axis(0).rate      # rates add
        tensor([3.])
    """

    _natural_param_event_dims = (0,)
    _natural_param_constraints = (constraints.less_than(0.0),)

    @classmethod
    def _from_natural_params(cls, eta: Tensor, **fixed) -> Exponential:
        return cls(-eta, **fixed)

    def sufficient_statistics(self, value: Tensor) -> tuple[Tensor]:
        value = torch.as_tensor(value, dtype=self.rate.dtype, device=self.rate.device)
        return (torch.broadcast_tensors(value, self.rate)[0],)

    def log_carrier_measure(self, value: Tensor) -> Tensor:
        value = torch.as_tensor(value, dtype=self.rate.dtype, device=self.rate.device)
        return torch.zeros_like(torch.broadcast_tensors(value, self.rate)[0])

    def mean_parameters(self) -> tuple[Tensor]:
        return (self.rate.reciprocal(),)

    @classmethod
    def from_mean_parameters(cls, mean: Tensor, **fixed) -> Exponential:
        """
        The Exponential with mean ``mean``.

        :param Tensor mean: expected value, finite and ``> 0``.
        :raises ValueError: if ``mean`` is not positive and finite.
        """
        mean = torch.as_tensor(mean)
        if not torch.is_floating_point(mean):
            mean = mean.to(torch.get_default_dtype())
        if not bool(((mean > 0) & torch.isfinite(mean)).all()):
            raise ValueError("from_mean_parameters: the mean of an Exponential must be finite and > 0")
        return cls(mean.reciprocal(), **fixed)
