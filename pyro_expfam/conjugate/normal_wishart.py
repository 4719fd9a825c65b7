# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
r"""
The Normal–Wishart distribution, the conjugate prior of a MultivariateNormal
likelihood with unknown mean and precision matrix, and its conjugate pair.
Every matrix computation goes through Cholesky factors.
"""

from __future__ import annotations

import math

import pyro.distributions as pdist
import torch
from torch import Tensor
from torch.distributions import constraints, register_kl

from ..distributions.exp_family import ExponentialFamily, bregman_kl
from ._solve import bisect_increasing, cholesky_or_raise, inverse_scale_tril
from .registry import ConjugatePair, _sum_observations, register_conjugate

__all__ = ["NormalWishart"]

_LOG_2PI = math.log(2 * math.pi)
_LOG_2 = math.log(2.0)


class _NormalWishartSupport(constraints.Constraint):
    """Matrices of shape ``(d + 1, d)`` whose first row is finite and whose last ``d`` rows are positive definite."""

    event_dim = 2

    def check(self, value: Tensor) -> Tensor:
        if value.dim() < 2 or value.shape[-2] != value.shape[-1] + 1:
            return torch.zeros(value.shape[:-2], dtype=torch.bool, device=value.device)
        lam = value[..., 1:, :]
        sym = (lam - lam.mT).abs().amax((-2, -1)) <= 1e-6 * lam.abs().amax((-2, -1)).clamp(min=1.0)
        pd = torch.linalg.cholesky_ex(lam).info.eq(0)
        return value[..., 0, :].isfinite().all(-1) & sym & pd

    def __repr__(self) -> str:
        return "NormalWishartSupport()"


