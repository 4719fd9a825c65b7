# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""
The SVI training loop of :class:`~pyro_expfam.models.overlapping.fit.OverlappingMixture`
(private helpers of the estimator):

- fresh copies of the ``optimizer`` hyper-parameter (any :mod:`pyro.optim`
  optimiser or scheduler) and a private Pyro param store per fit;
- early stopping on the (smoothed) loss;
- one resumable SVI run on an
  :class:`~pyro_expfam.models.overlapping.model.OverlappingMixtureModel`
  (minibatches, guide randomness and scheduler steps drawn from the
  estimator's generator; its whole state exportable for a bit-identical
  warm start);
- the IBP prior's growth, cluster by cluster.
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pyro
import pyro.optim
import torch
from pyro.infer import SVI, Trace_ELBO, TraceEnum_ELBO
from pyro.optim import PyroOptim
from pyro.optim.lr_scheduler import PyroLRScheduler
from torch import Tensor

from ...util import clone_nested, progress_bar
from .model import OverlappingMixtureModel

if TYPE_CHECKING:
    from .fit import OverlappingMixture

__all__: list[str] = []


# ---------------------------------------------------------------------------- #
# optimisers and the param store
# ---------------------------------------------------------------------------- #
def _import_class(path: str) -> type:
    module, _, qualname = path.partition(":")
    if not (module.startswith("torch.optim") or module.startswith("pyro.optim")) or not qualname.isidentifier():
        raise ValueError(f"optimizer: refusing to import {path!r} (only torch.optim and pyro.optim classes)")
    return getattr(importlib.import_module(module), qualname)


def _make_optimizer(optimizer) -> PyroOptim:
    """A fresh (stateless) copy of the ``optimizer`` hyper-parameter; the user's object is never mutated."""
    if optimizer is None:
        return pyro.optim.Adam({"lr": 0.05})
    if isinstance(optimizer, dict):
        try:
            optim_cls = _import_class(optimizer["optimizer"])
            args, clip = dict(optimizer.get("optim_args", {})), dict(optimizer.get("clip_args", {}))
            if optimizer.get("scheduler"):
                spec = {"optimizer": optim_cls, "optim_args": args, **optimizer.get("scheduler_args", {})}
                return PyroLRScheduler(_import_class(optimizer["scheduler"]), spec, clip)
            return PyroOptim(optim_cls, args, clip)
        except (KeyError, AttributeError, ImportError, TypeError) as e:
            raise ValueError(f"optimizer: not a valid optimiser description {optimizer!r} ({e})") from e
    if isinstance(optimizer, PyroOptim):
        fresh = copy.copy(optimizer)
        fresh.optim_objs, fresh.grad_clip, fresh._state_waiting_to_be_consumed = {}, {}, {}
        if isinstance(optimizer, PyroLRScheduler):
            fresh.kwargs = dict(optimizer.kwargs)
        return fresh
    raise ValueError(
        "optimizer must be a pyro.optim optimiser or scheduler (e.g. pyro.optim.Adam({'lr': 0.05}) or "
        "pyro.optim.ExponentialLR({'optimizer': torch.optim.Adam, 'optim_args': {'lr': 0.05}, 'gamma': 0.99})), "
        f"or None for Adam with lr 0.05; got {type(optimizer).__name__}"
    )




@contextlib.contextmanager
def _private_param_store() -> Iterator[None]:
    """Run with an empty Pyro param store; the previous content is put back afterwards, whatever happens."""
    store = pyro.get_param_store()
    saved = store.get_state()
    store.clear()
    try:
        yield
    finally:
        store.clear()
        store.set_state(saved)


# ---------------------------------------------------------------------------- #
# one SVI run
# ---------------------------------------------------------------------------- #
class _Stopper:
    """Early stopping on the (smoothed) loss: ``patience`` steps without a relative improvement of ``tol``."""

    def __init__(self, tol: float, patience: int, smooth: bool):
        self.tol, self.patience, self.smooth = tol, patience, smooth
        self.best, self.since_best, self.smoothed, self.converged = math.inf, 0, None, False

    def update(self, loss: float) -> bool:
        self.smoothed = loss if self.smoothed is None or not self.smooth else 0.9 * self.smoothed + 0.1 * loss
        if self.tol > 0:
            if self.smoothed < self.best - self.tol * abs(self.best if math.isfinite(self.best) else self.smoothed):
                self.best, self.since_best = self.smoothed, 0
            else:
                self.since_best += 1
                self.converged = self.since_best >= self.patience
        return self.converged

    def state(self) -> dict:
        return {"best": self.best, "since_best": self.since_best, "smoothed": self.smoothed}


