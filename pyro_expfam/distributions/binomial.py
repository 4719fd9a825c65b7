# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""The Binomial family as a Pyro distribution with natural-parameter algebra."""
from __future__ import annotations

import pyro.distributions as dist
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.distributions import constraints

from .exp_family import ExponentialFamily

__all__ = ["Binomial"]

#: The distribution class this family derives from, bound at import: ``entropy`` calls it directly, never
#: through the module attribute (which ``patch_torch``-style code may replace by this very class).
_BinomialBase = dist.Binomial


class Binomial(ExponentialFamily, dist.Binomial):
    r"""
    ``Binomial(total_count=1, probs=None, logits=None)``, a drop-in
    replacement for :class:`pyro.distributions.Binomial` with
    natural-parameter algebra.  ``total_count`` :math:`n` is a fixed
    parameter of the family (see :meth:`_fixed_params`), not a natural
    parameter.

    Natural parameter: the logit :math:`\eta = \log(p/(1-p))`, taken from
    ``logits`` (never through ``probs``); :math:`t(x) = x`;
    :math:`A(\eta) = n\,\mathrm{softplus}(\eta)`; carrier measure
    :math:`k(x) = \log\binom{n}{x}`.  Mean parameter :math:`E[x] = n p`.

    **Products are refused** (:class:`NotImplementedError`): the log carrier
    measure :math:`\log\binom{n}{x}` is not in the span of :math:`t(x) = x`,
    so :math:`\prod_{i=1}^m p_i(x) \propto \binom{n}{x}^m
    e^{x\sum_i\eta_i}` is a Conway–Maxwell–Binomial distribution, not a
    Binomial, for :math:`m \ge 2`.

    :param total_count: number of trials :math:`n` (non-negative integer
        valued tensor).
    :param probs: success probability, in ``[0, 1]``.
    :param logits: log-odds of success.

    Example::

        >>> import torch
        >>> from pyro_expfam.distributions import Binomial
        >>> d = Binomial(10, logits=torch.tensor(0.5))
        >>> d.mean_parameters()                           # (10 * sigmoid(0.5),)
        (tensor(6.2246),)
        >>> Binomial.from_mean_parameters(torch.tensor(3.0), total_count=10).probs
        tensor(0.3000)
    """

    _natural_param_event_dims = (0,)
    _natural_param_constraints = (constraints.real,)
    _product_refusal = (
        "its log carrier measure k(x) = log C(n, x) is not in the span of the sufficient "
        "statistic t(x) = x, so the normalised product of m >= 2 Binomial densities, "
        "proportional to C(n, x)^m exp(x * sum_i logit_i), is a Conway-Maxwell-Binomial "
        "distribution, not a Binomial"
    )

    @property
    def _natural_params(self) -> tuple[Tensor]:
        return (self.logits,)

    def _log_normalizer(self, logits: Tensor) -> Tensor:
        return self.total_count * F.softplus(logits)

    def entropy(self) -> Tensor:
        return _BinomialBase.entropy(self)

    def _fixed_params(self) -> dict:
        return {"total_count": self.total_count}

    @classmethod
    def _from_natural_params(cls, logits: Tensor, **fixed) -> Binomial:
        if "total_count" not in fixed:
            raise TypeError("Binomial._from_natural_params needs the fixed parameter total_count")
        return cls(logits=logits, **fixed)

    def sufficient_statistics(self, value: Tensor) -> tuple[Tensor]:
        value = torch.as_tensor(value, dtype=self.logits.dtype, device=self.logits.device)
        return (torch.broadcast_tensors(value, self.logits)[0],)

    def log_carrier_measure(self, value: Tensor) -> Tensor:
        value = torch.as_tensor(value, dtype=self.logits.dtype, device=self.logits.device)
        n = self.total_count
        return torch.lgamma(n + 1) - torch.lgamma(value + 1) - torch.lgamma(n - value + 1)

    def mean_parameters(self) -> tuple[Tensor]:
        return (self.total_count * torch.sigmoid(self.logits),)

    @classmethod
    def from_mean_parameters(cls, mean: Tensor, *, total_count: Tensor | int, **fixed) -> Binomial:
        """
        The Binomial with ``total_count`` trials and expected count ``mean``.

        :param Tensor mean: expected number of successes, in ``[0, total_count]``.
        :param total_count: number of trials (keyword).
        :raises ValueError: if ``mean`` lies outside ``[0, total_count]``.
        """
        mean = torch.as_tensor(mean)
        if not torch.is_floating_point(mean):
            mean = mean.to(torch.get_default_dtype())
        n = torch.as_tensor(total_count, dtype=mean.dtype, device=mean.device)
        if not bool(((n >= 0) & (n == n.floor())).all()):
            raise ValueError("from_mean_parameters: total_count must be a non-negative integer")
        if not bool(((mean >= 0) & (mean <= n)).all()):
            raise ValueError("from_mean_parameters: the mean of a Binomial must lie in [0, total_count]")
        n_safe = torch.where(n > 0, n, torch.ones_like(n))
        probs = torch.where(n > 0, mean / n_safe, torch.full_like(mean, 0.5))
        return cls(total_count=total_count, probs=probs, **fixed)
