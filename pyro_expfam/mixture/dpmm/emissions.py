# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
r"""
Conjugate emission families for Dirichlet-process mixtures.

Every emission is written as a *conjugate-exponential* pair.  The likelihood is

.. math::

    \log p(x \mid \theta) = \langle u(x), s(\theta)\rangle + k(x),\qquad
    u(x) = \big(t(x),\, c\big),

with ``t(x)`` the data's sufficient statistics (``S`` columns), ``c`` a constant vector (the coefficients of the
log-normaliser terms, e.g. ``1`` for :math:`-A(\eta)`), ``k`` the log carrier measure and :math:`s(\theta)` the
*prior's* sufficient statistics (``P = S + len(c)`` of them).  The prior and every variational posterior are the
exponential family :math:`q(\theta\mid\phi) \propto \exp\langle\phi, s(\theta)\rangle` with log-partition
:math:`Z(\phi)` and mean parameters :math:`E_\phi[s(\theta)] = \nabla Z(\phi)`.  Hence, for responsibilities ``r``:

- conjugate update (CAVI): :math:`\phi_k = \phi_0 + \sum_n r_{nk}\,u(x_n)`, i.e.
  ``phi0 + [R.T @ T, N_k * c]``;
- expected log-likelihood: ``T @ ES[:, :S].T + ES[:, S:] @ c + k`` (one GEMM);
- :math:`KL(q_\phi\|p_{\phi_0}) = \langle\phi-\phi_0, \nabla Z(\phi)\rangle - Z(\phi) + Z(\phi_0)`;
- natural-gradient step: :math:`\phi \leftarrow (1-\rho)\phi + \rho\,\hat\phi`.

**Z, its gradient and the KL come from the core families.**  Up to a linear change of coordinates,
:math:`q(\theta\mid\phi)` is a family of :mod:`pyro_expfam.distributions` or :mod:`pyro_expfam.conjugate` (the
*core family*: natural parameters :math:`\eta`, statistics :math:`T(\theta)`, log normaliser :math:`A`, log
carrier measure :math:`\langle h, T\rangle + k_0`).  If :math:`s(\theta) = L\,T(\theta)` for a fixed matrix
:math:`L`, then :math:`\langle\phi, s\rangle = \langle L^\top\phi, T\rangle` gives

.. math::

    \eta(\phi) = L^\top\phi - h,\quad Z(\phi) = A(\eta(\phi)) - k_0,\quad
    \nabla Z(\phi) = L\,E_{\eta(\phi)}[T],\quad
    KL(q_\phi\|q_{\phi_0}) = KL_\text{core}(\eta(\phi)\|\eta(\phi_0))

(a Bregman divergence is invariant under affine maps).  An emission states :math:`\eta(\phi)`
(:meth:`~ConjugateEmission.core_natural_params`) and :math:`m\mapsto Lm`
(:meth:`~ConjugateEmission.stats_from_core_mean`); ``Z`` and ``E[s]`` then come from the core's
``_log_normalizer`` and closed-form ``mean_parameters`` (summed over features), and the KL is their Bregman
divergence, equal to :func:`~pyro_expfam.distributions.exp_family.bregman_kl` of the core distributions (tested).
The maps (Gaussian coordinates as in :mod:`~pyro_expfam.mixture.dpmm.gaussian`):

===========  ===============================  ==============================================================
emission     core family                      :math:`\eta(\phi)`
===========  ===============================  ==============================================================
Bernoulli    ``Beta``, one per feature        :math:`(a, b) = (\phi_1 + 1,\ \phi_2 - \phi_1 + 1)`
Categorical  ``Dirichlet``, one per feature   :math:`\alpha = \phi + 1`
Poisson      ``Gamma``, one per feature       :math:`(\alpha - 1, -\beta) = (\phi_1, -\phi_2)`
unit         ``Normal``, one per feature      :math:`(\phi_d, -\kappa/2)`, one :math:`\kappa` tied to all features
diag         ``NormalGamma``, per feature     :math:`(\tau, -\kappa/2, -\beta/2, \gamma)`
full         ``NormalWishart`` (tests only)   :math:`(\tau, -\kappa/2, -B/2, \gamma)`, ``B`` unpacked
===========  ===============================  ==============================================================

The spherical Gaussian has no such map and keeps closed forms (``core_family = None``); the full Gaussian keeps
closed forms for speed, pinned to the core by tests (see :mod:`~pyro_expfam.mixture.dpmm.gaussian`).  A subclass
also supplies ``t``/``k``/``c``, the default prior and, for the Pyro model/guide, a map between :math:`\phi` and
readable "standard" parameters plus the ``pyro.sample`` statements that draw :math:`\theta`.  This module holds
the base class and the discrete families (Bernoulli/Beta, Categorical/Dirichlet, Poisson/Gamma).

**The family layer.**  The data checks, the statistics ``t(x)`` and ``k(x)`` of the discrete families and the
prior's data-dependent default hyper-parameters come from :mod:`pyro_expfam.families` (:meth:`family`, a
:class:`~pyro_expfam.families.ConjugateFamily`), shared with the overlapping model and ``ExpFamMixture``; an
emission adds the CAVI coordinates :math:`\phi` and the Pyro sites.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import pyro
import pyro.distributions as pdist
import torch
from torch import Tensor
from torch.distributions import constraints

from ...distributions import Beta, Dirichlet, Gamma
from ...distributions.exp_family import ExponentialFamily
from ...families import BernoulliFamily, CategoricalFamily, ConjugateFamily, PoissonFamily

__all__ = ["ConjugateEmission", "BernoulliEmission", "CategoricalEmission", "PoissonEmission"]


class ConjugateEmission(ABC):
    """
    Base class of conjugate emissions (see the module docstring for the maths).

    An instance holds the prior hyper-parameters given by the user (``None``
    means a data-dependent default chosen by :meth:`setup`).  :meth:`setup`
    fixes the number of features and returns the prior natural parameter
    ``phi0``; the other methods are pure functions of tensors.
    """

    #: Short name used in messages and fitted-attribute names.
    name: str = "emission"
    #: Names and constraints of the standard parameters of ``q(theta | phi)`` (for the Pyro guide).
    standard_constraints: dict[str, constraints.Constraint] = {}

    n_features: int

    # ----- data (delegated to the family layer) ------------------------- #
    def family(self) -> ConjugateFamily:
        """
        The emission's :class:`~pyro_expfam.families.ConjugateFamily` with the user's prior hyper-parameters
        (the data checks, statistics and default prior come from it).
        """
        raise NotImplementedError

    def check_data(self, X: Tensor) -> None:
        """Raise the family layer's ``ValueError`` if ``X`` is outside the emission's support."""
        self.family().check_data(X)

    def setup(self, X: Tensor) -> Tensor:
        """
        Check ``X`` against the support, fix ``n_features`` and return the
        prior natural parameter ``phi0`` of shape ``(P,)`` (defaults may depend
        on ``X``); it is also stored as :attr:`prior_natural`.

        :param Tensor X: training data ``(N, D)``.
        """
        self.check_data(X)
        self.prior_natural = self._setup(X)
        return self.prior_natural

    @abstractmethod
    def _setup(self, X: Tensor) -> Tensor:
        """Fix dimensions from ``X`` and return ``phi0``."""

    def dims(self) -> dict[str, int]:
        """The dimensions fixed by :meth:`setup` (saved with a fitted model)."""
        return {"n_features": self.n_features}

    def set_dims(self, dims: dict[str, int], prior_natural: Tensor) -> None:
        """Restore the state of :meth:`setup` without data (used when loading a fitted model)."""
        self.n_features = int(dims["n_features"])
        self.prior_natural = prior_natural

    @abstractmethod
    def sufficient_statistics(self, X: Tensor) -> tuple[Tensor, Tensor]:
        """``(T, k)``: statistics ``t(x)`` of shape ``(N, S)`` and log carrier measure ``(N,)``."""

    def training_statistics(self, X: Tensor) -> tuple[Tensor, Tensor]:
        """
        The statistics the fit accumulates (default: :meth:`sufficient_statistics`); the Gaussian emissions add
        ``reg_covar`` to the quadratic statistics here, as scikit-learn adds it to the empirical covariances.
        """
        return self.sufficient_statistics(X)

    @abstractmethod
    def constant_stats(self, dtype: torch.dtype, device: torch.device) -> Tensor:
        """The constant part ``c`` of ``u(x)``, shape ``(P - S,)``."""

    @property
    @abstractmethod
    def n_stats(self) -> int:
        """``S``, the number of data-dependent statistics."""

    # ----- the conjugate family q(theta | phi), via the core family ------ #
    #: Core family that ``q(theta | phi)`` maps to linearly (module docstring); ``None``: closed forms kept.
    core_family: type[ExponentialFamily] | None = None
    #: Number of trailing batch dimensions of the core distribution that index features (summed over).
    core_feature_dims: int = 1

    def core_natural_params(self, phi: Tensor) -> tuple[Tensor, ...]:
        r"""
        :math:`\eta(\phi) = L^\top\phi - h`, the natural parameters of :attr:`core_family`.

        :param Tensor phi: natural parameters ``(..., P)``; returns ``phi.shape[:-1] + features + event`` each.
        """
        raise NotImplementedError(f"{type(self).__name__} has no core family")

    def stats_from_core_mean(self, mean: tuple[Tensor, ...]) -> Tensor:
        r"""
        :math:`E[s(\theta)] = L\,E[T(\theta)]`, shape ``(..., P)``, from the core's ``mean_parameters()``.

        :param tuple mean: ``core_distribution(phi).mean_parameters()``.
        """
        raise NotImplementedError(f"{type(self).__name__} has no core family")

    def core_distribution(self, phi: Tensor, eta: tuple[Tensor, ...] | None = None) -> ExponentialFamily:
        """
        ``q(theta | phi)`` as a :attr:`core_family` distribution, batch shape ``phi.shape[:-1]`` + features.

        :param Tensor phi: natural parameters ``(..., P)``.
        :param tuple eta: ``core_natural_params(phi)`` if already computed.
        """
        eta = self.core_natural_params(phi) if eta is None else eta
        return self.core_family._from_natural_params(*eta, validate_args=False)

    def _sum_features(self, value: Tensor) -> Tensor:
        return value.sum(tuple(range(-self.core_feature_dims, 0))) if self.core_feature_dims else value

    def log_partition(self, phi: Tensor) -> Tensor:
        r"""
        :math:`Z(\phi)`, shape ``(...)`` for ``phi`` of shape ``(..., P)``.  Default: the core's ``_log_normalizer``
        and ``_carrier_constant``, :math:`\sum_\text{features} A(\eta(\phi)) - k_0`.
        """
        eta = self.core_natural_params(phi)
        core = self.core_distribution(phi, eta)
        return self._sum_features(core._log_normalizer(*eta) - core._carrier_constant)

    def expected_stats(self, phi: Tensor) -> Tensor:
        r"""
        :math:`E_\phi[s(\theta)] = \nabla Z(\phi)`, shape ``(..., P)``.  Default: the core's
        closed-form ``mean_parameters`` mapped by :meth:`stats_from_core_mean`.
        """
        return self.stats_from_core_mean(self.core_distribution(phi).mean_parameters())

    def merge_log_partition_gain(self, phi: Tensor, phi0: Tensor, ii: Tensor, jj: Tensor) -> Tensor:
        r"""
        Change of :math:`\sum_k Z(\phi_k)` when, for each pair ``(ii[m], jj[m])``, component ``i`` becomes
        :math:`\phi_i + \phi_j - \phi_0` and component ``j`` returns to the prior (the merge moves of
        :func:`~pyro_expfam.mixture.dpmm.cavi.merge_and_sort`).  Emissions whose components share parameters
        (the tied Gaussian) override it with the change of their joint log partition.

        :param Tensor phi: natural parameters ``(K, P)``.
        :param Tensor phi0: prior ``(P,)``.
        :param Tensor ii: first components of the pairs ``(M,)``.
        :param Tensor jj: second components ``(M,)``.
        :rtype: Tensor of shape ``(M,)``.
        """
        z0 = self.log_partition(phi0)
        zk = self.log_partition(phi) - z0
        return self.log_partition(phi[ii] + phi[jj] - phi0) - z0 - zk[ii] - zk[jj]

    def kl(self, phi: Tensor, phi0: Tensor, expected: Tensor | None = None) -> Tensor:
        r"""
        :math:`KL(q(\theta|\phi)\,\|\,q(\theta|\phi_0)) = \langle\phi-\phi_0, \nabla Z\rangle - Z(\phi) + Z(\phi_0)`,
        shape ``(...)``: the Bregman divergence of the core's log normaliser (the affine map leaves it unchanged),
        equal to :func:`bregman_kl` of :meth:`core_distribution` (tested) and computed in ``phi`` coordinates,
        which skips rebuilding the core's natural parameters in the CAVI loop.

        :param Tensor phi: natural parameters ``(..., P)``.
        :param Tensor phi0: prior natural parameters ``(P,)``.
        :param Tensor expected: ``expected_stats(phi)`` if already computed.
        """
        expected = self.expected_stats(phi) if expected is None else expected
        return ((phi - phi0) * expected).sum(-1) - self.log_partition(phi) + self.log_partition(phi0)

    # ----- standard parameters, Pyro sites, readable summaries ---------- #
    @abstractmethod
    def to_standard(self, phi: Tensor) -> dict[str, Tensor]:
        """Standard parameters of ``q(theta | phi)`` (keys of :attr:`standard_constraints`)."""

    @abstractmethod
    def from_standard(self, params: dict[str, Tensor]) -> Tensor:
        """Inverse of :meth:`to_standard`."""

    @property
    def guide_constraints(self) -> dict[str, constraints.Constraint]:
        """
        Constraints of the Pyro guide's parameters: a parametrisation of
        ``q(theta | phi)`` chosen so that Adam's roughly scale-free steps suit
        every coordinate (means and concentrations rather than raw rates).
        Default: the standard parameters.
        """
        return self.standard_constraints

    def to_guide(self, phi: Tensor) -> dict[str, Tensor]:
        """Guide parameters (keys of :attr:`guide_constraints`) of ``q(theta | phi)``."""
        return self.to_standard(phi)

    def guide_to_standard(self, params: dict[str, Tensor]) -> dict[str, Tensor]:
        """Standard parameters from guide parameters."""
        return params

    @abstractmethod
    def sample_theta(self, prefix: str, params: dict[str, Tensor]) -> dict[str, Tensor]:
        """
        ``pyro.sample`` the component parameters from ``q(theta | standard params)``
        (called inside the components plate); sites are named ``prefix + "_" + key``.
        """

    @abstractmethod
    def theta_stats(self, theta: dict[str, Tensor]) -> Tensor:
        """:math:`s(\\theta)` of shape ``(K, P)``, so that ``log p(x|theta) = <u(x), s(theta)> + k(x)``."""

    @abstractmethod
    def observation_dist(self, theta: dict[str, Tensor], z: Tensor) -> pdist.TorchDistribution:
        """Distribution of ``x`` given component parameters and labels ``z`` (event shape ``(D,)``)."""

    @abstractmethod
    def summary(self, phi: Tensor) -> dict[str, Tensor]:
        """Readable point summaries of the components (e.g. ``means_``, ``covariances_``)."""

    @abstractmethod
    def point_theta(self, phi: Tensor) -> dict[str, Tensor]:
        """Point estimates of the component parameters (posterior means), keyed as :meth:`sample_theta`'s output."""

    # ----- the Pyro model protocol (see .model) -------------------------- #
    def model_theta(self, prefix: str, n_components: int) -> dict[str, Tensor]:
        """``pyro.sample`` the component parameters from the prior (inside the components plate)."""
        params = self.to_standard(self.prior_natural)
        return self.sample_theta(prefix, {k: v.expand((n_components,) + v.shape) for k, v in params.items()})

    def log_likelihood(self, X: Tensor, theta: dict[str, Tensor]) -> Tensor:
        """``(N, K)`` log-likelihood of every point under every component (one GEMM)."""
        T, k = self.sufficient_statistics(X)
        return self.log_likelihood_matrix(T, k, self.theta_stats(theta))

    # ----- generic helpers ---------------------------------------------- #
    def log_likelihood_matrix(self, T: Tensor, k: Tensor, s: Tensor) -> Tensor:
        """
        ``(N, K)`` matrix of :math:`\\langle u(x_n), s_k\\rangle + k(x_n)` as one GEMM.

        :param Tensor T: statistics ``(N, S)``.
        :param Tensor k: log carrier measure ``(N,)``.
        :param Tensor s: ``theta_stats`` or ``expected_stats``, shape ``(K, P)``.
        """
        S = self.n_stats
        c = self.constant_stats(T.dtype, T.device)
        return torch.addmm((s[:, S:] @ c).unsqueeze(0), T, s[:, :S].T) + k.unsqueeze(1)

    def update(self, phi0: Tensor, stats: Tensor, counts: Tensor) -> Tensor:
        """
        Conjugate update :math:`\\phi_0 + [\\sum_n r_{nk} t(x_n), N_k c]`.

        :param Tensor phi0: prior ``(P,)``.
        :param Tensor stats: ``R.T @ T``, shape ``(K, S)``.
        :param Tensor counts: ``N_k``, shape ``(K,)``.
        """
        c = self.constant_stats(stats.dtype, stats.device)
        return phi0 + torch.cat([stats, counts.unsqueeze(1) * c], dim=1)


