# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
r"""
The conjugate pairs whose priors are families of
:mod:`pyro_expfam.distributions` (Beta, Gamma, Dirichlet, Normal,
MultivariateNormal), each written as the increment :math:`s(x)` of the prior's
natural parameters (torch's conventions) and the :math:`\theta`-free part
:math:`h(x)` of the log-likelihood.

=========================  =======================  ==============================  ====================
prior (natural params)     likelihood               s(x)                            h(x)
=========================  =======================  ==============================  ====================
Beta (a, b)                Bernoulli                (x, 1 - x)                      0
Beta (a, b)                Binomial(n)              (x, n - x)                      log C(n, x)
Beta (a, b)                Geometric                (1, x)                          0
Gamma (a - 1, -b)          Poisson                  (x, -1)                         -log x!
Gamma (a - 1, -b)          Exponential              (1, -x)                         0
Dirichlet (alpha)          Categorical              (onehot(x),)                    0
Dirichlet (alpha)          OneHotCategorical        (x,)                            0
Dirichlet (alpha)          Multinomial              (x,)                            log multinomial coef.
Normal (m/v, -1/(2v))      Normal(scale=s)          (x/s^2, -1/(2 s^2))             log N(x | 0, s)
MVN (P m, -P/2)            MVN(precision=L)         (L x, -L/2)                     log N(x | 0, L^-1)
=========================  =======================  ==============================  ====================
"""

from __future__ import annotations

import math

import pyro.distributions as pdist
import torch
import torch.nn.functional as F
from torch import Tensor

from .beta_geometric import BetaGeometric
from .lomax import Lomax
from .registry import ConjugatePair, register_conjugate

_LOG_2PI = math.log(2 * math.pi)


def _check_integer(x: Tensor, what: str, high: Tensor | float | None = None, high_name: str = "") -> None:
    """Raise ValueError unless ``x`` holds integers in ``[0, high]``."""
    ok = (x == x.round()) & (x >= 0)
    if high is not None:
        ok = ok & (x <= high)
    if not bool(ok.all()):
        upper = "inf" if high is None else (high_name or str(high))
        raise ValueError(f"data must be integers in [0, {upper}] for a {what} likelihood")


def _fixed_tensor(fixed: dict, name: str, ref: Tensor) -> Tensor:
    return torch.as_tensor(fixed[name], dtype=ref.dtype, device=ref.device)


def _total_count(fixed: dict, x: Tensor) -> Tensor:
    n = _fixed_tensor(fixed, "total_count", x)
    if not bool(((n >= 0) & (n == n.round())).all()):
        raise ValueError("total_count must be a non-negative integer")
    return n


def _beta_params(post) -> tuple[Tensor, Tensor]:
    return post.concentration1, post.concentration0


# ---------------------------------------------------------------------- #
# Beta priors
# ---------------------------------------------------------------------- #
@register_conjugate
class BetaBernoulli(ConjugatePair):
    """Beta prior on the success probability of a Bernoulli likelihood."""

    prior, likelihood = "Beta", "Bernoulli"

    def check_data(self, data, prior, fixed):
        if not bool(((data == 0) | (data == 1)).all()):
            raise ValueError("data must be 0 or 1 for a Bernoulli likelihood")

    def statistics(self, data, prior, fixed):
        return data, 1 - data

    def log_base(self, data, prior, fixed):
        return torch.zeros_like(data)

    def predictive(self, post, likelihood, fixed):
        a, b = _beta_params(post)
        return likelihood(probs=a / (a + b))

    def likelihood_distribution(self, theta, likelihood, fixed):
        return likelihood(probs=theta)


@register_conjugate
class BetaBinomialPair(ConjugatePair):
    """Beta prior on the success probability of a Binomial likelihood with known ``total_count``."""

    prior, likelihood = "Beta", "Binomial"
    required = ("total_count",)

    def check_data(self, data, prior, fixed):
        _check_integer(data, "Binomial", _total_count(fixed, data), "total_count")

    def statistics(self, data, prior, fixed):
        x, n = torch.broadcast_tensors(data, _total_count(fixed, data))
        return x, n - x

    def log_base(self, data, prior, fixed):
        x, n = torch.broadcast_tensors(data, _total_count(fixed, data))
        return torch.lgamma(n + 1) - torch.lgamma(x + 1) - torch.lgamma(n - x + 1)

    def predictive(self, post, likelihood, fixed):
        a, b = _beta_params(post)
        return pdist.BetaBinomial(a, b, total_count=_total_count(fixed, a))

    def likelihood_distribution(self, theta, likelihood, fixed):
        return likelihood(total_count=_total_count(fixed, theta), probs=theta)


@register_conjugate
class BetaGeometricPair(ConjugatePair):
    """Beta prior on the success probability of a Geometric likelihood (failures before the first success)."""

    prior, likelihood = "Beta", "Geometric"

    def check_data(self, data, prior, fixed):
        _check_integer(data, "Geometric")

    def statistics(self, data, prior, fixed):
        return torch.ones_like(data), data

    def log_base(self, data, prior, fixed):
        return torch.zeros_like(data)

    def predictive(self, post, likelihood, fixed):
        a, b = _beta_params(post)
        return BetaGeometric(a, b)

    def likelihood_distribution(self, theta, likelihood, fixed):
        return likelihood(probs=theta)


