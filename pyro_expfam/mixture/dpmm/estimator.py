# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""
:class:`DirichletProcessMixture`, the scikit-learn style estimator over the
truncated stick-breaking DP mixture, fitted by CAVI, stochastic natural-gradient
VI or Pyro ``SVI`` (see :mod:`~pyro_expfam.mixture.dpmm.cavi` and :mod:`~pyro_expfam.mixture.dpmm.model`).
"""

from __future__ import annotations

import math
import numbers
import warnings
from typing import Any

import numpy as np
import pyro
import torch
from pyro.infer import SVI, TraceEnum_ELBO
from sklearn.utils.metaestimators import available_if
from torch import Tensor

from ...families.seeding import initial_responsibilities
from ...parallel import INIT_SAMPLE, check_distributed, communicator, save_on_rank0
from ...util import clone_nested, torch_generator
from ..base import BaseMixture, FittedTensor
from ..streaming import ChunkStream, StreamStatistics
from .cavi import (
    PRIOR_TYPES,
    SufficientStatistics,
    cavi_pass,
    elbo,
    expected_log_weights,
    expected_weights,
    merge_and_sort,
    snvi_epoch,
    stick_kl,
    stick_posterior,
)
from .emissions import BernoulliEmission, CategoricalEmission, ConjugateEmission, PoissonEmission
from .gaussian import (
    DiagGaussianEmission,
    FullGaussianEmission,
    SphericalGaussianEmission,
    TiedGaussianEmission,
    UnitGaussianEmission,
    _GaussianEmission,
)
from .model import DPMixtureModel

__all__ = ["DirichletProcessMixture", "make_emission"]

_GAUSSIAN = {"full": FullGaussianEmission, "tied": TiedGaussianEmission, "diag": DiagGaussianEmission,
             "spherical": SphericalGaussianEmission, "unit": UnitGaussianEmission}
_MIN_SVI_STEPS = 20
#: svi's learning rate decays to 1% over this many epochs (independent of max_iter, so that a resume continues it)
_SVI_DECAY_EPOCHS = 200
_WINDOW = 3
#: merge moves start after this many CAVI iterations: from a random start the components first need to
#: differentiate, otherwise greedy merging of still-identical components can lose clusters for good
_MERGE_AFTER = 2
_OTHER = {"bernoulli": BernoulliEmission, "categorical": CategoricalEmission, "poisson": PoissonEmission}


def make_emission(emission: str = "gaussian", covariance_type: str = "full", **prior) -> ConjugateEmission:
    """
    Build a conjugate emission by name.

    :param str emission: ``"gaussian"``, ``"bernoulli"``, ``"categorical"`` or ``"poisson"``.
    :param str covariance_type: for Gaussians: ``"full"``, ``"tied"``, ``"diag"``, ``"spherical"`` or ``"unit"``.
    :param prior: prior hyper-parameters of the emission class (``None`` values are dropped).

    Example::

        >>> make_emission("gaussian", "tied", mean_precision_prior=0.5)  # doctest: +ELLIPSIS
        <pyro_expfam.mixture.dpmm.gaussian.TiedGaussianEmission object at ...>
        >>> make_emission("poisson", shape=2.0).shape
        2.0
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


_NOT_FOR_SVI = "method='svi' (the Pyro model/guide) supports"


