# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""The InverseGamma family as a Pyro distribution with natural-parameter algebra."""
from __future__ import annotations

import pyro.distributions as dist
import torch
from torch import Tensor
from torch.distributions import constraints

from .exp_family import ExponentialFamily
from .gamma import _check_gamma_mean_parameters, _float_tensors, _gamma_shape

__all__ = ["InverseGamma"]

#: The distribution class this family derives from, bound at import: ``entropy`` calls it directly, never
#: through the module attribute (which ``patch_torch``-style code may replace by this very class).
_InverseGammaBase = torch.distributions.InverseGamma


class InverseGamma(ExponentialFamily, dist.InverseGamma):
    r"""
    ``InverseGamma(concentration, rate)``, a drop-in replacement for
    :class:`pyro.distributions.InverseGamma` (``1/X`` for
    ``X ~ Gamma(concentration, rate)``) with natural-parameter algebra.

    Natural parameters :math:`\eta = (-(\alpha + 1), -\beta)`; sufficient
    statistics :math:`t(x) = (\log x, 1/x)`; log normaliser
    :math:`A(\eta) = \log\Gamma(-\eta_1 - 1) + (\eta_1 + 1)\log(-\eta_2)`
    :math:`= \log\Gamma(\alpha) - \alpha\log\beta`; carrier measure
    :math:`k(x) = 0`.

    **Products** are exact: :math:`\prod_{i=1}^n \mathrm{InvGamma}(\alpha_i, \beta_i)
    \propto \mathrm{InvGamma}(\sum_i\alpha_i + n - 1, \sum_i\beta_i)`.

    **Mean parameters** :math:`(E[\log x], E[1/x]) = (\log\beta - \psi(\alpha),
    \alpha/\beta)`; the inverse map is the Gamma one applied to :math:`1/x`.

    :param concentration: shape :math:`\alpha > 0`.
    :param rate: rate (scale of :math:`x`) :math:`\beta > 0`.

    Example::

        >>> from pyro_expfam.distributions import InverseGamma, product
        >>> p = product(InverseGamma(2.0, 1.0), InverseGamma(3.0, 2.0))   # shapes add plus 1, scales add
        >>> p.concentration, p.rate
        (tensor(6.), tensor(3.))
    """

    _natural_param_event_dims = (0, 0)
    _natural_param_constraints = (constraints.less_than(-1.0), constraints.less_than(0.0))
    _mean_carrier_measure = 0

    @property
    def _natural_params(self) -> tuple[Tensor, Tensor]:
        return -(self.concentration + 1), -self.rate

    def _log_normalizer(self, eta1: Tensor, eta2: Tensor) -> Tensor:
        return torch.lgamma(-eta1 - 1) + (eta1 + 1) * torch.log(-eta2)

    def entropy(self) -> Tensor:
        # closed form (torch's), rather than the Bregman-divergence default of ExponentialFamily
        return _InverseGammaBase.entropy(self)

    @classmethod
    def _from_natural_params(cls, eta1: Tensor, eta2: Tensor, **fixed) -> InverseGamma:
        return cls(-eta1 - 1, -eta2, **fixed)

    def sufficient_statistics(self, value: Tensor) -> tuple[Tensor, Tensor]:
        value, _ = torch.broadcast_tensors(value, self.rate)
        return torch.log(value), value.reciprocal()

    def log_carrier_measure(self, value: Tensor) -> Tensor:
        return torch.zeros_like(torch.broadcast_tensors(value, self.rate)[0])

    def mean_parameters(self) -> tuple[Tensor, Tensor]:
        return torch.log(self.rate) - torch.digamma(self.concentration), self.concentration / self.rate

    @classmethod
    def from_mean_parameters(cls, mean_log_x: Tensor, mean_inv_x: Tensor, **fixed) -> InverseGamma:
        r"""
        The inverse Gamma with :math:`E[\log x] =` ``mean_log_x`` and
        :math:`E[1/x] =` ``mean_inv_x``.

        :param Tensor mean_log_x: :math:`E[\log x]`.
        :param Tensor mean_inv_x: :math:`E[1/x] > 0`.
        :raises ValueError: unless ``-mean_log_x < log(mean_inv_x)``
            (Jensen's inequality for :math:`y = 1/x`).
        """
        mean_log_x, mean_inv_x = _float_tensors(mean_log_x, mean_inv_x)
        _check_gamma_mean_parameters(-mean_log_x, mean_inv_x, ("-mean_log_x", "mean_inv_x"))
        concentration = _gamma_shape(-mean_log_x, mean_inv_x)
        return cls(concentration, concentration / mean_inv_x, **fixed)
