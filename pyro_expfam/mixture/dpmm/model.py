# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
r"""
The truncated stick-breaking Dirichlet-process mixture as a Pyro model/guide
pair, fitted with :class:`~pyro.infer.SVI` and
:class:`~pyro.infer.TraceEnum_ELBO` (the assignments ``z`` are enumerated
exactly, never sampled).

The likelihood of every point under every component is one matrix,
``L = T @ s(theta)[:, :S].T + ...`` (see :mod:`~pyro_expfam.mixture.dpmm.emissions`), and the
enumerated observation is ``pyro.factor(L[n, z_n])``: enumeration reaches the
GEMM form instead of broadcasting ``K x N x D`` densities.

The emission is any object with

- ``model_theta(prefix, K) -> dict``: ``pyro.sample`` the component parameters
  from their prior (called inside the components plate);
- ``log_likelihood(X, theta) -> (N, K)``: log-density of every point under every component;
- ``observation_dist(theta, z)``: distribution of ``x`` given labels (for
  generating data with ``X=None``, e.g. under :class:`~pyro.infer.Predictive`).

:class:`~.emissions.ConjugateEmission` provides all three, and
:meth:`DPMixtureModel.guide` is then the mean-field family of the CAVI fit
(Beta sticks, conjugate ``q(theta_k)``), so both optimise the same objective.
For a non-conjugate emission use an autoguide on the model with ``z`` hidden,
e.g. ``AutoNormal(poutine.block(m.model, hide=[m.z_name]))``.

Example::

    >>> from pyro.infer import SVI, TraceEnum_ELBO
    >>> from pyro_expfam.datasets.blobs import make_blobs
    >>> from pyro_expfam.mixture.dpmm import FullGaussianEmission, stick_posterior
    >>> X, _ = make_blobs(200, 2, 3, random_state=0)
    >>> em = FullGaussianEmission()
    >>> phi0 = em.setup(X)
    >>> m = DPMixtureModel(em, n_components=5, alpha=1.0)
    >>> counts = torch.full((5,), 40.0)
    >>> T, _ = em.sufficient_statistics(X)
    >>> m.set_variational_params(em.update(phi0, counts[:, None] * T[:5], counts), stick_posterior(counts, 1.0))
    >>> svi = SVI(m.model, m.guide, pyro.optim.Adam({"lr": 0.02}), TraceEnum_ELBO(max_plate_nesting=1))
    >>> losses = [svi.step(X) for _ in range(5)]
    >>> phi, sticks = m.variational_params()   # natural parameters, comparable with CAVI
    >>> phi.shape, sticks.shape
    (torch.Size([5, 7]), torch.Size([4, 2]))
    >>> m.clear_params()
"""

from __future__ import annotations

import itertools

import pyro
import torch
from pyro.ops.indexing import Vindex
from torch import Tensor
from torch.distributions import constraints

from ...distributions import Beta, Categorical, Dirichlet
from .emissions import ConjugateEmission

__all__ = ["DPMixtureModel", "mix_weights"]

_ids = itertools.count()


def mix_weights(v: Tensor) -> Tensor:
    """
    Stick-breaking weights :math:`\\pi_k = v_k\\prod_{j<k}(1-v_j)` from ``K-1``
    sticks (the last weight takes the remaining mass).

    :param Tensor v: sticks ``(..., K-1)`` in ``(0, 1)``.
    :rtype: Tensor of shape ``(..., K)``.
    """
    one = torch.ones_like(v[..., :1])
    rest = torch.cat([one, (1 - v).cumprod(-1)], dim=-1)
    return torch.cat([v, one], dim=-1) * rest


