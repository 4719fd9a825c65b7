# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
r"""
:class:`BaseMixture`: the scikit-learn style estimator shared by every mixture
model (finite mixtures fitted by EM, Dirichlet-process mixtures fitted by CAVI
or stochastic natural-gradient VI).

The base class owns the *template fit loop*: input checks, ``n_init`` restarts
keeping the best lower bound, ``max_iter``/``tol`` convergence on the change of
the lower bound, :class:`~pyro_expfam.util.ConvergenceWarning`, the progress
bar, ``warm_start``, seeding, fitted attributes (``converged_``, ``n_iter_``,
``lower_bound_``, ``lower_bounds_``), prediction, sampling and save/load.

A subclass implements these hooks (all on tensors of the data's device/dtype)::

    _initialize(X, resp)            # set parameters from initial responsibilities (N, K)
    _estimate_weighted_log_prob(X)  # (N, K): log w_k + log p(x_n | k)   (expected, for VI)
    _m_step(X, log_resp)            # update parameters given log responsibilities
    _get_state() -> dict            # fitted parameters, a dict of tensors (save/load, best restart)
    _set_state(state)               # inverse of _get_state
    _sample_components(labels, generator) -> X   # one draw per label (optional: enables sample())

and may override::

    _check_parameters(X)            # validate hyper-parameters against the data (raise ValueError)
    _compute_lower_bound(X, log_resp, log_prob_norm) -> float
        # default: mean log-likelihood, right for EM; VI returns the exact ELBO per point
    _step(X) -> float               # one iteration; default: E-step, bound, M-step
    _weights() -> Tensor            # mixture weights (K,) for sample(); default self.weights_
    _has_converged(history) -> bool # default: |last change of the bound| < tol

One iteration of the default :meth:`BaseMixture._step` is: E-step (responsibilities
under the current parameters), the lower bound *at the current parameters*, then
the M-step.  For EM the bound is the log-likelihood; for CAVI,
``sum_n logsumexp_k log rho_nk - KL`` after the E-step is the exact ELBO, so
both are monotone in the iteration count.
"""

from __future__ import annotations

import inspect
import math
import warnings
from abc import ABC, abstractmethod
from typing import Any

import torch
from torch import Tensor

from ..util import ConvergenceWarning, NotFittedError, as_data_tensor, progress_bar
from .init import initial_responsibilities

__all__ = ["BaseMixture"]

try:  # when scikit-learn is installed, be a real scikit-learn estimator (Pipeline, GridSearchCV, clone, tags)
    from sklearn.base import BaseEstimator, DensityMixin

    _SKLEARN_BASES: tuple[type, ...] = (DensityMixin, BaseEstimator)
except ImportError:  # pragma: no cover - scikit-learn is optional
    _SKLEARN_BASES = ()

_DTYPES = {"float32": torch.float32, "float64": torch.float64}


