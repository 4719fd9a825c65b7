# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""
The generic Bregman KL divergence :func:`pyro_expfam.distributions.exp_family.bregman_kl`
(from ``_log_normalizer`` and ``mean_parameters`` only) against independent
ground truth: torch's registered closed-form ``kl_divergence`` for Beta,
Dirichlet, Gamma, Normal and MultivariateNormal (computed on plain
``torch.distributions`` objects), and Monte Carlo estimates of
:math:`E_p[\\log p - \\log q]` for the joint conjugate priors, which torch does
not cover.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.distributions as td

from pyro_expfam.conjugate import NormalGamma, NormalWishart
from pyro_expfam.distributions import Beta, Dirichlet, Gamma, MultivariateNormal, Normal
from pyro_expfam.distributions.exp_family import bregman_kl


def _pos(shape, g, lo=0.3, hi=5.0):
    return lo + (hi - lo) * torch.rand(shape, generator=g, dtype=torch.float64)


def _spd(batch, d, g):
    A = torch.randn(batch + (d, d), generator=g, dtype=torch.float64)
    return A @ A.mT + 0.5 * torch.eye(d, dtype=torch.float64)


def _beta(b, g):
    a1, a0 = _pos(b, g), _pos(b, g)
    return Beta(a1, a0), td.Beta(a1, a0)


def _dirichlet(b, g):
    c = _pos(b + (4,), g)
    return Dirichlet(c), td.Dirichlet(c)


def _gamma(b, g):
    c, r = _pos(b, g), _pos(b, g)
    return Gamma(c, r), td.Gamma(c, r)


def _normal(b, g):
    m, s = torch.randn(b, generator=g, dtype=torch.float64), _pos(b, g)
    return Normal(m, s), td.Normal(m, s)


def _mvn(b, g):
    m, cov = torch.randn(b + (3,), generator=g, dtype=torch.float64), _spd(b, 3, g)
    return MultivariateNormal(m, cov), td.MultivariateNormal(m, cov)


FAMILIES = {"Beta": _beta, "Dirichlet": _dirichlet, "Gamma": _gamma, "Normal": _normal, "MultivariateNormal": _mvn}


@pytest.mark.parametrize("name", list(FAMILIES))
@pytest.mark.parametrize("shapes", [((), ()), ((5,), (5,)), ((2, 3), (3,)), ((4,), ())], ids=str)
def test_bregman_kl_matches_torch_closed_form(name, shapes):
    """Batched and broadcast batch shapes; the reference is torch's own registered KL on torch classes."""
    g = torch.Generator().manual_seed(list(FAMILIES).index(name))
    p, p_ref = FAMILIES[name](torch.Size(shapes[0]), g)
    q, q_ref = FAMILIES[name](torch.Size(shapes[1]), g)
    expected = td.kl_divergence(p_ref, q_ref)
    actual = bregman_kl(p, q)
    assert actual.shape == torch.broadcast_shapes(p.batch_shape, q.batch_shape)
    torch.testing.assert_close(actual, expected.expand(actual.shape), rtol=1e-9, atol=1e-10)
    # precomputed mean parameters and the method form give the same value
    torch.testing.assert_close(bregman_kl(p, q, p.mean_parameters()), actual, rtol=0, atol=0)
    torch.testing.assert_close(p.bregman_kl(q), actual, rtol=0, atol=0)


@pytest.mark.parametrize("name", list(FAMILIES))
def test_bregman_kl_zero_on_equal_arguments_and_float32(name):
    g = torch.Generator().manual_seed(7)
    p, _ = FAMILIES[name](torch.Size((3,)), g)
    assert float(bregman_kl(p, p).abs().max()) < 1e-12
    # dtype follows the parameters
    p32 = type(p)._from_natural_params(*(e.float() for e in p._expanded_natural_params()))
    q32, _ = FAMILIES[name](torch.Size((3,)), g)
    q32 = type(q32)._from_natural_params(*(e.float() for e in q32._expanded_natural_params()))
    kl32 = bregman_kl(p32, q32)
    assert kl32.dtype == torch.float32
    assert bool((kl32 >= -1e-4).all())


