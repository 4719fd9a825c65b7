# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""The HalfNormal family as a Pyro distribution with natural-parameter algebra."""
from __future__ import annotations

import math

import pyro.distributions as dist
import torch
from torch import Tensor
from torch.distributions import constraints

from .exp_family import ExponentialFamily

__all__ = ["HalfNormal"]

#: The distribution class this family derives from, bound at import (see ``entropy``).
_HalfNormalBase = dist.HalfNormal

_HALF_LOG_HALF_PI = 0.5 * math.log(0.5 * math.pi)


class HalfNormal(ExponentialFamily, dist.HalfNormal):
    r"""
    ``HalfNormal(scale)`` on :math:`[0, \infty)`, a drop-in replacement for
    :class:`pyro.distributions.HalfNormal` with natural-parameter algebra.

    Natural parameter :math:`\eta = -1/(2\sigma^2) < 0`; sufficient statistic
    :math:`t(x) = x^2`; log normaliser
    :math:`A(\eta) = \tfrac12\log(\pi/2) - \tfrac12\log(-2\eta)`; carrier
    measure :math:`k(x) = 0`.  Mean parameter :math:`E[x^2] = \sigma^2`.

    The carrier measure is constant, so products are exact: precisions add,
    :math:`\prod_i \mathrm{HalfNormal}(\sigma_i) \propto \mathrm{HalfNormal}((\sum_i\sigma_i^{-2})^{-1/2})`.

    :param scale: :math:`\sigma > 0`.

    Example::

        >>> import torch
        >>> from pyro_expfam.distributions import HalfNormal
        >>> HalfNormal(torch.tensor([1.0, 1.0])).product_along_axis(0).scale
        tensor([0.7071])
        >>> HalfNormal.from_mean_parameters(torch.tensor(4.0)).scale
        tensor(2.)
    """

    _natural_param_event_dims = (0,)
    _natural_param_constraints = (constraints.less_than(0.0),)
    _mean_carrier_measure = 0

    @classmethod
    def _constructor_args(cls, d) -> dict:
        return {"scale": d.scale}

    @property
    def _natural_params(self) -> tuple[Tensor]:
        return (-0.5 * self.scale.square().reciprocal(),)

    def _log_normalizer(self, eta: Tensor) -> Tensor:
        return _HALF_LOG_HALF_PI - 0.5 * torch.log(-2 * eta)

    @classmethod
    def _from_natural_params(cls, eta: Tensor, **fixed) -> HalfNormal:
        return cls((-2 * eta).rsqrt(), **fixed)

    def entropy(self) -> Tensor:
        return _HalfNormalBase.entropy(self)

    def sufficient_statistics(self, value: Tensor) -> tuple[Tensor]:
        value = torch.as_tensor(value, dtype=self.scale.dtype, device=self.scale.device)
        return (torch.broadcast_tensors(value, self.scale)[0].square(),)

    def log_carrier_measure(self, value: Tensor) -> Tensor:
        value = torch.as_tensor(value, dtype=self.scale.dtype, device=self.scale.device)
        return torch.zeros_like(torch.broadcast_tensors(value, self.scale)[0])

    def mean_parameters(self) -> tuple[Tensor]:
        return (self.scale.square(),)

    @classmethod
    def from_mean_parameters(cls, mean_x2: Tensor, **fixed) -> HalfNormal:
        """
        The HalfNormal with :math:`E[x^2] =` ``mean_x2``.

        :param Tensor mean_x2: second moment, finite and ``> 0``.
        :raises ValueError: if ``mean_x2`` is not positive and finite.
        """
        mean_x2 = torch.as_tensor(mean_x2)
        if not torch.is_floating_point(mean_x2):
            mean_x2 = mean_x2.to(torch.get_default_dtype())
        if not bool(((mean_x2 > 0) & torch.isfinite(mean_x2)).all()):
            raise ValueError("from_mean_parameters: mean_x2 (E[x^2]) of a HalfNormal must be finite and > 0")
        return cls(mean_x2.sqrt(), **fixed)
