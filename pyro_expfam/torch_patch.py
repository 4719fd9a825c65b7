# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
r"""
Opt-in patch of :mod:`torch.distributions` with the proposed upstream
exponential-family API (after Pyro's ``pyro/distributions/torch_patch.py``).

:func:`patch_torch` installs, on torch's own distribution classes
(``torch.distributions.Normal``, ``Bernoulli``, ``Beta``, ... one per family
shipped in :mod:`pyro_expfam.distributions`):

- ``_from_natural_params(*eta, **fixed)`` (class method; the name and
  signature of the upstream proposal),
- ``product_along_axis(dim=-1, keepdim=True, weights=None)``,
- ``sufficient_statistics(value)``, ``log_carrier_measure(value)``,
- ``mean_parameters()`` and ``from_mean_parameters(*mean, **fixed)`` (class method),
- ``_natural_param_event_dims`` (the event rank of each natural parameter),
- and, on the torch classes that are not ``ExponentialFamily`` subclasses in
  torch (Categorical, MultivariateNormal, Geometric, ...), ``_natural_params``
  and ``_log_normalizer``.

so that code written against the proposed API runs on today's torch.  Every
patched method delegates to the :mod:`pyro_expfam.distributions` family of the
same name (one implementation of the maths) and converts the result back, so a
torch object yields an instance of **torch's own class** (a Pyro object a Pyro
class), never one of ours.  Attributes that a torch class already defines are
never overwritten (torch's own ``Bernoulli._natural_params`` stays as it is).

The patch is idempotent; :func:`unpatch_torch` removes exactly what was
installed, and :func:`patched_torch` is a context manager doing both::

    >>> import torch, pyro_expfam
    >>> pyro_expfam.patch_torch()
    >>> d = torch.distributions.Beta(torch.tensor([2.0, 4.0]), torch.tensor([3.0, 1.5]))
    >>> p = d.product_along_axis(keepdim=False)  # a torch.distributions.Beta
    >>> type(p).__module__, p.concentration1.item(), p.concentration0.item()
    ('torch.distributions.beta', 5.0, 3.5)
    >>> pyro_expfam.unpatch_torch()

This module also holds the conversion between torch/Pyro distributions and
ours (:func:`as_expfam`, :func:`convert_family`), used by
:mod:`pyro_expfam.conjugate`.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator

import pyro.distributions
import torch
from pyro.distributions.torch_distribution import TorchDistributionMixin
from torch import Tensor

__all__ = [
    "PATCHED_FAMILIES",
    "as_expfam",
    "convert_family",
    "family_name",
    "is_torch_patched",
    "patch_torch",
    "patched_torch",
    "unpatch_torch",
]


def _probs_or_logits(d) -> dict:
    # prefer whichever parametrisation the object was built with (logits if both are cached)
    if "logits" in d.__dict__:
        return {"logits": d.logits}
    return {"probs": d.probs}


#: Constructor keyword arguments of each family, read from an instance.
#: The family names are those of :mod:`torch.distributions`, :mod:`pyro.distributions`
#: and :mod:`pyro_expfam.distributions` alike.
_CONSTRUCTOR_ARGS: dict[str, Callable[[object], dict]] = {
    "Bernoulli": _probs_or_logits,
    "Beta": lambda d: {"concentration1": d.concentration1, "concentration0": d.concentration0},
    "Binomial": lambda d: {"total_count": d.total_count, **_probs_or_logits(d)},
    "Categorical": _probs_or_logits,
    "Chi2": lambda d: {"df": d.df},
    "ContinuousBernoulli": lambda d: {**_probs_or_logits(d), "lims": d._lims},
    "Dirichlet": lambda d: {"concentration": d.concentration},
    "Exponential": lambda d: {"rate": d.rate},
    "Gamma": lambda d: {"concentration": d.concentration, "rate": d.rate},
    "Geometric": _probs_or_logits,
    "InverseGamma": lambda d: {"concentration": d.concentration, "rate": d.rate},
    "LogNormal": lambda d: {"loc": d.loc, "scale": d.scale},
    "Multinomial": lambda d: {"total_count": d.total_count, **_probs_or_logits(d)},
    "MultivariateNormal": lambda d: {"loc": d.loc, "scale_tril": d.scale_tril},
    "Normal": lambda d: {"loc": d.loc, "scale": d.scale},
    "OneHotCategorical": _probs_or_logits,
    "Poisson": lambda d: {"rate": d.rate},
    "VonMises": lambda d: {"loc": d.loc, "concentration": d.concentration},
    "Wishart": lambda d: {"df": d.df, "scale_tril": d.scale_tril},
}


def _family_constructor_args(name: str) -> Callable[[object], dict]:
    # families whose pyro_expfam class reads its own constructor arguments
    return lambda d: getattr(_expfam_module(), name)._constructor_args(d)


_OWN_ARGS_FAMILIES = ("HalfNormal", "Laplace", "NegativeBinomial", "Pareto", "Weibull")
_CONSTRUCTOR_ARGS.update({name: _family_constructor_args(name) for name in _OWN_ARGS_FAMILIES})

#: The torch families patched by :func:`patch_torch` (those that torch ships).
PATCHED_FAMILIES: tuple[str, ...] = tuple(n for n in sorted(_CONSTRUCTOR_ARGS) if hasattr(torch.distributions, n))

_NATURAL_API = ("_natural_params", "_log_normalizer")


def _expfam_module():
    import pyro_expfam.distributions as expfam  # deferred: pyro_expfam.distributions may import this module

    return expfam


def family_name(cls_or_dist) -> str:
    """
    Name of the exponential family of a torch, Pyro or pyro_expfam distribution
    (class or instance): the most derived class in its MRO that is one of
    torch's own family classes (``Chi2`` for a Chi2, not ``Gamma``).

    :param cls_or_dist: a distribution class or instance.
    :raises TypeError: if it belongs to none of the supported families.
    """
    cls = cls_or_dist if isinstance(cls_or_dist, type) else type(cls_or_dist)
    for c in cls.__mro__:
        name = c.__name__
        if name in _CONSTRUCTOR_ARGS and getattr(torch.distributions, name, None) is c:
            return name
    # families that torch does not ship are recognised by pyro_expfam's own classes
    expfam = _expfam_module()
    for c in cls.__mro__:
        name = c.__name__
        if name in _CONSTRUCTOR_ARGS and getattr(expfam, name, None) is c:
            return name
    raise TypeError(f"{cls.__name__} is not one of the exponential families {sorted(_CONSTRUCTOR_ARGS)}")


def _namespace(cls: type):
    """The module (pyro_expfam, pyro or torch distributions) whose classes ``cls`` belongs to."""
    expfam = _expfam_module()
    if issubclass(cls, expfam.ExponentialFamily):
        return expfam
    if issubclass(cls, TorchDistributionMixin):
        return pyro.distributions
    return torch.distributions


def as_expfam(d: torch.distributions.Distribution):
    """
    The :mod:`pyro_expfam.distributions` counterpart of a torch or Pyro
    distribution (same parameters, same batch shape); ``d`` itself if it is
    already one of ours.

    :param d: a distribution of a supported family.
    :rtype: pyro_expfam.distributions.ExponentialFamily
    """
    expfam = _expfam_module()
    if isinstance(d, expfam.ExponentialFamily):
        return d
    name = family_name(d)
    return getattr(expfam, name)(**_CONSTRUCTOR_ARGS[name](d), validate_args=False)


def convert_family(d: torch.distributions.Distribution, like: type):
    """
    Convert ``d`` to the class that ``like`` would use for ``d``'s family:
    ``like`` itself when the families agree (so a subclass is kept), else the
    class of ``d``'s family in ``like``'s namespace (torch, Pyro or
    pyro_expfam).  Used to hand torch objects back as torch objects.

    :param d: a distribution (typically one of ours).
    :param type like: the class of the object the user passed in.
    """
    name = family_name(d)
    target = like if family_name(like) == name else getattr(_namespace(like), name)
    if type(d) is target:
        return d
    return target(**_CONSTRUCTOR_ARGS[name](d), validate_args=False)


# ---------------------------------------------------------------------- #
# The patched methods: thin delegations to pyro_expfam's families
# ---------------------------------------------------------------------- #
#: torch families whose natural parameters torch inherits from a parent family: the patched methods
#: follow the parent (torch's ``Chi2`` has ``Gamma``'s two natural parameters ``(df/2 - 1, -1/2)``,
#: whereas pyro_expfam's ``Chi2`` is the one-parameter family).
_TORCH_CONVENTION = {"Chi2": "Gamma"}


def _delegate_name(cls: type) -> str:
    name = family_name(cls)
    return _TORCH_CONVENTION.get(name, name)


def _ours(cls: type):
    return getattr(_expfam_module(), _delegate_name(cls))


def _as_delegate(d):
    """``d`` as the pyro_expfam family whose natural parameters match torch's ``d._natural_params``."""
    name, own = _delegate_name(type(d)), family_name(d)
    if name == own:
        return as_expfam(d)
    return getattr(_expfam_module(), name)(**_CONSTRUCTOR_ARGS[name](d), validate_args=False)


