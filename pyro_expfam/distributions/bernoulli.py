# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""The Bernoulli family as a Pyro distribution with natural-parameter algebra."""
from __future__ import annotations

import pyro.distributions as dist
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.distributions import constraints

from .exp_family import ExponentialFamily

__all__ = ["Bernoulli"]


class Bernoulli(ExponentialFamily, dist.Bernoulli):
    r"""
    ``Bernoulli(probs=None, logits=None)``, a drop-in replacement for
    :class:`pyro.distributions.Bernoulli` with natural-parameter algebra.

    Natural parameter: the logit :math:`\eta = \log(p/(1-p))`, always taken
    from ``logits`` (never through ``probs``, which saturate at 1.0 in float32
    for logits >= 17); :math:`t(x) = x`; :math:`A(\eta) = \mathrm{softplus}(\eta)`;
    constant carrier measure, so products add logits exactly.

    :param probs: probability of 1, in ``[0, 1]``.
    :param logits: log-odds of 1.
    """

    _natural_param_event_dims = (0,)
    _natural_param_constraints = (constraints.real,)

    @property
    def _natural_params(self) -> tuple[Tensor]:
        return (self.logits,)

    def _log_normalizer(self, x: Tensor) -> Tensor:
        return F.softplus(x)

    @classmethod
    def _from_natural_params(cls, logits: Tensor, **fixed) -> Bernoulli:
        return cls(logits=logits, **fixed)

    def sufficient_statistics(self, value: Tensor) -> tuple[Tensor]:
        return (torch.broadcast_tensors(value, self.logits)[0],)

    def log_carrier_measure(self, value: Tensor) -> Tensor:
        return torch.zeros_like(torch.broadcast_tensors(value, self.logits)[0])

    def mean_parameters(self) -> tuple[Tensor]:
        return (self.probs,)

    @classmethod
    def from_mean_parameters(cls, mean: Tensor, **fixed) -> Bernoulli:
        mean = torch.as_tensor(mean)
        if not bool(((mean >= 0) & (mean <= 1)).all()):
            raise ValueError("from_mean_parameters: the mean of a Bernoulli must lie in [0, 1]")
        return cls(probs=mean, **fixed)
