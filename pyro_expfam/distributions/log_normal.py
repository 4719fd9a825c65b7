# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""The LogNormal family as a Pyro distribution with natural-parameter algebra."""
from __future__ import annotations

import math

import pyro.distributions as dist
import torch
from torch import Tensor
from torch.distributions import constraints

from .exp_family import ExponentialFamily
from .gamma import _float_tensors

__all__ = ["LogNormal"]

#: The distribution class this family derives from, bound at import: ``entropy`` calls it directly, never
#: through the module attribute (which ``patch_torch``-style code may replace by this very class).
_LogNormalBase = torch.distributions.LogNormal


class LogNormal(ExponentialFamily, dist.LogNormal):
    r"""
    ``LogNormal(loc, scale)`` (``exp`` of a ``Normal(loc, scale)``), a drop-in
    replacement for :class:`pyro.distributions.LogNormal` with
    natural-parameter algebra.

    Natural parameters :math:`\eta = (\mu/\sigma^2, -1/(2\sigma^2))`;
    sufficient statistics :math:`t(x) = (\log x, \log^2 x)`; log normaliser
    (the Normal one) :math:`A(\eta) = -\eta_1^2/(4\eta_2) + \tfrac12\log(-\pi/\eta_2)`;
    carrier measure :math:`k(x) = -\log x = \langle(-1, 0), t(x)\rangle`.

    **Products** are exact after the carrier shift :math:`c = (-1, 0)`:
    because :math:`-\log x` *is* linear in :math:`t(x)`, the normalised product
    of LogNormals is a LogNormal.  With precisions
    :math:`\lambda_i = 1/\sigma_i^2`,

    .. math::

        \prod_{i=1}^n \mathrm{LogNormal}(\mu_i, \sigma_i) \propto
        \mathrm{LogNormal}\Big(\frac{\sum_i\lambda_i\mu_i - (n - 1)}{\sum_i\lambda_i},
        \big(\textstyle\sum_i\lambda_i\big)^{-1/2}\Big),

    i.e. the Normal product of the ``loc`` s shifted by
    :math:`-(n-1)/\sum_i\lambda_i` (not simply the product of the underlying
    Normals).

    **Mean parameters** :math:`(\mu, \mu^2 + \sigma^2)`, inverted in closed form.

    :param loc: mean :math:`\mu` of :math:`\log x`.
    :param scale: standard deviation :math:`\sigma > 0` of :math:`\log x`.

    Example::

        >>> from pyro_expfam.distributions import LogNormal, product
        >>> p = product(LogNormal(0.0, 1.0), LogNormal(1.0, 1.0))
        >>> p.loc, p.scale
        (tensor(0.), tensor(0.7071))
    """

    _natural_param_event_dims = (0, 0)
    _natural_param_constraints = (constraints.real, constraints.less_than(0.0))

    @property
    def _natural_params(self) -> tuple[Tensor, Tensor]:
        precision = self.scale.pow(-2)
        return self.loc * precision, -0.5 * precision

    def _log_normalizer(self, eta1: Tensor, eta2: Tensor) -> Tensor:
        return -0.25 * eta1.square() / eta2 + 0.5 * torch.log(-math.pi / eta2)

    @property
    def _mean_carrier_measure(self) -> Tensor:
        return -self.loc  # E[-log x]

    def entropy(self) -> Tensor:
        # closed form (torch's), rather than the Bregman-divergence default of ExponentialFamily
        return _LogNormalBase.entropy(self)

    @property
    def _carrier_shift(self) -> tuple[float, float]:
        return (-1.0, 0.0)

    @classmethod
    def _from_natural_params(cls, eta1: Tensor, eta2: Tensor, **fixed) -> LogNormal:
        precision = -2.0 * eta2
        return cls(eta1 / precision, precision.rsqrt(), **fixed)

    def sufficient_statistics(self, value: Tensor) -> tuple[Tensor, Tensor]:
        value, _ = torch.broadcast_tensors(value, self.loc)
        log_x = torch.log(value)
        return log_x, log_x.square()

    def log_carrier_measure(self, value: Tensor) -> Tensor:
        value, _ = torch.broadcast_tensors(value, self.loc)
        return -torch.log(value)

    def mean_parameters(self) -> tuple[Tensor, Tensor]:
        return self.loc, self.loc.square() + self.scale.square()

    @classmethod
    def from_mean_parameters(cls, mean_log_x: Tensor, mean_log_x_sq: Tensor, **fixed) -> LogNormal:
        r"""
        The LogNormal with :math:`E[\log x] =` ``mean_log_x`` and
        :math:`E[\log^2 x] =` ``mean_log_x_sq``.

        :param Tensor mean_log_x: :math:`E[\log x]`.
        :param Tensor mean_log_x_sq: :math:`E[(\log x)^2]`.
        :raises ValueError: unless ``mean_log_x_sq - mean_log_x**2 > 0``.
        """
        mean_log_x, mean_log_x_sq = _float_tensors(mean_log_x, mean_log_x_sq)
        if not bool((torch.isfinite(mean_log_x) & torch.isfinite(mean_log_x_sq)).all()):
            raise ValueError("from_mean_parameters: mean_log_x and mean_log_x_sq must be finite")
        var = mean_log_x_sq - mean_log_x.square()
        if not bool((var > 0).all()):
            raise ValueError(
                "from_mean_parameters: mean_log_x_sq - mean_log_x**2 (the variance of log x) must be positive"
            )
        return cls(mean_log_x, var.sqrt(), **fixed)