def _back(result, cls: type):
    """Convert a result of the delegate family back to ``cls`` (a Chi2 stays a Chi2 when its rate is 1/2)."""
    if family_name(cls) == "Chi2" and family_name(result) == "Gamma" and bool((result.rate == 0.5).all()):
        return cls(2 * result.concentration, validate_args=False)
    return convert_family(result, cls)


def _from_natural_params(cls, *natural_params: Tensor, **fixed):
    """
    Build a distribution of this class from natural parameters (the inverse of
    ``_natural_params``); installed by :func:`pyro_expfam.patch_torch`.

    :param Tensor natural_params: natural parameters in the order of ``_natural_params``.
    :param fixed: fixed parameters of the family (e.g. ``total_count``).
    """
    return _back(_ours(cls)._from_natural_params(*natural_params, **fixed), cls)


def _from_mean_parameters(cls, *mean_params: Tensor, **fixed):
    """
    The member of this family whose expected sufficient statistics are
    ``mean_params``; installed by :func:`pyro_expfam.patch_torch`.

    :param Tensor mean_params: expected sufficient statistics.
    :param fixed: fixed parameters of the family (e.g. ``total_count``).
    """
    return _back(_ours(cls).from_mean_parameters(*mean_params, **fixed), cls)


def _product_along_axis(self, dim: int = -1, keepdim: bool = True, weights: Tensor | None = None):
    """
    Normalised product of the densities along batch dimension ``dim``
    (negative or non-negative, counted in ``batch_shape``), with the carrier
    measure correction; installed by :func:`pyro_expfam.patch_torch`.  See
    :meth:`pyro_expfam.distributions.ExponentialFamily.product_along_axis`.

    :param int dim: batch dimension to reduce.
    :param bool keepdim: keep the reduced dimension with size 1.
    :param Tensor weights: optional exponents broadcastable to ``batch_shape``.
    """
    return _back(_as_delegate(self).product_along_axis(dim, keepdim, weights), type(self))


