# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
r"""
:class:`BaseMixture`: the scikit-learn estimator template shared by every
mixture model (finite mixtures by EM, Dirichlet-process mixtures by CAVI /
stochastic VI, overlapping mixtures).  This docstring is the contract the
subclasses rely on.

**The template fit loop** (:meth:`BaseMixture.fit_predict`): hyper-parameter
checks, input validation, ``n_init`` restarts keeping the best lower bound,
``max_iter``/``tol`` convergence, :class:`~pyro_expfam.util.ConvergenceWarning`,
the progress bar, ``warm_start``, seeding, the fitted attributes
(``converged_``, ``n_iter_``, ``lower_bound_``, ``lower_bounds_``,
``n_features_in_``), prediction, sampling and save/load.

A subclass implements (all on tensors of the fit's device and dtype)::

    _initialize(X, resp)            # set parameters from initial responsibilities (N, K)
    _estimate_weighted_log_prob(X)  # (N, K): log w_k + log p(x_n | k)   (expected, for VI)
    _m_step(X, log_resp)            # update parameters given log responsibilities
    _get_state() -> dict            # fitted parameters: dict of tensors (save/load, best restart)
    _set_state(state)               # inverse of _get_state

and may override::

    _check_parameters(X)            # validate hyper-parameters against the data (raise ValueError); local
                                    #   checks only: a distributed fit's ranks agree on them (parallel.agree)
    _prepare_fit(X)                 # set-up needing collectives (global moments), after the agreement
    _initialize_parameters(X, generator)
        # initialise from scratch; default: responsibilities from init_params
        # ("kmeans", "k-means++", "random", "random_from_data") then _initialize(X, resp).
        # Override to skip the k-means start (e.g. all initial parameters given by the user).
    _compute_lower_bound(X, log_resp, log_prob_norm) -> float   # default: mean log-likelihood (EM)
    _step(X) -> float               # one iteration; default: E-step, bound, M-step
    _has_converged(history) -> bool # default: |last change of the bound| < tol
    _get_resume_state() -> dict     # extra state for a bit-identical resume (counters, optimiser
    _set_resume_state(state)        #   state, schedule position); tensors/ints/floats/str/nested
                                    #   dicts and lists only (torch.load(weights_only=True))
    _sample_components(labels, generator) -> X   # one draw per label (enables sample())
    _validate_data(X, reset)        # default: check_X below, 2-D data
    _n_parameters() -> int          # enables bic()/aic()

**Data in, data out (contract items 1-2).**  :meth:`BaseMixture.check_X`
validates numpy arrays, lists, sparse matrices, complex or object arrays with
scikit-learn's own :func:`~sklearn.utils.validation.validate_data` (so the
messages are scikit-learn's: "Expected 2D array", "... is expecting 5 features
as input", "Sparse data was passed", "Complex data not supported"), and torch
tensors with the same rules and wording, keeping their device and floating
dtype (integer/boolean data become ``float64`` for numpy and the default
dtype for tensors).  Outputs follow the *fit's* input: after a numpy fit,
predictions, samples and fitted attributes are numpy arrays (labels
``int64``, floats in the fit's dtype); after a tensor fit, tensors on the
fit's device.  Public fitted tensors are declared with
:class:`FittedTensor` (e.g. ``weights_ = FittedTensor("mixture weights")``):
assigning a tensor stores it privately under ``"_" + name`` (``self._weights_``)
and reading returns it as numpy when the fit's input was numpy, else the
tensor.  Internal code reads and writes the private tensors; the public value
is never read back.  :meth:`BaseMixture._output` does the same conversion for
any tensor.  :meth:`score` returns a Python float.

**Random state (item 3).**  ``random_state`` takes ``None``, an int (numpy
integers too), a :class:`numpy.random.RandomState` or ``Generator``, or a
:class:`torch.Generator`; :func:`~pyro_expfam.util.torch_generator` turns it
into the CPU generator ``self._fit_generator`` used by the whole fit.
Integer hyper-parameters accept numpy integers (``GaussianMixture(np.int64(2))``).

**Commit on completion (item 5).**  :meth:`fit` snapshots the estimator's
``__dict__`` (cloning the tensors in it) before it starts; if the fit raises
anything, ``KeyboardInterrupt`` included, the snapshot is restored (the
previous fit, or an unfitted estimator) and the exception re-raised.
Subclasses must therefore keep all state as attributes of ``self`` (plus any
outside store they restore themselves by overriding :meth:`_abort_fit`).

**Resume (item 6).**  After every fit the generator's state
(``generator.get_state()``) and :meth:`_get_resume_state` are kept; a
``warm_start=True`` refit, in memory or after :meth:`save`/:meth:`load`,
continues from the fitted parameters with that generator state and resume
state, so ``fit(max_iter=3)`` then ``save``/``load``/
``set_params(warm_start=True, max_iter=3).fit(X)`` gives parameters
``torch.equal`` to ``fit(max_iter=6)`` with the same ``random_state`` (tol=0).

**Files (item 7).**  :meth:`save` writes through
:func:`~pyro_expfam.util.atomic_save` (temporary file, fsync, rename: an
interrupted or failed save leaves the old file intact) and :meth:`load` reads
through :func:`~pyro_expfam.util.safe_load` (``weights_only=True``; clear
errors for empty, corrupted, foreign or wrong-class files).  Hyper-parameters
that are numpy arrays are stored as tensors, numpy integers/floats as Python
numbers, generators and numpy random states as ``None``.

**Checks (items 9-10).**  :meth:`_check_base_parameters` names the argument
and the reason; ``dtype`` must be ``None``, float32 or float64.  Estimators
that cannot take some of scikit-learn's generic checks list them with the
reason in :meth:`_expected_failed_checks` (passed to
:func:`~sklearn.utils.estimator_checks.parametrize_with_checks`).
"""

