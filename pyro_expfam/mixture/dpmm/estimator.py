# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""
:class:`DirichletProcessMixture`, the scikit-learn style estimator over the
truncated stick-breaking DP mixture, fitted by CAVI, stochastic natural-gradient
VI or Pyro ``SVI`` (see :mod:`~pyro_expfam.mixture.dpmm.cavi` and :mod:`~pyro_expfam.mixture.dpmm.model`).
"""

from __future__ import annotations

import math

import numpy as np
import pyro
import torch
from pyro.infer import SVI, TraceEnum_ELBO
from torch import Tensor

from ..base import BaseMixture
from .cavi import (
    SufficientStatistics,
    cavi_pass,
    elbo,
    expected_log_weights,
    expected_weights,
    merge_and_sort,
    snvi_epoch,
    stick_posterior,
)
from .emissions import BernoulliEmission, CategoricalEmission, ConjugateEmission, PoissonEmission
from .gaussian import DiagGaussianEmission, FullGaussianEmission, SphericalGaussianEmission, UnitGaussianEmission
from .model import DPMixtureModel

__all__ = ["DirichletProcessMixture", "make_emission"]

_GAUSSIAN = {"full": FullGaussianEmission, "diag": DiagGaussianEmission,
             "spherical": SphericalGaussianEmission, "unit": UnitGaussianEmission}
_MIN_SVI_STEPS = 20
_WINDOW = 3
#: merge moves start after this many CAVI iterations: from a random start the components first need to
#: differentiate, otherwise greedy merging of still-identical components can lose clusters for good
_MERGE_AFTER = 2
_OTHER = {"bernoulli": BernoulliEmission, "categorical": CategoricalEmission, "poisson": PoissonEmission}


def make_emission(emission: str = "gaussian", covariance_type: str = "full", **prior) -> ConjugateEmission:
    """
    Build a conjugate emission by name.

    :param str emission: ``"gaussian"``, ``"bernoulli"``, ``"categorical"`` or ``"poisson"``.
    :param str covariance_type: for Gaussians: ``"full"``, ``"diag"``, ``"spherical"`` or ``"unit"``.
    :param prior: prior hyper-parameters of the emission class (``None`` values are dropped).
    """
    prior = {k: v for k, v in prior.items() if v is not None}
    if emission == "gaussian":
        if covariance_type not in _GAUSSIAN:
            raise ValueError(f"covariance_type must be one of {sorted(_GAUSSIAN)}, got {covariance_type!r}")
        cls = _GAUSSIAN[covariance_type]
    elif emission in _OTHER:
        cls = _OTHER[emission]
    else:
        raise ValueError(f"emission must be 'gaussian' or one of {sorted(_OTHER)}, got {emission!r}")
    try:
        return cls(**prior)
    except TypeError as e:
        raise ValueError(f"invalid prior hyper-parameters for {cls.__name__}: {e}") from e


class DirichletProcessMixture(BaseMixture):
    """
    Truncated stick-breaking Dirichlet-process mixture with conjugate emissions
    (variational Bayes), with the interface of
    :class:`sklearn.mixture.BayesianGaussianMixture`.

    :param int n_components: truncation level ``K`` (an upper bound on the
        number of clusters; unused components get negligible weight).
    :param str emission: ``"gaussian"`` (default), ``"bernoulli"``, ``"categorical"`` or ``"poisson"``.
    :param str covariance_type: Gaussian covariance: ``"full"`` (Normal-Wishart prior, default),
        ``"diag"``, ``"spherical"`` (Normal-Gamma priors) or ``"unit"`` (identity, Normal prior on the mean).
    :param float weight_concentration_prior: DP concentration ``alpha`` (default ``1/n_components``,
        as scikit-learn).
    :param mean_prior: Gaussian mean prior (default: data mean).
    :param float mean_precision_prior: Gaussian :math:`\\kappa_0` (default 1).
    :param float degrees_of_freedom_prior: Gaussian :math:`\\nu_0` (default ``n_features``).
    :param covariance_prior: Gaussian covariance prior (default: from the data, as scikit-learn).
    :param dict emission_prior: hyper-parameters of a non-Gaussian emission, e.g.
        ``{"a": 1, "b": 1}`` (Bernoulli), ``{"concentration": 1, "n_categories": 5}``
        (categorical), ``{"shape": 1, "rate": 0.5}`` (Poisson).
    :param str method: ``"cavi"`` (coordinate ascent, default), ``"snvi"``
        (stochastic natural-gradient VI on minibatches; one iteration is one
        epoch) or ``"svi"`` (Pyro ``SVI`` with ``TraceEnum_ELBO`` and
        :meth:`DPMixtureModel.guide`; one iteration is one epoch, at least 20
        steps; ``ClippedAdam`` whose learning rate decays to 1% over ``max_iter``).
        Every method records the exact ELBO (:meth:`elbo`) after each iteration.
        ``snvi`` converges when 3 successive changes are below ``tol``; ``svi``
        runs ``max_iter`` iterations and reports ``converged_`` from its last 3 changes.
    :param bool merge: exact merge moves during CAVI (default true): two
        components are merged whenever that raises the ELBO, which empties
        unneeded components of a large truncation quickly; heavily overlapping
        blobs may then be joined (the ELBO prefers it), so use ``merge=False``
        to keep them apart.
    :param int batch_size: minibatch size for ``snvi``/``svi`` (default: 1024 for snvi, all data for svi).
    :param float learning_rate_offset: :math:`\\tau` of the snvi step size :math:`(t+\\tau)^{-\\kappa}`.
    :param float learning_rate_decay: :math:`\\kappa` of the snvi step size.
    :param float svi_learning_rate: initial Adam learning rate for ``svi``.
    :param float tol: convergence threshold on the change of the ELBO per data point.

    The other parameters (``max_iter``, ``n_init``, ``init_params``,
    ``random_state``, ``warm_start``, ``verbose``, ``device``, ``dtype``) are
    those of :class:`~pyro_expfam.mixture.base.BaseMixture`.

    Fitted attributes: ``weights_`` (:math:`E[\\pi]`), ``weight_concentration_``
    (Beta parameters of the sticks, ``(K-1, 2)``), ``natural_params_``
    (:math:`\\phi`, ``(K, P)``), ``prior_natural_params_``, ``emission_``, the
    emission's summaries (``means_``, ``covariances_``, ``precisions_``,
    ``precisions_cholesky_``, ``degrees_of_freedom_``, ``mean_precision_``;
    ``probs_``; ``rates_``), ``lower_bound_`` (ELBO per point), ``lower_bounds_``,
    ``n_iter_``, ``converged_``, ``n_features_in_``.

    Example::

        >>> X, y = make_blobs(10_000, 2, 5, random_state=0)
        >>> dpmm = DirichletProcessMixture(n_components=20, random_state=0).fit(X)
        >>> labels = dpmm.predict(X)
    """

    def __init__(
        self,
        n_components: int = 20,
        *,
        emission: str = "gaussian",
        covariance_type: str = "full",
        weight_concentration_prior: float | None = None,
        mean_prior=None,
        mean_precision_prior: float | None = None,
        degrees_of_freedom_prior: float | None = None,
        covariance_prior=None,
        emission_prior: dict | None = None,
        method: str = "cavi",
        merge: bool = True,
        batch_size: int | None = None,
        learning_rate_offset: float = 1.0,
        learning_rate_decay: float = 0.6,
        svi_learning_rate: float = 0.02,
        tol: float = 1e-4,
        max_iter: int = 200,
        n_init: int = 1,
        init_params: str = "kmeans",
        random_state: int | torch.Generator | None = None,
        warm_start: bool = False,
        verbose: bool | int = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(n_components, tol=tol, max_iter=max_iter, n_init=n_init, init_params=init_params,
                         random_state=random_state, warm_start=warm_start, verbose=verbose, device=device,
                         dtype=dtype)
        self.emission = emission
        self.covariance_type = covariance_type
        self.weight_concentration_prior = weight_concentration_prior
        self.mean_prior = mean_prior
        self.mean_precision_prior = mean_precision_prior
        self.degrees_of_freedom_prior = degrees_of_freedom_prior
        self.covariance_prior = covariance_prior
        self.emission_prior = emission_prior
        self.method = method
        self.merge = merge
        self.batch_size = batch_size
        self.learning_rate_offset = learning_rate_offset
        self.learning_rate_decay = learning_rate_decay
        self.svi_learning_rate = svi_learning_rate

    # ------------------------------------------------------------------ #
    # set-up
    # ------------------------------------------------------------------ #
    def _make_emission(self) -> ConjugateEmission:
        if self.emission == "gaussian":
            if self.emission_prior:
                raise ValueError("emission_prior is for non-Gaussian emissions; use mean_prior, covariance_prior, ...")
            return make_emission("gaussian", self.covariance_type, mean_prior=self.mean_prior,
                                 mean_precision_prior=self.mean_precision_prior,
                                 degrees_of_freedom_prior=None if self.covariance_type == "unit"
                                 else self.degrees_of_freedom_prior,
                                 covariance_prior=None if self.covariance_type == "unit" else self.covariance_prior)
        gaussian_args = (self.mean_prior, self.mean_precision_prior, self.degrees_of_freedom_prior,
                         self.covariance_prior)
        if any(a is not None for a in gaussian_args):
            raise ValueError(f"Gaussian prior arguments do not apply to emission={self.emission!r}; "
                             "use emission_prior")
        if self.emission_prior is not None and not isinstance(self.emission_prior, dict):
            raise TypeError(f"emission_prior must be a dict, got {type(self.emission_prior).__name__}")
        return make_emission(self.emission, **(self.emission_prior or {}))

    def _alpha(self) -> float:
        a = self.weight_concentration_prior
        if a is None:
            return 1.0 / self.n_components
        if isinstance(a, bool) or not float(a) > 0:
            raise ValueError(f"weight_concentration_prior must be a positive number, got {a!r}")
        return float(a)

    def _check_parameters(self, X: Tensor) -> None:
        if self.n_components < 2:
            raise ValueError(f"n_components (the truncation level) must be >= 2, got {self.n_components}")
        if self.method not in ("cavi", "snvi", "svi"):
            raise ValueError(f"method must be 'cavi', 'snvi' or 'svi', got {self.method!r}")
        bs = self.batch_size
        if bs is not None and (isinstance(bs, bool) or not isinstance(bs, int) or bs < 1):
            raise ValueError(f"batch_size must be a positive int, got {bs!r}")
        if bs is not None and self.method == "cavi":
            raise ValueError("batch_size is used by method='snvi' or 'svi' only; CAVI passes over all the data")
        if not float(self.learning_rate_offset) >= 1.0:
            raise ValueError(f"learning_rate_offset must be >= 1 (so that the step size is <= 1), "
                             f"got {self.learning_rate_offset!r}")
        if not 0.5 < float(self.learning_rate_decay) <= 1.0:
            raise ValueError(f"learning_rate_decay must be in (0.5, 1], got {self.learning_rate_decay!r}")
        if not float(self.svi_learning_rate) > 0:
            raise ValueError(f"svi_learning_rate must be positive, got {self.svi_learning_rate!r}")
        self.alpha_ = self._alpha()
        warm = bool(self.warm_start) and self._is_fitted()
        if warm:
            if X.shape[1] != self.n_features_in_:
                raise ValueError(f"X has {X.shape[1]} features, but the model was fitted with {self.n_features_in_}")
            self.emission_.check_data(X)
            self._phi = self._phi.to(X.device, X.dtype)
            self._sticks = self._sticks.to(X.device, X.dtype)
            self._phi0 = self._phi0.to(X.device, X.dtype)
            self.emission_.prior_natural = self._phi0
        else:
            self.emission_ = self._make_emission()
            self._phi0 = self.emission_.setup(X)
        self._data = SufficientStatistics(self.emission_, X)
        self._data_key = (X.data_ptr(), tuple(X.shape))
        self._snvi_step = 0
        self._drop_svi()

    def _stats_for(self, X: Tensor) -> SufficientStatistics:
        if getattr(self, "_data_key", None) != (X.data_ptr(), tuple(X.shape)):
            self._data = SufficientStatistics(self.emission_, X)
            self._data_key = (X.data_ptr(), tuple(X.shape))
        return self._data

    def _initialize(self, X: Tensor, resp: Tensor) -> None:
        data = self._stats_for(X)
        K = self.n_components
        stats = X.new_zeros(K, self.emission_.n_stats)
        start = 0
        for T, _ in data.chunks():
            stats.addmm_(resp[start:start + T.shape[0]].T, T)
            start += T.shape[0]
        counts = resp.sum(0)
        self._phi = self.emission_.update(self._phi0, stats, counts)
        self._sticks = stick_posterior(counts, self.alpha_)
        self._snvi_step = 0
        self._cavi_iter = 0
        self._drop_svi()

    # ------------------------------------------------------------------ #
    # one iteration
    # ------------------------------------------------------------------ #
    def _step(self, X: Tensor) -> float:
        data = self._stats_for(X)
        em, alpha = self.emission_, self.alpha_
        n = X.shape[0]
        if self.method == "cavi":
            res = cavi_pass(em, data, self._phi0, self._phi, self._sticks, alpha, keep_resp=self.merge)
            phi, counts = em.update(self._phi0, res.stats, res.counts), res.counts
            self._cavi_iter = getattr(self, "_cavi_iter", 0) + 1
            if self.merge and self._cavi_iter > _MERGE_AFTER:
                phi, counts, _ = merge_and_sort(em, self._phi0, phi, counts, res.resp, alpha)
            self._phi, self._sticks = phi, stick_posterior(counts, alpha)
            return float(res.bound) / n
        if self.method == "snvi":
            self._phi, self._sticks, self._snvi_step = snvi_epoch(
                em, data, self._phi0, self._phi, self._sticks, alpha, self.batch_size or min(n, 1024),
                self._snvi_step, float(self.learning_rate_offset), float(self.learning_rate_decay),
                self._fit_generator)
            return float(elbo(em, data, self._phi0, self._phi, self._sticks, alpha)) / n
        return self._svi_epoch(X, data)

    def _svi_epoch(self, X: Tensor, data: SufficientStatistics) -> float:
        n = X.shape[0]
        bs = min(self.batch_size or n, n)
        steps = max(math.ceil(n / bs), _MIN_SVI_STEPS)
        if self._svi is None:
            model = DPMixtureModel(self.emission_, self.n_components, self.alpha_)
            model.set_variational_params(self._phi, self._sticks)
            # the learning rate decays geometrically to 1% of its initial value over max_iter iterations
            lrd = 0.01 ** (1.0 / max(1, self.max_iter * steps))
            optim = pyro.optim.ClippedAdam({"lr": float(self.svi_learning_rate), "lrd": lrd})
            self._svi = (model, SVI(model.model, model.guide, optim, TraceEnum_ELBO(max_plate_nesting=1)))
        model, svi = self._svi
        seed = int(torch.randint(0, 2**62, (), generator=self._fit_generator))
        with torch.random.fork_rng(devices=[X.device] if X.device.type == "cuda" else []):
            torch.manual_seed(seed)
            for _ in range(steps):
                svi.step(X, batch_size=bs if bs < n else None)
        self._phi, self._sticks = model.variational_params()
        return float(elbo(self.emission_, data, self._phi0, self._phi, self._sticks, self.alpha_)) / n

    # ------------------------------------------------------------------ #
    # BaseMixture hooks
    # ------------------------------------------------------------------ #
    def _has_converged(self, history: list[float]) -> bool:
        if self.method == "cavi":
            return super()._has_converged(history)
        # stochastic methods: the last _WINDOW changes are all below tol; svi runs its whole
        # learning-rate schedule (max_iter iterations) and only then checks
        if self.method == "svi" and len(history) < self.max_iter:
            return False
        if len(history) <= _WINDOW:
            return False
        recent = history[-_WINDOW - 1:]
        return all(abs(b - a) < self.tol for a, b in zip(recent[:-1], recent[1:], strict=True))

    def _m_step(self, X: Tensor, log_resp: Tensor) -> None:  # the iterations go through _step
        self._initialize(X, log_resp.exp())

    def _estimate_weighted_log_prob(self, X: Tensor) -> Tensor:
        em = self.emission_
        es = em.expected_stats(self._phi)
        elogpi = expected_log_weights(self._sticks)
        rows = max(256, 2**22 // max(em.n_stats * X.element_size(), 1))
        out = [em.log_likelihood_matrix(*em.sufficient_statistics(chunk), es) + elogpi for chunk in X.split(rows)]
        return torch.cat(out)

    def _validate_data(self, X, reset: bool) -> Tensor:
        X = super()._validate_data(X, reset)
        if not reset:
            self.emission_.check_data(X)
        return X

    def _get_state(self) -> dict[str, Tensor]:
        state = {"phi": self._phi.detach().clone(), "sticks": self._sticks.detach().clone(),
                 "phi0": self._phi0.detach().clone(), "alpha": self._phi.new_tensor(self.alpha_)}
        for key, value in self.emission_.dims().items():
            state[f"dim_{key}"] = torch.tensor(value)
        return state

    def _set_state(self, state: dict[str, Tensor]) -> None:
        if not hasattr(self, "emission_"):
            self.emission_ = self._make_emission()
            dims = {k[4:]: int(v) for k, v in state.items() if k.startswith("dim_")}
            self.emission_.set_dims(dims, state["phi0"])
        self._phi, self._sticks, self._phi0 = state["phi"], state["sticks"], state["phi0"]
        self.emission_.prior_natural = self._phi0
        self.alpha_ = float(state["alpha"])
        self._refresh_attributes()
        self._drop_svi()
        self.__dict__.pop("_data", None)
        self.__dict__.pop("_data_key", None)

    def _drop_svi(self) -> None:
        if getattr(self, "_svi", None) is not None:
            self._svi[0].clear_params()
        self._svi = None

    def _refresh_attributes(self) -> None:
        self.weights_ = expected_weights(self._sticks)
        self.weight_concentration_ = self._sticks
        self.natural_params_ = self._phi
        self.prior_natural_params_ = self._phi0
        for key, value in self.emission_.summary(self._phi).items():
            setattr(self, key, value)

    def _sample_components(self, labels: Tensor, generator: torch.Generator | None) -> Tensor:
        theta = self.emission_.point_theta(self._phi)
        seed = int(torch.randint(0, 2**62, (), generator=generator))
        with torch.random.fork_rng(devices=[labels.device] if labels.device.type == "cuda" else []):
            torch.manual_seed(seed)
            return self.emission_.observation_dist(theta, labels).sample()

    # ------------------------------------------------------------------ #
    def elbo(self, X) -> float:
        """
        Exact ELBO per data point of ``X`` at the fitted variational parameters
        (``q(z)`` optimal), the quantity all three fitting methods maximise.

        :param X: data ``(n_samples, n_features)``.
        """
        self._check_is_fitted()
        X = self._validate_data(X, reset=False)
        data = SufficientStatistics(self.emission_, X)
        return float(elbo(self.emission_, data, self._phi0, self._phi, self._sticks, self.alpha_)) / X.shape[0]

    def pyro_model(self) -> DPMixtureModel:
        """
        The fitted model as a Pyro :class:`~.model.DPMixtureModel`, its guide
        initialised at the fitted variational parameters.
        """
        self._check_is_fitted()
        model = DPMixtureModel(self.emission_, self.n_components, self.alpha_)
        model.set_variational_params(self._phi, self._sticks)
        return model

    def save(self, path) -> None:  # numpy hyper-parameters become tensors (torch.load(weights_only=True))
        saved = {k: getattr(self, k) for k in ("mean_prior", "covariance_prior")}
        try:
            for k, v in saved.items():
                if isinstance(v, np.ndarray):
                    setattr(self, k, torch.as_tensor(v))
            super().save(path)
        finally:
            for k, v in saved.items():
                setattr(self, k, v)

    save.__doc__ = BaseMixture.save.__doc__
