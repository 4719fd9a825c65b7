# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""The Weibull family (concentration fixed) as a Pyro distribution with natural-parameter algebra."""
from __future__ import annotations

import pyro.distributions as dist
import torch
from torch import Tensor
from torch.distributions import constraints

from .exp_family import ExponentialFamily

__all__ = ["Weibull"]

#: The distribution class this family derives from, bound at import (see ``entropy``).
_WeibullBase = dist.Weibull

_EULER = 0.5772156649015329


class Weibull(ExponentialFamily, dist.Weibull):
    r"""
    ``Weibull(scale, concentration)`` on :math:`(0, \infty)`, a drop-in
    replacement for :class:`pyro.distributions.Weibull` with natural-parameter
    algebra.  It is an exponential family with the concentration :math:`k`
    held **fixed**.

    Natural parameter :math:`\eta = -\lambda^{-k} < 0`; sufficient statistic
    :math:`t(x) = x^k`; log normaliser :math:`A(\eta) = -\log(-\eta)`; carrier
    measure :math:`k(x) = \log k + (k - 1)\log x`.  Mean parameter
    :math:`E[x^k] = \lambda^k`.

    **Products are refused** (:class:`NotImplementedError`): the carrier
    measure :math:`(k-1)\log x` is not in the span of :math:`t(x) = x^k`, so
    :math:`\prod_{i=1}^n p_i(x) \propto x^{n(k-1)} e^{-x^k\sum_i\lambda_i^{-k}}`
    is a generalised Gamma distribution, not a Weibull (for :math:`k = 1`, use
    :class:`~pyro_expfam.distributions.Exponential`, which is closed under products).

    :param scale: :math:`\lambda > 0`.
    :param concentration: :math:`k > 0` (fixed by the family).

    Example::

        >>> import torch
        >>> from pyro_expfam.distributions import Weibull
        >>> d = Weibull(torch.tensor(2.0), torch.tensor(1.5))
        >>> Weibull.from_mean_parameters(*d.mean_parameters(), concentration=torch.tensor(1.5)).scale
        tensor(2.)
    """

    _natural_param_event_dims = (0,)
    _natural_param_constraints = (constraints.less_than(0.0),)
    _product_refusal = (
        "its log carrier measure log k + (k - 1) log x is not in the span of the sufficient statistic t(x) = x^k, "
        "so the normalised product of n >= 2 Weibull densities, proportional to x^(n (k - 1)) exp(-x^k sum_i "
        "scale_i^-k), is a generalised Gamma distribution, not a Weibull (Exponential, k = 1, is closed under "
        "products)"
    )

    @classmethod
    def _constructor_args(cls, d) -> dict:
        return {"scale": d.scale, "concentration": d.concentration}

    def _fixed_params(self) -> dict:
        return {"concentration": self.concentration}

    @property
    def _natural_params(self) -> tuple[Tensor]:
        return (-self.scale.pow(-self.concentration),)

    def _log_normalizer(self, eta: Tensor) -> Tensor:
        return -torch.log(-eta)

    @property
    def _mean_carrier_measure(self) -> Tensor:
        # E[log k + (k - 1) log x] with E[log x] = log(scale) - euler / k
        k = self.concentration
        return torch.log(k) + (k - 1) * (torch.log(self.scale) - _EULER / k)

    @classmethod
    def _from_natural_params(cls, eta: Tensor, concentration: Tensor | float = 1.0, **fixed) -> Weibull:
        """
        :param Tensor eta: :math:`-\\lambda^{-k}`.
        :param concentration: the fixed concentration :math:`k`.
        """
        k = torch.as_tensor(concentration, dtype=eta.dtype, device=eta.device)
        return cls((-eta).pow(-k.reciprocal()), concentration, **fixed)

    def entropy(self) -> Tensor:
        return _WeibullBase.entropy(self)

    def sufficient_statistics(self, value: Tensor) -> tuple[Tensor]:
        value = torch.as_tensor(value, dtype=self.scale.dtype, device=self.scale.device)
        return (torch.broadcast_tensors(value, self.scale)[0].pow(self.concentration),)

    def log_carrier_measure(self, value: Tensor) -> Tensor:
        value = torch.as_tensor(value, dtype=self.scale.dtype, device=self.scale.device)
        value = torch.broadcast_tensors(value, self.scale)[0]
        k = self.concentration
        return torch.log(k) + (k - 1) * torch.log(value)

    def mean_parameters(self) -> tuple[Tensor]:
        return (self.scale.pow(self.concentration),)

    @classmethod
    def from_mean_parameters(cls, mean_xk: Tensor, concentration: Tensor | float = 1.0, **fixed) -> Weibull:
        r"""
        The Weibull with concentration ``concentration`` and :math:`E[x^k] =` ``mean_xk``.

        :param Tensor mean_xk: :math:`E[x^k]`, finite and ``> 0``.
        :param concentration: the fixed concentration :math:`k`.
        :raises ValueError: if ``mean_xk`` is not positive and finite.
        """
        mean_xk = torch.as_tensor(mean_xk)
        if not torch.is_floating_point(mean_xk):
            mean_xk = mean_xk.to(torch.get_default_dtype())
        if not bool(((mean_xk > 0) & torch.isfinite(mean_xk)).all()):
            raise ValueError("from_mean_parameters: mean_xk (E[x^concentration]) of a Weibull must be finite and > 0")
        k = torch.as_tensor(concentration, dtype=mean_xk.dtype, device=mean_xk.device)
        return cls(mean_xk.pow(k.reciprocal()), concentration, **fixed)



