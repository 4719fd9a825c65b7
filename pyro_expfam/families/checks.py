# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""
Data and hyper-parameter checks shared by every model: one wording for data outside a family's support, and
for prior hyper-parameters that must be positive.  The messages name the argument (``X`` unless told) and say
what the family needs, in scikit-learn's style (data with negative entries also get scikit-learn's phrase
"Negative values in data").
"""

from __future__ import annotations

import math
import numbers

import torch
from torch import Tensor
from torch.distributions import constraints

__all__ = ["SUPPORT_NEEDS", "check_positive", "check_support", "support_need"]

#: what a family's data must hold, by core family name (the wording of :func:`check_support`)
SUPPORT_NEEDS = {
    "Bernoulli": "binary entries in {0, 1}",
    "Poisson": "non-negative integer counts",
    "Categorical": "non-negative integer codes",
    "OneHotCategorical": "one-hot vectors",
    "Geometric": "non-negative integer counts",
    "NegativeBinomial": "non-negative integer counts",
    "Binomial": "integer counts in [0, total_count]",
    "Gamma": "positive values",
    "Exponential": "non-negative values",
}


def support_need(family: str, support: constraints.Constraint | None = None) -> str:
    """
    What data of ``family`` must hold, in words (the table :data:`SUPPORT_NEEDS`, else the support constraint).

    :param str family: the core family's name, e.g. ``"Poisson"``.
    :param support: the family's support constraint, used for families not in the table.

    >>> support_need("Bernoulli")
    'binary entries in {0, 1}'
    >>> support_need("Beta", constraints.unit_interval)
    'values in Interval(lower_bound=0.0, upper_bound=1.0)'
    """
    if family in SUPPORT_NEEDS:
        return SUPPORT_NEEDS[family]
    return f"values in {support}" if support is not None else "values in its support"


def _non_negative(support) -> bool:
    lower = getattr(support, "lower_bound", None)
    if isinstance(lower, int | float):
        return lower >= 0
    return support in (constraints.positive, constraints.nonnegative, constraints.boolean)


def check_support(X: Tensor, ok: Tensor | bool, family: str, need: str | None = None, name: str = "X",
                  non_negative: bool = False) -> None:
    """
    Raise the one ``ValueError`` of the package for data outside a family's support.

    :param Tensor X: the data.
    :param ok: boolean tensor (or bool), true where ``X`` is in the support.
    :param str family: the family's name, e.g. ``"Bernoulli"``.
    :param str need: what the data must hold (default :func:`support_need` of ``family``).
    :param str name: the argument's name in the message.
    :param bool non_negative: the support is non-negative: negative entries add scikit-learn's phrase.
    :raises ValueError: if ``ok`` is false anywhere.

    >>> X = torch.tensor([[0.0, 1.0], [2.0, 1.0]])
    >>> check_support(X, (X == 0) | (X == 1), "Bernoulli", non_negative=True)  # doctest: +NORMALIZE_WHITESPACE
    Traceback (most recent call last):
    ...
    ValueError: X contains values outside the support of the Bernoulli family: Bernoulli needs binary entries
    in {0, 1}
    >>> check_support(-X, -X >= 0, "Poisson", name="data", non_negative=True)  # doctest: +NORMALIZE_WHITESPACE
    Traceback (most recent call last):
    ...
    ValueError: data contains values outside the support of the Poisson family: Poisson needs non-negative integer
    counts (Negative values in data)
    """
    if isinstance(ok, Tensor):
        ok = bool(ok.all())
    if ok:
        return
    need = support_need(family) if need is None else need
    negative = " (Negative values in data)" if non_negative and bool((X < 0).any()) else ""
    raise ValueError(f"{name} contains values outside the support of the {family} family: {family} needs "
                     f"{need}{negative}")


def check_positive(value, name: str, allow_none: bool = False) -> float | None:
    """
    ``value`` as a float if it is a positive finite real number (``None`` passes if ``allow_none``), else the
    package's ``ValueError`` naming the argument.

    :param value: the hyper-parameter.
    :param str name: its name.
    :param bool allow_none: ``None`` means "data-dependent default" and is returned as is.

    >>> check_positive(2, "shape")
    2.0
    >>> check_positive(0.0, "rate")
    Traceback (most recent call last):
    ...
    ValueError: rate must be a positive finite number, got 0.0
    """
    if value is None and allow_none:
        return None
    ok = not isinstance(value, bool | str) and isinstance(value, numbers.Real | Tensor)
    if ok and isinstance(value, Tensor):
        ok = value.numel() == 1 and not value.dtype == torch.bool
    if not ok or not math.isfinite(float(value)) or not float(value) > 0:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return float(value)
