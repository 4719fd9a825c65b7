# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""The Chi2 family as a Pyro distribution with natural-parameter algebra."""
from __future__ import annotations

import math

import pyro.distributions as dist
import torch
from torch import Tensor
from torch.distributions import constraints

from .exp_family import ExponentialFamily
from .gamma import Gamma, _float_tensors, _inv_digamma

__all__ = ["Chi2"]

_LOG2 = math.log(2.0)


class Chi2(ExponentialFamily, dist.Chi2):
    r"""
    ``Chi2(df)``, a drop-in replacement for :class:`pyro.distributions.Chi2`
    with natural-parameter algebra.

    A one-parameter family (the rate of the underlying Gamma is fixed at 1/2):
    natural parameter :math:`\eta = \nu/2 - 1`; sufficient statistic
    :math:`t(x) = \log x`; log normaliser
    :math:`A(\eta) = \log\Gamma(\eta + 1) + (\eta + 1)\log 2`; carrier
    measure :math:`k(x) = -x/2`.

    **Products leave the family**: :math:`k(x) = -x/2` is not a multiple of
    :math:`\log x`, so :math:`\prod_i \chi^2(\nu_i) \propto x^{\sum_i(\nu_i/2 - 1)}
    e^{-n x/2}`, a Gamma with rate :math:`n/2`, not a :math:`\chi^2` (unless
    :math:`n = 1`).  :meth:`product_along_axis` (and :func:`product`,
    :func:`weighted_product`, :meth:`conjugate_update`) therefore return the
    correct extended family, a :class:`~pyro_expfam.distributions.Gamma`:

    .. math::

        \prod_i \chi^2(x;\nu_i)^{w_i} \propto
        \mathrm{Gamma}\Big(x;\ \textstyle\sum_i w_i(\nu_i/2 - 1) + 1,\ \sum_i w_i/2\Big).

    **Mean parameter** :math:`E[\log x] = \psi(\nu/2) + \log 2`, inverted by
    Newton's method on the digamma function (any finite value is attainable).

    :param df: degrees of freedom :math:`\nu > 0`.

    Example::

        >>> import torch
        >>> from pyro_expfam.distributions import Chi2, product
        >>> p = product(Chi2(3.0), Chi2(4.0))   # leaves Chi2 (rate 1): a Gamma
        >>> type(p).__name__, p.concentration, p.rate
        ('Gamma', tensor(2.5000), tensor(1.))
        >>> Chi2.from_mean_parameters(torch.tensor(1.0)).df
        tensor(3.6600)
    """

    _natural_param_event_dims = (0,)
    _natural_param_constraints = (constraints.greater_than(-1.0),)

    @property
    def _natural_params(self) -> tuple[Tensor]:
        return (0.5 * self.df - 1,)

    def _log_normalizer(self, eta: Tensor) -> Tensor:
        return torch.lgamma(eta + 1) + (eta + 1) * _LOG2

    @property
    def _mean_carrier_measure(self) -> Tensor:
        return -0.5 * self.df  # E[-x/2]

    @classmethod
    def _from_natural_params(cls, eta: Tensor, **fixed) -> Chi2:
        return cls(2.0 * (eta + 1), **fixed)

    def sufficient_statistics(self, value: Tensor) -> tuple[Tensor]:
        value, _ = torch.broadcast_tensors(value, self.rate)
        return (torch.log(value),)

    def log_carrier_measure(self, value: Tensor) -> Tensor:
        value, _ = torch.broadcast_tensors(value, self.rate)
        return -0.5 * value

    def mean_parameters(self) -> tuple[Tensor]:
        return (torch.digamma(self.concentration) + _LOG2,)

    @classmethod
    def from_mean_parameters(cls, mean_log_x: Tensor, **fixed) -> Chi2:
        r"""
        The :math:`\chi^2` with :math:`E[\log x] =` ``mean_log_x``.

        :param Tensor mean_log_x: :math:`E[\log x]`, finite.
        """
        (mean_log_x,) = _float_tensors(mean_log_x)
        if not bool(torch.isfinite(mean_log_x).all()):
            raise ValueError("from_mean_parameters: mean_log_x must be finite")
        half_df = _inv_digamma(mean_log_x - _LOG2)
        if not bool(((half_df > 0) & torch.isfinite(half_df)).all()):
            raise ValueError("from_mean_parameters: mean_log_x is out of the representable range for this dtype")
        return cls(2.0 * half_df, **fixed)

    def _product_with_log_normalizer(
        self, dim: int = -1, keepdim: bool = True, weights: Tensor | None = None, log_normalizer: bool = True
    ) -> tuple[Gamma, Tensor]:
        # The product leaves the family (carrier -x/2 is not linear in log x); it is the Gamma with
        # natural parameters (sum_i w_i eta_i, -W/2) in Gamma's (alpha - 1, -beta) convention.
        bdim = self._product_dim(dim)
        (eta,) = self._expanded_natural_params()
        w = self._product_weights(weights, eta)
        new_eta = ((w * eta).sum(bdim, keepdim=keepdim), -0.5 * w.sum(bdim, keepdim=keepdim))
        Gamma._check_natural_params(*new_eta, what="natural parameters of the product (a Gamma)")
        result = Gamma._from_natural_params(*new_eta)
        log_norm = result._log_normalizer(*new_eta) - (w * self._log_normalizer(eta)).sum(bdim, keepdim=keepdim)
        return result, log_norm
