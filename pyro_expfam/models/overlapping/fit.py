# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""
:class:`OverlappingMixture`: the overlapping mixture model as a scikit-learn
estimator on the shared template :class:`~pyro_expfam.mixture.base.BaseMixture`,
fitted by Pyro's :class:`~pyro.infer.SVI` with any :mod:`pyro.optim` optimiser.

The estimator *holds* an :class:`~pyro_expfam.models.overlapping.model.OverlappingMixtureModel`
(the plain Pyro model/guide pair) as the fitted attribute ``model_``; hyper-parameters
live in the constructor, as in scikit-learn.

Design notes (for the contributors who plug in initialisations and model options):

- initial guide parameters come from :data:`INIT_STRATEGIES`, a registry of
  functions ``(model, X, generator) -> params`` selected by the ``init_params``
  hyper-parameter (or a callable passed directly); register new ones with
  :func:`register_init_strategy`;
- ``model_options`` (a dict) is passed to the
  :class:`~pyro_expfam.models.overlapping.model.OverlappingMixtureModel`
  constructor as keyword arguments;
- one iteration of the template loop (``max_iter``) is one SVI step;
- every fit runs in a private Pyro param store (the global one is restored
  afterwards, also when the fit is interrupted), so two estimators never
  share parameters; an SVI step that samples (mean-field guide) runs in a
  forked torch RNG seeded from the estimator's generator, so the global RNG
  is not touched (``random_state=None`` draws one seed from it, as in
  :func:`~pyro_expfam.util.torch_generator`).

