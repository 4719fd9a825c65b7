# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""
Data parallelism on :mod:`torch.distributed`: the few collectives the mixture fits need.

Every fit in the package needs, per iteration, only sums over data points of per-component statistics
(``R^T T``, ``N_k``, the data terms of the bound).  With data split into one shard per process ("rank"),
each rank sums over its own shard and one all-reduce adds the partial sums: the message is
``O(K x statistics)`` numbers, independent of the number of points.  This module wraps the collectives
behind :class:`Communicator`, built by :func:`communicator` from an estimator's ``distributed``
hyper-parameter:

* ``False``/``None``: a single process; every method is a no-op returning its input;
* ``True``: the default process group (``torch.distributed.init_process_group`` must have been called,
  e.g. by ``torchrun``);
* a :class:`torch.distributed.ProcessGroup`: that group.

No cluster code of our own: the collectives are ``torch.distributed``'s (gloo on CPU, NCCL on GPUs; with
NCCL the tensors must be on the rank's GPU).

Example (a single process: everything is a no-op)::

    >>> comm = communicator(False)
    >>> comm.world_size, comm.rank, comm.is_distributed
    (1, 0, False)
    >>> comm.all_reduce({"counts": torch.tensor([1.0, 2.0])})["counts"]
    tensor([1., 2.])
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

import torch
import torch.distributed as dist
from torch import Tensor

__all__ = ["Communicator", "DistributedInputError", "communicator", "check_distributed", "save_on_rank0",
           "INIT_SAMPLE"]

#: size of the sample gathered from all ranks for a distributed fit's initialisation
INIT_SAMPLE = 10_000


class DistributedInputError(ValueError):
    """
    Raised on the ranks of a distributed fit whose own input was fine when another rank's input was refused
    (see :meth:`Communicator.agree`); the refusing rank raises its own error.
    """


def check_distributed(value, name: str = "distributed") -> None:
    """
    Validate a ``distributed`` hyper-parameter: ``False``/``None``, ``True`` or a ``ProcessGroup``.

    :raises ValueError: naming the argument and the reason.

    Example::

        >>> check_distributed("yes")
        Traceback (most recent call last):
        ...
        ValueError: distributed must be a bool or a torch.distributed.ProcessGroup, got 'yes'
    """
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, dist.ProcessGroup):
        return
    raise ValueError(f"{name} must be a bool or a torch.distributed.ProcessGroup, got {value!r}")


