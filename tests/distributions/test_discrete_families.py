# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""
Family-specific checks for Categorical, OneHotCategorical, Binomial,
Multinomial, Geometric, Poisson, Exponential and ContinuousBernoulli that the
generic conformance battery does not cover: numerics at extreme logits, the
entropy each family inherits, refusal messages, inputs outside the mean or
natural parameter space.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.integrate
import scipy.special
import scipy.stats
import torch
from torch.distributions import biject_to

import pyro_expfam.distributions as expfam
from pyro_expfam.distributions.categorical import normalizable_logits


def _close(a, b, rtol=1e-10, atol=1e-10):
    a = torch.as_tensor(a)
    torch.testing.assert_close(a, torch.as_tensor(b, dtype=a.dtype), rtol=rtol, atol=atol)


# --------------------------------------------------------------------------- #
# Entropy: the torch.ExponentialFamily Bregman entropy sits before the Pyro
# class in the MRO, so each non-torch-EF family must keep its own entropy.
# --------------------------------------------------------------------------- #
def _brute_entropy(d, support):
    lp = d.log_prob(support)
    return -(lp.exp() * lp).sum(0)


_F64 = {"dtype": torch.float64}
_LOGITS = torch.tensor([[0.3, -1.0, 2.0], [0.0, 0.0, -5.0]], **_F64)


@pytest.mark.parametrize(
    "d,support",
    [
        (expfam.Categorical(logits=_LOGITS), torch.arange(3.0, **_F64).unsqueeze(-1)),
        (expfam.OneHotCategorical(logits=_LOGITS), torch.eye(3, **_F64).unsqueeze(1)),
        (expfam.Binomial(6, logits=torch.tensor([-1.0, 0.5], **_F64)), torch.arange(7.0, **_F64).unsqueeze(-1)),
        (expfam.Geometric(probs=torch.tensor([0.3, 0.7], **_F64)), torch.arange(400.0, **_F64).unsqueeze(-1)),
    ],
    ids=["Categorical", "OneHotCategorical", "Binomial", "Geometric"],
)
def test_entropy_matches_brute_force(d, support):
    # Geometric: the tail beyond 400 has mass 0.7^400 < 1e-60
    _close(d.entropy(), _brute_entropy(d, support), rtol=1e-12, atol=1e-12)