class BernoulliEmission(ConjugateEmission):
    r"""
    Independent Bernoulli features with a Beta prior per feature:
    :math:`p_{kd}\sim\mathrm{Beta}(a_0, b_0)`, :math:`x_{nd}\sim\mathrm{Bernoulli}(p_{kd})`.

    Coordinates: :math:`s(\theta) = (\mathrm{logit}\,p, \log(1-p))`,
    :math:`u(x) = (x, 1)`, :math:`\phi = (a-1, a+b-2)`.  Core family: :class:`~pyro_expfam.distributions.Beta`.

    :param float a: prior Beta concentration of ones (default 1).
    :param float b: prior Beta concentration of zeros (default 1).
    """

    name = "bernoulli"
    standard_constraints = {"a": constraints.positive, "b": constraints.positive}

    def __init__(self, a: float = 1.0, b: float = 1.0) -> None:
        self.a, self.b = a, b
        self.family()  # validates the hyper-parameters

    def family(self) -> BernoulliFamily:
        return BernoulliFamily(self.a, self.b)

    def _setup(self, X: Tensor) -> Tensor:
        self.n_features = X.shape[1]
        return self.from_standard(self.family().prior(X))

    @property
    def n_stats(self) -> int:
        return self.n_features

    def sufficient_statistics(self, X: Tensor) -> tuple[Tensor, Tensor]:
        return self.family().sufficient_statistics(X)

    def constant_stats(self, dtype, device) -> Tensor:
        return torch.ones(self.n_features, dtype=dtype, device=device)

    def _ab(self, phi: Tensor) -> tuple[Tensor, Tensor]:
        D = self.n_features
        a = phi[..., :D] + 1
        return a, phi[..., D:] - phi[..., :D] + 1

    # core family Beta(a, b): T = (log p, log(1-p)), s = (T1 - T2, T2), carrier <(-1, -1), T>
    core_family = Beta

    def core_natural_params(self, phi: Tensor) -> tuple[Tensor, Tensor]:
        return self._ab(phi)

    def stats_from_core_mean(self, mean: tuple[Tensor, Tensor]) -> Tensor:
        m_log_p, m_log1m_p = mean
        return torch.cat([m_log_p - m_log1m_p, m_log1m_p], dim=-1)

    def to_standard(self, phi: Tensor) -> dict[str, Tensor]:
        a, b = self._ab(phi)
        return {"a": a, "b": b}

    def from_standard(self, params: dict[str, Tensor]) -> Tensor:
        a, b = params["a"], params["b"]
        return torch.cat([a - 1, a + b - 2], dim=-1)

    guide_constraints = {"mean": constraints.unit_interval, "total": constraints.positive}

    def to_guide(self, phi: Tensor) -> dict[str, Tensor]:
        a, b = self._ab(phi)
        return {"mean": a / (a + b), "total": a + b}

    def guide_to_standard(self, params: dict[str, Tensor]) -> dict[str, Tensor]:
        mean, total = params["mean"], params["total"]
        return {"a": mean * total, "b": (1 - mean) * total}

    def sample_theta(self, prefix: str, params: dict[str, Tensor]) -> dict[str, Tensor]:
        p = pyro.sample(f"{prefix}_probs", Beta(params["a"], params["b"]).to_event(1))
        return {"probs": p}

    def theta_stats(self, theta: dict[str, Tensor]) -> Tensor:
        tiny = torch.finfo(theta["probs"].dtype).tiny
        p = theta["probs"].clamp(tiny, 1 - torch.finfo(theta["probs"].dtype).eps)
        log1m = torch.log1p(-p)
        return torch.cat([p.log() - log1m, log1m], dim=-1)

    def observation_dist(self, theta: dict[str, Tensor], z: Tensor) -> pdist.TorchDistribution:
        return pdist.Bernoulli(probs=theta["probs"][z]).to_event(1)

    def summary(self, phi: Tensor) -> dict[str, Tensor]:
        a, b = self._ab(phi)
        return {"probs_": a / (a + b)}

    def point_theta(self, phi: Tensor) -> dict[str, Tensor]:
        return {"probs": self.summary(phi)["probs_"]}


