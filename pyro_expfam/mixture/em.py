# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
r"""
Finite mixtures of any exponential family fitted by expectation-maximisation.

For components :math:`p(x\mid\eta_k) = \exp(\langle\eta_k, t(x)\rangle - A(\eta_k) + k(x))`
with weights :math:`w_k`:

- **E-step.** The component log-densities of all points are one matrix
  product, ``T @ eta.T - A(eta) + k(x)`` with ``T`` the ``(N, dim t)``
  sufficient statistics (computed once per fit) and ``eta`` the ``(K, dim t)``
  natural parameters; responsibilities follow by ``logsumexp``.
- **M-step.** The weighted averages of the sufficient statistics,
  :math:`\bar t_k = \sum_n r_{nk} t(x_n) / \sum_n r_{nk}`, are the mean
  parameters of the maximum-likelihood component; the family's inverse
  mean map :meth:`~pyro_expfam.distributions.ExponentialFamily.from_mean_parameters`
  turns them into the new component (closed form for most families, Newton
  for Gamma/Beta/Dirichlet, ...).

So one class fits mixtures of Poisson, Bernoulli, Categorical, VonMises,
Gamma, Exponential, Normal, MultivariateNormal, ... components.  Data with
extra dimensions between the sample dimension and the family's event shape
are modelled as a product of independent members per component (Pyro's
``.to_event``), e.g. ``D`` binary features with Bernoulli components.
"""

from __future__ import annotations

import math

import pyro.distributions as pyro_dist
import torch
from torch import Tensor

from ..distributions.exp_family import ExponentialFamily
from ..families import ExpFamFamily, seeding
from ..families.generic import VECTOR_EVENT_FAMILIES as _VECTOR_EVENT_FAMILIES
from ..families.generic import family_support as _family_support
from ..families.generic import non_negative_support as _non_negative
from ..families.generic import prototype_from_class as _prototype_from_class  # noqa: F401 (old private name)
from ..families.generic import resolve_family as _resolve_family
from ..parallel import INIT_SAMPLE, communicator, save_on_rank0
from ..util import check_float_resolution
from .base import BaseMixture

__all__ = ["ExpFamMixture"]

#: Shrinkage towards the pooled statistics of the components built from hard initial labels.
_INIT_SHRINK = 0.1


#: scikit-learn estimator checks that fit on its generic data (for Bernoulli: non-binary counts)
_DATA_CHECKS = (
    "check_estimators_overwrite_params", "check_dont_overwrite_parameters", "check_estimators_fit_returns_self",
    "check_readonly_memmap_input", "check_n_features_in_after_fitting", "check_estimators_dtypes",
    "check_f_contiguous_array_estimator", "check_methods_sample_order_invariance", "check_methods_subset_invariance",
    "check_fit2d_1feature", "check_dict_unchanged", "check_fit_idempotent", "check_fit_check_is_fitted",
    "check_n_features_in", "check_fit2d_predict1d",
)

#: families with finitely many outcomes: pseudo_count="auto" gives them one pseudo-observation
_FINITE_OUTCOME_FAMILIES = ("Bernoulli", "Binomial", "Categorical", "OneHotCategorical", "Multinomial")

#: families that stay in the family under a shift of the data, fitted in coordinates centred at the data's mean
_LOCATION_FAMILIES = ("Normal", "MultivariateNormal")


