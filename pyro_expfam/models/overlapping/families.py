# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
r"""
Cluster families of an overlapping mixture: the conjugate prior on each
cluster's natural parameter :math:`\eta_k`, the always-on background
:math:`\eta_0`, data checks and initialisation.

Every prior is written on real-valued sites whose push-forward is the
conjugate prior (so MAP estimates exist for every hyperparameter and the
mean-field guide is a Normal per site):

- :class:`BernoulliClusters`: :math:`\theta_{kd}\sim\mathrm{Beta}(a, b)` on the
  site ``cluster_logits`` = logit θ; background uniform (logit 0, neutral).
- :class:`NormalClusters` (diagonal covariance): Normal-Gamma per feature,
  log λ ~ log-Gamma, μ | λ ~ Normal(m0, 1/(κ0 λ)); background a broad Normal
  (``background_scale`` data standard deviations).
- :class:`MultivariateNormalClusters` (full covariance): Normal-Wishart, Λ ~
  Wishart through the Bartlett decomposition, μ | Λ ~ MVN(m0, (κ0 Λ)^-1);
  background a broad MVN.
- :class:`CategoricalClusters`: Dirichlet(c) per feature, as normalised
  Gamma variables (site ``cluster_log_weights`` = log g); background uniform.
- :class:`~pyro_expfam.models.overlapping.generic.ExpFamClusters` (any family whose product is exact): the
  Diaconis-Ylvisaker conjugate prior
  :math:`\propto\exp(\nu(\langle\eta,\mu_0\rangle-A(\eta)))`; background the
  data's maximum-likelihood fit tempered by ``background_weight``.

Data-dependent hyperparameters (means, scales) are set from the data by
:meth:`ClusterFamily.setup` (empirical Bayes) and saved with the model.

The data checks, the empirical-Bayes moments (data mean, variances,
covariance) and the k-means++ seeding come from the family layer,
:mod:`pyro_expfam.families` (shared with the DP mixture and
``ExpFamMixture``); this module writes the priors on the model's real-valued
Pyro sites.
"""

from __future__ import annotations

import math

import pyro
import pyro.distributions as dist
import torch
from torch import Tensor

from ...distributions import (
    Bernoulli,
    Categorical,
    ExponentialFamily,
    MultivariateNormal,
    Normal,
    OneHotCategorical,
)
from ...families import BernoulliFamily, CategoricalFamily, GaussianFamily, checks, seeding
from ...util import as_data_tensor
from .likelihood import ExpFamLayout
from .reparam import LogGamma, LogitBeta

__all__ = [
    "BernoulliClusters",
    "CategoricalClusters",
    "ClusterFamily",
    "MultivariateNormalClusters",
    "NormalClusters",
]


def _positive(name: str, value: float) -> float:
    return checks.check_positive(value, name)


_BACKGROUNDS = ("fixed", "learned")


def _check_background(background) -> str:
    if not isinstance(background, str) or background.lower() not in _BACKGROUNDS:
        raise ValueError(f"background must be 'fixed' or 'learned', got {background!r}")
    return background.lower()


def _seeds(x: Tensor, num: int, generator: torch.Generator | None) -> Tensor:
    """k-means++ seeding: ``num`` row indices of ``x`` (:func:`pyro_expfam.families.seeding.kmeans_pp_indices`)."""
    return seeding.kmeans_pp_indices(x, num, generator)