Layout: this module holds the estimator (hyper-parameters, data checks,
initialisation, the template's hooks, prediction); the SVI training loop and
the IBP's growth are in :mod:`~pyro_expfam.models.overlapping.svi`, saving and
resuming in :mod:`~pyro_expfam.models.overlapping.persistence`, the argument
checks in :mod:`~pyro_expfam.models.overlapping.checks`, the MAP-EM start in
:mod:`~pyro_expfam.models.overlapping.select` and
:mod:`~pyro_expfam.models.overlapping.em`.
"""

from __future__ import annotations

import copy
import math
import numbers
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ... import distributions as _distributions
from ...mixture.base import BaseMixture
from ...util import ConvergenceWarning, check_float_resolution, clone_nested
from . import families as _families
from . import priors as _priors
from .checks import _check_int, _check_real, _data_ndim, _refuse_renamed, _RefuseRenamed
from .gaussian import is_gaussian
from .generic import make_cluster_family
from .model import OverlappingMixtureModel
from .persistence import _family_from_spec, get_state, plain_hyperparameters, set_state
from .select import em_init, select_structure
from .svi import _make_optimizer, _private_param_store, _SVIRun, grow_clusters

__all__ = ["INIT_STRATEGIES", "OverlappingMixture", "register_init_strategy"]

#: enumerated (points x sets) entries per step above which ``batch_size="auto"`` subsamples
_AUTO_ENTRIES = 2**26

#: ``init_params`` strategies: ``name -> fn(model, X, generator) -> dict of initial guide parameters``
INIT_STRATEGIES: dict[str, Callable[[OverlappingMixtureModel, Tensor, torch.Generator], dict[str, Tensor]]] = {
    # the family's own initialisation (k-means++ seeds or small random logits), see OverlappingMixtureModel.init_params
    "auto": lambda model, X, generator: model.init_params(X, generator),
    # MAP-EM from data-driven starts (NMF / k-means), the IBP's number of clusters by held-out likelihood
    "em": em_init,
    # the default: "em" for Bernoulli clusters and for Gaussian clusters with the finite prior (where its quality
    # was measured, benchmarks/README.md), "auto" for every other family
    "default": lambda model, X, generator: _default_strategy(model)(model, X, generator),
}


def _default_strategy(model: OverlappingMixtureModel) -> Callable:
    """What ``init_params="default"`` runs: ``"em"`` for Bernoulli clusters and Gaussian clusters with the finite
    prior, the family's own (``"auto"``) otherwise."""
    if isinstance(model.family, _families.BernoulliClusters):
        return em_init
    if is_gaussian(model) and not isinstance(model.prior, _priors.IBPPrior):
        return em_init
    return INIT_STRATEGIES["auto"]


_GAUSSIAN_FAMILIES = (_families.NormalClusters, _families.MultivariateNormalClusters)


def register_init_strategy(
    name: str, fn: Callable[[OverlappingMixtureModel, Tensor, torch.Generator], dict[str, Tensor]]
) -> None:
    """
    Register an initialisation strategy for ``OverlappingMixture(init_params=name)``.

    :param str name: the strategy's name.
    :param fn: ``fn(model, X, generator) -> params``: initial guide parameters
        (the dict :meth:`OverlappingMixtureModel.init_params` returns) for the
        set-up ``model`` on the (centred) data tensor ``X``, drawing randomness
        only from the CPU ``generator``.

    >>> register_init_strategy("auto_copy", INIT_STRATEGIES["auto"])
    >>> "auto_copy" in INIT_STRATEGIES
    True
    >>> del INIT_STRATEGIES["auto_copy"]
    """
    if not isinstance(name, str) or not callable(fn):
        raise TypeError("register_init_strategy needs a name (str) and a callable fn(model, X, generator)")
    INIT_STRATEGIES[name] = fn


def _resolve_init(init_params) -> Callable:
    if callable(init_params):
        return init_params
    if isinstance(init_params, str) and init_params in INIT_STRATEGIES:
        return INIT_STRATEGIES[init_params]
    raise ValueError(
        f"init_params must be one of {sorted(INIT_STRATEGIES)} or a callable fn(model, X, generator), "
        f"got {init_params!r}"
    )


# ---------------------------------------------------------------------------- #
# the estimator
# ---------------------------------------------------------------------------- #
class OverlappingMixture(BaseMixture, _RefuseRenamed):
    r"""
    Overlapping mixture model (Heller & Ghahramani 2007) as a scikit-learn
    estimator: each point belongs to a *set* of clusters and follows the
    normalised product of their densities (see
    :class:`~pyro_expfam.models.overlapping.model.OverlappingMixtureModel`,
    held after fitting as ``model_``, for the model itself).

    Fitted by Pyro's :class:`~pyro.infer.SVI` (one iteration = one SVI step)
    with the membership sets summed out exactly, ``n_init`` restarts keeping
    the best final ELBO, early stopping, minibatches and, for the IBP prior,
    growth cluster by cluster.  Fitting leaves Pyro's global param store (also
    when interrupted) and, given a ``random_state``, torch's global random
    generator as they were, and
    commits its result only when it finishes: an interrupted refit leaves the
    previous fit intact.  ``warm_start=True`` continues a fit (in memory or
    after :meth:`save`/:meth:`load`) bit-identically: optimiser state,
    minibatch position and generator state are kept.

    Outputs follow the input of :meth:`fit`: numpy arrays for numpy input,
    tensors on the data's device for tensor input.

    :param family: cluster family: ``"bernoulli"`` (binary features),
        ``"normal"`` (diagonal Gaussians), ``"normal_full"``,
        ``"categorical"``, ``"one_hot_categorical"``, a
        :class:`~pyro_expfam.models.overlapping.families.ClusterFamily`
        instance (to set its hyperparameters; it is copied, never modified),
        or an :class:`~pyro_expfam.distributions.ExponentialFamily` instance
        whose product is exact.  Gaussian families are fitted on data centred
        by its mean (``offset_``), which keeps float32 accurate far from 0.
    :param int n_components: number of clusters ``K`` (truncation level of the IBP).
    :param prior: ``"finite"`` or ``"ibp"`` (or a
        :class:`~pyro_expfam.models.overlapping.priors.MembershipPrior`).
    :param float alpha: concentration of the membership prior.
    :param int max_set_size: ``None`` for exact enumeration of all ``2^K``
        membership sets (``K <= 16``); ``m`` to enumerate the sets of size
        ``<= m`` only (a lower bound; for large ``K``).
    :param str guide: ``"map"`` (point estimates) or ``"mean_field"`` (a Normal
        per global site; with the IBP prior it prunes superfluous clusters).
    :param int max_iter: maximum number of SVI steps per initialisation (and
        per growth stage).
    :param float tol: early stopping: stop when the loss (smoothed for
        stochastic fits) has not improved by more than ``tol * |loss|`` for
        ``patience`` steps; ``tol=0`` runs all ``max_iter`` steps.
    :param int patience: see ``tol``.
    :param int n_init: number of initialisations; the one with the best
        final ELBO is kept (the ``"em"`` start already compares several
        starts inside one initialisation).
    :param init_params: initial guide parameters: a name registered in
        :data:`INIT_STRATEGIES` or a callable ``fn(model, X, generator) -> params``.
        ``"default"`` (the default): ``"em"`` for Bernoulli clusters and for
        Gaussian clusters with the finite prior, ``"auto"`` for every other
        family and for Gaussian clusters with the IBP prior; ``"auto"`` (the
        default before ``"default"`` existed): the family's initialisation,
        k-means++ seeds or small random logits; ``"em"``: a MAP fit by EM from
        data-driven starts (NMF for binary data, two starts kept by the MAP
        objective; for Gaussian clusters with the finite prior, 16 k-means
        starts of a natural-parameter EM screened together, the best refined
        and chosen by the model's MAP objective,
        :func:`~pyro_expfam.models.overlapping.gaussian.gaussian_init`; for
        the IBP prior the number of clusters chosen by held-out likelihood),
        :func:`~pyro_expfam.models.overlapping.select.em_init`;
        the SVI fit then starts at that optimum, except for the IBP prior,
        where SVI would revive the clusters left inactive and is not run
        (one loss evaluation, ``n_iter_ == 1``; ``warm_start=True`` continues
        with SVI).  The EM iterations are capped by ``max_iter`` too (at most
        200), so a fit split into two warm-started halves starts differently.
    :param random_state: ``None``, an int, a numpy ``RandomState``/``Generator``
        or a CPU :class:`torch.Generator`: initialisation, minibatches and the
        guide's samples are all drawn from it.
    :param bool warm_start: continue from the fitted (or loaded) state.
    :param verbose: show progress bars (one per initialisation and growth stage).
    :param batch_size: minibatch size (the data plate is subsampled and the
        loss rescaled); ``None`` for full batches; ``"auto"`` uses full
        batches unless ``N x S`` exceeds ``2^26`` enumerated (point, set) pairs.
    :param optimizer: any :mod:`pyro.optim` optimiser or scheduler (a fresh
        copy is used at every fit; a scheduler is stepped once per epoch, with
        the epoch's mean loss for ``ReduceLROnPlateau``); ``None`` for
        ``pyro.optim.Adam({"lr": 0.05})``.
    :param str objective: ``"marginal"`` (the sets summed out by
        :meth:`~pyro_expfam.models.overlapping.model.OverlappingMixtureModel.marginal_model`,
        ``Trace_ELBO``) or ``"enum"`` (``TraceEnum_ELBO`` on the enumerated
        model); the same loss.
    :param int num_particles: ELBO particles (for ``guide="mean_field"``).
    :param grow: ``True``, ``False`` or ``"auto"`` (true for the IBP prior):
        initialise by growing the model one cluster at a time (each stage
        fitted for up to ``max_iter`` steps, in stick-breaking order) until
        the newest cluster's expected membership falls below
        ``min_usage * N``; the clusters never reached start with negligible
        ``pi``.
    :param float min_usage: see ``grow``.
    :param str background: the always-on background :math:`\eta_0`:
        ``"learned"`` (the default; a global site with the family's conjugate
        prior, so "feature off unless a cluster turns it on" and points in no
        cluster are expressible), ``"fixed"`` (the model before the learned
        background existed: uniform logits for Bernoulli/categorical, the
        family's fixed background for Gaussians) or ``None`` (the cluster
        family's own setting).  A ``"background"`` key in ``model_options``
        takes precedence.
    :param str structure: ``"auto"`` (the default) or ``"overlapping"``.
        ``"auto"``: when the initialisation is MAP-EM (``init_params="em"``,
        or ``"default"`` on Bernoulli clusters), the family is not Gaussian
        (there the choice is not measured and its generic EM is slow), the
        prior is ``"finite"`` and there are at least 10 points,
        the overlapping model and its one-cluster-per-point counterpart
        (:func:`~pyro_expfam.models.overlapping.select.single_membership_model`:
        sets of size at most one, fixed background) are both fitted on 80% of
        the data and the overlapping one is kept only if its held-out
        log-likelihood is higher by more than two standard errors
        (:func:`~pyro_expfam.models.overlapping.select.select_structure`);
        in every other case, and with ``"overlapping"`` (the behaviour before
        this option existed), the overlapping model is fitted.  The choice is
        the fitted attribute ``structure_``.
    :param dict model_options: further keyword arguments of
        :class:`~pyro_expfam.models.overlapping.model.OverlappingMixtureModel`.
    :param device: device to fit on (default: the data's).
    :param dtype: ``torch.float32`` or ``torch.float64`` (default: the data's).

    Fitted attributes: ``model_``, ``membership_prior_`` (``pi``, ``(K,)``),
    ``offset_`` (the centring shift of Gaussian families, else ``None``),
    ``structure_`` (``"overlapping"`` or ``"single"``, see ``structure``),
    ``n_iter_`` (SVI steps of the kept run, growth excluded),
    ``n_grow_iter_`` (SVI steps spent growing), ``lower_bound_`` and
    ``lower_bounds_`` (ELBO per point, per step), ``converged_``,
    ``n_features_in_``.

    >>> import numpy as np
    >>> from pyro_expfam.datasets.overlapping import make_overlapping_bars
    >>> from pyro_expfam.models.overlapping import match_clusters
    >>> data = make_overlapping_bars(num_points=300, num_clusters=4, side=6, seed=0)
    >>> X = data.X.numpy()
    >>> est = OverlappingMixture("bernoulli", n_components=4, n_init=2, random_state=0).fit(X)
    >>> Z = est.predict(X)                  # MAP membership sets, 0/1
    >>> Z.shape, Z.dtype, est.predict_proba(X).shape
    ((300, 4), dtype('int64'), (300, 4))
    >>> bool(match_clusters(data.Z, Z)[1] > 0.9)
    True
    """

    def __init__(
        self,
        family="bernoulli",
        n_components: int = 8,
        *,
        prior="finite",
        alpha: float = 1.0,
        max_set_size: int | None = None,
        guide: str = "map",
        max_iter: int = 1000,
        tol: float = 1e-5,
        patience: int = 20,
        n_init: int = 1,
        init_params="default",
        random_state=None,
        warm_start: bool = False,
        verbose: bool | int = False,
        batch_size: int | str | None = "auto",
        optimizer=None,
        objective: str = "marginal",
        num_particles: int = 1,
        grow: bool | str = "auto",
        min_usage: float = 0.01,
        background: str | None = "learned",
        structure: str = "auto",
        model_options: dict | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(
            n_components,
            tol=tol,
            max_iter=max_iter,
            n_init=n_init,
            init_params=init_params,
            random_state=random_state,
            warm_start=warm_start,
            verbose=verbose,
            device=device,
            dtype=dtype,
        )
        self.family = family
        self.prior = prior
        self.alpha = alpha
        self.max_set_size = max_set_size
        self.guide = guide
        self.patience = patience
        self.batch_size = batch_size
        self.optimizer = optimizer
        self.objective = objective
        self.num_particles = num_particles
        self.grow = grow
        self.min_usage = min_usage
        self.background = background
        self.structure = structure
        self.model_options = model_options

    # ------------------------------------------------------------------ #
    # hyper-parameters
    # ------------------------------------------------------------------ #
    def _check_init_params(self) -> None:
        _resolve_init(self.init_params)  # this class's registry of strategies, not the base's list

    def _check_base_parameters(self) -> None:
        super()._check_base_parameters()
        _check_int(self.patience, "patience", 1)
        _check_int(self.num_particles, "num_particles", 1)
        if self.max_set_size is not None:
            _check_int(self.max_set_size, "max_set_size", 1)
        if isinstance(self.prior, str):
            _check_real(self.alpha, "alpha", 0.0)
        if not (self.batch_size is None or self.batch_size == "auto"):
            _check_int(self.batch_size, "batch_size", 1)
        if self.objective not in ("marginal", "enum"):
            raise ValueError(f"objective must be 'marginal' or 'enum', got {self.objective!r}")
        if not (isinstance(self.grow, bool | np.bool_) or self.grow == "auto"):
            raise ValueError(f"grow must be True, False or 'auto', got {self.grow!r}")
        _check_real(self.min_usage, "min_usage", 0.0, 1.0, strict_low=False)
        if self.background is not None and self.background not in ("learned", "fixed"):
            raise ValueError(f"background must be 'learned', 'fixed' or None, got {self.background!r}")
        if self.structure not in ("auto", "overlapping"):
            raise ValueError(f"structure must be 'auto' or 'overlapping', got {self.structure!r}")
        if self.model_options is not None and not isinstance(self.model_options, dict):
            raise ValueError(f"model_options must be None or a dict of keyword arguments, got {self.model_options!r}")
        _make_optimizer(self.optimizer)

    def _make_family(self) -> _families.ClusterFamily:
        family = self.family
        if isinstance(family, dict):
            return _family_from_spec(family)
        if isinstance(family, _families.ClusterFamily | _distributions.ExponentialFamily):
            family = copy.deepcopy(family)  # the hyper-parameter itself is never set up or modified
        return make_cluster_family(family)

    def _make_prior(self):
        prior = self.prior
        if isinstance(prior, dict):
            cls = getattr(_priors, str(prior.get("class")), None)
            if not isinstance(cls, type) or not issubclass(cls, _priors.MembershipPrior):
                raise ValueError(f"prior: unknown membership prior {prior!r}")
            return cls(prior.get("alpha", 1.0))
        return copy.deepcopy(prior) if isinstance(prior, _priors.MembershipPrior) else prior

    def _new_model(self, family, num_clusters: int | None = None, max_set_size=...) -> OverlappingMixtureModel:
        k = int(self.n_components) if num_clusters is None else num_clusters
        m = self.max_set_size if max_set_size is ... else max_set_size
        return OverlappingMixtureModel(
            family,
            k,
            prior=self._make_prior(),
            alpha=float(self.alpha) if isinstance(self.alpha, numbers.Real) else self.alpha,
            max_set_size=None if m is None else int(m),
            guide=self.guide,
            **{"background": self.background, **(self.model_options or {})},
        )

    def _batch_size_for(self, model: OverlappingMixtureModel, n: int) -> int | None:
        if self.batch_size == "auto":
            per_point = model.num_membership_sets
            return None if n * per_point <= _AUTO_ENTRIES else max(1, _AUTO_ENTRIES // per_point)
        if self.batch_size is None or int(self.batch_size) >= n:
            return None
        return int(self.batch_size)

    # ------------------------------------------------------------------ #
    # data
    # ------------------------------------------------------------------ #
    def _validate_data(self, X, reset: bool) -> Tensor:
        """Check ``X`` (scikit-learn's rules, then the family's support) and centre it for Gaussian families."""
        warm = reset and bool(self.warm_start) and self._is_fitted()
        if reset and not warm:
            family = self._make_family()
            probe = self._new_model(family)  # validates n_components / prior / guide / max_set_size up front
        else:
            self._check_is_fitted()
            family = probe = self.model_.family
        ndim = _data_ndim(family)
        X = self.check_X(X, reset, ensure_2d=ndim >= 2, allow_nd=ndim > 2, ensure_min_samples=2 if reset else 1)
        if isinstance(family, _families.BernoulliClusters | _families.CategoricalClusters) and bool((X < 0).any()):
            raise ValueError(
                f"Negative values in data passed to {type(self).__name__}: {type(family).__name__} need "
                "binary 0/1 data or non-negative integer category codes (data outside the family's support)"
            )
        X = family.check_data(X)
        if reset and not warm:
            check_float_resolution(X)
            self._offset = X.mean(0) if isinstance(family, _GAUSSIAN_FAMILIES) else None
            Xc = X if self._offset is None else X - self._offset
            family.setup(Xc)
            self._fit_model = probe
            return Xc
        if tuple(X.shape[1:]) != tuple(family.layout.event_shape):
            raise ValueError(
                f"X must have points of shape {tuple(family.layout.event_shape)}, got {tuple(X.shape[1:])}"
            )
        return X if self._offset is None else X - self._offset

    # ------------------------------------------------------------------ #
    # the template's hooks
    # ------------------------------------------------------------------ #
    def _initialize_parameters(self, X: Tensor, generator: torch.Generator) -> None:
        """A new model on ``X`` with initial guide parameters from ``init_params`` (grown for the IBP)."""
        self._init_count = self.__dict__.get("_init_count", 0) + 1
        strategy = _resolve_init(self.init_params)
        model = copy.deepcopy(self._fit_model)
        model.setup(X)
        if strategy is INIT_STRATEGIES.get("default"):
            strategy = _default_strategy(model)
        # "em" infers the IBP's number of clusters itself (select_num_clusters): no growth
        grow = (
            self.grow if self.grow != "auto" else isinstance(model.prior, _priors.IBPPrior) and strategy is not em_init
        )
        self.structure_ = "overlapping"
        em_iter = max(1, min(200, int(self.max_iter)))  # max_iter caps the EM iterations too (EM's default: 200)
        ibp = isinstance(model.prior, _priors.IBPPrior)
        # Gaussian clusters: the structure choice refits by the generic EM (0.2 s per iteration); not measured there
        gaussian = is_gaussian(model)
        if self.structure == "auto" and strategy is em_init and not ibp and not gaussian and X.shape[0] >= 10:
            choice = select_structure(model, X, max_iter=em_iter, generator=generator)
            model, self.n_grow_iter_, self.structure_ = choice.model, 0, choice.structure
            model.setup(X)
        elif grow and model.num_clusters > 1:
            model.params_, self.n_grow_iter_ = grow_clusters(self, model, X, generator, strategy)
        elif strategy is em_init:
            model.params_, self.n_grow_iter_ = em_init(model, X, generator, max_iter=em_iter), 0
        else:
            model.params_, self.n_grow_iter_ = strategy(model, X, generator), 0
        self.model_ = model
        self._run = _SVIRun(self, model, X, generator)
        # the IBP's MAP-EM start has its number of clusters chosen by held-out likelihood; SVI from there revives
        # the inactive clusters (MAP has no Occam factor: 9-10 of 10 active, truth 5), so it is not run
        self._run.frozen = strategy is em_init and ibp and model.num_clusters > 1

    def _step(self, X: Tensor) -> float:
        """One SVI step; returns the ELBO per point (minus the loss over ``N``)."""
        if self.__dict__.get("_run") is None:  # warm start: continue on a copy (an interrupted refit keeps the old)
            self.model_ = copy.deepcopy(self.model_)
            self.model_.setup(X)  # the copy follows the data's device and dtype
            self._run = _SVIRun(self, self.model_, X, self._fit_generator)
            self._run.load(self.__dict__.get("_pending_resume") or {})
        loss = self._run.step()
        self._run.stopper.update(loss)
        return -loss / X.shape[0]

    def _has_converged(self, history: list[float]) -> bool:
        run = self.__dict__.get("_run")
        return run is not None and (run.stopper.converged or run.frozen)

    def _get_state(self) -> dict[str, Tensor]:
        return get_state(self)

    def _set_state(self, state: dict[str, Tensor]) -> None:
        set_state(self, state)

    def _get_resume_state(self) -> dict[str, Any]:
        run = self.__dict__.get("_run")
        return {
            "run": run.state() if run is not None else self.__dict__.get("_pending_resume") or {},
            "n_grow_iter": int(self.__dict__.get("n_grow_iter_", 0)),
        }

    def _set_resume_state(self, state: dict[str, Any]) -> None:
        self._pending_resume = clone_nested(state.get("run") or {})
        self.n_grow_iter_ = int(state.get("n_grow_iter", 0))

    def _initialize(self, X: Tensor, resp: Tensor) -> None:  # pragma: no cover - replaced by _initialize_parameters
        raise NotImplementedError("OverlappingMixture initialises through init_params, not responsibilities")

    def _m_step(self, X: Tensor, log_resp: Tensor) -> None:  # pragma: no cover - replaced by _step (SVI)
        raise NotImplementedError("OverlappingMixture is fitted by SVI steps, not M-steps")

    def _estimate_weighted_log_prob(self, X: Tensor) -> Tensor:
        """``log P(z_ik = 1 | x_i)``, ``(N, K)`` (the base template's per-component hook)."""
        return self.model_.membership_probs(X).clamp(min=torch.finfo(X.dtype).tiny).log()

    def _n_parameters(self) -> int:
        model = self.model_
        count = sum(math.prod(shape) for shape in model.global_sites().values())
        family = model.family
        if isinstance(family, _families.CategoricalClusters):  # logits are defined up to a shift per feature
            count -= model.num_clusters * family.hyper["background_logits"].shape[0]
        return int(count)

    # ------------------------------------------------------------------ #
    # fitting
    # ------------------------------------------------------------------ #
    def fit(self, X, y=None, **renamed) -> OverlappingMixture:
        """
        Fit by SVI: ``n_init`` initialisations (grown cluster by cluster for
        the IBP prior) of at most ``max_iter`` steps each, keeping the best
        final ELBO; with ``warm_start=True`` continue the fitted model.  The
        result is committed only when the fit finishes; Pyro's param store
        is left as it was, and so is torch's global random generator unless
        ``random_state=None`` (then one seed is drawn from it).

        :param X: data ``(N,) + point shape`` (numpy array or tensor).
        :param y: ignored (scikit-learn API).
        :returns: ``self``.
        """
        _refuse_renamed(".fit()", renamed)
        try:
            with _private_param_store(), warnings.catch_warnings():
                if isinstance(self.tol, numbers.Real) and self.tol == 0:  # no convergence test: nothing to warn about
                    warnings.simplefilter("ignore", ConvergenceWarning)
                self._init_count = 0
                super().fit_predict(X, y)
        finally:
            for key in ("_fit_model", "_run", "_init_count"):
                self.__dict__.pop(key, None)
        return self

    def fit_predict(self, X, y=None, **renamed):
        """
        Fit (as :meth:`fit`) and return the MAP membership sets of ``X`` (as :meth:`predict`).

        :param X: data.
        :param y: ignored.
        :returns: 0/1 ``int64`` array or tensor ``(N, K)``.
        """
        return self.fit(X, y, **renamed).predict(X)

    # ------------------------------------------------------------------ #
    # prediction
    # ------------------------------------------------------------------ #
    def predict(self, X):
        """
        Most probable membership set of each point (among the enumerated sets).

        :param X: data ``(N,) + point shape``.
        :returns: 0/1 ``int64`` array or tensor ``(N, K)``.
        """
        self._check_is_fitted()
        return self._output(self.model_.map_sets(self._validate_data(X, reset=False)).to(torch.int64))

    def predict_proba(self, X):
        r"""
        Posterior membership probabilities :math:`P(z_{ik} = 1 \mid x_i)` (rows
        need not sum to 1: a point can belong to several clusters).

        :param X: data ``(N,) + point shape``.
        :returns: array or tensor ``(N, K)``.
        """
        self._check_is_fitted()
        return self._output(self.model_.membership_probs(self._validate_data(X, reset=False)))

    def score_samples(self, X):
        r"""
        Log-likelihood of each point, :math:`\log\sum_z p(z)\,p(x_i \mid z)`, at
        the guide's location (a lower bound with ``max_set_size``).

        :param X: data ``(N,) + point shape``.
        :returns: array or tensor ``(N,)``.
        """
        self._check_is_fitted()
        return self._output(self.model_.log_likelihood(self._validate_data(X, reset=False)))

    def score(self, X, y=None) -> float:
        """
        Mean log-likelihood per point (:meth:`score_samples` averaged).

        :param X: data ``(N,) + point shape``.
        :param y: ignored.
        """
        self._check_is_fitted()
        return float(self.model_.log_likelihood(self._validate_data(X, reset=False)).mean())

    def membership_probs(self, X):
        """The same as :meth:`predict_proba` (:param X: data)."""
        return self.predict_proba(X)

    def map_sets(self, X):
        """The same as :meth:`predict` (:param X: data)."""
        return self.predict(X)

    def log_likelihood(self, X):
        """The same as :meth:`score_samples` (:param X: data)."""
        return self.score_samples(X)

    def infer_memberships(self, X, temperature: int = 0):
        """
        Membership sets by Pyro's :func:`~pyro.infer.infer_discrete` on the
        model (global sites at the guide's location): the MAP sets
        (``temperature=0``, equal to :meth:`predict`) or posterior samples
        (``temperature=1``, drawn from torch's global generator, as Pyro does).

        :param X: data.
        :param int temperature: 0 or 1.
        :returns: 0/1 ``int64`` array or tensor ``(N, K)``.
        """
        self._check_is_fitted()
        X = self._validate_data(X, reset=False)
        return self._output(self.model_.infer_memberships(X, temperature).to(torch.int64))

    def _shifted(self, d):
        """A fitted distribution moved back from the centred coordinates."""
        off = self.__dict__.get("_offset")
        if off is None:
            return d
        if isinstance(d, _distributions.MultivariateNormal):
            return type(d)(d.loc + off, scale_tril=d.scale_tril, validate_args=False)
        return type(d)(d.loc + off, d.scale, validate_args=False)

    def cluster_distributions(self):
        r"""
        The learned clusters: the distribution of a point in exactly one
        cluster (natural parameter :math:`\eta_0 + \eta_k`), batch shape
        ``(K,) + feature shape`` (a torch distribution).
        """
        self._check_is_fitted()
        return self._shifted(self.model_.cluster_distributions())

    def set_distribution(self, z):
        """
        The distribution of points with membership sets ``z`` (0/1, shape ``batch + (K,)``).

        :param z: membership sets (array or tensor).
        """
        self._check_is_fitted()
        return self._shifted(
            self.model_.set_distribution(torch.as_tensor(np.asarray(z) if not isinstance(z, Tensor) else z))
        )

    def background_distribution(self):
        """The always-on background (the distribution of a point in no cluster)."""
        self._check_is_fitted()
        return self._shifted(self.model_.background_distribution())

    @property
    def membership_prior_(self):
        r"""Membership probabilities :math:`\pi_k` at the guide's location, ``(K,)``."""
        self._check_is_fitted()
        return self._output(self.model_.membership_prior_.detach())

    @property
    def offset_(self):
        """The shift subtracted from the data before fitting (Gaussian families), or ``None``."""
        self._check_is_fitted()
        off = self.__dict__.get("_offset")
        return None if off is None else self._output(off)

    def sample(self, n_samples: int = 1):
        """
        Sample new data from the fitted model (global sites at the guide's
        location), with a generator made from ``random_state``.

        :param int n_samples: number of points.
        :returns: ``(X, Z)``: points and their 0/1 membership sets (``int64``).
        """
        self._check_is_fitted()
        if isinstance(n_samples, bool) or not isinstance(n_samples, numbers.Integral) or n_samples < 1:
            raise ValueError(f"n_samples must be a positive int, got {n_samples!r}")
        from ...util import torch_generator

        x, z = self.model_.sample(int(n_samples), generator=torch_generator(self.random_state))
        off = self.__dict__.get("_offset")
        return self._output(x if off is None else x + off), self._output(z.to(torch.int64))

    def to(self, dtype: torch.dtype | None = None, device: torch.device | str | None = None) -> OverlappingMixture:
        """
        Move the fitted model to ``dtype``/``device`` (outputs for tensor input follow).

        :returns: ``self``.
        """
        from ...util import check_device, check_torch_dtype

        dtype = check_torch_dtype(dtype, "dtype")
        device = None if device is None else check_device(device)
        if self._is_fitted():
            self.model_.to(dtype=dtype, device=device)
            if self.__dict__.get("_offset") is not None:
                self._offset = self._offset.to(dtype=dtype, device=device)
            self._dtype = dtype or self._dtype
            self._device = device or self._device
        return self

    # ------------------------------------------------------------------ #
    # save / load, scikit-learn tags
    # ------------------------------------------------------------------ #
    def save(self, path) -> None:
        """
        Save hyper-parameters, fitted state and resume state (optimiser,
        minibatch position, generator) atomically (see
        :meth:`~pyro_expfam.mixture.base.BaseMixture.save`).  A family, prior
        or optimiser given as an object is stored as a plain description
        (``{"class": ..., "config": ...}``), which :meth:`load` gives back as
        the hyper-parameter.

        :param path: file path or writable binary file object.
        """
        self._check_is_fitted()
        plain = plain_hyperparameters(self)
        old = {k: getattr(self, k) for k in plain}
        try:
            for k, v in plain.items():
                setattr(self, k, v)
            super().save(path)
        finally:
            for k, v in old.items():
                setattr(self, k, v)

    def _family_or_none(self) -> _families.ClusterFamily | None:
        try:
            return self._make_family()
        except (TypeError, ValueError, NotImplementedError):
            return None

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        if isinstance(self._family_or_none(), _families.BernoulliClusters | _families.CategoricalClusters):
            tags.input_tags.categorical = True  # scikit-learn's checks then feed non-negative integer codes
            tags.input_tags.positive_only = True
        return tags

    def _expected_failed_checks(self) -> dict[str, str]:
        """scikit-learn checks that cannot apply to this configuration, with the reason."""
        if not isinstance(self._family_or_none(), _families.BernoulliClusters):
            return {}
        reason = (
            "Bernoulli clusters need binary 0/1 data; scikit-learn's checks feed non-negative integer codes "
            "(its 'categorical' data) with values above 1, which fit refuses with a ValueError naming the support"
        )
        return dict.fromkeys(_BINARY_DATA_CHECKS, reason)


#: scikit-learn checks that fit on non-binary data (refused by Bernoulli clusters)
_BINARY_DATA_CHECKS = (
    "check_dict_unchanged",
    "check_dont_overwrite_parameters",
    "check_estimators_dtypes",
    "check_estimators_fit_returns_self",
    "check_estimators_overwrite_params",
    "check_f_contiguous_array_estimator",
    "check_fit2d_1feature",
    "check_fit2d_predict1d",
    "check_fit_check_is_fitted",
    "check_fit_idempotent",
    "check_methods_sample_order_invariance",
    "check_methods_subset_invariance",
    "check_n_features_in",
    "check_n_features_in_after_fitting",
    "check_readonly_memmap_input",
)
