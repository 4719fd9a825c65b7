# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""
Checks of the conjugate emission families of the DP mixture, each against an
independent ground truth: autograd of the log-partition, Pyro/torch
``log_prob``, Monte Carlo moments, and the closed-form Normal-Wishart posterior.
"""

from __future__ import annotations

import math

import pyro
import pytest
import torch

from pyro_expfam.mixture.dpmm import (
    BernoulliEmission,
    CategoricalEmission,
    DiagGaussianEmission,
    FullGaussianEmission,
    PoissonEmission,
    SphericalGaussianEmission,
    UnitGaussianEmission,
)

N, D, K = 60, 3, 4


def _data(name: str, generator: torch.Generator) -> torch.Tensor:
    if name in ("unit", "spherical", "diag", "full"):
        A = torch.randn(D, D, generator=generator, dtype=torch.float64)
        return torch.randn(N, D, generator=generator, dtype=torch.float64) @ A + 1.0
    if name == "bernoulli":
        return (torch.rand(N, D, generator=generator, dtype=torch.float64) < 0.3).double()
    if name == "categorical":
        return torch.randint(0, 4, (N, D), generator=generator).double()
    return torch.poisson(3.0 * torch.ones(N, D, dtype=torch.float64), generator=generator)


EMISSIONS = {
    "unit": UnitGaussianEmission,
    "spherical": SphericalGaussianEmission,
    "diag": DiagGaussianEmission,
    "full": FullGaussianEmission,
    "bernoulli": BernoulliEmission,
    "categorical": CategoricalEmission,
    "poisson": PoissonEmission,
}


@pytest.fixture(params=list(EMISSIONS))
def case(request):
    g = torch.Generator().manual_seed(0)
    X = _data(request.param, g)
    em = EMISSIONS[request.param]()
    phi0 = em.setup(X)
    T, k = em.sufficient_statistics(X)
    R = torch.softmax(torch.randn(N, K, generator=g, dtype=torch.float64), 1)
    phi = em.update(phi0, R.T @ T, R.sum(0))
    return request.param, em, X, phi0, phi


def test_expected_stats_is_gradient_of_log_partition(case):
    _, em, _, _, phi = case
    p = phi.clone().requires_grad_()
    (grad,) = torch.autograd.grad(em.log_partition(p).sum(), p)
    assert torch.allclose(em.expected_stats(phi), grad, rtol=1e-9, atol=1e-9)


def test_standard_and_guide_round_trips(case):
    _, em, _, _, phi = case
    assert torch.allclose(em.from_standard(em.to_standard(phi)), phi, rtol=1e-9, atol=1e-8)
    assert torch.allclose(em.from_standard(em.guide_to_standard(em.to_guide(phi))), phi, rtol=1e-9, atol=1e-8)


def test_kl_is_zero_at_prior_and_positive_elsewhere(case):
    _, em, _, phi0, phi = case
    assert abs(float(em.kl(phi0, phi0))) < 1e-9
    assert bool((em.kl(phi, phi0) > 0).all())


def test_log_likelihood_gemm_matches_log_prob(case):
    """The packed GEMM log-likelihood equals the distributions' own log_prob for sampled parameters."""
    _, em, X, _, phi = case
    pyro.set_rng_seed(1)
    with pyro.plate("k", K):
        theta = em.sample_theta("t", em.to_standard(phi))
    ll = em.log_likelihood(X, theta)
    ref = torch.stack([em.observation_dist(theta, torch.full((N,), j)).log_prob(X) for j in range(K)], 1)
    assert torch.allclose(ll, ref, rtol=1e-9, atol=1e-8)


def test_expected_stats_monte_carlo(case):
    """E_q[s(theta)] in closed form against the mean of s(theta) over draws from q (5 standard errors)."""
    _, em, _, _, phi = case
    M = 20000
    pyro.set_rng_seed(2)
    std = {key: v.expand((M,) + v.shape) for key, v in em.to_standard(phi).items()}
    with pyro.plate("k", K, dim=-1), pyro.plate("m", M, dim=-2):
        theta = em.sample_theta("t", std)
    s = em.theta_stats({key: v.reshape((M * K,) + v.shape[2:]) for key, v in theta.items()}).reshape(M, K, -1)
    se = s.std(0) / math.sqrt(M)
    # 5 standard errors per coordinate: a false alarm over the ~100-400 coordinates has probability < 1e-4
    assert bool(((s.mean(0) - em.expected_stats(phi)).abs() <= 5 * se + 1e-9).all())


def test_full_posterior_matches_textbook_normal_wishart():
    """phi0 + sum_n u(x_n) gives Bishop's (PRML 10.60-10.63) Normal-Wishart posterior."""
    g = torch.Generator().manual_seed(3)
    X = torch.randn(40, 3, generator=g, dtype=torch.float64) + torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    m0 = torch.tensor([0.5, 0.0, -0.5], dtype=torch.float64)
    cov0 = torch.tensor([[2.0, 0.3, 0.0], [0.3, 1.0, 0.2], [0.0, 0.2, 1.5]], dtype=torch.float64)
    em = FullGaussianEmission(mean_prior=m0, mean_precision_prior=0.7, degrees_of_freedom_prior=4.5,
                              covariance_prior=cov0)
    phi0 = em.setup(X)
    T, _ = em.sufficient_statistics(X)
    phi = em.update(phi0, T.sum(0, keepdim=True), torch.tensor([40.0], dtype=torch.float64))
    std = em.to_standard(phi)
    n, xbar = 40, X.mean(0)
    S = (X - xbar).T @ (X - xbar)
    kappa = 0.7 + n
    m = (0.7 * m0 + n * xbar) / kappa
    winv = cov0 + S + 0.7 * n / kappa * torch.outer(xbar - m0, xbar - m0)
    W = std["scale_tril"][0] @ std["scale_tril"][0].T
    assert torch.allclose(std["loc"][0], m)
    assert torch.allclose(std["kappa"][0], torch.tensor(kappa, dtype=torch.float64))
    assert torch.allclose(std["df"][0], torch.tensor(4.5 + n, dtype=torch.float64))
    assert torch.allclose(W, torch.linalg.inv(winv))


def test_bad_emission_input():
    X = torch.tensor([[0.0, 1.0], [2.0, 1.0]])
    with pytest.raises(ValueError, match="Bernoulli"):
        BernoulliEmission().setup(X)
    with pytest.raises(ValueError, match="non-negative integer"):
        PoissonEmission().setup(torch.tensor([[-1.0], [2.0]]))
    with pytest.raises(ValueError, match="integer codes"):
        CategoricalEmission().setup(torch.tensor([[0.5], [1.0]]))
    with pytest.raises(ValueError, match="singular"):
        FullGaussianEmission().setup(torch.tensor([[1.0, 2.0], [2.0, 4.0], [3.0, 6.0]]))
    with pytest.raises(ValueError, match="constant"):
        DiagGaussianEmission().setup(torch.tensor([[1.0, 2.0], [2.0, 2.0], [3.0, 2.0]]))
    with pytest.raises(ValueError, match="degrees_of_freedom_prior"):
        FullGaussianEmission(degrees_of_freedom_prior=0.5).setup(torch.randn(10, 3))
    with pytest.raises(ValueError, match="mean_precision_prior"):
        FullGaussianEmission(mean_precision_prior=-1.0)
