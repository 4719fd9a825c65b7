# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""
Data given as chunks: ``fit`` over an iterable of chunks or a :class:`torch.utils.data.DataLoader`.

EM and CAVI need, per iteration, only sums over the data points of per-component statistics, so a fit can
stream over chunks that are read one at a time (for instance slices of a :class:`numpy.memmap` or the batches
of a ``DataLoader``) and never hold the data set as one tensor.  :class:`ChunkStream` wraps the user's source:

* a first pass (:meth:`ChunkStream.scan`) validates every chunk (scikit-learn's rules, as for in-memory data),
  counts the rows, and accumulates in float64 the column sums, the scatter matrix about the first chunk's mean
  and the column minima and maxima (the moments that a fit's shift and data-dependent priors need);
* :meth:`ChunkStream.reservoir` draws a uniform sample of the rows without replacement in one more pass (each
  row gets a uniform key and the rows with the smallest keys are kept), on which the k-means start runs;
* each iteration iterates the chunks again (:meth:`ChunkStream.__iter__`, converted to the fit's device and
  dtype; the row count of every pass is checked against the first).

A source is re-iterable (it is passed over once per iteration): a ``DataLoader``, a list or tuple of 2-D
arrays/tensors, or any object whose ``__iter__`` starts a new pass; a one-shot iterator (a generator) is
refused.  A ``DataLoader`` batch that is a tuple or list (e.g. from a ``TensorDataset``) gives its first
element.

>>> import numpy as np
>>> chunks = [np.arange(6.0).reshape(3, 2), np.arange(4.0).reshape(2, 2)]
>>> is_chunked(chunks), is_chunked(np.zeros((3, 2))), is_chunked(torch.zeros(3, 2))
(True, False, False)
>>> s = ChunkStream(chunks)
>>> s.scan(lambda x, first: torch.as_tensor(x))
>>> s.shape, s.dtype, s.sum.tolist()
((5, 2), torch.float64, [8.0, 13.0])
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch
from scipy.sparse import issparse
from torch import Tensor

__all__ = ["ChunkStream", "StreamStatistics", "is_chunked"]


def _is_array(x) -> bool:
    return isinstance(x, Tensor | np.ndarray)


def is_chunked(X) -> bool:
    """
    Whether ``X`` is data given as chunks: a ``DataLoader``, a list/tuple of 2-D arrays or tensors, or another
    iterable that is not array-like (no ``__array__``, not a sparse matrix, string, mapping or set).

    :param X: what ``fit`` was given.
    """
    if isinstance(X, torch.utils.data.DataLoader):
        return True
    if (_is_array(X) or X is None or isinstance(X, str | bytes | dict | set) or hasattr(X, "__array__")
            or issparse(X)):
        return False
    if isinstance(X, list | tuple):
        return len(X) > 0 and all(_is_array(c) and c.ndim == 2 for c in X)
    return hasattr(X, "__iter__")


def _first(batch):
    """A ``DataLoader`` batch from a ``TensorDataset`` is a list/tuple: its first element is the data."""
    return batch[0] if isinstance(batch, list | tuple) and not _is_array(batch) else batch


class ChunkStream:
    """
    A re-iterable source of 2-D chunks ``(n_i, D)`` seen as one data set of ``sum n_i`` rows (see the module).

    Before :meth:`scan` only the source is known; afterwards ``shape``, ``dtype``, ``device``, ``sum``
    (float64 column sums), ``scatter`` (float64 ``sum (x - c)(x - c)^T`` about ``center``), ``lo`` and ``hi``
    (column extrema) describe all the rows.

    :param source: the chunks (see :func:`is_chunked`).
    :raises TypeError: for a one-shot iterator.
    """

    def __init__(self, source) -> None:
        if isinstance(source, Iterator):  # has __next__: a generator, a file, an iterator over a list
            raise TypeError(
                "X is a one-shot iterator (e.g. a generator), but a fit passes over the data once per iteration: "
                "give a torch.utils.data.DataLoader, a list of chunks or an object whose __iter__ starts a new pass")
        self.source = source
        self.shape: tuple[int, int] = (0, 0)

    def _raw(self) -> Iterator:
        for batch in self.source:
            yield _first(batch)

    def scan(self, check: Callable[[object, bool], Tensor]) -> None:
        """
        The first pass: validate each chunk with ``check(chunk, first)`` (which returns it as a tensor of the
        fit's device and dtype) and accumulate the moments.

        :raises ValueError: if the source yields no rows.
        """
        n, total = 0, None
        for i, chunk in enumerate(self._raw()):
            x = check(chunk, i == 0)
            if x.shape[0] == 0:
                continue
            x64 = x.to(torch.float64)
            if total is None:
                self.dtype, self.device, D = x.dtype, x.device, x.shape[1]
                self.center = x64.mean(0)
                total = x64.new_zeros(D)
                self.scatter = x64.new_zeros(D, D)
                self.lo, self.hi = x.amin(0), x.amax(0)
            xc = x64 - self.center
            total += xc.sum(0)
            self.scatter.addmm_(xc.T, xc)
            self.lo, self.hi = torch.minimum(self.lo, x.amin(0)), torch.maximum(self.hi, x.amax(0))
            n += x.shape[0]
        if total is None:
            raise ValueError("X (an iterable of chunks) yielded no rows")
        self.sum = total + n * self.center
        self.shape = (n, int(self.center.shape[0]))

    def moments(self) -> tuple[Tensor, Tensor]:
        """``(mean, scatter about the mean)`` of all the rows, float64."""
        n = self.shape[0]
        mean = self.sum / n
        d = mean - self.center
        return mean, self.scatter - n * torch.outer(d, d)

    def __iter__(self) -> Iterator[Tensor]:
        """The chunks as tensors of the fit's device and dtype (after :meth:`scan`)."""
        n = 0
        for chunk in self._raw():
            if not isinstance(chunk, Tensor):
                chunk = torch.from_numpy(np.array(chunk, dtype=np.float64 if self.dtype == torch.float64
                                                  else np.float32))
            x = chunk.to(device=self.device, dtype=self.dtype)
            if x.dim() != 2 or x.shape[1] != self.shape[1]:
                raise ValueError(f"X (an iterable of chunks) yielded a chunk of shape {tuple(x.shape)} after chunks "
                                 f"of {self.shape[1]} features")
            if x.shape[0]:
                n += x.shape[0]
                yield x
        if n != self.shape[0]:
            raise ValueError(f"X (an iterable of chunks) yielded {n} rows in this pass but {self.shape[0]} in the "
                             "first: the source must give the same data on every pass")

    def reservoir(self, size: int, generator: torch.Generator) -> Tensor:
        """
        A uniform sample of ``min(size, n)`` rows without replacement, in one pass: each row gets a uniform key
        (from ``generator``) and the rows with the ``size`` smallest keys are kept.
        """
        keys = rows = None
        for x in self:
            k = torch.rand(x.shape[0], generator=generator, dtype=torch.float64)
            keys = k if keys is None else torch.cat([keys, k])
            rows = x if rows is None else torch.cat([rows, x])
            if keys.shape[0] > size:
                keep = keys.topk(size, largest=False).indices
                keys, rows = keys[keep], rows[keep.to(rows.device)]
        return rows

    def __repr__(self) -> str:
        return f"ChunkStream(shape={self.shape}, source={type(self.source).__name__})"


class StreamStatistics:
    """
    The statistics ``(t(x), k(x))`` of data given as chunks, computed chunk by chunk on each pass: the
    interface of :class:`~pyro_expfam.mixture.dpmm.cavi.SufficientStatistics` that a CAVI pass uses
    (``n``, ``chunks()`` of ``(rows, S)``, ``blocks()`` of ``(S, rows)``).

    :param emission: the DP mixture's emission (after ``setup``).
    :param ChunkStream stream: the data (after :meth:`ChunkStream.scan`).
    """

    def __init__(self, emission, stream: ChunkStream) -> None:
        self.emission, self.stream, self.n = emission, stream, stream.shape[0]

    def chunks(self) -> Iterator[tuple[Tensor, Tensor]]:
        """Yield ``(T, k)`` chunk by chunk (``T`` of shape ``(rows, S)``)."""
        for x in self.stream:
            yield self.emission.training_statistics(x)

    def blocks(self) -> Iterator[tuple[Tensor, Tensor]]:
        """Yield ``(t(x)^T, k)`` chunk by chunk (``(S, rows)``, contiguous)."""
        for T, k in self.chunks():
            yield T.T.contiguous(), k
