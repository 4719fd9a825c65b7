# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""The Laplace family (location fixed) as a Pyro distribution with natural-parameter algebra."""
from __future__ import annotations

import math

import pyro.distributions as dist
import torch
from torch import Tensor
from torch.distributions import constraints

from .exp_family import ExponentialFamily

__all__ = ["Laplace"]

#: The distribution class this family derives from, bound at import (see ``entropy``).
_LaplaceBase = dist.Laplace

_LOG_2 = math.log(2.0)


class Laplace(ExponentialFamily, dist.Laplace):
    r"""
    ``Laplace(loc, scale)``, a drop-in replacement for
    :class:`pyro.distributions.Laplace` with natural-parameter algebra.  It is
    an exponential family with the location :math:`\mu` held **fixed**.

    Natural parameter :math:`\eta = -1/b < 0`; sufficient statistic
    :math:`t(x) = |x - \mu|`; log normaliser :math:`A(\eta) = \log 2 - \log(-\eta)`;
    carrier measure :math:`k(x) = 0`.  Mean parameter :math:`E|x - \mu| = b`.

    Products of members with the same location are exact: inverse scales add,
    :math:`\prod_i \mathrm{Laplace}(\mu, b_i) \propto \mathrm{Laplace}(\mu, 1/\sum_i b_i^{-1})`.
    A product of Laplace densities with different locations is not a Laplace
    density and raises :class:`ValueError`.

    :param loc: location :math:`\mu` (fixed by the family).
    :param scale: scale :math:`b > 0`.

    Example::

        >>> import torch
        >>> from pyro_expfam.distributions import Laplace
        >>> Laplace(torch.tensor([1.0, 1.0]), torch.tensor([1.0, 3.0])).product_along_axis(0).scale
        tensor([0.7500])
        >>> Laplace.from_mean_parameters(torch.tensor(2.0), loc=torch.tensor(0.0)).scale
        tensor(2.)
    """

    _natural_param_event_dims = (0,)
    _natural_param_constraints = (constraints.less_than(0.0),)
    _mean_carrier_measure = 0

    @classmethod
    def _constructor_args(cls, d) -> dict:
        return {"loc": d.loc, "scale": d.scale}

    def _fixed_params(self) -> dict:
        return {"loc": self.loc}

    @property
    def _natural_params(self) -> tuple[Tensor]:
        return (-self.scale.reciprocal(),)

    def _log_normalizer(self, eta: Tensor) -> Tensor:
        return _LOG_2 - torch.log(-eta)

    @classmethod
    def _from_natural_params(cls, eta: Tensor, loc: Tensor | float = 0.0, **fixed) -> Laplace:
        """
        :param Tensor eta: :math:`-1/b`.
        :param loc: the fixed location.
        """
        return cls(loc, -eta.reciprocal(), **fixed)

    def entropy(self) -> Tensor:
        return _LaplaceBase.entropy(self)

    def sufficient_statistics(self, value: Tensor) -> tuple[Tensor]:
        value = torch.as_tensor(value, dtype=self.loc.dtype, device=self.loc.device)
        return ((torch.broadcast_tensors(value, self.loc)[0] - self.loc).abs(),)

    def log_carrier_measure(self, value: Tensor) -> Tensor:
        value = torch.as_tensor(value, dtype=self.loc.dtype, device=self.loc.device)
        return torch.zeros_like(torch.broadcast_tensors(value, self.loc)[0])

    def mean_parameters(self) -> tuple[Tensor]:
        return (self.scale,)

    @classmethod
    def from_mean_parameters(cls, mean_abs_dev: Tensor, loc: Tensor | float = 0.0, **fixed) -> Laplace:
        r"""
        The Laplace with location ``loc`` and :math:`E|x - \mu| =` ``mean_abs_dev``.

        :param Tensor mean_abs_dev: mean absolute deviation from ``loc``, finite and ``> 0``.
        :param loc: the fixed location.
        :raises ValueError: if ``mean_abs_dev`` is not positive and finite.
        """
        mean_abs_dev = torch.as_tensor(mean_abs_dev)
        if not torch.is_floating_point(mean_abs_dev):
            mean_abs_dev = mean_abs_dev.to(torch.get_default_dtype())
        if not bool(((mean_abs_dev > 0) & torch.isfinite(mean_abs_dev)).all()):
            raise ValueError("from_mean_parameters: mean_abs_dev (E|x - loc|) of a Laplace must be finite and > 0")
        return cls(loc, mean_abs_dev, **fixed)
