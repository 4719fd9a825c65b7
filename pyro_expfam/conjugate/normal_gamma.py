# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
r"""
The Normal–Gamma distribution, the conjugate prior of a Normal likelihood with
unknown mean and precision, and its conjugate pair.
"""

from __future__ import annotations

import math

import pyro.distributions as pdist
import torch
from torch import Tensor
from torch.distributions import constraints, register_kl
from torch.distributions.utils import broadcast_all

from ..distributions.exp_family import ExponentialFamily, bregman_kl
from ._solve import bisect_increasing
from .registry import ConjugatePair, _sum_observations, register_conjugate

__all__ = ["NormalGamma"]

_LOG_2PI = math.log(2 * math.pi)


class _NormalGammaSupport(constraints.Constraint):
    """Pairs ``(mu, tau)`` in the last dimension with ``mu`` real and ``tau > 0``."""

    event_dim = 1

    def check(self, value: Tensor) -> Tensor:
        if value.shape[-1] != 2:
            return torch.zeros(value.shape[:-1], dtype=torch.bool, device=value.device)
        return value[..., 0].isfinite() & (value[..., 1] > 0) & value[..., 1].isfinite()

    def __repr__(self) -> str:
        return "NormalGammaSupport()"


class NormalGamma(ExponentialFamily, pdist.TorchDistribution):
    r"""
    Normal–Gamma distribution over a mean and a precision :math:`(\mu, \tau)`:

    .. math::

        \tau \sim \mathrm{Gamma}(\alpha, \beta),\qquad
        \mu \mid \tau \sim \mathcal N\big(\mu_0, (\lambda\tau)^{-1}\big).

    A value is a tensor whose last dimension holds ``(mu, tau)`` (event shape
    ``(2,)``; see :meth:`split` and :meth:`join`).  It is the conjugate prior
    of ``Normal(mu, tau ** -0.5)`` with both parameters unknown; the posterior
    predictive is a Student-t.

    As an exponential family: sufficient statistics
    :math:`T = (\tau\mu, \tau\mu^2, \tau, \log\tau)`, natural parameters
    :math:`\eta = (\lambda\mu_0, -\lambda/2, -\beta - \lambda\mu_0^2/2, \alpha - 1/2)`,
    log normaliser :math:`A = \log\Gamma(\alpha) - \alpha\log\beta - \tfrac12\log\lambda`
    and constant carrier measure :math:`k = -\tfrac12\log 2\pi`, so products
    (and hence conjugate updates) are exact sums of natural parameters.

    :param loc: :math:`\mu_0`, the prior mean of :math:`\mu`.
    :param precision_scale: :math:`\lambda > 0`, the number of pseudo-observations
        behind :math:`\mu_0` (the precision of :math:`\mu` is :math:`\lambda\tau`).
    :param concentration: :math:`\alpha > 0`, the Gamma shape of :math:`\tau`.
    :param rate: :math:`\beta > 0`, the Gamma rate of :math:`\tau`.

    Example::

        >>> from pyro_expfam.conjugate import NormalGamma
        >>> d = NormalGamma(0.0, 1.0, 2.0, 2.0)
        >>> mu, tau = NormalGamma.split(d.sample())
        >>> mu.shape, bool(tau > 0)
        (torch.Size([]), True)
    """

    arg_constraints = {
        "loc": constraints.real,
        "precision_scale": constraints.positive,
        "concentration": constraints.positive,
        "rate": constraints.positive,
    }
    support = _NormalGammaSupport()
    has_rsample = True
    _natural_param_event_dims = (0, 0, 0, 0)
    _natural_param_constraints = (
        constraints.real,
        constraints.less_than(0.0),
        constraints.real,
        constraints.greater_than(-0.5),
    )
    _carrier_constant = -0.5 * _LOG_2PI
    _mean_carrier_measure = -0.5 * _LOG_2PI

    def __init__(self, loc, precision_scale, concentration, rate, validate_args: bool | None = None):
        self.loc, self.precision_scale, self.concentration, self.rate = broadcast_all(
            loc, precision_scale, concentration, rate
        )
        super().__init__(self.loc.shape, torch.Size([2]), validate_args=validate_args)

    @classmethod
    def _constructor_args(cls, d) -> dict:
        return {"loc": d.loc, "precision_scale": d.precision_scale, "concentration": d.concentration, "rate": d.rate}

    def expand(self, batch_shape, _instance=None) -> NormalGamma:
        new = self._get_checked_instance(NormalGamma, _instance)
        batch_shape = torch.Size(batch_shape)
        for name in ("loc", "precision_scale", "concentration", "rate"):
            setattr(new, name, getattr(self, name).expand(batch_shape))
        super(NormalGamma, new).__init__(batch_shape, self.event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    # ------------------------------------------------------------------ #
    @staticmethod
    def split(value: Tensor) -> tuple[Tensor, Tensor]:
        """Split a value into ``(mu, tau)``."""
        return value[..., 0], value[..., 1]

    @staticmethod
    def join(mu: Tensor, tau: Tensor) -> Tensor:
        """Join ``mu`` and ``tau`` (broadcast) into a value with last dimension 2."""
        mu, tau = torch.broadcast_tensors(torch.as_tensor(mu), torch.as_tensor(tau))
        return torch.stack([mu, tau], -1)

    def precision_marginal(self) -> pdist.Gamma:
        r"""The marginal of :math:`\tau`: ``Gamma(concentration, rate)``."""
        return pdist.Gamma(self.concentration, self.rate)

    def loc_marginal(self) -> pdist.StudentT:
        r"""The marginal of :math:`\mu`: Student-t with :math:`2\alpha` degrees of freedom, location
        :math:`\mu_0` and scale :math:`\sqrt{\beta/(\alpha\lambda)}`."""
        a = self.concentration
        return pdist.StudentT(2 * a, self.loc, (self.rate / (a * self.precision_scale)).sqrt())

    # ------------------------------------------------------------------ #
    def log_prob(self, value: Tensor) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        mu, tau = self.split(value)
        lam, a, b = self.precision_scale, self.concentration, self.rate
        log_tau = tau.log()
        return (
            a * b.log()
            - torch.lgamma(a)
            + (a - 0.5) * log_tau
            - b * tau
            + 0.5 * lam.log()
            - 0.5 * _LOG_2PI
            - 0.5 * lam * tau * (mu - self.loc).square()
        )

    def rsample(self, sample_shape: torch.Size = torch.Size()) -> Tensor:
        shape = self._extended_shape(sample_shape)[:-1]
        tau = pdist.Gamma(self.concentration, self.rate).rsample(sample_shape)
        # Gamma samples can underflow to 0 in float32 for small concentrations; tau must stay positive
        tau = tau.clamp(min=torch.finfo(tau.dtype).tiny)
        z = torch.randn(shape, dtype=self.loc.dtype, device=self.loc.device)
        mu = self.loc + z * (self.precision_scale * tau).rsqrt()
        return self.join(mu, tau)

    @property
    def mean(self) -> Tensor:
        return self.join(self.loc, self.concentration / self.rate)

    @property
    def variance(self) -> Tensor:
        a, b, lam = self.concentration, self.rate, self.precision_scale
        var_mu = torch.where(a > 1, b / (lam * (a - 1).clamp(min=torch.finfo(a.dtype).tiny)), math.inf)
        return self.join(var_mu, a / b.square())

    # ------------------------------------------------------------------ #
    # Exponential-family interface
    # ------------------------------------------------------------------ #
    @property
    def _natural_params(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        lam = self.precision_scale
        return (
            lam * self.loc,
            -0.5 * lam,
            -self.rate - 0.5 * lam * self.loc.square(),
            self.concentration - 0.5,
        )

    @staticmethod
    def _ordinary(eta1: Tensor, eta2: Tensor, eta3: Tensor, eta4: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        lam = -2.0 * eta2
        loc = eta1 / lam
        rate = -eta3 + eta1.square() / (4.0 * eta2)
        return loc, lam, eta4 + 0.5, rate

    def _log_normalizer(self, eta1: Tensor, eta2: Tensor, eta3: Tensor, eta4: Tensor) -> Tensor:
        _, lam, a, b = self._ordinary(eta1, eta2, eta3, eta4)
        return torch.lgamma(a) - a * b.log() - 0.5 * lam.log()

    def _log_normalizer_ordinary(self) -> Tensor:
        """:math:`A` evaluated from the ordinary parameters (no cancellation in ``rate``)."""
        a = self.concentration
        return torch.lgamma(a) - a * self.rate.log() - 0.5 * self.precision_scale.log()

    @classmethod
    def _check_natural_params(cls, *natural_params: Tensor, what: str = "natural parameters", **kwargs) -> None:
        super()._check_natural_params(*natural_params, what=what, **kwargs)
        rate = cls._ordinary(*natural_params)[3]
        if not bool((rate > 0).all()):
            raise ValueError(
                f"NormalGamma: {what} leave the natural parameter space (the rate "
                "-eta3 + eta1^2 / (4 eta2) must be positive)"
            )

    @classmethod
    def _from_natural_params(cls, eta1: Tensor, eta2: Tensor, eta3: Tensor, eta4: Tensor, **fixed) -> NormalGamma:
        """
        Build a NormalGamma from natural parameters (see the class docstring).

        :param Tensor eta1: :math:`\\lambda\\mu_0`.
        :param Tensor eta2: :math:`-\\lambda/2`.
        :param Tensor eta3: :math:`-\\beta - \\lambda\\mu_0^2/2`.
        :param Tensor eta4: :math:`\\alpha - 1/2`.
        """
        return cls(*cls._ordinary(eta1, eta2, eta3, eta4), **fixed)

    def sufficient_statistics(self, value: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        r"""
        :math:`T(\mu, \tau) = (\tau\mu, \tau\mu^2, \tau, \log\tau)`.

        :param Tensor value: a value with last dimension ``(mu, tau)``.
        """
        mu, tau = self.split(value)
        mu, tau, _ = torch.broadcast_tensors(mu, tau, self.loc)
        return tau * mu, tau * mu.square(), tau, tau.log()

    def log_carrier_measure(self, value: Tensor) -> Tensor:
        r"""
        :math:`k = -\tfrac12\log 2\pi`.

        :param Tensor value: a value with last dimension ``(mu, tau)``.
        """
        mu = torch.broadcast_tensors(value[..., 0], self.loc)[0]
        return torch.full_like(mu, -0.5 * _LOG_2PI)

    def mean_parameters(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        r"""
        :math:`E[T] = (\mu_0\alpha/\beta,\ \mu_0^2\alpha/\beta + 1/\lambda,\ \alpha/\beta,\
        \psi(\alpha) - \log\beta)`.
        """
        a, b, lam, m = self.concentration, self.rate, self.precision_scale, self.loc
        e_tau = a / b
        return m * e_tau, m.square() * e_tau + lam.reciprocal(), e_tau, torch.digamma(a) - b.log()

    @classmethod
    def from_mean_parameters(
        cls, mean_tau_mu: Tensor, mean_tau_mu2: Tensor, mean_tau: Tensor, mean_log_tau: Tensor, **fixed
    ) -> NormalGamma:
        r"""
        The NormalGamma with the given expected sufficient statistics (see
        :meth:`mean_parameters`); the shape :math:`\alpha` solves
        :math:`\psi(\alpha) - \log\alpha = E[\log\tau] - \log E[\tau]` by bisection.

        :param Tensor mean_tau_mu: :math:`E[\tau\mu]`.
        :param Tensor mean_tau_mu2: :math:`E[\tau\mu^2]`.
        :param Tensor mean_tau: :math:`E[\tau] > 0`.
        :param Tensor mean_log_tau: :math:`E[\log\tau] < \log E[\tau]`.
        :raises ValueError: if the moments are not those of any NormalGamma.
        """
        m1, m2, m3, m4 = broadcast_all(mean_tau_mu, mean_tau_mu2, mean_tau, mean_log_tau)
        if not bool((m3 > 0).all()):
            raise ValueError("from_mean_parameters: mean_tau must be positive")
        gap = m4 - m3.log()
        if not bool((gap < 0).all()):
            raise ValueError("from_mean_parameters: mean_log_tau must be smaller than log(mean_tau) (Jensen)")
        inv_lam = m2 - m1.square() / m3
        if not bool((inv_lam > 0).all()):
            raise ValueError("from_mean_parameters: mean_tau_mu2 - mean_tau_mu^2 / mean_tau must be positive")
        log_a = bisect_increasing(lambda u: torch.digamma(u.exp()) - u, gap, -40.0, 40.0)
        a = log_a.exp()
        return cls(m1 / m3, inv_lam.reciprocal(), a, a / m3, **fixed)


@register_conjugate
class NormalGammaNormal(ConjugatePair):
    r"""
    NormalGamma prior on the mean and precision of a Normal likelihood:
    :math:`s(x) = (x, -\tfrac12, -\tfrac12 x^2, \tfrac12)`,
    :math:`h(x) = -\tfrac12\log 2\pi`; predictive Student-t with
    :math:`2\alpha` degrees of freedom, location :math:`\mu_0` and scale
    :math:`\sqrt{\beta(\lambda+1)/(\alpha\lambda)}`.
    """

    prior, likelihood = "NormalGamma", "Normal"

    def statistics(self, data, prior, fixed):
        half = torch.full_like(data, 0.5)
        return data, -half, -0.5 * data.square(), half

    def log_base(self, data, prior, fixed):
        return torch.full_like(data, -0.5 * _LOG_2PI)

    def stable_update(self, prior, data, weights, fixed):
        # centred statistics: rate_n = rate_0 + S/2 + lam_0 W (xbar - mu_0)^2 / (2 lam_n), S = sum w (x - xbar)^2,
        # equal to the natural-parameter route but without subtracting (sum x)^2 / W from sum x^2
        batch_rank = len(prior.batch_shape)
        w = torch.ones_like(data) if weights is None else weights
        x, w = torch.broadcast_tensors(data, w)
        total = _sum_observations(w, 0, batch_rank)
        sum_x = _sum_observations(w * x, 0, batch_rank)
        nonzero = total != 0
        xbar = torch.where(nonzero, sum_x / torch.where(nonzero, total, torch.ones_like(total)), prior.loc)
        centred = _sum_observations(w * (x - xbar).square(), 0, batch_rank)
        lam0, m0, a0, b0 = prior.precision_scale, prior.loc, prior.concentration, prior.rate
        lam = lam0 + total
        a = a0 + 0.5 * total
        if not bool(((lam > 0) & (a > 0)).all()):
            raise ValueError("NormalGamma: posterior natural parameters leave the natural parameter space")
        b = b0 + 0.5 * centred + lam0 * total * (xbar - m0).square() / (2 * lam)
        if not bool((b > 0).all()):
            raise ValueError("NormalGamma: posterior natural parameters leave the natural parameter space")
        post = NormalGamma((lam0 * m0 + sum_x) / lam, lam, a, b)
        log_evidence = post._log_normalizer_ordinary() - prior._log_normalizer_ordinary() - 0.5 * _LOG_2PI * total
        return post, log_evidence

    def predictive(self, post, likelihood, fixed):
        a, b, lam = post.concentration, post.rate, post.precision_scale
        return pdist.StudentT(2 * a, post.loc, (b * (lam + 1) / (a * lam)).sqrt())

    def likelihood_distribution(self, theta, likelihood, fixed):
        mu, tau = NormalGamma.split(theta)
        return likelihood(mu, tau.rsqrt())


@register_kl(NormalGamma, NormalGamma)
def _kl_normal_gamma_normal_gamma(p: NormalGamma, q: NormalGamma) -> Tensor:
    # torch's generic fallback for ExponentialFamily pairs sums over the wrong dimensions for
    # batched joint priors; the Bregman divergence of the log normaliser is exact
    return bregman_kl(p, q)
