# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
r"""
Gaussian emissions with conjugate priors, in the conjugate-exponential form of
:mod:`~pyro_expfam.mixture.dpmm.emissions` (``log p(x|theta) = <u(x), s(theta)> + k(x)``):

- ``unit``: identity covariance, :math:`\mu\sim N(m_0, I/\kappa_0)`;
  :math:`s = (\mu, -\|\mu\|^2/2)`, :math:`u(x) = (x, 1)`.
- ``spherical``: covariance :math:`I/\lambda`, Normal-Gamma prior;
  :math:`s = (\lambda\mu, -\lambda/2, -\lambda\|\mu\|^2/2, \log\lambda)`,
  :math:`u(x) = (x, \|x\|^2, 1, D/2)`.
- ``diag``: Normal-Gamma prior per feature; the same per feature,
  :math:`u(x) = (x, x^2, 1, 1/2)`.
- ``full``: Normal-Wishart prior;
  :math:`s = (\Lambda\mu, -\Lambda/2, -\mu^T\Lambda\mu/2, \log|\Lambda|)`,
  :math:`u(x) = (x, xx^T, 1, 1/2)`.

For ``full`` the symmetric statistic :math:`xx^T` is stored packed (upper
triangle, ``D(D+1)/2`` columns) and the matching coordinate of
:math:`s(\theta)` carries a factor 2 off the diagonal, so the expected
log-likelihood of all components is one ``(N x S) @ (S x K)`` product.  Every
matrix operation goes through Cholesky factors.

Default priors follow :class:`sklearn.mixture.BayesianGaussianMixture`: mean
prior the data mean, mean precision 1, degrees of freedom ``D``, and a
covariance prior equal to the data covariance (full), per-feature variance
(diag) or mean variance (spherical), used as the inverse scale of the Wishart
(a Gamma with shape :math:`\nu_0/2` and rate :math:`\sigma_0^2/2` in one dimension).  The defaults, their
checks (constant features, rank-deficient covariances) and :func:`check_resolution` come from the family layer,
:class:`~pyro_expfam.families.GaussianFamily` (:meth:`~_GaussianEmission.family`); this module adds the CAVI
coordinates :math:`\phi` (packed statistics, centring, ``reg_covar``) and the Pyro sites.
"""

from __future__ import annotations

import math

import pyro
import pyro.distributions as pdist
import torch
from torch import Tensor
from torch.distributions import constraints

from ...conjugate import NormalGamma, NormalWishart
from ...distributions import Gamma, MultivariateNormal, Normal, Wishart
from ...families import GaussianFamily, check_resolution
from ...families.gaussian import _finite_real as _real
from .emissions import ConjugateEmission

__all__ = ["UnitGaussianEmission", "SphericalGaussianEmission", "DiagGaussianEmission", "FullGaussianEmission",
           "TiedGaussianEmission", "check_resolution"]

_LOG_2PI = math.log(2 * math.pi)
_NOT_PD = ("Normal-Wishart posterior scale is not positive definite; the data may be singular or the dtype too narrow "
           "(try float64)")


