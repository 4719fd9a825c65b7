# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""
Small helpers shared by the models: input validation, progress bars, seeding,
random-state conversion, crash-safe checkpoint files.
"""

from __future__ import annotations

import contextlib
import errno
import importlib.util
import math
import numbers
import os
import pickle
import random
import tempfile
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "ConvergenceWarning",
    "NotFittedError",
    "as_data_tensor",
    "atomic_save",
    "check_device",
    "check_float_resolution",
    "clone_nested",
    "check_torch_dtype",
    "progress_bar",
    "safe_load",
    "set_rng_seed",
    "torch_generator",
]

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


# ---------------------------------------------------------------------- #
# dtypes, random states
# ---------------------------------------------------------------------- #
_SUPPORTED_DTYPES = (torch.float32, torch.float64)


def check_torch_dtype(dtype, name: str = "dtype") -> torch.dtype | None:
    """
    Check a ``dtype`` hyper-parameter up front: ``None``, ``torch.float32`` or
    ``torch.float64`` (also given as ``"float32"``/``"float64"`` or numpy's
    dtypes).  Half precision is refused: it cannot hold the Cholesky factors and
    log-densities the models compute.

    :param dtype: the value to check.
    :param str name: argument name used in error messages.
    :raises ValueError: for any other value, naming the argument.

    >>> check_torch_dtype("float64")
    torch.float64
    >>> check_torch_dtype(torch.float16)
    Traceback (most recent call last):
    ...
    ValueError: dtype=torch.float16 is not supported: use torch.float32 or torch.float64 (or None for the data's dtype)
    """
    if dtype is None:
        return None
    if isinstance(dtype, torch.dtype):
        t = dtype
    else:
        try:
            t = {np.dtype("float32"): torch.float32, np.dtype("float64"): torch.float64}.get(np.dtype(dtype))
        except TypeError:
            t = None
    if t not in _SUPPORTED_DTYPES:
        raise ValueError(
            f"{name}={dtype!r} is not supported: use torch.float32 or torch.float64 (or None for the data's dtype)"
        )
    return t


def torch_generator(random_state, name: str = "random_state") -> torch.Generator:
    """
    A CPU :class:`torch.Generator` from anything scikit-learn accepts as a
    ``random_state`` (``None``, an int including numpy integers, a
    :class:`numpy.random.RandomState`), a :class:`numpy.random.Generator`, or
    a :class:`torch.Generator` (returned as is, so that it advances).

    ``None`` draws the seed from torch's global generator (so
    :func:`set_rng_seed` makes it reproducible); a numpy random state gives a
    seed drawn from it (advancing it, as scikit-learn does).

    :param random_state: the random state.
    :param str name: argument name used in error messages.
    :raises ValueError: for any other value, naming the argument.

    >>> g = torch_generator(np.int64(3))
    >>> bool(torch.equal(torch.rand(2, generator=g), torch.rand(2, generator=torch_generator(3))))
    True
    """
    if isinstance(random_state, torch.Generator):
        return random_state
    if random_state is None:
        seed = int(torch.randint(0, 2**62, (), dtype=torch.int64))
    elif isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        seed = int(random_state)
        if seed < 0:
            raise ValueError(f"{name} must be a non-negative int seed, got {random_state!r}")
    elif isinstance(random_state, np.random.RandomState):
        seed = int(random_state.randint(0, 2**31 - 1))
    elif isinstance(random_state, np.random.Generator):
        seed = int(random_state.integers(0, 2**62))
    else:
        raise ValueError(
            f"{name} must be None, an int, a numpy RandomState/Generator or a torch.Generator, "
            f"got {type(random_state).__name__}"
        )
    g = torch.Generator()
    g.manual_seed(seed)
    return g


def check_float_resolution(X: Tensor, name: str = "X", min_ulps: float = 64.0) -> None:
    """
    Refuse data whose floating dtype cannot represent it: a feature whose
    spread is below ``min_ulps`` units in the last place of its magnitude (for
    instance float32 data around ``1e8`` with a spread of ``100``: float32
    spaces numbers there 8 apart, so the values are mostly rounding noise).
    Constant features pass (they are the model's business).

    :param Tensor X: data ``(N, ...)``, floating.
    :param str name: argument name used in the message.
    :param float min_ulps: minimum spread in units of ``eps * max|x|``.
    :raises ValueError: naming the dtype and suggesting float64.

    >>> x = torch.tensor([[1e8], [1e8 + 50.0], [1e8 + 100.0]], dtype=torch.float32)
    >>> check_float_resolution(x)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: X cannot be represented in torch.float32: feature(s) [0] spread over 96 ... use float64: ...
    >>> check_float_resolution(x.double())
    """
    if X.dim() < 2 or X.shape[0] < 2 or not X.is_floating_point():
        return
    flat = X.reshape(X.shape[0], -1)
    lo, hi = torch.aminmax(flat, dim=0)  # one pass
    spread = hi - lo
    mag = torch.maximum(hi.abs(), lo.abs())
    ulp = mag * torch.finfo(X.dtype).eps
    bad = (spread > 0) & (spread < min_ulps * ulp)
    if bool(bad.any()):
        idx = bad.nonzero().flatten().tolist()
        j = idx[0]
        step = 2.0 ** math.floor(math.log2(float(mag[j]))) * torch.finfo(X.dtype).eps
        raise ValueError(
            f"{name} cannot be represented in {X.dtype}: feature(s) {idx[:5]} spread over {float(spread[j]):.3g} "
            f"around |x| up to {float(mag[j]):.3g}, where {X.dtype} resolves only steps of {step:.3g} (and the "
            f"spread is only {float(spread[j]) / step:.3g} such steps), so the data are mostly rounding error; "
            "use float64: pass the data as float64 (or dtype=torch.float64), or subtract the offset before "
            "converting to float32"
        )


# ---------------------------------------------------------------------- #
# crash-safe checkpoint files
# ---------------------------------------------------------------------- #
def clone_nested(obj: Any) -> Any:
    """
    Deep copy of nested dicts/lists/tuples with every tensor detached and cloned (e.g. an optimiser's state
    dict, whose live tensors are updated in place); other leaves are shared.

    :param obj: a tensor, or a dict/list/tuple nesting them.

    >>> state = {"step": 3, "exp_avg": [torch.zeros(2)]}
    >>> copy = clone_nested(state)
    >>> _ = state["exp_avg"][0].add_(1.0)
    >>> copy["exp_avg"][0].tolist(), copy["step"]
    ([0.0, 0.0], 3)
    """
    if isinstance(obj, Tensor):
        return obj.detach().clone()
    if isinstance(obj, dict):
        return {k: clone_nested(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(clone_nested(v) for v in obj)
    return obj


def _writer(obj: Any, f) -> None:
    """The serialiser used by :func:`atomic_save` (a separate function so tests can inject faults)."""
    torch.save(obj, f)


def atomic_save(obj: Any, path) -> None:
    """
    Write ``obj`` with :func:`torch.save` so that ``path`` is either the old
    file or the complete new one, never a truncated mix: the data go to a
    temporary file in the same directory, are flushed and ``fsync``-ed, then
    :func:`os.replace` renames it over ``path`` (atomic on POSIX and Windows).
    On any failure (including ``KeyboardInterrupt`` and a full disk) the
    temporary file is removed and the old ``path`` is left untouched.

    ``path`` may also be a writable binary file object; it is written directly
    (no atomicity is possible then).

    :param obj: what to save (tensors, plain Python values, nested dicts/lists).
    :param path: destination file path (``str`` or :class:`os.PathLike`) or file object.
    :raises OSError: if the file cannot be written, naming the path (e.g. disk full).

    >>> import os, tempfile
    >>> d = tempfile.mkdtemp()
    >>> atomic_save({"x": torch.ones(2)}, os.path.join(d, "a.pt"))
    >>> safe_load(os.path.join(d, "a.pt"), required_keys=("x",))["x"]
    tensor([1., 1.])
    """
    if not isinstance(path, str | os.PathLike):
        _writer(obj, path)
        return
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            _writer(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(e, OSError) or (isinstance(e, RuntimeError) and "iostream" in str(e)):
            code = getattr(e, "errno", None) or errno.EIO
            reason = os.strerror(code) if code != errno.EIO else str(e)
            if code == errno.ENOSPC:
                reason = "no space left on the device"
            raise OSError(code, f"could not save to {path!r}: {reason}; the previous file (if any) is untouched") from e
        raise
    if hasattr(os, "O_DIRECTORY"):  # make the rename itself durable
        with contextlib.suppress(OSError):
            dfd = os.open(directory, os.O_DIRECTORY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)


def safe_load(path, expected_class: str | None = None, required_keys: tuple[str, ...] = (), map_location=None):
    """
    Load a dict written by :func:`atomic_save` with ``torch.load(weights_only=True)``
    (so pickles that would run code are refused), turning every failure into a
    clear error that names the file and what is wrong with it.

    :param path: file path or readable binary file object.
    :param str expected_class: if given, the dict's ``"class"`` entry must equal it.
    :param tuple required_keys: keys the dict must have.
    :param map_location: passed to :func:`torch.load`.
    :raises FileNotFoundError: if the file does not exist.
    :raises ValueError: empty file, corrupted or foreign content, not a dict, missing keys.
    :raises TypeError: the file holds another class's checkpoint.
    """
    name = repr(os.fspath(path)) if isinstance(path, str | os.PathLike) else repr(path)
    if isinstance(path, str | os.PathLike):
        if not os.path.exists(path):
            raise FileNotFoundError(errno.ENOENT, f"no such checkpoint file: {name}")
        if os.path.getsize(path) == 0:
            raise ValueError(f"{name} is empty (0 bytes): not a saved checkpoint (perhaps an interrupted write)")
    try:
        blob = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        raise ValueError(
            f"{name} was refused by torch.load(weights_only=True): it is corrupted or holds objects other than "
            f"tensors and plain Python values (such files can run code and are never loaded) ({e})"
        ) from e
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except Exception as e:  # corrupted bytes surface as many exception types inside torch.load
        raise ValueError(
            f"{name} is not a readable checkpoint: the file is corrupted or truncated or was not written by "
            f"save() ({type(e).__name__}: {e})"
        ) from e
    if not isinstance(blob, dict):
        raise ValueError(f"{name} holds a {type(blob).__name__}, not a saved checkpoint (a dict)")
    if expected_class is not None and blob.get("class") != expected_class:
        raise TypeError(f"{name} holds a {blob.get('class', 'dict without a class entry')}, not a {expected_class}")
    missing = [k for k in required_keys if k not in blob]
    if missing:
        raise ValueError(f"{name} is missing the entries {missing}: not a complete checkpoint of this version")
    return blob
