# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""The VonMises family as a Pyro distribution with natural-parameter algebra."""
from __future__ import annotations

import math
import warnings

import pyro.distributions as dist
import torch
from torch import Tensor
from torch.distributions import constraints

from .exp_family import ExponentialFamily
from .gamma import _MAX_ITER, _converged, _float_tensors

__all__ = ["VonMises"]

_LOG_2PI = math.log(2.0 * math.pi)


def _log_i0(kappa: Tensor) -> Tensor:
    """``log I_0(kappa)`` for ``kappa >= 0``, stable for large ``kappa`` (via ``i0e``)."""
    return torch.log(torch.special.i0e(kappa)) + kappa


def _bessel_ratio(kappa: Tensor) -> Tensor:
    """:math:`A_1(\\kappa) = I_1(\\kappa)/I_0(\\kappa)`, the mean resultant length."""
    return torch.special.i1e(kappa) / torch.special.i0e(kappa)


def _kappa_from_resultant(r: Tensor) -> Tensor:
    r"""
    Solve :math:`A_1(\kappa) = I_1(\kappa)/I_0(\kappa) = r` for
    :math:`\kappa > 0`, given :math:`0 < r < 1`, by Newton's method with
    :math:`A_1'(\kappa) = 1 - A_1(\kappa)/\kappa - A_1(\kappa)^2`, started from
    Banerjee et al.'s approximation :math:`r(2 - r^2)/(1 - r^2)`.  The last step
    is taken with autograd enabled (implicit-function gradients).

    :param Tensor r: mean resultant length, in ``(0, 1)``.
    """

    def step(kappa: Tensor, r: Tensor) -> Tensor:
        a = _bessel_ratio(kappa)
        return (a - r) / (1.0 - a / kappa - a.square())

    with torch.no_grad():
        r0 = r.detach()
        kappa = r0 * (2.0 - r0.square()) / (1.0 - r0.square())
        polish = 0
        for _ in range(_MAX_ITER):
            delta = step(kappa, r0)
            new = kappa - delta
            new = torch.where((new > 0) & torch.isfinite(new), new, 0.5 * kappa)
            delta, kappa = kappa - new, new
            if _converged(delta, kappa):
                polish += 1
                if polish == 2:
                    break
        else:
            warnings.warn("von Mises concentration solver did not converge", RuntimeWarning, stacklevel=3)
    if r.requires_grad:
        kappa = kappa - step(kappa, r)
    return kappa


