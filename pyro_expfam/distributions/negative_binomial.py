# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""The NegativeBinomial family (total_count fixed) as a Pyro distribution with natural-parameter algebra."""
from __future__ import annotations

import pyro.distributions as dist
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.distributions import constraints

from .exp_family import ExponentialFamily
from .geometric import _log1mexp

__all__ = ["NegativeBinomial"]

#: The distribution class this family derives from, bound at import (see ``entropy``).
_NegativeBinomialBase = dist.NegativeBinomial


class NegativeBinomial(ExponentialFamily, dist.NegativeBinomial):
    r"""
    ``NegativeBinomial(total_count, probs=None, logits=None)``: the number of
    successes (probability ``probs`` each) before ``total_count`` failures, on
    ``{0, 1, 2, ...}``; a drop-in replacement for
    :class:`pyro.distributions.NegativeBinomial` with natural-parameter
    algebra.  It is an exponential family with ``total_count`` :math:`r` held **fixed**.

    Natural parameter :math:`\eta = \log p = \mathrm{logsigmoid}(\text{logits}) < 0`;
    sufficient statistic :math:`t(x) = x`; log normaliser
    :math:`A(\eta) = -r\log(1 - e^\eta)`; carrier measure
    :math:`k(x) = \log\Gamma(r + x) - \log\Gamma(x + 1) - \log\Gamma(r)`.
    Mean parameter :math:`E[x] = r\,e^{\text{logits}}`.

    **Products are refused** (:class:`NotImplementedError`): the carrier
    measure is not in the span of :math:`t(x) = x` (as for Poisson and Binomial).

    :param total_count: :math:`r > 0` (fixed by the family).
    :param probs: success probability in ``[0, 1)``.
    :param logits: log-odds of success.

    Example::

        >>> import torch
        >>> from pyro_expfam.distributions import NegativeBinomial
        >>> d = NegativeBinomial(3.0, logits=torch.tensor(0.5))
        >>> d.mean_parameters()[0]
        tensor(4.9462)
        >>> NegativeBinomial.from_mean_parameters(torch.tensor(3.0), total_count=3.0).probs
        tensor(0.5000)
    """

    _natural_param_event_dims = (0,)
    _natural_param_constraints = (constraints.less_than(0.0),)
    _product_refusal = (
        "its log carrier measure log Gamma(r + x) - log Gamma(x + 1) - log Gamma(r) is not in the span of the "
        "sufficient statistic t(x) = x, so the normalised product of two or more NegativeBinomial densities "
        "is not a NegativeBinomial"
    )

    @classmethod
    def _constructor_args(cls, d) -> dict:
        if "logits" in d.__dict__:
            return {"total_count": d.total_count, "logits": d.logits}
        return {"total_count": d.total_count, "probs": d.probs}

    def _fixed_params(self) -> dict:
        return {"total_count": self.total_count}

    @property
    def _natural_params(self) -> tuple[Tensor]:
        return (F.logsigmoid(self.logits),)

    def _log_normalizer(self, eta: Tensor) -> Tensor:
        return -self.total_count * _log1mexp(eta)

    @classmethod
    def _from_natural_params(cls, eta: Tensor, total_count: Tensor | float = 1.0, **fixed) -> NegativeBinomial:
        """
        :param Tensor eta: :math:`\\log p < 0`.
        :param total_count: the fixed total count :math:`r`.
        """
        return cls(total_count, logits=eta - _log1mexp(eta), **fixed)

    def entropy(self) -> Tensor:
        return _NegativeBinomialBase.entropy(self)

    def sufficient_statistics(self, value: Tensor) -> tuple[Tensor]:
        value = torch.as_tensor(value, dtype=self.logits.dtype, device=self.logits.device)
        return (torch.broadcast_tensors(value, self.logits)[0],)

    def log_carrier_measure(self, value: Tensor) -> Tensor:
        value = torch.as_tensor(value, dtype=self.logits.dtype, device=self.logits.device)
        value, r = torch.broadcast_tensors(value, self.total_count)
        return torch.lgamma(r + value) - torch.lgamma(value + 1) - torch.lgamma(r)

    def mean_parameters(self) -> tuple[Tensor]:
        return (self.total_count * self.logits.exp(),)

    @classmethod
    def from_mean_parameters(cls, mean: Tensor, total_count: Tensor | float = 1.0, **fixed) -> NegativeBinomial:
        """
        The NegativeBinomial with total count ``total_count`` and mean ``mean``.

        :param Tensor mean: expected count, finite and ``> 0``.
        :param total_count: the fixed total count :math:`r > 0`.
        :raises ValueError: if ``mean`` is not positive and finite.
        """
        mean = torch.as_tensor(mean)
        if not torch.is_floating_point(mean):
            mean = mean.to(torch.get_default_dtype())
        if not bool(((mean > 0) & torch.isfinite(mean)).all()):
            raise ValueError("from_mean_parameters: the mean of a NegativeBinomial must be finite and > 0")
        r = torch.as_tensor(total_count, dtype=mean.dtype, device=mean.device)
        return cls(total_count, logits=torch.log(mean) - torch.log(r), **fixed)