class ExpFamMixture(BaseMixture):
    r"""
    Finite mixture of components from one exponential family, fitted by EM.

    The data ``X`` has shape ``(N,) + extra_shape + event_shape`` where
    ``event_shape`` is the family's; each component is a product of
    independent family members over ``extra_shape`` (for instance ``(N, D)``
    binary data with ``family=Bernoulli`` gives components with ``D``
    independent Bernoulli features, ``Bernoulli(...).to_event(1)``).

    ``reg`` and ``pseudo_count`` keep every component inside the family's
    mean-parameter space: the M-step averages are shrunk towards the pooled
    averages of the whole data set by
    ``c_k = reg * (n_k + 1) + pseudo_count`` pseudo-observations,
    :math:`\bar t_k = (\sum_n r_{nk} t(x_n) + c_k \bar t) / (n_k + c_k)`.
    ``pseudo_count`` alone is the maximum a posteriori component under the
    conjugate prior :math:`p(\eta) \propto \exp(c \langle\eta, \bar t\rangle
    - c A(\eta))` centred at the data (for Bernoulli features: a
    :math:`\mathrm{Beta}(c \bar p, c (1 - \bar p))` prior per feature, with
    :math:`\bar p` the feature's frequency in the data) -- a fixed amount,
    like scikit-learn's ``reg_covar``, whose weight vanishes as the data
    grow; ``reg`` is relative to the component's size.  ``reg = 0`` and
    ``pseudo_count = 0`` is plain maximum likelihood.  This gives an empty
    component the pooled parameters and keeps, e.g., a binary feature that
    is always 1 in one cluster at a finite logit; with finitely many
    outcomes (Bernoulli, Categorical, ...) maximum likelihood gives an
    outcome never seen in a cluster probability 0 (the family clamps it to
    the float resolution, e.g. a logit of about ``±36`` in float64), which
    costs about 36 nats on held-out data where it occurs: the default
    ``pseudo_count="auto"`` is one pseudo-observation for those families.
    The weighted averages are clamped to the range of ``t(x)`` over the data
    (against rounding), so ``reg = pseudo_count = 0`` fits too.  The E-step
    clamps infinite natural parameters (boundary members such as a Poisson
    of rate 0) to ``±sqrt(finfo.max)`` so that the matrix
    product stays exact where the density is 0 or 1.

    Fitted attributes: ``weights_`` ``(K,)``, ``natural_params_`` (one tensor
    per natural parameter, shape ``(K,) + extra_shape + event``),
    ``components_`` (the family with ``batch_shape == (K,) + extra_shape``),
    ``converged_``, ``n_iter_``, ``lower_bound_`` (mean log-likelihood per
    sample; with pseudo-observations EM increases the log-likelihood plus
    the log prior, so the log-likelihood alone can dip slightly),
    ``lower_bounds_``, ``n_features_in_`` (the flattened size of a
    sample).

    :param family: a family of :mod:`pyro_expfam.distributions` given as a
        class (families with scalar parameters: ``Poisson``, ``Bernoulli``,
        ``Gamma``, ``Exponential``, ``VonMises``, ``Normal``, ...), its name, or
        a *prototype instance* fixing parameter shapes and fixed parameters
        (``Categorical(logits=torch.zeros(C))``,
        ``MultivariateNormal(torch.zeros(D), torch.eye(D))``,
        ``Binomial(total_count=n, probs=0.5)``); its parameter values are unused.
    :param int n_components: number of components ``K``.
    :param float reg: shrinkage towards the pooled statistics relative to the
        component's size (see above).
    :param pseudo_count: pseudo-observations of the pooled statistics added to
        every component in the M-step (the MAP estimate under a conjugate
        prior, see above): a non-negative number, or ``"auto"``: ``1.0`` for
        families with finitely many outcomes (``Bernoulli``, ``Binomial``,
        ``Categorical``, ``OneHotCategorical``, ``Multinomial``), ``0.0``
        otherwise.
    :param float tol: convergence threshold on the change of the mean
        log-likelihood per sample (``1e-4``: EM on binary data can slow down
        to changes below ``1e-3`` per iteration and then still gain several
        hundredths of a nat per sample).
    :param int max_iter: maximum EM iterations per initialisation.
    :param int n_init: number of initialisations (the best log-likelihood is kept).
    :param str init_params: ``"k-means++"`` (nearest k-means++ seed),
        ``"kmeans"`` (Lloyd's k-means) -- both on the standardised sufficient
        statistics ``t(x)`` (one-hot codes for Categorical, ``(cos, sin)`` for
        VonMises, ...), the initial components shrunk by 10% towards the pooled
        statistics so that no hard label saturates them -- or ``"random"``
        (random soft responsibilities).
    :param random_state: ``None``, an ``int`` seed or a CPU ``torch.Generator``.
    :param bool warm_start: continue from the fitted state on the next :meth:`fit`.
    :param verbose: show a progress bar.
    :param device: device to fit on (default: the data's).
    :param dtype: floating dtype to fit in (default: the data's floating dtype,
        else ``torch.get_default_dtype()``).
    :param distributed: data-parallel EM on :mod:`torch.distributed` (:mod:`pyro_expfam.parallel`): ``False``
        (default), ``True`` (the default process group) or a ``ProcessGroup``.  ``fit(X)`` is called on every
        rank with its shard; each M-step all-reduces the counts and weighted sums of ``t(x)`` (``O(K dim t)``
        numbers, independent of the number of points) and each bound the shards' log-likelihood sums, so every
        rank ends with the same model.  The shift, pooled statistics and their range are those of all the
        shards; the start runs on a sample gathered from all ranks (at most 10,000 points) and rank 0's
        initial components are broadcast.  Only rank 0 writes in :meth:`save`.  Prediction is local.

    Fitted attributes and predictions are numpy arrays when ``X`` was a numpy
    array, tensors when it was a tensor (``components_`` is always a torch
    distribution).  ``Normal`` and ``MultivariateNormal`` components are fitted
    in coordinates centred at the training data's mean (the fit's shift, which
    every method subtracts from new data), so float32 data far from the origin
    keep their precision; data float32 cannot represent are refused with a
    message suggesting float64.

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = np.concatenate([rng.poisson(2.0, (500, 3)), rng.poisson(20.0, (500, 3))])
    >>> m = ExpFamMixture("Poisson", n_components=2, random_state=0).fit(X)
    >>> m.components_.rate.sort(0).values.round()
    tensor([[ 2.,  2.,  2.],
            [20., 20., 20.]], dtype=torch.float64)
    >>> labels = m.predict(np.array([[1, 2, 3], [19, 22, 20]]))
    >>> labels.dtype, bool(labels[0] != labels[1])
    (dtype('int64'), True)
    >>> mvn = ExpFamMixture("MultivariateNormal", 2, random_state=0).fit(rng.normal(size=(200, 2)) + [1e4, 0])
    >>> mvn.components_.event_shape, mvn.weights_.shape
    (torch.Size([2]), (2,))
    """

    def __init__(
        self,
        family,
        n_components: int = 1,
        *,
        reg: float = 1e-6,
        pseudo_count: float | str = "auto",
        tol: float = 1e-4,
        max_iter: int = 100,
        n_init: int = 1,
        init_params: str = "k-means++",
        random_state: int | torch.Generator | None = None,
        warm_start: bool = False,
        verbose: bool | int = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        distributed=False,
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
        self.reg = reg
        self.distributed = distributed
        self.pseudo_count = pseudo_count

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        support = _family_support(self.family)
        if support is not None:
            if support.is_discrete:  # scikit-learn then feeds non-negative integers (its "categorical" data)
                tags.input_tags.categorical = True
            if _non_negative(support):
                tags.input_tags.positive_only = True
        return tags

    def _expected_failed_checks(self) -> dict[str, str]:
        """The scikit-learn checks whose data this family cannot model, with the reason."""
        try:
            cls, _ = _resolve_family(self.family)
        except (TypeError, ValueError):
            return {}
        reasons: dict[str, str] = {}
        support = _family_support(self.family)
        if cls.__name__ not in _VECTOR_EVENT_FAMILIES and support is not None and not support.is_discrete:
            one_d = ("1-D X holds n_samples scalar observations for a family with scalar events "
                     "(ExpFamMixture models X of shape (n_samples,) + extra_shape + event_shape)")
            reasons["check_fit1d"] = one_d
        name = cls.__name__
        if name == "Bernoulli":
            binary = ("scikit-learn has no input tag for binary data: the check feeds counts 0..10 "
                      "(its 'categorical' data), outside the {0, 1} support of Bernoulli components")
            for check in _DATA_CHECKS:
                reasons[check] = binary
        return reasons

    # ------------------------------------------------------------------ #
    # Data handling: X is kept flattened to (N, F) so that the base class sees 2-D data
    # ------------------------------------------------------------------ #
    def _setup_family(self, X: Tensor) -> None:
        """Build the prototype (one member per sample, ``batch_shape == extra_shape``) for data ``X``."""
        family = ExpFamFamily(self.family)  # the family layer
        proto, extra = family.member_for(X)
        self._family_cls, self._extra_shape, self._data_shape = family.cls, extra, tuple(X.shape[1:])
        self._fixed = {
            k: torch.as_tensor(v, device=X.device) for k, v in proto._fixed_params().items()
        }
        self._proto = proto

    def _check_support(self, X: Tensor) -> None:
        ExpFamFamily(self._proto).check_data(X)  # the family layer's check and message

    def _validate_data(self, X, reset: bool) -> Tensor:
        X_in = X
        X = self.check_X(X, reset, ensure_2d=False, allow_nd=True, ensure_min_samples=2 if reset else 1)
        if X.dim() < 1:
            raise ValueError(f"X must have a sample dimension, got shape {tuple(X.shape)}")
        if reset:
            if X.shape[0] < int(self.n_components):
                raise ValueError(
                    f"Expected n_samples >= n_components but got n_components = {self.n_components}, "
                    f"n_samples = {X.shape[0]} (X has fewer than n_components samples)"
                )
            if not isinstance(self.reg, int | float) or isinstance(self.reg, bool) or not self.reg >= 0:
                raise ValueError(f"reg must be a non-negative number, got {self.reg!r}")
            if not (self.warm_start and self._is_fitted()):
                self._setup_family(X)
            elif tuple(X.shape[1:]) != self._data_shape:
                raise ValueError(f"X has sample shape {tuple(X.shape[1:])}, but the model was fitted on "
                                 f"{self._data_shape}")
            self.n_features_in_ = math.prod(X.shape[1:])
        elif tuple(X.shape[1:]) != self._data_shape:
            hint = (" Reshape your data: X.reshape(1, -1) if it is a single sample" if X.dim() == 1 and
                    len(self._data_shape) == 1 else "")
            raise ValueError(f"X must have shape (n_samples,) + {self._data_shape}, got {tuple(X.shape)}.{hint}")
        del X_in
        self._check_support(X)
        return X.reshape(X.shape[0], -1)

    def _unflatten(self, X: Tensor) -> Tensor:
        return X.reshape((X.shape[0],) + self._data_shape)

    def _compute_stats(self, X: Tensor) -> tuple[list[Tensor], Tensor]:
        """Flattened sufficient statistics ``[(N, T_j)]`` and summed log carrier measure ``(N,)``."""
        shift = self.__dict__.get("_shift")
        x = self._unflatten(X if shift is None else X - shift.to(X))
        return ExpFamFamily(self._proto).statistics(x)

    def _stats(self, X: Tensor) -> tuple[list[Tensor], Tensor]:
        cache = getattr(self, "_cache", None)
        if cache is not None and cache[0] is X:
            return cache[1]
        return self._compute_stats(X)

    # ------------------------------------------------------------------ #
    # EM hooks
    # ------------------------------------------------------------------ #
    def fit_predict(self, X, y=None) -> Tensor:
        """
        Fit the mixture by EM and return the most probable component of each sample.

        :param X: data of shape ``(n_samples,) + extra_shape + event_shape``.
        :param y: ignored.
        :rtype: Tensor of ``int64`` labels, shape ``(n_samples,)``.
        """
        try:
            return super().fit_predict(X, y)
        finally:
            self._cache = None

    def _check_parameters(self, X: Tensor) -> None:
        # local checks only (a distributed fit's ranks agree on them); the data's moments: _prepare_fit
        self._comm = communicator(self.distributed)

    # ----- distributed fits: the data's moments over all the shards (each a no-op reduction otherwise) ----- #
    def _global_mean(self, t: Tensor) -> Tensor:
        comm = self._comm
        if not comm.is_distributed:
            return t.mean(0)
        return (comm.all_reduce([t.to(torch.float64).sum(0)])[0] / self._n_total).to(t.dtype)

    def _global_range(self, t: Tensor) -> tuple[Tensor, Tensor]:
        lo, hi = t.amin(0), t.amax(0)
        return self._comm.all_reduce([lo], op="min")[0], self._comm.all_reduce([hi], op="max")[0]

    def _global_std(self, X: Tensor) -> Tensor:
        if not self._comm.is_distributed:
            return X.std(0, correction=0)
        mean = self._global_mean(X.to(torch.float64))
        return (self._global_mean((X.to(torch.float64) - mean).square())).sqrt().to(X.dtype)

    def _weighted_sums(self, X: Tensor, stats: list[Tensor], resp: Tensor) -> tuple[Tensor, list[Tensor]]:
        """``(sum_n r_nk, [R^T t_j])``, summed over the ranks in a distributed fit's M-step on its shard."""
        nk, sums = resp.sum(0), [resp.T @ t for t in stats]
        comm, cache = self.__dict__.get("_comm"), self.__dict__.get("_cache")
        if comm is not None and comm.is_distributed and cache is not None and cache[0] is X:
            nk, *sums = comm.all_reduce([nk, *sums])
        return nk, sums

    def _prepare_fit(self, X: Tensor) -> None:
        comm = self._comm
        comm.check_equal((tuple(X.shape[1:]), str(X.dtype)), "the shards' sample shape and dtype")
        self._n_total = comm.sum_int(X.shape[0], X.device)
        # location families are fitted in coordinates centred at the training data's mean (a warm start
        # keeps the fitted shift); every method that takes data subtracts the same shift
        warm = bool(self.warm_start) and self._is_fitted()
        if self._family_cls.__name__ in _LOCATION_FAMILIES:
            check_float_resolution(X, "X")
            if not warm:
                self._shift = self._global_mean(X)
        elif not warm:
            self._shift = None
        # called by the base class once, on the validated training data: cache t(x) for the whole fit
        self._cache = (X, self._compute_stats(X))
        stats = self._cache[1][0]
        self._pooled = [self._global_mean(t) for t in stats]
        self._pseudo = self._resolve_pseudo_count()
        # the coordinatewise range of t(x): every weighted average lies in it (up to rounding, clamped away)
        self._stat_range = [self._global_range(t) for t in stats]
        self._check_degenerate(X)

    def _resolve_pseudo_count(self) -> float:
        """The number of pseudo-observations of the M-step (``pseudo_count`` with ``"auto"`` resolved)."""
        value = self.pseudo_count
        if isinstance(value, str):
            if value != "auto":
                raise ValueError(f"pseudo_count must be a non-negative number or 'auto', got {value!r}")
            return 1.0 if self._family_cls.__name__ in _FINITE_OUTCOME_FAMILIES else 0.0
        if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0 or math.isinf(value):
            raise ValueError(f"pseudo_count must be a non-negative number or 'auto', got {value!r}")
        return float(value)

    def _check_degenerate(self, X: Tensor) -> None:
        """Refuse data whose maximum-likelihood components do not exist (e.g. a constant real feature)."""
        cls = self._family_cls
        name = cls.__name__
        if not self._proto.support.is_discrete and len(cls._natural_param_event_dims) > 1:
            # a location-dispersion family: a constant coordinate collapses every component's dispersion
            spread = self._global_std(X)
            const = spread <= 8 * torch.finfo(X.dtype).eps * self._comm.all_reduce([X.abs().amax(0)], op="max")[0]
            if bool(const.any()):
                idx = const.nonzero().flatten().tolist()[:5]
                raise ValueError(
                    f"X is singular for the {name} family: coordinate(s) {idx} of the flattened samples are "
                    "constant, so the maximum-likelihood dispersion of every component is degenerate; drop "
                    "those features or add noise"
                )
        shapes = [self._param_event_shape(g.shape[0], r) for g, r in zip(self._pooled, cls._natural_param_event_dims)]
        pooled = [g.reshape(self._extra_shape + e) for g, e in zip(self._pooled, shapes, strict=True)]
        try:
            cls.from_mean_parameters(*pooled, **self._fixed)
        except ValueError as e:
            raise ValueError(
                f"X is singular for the {name} family: even a single component fitted to all of X does not exist "
                f"({e})"
            ) from e

    def _features(self, X: Tensor) -> Tensor:
        """Standardised sufficient statistics of vector rank (the space k-means runs in)."""
        stats, _ = self._stats(X)
        return seeding.standardized_features(stats, self._family_cls._natural_param_event_dims)

    def _initialize_parameters(self, X: Tensor, generator: torch.Generator) -> None:
        comm = self._comm
        if comm.is_distributed and self._cache[0] is X:
            # the start on a sample gathered from all ranks (this method on the sample), rank 0's broadcast
            per_rank = min(X.shape[0], math.ceil(INIT_SAMPLE / comm.world_size))
            idx = torch.randperm(X.shape[0], generator=generator)[:per_rank].to(X.device)
            self._initialize_parameters(comm.all_gather_rows(X[idx]), generator)
            self._weights_, *eta = comm.broadcast([self._weights_, *self._natural_params])
            self._natural_params = tuple(eta)
            return
        if self.init_params in ("random", "random_from_data"):
            resp = seeding.initial_responsibilities(X, int(self.n_components), self.init_params, generator)
            self._m_step_resp(X, resp)
            return
        resp = seeding.initial_responsibilities(self._features(X), int(self.n_components), self.init_params,
                                                generator)
        # hard k-means labels give saturated components (e.g. a binary feature that is constant within a
        # cluster gets an infinite logit) that lock EM into the initial partition: start from components
        # shrunk by 10% towards the pooled statistics instead
        self._m_step_resp(X, resp, reg=max(self.reg, _INIT_SHRINK))

    def _initialize(self, X: Tensor, resp: Tensor) -> None:
        self._m_step_resp(X, resp)

    def _m_step(self, X: Tensor, log_resp: Tensor) -> None:
        self._m_step_resp(X, log_resp.exp())

    def _m_step_resp(self, X: Tensor, resp: Tensor, reg: float | None = None) -> None:
        stats, _ = self._stats(X)
        nk, sums = self._weighted_sums(X, stats, resp)
        nk, sums = nk + 10 * torch.finfo(resp.dtype).eps, iter(sums)
        c = (self.reg if reg is None else reg) * (nk + 1) + self._pseudo
        K = self.n_components
        means = []
        ranks = self._family_cls._natural_param_event_dims
        for t, g, (lo, hi), r in zip(stats, self._pooled, self._stat_range, ranks, strict=True):
            m = (next(sums) + c[:, None] * g) / (nk + c)[:, None]
            # a weighted average of t(x) lies in the range of t(x) (a binary feature's mean in [0, 1]); the GEMM
            # and the division can round a few ulps beyond it, which from_mean_parameters would refuse
            m = torch.minimum(torch.maximum(m, lo), hi)
            event = self._param_event_shape(t.shape[1], r)
            means.append(m.reshape((K,) + self._extra_shape + event))
        try:
            comps = self._family_cls.from_mean_parameters(*means, **self._fixed)
        except ValueError as e:
            raise ValueError(
                f"M-step failed: the weighted average sufficient statistics of a component leave the mean "
                f"parameter space of {self._family_cls.__name__} ({e}). The data may be degenerate within a "
                "component (e.g. constant values); increase reg, lower n_components or use float64."
            ) from e
        self._weights_ = nk / nk.sum()
        self._natural_params = tuple(p.to(X.dtype) for p in comps._expanded_natural_params())

    def _param_event_shape(self, size: int, rank: int) -> tuple[int, ...]:
        n_extra = math.prod(self._extra_shape)
        per = size // n_extra
        if rank == 0:
            return ()
        if rank == 1:
            return (per,)
        d = math.isqrt(per)  # square matrix parameters (MVN, Wishart)
        return (d, d)

    def _component_log_prob(self, X: Tensor) -> Tensor:
        """``(N, K)`` log-densities ``<t(x_n), eta_k> - A(eta_k) + k(x_n)``, one GEMM per natural parameter."""
        stats, carrier = self._stats(X)
        big = math.sqrt(torch.finfo(X.dtype).max)
        eta = [p.nan_to_num(nan=math.nan, posinf=big, neginf=-big) for p in self._natural_params]
        log_norm = self._proto._log_normalizer(*eta)
        log_norm = log_norm.reshape(self.n_components, -1).sum(1)
        out = carrier.unsqueeze(1) - log_norm
        K = self.n_components
        for t, e in zip(stats, eta, strict=True):
            out = torch.addmm(out, t, e.reshape(K, -1).T)
        return out

    def _estimate_weighted_log_prob(self, X: Tensor) -> Tensor:
        return self._component_log_prob(X) + self._weights_.log()

    # ------------------------------------------------------------------ #
    # State, components, sampling, save/load
    # ------------------------------------------------------------------ #
    @property
    def components_(self) -> ExponentialFamily:
        """The fitted components: the family with ``batch_shape == (K,) + extra_shape`` (always tensors)."""
        self._check_is_fitted()
        comps = self._family_cls._from_natural_params(*self._natural_params, **self._fixed)
        shift = self.__dict__.get("_shift")
        if shift is None:
            return comps
        shift = shift.reshape(self._data_shape)  # back from the centred coordinates of the fit
        if self._family_cls.__name__ == "Normal":
            return self._family_cls(comps.loc + shift, comps.scale)
        return self._family_cls(comps.loc + shift, scale_tril=comps.scale_tril)

    @property
    def natural_params_(self) -> tuple:
        """The fitted natural parameters, one array per natural parameter, shape ``(K,) + extra_shape + event``."""
        self._check_is_fitted()
        params = self._natural_params if self.__dict__.get("_shift") is None else (
            self.components_._expanded_natural_params())
        return tuple(self._output(p) for p in params)

    def to_distribution(self) -> pyro_dist.MixtureSameFamily:
        """
        The fitted mixture as a :class:`pyro.distributions.MixtureSameFamily`
        over samples of shape ``extra_shape + event_shape``.
        """
        comps = self.components_
        if self._extra_shape:
            comps = comps.to_event(len(self._extra_shape))
        return pyro_dist.MixtureSameFamily(pyro_dist.Categorical(probs=self._weights_), comps)

    def _get_state(self) -> dict[str, Tensor]:
        state = {"weights": self._weights_, "data_shape": torch.tensor(self._data_shape, dtype=torch.int64)}
        state["extra_rank"] = torch.tensor(len(self._extra_shape), dtype=torch.int64)
        for i, p in enumerate(self._natural_params):
            state[f"eta{i}"] = p
        for k, v in self._fixed.items():
            state[f"fixed.{k}"] = v
        if self.__dict__.get("_shift") is not None:
            state["shift"] = self._shift
        return state

    def _set_state(self, state: dict[str, Tensor]) -> None:
        cls, _ = _resolve_family(self.family)
        self._family_cls = cls
        self._weights_ = state["weights"]
        self._data_shape = tuple(int(s) for s in state["data_shape"].tolist())
        n_extra = int(state["extra_rank"])
        self._extra_shape = self._data_shape[:n_extra]
        n_eta = sum(1 for k in state if k.startswith("eta"))
        self._natural_params = tuple(state[f"eta{i}"] for i in range(n_eta))
        self._fixed = {k[len("fixed.") :]: v for k, v in state.items() if k.startswith("fixed.")}
        self._shift = state.get("shift")
        first = cls._from_natural_params(*(p[0] for p in self._natural_params), **self._fixed)
        self._proto = first

    def _sample_components(self, labels: Tensor, generator: torch.Generator | None) -> Tensor:
        # torch's samplers draw from the global generator: fork it, seeded from ``generator``
        seed = int(torch.randint(0, 2**62, (), generator=generator))
        out = []
        devices = [labels.device.index or 0] if labels.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            counts = torch.bincount(labels, minlength=self.n_components).tolist()
            for k, n_k in enumerate(counts):
                if n_k:
                    comp = self._family_cls._from_natural_params(*(p[k] for p in self._natural_params), **self._fixed)
                    out.append(comp.sample((n_k,)))
        x = torch.cat(out).to(self._dtype)
        shift = self.__dict__.get("_shift")
        return x if shift is None else x + shift.reshape(self._data_shape)

    def sample(self, n_samples: int = 1) -> tuple[Tensor, Tensor]:
        """
        Draw samples from the fitted mixture.

        :param int n_samples: number of samples.
        :returns: ``(X, labels)`` of shapes ``(n_samples,) + extra_shape + event_shape`` and ``(n_samples,)``.
        """
        return super().sample(n_samples)

    def save(self, path) -> None:
        """
        Save the hyper-parameters and fitted state (the family is stored by name).

        :param path: file path or file-like object.
        """
        family = self.family
        self.family = _resolve_family(family)[0].__name__
        try:
            save_on_rank0(self, path, super().save)
        finally:
            self.family = family

    def _n_parameters(self) -> int:
        """Number of free parameters (natural parameters counted as free; weights sum to one)."""
        per_component = sum(p[0].numel() for p in self._natural_params)
        return int(self.n_components * per_component + self.n_components - 1)