class Communicator:
    """
    Collectives over a process group (or none).  Build it with :func:`communicator`.

    :param group: a ``ProcessGroup``, ``None`` for the default group, or ``False`` for no communication.

    ``bytes_sent`` counts the payload bytes this rank handed to collectives and ``n_collectives`` the collectives
    called (for the benchmarks: the volume and the latency terms of the communication cost).
    """

    def __init__(self, group=False) -> None:
        self.is_distributed = group is not False
        self.group = None if group is False else group
        if self.is_distributed:
            if not dist.is_available() or not dist.is_initialized():
                raise RuntimeError(
                    "distributed=True needs an initialised torch.distributed process group: call "
                    "torch.distributed.init_process_group(...) first (torchrun sets up the environment)")
            self.rank = dist.get_rank(self.group)
            self.world_size = dist.get_world_size(self.group)
        else:
            self.rank, self.world_size = 0, 1
        self.bytes_sent = 0
        self.n_collectives = 0

    # ------------------------------------------------------------------ #
    def all_reduce(self, tensors: Mapping[str, Tensor] | Sequence[Tensor], op: str = "sum"):
        """
        Reduce tensors over the ranks, in one collective (they are packed into one flat buffer per dtype).

        :param tensors: a dict or list of tensors (same device); not modified.
        :param str op: ``"sum"``, ``"max"`` or ``"min"`` (elementwise).
        :returns: the reduced tensors, same container type and shapes.
        """
        reduce_op = {"sum": dist.ReduceOp.SUM, "max": dist.ReduceOp.MAX, "min": dist.ReduceOp.MIN}.get(op)
        if reduce_op is None:
            raise ValueError(f"op must be 'sum', 'max' or 'min', got {op!r}")
        if not self.is_distributed:
            return dict(tensors) if isinstance(tensors, Mapping) else list(tensors)
        keys = list(tensors.keys()) if isinstance(tensors, Mapping) else None
        values = list(tensors.values()) if keys is not None else list(tensors)
        out: list[Tensor | None] = [None] * len(values)
        by_dtype: dict[torch.dtype, list[int]] = {}
        for i, v in enumerate(values):
            by_dtype.setdefault(v.dtype, []).append(i)
        for idx in by_dtype.values():
            flat = torch.cat([values[i].reshape(-1) for i in idx])
            self.bytes_sent += flat.numel() * flat.element_size()
            self.n_collectives += 1
            dist.all_reduce(flat, op=reduce_op, group=self.group)
            for i, part in zip(idx, flat.split([values[i].numel() for i in idx]), strict=True):
                out[i] = part.reshape(values[i].shape)
        return dict(zip(keys, out, strict=True)) if keys is not None else out

    def broadcast(self, tensors: Mapping[str, Tensor] | Sequence[Tensor], src: int = 0):
        """
        Rank ``src``'s tensors on every rank (shapes and dtypes are checked first, see :meth:`check_same`).

        :returns: the same container type, with new tensors.
        """
        if not self.is_distributed:
            return dict(tensors) if isinstance(tensors, Mapping) else list(tensors)
        self.check_same(tensors, "broadcast")
        keys = list(tensors.keys()) if isinstance(tensors, Mapping) else None
        values = [v.clone().contiguous() for v in (tensors.values() if keys is not None else tensors)]
        for v in values:
            self.bytes_sent += v.numel() * v.element_size()
            self.n_collectives += 1
            dist.broadcast(v, src=dist.get_global_rank(self.group, src) if self.group is not None else src,
                           group=self.group)
        return dict(zip(keys, values, strict=True)) if keys is not None else values

    def check_same(self, tensors: Mapping[str, Tensor] | Sequence[Tensor], what: str = "statistics") -> None:
        """
        Check that every rank holds tensors of the same names, shapes and dtypes.

        :raises ValueError: listing what differs between the ranks.
        """
        if not self.is_distributed:
            return
        items = tensors.items() if isinstance(tensors, Mapping) else enumerate(tensors)
        meta = [(str(k), tuple(v.shape), str(v.dtype)) for k, v in items]
        self.check_equal(meta, what + " (name, shape, dtype)")

    def check_equal(self, value, what: str) -> None:
        """
        Check that a small picklable ``value`` is equal on every rank.

        :raises ValueError: naming ``what`` and each rank's value.
        """
        if not self.is_distributed:
            return
        gathered: list = [None] * self.world_size
        self.n_collectives += 1
        dist.all_gather_object(gathered, value, group=self.group)
        if any(g != gathered[0] for g in gathered[1:]):
            detail = "; ".join(f"rank {r}: {g!r}" for r, g in enumerate(gathered))
            raise ValueError(f"the ranks disagree on {what}: {detail}")

    @contextmanager
    def agree(self, what: str = "input validation") -> Iterator[None]:
        """
        Run a block of local checks (input validation) on every rank, then agree on the outcome in one
        collective, so that a check failing on one rank stops every rank instead of leaving the others
        waiting forever in the fit's next collective.

        On the ranks whose block raised, the exception propagates (with a note naming the rank); on the others
        :class:`DistributedInputError` is raised, naming each failing rank and its error.  Only ``Exception``
        is agreed on (a ``KeyboardInterrupt`` propagates at once).  A no-op without a process group.

        :param str what: what the block checks (for the message).
        :raises DistributedInputError: if another rank's block raised.

        Example (a single process: the block's own exception, unchanged)::

            >>> comm = communicator(False)
            >>> with comm.agree("input validation"):
            ...     raise ValueError("Input X contains NaN.")
            Traceback (most recent call last):
            ...
            ValueError: Input X contains NaN.
        """
        if not self.is_distributed:
            yield
            return
        error: Exception | None = None
        try:
            yield
        except Exception as e:  # agreed on below, then re-raised
            error = e
        gathered: list = [None] * self.world_size
        mine = None if error is None else f"{type(error).__name__}: {error}"
        self.n_collectives += 1
        dist.all_gather_object(gathered, mine, group=self.group)
        failed = [(r, m) for r, m in enumerate(gathered) if m is not None]
        if error is not None:
            others = [r for r, _ in failed if r != self.rank]
            error.add_note(f"(rank {self.rank} of {self.world_size} failed {what}; every rank stops"
                           + (f"; ranks {others} failed too)" if others else ")"))
            raise error
        if failed:
            detail = "; ".join(f"rank {r}: {m}" for r, m in failed)
            raise DistributedInputError(
                f"{what} failed on {len(failed)} of {self.world_size} ranks, so rank {self.rank} stops too: {detail}")

    def all_gather_rows(self, X: Tensor) -> Tensor:
        """
        Concatenate every rank's rows ``(n_r, ...)`` in rank order (shards may have different lengths).
        Used only for small samples (e.g. an initialisation sample), never for the data.
        """
        if not self.is_distributed:
            return X
        n = torch.tensor([X.shape[0]], device=X.device)
        sizes = [torch.zeros_like(n) for _ in range(self.world_size)]
        dist.all_gather(sizes, n, group=self.group)
        sizes_i = [int(s) for s in sizes]
        top = max(sizes_i)
        padded = X.new_zeros((top, *X.shape[1:]))
        padded[:X.shape[0]] = X
        parts = [torch.empty_like(padded) for _ in range(self.world_size)]
        self.bytes_sent += padded.numel() * padded.element_size()
        self.n_collectives += 2
        dist.all_gather(parts, padded.contiguous(), group=self.group)
        return torch.cat([p[:s] for p, s in zip(parts, sizes_i, strict=True)])

    def sum_int(self, value: int, device=None) -> int:
        """Sum of a Python integer over the ranks."""
        if not self.is_distributed:
            return int(value)
        t = torch.tensor([int(value)], dtype=torch.int64, device=device)
        self.n_collectives += 1
        dist.all_reduce(t, group=self.group)
        return int(t)


def communicator(distributed=False) -> Communicator:
    """
    The :class:`Communicator` for an estimator's ``distributed`` hyper-parameter.

    :param distributed: ``False``/``None`` (one process), ``True`` (default process group) or a
        ``ProcessGroup``.
    :raises ValueError: for any other value.
    :raises RuntimeError: if ``distributed=True`` but no process group was initialised.
    """
    check_distributed(distributed)
    if distributed is None or distributed is False:
        return Communicator(False)
    return Communicator(None if distributed is True else distributed)


def save_on_rank0(estimator, path, save) -> None:
    """
    Save a distributed estimator from rank 0 only (on the other ranks nothing is written); a process group
    given as ``distributed`` is recorded as ``True`` (a group cannot be saved).

    :param estimator: a fitted estimator with a ``distributed`` hyper-parameter (and its fit's ``_comm``).
    :param path: the file.
    :param save: the estimator's plain save function, called as ``save(path)``.
    """
    comm = estimator.__dict__.get("_comm")
    if comm is not None and comm.is_distributed and comm.rank != 0:
        return
    group = estimator.distributed
    if group is not None and not isinstance(group, bool):
        estimator.distributed = True
    try:
        save(path)
    finally:
        estimator.distributed = group
