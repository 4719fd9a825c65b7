# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
r"""
The enumerated likelihood of an overlapping mixture in matrix-product form.

A data point with membership set :math:`z \in \{0,1\}^K` has density
:math:`\exp(\langle\eta(z), t(x)\rangle - A(\eta(z)) + k(x))` with
:math:`\eta(z) = \eta_0 + \sum_k z_k (\eta_k + c)` (``c`` the carrier shift of
the family, zero when its carrier measure is constant).  For the ``S``
enumerated membership sets, stacked as the rows of a 0/1 matrix ``Z``
(``S x K``), all log-likelihoods of ``N`` points are one matrix product

.. math::

    L = [t(X), k(X), 1]\,[\eta_0 + Z(\eta_K + c),\ 1,\ -A(\eta(Z))]^\top
    \qquad (N \times (T+2)) @ ((T+2) \times S),

never the ``S x N x D`` broadcast of a naive formulation.

:class:`MembershipSets` is the prior of one data point's membership set: one
discrete site whose value is the *index* of a row of ``Z`` (all ``2^K`` sets,
or only the sets of size ``<= max_set_size``), so that ``TraceEnum_ELBO`` and
``infer_discrete`` enumerate it like a ``Categorical``.  :class:`OverlapLikelihood`
is the observation given a membership set; when the set is enumerated (and
therefore broadcast along the data plate) its ``log_prob`` is the GEMM above,
otherwise it is evaluated point by point.  :class:`ExpFamLayout` flattens the
natural parameters and sufficient statistics of any
:class:`~pyro_expfam.distributions.ExponentialFamily` so that both forms work
for every family whose product is exact.  The same marginal with the sets
summed out by fused kernels is in :mod:`~pyro_expfam.models.overlapping.marginal`.
"""

from __future__ import annotations

import itertools
import math

import pyro.distributions as dist
import torch
from pyro.ops.indexing import Vindex
from torch import Tensor
from torch.distributions import constraints

from ...distributions.exp_family import ExponentialFamily

__all__ = [
    "MAX_EXACT_CLUSTERS",
    "MAX_MEMBERSHIP_SETS",
    "ExpFamLayout",
    "MembershipSets",
    "OverlapLikelihood",
    "membership_sets",
    "num_membership_sets",
]

#: Largest number of clusters for exact enumeration of all ``2^K`` membership sets.
MAX_EXACT_CLUSTERS = 16
#: Largest number of enumerated membership sets (exact or truncated to a maximal set size).
MAX_MEMBERSHIP_SETS = 2**16


def num_membership_sets(num_clusters: int, max_set_size: int | None = None) -> int:
    """
    Number of membership sets enumerated: ``2^K`` when ``max_set_size`` is
    ``None`` or ``>= K``, else ``sum_{j <= m} C(K, j)``.

    :param int num_clusters: ``K``.
    :param int max_set_size: ``m`` or ``None``.
    """
    if max_set_size is None or max_set_size >= num_clusters:
        return 2**num_clusters
    return sum(math.comb(num_clusters, j) for j in range(max_set_size + 1))