class _GaussianEmission(ConjugateEmission):
    """
    Shared hyper-parameters of the Gaussian emissions.

    :param mean_prior: prior mean ``(D,)`` (default: data mean).
    :param float mean_precision_prior: :math:`\\kappa_0`, precision of the mean
        prior relative to the component precision (default 1).
    :param float degrees_of_freedom_prior: :math:`\\nu_0` (default ``D``; must be > ``D - 1`` for full).
    :param covariance_prior: inverse scale of the precision prior: a ``(D, D)``
        matrix (full, tied), ``(D,)`` vector (diag) or number (spherical); default from the data.
    :param float reg_covar: non-negative number added to the diagonal of every component's empirical covariance
        during the fit (as scikit-learn): the training statistics of :math:`x x^T` get ``reg_covar * I``, i.e.
        the fit sees each point smeared by a ``N(0, reg_covar I)`` jitter.  Predictions use the plain statistics.
    :param bool center: if true, :meth:`setup` records the data mean as :attr:`offset` and every statistic is
        computed on ``X - offset`` (so that float32 data far from the origin keep their precision); the readable
        summaries (``means_``) and generated data are shifted back.  The natural parameters then describe the
        centred data.
    """

    #: shift subtracted from the data before any statistic (``None``: no centring)
    offset: Tensor | None = None

    def __init__(
        self,
        mean_prior: Tensor | None = None,
        mean_precision_prior: float | None = None,
        degrees_of_freedom_prior: float | None = None,
        covariance_prior: Tensor | float | None = None,
        reg_covar: float = 0.0,
        center: bool = False,
    ) -> None:
        if not _real(reg_covar, 0.0, strict=False):
            raise ValueError(f"reg_covar must be a non-negative finite number, got {reg_covar!r}")
        self.mean_prior = mean_prior
        self.mean_precision_prior = mean_precision_prior
        self.degrees_of_freedom_prior = degrees_of_freedom_prior
        self.covariance_prior = covariance_prior
        self.family()  # validates the prior hyper-parameters
        self.reg_covar = float(reg_covar)
        self.center = bool(center)

    def family(self) -> GaussianFamily:
        """The family layer's Gaussian of this covariance type, with the user's prior hyper-parameters."""
        return GaussianFamily(self.name, self.mean_prior, self.mean_precision_prior, self.degrees_of_freedom_prior,
                              self.covariance_prior)

    def setup(self, X: Tensor) -> Tensor:
        if not self.center:
            self.offset = None
            return super().setup(X)
        X64 = X.to(torch.float64)
        self.offset = X64.mean(0).to(X.dtype)
        check_resolution(X64, X.dtype)
        return super().setup(X - self.offset)

    def prior_summary(self, phi0: Tensor) -> dict[str, Tensor | float]:
        """
        The prior's hyper-parameters as scikit-learn's ``BayesianGaussianMixture`` reports them after a fit:
        ``mean_prior_`` (original coordinates), ``mean_precision_prior_`` and, except for ``unit``,
        ``degrees_of_freedom_prior_`` and ``covariance_prior_`` (the inverse scale of the precision prior).

        :param Tensor phi0: the prior natural parameter from :meth:`setup`.
        """
        std = self.to_standard(phi0)
        out: dict[str, Tensor | float] = {"mean_prior_": self._shifted(std["loc"]),
                                          "mean_precision_prior_": float(std["kappa"].reshape(-1)[0])}
        if "shape" in std:  # spherical, diag: Gamma(nu0 / 2, s0 / 2)
            out["degrees_of_freedom_prior_"] = float(2 * std["shape"].reshape(-1)[0])
            out["covariance_prior_"] = 2 * std["rate"]
        elif "df" in std:  # full, tied: Wishart(nu0, W0), covariance prior W0^{-1}
            out["degrees_of_freedom_prior_"] = float(std["df"])
            out["covariance_prior_"] = torch.cholesky_inverse(std["scale_tril"])
        return out

    def _centred(self, X: Tensor) -> Tensor:
        return X if self.offset is None else X - self.offset.to(X.device, X.dtype)

    def _shifted(self, loc: Tensor) -> Tensor:
        return loc if self.offset is None else loc + self.offset.to(loc.device, loc.dtype)

    def _prior(self, X: Tensor) -> dict:
        """The family layer's prior for (centred) data ``X``: ``loc``, ``mean_precision``, ``df``, ``covariance``."""
        self.n_features = X.shape[1]
        return self.family().prior(X, offset=self.offset)

    def sufficient_statistics(self, X: Tensor) -> tuple[Tensor, Tensor]:
        X = self._centred(X)
        D = self.n_features
        T = X.new_empty(X.shape[0], self.n_stats)
        T[:, :D] = X
        self._quadratic(X, T[:, D:])
        return T, X.new_full((X.shape[0],), -0.5 * D * _LOG_2PI)

    def training_statistics(self, X: Tensor) -> tuple[Tensor, Tensor]:
        T, k = self.sufficient_statistics(X)
        if self.reg_covar:
            T[:, self._reg_columns(T.device)] += self._reg_amount()
        return T, k

    def _reg_columns(self, device: torch.device) -> Tensor | slice:
        """Columns of the statistics that hold the diagonal of ``x x^T``."""
        return slice(self.n_features, self.n_stats)

    def _reg_amount(self) -> float:
        return self.reg_covar

    def _quadratic(self, X: Tensor, out: Tensor) -> None:
        """Write the quadratic statistics of ``X`` into ``out``."""
        raise NotImplementedError

    def observation_dist(self, theta: dict[str, Tensor], z: Tensor) -> pdist.TorchDistribution:
        loc = self._shifted(theta["loc"][z])
        prec = theta["precision"]
        if prec.dim() == 3:
            return MultivariateNormal(loc, precision_matrix=prec[z])
        prec = prec[z]
        if prec.dim() == 1:
            prec = prec.unsqueeze(-1)
        return Normal(loc, prec.rsqrt().expand_as(loc)).to_event(1)