# ---------------------------------------------------------------------- #
# Gamma priors
# ---------------------------------------------------------------------- #
@register_conjugate
class GammaPoissonPair(ConjugatePair):
    """Gamma prior on the rate of a Poisson likelihood."""

    prior, likelihood = "Gamma", "Poisson"

    def check_data(self, data, prior, fixed):
        _check_integer(data, "Poisson")

    def statistics(self, data, prior, fixed):
        return data, -torch.ones_like(data)

    def log_base(self, data, prior, fixed):
        return -torch.lgamma(data + 1)

    def predictive(self, post, likelihood, fixed):
        return pdist.GammaPoisson(post.concentration, post.rate)

    def likelihood_distribution(self, theta, likelihood, fixed):
        return likelihood(theta)


@register_conjugate
class GammaExponential(ConjugatePair):
    """Gamma prior on the rate of an Exponential likelihood."""

    prior, likelihood = "Gamma", "Exponential"

    def check_data(self, data, prior, fixed):
        if not bool((data >= 0).all()):
            raise ValueError("data must be non-negative for an Exponential likelihood")

    def statistics(self, data, prior, fixed):
        return torch.ones_like(data), -data

    def log_base(self, data, prior, fixed):
        return torch.zeros_like(data)

    def predictive(self, post, likelihood, fixed):
        return Lomax(post.concentration, post.rate)

    def likelihood_distribution(self, theta, likelihood, fixed):
        return likelihood(theta)


# ---------------------------------------------------------------------- #
# Dirichlet priors
# ---------------------------------------------------------------------- #
def _num_categories(prior) -> int:
    return prior.event_shape[-1]


@register_conjugate
class DirichletCategorical(ConjugatePair):
    """Dirichlet prior on the probabilities of a Categorical likelihood (data are category indices)."""

    prior, likelihood = "Dirichlet", "Categorical"

    def check_data(self, data, prior, fixed):
        _check_integer(data, "Categorical", _num_categories(prior) - 1)

    def statistics(self, data, prior, fixed):
        return (F.one_hot(data.long(), _num_categories(prior)).to(data.dtype),)

    def log_base(self, data, prior, fixed):
        return torch.zeros_like(data)

    def predictive(self, post, likelihood, fixed):
        alpha = post.concentration
        return likelihood(probs=alpha / alpha.sum(-1, keepdim=True))

    def likelihood_distribution(self, theta, likelihood, fixed):
        return likelihood(probs=theta)


@register_conjugate
class DirichletOneHotCategorical(ConjugatePair):
    """Dirichlet prior on the probabilities of a OneHotCategorical likelihood."""

    prior, likelihood = "Dirichlet", "OneHotCategorical"
    event_dim = 1

    def check_data(self, data, prior, fixed):
        k = _num_categories(prior)
        if data.shape[-1] != k or not bool((((data == 0) | (data == 1)).all(-1) & (data.sum(-1) == 1)).all()):
            raise ValueError(f"data must be one-hot vectors of length {k} for a OneHotCategorical likelihood")

    def statistics(self, data, prior, fixed):
        return (data,)

    def log_base(self, data, prior, fixed):
        return torch.zeros_like(data[..., 0])

    def predictive(self, post, likelihood, fixed):
        alpha = post.concentration
        return likelihood(probs=alpha / alpha.sum(-1, keepdim=True))

    def likelihood_distribution(self, theta, likelihood, fixed):
        return likelihood(probs=theta)


@register_conjugate
class DirichletMultinomialPair(ConjugatePair):
    """
    Dirichlet prior on the probabilities of a Multinomial likelihood.  The
    posterior needs no ``total_count`` (each count vector carries its own);
    the predictive does.
    """

    prior, likelihood = "Dirichlet", "Multinomial"
    event_dim = 1
    accepted = ("total_count",)

    def check_data(self, data, prior, fixed):
        k = _num_categories(prior)
        if data.shape[-1] != k:
            raise ValueError(f"data must be count vectors of length {k} for a Multinomial likelihood")
        _check_integer(data, "Multinomial")
        if "total_count" in fixed and not bool((data.sum(-1) == _total_count(fixed, data)).all()):
            raise ValueError("each count vector in data must sum to total_count")

    def statistics(self, data, prior, fixed):
        return (data,)

    def log_base(self, data, prior, fixed):
        return torch.lgamma(data.sum(-1) + 1) - torch.lgamma(data + 1).sum(-1)

    def predictive(self, post, likelihood, fixed):
        if "total_count" not in fixed:
            raise TypeError("the Dirichlet-Multinomial predictive needs total_count")
        alpha = post.concentration
        return pdist.DirichletMultinomial(alpha, total_count=_total_count(fixed, alpha))

    def likelihood_distribution(self, theta, likelihood, fixed):
        return likelihood(int(fixed["total_count"]), probs=theta)