from __future__ import annotations

import copy
import math
import numbers
import warnings
from abc import ABC, abstractmethod
from typing import Any

import numpy as np
import torch
from scipy.sparse import issparse
from sklearn.base import BaseEstimator, DensityMixin
from sklearn.utils.validation import check_array, validate_data
from torch import Tensor

from ..parallel import Communicator, communicator
from ..util import (
    ConvergenceWarning,
    NotFittedError,
    atomic_save,
    check_device,
    check_torch_dtype,
    progress_bar,
    safe_load,
    torch_generator,
)
from .init import INIT_METHODS, initial_responsibilities
from .streaming import ChunkStream, is_chunked

__all__ = ["BaseMixture", "FittedTensor"]

_DTYPES = {"float32": torch.float32, "float64": torch.float64}
_SAVE_FORMAT = 2


class FittedTensor:
    """
    Descriptor for a public fitted attribute held as a tensor: assigning
    stores the value under ``"_" + name`` and reading returns
    :meth:`BaseMixture._output` of it (numpy for a numpy fit).  Reading before
    it is set raises :class:`AttributeError` (so ``hasattr`` is false).

    :param str doc: the attribute's documentation.

    >>> class M:
    ...     weights_ = FittedTensor("weights")
    ...     def _output(self, t):
    ...         return t.numpy()
    >>> m = M(); m.weights_ = torch.tensor([0.5, 0.5], dtype=torch.float64)
    >>> m.weights_, m._weights_
    (array([0.5, 0.5]), tensor([0.5000, 0.5000], dtype=torch.float64))
    """

    def __init__(self, doc: str = "") -> None:
        self.__doc__ = doc

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name
        self.private = "_" + name

    def __get__(self, obj, objtype=None):
        if obj is None:
            return self
        try:
            value = obj.__dict__[self.private]
        except KeyError:
            raise AttributeError(f"{type(obj).__name__!r} object has no attribute {self.name!r} (not fitted)") from None
        return obj._output(value) if isinstance(value, Tensor) else value

    def __set__(self, obj, value) -> None:
        obj.__dict__[self.private] = value

    def __delete__(self, obj) -> None:
        obj.__dict__.pop(self.private, None)


