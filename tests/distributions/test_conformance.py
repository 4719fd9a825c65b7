# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""
The conformance battery: every check on every family (see ``conftest.FIXTURES``).

Ground truth for products: trapezoid quadrature (continuous scalar families),
exact summation over the support (discrete families), and for multivariate
families proportionality ``sum_i log p_i(x) - log p_prod(x) = const`` together
with the normalisation of the family's own ``log_prob``.
"""

from __future__ import annotations

import pyro
import pyro.distributions as pdist
import pytest
import torch
from family_fixtures import FIXTURES, Fixture, make
from pyro.infer import SVI, Predictive, Trace_ELBO, TraceEnum_ELBO, config_enumerate, infer_discrete
from pyro.optim import Adam

import pyro_expfam.distributions as expfam
from pyro_expfam.distributions import ExponentialFamily
from pyro_expfam.testing import check_product_contract, log_integral_along_axis

fixtures = pytest.mark.parametrize("fixture", FIXTURES, ids=repr)
closed = [f for f in FIXTURES if f.product != "refused"]
refused = [f for f in FIXTURES if f.product == "refused"]


def _close(a, b, rtol=1e-6, atol=1e-6):
    a = torch.as_tensor(a)
    torch.testing.assert_close(a, torch.as_tensor(b).to(a.dtype), rtol=rtol, atol=atol)


# --------------------------------------------------------------------------- #
# The family interface
# --------------------------------------------------------------------------- #
@fixtures
def test_is_pyro_and_expfam(fixture: Fixture):
    d, _ = make(fixture)
    assert isinstance(d, ExponentialFamily)
    assert isinstance(d, torch.distributions.ExponentialFamily)
    assert isinstance(d, getattr(pdist, fixture.name))
    assert len(d._natural_param_event_dims) == len(d._natural_params)
    assert len(d._natural_param_constraints) == len(d._natural_params)


@fixtures
@pytest.mark.parametrize("batch_shape", [(3,), (2, 3)])
def test_natural_round_trip(fixture: Fixture, batch_shape):
    d, params = make(fixture, batch_shape)
    d2 = type(d)._from_natural_params(*d._natural_params, **d._fixed_params())
    assert type(d2) is type(d)
    assert d2.batch_shape == d.batch_shape and d2.event_shape == d.event_shape
    for a, b in zip(d._natural_params, d2._natural_params, strict=True):
        _close(b, a)
    for key, value in params.items():
        if torch.is_tensor(value):
            _close(getattr(d2, key), getattr(d, key))
    x = d.sample((5,))
    _close(d2.log_prob(x), d.log_prob(x))


@fixtures
@pytest.mark.parametrize("batch_shape", [(), (3,), (2, 3)])
def test_log_prob_decomposition(fixture: Fixture, batch_shape):
    d, _ = make(fixture, batch_shape, seed=1)
    x = d.sample((4,))
    stats = d.sufficient_statistics(x)
    assert len(stats) == len(d._natural_params)
    for t, r, eta in zip(stats, d._natural_param_event_dims, d._expanded_natural_params(), strict=True):
        assert t.shape == (4,) + eta.shape, (t.shape, eta.shape)
        assert t.shape[t.dim() - r :] == eta.shape[eta.dim() - r :]
    assert d.log_carrier_measure(x).shape == (4,) + d.batch_shape
    _close(d.log_prob_natural(x), d.log_prob(x), rtol=1e-9, atol=1e-9)


@fixtures
def test_entropy_keeps_family_closed_form(fixture: Fixture):
    # our classes must not replace the torch class's own entropy by torch's generic
    # Bregman-divergence entropy (which needs a constant carrier measure)
    d, _ = make(fixture, (3,), seed=2)
    torch_cls = getattr(torch.distributions, fixture.name)
    try:
        expected = torch_cls.entropy(d)
    except NotImplementedError:
        pytest.skip(f"torch's {fixture.name} has no entropy")
    _close(d.entropy(), expected, rtol=1e-6, atol=1e-6)


@fixtures
def test_mean_parameters_closed_form_vs_autograd(fixture: Fixture):
    d, _ = make(fixture, (3,), seed=2)
    closed_form = d.mean_parameters()
    generic = ExponentialFamily.mean_parameters(d)
    for a, b in zip(closed_form, generic, strict=True):
        _close(a, b, rtol=1e-6, atol=1e-8)


@fixtures
def test_mean_parameters_monte_carlo(fixture: Fixture):
    # E[t(x)] = grad A(eta), checked against the Monte Carlo mean of t(x) over
    # N = 20000 draws: each coordinate must lie within 5 standard errors
    # (std(t)/sqrt(N)); a 5-sigma miss has probability ~6e-7 per coordinate.
    torch.manual_seed(0)
    d, _ = make(fixture, (3,), seed=3)
    n = 20000
    x = d.sample((n,))
    for mean, t in zip(d.mean_parameters(), d.sufficient_statistics(x), strict=True):
        se = t.std(0) / n**0.5
        err = (t.mean(0) - mean).abs()
        assert bool((err <= 5 * se + 1e-9).all()), (err, se)


@fixtures
def test_mean_parameters_round_trip(fixture: Fixture):
    d, _ = make(fixture, (2, 3), seed=4)
    d2 = type(d).from_mean_parameters(*d.mean_parameters(), **d._fixed_params())
    x = d.sample((5,))
    _close(d2.log_prob(x), d.log_prob(x), rtol=1e-5, atol=1e-5)


# --------------------------------------------------------------------------- #
# Products against ground truth
# --------------------------------------------------------------------------- #
_SHAPES = {1: (3,), 2: (2, 3), 3: (2, 3, 2)}


def _cases():
    for f in closed:
        for rank, shape in _SHAPES.items():
            for dim in range(-rank, rank):
                yield pytest.param(f, shape, dim, id=f"{f.name}-{shape}-dim{dim}")


@pytest.mark.parametrize("fixture,shape,dim", list(_cases()))
def test_product_along_axis(fixture: Fixture, shape, dim):
    d, _ = make(fixture, shape, seed=5)
    prod, log_z = d._product_with_log_normalizer(dim, keepdim=True)
    public = d.product_along_axis(dim, keepdim=True)
    expected_shape = list(shape)
    expected_shape[dim] = 1
    assert prod.batch_shape == torch.Size(expected_shape)
    assert public.batch_shape == prod.batch_shape and public.event_shape == d.event_shape
    for a, b in zip(public._natural_params, prod._natural_params, strict=True):
        _close(a, b)
    if fixture.product == "extended":
        assert isinstance(prod, ExponentialFamily)
    else:
        assert type(prod) is type(d)
    # sum_i log p_i(x) == log p_prod(x) + log Z at points of the product's support
    torch.manual_seed(0)
    _close(check_product_contract(d, dim), log_z)
    if fixture.grid is not None or fixture.support is not None:
        grid = fixture.grid() if fixture.grid is not None else None
        support = fixture.support() if fixture.support is not None else None
        _close(log_z, log_integral_along_axis(d, dim, grid=grid, support=support), rtol=1e-4, atol=1e-4)
    # keepdim=False drops the reduced dimension
    flat = d.product_along_axis(dim, keepdim=False)
    del expected_shape[dim]
    assert flat.batch_shape == torch.Size(expected_shape)


@pytest.mark.parametrize("fixture", closed, ids=repr)
def test_weighted_product_matches_selection(fixture: Fixture):
    # 0/1 weights select factors: the weighted product equals the plain product of the selected ones
    d, _ = make(fixture, (4,), seed=6)
    w = torch.tensor([1.0, 0.0, 1.0, 1.0], dtype=torch.float64)
    weighted = d.product_along_axis(0, keepdim=False, weights=w)
    idx = torch.tensor([0, 2, 3])
    fixed = {k: (v.expand(d.batch_shape)[idx] if torch.is_tensor(v) and v.dim() else v)
             for k, v in d._fixed_params().items()}
    selected = type(d)._from_natural_params(*(p[idx] for p in d._expanded_natural_params()), **fixed)
    plain = selected.product_along_axis(0, keepdim=False)
    for a, b in zip(weighted._natural_params, plain._natural_params, strict=True):
        _close(a, b)


@pytest.mark.parametrize("fixture", closed, ids=repr)
def test_product_of_several_and_conjugate_update(fixture: Fixture):
    f, _ = make(fixture, (3,), seed=7)
    g, _ = make(fixture, (2, 1), seed=8)
    fg = expfam.product(f, g)
    assert fg.batch_shape == (2, 3)
    fg2, log_norm = f.conjugate_update(g)
    torch.manual_seed(1)
    x = fg.sample((5,))
    _close(f.log_prob(x) + g.log_prob(x), fg2.log_prob(x) + log_norm)
    _close(fg.log_prob(x), fg2.log_prob(x))


@pytest.mark.parametrize("fixture", refused, ids=repr)
def test_refused_products_raise(fixture: Fixture):
    d, _ = make(fixture, (3,))
    with pytest.raises(NotImplementedError, match=fixture.name):
        d.product_along_axis(-1)
    with pytest.raises(NotImplementedError, match=fixture.name):
        expfam.product(d, d)


# --------------------------------------------------------------------------- #
# Pyro integration
# --------------------------------------------------------------------------- #
@fixtures
def test_svi_fits_parameters(fixture: Fixture):
    pyro.clear_param_store()
    pyro.set_rng_seed(0)
    truth, _ = make(fixture, (3,), seed=9)
    data = truth.sample((40,))
    _, init = make(fixture, (3,), seed=10)
    cls = fixture.cls

    def model():
        kwargs = {}
        for k, v in init.items():
            if k in fixture.fixed or not torch.is_tensor(v):
                kwargs[k] = v
            else:
                kwargs[k] = pyro.param(k, v.clone(), constraint=truth.arg_constraints[k])
        with pyro.plate("data", data.shape[0]):
            pyro.sample("x", cls(**kwargs).to_event(1), obs=data)

    def guide():
        pass

    svi = SVI(model, guide, Adam({"lr": 0.05}), Trace_ELBO())
    losses = [svi.step() for _ in range(30)]
    assert losses[-1] < losses[0]


def _enum_cases():
    return [f for f in FIXTURES if f.enumerable]


@pytest.mark.parametrize("fixture", _enum_cases(), ids=repr)
def test_trace_enum_elbo_matches_brute_force(fixture: Fixture):
    pyro.clear_param_store()
    d, _ = make(fixture, (), seed=11)
    y = torch.tensor(0.7, dtype=torch.float64)

    def f(z):
        return z.sum(-1) if d.event_shape else z

    @config_enumerate
    def model():
        z = pyro.sample("z", d)
        pyro.sample("y", pdist.Normal(f(z).to(y.dtype), 1.0), obs=y)

    def guide():
        pass

    loss = TraceEnum_ELBO(max_plate_nesting=0).loss(model, guide)
    support = d.enumerate_support(expand=False)
    brute = -(d.log_prob(support) + pdist.Normal(f(support), 1.0).log_prob(y)).logsumexp(0)
    _close(torch.tensor(loss, dtype=torch.float64), brute)


@fixtures
def test_predictive_samples_in_support(fixture: Fixture):
    d, _ = make(fixture, (3,), seed=15)

    def model():
        with pyro.plate("batch", 3):
            return pyro.sample("x", d)

    samples = Predictive(model, num_samples=4)()["x"]
    assert samples.shape == (4, 3) + d.event_shape
    assert bool(d.support.check(samples).all())


@pytest.mark.parametrize("fixture", _enum_cases(), ids=repr)
def test_infer_discrete_map_matches_brute_force(fixture: Fixture):
    d, _ = make(fixture, (), seed=16)
    if d.event_shape:
        pytest.skip("Pyro's infer_discrete cannot sample enumerated sites with event dimensions "
                    "(pyro.distributions.OneHotCategorical fails the same way)")
    y = torch.tensor(1.3, dtype=torch.float64)

    def f(z):
        return z.sum(-1) if d.event_shape else z

    @config_enumerate
    def model():
        z = pyro.sample("z", d)
        pyro.sample("y", pdist.Normal(f(z).to(y.dtype), 0.5), obs=y)
        return z

    support = d.enumerate_support(expand=False)
    joint = d.log_prob(support) + pdist.Normal(f(support).to(y.dtype), 0.5).log_prob(y)
    z_map = infer_discrete(model, first_available_dim=-1, temperature=0)()
    assert torch.equal(z_map, support[joint.argmax()])


@fixtures
def test_expand_to_event_mask(fixture: Fixture):
    d, _ = make(fixture, (3,), seed=12)
    e = d.expand((4, 3))
    assert type(e) is type(d) and e.batch_shape == (4, 3)
    x = e.sample()
    assert e.log_prob(x).shape == (4, 3)
    ind = d.to_event(1)
    assert ind.log_prob(x).shape == (4,)
    _close(ind.log_prob(x), d.log_prob(x).sum(-1))
    masked = d.mask(torch.tensor([True, False, True]))
    lp = masked.log_prob(x)
    assert bool((lp[:, 1] == 0).all())
    _close(lp[:, 0], d.log_prob(x)[:, 0])
    if fixture.product != "refused":  # the expanded distribution keeps the algebra
        assert e.product_along_axis(0, keepdim=False).batch_shape == (3,)


@fixtures
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dtypes(fixture: Fixture, dtype):
    d, _ = make(fixture, (3,), seed=13, dtype=dtype)
    x = d.sample()
    assert d.log_prob(x).dtype == dtype
    for p in d._natural_params:
        assert p.dtype == dtype
    for t in d.sufficient_statistics(x):
        assert t.dtype == dtype
    if fixture.product != "refused":
        prod = d.product_along_axis(0)
        for p in prod._natural_params:
            assert p.dtype == dtype
        assert torch.isfinite(prod.log_prob(prod.sample())).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA not available")
@fixtures
def test_cuda(fixture: Fixture):
    d, _ = make(fixture, (3,), seed=14, device="cuda")
    x = d.sample()
    assert x.is_cuda and d.log_prob(x).is_cuda
    assert all(t.is_cuda for t in d.sufficient_statistics(x))
    assert all(m.is_cuda for m in d.mean_parameters())
    if fixture.product != "refused":
        prod, log_z = d._product_with_log_normalizer(0)
        assert log_z.is_cuda and all(p.is_cuda for p in prod._natural_params)
        dc, _ = make(fixture, (3,), seed=14)
        _close(log_z.cpu(), dc._product_with_log_normalizer(0)[1], rtol=1e-5, atol=1e-5)


# --------------------------------------------------------------------------- #
# Bad input
# --------------------------------------------------------------------------- #
@fixtures
def test_invalid_parameters_raise(fixture: Fixture):
    with pytest.raises(ValueError):
        fixture.cls(**fixture.bad_params, validate_args=True)


def test_product_of_mismatched_families_raises():
    with pytest.raises(TypeError, match="different families"):
        expfam.product(expfam.Normal(0.0, 1.0), expfam.Bernoulli(logits=torch.tensor(0.0)))
    with pytest.raises(TypeError, match="different families: Normal and torch.distributions.gamma.Gamma"):
        expfam.product(expfam.Normal(0.0, 1.0), torch.distributions.Gamma(2.0, 1.0))


def test_product_of_mismatched_shapes_raises():
    a = expfam.Normal(torch.zeros(3), torch.ones(3))
    b = expfam.Normal(torch.zeros(2), torch.ones(2))
    with pytest.raises(ValueError, match="batch shapes"):
        expfam.product(a, b)
    c = expfam.Categorical(logits=torch.zeros(3))
    e = expfam.Categorical(logits=torch.zeros(4))
    with pytest.raises(ValueError, match="event shapes"):
        expfam.product(c, e)


@pytest.mark.parametrize("dim", [2, -3, 1.0])
def test_product_dim_out_of_range_raises(dim):
    d = expfam.Normal(torch.zeros(2, 3), torch.ones(2, 3))
    with pytest.raises((ValueError, TypeError), match="dim"):
        d.product_along_axis(dim)


def test_product_leaving_natural_space_raises():
    # Gamma shapes: natural parameter a - 1 summed over 3 factors of a = 0.2 gives -2.4 < -1
    d = expfam.Gamma(torch.full((3,), 0.2), torch.ones(3))
    with pytest.raises(ValueError, match="natural parameter space"):
        d.product_along_axis(0)
    # negative weights can leave the space too
    n = expfam.Normal(torch.zeros(2), torch.ones(2))
    with pytest.raises(ValueError, match="natural parameter space"):
        n.product_along_axis(0, weights=torch.tensor([1.0, -2.0]))


def test_weights_shape_mismatch_raises():
    d = expfam.Normal(torch.zeros(3), torch.ones(3))
    with pytest.raises(ValueError, match="weights"):
        d.product_along_axis(0, weights=torch.ones(4))
    with pytest.raises(ValueError, match="weights"):
        expfam.weighted_product([d, d], [1.0])
