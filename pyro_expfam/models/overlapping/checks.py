# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""
Argument checks of :class:`~pyro_expfam.models.overlapping.fit.OverlappingMixture`
(private helpers of the estimator): numbers, the old argument names (refused
with the name of the hyper-parameter that replaced them), and the shape of a
data set for a cluster family.
"""

from __future__ import annotations

import math
import numbers

from . import families as _families
from . import generic as _generic

__all__: list[str] = []

# old argument names -> what replaces them (constructor hyper-parameters)
_RENAMED = {
    "num_clusters": "n_components",
    "num_steps": "max_iter",
    "seed": "random_state",
    "generator": "random_state",
    "progress": "verbose",
    "resume": "warm_start",
    "lr": "optimizer (e.g. optimizer=pyro.optim.Adam({'lr': 0.05}))",
    "name": "model_options={'name': ...}",
}
_FIT_HYPER = (
    "batch_size", "tol", "patience", "n_init", "objective", "num_particles", "grow", "min_usage", "max_iter",
    "random_state", "verbose", "warm_start", "optimizer", "background", "structure",
)  # fmt: skip


def _refuse_renamed(where: str, kwargs: dict) -> None:
    for key in kwargs:
        if key in _RENAMED:
            raise TypeError(
                f"OverlappingMixture{where} got the old argument {key!r}: it is now the constructor "
                f"hyper-parameter {_RENAMED[key]}"
            )
        if where == ".fit()" and key in _FIT_HYPER:
            raise TypeError(
                f"OverlappingMixture.fit() got {key!r}: it is now a constructor hyper-parameter, "
                f"OverlappingMixture(..., {key}=...) or est.set_params({key}=...)"
            )
    if kwargs:
        raise TypeError(f"OverlappingMixture{where} got unexpected keyword argument(s) {sorted(kwargs)}")


class _RefuseRenamed:
    """Names the new hyper-parameter when an old argument name is passed to the constructor."""

    def __new__(cls, *args, **kwargs):
        _refuse_renamed("()", {k: v for k, v in kwargs.items() if k in _RENAMED})
        return super().__new__(cls)


def _check_int(value, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def _check_real(value, name: str, low: float, high: float = math.inf, strict_low: bool = True) -> float:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value > low if strict_low else value >= low) and value < high
    if not ok:
        bounds = f"{'>' if strict_low else '>='} {low}" + (f" and < {high}" if math.isfinite(high) else "")
        raise ValueError(f"{name} must be a finite number {bounds}, got {value!r}")
    return float(value)


def _data_ndim(family: _families.ClusterFamily) -> int:
    """Dimensions of a data set for ``family``: ``(N,) + point shape``."""
    if isinstance(family, _families.CategoricalClusters) and family.one_hot:
        return 3
    if isinstance(family, _generic.ExpFamClusters):
        t = family._template
        return 1 + len(t.batch_shape + t.event_shape)
    return 2
