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


# --------------------------------------------------------------------------- #
# Delegation to the core families (pyro_expfam.distributions / .conjugate)
# --------------------------------------------------------------------------- #
CORE = ["unit", "diag", "full", "bernoulli", "categorical", "poisson"]  # emissions with a linear map to a core family


def _build(name: str):
    g = torch.Generator().manual_seed(0)
    X = _data(name, g)
    em = EMISSIONS[name]()
    phi0 = em.setup(X)
    T, _ = em.sufficient_statistics(X)
    R = torch.softmax(torch.randn(N, K, generator=g, dtype=torch.float64), 1)
    return em, phi0, em.update(phi0, R.T @ T, R.sum(0))


def _theta_from_core(name: str, value: torch.Tensor) -> dict:
    """A core family's sample (leading dims flattened) as the emission's ``theta`` dict."""
    if name == "unit":
        return {"loc": value}
    if name == "diag":
        return {"loc": value[..., 0], "precision": value[..., 1]}
    if name == "full":
        return {"loc": value[..., 0, :], "precision": value[..., 1:, :]}
    return {"rate" if name == "poisson" else "probs": value}


@pytest.mark.parametrize("name", CORE)
def test_core_density_is_q_theta_given_phi(name):
    """
    ``log q(theta | phi) = <phi, s(theta)> - Z(phi)`` equals the core family's own ``log_prob`` (summed over
    features) at draws from the core distribution: checks the linear map eta(phi), ``log_partition`` (its
    constant included, which the gradient and KL checks cannot see) and ``theta_stats`` together.  For ``full``
    ``log_partition`` is the local closed form, so this also pins it to NormalWishart.
    """
    em, _, phi = _build(name)
    core = em.core_distribution(phi)
    torch.manual_seed(0)
    value = core.sample((50,))
    log_prob = core.log_prob(value)  # (50, K) + feature batch
    if em.core_feature_dims:
        log_prob = log_prob.sum(tuple(range(-em.core_feature_dims, 0)))
    flat = value.reshape((50 * K,) + value.shape[2:])
    s = em.theta_stats(_theta_from_core(name, flat)).reshape(50, K, -1)
    expected = (s * phi).sum(-1) - em.log_partition(phi)
    torch.testing.assert_close(log_prob, expected, rtol=1e-9, atol=1e-8)


