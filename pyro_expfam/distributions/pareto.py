# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""The Pareto family (scale fixed) as a Pyro distribution with natural-parameter algebra."""
from __future__ import annotations

import pyro.distributions as dist
import torch
from torch import Tensor
from torch.distributions import constraints

from .exp_family import ExponentialFamily

__all__ = ["Pareto"]

#: The distribution class this family derives from, bound at import (see ``entropy``).
_ParetoBase = dist.Pareto


class Pareto(ExponentialFamily, dist.Pareto):
    r"""
    ``Pareto(scale, alpha)`` on :math:`[x_m, \infty)`, a drop-in replacement
    for :class:`pyro.distributions.Pareto` with natural-parameter algebra.  It
    is an exponential family with the scale (minimum) :math:`x_m` held **fixed**.

    Natural parameter :math:`\eta = -(\alpha + 1) < -1`; sufficient statistic
    :math:`t(x) = \log x`; log normaliser
    :math:`A(\eta) = -\log(-\eta - 1) + (\eta + 1)\log x_m`; carrier measure
    :math:`k(x) = 0` on the support.  Mean parameter :math:`E[\log x] = \log x_m + 1/\alpha`.

    Products of members with the same scale are exact:
    :math:`\prod_{i=1}^n \mathrm{Pareto}(x_m, \alpha_i) \propto \mathrm{Pareto}(x_m, \sum_i \alpha_i + n - 1)`.
    Different scales raise :class:`ValueError`.

    :param scale: :math:`x_m > 0` (fixed by the family).
    :param alpha: shape :math:`\alpha > 0`.

    Example::

        >>> import torch
        >>> from pyro_expfam.distributions import Pareto
        >>> Pareto(torch.tensor([1.0, 1.0]), torch.tensor([2.0, 3.0])).product_along_axis(0).alpha
        tensor([6.])
        >>> Pareto.from_mean_parameters(torch.tensor(0.5), scale=torch.tensor(1.0)).alpha
        tensor(2.)
    """

    _natural_param_event_dims = (0,)
    _natural_param_constraints = (constraints.less_than(-1.0),)
    _mean_carrier_measure = 0

    @classmethod
    def _constructor_args(cls, d) -> dict:
        return {"scale": d.scale, "alpha": d.alpha}

    def _fixed_params(self) -> dict:
        return {"scale": self.scale}

    @property
    def _natural_params(self) -> tuple[Tensor]:
        return (-(self.alpha + 1),)

    def _log_normalizer(self, eta: Tensor) -> Tensor:
        return -torch.log(-eta - 1) + (eta + 1) * torch.log(self.scale)

    @classmethod
    def _from_natural_params(cls, eta: Tensor, scale: Tensor | float = 1.0, **fixed) -> Pareto:
        """
        :param Tensor eta: :math:`-(\\alpha + 1)`.
        :param scale: the fixed scale :math:`x_m`.
        """
        return cls(scale, -eta - 1, **fixed)

    def entropy(self) -> Tensor:
        return _ParetoBase.entropy(self)

    def sufficient_statistics(self, value: Tensor) -> tuple[Tensor]:
        value = torch.as_tensor(value, dtype=self.alpha.dtype, device=self.alpha.device)
        return (torch.log(torch.broadcast_tensors(value, self.alpha)[0]),)

    def log_carrier_measure(self, value: Tensor) -> Tensor:
        value = torch.as_tensor(value, dtype=self.alpha.dtype, device=self.alpha.device)
        return torch.zeros_like(torch.broadcast_tensors(value, self.alpha)[0])

    def mean_parameters(self) -> tuple[Tensor]:
        return (torch.log(self.scale) + self.alpha.reciprocal(),)

    @classmethod
    def from_mean_parameters(cls, mean_log_x: Tensor, scale: Tensor | float = 1.0, **fixed) -> Pareto:
        r"""
        The Pareto with scale ``scale`` and :math:`E[\log x] =` ``mean_log_x``.

        :param Tensor mean_log_x: :math:`E[\log x]`, finite and ``> log(scale)``.
        :param scale: the fixed scale :math:`x_m`.
        :raises ValueError: unless ``mean_log_x > log(scale)``.
        """
        mean_log_x = torch.as_tensor(mean_log_x)
        if not torch.is_floating_point(mean_log_x):
            mean_log_x = mean_log_x.to(torch.get_default_dtype())
        gap = mean_log_x - torch.log(torch.as_tensor(scale, dtype=mean_log_x.dtype, device=mean_log_x.device))
        if not bool(((gap > 0) & torch.isfinite(gap)).all()):
            raise ValueError(
                "from_mean_parameters: mean_log_x (E[log x]) of a Pareto must be finite and > log(scale), "
                "since x >= scale"
            )
        return cls(scale, gap.reciprocal(), **fixed)
