# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
r"""
Closed-form :func:`torch.distributions.kl_divergence` for our families.

Our classes inherit from torch's :class:`~torch.distributions.ExponentialFamily`
*and* from the Pyro class of their family.  torch's KL dispatch picks the most
specific registered pair by subclass order, so for a family whose torch class
is not itself a torch ``ExponentialFamily`` (MultivariateNormal, Geometric,
OneHotCategorical, LogNormal, InverseGamma, VonMises, Multinomial, ...) the
generic pair ``(ExponentialFamily, ExponentialFamily)`` competes with the
family's own closed form and may win.  That generic Bregman KL differentiates
the log normaliser with autograd (it fails under :func:`torch.no_grad`) and sums
over the wrong dimensions for matrix parameters.

:func:`register_closed_form_kls` therefore registers, for every pair of our
families and for every mixed pair (ours with torch's class of a family, in
both orders; Pyro's classes are subclasses of torch's), exactly one function:

- the closed form torch or Pyro registers for the two torch classes, when there
  is one (including cross-family ones such as ``(Beta, Normal)``), except
  torch's generic pair of transformed distributions within one family, which
  needs equal transforms (two Weibulls of different scales are refused by it);
- otherwise, within one family, the exact Bregman divergence
  :func:`~pyro_expfam.distributions.bregman_kl` (closed-form mean parameters,
  works under ``no_grad``), after converting a torch/Pyro argument to our class;
- otherwise a :class:`NotImplementedError` naming both classes.

An exact registration is the most specific match for its pair, so the dispatch
is never ambiguous (tested for every pair, with warnings as errors).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable

import torch.distributions.kl as _torch_kl
from torch import Tensor
from torch.distributions import Distribution, register_kl

from .exp_family import _as_family, _torch_family_class, bregman_kl

__all__ = ["register_closed_form_kls"]


def _closed_form(p_cls: type, q_cls: type) -> Callable | None:
    """The KL function torch/Pyro dispatch to for two torch classes, unless it is the generic one or none."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fn = _torch_kl._dispatch_kl(p_cls, q_cls)
    if fn is NotImplemented or fn is _torch_kl._kl_expfamily_expfamily:
        return None
    return fn


def _bregman_within(cls: type) -> Callable[[Distribution, Distribution], Tensor]:
    def kl(p: Distribution, q: Distribution) -> Tensor:
        return bregman_kl(_as_family(cls, p, "kl_divergence"), _as_family(cls, q, "kl_divergence"))

    kl.__name__ = kl.__qualname__ = f"_kl_{cls.__name__.lower()}_bregman"
    kl.__doc__ = f"KL divergence between two {cls.__name__} distributions as the Bregman divergence of A."
    return kl


def _no_closed_form(p: Distribution, q: Distribution) -> Tensor:
    raise NotImplementedError(
        f"kl_divergence({type(p).__name__}, {type(q).__name__}): no closed form is known (torch and Pyro register "
        "none for these families, and the Bregman divergence needs one family)"
    )


def register_closed_form_kls(families: Iterable[type]) -> None:
    """
    Register closed-form KL divergences for every pair of ``families`` (our
    classes) and every mixed pair with torch's class of a family (see the
    module docstring).

    :param families: :mod:`pyro_expfam.distributions` family classes.

    Example (run at import for :data:`~pyro_expfam.distributions.FAMILIES`)::

        >>> import torch
        >>> from torch.distributions import kl_divergence
        >>> from pyro_expfam.distributions import MultivariateNormal, VonMises
        >>> p = MultivariateNormal(torch.zeros(2), torch.eye(2))
        >>> q = torch.distributions.MultivariateNormal(torch.ones(2), 2 * torch.eye(2))
        >>> with torch.no_grad():
        ...     kl_divergence(p, q)          # torch's closed form, also for the mixed pair
        tensor(0.6931)
        >>> v, w = VonMises(torch.tensor(0.0), torch.tensor(1.0)), VonMises(torch.tensor(1.0), torch.tensor(2.0))
        >>> kl_divergence(v, w)              # no closed form in torch: the Bregman divergence
        tensor(0.5521)
    """
    families = list(families)
    torch_of = {cls: _torch_family_class(cls) for cls in families}
    # decide every function first (dispatching over torch's registry alone), then register
    chosen = []
    for a in families:
        for b in families:
            ta, tb = torch_of[a], torch_of[b]
            fn = _closed_form(ta, tb) if ta is not None and tb is not None else None
            if ta is tb and fn is _torch_kl._kl_transformed_transformed:
                # torch's generic transformed pair needs equal transforms: it refuses two Weibulls of
                # different scales; the Bregman divergence is exact for every pair of one family
                fn = None
            if fn is None:
                fn = _bregman_within(a) if ta is tb else _no_closed_form
            chosen.append((a, b, ta, tb, fn))
    for a, b, ta, tb, fn in chosen:
        register_kl(a, b)(fn)
        if ta is not None and tb is not None:
            register_kl(a, tb)(fn)
            register_kl(ta, b)(fn)
