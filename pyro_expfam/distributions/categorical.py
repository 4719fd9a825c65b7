# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""The Categorical family as a Pyro distribution with natural-parameter algebra."""
from __future__ import annotations

import math

import pyro.distributions as dist
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.distributions import biject_to, constraints, transform_to, transforms

from .exp_family import ExponentialFamily

__all__ = ["Categorical"]

#: The distribution class this family derives from, bound at import: ``entropy`` calls it directly, never
#: through the module attribute (which ``patch_torch``-style code may replace by this very class).
_CategoricalBase = dist.Categorical


class _NormalizableLogits(constraints.Constraint):
    """
    Natural parameter space of the (over-parametrised) categorical family:
    logit vectors with no NaN and no ``+inf`` entry and at least one entry
    ``> -inf`` (``-inf`` marks a category of probability zero).  A sum of such
    vectors leaves the space when every category is ``-inf`` in some factor,
    i.e. when the factors have disjoint supports.
    """

    is_discrete = False
    event_dim = 1

    def check(self, value: Tensor) -> Tensor:
        finite_above = ~torch.isnan(value) & (value < math.inf)
        return finite_above.all(-1) & (value > -math.inf).any(-1)

    def __repr__(self) -> str:
        return "normalizable_logits"


#: Constraint instance shared by Categorical, OneHotCategorical and Multinomial.
normalizable_logits = _NormalizableLogits()


def _identity_vector_transform(constraint: _NormalizableLogits) -> transforms.Transform:
    # every real vector is a valid logit vector
    return transforms.IndependentTransform(transforms.identity_transform, 1)


biject_to.register(_NormalizableLogits, _identity_vector_transform)
transform_to.register(_NormalizableLogits, _identity_vector_transform)


class _LogitVectorFamily(ExponentialFamily):
    r"""
    Shared natural-parameter algebra of the families parametrised by one
    logit vector over ``K`` categories (Categorical, OneHotCategorical): the
    natural parameter is ``logits``, :math:`A(\eta) = \operatorname{logsumexp}_k \eta_k`,
    the carrier measure is constant and the mean parameters are ``probs``.
    """

    _natural_param_event_dims = (1,)
    _natural_param_constraints = (normalizable_logits,)

    @property
    def _natural_params(self) -> tuple[Tensor]:
        return (self.logits,)

    def _log_normalizer(self, logits: Tensor) -> Tensor:
        return torch.logsumexp(logits, dim=-1)

    @property
    def _mean_carrier_measure(self) -> float:
        return 0.0

    @classmethod
    def _from_natural_params(cls, logits: Tensor, **fixed):
        return cls(logits=logits, **fixed)

    def mean_parameters(self) -> tuple[Tensor]:
        return (self.probs,)


def _check_simplex(name: str, probs: Tensor, total: float = 1.0, total_name: str = "1") -> None:
    """Raise :class:`ValueError` unless ``probs >= 0`` and ``probs.sum(-1) == total`` (to rounding)."""
    if not torch.is_floating_point(probs):
        raise TypeError(f"from_mean_parameters: {name} must be a floating point tensor, got {probs.dtype}")
    if probs.dim() == 0:
        raise ValueError(f"from_mean_parameters: {name} must have a category dimension, got a scalar")
    if not bool(torch.isfinite(probs).all()) or not bool((probs >= 0).all()):
        raise ValueError(f"from_mean_parameters: {name} must be finite and non-negative")
    total = torch.as_tensor(total, dtype=probs.dtype, device=probs.device)
    tol = max(1e-6, 10 * probs.size(-1) * torch.finfo(probs.dtype).eps) * torch.clamp(total, min=1.0)
    if not bool(((probs.sum(-1) - total).abs() <= tol).all()):
        raise ValueError(
            f"from_mean_parameters: {name} must sum to {total_name} "
            "over the last dimension (mean parameters of this family lie on a scaled simplex)"
        )


class Categorical(_LogitVectorFamily, dist.Categorical):
    r"""
    ``Categorical(probs=None, logits=None)`` over ``{0, ..., K-1}``, a drop-in
    replacement for :class:`pyro.distributions.Categorical` with
    natural-parameter algebra.

    Natural parameter: the (normalised) logit vector :math:`\eta = \log p`,
    of event shape ``(K,)`` (an over-parametrised family: adding a constant to
    every entry gives the same distribution).  It is taken from ``logits``,
    never through ``probs``.  Sufficient statistic: the one-hot encoding
    :math:`t(x) = e_x \in \{0,1\}^K` of the integer index ``x``; log
    normaliser :math:`A(\eta) = \operatorname{logsumexp}_k \eta_k`; carrier
    measure :math:`k(x) = 0`.  Mean parameters are ``probs``.

    The carrier measure is constant, so products are exact: logits add, i.e.
    :math:`p_\text{prod}(x) \propto \prod_i p_i(x)`.  A product of factors
    with disjoint supports (every category has logit ``-inf`` in some factor)
    does not exist and raises :class:`ValueError`.

    :param probs: event probabilities, shape ``batch_shape + (K,)``.
    :param logits: event log-probabilities (unnormalised), shape
        ``batch_shape + (K,)``.

    Example::

        >>> import torch
        >>> from pyro_expfam.distributions import Categorical
        >>> d = Categorical(logits=torch.tensor([[0.0, 1.0, 2.0], [2.0, 1.0, 0.0]]))
        >>> d.product_along_axis(0).probs      # uniform
        tensor([[0.3333, 0.3333, 0.3333]])
    """

    def entropy(self) -> Tensor:
        return _CategoricalBase.entropy(self)

    def _check_index(self, value: Tensor) -> Tensor:
        value = torch.as_tensor(value, device=self.logits.device)
        num_events = self._num_events
        valid = (value >= 0) & (value < num_events)
        if value.is_floating_point():
            valid = valid & (value == value.floor())
        if not bool(valid.all()):
            raise ValueError(f"value must hold integer category indices in [0, {num_events}), got other values")
        return value

    def sufficient_statistics(self, value: Tensor) -> tuple[Tensor]:
        value = self._check_index(value)
        shape = torch.broadcast_shapes(value.shape, self.batch_shape)
        one_hot = F.one_hot(value.long().expand(shape), self._num_events)
        return (one_hot.to(self.logits.dtype),)

    def log_carrier_measure(self, value: Tensor) -> Tensor:
        value = torch.as_tensor(value, device=self.logits.device)
        shape = torch.broadcast_shapes(value.shape, self.batch_shape)
        return self.logits.new_zeros(shape)

    @classmethod
    def from_mean_parameters(cls, probs: Tensor, **fixed) -> Categorical:
        """
        The Categorical with ``probs`` as its mean parameters.

        :param Tensor probs: a point of the probability simplex, shape
            ``batch_shape + (K,)`` (e.g. average one-hot statistics).
        :raises ValueError: if ``probs`` is not on the simplex.
        """
        probs = torch.as_tensor(probs)
        _check_simplex("probs", probs)
        return cls(probs=probs / probs.sum(-1, keepdim=True), **fixed)