class BaseMixture(*_SKLEARN_BASES, ABC):
    """
    Base class of the mixture estimators (scikit-learn conventions: constructor
    arguments are hyper-parameters stored unchanged, fitted attributes end in
    ``_``).

    :param int n_components: number of components (truncation level for a
        Dirichlet-process mixture).
    :param float tol: convergence threshold on the change of the lower bound
        (per data point) between iterations.
    :param int max_iter: maximum number of iterations per initialisation.
    :param int n_init: number of initialisations; the fit with the largest
        lower bound is kept.
    :param str init_params: ``"kmeans"`` (k-means++ seeding then Lloyd
        iterations), ``"k-means++"`` (seeding only, nearest-seed assignment) or
        ``"random"`` (random soft responsibilities).
    :param random_state: ``None`` (draw from torch's global generator, so
        :func:`~pyro_expfam.util.set_rng_seed` controls it), an ``int`` seed,
        or a CPU :class:`torch.Generator`.
    :param bool warm_start: if true, a second :meth:`fit` starts from the
        fitted state (``n_init`` is ignored), e.g. after :meth:`load`.
    :param verbose: show a progress bar (``bool`` or ``int > 0``).
    :param device: device to fit on (default: the data's device).
    :param dtype: floating dtype to fit in (default: the data's floating dtype,
        else ``torch.get_default_dtype()``).
    """

    def __init__(
        self,
        n_components: int = 1,
        *,
        tol: float = 1e-3,
        max_iter: int = 100,
        n_init: int = 1,
        init_params: str = "kmeans",
        random_state: int | torch.Generator | None = None,
        warm_start: bool = False,
        verbose: bool | int = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        self.n_components = n_components
        self.tol = tol
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.device = device
        self.dtype = dtype

    # ------------------------------------------------------------------ #
    # Hooks
    # ------------------------------------------------------------------ #
    def _check_parameters(self, X: Tensor) -> None:
        """Validate hyper-parameters against the data; raise ``ValueError``/``TypeError``."""
        return None

    @abstractmethod
    def _initialize(self, X: Tensor, resp: Tensor) -> None:
        """Set the parameters from initial responsibilities ``resp`` of shape ``(N, K)``."""

    @abstractmethod
    def _estimate_weighted_log_prob(self, X: Tensor) -> Tensor:
        """``(N, K)`` tensor of ``log w_k + log p(x_n | component k)``."""

    @abstractmethod
    def _m_step(self, X: Tensor, log_resp: Tensor) -> None:
        """Update the parameters from log responsibilities ``(N, K)``."""

    @abstractmethod
    def _get_state(self) -> dict[str, Tensor]:
        """Fitted parameters as a dict of tensors."""

    @abstractmethod
    def _set_state(self, state: dict[str, Tensor]) -> None:
        """Restore the fitted parameters from :meth:`_get_state`'s dict."""

    def _sample_components(self, labels: Tensor, generator: torch.Generator | None) -> Tensor:
        """One draw from component ``labels[i]`` for each ``i``; returns ``(n, D)``."""
        raise NotImplementedError(f"{type(self).__name__} does not implement sampling")

    def _weights(self) -> Tensor:
        """Mixture weights ``(K,)`` used by :meth:`sample`."""
        return self.weights_

    def _has_converged(self, history: list[float]) -> bool:
        """Whether the bounds ``history`` (oldest first) show convergence; default: last change below ``tol``."""
        return len(history) >= 2 and abs(history[-1] - history[-2]) < self.tol

    def _e_step(self, X: Tensor) -> tuple[Tensor, Tensor]:
        """Return ``(log_prob_norm (N,), log_resp (N, K))``."""
        weighted = self._estimate_weighted_log_prob(X)
        log_prob_norm = torch.logsumexp(weighted, dim=1)
        return log_prob_norm, weighted - log_prob_norm.unsqueeze(1)

    def _compute_lower_bound(self, X: Tensor, log_resp: Tensor, log_prob_norm: Tensor) -> float:
        """Lower bound per data point at the current parameters (EM: mean log-likelihood)."""
        return float(log_prob_norm.mean())

    def _step(self, X: Tensor) -> float:
        """One iteration; returns the lower bound at the parameters it started from."""
        log_prob_norm, log_resp = self._e_step(X)
        bound = self._compute_lower_bound(X, log_resp, log_prob_norm)
        self._m_step(X, log_resp)
        return bound

    # ------------------------------------------------------------------ #
    # scikit-learn plumbing
    # ------------------------------------------------------------------ #
    @classmethod
    def _get_param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [p.name for p in sig.parameters.values() if p.name != "self" and p.kind != p.VAR_KEYWORD]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """
        Hyper-parameters (the constructor arguments), as in scikit-learn.

        :param bool deep: ignored (no nested estimators); kept for scikit-learn compatibility.
        """
        return {name: getattr(self, name) for name in self._get_param_names()}

    def set_params(self, **params: Any) -> BaseMixture:
        """
        Set hyper-parameters by name, as in scikit-learn.

        :param params: constructor arguments.
        """
        valid = set(self._get_param_names())
        for key, value in params.items():
            if key not in valid:
                raise ValueError(f"invalid parameter {key!r} for {type(self).__name__}; valid: {sorted(valid)}")
            setattr(self, key, value)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    def _is_fitted(self) -> bool:
        return hasattr(self, "n_features_in_")

    def _check_is_fitted(self) -> None:
        if not self._is_fitted():
            raise NotFittedError(
                f"This {type(self).__name__} instance is not fitted yet; call 'fit' with appropriate arguments first."
            )

    def _check_base_parameters(self) -> None:
        def _int(name: str, minimum: int) -> None:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
                raise ValueError(f"{name} must be an int >= {minimum}, got {v!r}")

        _int("n_components", 1)
        _int("max_iter", 0)
        _int("n_init", 1)
        if isinstance(self.tol, bool) or not isinstance(self.tol, int | float) or not self.tol >= 0:
            raise ValueError(f"tol must be a non-negative number, got {self.tol!r}")
        if self.init_params not in ("kmeans", "k-means++", "random"):
            raise ValueError(f"init_params must be 'kmeans', 'k-means++' or 'random', got {self.init_params!r}")
        if self.dtype is not None and self.dtype not in (torch.float32, torch.float64, torch.float16, torch.bfloat16):
            raise TypeError(f"dtype must be a floating torch.dtype, got {self.dtype!r}")

    def _validate_data(self, X, reset: bool) -> Tensor:
        """Convert and check ``X``; on ``reset`` (fit) fix device/dtype/feature count, else follow the fit."""
        if reset:
            X = as_data_tensor(X, "X", ndim=2, dtype=self.dtype, device=self.device)
            if X.shape[1] < 1:
                raise ValueError(f"X must have at least one feature, got shape {tuple(X.shape)}")
            if X.shape[0] < self.n_components:
                raise ValueError(
                    f"X has {X.shape[0]} samples, fewer than n_components={self.n_components}; "
                    "lower n_components or provide more data"
                )
            return X
        X = as_data_tensor(X, "X", ndim=2, dtype=self._dtype, device=self._device)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features, but {type(self).__name__} was fitted with "
                             f"{self.n_features_in_} features")
        return X

    def _generator(self) -> torch.Generator:
        rs = self.random_state
        if isinstance(rs, torch.Generator):
            return rs
        if rs is None:
            seed = int(torch.randint(0, 2**62, (), dtype=torch.int64))
        elif isinstance(rs, bool) or not isinstance(rs, int):
            raise TypeError(f"random_state must be None, an int or a torch.Generator, got {type(rs).__name__}")
        else:
            seed = rs
        g = torch.Generator()
        g.manual_seed(seed)
        return g

    # ------------------------------------------------------------------ #
    # Fitting
    # ------------------------------------------------------------------ #
    def fit(self, X, y=None) -> BaseMixture:
        """
        Fit the model, running ``n_init`` initialisations of at most
        ``max_iter`` iterations each and keeping the best lower bound.

        :param X: data of shape ``(n_samples, n_features)`` (tensor or array).
        :param y: ignored (scikit-learn API).
        :returns: ``self``.
        """
        self.fit_predict(X, y)
        return self

    def fit_predict(self, X, y=None) -> Tensor:
        """
        Fit the model and return the most probable component of each sample
        (the same labels :meth:`predict` gives on ``X``).

        :param X: data of shape ``(n_samples, n_features)``.
        :param y: ignored.
        :rtype: Tensor of ``int64`` labels, shape ``(n_samples,)``.
        """
        self._check_base_parameters()
        X = self._validate_data(X, reset=True)
        self._check_parameters(X)
        self._device, self._dtype = X.device, X.dtype
        warm = bool(self.warm_start) and self._is_fitted()
        n_init = 1 if warm else self.n_init
        generator = self._generator()
        self._fit_generator = generator
        best_bound, best_state, best_history, best_iter, best_conv = -math.inf, None, [], 0, False
        for init in range(n_init):
            if not warm:
                self._initialize(X, initial_responsibilities(X, self.n_components, self.init_params, generator))
            history: list[float] = []
            converged = False
            previous = [float(self.lower_bound_)] if warm else []
            desc = f"{type(self).__name__} init {init + 1}/{n_init}"
            with progress_bar(self.max_iter, enabled=bool(self.verbose), desc=desc) as bar:
                n_iter = 0
                for n_iter in range(1, self.max_iter + 1):
                    bound = self._step(X)
                    if not math.isfinite(bound):
                        raise FloatingPointError(
                            f"{type(self).__name__}: the lower bound became {bound} at iteration {n_iter}; "
                            "the data may be degenerate (e.g. constant features) or the dtype too narrow"
                        )
                    history.append(bound)
                    bar.update(1)
                    bar.set_postfix(bound=f"{bound:.5g}")
                    if self._has_converged(previous + history):
                        converged = True
                        break
            final = history[-1] if history else -math.inf
            if best_state is None or final > best_bound:
                best_bound, best_state = final, self._get_state()
                best_history, best_iter, best_conv = history, n_iter, converged
        self._set_state(best_state)
        self.converged_ = best_conv
        self.n_iter_ = best_iter
        self.lower_bound_ = best_bound
        self.lower_bounds_ = best_history
        self.n_features_in_ = X.shape[1]
        if not best_conv and self.max_iter > 0:
            warnings.warn(
                f"{type(self).__name__}: the best of {n_init} initialisation(s) did not converge in "
                f"max_iter={self.max_iter} iterations (tol={self.tol}); try a larger max_iter or tol",
                ConvergenceWarning,
                stacklevel=2,
            )
        # a final E-step so that fit_predict(X) agrees with predict(X)
        return self._estimate_weighted_log_prob(X).argmax(dim=1)

    # ------------------------------------------------------------------ #
    # Prediction
    # ------------------------------------------------------------------ #
    def score_samples(self, X) -> Tensor:
        """
        Log density of each sample under the fitted mixture,
        ``logsumexp_k (log w_k + log p(x | k))`` (expectations under the
        variational posterior for VI models, as in scikit-learn).

        :param X: data of shape ``(n_samples, n_features)``.
        :rtype: Tensor of shape ``(n_samples,)``.
        """
        self._check_is_fitted()
        return torch.logsumexp(self._estimate_weighted_log_prob(self._validate_data(X, reset=False)), dim=1)

    def score(self, X, y=None) -> float:
        """
        Mean log density of the samples, :meth:`score_samples` averaged.

        :param X: data of shape ``(n_samples, n_features)``.
        :param y: ignored.
        """
        return float(self.score_samples(X).mean())

    def predict_proba(self, X) -> Tensor:
        """
        Posterior probability of each component for each sample.

        :param X: data of shape ``(n_samples, n_features)``.
        :rtype: Tensor of shape ``(n_samples, n_components)``.
        """
        self._check_is_fitted()
        return torch.softmax(self._estimate_weighted_log_prob(self._validate_data(X, reset=False)), dim=1)

    def predict(self, X) -> Tensor:
        """
        Most probable component of each sample.

        :param X: data of shape ``(n_samples, n_features)``.
        :rtype: Tensor of ``int64`` labels, shape ``(n_samples,)``.
        """
        self._check_is_fitted()
        return self._estimate_weighted_log_prob(self._validate_data(X, reset=False)).argmax(dim=1)

    def sample(self, n_samples: int = 1) -> tuple[Tensor, Tensor]:
        """
        Draw samples from the fitted mixture.

        :param int n_samples: number of samples.
        :returns: ``(X, labels)``, shapes ``(n_samples, n_features)`` and ``(n_samples,)``.
        """
        self._check_is_fitted()
        if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 1:
            raise ValueError(f"n_samples must be a positive int, got {n_samples!r}")
        generator = getattr(self, "_fit_generator", None) or self._generator()
        w = self._weights().detach().to("cpu", torch.float64)
        labels = torch.multinomial(w / w.sum(), n_samples, replacement=True, generator=generator)
        labels = labels.sort().values.to(self._device)
        return self._sample_components(labels, generator), labels

    # ------------------------------------------------------------------ #
    # Save / load
    # ------------------------------------------------------------------ #
    def _fitted_summary(self) -> dict[str, Any]:
        return {
            "converged_": self.converged_,
            "n_iter_": self.n_iter_,
            "lower_bound_": self.lower_bound_,
            "lower_bounds_": list(self.lower_bounds_),
            "n_features_in_": self.n_features_in_,
            "dtype": str(self._dtype).replace("torch.", ""),
            "device": str(self._device),
        }

    def save(self, path) -> None:
        """
        Save the hyper-parameters and fitted state with :func:`torch.save`
        (a dict of tensors and plain Python values).

        :param path: file path or file-like object.
        """
        self._check_is_fitted()
        params = {k: v for k, v in self.get_params().items() if not isinstance(v, torch.Generator)}
        for k in ("dtype", "device"):
            if params.get(k) is not None:
                params[k] = str(params[k]).replace("torch.", "")
        torch.save(
            {"class": type(self).__name__, "params": params, "fitted": self._fitted_summary(),
             "state": {k: v.detach() for k, v in self._get_state().items()}},
            path,
        )

    @classmethod
    def load(cls, path, map_location: torch.device | str | None = None) -> BaseMixture:
        """
        Load an estimator written by :meth:`save`.  To resume fitting, set
        ``warm_start=True`` (``est.set_params(warm_start=True).fit(X)``).

        :param path: file path or file-like object.
        :param map_location: device to load the tensors onto (default: where they were saved).
        """
        blob = torch.load(path, map_location=map_location, weights_only=True)
        if blob.get("class") != cls.__name__:
            raise TypeError(f"{path!r} holds a {blob.get('class')}, not a {cls.__name__}")
        params = dict(blob["params"])
        if params.get("dtype") is not None:
            params["dtype"] = _DTYPES.get(params["dtype"], getattr(torch, params["dtype"]))
        est = cls(**params)
        fitted = blob["fitted"]
        state = blob["state"]
        est._set_state(state)
        for key in ("converged_", "n_iter_", "lower_bound_", "lower_bounds_", "n_features_in_"):
            setattr(est, key, fitted[key])
        est._dtype = getattr(torch, fitted["dtype"])
        first = next(iter(state.values()), None)
        est._device = first.device if first is not None else torch.device(fitted["device"])
        if map_location is not None and params.get("device") is not None:
            est.device = str(first.device) if first is not None else map_location
        return est