@pytest.mark.parametrize("name", CORE)
def test_core_mean_parameters_and_bregman_kl(name):
    """
    E[s] = L E[T] from the core's closed-form mean parameters, and the emission KL (a Bregman divergence in phi
    coordinates) equals the core's ``bregman_kl`` summed over features (the affine map leaves it unchanged).
    """
    from pyro_expfam.distributions.exp_family import bregman_kl

    em, phi0, phi = _build(name)
    core = em.core_distribution(phi)
    expected = em.expected_stats(phi)
    torch.testing.assert_close(expected, em.stats_from_core_mean(core.mean_parameters()), rtol=1e-10, atol=1e-10)
    ref = bregman_kl(core, em.core_distribution(phi0))
    if em.core_feature_dims:
        ref = ref.sum(-1)
    torch.testing.assert_close(em.kl(phi, phi0, expected), ref, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(em.kl(phi, phi0), ref, rtol=1e-9, atol=1e-9)


def _normal_kl_at_mean_precision(m, kappa, m0, kappa0, e_lam):
    """
    E_lam[KL(N(m, 1/(kappa lam)) || N(m0, 1/(kappa0 lam)))]: the KL is affine in lam, so it equals the KL at
    lam = E[lam] (torch's closed-form Normal KL, summed over the last dimension).
    """
    scale = (kappa * e_lam).rsqrt().unsqueeze(-1).expand_as(m)
    scale0 = (kappa0 * e_lam).rsqrt().unsqueeze(-1).expand_as(m)
    return torch.distributions.kl_divergence(torch.distributions.Normal(m, scale),
                                             torch.distributions.Normal(m0, scale0)).sum(-1)


@pytest.mark.parametrize("name", ["bernoulli", "categorical", "poisson", "unit", "diag", "spherical"])
def test_kl_matches_torch_closed_forms(name):
    """The emission KL against torch's registered KLs of the standard parametrisation (independent of the maps)."""
    em, phi0, phi = _build(name)
    std, std0 = em.to_standard(phi), em.to_standard(phi0)
    kl = torch.distributions.kl_divergence
    td = torch.distributions
    if name == "bernoulli":
        ref = kl(td.Beta(std["a"], std["b"]), td.Beta(std0["a"], std0["b"])).sum(-1)
    elif name == "categorical":
        ref = kl(td.Dirichlet(std["concentration"]), td.Dirichlet(std0["concentration"])).sum(-1)
    elif name == "poisson":
        ref = kl(td.Gamma(std["shape"], std["rate"]), td.Gamma(std0["shape"], std0["rate"])).sum(-1)
    elif name == "unit":
        ref = _normal_kl_at_mean_precision(std["loc"], std["kappa"], std0["loc"], std0["kappa"], 1.0)
    elif name == "diag":  # per feature: Gamma KL of the precision + expected Normal KL of the mean
        gamma = kl(td.Gamma(std["shape"], std["rate"]), td.Gamma(std0["shape"], std0["rate"]))
        e_lam = std["shape"] / std["rate"]  # the Normal KL is affine in the precision: evaluate it at E[lambda]
        normal = kl(td.Normal(std["loc"], (std["kappa"] * e_lam).rsqrt()),
                    td.Normal(std0["loc"], (std0["kappa"] * e_lam).rsqrt()))
        ref = (gamma + normal).sum(-1)
    else:  # spherical: one shared precision
        gamma = kl(td.Gamma(std["shape"], std["rate"]), td.Gamma(std0["shape"], std0["rate"]))
        ref = gamma + _normal_kl_at_mean_precision(std["loc"], std["kappa"], std0["loc"], std0["kappa"],
                                                   std["shape"] / std["rate"])
    torch.testing.assert_close(em.kl(phi, phi0), ref, rtol=1e-9, atol=1e-9)


def _log_trapezoid(log_f: torch.Tensor, grids: list[torch.Tensor]) -> torch.Tensor:
    """log of the trapezoid rule on a tensor grid (``log_f`` has one dimension per grid), in log space."""
    for grid in reversed(grids):
        w = torch.full_like(grid, float(grid[1] - grid[0]))
        w[0] = w[-1] = w[0] / 2
        log_f = torch.logsumexp(log_f + w.log(), dim=-1)
    return log_f


@pytest.mark.parametrize("name", ["bernoulli", "categorical", "poisson", "unit", "diag", "spherical"])
def test_log_partition_by_quadrature(name):
    """
    Z(phi) = log of the integral of exp<phi, s(theta)> over theta (one feature; two categories), by the trapezoid
    rule on a grid.  Parameters keep the integrand smooth and negligible at the grid ends, so the quadrature
    error is far below the 1e-6 tolerance (the trapezoid rule converges geometrically for such integrands).
    """
    X = {"bernoulli": [[0.0], [1.0]], "categorical": [[0.0], [1.0]], "poisson": [[1.0], [3.0]]}.get(
        name, [[0.3], [-1.2], [2.0]])
    em = EMISSIONS[name]()
    em.setup(torch.tensor(X, dtype=torch.float64))
    one = torch.ones(1, dtype=torch.float64)
    if name in ("bernoulli", "categorical"):
        p = torch.linspace(0, 1, 20001, dtype=torch.float64)
        if name == "bernoulli":
            phi = em.from_standard({"a": 2.5 * one, "b": 3.5 * one})
            theta = {"probs": p.unsqueeze(-1)}
        else:
            phi = em.from_standard({"concentration": torch.tensor([[2.5, 3.5]], dtype=torch.float64)})
            theta = {"probs": torch.stack([p, 1 - p], -1).unsqueeze(-2)}
        grids = [p]
    elif name == "poisson":
        lam = torch.linspace(0, 40, 20001, dtype=torch.float64)
        phi = em.from_standard({"shape": 3.0 * one, "rate": 1.5 * one})
        theta, grids = {"rate": lam.unsqueeze(-1)}, [lam]
    elif name == "unit":
        mu = torch.linspace(-12, 12, 20001, dtype=torch.float64)
        phi = em.from_standard({"loc": 0.7 * one, "kappa": torch.tensor(0.8, dtype=torch.float64)})
        theta, grids = {"loc": mu.unsqueeze(-1)}, [mu]
    else:  # (precision, mean) on a 2-D grid; shape 6, rate 3: the mass below precision 0.02 is ~1e-12
        lam = torch.linspace(0.02, 20, 1201, dtype=torch.float64)
        mu = torch.linspace(-25, 25, 1201, dtype=torch.float64)
        scalar = (lambda v: v * one) if name == "diag" else (lambda v: torch.tensor(v, dtype=torch.float64))
        phi = em.from_standard({"loc": 0.4 * one, "kappa": scalar(2.0), "shape": scalar(6.0), "rate": scalar(3.0)})
        L, M = torch.meshgrid(lam, mu, indexing="ij")
        theta = {"precision": L.reshape(-1, 1) if name == "diag" else L.reshape(-1), "loc": M.reshape(-1, 1)}
        grids = [lam, mu]
    log_f = (em.theta_stats(theta) * phi).sum(-1).reshape([len(g) for g in grids])
    log_f = torch.where(torch.isfinite(log_f), log_f, -math.inf)  # log p at p = 0, 1
    torch.testing.assert_close(em.log_partition(phi), _log_trapezoid(log_f, grids), rtol=0, atol=1e-6)


def test_full_closed_forms_equal_normal_wishart():
    """The full emission keeps Z, E[s] and the KL in closed form (speed); they equal NormalWishart's."""
    from pyro_expfam.distributions.exp_family import bregman_kl

    em, phi0, phi = _build("full")
    core, core0 = em.core_distribution(phi), em.core_distribution(phi0)
    eta = em.core_natural_params(phi)
    torch.testing.assert_close(em.log_partition(phi), core._log_normalizer(*eta) - core._carrier_constant,
                               rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(em.expected_stats(phi), em.stats_from_core_mean(core.mean_parameters()),
                               rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(em.kl(phi, phi0), bregman_kl(core, core0), rtol=1e-9, atol=1e-9)


def test_spherical_closed_forms_equal_core():
    """
    The spherical emission has no linear map to a core family (module docstring); at D = 1 it is the diag
    emission (core NormalGamma), and for any D its Z is D/2 log(2 pi / kappa) plus the core Gamma's log
    normaliser of the precision's marginal, with E[log lambda], E[lambda] the core Gamma's mean parameters.
    """
    from pyro_expfam.distributions import Gamma

    g = torch.Generator().manual_seed(4)
    X1 = torch.randn(30, 1, generator=g, dtype=torch.float64)
    sph, diag = SphericalGaussianEmission(), DiagGaussianEmission()
    phi0 = sph.setup(X1)
    torch.testing.assert_close(diag.setup(X1), phi0)
    T, _ = sph.sufficient_statistics(X1)
    R = torch.softmax(torch.randn(30, K, generator=g, dtype=torch.float64), 1)
    phi = sph.update(phi0, R.T @ T, R.sum(0))
    torch.testing.assert_close(sph.log_partition(phi), diag.log_partition(phi), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(sph.expected_stats(phi), diag.expected_stats(phi), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(sph.kl(phi, phi0), diag.kl(phi, phi0), rtol=1e-9, atol=1e-10)

    em, _, phi = _build("spherical")
    std = em.to_standard(phi)
    gamma = Gamma(std["shape"], std["rate"])
    z = 0.5 * D * (math.log(2 * math.pi) - std["kappa"].log()) + gamma._log_normalizer(*gamma._natural_params)
    torch.testing.assert_close(em.log_partition(phi), z, rtol=1e-10, atol=1e-10)
    m_log, m_lam = gamma.mean_parameters()
    torch.testing.assert_close(em.expected_stats(phi)[:, -1], m_log, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(em.expected_stats(phi)[:, D], -0.5 * m_lam, rtol=1e-10, atol=1e-10)