class _SVIRun:
    """
    SVI on one :class:`OverlappingMixtureModel` (inside the estimator's private
    param store): minibatches drawn from ``generator`` (one permutation per
    epoch), the guide's randomness re-seeded from ``generator`` at every step,
    a scheduler stepped once per epoch, and the whole state (optimiser,
    permutation position, counters) exportable for a bit-identical resume.
    """

    def __init__(self, est: OverlappingMixture, model: OverlappingMixtureModel, X: Tensor, generator):
        self.model, self.X, self.generator = model, X, generator
        model._clear_param_store()  # the guide starts from model.params_, not from an earlier run's store entries
        self.n = X.shape[0]
        self.batch_size = est._batch_size_for(model, self.n)
        self.optim = _make_optimizer(est.optimizer)
        self.is_scheduler = isinstance(self.optim, PyroLRScheduler)
        self.plateau = self.is_scheduler and issubclass(
            self.optim.pt_scheduler_constructor, torch.optim.lr_scheduler.ReduceLROnPlateau
        )
        particles = int(est.num_particles)
        if est.objective == "enum":
            elbo = TraceEnum_ELBO(max_plate_nesting=1, num_particles=particles, vectorize_particles=particles > 1)
            fn = model.model
        else:
            elbo = Trace_ELBO(max_plate_nesting=1, num_particles=particles, vectorize_particles=particles > 1)
            fn = model.marginal_model
        self.svi = SVI(fn, model.guide, self.optim, elbo)
        self.sampled = model.guide_type == "mean_field"  # a MAP guide and enumerated memberships draw nothing
        self.stopper = _Stopper(
            float(est.tol), int(est.patience), self.batch_size is not None or model.guide_type == "mean_field"
        )
        self.perm: Tensor | None = None
        self.frozen = False
        self.pos = 0
        self.steps = 0
        self.epoch_loss = 0.0
        self.epoch_len = 1 if self.batch_size is None else math.ceil(self.n / self.batch_size)

    def step(self) -> float:
        if self.frozen:  # the loss at the initial parameters, no update (an IBP fit started by MAP-EM)
            return self._step(self.svi.evaluate_loss)
        return self._step(self.svi.step)

    def _step(self, fn) -> float:
        subsample = None
        if self.batch_size is not None:
            if self.perm is None or self.pos >= self.n:
                self.perm, self.pos = torch.randperm(self.n, generator=self.generator), 0
            subsample = self.perm[self.pos : self.pos + self.batch_size].to(self.X.device)
            self.pos += self.batch_size
        try:
            if self.sampled:  # the guide draws from torch's global RNG: fork it, seeded from the estimator's generator
                devices = [self.X.device] if self.X.device.type == "cuda" else []
                with torch.random.fork_rng(devices=devices):
                    _seed_device_rng(int(torch.randint(2**62, (1,), generator=self.generator)), self.X.device)
                    loss = fn(self.X, subsample=subsample)
            else:
                loss = fn(self.X, subsample=subsample)
        except ValueError as e:
            if "invalid values" in str(e) or "nan" in str(e).lower():
                raise FloatingPointError(
                    f"OverlappingMixture: the parameters became NaN or infinite at SVI step {self.steps + 1} "
                    "(the optimisation diverged): lower the learning rate (optimizer=pyro.optim.Adam({'lr': ...})) "
                    "or fit in float64"
                ) from e
            raise
        self.steps += 1
        self.epoch_loss += loss / self.epoch_len
        if self.steps % self.epoch_len == 0:
            if self.is_scheduler:
                self.optim.step(self.epoch_loss) if self.plateau else self.optim.step()
            self.epoch_loss = 0.0
        return loss

    def params(self) -> dict[str, Tensor]:
        store = pyro.get_param_store()
        return {
            k: store[self.model._param_name(k)].detach().clone() if self.model._param_name(k) in store else v.clone()
            for k, v in self.model.params_.items()
        }

    def state(self) -> dict[str, Any]:
        store = pyro.get_param_store()
        optim = {}
        for key in self.model.params_:
            name = self.model._param_name(key)
            leaf = store._params.get(name)
            if leaf is not None and leaf in self.optim.optim_objs:
                optim[key] = clone_nested(_optim_state_dict(self.optim.optim_objs[leaf]))
        return {
            "optim": optim,
            "perm": None if self.perm is None else self.perm.clone(),
            "pos": self.pos,
            "steps": self.steps,
            "epoch_loss": self.epoch_loss,
            "stopper": self.stopper.state(),
        }

    def load(self, state: dict[str, Any]) -> None:
        if not state:
            return
        self.optim.set_state({self.model._param_name(k): clone_nested(v) for k, v in state["optim"].items()})
        self.perm, self.pos = state["perm"], int(state["pos"])
        self.steps, self.epoch_loss = int(state["steps"]), float(state["epoch_loss"])
        self.stopper.__dict__.update(state["stopper"])


