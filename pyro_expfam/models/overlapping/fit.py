# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""
:class:`OverlappingMixture`: the overlapping mixture model with a small
fitting API (SVI with a progress bar, loss history, early stopping, seeds and
generators, minibatches by subsampling the data plate, save/load/resume).
"""

from __future__ import annotations

import math
import os
import warnings

import pyro
import torch
from pyro.infer import Trace_ELBO, TraceEnum_ELBO
from torch import Tensor

from ... import distributions as _distributions
from ...util import ConvergenceWarning, NotFittedError, _iter_batches, progress_bar
from . import families as _families
from . import generic as _generic
from . import priors as _priors
from .model import OverlappingMixtureModel

__all__ = ["OverlappingMixture"]

_FORMAT_VERSION = 1
#: enumerated (points x sets) entries per step above which ``batch_size="auto"`` subsamples
_AUTO_ENTRIES = 2**26


class OverlappingMixture(OverlappingMixtureModel):
    r"""
    Overlapping mixture model (Heller & Ghahramani 2007) with a fitting API.

    Constructor arguments are those of
    :class:`~pyro_expfam.models.overlapping.model.OverlappingMixtureModel`.
    After :meth:`fit`: ``params_`` (guide parameters), ``loss_history_``
    (negative ELBO per step, on the scale of the full data), ``n_steps_``,
    ``converged_``, and the methods :meth:`membership_probs`,
    :meth:`map_sets`, :meth:`log_likelihood`, :meth:`cluster_distributions`,
    :meth:`sample`, :meth:`save`, :meth:`load`.

    Example::

        >>> from pyro_expfam.datasets.overlapping import make_overlapping_bars
        >>> data = make_overlapping_bars(num_points=500, seed=0)
        >>> m = OverlappingMixture("bernoulli", num_clusters=4).fit(data.X, seed=0)
        >>> m.map_sets(data.X)          # (500, 4) 0/1 memberships
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.loss_history_: list[float] = []
        self.n_steps_ = 0
        self.converged_ = False
        self._optim_state: dict | None = None

    def fit(
        self,
        X,
        num_steps: int = 1000,
        lr: float = 0.05,
        batch_size: int | str | None = "auto",
        seed: int | None = None,
        generator: torch.Generator | None = None,
        progress: bool = False,
        tol: float | None = 1e-5,
        patience: int = 20,
        resume: bool = False,
        n_init: int = 1,
        objective: str = "marginal",
        num_particles: int = 1,
        grow: bool | str = "auto",
        min_usage: float = 0.01,
    ) -> OverlappingMixture:
        """
        Fit by SVI (Adam on the guide's parameters).

        :param X: data, ``(N,) + point shape``; the model follows its device and dtype.
        :param int num_steps: maximum number of SVI steps (per initialisation).
        :param float lr: Adam learning rate.
        :param batch_size: minibatch size (the data plate is subsampled and the
            loss rescaled by ``N / batch_size``); ``None`` for full batches;
            ``"auto"`` (default) uses full batches unless ``N x S`` exceeds
            ``2^26`` enumerated (point, set) pairs per step, and otherwise
            minibatches of ``2^26 / S`` points.
        :param int seed: seed of the random generator (initialisation,
            minibatches, guide samples); the global RNG state is left untouched.
        :param torch.Generator generator: a CPU generator to draw from instead of ``seed``.
        :param bool progress: show a progress bar.
        :param float tol: early stopping: stop when the (smoothed) loss has not
            improved by more than ``tol * |loss|`` for ``patience`` steps;
            ``None`` runs all ``num_steps``.
        :param int patience: see ``tol``.
        :param bool resume: continue from the current parameters and optimiser
            state (e.g. after :meth:`load`) instead of re-initialising.
        :param int n_init: number of initialisations (drawn from the generator);
            the one with the lowest final loss is kept.  The product model has
            local optima; Gaussian clusters in particular (e.g. axis-aligned
            "stripe" clusters whose products form the planted blobs) need
            several initialisations (``n_init=8``).
        :param str objective: ``"marginal"`` (membership sets summed out by the
            fused GEMM/logsumexp of :meth:`marginal_model`, with ``Trace_ELBO``)
            or ``"enum"`` (:meth:`model` with ``TraceEnum_ELBO``); both give
            the same loss.
        :param int num_particles: ELBO particles (useful for ``guide="mean_field"``).
        :param grow: fit by *growing* the number of clusters (``"auto"``: for
            the IBP prior): clusters are added one at a time, in stick-breaking
            order, each stage fitted for up to ``num_steps`` steps starting from
            the previous stage; growth stops when the newest cluster's expected
            number of members falls below ``min_usage * N`` (it was pruned) or at
            the truncation level.  Started with all ``K`` clusters at once, SVI
            tends to split one planted cluster into several co-active partial
            ones; growing avoids that.  With ``guide="mean_field"`` superfluous
            clusters are pruned (their ``pi`` goes to 0); point estimates have no
            such Occam factor.  The clusters never reached keep their initial
            parameters with negligible ``pi``.
        :param float min_usage: see ``grow``.
        :returns: ``self``.
        """
        if resume:
            X = self.setup(X)
        else:  # a new fit: data-dependent hyperparameters from this data (of any shape)
            X = self.family.check_data(X)
            self.family.setup(X)
            self._sets = self._sets.to(dtype=X.dtype, device=X.device)
        _check_int("num_steps", num_steps, 0)
        _check_int("patience", patience, 1)
        _check_int("n_init", n_init, 1)
        _check_int("num_particles", num_particles, 1)
        if not (isinstance(lr, int | float) and math.isfinite(lr) and lr > 0):
            raise ValueError(f"lr must be a positive number, got {lr!r}")
        if tol is not None and not (isinstance(tol, int | float) and tol >= 0):
            raise ValueError(f"tol must be None or a non-negative number, got {tol!r}")
        if objective not in ("marginal", "enum"):
            raise ValueError(f"objective must be 'marginal' or 'enum', got {objective!r}")
        batch_size = self._batch_size(batch_size, X.shape[0])
        if generator is None:
            generator = torch.Generator()
            generator.manual_seed(seed if seed is not None else int(torch.randint(2**62, (1,))))
        elif seed is not None:
            raise ValueError("pass either seed or generator, not both")
        elif not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
        if resume and self.params_ is None:
            raise NotFittedError("resume=True needs a fitted or loaded model")
        if grow == "auto":
            grow = isinstance(self.prior, _priors.IBPPrior)
        if not isinstance(grow, bool):
            raise ValueError(f"grow must be True, False or 'auto', got {grow!r}")
        if not (isinstance(min_usage, int | float) and 0 <= min_usage < 1):
            raise ValueError(f"min_usage must be a number in [0, 1), got {min_usage!r}")
        run_args = (lr, batch_size, generator, progress, tol, patience, objective, num_particles)

        best = None
        for _ in range(1 if resume else n_init):
            if resume:
                history = list(self.loss_history_)
                run = self._run(X, num_steps, *run_args)
            else:
                history = []
                self._optim_state = None
                if grow:
                    run = self._grow(X, num_steps, min_usage, run_args)
                else:
                    self.params_ = self.init_params(X, generator)
                    run = self._run(X, num_steps, *run_args)
            params, optim_state, losses, converged = run
            history += losses
            final = _tail_mean(losses) if losses else math.inf
            if best is None or final < best[0]:
                best = (final, params, optim_state, history, converged, len(losses))
        _, self.params_, self._optim_state, self.loss_history_, self.converged_, steps = best
        self.n_steps_ = (self.n_steps_ if resume else 0) + steps
        self._clear_param_store()
        if tol is not None and not self.converged_ and num_steps > 0:
            warnings.warn(
                f"OverlappingMixture.fit stopped after {num_steps} steps without converging "
                f"(tol={tol}, patience={patience}); increase num_steps or lr",
                ConvergenceWarning,
                stacklevel=2,
            )
        return self

    def _batch_size(self, batch_size, n: int) -> int | None:
        if batch_size == "auto":
            per_point = self.num_membership_sets
            return None if n * per_point <= _AUTO_ENTRIES else max(1, _AUTO_ENTRIES // per_point)
        if batch_size is None:
            return None
        _check_int("batch_size", batch_size, 1)
        return None if batch_size >= n else batch_size

    def _grow(self, X: Tensor, num_steps: int, min_usage: float, run_args: tuple):
        generator = run_args[2]
        n, k_max = X.shape[0], self.num_clusters
        prev, history = None, []
        for k in range(1, k_max + 1):
            m = None if self.max_set_size is None else min(self.max_set_size, k)
            sub = OverlappingMixture(
                self.family, k, prior=self.prior, max_set_size=m, guide=self.guide_type, name=f"{self.name}.grow"
            )
            params = sub.init_params(X, generator)
            if prev is not None:
                pi = prev.membership_prior_
                pi = torch.cat([pi, 0.5 * pi[-1:]]).clamp(1e-4, 1 - 1e-4)
                for key, value in prev.params_.items():
                    params[key][: k - 1] = value
                params[f"{self.prior.site}.loc"] = self.prior.init_value(pi)
            sub.params_ = params
            sub_params, optim_state, losses, converged = sub._run(X, num_steps, *run_args)
            sub.params_ = sub_params
            history += losses
            prev = sub
            if k > 1 and float(sub.membership_probs(X)[:, -1].sum()) < min_usage * n:
                break
        # embed the grown model in the truncation: the clusters not reached get negligible pi
        full = self.init_params(X, generator)
        for key, value in prev.params_.items():
            full[key][: prev.num_clusters] = value
        pi = prev.membership_prior_
        tail = pi[-1] * 1e-3 ** torch.arange(1, k_max - prev.num_clusters + 1, dtype=pi.dtype, device=pi.device)
        full[f"{self.prior.site}.loc"] = self.prior.init_value(torch.cat([pi, tail]).clamp(min=1e-30))
        return full, None, history, converged

    def _run(self, X, num_steps, lr, batch_size, generator, progress, tol, patience, objective, num_particles):
        self._clear_param_store()
        # create the param-store entries from params_ and collect the leaves
        pyro.poutine.block(self.guide)(X)
        names = list(self.params_)
        leaves = [pyro.param(self._param_name(k)).unconstrained() for k in names]
        optim = torch.optim.Adam(leaves, lr=lr)
        if self._optim_state is not None:
            optim.load_state_dict(self._optim_state)
            for group in optim.param_groups:
                group["lr"] = lr
        if objective == "enum":
            elbo, model = (
                TraceEnum_ELBO(max_plate_nesting=1, num_particles=num_particles, vectorize_particles=num_particles > 1),
                self.model,
            )
        else:
            elbo, model = (
                Trace_ELBO(num_particles=num_particles, vectorize_particles=num_particles > 1),
                self.marginal_model,
            )
        n = X.shape[0]
        batches = iter(())
        losses: list[float] = []
        best, since_best, smoothed, converged = math.inf, 0, None, False
        stochastic = batch_size is not None or self.guide_type == "mean_field"
        devices = [X.device] if X.device.type == "cuda" else []
        with (
            torch.random.fork_rng(devices=devices),
            progress_bar(num_steps, progress, desc="OverlappingMixture") as bar,
        ):
            torch.manual_seed(int(torch.randint(2**62, (1,), generator=generator)))
            for step in range(num_steps):
                subsample = None
                if batch_size is not None:
                    subsample = next(batches, None)
                    if subsample is None:
                        batches = _iter_batches(n, batch_size, generator)
                        subsample = next(batches)
                    subsample = subsample.to(X.device)
                loss = elbo.differentiable_loss(model, self.guide, X, subsample=subsample)
                optim.zero_grad()
                loss.backward()
                optim.step()
                value = float(loss.detach())
                if not math.isfinite(value):
                    raise RuntimeError(
                        f"OverlappingMixture.fit: the loss became {value} at step {step}; lower lr or check the data"
                    )
                losses.append(value)
                smoothed = value if smoothed is None or not stochastic else 0.9 * smoothed + 0.1 * value
                bar.update(1)
                if step % 10 == 0:
                    bar.set_postfix(loss=f"{value:.4g}")
                if tol is not None:
                    if smoothed < best - tol * abs(best if math.isfinite(best) else smoothed):
                        best, since_best = smoothed, 0
                    else:
                        since_best += 1
                        if since_best >= patience:
                            converged = True
                            break
        params = {k: leaf.detach().clone() for k, leaf in zip(names, leaves, strict=True)}
        return params, optim.state_dict(), losses, converged

    # ------------------------------------------------------------------ #
    # save / load
    # ------------------------------------------------------------------ #
    def state_dict(self) -> dict:
        """Everything needed to rebuild the fitted model (tensors, numbers and strings only)."""
        self._check_fitted()
        family = self.family
        state = {
            "version": _FORMAT_VERSION,
            "num_clusters": self.num_clusters,
            "max_set_size": self.max_set_size,
            "guide": self.guide_type,
            "prior": type(self.prior).__name__,
            "alpha": self.prior.alpha,
            "family": type(family).__name__,
            "family_config": family.config(),
            "family_state": family.state_dict(),
            "params": {k: v.detach().clone() for k, v in self.params_.items()},
            "optim_state": self._optim_state,
            "loss_history": list(self.loss_history_),
            "n_steps": self.n_steps_,
            "converged": self.converged_,
        }
        if isinstance(family, _generic.ExpFamClusters):
            t = family._template
            state["template"] = {
                "class": type(t).__name__,
                "natural_params": [p.detach().clone() for p in t._expanded_natural_params()],
                "fixed": {k: torch.as_tensor(v) for k, v in t._fixed_params().items()},
            }
        return state

    def save(self, path: str | os.PathLike) -> None:
        """
        Save the fitted state with :func:`torch.save` (loadable with ``weights_only=True``).

        :param path: file path.
        """
        torch.save(self.state_dict(), path)

    @classmethod
    def from_state_dict(cls, state: dict, name: str | None = None) -> OverlappingMixture:
        """Rebuild a model from :meth:`state_dict`."""
        if not isinstance(state, dict) or state.get("version") != _FORMAT_VERSION:
            raise ValueError("not a saved OverlappingMixture state (or an unsupported format version)")
        family_cls = getattr(_families, state["family"], None) or getattr(_generic, state["family"], None)
        if family_cls is None or not issubclass(family_cls, _families.ClusterFamily):
            raise ValueError(f"unknown cluster family {state['family']!r}")
        if family_cls is _generic.ExpFamClusters:
            tmpl = state["template"]
            template = getattr(_distributions, tmpl["class"])._from_natural_params(
                *tmpl["natural_params"], **tmpl["fixed"]
            )
            family = family_cls(template, **state["family_config"])
        else:
            family = family_cls(**state["family_config"])
        prior = getattr(_priors, state["prior"])(state["alpha"])
        model = cls(
            family,
            state["num_clusters"],
            prior=prior,
            max_set_size=state["max_set_size"],
            guide=state["guide"],
            name=name,
        )
        family.load_state_dict(state["family_state"])
        ref = next(iter(state["params"].values()))
        model._sets = model._sets.to(dtype=ref.dtype, device=ref.device)
        model.params_ = dict(state["params"])
        model._optim_state = state["optim_state"]
        model.loss_history_ = list(state["loss_history"])
        model.n_steps_ = state["n_steps"]
        model.converged_ = state["converged"]
        return model

    @classmethod
    def load(cls, path: str | os.PathLike, map_location=None, name: str | None = None) -> OverlappingMixture:
        """
        Load a model saved by :meth:`save`.

        :param path: file path.
        :param map_location: as for :func:`torch.load` (e.g. ``"cpu"``).
        :param str name: param-store prefix of the new instance.
        """
        state = torch.load(path, map_location=map_location, weights_only=True)
        return cls.from_state_dict(state, name=name)


def _check_int(name: str, value, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")


def _tail_mean(losses: list[float], n: int = 10) -> float:
    tail = losses[-n:]
    return sum(tail) / len(tail)