def _positive_number(value, name: str) -> float | None:
    """``None`` or a finite positive real number, else a ``ValueError`` naming the argument."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    v = float(value)
    if not (0 < v < math.inf):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return v


class DirichletProcessMixture(BaseMixture):
    """
    Truncated stick-breaking Dirichlet-process mixture with conjugate emissions
    (variational Bayes), with the interface of
    :class:`sklearn.mixture.BayesianGaussianMixture`.

    :param int n_components: truncation level ``K >= 1`` (an upper bound on the
        number of clusters; unused components get negligible weight).  Default 20, where scikit-learn's is 1:
        a truncation of 1 is a single Gaussian, not a Dirichlet process.  It may exceed the number of samples
        (scikit-learn refuses that): the components beyond them start empty and keep the prior.
    :param str emission: ``"gaussian"`` (default), ``"bernoulli"``, ``"categorical"`` or ``"poisson"``.
    :param str covariance_type: Gaussian covariance: ``"full"`` (Normal-Wishart prior, default),
        ``"tied"`` (one precision matrix shared by all components, Normal-Wishart prior),
        ``"diag"``, ``"spherical"`` (Normal-Gamma priors) or ``"unit"`` (identity, Normal prior on the mean).
    :param str weight_concentration_prior_type: ``"dirichlet_process"`` (stick breaking, default) or
        ``"dirichlet_distribution"`` (finite symmetric Dirichlet weights), as scikit-learn.
    :param float weight_concentration_prior: DP concentration ``alpha`` (the Dirichlet's concentration per
        component for ``"dirichlet_distribution"``); default ``1/n_components``, as scikit-learn.
    :param mean_prior: Gaussian mean prior (default: data mean).
    :param float mean_precision_prior: Gaussian :math:`\\kappa_0` (default 1).
    :param float degrees_of_freedom_prior: Gaussian :math:`\\nu_0` (default ``n_features``); must be
        ``> n_features - 1`` for every Gaussian covariance type, as in scikit-learn (validated also for
        ``"unit"``, where it is unused).
    :param covariance_prior: Gaussian covariance prior (default: from the data, as scikit-learn); a
        ``(D, D)`` matrix (full, tied), ``(D,)`` vector (diag) or number (spherical); not allowed for ``"unit"``.
    :param float reg_covar: non-negative regularisation added to the diagonal of the empirical covariances
        in the fit (default ``1e-6``, as scikit-learn); ignored by ``"unit"`` and the non-Gaussian emissions.
    :param dict emission_prior: hyper-parameters of a non-Gaussian emission, e.g.
        ``{"a": 1, "b": 1}`` (Bernoulli), ``{"concentration": 1, "n_categories": 5}``
        (categorical), ``{"shape": 1, "rate": 0.5}`` (Poisson).
    :param str method: ``"cavi"`` (coordinate ascent, default), ``"snvi"``
        (stochastic natural-gradient VI on minibatches; one iteration is one
        epoch) or ``"svi"`` (Pyro ``SVI`` with ``TraceEnum_ELBO`` and
        :meth:`DPMixtureModel.guide`; one iteration is one epoch, at least 20
        steps; ``ClippedAdam`` whose learning rate decays geometrically to 1% over 200 epochs, a schedule that
        does not depend on ``max_iter`` so that a resumed fit continues it).
        Every method records the exact ELBO (:meth:`elbo`) after each iteration.
        ``snvi`` converges when 3 successive changes are below ``tol``; ``svi``
        runs ``max_iter`` iterations and reports ``converged_`` from its last 3 changes.
        ``svi`` supports component-wise emissions (not ``"tied"``), and ``n_components >= 2`` with
        stick-breaking weights.
    :param bool merge: exact merge moves during CAVI (default true): two
        components are merged whenever that raises the ELBO, which empties
        unneeded components of a large truncation quickly; heavily overlapping
        blobs may then be joined (the ELBO prefers it), so use ``merge=False``
        to keep them apart.
    :param int batch_size: minibatch size for ``snvi``/``svi`` (default: 1024 for snvi, all data for svi).
    :param float learning_rate_offset: :math:`\\tau` of the snvi step size :math:`(t+\\tau)^{-\\kappa}`.
    :param float learning_rate_decay: :math:`\\kappa` of the snvi step size.
    :param float svi_learning_rate: initial Adam learning rate for ``svi``.
    :param float tol: convergence threshold on the change of the ELBO *per data point* (default ``1e-4``;
        scikit-learn's ``1e-3`` applies to its bound summed over the data, a different scale).
    :param int max_iter: maximum number of iterations (epochs for ``snvi``/``svi``); default 200, where
        scikit-learn's is 100: the stochastic methods need more passes.
    :param distributed: data-parallel fitting on :mod:`torch.distributed` (:mod:`pyro_expfam.parallel`):
        ``False`` (default), ``True`` (the default process group) or a ``ProcessGroup``.  ``fit(X)`` is then
        called on every rank with that rank's shard of the data; each CAVI iteration all-reduces the
        per-component statistics and the bound's data terms (``O(K x statistics)`` numbers, independent of
        the number of points), and the merge moves' entropy terms, so every decision depends on reduced
        quantities only and every rank ends with the same model.  The data-dependent prior defaults (data
        mean, covariances) use the global moments (all-reduced), and the initialisation runs on a sample
        gathered from all ranks (at most 10,000 points; its statistics scaled to the global size), the
        resulting initial parameters being broadcast from rank 0.  ``lower_bound_`` is per point of the
        whole data set.  Supported: ``method="cavi"`` with Gaussian emissions (``snvi``/``svi`` and the
        discrete emissions raise ``ValueError``).  Call :meth:`save` on every rank or only on rank 0: only
        rank 0 writes (the file records ``distributed=True``; set it back to a group or ``False`` after
        :meth:`load`).  Prediction methods are local (no communication).  :meth:`fit` also takes data given as
        chunks (an iterable of ``(n_i, D)`` chunks or a :class:`torch.utils.data.DataLoader`, e.g. over a
        :class:`numpy.memmap`; :mod:`pyro_expfam.mixture.streaming`), with ``method="cavi"`` and Gaussian
        emissions, with or without ``distributed``: a first pass validates the chunks and takes the moments of
        the prior defaults, a second draws a uniform sample (at most 10,000 rows) for the start, and each
        iteration is one pass accumulating the statistics chunk by chunk; the merge moves are skipped (they need
        every point's responsibilities; a ``UserWarning`` says so unless ``merge=False``).
    :param int total_size: for :meth:`partial_fit` (streaming): the number ``N`` of points in the whole data
        set, in the ``N/|B|`` scaling of the natural-gradient steps; default ``None``: the number of points
        seen so far, right for a single pass over a stream (each point seen once); for several passes over
        the same data give ``total_size``.  Ignored by :meth:`fit`.

    The other parameters (``n_init``, ``init_params`` — ``"kmeans"``, ``"k-means++"``, ``"random"``,
    ``"random_from_data"`` —, ``random_state``, ``warm_start``, ``verbose``, ``device``, ``dtype``) are
    those of :class:`~pyro_expfam.mixture.base.BaseMixture`, including its contract: numpy in, numpy out;
    a fit interrupted by any exception (``KeyboardInterrupt`` included) leaves the previous fit intact;
    ``warm_start=True`` (in memory or after :meth:`save`/:meth:`load`) continues a fit bit-identically
    (CAVI's iteration counter that switches on the merge moves, the snvi step counter, the svi guide
    parameters and Adam state, and the random generator are all saved).

    Gaussian data are centred internally (the data mean is subtracted in fit and in every method that takes
    data, the means are reported in the original coordinates), so float32 data far from the origin keep their
    precision; data whose spread float32 cannot represent at all are refused with a message suggesting float64.

    Fitted attributes: ``weights_`` (:math:`E[\\pi]`), ``weight_concentration_``
    (Beta parameters of the sticks, ``(K-1, 2)``, or the Dirichlet's ``(K,)``), ``natural_params_``
    (:math:`\\phi`, ``(K, P)``, for Gaussians in the centred coordinates), ``prior_natural_params_``,
    ``emission_``, the emission's summaries (``means_``, ``covariances_``, ``precisions_``,
    ``precisions_cholesky_``, ``degrees_of_freedom_``, ``mean_precision_``;
    ``probs_``; ``rates_``), ``lower_bound_`` (ELBO per point), ``lower_bounds_``,
    ``n_iter_``, ``converged_``, ``n_features_in_``; the priors used, named as scikit-learn's
    (``weight_concentration_prior_``, and for Gaussians ``mean_prior_``, ``mean_precision_prior_``,
    ``degrees_of_freedom_prior_``, ``covariance_prior_``).

    Example::

        >>> from pyro_expfam.datasets.blobs import make_blobs
        >>> X, y = make_blobs(2_000, 2, 4, random_state=0)
        >>> dpmm = DirichletProcessMixture(n_components=10, random_state=0).fit(X)
        >>> int((dpmm.weights_ > 0.01).sum())
        4
        >>> Xn = X.numpy()
        >>> labels = DirichletProcessMixture(10, covariance_type="tied", random_state=0).fit_predict(Xn)
        >>> type(labels).__name__, labels.dtype, len(set(labels.tolist()))
        ('ndarray', dtype('int64'), 4)
    """

    weight_concentration_ = FittedTensor("stick Beta parameters ``(K-1, 2)`` or Dirichlet concentrations ``(K,)``")
    natural_params_ = FittedTensor("variational natural parameters ``(K, P)``")
    prior_natural_params_ = FittedTensor("prior natural parameters ``(P,)``")
    means_ = FittedTensor("component means (Gaussian)")
    covariances_ = FittedTensor("expected covariances (Gaussian, not unit)")
    precisions_ = FittedTensor("expected precisions (Gaussian, not unit)")
    precisions_cholesky_ = FittedTensor("Cholesky factors of the precisions (full, tied)")
    mean_precision_ = FittedTensor("kappa of each component (Gaussian)")
    degrees_of_freedom_ = FittedTensor("degrees of freedom (Gaussian, not unit)")
    probs_ = FittedTensor("expected probabilities (Bernoulli, categorical)")
    rates_ = FittedTensor("expected rates (Poisson)")
    mean_prior_ = FittedTensor("the mean prior used, in the original coordinates (Gaussian)")
    covariance_prior_ = FittedTensor("the covariance prior used (Gaussian, not unit)")

    def __init__(
        self,
        n_components: int = 20,
        *,
        emission: str = "gaussian",
        covariance_type: str = "full",
        weight_concentration_prior_type: str = "dirichlet_process",
        weight_concentration_prior: float | None = None,
        mean_prior=None,
        mean_precision_prior: float | None = None,
        degrees_of_freedom_prior: float | None = None,
        covariance_prior=None,
        reg_covar: float = 1e-6,
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
        random_state: int | np.random.RandomState | torch.Generator | None = None,
        warm_start: bool = False,
        verbose: bool | int = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        distributed: bool | Any = False,
        total_size: int | None = None,
    ) -> None:
        super().__init__(n_components, tol=tol, max_iter=max_iter, n_init=n_init, init_params=init_params,
                         random_state=random_state, warm_start=warm_start, verbose=verbose, device=device,
                         dtype=dtype)
        self.emission = emission
        self.covariance_type = covariance_type
        self.weight_concentration_prior_type = weight_concentration_prior_type
        self.weight_concentration_prior = weight_concentration_prior
        self.mean_prior = mean_prior
        self.mean_precision_prior = mean_precision_prior
        self.degrees_of_freedom_prior = degrees_of_freedom_prior
        self.covariance_prior = covariance_prior
        self.reg_covar = reg_covar
        self.emission_prior = emission_prior
        self.method = method
        self.merge = merge
        self.batch_size = batch_size
        self.learning_rate_offset = learning_rate_offset
        self.learning_rate_decay = learning_rate_decay
        self.svi_learning_rate = svi_learning_rate
        self.distributed = distributed
        self.total_size = total_size

    # ------------------------------------------------------------------ #
    # set-up
    # ------------------------------------------------------------------ #
    def _gaussian(self) -> bool:
        return self.emission == "gaussian"

    def _make_emission(self) -> ConjugateEmission:
        reg = self.reg_covar
        if isinstance(reg, bool) or not isinstance(reg, numbers.Real) or not 0 <= float(reg) < math.inf:
            raise ValueError(f"reg_covar must be a non-negative finite number, got {reg!r}")
        if self.emission == "gaussian":
            if self.emission_prior:
                raise ValueError("emission_prior is for non-Gaussian emissions; use mean_prior, covariance_prior, ...")
            kappa0 = _positive_number(self.mean_precision_prior, "mean_precision_prior")
            _positive_number(self.degrees_of_freedom_prior, "degrees_of_freedom_prior")
            if self.covariance_type == "unit":
                if self.covariance_prior is not None:
                    raise ValueError("covariance_prior does not apply to covariance_type='unit' (identity covariance)")
                return make_emission("gaussian", "unit", mean_prior=self.mean_prior, mean_precision_prior=kappa0,
                                     center=True)
            return make_emission("gaussian", self.covariance_type, mean_prior=self.mean_prior,
                                 mean_precision_prior=kappa0, degrees_of_freedom_prior=self.degrees_of_freedom_prior,
                                 covariance_prior=self.covariance_prior, reg_covar=float(reg), center=True)
        gaussian_args = (self.mean_prior, self.mean_precision_prior, self.degrees_of_freedom_prior,
                         self.covariance_prior)
        if any(a is not None for a in gaussian_args):
            raise ValueError(f"Gaussian prior arguments do not apply to emission={self.emission!r}; "
                             "use emission_prior")
        if self.emission_prior is not None and not isinstance(self.emission_prior, dict):
            raise ValueError(f"emission_prior must be a dict, got {type(self.emission_prior).__name__}")
        return make_emission(self.emission, **(self.emission_prior or {}))

    def _alpha(self) -> float:
        a = self.weight_concentration_prior
        if a is None:
            return 1.0 / int(self.n_components)
        return _positive_number(a, "weight_concentration_prior")

    def _check_hyper_parameters(self) -> None:
        """The checks that do not need data."""
        if self.method not in ("cavi", "snvi", "svi"):
            raise ValueError(f"method must be 'cavi', 'snvi' or 'svi', got {self.method!r}")
        check_distributed(self.distributed)
        if self.distributed:
            if self.method != "cavi":
                raise ValueError(f"distributed fitting supports method='cavi' only for now, got {self.method!r}")
            if not self._gaussian():
                raise ValueError(f"distributed fitting supports emission='gaussian' only for now, "
                                 f"got {self.emission!r}")
        if self.weight_concentration_prior_type not in PRIOR_TYPES:
            raise ValueError(f"weight_concentration_prior_type must be one of {PRIOR_TYPES}, "
                             f"got {self.weight_concentration_prior_type!r}")
        self._alpha()
        bs = self.batch_size
        if bs is not None and (isinstance(bs, bool) or not isinstance(bs, numbers.Integral) or bs < 1):
            raise ValueError(f"batch_size must be a positive int, got {bs!r}")
        if bs is not None and self.method == "cavi":
            raise ValueError("batch_size is used by method='snvi' or 'svi' only; CAVI passes over all the data")
        offset = _positive_number(self.learning_rate_offset, "learning_rate_offset")
        if offset < 1.0:
            raise ValueError(f"learning_rate_offset must be >= 1 (so that the step size is <= 1), "
                             f"got {self.learning_rate_offset!r}")
        decay = _positive_number(self.learning_rate_decay, "learning_rate_decay")
        if not 0.5 < decay <= 1.0:
            raise ValueError(f"learning_rate_decay must be in (0.5, 1], got {self.learning_rate_decay!r}")
        _positive_number(self.svi_learning_rate, "svi_learning_rate")
        if not isinstance(self.merge, bool | np.bool_):
            raise ValueError(f"merge must be a bool, got {self.merge!r}")
        if self.method == "svi":
            if self._gaussian() and self.covariance_type == "tied":
                raise ValueError(f"{_NOT_FOR_SVI} component-wise emissions only; use method='cavi' or 'snvi' "
                                 "with covariance_type='tied'")
            if int(self.n_components) < 2 and self.weight_concentration_prior_type == "dirichlet_process":
                raise ValueError(f"{_NOT_FOR_SVI} n_components >= 2 only, got {self.n_components}")

    def _check_parameters(self, X: Tensor) -> None:
        self._check_hyper_parameters()
        self.alpha_ = self._alpha()
        self._comm = communicator(self.distributed)
        warm = bool(self.warm_start) and self._is_fitted()
        if warm:
            if X.shape[1] != self.emission_.n_features:
                raise ValueError(f"X has {X.shape[1]} features, but the model was fitted with "
                                 f"{self.emission_.n_features}")
            self.emission_.check_data(torch.stack([X.lo, X.hi]) if isinstance(X, ChunkStream) else X)
            self._phi = self._phi.to(X.device, X.dtype)
            self._sticks = self._sticks.to(X.device, X.dtype)
            self._phi0 = self._phi0.to(X.device, X.dtype)
            self.emission_.prior_natural = self._phi0
        else:
            emission = self._make_emission()
            if self._gaussian():
                D = X.shape[1]
                dof = self.degrees_of_freedom_prior
                if dof is not None and not float(dof) > D - 1:  # scikit-learn's message (for every covariance type)
                    raise ValueError(f"The parameter 'degrees_of_freedom_prior' should be greater than {D - 1}, "
                                     f"but got {float(dof):.3f}.")
            self._new_emission = emission

    def _prepare_fit(self, X: Tensor) -> None:
        comm = self._comm
        comm.check_equal((X.shape[1], str(X.dtype)), "the shards' number of features and dtype")
        self._n_total = comm.sum_int(X.shape[0], X.device)
        emission = self.__dict__.pop("_new_emission", None)
        if emission is not None:  # not a warm start
            stream = isinstance(X, ChunkStream)
            self._phi0 = emission.setup(self._global_proxy(X) if comm.is_distributed or stream else X)
            self.emission_ = emission
        if isinstance(X, ChunkStream):
            self._data, self._data_key = StreamStatistics(self.emission_, X), None
            return
        self._data = SufficientStatistics(self.emission_, X)
        self._data_key = (X.data_ptr(), tuple(X.shape))

    def _check_stream(self) -> None:
        self._check_hyper_parameters()
        if self.method != "cavi" or not self._gaussian():
            raise ValueError("data given as chunks are fitted by method='cavi' with emission='gaussian' only, got "
                             f"method={self.method!r}, emission={self.emission!r} (with snvi, call partial_fit on "
                             "each chunk)")
        if self.merge:
            warnings.warn("merge moves are skipped with data given as chunks (they need the responsibilities of "
                          "every point); pass merge=False to silence this warning", UserWarning, stacklevel=5)

    def _validate_data(self, X, reset: bool) -> Tensor:
        if not reset:
            X = super()._validate_data(X, reset)
            self.emission_.check_data(X)
            return X
        # the truncation level may exceed the number of samples (the extra components keep the prior)
        return self.check_X(X, reset, ensure_min_samples=2)

    def _global_proxy(self, X: Tensor) -> Tensor:
        """
        ``2D`` points whose mean and (unbiased) covariance are those of all the shards together (all-reduced
        in float64): the Gaussian emissions' data-dependent prior defaults depend on the data through these
        two moments only, so ``setup`` on them gives the prior of the concatenated data.
        """
        comm = self._comm
        n = self._n_total
        if isinstance(X, ChunkStream):  # from the moments of the first pass (parallel-axis theorem)
            mean = comm.all_reduce([X.sum])[0] / n
            local_mean, local_scatter = X.moments()
            d = local_mean - mean
            scatter = comm.all_reduce([local_scatter + X.shape[0] * torch.outer(d, d)])[0]
        else:
            X64 = X.to(torch.float64)
            mean = comm.all_reduce([X64.sum(0)])[0] / n
            Xc = X64 - mean
            scatter = comm.all_reduce([Xc.T @ Xc])[0]
        cov = scatter / max(n - 1, 1)
        evals, evecs = torch.linalg.eigh(cov)
        root = evecs * evals.clamp_min(0).sqrt()  # root @ root.T == cov
        D = X.shape[1]
        a = math.sqrt((2 * D - 1) / 2)
        proxy = torch.cat([mean + a * root.T, mean - a * root.T])
        return proxy.to(X.dtype)

    def _initialize_parameters(self, X: Tensor, generator: torch.Generator) -> None:
        if self._comm.is_distributed or isinstance(X, ChunkStream):
            self._initialize_distributed(X, generator)
            return
        # k-means on the centred data (the statistics are centred too), so float32 data far from the origin work;
        # with fewer samples than components, the first n_samples components get the initial responsibilities
        Xc = self.emission_._centred(X) if isinstance(self.emission_, _GaussianEmission) else X
        K = int(self.n_components)
        resp = initial_responsibilities(Xc, min(K, X.shape[0]), self.init_params, generator)
        if resp.shape[1] < K:
            resp = torch.cat([resp, resp.new_zeros(resp.shape[0], K - resp.shape[1])], dim=1)
        self._initialize(X, resp)

    def _initialize_distributed(self, X: Tensor, generator: torch.Generator) -> None:
        """
        Initialisation from a sample gathered from all ranks (``INIT_SAMPLE`` points at most, split evenly):
        the initial responsibilities of the sample (``init_params``), their statistics scaled by
        ``N / n_sample``, the conjugate update; rank 0's result is broadcast.
        """
        comm = self._comm
        per_rank = min(X.shape[0], math.ceil(INIT_SAMPLE / comm.world_size))
        if isinstance(X, ChunkStream):  # a uniform sample of the rows in one pass (streaming.ChunkStream.reservoir)
            local = X.reservoir(per_rank, generator)
        else:
            local = X[torch.randperm(X.shape[0], generator=generator)[:per_rank].to(X.device)]
        sample = comm.all_gather_rows(local)
        em = self.emission_
        Xc = em._centred(sample)
        K = int(self.n_components)
        resp = initial_responsibilities(Xc, min(K, sample.shape[0]), self.init_params, generator)
        if resp.shape[1] < K:
            resp = torch.cat([resp, resp.new_zeros(resp.shape[0], K - resp.shape[1])], dim=1)
        T, _ = em.training_statistics(sample)
        scale = self._n_total / sample.shape[0]
        counts = scale * resp.sum(0)
        phi = em.update(self._phi0, scale * (resp.T @ T), counts)
        sticks = stick_posterior(counts, self.alpha_, self.weight_concentration_prior_type)
        self._phi, self._sticks = comm.broadcast([phi, sticks])
        self.__dict__.pop("_seen", None)
        self._snvi_step = 0
        self._cavi_iter = 0
        self._svi_state = None
        self._drop_svi()

    def _stats_for(self, X: Tensor) -> SufficientStatistics:
        if isinstance(X, ChunkStream):
            return self._data
        if getattr(self, "_data_key", None) != (X.data_ptr(), tuple(X.shape)):
            self._data = SufficientStatistics(self.emission_, X)
            self._data_key = (X.data_ptr(), tuple(X.shape))
        return self._data

    def _initialize(self, X: Tensor, resp: Tensor) -> None:
        data = self._stats_for(X)
        K = int(self.n_components)
        stats = X.new_zeros(K, self.emission_.n_stats)
        start = 0
        for T, _ in data.chunks():
            stats.addmm_(resp[start:start + T.shape[0]].T, T)
            start += T.shape[0]
        counts = resp.sum(0)
        self._phi = self.emission_.update(self._phi0, stats, counts)
        self._sticks = stick_posterior(counts, self.alpha_, self.weight_concentration_prior_type)
        self.__dict__.pop("_seen", None)  # a fresh fit ends any partial_fit stream
        self._snvi_step = 0
        self._cavi_iter = 0
        self._svi_state = None
        self._drop_svi()

    # ------------------------------------------------------------------ #
    # one iteration
    # ------------------------------------------------------------------ #
    def _step(self, X: Tensor) -> float:
        data = self._stats_for(X)
        em, alpha, prior_type = self.emission_, self.alpha_, self.weight_concentration_prior_type
        n = X.shape[0]
        if self.method == "cavi":
            comm = self.__dict__.get("_comm")
            reduce = comm.all_reduce if comm is not None and comm.is_distributed else None
            if reduce is not None:
                n = self._n_total
            merge = self.merge and not isinstance(X, ChunkStream)  # merges need every point's responsibilities
            res = cavi_pass(em, data, self._phi0, self._phi, self._sticks, alpha, keep_resp=merge,
                            reduce=reduce)
            phi, counts = em.update(self._phi0, res.stats, res.counts), res.counts
            self._cavi_iter = self._cavi_iter + 1
            if merge and self._cavi_iter > _MERGE_AFTER:
                phi, counts, _ = merge_and_sort(em, self._phi0, phi, counts, res.resp, alpha, prior_type=prior_type,
                                                reduce=reduce)
            self._phi, self._sticks = phi, stick_posterior(counts, alpha, prior_type)
            return float(res.bound) / n
        if self.method == "snvi":
            self._phi, self._sticks, self._snvi_step = snvi_epoch(
                em, data, self._phi0, self._phi, self._sticks, alpha, int(self.batch_size or min(n, 1024)),
                self._snvi_step, float(self.learning_rate_offset), float(self.learning_rate_decay),
                self._fit_generator, prior_type=prior_type)
            return float(elbo(em, data, self._phi0, self._phi, self._sticks, alpha)) / n
        return self._svi_epoch(X, data)

    # ----- svi: the Pyro objects live only during a fit; their state is kept in self._svi_state ----- #
    def _svi_prefix(self) -> str:
        return f"_dpmm{id(self)}"

    def _svi_steps(self, n: int) -> tuple[int, int]:
        bs = min(int(self.batch_size or n), n)
        return bs, max(math.ceil(n / bs), _MIN_SVI_STEPS)

    def _build_svi(self, n: int) -> None:
        model = DPMixtureModel(self.emission_, int(self.n_components), self.alpha_, name=self._svi_prefix(),
                               prior_type=self.weight_concentration_prior_type)
        model.set_variational_params(self._phi, self._sticks)
        # the learning rate decays geometrically to 1% of its initial value over _SVI_DECAY_EPOCHS epochs
        lrd = 0.01 ** (1.0 / (_SVI_DECAY_EPOCHS * self._svi_steps(n)[1]))
        optim = pyro.optim.ClippedAdam({"lr": float(self.svi_learning_rate), "lrd": lrd})
        state = self._svi_state
        if state is not None:  # resume: the guide's unconstrained parameters and Adam's state, exactly
            prefix = model.name
            store = pyro.get_param_store()
            store.set_state({
                "params": {prefix + k: v.detach().clone().requires_grad_() for k, v in state["params"].items()},
                "constraints": {prefix + k: model.param_constraints()[prefix + k] for k in state["params"]},
            })
            optim.set_state({prefix + k: v for k, v in state["optim"].items()})
        self._svi = (model, SVI(model.model, model.guide, optim, TraceEnum_ELBO(max_plate_nesting=1)))

    def _save_svi_state(self) -> None:
        model, svi = self._svi
        prefix = model.name
        store = pyro.get_param_store()
        unconstrained = store.get_state()["params"]
        params = {name[len(prefix):]: unconstrained[name].detach().clone() for name in model._param_names()
                  if name in unconstrained}
        optim = {name[len(prefix):]: clone_nested(state) for name, state in svi.optim.get_state().items()
                 if name.startswith(prefix)}
        self._svi_state = {"params": params, "optim": optim}

    def _svi_epoch(self, X: Tensor, data: SufficientStatistics) -> float:
        n = X.shape[0]
        bs, steps = self._svi_steps(n)
        if self._svi is None:
            self._build_svi(n)
        model, svi = self._svi
        seed = int(torch.randint(0, 2**62, (), generator=self._fit_generator))
        with torch.random.fork_rng(devices=[X.device] if X.device.type == "cuda" else []):
            torch.manual_seed(seed)
            for _ in range(steps):
                svi.step(X, batch_size=bs if bs < n else None)
        self._phi, self._sticks = model.variational_params()
        self._save_svi_state()
        return float(elbo(self.emission_, data, self._phi0, self._phi, self._sticks, self.alpha_)) / n

    def _drop_svi(self) -> None:
        """Remove the live Pyro objects and this estimator's entries in Pyro's param store."""
        self.__dict__["_svi"] = None
        prefix = self._svi_prefix()
        store = pyro.get_param_store()
        for name in [k for k in store.keys() if k.startswith(prefix + "_")]:
            del store[name]

    # ------------------------------------------------------------------ #
    # BaseMixture hooks
    # ------------------------------------------------------------------ #
    def _has_converged(self, history: list[float]) -> bool:
        if self.method == "cavi":
            return super()._has_converged(history)
        # stochastic methods: the last _WINDOW changes are all below tol; svi runs its whole
        # max_iter iterations and only then checks
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

    def _get_state(self) -> dict[str, Tensor]:
        state = {"phi": self._phi.detach().clone(), "sticks": self._sticks.detach().clone(),
                 "phi0": self._phi0.detach().clone(), "alpha": self._phi.new_tensor(self.alpha_)}
        for key, value in self.emission_.dims().items():
            state[f"dim_{key}"] = torch.tensor(value)
        offset = getattr(self.emission_, "offset", None)
        if offset is not None:
            state["offset"] = offset.detach().clone()
        return state

    def _set_state(self, state: dict[str, Tensor]) -> None:
        if not hasattr(self, "emission_"):
            emission = self._make_emission()
            dims = {k[4:]: int(v) for k, v in state.items() if k.startswith("dim_")}
            emission.set_dims(dims, state["phi0"])
            if "offset" in state:
                emission.offset = state["offset"]
            self.emission_ = emission
        self._phi, self._sticks, self._phi0 = state["phi"], state["sticks"], state["phi0"]
        self.emission_.prior_natural = self._phi0
        self.alpha_ = float(state["alpha"])
        self._refresh_attributes()
        self.__dict__.pop("_data", None)
        self.__dict__.pop("_data_key", None)

    def _get_resume_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {"cavi_iter": int(self.__dict__.get("_cavi_iter", 0)),
                                 "snvi_step": int(self.__dict__.get("_snvi_step", 0))}
        if self.__dict__.get("_svi_state") is not None:
            state["svi"] = clone_nested(self._svi_state)
        if "_seen" in self.__dict__:  # partial_fit's count of points seen
            state["seen"] = int(self._seen)
        return state

    def _set_resume_state(self, state: dict[str, Any]) -> None:
        self._cavi_iter = int(state.get("cavi_iter", 0))
        self._snvi_step = int(state.get("snvi_step", 0))
        self._svi_state = clone_nested(state["svi"]) if state.get("svi") is not None else None
        if "seen" in state:
            self._seen = int(state["seen"])
        self._drop_svi()  # rebuilt from _svi_state by the next svi epoch

    def _abort_fit(self) -> None:
        self._drop_svi()

    @available_if(lambda self: self.method == "snvi")
    def partial_fit(self, X, y=None) -> DirichletProcessMixture:
        """
        Streaming fit (scikit-learn's convention): one pass of stochastic natural-gradient VI over the chunk
        ``X`` (minibatches of ``batch_size``, default 1024, in a random order), continuing the previous calls'
        parameters and step-size schedule :math:`(t+\\tau)^{-\\kappa}`.  Each step's statistics are scaled by
        ``N/|B|`` with ``N = total_size`` (or, if it is ``None``, the number of points seen so far).  The first
        call sets the data-dependent prior defaults (data mean, covariances) from its chunk and initialises the
        parameters on it (``init_params``, statistics scaled to ``N``); pass a representative first chunk,
        or ``mean_prior``/``covariance_prior``.  Only with ``method="snvi"`` (otherwise the attribute does
        not exist, as scikit-learn's ``available_if``).  ``lower_bound_`` is the exact ELBO
        per point of the chunk at the updated parameters, with the prior terms spread over ``N`` points;
        ``n_iter_`` counts the calls.  A ``fit`` afterwards starts over (or continues, with ``warm_start``).

        :param X: a chunk of data ``(n_chunk, n_features)``.
        :param y: ignored.
        :returns: ``self``.

        Example::

            >>> from pyro_expfam.datasets.blobs import make_blobs
            >>> X, _ = make_blobs(2_000, 2, 3, random_state=0, dtype=torch.float64)
            >>> est = DirichletProcessMixture(3, method="snvi", batch_size=100, total_size=2_000, random_state=0)
            >>> for epoch in range(3):
            ...     for chunk in X.split(500):
            ...         est = est.partial_fit(chunk)
            >>> cavi = DirichletProcessMixture(3, random_state=0).fit(X)
            >>> est.n_iter_, int((est.weights_ > 0.05).sum()), cavi.elbo(X) - est.elbo(X) < 0.01
            (12, 3, True)
        """
        snapshot = {k: (v.clone() if isinstance(v, Tensor) else clone_nested(v) if isinstance(v, dict | list)
                        else v) for k, v in self.__dict__.items()}
        try:
            self._partial_fit(X)
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(snapshot)
            self._abort_fit()
            raise
        return self

    def _partial_fit(self, X) -> None:
        self._check_base_parameters()
        self._check_hyper_parameters()
        if self.method != "snvi":
            raise ValueError(f"partial_fit needs method='snvi' (stochastic natural-gradient VI), got {self.method!r}")
        if self.distributed:
            raise ValueError("partial_fit is not available with distributed fitting yet; use distributed=False")
        ts = self.total_size
        if ts is not None and (isinstance(ts, bool) or not isinstance(ts, numbers.Integral) or ts < 1):
            raise ValueError(f"total_size must be a positive int or None, got {ts!r}")
        first = not self._is_fitted() or "_seen" not in self.__dict__
        X_in = X
        if first:
            X = self._validate_data(X, reset=True)
            self._device, self._dtype = X.device, X.dtype
            self._check_parameters(X)  # not warm: sets up the emission and the prior on this chunk
            self._prepare_fit(X)
            generator = torch_generator(self.random_state)
            self._seen = 0
        else:
            X = self._validate_data(X, reset=False)
            self.emission_.check_data(X)
            generator = torch.Generator()
            generator.set_state(self._generator_state)
        self._fit_generator = generator
        n = X.shape[0]
        self._seen = self._seen + n
        total = float(ts) if ts is not None else float(self._seen)
        em, alpha, prior_type = self.emission_, self.alpha_, self.weight_concentration_prior_type
        data = SufficientStatistics(em, X)
        if first:
            Xc = em._centred(X) if isinstance(em, _GaussianEmission) else X
            K = int(self.n_components)
            resp = initial_responsibilities(Xc, min(K, n), self.init_params, generator)
            if resp.shape[1] < K:
                resp = torch.cat([resp, resp.new_zeros(n, K - resp.shape[1])], dim=1)
            T, _ = em.training_statistics(X)
            counts = (total / n) * resp.sum(0)
            self._phi = em.update(self._phi0, (total / n) * (resp.T @ T), counts)
            self._sticks = stick_posterior(counts, alpha, prior_type)
            self._snvi_step, self._cavi_iter, self._svi_state = 0, 0, None
            self._drop_svi()
            self.lower_bounds_ = []
            self.n_iter_ = 0
        self._phi, self._sticks, self._snvi_step = snvi_epoch(
            em, data, self._phi0, self._phi, self._sticks, alpha, int(self.batch_size or min(n, 1024)),
            self._snvi_step, float(self.learning_rate_offset), float(self.learning_rate_decay), generator,
            prior_type=prior_type, total=total)
        res = cavi_pass(em, data, self._phi0, self._phi, self._sticks, alpha, accumulate=False)
        prior_terms = stick_kl(self._sticks, alpha) + em.kl(self._phi, self._phi0).sum()
        data_term = res.bound + prior_terms  # sum over the chunk of the data terms
        bound = float(data_term / n - prior_terms / total)
        if not math.isfinite(bound):
            raise FloatingPointError(f"partial_fit: the lower bound became {bound}; try float64")
        self._refresh_attributes()
        self.lower_bound_ = bound
        self.lower_bounds_ = [*self.lower_bounds_, bound]
        self.n_iter_ = int(self.n_iter_) + 1
        self.converged_ = False
        self._generator_state = generator.get_state()
        self._resume_state = self._get_resume_state()
        self._torch_io = isinstance(X_in, Tensor)
        self._fitted = True

    def save(self, path) -> None:
        """
        Save the fitted model (see :meth:`BaseMixture.save`).  In a distributed fit every rank holds the same
        model and only rank 0 writes (on the other ranks this does nothing); a process group is recorded as
        ``distributed=True``.

        :param path: file path or writable binary file object.
        """
        save_on_rank0(self, path, super().save)

    def _refresh_attributes(self) -> None:
        self.weight_concentration_prior_ = self.alpha_
        if isinstance(self.emission_, _GaussianEmission):
            for key, value in self.emission_.prior_summary(self._phi0).items():
                setattr(self, key, value)
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

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        if self.emission in ("bernoulli", "categorical", "poisson"):
            # the discrete emissions take non-negative integer data (codes, counts, 0/1): scikit-learn's checks
            # then feed rounded non-negative integers
            tags.input_tags.positive_only = True
            tags.input_tags.categorical = True
        return tags

    def _expected_failed_checks(self) -> dict[str, str]:
        return _expected_failed_checks(self)

    # ------------------------------------------------------------------ #
    def elbo(self, X) -> float:
        """
        Exact ELBO per data point of ``X`` at the fitted variational parameters
        (``q(z)`` optimal), the quantity all three fitting methods maximise.

        :param X: data ``(n_samples, n_features)``.

        Example::

            >>> from pyro_expfam.datasets.blobs import make_blobs
            >>> X, _ = make_blobs(500, 2, 3, random_state=0, dtype=torch.float64)
            >>> est = DirichletProcessMixture(6, random_state=0).fit(X)
            >>> round(est.elbo(X), 3), round(est.lower_bound_, 3)  # converged: the last iteration's bound
            (-4.673, -4.673)
        """
        self._check_is_fitted()
        X = self._validate_data(X, reset=False)
        data = SufficientStatistics(self.emission_, X)
        return float(elbo(self.emission_, data, self._phi0, self._phi, self._sticks, self.alpha_)) / X.shape[0]

    def pyro_model(self) -> DPMixtureModel:
        """
        The fitted model as a Pyro :class:`~.model.DPMixtureModel`, its guide
        initialised at the fitted variational parameters (component-wise emissions only).
        """
        self._check_is_fitted()
        if isinstance(self.emission_, TiedGaussianEmission):
            raise ValueError("pyro_model() supports component-wise emissions only (not covariance_type='tied')")
        model = DPMixtureModel(self.emission_, int(self.n_components), self.alpha_,
                               prior_type=self.weight_concentration_prior_type)
        model.set_variational_params(self._phi, self._sticks)
        return model




#: scikit-learn checks that fit on generic data; with the tags above they get non-negative integers, which the
#: Bernoulli emission refuses unless they are all 0 or 1
_FITTING_CHECKS = (
    "check_estimators_overwrite_params", "check_dont_overwrite_parameters", "check_estimators_fit_returns_self",
    "check_readonly_memmap_input", "check_n_features_in_after_fitting", "check_estimators_dtypes",
    "check_f_contiguous_array_estimator", "check_methods_sample_order_invariance", "check_methods_subset_invariance",
    "check_fit2d_1feature", "check_dict_unchanged", "check_fit_idempotent", "check_fit_check_is_fitted",
    "check_n_features_in", "check_fit2d_predict1d",
)


def _expected_failed_checks(est: DirichletProcessMixture) -> dict[str, str]:
    """
    scikit-learn checks that cannot apply to a configuration, with the reason (passed to
    :func:`~sklearn.utils.estimator_checks.parametrize_with_checks` by the test suite).  Only the Bernoulli
    emission has any: the checks' data are integers ``0..3`` (``round(X - X.min())``, the ``categorical`` input
    tag), outside its support ``{0, 1}``; the same checks pass for the categorical and Poisson emissions, which
    share every code path but the support check.
    """
    if est.emission != "bernoulli":
        return {}
    reason = ("emission='bernoulli' needs 0/1 data; scikit-learn's check feeds integers 0..3 "
              "(the same check passes for emission='categorical' and 'poisson')")
    return dict.fromkeys(_FITTING_CHECKS, reason)