def _sufficient_statistics(self, value: Tensor) -> tuple[Tensor, ...]:
    """
    Sufficient statistics ``t(x)``, one tensor per natural parameter;
    installed by :func:`pyro_expfam.patch_torch`.

    :param Tensor value: a value in the support.
    """
    return _as_delegate(self).sufficient_statistics(value)


def _log_carrier_measure(self, value: Tensor) -> Tensor:
    """
    Log carrier measure ``k(x)``; installed by :func:`pyro_expfam.patch_torch`.

    :param Tensor value: a value in the support.
    """
    return _as_delegate(self).log_carrier_measure(value)


def _mean_parameters(self) -> tuple[Tensor, ...]:
    """Expected sufficient statistics ``E[t(x)]``; installed by :func:`pyro_expfam.patch_torch`."""
    return _as_delegate(self).mean_parameters()


def _natural_params_property(self) -> tuple[Tensor, ...]:
    return _as_delegate(self)._natural_params


def _log_normalizer(self, *natural_params: Tensor) -> Tensor:
    """
    Log normaliser ``A(eta)``; installed by :func:`pyro_expfam.patch_torch`.

    :param Tensor natural_params: natural parameters.
    """
    return _as_delegate(self)._log_normalizer(*natural_params)


def _attributes(cls: type) -> dict[str, object]:
    return {
        "_natural_param_event_dims": _ours(cls)._natural_param_event_dims,
        "_from_natural_params": classmethod(_from_natural_params),
        "from_mean_parameters": classmethod(_from_mean_parameters),
        "product_along_axis": _product_along_axis,
        "sufficient_statistics": _sufficient_statistics,
        "log_carrier_measure": _log_carrier_measure,
        "mean_parameters": _mean_parameters,
        "_natural_params": property(_natural_params_property, doc="Natural parameters (installed by patch_torch)."),
        "_log_normalizer": _log_normalizer,
    }