class NormalWishart(ExponentialFamily, pdist.TorchDistribution):
    r"""
    Normal–Wishart distribution over a mean vector and a precision matrix
    :math:`(\mu, \Lambda)`:

    .. math::

        \Lambda \sim \mathrm{Wishart}(\nu, V),\qquad
        \mu \mid \Lambda \sim \mathcal N\big(\mu_0, (\kappa\Lambda)^{-1}\big),

    with :math:`E[\Lambda] = \nu V` (torch's Wishart convention: the scale
    matrix :math:`V` is given as ``covariance_matrix``, ``precision_matrix``
    (:math:`V^{-1}`) or ``scale_tril`` (its Cholesky factor), exactly one of them).

    A value is a tensor of shape ``batch_shape + (d + 1, d)`` whose row 0 is
    :math:`\mu` and whose rows ``1..d`` are :math:`\Lambda` (see :meth:`split`
    and :meth:`join`).  It is the conjugate prior of
    ``MultivariateNormal(mu, precision_matrix=Lambda)``; the posterior
    predictive is a multivariate Student-t.

    As an exponential family: :math:`T = (\Lambda\mu,\ \mu^\top\Lambda\mu,\ \Lambda,\ \log|\Lambda|)`,
    :math:`\eta = (\kappa\mu_0,\ -\kappa/2,\ -\tfrac12(V^{-1} + \kappa\mu_0\mu_0^\top),\ (\nu - d)/2)`
    (event ranks ``(1, 0, 2, 0)``),
    :math:`A = -\tfrac d2\log\kappa + \tfrac{\nu d}2\log 2 + \tfrac\nu2\log|V| + \log\Gamma_d(\nu/2)`
    and constant carrier measure :math:`k = -\tfrac d2\log 2\pi`.

    :param Tensor loc: :math:`\mu_0`, shape ``batch_shape + (d,)``.
    :param precision_scale: :math:`\kappa > 0` (the precision of :math:`\mu` is :math:`\kappa\Lambda`).
    :param df: :math:`\nu > d - 1`, the Wishart degrees of freedom.
    :param Tensor covariance_matrix: the Wishart scale matrix :math:`V`.
    :param Tensor precision_matrix: its inverse :math:`V^{-1}`.
    :param Tensor scale_tril: the lower Cholesky factor of :math:`V`.
    """

    arg_constraints = {
        "loc": constraints.real_vector,
        "precision_scale": constraints.positive,
        "df": constraints.positive,
        "scale_tril": constraints.lower_cholesky,
    }
    support = _NormalWishartSupport()
    has_rsample = True
    _natural_param_event_dims = (1, 0, 2, 0)
    # the joint constraints (kappa > 0, nu > d - 1, V^{-1} positive definite) are checked in _check_natural_params
    _natural_param_constraints = (
        constraints.real_vector,
        constraints.less_than(0.0),
        constraints.real,
        constraints.real,
    )

    def __init__(
        self,
        loc: Tensor,
        precision_scale,
        df,
        covariance_matrix: Tensor | None = None,
        precision_matrix: Tensor | None = None,
        scale_tril: Tensor | None = None,
        validate_args: bool | None = None,
    ):
        given = [m for m in (covariance_matrix, precision_matrix, scale_tril) if m is not None]
        if len(given) != 1:
            raise ValueError("exactly one of covariance_matrix, precision_matrix, scale_tril must be given")
        loc = torch.as_tensor(loc)
        if loc.dim() < 1:
            raise ValueError("loc must be at least one-dimensional")
        d = loc.shape[-1]
        ref = loc if loc.is_floating_point() else given[0]
        m = torch.as_tensor(given[0], dtype=ref.dtype, device=ref.device)
        if m.dim() < 2 or m.shape[-2:] != (d, d):
            raise ValueError(f"the scale matrix must have shape (..., {d}, {d}), got {tuple(m.shape)}")
        loc = loc.to(m.dtype)
        precision_scale = torch.as_tensor(precision_scale, dtype=m.dtype, device=m.device)
        df = torch.as_tensor(df, dtype=m.dtype, device=m.device)
        batch_shape = torch.broadcast_shapes(loc.shape[:-1], precision_scale.shape, df.shape, m.shape[:-2])
        if validate_args is not False and (validate_args or torch.distributions.Distribution._validate_args):
            if not bool((df > d - 1).all()):
                raise ValueError(f"df must be greater than d - 1 = {d - 1}")
        if scale_tril is not None:
            tril = m
        elif covariance_matrix is not None:
            tril = cholesky_or_raise(m, "covariance_matrix")
        else:
            tril = inverse_scale_tril(cholesky_or_raise(m, "precision_matrix"))
        self.loc = loc.expand(batch_shape + (d,))
        self.precision_scale = precision_scale.expand(batch_shape)
        self.df = df.expand(batch_shape)
        self.scale_tril = tril.expand(batch_shape + (d, d))
        super().__init__(batch_shape, torch.Size([d + 1, d]), validate_args=validate_args)

    @classmethod
    def _constructor_args(cls, d) -> dict:
        return {"loc": d.loc, "precision_scale": d.precision_scale, "df": d.df, "scale_tril": d.scale_tril}

    def expand(self, batch_shape, _instance=None) -> NormalWishart:
        new = self._get_checked_instance(NormalWishart, _instance)
        batch_shape = torch.Size(batch_shape)
        d = self.loc.shape[-1]
        new.loc = self.loc.expand(batch_shape + (d,))
        new.precision_scale = self.precision_scale.expand(batch_shape)
        new.df = self.df.expand(batch_shape)
        new.scale_tril = self.scale_tril.expand(batch_shape + (d, d))
        super(NormalWishart, new).__init__(batch_shape, self.event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    @property
    def dim(self) -> int:
        """The dimension ``d`` of :math:`\\mu`."""
        return self.loc.shape[-1]

    @property
    def covariance_matrix(self) -> Tensor:
        """The Wishart scale matrix :math:`V`."""
        return self.scale_tril @ self.scale_tril.mT

    @property
    def precision_matrix(self) -> Tensor:
        """:math:`V^{-1}`."""
        return torch.cholesky_inverse(self.scale_tril)

    # ------------------------------------------------------------------ #
    @staticmethod
    def split(value: Tensor) -> tuple[Tensor, Tensor]:
        """Split a value of shape ``(..., d + 1, d)`` into ``(mu, Lambda)``."""
        return value[..., 0, :], value[..., 1:, :]

    @staticmethod
    def join(mu: Tensor, precision: Tensor) -> Tensor:
        """Join ``mu`` (``(..., d)``) and ``Lambda`` (``(..., d, d)``) into a value of shape ``(..., d + 1, d)``."""
        mu = torch.as_tensor(mu)
        precision = torch.as_tensor(precision)
        batch = torch.broadcast_shapes(mu.shape[:-1], precision.shape[:-2])
        d = mu.shape[-1]
        return torch.cat([mu.expand(batch + (d,)).unsqueeze(-2), precision.expand(batch + (d, d))], -2)

    def precision_marginal(self) -> pdist.Wishart:
        r"""The marginal of :math:`\Lambda`: ``Wishart(df, scale_tril=scale_tril)``."""
        return pdist.Wishart(self.df, scale_tril=self.scale_tril)

    def loc_marginal(self) -> pdist.MultivariateStudentT:
        r"""The marginal of :math:`\mu`: multivariate Student-t with :math:`\nu - d + 1` degrees of
        freedom, location :math:`\mu_0` and scale matrix :math:`V^{-1}/(\kappa(\nu - d + 1))`."""
        dof = self.df - self.dim + 1
        tril = self._precision_tril() * (self.precision_scale * dof).rsqrt()[..., None, None]
        return pdist.MultivariateStudentT(dof, self.loc, tril)

    def _precision_tril(self) -> Tensor:
        """Lower Cholesky factor of :math:`V^{-1}`."""
        return inverse_scale_tril(self.scale_tril)

    # ------------------------------------------------------------------ #
    def log_prob(self, value: Tensor) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        mu, lam = self.split(value)
        d = self.dim
        chol = torch.linalg.cholesky(lam)
        logdet_lam = 2 * chol.diagonal(dim1=-2, dim2=-1).log().sum(-1)
        # tr(V^{-1} Lambda) = |L^{-1} C|_F^2 with V = L L^T and Lambda = C C^T
        white = torch.linalg.solve_triangular(self.scale_tril, chol, upper=False)
        trace = white.square().sum((-2, -1))
        quad = (chol.mT @ (mu - self.loc).unsqueeze(-1)).squeeze(-1).square().sum(-1)
        nu, kappa = self.df, self.precision_scale
        logdet_v = 2 * self.scale_tril.diagonal(dim1=-2, dim2=-1).log().sum(-1)
        return (
            0.5 * d * kappa.log()
            - 0.5 * d * _LOG_2PI
            + 0.5 * (nu - d) * logdet_lam
            - 0.5 * kappa * quad
            - 0.5 * trace
            - 0.5 * nu * d * _LOG_2
            - 0.5 * nu * logdet_v
            - torch.mvlgamma(0.5 * nu, d)
        )

    def rsample(self, sample_shape: torch.Size = torch.Size()) -> Tensor:
        sample_shape = torch.Size(sample_shape)
        d = self.dim
        shape = sample_shape + self.batch_shape
        dtype, device = self.loc.dtype, self.loc.device
        # Bartlett decomposition: Lambda = (L A)(L A)^T with A lower triangular,
        # A_ii^2 ~ chi2(nu - i) (i = 0..d-1) and A_ij ~ N(0, 1) below the diagonal, so
        # C = L A is the Cholesky factor of Lambda itself (no factorisation of the sample).
        i = torch.arange(d, dtype=dtype, device=device)
        chi2 = pdist.Gamma(0.5 * (self.df.unsqueeze(-1) - i), torch.full_like(i, 0.5)).rsample(sample_shape)
        chi2 = chi2.clamp(min=torch.finfo(dtype).tiny)
        noise = torch.randn(shape + (d, d), dtype=dtype, device=device).tril(-1)
        bartlett = noise + torch.diag_embed(chi2.sqrt())
        chol = self.scale_tril @ bartlett
        lam = chol @ chol.mT
        z = torch.randn(sample_shape + self.loc.shape, dtype=self.loc.dtype, device=self.loc.device)
        # mu = mu0 + kappa^{-1/2} C^{-T} z has covariance (kappa C C^T)^{-1}
        noise = torch.linalg.solve_triangular(chol.mT, z.unsqueeze(-1), upper=True).squeeze(-1)
        mu = self.loc + noise * self.precision_scale.rsqrt().unsqueeze(-1)
        return self.join(mu, lam)

    @property
    def mean(self) -> Tensor:
        return self.join(self.loc, self.df[..., None, None] * self.covariance_matrix)

    # ------------------------------------------------------------------ #
    # Exponential-family interface
    # ------------------------------------------------------------------ #
    @property
    def _carrier_constant(self) -> float:
        return -0.5 * self.dim * _LOG_2PI

    @property
    def _mean_carrier_measure(self) -> float:
        return self._carrier_constant

    @property
    def _natural_params(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        kappa = self.precision_scale
        m = self.loc
        outer = m.unsqueeze(-1) * m.unsqueeze(-2)
        return (
            kappa.unsqueeze(-1) * m,
            -0.5 * kappa,
            -0.5 * (self.precision_matrix + kappa[..., None, None] * outer),
            0.5 * (self.df - self.dim),
        )

    @staticmethod
    def _ordinary(eta1: Tensor, eta2: Tensor, eta3: Tensor, eta4: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """(loc, kappa, df, V^{-1}) from natural parameters."""
        d = eta1.shape[-1]
        kappa = -2.0 * eta2
        loc = eta1 / kappa.unsqueeze(-1)
        # V^{-1} = -2 eta3 - kappa mu0 mu0^T = -2 eta3 - eta1 eta1^T / kappa
        inv_v = -(eta3 + eta3.mT) - (eta1.unsqueeze(-1) * loc.unsqueeze(-2))
        inv_v = 0.5 * (inv_v + inv_v.mT)
        return loc, kappa, 2.0 * eta4 + d, inv_v

    def _log_normalizer(self, eta1: Tensor, eta2: Tensor, eta3: Tensor, eta4: Tensor) -> Tensor:
        _, kappa, nu, inv_v = self._ordinary(eta1, eta2, eta3, eta4)
        d = eta1.shape[-1]
        logdet_v = -2 * cholesky_or_raise(inv_v, "V^{-1}").diagonal(dim1=-2, dim2=-1).log().sum(-1)
        return -0.5 * d * kappa.log() + 0.5 * nu * d * _LOG_2 + 0.5 * nu * logdet_v + torch.mvlgamma(0.5 * nu, d)

    def _log_normalizer_ordinary(self) -> Tensor:
        """:math:`A` evaluated from the ordinary parameters (no cancellation in :math:`V^{-1}`)."""
        d, nu = self.dim, self.df
        logdet_v = 2 * self.scale_tril.diagonal(dim1=-2, dim2=-1).log().sum(-1)
        return (
            -0.5 * d * self.precision_scale.log()
            + 0.5 * nu * d * _LOG_2
            + 0.5 * nu * logdet_v
            + torch.mvlgamma(0.5 * nu, d)
        )

    @classmethod
    def _check_natural_params(cls, *natural_params: Tensor, what: str = "natural parameters", **kwargs) -> None:
        _, kappa, nu, inv_v = cls._ordinary(*natural_params)
        d = natural_params[0].shape[-1]
        ok = bool((kappa > 0).all()) and bool((nu > d - 1).all())
        ok = ok and bool(torch.linalg.cholesky_ex(inv_v).info.eq(0).all())
        if not ok:
            raise ValueError(
                f"NormalWishart: {what} leave the natural parameter space (need kappa = -2 eta2 > 0, "
                f"df = 2 eta4 + d > d - 1 and V^-1 = -2 eta3 - eta1 eta1^T / kappa positive definite)"
            )

    @classmethod
    def _from_natural_params(cls, eta1: Tensor, eta2: Tensor, eta3: Tensor, eta4: Tensor, **fixed) -> NormalWishart:
        """
        Build a NormalWishart from natural parameters (see the class docstring).

        :param Tensor eta1: :math:`\\kappa\\mu_0`, shape ``batch_shape + (d,)``.
        :param Tensor eta2: :math:`-\\kappa/2`.
        :param Tensor eta3: :math:`-(V^{-1} + \\kappa\\mu_0\\mu_0^\\top)/2`, shape ``batch_shape + (d, d)``.
        :param Tensor eta4: :math:`(\\nu - d)/2`.
        """
        loc, kappa, nu, inv_v = cls._ordinary(eta1, eta2, eta3, eta4)
        return cls(loc, kappa, nu, precision_matrix=inv_v, **fixed)

    def sufficient_statistics(self, value: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        r"""
        :math:`T(\mu, \Lambda) = (\Lambda\mu, \mu^\top\Lambda\mu, \Lambda, \log|\Lambda|)`.

        :param Tensor value: a value of shape ``(..., d + 1, d)``.
        """
        mu, lam = self.split(value)
        lam_mu = (lam @ mu.unsqueeze(-1)).squeeze(-1)
        logdet = 2 * torch.linalg.cholesky(lam).diagonal(dim1=-2, dim2=-1).log().sum(-1)
        batch = torch.broadcast_shapes(mu.shape[:-1], self.batch_shape)
        d = self.dim
        return (
            lam_mu.expand(batch + (d,)),
            (mu * lam_mu).sum(-1).expand(batch),
            lam.expand(batch + (d, d)),
            logdet.expand(batch),
        )

    def log_carrier_measure(self, value: Tensor) -> Tensor:
        r"""
        :math:`k = -\tfrac d2\log 2\pi`.

        :param Tensor value: a value of shape ``(..., d + 1, d)``.
        """
        batch = torch.broadcast_shapes(value.shape[:-2], self.batch_shape)
        return torch.full(batch, self._carrier_constant, dtype=self.loc.dtype, device=self.loc.device)

    def mean_parameters(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        r"""
        :math:`E[\Lambda] = \nu V`, :math:`E[\Lambda\mu] = \nu V\mu_0`,
        :math:`E[\mu^\top\Lambda\mu] = \nu\mu_0^\top V\mu_0 + d/\kappa`,
        :math:`E[\log|\Lambda|] = \sum_{i=1}^d\psi((\nu + 1 - i)/2) + d\log 2 + \log|V|`.
        """
        d, nu, kappa = self.dim, self.df, self.precision_scale
        e_lam = nu[..., None, None] * self.covariance_matrix
        e_lam_mu = (e_lam @ self.loc.unsqueeze(-1)).squeeze(-1)
        i = torch.arange(d, dtype=nu.dtype, device=nu.device)
        logdet_v = 2 * self.scale_tril.diagonal(dim1=-2, dim2=-1).log().sum(-1)
        e_logdet = torch.digamma(0.5 * (nu.unsqueeze(-1) - i)).sum(-1) + d * _LOG_2 + logdet_v
        return e_lam_mu, (self.loc * e_lam_mu).sum(-1) + d / kappa, e_lam, e_logdet

    @classmethod
    def from_mean_parameters(
        cls, mean_lam_mu: Tensor, mean_quad: Tensor, mean_lam: Tensor, mean_logdet: Tensor, **fixed
    ) -> NormalWishart:
        r"""
        The NormalWishart with the given expected sufficient statistics (see
        :meth:`mean_parameters`): :math:`\nu` solves
        :math:`\sum_i\psi((\nu + 1 - i)/2) - d\log(\nu/2) = E\log|\Lambda| - \log|E\Lambda|`
        (increasing in :math:`\nu`; bisection), then :math:`V = E[\Lambda]/\nu`,
        :math:`\mu_0 = E[\Lambda]^{-1}E[\Lambda\mu]` and
        :math:`d/\kappa = E[\mu^\top\Lambda\mu] - \mu_0^\top E[\Lambda]\mu_0`.

        :param Tensor mean_lam_mu: :math:`E[\Lambda\mu]`, shape ``(..., d)``.
        :param Tensor mean_quad: :math:`E[\mu^\top\Lambda\mu]`.
        :param Tensor mean_lam: :math:`E[\Lambda]`, shape ``(..., d, d)``, positive definite.
        :param Tensor mean_logdet: :math:`E[\log|\Lambda|]`.
        :raises ValueError: if the moments are not those of any NormalWishart.
        """
        m1 = torch.as_tensor(mean_lam_mu)
        m3 = torch.as_tensor(mean_lam, dtype=m1.dtype, device=m1.device)
        m2 = torch.as_tensor(mean_quad, dtype=m1.dtype, device=m1.device)
        m4 = torch.as_tensor(mean_logdet, dtype=m1.dtype, device=m1.device)
        d = m1.shape[-1]
        chol = cholesky_or_raise(0.5 * (m3 + m3.mT), "from_mean_parameters: mean_lam")
        logdet_m = 2 * chol.diagonal(dim1=-2, dim2=-1).log().sum(-1)
        gap = m4 - logdet_m
        if not bool((gap < 0).all()):
            raise ValueError("from_mean_parameters: mean_logdet must be smaller than log|mean_lam| (Jensen)")
        i = torch.arange(d, dtype=m1.dtype, device=m1.device)

        def f(u: Tensor) -> Tensor:  # u = log(nu - d + 1)
            nu = u.exp() + d - 1
            return torch.digamma(0.5 * (nu.unsqueeze(-1) - i)).sum(-1) - d * torch.log(0.5 * nu)

        nu = bisect_increasing(f, gap, -40.0, 40.0).exp() + d - 1
        loc = torch.cholesky_solve(m1.unsqueeze(-1), chol).squeeze(-1)
        inv_kappa = (m2 - (loc * m1).sum(-1)) / d
        if not bool((inv_kappa > 0).all()):
            raise ValueError("from_mean_parameters: mean_quad - mu0^T mean_lam mu0 must be positive")
        tril = chol * nu.rsqrt()[..., None, None]
        batch = torch.broadcast_shapes(loc.shape[:-1], nu.shape, tril.shape[:-2], inv_kappa.shape)
        return cls(loc.expand(batch + (d,)), inv_kappa.reciprocal(), nu, scale_tril=tril, **fixed)


@register_conjugate
class NormalWishartMultivariateNormal(ConjugatePair):
    r"""
    NormalWishart prior on the mean and precision of a MultivariateNormal
    likelihood: :math:`s(x) = (x, -\tfrac12, -\tfrac12 xx^\top, \tfrac12)`,
    :math:`h(x) = -\tfrac d2\log 2\pi`; predictive multivariate Student-t
    with :math:`\nu - d + 1` degrees of freedom, location :math:`\mu_0` and
    scale matrix :math:`\frac{\kappa + 1}{\kappa(\nu - d + 1)}V^{-1}`.
    """

    prior, likelihood = "NormalWishart", "MultivariateNormal"
    event_dim = 1

    def check_data(self, data, prior, fixed):
        if data.shape[-1] != prior.dim:
            raise ValueError(f"data must be vectors of length {prior.dim}, got shape {tuple(data.shape)}")

    def statistics(self, data, prior, fixed):
        obs = data.shape[:-1]
        half = torch.full(obs, 0.5, dtype=data.dtype, device=data.device)
        return data, -half, -0.5 * data.unsqueeze(-1) * data.unsqueeze(-2), half

    def log_base(self, data, prior, fixed):
        return torch.full(data.shape[:-1], -0.5 * prior.dim * _LOG_2PI, dtype=data.dtype, device=data.device)

    def stable_update(self, prior, data, weights, fixed):
        # centred statistics: V_n^-1 = V_0^-1 + S + kappa_0 W / kappa_n (xbar - mu_0)(xbar - mu_0)^T with
        # S = sum w (x - xbar)(x - xbar)^T: a sum of positive semi-definite terms, no cancellation
        batch_rank = len(prior.batch_shape)
        d = prior.dim
        w = torch.ones_like(data[..., 0]) if weights is None else weights
        total = _sum_observations(w.expand(data.shape[:-1]), 0, batch_rank)
        sum_x = _sum_observations(w.unsqueeze(-1) * data, 1, batch_rank)
        nonzero = (total != 0).unsqueeze(-1)
        safe_total = torch.where(total != 0, total, torch.ones_like(total)).unsqueeze(-1)
        xbar = torch.where(nonzero, sum_x / safe_total, prior.loc)
        diff = data - xbar
        scatter = _sum_observations(w[..., None, None] * diff.unsqueeze(-1) * diff.unsqueeze(-2), 2, batch_rank)
        kappa0, m0, nu0 = prior.precision_scale, prior.loc, prior.df
        kappa = kappa0 + total
        nu = nu0 + total
        if not bool(((kappa > 0) & (nu > d - 1)).all()):
            raise ValueError("NormalWishart: posterior natural parameters leave the natural parameter space")
        shift = xbar - m0
        inv_v = (
            prior.precision_matrix
            + scatter
            + (kappa0 * total / kappa)[..., None, None] * shift.unsqueeze(-1) * shift.unsqueeze(-2)
        )
        inv_v = 0.5 * (inv_v + inv_v.mT)
        if not bool(torch.linalg.cholesky_ex(inv_v).info.eq(0).all()):
            raise ValueError("NormalWishart: posterior natural parameters leave the natural parameter space")
        loc = (kappa0.unsqueeze(-1) * m0 + sum_x) / kappa.unsqueeze(-1)
        post = NormalWishart(loc, kappa, nu, precision_matrix=inv_v)
        log_evidence = (
            post._log_normalizer_ordinary() - prior._log_normalizer_ordinary() - 0.5 * d * _LOG_2PI * total
        )
        return post, log_evidence

    def predictive(self, post, likelihood, fixed):
        d = post.dim
        dof = post.df - d + 1
        kappa = post.precision_scale
        factor = ((kappa + 1) / (kappa * dof)).sqrt()[..., None, None]
        return pdist.MultivariateStudentT(dof, post.loc, post._precision_tril() * factor)

    def likelihood_distribution(self, theta, likelihood, fixed):
        mu, lam = NormalWishart.split(theta)
        return likelihood(mu, precision_matrix=lam)


@register_kl(NormalWishart, NormalWishart)
def _kl_normal_wishart_normal_wishart(p: NormalWishart, q: NormalWishart) -> Tensor:
    # torch's generic fallback for ExponentialFamily pairs sums over the wrong dimensions for
    # batched joint priors; the Bregman divergence of the log normaliser is exact
    return bregman_kl(p, q)