class CategoricalEmission(ConjugateEmission):
    r"""
    Independent categorical features (integer codes in ``[0, n_categories)``)
    with a symmetric Dirichlet prior per feature:
    :math:`p_{kd}\sim\mathrm{Dirichlet}(\alpha_0 1_V)`.

    Coordinates: :math:`s(\theta)=\log p` (flattened ``D*V``), :math:`u(x)` the
    one-hot code, no constant part, :math:`\phi = \alpha - 1`.
    Core family: :class:`~pyro_expfam.distributions.Dirichlet`.

    :param float concentration: Dirichlet concentration per category (default 1).
    :param int n_categories: number of categories ``V`` (default: ``max(X) + 1``).
    """

    name = "categorical"
    standard_constraints = {"concentration": constraints.positive}

    def __init__(self, concentration: float = 1.0, n_categories: int | None = None) -> None:
        self.concentration, self.n_categories = concentration, n_categories
        self.family()  # validates the hyper-parameters

    def family(self) -> CategoricalFamily:
        """The family layer's Categorical; after :meth:`setup` its number of categories is the fitted ``V``."""
        return CategoricalFamily(self.concentration, self.__dict__.get("V", self.n_categories))

    def _setup(self, X: Tensor) -> Tensor:
        self.__dict__.pop("V", None)
        family = self.family()
        self.n_features = X.shape[1]
        self.V = family.n_categories_for(X)
        return self.from_standard(family.prior(X))

    @property
    def n_stats(self) -> int:
        return self.n_features * self.V

    def sufficient_statistics(self, X: Tensor) -> tuple[Tensor, Tensor]:
        family = self.family()
        family.check_data(X)  # codes beyond the V categories seen at fit time
        return family.sufficient_statistics(X)

    def constant_stats(self, dtype, device) -> Tensor:
        return torch.zeros(0, dtype=dtype, device=device)

    def _alpha(self, phi: Tensor) -> Tensor:
        return (phi + 1).reshape(phi.shape[:-1] + (self.n_features, self.V))

    # core family Dirichlet(alpha) per feature: T = log p = s, carrier <-1, T>
    core_family = Dirichlet

    def core_natural_params(self, phi: Tensor) -> tuple[Tensor]:
        return (self._alpha(phi),)

    def stats_from_core_mean(self, mean: tuple[Tensor]) -> Tensor:
        return mean[0].flatten(-2)

    def to_standard(self, phi: Tensor) -> dict[str, Tensor]:
        return {"concentration": self._alpha(phi)}

    def from_standard(self, params: dict[str, Tensor]) -> Tensor:
        return params["concentration"].flatten(-2) - 1

    guide_constraints = {"mean": constraints.simplex, "total": constraints.positive}

    def to_guide(self, phi: Tensor) -> dict[str, Tensor]:
        a = self._alpha(phi)
        total = a.sum(-1)
        return {"mean": a / total.unsqueeze(-1), "total": total}

    def guide_to_standard(self, params: dict[str, Tensor]) -> dict[str, Tensor]:
        return {"concentration": params["mean"] * params["total"].unsqueeze(-1)}

    def sample_theta(self, prefix: str, params: dict[str, Tensor]) -> dict[str, Tensor]:
        return {"probs": pyro.sample(f"{prefix}_probs", Dirichlet(params["concentration"]).to_event(1))}

    def theta_stats(self, theta: dict[str, Tensor]) -> Tensor:
        p = theta["probs"]
        return p.clamp_min(torch.finfo(p.dtype).tiny).log().flatten(-2)

    def observation_dist(self, theta: dict[str, Tensor], z: Tensor) -> pdist.TorchDistribution:
        return _FloatCategorical(probs=theta["probs"][z]).to_event(1)

    def summary(self, phi: Tensor) -> dict[str, Tensor]:
        a = self._alpha(phi)
        return {"probs_": a / a.sum(-1, keepdim=True)}

    def point_theta(self, phi: Tensor) -> dict[str, Tensor]:
        return {"probs": self.summary(phi)["probs_"]}