class VonMises(ExponentialFamily, dist.VonMises):
    r"""
    ``VonMises(loc, concentration)``, a drop-in replacement for
    :class:`pyro.distributions.VonMises` with natural-parameter algebra.

    Natural parameters :math:`\eta = \kappa(\cos\mu, \sin\mu)`; sufficient
    statistics :math:`t(x) = (\cos x, \sin x)`; log normaliser
    :math:`A(\eta) = \log(2\pi I_0(\lVert\eta\rVert))` (computed with
    ``torch.special.i0e`` for stability); carrier measure :math:`k(x) = 0`.
    :meth:`log_prob` uses the same exact Bessel function (torch's uses a
    polynomial approximation with relative error ~1e-7 in :math:`I_0`).

    **Products** are exact: the vectors :math:`\kappa_i(\cos\mu_i, \sin\mu_i)`
    add.  If they cancel exactly the product is the uniform distribution on the
    circle, which is not a von Mises with :math:`\kappa > 0`: a ``ValueError``
    is raised.  (Near-cancellation in floating point leaves a tiny
    :math:`\kappa`, a valid and nearly uniform von Mises.)

    **Mean parameters** :math:`(E[\cos x], E[\sin x]) = A_1(\kappa)(\cos\mu, \sin\mu)`
    with :math:`A_1 = I_1/I_0`; the inverse map solves :math:`A_1(\kappa) = r`
    by Newton's method and requires a mean resultant length :math:`0 < r < 1`.

    :param loc: mean direction :math:`\mu` (radians).
    :param concentration: :math:`\kappa > 0`.

    Example::

        >>> import math
        >>> from pyro_expfam.distributions import VonMises, product
        >>> p = product(VonMises(0.0, 1.0), VonMises(math.pi / 2, 1.0))
        >>> p.loc, p.concentration   # (pi / 4, sqrt(2))
        (tensor(0.7854), tensor(1.4142))
    """

    _natural_param_event_dims = (0, 0)
    _natural_param_constraints = (constraints.real, constraints.real)
    _mean_carrier_measure = 0

    @property
    def _natural_params(self) -> tuple[Tensor, Tensor]:
        return self.concentration * torch.cos(self.loc), self.concentration * torch.sin(self.loc)

    def _log_normalizer(self, eta1: Tensor, eta2: Tensor) -> Tensor:
        return _LOG_2PI + _log_i0(torch.hypot(eta1, eta2))

    @classmethod
    def _check_natural_params(cls, *natural_params: Tensor, what: str = "natural parameters", **kwargs) -> None:
        super()._check_natural_params(*natural_params, what=what, **kwargs)
        eta1, eta2 = natural_params
        if not bool(((eta1 != 0) | (eta2 != 0)).all()):
            raise ValueError(
                f"{cls.__name__}: {what} are zero (kappa = 0): the normalised product is the uniform "
                "distribution on the circle, which is not a von Mises distribution with concentration > 0"
            )

    @classmethod
    def _from_natural_params(cls, eta1: Tensor, eta2: Tensor, **fixed) -> VonMises:
        return cls(torch.atan2(eta2, eta1), torch.hypot(eta1, eta2), **fixed)

    def log_prob(self, value: Tensor) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        return self.concentration * (torch.cos(value - self.loc) - 1.0) - _LOG_2PI - torch.log(
            torch.special.i0e(self.concentration)
        )

    def entropy(self) -> Tensor:
        r""":math:`A(\eta) - \langle\eta, \nabla A(\eta)\rangle = \log(2\pi I_0(\kappa)) - \kappa A_1(\kappa)`."""
        kappa = self.concentration
        return _LOG_2PI + torch.log(torch.special.i0e(kappa)) + kappa * (1.0 - _bessel_ratio(kappa))

    def sufficient_statistics(self, value: Tensor) -> tuple[Tensor, Tensor]:
        value, _ = torch.broadcast_tensors(value, self.loc)
        return torch.cos(value), torch.sin(value)

    def log_carrier_measure(self, value: Tensor) -> Tensor:
        return torch.zeros_like(torch.broadcast_tensors(value, self.loc)[0])

    def mean_parameters(self) -> tuple[Tensor, Tensor]:
        r = _bessel_ratio(self.concentration)
        return r * torch.cos(self.loc), r * torch.sin(self.loc)

    @classmethod
    def from_mean_parameters(cls, mean_cos_x: Tensor, mean_sin_x: Tensor, **fixed) -> VonMises:
        r"""
        The von Mises with :math:`E[\cos x] =` ``mean_cos_x`` and
        :math:`E[\sin x] =` ``mean_sin_x``.

        :param Tensor mean_cos_x: :math:`E[\cos x]`.
        :param Tensor mean_sin_x: :math:`E[\sin x]`.
        :raises ValueError: unless the mean resultant length
            :math:`r = \sqrt{E[\cos x]^2 + E[\sin x]^2}` satisfies
            :math:`0 < r < 1` (``r = 1`` is a point mass, ``r = 0`` needs
            :math:`\kappa = 0`).
        """
        mean_cos_x, mean_sin_x = _float_tensors(mean_cos_x, mean_sin_x)
        if not bool((torch.isfinite(mean_cos_x) & torch.isfinite(mean_sin_x)).all()):
            raise ValueError("from_mean_parameters: mean_cos_x and mean_sin_x must be finite")
        r = torch.hypot(mean_cos_x, mean_sin_x)
        if not bool((r < 1).all()):
            raise ValueError(
                "from_mean_parameters: the mean resultant length sqrt(mean_cos_x**2 + mean_sin_x**2) must be < 1; "
                "these mean parameters lie outside the mean-parameter space"
            )
        if not bool((r > 0).all()):
            raise ValueError(
                "from_mean_parameters: mean_cos_x = mean_sin_x = 0 gives kappa = 0 (the uniform distribution), "
                "which is not a von Mises distribution with concentration > 0"
            )
        return cls(torch.atan2(mean_sin_x, mean_cos_x), _kappa_from_resultant(r), **fixed)