def test_multinomial_entropy_after_expand():
    # torch's Multinomial.entropy needs an attribute that .expand() drops; ours does not.
    probs = torch.tensor([0.2, 0.3, 0.5], dtype=torch.float64)
    d = expfam.Multinomial(3, probs=probs).expand((2,))
    counts = torch.tensor([[a, b, 3 - a - b] for a in range(4) for b in range(4 - a)], dtype=torch.float64).unsqueeze(1)
    _close(d.entropy(), _brute_entropy(d, counts), rtol=1e-12, atol=1e-12)
    _close(d.entropy()[0], scipy.stats.multinomial(3, probs.numpy()).entropy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("rate", [0.0, 1e-3, 0.5, 3.0, 50.0, 99.9, 100.1, 300.0, 3000.0])
def test_poisson_entropy_vs_scipy(rate):
    # exact window sum up to rate 100, asymptotic series (abs. error < 2e-9) above
    d = expfam.Poisson(torch.tensor([rate], dtype=torch.float64))
    _close(d.entropy(), [scipy.stats.poisson(rate).entropy()], rtol=0, atol=3e-9)


def test_poisson_mean_carrier_measure_and_bregman_entropy():
    rate = torch.tensor([0.2, 4.0, 40.0], dtype=torch.float64)
    d = expfam.Poisson(rate)
    x = torch.arange(300.0, dtype=torch.float64).unsqueeze(-1)
    expected = (d.log_prob(x).exp() * -torch.lgamma(x + 1)).sum(0)
    _close(d._mean_carrier_measure, expected, rtol=1e-10, atol=1e-10)
    # torch's generic Bregman entropy agrees once _mean_carrier_measure exists
    _close(torch.distributions.ExponentialFamily.entropy(d), d.entropy(), rtol=1e-10, atol=1e-10)


def test_poisson_entropy_gradient():
    rate = torch.tensor([0.7, 3.0, 150.0], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda r: expfam.Poisson(r).entropy(), (rate,))


# --------------------------------------------------------------------------- #
# Categorical family: extreme logits, bad values, products leaving the space
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("cls", [expfam.Categorical, expfam.OneHotCategorical])
def test_categorical_extreme_logits_float32(cls):
    # probs saturate in float32 (sigmoid(40) == 1.0); logits keep the products exact
    logits = torch.tensor([[0.0, 40.0, -40.0], [30.0, 0.0, 0.0], [0.0, -60.0, 45.0]])
    d = cls(logits=logits)
    (eta,) = d._natural_params
    assert torch.isfinite(eta).all()
    prod = d.product_along_axis(0, keepdim=False)
    expected = torch.log_softmax(logits.double().sum(0), -1)
    _close(prod.logits, expected.float(), rtol=1e-6, atol=1e-5)
    x = d.sample((5,))
    _close(d.log_prob_natural(x), d.log_prob(x), rtol=1e-6, atol=1e-5)


@pytest.mark.parametrize("cls", [expfam.Categorical, expfam.OneHotCategorical])
def test_categorical_disjoint_product_raises(cls):
    inf = math.inf
    d = cls(logits=torch.tensor([[0.0, -inf, -inf], [-inf, 0.0, 0.0]]))
    with pytest.raises(ValueError, match="natural parameter space"):
        d.product_along_axis(0)
    # overlapping supports are fine: only category 1 survives
    e = cls(logits=torch.tensor([[0.0, 0.0, -inf], [-inf, 0.0, 0.0]]))
    _close(e.product_along_axis(0, keepdim=False).probs, torch.tensor([0.0, 1.0, 0.0]))


def test_normalizable_logits_constraint():
    inf = math.inf
    v = torch.tensor([[0.0, 1.0], [-inf, 2.0], [-inf, -inf], [inf, 0.0], [math.nan, 0.0]])
    assert normalizable_logits.check(v).tolist() == [True, True, False, False, False]
    u = torch.randn(4, 3)
    assert normalizable_logits.check(biject_to(normalizable_logits)(u)).all()


def test_categorical_sufficient_statistics():
    d = expfam.Categorical(logits=torch.zeros(2, 4))
    (t,) = d.sufficient_statistics(torch.tensor([[3, 0], [1, 2], [0, 0]]))
    assert t.shape == (3, 2, 4) and t.dtype == torch.float32
    _close(t.argmax(-1), torch.tensor([[3, 0], [1, 2], [0, 0]]))
    _close(t.sum(-1), torch.ones(3, 2))
    for bad in (torch.tensor([4, 0]), torch.tensor([-1, 0]), torch.tensor([0.5, 1.0])):
        with pytest.raises(ValueError, match="value"):
            d.sufficient_statistics(bad)


# --------------------------------------------------------------------------- #
# Geometric and Exponential: the natural parameter is negative
# --------------------------------------------------------------------------- #
def test_geometric_natural_params_extreme_logits():
    logits = torch.tensor([-30.0, -5.0, 0.0, 5.0, 30.0, 80.0], dtype=torch.float64)
    d = expfam.Geometric(logits=logits)
    (eta,) = d._natural_params
    assert (eta < 0).all()
    _close(eta, torch.nn.functional.logsigmoid(-logits), rtol=1e-12, atol=0)  # log(1 - p) = log sigmoid(-logits)
    _close(expfam.Geometric._from_natural_params(eta).logits, logits, rtol=1e-10, atol=1e-10)
    # (1 - p) / p loses everything below eps once p rounds to 1: absolute tolerance there
    _close(d.mean_parameters()[0], (1 - d.probs) / d.probs, rtol=1e-10, atol=1e-15)
    x = torch.tensor([0.0, 1.0, 7.0, 40.0], dtype=torch.float64).unsqueeze(-1)
    _close(d.log_prob_natural(x), d.log_prob(x), rtol=1e-12, atol=1e-12)
    # float32: the natural parameter stays finite and negative where probs saturate at 1.0
    (eta32,) = expfam.Geometric(logits=torch.tensor([20.0, 60.0]))._natural_params
    assert (eta32 < 0).all() and torch.isfinite(eta32).all()


def test_geometric_and_exponential_products_closed_form():
    p = torch.tensor([0.2, 0.5, 0.9], dtype=torch.float64)
    prod = expfam.Geometric(probs=p).product_along_axis(0, keepdim=False)
    _close(prod.probs, 1 - (1 - p).prod(), rtol=1e-12, atol=0)
    rate = torch.tensor([0.5, 2.0, 3.5], dtype=torch.float64)
    _close(expfam.Exponential(rate).product_along_axis(0, keepdim=False).rate, rate.sum())


# --------------------------------------------------------------------------- #
# Refused products
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize(
    "d,words",
    [
        (expfam.Poisson(torch.tensor([3.0, 10.0, 2.0])), ["log x!", "Conway-Maxwell-Poisson"]),
        (expfam.Binomial(5, logits=torch.zeros(3)), ["log C(n, x)", "Conway-Maxwell-Binomial"]),
        (expfam.Multinomial(4, logits=torch.zeros(3, 2)), ["prod_k x_k!", "not a Multinomial"]),
    ],
    ids=["Poisson", "Binomial", "Multinomial"],
)
def test_refusal_message(d, words):
    with pytest.raises(NotImplementedError) as info:
        d.product_along_axis(0)
    for w in ["not in the span", type(d).__name__] + words:
        assert w in str(info.value)
    with pytest.raises(NotImplementedError):
        d.product_along_axis(0, weights=torch.tensor([1.0, 0.0, 0.0]))


def test_poisson_refusal_is_justified():
    # the normalised product Poisson(3)*Poisson(10)*Poisson(2) is CMP(60, nu=3), far from Poisson(60)
    x = torch.arange(200.0, dtype=torch.float64)
    lp = sum(expfam.Poisson(torch.tensor(r, dtype=torch.float64)).log_prob(x) for r in (3.0, 10.0, 2.0))
    prod = torch.softmax(lp, 0)
    cmp = torch.softmax(x * math.log(60.0) - 3 * torch.lgamma(x + 1), 0)
    _close(prod, cmp, rtol=1e-9, atol=1e-12)
    tv = 0.5 * (prod - expfam.Poisson(torch.tensor(60.0, dtype=torch.float64)).log_prob(x).exp()).abs().sum()
    assert tv > 0.5


# --------------------------------------------------------------------------- #
# Carrier measures against scipy
# --------------------------------------------------------------------------- #
def test_binomial_and_multinomial_carrier_measures():
    b = expfam.Binomial(torch.tensor([7.0, 12.0], dtype=torch.float64), logits=torch.zeros(2, dtype=torch.float64))
    x = torch.tensor([3.0, 12.0], dtype=torch.float64)
    _close(b.log_carrier_measure(x), np.log(scipy.special.comb([7, 12], [3, 12])))
    m = expfam.Multinomial(6, logits=torch.zeros(3, dtype=torch.float64))
    counts = torch.tensor([[1.0, 2.0, 3.0], [6.0, 0.0, 0.0]], dtype=torch.float64)
    _close(
        m.log_carrier_measure(counts), scipy.stats.multinomial(6, [1 / 3] * 3).logpmf(counts.numpy()) + 6 * math.log(3)
    )


# --------------------------------------------------------------------------- #
# Mean parameters: inputs outside the mean-parameter space, inference of n
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize(
    "cls,args,kwargs",
    [
        (expfam.Categorical, (torch.tensor([0.5, 0.6]),), {}),
        (expfam.Categorical, (torch.tensor([-0.1, 1.1]),), {}),
        (expfam.OneHotCategorical, (torch.tensor([0.2, 0.2]),), {}),
        (expfam.Binomial, (torch.tensor([5.5]),), {"total_count": 5}),
        (expfam.Binomial, (torch.tensor([-0.5]),), {"total_count": 5}),
        (expfam.Multinomial, (torch.tensor([1.0, 2.0]),), {"total_count": 4}),
        (expfam.Multinomial, (torch.tensor([5.0, -1.0]),), {"total_count": 4}),
        (expfam.Geometric, (torch.tensor([-1.0]),), {}),
        (expfam.Poisson, (torch.tensor([-1.0]),), {}),
        (expfam.Poisson, (torch.tensor([math.inf]),), {}),
        (expfam.Exponential, (torch.tensor([0.0]),), {}),
        (expfam.ContinuousBernoulli, (torch.tensor([1.0]),), {}),
        (expfam.ContinuousBernoulli, (torch.tensor([0.0]),), {}),
    ],
)
def test_from_mean_parameters_outside_space_raises(cls, args, kwargs):
    with pytest.raises(ValueError, match="from_mean_parameters"):
        cls.from_mean_parameters(*args, **kwargs)


def test_binomial_from_mean_needs_total_count():
    with pytest.raises(TypeError, match="total_count"):
        expfam.Binomial.from_mean_parameters(torch.tensor(2.0))


def test_multinomial_from_mean_infers_total_count():
    d = expfam.Multinomial.from_mean_parameters(torch.tensor([[1.0, 3.0], [2.0, 2.0]]))
    assert d.total_count == 4
    _close(d.probs, torch.tensor([[0.25, 0.75], [0.5, 0.5]]), rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match="total_count"):
        expfam.Multinomial.from_mean_parameters(torch.tensor([[1.0, 3.0], [2.0, 3.0]]))


# --------------------------------------------------------------------------- #
# ContinuousBernoulli: stable log normaliser, mean, sampling, inverse mean map
# --------------------------------------------------------------------------- #
_CB_ETAS = [-800.0, -60.0, -7.0, -1.0, -0.5, -0.49, -0.1, -1e-7, 0.0, 1e-7, 0.1, 0.49, 0.5, 1.0, 7.0, 60.0, 800.0]


def _cb_reference(eta):
    """A(eta) and A'(eta) by adaptive quadrature of exp(eta (x - m)) on [0, 1], m = max(eta, 0)."""
    shift = max(eta, 0.0)
    z, _ = scipy.integrate.quad(lambda x: math.exp(eta * x - shift), 0, 1, epsabs=0, epsrel=1e-13, limit=200)
    zx, _ = scipy.integrate.quad(lambda x: x * math.exp(eta * x - shift), 0, 1, epsabs=0, epsrel=1e-13, limit=200)
    return shift + math.log(z), zx / z


def test_continuous_bernoulli_log_normalizer_and_mean_vs_quadrature():
    eta = torch.tensor(_CB_ETAS, dtype=torch.float64)
    ref = torch.tensor([_cb_reference(e) for e in _CB_ETAS], dtype=torch.float64)
    d = expfam.ContinuousBernoulli(logits=eta)
    _close(d._log_normalizer(eta), ref[:, 0], rtol=1e-12, atol=1e-13)
    _close(d.mean_parameters()[0], ref[:, 1], rtol=1e-12, atol=1e-13)
    _close(d.mean, ref[:, 1], rtol=1e-12, atol=1e-13)
    # float32 at large |eta|: torch's own log normaliser overflows, ours stays accurate
    d32 = expfam.ContinuousBernoulli(logits=eta.float())
    assert torch.isinf(torch.distributions.ContinuousBernoulli._log_normalizer(d32, torch.tensor([100.0])))
    _close(d32._log_normalizer(eta.float()), ref[:, 0].float(), rtol=1e-6, atol=1e-6)
    _close(d32.mean, ref[:, 1].float(), rtol=1e-6, atol=1e-6)


def test_continuous_bernoulli_extreme_logits_normalised_and_sampled():
    eta = torch.tensor([-200.0, -30.0, 30.0, 200.0], dtype=torch.float64)
    d = expfam.ContinuousBernoulli(logits=eta)
    for i in range(4):
        # the mass sits within ~1/|eta| of one end: give quad break points there
        z, _ = scipy.integrate.quad(
            lambda x, i=i: math.exp(float(d.log_prob(torch.tensor(x, **_F64))[i])),
            0,
            1,
            points=[1e-3, 1e-2, 0.1, 0.9, 0.99, 0.999],
            epsabs=0,
            epsrel=1e-12,
            limit=200,
        )
        assert abs(z - 1) < 1e-10
    # Monte Carlo mean of 40000 draws: standard error = sd / 200 <= 1/(200 * 30); 5 standard errors allowed
    torch.manual_seed(0)
    x = d.sample((40000,))
    assert ((x.mean(0) - d.mean).abs() <= 5 * d.stddev / 200).all()
    u = torch.rand(4, dtype=torch.float64)
    _close(d.cdf(d.icdf(u)), u, rtol=1e-9, atol=1e-12)


def test_continuous_bernoulli_agrees_with_torch_at_moderate_logits():
    eta = torch.linspace(-8, 8, 33, dtype=torch.float64)
    d = expfam.ContinuousBernoulli(logits=eta)
    t = torch.distributions.ContinuousBernoulli(logits=eta)
    x = torch.rand(33, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    for a, b in [(d.log_prob(x), t.log_prob(x)), (d.mean, t.mean), (d.entropy(), t.entropy())]:
        _close(a, b, rtol=1e-9, atol=1e-9)
    _close(d.variance, t.variance, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-6)])
def test_continuous_bernoulli_from_mean_parameters(dtype, tol):
    mean = torch.tensor([1e-6, 1e-3, 0.2, 0.4999, 0.5, 0.5001, 0.8, 1 - 1e-3, 1 - 1e-5], dtype=dtype)
    d = expfam.ContinuousBernoulli.from_mean_parameters(mean)
    _close(d.mean, mean, rtol=tol, atol=tol)
    # implicit-function gradient: d eta / d mean = 1 / Var[x]
    m = mean.clone().requires_grad_()
    eta = expfam.ContinuousBernoulli.from_mean_parameters(m).logits
    (grad,) = torch.autograd.grad(eta.sum(), m)
    _close(grad * d.variance, torch.ones_like(mean), rtol=1e-4, atol=0)