def _optim_state_dict(optimizer) -> dict:
    if hasattr(optimizer, "optimizer"):  # a torch scheduler wrapping its optimiser, as pyro.optim stores it
        return {"scheduler": optimizer.state_dict(), "optimizer": optimizer.optimizer.state_dict()}
    return optimizer.state_dict()


def _seed_device_rng(seed: int, device: torch.device) -> None:
    """Seed the global RNG(s) the guide draws from: the CPU one, and the data's CUDA device's (only that one)."""
    torch.default_generator.manual_seed(seed)
    if device.type == "cuda":
        torch.cuda.default_generators[
            device.index if device.index is not None else torch.cuda.current_device()
        ].manual_seed(seed)


# ---------------------------------------------------------------------------- #
# growth for the IBP prior
# ---------------------------------------------------------------------------- #
def _embed(params: dict[str, Tensor], smaller: dict[str, Tensor]) -> None:
    """Copy a smaller model's parameters into the first clusters of ``params`` (whole sites not indexed by cluster)."""
    for key, value in smaller.items():
        if params[key].shape == value.shape:
            params[key] = value.clone()
        else:
            params[key][: value.shape[0]] = value


def grow_clusters(
    est: OverlappingMixture, model: OverlappingMixtureModel, X: Tensor, generator, strategy
) -> tuple[dict[str, Tensor], int]:
    """
    Fit models of 1, 2, ... clusters (``est``'s settings, initial parameters from ``strategy``), each started from
    the previous one, until the newest cluster's expected membership falls below ``est.min_usage * N``; embed the
    last in ``model``.  Returns the initial parameters of ``model`` and the SVI steps spent.
    """
    n, k_max, site = X.shape[0], model.num_clusters, model.prior.site
    prev, steps, pruned = None, 0, False
    for k in range(1, k_max):
        m = None if est.max_set_size is None else min(int(est.max_set_size), k)
        sub = est._new_model(copy.deepcopy(model.family), k, m)
        sub.setup(X)
        params = strategy(sub, X, generator)
        if prev is not None:
            pi = prev.membership_prior_
            _embed(params, prev.params_)
            params[f"{site}.loc"] = sub.prior.init_value(torch.cat([pi, 0.5 * pi[-1:]]).clamp(1e-4, 1 - 1e-4))
        sub.params_ = params
        run = _SVIRun(est, sub, X, generator)
        desc = f"{type(est).__name__} init {est._init_count}/{int(est.n_init)}: grow {k}/{k_max} clusters"
        with progress_bar(int(est.max_iter), enabled=bool(est.verbose), desc=desc) as bar:
            for _ in range(int(est.max_iter)):
                loss = run.step()
                bar.update(1)
                if run.stopper.update(loss):
                    break
        steps += run.steps
        sub.params_ = run.params()
        sub._clear_param_store()
        prev = sub
        if k > 1 and float(sub.membership_probs(X)[:, -1].sum()) < float(est.min_usage) * n:
            pruned = True
            break
    full = strategy(model, X, generator)
    kp = prev.num_clusters
    _embed(full, prev.params_)
    pi = prev.membership_prior_
    if pruned:  # the clusters never reached get negligible pi (decreasing, as the stick-breaking prior wants)
        tail = pi[-1] * 1e-3 ** torch.arange(1, k_max - kp + 1, dtype=pi.dtype, device=pi.device)
    else:  # the last cluster joins as in a growth stage; the main loop fits the full model
        tail = 0.5 * pi[-1:]
    full[f"{site}.loc"] = model.prior.init_value(torch.cat([pi, tail]).clamp(1e-30, 1 - 1e-4))
    return full, steps
