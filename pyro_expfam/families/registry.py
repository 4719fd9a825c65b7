# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""The one registry of the family layer: :func:`get_family`."""

from __future__ import annotations

from functools import partial

from .. import distributions as expfam
from ..distributions.exp_family import ExponentialFamily
from .base import ConjugateFamily
from .discrete import BernoulliFamily, CategoricalFamily, PoissonFamily
from .gaussian import COVARIANCE_TYPES, GaussianFamily
from .generic import ExpFamFamily, resolve_family

__all__ = ["FAMILY_NAMES", "get_family"]

_BY_NAME = {
    "bernoulli": BernoulliFamily,
    "categorical": CategoricalFamily,
    "one_hot_categorical": partial(CategoricalFamily, one_hot=True),
    "poisson": PoissonFamily,
    "gaussian": GaussianFamily,
    **{t: partial(GaussianFamily, t) for t in COVARIANCE_TYPES},
    # the core class names of the two Gaussians, as their classes below
    "normal": partial(GaussianFamily, "diag"),
    "normal_diag": partial(GaussianFamily, "diag"),
    "multivariate_normal": partial(GaussianFamily, "full"),
    "normal_full": partial(GaussianFamily, "full"),
}
_BY_CLASS = {
    expfam.Bernoulli: BernoulliFamily,
    expfam.Categorical: CategoricalFamily,
    expfam.OneHotCategorical: _BY_NAME["one_hot_categorical"],
    expfam.Poisson: PoissonFamily,
    expfam.Normal: _BY_NAME["diag"],
    expfam.MultivariateNormal: _BY_NAME["full"],
}

#: the names with a dedicated family (any class name of :mod:`pyro_expfam.distributions` also resolves)
FAMILY_NAMES = tuple(sorted(_BY_NAME))


def get_family(family, **hyper) -> ConjugateFamily:
    """
    Resolve ``family`` to a :class:`~pyro_expfam.families.ConjugateFamily`.

    - a :class:`ConjugateFamily` instance: returned as is;
    - a name of :data:`FAMILY_NAMES` (``"bernoulli"``, ``"categorical"``, ``"one_hot_categorical"``,
      ``"poisson"``, ``"gaussian"``, a covariance type ``"full"``, ``"tied"``, ``"diag"``, ``"spherical"``,
      ``"unit"``, or ``"normal"``/``"normal_diag"`` (diag), ``"multivariate_normal"``/``"normal_full"``
      (full); case-insensitive, ``-`` read as ``_``), or a core class with a dedicated family (``Bernoulli``,
      ``Categorical``, ``OneHotCategorical``, ``Poisson``, ``Normal`` (diag), ``MultivariateNormal`` (full)):
      that family with the hyper-parameters ``hyper``;
    - any other class name, class or instance of :mod:`pyro_expfam.distributions`: the generic
      :class:`~pyro_expfam.families.ExpFamFamily` (Diaconis-Ylvisaker prior).

    :param family: name, class or instance.
    :param hyper: prior hyper-parameters of the family's constructor.
    :raises ValueError: for an unknown name or bad hyper-parameters.
    :raises TypeError: for anything else.

    >>> get_family("poisson", shape=2.0)
    PoissonFamily(shape=2.0, rate=None)
    >>> get_family(expfam.MultivariateNormal).covariance_type, get_family("normal").covariance_type
    ('full', 'diag')
    >>> get_family("Gamma")  # doctest: +ELLIPSIS
    ExpFamFamily(cls=<class '...Gamma'>, prototype=None, family='Gamma', prior_strength=1.0)
    """
    if isinstance(family, ConjugateFamily):
        if hyper:
            raise ValueError("hyper-parameters apply to a family given by name or class, not to an instance")
        return family
    make = None
    if isinstance(family, str):
        make = _BY_NAME.get(family.lower().replace("-", "_"))
    elif isinstance(family, type):
        make = _BY_CLASS.get(family)
    if make is None:
        if isinstance(family, str | type | ExponentialFamily):
            resolve_family(family)  # the error for unknown names and non-families
        else:
            raise TypeError(f"family must be a name, a class or an instance of a family, got {type(family).__name__}")
        make = ExpFamFamily
        hyper = {"family": family, **hyper}
    try:
        return make(**hyper)
    except TypeError as e:
        raise ValueError(f"invalid hyper-parameters for family {family!r}: {e}") from e