# ---------------------------------------------------------------------- #
# Gaussian priors on a Gaussian mean with known (co)variance
# ---------------------------------------------------------------------- #
@register_conjugate
class NormalNormal(ConjugatePair):
    """Normal prior on the mean of a Normal likelihood with known ``scale`` (standard deviation)."""

    prior, likelihood = "Normal", "Normal"
    required = ("scale",)

    @staticmethod
    def _scale(fixed: dict, ref: Tensor) -> Tensor:
        s = _fixed_tensor(fixed, "scale", ref)
        if not bool((s > 0).all()):
            raise ValueError("scale (the known standard deviation of the Normal likelihood) must be positive")
        return s

    def statistics(self, data, prior, fixed):
        x, s = torch.broadcast_tensors(data, self._scale(fixed, data))
        precision = s.pow(-2)
        return x * precision, -0.5 * precision

    def log_base(self, data, prior, fixed):
        x, s = torch.broadcast_tensors(data, self._scale(fixed, data))
        return -0.5 * (x / s).square() - s.log() - 0.5 * _LOG_2PI

    def predictive(self, post, likelihood, fixed):
        s = self._scale(fixed, post.loc)
        return likelihood(post.loc, (post.scale.square() + s.square()).sqrt())

    def likelihood_distribution(self, theta, likelihood, fixed):
        return likelihood(theta, self._scale(fixed, theta))


def _known_precision(fixed: dict, ref: Tensor, dim: int) -> tuple[Tensor, Tensor]:
    """(precision matrix, its lower Cholesky factor) of the known covariance of an MVN likelihood."""
    given = [k for k in ("scale_tril", "covariance_matrix", "precision_matrix") if k in fixed]
    if len(given) != 1:
        raise TypeError(
            "MultivariateNormal likelihood with known covariance needs exactly one of "
            f"scale_tril, covariance_matrix, precision_matrix; got {given}"
        )
    m = _fixed_tensor(fixed, given[0], ref)
    if m.dim() < 2 or m.shape[-2:] != (dim, dim):
        raise ValueError(f"{given[0]} must have shape (..., {dim}, {dim}), got {tuple(m.shape)}")
    if given[0] == "precision_matrix":
        precision = m
    else:
        tril = m if given[0] == "scale_tril" else _cholesky(m, given[0])
        if given[0] == "scale_tril" and not bool((tril.diagonal(dim1=-2, dim2=-1) > 0).all()):
            raise ValueError("scale_tril must have a positive diagonal")
        precision = torch.cholesky_inverse(tril)
    return precision, _cholesky(precision, "the known precision matrix")


def _cholesky(m: Tensor, what: str) -> Tensor:
    chol, info = torch.linalg.cholesky_ex(m)
    if bool(info.ne(0).any()):
        raise ValueError(f"{what} must be positive definite")
    return chol


@register_conjugate
class MultivariateNormalMultivariateNormal(ConjugatePair):
    """
    MultivariateNormal prior on the mean of a MultivariateNormal likelihood
    with known covariance (``scale_tril``, ``covariance_matrix`` or
    ``precision_matrix``).
    """

    prior, likelihood = "MultivariateNormal", "MultivariateNormal"
    event_dim = 1
    accepted = ("scale_tril", "covariance_matrix", "precision_matrix")

    def check_data(self, data, prior, fixed):
        d = prior.event_shape[-1]
        if data.shape[-1] != d:
            raise ValueError(f"data must be vectors of length {d}, got shape {tuple(data.shape)}")
        _known_precision(fixed, data, d)

    def statistics(self, data, prior, fixed):
        precision, _ = _known_precision(fixed, data, data.shape[-1])
        px = (precision @ data.unsqueeze(-1)).squeeze(-1)
        obs_shape = px.shape[:-1]
        d = data.shape[-1]
        return px, (-0.5 * precision).expand(obs_shape + (d, d))

    def log_base(self, data, prior, fixed):
        d = data.shape[-1]
        _, chol = _known_precision(fixed, data, d)
        white = (chol.mT @ data.unsqueeze(-1)).squeeze(-1)  # |L^T x|^2 = x^T P x
        return -0.5 * white.square().sum(-1) + chol.diagonal(dim1=-2, dim2=-1).log().sum(-1) - 0.5 * d * _LOG_2PI

    def predictive(self, post, likelihood, fixed):
        precision, _ = _known_precision(fixed, post.loc, post.event_shape[-1])
        cov = post.covariance_matrix + torch.cholesky_inverse(_cholesky(precision, "the known precision matrix"))
        return likelihood(post.loc, scale_tril=_cholesky(cov, "the predictive covariance"))

    def likelihood_distribution(self, theta, likelihood, fixed):
        precision, _ = _known_precision(fixed, theta, theta.shape[-1])
        return likelihood(theta, precision_matrix=precision)

