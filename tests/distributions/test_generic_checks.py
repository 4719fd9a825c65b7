# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""
The kinds of generic checks that Pyro's ``tests/distributions`` and torch's
``test/distributions/test_distributions.py`` make on every distribution, run
on every family of the fixture list, so that a regression shows up here first:
support and shapes (``support.check``, ``infer_shapes``, ``log_prob``/
``entropy``/``sample`` shapes, broadcasting, non-broadcastable values),
``expand``, ``enumerate_support``, moments and entropy against Monte Carlo,
``cdf``/``icdf`` round trips and ``d cdf/dx = pdf``, finite gradients,
pickling, ``validate_args`` and torch's Bregman entropy identity.

Monte Carlo tolerances: with N = 20000 draws a mean is checked to 6 standard
errors (sample standard deviation / sqrt(N)); a 6-sigma miss has probability
~2e-9 per coordinate.  Families/elements whose needed moments are infinite or
whose tails make the standard error unreliable are excluded explicitly.
"""

from __future__ import annotations

import math
import pickle

import pyro.distributions as pdist
import pytest
import torch
from family_fixtures import FIXTURES, Fixture, make
from torch.distributions import ExponentialFamily as TorchExponentialFamily

fixtures = pytest.mark.parametrize("fixture", FIXTURES, ids=repr)
N = 20000


def _enumerable(d) -> bool:
    return d.has_enumerate_support


def _finite_moment(fixture: Fixture, d, order: int) -> torch.Tensor:
    """Mask of batch elements whose ``order``-th moment is finite (Pareto: alpha > order)."""
    if fixture.name == "Pareto":
        return d.alpha > order
    return torch.ones(d.batch_shape, dtype=torch.bool)


@fixtures
def test_support_shape_and_discreteness(fixture):
    d, _ = make(fixture, (2, 3), seed=31)
    x = d.sample((4,))
    assert d.support.event_dim == len(d.event_shape)
    ok = d.support.check(x)
    assert ok.shape == (4,) + d.batch_shape and bool(ok.all())
    theirs = getattr(pdist, fixture.name)(**type(d)._constructor_args(d))
    assert d.support.is_discrete == theirs.support.is_discrete
    assert d.has_rsample == theirs.has_rsample and d.has_enumerate_support == theirs.has_enumerate_support
    # parameters satisfy their own constraints
    for name, constraint in d.arg_constraints.items():
        if name in d.__dict__ and torch.is_tensor(d.__dict__[name]):
            value = getattr(d, name)
            if not getattr(constraint, "is_dependent", False):
                assert bool(constraint.check(value).all()), name


@fixtures
def test_infer_shapes(fixture):
    d, params = make(fixture, (2, 3), seed=32)
    arg_shapes = {k: (v.shape if torch.is_tensor(v) else ()) for k, v in params.items()}
    try:
        batch_shape, event_shape = type(d).infer_shapes(**arg_shapes)
    except NotImplementedError:
        pytest.skip("infer_shapes not implemented (as for the Pyro class)")
    assert (batch_shape, event_shape) == (d.batch_shape, d.event_shape)


@fixtures
def test_sample_log_prob_entropy_shapes_and_broadcasting(fixture):
    d, _ = make(fixture, (2, 3), seed=33)
    x = d.sample((5, 4))
    assert x.shape == (5, 4) + d.batch_shape + d.event_shape
    assert d.log_prob(x).shape == (5, 4) + d.batch_shape
    # a value broadcasting against the batch shape: one value per column, shared by the rows
    x1 = d.sample()[:1]
    lp = d.log_prob(x1)
    assert lp.shape == d.batch_shape
    torch.testing.assert_close(lp[0], d.log_prob(d.sample().index_copy(0, torch.tensor([0]), x1))[0])
    try:
        h = d.entropy()
    except NotImplementedError:
        pass
    else:
        assert h.shape == d.batch_shape
    # rsample shapes for reparametrisable families
    if d.has_rsample:
        assert d.rsample((2,)).shape == (2,) + d.batch_shape + d.event_shape


@fixtures
def test_log_prob_rejects_wrong_shapes(fixture):
    d, _ = make(fixture, (2, 3), seed=34)
    x = d.sample()
    bad = torch.ones((x.shape[0] + 1,) + x.shape[1:], dtype=x.dtype)  # does not broadcast with the batch
    with pytest.raises((ValueError, RuntimeError)):
        d.log_prob(bad)
    if d.event_shape and fixture.name != "MultivariateNormal":  # torch's MVN does not validate this either
        with pytest.raises((ValueError, RuntimeError)):
            d.log_prob(torch.ones(x.shape + (1,), dtype=x.dtype))


@fixtures
def test_expand(fixture):
    d, _ = make(fixture, (3,), seed=35)
    e = d.expand((4, 3))
    assert type(e) is type(d) and e.batch_shape == (4, 3) and e.event_shape == d.event_shape
    assert e.sample().shape == (4, 3) + d.event_shape
    assert d.expand_by((2,)).batch_shape == (2, 3)
    assert e.expand((5, 4, 3)).batch_shape == (5, 4, 3)  # subsequent expands
    x = d.sample()
    torch.testing.assert_close(e.log_prob(x), d.log_prob(x).expand(4, 3))
    for p_e, p_d in zip(e._natural_params, d._natural_params, strict=True):
        torch.testing.assert_close(torch.as_tensor(p_e), torch.as_tensor(p_d).expand_as(torch.as_tensor(p_e)))
    with pytest.raises((ValueError, RuntimeError)):
        d.expand((4,))  # existing dimension of size 3 cannot become 4


@fixtures
def test_enumerate_support(fixture):
    d, _ = make(fixture, (2, 3), seed=36)
    if not _enumerable(d):
        pytest.skip("no finite support")
    s = d.enumerate_support()
    n = s.shape[0]
    assert s.shape == (n,) + d.batch_shape + d.event_shape
    u = d.enumerate_support(expand=False)
    assert u.shape == (n,) + (1,) * len(d.batch_shape) + d.event_shape
    torch.testing.assert_close(s, u.expand_as(s))
    # the probabilities over the support sum to one
    torch.testing.assert_close(d.log_prob(s).logsumexp(0), torch.zeros(d.batch_shape, dtype=torch.float64))


@fixtures
def test_mean_variance_entropy_monte_carlo(fixture):
    torch.manual_seed(37)
    d, _ = make(fixture, (3,), seed=37)
    x = d.sample((N,))
    lp = d.log_prob(x)
    x = x.to(torch.float64)
    # entropy = -E[log p]: 6 standard errors
    try:
        h = d.entropy()
    except NotImplementedError:
        h = None
    if h is not None:
        se = lp.std(0) / math.sqrt(N)
        assert bool(((-lp.mean(0) - h).abs() <= 6 * se + 1e-9).all()), (h, -lp.mean(0), se)
    if fixture.name == "VonMises":
        return  # circular: the Euclidean mean and variance are not those of the samples
    event = tuple(range(-len(d.event_shape), 0)) if d.event_shape else ()
    ok2 = _finite_moment(fixture, d, 2)
    try:
        mean = d.mean
    except NotImplementedError:
        mean = None
    if mean is not None and bool(torch.isfinite(mean).all()):  # torch's Categorical has a NaN mean
        se = x.std(0) / math.sqrt(N)
        err = (x.mean(0) - mean).abs() <= 6 * se + 1e-9
        assert bool((err.all(event) if event else err)[ok2].all()), (mean, x.mean(0), se)
    ok4 = _finite_moment(fixture, d, 4) & torch.tensor(fixture.name not in ("LogNormal", "Weibull"))
    try:
        var = d.variance
    except NotImplementedError:
        var = None
    if var is not None and bool(ok4.any()) and bool(torch.isfinite(var[ok4]).all()):
        centred = (x - x.mean(0)).square()
        se = centred.std(0) / math.sqrt(N)
        err = (centred.mean(0) - var).abs() <= 6 * se + 1e-9
        assert bool((err.all(event) if event else err)[ok4].all()), (var, centred.mean(0), se)


@fixtures
def test_cdf_icdf_round_trip_and_density(fixture):
    d, _ = make(fixture, (3,), seed=38)
    if d.event_shape or d.support.is_discrete:
        pytest.skip("univariate continuous families only")
    g = torch.Generator().manual_seed(38)
    u = 0.02 + 0.96 * torch.rand((50, 3), generator=g, dtype=torch.float64)
    try:
        x = d.icdf(u)
    except NotImplementedError:
        x = None
    if x is not None:
        torch.testing.assert_close(d.cdf(x), u, rtol=1e-6, atol=1e-8)
    try:
        xs = d.sample((20,)).requires_grad_()
        c = d.cdf(xs)
    except NotImplementedError:
        pytest.skip("no cdf")
    (grad,) = torch.autograd.grad(c.sum(), xs)
    assert bool(torch.isfinite(grad).all())
    torch.testing.assert_close(grad, d.log_prob(xs.detach()).exp(), rtol=1e-5, atol=1e-8)


def _with_grad_params(d):
    args = {k: (v.detach().clone().requires_grad_() if torch.is_tensor(v) and v.is_floating_point() else v)
            for k, v in type(d)._constructor_args(d).items()}
    return type(d)(**args), [v for v in args.values() if torch.is_tensor(v) and v.requires_grad]


@fixtures
def test_gradients_finite(fixture):
    d, _ = make(fixture, (3,), seed=39)
    x = d.sample((4,))
    d2, leaves = _with_grad_params(d)
    fixed = set(d._fixed_params())
    grads = torch.autograd.grad(d2.log_prob(x).sum(), leaves, allow_unused=True)
    for (name, _), g in zip([(k, v) for k, v in type(d)._constructor_args(d).items()
                             if torch.is_tensor(v) and v.is_floating_point()], grads, strict=True):
        if name in fixed and g is None:
            continue
        assert g is not None and bool(torch.isfinite(g).all()), name
    try:
        grads = torch.autograd.grad(_with_grad_params(d)[0].entropy().sum(), _with_grad_params(d)[1],
                                    allow_unused=True)
    except (NotImplementedError, RuntimeError):
        return
    assert all(g is None or bool(torch.isfinite(g).all()) for g in grads)


@fixtures
def test_pickle_round_trip(fixture):
    d, _ = make(fixture, (3,), seed=40)
    d2 = pickle.loads(pickle.dumps(d))
    assert type(d2) is type(d) and d2.batch_shape == d.batch_shape
    x = d.sample()
    torch.testing.assert_close(d2.log_prob(x), d.log_prob(x))


@fixtures
def test_validate_args(fixture):
    with pytest.raises(ValueError):
        fixture.cls(**fixture.bad_params, validate_args=True)
    # no check when validation is off, wherever Pyro's own class builds too (some compute on the parameters)
    try:
        getattr(pdist, fixture.name)(**fixture.bad_params, validate_args=False)
    except (ValueError, RuntimeError):
        pass
    else:
        fixture.cls(**fixture.bad_params, validate_args=False)
    d, _ = make(fixture, (3,), seed=41)
    x = d.sample()
    if d.support.is_discrete or fixture.name in ("Normal", "MultivariateNormal", "Laplace", "VonMises"):
        bad = torch.full_like(x, 0.5) if d.support.is_discrete else None
    else:
        bad = torch.full_like(x, -1.0)
    if fixture.name in ("Beta", "ContinuousBernoulli"):
        bad = torch.full_like(x, 1.5)
    if bad is not None and not bool(d.support.check(bad).all()):
        with pytest.raises(ValueError):
            d.log_prob(bad)


@fixtures
def test_torch_bregman_entropy_identity(fixture):
    # torch's generic ExponentialFamily entropy, -E[k(x)] + A(eta) - <eta, grad A>, from
    # _mean_carrier_measure: the kind of check torch makes for every exponential family
    d, _ = make(fixture, (3,), seed=42)
    try:
        generic = TorchExponentialFamily.entropy(d)
        closed = d.entropy()
    except NotImplementedError:
        pytest.skip("no entropy or no mean carrier measure")
    torch.testing.assert_close(generic.detach(), closed, rtol=1e-9, atol=1e-9)