class _FloatCategorical(pdist.Categorical):
    """Categorical whose samples are floating codes (the estimators work on floating data)."""

    def sample(self, sample_shape=torch.Size()):
        return super().sample(sample_shape).to(self.probs.dtype)


class PoissonEmission(ConjugateEmission):
    r"""
    Independent Poisson counts with a Gamma prior per feature:
    :math:`\lambda_{kd}\sim\mathrm{Gamma}(a_0, b_0)`.

    Coordinates: :math:`s(\theta) = (\log\lambda, -\lambda)`, :math:`u(x) = (x, 1)`,
    :math:`k(x) = -\sum_d\log x_d!`, :math:`\phi = (a-1, b)`.  Core family: :class:`~pyro_expfam.distributions.Gamma`.

    :param float shape: prior Gamma shape (default 1).
    :param float rate: prior Gamma rate (default ``shape / mean(X)`` per
        feature, so the prior mean is the data mean).
    """

    name = "poisson"
    standard_constraints = {"shape": constraints.positive, "rate": constraints.positive}

    def __init__(self, shape: float = 1.0, rate: float | None = None) -> None:
        self.shape, self.rate = shape, rate
        self.family()  # validates the hyper-parameters

    def family(self) -> PoissonFamily:
        return PoissonFamily(self.shape, self.rate)

    def _setup(self, X: Tensor) -> Tensor:
        self.n_features = X.shape[1]
        return self.from_standard(self.family().prior(X))

    @property
    def n_stats(self) -> int:
        return self.n_features

    def sufficient_statistics(self, X: Tensor) -> tuple[Tensor, Tensor]:
        return self.family().sufficient_statistics(X)

    def constant_stats(self, dtype, device) -> Tensor:
        return torch.ones(self.n_features, dtype=dtype, device=device)

    # core family Gamma per feature: T = (log lam, lam), s = (T1, -T2), eta = (a - 1, -b), carrier 0
    core_family = Gamma

    def core_natural_params(self, phi: Tensor) -> tuple[Tensor, Tensor]:
        D = self.n_features
        return phi[..., :D], -phi[..., D:]

    def stats_from_core_mean(self, mean: tuple[Tensor, Tensor]) -> Tensor:
        m_log, m_lam = mean
        return torch.cat([m_log, -m_lam], dim=-1)

    def to_standard(self, phi: Tensor) -> dict[str, Tensor]:
        D = self.n_features
        return {"shape": phi[..., :D] + 1, "rate": phi[..., D:]}

    def from_standard(self, params: dict[str, Tensor]) -> Tensor:
        return torch.cat([params["shape"] - 1, params["rate"]], dim=-1)

    guide_constraints = {"shape": constraints.positive, "mean": constraints.positive}

    def to_guide(self, phi: Tensor) -> dict[str, Tensor]:
        s = self.to_standard(phi)
        return {"shape": s["shape"], "mean": s["shape"] / s["rate"]}

    def guide_to_standard(self, params: dict[str, Tensor]) -> dict[str, Tensor]:
        return {"shape": params["shape"], "rate": params["shape"] / params["mean"]}

    def sample_theta(self, prefix: str, params: dict[str, Tensor]) -> dict[str, Tensor]:
        return {"rate": pyro.sample(f"{prefix}_rate", Gamma(params["shape"], params["rate"]).to_event(1))}

    def theta_stats(self, theta: dict[str, Tensor]) -> Tensor:
        lam = theta["rate"]
        return torch.cat([lam.clamp_min(torch.finfo(lam.dtype).tiny).log(), -lam], dim=-1)

    def observation_dist(self, theta: dict[str, Tensor], z: Tensor) -> pdist.TorchDistribution:
        return pdist.Poisson(theta["rate"][z]).to_event(1)

    def summary(self, phi: Tensor) -> dict[str, Tensor]:
        s = self.to_standard(phi)
        return {"rates_": s["shape"] / s["rate"]}

    def point_theta(self, phi: Tensor) -> dict[str, Tensor]:
        return {"rate": self.summary(phi)["rates_"]}