def membership_sets(
    num_clusters: int,
    max_set_size: int | None = None,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """
    The enumerated membership sets as a 0/1 matrix of shape ``(S, K)``.

    With ``max_set_size`` ``None`` (or ``>= K``) the rows are all ``2^K`` sets
    and row ``s`` is the binary expansion of ``s`` (bit ``k`` is cluster ``k``).
    Otherwise the rows are all sets of size ``<= max_set_size``, by increasing
    size, each size in lexicographic order.

    :param int num_clusters: ``K``.
    :param int max_set_size: largest set size enumerated, or ``None`` for all.
    :param torch.dtype dtype: dtype of the result (default: the default dtype).
    :param device: device of the result.
    """
    if isinstance(num_clusters, bool) or not isinstance(num_clusters, int) or num_clusters < 1:
        raise ValueError(f"num_clusters must be a positive int, got {num_clusters!r}")
    if max_set_size is not None and (
        isinstance(max_set_size, bool) or not isinstance(max_set_size, int) or max_set_size < 0
    ):
        raise ValueError(f"max_set_size must be None or a non-negative int, got {max_set_size!r}")
    dtype = dtype or torch.get_default_dtype()
    if max_set_size is None or max_set_size >= num_clusters:
        if num_clusters > MAX_EXACT_CLUSTERS:
            raise ValueError(
                f"num_clusters={num_clusters} is too large for exact enumeration over 2^{num_clusters} "
                f"membership sets (the limit is K={MAX_EXACT_CLUSTERS}); pass max_set_size=m to enumerate "
                "only membership sets of size <= m (the approximate large-K mode)"
            )
        s = torch.arange(2**num_clusters, device=device)
        return ((s.unsqueeze(-1) >> torch.arange(num_clusters, device=device)) & 1).to(dtype)
    count = num_membership_sets(num_clusters, max_set_size)
    if count > MAX_MEMBERSHIP_SETS:
        raise ValueError(
            f"max_set_size={max_set_size} with num_clusters={num_clusters} enumerates {count} membership "
            f"sets, more than the limit {MAX_MEMBERSHIP_SETS}; use a smaller max_set_size"
        )
    rows = torch.zeros(count, num_clusters, dtype=dtype)
    r = 0
    for size in range(max_set_size + 1):
        for combo in itertools.combinations(range(num_clusters), size):
            rows[r, list(combo)] = 1
            r += 1
    return rows.to(device)


# ---------------------------------------------------------------------- #
# Flattening an exponential family
# ---------------------------------------------------------------------- #
class ExpFamLayout:
    r"""
    Flattened view of a family of :class:`ExponentialFamily` distributions over
    one data point.

    ``template`` is any member whose batch shape ``F`` indexes the features of
    one data point (``(D,)`` for ``Bernoulli``/``Normal``/``Categorical``
    features, ``()`` for a ``MultivariateNormal``); a data point has shape
    ``F + template.event_shape``.  Natural parameters (each ``F + ev_i``) are
    flattened and concatenated into one vector of length ``T``; so are the
    sufficient statistics, so that :math:`\langle\eta, t(x)\rangle` is a dot
    product and all sets times all points is one GEMM.

    :param ExponentialFamily template: a member of the family with batch shape ``F``.
    :raises NotImplementedError: if the normalised product of the family's
        densities is not in the family (the family's own reason is given).
    """

    def __init__(self, template: ExponentialFamily):
        if not isinstance(template, ExponentialFamily):
            raise TypeError(
                f"an overlapping mixture needs a pyro_expfam ExponentialFamily, got {type(template).__name__}"
            )
        cls = type(template)
        if cls._product_refusal is not None:
            raise NotImplementedError(
                f"The normalised product of {cls.__name__} densities is not a {cls.__name__}: {cls._product_refusal}"
            )
        self.template = template
        self.family = cls
        self.feature_shape = template.batch_shape
        self.event_shape = template.batch_shape + template.event_shape
        params = template._expanded_natural_params()
        self.param_shapes = [p.shape for p in params]
        self.param_sizes = [p.numel() for p in params]
        self.dim = sum(self.param_sizes)
        self.dtype = params[0].dtype
        #: check that every enumerated set's natural parameter lies in the natural parameter space
        #: (needed for families whose space is not closed under the sums of the product rule)
        self.validate_sets = False
        self.fixed = template._fixed_params()
        shift = template._carrier_shift
        if shift is None:
            self.shift = None
        else:
            parts = [
                torch.as_tensor(c, dtype=p.dtype, device=p.device).expand(p.shape).reshape(-1)
                for c, p in zip(shift, params, strict=True)
            ]
            self.shift = torch.cat(parts)

    # flatten / unflatten natural parameters ---------------------------------
    def flatten(self, params: tuple[Tensor, ...]) -> Tensor:
        """
        Flatten natural parameters of shapes ``prefix + F + ev_i`` into one tensor
        of shape ``prefix + (T,)``.
        """
        parts = []
        for p, shape in zip(params, self.param_shapes, strict=True):
            prefix = p.shape[: p.dim() - len(shape)]
            parts.append(p.reshape(prefix + (-1,)))
        prefix = torch.broadcast_shapes(*(q.shape[:-1] for q in parts))
        return torch.cat([q.expand(prefix + q.shape[-1:]) for q in parts], -1)

    def unflatten(self, eta: Tensor) -> tuple[Tensor, ...]:
        """Inverse of :meth:`flatten`: ``prefix + (T,)`` to natural parameters ``prefix + F + ev_i``."""
        prefix = eta.shape[:-1]
        return tuple(
            q.reshape(prefix + shape)
            for q, shape in zip(eta.split(self.param_sizes, -1), self.param_shapes, strict=True)
        )

    def log_normalizer(self, eta: Tensor) -> Tensor:
        """:math:`A(\\eta)` summed over features, of shape ``eta.shape[:-1]``."""
        a = self.template._log_normalizer(*self.unflatten(eta))
        nf = len(self.feature_shape)
        return a.sum(tuple(range(-nf, 0))) if nf else a

    def check_natural(self, eta: Tensor) -> None:
        """Raise :class:`ValueError` if some flattened natural parameter leaves the natural parameter space."""
        self.family._check_natural_params(
            *self.unflatten(eta), what="natural parameters of an overlapping membership set"
        )

    def distribution(self, eta: Tensor) -> ExponentialFamily:
        """The family member (batch ``prefix + F``) with flattened natural parameter ``eta`` (``prefix + (T,)``)."""
        return self.family._from_natural_params(*self.unflatten(eta), **self.fixed)

    # statistics of data ---------------------------------------------------
    def statistics(self, x: Tensor) -> Tensor:
        """
        Augmented statistics ``[t(x), k(x), 1]`` of shape ``B + (T + 2,)`` for data
        of shape ``B + F + event``.
        """
        nb = x.dim() - len(self.event_shape)
        if nb < 0 or x.shape[nb:] != self.event_shape:
            raise ValueError(
                f"data points must have shape {tuple(self.event_shape)}, got data of shape {tuple(x.shape)}"
            )
        batch = x.shape[:nb]
        stats = self.template.sufficient_statistics(x)
        parts = [t.to(self.dtype).reshape(batch + (-1,)) for t in stats]
        k = self.template.log_carrier_measure(x).to(self.dtype)
        nf = len(self.feature_shape)
        if nf:
            k = k.sum(tuple(range(-nf, 0)))
        parts.append(k.reshape(batch + (1,)))
        parts.append(torch.ones(batch + (1,), dtype=self.dtype, device=k.device))
        return torch.cat(parts, -1)


def augment_natural(layout: ExpFamLayout, eta: Tensor) -> Tensor:
    """``[eta, 1, -A(eta)]`` of shape ``prefix + (T + 2,)``; its dot product with ``[t, k, 1]`` is the log density."""
    log_norm = layout.log_normalizer(eta)
    return torch.cat([eta, torch.ones_like(log_norm).unsqueeze(-1), -log_norm.unsqueeze(-1)], -1)


def set_natural_params(z: Tensor, eta0: Tensor, eta_k: Tensor) -> Tensor:
    r"""
    :math:`\eta_0 + z\,\eta_K` for membership vectors ``z`` (``batch + (K,)``)
    and per-cluster flattened natural parameters ``eta_k`` (``(K, T)`` or
    ``batch' + (K, T)`` with ``batch'`` aligned with ``batch``).
    """
    z = z.to(eta_k.dtype)
    if eta_k.dim() == 2:
        return eta0 + z @ eta_k
    return eta0 + (z.unsqueeze(-2) @ eta_k).squeeze(-2)


# ---------------------------------------------------------------------- #
# The two Pyro sites
# ---------------------------------------------------------------------- #
def set_log_prior(log_pi: Tensor, log1m_pi: Tensor, sets: Tensor, renormalize: bool = False) -> Tensor:
    r"""
    :math:`\log p(z = s)` under independent Bernoulli memberships, for each row of ``sets``: ``batch + (S,)``;
    with ``renormalize=True``, renormalised over the given rows (the prior restricted to the enumerated sets;
    a no-op when all ``2^K`` sets are given).
    """
    sets = sets.to(log_pi.dtype)
    lp = (sets @ (log_pi - log1m_pi).unsqueeze(-1)).squeeze(-1) + log1m_pi.sum(-1, keepdim=True)
    if renormalize and sets.shape[0] < 2 ** sets.shape[-1]:
        lp = lp - lp.logsumexp(-1, keepdim=True)
    return lp


class MembershipSets(dist.TorchDistribution):
    r"""
    Prior of a membership set :math:`z \in \{0,1\}^K` with independent
    :math:`z_k \sim \mathrm{Bernoulli}(\pi_k)`, as *one* discrete site whose
    value is the **index** ``s`` of the set in ``sets`` (so that
    ``TraceEnum_ELBO`` and ``infer_discrete`` enumerate it like a
    ``Categorical``); the set itself is ``sets[s]``.

    ``log_prob(s)`` is the exact Bernoulli-product probability of ``sets[s]``.
    With all ``2^K`` sets this is a normalised Categorical.  In the approximate
    mode (only the sets of size ``<= max_set_size`` enumerated) the support is
    truncated: enumeration sums the joint over those sets only (a lower bound on
    the marginal likelihood, exact when ``max_set_size >= K``), and ``sample``
    draws from the prior restricted to them.

    :param Tensor log_pi: :math:`\log\pi_k`, shape ``batch + (K,)``.
    :param Tensor log1m_pi: :math:`\log(1-\pi_k)`, same shape.
    :param Tensor sets: the enumerated sets, a 0/1 matrix ``(S, K)`` from
        :func:`membership_sets`.
    :param Tensor logits: alternatively, unnormalised log probabilities of the
        ``S`` set indices (shape ``batch + (S,)``), e.g. posterior marginals;
        this is how Pyro's ``TraceEnum_ELBO.compute_marginals`` rebuilds the
        site's distribution.  ``sets`` is then optional.
    """

    arg_constraints = {}
    has_enumerate_support = True

    def __init__(
        self,
        log_pi: Tensor | None = None,
        log1m_pi: Tensor | None = None,
        sets: Tensor | None = None,
        batch_shape=None,
        validate_args=None,
        *,
        logits: Tensor | None = None,
    ):
        self.sets = sets
        if logits is not None:
            if log_pi is not None or log1m_pi is not None:
                raise ValueError("MembershipSets: give either log_pi and log1m_pi, or logits, not both")
            self.log_prior = logits - logits.logsumexp(-1, keepdim=True)
        elif log_pi is None or log1m_pi is None or sets is None:
            raise ValueError("MembershipSets needs log_pi, log1m_pi and sets (or logits)")
        else:
            self.log_prior = set_log_prior(log_pi, log1m_pi, sets)
        if batch_shape is None:
            batch_shape = self.log_prior.shape[:-1]
        super().__init__(torch.Size(batch_shape), torch.Size(), validate_args=False)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(MembershipSets, _instance)
        new.sets, new.log_prior = self.sets, self.log_prior
        super(MembershipSets, new).__init__(torch.Size(batch_shape), torch.Size(), validate_args=False)
        return new

    @constraints.dependent_property(is_discrete=True, event_dim=0)
    def support(self):
        return constraints.integer_interval(0, self.log_prior.shape[-1] - 1)

    def log_prob(self, value: Tensor) -> Tensor:
        value = value.long()
        if self.log_prior.dim() == 1:
            lp = self.log_prior[value]
        else:
            lp = Vindex(self.log_prior)[..., value]
        shape = torch.broadcast_shapes(lp.shape, self.batch_shape)
        if lp.dim() == 2 and lp.shape[-1] == 1 and shape[-1] > 1 and len(shape) == 2:
            # enumerated sets broadcast along the data dimension: materialise in the
            # (data, sets) memory layout of OverlapLikelihood.log_prob, so that Pyro's
            # contraction over the sets is a batched dot product without copies
            return lp.mT.expand(shape[1], shape[0]).contiguous().mT
        return lp.expand(shape)

    def sample(self, sample_shape=torch.Size()):
        with torch.no_grad():
            logits = self.log_prior.expand(self.batch_shape + self.log_prior.shape[-1:])
            return torch.distributions.Categorical(logits=logits).sample(sample_shape)

    def enumerate_support(self, expand: bool = True) -> Tensor:
        values = torch.arange(self.log_prior.shape[-1], device=self.log_prior.device)
        values = values.reshape((-1,) + (1,) * len(self.batch_shape))
        if expand:
            values = values.expand((-1,) + self.batch_shape)
        return values


class OverlapLikelihood(dist.TorchDistribution):
    r"""
    Observation of an overlapping mixture given membership sets: the
    normalised product of the active clusters' densities (and the always-on
    background), i.e. the family member with natural parameter
    :math:`\eta_0 + \sum_k z_k (\eta_k + c)`, :math:`z = ` ``sets[index]``.

    When ``index`` is broadcast along the data dimension (as it is when
    ``TraceEnum_ELBO`` or ``infer_discrete`` enumerates the membership-set
    site), ``log_prob`` computes the log-likelihood of every enumerated set and
    every data point as one matrix product (shape ``enum + (N,)``); otherwise
    point by point.

    :param Tensor index: indices of membership sets into ``sets``, shape
        ``batch`` whose last dimension is the data dimension (or 1).
    :param Tensor sets: membership sets ``(S, K)``.
    :param Tensor eta0: flattened background natural parameter, shape ``(T,)``.
    :param Tensor eta_k: flattened per-cluster natural parameters, carrier
        shift included, shape ``(K, T)`` (or with batch dimensions aligned
        with those of ``index``).
    :param ExpFamLayout layout: the family.
    """

    arg_constraints = {}

    def __init__(
        self, index: Tensor, sets: Tensor, eta0: Tensor, eta_k: Tensor, layout: ExpFamLayout, batch_shape=None
    ):
        self.index, self.sets, self.eta0, self.eta_k, self.layout = index, sets, eta0, eta_k, layout
        if batch_shape is None:
            batch_shape = torch.broadcast_shapes(index.shape, eta_k.shape[:-2])
        super().__init__(torch.Size(batch_shape), layout.event_shape, validate_args=False)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(OverlapLikelihood, _instance)
        for key in ("index", "sets", "eta0", "eta_k", "layout"):
            setattr(new, key, getattr(self, key))
        super(OverlapLikelihood, new).__init__(torch.Size(batch_shape), self.event_shape, validate_args=False)
        return new

    @constraints.dependent_property(is_discrete=False, event_dim=0)
    def support(self):
        return constraints.independent(self.layout.template.support, len(self.layout.feature_shape))

    def _set_natural(self) -> Tensor:
        z = self.sets.to(self.eta_k.dtype)[self.index.long()]
        eta = set_natural_params(z, self.eta0, self.eta_k)
        if self.layout.validate_sets:
            self.layout.check_natural(eta)
        return eta

    def log_prob(self, value: Tensor) -> Tensor:
        stats = self.layout.statistics(value)  # B + (T+2,)
        eta = augment_natural(self.layout, self._set_natural())  # index batch + (T+2,)
        if stats.dim() == 2 and eta.dim() >= 2 and eta.shape[-2] == 1 and stats.shape[0] > 1:
            # enumerated sets, broadcast along the data dimension: one GEMM, computed as
            # (N, ...S) and returned transposed (the layout Pyro's contraction over S needs)
            lp = (stats @ eta.squeeze(-2).mT).mT
        else:
            lp = (eta * stats).sum(-1)
        return lp.expand(torch.broadcast_shapes(lp.shape, self.batch_shape))

    def sample(self, sample_shape=torch.Size()):
        d = self.layout.distribution(self._set_natural().detach())
        d = d.expand(self.batch_shape + self.layout.feature_shape)
        with torch.no_grad():
            return d.sample(sample_shape)
