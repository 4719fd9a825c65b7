# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""
Saving and resuming :class:`~pyro_expfam.models.overlapping.fit.OverlappingMixture`
(private helpers of the estimator): plain-data descriptions of cluster
families, membership priors and optimisers given as objects (a saved file
holds no pickled classes), and the fitted state as a flat dict of tensors.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from pyro.optim import PyroOptim
from pyro.optim.lr_scheduler import PyroLRScheduler
from torch import Tensor

from ... import distributions as _distributions
from . import families as _families
from . import generic as _generic
from . import priors as _priors
from .select import single_membership_model

if TYPE_CHECKING:
    from .fit import OverlappingMixture

__all__: list[str] = []


# ---------------------------------------------------------------------------- #
# plain-data descriptions of families, priors and optimisers
# ---------------------------------------------------------------------------- #
def _family_spec(family: _families.ClusterFamily) -> dict[str, Any]:
    spec: dict[str, Any] = {"class": type(family).__name__, "config": dict(family.config())}
    if isinstance(family, _generic.ExpFamClusters):
        t = family._template
        spec["template"] = {
            "class": type(t).__name__,
            "natural_params": [p.detach().clone() for p in t._expanded_natural_params()],
            "fixed": {k: torch.as_tensor(v) for k, v in t._fixed_params().items()},
        }
    return spec


def _family_from_spec(spec: dict) -> _families.ClusterFamily:
    name = spec.get("class")
    cls = getattr(_families, name, None) or getattr(_generic, name, None)
    if not isinstance(cls, type) or not issubclass(cls, _families.ClusterFamily):
        raise ValueError(f"family: unknown cluster family {name!r}")
    config = dict(spec.get("config", {}))
    if cls is _generic.ExpFamClusters:
        tmpl = spec["template"]
        dist_cls = getattr(_distributions, tmpl["class"], None)
        if not isinstance(dist_cls, type) or not issubclass(dist_cls, _distributions.ExponentialFamily):
            raise ValueError(f"family: unknown exponential family {tmpl['class']!r}")
        template = dist_cls._from_natural_params(*tmpl["natural_params"], **tmpl["fixed"])
        return cls(template, **config)
    return cls(**config)


def _optimizer_spec(optimizer) -> Any:
    if not isinstance(optimizer, PyroOptim):
        return optimizer
    args, clip = optimizer.pt_optim_args, optimizer.pt_clip_args
    if callable(args) or callable(clip):
        return None  # per-parameter callables cannot be stored as plain data
    cls = optimizer.pt_optim_constructor
    spec = {"optimizer": f"{cls.__module__}:{cls.__qualname__}", "optim_args": dict(args), "clip_args": dict(clip)}
    if isinstance(optimizer, PyroLRScheduler):
        sch = optimizer.pt_scheduler_constructor
        spec["scheduler"] = f"{sch.__module__}:{sch.__qualname__}"
        spec["scheduler_args"] = dict(optimizer.kwargs)
    return spec


def plain_hyperparameters(est: OverlappingMixture) -> dict[str, Any]:
    """The hyper-parameters given as objects, as the plain data :meth:`OverlappingMixture.save` stores instead."""
    plain: dict[str, Any] = {}
    if not isinstance(est.family, str | dict):
        plain["family"] = _family_spec(est.model_.family)
    if isinstance(est.prior, _priors.MembershipPrior):
        plain["prior"] = {"class": type(est.prior).__name__, "alpha": est.prior.alpha}
    if isinstance(est.optimizer, PyroOptim):
        plain["optimizer"] = _optimizer_spec(est.optimizer)
        if plain["optimizer"] is None:
            warnings.warn(
                "OverlappingMixture.save: an optimiser with callable (per-parameter) arguments cannot be stored "
                "as plain data; the file holds optimizer=None (its state is saved): set_params(optimizer=...) "
                "after load before a warm start",
                UserWarning,
                stacklevel=3,
            )
    if callable(est.init_params):
        plain["init_params"] = "auto"
    return plain


# ---------------------------------------------------------------------------- #
# the fitted state
# ---------------------------------------------------------------------------- #
def get_state(est: OverlappingMixture) -> dict[str, Tensor]:
    """The fitted state of ``est`` as a flat dict of tensors (guide parameters, family hyperparameters, offset)."""
    model = est.model_
    run = est.__dict__.get("_run")
    params = run.params() if run is not None else model.params_
    state = {f"param.{k}": v.detach().clone() for k, v in params.items()}
    state.update({f"family.{k}": v for k, v in model.family.state_dict().items()})
    for key, value in model.family.config().items():
        if isinstance(value, bool | int | float) and not isinstance(value, np.generic):
            state[f"config.{key}"] = torch.tensor(value)
    if est.__dict__.get("_offset") is not None:
        state["offset"] = est._offset.detach().clone()
    if est.__dict__.get("structure_") == "single":
        state["structure_single"] = torch.tensor(True)
    return state


def set_state(est: OverlappingMixture, state: dict[str, Tensor]) -> None:
    """Rebuild ``est.model_`` (and the centring offset) from :func:`get_state`'s dict."""
    family = est._make_family()
    for key, value in state.items():
        if key.startswith("config.") and getattr(family, key[7:], 0) is None:
            setattr(family, key[7:], value.item())  # data-dependent settings (e.g. num_categories)
    family.load_state_dict({k[7:]: v for k, v in state.items() if k.startswith("family.")})
    params = {k[6:]: v for k, v in state.items() if k.startswith("param.")}
    single = bool(state.get("structure_single", torch.tensor(False)))
    if not single and est.background == "learned" and not any(k.startswith("background") for k in params):
        # a file saved before the "background" hyper-parameter existed holds the fixed-background model
        est.background = "fixed"
    model = est._new_model(family)
    if single:
        model = single_membership_model(model)
    est.structure_ = "single" if single else "overlapping"
    ref = next(iter(params.values()))
    model._sets = model._sets.to(dtype=ref.dtype, device=ref.device)
    model.params_ = params
    est.model_ = model
    est._offset = state.get("offset")
    est._run = None
