# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
r"""
:class:`Independent`: Pyro's ``Independent`` with normalised products over its
remaining batch dimensions, and the function :func:`product_along_axis` that
accepts our families, torch's/Pyro's instances of them, and ``Independent``
wrappers of either.

``d.to_event(n)`` on a :mod:`pyro_expfam.distributions` family returns this
class.  A product of independent events is the independent product of the
factors, so for ``d.to_event(n).product_along_axis(dim)`` the reinterpreted
(event) dimensions are carried along and the normaliser sums over them:

.. math::

    \sum_i \log p_i(x) = \log p_\text{prod}(x) + \log Z,\qquad
    \log Z = \sum_{\text{event dims}} \log Z_\text{base}.
"""

from __future__ import annotations

import numbers

import pyro.distributions as dist
import torch
from torch import Tensor

from .exp_family import ExponentialFamily, _as_family, _torch_family_class

__all__ = ["Independent", "product_along_axis"]


class Independent(dist.Independent):
    r"""
    :class:`pyro.distributions.Independent` whose base distribution is one of
    our exponential families, with :meth:`product_along_axis` over the batch
    dimensions (never over the reinterpreted event dimensions).

    :param base_distribution: a :mod:`pyro_expfam.distributions` family (or an
        :class:`Independent` of one).
    :param int reinterpreted_batch_ndims: number of batch dimensions of the
        base distribution reinterpreted as event dimensions.

    Example::

        >>> from pyro_expfam.distributions import Normal
        >>> d = Normal(torch.tensor([[0.0, 1.0], [2.0, 3.0]]), torch.ones(2, 2)).to_event(1)
        >>> type(d).__name__, tuple(d.batch_shape), tuple(d.event_shape)
        ('Independent', (2,), (2,))
        >>> d.product_along_axis(0, keepdim=False).base_dist.loc
        tensor([1., 2.])
    """

    def to_event(self, reinterpreted_batch_ndims: int | None = None):
        """
        Reinterpret more batch dimensions as event dimensions (see Pyro's
        ``to_event``); the result is again an :class:`Independent`.

        :param int reinterpreted_batch_ndims: number of dimensions (all if ``None``).
        """
        return _to_event(self, reinterpreted_batch_ndims)

    def _product_with_log_normalizer(
        self, dim: int = -1, keepdim: bool = True, weights: Tensor | None = None, log_normalizer: bool = True
    ) -> tuple[Independent, Tensor | None]:
        base = self.base_dist
        if not hasattr(base, "_product_with_log_normalizer"):
            raise TypeError(
                f"product_along_axis needs an Independent of a pyro_expfam family, got one of {type(base).__name__}"
            )
        if isinstance(dim, bool) or not isinstance(dim, numbers.Integral):
            raise TypeError(f"dim must be an int, got {type(dim).__name__}")
        batch_rank, r = len(self.batch_shape), self.reinterpreted_batch_ndims
        if not -batch_rank <= dim < batch_rank:
            raise ValueError(
                f"dim={dim} is out of range for batch_shape {tuple(self.batch_shape)}: products reduce batch "
                f"dimensions only; the {r} rightmost dimension(s) of the base distribution are event dimensions "
                f"of this Independent (event_shape {tuple(self.event_shape)}) and never reduce"
            )
        bdim = (dim - batch_rank if dim >= 0 else dim) - r
        if weights is not None:
            w = torch.as_tensor(weights)
            try:
                w = w.expand(self.batch_shape)
            except RuntimeError as e:
                raise ValueError(
                    f"weights of shape {tuple(w.shape)} do not broadcast to batch_shape {tuple(self.batch_shape)}"
                ) from e
            weights = w.reshape(w.shape + (1,) * r)
        prod, log_norm = base._product_with_log_normalizer(bdim, keepdim, weights, log_normalizer)
        return Independent(prod, r), (None if log_norm is None else log_norm.sum(tuple(range(-r, 0))))

    def product_along_axis(self, dim: int = -1, keepdim: bool = True, weights: Tensor | None = None) -> Independent:
        r"""
        Normalised product of the densities along batch dimension ``dim``:
        the :class:`Independent` of the base distribution's product along the
        same dimension.

        :param int dim: batch dimension to reduce (counted in ``batch_shape``).
        :param bool keepdim: keep the reduced dimension with size 1.
        :param Tensor weights: optional exponents broadcastable to ``batch_shape``.
        :raises ValueError: if ``dim`` is not a batch dimension (event dimensions never reduce).
        """
        return self._product_with_log_normalizer(dim, keepdim, weights, log_normalizer=False)[0]

    def conjugate_update(self, other: Independent) -> tuple[Independent, Tensor]:
        """
        Pyro's ``conjugate_update`` contract for two independent products of one family::

            fg, log_normalizer = f.conjugate_update(g)
            f.log_prob(x) + g.log_prob(x) == fg.log_prob(x) + log_normalizer

        :param Independent other: an Independent of the same family with the same event shape.
        """
        if not isinstance(other, torch.distributions.Independent) or other.event_shape != self.event_shape:
            raise TypeError("conjugate_update expects an Independent of the same family and event shape")
        r = self.reinterpreted_batch_ndims
        fg, log_norm = self.base_dist.conjugate_update(_unwrap(other, r))
        return Independent(fg, r), log_norm.sum(tuple(range(-r, 0)))