class UnitGaussianEmission(_GaussianEmission):
    r"""
    Gaussian with identity covariance and unknown mean, :math:`\mu\sim N(m_0, I/\kappa_0)`.
    :math:`\phi = (\kappa m, \kappa)`.  Core family: one :class:`~pyro_expfam.distributions.Normal`
    per feature, :math:`\eta_d = (\phi_d, -\kappa/2)` with the one :math:`\kappa` tied to every feature
    (the emission's family is the linear sub-family of ``D`` independent Normals with equal precisions).

    :param mean_prior: prior mean (default: data mean).
    :param float mean_precision_prior: :math:`\kappa_0` (default 1).
    """

    name = "unit"
    standard_constraints = {"loc": constraints.real, "kappa": constraints.positive}

    def __init__(self, mean_prior: Tensor | None = None, mean_precision_prior: float | None = None,
                 center: bool = False) -> None:
        super().__init__(mean_prior, mean_precision_prior, center=center)

    def _setup(self, X: Tensor) -> Tensor:
        p = self._prior(X)
        return self.from_standard({"loc": p["loc"], "kappa": p["loc"].new_tensor(p["mean_precision"])})

    @property
    def n_stats(self) -> int:
        return self.n_features

    def sufficient_statistics(self, X: Tensor) -> tuple[Tensor, Tensor]:
        X = self._centred(X)
        return X, -0.5 * X.square().sum(1) - 0.5 * self.n_features * _LOG_2PI

    def constant_stats(self, dtype, device) -> Tensor:
        return torch.ones(1, dtype=dtype, device=device)

    def _parts(self, phi):
        kappa = phi[..., -1]
        return phi[..., :-1] / kappa.unsqueeze(-1), kappa

    # core family Normal per feature: T_d = (mu_d, mu_d^2), s = (mu, -sum_d T_d2 / 2), carrier 0
    core_family = Normal

    def core_natural_params(self, phi: Tensor) -> tuple[Tensor, Tensor]:
        eta1 = phi[..., :-1]
        return eta1, (-0.5 * phi[..., -1:]).expand_as(eta1)

    def stats_from_core_mean(self, mean: tuple[Tensor, Tensor]) -> Tensor:
        m_mu, m_mu2 = mean
        return torch.cat([m_mu, -0.5 * m_mu2.sum(-1, keepdim=True)], dim=-1)

    def to_standard(self, phi: Tensor) -> dict[str, Tensor]:
        m, kappa = self._parts(phi)
        return {"loc": m, "kappa": kappa}

    def from_standard(self, params: dict[str, Tensor]) -> Tensor:
        kappa = params["kappa"]
        return torch.cat([kappa.unsqueeze(-1) * params["loc"], kappa.unsqueeze(-1)], dim=-1)

    def sample_theta(self, prefix: str, params: dict[str, Tensor]) -> dict[str, Tensor]:
        scale = params["kappa"].rsqrt().unsqueeze(-1).expand_as(params["loc"])
        return {"loc": pyro.sample(f"{prefix}_loc", Normal(params["loc"], scale).to_event(1))}

    def theta_stats(self, theta: dict[str, Tensor]) -> Tensor:
        mu = theta["loc"]
        return torch.cat([mu, -0.5 * mu.square().sum(-1, keepdim=True)], dim=-1)

    def observation_dist(self, theta: dict[str, Tensor], z: Tensor) -> pdist.TorchDistribution:
        loc = self._shifted(theta["loc"][z])
        return Normal(loc, torch.ones_like(loc)).to_event(1)

    def summary(self, phi: Tensor) -> dict[str, Tensor]:
        m, kappa = self._parts(phi)
        return {"means_": self._shifted(m), "mean_precision_": kappa}

    def point_theta(self, phi: Tensor) -> dict[str, Tensor]:
        return {"loc": self._parts(phi)[0]}


class SphericalGaussianEmission(_GaussianEmission):
    r"""
    Gaussian with covariance :math:`I/\lambda` and a Normal-Gamma prior:
    :math:`\lambda\sim\mathrm{Gamma}(\nu_0/2, \sigma_0^2/2)`,
    :math:`\mu\mid\lambda\sim N(m_0, I/(\kappa_0\lambda))`.
    :math:`\phi = (\tau, \beta, \kappa, \gamma)` with
    :math:`m=\tau/\kappa`, shape :math:`a=\gamma-D/2+1`, rate :math:`b=(\beta-\tau\cdot m)/2`.

    **No core family** (closed forms kept): the ``D`` coordinates of :math:`\mu` share one precision, so
    :math:`s(\theta) = (\lambda\mu, -\lambda/2, -\lambda\|\mu\|^2/2, \log\lambda)` is not a linear image of
    the statistics of a core family (NormalGamma is univariate, ``D`` of them have ``D`` precisions, and
    NormalWishart has a full precision matrix: tying them restricts :math:`\theta`, not :math:`\eta`).
    Integrating out :math:`\mu` gives :math:`Z(\phi) = \tfrac D2\log(2\pi/\kappa) + A_\text{Gamma}(a - 1, -b)`,
    with :math:`b` quadratic in :math:`\phi`; the tests pin this to the core
    :class:`~pyro_expfam.distributions.Gamma` and, for ``D = 1``, to :class:`~pyro_expfam.conjugate.NormalGamma`.
    """

    name = "spherical"
    standard_constraints = {"loc": constraints.real, "kappa": constraints.positive,
                            "shape": constraints.positive, "rate": constraints.positive}

    def _setup(self, X: Tensor) -> Tensor:
        p = self._prior(X)
        m0 = p["loc"]
        return self.from_standard({"loc": m0, "kappa": m0.new_tensor(p["mean_precision"]),
                                   "shape": m0.new_tensor(p["df"] / 2), "rate": p["covariance"] / 2})

    @property
    def n_stats(self) -> int:
        return self.n_features + 1

    def _quadratic(self, X: Tensor, out: Tensor) -> None:
        torch.sum(X.square(), 1, keepdim=True, out=out)

    def _reg_amount(self) -> float:
        return self.reg_covar * self.n_features

    def constant_stats(self, dtype, device) -> Tensor:
        return torch.tensor([1.0, 0.5 * self.n_features], dtype=dtype, device=device)

    def _parts(self, phi):
        D = self.n_features
        tau, beta, kappa, gamma = phi[..., :D], phi[..., D], phi[..., D + 1], phi[..., D + 2]
        m = tau / kappa.unsqueeze(-1)
        return m, kappa, gamma - 0.5 * D + 1, 0.5 * (beta - (tau * m).sum(-1))

    def log_partition(self, phi: Tensor) -> Tensor:
        m, kappa, a, b = self._parts(phi)
        return 0.5 * self.n_features * (_LOG_2PI - kappa.log()) + torch.lgamma(a) - a * b.log()

    def expected_stats(self, phi: Tensor) -> Tensor:
        m, kappa, a, b = self._parts(phi)
        e_lam = a / b
        return torch.cat([
            e_lam.unsqueeze(-1) * m,
            (-0.5 * e_lam).unsqueeze(-1),
            (-0.5 * (e_lam * m.square().sum(-1) + self.n_features / kappa)).unsqueeze(-1),
            (torch.digamma(a) - b.log()).unsqueeze(-1),
        ], dim=-1)

    def to_standard(self, phi: Tensor) -> dict[str, Tensor]:
        m, kappa, a, b = self._parts(phi)
        return {"loc": m, "kappa": kappa, "shape": a, "rate": b}

    def from_standard(self, params: dict[str, Tensor]) -> Tensor:
        m, kappa, a, b = params["loc"], params["kappa"], params["shape"], params["rate"]
        D = self.n_features
        beta = 2 * b + kappa * m.square().sum(-1)
        return torch.cat([kappa.unsqueeze(-1) * m, beta.unsqueeze(-1), kappa.unsqueeze(-1),
                          (a - 1 + 0.5 * D).unsqueeze(-1)], dim=-1)

    guide_constraints = {"loc": constraints.real, "kappa": constraints.positive,
                         "shape": constraints.positive, "mean_precision": constraints.positive}

    def to_guide(self, phi: Tensor) -> dict[str, Tensor]:
        s = self.to_standard(phi)
        return {"loc": s["loc"], "kappa": s["kappa"], "shape": s["shape"], "mean_precision": s["shape"] / s["rate"]}

    def guide_to_standard(self, params: dict[str, Tensor]) -> dict[str, Tensor]:
        return {"loc": params["loc"], "kappa": params["kappa"], "shape": params["shape"],
                "rate": params["shape"] / params["mean_precision"]}

    def sample_theta(self, prefix: str, params: dict[str, Tensor]) -> dict[str, Tensor]:
        lam = pyro.sample(f"{prefix}_precision", Gamma(params["shape"], params["rate"]))
        scale = (params["kappa"] * lam).rsqrt().unsqueeze(-1).expand_as(params["loc"])
        return {"precision": lam, "loc": pyro.sample(f"{prefix}_loc", Normal(params["loc"], scale).to_event(1))}

    def theta_stats(self, theta: dict[str, Tensor]) -> Tensor:
        lam, mu = theta["precision"], theta["loc"]
        return torch.cat([lam.unsqueeze(-1) * mu, (-0.5 * lam).unsqueeze(-1),
                          (-0.5 * lam * mu.square().sum(-1)).unsqueeze(-1), lam.log().unsqueeze(-1)], dim=-1)

    def summary(self, phi: Tensor) -> dict[str, Tensor]:
        m, kappa, a, b = self._parts(phi)
        return {"means_": self._shifted(m), "covariances_": b / a, "precisions_": a / b, "mean_precision_": kappa,
                "degrees_of_freedom_": 2 * a}

    def point_theta(self, phi: Tensor) -> dict[str, Tensor]:
        m, _, a, b = self._parts(phi)
        return {"loc": m, "precision": a / b}