class ClusterFamily:
    """
    Base class: a family of cluster densities with a conjugate prior.

    Subclasses implement :meth:`check_data`, :meth:`_setup` (data-dependent
    hyperparameters and the family template), :meth:`sites`,
    :meth:`_sample_sites`, :meth:`natural_params` and :meth:`init_values`.
    """

    def __init__(self, background: str = "fixed"):
        self.hyper: dict[str, Tensor] = {}
        self.layout: ExpFamLayout | None = None
        self.background_mode = _check_background(background)

    @property
    def learn_background(self) -> bool:
        """Whether the background :math:`\\eta_0` is a learned global site (``background="learned"``)."""
        return self.background_mode == "learned"

    # ---- data ---------------------------------------------------------------
    def check_data(self, X, name: str = "X") -> Tensor:
        """Validate data and return it as a floating tensor of shape ``(N,) + point shape``."""
        raise NotImplementedError

    def setup(self, X: Tensor) -> None:
        """Set the data-dependent hyperparameters (device and dtype follow ``X``)."""
        self.hyper = self._setup(X)
        self._build()

    def _setup(self, X: Tensor) -> dict[str, Tensor]:
        raise NotImplementedError

    def _build(self) -> None:
        self.layout = ExpFamLayout(self.template())

    def template(self) -> ExponentialFamily:
        """A member of the family over one data point (batch shape = feature shape)."""
        raise NotImplementedError

    @property
    def is_setup(self) -> bool:
        """Whether :meth:`setup` has fixed the data-dependent hyperparameters."""
        return self.layout is not None

    def state_dict(self) -> dict[str, Tensor]:
        """The data-dependent hyperparameters."""
        return {k: v.detach().clone() for k, v in self.hyper.items()}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        """Restore the hyperparameters saved by :meth:`state_dict`."""
        self.hyper = dict(state)
        self._build()

    def to(self, dtype: torch.dtype | None = None, device=None) -> None:
        """Move the hyperparameters to ``dtype``/``device`` (in place)."""
        self.hyper = {
            k: v.to(dtype=dtype if v.is_floating_point() else v.dtype, device=device) for k, v in self.hyper.items()
        }
        self._build()

    @property
    def _like(self) -> Tensor:
        return next(iter(self.hyper.values()))

    # ---- priors -------------------------------------------------------------
    def sites(self, num_clusters: int, prefix: str = "cluster") -> dict[str, torch.Size]:
        """
        Global sites of the cluster parameters and their event shapes (names
        start with ``prefix``; the learned background uses ``"background"``
        with one row).
        """
        raise NotImplementedError

    def _sample_sites(self, num_clusters: int, prefix: str = "cluster") -> dict[str, Tensor]:
        raise NotImplementedError

    def natural_params(self, values: dict[str, Tensor], prefix: str = "cluster") -> tuple[Tensor, ...]:
        """Per-cluster natural parameters (``batch + (K,) + F + ev_i``) from the site values."""
        raise NotImplementedError

    # ---- the learned background (background="learned") ---------------------
    def background_sites(self) -> dict[str, torch.Size]:
        """Global sites of the learned background (empty for the fixed background)."""
        return self.sites(1, prefix="background") if self.learn_background else {}

    def sample_background(self) -> Tensor:
        """
        The background natural parameter :math:`\\eta_0` (flattened, ``batch + (T,)``):
        the fixed one, or ``pyro.sample`` of the learned one under its conjugate prior.
        """
        if not self.learn_background:
            return self.background()
        return self.flat_background(self._sample_sites(1, prefix="background"))

    def flat_background(self, values: dict[str, Tensor]) -> Tensor:
        """Flattened background natural parameter from the site values (the fixed one if not learned)."""
        if not self.learn_background:
            return self.background()
        eta = self.layout.flatten(self.natural_params(values, prefix="background"))
        # (1, T) -> (T,); batched values (e.g. vectorised particles) keep batch + (1, T), which
        # broadcasts against the batch + (S, T) natural parameters of the membership sets
        return eta.squeeze(-2) if eta.dim() == 2 else eta

    def init_background_values(self, X: Tensor) -> dict[str, Tensor]:
        """Initial values of the learned background sites: the fixed background of this family."""
        raise NotImplementedError

    def flat_clusters(self, values: dict[str, Tensor]) -> Tensor:
        """Flattened per-cluster natural parameters, carrier shift included: ``batch + (K, T)``."""
        eta = self.layout.flatten(self.natural_params(values))
        if self.layout.shift is not None:
            eta = eta + self.layout.shift
        return eta

    def sample(self, num_clusters: int) -> Tensor:
        """``pyro.sample`` the cluster parameters and return :meth:`flat_clusters`."""
        return self.flat_clusters(self._sample_sites(num_clusters))

    def background(self) -> Tensor:
        """Flattened background natural parameter :math:`\\eta_0`, shape ``(T,)``."""
        return self.layout.flatten(self.layout.template._expanded_natural_params())

    def init_values(self, X: Tensor, num_clusters: int, generator: torch.Generator | None) -> dict[str, Tensor]:
        """Initial site values from the data (k-means++ seeds)."""
        raise NotImplementedError

    def config(self) -> dict:
        """Constructor arguments (for save/load)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.config().items())})"


# ---------------------------------------------------------------------------- #
class BernoulliClusters(ClusterFamily):
    r"""
    Binary features (the case of Heller & Ghahramani): cluster ``k`` has
    :math:`\theta_{kd} \sim \mathrm{Beta}(a, b)`, stored as logits on the site
    ``"cluster_logits"`` (``K x D``); a set's logit is the sum of its clusters'
    logits.  The background is uniform (logit 0), neutral in every product
    (``background="fixed"``), or learned (``background="learned"``): a site
    ``"background_logits"`` (``1 x D``) with
    :math:`\operatorname{logit}^{-1}\eta_{0d} \sim \mathrm{Beta}(a_0, b_0)`, so
    that a feature can be "off unless a cluster turns it on" (noisy-OR-like
    unions, points in no cluster).

    Initialisation: small random logits, :math:`\mathcal N(0, \text{init\_scale}^2)`
    (on planted bars this beats seeding clusters at data points, half of which
    show two bars).

    :param float concentration1: ``a``.
    :param float concentration0: ``b``.
    :param float init_scale: standard deviation of the initial logits.
    :param str background: ``"fixed"`` (uniform) or ``"learned"``.
    :param float background_concentration1: ``a0`` of the learned background's prior.
    :param float background_concentration0: ``b0`` of the learned background's prior.
    """

    def __init__(
        self,
        concentration1: float = 1.0,
        concentration0: float = 1.0,
        init_scale: float = 0.5,
        background: str = "fixed",
        background_concentration1: float = 1.0,
        background_concentration0: float = 1.0,
    ):
        super().__init__(background)
        self.concentration1 = _positive("concentration1", concentration1)
        self.concentration0 = _positive("concentration0", concentration0)
        self.init_scale = _positive("init_scale", init_scale)
        self.background_concentration1 = _positive("background_concentration1", background_concentration1)
        self.background_concentration0 = _positive("background_concentration0", background_concentration0)

    def config(self) -> dict:
        return {
            "concentration1": self.concentration1,
            "concentration0": self.concentration0,
            "init_scale": self.init_scale,
            "background": self.background_mode,
            "background_concentration1": self.background_concentration1,
            "background_concentration0": self.background_concentration0,
        }

    def check_data(self, X, name: str = "X") -> Tensor:
        return BernoulliFamily().validate(X, name, ndim=2)

    def _setup(self, X: Tensor) -> dict[str, Tensor]:
        return {"background_logits": X.new_zeros(X.shape[1])}

    def template(self) -> ExponentialFamily:
        return Bernoulli(logits=self.hyper["background_logits"], validate_args=False)

    def sites(self, num_clusters: int, prefix: str = "cluster") -> dict[str, torch.Size]:
        return {f"{prefix}_logits": torch.Size([num_clusters, self.hyper["background_logits"].shape[0]])}

    def _sample_sites(self, num_clusters: int, prefix: str = "cluster") -> dict[str, Tensor]:
        ((name, shape),) = self.sites(num_clusters, prefix).items()
        if prefix == "background":
            a1, a0 = self.background_concentration1, self.background_concentration0
        else:
            a1, a0 = self.concentration1, self.concentration0
        a = self._like.new_full(shape, a1)
        prior = LogitBeta(a, torch.full_like(a, a0)).to_event(2)
        return {name: pyro.sample(name, prior)}

    def natural_params(self, values: dict[str, Tensor], prefix: str = "cluster") -> tuple[Tensor, ...]:
        return (values[f"{prefix}_logits"],)

    def init_background_values(self, X: Tensor) -> dict[str, Tensor]:
        return {"background_logits": self.hyper["background_logits"].unsqueeze(0).clone()}

    def init_values(self, X: Tensor, num_clusters: int, generator: torch.Generator | None) -> dict[str, Tensor]:
        (shape,) = self.sites(num_clusters).values()
        noise = torch.randn(shape, generator=generator, dtype=torch.float64)
        return {"cluster_logits": (self.init_scale * noise).to(dtype=X.dtype, device=X.device)}


# ---------------------------------------------------------------------------- #
class _GaussianBase(ClusterFamily):
    def __init__(self, kappa0: float, background_scale: float, init_precision: float, background: str = "fixed"):
        super().__init__(background)
        self.kappa0 = _positive("kappa0", kappa0)
        self.background_scale = _positive("background_scale", background_scale)
        self.init_precision = _positive("init_precision", init_precision)

    def check_data(self, X, name: str = "X") -> Tensor:
        return as_data_tensor(X, name, ndim=2)

    def setup(self, X: Tensor) -> None:
        # the data variance (the prior's scale) needs two points; predicting on one point needs no setup
        if X.shape[0] < 2:
            raise ValueError(f"X needs at least 2 rows to set up {type(self).__name__}, got {X.shape[0]}")
        super().setup(X)


class NormalClusters(_GaussianBase):
    r"""
    Real features with a diagonal covariance per cluster: for each cluster and
    feature a Normal-Gamma prior, :math:`\lambda \sim \mathrm{Gamma}(a_0, a_0 s^2)`
    (mean precision :math:`1/s^2`, ``s^2`` the data variance; site
    ``"cluster_log_precision"`` = log λ) and
    :math:`\mu \mid \lambda \sim \mathcal N(m_0, 1/(\kappa_0\lambda))` (site
    ``"cluster_loc"``; ``m0`` the data mean).  A set's precision is the sum
    of its clusters' precisions (and the background's), its precision-weighted
    mean the sum of theirs.  Background: ``Normal(m0, background_scale * s)``
    (``background="fixed"``), or learned (``"learned"``: sites
    ``"background_log_precision"`` and ``"background_loc"``, ``1 x D``, with the
    same Normal-Gamma prior centred on the fixed background, mean precision
    :math:`1/(\text{background\_scale}^2 s^2)`).

    :param float precision_shape: ``a0``.
    :param float kappa0: prior pseudo-count of the means.
    :param float background_scale: width of the background in data standard deviations.
    :param float init_precision: initial cluster precision, in units of ``1/s^2``.
    :param str background: ``"fixed"`` or ``"learned"``.
    """

    def __init__(
        self,
        precision_shape: float = 1.0,
        kappa0: float = 0.01,
        background_scale: float = 3.0,
        init_precision: float = 4.0,
        background: str = "fixed",
    ):
        super().__init__(kappa0, background_scale, init_precision, background)
        self.precision_shape = _positive("precision_shape", precision_shape)

    def config(self) -> dict:
        return {
            "precision_shape": self.precision_shape,
            "kappa0": self.kappa0,
            "background_scale": self.background_scale,
            "init_precision": self.init_precision,
            "background": self.background_mode,
        }

    def _setup(self, X: Tensor) -> dict[str, Tensor]:
        return {"loc": X.mean(0), "var": GaussianFamily.variances(X, singular="clamp")}

    def template(self) -> ExponentialFamily:
        scale = self.background_scale * self.hyper["var"].sqrt()
        return Normal(self.hyper["loc"], scale, validate_args=False)

    def sites(self, num_clusters: int, prefix: str = "cluster") -> dict[str, torch.Size]:
        shape = torch.Size([num_clusters, self.hyper["loc"].shape[0]])
        return {f"{prefix}_log_precision": shape, f"{prefix}_loc": shape}

    def _sample_sites(self, num_clusters: int, prefix: str = "cluster") -> dict[str, Tensor]:
        k = num_clusters
        var = self.hyper["var"] * (self.background_scale**2 if prefix == "background" else 1.0)
        a = var.new_full((k,) + var.shape, self.precision_shape)
        log_prec = pyro.sample(f"{prefix}_log_precision", LogGamma(a, a * var).to_event(2))
        scale = (self.kappa0 * log_prec.exp()).rsqrt()
        loc = pyro.sample(f"{prefix}_loc", dist.Normal(self.hyper["loc"], scale).to_event(2))
        return {f"{prefix}_log_precision": log_prec, f"{prefix}_loc": loc}

    def natural_params(self, values: dict[str, Tensor], prefix: str = "cluster") -> tuple[Tensor, ...]:
        scale = (-0.5 * values[f"{prefix}_log_precision"]).exp()
        return Normal(values[f"{prefix}_loc"], scale, validate_args=False)._natural_params

    def init_background_values(self, X: Tensor) -> dict[str, Tensor]:
        h = self.hyper
        return {
            "background_log_precision": (-(self.background_scale**2 * h["var"]).log()).unsqueeze(0).clone(),
            "background_loc": h["loc"].unsqueeze(0).clone(),
        }

    def init_values(self, X: Tensor, num_clusters: int, generator: torch.Generator | None) -> dict[str, Tensor]:
        seeds = X[_seeds(X, num_clusters, generator).to(X.device)]
        log_prec = (self.init_precision / self.hyper["var"]).log().expand_as(seeds).clone()
        return {"cluster_log_precision": log_prec, "cluster_loc": seeds.clone()}


class MultivariateNormalClusters(_GaussianBase):
    r"""
    Real vectors with a full covariance per cluster and a Normal-Wishart prior:
    :math:`\Lambda_k \sim \mathrm{Wishart}(\nu_0, \Sigma^{-1}/\nu_0)` (mean
    :math:`\Sigma^{-1}`, ``Σ`` the data covariance) written by the Bartlett
    decomposition :math:`\Lambda = L A A^\top L^\top`, :math:`LL^\top = \Sigma^{-1}/\nu_0`,
    with sites ``"cluster_bartlett_log_chi2"`` (log of :math:`A_{ii}^2 \sim \chi^2_{\nu_0 - i}`)
    and ``"cluster_bartlett_offdiag"`` (:math:`A_{ij} \sim \mathcal N(0,1)`, ``i > j``);
    :math:`\mu_k \mid \Lambda_k \sim \mathcal N(m_0, (\kappa_0\Lambda_k)^{-1})`
    (site ``"cluster_loc"``).  A set's precision is the sum of precisions.
    Sufficient statistics are :math:`(x, xx^\top)`, so the enumerated
    likelihood is a GEMM with inner dimension :math:`D + D^2`.
    Background: ``MVN(m0, background_scale^2 Σ)`` (``background="fixed"``), or
    learned (``"learned"``: sites ``"background_bartlett_log_chi2"``,
    ``"background_bartlett_offdiag"``, ``"background_loc"`` with one row, the
    same Normal-Wishart prior with mean precision
    :math:`\Sigma^{-1}/\text{background\_scale}^2`).

    :param float df: ``ν0 > D - 1`` (default ``D + 2``).
    :param float kappa0: prior pseudo-count of the means.
    :param float background_scale: width of the background in data standard deviations.
    :param float init_precision: initial cluster precision, in units of :math:`\Sigma^{-1}`.
    :param str background: ``"fixed"`` or ``"learned"``.
    """

    def __init__(
        self,
        df: float | None = None,
        kappa0: float = 0.01,
        background_scale: float = 3.0,
        init_precision: float = 4.0,
        background: str = "fixed",
    ):
        super().__init__(kappa0, background_scale, init_precision, background)
        self.df = None if df is None else _positive("df", df)

    def config(self) -> dict:
        return {
            "df": self.df,
            "kappa0": self.kappa0,
            "background_scale": self.background_scale,
            "init_precision": self.init_precision,
            "background": self.background_mode,
        }

    def _setup(self, X: Tensor) -> dict[str, Tensor]:
        d = X.shape[1]
        df = float(d + 2) if self.df is None else self.df
        if df <= d - 1:
            raise ValueError(f"df must exceed D - 1 = {d - 1}, got {df}")
        cov = GaussianFamily.covariance(X, jitter=1e-6)
        prec = torch.cholesky_inverse(torch.linalg.cholesky(cov))
        return {
            "loc": X.mean(0),
            "cov": cov,
            "wishart_tril": torch.linalg.cholesky(prec / df),
            "df": torch.tensor(df, dtype=X.dtype, device=X.device),
        }

    def template(self) -> ExponentialFamily:
        cov = self.background_scale**2 * self.hyper["cov"]
        return MultivariateNormal(self.hyper["loc"], covariance_matrix=cov, validate_args=False)

    @property
    def _dim(self) -> int:
        return self.hyper["loc"].shape[0]

    def sites(self, num_clusters: int, prefix: str = "cluster") -> dict[str, torch.Size]:
        d = self._dim
        return {
            f"{prefix}_bartlett_log_chi2": torch.Size([num_clusters, d]),
            f"{prefix}_bartlett_offdiag": torch.Size([num_clusters, d * (d - 1) // 2]),
            f"{prefix}_loc": torch.Size([num_clusters, d]),
        }

    def _precision_tril(self, log_chi2: Tensor, offdiag: Tensor, prefix: str = "cluster") -> Tensor:
        d = self._dim
        a = torch.diag_embed((0.5 * log_chi2).exp())
        rows, cols = torch.tril_indices(d, d, offset=-1, device=a.device)
        if d > 1:
            lower = offdiag.new_zeros(offdiag.shape[:-1] + (d * d,)).index_copy(-1, rows * d + cols, offdiag)
            a = a + lower.reshape(lower.shape[:-1] + (d, d))
        tril = self.hyper["wishart_tril"]
        if prefix == "background":
            tril = tril / self.background_scale
        return tril @ a

    def _sample_sites(self, num_clusters: int, prefix: str = "cluster") -> dict[str, Tensor]:
        shapes = self.sites(num_clusters, prefix)
        like = self.hyper["loc"]
        df = self.hyper["df"]
        conc = (df - torch.arange(self._dim, dtype=like.dtype, device=like.device)) / 2
        conc = conc.expand(shapes[f"{prefix}_bartlett_log_chi2"])
        log_chi2 = pyro.sample(f"{prefix}_bartlett_log_chi2", LogGamma(conc, torch.full_like(conc, 0.5)).to_event(2))
        zeros = like.new_zeros(shapes[f"{prefix}_bartlett_offdiag"])
        offdiag = pyro.sample(f"{prefix}_bartlett_offdiag", dist.Normal(zeros, 1.0).to_event(2))
        tril = self._precision_tril(log_chi2, offdiag, prefix)
        prec = self.kappa0 * (tril @ tril.mT)
        loc = pyro.sample(f"{prefix}_loc", dist.MultivariateNormal(like, precision_matrix=prec).to_event(1))
        return {f"{prefix}_bartlett_log_chi2": log_chi2, f"{prefix}_bartlett_offdiag": offdiag, f"{prefix}_loc": loc}

    def natural_params(self, values: dict[str, Tensor], prefix: str = "cluster") -> tuple[Tensor, ...]:
        tril = self._precision_tril(values[f"{prefix}_bartlett_log_chi2"], values[f"{prefix}_bartlett_offdiag"], prefix)
        prec = tril @ tril.mT
        loc = values[f"{prefix}_loc"]
        return ((prec @ loc.unsqueeze(-1)).squeeze(-1), -0.5 * prec)

    def init_background_values(self, X: Tensor) -> dict[str, Tensor]:
        # Lambda_0 = Sigma^-1 / background_scale^2 = (L / background_scale) A A^T (...)^T with A = sqrt(df) I
        d, h = self._dim, self.hyper
        return {
            "background_bartlett_log_chi2": h["loc"].new_full((1, d), math.log(float(h["df"]))),
            "background_bartlett_offdiag": h["loc"].new_zeros((1, d * (d - 1) // 2)),
            "background_loc": h["loc"].unsqueeze(0).clone(),
        }

    def init_values(self, X: Tensor, num_clusters: int, generator: torch.Generator | None) -> dict[str, Tensor]:
        seeds = X[_seeds(X, num_clusters, generator).to(X.device)]
        d = self._dim
        # Lambda = init_precision * Sigma^-1 = L A A^T L^T with A = sqrt(init_precision * df) I
        log_chi2 = X.new_full((num_clusters, d), math.log(self.init_precision * float(self.hyper["df"])))
        return {
            "cluster_bartlett_log_chi2": log_chi2,
            "cluster_bartlett_offdiag": X.new_zeros((num_clusters, d * (d - 1) // 2)),
            "cluster_loc": seeds.clone(),
        }


# ---------------------------------------------------------------------------- #
class CategoricalClusters(ClusterFamily):
    r"""
    Categorical features: ``D`` features with ``C`` categories each, given as
    integer codes ``(N, D)`` or, with ``one_hot=True``, one-hot ``(N, D, C)``.
    Cluster ``k`` has per-feature probabilities
    :math:`p_{kd} \sim \mathrm{Dirichlet}(c\,\mathbf 1)`, written as normalised
    Gamma variables: the site ``"cluster_log_weights"`` (``K x D x C``) holds
    :math:`\log g_{kdc}`, :math:`g \sim \mathrm{Gamma}(c, 1)`, and the logits are
    ``log g`` (softmax of the logits is Dirichlet-distributed).  A set's logits
    are the sums of its clusters' logits.  Background: uniform (``background="fixed"``),
    or learned (``"learned"``: site ``"background_log_weights"``, ``1 x D x C``,
    with the same Dirichlet prior).

    :param int num_categories: ``C`` (default: ``1 + max code`` of the data).
    :param float concentration: Dirichlet concentration ``c``.
    :param bool one_hot: data are one-hot vectors (a ``OneHotCategorical`` family).
    :param float init_strength: initial logit of a seed point's categories.
    :param str background: ``"fixed"`` or ``"learned"``.
    """

    def __init__(
        self,
        num_categories: int | None = None,
        concentration: float = 1.0,
        one_hot: bool = False,
        init_strength: float = 1.5,
        background: str = "fixed",
    ):
        super().__init__(background)
        if num_categories is not None and (
            isinstance(num_categories, bool) or not isinstance(num_categories, int) or num_categories < 2
        ):
            raise ValueError(f"num_categories must be an int >= 2, got {num_categories!r}")
        self.num_categories = num_categories
        self.concentration = _positive("concentration", concentration)
        self.one_hot = bool(one_hot)
        self.init_strength = _positive("init_strength", init_strength)

    def config(self) -> dict:
        return {
            "num_categories": self.num_categories,
            "concentration": self.concentration,
            "one_hot": self.one_hot,
            "init_strength": self.init_strength,
            "background": self.background_mode,
        }

    def _family(self) -> CategoricalFamily:
        return CategoricalFamily(self.concentration, self.num_categories, self.one_hot)

    def check_data(self, X, name: str = "X") -> Tensor:
        return self._family().validate(X, name, ndim=3 if self.one_hot else 2)

    def _setup(self, X: Tensor) -> dict[str, Tensor]:
        d, c = X.shape[1], self._family().n_categories_for(X)
        self.num_categories = c
        return {"background_logits": X.new_zeros((d, c))}

    def template(self) -> ExponentialFamily:
        cls = OneHotCategorical if self.one_hot else Categorical
        return cls(logits=self.hyper["background_logits"], validate_args=False)

    def sites(self, num_clusters: int, prefix: str = "cluster") -> dict[str, torch.Size]:
        return {f"{prefix}_log_weights": torch.Size((num_clusters,) + self.hyper["background_logits"].shape)}

    def _sample_sites(self, num_clusters: int, prefix: str = "cluster") -> dict[str, Tensor]:
        ((name, shape),) = self.sites(num_clusters, prefix).items()
        a = self._like.new_full(shape, self.concentration)
        return {name: pyro.sample(name, LogGamma(a, torch.ones_like(a)).to_event(3))}

    def natural_params(self, values: dict[str, Tensor], prefix: str = "cluster") -> tuple[Tensor, ...]:
        return (values[f"{prefix}_log_weights"],)

    def init_background_values(self, X: Tensor) -> dict[str, Tensor]:
        return {"background_log_weights": self.hyper["background_logits"].unsqueeze(0).clone()}

    def init_values(self, X: Tensor, num_clusters: int, generator: torch.Generator | None) -> dict[str, Tensor]:
        c = self.hyper["background_logits"].shape[-1]
        onehot = X if self.one_hot else torch.nn.functional.one_hot(X.long(), c).to(X.dtype)
        seeds = onehot[_seeds(onehot, num_clusters, generator).to(X.device)]
        return {"cluster_log_weights": self.init_strength * seeds}
