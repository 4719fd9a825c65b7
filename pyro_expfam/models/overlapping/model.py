# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
r"""
The overlapping mixture model (Heller & Ghahramani 2007) as a Pyro model/guide pair.

Generative model, for ``N`` points and ``K`` clusters::

    pi        ~ FiniteBetaPrior (pi_k ~ Beta(alpha/K, 1))  or  IBPPrior (stick-breaking, truncated at K)
    eta_k     ~ conjugate prior of the cluster family,               k = 1..K
    z_i       ~ prod_k Bernoulli(pi_k)                               (one site over membership sets)
    x_i | z_i ~ family member with natural parameter eta_0 + sum_k z_ik (eta_k + c)

``eta_0`` is an always-on background so that a point in no cluster still
has a proper density: fixed (``background="fixed"``: uniform for
binary/categorical features, a broad Gaussian for real ones) or a learned
global site with the family's conjugate prior (``background="learned"``:
``eta_0 ~ conjugate prior``, sites ``"background_*"``), which can say "feature
off unless a cluster turns it on"; ``c`` is the family's carrier shift (zero for families
with constant carrier measure).

The membership set is **one** site, ``"z"``, whose value is the index ``s``
of the set in :attr:`OverlappingMixtureModel.membership_sets` (the set is
``membership_sets[s]``), enumerated over ``2^K`` sets (or the sets of size
``<= max_set_size``); enumerating ``K`` Bernoulli sites inside a
``pyro.plate`` over clusters would silently compute a wrong "lockstep" loss.
The likelihood of all enumerated sets is one matrix product (see
:mod:`~pyro_expfam.models.overlapping.likelihood`).

Use with ``TraceEnum_ELBO(max_plate_nesting=1)``.  The data plate is
``pyro.plate("data", N, dim=-1)``; global sites carry their cluster and
feature dimensions as event dimensions.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable

import pyro
import pyro.distributions as dist
import torch
from pyro import poutine
from torch import Tensor

from ...util import NotFittedError, check_device
from .families import ClusterFamily, _check_background
from .generic import make_cluster_family
from .likelihood import (
    ExpFamLayout,
    MembershipSets,
    OverlapLikelihood,
    augment_natural,
    membership_sets,
    set_log_prior,
)
from .marginal import OverlapMarginal
from .priors import FiniteBetaPrior, IBPPrior, MembershipPrior

__all__ = ["OverlappingMixtureModel"]

_COUNTER = itertools.count()
_PRIORS: dict[str, Callable[[float], MembershipPrior]] = {"finite": FiniteBetaPrior, "ibp": IBPPrior}
_GUIDES = {"map": False, "point": False, "delta": False, "mean_field": True, "meanfield": True, "normal": True}
#: entries of one (points x sets) block in posterior computations
_BLOCK = 2**22


class OverlappingMixtureModel:
    r"""
    Overlapping mixture model, Pyro model/guide pair.

    :param family: cluster family: a name (``"bernoulli"``, ``"normal"``,
        ``"normal_full"``, ``"categorical"``, ``"one_hot_categorical"``), a
        :class:`~pyro_expfam.models.overlapping.families.ClusterFamily`
        instance (to set hyperparameters), a distribution class of the core
        with a dedicated cluster family, or an instance of any other
        :class:`~pyro_expfam.distributions.ExponentialFamily` whose product
        is exact (its batch shape is the feature shape).
    :param int num_clusters: ``K`` (the truncation level of the IBP).
    :param prior: ``"finite"`` (:math:`\pi_k\sim\mathrm{Beta}(\alpha/K,1)`),
        ``"ibp"`` (stick-breaking Indian buffet process truncated at ``K``), or
        a :class:`~pyro_expfam.models.overlapping.priors.MembershipPrior`.
    :param float alpha: concentration of the membership prior.
    :param int max_set_size: ``None`` for exact enumeration of all ``2^K``
        membership sets (``K <= 16``); ``m`` to enumerate only the sets of
        size ``<= m`` (the approximate large-K mode: the loss is then a lower
        bound on the log marginal likelihood, exact when ``m >= K``, and
        posteriors are restricted to those sets).
    :param str guide: ``"map"`` (point estimates of the global sites) or
        ``"mean_field"`` (an independent Normal per global site).
    :param str name: prefix of this model's names in Pyro's param store
        (default: unique per instance).
    :param str background: ``"fixed"`` (the always-on background of the
        family, not learned), ``"learned"`` (a global site with the family's
        conjugate prior, see :mod:`~pyro_expfam.models.overlapping.families`),
        or ``None`` (default) to keep the setting of the ``family`` instance
        (``"fixed"`` for a family given by name).
    :param bool renormalize_sets: with ``max_set_size``, renormalise the
        membership prior over the enumerated sets (the prior *restricted* to
        sets of size ``<= m``, a proper model) instead of dropping the mass of
        the larger sets (the default: a lower bound on the full model).  With
        ``max_set_size=1`` this is an ordinary mixture of ``K`` clusters and
        the background.  No effect with exact enumeration.

    Example::

        >>> m = OverlappingMixtureModel("bernoulli", 3, background="learned")
        >>> _ = m.setup(torch.tensor([[0.0, 1.0], [1.0, 1.0]]))
        >>> sorted(m.global_sites())
        ['background_logits', 'cluster_logits', 'pi_logit']
    """

    def __init__(
        self,
        family="bernoulli",
        num_clusters: int = 8,
        prior: str | MembershipPrior = "finite",
        alpha: float = 1.0,
        max_set_size: int | None = None,
        guide: str = "map",
        name: str | None = None,
        background: str | None = None,
        renormalize_sets: bool = False,
    ):
        if isinstance(num_clusters, bool) or not isinstance(num_clusters, int) or num_clusters < 1:
            raise ValueError(f"num_clusters must be a positive int, got {num_clusters!r}")
        self.family: ClusterFamily = make_cluster_family(family)
        if background is not None:
            self.family.background_mode = _check_background(background)
        self.num_clusters = num_clusters
        if isinstance(prior, MembershipPrior):
            self.prior = prior
        elif isinstance(prior, str) and prior.lower() in _PRIORS:
            self.prior = _PRIORS[prior.lower()](alpha)
        else:
            raise ValueError(f"prior must be 'finite', 'ibp' or a MembershipPrior, got {prior!r}")
        self.max_set_size = max_set_size
        if not isinstance(renormalize_sets, bool):
            raise ValueError(f"renormalize_sets must be a bool, got {renormalize_sets!r}")
        self.renormalize_sets = renormalize_sets
        self._sets = membership_sets(num_clusters, max_set_size)  # raises for K too large
        if not isinstance(guide, str) or guide.lower() not in _GUIDES:
            raise ValueError(f"guide must be 'map' or 'mean_field', got {guide!r}")
        self.guide_type = "mean_field" if _GUIDES[guide.lower()] else "map"
        self.name = name if name is not None else f"overlapping_mixture_{next(_COUNTER)}"
        self.params_: dict[str, Tensor] | None = None

    # ------------------------------------------------------------------ #
    # set-up
    # ------------------------------------------------------------------ #
    @property
    def num_membership_sets(self) -> int:
        """Number of enumerated membership sets ``S``."""
        return self._sets.shape[0]

    @property
    def membership_sets(self) -> Tensor:
        """The enumerated membership sets, a 0/1 matrix ``(S, K)``."""
        return self._sets

    @property
    def layout(self) -> ExpFamLayout:
        """The flattened family (:class:`~pyro_expfam.models.overlapping.likelihood.ExpFamLayout`), after set-up."""
        self._check_setup()
        return self.family.layout

    def _check_setup(self) -> None:
        if not self.family.is_setup:
            raise NotFittedError(f"{type(self).__name__} has not seen data yet: call setup(X), initialize(X) or fit(X)")

    def setup(self, X) -> Tensor:
        """
        Validate ``X`` and set the data-dependent hyperparameters (once; later
        calls only validate and move the model to ``X``'s device and dtype).

        :param X: data, shape ``(N,) + point shape``.
        :returns: ``X`` as a checked floating tensor.
        """
        X = self.family.check_data(X)
        if not self.family.is_setup:
            self.family.setup(X)
            self._sets = self._sets.to(dtype=X.dtype, device=X.device)
        else:
            expected = tuple(self.family.layout.event_shape)
            if tuple(X.shape[1:]) != expected:
                raise ValueError(f"X must have points of shape {expected}, got {tuple(X.shape[1:])}")
            self._follow(X)
        return X

    def _follow(self, X: Tensor) -> None:
        """Move the model to ``X``'s device and dtype if they differ."""
        ref = self._sets
        if ref.device != X.device or ref.dtype != X.dtype:
            self.to(dtype=X.dtype, device=X.device)

    def to(self, dtype: torch.dtype | None = None, device=None) -> OverlappingMixtureModel:
        """
        Move hyperparameters and fitted parameters to ``dtype``/``device``.

        :returns: ``self``.
        """
        if device is not None:
            device = check_device(device)
        self._sets = self._sets.to(dtype=dtype, device=device)
        if self.family.is_setup:
            self.family.to(dtype=dtype, device=device)
        if self.params_ is not None:
            self.params_ = {k: v.to(dtype=dtype, device=device) for k, v in self.params_.items()}
            self._clear_param_store()
        return self

    def global_sites(self) -> dict[str, torch.Size]:
        """Global sample sites and their event shapes."""
        self._check_setup()
        return {
            **self.prior.sites(self.num_clusters),
            **self.family.sites(self.num_clusters),
            **self.family.background_sites(),
        }

    def init_params(self, X, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """
        Initial guide parameters from the data: cluster parameters at k-means++
        seed points (see the family), membership probabilities
        ``pi_k = max(0.5 * 0.7^k, 0.01)``.

        :param X: data.
        :param torch.Generator generator: random generator (CPU).
        """
        X = self.setup(X)
        k = self.num_clusters
        values = self.family.init_values(X, k, generator)
        # decreasing initial membership probabilities break the symmetry between clusters
        pi = 0.5 * X.new_tensor(0.7).pow(torch.arange(k, dtype=X.dtype, device=X.device)).clamp(min=0.01)
        values[self.prior.site] = self.prior.init_value(pi)
        if self.family.learn_background:
            values.update(self.family.init_background_values(X))
        params = {}
        for site in self.global_sites():
            params[f"{site}.loc"] = values[site].detach().clone().to(dtype=X.dtype, device=X.device)
            if self.guide_type == "mean_field":
                params[f"{site}.log_scale"] = torch.full_like(params[f"{site}.loc"], -3.0)
        return params

    def initialize(self, X, generator: torch.Generator | None = None) -> OverlappingMixtureModel:
        """
        Set up hyperparameters and initial guide parameters from ``X`` (what
        the guide uses when it first runs).

        :returns: ``self``.
        """
        self.params_ = self.init_params(X, generator)
        self._clear_param_store()
        return self

    # ------------------------------------------------------------------ #
    # Pyro model and guide
    # ------------------------------------------------------------------ #
    def _param_name(self, key: str) -> str:
        return f"{self.name}.{key}"

    def _clear_param_store(self) -> None:
        store = pyro.get_param_store()
        for key in list(store.keys()):
            if key.startswith(self.name + "."):
                del store[key]

    def model(
        self,
        data: Tensor | None = None,
        num_data: int | None = None,
        subsample_size: int | None = None,
        subsample: Tensor | None = None,
    ) -> Tensor:
        """
        The Pyro model.

        :param Tensor data: observed data ``(N,) + point shape``, or ``None`` to
            generate ``num_data`` points.
        :param int num_data: number of points when ``data`` is ``None``.
        :param int subsample_size: minibatch size (subsampling the data plate).
        :param Tensor subsample: explicit minibatch indices.
        :returns: the (observed or generated) data of the plate's points.
        """
        data, num_data, log_pi, log1m_pi, eta_k, eta0 = self._globals_prelude(data, num_data)
        with self._data_plate(data, num_data, subsample_size, subsample) as x:
            if self.renormalize_sets:
                prior = MembershipSets(logits=set_log_prior(log_pi, log1m_pi, self._sets, True), sets=self._sets)
            else:
                prior = MembershipSets(log_pi, log1m_pi, self._sets)
            s = pyro.sample("z", prior, infer={"enumerate": "parallel"})
            return pyro.sample("x", OverlapLikelihood(s, self._sets, eta0, eta_k, self.family.layout), obs=x)

    def marginal_model(
        self,
        data: Tensor | None = None,
        num_data: int | None = None,
        subsample_size: int | None = None,
        subsample: Tensor | None = None,
    ) -> Tensor:
        """
        The same model with the membership sets summed out analytically
        (:class:`~pyro_expfam.models.overlapping.marginal.OverlapMarginal`):
        its log density equals the enumerated marginal that ``TraceEnum_ELBO``
        computes for :meth:`model`, at a fraction of the cost (a blocked,
        fused GEMM + logsumexp).  Use it with ``Trace_ELBO`` (or
        ``TraceEnum_ELBO``) and :meth:`guide`; :meth:`fit` uses it by default.
        Arguments as for :meth:`model`.
        """
        data, num_data, log_pi, log1m_pi, eta_k, eta0 = self._globals_prelude(data, num_data)
        with self._data_plate(data, num_data, subsample_size, subsample) as x:
            fn = OverlapMarginal(
                log_pi, log1m_pi, eta0, eta_k, self._sets, self.family.layout, renormalize=self.renormalize_sets
            )
            return pyro.sample("x", fn, obs=x)

    @contextlib.contextmanager
    def _data_plate(self, data, num_data, subsample_size, subsample):
        """The data plate (subsampled if asked); yields the observed rows of the minibatch, or ``None``."""
        full = subsample is None and (subsample_size is None or subsample_size >= num_data)
        with pyro.plate(
            "data", num_data, subsample_size=subsample_size, subsample=subsample, dim=-1, device=self._sets.device
        ) as idx:
            yield None if data is None else (data if full else data.index_select(0, idx))

    def _globals_prelude(self, data, num_data):
        if data is not None:
            if not self.family.is_setup:
                data = self.setup(data)
            num_data = data.shape[0]
        else:
            self._check_setup()
            if num_data is None:
                raise ValueError("model(data=None) needs num_data, the number of points to generate")
        k = self.num_clusters
        log_pi, log1m_pi = self.prior.sample(k, self._sets)
        eta_k = self.family.sample(k)
        eta0 = self.family.sample_background()
        return data, num_data, log_pi, log1m_pi, eta_k, eta0

    def guide(
        self,
        data: Tensor | None = None,
        num_data: int | None = None,
        subsample_size: int | None = None,
        subsample: Tensor | None = None,
    ) -> None:
        """
        The guide over the global sites: point masses (``guide="map"``) or
        independent Normals (``guide="mean_field"``); the membership sets are
        enumerated in the model.  Parameters live in Pyro's param store under
        ``<name>.<site>.loc`` (and ``.log_scale``), initialised by
        :meth:`initialize` (called on the first run with data if needed).
        After your own ``SVI`` loop, call :meth:`sync_params_from_store` before
        using the fitted quantities.  Arguments as for :meth:`model`.
        """
        if self.params_ is None:
            if data is None:
                raise NotFittedError("the guide needs initial parameters: call initialize(X) or fit(X) first")
            self.initialize(data)
        for site, shape in self.global_sites().items():
            init = self.params_[f"{site}.loc"]
            loc = pyro.param(self._param_name(f"{site}.loc"), lambda init=init: init.clone())
            if self.guide_type == "mean_field":
                init_s = self.params_[f"{site}.log_scale"]
                log_scale = pyro.param(self._param_name(f"{site}.log_scale"), lambda init_s=init_s: init_s.clone())
                pyro.sample(site, dist.Normal(loc, log_scale.exp()).to_event(len(shape)))
            else:
                pyro.sample(site, dist.Delta(loc, event_dim=len(shape)))

    def sync_params_from_store(self) -> None:
        """
        Copy this model's parameters from Pyro's param store into ``params_``.

        :meth:`fit` keeps ``params_`` up to date itself; call this after running
        your own ``SVI`` loop on :meth:`model`/:meth:`guide`, before using the
        fitted quantities (:meth:`map_sets`, :meth:`membership_probs`, ...),
        which read ``params_``.

        :raises NotFittedError: if the guide has not created its parameters yet.
        """
        self._check_fitted()
        store = pyro.get_param_store()
        missing = [k for k in self.params_ if self._param_name(k) not in store]
        if missing:
            raise NotFittedError(
                f"no parameters {missing} in Pyro's param store: run the guide (e.g. one SVI step) first"
            )
        self.params_ = {k: store[self._param_name(k)].detach().clone() for k in self.params_}

    # ------------------------------------------------------------------ #
    # fitted quantities (plug-in at the guide's location)
    # ------------------------------------------------------------------ #
    def _check_fitted(self) -> None:
        if self.params_ is None or not self.family.is_setup:
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet: call fit(X) first")

    def _site_values(self) -> dict[str, Tensor]:
        self._check_fitted()
        return {site: self.params_[f"{site}.loc"] for site in self.global_sites()}

    def _globals(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        values = self._site_values()
        log_pi, log1m_pi = self.prior.log_probs(values[self.prior.site])
        return log_pi, log1m_pi, self.family.flat_clusters(values), self.family.flat_background(values)

    @property
    def membership_prior_(self) -> Tensor:
        r"""Membership probabilities :math:`\pi_k` (shape ``(K,)``) at the guide's location."""
        return self._globals()[0].exp()

    def _check_X(self, X) -> Tensor:
        self._check_fitted()
        return self.setup(X)

    def _log_joint_blocks(self, X: Tensor):
        """Yield ``(rows, log p(z=s, x_n))`` blocks of shape ``(n, S)``."""
        log_pi, log1m_pi, eta_k, eta0 = self._globals()
        sets = self._sets
        log_prior = set_log_prior(log_pi, log1m_pi, sets, self.renormalize_sets)
        eta = augment_natural(self.family.layout, eta0 + sets @ eta_k)  # (S, T+2)
        rows = max(1, _BLOCK // sets.shape[0])
        for start in range(0, X.shape[0], rows):
            stats = self.family.layout.statistics(X[start : start + rows])
            yield start, stats @ eta.T + log_prior

    @torch.no_grad()
    def log_likelihood(self, X) -> Tensor:
        r"""
        Held-out log-likelihood of each point, :math:`\log\sum_z p(z)p(x_i\mid z)`
        at the guide's location (a lower bound in the approximate mode).

        :param X: data ``(N,) + point shape``.
        :returns: tensor of shape ``(N,)``.
        """
        X = self._check_X(X)
        out = X.new_empty(X.shape[0])
        for start, block in self._log_joint_blocks(X):
            out[start : start + block.shape[0]] = block.logsumexp(-1)
        return out

    def score(self, X) -> float:
        """Mean held-out log-likelihood per point."""
        return float(self.log_likelihood(X).mean())

    @torch.no_grad()
    def membership_probs(self, X) -> Tensor:
        r"""
        Posterior membership probabilities :math:`P(z_{ik}=1\mid x_i)`, shape ``(N, K)``.

        :param X: data ``(N,) + point shape``.
        """
        X = self._check_X(X)
        out = X.new_empty(X.shape[0], self.num_clusters)
        for start, block in self._log_joint_blocks(X):
            out[start : start + block.shape[0]] = block.softmax(-1) @ self._sets
        return out

    @torch.no_grad()
    def map_sets(self, X) -> Tensor:
        """
        Most probable membership set of each point (among the enumerated sets),
        a 0/1 tensor of shape ``(N, K)``.

        :param X: data ``(N,) + point shape``.
        """
        X = self._check_X(X)
        out = X.new_empty(X.shape[0], self.num_clusters)
        for start, block in self._log_joint_blocks(X):
            out[start : start + block.shape[0]] = self._sets[block.argmax(-1)]
        return out

    def infer_memberships(self, X, temperature: int = 0) -> Tensor:
        """
        Membership sets by Pyro's :func:`~pyro.infer.infer_discrete` on the
        model, with the global sites at the guide's location: the MAP sets
        (``temperature=0``, equal to :meth:`map_sets`) or posterior samples
        (``temperature=1``).

        :param X: data.
        :param int temperature: 0 or 1.
        :returns: tensor ``(N, K)``.
        """
        X = self._check_X(X)
        values = self._site_values()
        conditioned = poutine.condition(self.model, data=values)
        tr = poutine.trace(
            pyro.infer.infer_discrete(conditioned, first_available_dim=-2, temperature=temperature)
        ).get_trace(X)
        return self._sets[tr.nodes["z"]["value"]]

    def cluster_distributions(self):
        r"""
        The learned clusters: the family member followed by a point in exactly
        one cluster, natural parameter :math:`\eta_0 + \eta_k (+c)`; batch shape
        ``(K,) + feature shape``.
        """
        _, _, eta_k, eta0 = self._globals()
        return self.family.layout.distribution((eta0 + eta_k).detach())

    def background_distribution(self):
        """The always-on background (the distribution of a point in no cluster), fixed or learned."""
        self._check_fitted()
        if not self.family.learn_background:
            return self.family.layout.template
        return self.family.layout.distribution(self._globals()[3].detach())

    def set_distribution(self, z) -> object:
        """
        The distribution of points with membership sets ``z`` (0/1, shape ``batch + (K,)``).

        :param z: membership sets.
        """
        _, _, eta_k, eta0 = self._globals()
        z = torch.as_tensor(z, dtype=eta0.dtype, device=eta0.device)
        if z.shape[-1:] != (self.num_clusters,):
            raise ValueError(f"z must have last dimension {self.num_clusters}, got shape {tuple(z.shape)}")
        return self.family.layout.distribution((eta0 + z @ eta_k).detach())

    @torch.no_grad()
    def sample(self, num_samples: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """
        Sample new data from the fitted model (global sites at the guide's location).

        :param int num_samples: number of points.
        :param torch.Generator generator: random generator (CPU or the model's device).
        :returns: ``(X, Z)``: points and their membership sets.
        """
        if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
            raise ValueError(f"num_samples must be a positive int, got {num_samples!r}")
        log_pi, _, eta_k, eta0 = self._globals()
        device = eta0.device
        gen_device = generator.device if generator is not None else device
        pi = log_pi.exp().expand(num_samples, self.num_clusters).to(gen_device)
        z = torch.bernoulli(pi, generator=generator).to(device)
        d = self.family.layout.distribution(eta0 + z @ eta_k)
        seed = int(torch.randint(2**62, (1,), generator=generator, device=gen_device))
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(seed)
            x = d.sample()
        return x, z