class DiagGaussianEmission(_GaussianEmission):
    r"""
    Gaussian with diagonal covariance and an independent Normal-Gamma prior per
    feature: :math:`\lambda_d\sim\mathrm{Gamma}(\nu_0/2, \sigma_{0d}^2/2)`,
    :math:`\mu_d\mid\lambda_d\sim N(m_{0d}, 1/(\kappa_0\lambda_d))`.
    :math:`\phi = (\tau, \beta, \kappa, \gamma)`, each of length ``D``.  Core family: one
    :class:`~pyro_expfam.conjugate.NormalGamma` per feature; with its statistics
    :math:`T = (\lambda\mu, \lambda\mu^2, \lambda, \log\lambda)`, :math:`s = (T_1, -T_3/2, -T_2/2, T_4)`
    and :math:`\eta = (\tau, -\kappa/2, -\beta/2, \gamma)`.
    """

    name = "diag"
    standard_constraints = SphericalGaussianEmission.standard_constraints
    guide_constraints = SphericalGaussianEmission.guide_constraints
    to_guide = SphericalGaussianEmission.to_guide
    guide_to_standard = SphericalGaussianEmission.guide_to_standard

    def _setup(self, X: Tensor) -> Tensor:
        p = self._prior(X)
        m0 = p["loc"]
        ones = torch.ones_like(m0)
        return self.from_standard({"loc": m0, "kappa": p["mean_precision"] * ones, "shape": 0.5 * p["df"] * ones,
                                   "rate": p["covariance"] / 2})

    @property
    def n_stats(self) -> int:
        return 2 * self.n_features

    def _quadratic(self, X: Tensor, out: Tensor) -> None:
        torch.mul(X, X, out=out)

    def constant_stats(self, dtype, device) -> Tensor:
        D = self.n_features
        return torch.cat([torch.ones(D, dtype=dtype, device=device), torch.full((D,), 0.5, dtype=dtype, device=device)])

    def _parts(self, phi):
        tau, beta, kappa, gamma = phi.unflatten(-1, (4, self.n_features)).unbind(-2)
        m = tau / kappa
        return m, kappa, gamma + 0.5, 0.5 * (beta - tau * m)

    core_family = NormalGamma

    def core_natural_params(self, phi: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        tau, beta, kappa, gamma = phi.unflatten(-1, (4, self.n_features)).unbind(-2)
        return tau, -0.5 * kappa, -0.5 * beta, gamma

    def stats_from_core_mean(self, mean: tuple[Tensor, Tensor, Tensor, Tensor]) -> Tensor:
        m_lam_mu, m_lam_mu2, m_lam, m_log_lam = mean
        return torch.cat([m_lam_mu, -0.5 * m_lam, -0.5 * m_lam_mu2, m_log_lam], dim=-1)

    def to_standard(self, phi: Tensor) -> dict[str, Tensor]:
        m, kappa, a, b = self._parts(phi)
        return {"loc": m, "kappa": kappa, "shape": a, "rate": b}

    def from_standard(self, params: dict[str, Tensor]) -> Tensor:
        m, kappa, a, b = params["loc"], params["kappa"], params["shape"], params["rate"]
        return torch.cat([kappa * m, 2 * b + kappa * m.square(), kappa, a - 0.5], dim=-1)

    def sample_theta(self, prefix: str, params: dict[str, Tensor]) -> dict[str, Tensor]:
        lam = pyro.sample(f"{prefix}_precision", Gamma(params["shape"], params["rate"]).to_event(1))
        loc = pyro.sample(f"{prefix}_loc", Normal(params["loc"], (params["kappa"] * lam).rsqrt()).to_event(1))
        return {"precision": lam, "loc": loc}

    def theta_stats(self, theta: dict[str, Tensor]) -> Tensor:
        lam, mu = theta["precision"], theta["loc"]
        return torch.cat([lam * mu, -0.5 * lam, -0.5 * lam * mu.square(), lam.log()], dim=-1)

    def summary(self, phi: Tensor) -> dict[str, Tensor]:
        m, kappa, a, b = self._parts(phi)
        return {"means_": self._shifted(m), "covariances_": b / a, "precisions_": a / b,
                "mean_precision_": kappa[..., 0], "degrees_of_freedom_": 2 * a[..., 0]}

    def point_theta(self, phi: Tensor) -> dict[str, Tensor]:
        m, _, a, b = self._parts(phi)
        return {"loc": m, "precision": a / b}


class FullGaussianEmission(_GaussianEmission):
    r"""
    Gaussian with full covariance and a Normal-Wishart prior:
    :math:`\Lambda\sim\mathcal W(\nu_0, W_0)` with :math:`W_0^{-1}` the covariance
    prior, :math:`\mu\mid\Lambda\sim N(m_0, (\kappa_0\Lambda)^{-1})`.
    :math:`\phi = (\tau, B, \kappa, \gamma)` with ``B`` packed, and
    :math:`m=\tau/\kappa`, :math:`\nu = 2\gamma + D`, :math:`W^{-1} = B - \kappa m m^T`.  Core family:
    :class:`~pyro_expfam.conjugate.NormalWishart`; with its statistics
    :math:`T = (\Lambda\mu, \mu^T\Lambda\mu, \Lambda, \log|\Lambda|)`,
    :math:`s = (T_1, \mathrm{pack}(-T_3/2), -T_2/2, T_4)` (off-diagonal doubled) and
    :math:`\eta = (\tau, -\kappa/2, -B/2, \gamma)` (``B`` unpacked to a symmetric matrix).
    **Closed forms kept for speed**, pinned by the tests to the core through this map
    (:meth:`core_distribution`; ``_log_normalizer``, ``mean_parameters`` and ``bregman_kl``): they need one
    Cholesky factor of :math:`W^{-1}`, while building a NormalWishart from :math:`\eta` and calling its
    ``_log_normalizer`` takes three (the merge moves evaluate :math:`Z` for every candidate pair), and the first
    NormalWishart built in a process costs ~0.4 s (its ``torch.broadcast_shapes`` imports sympy).  :meth:`kl` is
    the Bregman divergence of the closed-form :math:`Z` in :math:`\phi` coordinates.
    """

    name = "full"
    standard_constraints = {"loc": constraints.real, "kappa": constraints.positive,
                            "df": constraints.positive, "scale_tril": constraints.lower_cholesky}

    def _set_dim(self, D: int, device) -> None:
        self.n_features = D
        iu = torch.triu_indices(D, D, device=device)
        self._iu0, self._iu1 = iu[0], iu[1]

    def set_dims(self, dims: dict[str, int], prior_natural: Tensor) -> None:
        super().set_dims(dims, prior_natural)
        self._set_dim(self.n_features, prior_natural.device)

    def _index(self, device):
        if self._iu0.device != device:
            self._iu0, self._iu1 = self._iu0.to(device), self._iu1.to(device)
        return self._iu0, self._iu1

    def _setup(self, X: Tensor) -> Tensor:
        p = self._prior(X)  # checks the degrees of freedom and the covariance (prior or data) for full and tied
        self._set_dim(self.n_features, X.device)
        m0 = p["loc"]
        L0 = torch.linalg.cholesky(p["covariance"])
        W0_tril = torch.linalg.cholesky(torch.cholesky_inverse(L0))
        return self.from_standard({"loc": m0, "kappa": m0.new_tensor(p["mean_precision"]),
                                   "df": m0.new_tensor(p["df"]), "scale_tril": W0_tril})

    @property
    def n_stats(self) -> int:
        D = self.n_features
        return D + D * (D + 1) // 2

    def _reg_columns(self, device: torch.device) -> Tensor:
        iu0, iu1 = self._index(device)
        return self.n_features + torch.nonzero(iu0 == iu1).flatten()

    def _quadratic(self, X: Tensor, out: Tensor) -> None:
        # row i of the upper triangle, x_i * x_{i:}, in the order of torch.triu_indices
        pos = 0
        for i in range(self.n_features):
            w = self.n_features - i
            torch.mul(X[:, i : i + 1], X[:, i:], out=out[:, pos : pos + w])
            pos += w

    def constant_stats(self, dtype, device) -> Tensor:
        return torch.tensor([1.0, 0.5], dtype=dtype, device=device)

    def _pack(self, M: Tensor) -> Tensor:
        iu0, iu1 = self._index(M.device)
        return M[..., iu0, iu1]

    def _unpack(self, v: Tensor) -> Tensor:
        iu0, iu1 = self._index(v.device)
        D = self.n_features
        M = v.new_zeros(v.shape[:-1] + (D, D))
        M[..., iu0, iu1] = v
        M[..., iu1, iu0] = v
        return M

    def _dual(self, M: Tensor) -> Tensor:
        """Pack a symmetric matrix in the coordinates dual to the packed statistics (off-diagonal doubled)."""
        iu0, iu1 = self._index(M.device)
        return M[..., iu0, iu1] * torch.where(iu0 == iu1, 1.0, 2.0).to(M.dtype)

    def _parts(self, phi):
        D = self.n_features
        S = self.n_stats
        tau, kappa, gamma = phi[..., :D], phi[..., S], phi[..., S + 1]
        m = tau / kappa.unsqueeze(-1)
        winv = self._unpack(phi[..., D:S]) - kappa[..., None, None] * m.unsqueeze(-1) * m.unsqueeze(-2)
        L, info = torch.linalg.cholesky_ex(winv)
        if bool((info > 0).any()):
            raise ValueError(_NOT_PD)
        return m, kappa, 2 * gamma + D, L

    core_family = NormalWishart
    core_feature_dims = 0

    def core_natural_params(self, phi: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        D, S = self.n_features, self.n_stats
        return phi[..., :D], -0.5 * phi[..., S], -0.5 * self._unpack(phi[..., D:S]), phi[..., S + 1]

    def log_partition(self, phi: Tensor) -> Tensor:
        # closed form kept: one Cholesky factor of W^{-1}, against three on the NormalWishart route (class docstring)
        m, kappa, nu, L = self._parts(phi)
        D = self.n_features
        logdet_winv = 2 * L.diagonal(dim1=-2, dim2=-1).log().sum(-1)
        return (0.5 * D * (_LOG_2PI - kappa.log()) + 0.5 * nu * D * math.log(2) - 0.5 * nu * logdet_winv
                + torch.mvlgamma(0.5 * nu, D))

    def expected_stats(self, phi: Tensor) -> Tensor:
        # closed form kept (class docstring); equal to stats_from_core_mean(core_distribution(phi).mean_parameters())
        m, kappa, nu, L = self._parts(phi)
        D = self.n_features
        W = torch.cholesky_inverse(L)
        nuW = nu[..., None, None] * W
        Linv_m = torch.linalg.solve_triangular(L, m.unsqueeze(-1), upper=False).squeeze(-1)
        quad = nu * Linv_m.square().sum(-1) + D / kappa
        i = torch.arange(D, dtype=phi.dtype, device=phi.device)
        e_logdet = (torch.digamma(0.5 * (nu.unsqueeze(-1) - i)).sum(-1) + D * math.log(2)
                    - 2 * L.diagonal(dim1=-2, dim2=-1).log().sum(-1))
        return torch.cat([(nuW @ m.unsqueeze(-1)).squeeze(-1), self._dual(-0.5 * nuW),
                          (-0.5 * quad).unsqueeze(-1), e_logdet.unsqueeze(-1)], dim=-1)

    def core_distribution(self, phi: Tensor, eta: tuple[Tensor, ...] | None = None) -> NormalWishart:
        try:
            return super().core_distribution(phi, eta)
        except ValueError as e:
            raise ValueError(_NOT_PD) from e

    def stats_from_core_mean(self, mean: tuple[Tensor, Tensor, Tensor, Tensor]) -> Tensor:
        m_lam_mu, m_quad, m_lam, m_logdet = mean
        return torch.cat([m_lam_mu, self._dual(-0.5 * m_lam), (-0.5 * m_quad).unsqueeze(-1), m_logdet.unsqueeze(-1)],
                         dim=-1)

    def to_standard(self, phi: Tensor) -> dict[str, Tensor]:
        m, kappa, nu, L = self._parts(phi)
        return {"loc": m, "kappa": kappa, "df": nu, "scale_tril": torch.linalg.cholesky(torch.cholesky_inverse(L))}

    def from_standard(self, params: dict[str, Tensor]) -> Tensor:
        m, kappa, nu, LW = params["loc"], params["kappa"], params["df"], params["scale_tril"]
        winv = torch.cholesky_inverse(LW)
        B = winv + kappa[..., None, None] * m.unsqueeze(-1) * m.unsqueeze(-2)
        gamma = 0.5 * (nu - self.n_features)
        return torch.cat([kappa.unsqueeze(-1) * m, self._pack(B), kappa.unsqueeze(-1), gamma.unsqueeze(-1)], dim=-1)

    @property
    def guide_constraints(self) -> dict[str, constraints.Constraint]:
        return {"loc": constraints.real, "kappa": constraints.positive,
                "df": constraints.greater_than(self.n_features - 1), "cov_tril": constraints.lower_cholesky}

    def to_guide(self, phi: Tensor) -> dict[str, Tensor]:
        m, kappa, nu, L = self._parts(phi)
        # cov_tril: Cholesky factor of E[Lambda]^{-1} = W^{-1} / nu, of the data's scale
        return {"loc": m, "kappa": kappa, "df": nu, "cov_tril": L / nu.sqrt()[..., None, None]}

    def guide_to_standard(self, params: dict[str, Tensor]) -> dict[str, Tensor]:
        nu = params["df"]
        W = torch.cholesky_inverse(params["cov_tril"]) / nu[..., None, None]
        return {"loc": params["loc"], "kappa": params["kappa"], "df": nu, "scale_tril": torch.linalg.cholesky(W)}

    def sample_theta(self, prefix: str, params: dict[str, Tensor]) -> dict[str, Tensor]:
        prec = pyro.sample(f"{prefix}_precision", Wishart(params["df"], scale_tril=params["scale_tril"]))
        prec = 0.5 * (prec + prec.transpose(-1, -2))
        loc = pyro.sample(f"{prefix}_loc",
                          MultivariateNormal(params["loc"], precision_matrix=params["kappa"][..., None, None] * prec))
        return {"precision": prec, "loc": loc}

    def theta_stats(self, theta: dict[str, Tensor]) -> Tensor:
        prec, mu = theta["precision"], theta["loc"]
        prec_mu = (prec @ mu.unsqueeze(-1)).squeeze(-1)
        logdet = 2 * torch.linalg.cholesky(prec).diagonal(dim1=-2, dim2=-1).log().sum(-1)
        return torch.cat([prec_mu, self._dual(-0.5 * prec), (-0.5 * (mu * prec_mu).sum(-1)).unsqueeze(-1),
                          logdet.unsqueeze(-1)], dim=-1)

    def summary(self, phi: Tensor) -> dict[str, Tensor]:
        m, kappa, nu, L = self._parts(phi)
        L_nu = L / nu.sqrt()[..., None, None]  # cholesky of W^{-1}/nu = E[Lambda]^{-1}
        cov = L_nu @ L_nu.transpose(-1, -2)
        prec = torch.cholesky_inverse(L_nu)
        return {"means_": self._shifted(m), "covariances_": cov, "precisions_": prec,
                "precisions_cholesky_": torch.linalg.cholesky(prec), "mean_precision_": kappa,
                "degrees_of_freedom_": nu}

    def point_theta(self, phi: Tensor) -> dict[str, Tensor]:
        m, _, nu, L = self._parts(phi)
        return {"loc": m, "precision": torch.cholesky_inverse(L / nu.sqrt()[..., None, None])}


class TiedGaussianEmission(FullGaussianEmission):
    r"""
    Gaussians sharing one precision matrix, with the Normal-Wishart prior of scikit-learn's
    ``covariance_type="tied"``: :math:`\Lambda\sim\mathcal W(\nu_0, W_0)`,
    :math:`\mu_k\mid\Lambda\sim N(m_0, (\kappa_0\Lambda)^{-1})` for every ``k``.

    The exact posterior given responsibilities is :math:`q(\Lambda)\prod_k q(\mu_k\mid\Lambda)` with
    :math:`\nu = \nu_0 + N`, :math:`\kappa_k = \kappa_0 + N_k`, :math:`m_k` as for ``full`` and

    .. math::

        W^{-1} = W_0^{-1} + \sum_k\big[B_k - \kappa_k m_k m_k^T - W_0^{-1}\big]
               = \sum_k W_k^{-1} - (K-1)\,W_0^{-1},

    where :math:`(\tau_k, B_k, \kappa_k, \gamma_k)` are the per-component rows of ``phi`` in the ``full``
    coordinates (``phi_k = phi_0 + sum_n r_nk u(x_n)``) and :math:`W_k^{-1}` is what ``full`` would make of
    row ``k`` alone; likewise :math:`\nu = \sum_k\nu_k - (K-1)\nu_0`.  The joint natural parameter is an
    affine function of the rows, so the conjugate update, the natural-gradient step (a convex combination of
    rows) and the ELBO's expected log-likelihood (the ``full`` formula with the shared :math:`W, \nu`) keep
    their form; :meth:`kl` returns per-row shares that sum to the *joint* KL, and the merge moves use the
    change of the joint log partition (:meth:`merge_log_partition_gain`).

    scikit-learn's ``BayesianGaussianMixture`` uses the degrees of freedom :math:`\nu_0 + N/K` for the shared
    precision (and scales the scatter likewise), an approximation; here the posterior is the exact conjugate
    one (:math:`\nu_0 + N`), so the covariances agree to ``O(1/N)`` but the ELBOs are not comparable.

    The Pyro model/guide (``method="svi"``) supports only component-wise emissions.
    """

    name = "tied"

    def _shared(self, phi: Tensor) -> tuple[Tensor, Tensor]:
        """``(nu, L)`` of the shared Wishart: degrees of freedom and the Cholesky factor of :math:`W^{-1}`."""
        D, S = self.n_features, self.n_stats
        K = phi.shape[-2]
        phi0 = self.prior_natural.to(phi.device, phi.dtype)
        tau, kappa, gamma = phi[..., :D], phi[..., S], phi[..., S + 1]
        tau0, kappa0, gamma0 = phi0[:D], phi0[S], phi0[S + 1]
        B = self._unpack(phi[..., D:S].sum(-2) - (K - 1) * phi0[D:S])
        outer = (tau.unsqueeze(-1) * tau.unsqueeze(-2) / kappa[..., None, None]).sum(-3)
        winv = B - outer
        # B_tot = sum_k B_k - (K - 1) W0^{-1}, with W0^{-1} = B0 - tau0 tau0^T / kappa0
        winv = winv + (K - 1) * tau0.unsqueeze(-1) * tau0.unsqueeze(-2) / kappa0
        nu = 2 * (gamma.sum(-1) - (K - 1) * gamma0) + D
        L, info = torch.linalg.cholesky_ex(winv)
        if bool((info > 0).any()):
            raise ValueError(_NOT_PD)
        return nu, L

    def joint_log_partition(self, phi: Tensor) -> Tensor:
        r"""
        :math:`Z` of the joint :math:`q(\Lambda, \mu_{1..K})`, shape ``(...)`` for ``phi`` ``(..., K, P)``:
        :math:`\sum_k \tfrac D2\log(2\pi/\kappa_k)` plus the Wishart normaliser.
        """
        D, S = self.n_features, self.n_stats
        nu, L = self._shared(phi)
        kappa = phi[..., S]
        logdet_winv = 2 * L.diagonal(dim1=-2, dim2=-1).log().sum(-1)
        return (0.5 * D * (_LOG_2PI - kappa.log()).sum(-1) + 0.5 * nu * D * math.log(2) - 0.5 * nu * logdet_winv
                + torch.mvlgamma(0.5 * nu, D))

    def log_partition(self, phi: Tensor) -> Tensor:
        raise NotImplementedError("the tied Gaussian has no per-component log partition; see joint_log_partition")

    def expected_stats(self, phi: Tensor) -> Tensor:
        D, S = self.n_features, self.n_stats
        nu, L = self._shared(phi)
        kappa = phi[..., S]
        m = phi[..., :D] / kappa.unsqueeze(-1)
        W = torch.cholesky_inverse(L)
        nuW = nu[..., None, None] * W
        Linv_m = torch.linalg.solve_triangular(L.unsqueeze(-3), m.unsqueeze(-1), upper=False).squeeze(-1)
        quad = nu.unsqueeze(-1) * Linv_m.square().sum(-1) + D / kappa
        i = torch.arange(D, dtype=phi.dtype, device=phi.device)
        e_logdet = (torch.digamma(0.5 * (nu.unsqueeze(-1) - i)).sum(-1) + D * math.log(2)
                    - 2 * L.diagonal(dim1=-2, dim2=-1).log().sum(-1))
        K = phi.shape[-2]
        shared = self._dual(-0.5 * nuW).unsqueeze(-2).expand(phi.shape[:-1] + (S - D,))
        return torch.cat([m @ nuW, shared, (-0.5 * quad).unsqueeze(-1),
                          e_logdet[..., None, None].expand(phi.shape[:-2] + (K, 1))], dim=-1)

    def kl(self, phi: Tensor, phi0: Tensor, expected: Tensor | None = None) -> Tensor:
        """Per-component shares of the joint KL (they sum to it; see the class docstring)."""
        expected = self.expected_stats(phi) if expected is None else expected
        K = phi.shape[-2]
        z_prior = self.joint_log_partition(phi0.expand(phi.shape))
        return ((phi - phi0) * expected).sum(-1) + ((z_prior - self.joint_log_partition(phi)) / K).unsqueeze(-1)

    def merge_log_partition_gain(self, phi: Tensor, phi0: Tensor, ii: Tensor, jj: Tensor) -> Tensor:
        merged = phi.expand((ii.numel(),) + phi.shape).clone()
        rows = torch.arange(ii.numel(), device=phi.device)
        merged[rows, ii] = phi[ii] + phi[jj] - phi0
        merged[rows, jj] = phi0
        return self.joint_log_partition(merged) - self.joint_log_partition(phi)

    def summary(self, phi: Tensor) -> dict[str, Tensor]:
        D, S = self.n_features, self.n_stats
        nu, L = self._shared(phi)
        kappa = phi[..., S]
        L_nu = L / nu.sqrt()
        cov = L_nu @ L_nu.T
        prec = torch.cholesky_inverse(L_nu)
        return {"means_": self._shifted(phi[..., :D] / kappa.unsqueeze(-1)), "covariances_": cov,
                "precisions_": prec, "precisions_cholesky_": torch.linalg.cholesky(prec), "mean_precision_": kappa,
                "degrees_of_freedom_": nu}

    def point_theta(self, phi: Tensor) -> dict[str, Tensor]:
        D, S = self.n_features, self.n_stats
        nu, L = self._shared(phi)
        prec = torch.cholesky_inverse(L / nu.sqrt())
        return {"loc": phi[..., :D] / phi[..., S].unsqueeze(-1), "precision": prec.expand(phi.shape[0], D, D)}
