# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""The MultivariateNormal family as a Pyro distribution with natural-parameter algebra."""
from __future__ import annotations

import math

import pyro.distributions as dist
import torch
from torch import Tensor
from torch.distributions import constraints

from .exp_family import ExponentialFamily

__all__ = ["MultivariateNormal", "negative_definite"]

#: The distribution class this family derives from, bound at import: ``entropy`` calls it directly, never
#: through the module attribute (which ``patch_torch``-style code may replace by this very class).
_MultivariateNormalBase = dist.MultivariateNormal


class _NegativeDefinite(constraints.Constraint):
    """
    Square matrices whose symmetric part is negative definite (checked with a
    Cholesky factorisation of the negated symmetric part).
    """

    event_dim = 2

    def check(self, value: Tensor) -> Tensor:
        if value.dim() < 2 or value.shape[-1] != value.shape[-2]:
            return torch.zeros(value.shape[:-2], dtype=torch.bool, device=value.device)
        neg_sym = -(value + value.mT) / 2
        return torch.linalg.cholesky_ex(neg_sym).info.eq(0) & value.isfinite().all(-1).all(-1)

    def __repr__(self) -> str:
        return "NegativeDefinite() (its negation, a multiple of a precision matrix, must be positive definite)"


#: Square matrices whose symmetric part is negative definite.
negative_definite = _NegativeDefinite()


def _cholesky_or_raise(matrix: Tensor, what: str) -> Tensor:
    """Lower Cholesky factor of ``matrix``, raising :class:`ValueError` if it is not positive definite."""
    chol, info = torch.linalg.cholesky_ex(matrix)
    if bool(info.ne(0).any()) or not bool(chol.diagonal(dim1=-2, dim2=-1).isfinite().all()):
        raise ValueError(f"{what} must be positive definite")
    return chol


def _precision_to_scale_tril_and_loc(precision: Tensor, precision_loc: Tensor | None) -> tuple[Tensor, Tensor | None]:
    r"""
    From a precision :math:`\Lambda` (and optionally :math:`\Lambda\mu`),
    compute the lower Cholesky factor ``S`` of :math:`\Lambda^{-1}` and
    :math:`\mu = S S^\top (\Lambda\mu)` with one Cholesky factorisation and one
    triangular solve (no explicit inverse of :math:`\Lambda`).

    With :math:`J` the reversal permutation, :math:`J\Lambda J = L_f L_f^\top`
    gives :math:`\Lambda = U U^\top` with :math:`U = J L_f J` upper triangular,
    so :math:`\Lambda^{-1} = U^{-\top} U^{-1}` and :math:`S = U^{-\top}`.
    """
    flipped = _cholesky_or_raise(torch.flip(precision, (-2, -1)), "the precision matrix (-2 * eta2)")
    u_t = torch.flip(flipped, (-2, -1)).mT  # lower triangular, U^T
    eye = torch.eye(precision.shape[-1], dtype=precision.dtype, device=precision.device)
    scale_tril = torch.linalg.solve_triangular(u_t, eye, upper=False)
    if precision_loc is None:
        return scale_tril, None
    loc = (scale_tril @ (scale_tril.mT @ precision_loc.unsqueeze(-1))).squeeze(-1)
    return scale_tril, loc


