# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""The Multinomial family as a Pyro distribution with natural-parameter algebra."""
from __future__ import annotations

import numbers

import pyro.distributions as dist
import torch
from torch import Tensor

from .categorical import _check_simplex, normalizable_logits
from .exp_family import ExponentialFamily

__all__ = ["Multinomial"]


class Multinomial(ExponentialFamily, dist.Multinomial):
    r"""
    ``Multinomial(total_count=1, probs=None, logits=None)``, counts of
    ``total_count`` draws over ``K`` categories; a drop-in replacement for
    :class:`pyro.distributions.Multinomial` with natural-parameter algebra.
    ``total_count`` :math:`n` (a Python int, as in torch) is a fixed
    parameter of the family, not a natural parameter.

    Natural parameter: the (normalised) logit vector :math:`\eta = \log p`,
    event shape ``(K,)``, taken from ``logits``; :math:`t(x) = x` (the count
    vector); :math:`A(\eta) = n \operatorname{logsumexp}_k \eta_k`; carrier
    measure :math:`k(x) = \log n! - \sum_k \log x_k!`.  Mean parameters
    :math:`E[x] = n p`.

    **Products are refused** (:class:`NotImplementedError`): the log
    multinomial coefficient is not in the span of :math:`t(x) = x`, so the
    normalised product of :math:`m \ge 2` Multinomial densities (the
    coefficient raised to the power :math:`m`) is not a Multinomial.

    :param int total_count: number of draws.
    :param probs: category probabilities, shape ``batch_shape + (K,)``.
    :param logits: category log-probabilities (unnormalised).

    Example::

        >>> import torch
        >>> from pyro_expfam.distributions import Multinomial
        >>> d = Multinomial(4, probs=torch.tensor([0.25, 0.75]))
        >>> d.mean_parameters()
        (tensor([1., 3.]),)
    """

    _natural_param_event_dims = (1,)
    _natural_param_constraints = (normalizable_logits,)
    _product_refusal = (
        "its log carrier measure k(x) = log(n! / prod_k x_k!) is not in the span of the "
        "sufficient statistic t(x) = x, so the normalised product of m >= 2 Multinomial "
        "densities, proportional to (n! / prod_k x_k!)^m exp(<sum_i eta_i, x>), is a "
        "Conway-Maxwell-Multinomial distribution, not a Multinomial"
    )

    @property
    def _natural_params(self) -> tuple[Tensor]:
        return (self.logits,)

    def _log_normalizer(self, logits: Tensor) -> Tensor:
        return self.total_count * torch.logsumexp(logits, dim=-1)

    def entropy(self) -> Tensor:
        # torch's Multinomial.entropy relies on an attribute that .expand() drops;
        # same formula: H = n H(Categorical) - log n! + sum_k E[log x_k!], x_k ~ Binomial(n, p_k).
        n = self.total_count
        probs = self.probs
        n_t = torch.tensor(float(n), dtype=probs.dtype, device=probs.device)
        cat_entropy = torch.distributions.Categorical(logits=self.logits, validate_args=False).entropy()
        support = torch.arange(1, n + 1, dtype=probs.dtype, device=probs.device)
        support = support.reshape((-1,) + (1,) * probs.dim())
        marginal = torch.distributions.Binomial(n_t, probs=probs, validate_args=False)
        term2 = (marginal.log_prob(support).exp() * torch.lgamma(support + 1)).sum([0, -1])
        return n_t * cat_entropy - torch.lgamma(n_t + 1) + term2

    def _fixed_params(self) -> dict:
        return {"total_count": self.total_count}

    @classmethod
    def _from_natural_params(cls, logits: Tensor, **fixed) -> Multinomial:
        if "total_count" not in fixed:
            raise TypeError("Multinomial._from_natural_params needs the fixed parameter total_count")
        return cls(logits=logits, **fixed)

    def sufficient_statistics(self, value: Tensor) -> tuple[Tensor]:
        value = torch.as_tensor(value, dtype=self.logits.dtype, device=self.logits.device)
        if value.dim() == 0 or value.size(-1) != self.event_shape[0]:
            raise ValueError(
                f"value must be count vectors of length {self.event_shape[0]}, got shape {tuple(value.shape)}"
            )
        shape = torch.broadcast_shapes(value.shape, self.batch_shape + self.event_shape)
        return (value.expand(shape),)

    def log_carrier_measure(self, value: Tensor) -> Tensor:
        value = torch.as_tensor(value, dtype=self.logits.dtype, device=self.logits.device)
        n = torch.tensor(float(self.total_count), dtype=value.dtype, device=value.device)
        result = torch.lgamma(n + 1) - torch.lgamma(value + 1).sum(-1)
        return result.expand(torch.broadcast_shapes(result.shape, self.batch_shape))

    def mean_parameters(self) -> tuple[Tensor]:
        return (self.total_count * self.probs,)

    @classmethod
    def from_mean_parameters(cls, mean: Tensor, *, total_count: int | None = None, **fixed) -> Multinomial:
        """
        The Multinomial with expected counts ``mean``.

        :param Tensor mean: expected counts, non-negative, summing to
            ``total_count`` over the last dimension.
        :param int total_count: number of draws (keyword); inferred from
            ``mean.sum(-1)`` when omitted and that sum is one integer.
        :raises ValueError: if ``mean`` is not a valid vector of expected counts.
        """
        mean = torch.as_tensor(mean)
        if not torch.is_floating_point(mean):
            mean = mean.to(torch.get_default_dtype())
        if total_count is None:
            if mean.dim() == 0 or mean.numel() == 0:
                raise ValueError("from_mean_parameters: mean must have a category dimension")
            sums = mean.sum(-1)
            guess = sums.flatten()[0].round()
            if not bool((sums.round() == guess).all()):
                raise ValueError("from_mean_parameters: total_count not given and mean.sum(-1) is not one integer")
            total_count = int(guess)
        if isinstance(total_count, bool) or not isinstance(total_count, numbers.Integral) or total_count < 0:
            raise ValueError(f"from_mean_parameters: total_count must be a non-negative int, got {total_count!r}")
        total_count = int(total_count)
        _check_simplex("mean", mean, float(total_count), "total_count")
        if total_count == 0:
            probs = torch.full_like(mean, 1.0 / mean.size(-1))
        else:
            probs = mean / mean.sum(-1, keepdim=True)
        return cls(total_count=total_count, probs=probs, **fixed)
