# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""The Beta family as a Pyro distribution with natural-parameter algebra."""
from __future__ import annotations

import pyro.distributions as dist
import torch
from torch import Tensor
from torch.distributions import constraints

from .dirichlet import _dirichlet_from_mean_log
from .exp_family import ExponentialFamily
from .gamma import _float_tensors

__all__ = ["Beta"]


class Beta(ExponentialFamily, dist.Beta):
    r"""
    ``Beta(concentration1, concentration0)``, a drop-in replacement for
    :class:`pyro.distributions.Beta` with natural-parameter algebra.

    Natural parameters (torch's convention): :math:`\eta = (a, b)` (the raw
    concentrations); sufficient statistics :math:`t(x) = (\log x, \log(1-x))`;
    log normaliser :math:`A(a, b) = \log\Gamma(a) + \log\Gamma(b) - \log\Gamma(a+b)`;
    carrier measure :math:`k(x) = -\log x - \log(1-x) = \langle(-1, -1), t(x)\rangle`.

    **Products** are exact after the carrier shift :math:`c = (-1, -1)`:
    :math:`\prod_{i=1}^n \mathrm{Beta}(a_i, b_i) \propto
    \mathrm{Beta}(\sum_i a_i - (n-1), \sum_i b_i - (n-1))`, e.g.
    ``Beta(a1, b1) * Beta(a2, b2) = Beta(a1 + a2 - 1, b1 + b2 - 1)``.  Summing
    the raw concentrations would be wrong.  ``ValueError`` if a resulting
    concentration is not positive (e.g. ``Beta(0.5, 2) * Beta(0.4, 2)``).

    **Mean parameters** :math:`(\psi(a) - \psi(a+b), \psi(b) - \psi(a+b))`;
    the inverse map (maximum likelihood from average sufficient statistics)
    uses the Dirichlet solver with :math:`K = 2`.

    :param concentration1: :math:`a > 0`.
    :param concentration0: :math:`b > 0`.

    Example::

        >>> from pyro_expfam.distributions import Beta, product
        >>> p = product(Beta(2.0, 3.0), Beta(4.0, 1.5))   # the carrier measure shifts the sum by -1
        >>> p.concentration1, p.concentration0
        (tensor(5.), tensor(3.5000))
    """

    _natural_param_event_dims = (0, 0)
    _natural_param_constraints = (constraints.positive, constraints.positive)

    @property
    def _mean_carrier_measure(self) -> Tensor:
        m1, m0 = self.mean_parameters()
        return -(m1 + m0)

    @property
    def _carrier_shift(self) -> tuple[float, float]:
        return (-1.0, -1.0)

    @classmethod
    def _from_natural_params(cls, concentration1: Tensor, concentration0: Tensor, **fixed) -> Beta:
        return cls(concentration1, concentration0, **fixed)

    def sufficient_statistics(self, value: Tensor) -> tuple[Tensor, Tensor]:
        value, _ = torch.broadcast_tensors(value, self.concentration1)
        return torch.log(value), torch.log1p(-value)

    def log_carrier_measure(self, value: Tensor) -> Tensor:
        value, _ = torch.broadcast_tensors(value, self.concentration1)
        return -torch.log(value) - torch.log1p(-value)

    def mean_parameters(self) -> tuple[Tensor, Tensor]:
        a, b = self.concentration1, self.concentration0
        total = torch.digamma(a + b)
        return torch.digamma(a) - total, torch.digamma(b) - total

    @classmethod
    def from_mean_parameters(cls, mean_log_x: Tensor, mean_log1m_x: Tensor, **fixed) -> Beta:
        r"""
        The Beta with :math:`E[\log x] =` ``mean_log_x`` and
        :math:`E[\log(1-x)] =` ``mean_log1m_x``.

        :param Tensor mean_log_x: :math:`E[\log x] < 0`.
        :param Tensor mean_log1m_x: :math:`E[\log(1 - x)] < 0`.
        :raises ValueError: unless ``exp(mean_log_x) + exp(mean_log1m_x) < 1``,
            the mean-parameter space.
        """
        mean_log_x, mean_log1m_x = _float_tensors(mean_log_x, mean_log1m_x)
        if not bool((torch.isfinite(mean_log_x) & torch.isfinite(mean_log1m_x)).all()):
            raise ValueError("from_mean_parameters: mean_log_x and mean_log1m_x must be finite")
        m = torch.stack([mean_log_x, mean_log1m_x], -1)
        if not bool((torch.logsumexp(m, -1) < 0).all()):
            raise ValueError(
                "from_mean_parameters: exp(mean_log_x) + exp(mean_log1m_x) must be < 1 (Jensen's inequality: "
                "E[log x] < log E[x] and E[log(1-x)] < log(1 - E[x])); these mean parameters lie outside the "
                "mean-parameter space"
            )
        alpha = _dirichlet_from_mean_log(m)
        return cls(alpha[..., 0], alpha[..., 1], **fixed)