# (class, attribute name) -> installed object, in installation order
_installed: dict[tuple[type, str], object] = {}
_lock = threading.RLock()


def is_torch_patched() -> bool:
    """Whether :func:`patch_torch` is in effect."""
    return bool(_installed)


def patch_torch() -> None:
    """
    Install the proposed upstream exponential-family API on torch's own
    distribution classes (see the module docstring).  Idempotent: a second
    call does nothing.  Undo with :func:`unpatch_torch`.
    """
    with _lock:
        if _installed:
            return
        for name in PATCHED_FAMILIES:
            cls = getattr(torch.distributions, name)
            for attr, obj in _attributes(cls).items():
                if attr in _NATURAL_API and _has_own_natural_api(cls, attr):
                    continue  # torch defines it: never overwrite torch's own
                if attr not in _NATURAL_API and attr in cls.__dict__:
                    continue  # a future torch ships it: keep torch's
                setattr(cls, attr, obj)
                _installed[(cls, attr)] = obj


def _has_own_natural_api(cls: type, attr: str) -> bool:
    # torch's ExponentialFamily base declares both abstractly; a concrete family overrides them
    for c in cls.__mro__:
        if c is torch.distributions.ExponentialFamily or c is torch.distributions.Distribution:
            return False
        if attr in c.__dict__:
            return True
    return False


def unpatch_torch() -> None:
    """
    Remove everything :func:`patch_torch` installed (only that: attributes
    that were replaced since are left alone).  Does nothing if not patched.
    """
    with _lock:
        for (cls, attr), obj in reversed(list(_installed.items())):
            if cls.__dict__.get(attr) is obj:
                delattr(cls, attr)
        _installed.clear()


@contextlib.contextmanager
def patched_torch() -> Iterator[None]:
    """
    Context manager: patch torch on entry and restore the previous state on
    exit (if torch was already patched on entry it stays patched).

    Example::

        >>> with patched_torch():
        ...     d = torch.distributions.Normal(0.0, 1.0)._from_natural_params(torch.tensor(0.0), torch.tensor(-0.5))
        >>> type(d).__module__, d.loc.item(), d.scale.item()
        ('torch.distributions.normal', 0.0, 1.0)
        >>> hasattr(torch.distributions.Normal, "_from_natural_params")   # unpatched again on exit
        False
    """
    with _lock:
        was_patched = is_torch_patched()
        patch_torch()
    try:
        yield
    finally:
        if not was_patched:
            unpatch_torch()