class DPMixtureModel:
    """
    Truncated stick-breaking DP mixture: ``v_k ~ Beta(1, alpha)`` for
    ``k < K``, ``theta_k ~`` the emission prior, ``z_n ~ Categorical(pi(v))``
    (enumerated), ``x_n ~ p(x | theta_{z_n})``.

    :param emission: a :class:`~.emissions.ConjugateEmission` after ``setup``,
        or any object with ``model_theta``, ``log_likelihood`` and ``observation_dist``.
    :param int n_components: truncation level ``K >= 2`` (``>= 1`` for finite Dirichlet weights).
    :param float alpha: DP concentration ``> 0`` (the Dirichlet's concentration per component).
    :param str name: prefix of every sample site and ``pyro.param`` (default
        a fresh unique name, so two models never share parameters).
    :param str prior_type: ``"dirichlet_process"`` (stick breaking, default) or ``"dirichlet_distribution"``:
        ``pi ~ Dirichlet(alpha 1_K)`` (site ``name + "_pi"``) with the guide ``q(pi) = Dirichlet(c)``, whose
        ``(K,)`` concentration takes the place of the ``(K-1, 2)`` sticks in :meth:`set_variational_params`.
    """

    def __init__(self, emission, n_components: int, alpha: float, name: str | None = None,
                 prior_type: str = "dirichlet_process") -> None:
        if prior_type not in ("dirichlet_process", "dirichlet_distribution"):
            raise ValueError(f"prior_type must be 'dirichlet_process' or 'dirichlet_distribution', got {prior_type!r}")
        minimum = 2 if prior_type == "dirichlet_process" else 1
        if isinstance(n_components, bool) or not isinstance(n_components, int) or n_components < minimum:
            raise ValueError(f"n_components must be an int >= {minimum}, got {n_components!r}")
        if isinstance(alpha, bool) or not float(alpha) > 0:
            raise ValueError(f"alpha must be a positive number, got {alpha!r}")
        for attr in ("model_theta", "log_likelihood", "observation_dist"):
            if not callable(getattr(emission, attr, None)):
                raise TypeError(f"emission must define {attr}()")
        self.emission = emission
        self.K = n_components
        self.alpha = float(alpha)
        self.name = name if name is not None else f"dpmm{next(_ids)}"
        self.prior_type = prior_type
        self._init: dict[str, Tensor] = {}

    @property
    def _finite(self) -> bool:
        return self.prior_type == "dirichlet_distribution"

    def _weight_param_names(self) -> list[str]:
        if self._finite:
            return [f"{self.name}_weight_conc"]
        return [f"{self.name}_stick_a", f"{self.name}_stick_b"]

    @property
    def z_name(self) -> str:
        """Name of the enumerated assignment site."""
        return f"{self.name}_z"

    def _param_names(self) -> list[str]:
        em = self.emission
        keys = list(em.guide_constraints) if isinstance(em, ConjugateEmission) else []
        return self._weight_param_names() + [f"{self.name}_q_{k}" for k in keys]

    def param_constraints(self) -> dict[str, constraints.Constraint]:
        """The constraint of each ``pyro.param`` of the guide, by its name in the param store."""
        out = dict.fromkeys(self._weight_param_names(), constraints.positive)
        if isinstance(self.emission, ConjugateEmission):
            out.update({f"{self.name}_q_{k}": c for k, c in self.emission.guide_constraints.items()})
        return out

    # ------------------------------------------------------------------ #
    def model(self, X: Tensor | None = None, n_samples: int | None = None, batch_size: int | None = None):
        """
        The generative model.

        :param Tensor X: observed data ``(N, D)``, or ``None`` to generate.
        :param int n_samples: number of points to generate when ``X`` is ``None``.
        :param int batch_size: minibatch size (``pyro.plate`` subsampling; the
            likelihood is scaled by ``N/batch_size``).
        :returns: the generated data when ``X`` is ``None``.
        """
        n, K = self.name, self.K
        if X is None and n_samples is None:
            raise ValueError("pass X (observed data) or n_samples (to generate)")
        ref = self._reference_tensor(X)
        if self._finite:
            pi = pyro.sample(f"{n}_pi", Dirichlet(ref.new_full((K,), self.alpha)))
        else:
            with pyro.plate(f"{n}_sticks", K - 1):
                v = pyro.sample(f"{n}_v", Beta(ref.new_ones(()), ref.new_tensor(self.alpha)))
            pi = mix_weights(v)
        with pyro.plate(f"{n}_components", K):
            theta = self.emission.model_theta(f"{n}_theta", K)
        N = X.shape[0] if X is not None else n_samples
        with pyro.plate(f"{n}_data", N, subsample_size=batch_size, device=ref.device) as idx:
            z = pyro.sample(self.z_name, Categorical(pi), infer={"enumerate": "parallel"})
            if X is None:
                return pyro.sample(f"{n}_x", self.emission.observation_dist(theta, z))
            ll = self.emission.log_likelihood(X[idx], theta)  # (B, K), one GEMM
            pyro.factor(f"{n}_x", Vindex(ll)[torch.arange(idx.numel(), device=ll.device), z])
        return None

    def _reference_tensor(self, X: Tensor | None) -> Tensor:
        if X is not None:
            return X
        phi0 = getattr(self.emission, "prior_natural", None)
        return phi0 if phi0 is not None else torch.zeros(())

    # ------------------------------------------------------------------ #
    def set_variational_params(self, phi: Tensor, sticks: Tensor) -> None:
        """
        Initialise (or reset) the guide at natural parameters ``phi`` ``(K, P)``
        and Beta sticks ``(K-1, 2)``, e.g. from a k-means start or a CAVI fit.
        """
        if not isinstance(self.emission, ConjugateEmission):
            raise TypeError("the built-in guide needs a ConjugateEmission; use an autoguide otherwise")
        store = pyro.get_param_store()
        for name in self._param_names():
            if name in store:
                del store[name]
        if self._finite:
            self._init = {f"{self.name}_weight_conc": sticks.detach().clone()}
        else:
            self._init = {f"{self.name}_stick_a": sticks[:, 0].detach().clone(),
                          f"{self.name}_stick_b": sticks[:, 1].detach().clone()}
        for key, value in self.emission.to_guide(phi.detach()).items():
            self._init[f"{self.name}_q_{key}"] = value.detach().clone()

    def guide(self, X: Tensor | None = None, n_samples: int | None = None, batch_size: int | None = None):
        """
        Mean-field guide: ``q(v_k) = Beta(a_k, b_k)``, ``q(theta_k)`` in the
        emission's conjugate family (``z`` is enumerated in the model).
        Call :meth:`set_variational_params` first.
        """
        if not self._init:
            raise RuntimeError("call set_variational_params(phi, sticks) before using the guide")
        n, K = self.name, self.K
        if self._finite:
            conc = pyro.param(f"{n}_weight_conc", lambda: self._init[f"{n}_weight_conc"],
                              constraint=constraints.positive)
            pyro.sample(f"{n}_pi", Dirichlet(conc))
        else:
            a = pyro.param(f"{n}_stick_a", lambda: self._init[f"{n}_stick_a"], constraint=constraints.positive)
            b = pyro.param(f"{n}_stick_b", lambda: self._init[f"{n}_stick_b"], constraint=constraints.positive)
            with pyro.plate(f"{n}_sticks", K - 1):
                pyro.sample(f"{n}_v", Beta(a, b))
        params = self.emission.guide_to_standard(self._guide_params())
        with pyro.plate(f"{n}_components", K):
            self.emission.sample_theta(f"{n}_theta", params)

    def _guide_params(self) -> dict[str, Tensor]:
        em = self.emission
        return {key: pyro.param(f"{self.name}_q_{key}", lambda key=key: self._init[f"{self.name}_q_{key}"],
                                constraint=c)
                for key, c in em.guide_constraints.items()}

    def variational_params(self) -> tuple[Tensor, Tensor]:
        """The guide's current ``(phi (K, P), sticks (K-1, 2) or Dirichlet concentration (K,))`` (detached)."""
        with torch.no_grad():
            n = self.name
            params = {k: v.detach() for k, v in self._guide_params().items()}
            phi = self.emission.from_standard(self.emission.guide_to_standard(params))
            if self._finite:
                sticks = pyro.param(f"{n}_weight_conc").detach()
            else:
                sticks = torch.stack([pyro.param(f"{n}_stick_a").detach(), pyro.param(f"{n}_stick_b").detach()], 1)
        return phi, sticks

    def clear_params(self) -> None:
        """Remove this model's parameters from Pyro's global param store."""
        store = pyro.get_param_store()
        for name in self._param_names():
            if name in store:
                del store[name]
