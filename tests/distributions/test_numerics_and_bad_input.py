# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""
Numerics and bad input found by running Pyro's and torch's own test suites and
a bad-input battery against our classes (issue 9, causes 2-4): each test here
failed before its fix.  Ground truth: float64 closed forms, torch's own KL,
exact products of Normals.
"""

from __future__ import annotations

import math
import warnings

import pyro.distributions as pdist
import pytest
import torch
import torch.distributions as td

import pyro_expfam.distributions as expfam
from pyro_expfam.distributions import (
    Beta,
    Categorical,
    ContinuousBernoulli,
    Gamma,
    Independent,
    Normal,
    bregman_kl,
    product,
    product_along_axis,
)


# --------------------------------------------------------------------------- #
# ContinuousBernoulli numerics (cause 2)
# --------------------------------------------------------------------------- #
def _cb_log_prob_float64(eta: float, x: float) -> float:
    # x eta - log((e^eta - 1)/eta) for eta > 0, written as (x - 1) eta - log(1 - e^-eta) + log(eta)
    return (x - 1) * eta - math.log1p(-math.exp(-eta)) + math.log(eta)


@pytest.mark.parametrize("eta", [1e38, 1e20, 100.0, 30.0])
@pytest.mark.parametrize("x", [1.0, 0.75])
def test_continuous_bernoulli_float32_large_logits(eta, x):
    logits = torch.tensor(eta, requires_grad=True)
    lp = ContinuousBernoulli(logits=logits).log_prob(torch.tensor(x))
    lp.backward()
    expected = _cb_log_prob_float64(eta, x)
    assert abs(lp.item() - expected) <= 1e-6 * max(1.0, abs(expected))
    # d/d eta = x - A'(eta) = x - 1 + 1/eta - e^-eta/(1 - e^-eta)
    grad = x - 1 + 1 / eta - math.exp(-eta) / -math.expm1(-eta)
    assert math.isfinite(logits.grad.item())
    assert abs(logits.grad.item() - grad) <= 1e-6 * max(1.0, abs(grad))
    # the negative mirror image: x -> 1 - x, eta -> -eta
    lp_neg = ContinuousBernoulli(logits=torch.tensor(-eta)).log_prob(torch.tensor(1.0 - x))
    assert abs(lp_neg.item() - expected) <= 1e-6 * max(1.0, abs(expected))


@pytest.mark.parametrize("eta", [-30.0, -2.0, -0.1, 0.0, 0.1, 3.0, 50.0])
def test_continuous_bernoulli_cdf_gradient_is_the_density(eta):
    # d cdf / dx = pdf inside (0, 1), finite everywhere
    x = torch.tensor([0.05, 0.3, 0.7, 0.95], dtype=torch.float64, requires_grad=True)
    d = ContinuousBernoulli(logits=torch.tensor(eta, dtype=torch.float64))
    d.cdf(x).sum().backward()
    torch.testing.assert_close(x.grad, d.log_prob(x.detach()).exp(), rtol=1e-9, atol=1e-12)
    x32 = torch.tensor([0.0, 0.5, 1.0], requires_grad=True)
    ContinuousBernoulli(logits=torch.tensor(eta)).cdf(x32).sum().backward()
    assert bool(torch.isfinite(x32.grad).all())


def test_continuous_bernoulli_log_prob_gradient_at_zero_logit():
    # d/d eta [x eta - A(eta)] at eta = 0 is x - 1/2 (a one-sided clamp gradient would break this)
    for x in (0.0, 0.5, 1.0):
        logits = torch.tensor(0.0, requires_grad=True)
        ContinuousBernoulli(logits=logits).log_prob(torch.tensor(x)).backward()
        assert logits.grad.item() == pytest.approx(x - 0.5, abs=1e-7)


# --------------------------------------------------------------------------- #
# entropy under patch_torch-style replacement of the module attributes (cause 3)
# --------------------------------------------------------------------------- #
_ENTROPY_CASES = {
    "Categorical": lambda m: m.Categorical(logits=torch.tensor([0.0, 1.0])),
    "OneHotCategorical": lambda m: m.OneHotCategorical(logits=torch.tensor([0.0, 1.0])),
    "Geometric": lambda m: m.Geometric(probs=torch.tensor(0.3)),
    "Binomial": lambda m: m.Binomial(5, probs=torch.tensor(0.3)),
    "MultivariateNormal": lambda m: m.MultivariateNormal(torch.zeros(2), torch.eye(2)),
    "LogNormal": lambda m: m.LogNormal(torch.tensor(0.0), torch.tensor(1.0)),
    "InverseGamma": lambda m: m.InverseGamma(torch.tensor(2.0), torch.tensor(1.0)),
}


@pytest.mark.parametrize("name", list(_ENTROPY_CASES))
def test_entropy_when_module_attributes_are_replaced_by_our_classes(name, monkeypatch):
    expected = _ENTROPY_CASES[name](pdist).entropy()
    ours = getattr(expfam, name)
    d = _ENTROPY_CASES[name](expfam)  # built first: Pyro's own LogNormal.__init__ reads the module attribute
    monkeypatch.setattr(pdist, name, ours)
    monkeypatch.setattr(td, name, ours)
    torch.testing.assert_close(d.entropy(), expected)


# --------------------------------------------------------------------------- #
# _from_natural_params outside the natural parameter space (cause 4)
# --------------------------------------------------------------------------- #
def test_from_natural_params_names_the_parameter_and_its_space():
    with pytest.raises(ValueError, match=r"natural parameter eta2 \(index 1\) must satisfy LessThan"):
        Normal._from_natural_params(1, +0.5)
    with pytest.raises(ValueError, match=r"natural parameter logits \(index 0\) must satisfy normalizable_logits"):
        Categorical._from_natural_params(torch.tensor([math.inf, 0.0]))
    with pytest.raises(ValueError, match=r"Gamma\._from_natural_params.*eta1"):
        Gamma._from_natural_params(torch.tensor(-2.0), torch.tensor(-1.0))
    # validate_args=False skips the check, as for the constructors
    Normal._from_natural_params(torch.tensor(1.0), torch.tensor(-0.5), validate_args=False)


def _outside(constraint, like: torch.Tensor) -> torch.Tensor | None:
    """A point outside ``constraint`` of the shape of ``like`` (NaN always is)."""
    bad = torch.full_like(like, math.nan)
    return bad if not bool(constraint.check(bad).all()) else None


@pytest.mark.parametrize("cls", expfam.FAMILIES, ids=lambda c: c.__name__)
def test_from_natural_params_refuses_nan_for_every_family(cls):
    from family_fixtures import FIXTURES, make

    fixture = next(f for f in FIXTURES if f.name == cls.__name__)
    d, _ = make(fixture, (2,))
    eta = list(d._expanded_natural_params())
    for i, c in enumerate(cls._natural_param_constraints):
        bad = _outside(c, eta[i])
        if bad is None:
            continue
        args = eta[:i] + [bad] + eta[i + 1 :]
        name = cls._natural_param_names[i] if cls._natural_param_names else str(i)
        with pytest.raises(ValueError, match=rf"natural parameter {name} \(index {i}\)"):
            cls._from_natural_params(*args, **d._fixed_params())


# --------------------------------------------------------------------------- #
# float32 products and KL with tiny and huge scales
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("scale", [1e-20, 1e-30, 1e19, 1e20, 1e30])
def test_float32_normal_products_with_extreme_scales(scale):
    d = Normal(torch.tensor([1.0, 1.0]), torch.tensor([scale, scale]))
    p = d.product_along_axis(-1)
    assert p.loc.dtype == torch.float32
    torch.testing.assert_close(p.loc, torch.tensor([1.0]))
    torch.testing.assert_close(p.scale, torch.tensor([scale / math.sqrt(2)]), rtol=1e-6, atol=0)
    # the normaliser too: log Z = log N(1 | 1, 2 scale^2) = -log(2 sqrt(pi) scale) in float64
    _, log_z = d._product_with_log_normalizer(-1)
    assert log_z.item() == pytest.approx(-math.log(2 * math.sqrt(math.pi) * scale), rel=1e-6)


def test_float32_product_refused_only_when_not_representable():
    # exponents 1e-3 on factors of scale 3e38 give scale 6.7e39, and exponents 100 on scale 1e-44 give
    # 7e-47: neither exists in float32
    for scale, w in [(3e38, 1e-3), (1e-44, 100.0)]:
        d = Normal(torch.tensor([0.0, 0.0]), torch.tensor([scale, scale]))
        with pytest.raises(ValueError, match="not representable in torch.float32.*scale"):
            d.product_along_axis(-1, weights=torch.tensor([w, w]))
    # a product that truly leaves the space is refused in float32 as in float64
    with pytest.raises(ValueError, match="natural parameter space"):
        Normal(torch.zeros(2), torch.ones(2)).product_along_axis(0, weights=torch.tensor([1.0, -2.0]))


def test_float32_bregman_kl_extreme_scales():
    for p, q in [((0.0, 1e-20), (0.0, 1.0)), ((0.0, 1.0), (1.0, 1e20)), ((3.0, 1e-19), (0.0, 1e-18))]:
        ours = bregman_kl(Normal(*p), Normal(*q))
        ref = td.kl_divergence(td.Normal(*map(torch.tensor, p)), td.Normal(*map(torch.tensor, q)))
        ref64 = td.kl_divergence(
            td.Normal(*(torch.tensor(v, dtype=torch.float64) for v in p)),
            td.Normal(*(torch.tensor(v, dtype=torch.float64) for v in q)),
        )
        assert ours.dtype == torch.float32 and math.isfinite(ours.item())
        assert ours.item() == pytest.approx(ref64.item(), rel=1e-5)
        if math.isfinite(ref.item()):
            assert ours.item() == pytest.approx(ref.item(), rel=1e-5)


def test_float32_gamma_from_mean_parameters_large_shape():
    g = Gamma(torch.tensor(1e6), torch.tensor(1.0))
    with pytest.warns(RuntimeWarning, match="relative accuracy"):
        Gamma.from_mean_parameters(*g.mean_parameters())
    # float64 mean parameters give the shape accurately, silently
    g64 = Gamma(torch.tensor(1e6, dtype=torch.float64), torch.tensor(1.0, dtype=torch.float64))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit = Gamma.from_mean_parameters(*g64.mean_parameters())
        assert fit.concentration.item() == pytest.approx(1e6, rel=1e-6)
        # moderate shapes in float32 stay silent and accurate (solved in float64)
        g32 = Gamma(torch.tensor([2.0, 1000.0]), torch.tensor([1.0, 3.0]))
        fit32 = Gamma.from_mean_parameters(*g32.mean_parameters())
    assert fit32.concentration.dtype == torch.float32
    torch.testing.assert_close(fit32.concentration, g32.concentration, rtol=1e-3, atol=0)
    torch.testing.assert_close(fit32.rate, g32.rate, rtol=1e-3, atol=0)


# --------------------------------------------------------------------------- #
# Zero-size batches, foreign instances, Independent
# --------------------------------------------------------------------------- #
def test_zero_size_products():
    d = Beta(torch.ones(0), torch.ones(0))  # torch's own constructor check fails on 0 elements
    empty = d.product_along_axis(-1)  # the empty product: Beta(1, 1), the flat density
    torch.testing.assert_close(empty.concentration1, torch.ones(1))
    torch.testing.assert_close(empty.concentration0, torch.ones(1))
    e = Normal(torch.zeros(0, 3), torch.ones(0, 3)).product_along_axis(-1)
    assert e.batch_shape == (0, 1)
    with pytest.raises(ValueError, match="natural parameter space"):  # a flat Normal is improper
        Normal(torch.zeros(0), torch.ones(0)).product_along_axis(-1)


def test_product_with_torch_and_pyro_instances_of_the_family():
    p = product(Normal(0.0, 1.0), td.Normal(2.0, 1.0), pdist.Normal(4.0, 1.0))
    assert type(p) is Normal
    torch.testing.assert_close(p.loc, torch.tensor(2.0))
    torch.testing.assert_close(p.scale, torch.tensor(3.0**-0.5))
    b = product(td.Beta(2.0, 3.0), Beta(4.0, 1.5))
    assert type(b) is Beta
    torch.testing.assert_close(b.concentration1, torch.tensor(5.0))
    with pytest.raises(TypeError, match="different families: Normal and torch.distributions.gamma.Gamma"):
        product(Normal(0.0, 1.0), td.Gamma(2.0, 1.0))


def test_to_event_returns_independent_with_products():
    loc = torch.tensor([[0.0, 1.0, 2.0], [2.0, 3.0, 4.0]])
    d = Normal(loc, torch.ones(2, 3)).to_event(1)
    assert type(d) is Independent and d.batch_shape == (2,) and d.event_shape == (3,)
    p = d.product_along_axis(0, keepdim=False)
    assert type(p) is Independent and p.batch_shape == () and p.event_shape == (3,)
    torch.testing.assert_close(p.base_dist.loc, loc.mean(0))
    # the contract: sum_i log p_i(x) = log p_prod(x) + log Z, log Z summed over the event dimension
    prod, log_z = d._product_with_log_normalizer(0, keepdim=False)
    x = torch.randn(4, 3)
    torch.testing.assert_close(d.log_prob(x.unsqueeze(1)).sum(1), prod.log_prob(x) + log_z)
    # nested to_event keeps our class; event dimensions never reduce
    assert type(d.to_event(1)) is Independent and d.to_event(1).event_shape == (2, 3)
    with pytest.raises(ValueError, match="event dimensions"):
        d.product_along_axis(1)
    # weights over the batch dimension
    w = d.product_along_axis(0, keepdim=False, weights=torch.tensor([1.0, 0.0]))
    torch.testing.assert_close(w.base_dist.loc, loc[0])
    # the helper accepts torch's Independent of torch's Normal
    h = product_along_axis(td.Independent(td.Normal(loc, torch.ones(2, 3)), 1), 0, keepdim=False)
    torch.testing.assert_close(h.base_dist.loc, loc.mean(0))
    f, g = Normal(loc[0], torch.ones(3)).to_event(1), Normal(loc[1], torch.ones(3)).to_event(1)
    fg, log_norm = f.conjugate_update(g)
    torch.testing.assert_close(f.log_prob(x) + g.log_prob(x), fg.log_prob(x) + log_norm)


def test_expand_still_guards_subclasses_with_their_own_init():
    # our classes' forwarding __init__ keeps expand valid, but torch's guard for user subclasses stays
    class Shifted(Normal):
        def __init__(self, loc):
            super().__init__(loc, torch.ones_like(loc))

    assert Normal(torch.zeros(3), 1.0).expand((2, 3)).batch_shape == (2, 3)
    with pytest.raises(NotImplementedError, match="custom .expand"):
        Shifted(torch.zeros(3)).expand((2, 3))


def test_jit_trace_builds_our_classes_without_tracer_warnings():
    # the zero-size guard in ExponentialFamily.__init__ looks at shapes only (Pyro's test_detach_jit runs
    # torch.jit.trace under filterwarnings = error)
    x = torch.tensor(0.5)

    def f(loc, scale):
        return Normal(loc, scale, validate_args=False).log_prob(x)

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", category=DeprecationWarning)  # torch.jit.trace itself is deprecated
        traced = torch.jit.trace(f, (torch.zeros(3), torch.ones(3)), check_trace=False)
    torch.testing.assert_close(traced(torch.ones(3), torch.ones(3)), td.Normal(1.0, 1.0).log_prob(x).expand(3))
