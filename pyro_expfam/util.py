# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""Small helpers shared by the models: input validation, progress bars, seeding."""

from __future__ import annotations

import contextlib
import importlib.util
import random
from collections.abc import Iterator

import numpy as np
import torch
from torch import Tensor

__all__ = ["as_data_tensor", "check_device", "progress_bar", "set_rng_seed", "NotFittedError", "ConvergenceWarning"]

try:  # follow scikit-learn's exception types when it is installed, so `except` clauses written for it work
    from sklearn.exceptions import ConvergenceWarning, NotFittedError
except ImportError:  # pragma: no cover - scikit-learn is optional

    class NotFittedError(ValueError, AttributeError):
        """Raised when a model is used before it is fitted."""

    class ConvergenceWarning(UserWarning):
        """Warned when a fit stops before converging."""


def as_data_tensor(
    X,
    name: str = "X",
    ndim: int | None = 2,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
    min_rows: int = 1,
) -> Tensor:
    """
    Convert ``X`` (tensor, numpy array or nested sequence) to a floating tensor
    and check it, raising clear errors for bad input.

    Integer and boolean tensors become ``torch.get_default_dtype()``, integer
    and boolean arrays or sequences ``float64`` (as in numpy), unless ``dtype``
    is given; floating input keeps its dtype (and tensors their device).

    :param X: the data.
    :param str name: argument name used in error messages.
    :param int ndim: required number of dimensions (``None``: any).
    :param torch.dtype dtype: target dtype (default: keep floating dtypes).
    :param device: target device (default: keep).
    :param int min_rows: minimum size of the first dimension.
    :raises TypeError: if ``X`` cannot be converted to a numeric tensor.
    :raises ValueError: on wrong dimension, too few rows, NaN or infinite entries,
        or a device that does not exist here.
    """
    if isinstance(X, Tensor):
        t = X
    else:
        try:
            t = torch.as_tensor(np.asarray(X))
        except (TypeError, ValueError) as e:
            raise TypeError(f"{name} must be a tensor or array of numbers, got {type(X).__name__}") from e
    if not (t.is_floating_point() or t.dtype == torch.bool or t.dtype in _INT_DTYPES):
        raise TypeError(f"{name} must be real-valued, got dtype {t.dtype}")
    if dtype is None and not t.is_floating_point():
        # integer/boolean arrays become float64 like numpy's (and scikit-learn's) default;
        # integer torch tensors become torch's default floating dtype
        dtype = torch.get_default_dtype() if isinstance(X, Tensor) else torch.float64
    if dtype is not None or device is not None:
        t = t.to(dtype=dtype or t.dtype, device=check_device(device) if device is not None else t.device)
    if ndim is not None and t.dim() != ndim:
        raise ValueError(f"{name} must be a {ndim}-D tensor, got shape {tuple(t.shape)}")
    if t.dim() > 0 and t.shape[0] < min_rows:
        raise ValueError(f"{name} needs at least {min_rows} rows, got {t.shape[0]}")
    # a finite sum proves every entry finite (one reduction); scan element-wise only otherwise
    if t.is_floating_point() and not bool(torch.isfinite(t.sum())) and not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} contains NaN or infinite values")
    return t


def check_device(device: torch.device | str, name: str = "device") -> torch.device:
    """
    Parse ``device`` and check that it is usable here, raising a clear
    :class:`ValueError` (e.g. ``"cuda"`` on a machine without CUDA) instead of
    an error from deep inside torch.

    :param device: a :class:`torch.device` or a string such as ``"cpu"``, ``"cuda:0"``.
    :param str name: argument name used in error messages.
    """
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ValueError(f"{name}={device!r} is not a torch device (e.g. 'cpu', 'cuda', 'cuda:1')") from e
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"{name}={device!r}: CUDA is not available on this machine (torch {torch.__version__})")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"{name}={device!r}: only {torch.cuda.device_count()} CUDA device(s) are visible")
    return dev


_INT_DTYPES = (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)


def progress_bar(total: int, enabled: bool = True, desc: str | None = None):
    """
    A :mod:`tqdm` progress bar (a no-op object when ``enabled`` is false or
    tqdm is missing). Use ``bar.update(1)``, ``bar.set_postfix(loss=...)``,
    ``bar.close()``, or use it as a context manager.

    :param int total: number of steps.
    :param bool enabled: show the bar.
    :param str desc: label.
    """
    if enabled:
        try:
            if importlib.util.find_spec("ipywidgets") is not None:
                from tqdm.auto import tqdm  # a widget in Jupyter, text elsewhere
            else:  # tqdm.auto would warn "IProgress not found" in Jupyter without ipywidgets
                from tqdm.std import tqdm

            return tqdm(total=total, desc=desc, leave=False)
        except ImportError:  # pragma: no cover
            pass
    return _NoBar()


class _NoBar(contextlib.AbstractContextManager):
    def update(self, n: int = 1) -> None:
        pass

    def set_postfix(self, *args, **kwargs) -> None:
        pass

    def close(self) -> None:
        pass

    def __exit__(self, *exc) -> None:
        return None


def set_rng_seed(seed: int) -> None:
    """Seed python, numpy, torch (and hence Pyro) random number generators."""
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _iter_batches(n: int, batch_size: int, generator: torch.Generator | None = None) -> Iterator[Tensor]:
    """Random minibatch indices covering ``range(n)`` once."""
    perm = torch.randperm(n, generator=generator)
    yield from perm.split(batch_size)