def _check_int(value, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def _check_number(value, name: str, minimum: float = 0.0, strict: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a number, got {value!r}")
    v = float(value)
    if not math.isfinite(v) or (v <= minimum if strict else v < minimum):
        raise ValueError(f"{name} must be a finite number {'>' if strict else '>='} {minimum}, got {value!r}")
    return v


def _plain(value):
    """A hyper-parameter as something ``torch.load(weights_only=True)`` reads back."""
    if isinstance(value, np.ndarray):
        return torch.as_tensor(value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, torch.dtype):
        return str(value).replace("torch.", "")
    if isinstance(value, torch.device):
        return str(value)
    if isinstance(value, torch.Generator | np.random.RandomState | np.random.Generator):
        return None
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_plain(v) for v in value)
    return value


class BaseMixture(DensityMixin, BaseEstimator, ABC):
    """
    Base class of the mixture estimators (scikit-learn conventions:
    constructor arguments are hyper-parameters stored unchanged, fitted
    attributes end in ``_``).  See the module docstring for the contract.

    :param int n_components: number of components (truncation level for a
        Dirichlet-process mixture).
    :param float tol: convergence threshold on the change of the lower bound
        (per data point) between iterations.
    :param int max_iter: maximum number of iterations per initialisation.
    :param int n_init: number of initialisations; the fit with the largest
        lower bound is kept.
    :param str init_params: ``"kmeans"`` (k-means++ seeding then Lloyd
        iterations), ``"k-means++"`` (seeding only, nearest-seed assignment),
        ``"random"`` (random soft responsibilities) or ``"random_from_data"``
        (``n_components`` random data points, one per component).
    :param random_state: ``None``, an int (numpy integers too), a
        :class:`numpy.random.RandomState`/``Generator`` or a :class:`torch.Generator`.
    :param bool warm_start: if true, a second :meth:`fit` continues from the
        fitted state (``n_init`` is ignored), e.g. after :meth:`load`.
    :param verbose: show a progress bar (``bool`` or ``int > 0``).
    :param device: device to fit on (default: the data's device).
    :param dtype: ``torch.float32`` or ``torch.float64`` to fit in (default:
        the data's floating dtype; integer numpy data become float64).
    """

    weights_ = FittedTensor("mixture weights ``(n_components,)``")

    def __init__(
        self,
        n_components: int = 1,
        *,
        tol: float = 1e-3,
        max_iter: int = 100,
        n_init: int = 1,
        init_params: str = "kmeans",
        random_state: int | np.random.RandomState | torch.Generator | None = None,
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
        """Validate hyper-parameters against the data; raise ``ValueError`` (local checks: no collectives)."""
        return None

    def _prepare_fit(self, X: Tensor) -> None:
        """After the checks of every rank passed: the fit's set-up that needs collectives (default: none)."""
        return None

    def _check_stream(self) -> None:
        """Refuse data given as chunks unless this estimator streams (an estimator that does overrides this)."""
        raise TypeError(f"{type(self).__name__}.fit takes the data as one array or tensor; data given as chunks "
                        "(an iterable or a DataLoader) are fitted by GaussianMixture and DirichletProcessMixture "
                        "(method='cavi')")

    def _validate_stream(self, X) -> ChunkStream:
        """
        Data given as chunks: the first pass (:meth:`~pyro_expfam.mixture.streaming.ChunkStream.scan`) checks
        every chunk as :meth:`check_X` checks in-memory data (the first fixes the feature count, device, dtype).
        """
        stream = ChunkStream(X)

        def check(chunk, first: bool) -> Tensor:
            x = self.check_X(chunk, first, ensure_min_samples=0)  # empty chunks are skipped
            if first:
                self._device, self._dtype = x.device, x.dtype
                stream.torch_io = isinstance(chunk, Tensor)
            return x

        stream.scan(check)
        if stream.shape[0] < 2:
            raise ValueError(f"Found {stream.shape[0]} sample(s) in X (an iterable of chunks) while a minimum of 2 "
                             f"is required by {type(self).__name__}.")
        return stream

    def _agreement(self) -> Communicator:
        """
        The communicator on which the ranks of a distributed fit agree that their input is valid (see
        :meth:`pyro_expfam.parallel.Communicator.agree`); a single process when the estimator has no
        ``distributed`` hyper-parameter or it is invalid (the fit's own checks then raise the error).
        """
        try:
            return communicator(getattr(self, "distributed", False))
        except (ValueError, RuntimeError):
            return communicator(False)

    def _initialize_parameters(self, X: Tensor, generator: torch.Generator) -> None:
        """
        Initialise the parameters from scratch (not called on a warm start):
        responsibilities from ``init_params``, then :meth:`_initialize`.
        """
        resp = initial_responsibilities(X, int(self.n_components), self.init_params, generator)
        self._initialize(X, resp)

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

    def _get_resume_state(self) -> dict[str, Any]:
        """Extra state needed to continue a fit bit-identically (default: none)."""
        return {}

    def _set_resume_state(self, state: dict[str, Any]) -> None:
        """Inverse of :meth:`_get_resume_state`."""
        return None

    def _abort_fit(self) -> None:
        """Called after an interrupted fit restored ``__dict__``; undo outside side effects (default: none)."""
        return None

    def _sample_components(self, labels: Tensor, generator: torch.Generator | None) -> Tensor:
        """One draw from component ``labels[i]`` for each ``i``; returns ``(n, D)``."""
        raise NotImplementedError(f"{type(self).__name__} does not implement sampling")

    def _weights(self) -> Tensor:
        """Mixture weights ``(K,)`` used by :meth:`sample` (a tensor)."""
        return self._weights_

    def _has_converged(self, history: list[float]) -> bool:
        """Whether the bounds ``history`` (oldest first) show convergence; default: last change below ``tol``."""
        return len(history) >= 2 and abs(history[-1] - history[-2]) < self.tol

    def _e_step(self, X: Tensor) -> tuple[Tensor, Tensor]:
        """Return ``(log_prob_norm (N,), log_resp (N, K))``."""
        weighted = self._estimate_weighted_log_prob(X)
        log_prob_norm = torch.logsumexp(weighted, dim=1)
        return log_prob_norm, weighted - log_prob_norm.unsqueeze(1)

    def _compute_lower_bound(self, X: Tensor, log_resp: Tensor, log_prob_norm: Tensor) -> float:
        """
        Lower bound per data point at the current parameters (EM: mean log-likelihood; in a distributed fit,
        ``_comm`` with ``_n_total`` points, that of all the shards).
        """
        comm = self.__dict__.get("_comm")
        if comm is not None and comm.is_distributed:
            return float(comm.all_reduce([log_prob_norm.sum()])[0]) / self._n_total
        return float(log_prob_norm.mean())

    def _step(self, X: Tensor) -> float:
        """One iteration; returns the lower bound at the parameters it started from."""
        log_prob_norm, log_resp = self._e_step(X)
        bound = self._compute_lower_bound(X, log_resp, log_prob_norm)
        self._m_step(X, log_resp)
        return bound

    def _expected_failed_checks(self) -> dict[str, str]:
        """scikit-learn estimator checks that cannot apply to this configuration, with the reason."""
        return {}

    # ------------------------------------------------------------------ #
    # scikit-learn plumbing
    # ------------------------------------------------------------------ #
    def __sklearn_is_fitted__(self) -> bool:
        return bool(self.__dict__.get("_fitted", False))

    def _is_fitted(self) -> bool:
        """Whether a fit has completed (stays true during a warm-start refit)."""
        return self.__sklearn_is_fitted__()

    def _check_is_fitted(self) -> None:
        if not self._is_fitted():
            raise NotFittedError(
                f"This {type(self).__name__} instance is not fitted yet. Call 'fit' with appropriate arguments "
                "before using this estimator."
            )

    def _check_init_params(self) -> None:
        """Check ``init_params``; a subclass with initialisations of its own overrides this."""
        if not isinstance(self.init_params, str) or self.init_params not in INIT_METHODS:
            raise ValueError(f"init_params must be one of {INIT_METHODS}, got {self.init_params!r}")

    def _check_base_parameters(self) -> None:
        """Check the base hyper-parameters; messages name the argument and the reason."""
        _check_int(self.n_components, "n_components", 1)
        _check_int(self.max_iter, "max_iter", 0)
        _check_int(self.n_init, "n_init", 1)
        _check_number(self.tol, "tol", 0.0)
        self._check_init_params()
        check_torch_dtype(self.dtype, "dtype")
        if self.device is not None:
            check_device(self.device, "device")
        if not isinstance(self.warm_start, bool | np.bool_):
            raise ValueError(f"warm_start must be a bool, got {self.warm_start!r}")
        if isinstance(self.verbose, bool | np.bool_):
            pass
        elif not isinstance(self.verbose, numbers.Integral) or self.verbose < 0:
            raise ValueError(f"verbose must be a bool or a non-negative int, got {self.verbose!r}")
        rs = self.random_state
        if not (rs is None or isinstance(rs, torch.Generator | np.random.RandomState | np.random.Generator)
                or (isinstance(rs, numbers.Integral) and not isinstance(rs, bool) and rs >= 0)):
            raise ValueError(
                "random_state must be None, a non-negative int, a numpy RandomState/Generator or a "
                f"torch.Generator, got {rs!r}"
            )

    def _output(self, t):
        """
        ``t`` as the user gets it: a numpy array (on CPU, same dtype; labels
        ``int64``) when the fit's input was not a tensor, else the tensor itself.
        """
        if not isinstance(t, Tensor) or self.__dict__.get("_torch_io", True):
            return t
        return t.detach().cpu().numpy()

    def check_X(self, X, reset: bool, *, ensure_2d: bool = True, allow_nd: bool = False,
                ensure_min_samples: int = 1) -> Tensor:
        """
        Validate data and return it as a tensor on the fit's device and dtype.

        numpy/array-likes go through :func:`sklearn.utils.validation.validate_data`
        (``reset`` records ``n_features_in_``, otherwise the feature count is
        checked against it); tensors follow the same rules and messages.

        :param X: the data.
        :param bool reset: true in ``fit`` (fixes device, dtype, feature count).
        :param bool ensure_2d: require 2-D data.
        :param bool allow_nd: allow more than 2 dimensions.
        :param int ensure_min_samples: minimum number of samples.
        """
        if reset:
            dtype = check_torch_dtype(self.dtype, "dtype")
            device = check_device(self.device) if self.device is not None else None
        else:
            dtype, device = self._dtype, self._device
        if isinstance(X, Tensor):
            t = _check_tensor(X, ensure_2d=ensure_2d, allow_nd=allow_nd, ensure_min_samples=ensure_min_samples,
                              estimator=type(self).__name__)
            n_features = t.shape[1] if t.dim() >= 2 else 1
            if reset:
                self.n_features_in_ = n_features
                self.__dict__.pop("feature_names_in_", None)
            elif t.dim() == 2 and n_features != self.n_features_in_:
                raise ValueError(
                    f"X has {n_features} features, but {type(self).__name__} is expecting "
                    f"{self.n_features_in_} features as input."
                )
        else:
            if not issparse(X) and (X is None or isinstance(X, str | bytes | dict | set) or not (
                hasattr(X, "__len__") or hasattr(X, "__array__"))):
                raise TypeError(f"X must be an array-like or tensor of numbers, got {type(X).__name__}")
            kw = dict(dtype=[np.float64, np.float32], ensure_2d=ensure_2d, allow_nd=allow_nd,
                      ensure_min_samples=ensure_min_samples)
            if ensure_2d and not allow_nd:
                arr = validate_data(self, X, reset=reset, **kw)
            else:
                arr = check_array(X, **kw)
                n_features = arr.shape[1] if arr.ndim >= 2 else 1
                if reset:
                    self.n_features_in_ = n_features
                elif arr.ndim == 2 and n_features != self.n_features_in_:
                    raise ValueError(
                        f"X has {n_features} features, but {type(self).__name__} is expecting "
                        f"{self.n_features_in_} features as input."
                    )
            if not arr.flags.writeable:
                arr = arr.copy()
            t = torch.from_numpy(arr)
        if dtype is None and reset:
            dtype = t.dtype if t.dtype in (torch.float32, torch.float64) else torch.get_default_dtype()
        return t.to(device=device if device is not None else t.device, dtype=dtype)

    def _validate_data(self, X, reset: bool) -> Tensor:
        """Validate 2-D data (see :meth:`check_X`); in ``fit`` also check ``n_samples >= n_components``."""
        X = self.check_X(X, reset, ensure_min_samples=2 if reset else 1)
        if reset and X.shape[0] < int(self.n_components):
            raise ValueError(
                f"Expected n_samples >= n_components but got n_components = {self.n_components}, "
                f"n_samples = {X.shape[0]} (X has fewer than n_components samples)"
            )
        return X

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        return tags

    # ------------------------------------------------------------------ #
    # Fitting
    # ------------------------------------------------------------------ #
    def fit(self, X, y=None) -> BaseMixture:
        """
        Fit the model, running ``n_init`` initialisations of at most
        ``max_iter`` iterations each and keeping the best lower bound.  The
        result is committed only when the fit finishes: if it raises (or is
        interrupted with Ctrl-C), the estimator is left exactly as before.

        :param X: data of shape ``(n_samples, n_features)`` (tensor or array); for the estimators that stream
            (``GaussianMixture``, ``DirichletProcessMixture`` with CAVI) also an iterable of such chunks or a
            :class:`torch.utils.data.DataLoader`, passed over once per iteration
            (:mod:`pyro_expfam.mixture.streaming`).
        :param y: ignored (scikit-learn API).
        :returns: ``self``.
        """
        self._want_labels = False
        try:
            self.fit_predict(X, y)
        finally:
            self.__dict__.pop("_want_labels", None)
        return self

    def fit_predict(self, X, y=None):
        """
        Fit the model (as :meth:`fit`) and return the most probable component
        of each sample (the labels :meth:`predict` gives on ``X``).

        :param X: data of shape ``(n_samples, n_features)``.
        :param y: ignored.
        :returns: ``int64`` labels ``(n_samples,)`` (numpy for numpy input).
        """
        snapshot = {k: (v.clone() if isinstance(v, Tensor) else copy.copy(v) if isinstance(v, dict | list) else v)
                    for k, v in self.__dict__.items()}
        try:
            labels = self._fit(X)
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(snapshot)
            self._abort_fit()
            raise
        return self._output(labels)

    def _fit(self, X) -> Tensor:
        warm = bool(self.warm_start) and self._is_fitted()
        X_in = X
        stream = is_chunked(X)
        if stream:
            self._check_stream()
            if self.__dict__.get("_want_labels", True):
                raise TypeError("fit_predict needs the data in memory (it returns a label per sample); with data "
                                "given as chunks call fit, then predict on each chunk")
        # the local checks, agreed on by every rank of a distributed fit (a shard refused on one rank stops
        # them all, instead of leaving the others in the next collective); then the fit's collectives
        with self._agreement().agree("input validation"):
            self._check_base_parameters()
            X = self._validate_stream(X) if stream else self._validate_data(X, reset=True)
            self._device, self._dtype = X.device, X.dtype
            self._check_parameters(X)
        self._prepare_fit(X)
        n_init = 1 if warm else int(self.n_init)
        max_iter = int(self.max_iter)
        if warm and "_generator_state" in self.__dict__ and not isinstance(self.random_state, torch.Generator):
            generator = torch.Generator()
            generator.set_state(self._generator_state)
        else:
            generator = torch_generator(self.random_state)
        self._fit_generator = generator
        if warm:
            self._set_resume_state(self.__dict__.get("_resume_state", {}))
        best_bound, best, best_history, best_iter, best_conv = -math.inf, None, [], 0, False
        for init in range(n_init):
            if not warm:
                self._initialize_parameters(X, generator)
            history: list[float] = []
            converged = False
            previous = [float(self.lower_bound_)] if warm else []
            desc = f"{type(self).__name__} init {init + 1}/{n_init}"
            n_iter = 0
            with progress_bar(max_iter, enabled=bool(self.verbose), desc=desc) as bar:
                for n_iter in range(1, max_iter + 1):
                    bound = self._step(X)
                    if not math.isfinite(bound):
                        raise FloatingPointError(
                            f"{type(self).__name__}: the lower bound became {bound} at iteration {n_iter}; "
                            "the data may be degenerate (e.g. constant features) or the dtype too narrow "
                            "(try float64)"
                        )
                    history.append(bound)
                    bar.update(1)
                    bar.set_postfix(bound=f"{bound:.5g}")
                    if self._has_converged(previous + history):
                        converged = True
                        break
            final = history[-1] if history else (float(self.lower_bound_) if warm else -math.inf)
            if best is None or final > best_bound:
                best_bound = final
                best = (self._get_state(), self._get_resume_state(), generator.get_state())
                best_history, best_iter, best_conv = history, n_iter, converged
        self._set_state(best[0])
        self._set_resume_state(best[1])
        self._resume_state = best[1]
        self._generator_state = best[2]
        self.converged_ = best_conv
        self.n_iter_ = best_iter
        self.lower_bound_ = best_bound
        self.lower_bounds_ = best_history
        self._torch_io = X.torch_io if stream else isinstance(X_in, Tensor)
        self._fitted = True
        if not best_conv and max_iter > 0:
            warnings.warn(
                "Best performing initialization did not converge. Try different init parameters, or increase "
                f"max_iter, tol, or check for degenerate data. ({type(self).__name__}: the best of {n_init} "
                f"initialisation(s) ran max_iter={max_iter} iterations with tol={self.tol})",
                ConvergenceWarning,
                stacklevel=4,
            )
        if stream:
            return None
        # a final E-step so that fit_predict(X) agrees with predict(X)
        return self._estimate_weighted_log_prob(X).argmax(dim=1)

    # ------------------------------------------------------------------ #
    # Prediction
    # ------------------------------------------------------------------ #
    def score_samples(self, X):
        """
        Log density of each sample under the fitted mixture,
        ``logsumexp_k (log w_k + log p(x | k))`` (expectations under the
        variational posterior for VI models, as in scikit-learn).

        :param X: data of shape ``(n_samples, n_features)``.
        :returns: ``(n_samples,)`` (numpy for numpy input).
        """
        self._check_is_fitted()
        out = torch.logsumexp(self._estimate_weighted_log_prob(self._validate_data(X, reset=False)), dim=1)
        return self._output(out)

    def score(self, X, y=None) -> float:
        """
        Mean log density of the samples, :meth:`score_samples` averaged.

        :param X: data of shape ``(n_samples, n_features)``.
        :param y: ignored.
        """
        # the mean of exactly what score_samples returns (numpy's float32 summation differs from torch's)
        return float(self.score_samples(X).mean())

    def predict_proba(self, X):
        """
        Posterior probability of each component for each sample.

        :param X: data of shape ``(n_samples, n_features)``.
        :returns: ``(n_samples, n_components)`` (numpy for numpy input).
        """
        self._check_is_fitted()
        out = torch.softmax(self._estimate_weighted_log_prob(self._validate_data(X, reset=False)), dim=1)
        return self._output(out)

    def predict(self, X):
        """
        Most probable component of each sample.

        :param X: data of shape ``(n_samples, n_features)``.
        :returns: ``int64`` labels ``(n_samples,)`` (numpy for numpy input).
        """
        self._check_is_fitted()
        out = self._estimate_weighted_log_prob(self._validate_data(X, reset=False)).argmax(dim=1)
        return self._output(out)

    def sample(self, n_samples: int = 1):
        """
        Draw samples from the fitted mixture, with a generator made from
        ``random_state`` (an int seed gives the same draws every call, as in
        scikit-learn).

        :param int n_samples: number of samples.
        :returns: ``(X, labels)``, shapes ``(n_samples, n_features)`` and
            ``(n_samples,)`` (numpy when the fit's input was numpy).
        """
        self._check_is_fitted()
        if isinstance(n_samples, bool) or not isinstance(n_samples, numbers.Integral) or n_samples < 1:
            raise ValueError(f"Invalid value for 'n_samples': {n_samples!r}. The sampling requires at least one sample "
                             "(n_samples must be a positive int).")
        generator = torch_generator(self.random_state)
        w = self._weights().detach().to("cpu", torch.float64)
        labels = torch.multinomial(w / w.sum(), int(n_samples), replacement=True, generator=generator)
        labels = labels.sort().values.to(self._device)
        return self._output(self._sample_components(labels, generator)), self._output(labels)

    def bic(self, X) -> float:
        """
        Bayesian information criterion on ``X`` (lower is better).

        :param X: data of shape ``(n_samples, n_features)``.
        """
        n = self._validate_data(X, reset=False).shape[0]
        return -2 * self.score(X) * n + self._n_parameters() * math.log(n)

    def aic(self, X) -> float:
        """
        Akaike information criterion on ``X`` (lower is better).

        :param X: data of shape ``(n_samples, n_features)``.
        """
        n = self._validate_data(X, reset=False).shape[0]
        return -2 * self.score(X) * n + 2 * self._n_parameters()

    def _n_parameters(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} does not define a parameter count")

    # ------------------------------------------------------------------ #
    # Save / load
    # ------------------------------------------------------------------ #
    def _fitted_summary(self) -> dict[str, Any]:
        return {
            "converged_": bool(self.converged_),
            "n_iter_": int(self.n_iter_),
            "lower_bound_": float(self.lower_bound_),
            "lower_bounds_": [float(b) for b in self.lower_bounds_],
            "n_features_in_": int(self.n_features_in_),
            "dtype": str(self._dtype).replace("torch.", ""),
            "device": str(self._device),
            "torch_io": bool(self.__dict__.get("_torch_io", True)),
        }

    def save(self, path) -> None:
        """
        Save the hyper-parameters, the fitted state and the resume state
        (generator state and the model's counters) atomically: the file is
        written to a temporary file in the same directory, flushed, fsync-ed
        and renamed over ``path``, so an interrupted or failed save (e.g. a
        full disk) leaves any previous file intact.

        :param path: file path or writable binary file object.
        :raises OSError: if the file cannot be written (naming the path).
        """
        self._check_is_fitted()
        blob = {
            "format": _SAVE_FORMAT,
            "class": type(self).__name__,
            "params": {k: _plain(v) for k, v in self.get_params(deep=False).items()},
            "fitted": self._fitted_summary(),
            "state": {k: v.detach() for k, v in self._get_state().items()},
            "resume": self.__dict__.get("_resume_state", {}),
            "generator": self.__dict__.get("_generator_state"),
        }
        atomic_save(blob, path)

    @classmethod
    def load(cls, path, map_location: torch.device | str | None = None) -> BaseMixture:
        """
        Load an estimator written by :meth:`save`.  To resume fitting, set
        ``warm_start=True`` (``est.set_params(warm_start=True).fit(X)``): the
        continuation is bit-identical to an uninterrupted fit.

        :param path: file path or readable binary file object.
        :param map_location: device to load the tensors onto (default: where they were saved).
        :raises ValueError: if the file is empty, corrupted, not a checkpoint, or incomplete
            (the message names the file).
        :raises TypeError: if the file holds another class's checkpoint.
        """
        blob = safe_load(path, expected_class=cls.__name__, required_keys=("params", "fitted", "state"),
                         map_location=map_location)
        name = repr(path)
        try:
            params = dict(blob["params"])
            if params.get("dtype") is not None:
                params["dtype"] = _DTYPES.get(params["dtype"], params["dtype"])
            est = cls(**params)
            fitted = blob["fitted"]
            state = blob["state"]
            est._set_state(state)
            for key in ("converged_", "n_iter_", "lower_bound_", "lower_bounds_", "n_features_in_"):
                setattr(est, key, fitted[key])
            est._dtype = getattr(torch, fitted["dtype"])
            first = next((v for v in state.values() if isinstance(v, Tensor) and v.is_floating_point()), None)
            est._device = first.device if first is not None else torch.device(fitted["device"])
            if map_location is not None and params.get("device") is not None:
                est.device = str(est._device)
            est._torch_io = bool(fitted.get("torch_io", True))
            est._resume_state = blob.get("resume") or {}
            if blob.get("generator") is not None:
                est._generator_state = blob["generator"]
            est._set_resume_state(est._resume_state)
            est._fitted = True
        except (KeyError, TypeError, ValueError, AttributeError, RuntimeError) as e:
            raise ValueError(f"{name} is not a valid {cls.__name__} checkpoint: {type(e).__name__}: {e}") from e
        return est


def _check_tensor(X: Tensor, *, ensure_2d: bool, allow_nd: bool, ensure_min_samples: int, estimator: str) -> Tensor:
    """scikit-learn's check_array rules and messages, for a tensor (device kept, float dtypes kept)."""
    if X.is_complex():
        raise ValueError("Complex data not supported\n" + repr(X))
    if X.layout != torch.strided:
        raise TypeError(
            "Sparse data was passed for X, but dense data is required. Use '.to_dense()' to convert to a dense tensor."
        )
    if X.dtype in (torch.float16, torch.bfloat16):
        X = X.float()
    elif not X.is_floating_point():
        if X.dtype not in (torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64):
            raise ValueError(f"X must be real-valued, got dtype {X.dtype}")
        X = X.to(torch.get_default_dtype())
    if ensure_2d:
        if X.dim() == 0:
            raise ValueError(
                f"Expected 2D array, got scalar array instead (X must be a 2-D tensor of shape (n_samples, "
                f"n_features)):\narray={X}.\nReshape your data either using "
                "X.reshape(-1, 1) if your data has a single feature or X.reshape(1, -1) if it contains a single sample."
            )
        if X.dim() == 1:
            raise ValueError(
                f"Expected 2D array, got 1D array instead (X must be a 2-D tensor of shape (n_samples, "
                f"n_features)):\narray={X}.\nReshape your data either using "
                "X.reshape(-1, 1) if your data has a single feature or X.reshape(1, -1) if it contains a single sample."
            )
    if not allow_nd and X.dim() >= 3:
        raise ValueError(f"Found array with dim {X.dim()}. {estimator} expected <= 2.")
    if X.dim() >= 1 and X.shape[0] < ensure_min_samples:
        raise ValueError(
            f"Found array with {X.shape[0]} sample(s) (shape={tuple(X.shape)}) while a minimum of "
            f"{ensure_min_samples} is required by {estimator}."
        )
    if X.dim() == 2 and X.shape[1] < 1:
        raise ValueError(
            f"Found array with 0 feature(s) (shape={tuple(X.shape)}) while a minimum of 1 is required by {estimator}."
        )
    if not bool(torch.isfinite(X.sum())) and not bool(torch.isfinite(X).all()):
        if bool(torch.isnan(X).any()):
            raise ValueError(f"Input X contains NaN.\n{estimator} does not accept missing values encoded as NaN.")
        raise ValueError(f"Input X contains infinity or a value too large for {X.dtype}.")
    return X