def _unwrap(d: torch.distributions.Independent, r: int):
    """The base of ``d`` seen with ``r`` reinterpreted dimensions removed."""
    base, n = d, 0
    while isinstance(base, torch.distributions.Independent):
        n += base.reinterpreted_batch_ndims
        base = base.base_dist
    return base if n == r else Independent(base, n - r)


def _to_event(d, reinterpreted_batch_ndims: int | None):
    """Pyro's ``to_event`` semantics, returning our :class:`Independent`."""
    n = len(d.batch_shape) if reinterpreted_batch_ndims is None else reinterpreted_batch_ndims
    base = d
    while isinstance(base, torch.distributions.Independent):
        n += base.reinterpreted_batch_ndims
        base = base.base_dist
    if n == 0:
        return base
    if n < 0:
        raise ValueError(f"Cannot remove event dimensions from {type(d)}")
    return Independent(base, n)


def _as_ours(d):
    """``d`` as one of our families (converting a torch/Pyro instance of one); Independents recursively."""
    if isinstance(d, (ExponentialFamily, Independent)):
        return d
    if isinstance(d, torch.distributions.Independent):
        return Independent(_as_ours(d.base_dist), d.reinterpreted_batch_ndims)
    from . import FAMILIES

    # the most specific of our families whose torch class d belongs to (Chi2 before Gamma)
    best = None
    for cls in FAMILIES:
        base = _torch_family_class(cls)
        if base is not None and isinstance(d, base):
            if best is None or issubclass(base, _torch_family_class(best)):
                best = cls
    if best is None:
        raise TypeError(f"{type(d).__name__} is not one of the exponential families of pyro_expfam.distributions")
    return _as_family(best, d)


def product_along_axis(d, dim: int = -1, keepdim: bool = True, weights: Tensor | None = None):
    r"""
    Normalised product :math:`\propto\prod_i p_i(x)^{w_i}` of the densities of
    ``d`` along batch dimension ``dim``, for one of our families, a torch or
    Pyro distribution of one of them (converted), or an ``Independent`` of
    either (``.to_event(n)``; the reinterpreted dimensions are event
    dimensions and never reduce).

    :param d: the distribution.
    :param int dim: batch dimension to reduce, counted in ``d.batch_shape``.
    :param bool keepdim: keep the reduced dimension with size 1.
    :param Tensor weights: optional exponents broadcastable to ``d.batch_shape``.
    :returns: one of our families, or an :class:`Independent` of one.
    :raises TypeError: if ``d`` is not of a supported family.
    :raises ValueError: if ``dim`` is not a batch dimension.

    Example::

        >>> import torch.distributions as td
        >>> base = td.Normal(torch.zeros(3, 2), torch.ones(3, 2))
        >>> p = product_along_axis(td.Independent(base, 1), 0, keepdim=False)
        >>> type(p).__name__, p.base_dist.scale
        ('Independent', tensor([0.5774, 0.5774]))
    """
    return _as_ours(d).product_along_axis(dim, keepdim, weights)
