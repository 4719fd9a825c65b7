# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""The Geometric family as a Pyro distribution with natural-parameter algebra."""
from __future__ import annotations

import math

import pyro.distributions as dist
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.distributions import constraints

from .exp_family import ExponentialFamily

__all__ = ["Geometric"]

#: The distribution class this family derives from, bound at import: ``entropy`` calls it directly, never
#: through the module attribute (which ``patch_torch``-style code may replace by this very class).
_GeometricBase = dist.Geometric


def _log1mexp(x: Tensor) -> Tensor:
    r"""
    :math:`\log(1 - e^{x})` for :math:`x \le 0`, accurate at both ends
    (Mächler 2012: ``log(-expm1(x))`` near 0, ``log1p(-exp(x))`` far from 0).
    """
    cut = -math.log(2.0)
    near = x > cut
    # each branch sees only its own inputs, so that no NaN gradient leaks through torch.where
    x_near = torch.where(near, x, torch.full_like(x, cut))
    x_far = torch.where(near, torch.full_like(x, cut), x)
    return torch.where(near, torch.log(-torch.expm1(x_near)), torch.log1p(-torch.exp(x_far)))


class Geometric(ExponentialFamily, dist.Geometric):
    r"""
    ``Geometric(probs=None, logits=None)``: the number of failures before the
    first success, on ``{0, 1, 2, ...}``; a drop-in replacement for
    :class:`pyro.distributions.Geometric` with natural-parameter algebra.

    Natural parameter: :math:`\eta = \log(1 - p) = -\mathrm{softplus}(\text{logits}) < 0`,
    computed from ``logits``; :math:`t(x) = x`;
    :math:`A(\eta) = -\log(1 - e^\eta) = \mathrm{softplus}(-\text{logits})`;
    carrier measure :math:`k(x) = 0`.  Mean parameter
    :math:`E[x] = (1-p)/p = e^{-\text{logits}}`.

    The carrier measure is constant, so products are exact:
    :math:`\prod_i p_i(x) \propto \prod_i (1-p_i)^x`, a Geometric with
    :math:`1 - p = \prod_i (1 - p_i)`.

    :param probs: success probability, in ``(0, 1]``.
    :param logits: log-odds of success.

    Example::

        >>> import torch
        >>> from pyro_expfam.distributions import Geometric
        >>> d = Geometric(probs=torch.tensor([0.5, 0.5]))
        >>> d.product_along_axis(0).probs      # 1 - 0.5 * 0.5
        tensor([0.7500])
    """

    _natural_param_event_dims = (0,)
    _natural_param_constraints = (constraints.less_than(0.0),)

    @property
    def _natural_params(self) -> tuple[Tensor]:
        return (-F.softplus(self.logits),)

    def _log_normalizer(self, eta: Tensor) -> Tensor:
        return -_log1mexp(eta)

    @property
    def _mean_carrier_measure(self) -> float:
        return 0.0

    def entropy(self) -> Tensor:
        return _GeometricBase.entropy(self)

    @classmethod
    def _from_natural_params(cls, eta: Tensor, **fixed) -> Geometric:
        # logit p = log p - log(1 - p) = log(1 - e^eta) - eta
        return cls(logits=_log1mexp(eta) - eta, **fixed)

    def sufficient_statistics(self, value: Tensor) -> tuple[Tensor]:
        value = torch.as_tensor(value, dtype=self.logits.dtype, device=self.logits.device)
        return (torch.broadcast_tensors(value, self.logits)[0],)

    def log_carrier_measure(self, value: Tensor) -> Tensor:
        value = torch.as_tensor(value, dtype=self.logits.dtype, device=self.logits.device)
        return torch.zeros_like(torch.broadcast_tensors(value, self.logits)[0])

    def mean_parameters(self) -> tuple[Tensor]:
        return (torch.exp(-self.logits),)

    @classmethod
    def from_mean_parameters(cls, mean: Tensor, **fixed) -> Geometric:
        """
        The Geometric with expected number of failures ``mean``.

        :param Tensor mean: expected value, finite and ``>= 0`` (``0`` gives
            ``probs = 1``).
        :raises ValueError: if ``mean`` is negative or not finite.
        """
        mean = torch.as_tensor(mean)
        if not torch.is_floating_point(mean):
            mean = mean.to(torch.get_default_dtype())
        if not bool(((mean >= 0) & torch.isfinite(mean)).all()):
            raise ValueError("from_mean_parameters: the mean of a Geometric must be finite and >= 0")
        return cls(probs=1.0 / (1.0 + mean), **fixed)