class MultivariateNormal(ExponentialFamily, dist.MultivariateNormal):
    r"""
    ``MultivariateNormal(loc, covariance_matrix=None, precision_matrix=None, scale_tril=None)``,
    a drop-in replacement for :class:`pyro.distributions.MultivariateNormal`
    with natural-parameter algebra.

    Natural parameters :math:`\eta = (\Lambda\mu, -\Lambda/2)` with precision
    :math:`\Lambda = \Sigma^{-1}` (event ranks 1 and 2); sufficient statistics
    :math:`t(x) = (x, x x^\top)`; log normaliser
    :math:`A(\eta) = \tfrac12\mu^\top\Lambda\mu - \tfrac12\log|\Lambda| + \tfrac d2\log 2\pi`
    (the :math:`2\pi` term lives in :math:`A`, as torch does for ``Normal``),
    so the carrier measure is :math:`k(x) = 0`.  Products are exact: precisions
    add and precision-weighted means add.  Every computation goes through
    Cholesky factors of the precision; no matrix is inverted explicitly.

    The natural parameter :math:`\eta_2` is used through its symmetric part;
    the natural parameter space is :math:`\eta_2` negative definite.

    :param Tensor loc: mean, of shape ``batch_shape + (d,)``.
    :param Tensor covariance_matrix: positive-definite covariance.
    :param Tensor precision_matrix: positive-definite precision.
    :param Tensor scale_tril: lower-triangular factor of the covariance with
        positive diagonal.

    Exactly one of ``covariance_matrix``, ``precision_matrix`` and
    ``scale_tril`` is given.

    Example::

        >>> import torch
        >>> from pyro_expfam.distributions import MultivariateNormal
        >>> d = MultivariateNormal(torch.zeros(2, 3), torch.eye(3).expand(2, 3, 3))
        >>> p = d.product_along_axis(-1)   # dim counts batch dimensions only
        >>> p.batch_shape, p.event_shape
        (torch.Size([1]), torch.Size([3]))
        >>> p.covariance_matrix[0]         # precisions add: I / 2
        tensor([[0.5000, 0.0000, 0.0000],
                [0.0000, 0.5000, 0.0000],
                [0.0000, 0.0000, 0.5000]])
    """

    _natural_param_event_dims = (1, 2)
    _natural_param_constraints = (constraints.real_vector, negative_definite)
    _mean_carrier_measure = 0

    @property
    def _natural_params(self) -> tuple[Tensor, Tensor]:
        precision = self.precision_matrix
        precision_loc = (precision @ self.loc.unsqueeze(-1)).squeeze(-1)
        return precision_loc, -0.5 * precision

    def _log_normalizer(self, eta1: Tensor, eta2: Tensor) -> Tensor:
        precision = -(eta2 + eta2.mT)
        chol = _cholesky_or_raise(precision, "the precision matrix (-2 * eta2)")
        white = torch.linalg.solve_triangular(chol, eta1.unsqueeze(-1), upper=False).squeeze(-1)
        d = eta1.shape[-1]
        return (
            0.5 * white.square().sum(-1)
            - chol.diagonal(dim1=-2, dim2=-1).log().sum(-1)
            + 0.5 * d * math.log(2 * math.pi)
        )

    def entropy(self) -> Tensor:
        # torch.distributions.ExponentialFamily precedes torch's MultivariateNormal in the
        # method resolution order; keep the closed form rather than the Bregman one.
        return _MultivariateNormalBase.entropy(self)

    @classmethod
    def _from_natural_params(cls, eta1: Tensor, eta2: Tensor, **fixed) -> MultivariateNormal:
        r"""
        Build ``MultivariateNormal`` from :math:`(\Lambda\mu, -\Lambda/2)`.

        :param Tensor eta1: precision-weighted mean, shape ``batch_shape + (d,)``.
        :param Tensor eta2: minus half the precision, shape ``batch_shape + (d, d)``
            (symmetrised before use).
        """
        precision = -(eta2 + eta2.mT)
        batch_shape = torch.broadcast_shapes(eta1.shape[:-1], precision.shape[:-2])
        scale_tril, loc = _precision_to_scale_tril_and_loc(precision, eta1)
        loc = loc.expand(batch_shape + eta1.shape[-1:])
        result = cls(loc, scale_tril=scale_tril, **fixed)
        # cache the precision we were given: it is the distribution's parameter
        result.precision_matrix = precision.expand(batch_shape + precision.shape[-2:])
        return result

    def sufficient_statistics(self, value: Tensor) -> tuple[Tensor, Tensor]:
        r"""
        :math:`t(x) = (x, x x^\top)`.

        :param Tensor value: a value of shape ``sample_shape + batch_shape + (d,)``.
        """
        value, _ = torch.broadcast_tensors(value, self.loc)
        return value, value.unsqueeze(-1) * value.unsqueeze(-2)

    def log_carrier_measure(self, value: Tensor) -> Tensor:
        """
        :math:`k(x) = 0`.

        :param Tensor value: a value of shape ``sample_shape + batch_shape + (d,)``.
        """
        return torch.zeros_like(torch.broadcast_tensors(value, self.loc)[0][..., 0])

    def mean_parameters(self) -> tuple[Tensor, Tensor]:
        r""":math:`(E[x], E[x x^\top]) = (\mu, \Sigma + \mu\mu^\top)`."""
        loc = self.loc
        return loc, self.covariance_matrix + loc.unsqueeze(-1) * loc.unsqueeze(-2)

    @classmethod
    def from_mean_parameters(cls, mean_x: Tensor, mean_xxT: Tensor, **fixed) -> MultivariateNormal:
        r"""
        The Gaussian with :math:`E[x] = ` ``mean_x`` and
        :math:`E[x x^\top] = ` ``mean_xxT`` (maximum likelihood from average
        sufficient statistics).

        :param Tensor mean_x: mean, shape ``batch_shape + (d,)``.
        :param Tensor mean_xxT: second moment, shape ``batch_shape + (d, d)``.
        :raises ValueError: if the shapes disagree or the covariance
            :math:`E[x x^\top] - E[x]E[x]^\top` is not positive definite.
        """
        mean_x = torch.as_tensor(mean_x)
        mean_xxT = torch.as_tensor(mean_xxT, dtype=mean_x.dtype, device=mean_x.device)
        if mean_x.dim() < 1:
            raise ValueError("mean_x must be at least one-dimensional")
        d = mean_x.shape[-1]
        if mean_xxT.dim() < 2 or mean_xxT.shape[-2:] != (d, d):
            raise ValueError(f"mean_xxT must have shape batch_shape + ({d}, {d}), got {tuple(mean_xxT.shape)}")
        cov = mean_xxT - mean_x.unsqueeze(-1) * mean_x.unsqueeze(-2)
        cov = (cov + cov.mT) / 2
        chol = _cholesky_or_raise(cov, "from_mean_parameters: the covariance E[x x^T] - E[x] E[x]^T")
        batch_shape = torch.broadcast_shapes(mean_x.shape[:-1], cov.shape[:-2])
        return cls(mean_x.expand(batch_shape + (d,)), scale_tril=chol, **fixed)
