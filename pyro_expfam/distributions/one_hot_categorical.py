# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""The OneHotCategorical family as a Pyro distribution with natural-parameter algebra."""
from __future__ import annotations

import pyro.distributions as dist
import torch
from torch import Tensor

from .categorical import _check_simplex, _LogitVectorFamily

__all__ = ["OneHotCategorical"]

#: The distribution class this family derives from, bound at import: ``entropy`` calls it directly, never
#: through the module attribute (which ``patch_torch``-style code may replace by this very class).
_OneHotCategoricalBase = dist.OneHotCategorical


class OneHotCategorical(_LogitVectorFamily, dist.OneHotCategorical):
    r"""
    ``OneHotCategorical(probs=None, logits=None)`` over the one-hot vectors of
    length ``K``, a drop-in replacement for
    :class:`pyro.distributions.OneHotCategorical` with natural-parameter
    algebra.

    Natural parameter: the (normalised) logit vector :math:`\eta = \log p`,
    event shape ``(K,)``, taken from ``logits`` (never through ``probs``);
    sufficient statistic: the value itself, :math:`t(x) = x \in \{0,1\}^K`;
    log normaliser :math:`A(\eta) = \operatorname{logsumexp}_k \eta_k`;
    carrier measure :math:`k(x) = 0`.  Mean parameters are ``probs``.

    The carrier measure is constant, so products are exact: logits add.  A
    product of factors with disjoint supports raises :class:`ValueError`.

    :param probs: event probabilities, shape ``batch_shape + (K,)``.
    :param logits: event log-probabilities (unnormalised), shape
        ``batch_shape + (K,)``.

    Example::

        >>> import torch
        >>> from pyro_expfam.distributions import OneHotCategorical
        >>> d = OneHotCategorical(probs=torch.tensor([[0.2, 0.8], [0.5, 0.5]]))
        >>> d.product_along_axis(0).probs      # a uniform factor changes nothing
        tensor([[0.2000, 0.8000]])
    """

    @classmethod
    def _constructor_args(cls, d) -> dict:
        # keep -inf logits (a zero-probability category) exact: rebuild from logits when d has them
        inner = getattr(d, "_categorical", None)
        if inner is not None and "logits" in inner.__dict__:
            return {"logits": d.logits}
        return {"probs": d.probs}

    def entropy(self) -> Tensor:
        return _OneHotCategoricalBase.entropy(self)

    def sufficient_statistics(self, value: Tensor) -> tuple[Tensor]:
        value = torch.as_tensor(value, device=self.logits.device)
        if value.dim() == 0 or value.size(-1) != self.event_shape[0]:
            raise ValueError(
                f"value must be one-hot vectors of length {self.event_shape[0]}, got shape {tuple(value.shape)}"
            )
        shape = torch.broadcast_shapes(value.shape, self.batch_shape + self.event_shape)
        return (value.to(self.logits.dtype).expand(shape),)

    def log_carrier_measure(self, value: Tensor) -> Tensor:
        value = torch.as_tensor(value, device=self.logits.device)
        shape = torch.broadcast_shapes(value.shape[:-1], self.batch_shape)
        return self.logits.new_zeros(shape)

    @classmethod
    def from_mean_parameters(cls, probs: Tensor, **fixed) -> OneHotCategorical:
        """
        The OneHotCategorical whose expected one-hot vector is ``probs``.

        :param Tensor probs: a point of the probability simplex, shape
            ``batch_shape + (K,)``.
        :raises ValueError: if ``probs`` is not on the simplex.
        """
        probs = torch.as_tensor(probs)
        _check_simplex("probs", probs)
        return cls(probs=probs / probs.sum(-1, keepdim=True), **fixed)