def _monte_carlo_kl(p, q, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(seed)
    x = p.sample((n,))
    diff = p.log_prob(x) - q.log_prob(x)
    return diff.mean(0), diff.std(0) / math.sqrt(n)


def test_bregman_kl_normal_gamma_monte_carlo():
    """
    NormalGamma (no torch KL registered): against E_p[log p - log q] over 40000
    draws, within 5 standard errors (per-coordinate false-alarm probability ~6e-7).
    """
    g = torch.Generator().manual_seed(11)
    b = torch.Size((3,))
    p = NormalGamma(torch.randn(b, generator=g, dtype=torch.float64), _pos(b, g), _pos(b, g, 1.0, 4.0), _pos(b, g))
    q = NormalGamma(torch.randn(b, generator=g, dtype=torch.float64), _pos(b, g), _pos(b, g, 1.0, 4.0), _pos(b, g))
    mc, se = _monte_carlo_kl(p, q, 40000, 0)
    kl = bregman_kl(p, q)
    assert bool(((kl - mc).abs() <= 5 * se).all()), (kl, mc, se)
    assert float(bregman_kl(p, p).abs().max()) < 1e-12


def test_bregman_kl_normal_wishart_monte_carlo():
    """NormalWishart (matrix natural parameter, event ranks (1, 0, 2, 0)): Monte Carlo, 5 standard errors."""
    g = torch.Generator().manual_seed(12)
    b, d = torch.Size((2,)), 3
    p = NormalWishart(torch.randn(b + (d,), generator=g, dtype=torch.float64), _pos(b, g), d + _pos(b, g, 1.0, 4.0),
                      covariance_matrix=_spd(b, d, g))
    q = NormalWishart(torch.randn(b + (d,), generator=g, dtype=torch.float64), _pos(b, g), d + _pos(b, g, 1.0, 4.0),
                      covariance_matrix=_spd(b, d, g))
    mc, se = _monte_carlo_kl(p, q, 40000, 1)
    kl = bregman_kl(p, q)
    assert bool(((kl - mc).abs() <= 5 * se).all()), (kl, mc, se)


def test_bregman_kl_bad_input():
    with pytest.raises(TypeError, match="different families"):
        bregman_kl(Gamma(2.0, 1.0), Beta(2.0, 1.0))
    with pytest.raises(TypeError, match="ExponentialFamily"):
        bregman_kl(td.Gamma(2.0, 1.0), Gamma(2.0, 1.0))
    with pytest.raises(ValueError, match="event shapes"):
        bregman_kl(Dirichlet(torch.ones(3)), Dirichlet(torch.ones(4)))
    with pytest.raises(ValueError, match="do not broadcast"):
        bregman_kl(Gamma(torch.ones(2), 1.0), Gamma(torch.ones(3), 1.0))
    with pytest.raises(ValueError, match="one per natural parameter"):
        bregman_kl(Gamma(2.0, 1.0), Gamma(3.0, 1.0), (torch.tensor(0.0),))


@pytest.mark.parametrize("name", ["NormalGamma", "NormalWishart"])
def test_kl_divergence_registered_for_joint_priors(name):
    # torch's generic ExponentialFamily KL sums over the wrong dimensions for batched joint
    # priors; the registered KL must equal the Bregman divergence elementwise
    torch.manual_seed(0)
    if name == "NormalGamma":
        p = NormalGamma(torch.randn(3), torch.rand(3) + 0.5, torch.rand(3) + 1.5, torch.rand(3) + 0.5)
        q = NormalGamma(torch.randn(3), torch.rand(3) + 0.5, torch.rand(3) + 1.5, torch.rand(3) + 0.5)
    else:
        eye = torch.eye(2).expand(3, 2, 2)
        p = NormalWishart(torch.randn(3, 2), torch.rand(3) + 0.5, torch.full((3,), 4.0), eye)
        q = NormalWishart(torch.randn(3, 2), torch.rand(3) + 0.5, torch.full((3,), 5.0), 2 * eye)
    kl = torch.distributions.kl_divergence(p, q)
    assert kl.shape == (3,)
    torch.testing.assert_close(kl, bregman_kl(p, q))
    for i in range(3):  # each batch element on its own gives the same value
        pi = type(p)._from_natural_params(*(e[i] for e in p._natural_params))
        qi = type(q)._from_natural_params(*(e[i] for e in q._natural_params))
        torch.testing.assert_close(torch.distributions.kl_divergence(pi, qi), kl[i])
